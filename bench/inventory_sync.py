"""How long an inventory sync of a Space takes: 10,000 and 100,000 simulated numbers.

The simulator serves the Space over HTTP on 127.0.0.1, in a process of its own (its work, like
SignalWire's, is not the portal's); the portal's sync (phone_numbers/inventory.py) reads it
through the real client, the shared rate
limit (PORTAL_RATE_LIMIT_PER_SPACE, default 20 requests a second) and PostgreSQL, in the
database named by BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/
portal_bench_inventory, made and migrated if missing). Half the Space's numbers were imported
by the portal, so linking and the drift marks have work to do.

For each size it syncs twice: a first sync (every number added) and a next one in which 1% of
the numbers changed, 1% were released and 1% bought (the nightly case). It prints pages,
seconds, numbers per second, where the time went (listing: the requests, their wait for a send
slot and the client's parsing; staging the pages; the swap) and the swap's share; side by
side, in the same run, the same swap done the naive way (one ORM update_or_create per number,
then the deletes), for sizes up to --naive-max.

    .venv/bin/python bench/inventory_sync.py [--sizes 10000 100000] [--naive-max 10000]
"""

import argparse
import dataclasses
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from urllib.parse import quote

import requests
from bench_database import set_up_django

BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_inventory"
)


set_up_django(BENCH_DATABASE_URL)

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from phone_numbers import inventory  # noqa: E402
from phone_numbers.models import (  # noqa: E402
    ImportJob,
    InventorySync,
    NumberImport,
    Project,
    SpaceNumber,
    StagedSpaceNumber,
)
from signalwire_simulator import API_PREFIX, CONTROL_PREFIX, SimProject  # noqa: E402

CAPABILITIES = ["voice", "sms", "mms", "fax"]


class SimulatorProcess:
    """`python -m signalwire_simulator` on a free loopback port, driven by its control endpoints."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.api_base_url = self.url + API_PREFIX
        self.process = subprocess.Popen(
            [sys.executable, "-m", "signalwire_simulator", "--port", str(port), "--seed", "17"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.control("GET", "config")
                return
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        response = requests.request(
            method, f"{self.url}{CONTROL_PREFIX}/{path}", json=body, timeout=120
        )
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def fill(simulator: SimulatorProcess, project_id: str, count: int, start: int) -> None:
    """`count` numbers bought in the dashboard, from +1`start` on."""
    simulator.control(
        "POST", f"projects/{project_id}/numbers", {"count": count, "start": f"+1{start}"}
    )


def churn(simulator: SimulatorProcess, project_id: str, numbers: list[str], first_new: int) -> None:
    """1% released, 1% changed (capabilities), 1% bought."""
    count = max(len(numbers) // 100, 1)
    picked = random.sample(numbers, 2 * count)
    for number in picked[:count]:
        simulator.control("DELETE", f"projects/{project_id}/numbers/{quote(number)}")
    for number in picked[count:]:
        simulator.control(
            "POST", f"projects/{project_id}/numbers/{quote(number)}", {"capabilities": ["sms"]}
        )
    fill(simulator, project_id, count, first_new)


def new_project(sim_project: SimProject, size: int) -> Project:
    project = Project.objects.create(
        name=f"Bench inventory {size}",
        space_host=sim_project.space_host,
        project_id=sim_project.project_id,
        default_country="US",
    )
    project.replace_token(sim_project.token, by=None)
    return project


def imported_by_portal(project: Project, numbers: list[str]) -> None:
    job = ImportJob.objects.create(
        project=project, source="paste", number_type="longcode", capabilities=CAPABILITIES
    )
    before = timezone.now() - timezone.timedelta(minutes=1)
    NumberImport.objects.bulk_create(
        [
            NumberImport(
                job=job,
                project=project,
                number=number,
                number_type="longcode",
                capabilities=CAPABILITIES,
                status="imported",
                imported_at=before,
                sid="bench",
            )
            for number in numbers
        ],
        batch_size=5000,
    )


class SwapClock:
    """Times inventory._swap, or replaces it with the naive swap."""

    def __init__(self, naive: bool = False) -> None:
        self.naive = naive
        self.seconds = 0.0
        self.real = inventory._swap

    def __call__(self, sync: InventorySync, token: str):
        started = time.perf_counter()
        try:
            return naive_swap(sync, token) if self.naive else self.real(sync, token)
        finally:
            self.seconds = time.perf_counter() - started


def naive_swap(sync: InventorySync, token: str) -> None:
    """The swap as one would write it first: a query or two per number, through the ORM."""
    now = timezone.now()
    with transaction.atomic():
        staged = StagedSpaceNumber.objects.filter(sync=sync)
        seen = set()
        for row in staged.iterator(chunk_size=2000):
            seen.add(row.sid)
            linked = NumberImport.objects.filter(
                project_id=sync.project_id, number=row.number, status="imported"
            ).first()
            SpaceNumber.objects.update_or_create(
                project_id=sync.project_id,
                sid=row.sid,
                defaults={
                    "number": row.number,
                    "friendly_name": row.friendly_name,
                    "number_type": row.number_type,
                    "capabilities": row.capabilities,
                    "origin": row.origin,
                    "date_created": row.date_created,
                    "date_updated": row.date_updated,
                    "number_import": linked,
                    "differs_from_import": bool(
                        linked and set(linked.capabilities) != set(row.capabilities)
                    ),
                    "last_seen_at": now,
                },
                create_defaults={"first_seen_at": now, "last_seen_at": now},
            )
        gone = SpaceNumber.objects.filter(project_id=sync.project_id).exclude(sid__in=seen)
        gone.delete()
        staged.delete()
        InventorySync.objects.filter(pk=sync.pk).update(status="completed", finished_at=now)


class StageClock:
    """Adds up the time spent staging pages (the rest of the reading is HTTP and parsing)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.real = inventory._stage

    def __call__(self, *args) -> None:
        started = time.perf_counter()
        try:
            self.real(*args)
        finally:
            self.seconds += time.perf_counter() - started


def one_sync(project: Project, clock: SwapClock) -> tuple[InventorySync, float, float, float]:
    stage = StageClock()
    inventory._swap, inventory._stage = clock, stage
    try:
        sync = InventorySync.start(project, InventorySync.Trigger.MANUAL)
        started = time.perf_counter()
        inventory.run_sync(sync)
        total = time.perf_counter() - started
    finally:
        inventory._swap, inventory._stage = clock.real, stage.real
    sync.refresh_from_db()
    if sync.status != InventorySync.Status.COMPLETED:
        raise SystemExit(f"the sync failed: {sync.error_message}")
    return sync, total, stage.seconds, clock.seconds


def bench_size(simulator: SimulatorProcess, size: int, naive_max: int) -> list[tuple]:
    rows = []
    for way in ("set-based", "naive"):
        if way == "naive" and size > naive_max:
            continue
        sim_project = SimProject(
            project_id=str(uuid.uuid4()),
            token="PT" + uuid.uuid4().hex,
            space_host="bench.signalwire.com",
        )
        simulator.control("POST", "projects", dataclasses.asdict(sim_project))
        numbers = [f"+1{2_000_000_000 + index:010d}" for index in range(size)]
        fill(simulator, sim_project.project_id, size, 2_000_000_000)
        project = new_project(sim_project, size)
        imported_by_portal(project, numbers[::2])
        for label in ("first sync", "next sync (3% churn)"):
            if label.startswith("next"):
                churn(simulator, sim_project.project_id, numbers, 3_000_000_000)
            sync, total, stage, swap = one_sync(project, SwapClock(naive=way == "naive"))
            rows.append((size, way, label, sync.pages_read, total, stage, swap))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--naive-max", type=int, default=10_000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    random.seed(17)
    simulator = SimulatorProcess()
    settings.SIGNALWIRE_BASE_URL = simulator.api_base_url
    try:
        rows = [row for size in args.sizes for row in bench_size(simulator, size, args.naive_max)]
    finally:
        simulator.stop()
    print(
        f"rate limit {settings.PORTAL_RATE_LIMIT_PER_SPACE}/s per Space; "
        f"load average {', '.join(f'{value:.2f}' for value in os.getloadavg())}"
    )
    print(
        f"{'numbers':>8}  {'swap':<9}  {'sync':<21}  {'pages':>5}  {'seconds':>8}  "
        f"{'numbers/s':>9}  {'list s':>7}  {'stage s':>7}  {'swap s':>7}  {'swap share':>10}"
    )
    for size, way, label, pages, total, stage, swap in rows:
        listing = total - stage - swap
        print(
            f"{size:>8,}  {way:<9}  {label:<21}  {pages:>5}  {total:>8.2f}  "
            f"{size / total:>9,.0f}  {listing:>7.2f}  {stage:>7.2f}  {swap:>7.2f}  "
            f"{swap / total:>10.0%}"
        )


if __name__ == "__main__":
    main()

"""Chaos harness: the import engine's promises under real concurrency, one configuration at a time.

Each configuration runs on real processes: two Celery workers (16 threads each, `--pool
threads`), one beat, a Redis of its own on a free port, a throwaway PostgreSQL database on
DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432) and the SignalWire simulator
in process over HTTP, accepting duplicates so that a second post of a number shows as a second
number. Every configuration runs in a child process of its own (Django reads its settings once
per process, and each configuration has its own); the parent prints one table.

Configurations (--only NAME, repeatable):

- low_limit: PORTAL_RATE_LIMIT_PER_SPACE=5, three jobs on one Space: the limit is far below the
  32 worker threads, so most of them wait for the Space.
- storm_429: half of the imports answered 429 with Retry-After 2, and the simulator's own limit
  at the portal's (a breach comes back as 429 with Retry-After 1).
- slow_attempts: PORTAL_ATTEMPT_SECONDS=2 (the recovery threshold is twice that), latency from
  0.1 to 3 s (a third of the requests outlast an attempt), a read timeout of 4 s and a limit of
  20/s (two seconds of sends outnumber the worker threads, so low_limit's case stays apart);
  10% of imports time out (held 8 s), and half of those create the number 3 s after the
  request arrived. Every number is thus created within 3 s (1.5 x PORTAL_ATTEMPT_SECONDS) of
  its POST's arrival, and a lookup made sooner may miss it.
- driver: six jobs with 20% 500s, 15% timeouts and 3% resets, most of which create the number
  (a timeout's 2.5 s after the request arrived: after the 1 s read timeout, within the 3 s of
  PORTAL_ATTEMPT_SECONDS) and two attempts at most, so rows fail; a seeded driver thread
  presses pause, resume, cancel, retry failed and edit-and-retry at random moments through
  phone_numbers.importing, counting ImportRefused, and resumes every paused job when it stops.
- kill_restart: soak.py's faults; a worker SIGKILLed and started again a quarter through, Redis
  stopped (every queued message lost) and started again half way.
- two_spaces: two Spaces at the same portal limit (15/s); the simulator throttles one hard (its
  own limit 3/s, 30% 429s) and not the other, whose sustained rate must stay near 15/s.

Checks, one column each (a configuration passes when none says FAIL):

- terminal: every row imported, failed or cancelled within --timeout (a configuration that
  stalls ends there, reported "N left");
- once: the simulator created no number twice;
- no-repost: no POST arrived for a number its project already held (`posts_after_created`);
- peak: no one-second window held more requests to a Space than PORTAL_RATE_LIMIT_PER_SPACE
  (the simulator's sliding-window `peak_rate`, refused requests included);
- sustained: over the seconds in which the limit binds, the Space received on average at least
  90% of PORTAL_RATE_LIMIT_PER_SPACE. Exactly: the harness samples, about every 0.25 s, how many
  of the Space's rows are ready to send: submitting, or pending in a job not paused, unless
  waiting for a retry after an error (next_attempt_at in the future and a failure category
  recorded; a row the engine put off only because the Space was busy stays ready). Second i
  is [first_request_at + i, first_request_at + i + 1) of the simulator's `requests_per_second`
  for that Space (a second past the end of its list counts 0 requests). A second is bound
  when at least two samples fall in it, the last sample of the run comes after it, and every
  sample in it saw at least PORTAL_RATE_LIMIT_PER_SPACE rows ready (a second's worth of
  sends). The sustained rate is the mean of requests_per_second over the bound seconds; "n/a"
  when fewer than 20 seconds were bound (so the short run checks no sustained rate). It is a
  check where the portal's own limit is the only brake (low_limit, driver, the free Space of
  two_spaces); elsewhere SignalWire legitimately slows
  the portal down (429s, slow answers that hold the worker threads, a lost worker or broker)
  and the figure is shown as "info";
- cancelled: no cancelled row's number exists in the simulator;
- counts: each job's counts() equal its rows, by status, and add up to the numbers submitted;
- in-sync: every imported row's number exists in the simulator, and every number the simulator
  holds is imported, cancelled (see that column) or failed with a lookup pending ("it may
  have been imported");
- errors: nothing went wrong in the harness itself (a crash, a driver action raising anything
  but ImportRefused, a kill or restart that came too late to happen).

It exits non-zero if any check fails, and prints which. Every process it starts stops, and
every database it creates is dropped, on failure, Ctrl-C or SIGTERM too.

    .venv/bin/python bench/chaos.py [--numbers 400] [--only NAME] [--seed 13] [--timeout 240]
    .venv/bin/python bench/chaos.py --short    # the variant of `make test` (tests/test_chaos.py)
"""

import argparse
import collections
import contextlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

import portal_processes  # noqa: E402

from signalwire_simulator import SimConfig, SimProject, Simulator  # noqa: E402

WORKERS = 2
THREADS = 16
CAPABILITIES = ["sms", "voice", "fax", "mms"]
SUSTAINED_SHARE = 0.9
# Fewer seconds in which the limit binds than this say nothing about a sustained rate: "n/a".
# Sends are spaced at 93% of the limit and counted in whole requests a second, so the 90% bar
# is 3% away: the short run's 3 to 12 seconds failed it or passed it by chance (4.3, 4.5 and
# 4.6 of 5 in three runs of the same code), where the full run's 50 gave 4.6 twice.
SUSTAINED_SECONDS = 20
SAMPLE_SECONDS = 0.25
CHECKS = (
    "terminal",
    "once",
    "no-repost",
    "peak",
    "sustained",
    "cancelled",
    "counts",
    "in-sync",
    "errors",
)
# Beyond --timeout, what a child may take to start and stop its processes before the parent
# stops it, and how long it then has to clean up before its whole process group is killed.
CHILD_OVERHEAD_SECONDS = 150
CHILD_CLEANUP_SECONDS = 40


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Space:
    """One simulator project: its share of the numbers, split over `jobs` jobs."""

    name: str
    share: float = 1.0
    jobs: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)
    # Whether the portal's own limit is the only brake on this Space (see "sustained").
    is_rate_checked: bool = True


@dataclass(frozen=True)
class Scenario:
    name: str
    rate_limit: int
    spaces: tuple[Space, ...]
    simulator: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    has_driver: bool = False
    kills_and_restarts: bool = False


SCENARIOS = (
    Scenario(
        "low_limit",
        rate_limit=5,
        spaces=(Space("low", share=0.6, jobs=3),),
        simulator={"rate_limit": 5},
    ),
    Scenario(
        "storm_429",
        rate_limit=20,
        spaces=(Space("storm", is_rate_checked=False),),
        simulator={"error_429_fraction": 0.5, "retry_after": 2, "rate_limit": 20},
        settings={"PORTAL_MAX_ATTEMPTS": "20"},
    ),
    Scenario(
        "slow_attempts",
        # 20/s: two seconds of sends outnumber the 32 threads, so a Space that stalls when
        # they do not (low_limit's case) does not hide what this configuration is after.
        rate_limit=20,
        # Its sustained rate is shown, not checked: requests of 1.55 s on average hold the 32
        # threads (at most about 20 a second, lookups included), so latency, not the portal's
        # limit, is the brake.
        spaces=(Space("slow", is_rate_checked=False),),
        simulator={
            "latency_min_ms": 100,
            "latency_max_ms": 3000,
            "timeout_fraction": 0.1,
            "timeout_seconds": 8.0,
            "timeout_creates": 0.5,
            "late_create_seconds": 3.0,
        },
        settings={"PORTAL_ATTEMPT_SECONDS": "2", "SIGNALWIRE_READ_TIMEOUT_MS": "4000"},
    ),
    Scenario(
        "driver",
        rate_limit=20,
        spaces=(Space("driven", jobs=6),),
        simulator={
            "error_500_fraction": 0.2,
            "timeout_fraction": 0.15,
            "timeout_seconds": 3.0,
            "timeout_creates": 0.8,
            "late_create_seconds": 2.5,
            "reset_fraction": 0.03,
            "reset_creates": 0.5,
        },
        settings={"PORTAL_MAX_ATTEMPTS": "2"},
        has_driver=True,
    ),
    Scenario(
        "kill_restart",
        rate_limit=20,
        spaces=(Space("killed", is_rate_checked=False),),
        simulator=portal_processes.SOAK_FAULTS,
        kills_and_restarts=True,
    ),
    Scenario(
        "two_spaces",
        rate_limit=15,
        spaces=(
            Space(
                "throttled",
                share=0.5,
                overrides={"rate_limit": 3, "error_429_fraction": 0.3, "retry_after": 2},
                is_rate_checked=False,
            ),
            Space("free"),
        ),
    ),
)
SCENARIOS_BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def portal_environment(
    scenario: Scenario, database_url: str, workdir: Path, redis_url: str, sim_url: str
) -> dict[str, str]:
    """The bench settings (bench/portal_processes.py) with 32 worker threads, attempts of 3 s
    (connect 1 s + read 1 s, plus a margin) and the configuration's own."""
    return (
        portal_processes.portal_environment(
            database_url=database_url,
            redis_url=redis_url,
            sim_url=sim_url,
            workdir=workdir,
            threads=WORKERS * THREADS,
        )
        | {
            "PORTAL_RATE_LIMIT_PER_SPACE": str(scenario.rate_limit),
            "PORTAL_ATTEMPT_SECONDS": "3",
        }
        | scenario.settings
    )


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def sustained_rate(
    first_request_at: float | None,
    per_second: list[int],
    samples: list[tuple[float, int]],
    limit: int,
) -> tuple[float | None, int]:
    """(mean requests per second over the bound seconds, how many seconds were bound).

    See the module docstring: a second is bound when at least two samples fall in it, the run
    went on past it, and every sample in it saw at least `limit` rows ready to send.
    """
    if not samples:
        return None, 0
    # A Space that never received a request counts from the first sample, every second at 0.
    origin = samples[0][0] if first_request_at is None else first_request_at
    seen: dict[int, list[int]] = collections.defaultdict(list)
    for moment, ready in samples:
        if moment >= origin:
            seen[math.floor(moment - origin)].append(ready)
    last = samples[-1][0]
    bound = [
        second
        for second, readies in seen.items()
        if len(readies) >= 2 and origin + second + 1 <= last and min(readies) >= limit
    ]
    if not bound:
        return None, 0
    total = sum(per_second[second] if second < len(per_second) else 0 for second in bound)
    return total / len(bound), len(bound)


class Cells:
    """A configuration's check results: state ("ok", "FAIL", "info", "n/a") and short text."""

    def __init__(self) -> None:
        self.cells: dict[str, tuple[str, str]] = {}
        self.details: list[str] = []
        self.notes: list[str] = []
        self.wall: float | None = None

    def set(self, check: str, is_ok: bool | None, text: str = "", detail: str = "") -> None:
        state = "n/a" if is_ok is None else "ok" if is_ok else "FAIL"
        previous = self.cells.get(check)
        # Several Spaces or jobs report to one column: a failure wins, and texts add up.
        if previous is not None:
            if previous[0] == "FAIL" and state != "FAIL":
                return
            if previous[0] == state and previous[1] and text:
                text = f"{previous[1]} {text}"
        self.cells[check] = (state, text)
        if detail:
            self.details.append(f"{check}: {detail}")

    def info(self, check: str, text: str) -> None:
        if check not in self.cells:
            self.cells[check] = ("info", text)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cells": self.cells,
            "details": self.details,
            "notes": self.notes,
            "wall": self.wall,
        }


# --------------------------------------------------------------------------------------------
# The driver: a person pressing the job's buttons at random moments
# --------------------------------------------------------------------------------------------


class Driver(threading.Thread):
    """Presses pause, resume, cancel, retry failed and edit-and-retry on random jobs.

    Stops pressing at `until` (monotonic) or when every job is terminal, then resumes every
    paused job, so that they can finish.
    """

    ACTIONS = (("pause", 3), ("resume", 3), ("retry_failed", 2), ("edit_retry", 2), ("cancel", 2))

    def __init__(self, job_pks: list[int], seed: int, until: float) -> None:
        super().__init__(name="chaos-driver", daemon=True)
        self.job_pks = job_pks
        # Bandit B311 is a false alarm: seeded on purpose, so a failing run can be repeated.
        self.random = random.Random(seed)  # nosec B311
        self.until = until
        self.stopping = threading.Event()
        self.pressed: collections.Counter[str] = collections.Counter()
        self.refused: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stopping.wait(self.random.uniform(0.1, 0.8)):
                if time.monotonic() > self.until or self._all_terminal():
                    break
                self._press_one()
            self._resume_all()
        except Exception as exc:  # reported in the table: one bad press is no crash
            self.errors.append(f"driver stopped: {exc!r}")
        finally:
            connection.close()

    def _all_terminal(self) -> bool:
        from phone_numbers.models import UNFINISHED_STATUSES, NumberImport

        return not NumberImport.objects.filter(
            job_id__in=self.job_pks, status__in=UNFINISHED_STATUSES
        ).exists()

    def _press_one(self) -> None:
        from phone_numbers import importing
        from phone_numbers.models import ImportJob

        names = [name for name, _ in self.ACTIONS]
        weights = [weight for _, weight in self.ACTIONS]
        action = self.random.choices(names, weights)[0]
        job = ImportJob.objects.get(pk=self.random.choice(self.job_pks))
        press: Callable[[], object] = {
            "pause": lambda: job.pause("paused by the chaos driver"),
            "resume": lambda: importing.resume(job),
            "retry_failed": lambda: importing.retry_failed(job),
            "edit_retry": lambda: self._edit_and_retry(job),
            "cancel": lambda: importing.cancel_pending(job),
        }[action]
        try:
            press()
        except importing.ImportRefused:
            self.refused[action] += 1
        except Exception as exc:  # reported in the table: one bad press is no crash
            self.errors.append(f"{action} on job {job.pk}: {exc!r}")
        else:
            self.pressed[action] += 1

    def _edit_and_retry(self, job: Any) -> None:
        from phone_numbers import importing
        from phone_numbers.models import NumberImport

        failed = list(job.numbers.filter(status="failed").values_list("pk", flat=True))
        if not failed:
            return
        number_import = NumberImport.objects.get(pk=self.random.choice(sorted(failed)))
        capabilities = sorted(self.random.sample(CAPABILITIES, self.random.randint(1, 4)))
        importing.retry_number(number_import, "longcode", capabilities)

    def _resume_all(self) -> None:
        from phone_numbers import importing
        from phone_numbers.models import ImportJob

        for job in ImportJob.objects.filter(pk__in=self.job_pks, paused_at__isnull=False):
            try:
                importing.resume(job)
            except importing.ImportRefused:
                self.refused["resume"] += 1


# --------------------------------------------------------------------------------------------
# One configuration (in a child process)
# --------------------------------------------------------------------------------------------


def numbers_text(start: int, count: int) -> str:
    return "\n".join(
        f"+1 415 {200 + i // 10000:03d} {i % 10000:04d}" for i in range(start, start + count)
    )


def run_scenario(
    scenario: Scenario, args: argparse.Namespace, stack: contextlib.ExitStack, cells: Cells
) -> None:
    started_all = time.monotonic()

    def say(text: str) -> None:
        print(f"  [{scenario.name} {time.monotonic() - started_all:6.1f} s] {text}", flush=True)

    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="portal-chaos-")))
    redis = portal_processes.RedisServer(workdir)
    stack.callback(redis.stop)
    redis.start()

    sim_projects = {
        space.name: SimProject(
            project_id=str(uuid.uuid4()),
            token="PT" + uuid.uuid4().hex,
            space_host=f"{space.name}.signalwire.com",
            overrides=space.overrides,
        )
        for space in scenario.spaces
    }
    config = SimConfig(
        **{"latency_min_ms": 20, "latency_max_ms": 80, "duplicates": "allow"} | scenario.simulator
    )
    simulator = Simulator(sim_projects.values(), config, seed=args.seed).start()
    stack.callback(simulator.stop)

    database = portal_processes.ThrowawayDatabase(args.database_name, args.database_url)
    database.create()
    stack.callback(database.drop)
    env = portal_environment(scenario, database.url, workdir, redis.url, simulator.api_base_url)
    # Before Django and Celery read their configuration: this process publishes the jobs'
    # first tasks to this configuration's Redis.
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.db.models import Count, Q
    from django.utils import timezone

    from phone_numbers import importing
    from phone_numbers.models import ImportJob, NumberImport, Project
    from phone_numbers.number_input import read_pasted

    call_command("migrate", verbosity=0)
    stack.callback(connections.close_all)

    workers = [
        portal_processes.worker(f"worker{n}", env, workdir, concurrency=THREADS)
        for n in range(1, WORKERS + 1)
    ]
    beat = portal_processes.beat(env, workdir)
    portal_processes.start_all([*workers, beat], stack)
    if args.keep_logs:
        stack.callback(keep_logs, workdir, scenario.name)

    projects = {}
    for space in scenario.spaces:
        sim_project = sim_projects[space.name]
        projects[space.name] = Project.objects.create(
            name=f"Chaos {space.name}",
            space_host=sim_project.space_host,
            project_id=sim_project.project_id,
            default_country="US",
        )
        projects[space.name].replace_token(sim_project.token, by=None)

    say(
        f"{WORKERS} workers x {THREADS} threads, limit {scenario.rate_limit}/s per Space, "
        f"simulator {scenario.simulator or 'without faults'}"
    )
    started = time.monotonic()
    jobs: dict[str, list[ImportJob]] = {}
    submitted: dict[int, int] = {}
    next_number = 0
    for space in scenario.spaces:
        per_job = max(1, round(args.numbers * space.share / space.jobs))
        jobs[space.name] = []
        for n in range(space.jobs):
            job = importing.start_job(
                project=projects[space.name],
                created_by=None,
                source=ImportJob.Source.PASTE,
                ticket=f"chaos {scenario.name} {space.name} {n}",
                number_type="longcode",
                capabilities=CAPABILITIES,
                lines=read_pasted(numbers_text(next_number, per_job)),
            )
            next_number += per_job
            jobs[space.name].append(job)
            submitted[job.pk] = per_job
    all_job_pks = [job.pk for space_jobs in jobs.values() for job in space_jobs]
    say(f"{len(all_job_pks)} jobs, {sum(submitted.values())} numbers")

    driver = None
    if scenario.has_driver:
        driver = Driver(all_job_pks, args.seed, until=started + args.timeout * 0.5)
        driver.start()

    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in projects}
    deadline = started + args.timeout
    next_report = started + 10
    killed = redis_restarted = False
    total = sum(submitted.values())
    while True:
        by_status = collections.Counter(
            dict(
                NumberImport.objects.filter(job_id__in=all_job_pks)
                .values_list("status")
                .annotate(n=Count("pk"))
                .order_by()
            )
        )
        unfinished = by_status["pending"] + by_status["submitting"]
        now = timezone.now()
        for name, project in projects.items():
            waiting_for_retry = Q(next_attempt_at__gt=now) & ~Q(failure_category="")
            ready = (
                NumberImport.objects.filter(project=project)
                .filter(
                    Q(status="submitting")
                    | Q(status="pending", job__paused_at__isnull=True) & ~waiting_for_retry
                )
                .count()
            )
            samples[name].append((time.time(), ready))
        is_driving = driver is not None and driver.is_alive()
        if (not unfinished and not is_driving) or time.monotonic() > deadline:
            break
        if scenario.kills_and_restarts:
            terminal = total - unfinished
            if not killed and terminal >= total * 0.25:
                workers[0].kill()
                killed = True
                say(f"{workers[0].name} killed with SIGKILL ({describe(by_status)})")
                workers[0].start()
                workers[0].wait_ready()
                say(f"{workers[0].name} restarted")
            elif killed and not redis_restarted and terminal >= total * 0.5:
                redis.stop()
                say(f"Redis stopped ({describe(by_status)})")
                time.sleep(2)
                redis.start()
                redis_restarted = True
                say(f"Redis started again on port {redis.port}, empty")
        if time.monotonic() >= next_report:
            say(describe(by_status))
            next_report += 10
        time.sleep(SAMPLE_SECONDS)
    wall = time.monotonic() - started
    cells.wall = wall
    if driver is not None:
        driver.stopping.set()
        driver.join(timeout=30)
    say(f"stopped after {wall:.1f} s ({describe(by_status)}); stopping the workers")

    # The workers stop before anything is counted, so the rows hold still; then requests
    # still inside the simulator, and numbers it creates late, have their time to land.
    for process in [*workers, beat]:
        process.stop()
    time.sleep(max(config.latency_max_ms / 1000, config.late_create_seconds) + 0.5)

    check_scenario(scenario, cells, simulator, projects, jobs, submitted, samples)
    if scenario.kills_and_restarts and not (killed and redis_restarted):
        cells.set("errors", False, "too late", "the jobs ended before the kill and the restart")
    if driver is not None:
        pressed = ", ".join(f"{k} {v}" for k, v in sorted(driver.pressed.items()))
        refused = ", ".join(f"{k} {v}" for k, v in sorted(driver.refused.items())) or "none"
        cells.notes.append(f"driver pressed {pressed}; ImportRefused: {refused}")
        if driver.is_alive():
            driver.errors.append("the driver did not stop")
        for error in driver.errors:
            cells.set("errors", False, "driver", error)


def check_scenario(
    scenario: Scenario,
    cells: Cells,
    simulator: Simulator,
    projects: dict[str, Any],
    jobs: dict[str, list[Any]],
    submitted: dict[int, int],
    samples: dict[str, list[tuple[float, int]]],
) -> None:
    from phone_numbers.models import NumberImport

    stats = simulator.stats()
    limit = scenario.rate_limit
    for space in scenario.spaces:
        project = projects[space.name]
        pid = str(project.project_id)
        rows = list(
            NumberImport.objects.filter(project=project).values_list(
                "job_id", "number", "status", "needs_lookup"
            )
        )
        created = stats["created"].get(pid, {})
        label = space.name if len(scenario.spaces) > 1 else ""

        left = sum(1 for _, _, status, _ in rows if status in ("pending", "submitting"))
        cells.set(
            "terminal",
            not left,
            f"{label} {left} left".strip() if left else "",
            f"{space.name}: {left} rows not terminal" if left else "",
        )

        twice = sorted(number for number, times in created.items() if times > 1)
        cells.set(
            "once",
            not twice,
            f"{label} {len(twice)}".strip() if twice else "",
            f"{space.name}: {len(twice)} numbers created more than once, e.g. {twice[:3]}"
            if twice
            else "",
        )

        reposts = stats["posts_after_created"].get(pid, {})
        cells.set(
            "no-repost",
            not reposts,
            f"{label} {sum(reposts.values())}".strip() if reposts else "",
            f"{space.name}: {sum(reposts.values())} POSTs for {len(reposts)} numbers already "
            f"created, e.g. {sorted(reposts)[:3]}"
            if reposts
            else "",
        )

        peak = stats["peak_rate"].get(pid, 0)
        cells.set(
            "peak",
            peak <= limit,
            f"{label} {peak}/{limit}".strip(),
            f"{space.name}: {peak} requests in one second, limit {limit}" if peak > limit else "",
        )

        rate, seconds = sustained_rate(
            stats["first_request_at"].get(pid),
            stats["requests_per_second"].get(pid, []),
            samples[space.name],
            limit,
        )
        per_second = stats["requests_per_second"].get(pid, [])
        worst = max(per_second, default=0)
        text = "n/a" if rate is None else f"{rate:.1f}/{limit} ({seconds}s)"
        text = f"{label} {text}".strip()
        if not space.is_rate_checked:
            cells.info("sustained", text)
            cells.notes.append(
                f"{space.name}: sustained rate not checked here: "
                f"{'n/a' if rate is None else f'{rate:.1f}/s'}, worst second {worst}"
            )
        elif rate is None or seconds < SUSTAINED_SECONDS:
            cells.set("sustained", None, text)
        else:
            is_ok = rate >= SUSTAINED_SHARE * limit
            cells.set(
                "sustained",
                is_ok,
                text,
                ""
                if is_ok
                else f"{space.name}: {rate:.1f} requests/s over {seconds} bound seconds, below "
                f"{SUSTAINED_SHARE:.0%} of {limit}; per second: {per_second[:40]}",
            )

        cancelled = {number for _, number, status, _ in rows if status == "cancelled"}
        in_space = sorted(cancelled & set(created))
        cells.set(
            "cancelled",
            not in_space,
            f"{label} {len(in_space)}".strip() if in_space else "",
            f"{space.name}: {len(in_space)} cancelled numbers are in the Space, e.g. {in_space[:3]}"
            if in_space
            else "",
        )

        for job in jobs[space.name]:
            counts = job.counts()
            by_rows = collections.Counter(
                status for job_id, _, status, _ in rows if job_id == job.pk
            )
            expected = {status: by_rows.get(status, 0) for status in counts if status != "total"}
            is_ok = {k: v for k, v in counts.items() if k != "total"} == expected and counts[
                "total"
            ] == submitted[job.pk]
            cells.set(
                "counts",
                is_ok,
                "" if is_ok else f"job {job.pk}",
                ""
                if is_ok
                else f"job {job.pk}: counts {counts}, rows {dict(by_rows)}, "
                f"submitted {submitted[job.pk]}",
            )

        imported = {number for _, number, status, _ in rows if status == "imported"}
        maybe = {number for _, number, status, lookup in rows if status == "failed" and lookup}
        # A number whose row is still unfinished is the terminal column's business.
        unfinished = {n for _, n, status, _ in rows if status in ("pending", "submitting")}
        never_created = sorted(imported - set(created))
        unknown = sorted(set(created) - imported - maybe - cancelled - unfinished)
        problems = []
        if never_created:
            problems.append(f"{len(never_created)} imported but not in the Space")
        if unknown:
            problems.append(f"{len(unknown)} in the Space but not imported, e.g. {unknown[:3]}")
        cells.set(
            "in-sync",
            not problems,
            f"{label} {len(never_created) + len(unknown)}".strip() if problems else "",
            f"{space.name}: {'; '.join(problems)}" if problems else "",
        )
    answers = "; ".join(
        f"{endpoint} " + ", ".join(f"{status} x{n}" for status, n in sorted(by.items()))
        for endpoint, by in sorted(stats["requests"].items())
    )
    cells.notes.append(f"simulator answered: {answers}")
    cells.set("errors", True)


def describe(counts: collections.Counter) -> str:
    return ", ".join(
        f"{name} {counts[name]}"
        for name in ("imported", "failed", "cancelled", "pending", "submitting")
    )


def keep_logs(workdir: Path, name: str) -> None:
    logs = REPO_DIR / "artifacts" / f"chaos-{os.getpid()}-{name}"
    logs.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, logs / log.name)
    print(f"  logs of {name}: {logs}", flush=True)


def child_main(args: argparse.Namespace) -> None:
    """Run one configuration and write its cells to --result, whatever happens."""
    scenario = SCENARIOS_BY_NAME[args.child]
    portal_processes.raise_on_termination()
    # The last resort against a hang outside the bounded loops (a start-up, a stop).
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("the configuration hung: global timeout"))
    signal.alarm(int(args.timeout) + CHILD_OVERHEAD_SECONDS - 10)
    cells = Cells()
    try:
        with contextlib.ExitStack() as stack:
            run_scenario(scenario, args, stack, cells)
    except BaseException as exc:
        # A crash is a failed row of the table, never a lost one.
        cells.set("errors", False, "crash", f"{type(exc).__name__}: {exc}")
        if not isinstance(exc, Exception):
            raise
    finally:
        signal.alarm(0)
        Path(args.result).write_text(json.dumps(cells.as_dict()))


# --------------------------------------------------------------------------------------------
# The parent: one child per configuration, one table
# --------------------------------------------------------------------------------------------


def run_child(
    scenario: Scenario, args: argparse.Namespace, workdir: Path, results: dict[str, Any]
) -> None:
    """Run one configuration in a child process; its result goes in `results`, whatever happens.

    Interrupted (Ctrl-C, SIGTERM), the child is stopped, and its row still recorded, before the
    interruption goes on.
    """
    result_path = workdir / f"{scenario.name}.json"
    database_name = f"portal_chaos_{os.getpid()}_{scenario.name}"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        scenario.name,
        "--result",
        str(result_path),
        "--numbers",
        str(args.numbers),
        "--seed",
        str(args.seed),
        "--timeout",
        str(args.timeout),
        "--database-url",
        args.database_url,
        "--database-name",
        database_name,
    ]
    if args.keep_logs:
        command.append("--keep-logs")
    # A session of its own: the child and everything it starts form one process group that
    # the parent can end as a whole, and Ctrl-C reaches the parent only, which then asks the
    # child to clean up.
    started = time.monotonic()
    # The child configures Django from its own variables: nothing of a caller's (pytest's
    # memory:// broker, say) may leak into the settings it reads.
    child = subprocess.Popen(
        command, cwd=REPO_DIR, env=portal_processes.clean_environment(), start_new_session=True
    )
    try:
        child.wait(timeout=args.timeout + CHILD_OVERHEAD_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"  [{scenario.name}] did not end in time: stopping it", flush=True)
    finally:
        stop_child(child)
        portal_processes.ThrowawayDatabase(database_name, args.database_url).drop()
        if result_path.exists():
            results[scenario.name] = json.loads(result_path.read_text())
        else:
            results[scenario.name] = {
                "cells": {"errors": ["FAIL", f"exit {child.returncode}"]},
                "details": [f"errors: the child exited with {child.returncode} and no result"],
                "wall": time.monotonic() - started,
                "notes": [],
            }


def stop_child(child: subprocess.Popen) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=CHILD_CLEANUP_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def table(results: dict[str, dict[str, Any]]) -> str:
    headers = ["config", "wall s", *CHECKS]
    rows = []
    for name, result in results.items():
        wall = result.get("wall")
        row = [name, "-" if wall is None else f"{wall:.1f}"]
        for check in CHECKS:
            state, text = result["cells"].get(check, ("-", ""))
            row.append(f"{state} {text}".strip())
        rows.append(row)
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    )


def failed_checks(results: dict[str, dict[str, Any]]) -> list[str]:
    return [
        f"{name}: {check}"
        for name, result in results.items()
        for check, (state, _) in result["cells"].items()
        if state == "FAIL"
    ]


def parent_main(args: argparse.Namespace) -> None:
    names = args.only or [scenario.name for scenario in SCENARIOS]
    portal_processes.raise_on_termination()
    # Started in the background by a shell, a process inherits SIGINT ignored; Ctrl-C and
    # `kill -INT` must still stop the run and its children.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(
        f"Chaos: {', '.join(names)}; {args.numbers} numbers per configuration (scaled per "
        f"Space), timeout {args.timeout:.0f} s each, seed {args.seed}",
        flush=True,
    )
    results: dict[str, dict[str, Any]] = {}
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="portal-chaos-results-") as workdir:
        try:
            for name in names:
                run_child(SCENARIOS_BY_NAME[name], args, Path(workdir), results)
        except (KeyboardInterrupt, SystemExit):
            interrupted = True
    print()
    print(table(results))
    for name, result in results.items():
        for line in result["details"]:
            print(f"  {name} {line}")
        for line in result["notes"]:
            print(f"  {name} note: {line}")
    failures = failed_checks(results)
    if interrupted:
        not_run = [name for name in names if name not in results]
        print("INTERRUPTED; configurations not run: " + (", ".join(not_run) or "none"))
        sys.exit(130)
    if failures:
        print("FAILED: " + "; ".join(failures))
        sys.exit(1)
    print("OK: every check passed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, help="numbers per configuration (400; short 100)")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SCENARIOS_BY_NAME),
        help="run this configuration only; repeatable",
    )
    parser.add_argument("--seed", type=int, default=13, help="the simulator's and driver's seed")
    parser.add_argument(
        "--timeout", type=float, help="seconds the jobs of one configuration may take (240; 90)"
    )
    parser.add_argument(
        "--short", action="store_true", help="the variant of `make test`: 100 numbers, 90 s"
    )
    parser.add_argument("--keep-logs", action="store_true", help="copy logs to artifacts/")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or portal_processes.DEFAULT_DATABASE_SERVER,
        help="its server holds the throwaway databases (DATABASE_URL)",
    )
    # The parent's instructions to a child.
    parser.add_argument("--child", choices=list(SCENARIOS_BY_NAME), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--database-name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.numbers = args.numbers or (100 if args.short else 400)
    # slow_attempts' unlucky numbers wait 8 s (twice its 4 s read timeout) before each lookup.
    args.timeout = args.timeout or (90 if args.short else 240)
    if not 10 <= args.numbers <= 20_000:
        parser.error("--numbers must be from 10 to 20,000")
    if args.child:
        child_main(args)
    else:
        parent_main(args)


if __name__ == "__main__":
    main()

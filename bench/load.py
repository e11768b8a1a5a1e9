"""The portal under load: Locust's support people and live-page watchers during a big import.

Everything runs on this machine's loopback, started here and stopped at the end: a Redis of its
own (a free port), a throwaway PostgreSQL database on DATABASE_URL's server (default
postgres://postgres@127.0.0.1:5432), the SignalWire simulator (--latency-ms per request, no
faults), the portal served by gunicorn as production runs it (gunicorn.conf.py, production
settings, behind a pretend TLS proxy: X-Forwarded-Proto), two Celery worker processes of 8
threads (PORTAL_JOB_CONCURRENCY 16) and beat. The database is seeded with seed_demo_numbers
(--seed-numbers across --projects projects, in jobs of 1,000).

In one run:
(a) no load: a --numbers import through the real workers and the simulator, timed from the
    start of the job until every row is terminal;
(b) under load: Locust (bench/locustfile.py, headless) runs --support users (log in, search
    with several kinds of query, open numbers and jobs, export CSV, 2-5 s apart) and
    --watchers (log in, open the live job page, then poll its fragment every 2 s as the page
    does); once all have logged in (users / --spawn-rate seconds, and 5 more) and then
    --pages-alone seconds have passed, an import of the same size (other numbers, another
    Space) starts, and Locust stops when it is done.
An import not done within --timeout is cut there, and its rate so far is its figure, so that
the run stays bounded (about 6 minutes with the defaults, most of it the two imports).

It prints Locust's own tables, the import's throughput under load beside (a), the CPU each
part used in each phase, the load average, and each target with "met" or "NOT met": p95 under
200 ms for every page, no failed request, throughput under load within 10% of (a).

    .venv/bin/python bench/load.py [--numbers 10000] [--latency-ms 100] [--support 30]
        [--watchers 10] [--spawn-rate 2] [--seed-numbers 30000] [--projects 5] [--pages-alone 30]
        [--timeout 150]
"""

import argparse
import contextlib
import csv
import json
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import psycopg

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

import portal_processes  # noqa: E402
from import_throughput import numbers_text, sim_project  # noqa: E402

from signalwire_simulator import SimConfig, Simulator  # noqa: E402

WORKERS = 2
THREADS = 8
CONCURRENCY = WORKERS * THREADS
TARGET_P95_MS = 200
TARGET_THROUGHPUT_LOSS = 0.10
# As the TLS proxy in front of gunicorn marks every request (gunicorn trusts it from 127.0.0.1).
BEHIND_THE_PROXY = {"X-Forwarded-Proto": "https"}
LOCUSTFILE = REPO_DIR / "bench" / "locustfile.py"
# The bench's own settings that production leaves at their defaults: here, as in production,
# SignalWire's timeouts and recovery are the defaults, so a busy machine is not a fault.
NOT_PRODUCTION = (
    "SIGNALWIRE_CONNECT_TIMEOUT_MS",
    "SIGNALWIRE_READ_TIMEOUT_MS",
    "PORTAL_MAX_ATTEMPTS",
    "PORTAL_RETRY_BASE_SECONDS",
    "PORTAL_RETRY_MAX_SECONDS",
    "PORTAL_RECOVERY_INTERVAL_SECONDS",
    "PORTAL_ATTEMPT_SECONDS",
    "PORTAL_REQUEUE_AFTER_SECONDS",
)


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def load_average() -> str:
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


class CpuMeter:
    """CPU seconds of each part of the bench, and of the whole machine, between two points."""

    def __init__(self, parts: dict[str, set[int]], database_url: str, database: str) -> None:
        self.parts = parts
        self.database_url = database_url
        self.database = database

    def postgres_backends(self) -> set[int]:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database]
            ).fetchall()
        return {pid for (pid,) in rows}

    def machine_busy(self) -> float:
        cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        busy = sum(int(value) for value in cpu) - int(cpu[3]) - int(cpu[4])
        return busy / os.sysconf("SC_CLK_TCK")

    def read(self) -> dict:
        own = resource.getrusage(resource.RUSAGE_SELF)
        backends = self.postgres_backends()
        return {
            "at": time.monotonic(),
            "parts": {
                name: portal_processes.cpu_seconds_of(pids) for name, pids in self.parts.items()
            }
            | {"this script (simulator, polling)": own.ru_utime + own.ru_stime},
            "backends": {pid: portal_processes.cpu_seconds_of({pid}) for pid in backends},
            "machine": self.machine_busy(),
        }

    def used(self, before: dict, after: dict) -> dict[str, float]:
        used = {
            name: after["parts"][name] - before["parts"].get(name, 0.0) for name in after["parts"]
        }
        # Backends that ended in between are not counted: "at least".
        used["PostgreSQL backends of this database"] = sum(
            seconds - before["backends"].get(pid, 0.0) for pid, seconds in after["backends"].items()
        )
        used["the whole machine"] = after["machine"] - before["machine"]
        return used


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="portal-load-")))
    print(f"start: {load_average()}, {os.cpu_count()} CPU cores", flush=True)
    redis = portal_processes.RedisServer(workdir)
    stack.callback(redis.stop)
    redis.start()
    quiet_sim, load_sim, warmup_sim = sim_project("quiet"), sim_project("load"), sim_project("warm")
    config = SimConfig(latency_min_ms=args.latency_ms, latency_max_ms=args.latency_ms)
    simulator = Simulator([quiet_sim, load_sim, warmup_sim], config).start()
    stack.callback(simulator.stop)
    database = portal_processes.ThrowawayDatabase(
        f"portal_load_{os.getpid()}", os.environ.get("DATABASE_URL")
    )
    database.create()
    stack.callback(database.drop)
    env = portal_processes.portal_environment(
        database_url=database.url,
        redis_url=redis.url,
        sim_url=simulator.api_base_url,
        workdir=workdir,
        threads=CONCURRENCY,
    )
    for name in NOT_PRODUCTION:
        del env[name]
    # High enough never to bind: this measures the import beside the pages, not the limit.
    env["PORTAL_RATE_LIMIT_PER_SPACE"] = "1000"
    os.environ.update(env)

    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connections

    from phone_numbers.models import ImportJob, NumberImport, Project
    from phone_numbers.roles import SUPPORT

    stack.callback(connections.close_all)
    started = time.monotonic()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--no-input", verbosity=0)
    call_command("seed_demo_numbers", count=args.seed_numbers, projects=args.projects)
    print(f"database migrated and seeded in {time.monotonic() - started:.0f} s", flush=True)

    password = secrets.token_urlsafe(16)
    # One hash for all: hashing 40 passwords here would take as long as their 40 logins.
    hashed = make_password(password)
    support = Group.objects.get(name=SUPPORT)
    names = {
        "support_users": [f"support{n:02d}" for n in range(args.support)],
        "watcher_users": [f"watcher{n:02d}" for n in range(args.watchers)],
    }
    users = User.objects.bulk_create(
        User(username=name, password=hashed) for group in names.values() for name in group
    )
    support.user_set.add(*users)

    def make_project(sim, name: str) -> Project:
        project = Project.objects.create(
            name=name, space_host=sim.space_host, project_id=sim.project_id, default_country="US"
        )
        project.replace_token(sim.token, by=None)
        return project

    def import_numbers(project: Project, count: int, area: int, on_start=None) -> dict:
        """Start a job of `count` numbers and wait (up to --timeout) until each is terminal."""
        from phone_numbers import importing
        from phone_numbers.models import UNFINISHED_STATUSES
        from phone_numbers.number_input import read_pasted

        lines = read_pasted(numbers_text(count, area))
        began = time.monotonic()
        job = importing.start_job(
            project=project,
            created_by=None,
            source=ImportJob.Source.PASTE,
            ticket="LOAD-1",
            number_type="longcode",
            capabilities=["sms"],
            lines=lines,
        )
        if on_start:
            on_start(job)
        unfinished = NumberImport.objects.filter(job=job, status__in=UNFINISHED_STATUSES)
        deadline = began + args.timeout
        while (left := unfinished.count()) and time.monotonic() < deadline:
            time.sleep(0.2)
        seconds = time.monotonic() - began
        return {"job": job, "seconds": seconds, "done": count - left, "count": count}

    base_url, gunicorn = portal_processes.start_gunicorn(env, workdir, stack)
    workers = [portal_processes.worker(f"worker{n}", env, workdir, THREADS) for n in (1, 2)]
    beat = portal_processes.beat(env, workdir)
    portal_processes.start_all([*workers, beat], stack)
    meter = CpuMeter(
        {
            "gunicorn (all its workers)": {gunicorn.pid},
            "Celery workers and beat": {p.process.pid for p in [*workers, beat]},
        },
        f"{database.server}/postgres",
        database.name,
    )
    # Warm-up, not timed: gunicorn's workers render their first pages (templates compiled,
    # modules imported), as a server that has been up for a while has long done.
    for _ in range(4 * WORKERS * THREADS):
        request = urllib.request.Request(f"{base_url}/login/", headers=BEHIND_THE_PROXY)
        urllib.request.urlopen(request, timeout=30).close()
    # Every worker thread opens its database and HTTP connections once.
    import_numbers(make_project(warmup_sim, "Warm-up"), 4 * CONCURRENCY, 510)

    print(f"(a) no load: importing {args.numbers:,} numbers ... {load_average()}", flush=True)
    before = meter.read()
    quiet = import_numbers(make_project(quiet_sim, "Quiet customer"), args.numbers, 415)
    quiet_cpu = meter.used(before, meter.read())
    quiet["load"] = load_average()

    plan = sample_plan(args, names, password, workdir, quiet["job"].pk)
    plan_file = workdir / "plan.json"
    plan_file.write_text(json.dumps(plan))
    locust_log = workdir / "locust.log"
    users = args.support + args.watchers
    # Each user logs in as it starts; 5 s more for the last logins to be answered.
    ramp = users / args.spawn_rate + 5
    with locust_log.open("wb") as log:
        locust = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
            + ["--host", base_url, "--users", str(users), "--spawn-rate", str(args.spawn_rate)]
            + ["--run-time", f"{ramp + args.pages_alone + args.timeout + 60:.0f}s"]
            + ["--only-summary"]
            + ["--csv", str(workdir / "locust"), "--stop-timeout", "10"],
            cwd=REPO_DIR / "bench",
            env=portal_processes.clean_environment() | {"LOAD_PLAN": str(plan_file)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stack.callback(portal_processes.stop_process, locust)
    meter.parts["Locust"] = {locust.pid}
    locust_started = meter.read()
    print(
        f"(b) under load: {args.support} support users and {args.watchers} watchers log in "
        f"over {ramp:.0f} s; the import starts {args.pages_alone:.0f} s later ... "
        f"{load_average()}",
        flush=True,
    )
    time.sleep(ramp)
    Path(plan["all_in_file"]).touch()
    time.sleep(args.pages_alone)
    if locust.poll() is not None:
        sys.exit(f"Locust exited with {locust.returncode}:\n{locust_log.read_text()[-3000:]}")
    before = meter.read()

    def started_live(job: ImportJob) -> None:
        Path(plan["live_job_file"]).write_text(str(job.pk))

    loaded = import_numbers(
        make_project(load_sim, "Busy customer"), args.numbers, 628, started_live
    )
    after = meter.read()
    loaded_cpu = meter.used(before, after)
    web_cpu = meter.used(locust_started, after)["gunicorn (all its workers)"]
    loaded["load"] = load_average()
    locust.terminate()
    locust.wait(timeout=60)

    print()
    print("Locust's own tables (all requests of phase (b), log-ins included):")
    print(locust_output(locust_log.read_text()))
    print_phases(json.loads(Path(plan["times_file"]).read_text()), args.pages_alone)
    report(args, quiet, loaded, quiet_cpu, loaded_cpu, web_cpu, workdir / "locust_stats.csv")


def sample_plan(
    args: argparse.Namespace, names: dict, password: str, workdir: Path, big_job: int
) -> dict:
    """What Locust's users ask for, drawn from the seeded rows."""
    from phone_numbers.models import ImportJob, ImportStatus, NumberImport, Project

    rng = random.Random(args.seed)
    imported = list(
        NumberImport.objects.filter(status=ImportStatus.IMPORTED)
        .exclude(friendly_name="")
        .values_list("number", "friendly_name", "sid", "job__ticket", "project__name")
        .order_by("pk")
    )
    imported = rng.sample(imported, min(20, len(imported)))
    projects = list(Project.objects.filter(name__startswith="Seeded ").values_list("pk", flat=True))
    queries = []
    for number, friendly, sid, ticket, project_name in imported:
        digits = number.lstrip("+")
        queries += [
            ("4 digits", urlencode({"q": digits[-6:-2]})),
            ("7 digits", urlencode({"q": digits[-7:]})),
            ("national form", urlencode({"q": friendly})),
            ("+ start of a number", urlencode({"q": number[:-4]})),
            ("project name", urlencode({"q": project_name})),
            ("ticket", urlencode({"q": ticket})),
            ("sid fragment", urlencode({"q": sid[:8]})),
        ]
    for project in projects:
        queries += [
            ("project + status", urlencode({"project": project, "status": "failed"})),
            ("type + capability", urlencode({"number_type": "tollfree", "capability": "fax"})),
        ]
    export_queries = [
        (kind, query) for kind, query in queries if kind in ("4 digits", "7 digits", "ticket")
    ]
    number_ids = list(NumberImport.objects.values_list("pk", flat=True).order_by("pk"))
    number_ids = rng.sample(number_ids, min(500, len(number_ids)))
    job_ids = list(ImportJob.objects.values_list("pk", flat=True))
    rng.shuffle(job_ids)
    return names | {
        "password": password,
        "support_count": args.support,
        "watcher_count": args.watchers,
        "queries": queries,
        "export_queries": export_queries,
        "number_ids": number_ids,
        "job_ids": [*job_ids, big_job],
        "live_job_file": str(workdir / "live-job"),
        "all_in_file": str(workdir / "all-logged-in"),
        "times_file": str(workdir / "times.json"),
    }


def print_phases(times: dict[str, dict[str, list[float]]], pages_alone: float) -> None:
    """Each page's times with every user logged in, before the import and during it."""
    alone, during = times["pages alone"], times["during the import"]
    print(
        f"The same requests in two parts of (b): the {pages_alone:.0f} s with every user "
        "logged in before the import, and during the import (ms):"
    )
    print(f"  {'page':<36} {'alone: p50':>10} {'p95':>6} {'n':>4}", end="")
    print(f"   {'import: p50':>11} {'p95':>6} {'n':>5}")
    for name in sorted(set(alone) | set(during)):
        cells = []
        for part in (alone.get(name, []), during.get(name, [])):
            cells.append(
                (percentile(part, 50), percentile(part, 95), len(part)) if part else ("", "", 0)
            )
        (a50, a95, an), (b50, b95, bn) = cells
        print(f"  {name:<36} {a50:>10} {a95:>6} {an:>4}   {b50:>11} {b95:>6} {bn:>5}")


def percentile(values: list[float], pct: int) -> int:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, len(ordered) * pct // 100)])


def locust_output(text: str) -> str:
    """Locust's summary tables, without its log lines."""
    lines = text.splitlines()
    tables = [n for n, line in enumerate(lines) if line.lstrip().startswith("Type ")]
    return "\n".join(lines[tables[0] :] if tables else lines[-80:])


def report(
    args, quiet: dict, loaded: dict, quiet_cpu: dict, loaded_cpu: dict, web_cpu: float, stats: Path
) -> None:
    """The import's figures, the CPU table and the targets; `web_cpu` is gunicorn's CPU
    seconds while Locust ran, `stats` Locust's CSV of every request."""
    print(
        f"Import of {args.numbers:,} numbers (simulator {args.latency_ms} ms a request, "
        f"{WORKERS} workers x {THREADS} threads, PORTAL_JOB_CONCURRENCY {CONCURRENCY}):"
    )
    for name, result in (("(a) no load", quiet), ("(b) under load", loaded)):
        finished = (
            ""
            if result["done"] == result["count"]
            else (f" NOT FINISHED: {result['done']:,} terminal within --timeout")
        )
        print(
            f"  {name:<15} {result['seconds']:7.1f} s  {result['done'] / result['seconds']:6.1f} "
            f"numbers/s{finished}  ({result['load']} at its end)"
        )
    ratio = (loaded["done"] / loaded["seconds"]) / (quiet["done"] / quiet["seconds"])
    print()
    print("CPU seconds used (per second of the phase, in cores):")
    print(f"  {'':<40} {'(a) no load':>16} {'(b) under load':>16}")
    for name in loaded_cpu:
        a = quiet_cpu.get(name)
        b = loaded_cpu[name]
        a_text = f"{a:6.1f} ({a / quiet['seconds']:.2f})" if a is not None else ""
        print(f"  {name:<40} {a_text:>16} {b:6.1f} ({b / loaded['seconds']:.2f})")
    for name, result, cpu in (("(a)", quiet, quiet_cpu), ("(b)", loaded, loaded_cpu)):
        ours = sum(seconds for part, seconds in cpu.items() if part != "the whole machine")
        print(
            f"  {name} other work on this machine: {cpu['the whole machine'] - ours:.1f} s "
            f"({(cpu['the whole machine'] - ours) / result['seconds']:.2f} cores); Celery "
            f"workers {cpu['Celery workers and beat'] / max(1, result['done']) * 1000:.1f} ms "
            "per number"
        )

    with stats.open() as stats_file:
        rows = [row for row in csv.DictReader(stats_file) if row["Name"] != "Aggregated"]
    print()
    print(f"Targets ({load_average()}):")
    failures = 0
    for row in rows:
        p95 = float(row["95%"]) if row["95%"] not in ("", "N/A") else float("nan")
        failures += int(row["Failure Count"])
        print(
            f"  p95 {row['Name']:<42} {p95:7.0f} ms  < {TARGET_P95_MS} ms: "
            f"{met(p95 < TARGET_P95_MS)}"
        )
    requests = sum(int(row["Request Count"]) for row in rows)
    print(f"  (gunicorn used {web_cpu / max(1, requests) * 1000:.0f} ms of CPU per request)")
    print(f"  failed requests: {failures} of {requests}  (target 0): {met(failures == 0)}")
    print(
        f"  throughput under load / without = {ratio:.2f} (target >= "
        f"{1 - TARGET_THROUGHPUT_LOSS:.2f}): {met(ratio >= 1 - TARGET_THROUGHPUT_LOSS)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=10_000, help="numbers of each import")
    parser.add_argument("--latency-ms", type=int, default=100, help="simulator, per request")
    parser.add_argument("--support", type=int, default=30, help="simulated support users")
    parser.add_argument("--watchers", type=int, default=10, help="users on the live job page")
    parser.add_argument(
        "--spawn-rate",
        type=float,
        default=2,
        help="users started (and logged in) a second: people arrive over a while, not at once",
    )
    parser.add_argument("--seed-numbers", type=int, default=30_000)
    parser.add_argument("--projects", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1, help="for the queries Locust sends")
    parser.add_argument(
        "--pages-alone",
        type=float,
        default=30,
        help="seconds of load with every user logged in before the import starts",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=150,
        help="seconds an import may take; past it, its rate so far is the figure",
    )
    args = parser.parse_args()
    portal_processes.raise_on_termination()
    with contextlib.ExitStack() as stack:
        run(args, stack)


if __name__ == "__main__":
    main()

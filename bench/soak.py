"""Fault soak: one import job against a misbehaving SignalWire, a killed worker, a lost Redis.

A job of 1,000 numbers (--numbers) runs on real processes: two Celery workers (8 threads
each), one beat, a Redis of its own on a free port, a throwaway PostgreSQL database on
DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432) and the SignalWire
simulator over HTTP, which answers 10% 429 (Retry-After 1), 5% 500, 5% timeouts (half of them
after creating the number) and 2% connection resets. A quarter of the way through, one worker
is killed with SIGKILL and started again; half way through, Redis is stopped (losing every
queued and unacknowledged message) and started again on the same port.

It prints, and exits non-zero unless they hold: every number ends imported, failed or
cancelled; those add up to the job; the simulator created no number twice (it is set to
accept duplicates, so a double post would show); the requests per second to the project never
exceeded PORTAL_RATE_LIMIT_PER_SPACE; and the wall time.

    .venv/bin/python bench/soak.py [--numbers 1000] [--rate-limit 50] [--seed 8]
"""

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

import portal_processes  # noqa: E402

from signalwire_simulator import SimConfig, SimProject, Simulator  # noqa: E402

WORKERS = 2
THREADS = 8


def portal_environment(args: argparse.Namespace, workdir: Path, redis_url: str, sim_url: str):
    """The bench settings (bench/portal_processes.py) with the soak's rate limit."""
    return portal_processes.portal_environment(
        database_url=args.database_url,
        redis_url=redis_url,
        sim_url=sim_url,
        workdir=workdir,
        threads=WORKERS * THREADS,
    ) | {"PORTAL_RATE_LIMIT_PER_SPACE": str(args.rate_limit)}


def numbers_text(count: int) -> str:
    return "\n".join(f"+1 415 {200 + i // 10000:03d} {i % 10000:04d}" for i in range(count))


def say(started: float, text: str) -> None:
    print(f"  {time.monotonic() - started:6.1f} s  {text}", flush=True)


def describe(counts: dict[str, int]) -> str:
    return ", ".join(
        f"{name} {counts[name]}"
        for name in ("imported", "failed", "cancelled", "pending", "submitting")
    )


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> list[str]:
    """Run the soak; return the failed checks (none when it passed)."""
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="portal-soak-")))
    redis = portal_processes.RedisServer(workdir)
    stack.callback(redis.stop)
    redis.start()

    sim_project = SimProject(
        project_id=str(uuid.uuid4()),
        token="PT" + uuid.uuid4().hex,
        space_host="soak.signalwire.com",
    )
    # duplicates="allow": a second post of a number creates a second one, so it shows in stats.
    # The simulator enforces the limit too: a breach would also come back as a 429.
    config = SimConfig(
        latency_min_ms=20,
        latency_max_ms=80,
        duplicates="allow",
        rate_limit=args.rate_limit,
        **portal_processes.SOAK_FAULTS,
    )
    simulator = Simulator([sim_project], config, seed=args.seed).start()
    stack.callback(simulator.stop)

    database = portal_processes.ThrowawayDatabase(
        f"portal_soak_{os.getpid()}", os.environ.get("DATABASE_URL")
    )
    database.create()
    stack.callback(database.drop)
    args.database_url = database.url
    env = portal_environment(args, workdir, redis.url, simulator.api_base_url)
    # Before Django and Celery read their configuration: this process publishes the job's
    # first tasks to the soak's Redis.
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from phone_numbers import importing
    from phone_numbers.models import ImportJob, NumberImport, Project
    from phone_numbers.number_input import read_pasted

    call_command("migrate", verbosity=0)
    stack.callback(connections.close_all)

    workers = [portal_processes.worker(f"worker{n}", env, workdir) for n in range(1, WORKERS + 1)]
    beat = portal_processes.beat(env, workdir)
    portal_processes.start_all([*workers, beat], stack)

    project = Project.objects.create(
        name="Soak customer",
        space_host=sim_project.space_host,
        project_id=sim_project.project_id,
        default_country="US",
    )
    project.replace_token(sim_project.token, by=None)

    print(
        f"Soak: {args.numbers:,} numbers; {WORKERS} workers x {THREADS} threads and one beat; "
        f"rate limit {args.rate_limit}/s per Space; seed {args.seed}"
    )
    print(
        "Faults: 10% 429 (Retry-After 1 s), 5% 500, 5% timeouts (half create the number), "
        "2% connection resets; one worker SIGKILLed at 25%, Redis restarted at 50%"
    )
    started = time.monotonic()
    job = importing.start_job(
        project=project,
        created_by=None,
        source=ImportJob.Source.PASTE,
        ticket="soak",
        number_type="longcode",
        capabilities=["sms", "voice", "fax", "mms"],
        lines=read_pasted(numbers_text(args.numbers)),
    )
    failures = []
    killed = redis_restarted = False
    reconnect_offsets: dict[str, int] = {}
    next_report = started + 10
    deadline = started + args.timeout
    while True:
        counts = job.counts()
        unfinished = counts["pending"] + counts["submitting"]
        terminal = counts["total"] - unfinished
        if not unfinished or time.monotonic() > deadline:
            break
        if not killed and terminal >= args.numbers * 0.25:
            victim = workers[0]
            victim.kill()
            killed = True
            say(started, f"{victim.name} killed with SIGKILL ({describe(counts)})")
            victim.start()
            victim.wait_ready()
            say(started, f"{victim.name} restarted")
        elif killed and not redis_restarted and terminal >= args.numbers * 0.5:
            reconnect_offsets = {w.name: len(w.log()) for w in workers}
            redis.stop()
            say(started, f"Redis stopped ({describe(counts)})")
            time.sleep(args.redis_down_seconds)
            redis.start()
            redis_restarted = True
            say(started, f"Redis started again on port {redis.port}, empty")
        if time.monotonic() >= next_report:
            say(started, describe(counts))
            next_report += 10
        time.sleep(0.25)
    wall = time.monotonic() - started

    if not (killed and redis_restarted):
        failures.append("the job finished before the worker kill and the Redis restart")
    for worker in workers:
        if (
            redis_restarted
            and "Connected to redis" not in worker.log()[reconnect_offsets.get(worker.name, 0) :]
        ):
            failures.append(f"{worker.name} did not reconnect to Redis after its restart")

    stats = simulator.stats()
    created = stats["created"].get(sim_project.project_id, {})
    imported = set(
        NumberImport.objects.filter(job=job, status="imported").values_list("number", flat=True)
    )
    in_doubt = set(
        NumberImport.objects.filter(job=job, status="failed", needs_lookup=True).values_list(
            "number", flat=True
        )
    )
    twice = sorted(number for number, times in created.items() if times > 1)
    peak = stats["peak_rate"].get(sim_project.project_id, 0)
    statuses = stats["requests"]

    print(f"Result after {wall:.1f} s:")
    total = counts["imported"] + counts["failed"] + counts["cancelled"]
    print(
        f"  imported {counts['imported']:,} + failed {counts['failed']:,} + cancelled "
        f"{counts['cancelled']:,} = {total:,} of {args.numbers:,}"
    )
    if unfinished:
        failures.append(f"{unfinished} rows are not terminal: {describe(counts)}")
    if total != args.numbers:
        failures.append(f"imported + failed + cancelled = {total}, not {args.numbers}")
    print(f"  simulator created {len(created):,} numbers, {len(twice)} of them more than once")
    if twice:
        failures.append(f"the simulator created {len(twice)} numbers twice, e.g. {twice[:3]}")
    if not imported <= set(created):
        failures.append(f"{len(imported - set(created))} imported rows were never created")
    unknown = set(created) - imported - in_doubt
    if unknown:
        failures.append(f"{len(unknown)} numbers were created but the portal does not know it")
    print(f"  peak request rate {peak}/s, limit PORTAL_RATE_LIMIT_PER_SPACE={args.rate_limit}/s")
    if peak > args.rate_limit:
        failures.append(f"the peak rate {peak}/s exceeded the limit {args.rate_limit}/s")
    for endpoint in sorted(statuses):
        answers = ", ".join(f"{status} x{n}" for status, n in sorted(statuses[endpoint].items()))
        print(f"  simulator {endpoint}: {answers}")
    print(f"  wall time {wall:.1f} s")
    if failures:
        logs = REPO_DIR / "artifacts" / f"soak-{os.getpid()}"
        logs.mkdir(parents=True, exist_ok=True)
        for log in workdir.glob("*.log"):
            shutil.copy(log, logs / log.name)
        print(f"  logs of the workers, beat and Redis: {logs}")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=1000)
    parser.add_argument("--rate-limit", type=int, default=50, help="requests/s per Space")
    parser.add_argument("--seed", type=int, default=8, help="the simulator's random seed")
    parser.add_argument("--redis-down-seconds", type=float, default=2.0)
    parser.add_argument(
        "--timeout", type=float, help="seconds the job may take (default 60 + 0.3 per number)"
    )
    args = parser.parse_args()
    if not 1 <= args.numbers <= 100_000:
        parser.error("--numbers must be from 1 to 100,000")
    args.timeout = args.timeout or 60 + 0.3 * args.numbers

    portal_processes.raise_on_termination()
    # The last resort against a hang outside the bounded loops (a start-up, a stop).
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("the soak hung: global timeout"))
    signal.alarm(int(args.timeout) + 120)
    with contextlib.ExitStack() as stack:
        failures = run(args, stack)
    signal.alarm(0)
    if failures:
        print("FAILED:\n" + "\n".join(f"  - {failure}" for failure in failures))
        sys.exit(1)
    print("OK: every check passed")


if __name__ == "__main__":
    main()

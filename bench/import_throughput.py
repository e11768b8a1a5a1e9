"""How fast a 1,000-number import runs through the portal, beside a script and the ideal.

All three against the same SignalWire simulator (200 ms per request, no faults), in one run:

(a) the portal: preview and confirm through the real views (Django's test client), then two
    Celery worker processes (8 threads each, PORTAL_JOB_CONCURRENCY 16) import the numbers;
    timed from the confirm until every row in the database is terminal;
(b) what a support engineer would otherwise write: a sequential `requests.post` loop;
(c) the ideal for the configured concurrency: numbers x latency / concurrency;
(d) unless --no-limited-run: the portal again, with a Space limit below its threads
    (PORTAL_RATE_LIMIT_PER_SPACE 20; two new workers of 16 threads each, PORTAL_JOB_CONCURRENCY
    32) and 20 s worth of numbers at the limit. It prints the achieved rate over the limit:
    N import requests the simulator counted, (N - 1) / (first request -> last request) while
    the job had pending work, i.e. up to the last request if the job finished, or up to the
    time-out if it did not (then the job still had pending work). And the simulator's peak
    one-second rate (every request to the Space in any one-second window) over the limit.

It runs on a Redis of its own (a free port) and a throwaway PostgreSQL database on
DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432), both gone at the end.

With --profile, py-spy (a dev extra) samples both workers while (a) imports, and the run
prints where their CPU went: the functions most often on the CPU themselves, and the portal's
own functions and Celery's steps with everything they call.

    .venv/bin/python bench/import_throughput.py [--numbers 1000] [--latency-ms 200]
        [--no-limited-run] [--limited-timeout 120] [--profile [--stacks DIR]]
"""

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from cryptography.fernet import Fernet

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

import portal_processes  # noqa: E402

from signalwire_simulator import SimConfig, SimProject, Simulator  # noqa: E402

if TYPE_CHECKING:
    from phone_numbers.models import Project

WORKERS = 2
THREADS = 8
CONCURRENCY = WORKERS * THREADS
TARGET_OVER_IDEAL = 1.10  # issue 16 (1.25 before)
HTMX = {"HX-Request": "true"}
LIMIT = 20
LIMITED_THREADS = 16
LIMITED_CONCURRENCY = WORKERS * LIMITED_THREADS
LIMITED_SECONDS = 20
TARGET_RATE_OVER_LIMIT = 0.95


class TimedSimulator(Simulator):
    """The simulator, also noting when each import request arrived: its stats keep counts only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.import_arrivals: dict[str, list[float]] = {}
        self._arrivals_lock = threading.Lock()

    def handle_api(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, str | None, Any]:
        arrived = time.monotonic()
        endpoint, account_sid, outcome = super().handle_api(method, path, query, headers, body)
        if endpoint == "import" and account_sid is not None:
            with self._arrivals_lock:
                self.import_arrivals.setdefault(account_sid, []).append(arrived)
        return endpoint, account_sid, outcome


def numbers_text(count: int, area: int) -> str:
    return "\n".join(f"+1 {area} {200 + i // 10000:03d} {i % 10000:04d}" for i in range(count))


def sim_project(name: str) -> SimProject:
    return SimProject(
        project_id=str(uuid.uuid4()),
        token="PT" + uuid.uuid4().hex,
        space_host=f"{name}.signalwire.com",
    )


def sequential_script(simulator: Simulator, project: SimProject, count: int) -> float:
    """The loop a support engineer would write; returns its wall time."""
    url = f"{simulator.api_base_url}/Accounts/{project.project_id}/ImportedPhoneNumbers.json"
    started = time.perf_counter()
    for i in range(count):
        response = requests.post(
            url,
            data={
                "number": f"+1628{200 + i // 10000:03d}{i % 10000:04d}",
                "number_type": "longcode",
            },
            auth=(project.project_id, project.token),
            timeout=(3.05, 15),
        )
        response.raise_for_status()
    return time.perf_counter() - started


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="portal-throughput-")))
    redis = portal_processes.RedisServer(workdir)
    stack.callback(redis.stop)
    redis.start()
    portal_sim, script_sim, warmup_sim, limited_sim = (
        sim_project("portal"),
        sim_project("script"),
        sim_project("warmup"),
        sim_project("limited"),
    )
    config = SimConfig(latency_min_ms=args.latency_ms, latency_max_ms=args.latency_ms)
    simulator = TimedSimulator([portal_sim, script_sim, warmup_sim, limited_sim], config).start()
    stack.callback(simulator.stop)
    database = portal_processes.ThrowawayDatabase(
        f"portal_throughput_{os.getpid()}", os.environ.get("DATABASE_URL")
    )
    database.create()
    stack.callback(database.drop)

    # portal.test_settings, as bench/import_preview.py: the views run through Django's test
    # client, which needs plain static files and no HTTPS redirect; the import path (tasks,
    # importing, the client, the rate limiter) is the production one. Every process shares
    # the secrets, so a token encrypted here decrypts in the workers.
    env = portal_processes.clean_environment() | {
        "DJANGO_SETTINGS_MODULE": "portal.test_settings",
        "DATABASE_URL": database.url,
        "CELERY_BROKER_URL": redis.url,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "PORTAL_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PORTAL_VAR_DIR": str(workdir / "var"),
        "PORTAL_LOG_LEVEL": "WARNING",
        "SIGNALWIRE_BASE_URL": simulator.api_base_url,
        # Production mode refuses a base URL unless this allows it.
        "PORTAL_ALLOW_SIGNALWIRE_BASE_URL": "true",
        "PORTAL_JOB_CONCURRENCY": str(CONCURRENCY),
        # It measures the import of thousands of numbers, not a second admin's approval.
        "PORTAL_APPROVAL_THRESHOLD": "0",
        # High enough never to bind: this measures the import path, not the limit.
        "PORTAL_RATE_LIMIT_PER_SPACE": "1000",
    }
    os.environ.update(env)

    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from phone_numbers import importing
    from phone_numbers.models import UNFINISHED_STATUSES, ImportJob, NumberImport, Project
    from phone_numbers.number_input import read_pasted
    from phone_numbers.roles import SUPPORT

    call_command("migrate", verbosity=0)
    stack.callback(connections.close_all)
    setup_test_environment()
    workers = [
        portal_processes.worker(f"worker{n}", env, workdir, THREADS, args.worker_args.split())
        for n in (1, 2)
    ]
    portal_processes.start_all(workers, stack)

    def make_project(sim: SimProject, name: str) -> Project:
        project = Project.objects.create(
            name=name,
            space_host=sim.space_host,
            project_id=sim.project_id,
            default_country="US",
        )
        project.replace_token(sim.token, by=None)
        return project

    def wait_until_terminal(job: ImportJob) -> None:
        deadline = time.monotonic() + args.timeout
        unfinished = NumberImport.objects.filter(job=job, status__in=UNFINISHED_STATUSES)
        while unfinished.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the job did not finish in {args.timeout:.0f} s")
            time.sleep(0.02)

    # Warm-up, not timed: every worker thread opens its database and HTTP connections once.
    warmup = importing.start_job(
        project=make_project(warmup_sim, "Warm-up"),
        created_by=None,
        source=ImportJob.Source.PASTE,
        ticket="",
        number_type="longcode",
        capabilities=["sms"],
        lines=read_pasted(numbers_text(4 * CONCURRENCY, 510)),
    )
    wait_until_terminal(warmup)

    user = User.objects.create_user("bench")
    user.groups.add(Group.objects.get(name=SUPPORT))
    client = Client()
    client.force_login(user)
    project = make_project(portal_sim, "Throughput customer")
    url = reverse("phone_numbers:import_new")
    data = {
        "project": project.pk,
        "numbers": numbers_text(args.numbers, 415),
        "number_type": "longcode",
        "capabilities": ["sms", "voice", "fax", "mms"],
    }
    started = time.perf_counter()
    response = client.post(url, data, headers=HTMX)
    preview_seconds = time.perf_counter() - started
    assert len(response.context["preview"].importable) == args.numbers
    profile_dir = args.stacks or workdir
    profilers = [Profiler(worker, profile_dir) for worker in workers] if args.profile else []
    cpu_before = cpu_seconds(workers)
    started = time.perf_counter()
    response = client.post(url, data | {"confirm": response.context["digest"]}, headers=HTMX)
    confirm_seconds = time.perf_counter() - started
    assert "HX-Redirect" in response, "the confirm did not start a job"
    job = ImportJob.objects.get(project=project)
    wait_until_terminal(job)
    portal_seconds = time.perf_counter() - started
    cpu_after = cpu_seconds(workers)
    samples = sum((profiler.stop() for profiler in profilers), Counter())
    counts = job.counts()
    created = simulator.stats()["created"].get(portal_sim.project_id, {})
    assert counts["imported"] == args.numbers, counts
    assert len(created) == args.numbers and set(created.values()) == {1}

    timeline = where_the_time_goes(job, started, args.latency_ms / 1000)
    timeline["task run time as Celery logs it, minus latency"] = [
        float(seconds) - args.latency_ms / 1000
        for worker in workers
        for seconds in re.findall(
            r"import_phone_number\[[^]]+\] succeeded in ([0-9.]+)s", worker.log()
        )
    ][4 * CONCURRENCY :]

    if args.sequential:
        script_seconds = sequential_script(simulator, script_sim, args.sequential)
        script_seconds *= args.numbers / args.sequential
    ideal_seconds = args.numbers * args.latency_ms / 1000 / CONCURRENCY

    print(
        f"{args.numbers:,} numbers, simulator latency {args.latency_ms} ms, no faults; "
        f"{WORKERS} workers x {THREADS} threads, PORTAL_JOB_CONCURRENCY {CONCURRENCY}, "
        f"{os.cpu_count()} CPU cores"
    )
    print(f"  (a) portal, confirm to all rows terminal  {portal_seconds:7.1f} s")
    print(f"        of which the confirm request        {confirm_seconds:7.2f} s")
    print(f"        (the preview before it took         {preview_seconds:7.2f} s)")
    if args.sequential:
        sampled = (
            ""
            if args.sequential == args.numbers
            else f" (x{args.numbers / args.sequential:g} of {args.sequential})"
        )
        print(f"  (b) sequential requests.post loop         {script_seconds:7.1f} s{sampled}")
    print(f"  (c) ideal, N x latency / {CONCURRENCY}             {ideal_seconds:7.1f} s")
    over_ideal = portal_seconds / ideal_seconds
    print(
        f"  portal / ideal = {over_ideal:.2f}x (target {TARGET_OVER_IDEAL}x: "
        f"{'met' if over_ideal <= TARGET_OVER_IDEAL else 'MISSED'})"
    )
    if args.sequential:
        print(f"  sequential / portal = {script_seconds / portal_seconds:.1f}x faster")
        print(f"  sequential / ideal = {script_seconds / ideal_seconds:.1f}x")
    print(f"  throughput {args.numbers / portal_seconds:.1f} numbers/s")
    workers_cpu = cpu_after["workers"] - cpu_before["workers"]
    machine_busy = cpu_after["machine"] - cpu_before["machine"]
    print(
        f"  CPU: the workers used {workers_cpu:.1f} s ({workers_cpu / args.numbers * 1000:.1f} ms "
        f"per number); the machine was busy {machine_busy / portal_seconds / os.cpu_count():.0%} "
        f"of its {os.cpu_count()} cores"
    )
    print("Where the portal's time goes (per number, median / 90th percentile, ms):")
    for name, values in timeline.items():
        print(f"  {name:<44} {percentile(values, 50):7.1f} / {percentile(values, 90):7.1f}")
    if args.profile:
        print_profile(samples, workers_cpu / args.numbers * 1000)

    if args.limited_run:
        # Their threads would take the limited run's tasks at the other rate limit.
        for process in workers:
            process.stop()
        project = make_project(limited_sim, "Limited customer")
        limited_run(args, simulator, project, env, workdir, stack)


def limited_run(
    args: argparse.Namespace,
    simulator: TimedSimulator,
    project: "Project",
    env: dict[str, str],
    workdir: Path,
    stack: contextlib.ExitStack,
) -> None:
    """(d): a Space limit below the worker threads; bounded by --limited-timeout."""
    from django.test import override_settings

    from phone_numbers import importing
    from phone_numbers.models import UNFINISHED_STATUSES, ImportJob, NumberImport
    from phone_numbers.number_input import read_pasted

    limited_env = env | {
        "PORTAL_RATE_LIMIT_PER_SPACE": str(LIMIT),
        "PORTAL_JOB_CONCURRENCY": str(LIMITED_CONCURRENCY),
    }
    workers = [
        portal_processes.worker(
            f"limited{n}", limited_env, workdir, LIMITED_THREADS, args.worker_args.split()
        )
        for n in (1, 2)
    ]
    portal_processes.start_all(workers, stack)
    count = LIMIT * LIMITED_SECONDS
    started = time.monotonic()
    # The first window of tasks is sent from this process, set up with run (a)'s concurrency.
    with override_settings(PORTAL_JOB_CONCURRENCY=LIMITED_CONCURRENCY):
        job = importing.start_job(
            project=project,
            created_by=None,
            source=ImportJob.Source.PASTE,
            ticket="",
            number_type="longcode",
            capabilities=["sms"],
            lines=read_pasted(numbers_text(count, 717)),
        )
    unfinished = NumberImport.objects.filter(job=job, status__in=UNFINISHED_STATUSES)
    deadline = started + args.limited_timeout
    while (is_unfinished := unfinished.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    ended = time.monotonic()
    terminal = count - unfinished.count()

    stats = simulator.stats()
    project_id = str(project.project_id)
    sent = sum(stats["import_requests"].get(project_id, {}).values())
    arrivals = sorted(simulator.import_arrivals.get(project_id, []))
    peak = stats["peak_rate"].get(project_id, 0)
    print(
        f"(d) rate-limited: {count} numbers, PORTAL_RATE_LIMIT_PER_SPACE {LIMIT}, {WORKERS} "
        f"workers x {LIMITED_THREADS} threads, PORTAL_JOB_CONCURRENCY {LIMITED_CONCURRENCY}, "
        f"simulator latency {args.latency_ms} ms"
    )
    if is_unfinished:
        print(
            f"  not finished: {terminal} of {count} terminal after {ended - started:.1f} s "
            f"(--limited-timeout {args.limited_timeout:.0f} s)"
        )
    else:
        print(f"  all {count} terminal in {ended - started:.1f} s (ideal {count / LIMIT:.1f} s)")
    if sent < 2 or not arrivals:
        print(f"  the simulator saw {sent} import requests: no rate to measure")
        rate = 0.0
    else:
        # Unfinished, the job still had pending work until the time-out.
        span_end = ended if is_unfinished else arrivals[-1]
        span = span_end - arrivals[0]
        rate = (sent - 1) / span
        print(
            f"  {sent} import requests, first to {'time-out' if is_unfinished else 'last'} "
            f"{span:.1f} s: achieved rate {rate:.1f}/s"
        )
    ratio = rate / LIMIT
    print(
        f"  achieved rate / limit = {ratio:.2f} (target >= {TARGET_RATE_OVER_LIMIT}: "
        f"{'met' if ratio >= TARGET_RATE_OVER_LIMIT else 'MISSED'})"
    )
    print(
        f"  peak one-second rate / limit = {peak} / {LIMIT} = {peak / LIMIT:.2f} "
        f"({'within' if peak <= LIMIT else 'OVER'} the limit)"
    )


class Profiler:
    """py-spy sampling one worker process from outside it, until stop() (SIGINT) writes the
    stacks it saw as collapsed text. Only the thread holding the GIL is sampled: one waiting
    for the database, Redis or SignalWire has let go of it, and on a busy machine py-spy's own
    test of idleness counts such a thread, runnable but not running, as busy."""

    RATE = 250

    def __init__(self, worker: portal_processes.CeleryProcess, directory: Path) -> None:
        py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=Path(sys.executable).parent)
        if py_spy is None:
            sys.exit("--profile needs py-spy: pip install py-spy (a dev extra)")
        self.output = directory / f"{worker.name}.stacks"
        self.process = subprocess.Popen(
            [py_spy, "record", "--pid", str(worker.process.pid), "--rate", str(self.RATE)]
            + ["--gil", "--format", "raw", "--nonblocking", "--output", str(self.output)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> Counter:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        stacks: Counter = Counter()
        for line in self.output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            stacks[stack] += int(count)
        return stacks


def print_profile(stacks: Counter, cpu_ms_per_number: float, top: int = 10) -> None:
    """Where the samples were: inside the task or in Celery around it; by package (of the
    innermost frame); the functions most often innermost (their own code); and the portal's
    functions with everything they call."""
    total = sum(stacks.values())
    if not total:
        print("The profile holds no samples.")
        return
    own: Counter = Counter()
    packages: Counter = Counter()
    inclusive: Counter = Counter()
    in_task = 0
    for stack, count in stacks.items():
        # "function (package/module.py:line)": without the line, a function is one entry.
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        own[frames[-1]] += count
        packages[re.sub(r".*\(([^/.]+).*", r"\1", frames[-1])] += count
        for frame in set(frames):
            if "(phone_numbers/" in frame:
                inclusive[frame] += count
        in_task += count * any(frame.startswith("import_phone_number ") for frame in frames)

    def show(title: str, counter: Counter) -> None:
        print(f"  {title}:")
        for name, count in counter.most_common(top):
            share = count / total
            print(f"    {share:6.1%}  {share * cpu_ms_per_number:5.2f} ms  {name}")

    print(
        f"Where the workers' CPU goes (py-spy, {total:,} samples holding the GIL at "
        f"{Profiler.RATE}/s; share of samples, and of the {cpu_ms_per_number:.1f} ms a number):"
    )
    show(
        "in the task, or in Celery around it (receiving, acknowledging, the event loop)",
        Counter({"import_phone_number": in_task, "Celery around it": total - in_task}),
    )
    show("by package (innermost frame)", packages)
    show("by function (innermost frame)", own)
    show("the portal's functions, with what they call", inclusive)


def cpu_seconds(workers: list) -> dict[str, float]:
    """CPU seconds used so far by the worker processes, and by the whole machine (/proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = 0.0
    for worker in workers:
        fields = Path(f"/proc/{worker.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        used += (int(fields[11]) + int(fields[12])) / ticks
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(value) for value in cpu) - int(cpu[3]) - int(cpu[4])
    return {"workers": used, "machine": busy / ticks}


def percentile(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, len(ordered) * pct // 100)] * 1000 if ordered else 0.0


def where_the_time_goes(job, confirmed_at: float, latency: float) -> dict[str, list[float]]:
    """Per number, from the rows' own timestamps: queued -> claimed -> answered -> done."""
    from phone_numbers.models import ImportAttempt

    rows = list(job.numbers.values_list("pk", "queued_at", "claimed_at", "imported_at"))
    finished = dict(
        ImportAttempt.objects.filter(number_import__job=job).values_list(
            "number_import_id", "finished_at"
        )
    )
    timeline: dict[str, list[float]] = {
        "sent -> task claimed the row (broker, prefetch)": [],
        "claimed -> answer recorded, minus latency": [],
        "answer recorded -> attempt row written": [],
    }
    for pk, queued, claimed, imported in rows:
        timeline["sent -> task claimed the row (broker, prefetch)"].append(
            (claimed - queued).total_seconds()
        )
        timeline["claimed -> answer recorded, minus latency"].append(
            (imported - claimed).total_seconds() - latency
        )
        timeline["answer recorded -> attempt row written"].append(
            (finished[pk] - imported).total_seconds()
        )
    # The window refill: when a number is done, how long until the next one is sent.
    done = sorted(finished.values())
    sent = sorted(queued for _, queued, _, _ in rows)[CONCURRENCY:]
    timeline["a number done -> the next one sent"] = [
        (next_sent - was_done).total_seconds()
        for was_done, next_sent in zip(done, sent, strict=False)
    ]
    return timeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument(
        "--sequential",
        type=int,
        help="numbers the sequential loop posts (default all; fewer are scaled up; 0 skips it)",
    )
    parser.add_argument(
        "--worker-args", default="", help='more worker options, e.g. "--prefetch-multiplier 2"'
    )
    parser.add_argument("--timeout", type=float, default=600, help="seconds the job may take")
    parser.add_argument(
        "--limited-run",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"run (d), the Space limit {LIMIT}/s below {LIMITED_CONCURRENCY} threads",
    )
    parser.add_argument(
        "--limited-timeout",
        type=float,
        default=6 * LIMITED_SECONDS,
        help="seconds (d) may take before it reports how far it got",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the workers with py-spy during (a) and print where their CPU went",
    )
    parser.add_argument(
        "--stacks",
        type=Path,
        help="with --profile, keep py-spy's collapsed stacks in this folder (flamegraph.pl)",
    )
    args = parser.parse_args()
    if args.sequential is None:
        args.sequential = args.numbers
    portal_processes.raise_on_termination()
    with contextlib.ExitStack() as stack:
        run(args, stack)


if __name__ == "__main__":
    main()

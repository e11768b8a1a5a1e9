"""What the end-of-job check costs a worker per number (issue 18), on PostgreSQL.

A worker that finishes a number asks whether its job has ended (notifications.notify_if_ended:
one conditional UPDATE of the job). Side by side, in the same run and the same process: the
number task (tasks.import_phone_number, SignalWire answered by a fake in this process) with
that check, and without it (the alternative: only beat's sweep would see jobs end, up to
PORTAL_RECOVERY_INTERVAL_SECONDS late). Prints the task's CPU and wall time per number, p50
and mean, for jobs of --size numbers, rounds interleaved so load affects both alike.

Uses its own database (BENCH_DATABASE_URL, default portal_bench_notify), created and
migrated on first run.

    .venv/bin/python bench/job_end_check.py [--size 2000] [--numbers 1000] [--rounds 3]
"""

import argparse
import os
import statistics
import time

from bench_database import set_up_django

BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_notify"
)


set_up_django(BENCH_DATABASE_URL)

import uuid  # noqa: E402

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from phone_numbers import importing, notifications, tasks  # noqa: E402
from phone_numbers.models import ImportJob, NumberImport, Project  # noqa: E402
from tests.fakes import FakeSignalWire  # noqa: E402


class Accepting(FakeSignalWire):
    """Imports at once, remembering nothing: the bench measures the portal, not the fake."""

    def import_number(self, number, number_type, capabilities=None, deadline=None, pace=None):
        if pace is not None:
            pace()
        return super().import_number(number, number_type, capabilities)


def new_job(project: Project, size: int) -> ImportJob:
    job = ImportJob.objects.create(
        project=project, source="paste", number_type="longcode", capabilities=["sms"]
    )
    first = ImportJob.objects.count() * 10_000
    NumberImport.objects.bulk_create(
        NumberImport(
            job=job,
            project=project,
            number=f"+1415{first + index:07d}",
            number_type="longcode",
            capabilities=["sms"],
        )
        for index in range(size)
    )
    return job


def run_tasks(job: ImportJob, count: int) -> tuple[list[float], list[float]]:
    """CPU and wall seconds of each of `count` number tasks of the job."""
    cpu, wall = [], []
    for pk in job.numbers.order_by("pk").values_list("pk", flat=True)[:count]:
        started_cpu, started = time.process_time(), time.perf_counter()
        tasks.import_phone_number(pk)
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000, help="numbers in each job")
    parser.add_argument("--numbers", type=int, default=1000, help="tasks timed per job")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    call_command("migrate", verbosity=0)
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 1_000_000
    settings.PORTAL_JOB_CONCURRENCY = 16
    project = Project.objects.create(
        name="Bench",
        space_host="bench.signalwire.com",
        project_id=uuid.uuid4(),
        default_country="US",
    )
    project.replace_token("PTbench-token-0001", by=None)
    fake = Accepting()
    importing.client_for = lambda project: fake
    tasks.import_phone_number.apply_async = lambda *args, **kwargs: None
    with_check = notifications.notify_if_ended

    results: dict[str, tuple[list[float], list[float]]] = {"with": ([], []), "without": ([], [])}
    for _ in range(options.rounds):
        for variant in ("with", "without"):
            notifications.notify_if_ended = with_check if variant == "with" else lambda pk: False
            cpu, wall = run_tasks(new_job(project, options.size), options.numbers)
            results[variant][0].extend(cpu)
            results[variant][1].extend(wall)
    notifications.notify_if_ended = with_check

    print(f"{options.rounds} rounds of {options.numbers} number tasks, jobs of {options.size}")
    print(f"load average: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print(f"{'task':<30} {'CPU p50':>9} {'CPU mean':>9} {'wall p50':>9} {'wall mean':>10}")
    for variant, label in (("with", "with the end check"), ("without", "without (beat only)")):
        cpu, wall = ([1000 * seconds for seconds in figures] for figures in results[variant])
        print(
            f"{label:<30} {statistics.median(cpu):>7.2f}ms {statistics.mean(cpu):>7.2f}ms"
            f" {statistics.median(wall):>7.2f}ms {statistics.mean(wall):>8.2f}ms"
        )
    extra = statistics.mean(results["with"][1]) - statistics.mean(results["without"][1])
    print(f"the end check adds {1000 * extra:.2f} ms of wall time per number (mean)")


if __name__ == "__main__":
    main()

"""How fast every page answers at a million numbers, whole view and template, on PostgreSQL.

Uses (and on first run fills: several minutes) the database of bench/search_numbers.py,
BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench): 1,000,000
number imports in 1,000 jobs, one of them of 50,000 numbers and still running, 200 projects
and 100,000 audit entries. Each page is requested through Django's test client (view,
template, middleware) --runs times, and its p50/p95 printed beside the same page through the
old code path, in the same run, so that each figure has its ratio. Then the queries each page
makes, at this size and on a second, small database (BENCH_SMALL_DATABASE_URL, seeded with
3,000 numbers): the same count at both sizes means it does not grow with the data.

    .venv/bin/python bench/pages.py [--runs 20] [--seed-only]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

from bench_database import ensure_database, set_up_django

BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench"
)
SMALL_DATABASE_URL = os.environ.get(
    "BENCH_SMALL_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_small"
)
NUMBERS = 1_000_000
BIG_JOB = 50_000
# The last jobs are small, so that 1,000 jobs hold the million numbers with the big one.
SMALL_JOBS, SMALL_JOB_SIZE = 50, 20
AUDIT_ENTRIES = 100_000
# The small database of the query counts: the same shape, a few thousand rows.
SMALL_NUMBERS, SMALL_BIG_JOB, SMALL_AUDIT_ENTRIES = 3_000, 500, 1_000
HTMX = {"HX-Request": "true"}


ensure_database(SMALL_DATABASE_URL)
set_up_django(BENCH_DATABASE_URL)

from django import forms  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.decorators import permission_required  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.paginator import Paginator  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count, Q  # noqa: E402
from django.shortcuts import render  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402

from phone_numbers import search, urls, views  # noqa: E402
from phone_numbers.forms import QuickSelect  # noqa: E402
from phone_numbers.management.commands import seed_demo_numbers  # noqa: E402
from phone_numbers.models import (  # noqa: E402
    AuditAction,
    AuditEntry,
    ImportJob,
    ImportStatus,
    NumberImport,
)


def seed(numbers: int, big_job: int, small_jobs: int, audit_entries: int) -> None:
    """Fill the current database up to its sizes; what is there already is kept."""
    call_command("migrate", verbosity=0)
    seeded = NumberImport.objects.count()
    bulk = numbers - big_job - small_jobs * SMALL_JOB_SIZE
    if seeded < bulk:
        print(f"Seeding {bulk - seeded:,} number imports in jobs of 1,000…", flush=True)
        call_command("seed_demo_numbers", count=bulk - seeded, projects=200)
    if not ImportJob.objects.filter(ticket="BENCH-BIG").exists():
        print(f"Seeding the job of {big_job:,} numbers…", flush=True)
        _seed_jobs(count=big_job, size=big_job)
        # Still running: its page polls, as a job being imported does.
        big = ImportJob.objects.order_by("-pk").first()
        ImportJob.objects.filter(pk=big.pk).update(ticket="BENCH-BIG", paused_at=None)
        _seed_jobs(count=small_jobs * SMALL_JOB_SIZE, size=SMALL_JOB_SIZE)
    missing = audit_entries - AuditEntry.objects.count()
    if missing > 0:
        print(f"Seeding {missing:,} audit entries…", flush=True)
        jobs = list(ImportJob.objects.values_list("pk", "project_id"))
        actions = [AuditAction.JOB_CONFIRMED, AuditAction.LOGIN, AuditAction.JOB_EXPORTED]
        AuditEntry.objects.bulk_create(
            (
                AuditEntry(
                    username="sam",
                    action=actions[index % len(actions)],
                    job_id=jobs[index % len(jobs)][0],
                    project_id=jobs[index % len(jobs)][1],
                    ip_address="127.0.0.1",
                    changes={"numbers": index % 1000},
                )
                for index in range(missing)
            ),
            batch_size=5000,
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _seed_jobs(count: int, size: int) -> None:
    default = seed_demo_numbers.NUMBERS_PER_JOB
    seed_demo_numbers.NUMBERS_PER_JOB = size
    try:
        call_command("seed_demo_numbers", count=count, projects=200, seed=size)
    finally:
        seed_demo_numbers.NUMBERS_PER_JOB = default


def old_job_list(request):
    """The jobs list as it was: every job's numbers aggregated, to show fifty jobs."""
    jobs = (
        ImportJob.objects.annotate(**OLD_COUNTS)
        .select_related("project", "created_by")
        .order_by("-created_at", "-pk")
    )
    page = Paginator(jobs, views.JOBS_PAGE_SIZE).get_page(request.GET.get("page"))
    _old_counts_shown(page)
    return render(request, "phone_numbers/job_list.html", {"page": page})


def old_project_jobs(project):
    """The project page's jobs as they were: all the project's jobs' numbers aggregated."""
    jobs = project.jobs.annotate(**OLD_COUNTS).select_related("created_by")
    return jobs.order_by("-created_at", "-pk")


def _old_counts_shown(page) -> None:
    for job in page:
        counts = {status: getattr(job, f"old_{status}") for status in ImportStatus.values}
        job.listed_counts = counts | {"total": job.old_total, "retrying": job.old_retrying}
        job.shown_status = job.status_for(job.listed_counts)
        job.shown_status_text = job.status_text(job.listed_counts)


OLD_COUNTS = {
    f"old_{status}": Count("numbers", filter=Q(numbers__status=status))
    for status in ImportStatus.values
} | {
    "old_total": Count("numbers"),
    "old_retrying": Count(
        "numbers",
        filter=Q(numbers__status="pending", numbers__attempts__gt=0)
        | Q(numbers__status="submitting", numbers__attempts__gt=1),
    ),
}
RETRYING = Q(status="pending", attempts__gt=0) | Q(status="submitting", attempts__gt=1)


@contextmanager
def view_swapped(name: str, view) -> Iterator[None]:
    """The URL named `name` served by `view` (kept behind the same permission) meanwhile."""
    pattern = next(p for p in urls.urlpatterns if p.name == name)
    today = pattern.callback
    pattern.callback = permission_required("phone_numbers.view_importjob", raise_exception=True)(
        view
    )
    try:
        yield
    finally:
        pattern.callback = today


@contextmanager
def project_jobs_swapped() -> Iterator[None]:
    """The project page counting its jobs' numbers as it did (old_project_jobs)."""
    real = views._show_counts

    def old(jobs_page) -> None:
        project = jobs_page.object_list[0].project if jobs_page.object_list else None
        if project is None:
            return real(jobs_page)
        old_page = Paginator(old_project_jobs(project), views.PROJECT_JOBS_PAGE_SIZE).get_page(
            jobs_page.number
        )
        _old_counts_shown(old_page)
        jobs_page.object_list = list(old_page.object_list)

    views._show_counts = old
    try:
        yield
    finally:
        views._show_counts = real


def pages() -> list[tuple[str, str, dict]]:
    """(name, URL, headers) of every page and fragment, with this database's ids."""
    big = ImportJob.objects.get(ticket="BENCH-BIG")
    number = big.numbers.filter(status="failed").order_by("pk").first()
    imported = NumberImport.objects.filter(status="imported").order_by("-pk").first()
    user = ImportJob.objects.exclude(created_by=None).values_list("created_by", flat=True)[0]
    project = big.project
    job_url = f"/jobs/{big.pk}/"
    digits = imported.number[-7:-3]
    first = ImportJob.objects.order_by("pk").first()
    return [
        ("/ numbers list", "/", {}),
        ("/ rows fragment", "/", HTMX),
        ("/ page 3", "/?page=3", {}),
        ("/?q= 4 digits", f"/?q={digits}", {}),
        ("/?q= (415) 555 form", f"/?q=({imported.number[2:5]}) {imported.number[5:8]}", {}),
        ("/?q= +44 20 form", f"/?q=%2B{imported.number[1:3]} {imported.number[3:5]}", {}),
        ("/?q= project name", f"/?q={project.name[-8:]}", {}),
        ("/?q= ticket", f"/?q={big.ticket}", {}),
        ("/?q= other project", f"/?q={first.project.name[-8:]}", {}),
        ("/?q= old job's ticket", f"/?q={first.ticket}", {}),
        ("/?q= digits, fragment", f"/?q={digits}", HTMX),
        ("/ project + status", f"/?project={project.pk}&status=failed", {}),
        ("/ type + capability", "/?number_type=tollfree&capability=mms", {}),
        ("/ imported by", f"/?imported_by={user}", {}),
        ("/ any status", "/?status=", {}),
        ("/jobs/", "/jobs/", {}),
        ("/jobs/?page=2", "/jobs/?page=2", {}),
        ("job page (50,000)", job_url, {}),
        ("job live fragment", job_url, HTMX),
        ("job failed rows", f"{job_url}?status=failed", {}),
        ("job failed, page 5", f"{job_url}?status=failed&page=5", HTMX),
        ("/projects/", "/projects/", {}),
        ("/projects/ search rows", "/projects/?q=Acme", HTMX),
        ("project page", f"/projects/{project.pk}/", {}),
        ("project connection", f"/projects/{project.pk}/", HTMX),
        ("/audit/", "/audit/", {}),
        ("/audit/ filtered", "/audit/?action=login", {}),
        ("/numbers/<pk>/", f"/numbers/{number.pk}/", {}),
        ("where is this number", f"/numbers/where/?number={imported.number}", {}),
        ("/imports/new/", "/imports/new/", {}),
        ("numbers export, 1st bytes", f"/numbers/export.csv?q={digits}", {}),
        ("job export, 1st bytes", f"{job_url}export.csv", {}),
        ("audit export, 1st bytes", "/audit/export.csv", {}),
    ]


@contextmanager
def old_job_indexes() -> Iterator[None]:
    """The number imports' indexes as they were before migrations 0013 and 0017 (the job's
    own, and job and status) and the job's counts as they were, in a transaction rolled back
    after."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE INDEX bench_job ON phone_numbers_numberimport (job_id);"
                "CREATE INDEX bench_job_status ON phone_numbers_numberimport (job_id, status);"
                "DROP INDEX numberimport_job_rows; DROP INDEX numberimport_job_status_rows;"
                "ANALYZE phone_numbers_numberimport"
            )
        with patch.object(ImportJob, "counts_of", staticmethod(old_counts_of)):
            yield
        transaction.set_rollback(True)


OLD_TEMPLATES = Path(__file__).resolve().parent / "old_templates"


@contextmanager
def old_job_page() -> Iterator[None]:
    """The job page as it was before issue 16: the indexes and counts of old_job_indexes, an
    "Edit and retry" form written in every failed row (bench/old_templates), and the session
    saved on every request."""
    templates = [settings.TEMPLATES[0] | {"DIRS": [OLD_TEMPLATES, *settings.TEMPLATES[0]["DIRS"]]}]
    with (
        old_job_indexes(),
        override_settings(TEMPLATES=templates, SESSION_SAVE_EVERY_REQUEST=True),
    ):
        yield


def old_counts_of(job_ids: list[int]) -> dict[int, dict[str, int]]:
    """ImportJob.counts() as it was (one job), counting ids, which the indexes do not hold."""
    (job,) = job_ids
    rows = (
        NumberImport.objects.filter(job=job)
        .values("status")
        .annotate(n=Count("pk"), retrying=Count("pk", filter=RETRYING))
        .order_by()
    )
    counts = dict.fromkeys(ImportStatus.values, 0) | {row["status"]: row["n"] for row in rows}
    counts["total"] = sum(counts.values())
    counts["retrying"] = sum(row["retrying"] for row in rows)
    return {job: counts}


@contextmanager
def django_selects() -> Iterator[None]:
    """Every select rendered by Django's own templates, as before QuickSelect."""
    with patch.object(QuickSelect, "render", forms.Select.render):
        yield


@contextmanager
def old_text_search() -> Iterator[None]:
    """A text search as it was: one OR of the projects, jobs, sids and friendly names, whose
    plan search.newest_page chooses by first collecting up to 20,000 of the matches."""
    with patch.object(search, "newest_by_text", lambda given, count: None):
        yield


# Each page that changed, and how to serve it as it was, in the same run.
OLD_PATHS = {
    "/ numbers list": django_selects,
    "/ page 3": django_selects,
    "/?q= 4 digits": django_selects,
    "/?q= project name": old_text_search,
    "/?q= ticket": old_text_search,
    "/?q= other project": old_text_search,
    "/?q= old job's ticket": old_text_search,
    "/ project + status": django_selects,
    "/jobs/": lambda: view_swapped("job_list", old_job_list),
    "/jobs/?page=2": lambda: view_swapped("job_list", old_job_list),
    "job page (50,000)": old_job_page,
    "job live fragment": old_job_page,
    "job failed rows": old_job_page,
    "job failed, page 5": old_job_page,
    "project page": project_jobs_swapped,
    "/audit/": django_selects,
    "/imports/new/": django_selects,
}


def get(client: Client, url: str, headers: dict) -> None:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.status_code)
    if response.streaming:
        next(iter(response.streaming_content))  # the first bytes, as a browser sees them start
        response.close()
    else:
        assert response.content


def timed(client: Client, url: str, headers: dict, runs: int) -> list[float]:
    get(client, url, headers)  # warm: templates compiled, rows in PostgreSQL's memory
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        get(client, url, headers)
        seconds.append(time.perf_counter() - started)
    return seconds


def queries(client: Client, url: str, headers: dict) -> int:
    get(client, url, headers)
    with CaptureQueriesContext(connection) as captured:
        get(client, url, headers)
    return len(captured)


def logged_in_client() -> Client:
    user, _ = User.objects.get_or_create(username="bench-admin")
    user.is_superuser = True
    user.save()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def figures(seconds: list[float]) -> str:
    p50, p95 = statistics.median(seconds) * 1000, percentile(seconds, 0.95) * 1000
    return f"{p50:>7.1f} {p95:>7.1f}"


def query_counts() -> dict[str, int]:
    client = logged_in_client()
    return {name: queries(client, url, headers) for name, url, headers in pages()}


def small_database_counts() -> dict[str, int]:
    """Queries per page on the small database, from a process of its own."""
    environment = os.environ | {"BENCH_DATABASE_URL": SMALL_DATABASE_URL}
    output = subprocess.run(
        [sys.executable, __file__, "--queries-only"],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument("--queries-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.queries_only:
        seed(SMALL_NUMBERS, SMALL_BIG_JOB, SMALL_JOBS, SMALL_AUDIT_ENTRIES)
        print(json.dumps(query_counts()))
        return
    started = time.perf_counter()
    seed(NUMBERS, BIG_JOB, SMALL_JOBS, AUDIT_ENTRIES)
    print(f"Database ready in {time.perf_counter() - started:.0f} s", flush=True)
    if args.seed_only:
        return
    small = small_database_counts()
    large = query_counts()
    client = logged_in_client()
    print(f"Timing {len(pages())} pages × {args.runs} runs, each beside its old path…", flush=True)
    # Page by page, the old path right after today's: the machine's load drifts over minutes.
    today, old = {}, {}
    for name, url, headers in pages():
        today[name] = timed(client, url, headers, args.runs)
        if name in OLD_PATHS:
            with OLD_PATHS[name]():
                old[name] = timed(client, url, headers, args.runs)

    print(
        f"\n{NumberImport.objects.count():,} number imports, {ImportJob.objects.count():,} jobs, "
        f"{AuditEntry.objects.count():,} audit entries; {args.runs} runs a page; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'page':<27} {'p50 ms':>7} {'p95 ms':>7}   {'old p50':>7} {'p95':>7} {'ratio':>6}"
        f"   {'queries':>7} {'at 3k':>6}"
    )
    for name, _, _ in pages():
        line = f"{name:<27} {figures(today[name])}"
        if name in old:
            ratio = statistics.median(old[name]) / statistics.median(today[name])
            line += f"   {figures(old[name])} {ratio:>5.1f}×"
        else:
            line += " " * 27
        line += f"   {large[name]:>7} {small[name]:>6}"
        print(line)
    print("(old: the page as it was, in this run; queries: at this size and on a database")
    print(f" of {SMALL_NUMBERS:,} numbers; fragments are htmx requests)")


if __name__ == "__main__":
    main()

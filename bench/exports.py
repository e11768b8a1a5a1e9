"""How fast the CSV exports write 10,000 and 50,000 rows, beside the code before, in one run.

Uses (and on first run fills, about a minute) a database of its own,
BENCH_EXPORTS_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench_exports):
a job of 10,000 numbers and one of 50,000, among 40,000 others, seeded by seed_demo_numbers.
Each export is requested through Django's test client (middleware, view, the whole streamed
body read) --runs times: a job's CSV, and the numbers list's CSV of a search for that job's
ticket (every status). Right after, the same request through the code before (the rows read
as model instances with their project, job and person, every cell a function of the
instance, one line a piece), whose file must be byte for byte the same. It prints the time
and rows per second of each, their ratio, and how many pieces each response is written in
(gunicorn writes each piece to the socket with a call of its own).

    .venv/bin/python bench/exports.py [--runs 5]
"""

import argparse
import csv
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from unittest.mock import patch

from bench_database import set_up_django

DATABASE_URL = os.environ.get(
    "BENCH_EXPORTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_exports"
)
SIZES = (10_000, 50_000)
OTHER_NUMBERS = 40_000


set_up_django(DATABASE_URL)

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import QuerySet  # noqa: E402
from django.http import StreamingHttpResponse  # noqa: E402
from django.test import Client  # noqa: E402

from phone_numbers import exports  # noqa: E402
from phone_numbers.management.commands import seed_demo_numbers  # noqa: E402
from phone_numbers.models import ImportJob, ImportStatus, NumberImport  # noqa: E402


def seed() -> None:
    """Fill the database up to its sizes; what is there already is kept."""
    call_command("migrate", verbosity=0)
    if NumberImport.objects.count() < OTHER_NUMBERS:
        print(f"Seeding {OTHER_NUMBERS:,} number imports in jobs of 1,000…", flush=True)
        call_command("seed_demo_numbers", count=OTHER_NUMBERS, projects=20)
    for size in SIZES:
        ticket = f"BENCH-{size}"
        if ImportJob.objects.filter(ticket=ticket).exists():
            continue
        print(f"Seeding the job of {size:,} numbers…", flush=True)
        default = seed_demo_numbers.NUMBERS_PER_JOB
        seed_demo_numbers.NUMBERS_PER_JOB = size
        try:
            call_command("seed_demo_numbers", count=size, projects=20, seed=size)
        finally:
            seed_demo_numbers.NUMBERS_PER_JOB = default
        ImportJob.objects.filter(pk=ImportJob.objects.order_by("-pk").first().pk).update(
            ticket=ticket
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# -- The code before: phone_numbers/exports.py as it was, and the numbers export's rows --------


@dataclass(frozen=True)
class OldColumn:
    header: str
    value: Callable[[object], object]
    is_free_text: bool = False

    def cell(self, row: object) -> object:
        value = self.value(row)
        if (
            self.is_free_text
            and isinstance(value, str)
            and value.startswith(("=", "+", "-", "@", "\t", "\r"))
        ):
            return "'" + value
        return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def old_csv_lines(rows: QuerySet, columns: Sequence[OldColumn]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([column.header for column in columns])
    for row in rows.iterator(chunk_size=2000):
        yield writer.writerow([column.cell(row) for column in columns])


def _reason(number) -> str:
    return number.error_message if number.status != ImportStatus.IMPORTED else ""


def _isoformat_or_blank(moment) -> str:
    return moment.isoformat() if moment else ""


OLD_NUMBER_COLUMNS = [
    OldColumn("number", lambda number: number.number),
    OldColumn("project", lambda number: number.project.name, is_free_text=True),
    OldColumn("space_host", lambda number: number.project.space_host),
    OldColumn("status", lambda number: number.status),
    OldColumn("number_type", lambda number: number.number_type),
    OldColumn("capabilities", lambda number: " ".join(number.capabilities)),
    OldColumn("friendly_name", lambda number: number.friendly_name, is_free_text=True),
    OldColumn("sid", lambda number: number.sid),
    OldColumn("ticket", lambda number: number.job.ticket, is_free_text=True),
    OldColumn(
        "imported_by",
        lambda number: number.job.created_by.get_username() if number.job.created_by else "",
    ),
    OldColumn("job", lambda number: number.job_id),
    OldColumn("created_at", lambda number: number.created_at.isoformat()),
    OldColumn("imported_at", lambda number: _isoformat_or_blank(number.imported_at)),
    OldColumn("reason", _reason, is_free_text=True),
]

OLD_JOB_COLUMNS = [
    OldColumn("line", lambda number: number.input_line or ""),
    OldColumn("number", lambda number: number.number),
    OldColumn("status", lambda number: number.status),
    OldColumn("number_type", lambda number: number.number_type),
    OldColumn("reason", _reason, is_free_text=True),
    OldColumn("sid", lambda number: number.sid),
    OldColumn("friendly_name", lambda number: number.friendly_name, is_free_text=True),
    OldColumn("attempts", lambda number: number.attempts),
    OldColumn("imported_at", lambda number: _isoformat_or_blank(number.imported_at)),
]


def old_csv_response(rows: QuerySet, columns, filename: str, then=()) -> StreamingHttpResponse:
    """exports.csv_response as it was; the numbers export's rows with their joins, as the
    view chose them. The numbers only in a Space that the numbers export adds (`then`) are
    none here: this database has no inventory."""
    old_columns = {
        id(exports.NUMBER_COLUMNS): OLD_NUMBER_COLUMNS,
        id(exports.JOB_COLUMNS): OLD_JOB_COLUMNS,
    }
    assert not any(section.exists() for section, _ in then), "no inventory expected"
    if columns is exports.NUMBER_COLUMNS:
        rows = rows.select_related("project", "job__created_by")
    lines = old_csv_lines(rows, old_columns[id(columns)])
    response = StreamingHttpResponse(lines, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@contextmanager
def old_path() -> Iterator[None]:
    with patch.object(exports, "csv_response", old_csv_response):
        yield


# -- Timing ----------------------------------------------------------------------------------


def download(client: Client, url: str) -> tuple[bytes, int]:
    """The whole file, and how many pieces it came in."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    pieces = list(response.streaming_content)
    response.close()
    return b"".join(pieces), len(pieces)


def timed(client: Client, url: str, runs: int) -> tuple[list[float], bytes, int]:
    body, pieces = download(client, url)  # warm: rows in PostgreSQL's memory
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        download(client, url)
        seconds.append(time.perf_counter() - started)
    return seconds, body, pieces


def logged_in_client() -> Client:
    user, _ = User.objects.get_or_create(username="bench-admin")
    user.is_superuser = True
    user.save()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    seed()
    client = logged_in_client()
    cases = []
    for size in SIZES:
        job = ImportJob.objects.get(ticket=f"BENCH-{size}")
        cases.append((f"job export, {size:,}", f"/jobs/{job.pk}/export.csv", size))
        cases.append(
            (f"numbers export, {size:,}", f"/numbers/export.csv?q=BENCH-{size}&status=", size)
        )
    results = {}
    for name, url, size in cases:
        # The old path right after the new: the machine's load drifts over minutes.
        new_seconds, new_body, new_pieces = timed(client, url, args.runs)
        with old_path():
            old_seconds, old_body, old_pieces = timed(client, url, args.runs)
        rows = new_body.count(b"\n") - 1
        assert new_body == old_body, f"{name}: the file differs from the code before's"
        assert rows >= size, (name, rows)
        results[name] = (rows, new_seconds, new_pieces, old_seconds, old_pieces)

    print(
        f"\n{NumberImport.objects.count():,} number imports; {args.runs} runs an export, the "
        f"whole file read; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'export':<24} {'rows':>7}   {'p50 ms':>7} {'min ms':>7} {'rows/s':>8} {'pieces':>6}"
        f"   {'old p50':>7} {'min':>7} {'rows/s':>8} {'pieces':>6}   {'ratio':>5}"
    )
    for name, (rows, new, new_pieces, old, old_pieces) in results.items():
        new_p50, old_p50 = statistics.median(new), statistics.median(old)
        print(
            f"{name:<24} {rows:>7,}   {new_p50 * 1000:>7.0f} {min(new) * 1000:>7.0f} "
            f"{rows / new_p50:>8,.0f} {new_pieces:>6,}   {old_p50 * 1000:>7.0f} "
            f"{min(old) * 1000:>7.0f} {rows / old_p50:>8,.0f} {old_pieces:>6,}   "
            f"{old_p50 / new_p50:>4.1f}×"
        )
    print("(old: the code before, in this run, its files byte for byte the same; pieces: the")
    print(" parts the response is written in, each a socket write under gunicorn)")


if __name__ == "__main__":
    main()

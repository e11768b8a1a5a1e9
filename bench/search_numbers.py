"""How fast the numbers list searches and filters a million number imports, and a million
numbers in the projects' Spaces, on PostgreSQL.

Uses (and on first run fills, with `seed_demo_numbers`: a few minutes) the database named by
BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench). For each kind
of search it runs the numbers list's own query (what the page runs for one page of results)
with inputs drawn from the data, and prints p50/p95: digits, the forms of today's search, and
numbers typed from their start with an international or trunk prefix (which the seeded
projects' 14 default countries read in up to 9 ways each). Side by side, in the same run: digit
searches through the number imports' own table instead of the narrow NumberSearchRow copy,
and every search the naive way, as Django admin's default `search_fields` does them
(icontains on every field, OR-ed across the joins, and a COUNT for the paginator).

The Space inventory (issue 17): the script also fills, once, --inventory SpaceNumber rows
(half of them the Spaces' records of imported numbers, 1 in 100 of those differing; half
numbers only in a Space), marks 1 in 100 imported numbers missing from their Space, and times
each kind twice: the list with the inventory (what the page runs now: imports, then the
numbers only in a Space) and with the imports only (what it ran before), plus the drift
filters and searches for numbers that are only in a Space.

    .venv/bin/python bench/search_numbers.py [--count 1000000] [--inventory 1000000] [--runs 200]
        [--naive-runs 10]
"""

import argparse
import importlib
import itertools
import os
import random
import re
import statistics
import time
from datetime import UTC, datetime

import phonenumbers
from bench_database import set_up_django

BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench"
)


set_up_django(BENCH_DATABASE_URL)

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Q  # noqa: E402
from django.http import QueryDict  # noqa: E402

from phone_numbers.forms import NumberSearchForm  # noqa: E402
from phone_numbers.models import (  # noqa: E402
    ImportJob,
    InventorySync,
    NumberImport,
    Project,
    SpaceNumber,
)
from phone_numbers.search import LISTED, newest_page  # noqa: E402
from phone_numbers.views import NUMBERS_PAGE_SIZE  # noqa: E402

ADMIN_SEARCH_FIELDS = ["number", "sid", "friendly_name", "project__name", "job__ticket"]


def page_query(params: dict[str, str]) -> tuple[list, list]:
    """Exactly what the numbers list runs for its first page of results: the imports, then
    the numbers only in a Space when the imports do not fill the page."""
    query = QueryDict(mutable=True)
    query.update(params)
    return NumberSearchForm(query).numbers_page(0, NUMBERS_PAGE_SIZE + 1)


def imports_only_query(params: dict[str, str]) -> list:
    """What the numbers list ran before the inventory: the imports alone."""
    query = QueryDict(mutable=True)
    query.update(params)
    return NumberSearchForm(query).page(0, NUMBERS_PAGE_SIZE + 1)


# The PostgreSQL indexes of the numbers only in a Space (migrations 0019 and 0020): dropped
# while the inventory is seeded and built again after, as building them once is faster than
# keeping them up to date through half a million inserts.
SPACE_SEARCH_INDEXES = {
    **importlib.import_module("phone_numbers.migrations.0019_inventory_search").SEARCH_INDEXES,
    # The narrow copy's (migration 0020), which its trigger fills as the inventory is seeded.
    "spacenumbersearchrow_digit_runs": "USING gin (phone_numbers_digit_runs(number))",
}


def seed_inventory(count: int) -> None:
    """Fill SpaceNumber up to `count` rows, as completed syncs would have (once; kept).

    Half are the Spaces' records of imported numbers (1 in 100 differing in capabilities),
    half are numbers only in a Space, of the same countries as the imports; 1 in 100 imported
    numbers without a record is marked missing from its Space. One completed sync a project.
    """
    missing = count - SpaceNumber.objects.count()
    if missing <= 0:
        return
    print(f"Seeding {missing:,} Space inventory rows (once; kept for later runs)…", flush=True)
    started = time.perf_counter()
    linked = missing // 2
    with connection.cursor() as cursor:
        for name in SPACE_SEARCH_INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
        cursor.execute(
            """
            INSERT INTO phone_numbers_spacenumber (project_id, sid, number, friendly_name,
                number_type, capabilities, origin, date_created, date_updated, number_import_id,
                differs_from_import, first_seen_at, last_seen_at)
            SELECT project_id, sid, number, friendly_name,
                CASE WHEN number_type = 'tollfree' THEN 'tollfree' ELSE '' END,
                CASE WHEN id %% 100 = 0 THEN '["voice"]'::jsonb ELSE capabilities END,
                'signalwire', imported_at, imported_at, id, id %% 100 = 0, now(), now()
            FROM phone_numbers_numberimport
            WHERE status = 'imported' AND sid <> '' AND NOT EXISTS (
                SELECT 1 FROM phone_numbers_spacenumber AS listed
                WHERE listed.number_import_id = phone_numbers_numberimport.id
            )
            ORDER BY id LIMIT %s
            """,
            [linked],
        )
        cursor.execute(
            """
            UPDATE phone_numbers_numberimport SET missing_from_space_since = now()
            WHERE status = 'imported' AND id % 100 = 7 AND NOT EXISTS (
                SELECT 1 FROM phone_numbers_spacenumber AS listed
                WHERE listed.number_import_id = phone_numbers_numberimport.id
            )
            """
        )
        projects = list(Project.objects.values_list("pk", flat=True))
        seeder = importlib.import_module(
            "phone_numbers.management.commands.seed_demo_numbers"
        ).Command()
        prefixes = seeder.number_prefixes()
        rng = random.Random(17)
        # Serials past the imports' keep these numbers apart from every imported one.
        first = 10_000_000 + SpaceNumber.objects.filter(number_import__isnull=True).count()
        with cursor.copy(
            "COPY phone_numbers_spacenumber (project_id, sid, number, friendly_name, number_type,"
            " capabilities, origin, date_created, date_updated, differs_from_import,"
            " first_seen_at, last_seen_at) FROM STDIN"
        ) as copy:
            for serial in range(first, first + missing - linked):
                number = seeder.number(prefixes, serial)
                created = f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d} 12:00:00+00"
                copy.write_row(
                    [
                        rng.choice(projects),
                        f"PN{rng.getrandbits(128):032x}",
                        number,
                        rng.choice(["", "Main line", "Support", f"Store {serial % 997}"]),
                        rng.choice([""] * 9 + ["tollfree"]),
                        rng.choice(['["sms", "voice"]', '["voice"]', '["sms", "voice", "mms"]']),
                        "signalwire",
                        created,
                        created,
                        False,
                        "2026-11-29 03:00:00+00",
                        "2026-11-30 03:00:00+00",
                    ]
                )
        for name, definition in SPACE_SEARCH_INDEXES.items():
            table = name.split("_")[0]
            cursor.execute(f"CREATE INDEX {name} ON phone_numbers_{table} {definition}")
    InventorySync.objects.bulk_create(
        InventorySync(
            project_id=project,
            trigger=InventorySync.Trigger.NIGHTLY,
            status=InventorySync.Status.COMPLETED,
            finished_at=datetime.now(UTC),
        )
        for project in projects
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"Seeded the inventory in {time.perf_counter() - started:.0f} s", flush=True)


def own_table_query(params: dict[str, str]) -> list:
    """A digit search without NumberSearchRow: the trigram index of the number imports' table.

    This was the page query for every search until the narrow copy; it still serves text
    searches and digits with filters that the copy does not hold.
    """
    query = QueryDict(mutable=True)
    query.update(params)
    numbers = NumberImport.objects.select_related("project", "job__created_by").only(*LISTED)
    return newest_page(NumberSearchForm(query).filtered(numbers), 0, NUMBERS_PAGE_SIZE + 1)


def naive_query(text: str) -> list:
    """Django admin's default search: icontains on every field, OR-ed, plus the count."""
    condition = Q()
    for field in ADMIN_SEARCH_FIELDS:
        condition |= Q(**{f"{field}__icontains": text})
    numbers = NumberImport.objects.filter(condition).order_by("-pk")
    numbers.count()
    return list(numbers.select_related("project", "job__created_by")[:NUMBERS_PAGE_SIZE])


def timings(run, inputs) -> list[float]:
    seconds = []
    for value in inputs:
        started = time.perf_counter()
        run(value)
        seconds.append(time.perf_counter() - started)
    return seconds


def paired_timings(first, second, inputs) -> tuple[list[float], list[float]]:
    """`timings` of two ways to run the same inputs, alternating input by input."""
    seconds = ([], [])
    for value in inputs:
        for run, kept in ((first, seconds[0]), (second, seconds[1])):
            started = time.perf_counter()
            run(value)
            kept.append(time.perf_counter() - started)
    return seconds


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--inventory", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--naive-runs", type=int, default=10, help="0 leaves the naive out")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    missing = args.count - NumberImport.objects.count()
    if missing > 0:
        print(f"Seeding {missing:,} number imports (once; kept for later runs)…", flush=True)
        started = time.perf_counter()
        call_command("seed_demo_numbers", count=missing, projects=200)
        print(f"Seeded in {time.perf_counter() - started:.0f} s", flush=True)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    seed_inventory(args.inventory)
    total = NumberImport.objects.count()
    inventory = SpaceNumber.objects.count()

    rng = random.Random(7)
    sample = list(
        NumberImport.objects.filter(status="imported")
        .order_by("?")
        .values("number", "sid", "project_id", "job__ticket", "imported_at")[: args.runs]
    )
    projects = list(Project.objects.values_list("pk", "name"))
    # Numbers only in a Space: searching for one, the imports find nothing and the list
    # searches the inventory for the whole page.
    space_only = list(
        SpaceNumber.objects.filter(number_import__isnull=True)
        .order_by("?")
        .values("number", "sid", "project_id")[: args.runs]
    )
    users = list(ImportJob.objects.values_list("created_by", flat=True).distinct())

    def digits(row, length):
        body = row["number"][1:]
        start = rng.randrange(0, len(body) - length + 1)
        return body[start : start + length]

    def national(row):  # "(201) 550" as a customer reads a US number out
        body = row["number"][-10:]
        return f"({body[:3]}) {body[3:6]}"

    def international(row):  # "+44 20 7946"
        body = row["number"][1:]
        return f"+{body[:2]} {body[2:4]} {body[4:8]}"

    def day(row):
        return row["imported_at"].date().isoformat()

    def written(row, form):
        return phonenumbers.format_number(phonenumbers.parse(row["number"]), form)

    def without_last_group(text):  # as far as the customer got: "020 7946"
        return re.sub(r"[ -][0-9]+$", "", text)

    def with_00(row):  # "0044 20 7946 0950"
        return "00" + written(row, phonenumbers.PhoneNumberFormat.INTERNATIONAL)[1:]

    def with_011_partial(row):  # "011 44 20 7946"
        return "011 " + without_last_group(with_00(row)[2:])

    def with_trunk_zero_partial(row):  # "+44 (0)20 7946"
        spaced = written(row, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        return without_last_group(re.sub(r"^(\+[0-9]+) ", r"\1 (0)", spaced))

    def with_trunk(row):  # "020 7946 0950"; used for numbers whose national form has a trunk 0
        return written(row, phonenumbers.PhoneNumberFormat.NATIONAL)

    # The same number of inputs for each kind, from the numbers written with a trunk 0.
    trunk_zero = [row for row in sample if re.sub(r"[^0-9]", "", with_trunk(row)).startswith("0")]
    trunk_zero = list(itertools.islice(itertools.cycle(trunk_zero), len(sample)))

    searches = {
        "4 digits": [{"q": digits(row, 4)} for row in sample],
        "7 digits": [{"q": digits(row, 7)} for row in sample],
        "(415) 555 form": [{"q": national(row)} for row in sample],
        "+44 20 7946 form": [{"q": international(row)} for row in sample],
        "0044 20 7946 0950": [{"q": with_00(row)} for row in sample],
        "00442079460950": [{"q": "00" + row["number"][1:]} for row in sample],
        "011 44 20 7946": [{"q": with_011_partial(row)} for row in sample],
        "+44 (0)20 7946": [{"q": with_trunk_zero_partial(row)} for row in trunk_zero],
        "020 7946 0950": [{"q": with_trunk(row)} for row in trunk_zero],
        "020 7946": [{"q": without_last_group(with_trunk(row))} for row in trunk_zero],
        "project name": [{"q": rng.choice(projects)[1][-10:]} for _ in sample],
        "ticket": [{"q": row["job__ticket"]} for row in sample],
        "sid fragment": [{"q": row["sid"][:8]} for row in sample],
    }
    filters = {
        "default page": [{} for _ in sample],
        "project + status": [
            {"project": str(rng.choice(projects)[0]), "status": "failed"} for _ in sample
        ],
        "date range": [{"imported_from": day(row), "imported_to": day(row)} for row in sample],
        "type + capability": [{"number_type": "tollfree", "capability": "mms"} for _ in sample],
        "imported by": [{"imported_by": str(rng.choice(users))} for _ in sample],
        "digits + project": [
            {"q": digits(row, 5), "project": str(row["project_id"])} for row in sample
        ],
    }
    in_spaces = {
        "only in a Space: 7 digits": [{"q": digits(row, 7)} for row in space_only],
        "only in a Space: (415) 555": [{"q": national(row)} for row in space_only],
        "only in a Space: whole": [{"q": row["number"]} for row in space_only],
        "only in a Space: sid": [{"q": row["sid"][2:10]} for row in space_only],
        "not imported": [{"inventory": "not_imported"} for _ in sample],
        "not imported + project": [
            {"inventory": "not_imported", "project": str(rng.choice(projects)[0])} for _ in sample
        ],
        "not imported + 5 digits": [
            {"inventory": "not_imported", "q": digits(row, 5)} for row in space_only
        ],
        "missing": [{"inventory": "missing"} for _ in sample],
        "missing + project": [
            {"inventory": "missing", "project": str(rng.choice(projects)[0])} for _ in sample
        ],
        "differs": [{"inventory": "differs"} for _ in sample],
        "differs + project": [
            {"inventory": "differs", "project": str(rng.choice(projects)[0])} for _ in sample
        ],
    }

    digit_kinds = ["4 digits", "7 digits", "(415) 555 form", "+44 20 7946 form"]
    typed_from_start = [
        "0044 20 7946 0950",
        "00442079460950",
        "011 44 20 7946",
        "+44 (0)20 7946",
        "020 7946 0950",
        "020 7946",
    ]

    def figures(seconds: list[float]) -> str:
        p50, p95 = statistics.median(seconds) * 1000, percentile(seconds, 0.95) * 1000
        return f"{p50:>9.1f}ms {p95:>7.1f}ms"

    # One pass per plan: run interleaved, the other plans' reads of the wide table would push
    # the portal's narrow copy out of PostgreSQL's memory before every kind, which nothing in
    # the portal does 200 times a second.
    kinds = {**searches, **filters, **in_spaces}
    print(f"Timing {len(kinds)} kinds × {args.runs} runs, then the alternatives…", flush=True)
    # With the inventory and before it (imports only), input by input: both read the same
    # narrow copy, so alternating evicts nothing, and a burst of load on a shared machine
    # falls on both. Drift filters and numbers only in a Space did not exist before.
    portal, imports_only = {}, {}
    for name, inputs in kinds.items():
        if name in in_spaces:
            portal[name] = timings(page_query, inputs)
        else:
            portal[name], imports_only[name] = paired_timings(
                page_query, imports_only_query, inputs
            )
    own_table = {
        name: timings(own_table_query, searches[name]) for name in digit_kinds + typed_from_start
    }
    # The naive search finds none of the numbers typed from their start: not timed for them.
    naive = {
        name: timings(naive_query, [params["q"] for params in inputs[: args.naive_runs]])
        for name, inputs in searches.items()
        if name not in typed_from_start and args.naive_runs
    }

    print(
        f"\n{total:,} number imports, {inventory:,} Space inventory rows, {len(projects)} "
        f"projects, {args.runs} runs per kind"
    )
    print(
        f"{'query':<26} {'portal p50':>11} {'p95':>9}   {'imports only p50':>16} {'p95':>9}"
        f"   {'own table p50':>13} {'p95':>9}   {'naive p50':>10} {'p95':>9}"
    )
    for name in kinds:
        line = f"{name:<26} {figures(portal[name])}"
        line += f"         {figures(imports_only[name])}" if name in imports_only else " " * 30
        if name in own_table:
            line += f"      {figures(own_table[name])}"
        elif name in naive:
            line += " " * 27
        if name in naive:
            line += f"   {statistics.median(naive[name]) * 1000:>8.0f}ms"
            line += f" {percentile(naive[name], 0.95) * 1000:>7.0f}ms"
        print(line)
    print("(portal: the page's query with the Space inventory: imports, then numbers only in")
    print(" a Space; imports only: the same page before the inventory)")
    print(
        "(own table: the same digit search without NumberSearchRow;"
        f" naive: {args.naive_runs} runs per kind)"
    )
    print("(from 0044 20 7946 0950 to 020 7946: numbers typed from their start, found by prefix)")


if __name__ == "__main__":
    main()

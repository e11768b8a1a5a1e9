"""The numbers list's search: what a typed text matches, and the query plan that finds a page.

The form (forms.NumberSearchForm) validates what was typed; this module turns it into rows.
PostgreSQL gets plans chosen here (its estimates for "contains" searches are wrong either way,
see newest_page) and the narrow NumberSearchRow copy its triggers keep (migration 0006);
SQLite, which has neither the copy nor the indexes, gets the plain filters.
"""

import operator
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache, reduce

import phonenumbers
from django.contrib.postgres.fields import ArrayField
from django.db import connection, models, transaction
from django.db.models import Q, QuerySet, Subquery
from django.db.models.fields.json import DataContains
from django.db.models.functions import Coalesce

from phone_numbers.models import (
    ImportJob,
    ImportStatus,
    NumberImport,
    NumberSearchRow,
    Project,
    SpaceNumber,
    SpaceNumberSearchRow,
)

# A text search narrows by at most this many jobs whose ticket matches.
MAX_IDS_IN_SEARCH = 5000
# A text search naming up to this many projects and jobs pages each through its own index.
MAX_NAMED = 50
# Up to this many matches, a search sorts them itself (see newest_page).
SPARSE_MATCHES = 20000
# A digit search looks through this many of the newest numbers first (see newest_ids).
RECENT_ROWS = 5000


@contextmanager
def planner_settings(**values: str) -> Iterator[None]:
    """PostgreSQL's planner settings changed for the queries inside, in one round trip."""
    with transaction.atomic(), connection.cursor() as cursor:
        calls = ", ".join("set_config(%s, %s, true)" for _ in values)
        cursor.execute(f"SELECT {calls}", [part for item in values.items() for part in item])
        yield


# A search's international prefixes besides "+": the usual one, and North America's.
INTERNATIONAL_PREFIXES = ("00", "011")
# A search text is read as a number typed from its start only when its prefix is followed by
# at least this many digits. With fewer, all that follows is a country or area code ("0044",
# "020", "0207"), which as likely ends the number the person looks for as it begins one; read
# as a start, it would list a whole country or city. So "020" still means 020 anywhere.
DIGITS_AFTER_A_PREFIX = 4


def searched_digits(text: str) -> str | None:
    """The digits of a search box text that is a number in any written form; None for words.

    "(415) 555", "+44 20 7946", "tel:5550100" are numbers; text with a letter is a project
    name, ticket, sid or friendly name. Only punctuation gives "" (it narrows nothing).

    Decimal digits of any script ("４１５", "٤١٥") are read as 0-9, as the import reads them
    (phonenumbers does). Other numerals ("²", "①", "Ⅻ") are not digits of a phone number, so
    text holding one is words; `isdigit` would have let "²" through to `int`.
    """
    text = text.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    if any(char.isalpha() or (char.isnumeric() and not char.isdecimal()) for char in text):
        return None
    return "".join(str(int(char)) for char in text if char.isdecimal())


def searched_fragments(text: str) -> list[str] | None:
    """What a number must hold to match a search box text: any one of these; None for words.

    The digits as typed match anywhere ("555 0100" → "5550100"). Typed from its start, a
    number also gives the start of the E.164 form it means, which a leading "+" anchors:
    after "+", "00" or "011", with "(0)" left out ("+44 (0)20 7946" → "+44207946"), or after
    the trunk prefix of a project's default country ("020 7946" → "+44207946" for a British
    project, as "Where is this number?" reads it). A start that the digits as typed already
    find ("+44 20" → "4420") is left out. "" gives [] (it narrows nothing).
    """
    digits = searched_digits(text)
    if not digits:
        return None if digits is None else []
    typed = "".join(str(int(char)) if char.isdecimal() else char for char in text.strip())
    typed = typed[4:] if typed.lower().startswith("tel:") else typed
    without_bracketed_zero = "".join(re.findall(r"[0-9]", re.sub(r"\(\s*0\s*\)", "", typed)))
    if typed.lstrip("( ").startswith(("+", "\uff0b")):
        starts = [without_bracketed_zero]
    else:
        starts = [
            without_bracketed_zero[len(prefix) :]
            for prefix in INTERNATIONAL_PREFIXES
            if without_bracketed_zero.startswith(prefix)
            and len(without_bracketed_zero) - len(prefix) >= DIGITS_AFTER_A_PREFIX
        ]
        starts += _national_starts(digits)
    return [digits] + [
        f"+{start}" for start in dict.fromkeys(starts) if start and digits not in start
    ]


def _national_starts(digits: str) -> list[str]:
    """`digits` read after the trunk prefix of each project's default country, in E.164."""
    starts = []
    for country in Project.objects.values_list("default_country", flat=True).distinct():
        country_code, trunk, longest = _trunk_prefix(country)
        rest = digits[len(trunk) :]
        # A national number never begins with 0, and none is longer than its country's longest.
        if (
            trunk
            and digits.startswith(trunk)
            and DIGITS_AFTER_A_PREFIX <= len(rest) <= longest
            and not rest.startswith("0")
        ):
            starts.append(f"{country_code}{rest}")
    return starts


@cache
def _trunk_prefix(country: str) -> tuple[int, str, int]:
    """The country's calling code, its trunk prefix ("" if none) and its longest national number."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(country)
    if metadata is None:
        return 0, "", 0
    lengths = metadata.general_desc.possible_length or (0,)
    return metadata.country_code, metadata.national_prefix or "", max(lengths)


@models.JSONField.register_lookup
class Holds(models.Lookup):
    """`capabilities__holds="fax"`: the JSON list holds the string, on both databases.

    Django's `contains` on a JSON field (`capabilities__contains=["fax"]`) is PostgreSQL's
    `@>`, which it refuses on SQLite; there the list's items are read with json_each.
    """

    lookup_name = "holds"

    def as_sql(self, compiler, connection) -> tuple[str, list]:
        return compiler.compile(DataContains(self.lhs, [self.rhs]))

    def as_sqlite(self, compiler, connection) -> tuple[str, list]:
        items, params = compiler.compile(self.lhs)
        # Bandit B608 is a false alarm: `items` is the column as Django's compiler writes it,
        # and the value searched for is a query parameter.
        sql = f"EXISTS (SELECT 1 FROM json_each({items}) AS item WHERE item.value = %s)"  # nosec B608
        return sql, [*params, self.rhs]


def _holding_any(fragments: list[str]) -> Q:
    return reduce(operator.or_, (Q(number__contains=fragment) for fragment in fragments))


def matching(numbers: QuerySet, text: str, fragments: list[str] | None = None) -> QuerySet:
    """Numbers (imports, or numbers in a Space) matching what support staff type in the one
    search box; `fragments`, when given, are the text's `searched_fragments` already read.

    Without letters, the text is a number in any written form ("(415) 555", "+44 20 7946",
    "0044 20 7946", "020 7946 0950"): the number holds one of its `searched_fragments`.
    With letters, it is part of a project's name, a ticket reference (imports only), a
    SignalWire sid or a friendly name.
    """
    if fragments is None:
        fragments = searched_fragments(text)
    if fragments is None:
        text = text.strip()
        matches = _by_sid_or_friendly_name(text)
        projects, jobs = _named(text, tickets=numbers.model is NumberImport)
        if projects:
            matches |= Q(project__in=projects)
        if jobs:
            matches |= Q(job__in=jobs)
        return numbers.filter(matches)
    return numbers.filter(_holding_any(fragments)) if fragments else numbers


def _by_sid_or_friendly_name(text: str) -> Q:
    return Q(sid__icontains=text) | Q(friendly_name__icontains=text)


def _named(text: str, tickets: bool = True) -> tuple[list[int], list[int]]:
    """The ids of the projects whose name holds `text`, and of the (newest MAX_IDS_IN_SEARCH)
    jobs whose ticket does (none unless `tickets`: numbers only in a Space have no job).

    Matches in these small tables become id lists first: with subqueries PostgreSQL cannot
    estimate the OR and walks the whole table.
    """
    projects = list(Project.objects.filter(name__icontains=text).values_list("pk", flat=True))
    if not tickets:
        return projects, []
    jobs = list(
        ImportJob.objects.filter(ticket__icontains=text).values_list("pk", flat=True)[
            :MAX_IDS_IN_SEARCH
        ]
    )
    return projects, jobs


def newest_by_text(given: dict, count: int) -> list[int] | None:
    """PostgreSQL: the ids of the newest `count` numbers of a text search (`given["q"]` has
    letters) and the other filters in `given`; None when it names more than MAX_NAMED
    projects and jobs, which newest_page finds better.

    The matches are the numbers of the projects and jobs whose name or ticket holds the text,
    and those whose sid or friendly name does. As one OR, PostgreSQL cannot tell how many
    match, so newest_page first collected up to 20,000 of them (15 to 20 ms for a project or
    job of many numbers) to choose its plan. Here each project and job gives its own newest
    `count` through its index of (project, id) or (job, id), all in one query; the sid and
    friendly name matches, usually none, come from newest_page; and the newest `count` of
    them all are the newest of their union.
    """
    text = given["q"].strip()
    projects, jobs = _named(text)
    if len(projects) + len(jobs) > MAX_NAMED:
        return None
    others = filtered(NumberImport.objects.all(), {k: v for k, v in given.items() if k != "q"})
    newest = [others.filter(project=pk) for pk in projects] + [others.filter(job=pk) for pk in jobs]
    newest = [rows.order_by("-pk").values_list("pk", flat=True)[:count] for rows in newest]
    ids = set(newest[0].union(*newest[1:], all=True)) if newest else set()
    by_text = others.filter(_by_sid_or_friendly_name(text)).values_list("pk", flat=True)
    ids.update(newest_page(by_text, 0, count))
    return sorted(ids, reverse=True)[:count]


def newest_page(numbers: QuerySet, start: int, size: int) -> list:
    """Rows start to start + size of the matches, newest first, however many match (their
    ids, for `numbers` of `values_list("pk", flat=True)`).

    PostgreSQL cannot tell how many numbers a "contains" search matches, and a wrong guess
    either walks a million rows newest first looking for a rare match, or sorts a hundred
    thousand common ones. So the plan is chosen here: first collect at most
    SPARSE_MATCHES ids through the trigram indexes alone (bounded by the index); if
    that is all of them, sort those few; otherwise matches are dense, and walking newest
    first finds a page at once.
    """
    if connection.vendor != "postgresql":
        return list(numbers.order_by("-pk")[start : start + size])
    probe = numbers.order_by().values_list("pk", flat=True)[: SPARSE_MATCHES + 1]
    with planner_settings(enable_seqscan="off", enable_indexscan="off"):
        ids = list(probe)
    if len(ids) <= SPARSE_MATCHES:
        page = sorted(ids, reverse=True)[start : start + size]
        return list(numbers.filter(pk__in=page).order_by("-pk"))
    with planner_settings(enable_bitmapscan="off", enable_sort="off"):
        return list(numbers.order_by("-pk")[start : start + size])


class DigitRuns(models.Func):
    """Every run of four digits in a number, as integers (SQL function of migration 0006)."""

    function = "phone_numbers_digit_runs"
    output_field = ArrayField(models.IntegerField())


def newest_ids(rows: QuerySet, fragments: list[str], count: int) -> list[int]:
    """The ids of the newest `count` rows whose number holds any of `fragments`.

    PostgreSQL only; `rows` are NumberSearchRow, or SpaceNumberSearchRow (its twin for the
    numbers only in a Space). A fragment is digits, or "+" and the
    digits the number begins with (see searched_fragments). Matches are often among the
    newest numbers, so those are read first. Else the index of four-digit runs finds every
    match and PostgreSQL keeps the newest: on the narrow copy that reads about a sixth of the
    pages the number imports' own table would, and they stay in PostgreSQL's memory at a
    million rows (README, "Benchmarks").
    """
    matching = rows.filter(_holding_any(fragments))
    newest = rows.model.objects.order_by("-pk").values("pk")[RECENT_ROWS - 1 : RECENT_ROWS]
    recent = matching.filter(
        pk__gte=Coalesce(Subquery(newest), 0, output_field=models.BigIntegerField())
    )
    ids = _newest_first(recent, count)
    if len(ids) == count:
        return ids
    if min(len(fragment.lstrip("+")) for fragment in fragments) < 3:
        # One or two digits are in nearly every number: walking newest first finds them.
        return _newest_first(matching, count)
    indexed = rows.alias(runs=DigitRuns("number")).filter(
        reduce(operator.or_, (_by_digit_runs(fragment) for fragment in fragments))
    )
    if any(fragment.startswith("+") or len(fragment) > 4 for fragment in fragments):
        # Runs of four say neither in what order they come nor where the number starts.
        # Checked apart from the runs: next to them in one OR, PostgreSQL would compute
        # every candidate's runs again (ten times slower for 10,000 candidates).
        indexed = indexed.filter(_holding_any(fragments))
    # PostgreSQL cannot tell how many numbers hold the runs; guessing few, it would walk
    # the primary key down instead, through every newer row.
    with planner_settings(
        enable_seqscan="off", enable_indexscan="off", max_parallel_workers_per_gather="0"
    ):
        return list(indexed.order_by("-pk").values_list("pk", flat=True)[:count])


def _by_digit_runs(fragment: str) -> Q:
    """Rows holding the digit runs of `fragment`, which the index of digit runs finds."""
    digits = fragment.lstrip("+")
    if len(digits) == 3:
        # Three digits are inside one of the twenty runs of four that begin or end with them.
        around = [f"{digit}{digits}" for digit in "0123456789"]
        around += [f"{digits}{digit}" for digit in "0123456789"]
        return Q(runs__overlap=[int(run) for run in around])
    # Every run of four in the digits must be in the number.
    return Q(runs__contains=[int(digits[at : at + 4]) for at in range(len(digits) - 3)])


def _newest_first(rows: QuerySet, count: int) -> list[int]:
    """The first `count` ids of `rows` walking the primary key down, never sorting them all."""
    # Starting parallel workers costs more than the few thousand rows read.
    with planner_settings(
        enable_bitmapscan="off", enable_sort="off", max_parallel_workers_per_gather="0"
    ):
        return list(rows.order_by("-pk").values_list("pk", flat=True)[:count])


# What the numbers list shows of each row: loading only that makes a page about a third quicker.
LISTED = [
    "number",
    "number_type",
    "capabilities",
    "status",
    "friendly_name",
    "imported_at",
    "created_at",
    "project__name",
    "job__ticket",
    "job__created_by__username",
]

# The filters that NumberSearchRow holds besides the number.
IN_SEARCH_ROWS = ["status", "project"]

# Each filter of the numbers list (NumberSearchForm's fields) and the lookup it applies.
FILTER_LOOKUPS = {
    "project": "project",
    "status": "status",
    "number_type": "number_type",
    "imported_from": "imported_at__date__gte",
    "imported_to": "imported_at__date__lte",
    "imported_by": "job__created_by",
    "ticket": "job__ticket__icontains",
}


class Drift(models.TextChoices):
    """The numbers list's drift filter (`inventory` in its URL): where a Space and the
    portal's imports disagree, as each project's last completed inventory sync saw it."""

    NOT_IMPORTED = "not_imported", "In the Space, not imported by the portal"
    MISSING = "missing", "Imported, no longer in the Space"
    DIFFERS = "differs", "Imported, SignalWire's record differs"


# Filters about the portal's import of a number: a number that is only in a Space was
# imported by no one, under no ticket, so they leave it out. Its status is "in the Space",
# which the list's default "Imported" (and "Any status") shows, and the other statuses do not.
IMPORTS_ONLY = {"imported_by", "ticket"}

# What the numbers list shows of a number that is only in a Space.
SPACE_LISTED = [
    "number",
    "number_type",
    "capabilities",
    "friendly_name",
    "date_created",
    "first_seen_at",
    "project__name",
]

# The filters that apply to a number only in a Space, and the lookup each applies: the dates
# are SignalWire's date_created, when the number entered the Space.
SPACE_FILTER_LOOKUPS = {
    "project": "project",
    "number_type": "number_type",
    "imported_from": "date_created__date__gte",
    "imported_to": "date_created__date__lte",
}

# The filters that the digit search of numbers only in a Space reads besides the number.
IN_SPACE_DIGIT_SEARCH = {"q", "project", "status", "inventory"}


def numbers_page(
    given: dict, start: int, size: int
) -> tuple[list[NumberImport], list[SpaceNumber]]:
    """Rows start to start + size of the numbers list for `given`: the portal's imports,
    newest first, then the numbers that are only in a Space (no import of the portal's),
    newest first. The imports come first so that the list of what the portal did reads as
    it always has; the rest of each Space follows its last import."""
    fragments = searched_fragments(given["q"]) if "q" in given else None
    # `filtered` gives no imports for "not imported" too; asking saves PostgreSQL's plan.
    imports = page(given, start, size, fragments) if lists_imports(given) else []
    if len(imports) == size or not lists_space_numbers(given):
        return imports, []
    # Where the imports end: on this page, or on an earlier one (then counted, up to `start`).
    if imports or start == 0:
        ending = start + len(imports)
    else:
        ending = _imports_up_to(given, fragments, start)
    return imports, space_page(given, fragments, start + len(imports) - ending, size - len(imports))


def lists_imports(given: dict) -> bool:
    return given.get("inventory") != Drift.NOT_IMPORTED


def lists_space_numbers(given: dict) -> bool:
    """Whether a number only in a Space can match `given`."""
    return (
        given.get("inventory") not in (Drift.MISSING, Drift.DIFFERS)
        and given.get("status", ImportStatus.IMPORTED) == ImportStatus.IMPORTED
        and not IMPORTS_ONLY & set(given)
    )


def _imports_up_to(given: dict, fragments: list[str] | None, most: int) -> int:
    """How many imports match `given`, counting no further than `most`."""
    return filtered(NumberImport.objects.all(), given, fragments).order_by()[:most].count()


def space_page(
    given: dict, fragments: list[str] | None, start: int, size: int
) -> list[SpaceNumber]:
    """Rows start to start + size of the numbers only in a Space that match `given`,
    newest first, by the same plans as the imports."""
    rows = (
        SpaceNumber.objects.filter(number_import__isnull=True)
        .select_related("project")
        .only(*SPACE_LISTED)
    )
    if "q" not in given:
        return list(space_filtered(rows, given).order_by("-pk")[start : start + size])
    if fragments and connection.vendor == "postgresql" and set(given) <= IN_SPACE_DIGIT_SEARCH:
        # The narrow copy holds everything this search asks about (see SpaceNumberSearchRow).
        copies = SpaceNumberSearchRow.objects.all()
        if "project" in given:
            copies = copies.filter(project=given["project"])
        ids = newest_ids(copies, fragments, start + size)[start:]
        return list(rows.filter(pk__in=ids).order_by("-pk"))
    return newest_page(space_filtered(rows, given, fragments), start, size)


def space_numbers(given: dict) -> "QuerySet[SpaceNumber]":
    """Every number only in a Space that matches `given`, for the export (newest first)."""
    if not lists_space_numbers(given):
        return SpaceNumber.objects.none()
    space_only = SpaceNumber.objects.filter(number_import__isnull=True)
    return space_filtered(space_only.select_related("project"), given).order_by("-pk")


def space_filtered(
    numbers: "QuerySet[SpaceNumber]", given: dict, fragments: list[str] | None = None
) -> "QuerySet[SpaceNumber]":
    """`numbers` (in a Space) narrowed by the search text and the filters that apply to them."""
    if "q" in given:
        numbers = matching(numbers, given["q"], fragments)
    numbers = numbers.filter(
        **{lookup: given[name] for name, lookup in SPACE_FILTER_LOOKUPS.items() if name in given}
    )
    if "capability" in given:
        numbers = numbers.filter(capabilities__holds=given["capability"])
    return numbers


def page(
    given: dict, start: int, size: int, fragments: list[str] | None = None
) -> list[NumberImport]:
    """Rows start to start + size of the numbers list for `given` (the search form's
    validated, non-empty fields), newest first."""
    listed = NumberImport.objects.select_related("project", "job__created_by").only(*LISTED)
    if "q" not in given:
        return list(filtered(listed, given).order_by("-pk")[start : start + size])
    if fragments is None:
        fragments = searched_fragments(given["q"])
    if fragments and connection.vendor == "postgresql" and set(given) <= {"q", *IN_SEARCH_ROWS}:
        # The narrow copy holds everything this search asks about (see NumberSearchRow).
        rows = NumberSearchRow.objects.filter(
            **{name: given[name] for name in IN_SEARCH_ROWS if name in given}
        )
        ids = newest_ids(rows, fragments, start + size)[start:]
        return list(listed.filter(pk__in=ids).order_by("-pk"))
    if fragments is None and connection.vendor == "postgresql":
        ids = newest_by_text(given, start + size)
        if ids is not None:
            return list(listed.filter(pk__in=ids[start:]).order_by("-pk"))
    return newest_page(filtered(listed, given, fragments), start, size)


def filtered(
    numbers: "QuerySet[NumberImport]", given: dict, fragments: list[str] | None = None
) -> "QuerySet[NumberImport]":
    """`numbers` narrowed by the search text and every filter in `given`."""
    drift = given.get("inventory")
    if drift == Drift.NOT_IMPORTED:
        return numbers.none()
    if drift == Drift.MISSING:
        numbers = numbers.filter(missing_from_space_since__isnull=False)
    elif drift == Drift.DIFFERS:
        # A join, not `pk IN (...)`: PostgreSQL then walks the few differing records newest
        # first (index spacenumber_differs) instead of the imports' million ids (0.2 ms
        # against 850 ms). A sync links an import to one record of its project's Space.
        numbers = numbers.filter(space_numbers__differs_from_import=True)
    if "q" in given:
        numbers = matching(numbers, given["q"], fragments)
    numbers = numbers.filter(
        **{lookup: given[name] for name, lookup in FILTER_LOOKUPS.items() if name in given}
    )
    if "capability" in given:
        numbers = numbers.filter(capabilities__holds=given["capability"])
    return numbers

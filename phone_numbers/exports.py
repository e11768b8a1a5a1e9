"""CSV downloads, streamed: one helper writes any export; each export is a list of columns.

A view chooses the rows (a filtered QuerySet) and one of the column lists below, and returns
`csv_response(rows, columns, filename)`.

The cost of a large export is per row, so a row is never a model instance, and the database
writes every cell it can: each column is an expression, `values_list` reads the cells as
tuples (in chunks through a server-side cursor on PostgreSQL) and csv.writer writes them as
they come. Python touches a cell only where SQL cannot write it as before (the audit's
changes, as json.dumps writes them). The lines of a chunk go out as one piece, which gunicorn
writes to the socket in one call instead of one a line (README, "Benchmarks":
bench/exports.py).
"""

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from django.db import models
from django.db.models import Case, F, QuerySet, Value, When
from django.db.models.functions import Concat, Left
from django.db.models.lookups import In
from django.http import StreamingHttpResponse

from phone_numbers.models import AuditAction, ImportStatus

# Rows fetched from the database at a time, and written out as one piece: a million rows
# never sit in memory.
CHUNK_SIZE = 2000

# A cell starting with one of these is a formula to a spreadsheet.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    """One column of an export: its header and what the database writes in its cell.

    `cell` is a path as `values_list` takes it ("job__ticket") or an expression
    (IsoFormat("created_at")). None (no line, no person, no project) is written as an empty
    cell. `value`, if given, is Python's part: it is called with what the database gave.

    `is_free_text` marks text that someone typed or a server sent (a ticket, a project's or
    number's name, SignalWire's message, a failed login's username): it may be typed to look
    like a formula, so such a cell is quoted. Other cells (an E.164 number's leading "+") are
    written as they are.
    """

    header: str
    cell: str | models.Expression
    is_free_text: bool = False
    value: Callable[[object], object] | None = None

    def expression(self) -> models.Expression:
        """What the query reads for this column."""
        read = F(self.cell) if isinstance(self.cell, str) else self.cell
        if self.is_free_text and self.value is None:
            return _quoted_if_formula(read)
        return read

    def python_cell(self, value: object) -> object:
        """The cell of a column with a `value`, from what the database gave."""
        cell = self.value(value) if self.value else value
        if self.is_free_text and isinstance(cell, str) and cell.startswith(_FORMULA_STARTS):
            return "'" + cell
        return cell


def _quoted_if_formula(text: models.Expression) -> Case:
    return Case(
        When(In(Left(text, 1), list(_FORMULA_STARTS)), then=Concat(Value("'"), text)),
        default=text,
        output_field=models.TextField(),
    )


# More rows for the same CSV: other rows, and columns of the same headers for them.
Section = tuple[QuerySet, Sequence[Column]]


def csv_chunks(
    rows: QuerySet, columns: Sequence[Column], then: Sequence[Section] = ()
) -> Iterator[str]:
    """The header line, then the lines of CHUNK_SIZE rows at a time; then the rows of each
    section of `then`, under the same header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([column.header for column in columns])
    yield buffer.getvalue()
    for section_rows, section_columns in [(rows, columns), *then]:
        in_python = [
            (at, column.python_cell) for at, column in enumerate(section_columns) if column.value
        ]
        tuples = section_rows.values_list(*[column.expression() for column in section_columns])
        tuples = tuples.iterator(chunk_size=CHUNK_SIZE)
        while chunk := list(islice(tuples, CHUNK_SIZE)):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(_with_python_cells(chunk, in_python) if in_python else chunk)
            yield buffer.getvalue()


def _with_python_cells(
    chunk: list[tuple], in_python: list[tuple[int, Callable[[object], object]]]
) -> list[list]:
    rows = []
    for row in chunk:
        cells = list(row)
        for at, python_cell in in_python:
            cells[at] = python_cell(cells[at])
        rows.append(cells)
    return rows


def csv_response(
    rows: QuerySet, columns: Sequence[Column], filename: str, then: Sequence[Section] = ()
) -> StreamingHttpResponse:
    """The rows (and those of `then`) as a CSV attachment named `filename`, streamed."""
    response = StreamingHttpResponse(csv_chunks(rows, columns, then), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class IsoFormat(models.Func):
    """A time as Python's `isoformat()` writes it in UTC, written by the database:
    "2026-11-30T09:16:01.123456+00:00", or without the fraction when it is 0.

    Reading a timestamp into a datetime (Django's time zone loader, in Python) costs more
    than all the other cells of a row; this text costs nothing to read.
    """

    output_field = models.TextField()
    template = (
        "regexp_replace(to_char(%(expressions)s AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '\\.000000$', '') || '+00:00'"
    )

    def as_sqlite(self, compiler, connection, **extra) -> tuple[str, list]:
        # SQLite holds the UTC time as Django wrote it: str() of the datetime.
        template = "replace(%(expressions)s, ' ', 'T') || '+00:00'"
        return super().as_sql(compiler, connection, template=template, **extra)


class Spaced(models.Func):
    """A JSON list of names written as one text, the names apart by spaces ("sms voice").

    For capabilities, whose names hold no bracket, quote, comma or space: PostgreSQL writes a
    list as `["sms", "voice"]`, which loses those characters but the spaces five times faster
    than it reads the list's items.
    """

    output_field = models.TextField()
    template = "replace(translate(%(expressions)s::text, '[]\"', ''), ',', '')"

    def as_sqlite(self, compiler, connection, **extra) -> tuple[str, list]:
        # json_each reads a list in its order; no name holds a space.
        template = "(SELECT group_concat(value, ' ') FROM json_each(%(expressions)s))"
        return super().as_sql(compiler, connection, template=template, **extra)


# SignalWire's message, for a number that was not imported.
_REASON = Case(
    When(status=ImportStatus.IMPORTED, then=Value("")),
    default=F("error_message"),
    output_field=models.TextField(),
)

# The numbers list's search.
NUMBER_COLUMNS = [
    Column("number", "number"),
    Column("project", "project__name", is_free_text=True),
    Column("space_host", "project__space_host"),
    Column("status", "status"),
    Column("number_type", "number_type"),
    Column("capabilities", Spaced("capabilities")),
    Column("friendly_name", "friendly_name", is_free_text=True),
    Column("sid", "sid"),
    Column("ticket", "job__ticket", is_free_text=True),
    Column("imported_by", "job__created_by__username"),
    Column("job", "job_id"),
    Column("created_at", IsoFormat("created_at")),
    Column("imported_at", IsoFormat("imported_at")),
    Column("reason", _REASON, is_free_text=True),
]

# What the numbers list's export says of a number only in a Space, under NUMBER_COLUMNS'
# headers: no import, so no ticket, person or job.
SPACE_ONLY_STATUS = "in_space_not_imported"
_NONE = Value("", output_field=models.TextField())
SPACE_NUMBER_COLUMNS = [
    Column("number", "number"),
    Column("project", "project__name", is_free_text=True),
    Column("space_host", "project__space_host"),
    Column("status", Value(SPACE_ONLY_STATUS, output_field=models.TextField())),
    Column("number_type", "number_type"),
    Column("capabilities", Spaced("capabilities")),
    Column("friendly_name", "friendly_name", is_free_text=True),
    Column("sid", "sid"),
    Column("ticket", _NONE),
    Column("imported_by", _NONE),
    Column("job", _NONE),
    # When SignalWire says the number came into the Space.
    Column("created_at", IsoFormat("date_created")),
    Column("imported_at", _NONE),
    Column("reason", _NONE),
]

# One import job's numbers.
JOB_COLUMNS = [
    Column("line", "input_line"),
    Column("number", "number"),
    Column("status", "status"),
    Column("number_type", "number_type"),
    Column("reason", _REASON, is_free_text=True),
    Column("sid", "sid"),
    Column("friendly_name", "friendly_name", is_free_text=True),
    Column("attempts", "attempts"),
    Column("imported_at", IsoFormat("imported_at")),
]

# A job's failed numbers as New import reads a CSV (number_input.read_csv): its three columns,
# capabilities written as that form writes them, and the reason, a column the import ignores.
FAILED_ROW_COLUMNS = [
    Column("number", "number"),
    Column("number_type", "number_type"),
    Column("capabilities", Spaced("capabilities")),
    Column("reason", "error_message", is_free_text=True),
]


def _audit_changes(changes: dict | None) -> str:
    return json.dumps(changes, sort_keys=True) if changes else ""


_ACTION_LABELS = dict(AuditAction.choices)

# The audit page's filter. Every text cell can carry what a person typed (a failed login's
# username, a target, changed values), so every one is quoted; an address (stored as one) and
# a job's id cannot begin as a formula does.
AUDIT_COLUMNS = [
    Column("time", IsoFormat("created_at"), is_free_text=True),
    Column("person", "username", is_free_text=True),
    Column("ip_address", "ip_address"),
    # An action the portal no longer has is written as stored, as Django's display does.
    Column(
        "action",
        "action",
        is_free_text=True,
        value=lambda action: _ACTION_LABELS.get(action, action),
    ),
    Column("project", "project__name", is_free_text=True),
    Column("job", "job_id"),
    Column("target", "target", is_free_text=True),
    # As json.dumps writes it: PostgreSQL's own text of a JSON value orders keys otherwise.
    Column("changes", "changes", is_free_text=True, value=_audit_changes),
]

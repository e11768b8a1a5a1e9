"""CSV downloads, streamed: one helper writes any export; each export is a list of columns.

A view chooses the rows (a filtered QuerySet) and one of the column lists below, and returns
`csv_response(rows, columns, filename)`.

The cost of a large export is per row, so a row is never a model instance: the query reads
only the columns' fields as tuples (`values_list`, in chunks through a server-side cursor on
PostgreSQL), each cell is a function of the tuple, and the lines of a chunk go out as one
piece, which gunicorn writes to the socket in one call instead of one a line
(README, "Benchmarks": bench/exports.py).
"""

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter

from django.db import models
from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from phone_numbers.models import AuditAction, ImportStatus

# Rows fetched from the database at a time, and written out as one piece: a million rows
# never sit in memory.
CHUNK_SIZE = 2000

# A cell starting with one of these is a formula to a spreadsheet.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    """One column of an export: its header, the fields it reads, and how they give its cell.

    `fields` are what `values_list` takes (a path such as "job__ticket", or an expression
    such as IsoFormat("created_at")); `value` is called with their values in that order, and
    without it the one field's value is the cell. None (no line, no person, no project) is
    written as an empty cell.

    `is_free_text` marks text that someone typed or a server sent (a ticket, a project's or
    number's name, SignalWire's message, a failed login's username): it may be typed to look
    like a formula, so such a cell is quoted. Other cells (an E.164 number's leading "+") are
    written as they are.
    """

    header: str
    fields: tuple[str | models.Expression, ...]
    value: Callable[..., object] | None = None
    is_free_text: bool = False

    def reader(self, positions: dict[str | models.Expression, int]) -> Callable[[tuple], object]:
        """The cell of a row read as a tuple whose values are at `positions`."""
        at = [positions[field] for field in self.fields]
        value = self.value
        if value is None:
            read: Callable[[tuple], object] = itemgetter(*at)
        elif len(at) == 1:
            (only,) = at

            def read(row: tuple) -> object:
                return value(row[only])
        else:

            def read(row: tuple) -> object:
                return value(*[row[position] for position in at])

        if not self.is_free_text:
            return read
        return lambda row: _defused(read(row))


def _defused(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_chunks(rows: QuerySet, columns: Sequence[Column]) -> Iterator[str]:
    """The header line, then the lines of CHUNK_SIZE rows at a time."""
    fields = list(dict.fromkeys(field for column in columns for field in column.fields))
    positions = {field: at for at, field in enumerate(fields)}
    readers = [column.reader(positions) for column in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([column.header for column in columns])
    yield buffer.getvalue()
    tuples = rows.values_list(*fields).iterator(chunk_size=CHUNK_SIZE)
    while chunk := list(islice(tuples, CHUNK_SIZE)):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([[read(row) for read in readers] for row in chunk])
        yield buffer.getvalue()


def csv_response(rows: QuerySet, columns: Sequence[Column], filename: str) -> StreamingHttpResponse:
    """The rows as a CSV attachment named `filename`, streamed."""
    response = StreamingHttpResponse(csv_chunks(rows, columns), content_type="text/csv")
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


def _reason(status: str, message: str) -> str:
    return message if status != ImportStatus.IMPORTED else ""


def _spaced(capabilities: list[str]) -> str:
    return " ".join(capabilities)


# The numbers list's search.
NUMBER_COLUMNS = [
    Column("number", ("number",)),
    Column("project", ("project__name",), is_free_text=True),
    Column("space_host", ("project__space_host",)),
    Column("status", ("status",)),
    Column("number_type", ("number_type",)),
    Column("capabilities", ("capabilities",), _spaced),
    Column("friendly_name", ("friendly_name",), is_free_text=True),
    Column("sid", ("sid",)),
    Column("ticket", ("job__ticket",), is_free_text=True),
    Column("imported_by", ("job__created_by__username",)),
    Column("job", ("job_id",)),
    Column("created_at", (IsoFormat("created_at"),)),
    Column("imported_at", (IsoFormat("imported_at"),)),
    Column("reason", ("status", "error_message"), _reason, is_free_text=True),
]

# One import job's numbers.
JOB_COLUMNS = [
    Column("line", ("input_line",)),
    Column("number", ("number",)),
    Column("status", ("status",)),
    Column("number_type", ("number_type",)),
    Column("reason", ("status", "error_message"), _reason, is_free_text=True),
    Column("sid", ("sid",)),
    Column("friendly_name", ("friendly_name",), is_free_text=True),
    Column("attempts", ("attempts",)),
    Column("imported_at", (IsoFormat("imported_at"),)),
]

# A job's failed numbers as New import reads a CSV (number_input.read_csv): its three columns,
# capabilities written as that form writes them, and the reason, a column the import ignores.
FAILED_ROW_COLUMNS = [
    Column("number", ("number",)),
    Column("number_type", ("number_type",)),
    Column("capabilities", ("capabilities",), _spaced),
    Column("reason", ("error_message",), is_free_text=True),
]


def _audit_changes(changes: dict | None) -> str:
    return json.dumps(changes, sort_keys=True) if changes else ""


_ACTION_LABELS = dict(AuditAction.choices)

# The audit page's filter. Every cell can carry what a person typed (a failed login's username,
# a target, changed values), so every cell is quoted.
AUDIT_COLUMNS = [
    Column("time", (IsoFormat("created_at"),), is_free_text=True),
    Column("person", ("username",), is_free_text=True),
    Column("ip_address", ("ip_address",), is_free_text=True),
    # An action the portal no longer has is written as stored, as Django's display does.
    Column(
        "action",
        ("action",),
        lambda action: _ACTION_LABELS.get(action, action),
        is_free_text=True,
    ),
    Column("project", ("project__name",), is_free_text=True),
    Column("job", ("job_id",), is_free_text=True),
    Column("target", ("target",), is_free_text=True),
    Column("changes", ("changes",), _audit_changes, is_free_text=True),
]

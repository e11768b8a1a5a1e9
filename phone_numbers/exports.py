"""CSV downloads, streamed: one helper writes any export; each export is a list of columns.

A view chooses the rows (a filtered QuerySet) and one of the column lists below, and returns
`csv_response(rows, columns, filename)`.
"""

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from phone_numbers.models import AuditEntry, ImportStatus, NumberImport

# Rows fetched from the database at a time: a million rows never sit in memory.
CHUNK_SIZE = 2000

# A cell starting with one of these is a formula to a spreadsheet.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    """One column of an export: its header, and how a row gives its cell.

    `is_free_text` marks text that someone typed or a server sent (a ticket, a project's or
    number's name, SignalWire's message, a failed login's username): it may be typed to look
    like a formula, so such a cell is quoted. Other cells (an E.164 number's leading "+") are
    written as they are.
    """

    header: str
    value: Callable[[Any], object]
    is_free_text: bool = False

    def cell(self, row: object) -> object:
        value = self.value(row)
        if self.is_free_text and isinstance(value, str) and value.startswith(_FORMULA_STARTS):
            return "'" + value
        return value


class _Echo:
    """A file-like object whose write returns the line, for streaming CSV."""

    def write(self, value: str) -> str:
        return value


# More rows for the same CSV: other rows, and columns of the same headers for them.
Section = tuple[QuerySet, Sequence[Column]]


def csv_lines(
    rows: QuerySet, columns: Sequence[Column], then: Sequence[Section] = ()
) -> Iterator[str]:
    """The header line, then one line per row, read from the database in chunks; then the
    rows of each section of `then`, under the same header."""
    writer = csv.writer(_Echo())
    yield writer.writerow([column.header for column in columns])
    for section_rows, section_columns in [(rows, columns), *then]:
        for row in section_rows.iterator(chunk_size=CHUNK_SIZE):
            yield writer.writerow([column.cell(row) for column in section_columns])


def csv_response(
    rows: QuerySet, columns: Sequence[Column], filename: str, then: Sequence[Section] = ()
) -> StreamingHttpResponse:
    """The rows (and those of `then`) as a CSV attachment named `filename`, streamed."""
    response = StreamingHttpResponse(csv_lines(rows, columns, then), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _reason(number: NumberImport) -> str:
    return number.error_message if number.status != ImportStatus.IMPORTED else ""


def _isoformat_or_blank(moment) -> str:
    return moment.isoformat() if moment else ""


# The numbers list's search (rows with select_related("project", "job__created_by")).
NUMBER_COLUMNS = [
    Column("number", lambda number: number.number),
    Column("project", lambda number: number.project.name, is_free_text=True),
    Column("space_host", lambda number: number.project.space_host),
    Column("status", lambda number: number.status),
    Column("number_type", lambda number: number.number_type),
    Column("capabilities", lambda number: " ".join(number.capabilities)),
    Column("friendly_name", lambda number: number.friendly_name, is_free_text=True),
    Column("sid", lambda number: number.sid),
    Column("ticket", lambda number: number.job.ticket, is_free_text=True),
    Column(
        "imported_by",
        lambda number: number.job.created_by.get_username() if number.job.created_by else "",
    ),
    Column("job", lambda number: number.job_id),
    Column("created_at", lambda number: number.created_at.isoformat()),
    Column("imported_at", lambda number: _isoformat_or_blank(number.imported_at)),
    Column("reason", _reason, is_free_text=True),
]

# What the numbers list's export says of a number only in a Space, under NUMBER_COLUMNS'
# headers (rows with select_related("project")): no import, so no ticket, person or job.
SPACE_ONLY_STATUS = "in_space_not_imported"
SPACE_NUMBER_COLUMNS = [
    Column("number", lambda number: number.number),
    Column("project", lambda number: number.project.name, is_free_text=True),
    Column("space_host", lambda number: number.project.space_host),
    Column("status", lambda number: SPACE_ONLY_STATUS),
    Column("number_type", lambda number: number.number_type),
    Column("capabilities", lambda number: " ".join(number.capabilities)),
    Column("friendly_name", lambda number: number.friendly_name, is_free_text=True),
    Column("sid", lambda number: number.sid),
    Column("ticket", lambda number: ""),
    Column("imported_by", lambda number: ""),
    Column("job", lambda number: ""),
    # When SignalWire says the number came into the Space.
    Column("created_at", lambda number: _isoformat_or_blank(number.date_created)),
    Column("imported_at", lambda number: ""),
    Column("reason", lambda number: ""),
]

# One import job's numbers.
JOB_COLUMNS = [
    Column("line", lambda number: number.input_line or ""),
    Column("number", lambda number: number.number),
    Column("status", lambda number: number.status),
    Column("number_type", lambda number: number.number_type),
    Column("reason", _reason, is_free_text=True),
    Column("sid", lambda number: number.sid),
    Column("friendly_name", lambda number: number.friendly_name, is_free_text=True),
    Column("attempts", lambda number: number.attempts),
    Column("imported_at", lambda number: _isoformat_or_blank(number.imported_at)),
]


def _audit_changes(entry: AuditEntry) -> str:
    return json.dumps(entry.changes, sort_keys=True) if entry.changes else ""


# The audit page's filter (rows with select_related("project")). Every cell can carry what a
# person typed (a failed login's username, a target, changed values), so every cell is quoted.
AUDIT_COLUMNS = [
    Column("time", lambda entry: entry.created_at.isoformat(), is_free_text=True),
    Column("person", lambda entry: entry.username, is_free_text=True),
    Column("ip_address", lambda entry: entry.ip_address or "", is_free_text=True),
    Column("action", lambda entry: entry.get_action_display(), is_free_text=True),
    Column("project", lambda entry: entry.project.name if entry.project else "", is_free_text=True),
    Column("job", lambda entry: entry.job_id or "", is_free_text=True),
    Column("target", lambda entry: entry.target, is_free_text=True),
    Column("changes", _audit_changes, is_free_text=True),
]

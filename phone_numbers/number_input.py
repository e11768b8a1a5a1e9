"""Reading the numbers people paste or upload: lines and CSV rows in, E.164 or a reason out.

No database and no network here: `importing.preview` adds what needs the database (numbers
already imported into the project).
"""

import csv
import io
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from phone_numbers.countries import country_names

NUMBER_TYPES = ("longcode", "tollfree")
CAPABILITIES = ("sms", "voice", "fax", "mms")
MAX_INPUT_LINE_LENGTH = 100
CSV_MAX_BYTES = 5 * 1024 * 1024
CSV_TOO_LARGE = f"The file is larger than {CSV_MAX_BYTES // (1024 * 1024)} MB: split it."
CSV_MAX_ROWS = 50_000
_CAPABILITY_SEPARATORS = re.compile(r"[\s,;|/+]+")


class InputError(Exception):
    """The whole input is unusable (e.g. a CSV without a number column); nothing is read."""


@dataclass(frozen=True)
class InputLine:
    """One line of the input as typed, with the per-row overrides a CSV may carry."""

    line_number: int
    text: str
    number_type: str | None = None
    capabilities: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ReadNumber:
    """A number read from one line: its E.164 form and how it was read, or why it was not."""

    e164: str | None
    how_read: str = ""
    problem: str = ""

    @property
    def is_valid(self) -> bool:
        return self.e164 is not None


def read_number(text: str, default_country: str) -> ReadNumber:
    """Read one written phone number, assuming `default_country` when it has no country code."""
    text = text.strip()
    if text.lower().startswith("tel:"):
        # RFC 3966 URIs may carry parameters (";ext=...") after the number.
        text = text[4:].split(";", 1)[0]
    if not any(char.isdigit() for char in text):
        return ReadNumber(None, problem="Not a phone number")
    if len(text) > MAX_INPUT_LINE_LENGTH:
        return ReadNumber(None, problem="Too long to be a phone number")
    country = country_names().get(default_country, default_country)
    try:
        number = phonenumbers.parse(text, default_country, keep_raw_input=True)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            return ReadNumber(None, problem="Unknown country code")
        if exc.error_type in (
            NumberParseException.TOO_SHORT_NSN,
            NumberParseException.TOO_SHORT_AFTER_IDD,
        ):
            return ReadNumber(None, problem="Too short to be a phone number")
        return ReadNumber(None, problem="Not a phone number")

    international = number.country_code_source in (
        phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_PLUS_SIGN,
        phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_IDD,
    )
    if not international and text.lstrip("( ").startswith("00"):
        # 00 is the international prefix in most of the world, though not in the default
        # country (e.g. 011 in the US): read it as such, and say so.
        with_plus = read_number("+" + text.lstrip("( ")[2:], default_country)
        if with_plus.is_valid:
            how_read = f"{with_plus.how_read}, 00 read as the international prefix"
            return ReadNumber(with_plus.e164, how_read=how_read)
    if not phonenumbers.is_valid_number(number):
        return ReadNumber(None, problem=_why_invalid(number, country, international))
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if international:
        region = phonenumbers.region_code_for_number(number)
        how_read = f"International number ({country_names().get(region, region)})"
    else:
        how_read = f"Assumed {country}, the project's default country"
    return ReadNumber(e164, how_read=how_read)


def _why_invalid(number: phonenumbers.PhoneNumber, country: str, international: bool) -> str:
    region = phonenumbers.region_code_for_country_code(number.country_code)
    where = country_names().get(region, "its country") if international else country
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason == ValidationResult.INVALID_COUNTRY_CODE:
        return "Unknown country code"
    if reason in (ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        return f"Too short for a number in {where}: include the area code"
    if reason == ValidationResult.TOO_LONG:
        return f"Too long for a number in {where}"
    if reason == ValidationResult.INVALID_LENGTH:
        return f"Wrong number of digits for a number in {where}"
    return f"Not a valid number in {where}"


def read_pasted(text: str) -> list[InputLine]:
    """One number a line; blank lines are skipped but keep the line numbering people see."""
    return [
        InputLine(line_number=index, text=line.strip())
        for index, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def read_csv(data: bytes) -> list[InputLine]:
    """Rows of a CSV with a `number` column and optional `number_type` and `capabilities`.

    Raises InputError naming the line or column at the first problem, so that nothing of a
    half-understood file is imported.
    """
    if len(data) > CSV_MAX_BYTES:
        raise InputError(CSV_TOO_LARGE)
    if b"\x00" in data:
        raise InputError("The file is not CSV text (is it a spreadsheet? Save it as CSV first).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet programs on Windows save CSV in this encoding.
        text = data.decode("cp1252", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise InputError("The file is empty.") from None
    columns = [name.strip().lower().replace(" ", "_") for name in header]
    if "number" not in columns:
        raise InputError(
            "The CSV has no “number” column. Its first line must name the columns, e.g. "
            "number,number_type,capabilities"
        )
    number_at = columns.index("number")
    type_at = columns.index("number_type") if "number_type" in columns else None
    capabilities_at = columns.index("capabilities") if "capabilities" in columns else None

    lines: list[InputLine] = []
    try:
        for row in reader:
            line_number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(lines) >= CSV_MAX_ROWS:
                raise InputError(f"The file has more than {CSV_MAX_ROWS:,} rows: split it.")
            lines.append(
                InputLine(
                    line_number=line_number,
                    text=_cell(row, number_at),
                    number_type=_number_type(_cell(row, type_at), line_number),
                    capabilities=_capabilities(_cell(row, capabilities_at), line_number),
                )
            )
    except csv.Error as exc:
        raise InputError(f"Line {reader.line_num} of the CSV cannot be read: {exc}.") from None
    return lines


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def _number_type(value: str, line_number: int) -> str | None:
    if not value:
        return None
    normalised = value.lower().replace("-", "").replace(" ", "").replace("_", "")
    if normalised not in NUMBER_TYPES:
        raise InputError(
            f"Line {line_number}, column number_type: “{value}” is not a number type "
            "(use longcode or tollfree)."
        )
    return normalised


def _capabilities(value: str, line_number: int) -> tuple[str, ...] | None:
    if not value:
        return None
    names = [name for name in _CAPABILITY_SEPARATORS.split(value.lower()) if name]
    unknown = [name for name in names if name not in CAPABILITIES]
    if unknown:
        raise InputError(
            f"Line {line_number}, column capabilities: “{unknown[0]}” is not a capability "
            "(use sms, voice, fax, mms)."
        )
    return tuple(name for name in CAPABILITIES if name in names)

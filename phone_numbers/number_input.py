"""Reading the numbers people paste or upload: lines and CSV rows in, E.164 or a reason out.

No database and no network here: `importing.preview` adds what needs the database (numbers
already imported into the project).
"""

import csv
import functools
import io
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneNumberFormat,
    PhoneNumberType,
    ValidationResult,
)

from phone_numbers.capabilities import CAPABILITIES
from phone_numbers.countries import country_names

NUMBER_TYPES = ("longcode", "tollfree")
MAX_INPUT_LINE_LENGTH = 100
CSV_MAX_BYTES = 5 * 1024 * 1024
CSV_TOO_LARGE = f"The file is larger than {CSV_MAX_BYTES // (1024 * 1024)} MB: split it."
CSV_MAX_ROWS = 50_000
# A file with more bad rows than this most likely has a wrong column: the first hundred are
# enough to see which, and the page stays readable.
MAX_REPORTED_BAD_ROWS = 100
_CAPABILITY_SEPARATORS = re.compile(r"[\s,;|/+]+")


class InputError(Exception):
    """The whole input is unusable (e.g. a CSV without a number column); nothing is read.

    `problems` says what to correct, one sentence each: a CSV's bad rows give one a row.
    """

    def __init__(self, *problems: str) -> None:
        super().__init__(*problems)
        self.problems = list(problems)

    def __str__(self) -> str:
        return " ".join(self.problems)


class _BadCell(ValueError):
    """A cell of a CSV row that cannot be used; read_csv adds its line and column."""


@dataclass(frozen=True)
class InputLine:
    """One line of the input as typed, with the per-row overrides a CSV may carry."""

    line_number: int
    text: str
    number_type: str | None = None
    capabilities: tuple[str, ...] | None = None
    # Choices the person made in the preview: of a line's two readings, the one meant (an
    # E.164 number); the type to import the row as, over the number's own and the CSV's.
    reading: str | None = None
    type_choice: str | None = None


@dataclass(frozen=True)
class ReadNumber:
    """A number read from one line: its E.164 form and how it was read, or why it was not.

    A line that reads as two different valid numbers has no E.164 form: its `alternatives`
    are both readings, and the person chooses.
    """

    e164: str | None
    how_read: str = ""
    problem: str = ""
    alternatives: tuple["ReadNumber", ...] = ()

    @property
    def is_valid(self) -> bool:
        return self.e164 is not None


_INTERNATIONAL_SOURCES = (
    phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_PLUS_SIGN,
    phonenumbers.CountryCodeSource.FROM_NUMBER_WITH_IDD,
)


def read_number(text: str, default_country: str) -> ReadNumber:
    """Read one written phone number, assuming `default_country` when it has no country code.

    Never a silent guess: `00` is the international prefix in most of the world, but some
    countries dial out with 00 and a carrier code (e.g. 0016 from Australia), so a line
    starting with 00 may be read both ways. When both readings are valid numbers, the line
    offers both; when one is, it is taken and `how_read` says how. A lone letter among the
    digits is refused naming the digit it looks like; letters in one block at the end are
    read as keypad digits, and an extension is left out, each said in `how_read`.
    """
    text, extension = text.strip(), ""
    if text.lower().startswith("tel:"):
        # RFC 3966 URIs may carry parameters (";ext=...", ";phone-context=...") after the number.
        text, *parameters = text[4:].split(";")
        extension = next((value[4:] for value in parameters if value.startswith("ext=")), "")
    if not any(char.isdigit() for char in text):
        return ReadNumber(None, problem="Not a phone number")
    if len(text) > MAX_INPUT_LINE_LENGTH:
        return ReadNumber(None, problem="Too long to be a phone number")
    if not extension:
        text, extension = _without_extension(text)
    notes = [f"extension x{extension} left out"] if extension else []
    letters = _LETTERS_AFTER_FIRST_DIGIT.search(text)
    if letters and not _is_vanity(text):
        return ReadNumber(None, problem=_lone_letter_problem(letters.group(1)))
    if letters:
        text = phonenumbers.convert_alpha_characters_in_number(text)
        notes.insert(0, "letters read as keypad digits")
    read = _read_digits(text, default_country)
    if letters and read.problem and not read.alternatives:
        return ReadNumber(None, problem=f"{read.problem} (letters read as keypad digits)")
    return _noted(read, notes, keypad=bool(letters)) if notes else read


# An extension at the end: "x5", "ext. 5", "extension 5", "#5", or a tel: URI's ";ext=5". The
# import is of the number: SignalWire has no extensions, so it is left out and the preview
# says so.
_EXTENSION = re.compile(
    r"\s*(?:[,;]?\s*(?:ext(?:ension)?\.?|x|#)|;ext=)\s*(\d{1,8})$", re.IGNORECASE
)
_LETTERS_AFTER_FIRST_DIGIT = re.compile(r"(?<=\d)\D*?([A-Za-z])")
# A vanity number: its letters in one block at the end (1-800-FLOWERS), not only letters that
# look like digits (415-555-01OO is a typo, not a word).
_VANITY_WORDS = re.compile(r"\d[\s.-]*([A-Za-z]+(?:-[A-Za-z]+)*)[\s.-]*$")
_DIGIT_LOOKALIKES = {"O": "0", "o": "0", "I": "1", "i": "1", "l": "1"}


def _is_vanity(text: str) -> bool:
    words = _VANITY_WORDS.search(text)
    return bool(words) and any(
        letter.isalpha() and letter not in _DIGIT_LOOKALIKES for letter in words.group(1)
    )


def _without_extension(text: str) -> tuple[str, str]:
    match = _EXTENSION.search(text)
    if not match or not any(char.isdigit() for char in text[: match.start()]):
        return text, ""
    return text[: match.start()], match.group(1)


def _lone_letter_problem(letter: str) -> str:
    if digit := _DIGIT_LOOKALIKES.get(letter):
        return f"letter {letter} where a digit was expected: did you mean {digit}?"
    return f"letter {letter} where a digit was expected: write the number in digits"


def _noted(read: ReadNumber, notes: list[str], *, keypad: bool) -> ReadNumber:
    """`read`, and each of its readings, with what the line held besides digits."""

    def noted(reading: ReadNumber) -> ReadNumber:
        said = [
            f"{note}: {_spoken(reading.e164)}" if keypad and index == 0 else note
            for index, note in enumerate(notes)
        ]
        return ReadNumber(reading.e164, how_read="; ".join([reading.how_read, *said]))

    if read.is_valid:
        return noted(read)
    return ReadNumber(
        None, problem=read.problem, alternatives=tuple(noted(each) for each in read.alternatives)
    )


def _read_digits(text: str, default_country: str) -> ReadNumber:
    """Read a number written in digits (with separators and maybe + or 00)."""
    if text.startswith("+"):
        return _read_international(text)
    unprefixed = text.lstrip("( ")
    if not unprefixed.startswith("00"):
        return _read_in_country(text, default_country)
    with_plus = _read_international("+" + unprefixed[2:])
    as_written = _read_in_country(text, default_country, known=with_plus)
    if with_plus.is_valid:
        with_plus = ReadNumber(
            with_plus.e164, how_read=f"{with_plus.how_read}, 00 read as the international prefix"
        )
    if as_written.is_valid and with_plus.is_valid and as_written.e164 != with_plus.e164:
        as_written = _with_own_prefix(as_written, unprefixed, default_country)
        return ReadNumber(
            None,
            problem=f"Two readings: {_spoken(as_written.e164)} ({as_written.how_read}) or "
            f"{_spoken(with_plus.e164)} ({with_plus.how_read}): choose one",
            alternatives=(as_written, with_plus),
        )
    if as_written.is_valid:
        return as_written
    # Neither valid: the problem of 00 as the international prefix, the usual reading; the
    # other may name a country nobody meant (0065… from Singapore read as +56, Chile).
    return with_plus


def _with_own_prefix(read: ReadNumber, written: str, default_country: str) -> ReadNumber:
    """`read` saying which of the written digits were the default country's own prefix
    (e.g. 0016: Australia's international prefix with a carrier code)."""
    digits = re.sub(r"\D", "", written)
    prefix = digits[: len(digits) - len(read.e164) + 1]
    if not prefix or read.how_read.startswith("Assumed"):
        return read
    country = country_names().get(default_country, default_country)
    return ReadNumber(
        read.e164, how_read=f"{read.how_read}, {prefix} read as {country}'s international prefix"
    )


def _spoken(e164: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(e164), PhoneNumberFormat.INTERNATIONAL)


@functools.lru_cache(maxsize=8192)
def _read_international(text: str) -> ReadNumber:
    """A number written with +: the default country plays no part, so the reading is kept
    (a paste of thousands of lines, or the sweep test, reads the same few texts often)."""
    return _read_in_country(text, None)


def _read_in_country(
    text: str, default_country: str | None, known: ReadNumber | None = None
) -> ReadNumber:
    """phonenumbers' one reading of `text`, with `default_country` for numbers without a
    country code. `known`: a valid reading already made, taken as is if this is the same
    number (checking validity is half the time of a reading)."""
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

    international = number.country_code_source in _INTERNATIONAL_SOURCES
    e164 = f"+{number.country_code}{phonenumbers.national_significant_number(number)}"
    if known is not None and international and known.e164 == e164:
        return known
    if not phonenumbers.is_valid_number(number):
        return ReadNumber(None, problem=_why_invalid(number, country, international))
    if international:
        region = phonenumbers.region_code_for_number(number)
        how_read = f"International number ({country_names().get(region, region)})"
    else:
        how_read = f"Assumed {country}, the project's default country"
    return ReadNumber(e164, how_read=how_read)


_LONG_CODE_TYPES = (
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
)


def number_type_of(e164: str) -> str | None:
    """ "tollfree" or "longcode" when the number's own range says which, else None (premium
    rate, shared cost, personal numbers… are neither for sure)."""
    kind = phonenumbers.number_type(phonenumbers.parse(e164))
    if kind == PhoneNumberType.TOLL_FREE:
        return "tollfree"
    return "longcode" if kind in _LONG_CODE_TYPES else None


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

    Raises InputError naming what is wrong with the file, or every bad row's line and column
    (the first MAX_REPORTED_BAD_ROWS of them), so that nothing of a half-understood file is
    imported and one correction fixes them all.
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
    bad_rows: list[str] = []
    try:
        for row in reader:
            line_number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(lines) >= CSV_MAX_ROWS:
                raise InputError(f"The file has more than {CSV_MAX_ROWS:,} rows: split it.")
            cell_problems = []
            number_type = capabilities = None
            try:
                number_type = _number_type(_cell(row, type_at))
            except _BadCell as exc:
                cell_problems.append(f"column number_type: {exc}")
            try:
                capabilities = _capabilities(_cell(row, capabilities_at))
            except _BadCell as exc:
                cell_problems.append(f"column capabilities: {exc}")
            if cell_problems:
                bad_rows.append(f"Line {line_number}, {'; '.join(cell_problems)}.")
            lines.append(
                InputLine(
                    line_number=line_number,
                    text=_cell(row, number_at),
                    number_type=number_type,
                    capabilities=capabilities,
                )
            )
    except csv.Error as exc:
        # The reader cannot go on past such a line: the rows after it are not checked.
        bad_rows.append(f"Line {reader.line_num} of the CSV cannot be read: {exc}.")
    if bad_rows:
        raise _refusal(bad_rows)
    return lines


def _refusal(bad_rows: list[str]) -> InputError:
    shown = bad_rows[:MAX_REPORTED_BAD_ROWS]
    more = len(bad_rows) - len(shown)
    summary = (
        "1 row of the CSV needs correcting"
        if len(bad_rows) == 1
        else f"{len(bad_rows):,} rows of the CSV need correcting"
    )
    return InputError(
        f"{summary}; nothing is imported from the file until then.",
        *shown,
        *([f"…and {more:,} more bad rows."] if more else []),
    )


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def _number_type(value: str) -> str | None:
    if not value:
        return None
    normalised = value.lower().replace("-", "").replace(" ", "").replace("_", "")
    if normalised not in NUMBER_TYPES:
        raise _BadCell(f"“{value}” is not a number type (use longcode or tollfree)")
    return normalised


def _capabilities(value: str) -> tuple[str, ...] | None:
    if not value:
        return None
    names = [name for name in _CAPABILITY_SEPARATORS.split(value.lower()) if name]
    unknown = [name for name in names if name not in CAPABILITIES]
    if unknown:
        raise _BadCell(f"“{unknown[0]}” is not a capability (use {', '.join(CAPABILITIES)})")
    return tuple(name for name in CAPABILITIES if name in names)

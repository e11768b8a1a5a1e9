from collections import Counter

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from phone_numbers.forms import ImportForm
from phone_numbers.number_input import (
    MAX_REPORTED_BAD_ROWS,
    InputError,
    ReadNumber,
    read_csv,
    read_number,
    read_pasted,
)

pytestmark = pytest.mark.both_databases


def example_numbers():
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number(region)
        if example is not None:
            yield region, example


@pytest.mark.parametrize(("region", "example"), list(example_numbers()))
def test_every_regions_example_number_reads_the_same_in_every_written_form(region, example):
    e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
    international = phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL)
    written_forms = {
        "E.164": (e164, "US"),
        "international with spaces": (international, "US"),
        "tel: URI": (phonenumbers.format_number(example, PhoneNumberFormat.RFC3966), "US"),
        "00 prefix": ("00" + e164[1:], "US"),
        "dots": (international.replace(" ", "."), "FR"),
        "national, its own country": (
            phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL),
            region,
        ),
    }

    for form, (text, default_country) in written_forms.items():
        read = read_number(text, default_country)
        assert read.e164 == e164, f"{form}: {text!r} read as {read}"


@pytest.mark.parametrize(
    ("text", "country", "e164", "how_read"),
    [
        ("(415) 555-0100", "US", "+14155550100", "Assumed United States"),
        ("+1 415 555 0100", "GB", "+14155550100", "International number (United States)"),
        ("tel:+1-415-555-0100;ext=12", "US", "+14155550100", "International"),
        ("0044 20 7946 0958", "US", "+442079460958", "00 read as the international prefix"),
        ("020 7946 0958", "GB", "+442079460958", "Assumed United Kingdom"),
        ("011 44 20 7946 0958", "US", "+442079460958", "International number (United Kingdom)"),
        ("  415.555.0100  ", "US", "+14155550100", "Assumed United States"),
    ],
)
def test_usual_ways_of_writing_a_number_say_how_they_were_read(text, country, e164, how_read):
    read = read_number(text, country)

    assert read.e164 == e164
    assert how_read in read.how_read


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hello", "Not a phone number"),
        ("---", "Not a phone number"),
        ("5550100", "Too short for a number in United States: include the area code"),
        ("+1 415 555 01000", "Too long"),
        ("+999 1234567", "Unknown country code"),
        ("+44 20 7946 095", "Not a valid number in United Kingdom"),
        ("1" * 150, "Too long to be a phone number"),
    ],
)
def test_what_is_not_a_number_is_rejected_with_a_reason(text, problem):
    read = read_number(text, "US")

    assert read.e164 is None
    assert problem in read.problem


def test_pasted_text_skips_blank_lines_but_keeps_line_numbers():
    lines = read_pasted("+1 415 555 0100\n\n  \n(415) 555-0101\r\n")

    assert [(line.line_number, line.text) for line in lines] == [
        (1, "+1 415 555 0100"),
        (4, "(415) 555-0101"),
    ]


def test_a_paste_of_50000_lines_is_accepted_and_one_line_more_is_refused_naming_the_limit(
    make_project,
):
    project = make_project()

    def pasted(count: int) -> ImportForm:
        # Through the form, where the paste limit lives; the preview of 50,000 numbers is slow.
        return ImportForm(
            {
                "project": project.pk,
                "numbers": "+14155550100\n" * count,
                "number_type": "longcode",
                "capabilities": ["sms"],
            }
        )

    at_limit, over_limit = pasted(50_000), pasted(50_001)

    assert at_limit.is_valid(), at_limit.errors
    assert len(at_limit.cleaned_data["lines"]) == 50_000
    assert not over_limit.is_valid()
    assert over_limit.errors["numbers"] == ["More than 50,000 lines: split the list into parts."]


def test_csv_rows_carry_their_own_type_and_capabilities():
    data = (
        b'Number,Number Type,Capabilities\n+14155550100,tollfree,"sms, voice"\n\n(415) 555-0101,,\n'
    )

    first, second = read_csv(data)

    assert (first.line_number, first.text, first.number_type) == (2, "+14155550100", "tollfree")
    assert first.capabilities == ("sms", "voice")
    assert (second.line_number, second.number_type, second.capabilities) == (4, None, None)


def test_csv_in_a_windows_encoding_with_a_byte_order_mark_is_read():
    assert read_csv("\ufeffnumber\n+14155550100\n".encode("utf-8"))[0].text == "+14155550100"
    assert read_csv("number,note\n+14155550100,café\n".encode("cp1252"))[0].text == "+14155550100"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"phone\n+14155550100\n", "no “number” column"),
        (b"PK\x03\x04\x00\x00binary", "not CSV text"),
        (b"number,number_type\n+14155550100,mobile\n", "Line 2, column number_type"),
        (b"number,capabilities\n+1415\n+14155550100,sms;video\n", "Line 3, column capabilities"),
        (b"number\n" + b"+14155550100\n" * 50_001, "more than 50,000 rows"),
        (b"number\n" + b"x" * (5 * 1024 * 1024), "larger than 5 MB"),
    ],
)
def test_an_unusable_csv_is_refused_naming_the_line_or_column(data, message):
    with pytest.raises(InputError) as info:
        read_csv(data)

    assert message in str(info.value)


def test_a_csv_with_several_bad_rows_is_refused_naming_every_one():
    data = (
        b"number,number_type,capabilities\n"
        b"+14155550100,mobile,sms\n"
        b"+14155550101,tollfree,voice\n"
        b"+14155550102,,telex\n"
        b"+14155550103,pager,sms;video\n"
    )

    with pytest.raises(InputError) as info:
        read_csv(data)

    assert info.value.problems == [
        "3 rows of the CSV need correcting; nothing is imported from the file until then.",
        "Line 2, column number_type: “mobile” is not a number type (use longcode or tollfree).",
        "Line 4, column capabilities: “telex” is not a capability (use sms, voice, fax, mms).",
        "Line 5, column number_type: “pager” is not a number type (use longcode or tollfree); "
        "column capabilities: “video” is not a capability (use sms, voice, fax, mms).",
    ]


def test_a_csv_with_more_bad_rows_than_the_limit_lists_the_first_and_counts_the_rest():
    data = b"number,number_type\n" + b"+14155550100,mobile\n" * 250

    with pytest.raises(InputError) as info:
        read_csv(data)

    summary, *rows, more = info.value.problems
    assert summary.startswith("250 rows of the CSV need correcting")
    assert len(rows) == MAX_REPORTED_BAD_ROWS == 100
    assert rows[0].startswith("Line 2, column number_type")
    assert rows[-1].startswith("Line 101, column number_type")
    assert more == "…and 150 more bad rows."


def test_a_csv_with_exactly_the_limit_of_bad_rows_lists_them_all():
    data = b"number,number_type\n" + b"+14155550100,mobile\n" * 100

    with pytest.raises(InputError) as info:
        read_csv(data)

    assert len(info.value.problems) == 101
    assert info.value.problems[-1].startswith("Line 101, column number_type")


def test_an_unreadable_line_is_reported_after_the_bad_rows_before_it():
    data = b'number,number_type\n+14155550100,mobile\n"' + b"1" * 200_000 + b'"\n'

    with pytest.raises(InputError) as info:
        read_csv(data)

    assert info.value.problems[1].startswith("Line 2, column number_type")
    assert info.value.problems[2].startswith("Line 3 of the CSV cannot be read: field larger")


# --------------------------------------------------------------------------------------------
# The sweep: every example number the library has, in every written form, in every default
# country. A line is read as the number meant, offered as one of two readings, or refused;
# never silently read as another number.
# --------------------------------------------------------------------------------------------

_EXAMPLE_TYPES = [
    getattr(PhoneNumberType, name)
    for name in dir(PhoneNumberType)
    if name.isupper() and name != "UNKNOWN"
]


def every_example_number() -> list[phonenumbers.PhoneNumber]:
    numbers = {}
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in _EXAMPLE_TYPES:
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is not None:
                numbers[(region, phonenumbers.format_number(example, PhoneNumberFormat.E164))] = (
                    example
                )
    return list(numbers.values())


def written_forms(example: phonenumbers.PhoneNumber) -> dict[str, str]:
    international = phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL)
    return {
        "international": international,
        "00": "00" + international[1:],
        "tel:": phonenumbers.format_number(example, PhoneNumberFormat.RFC3966),
        "dotted": international.replace(" ", "."),
        "dashed": international.replace(" ", "-"),
        "national": phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL),
    }


def outcome(read: ReadNumber, meant: str, form: str, default_country: str) -> str:
    if read.e164 == meant:
        return "read as meant"
    if (
        form == "national"
        and read.e164
        and phonenumbers.region_code_for_number(phonenumbers.parse(read.e164)) == default_country
    ):
        # Seven digits in Barbados are a Barbados number: a local number is what was written.
        return "local number of the default country"
    if read.e164 is None and meant in {reading.e164 for reading in read.alternatives}:
        return "two readings"
    if read.e164 is None and not read.alternatives:
        return "refused"
    return "SILENT WRONG"


def test_no_example_number_in_any_written_form_and_default_country_is_read_as_another(capsys):
    counts: dict[str, Counter] = {}
    wrong = []
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    examples = every_example_number()
    for example in examples:
        meant = phonenumbers.format_number(example, PhoneNumberFormat.E164)
        for form, text in written_forms(example).items():
            for default_country in regions:
                # Written without its country code, a number means one in the default
                # country: only defaults sharing its country code can mean this one.
                if form == "national" and (
                    phonenumbers.country_code_for_region(default_country) != example.country_code
                ):
                    continue
                result = outcome(read_number(text, default_country), meant, form, default_country)
                counts.setdefault(form, Counter())[result] += 1
                if result == "SILENT WRONG":
                    wrong.append((text, default_country, meant))

    with capsys.disabled():
        print(f"\nSweep: {len(examples)} example numbers, {len(regions)} default countries")
        for form, by_outcome in counts.items():
            print(f"  {form:13} {sum(by_outcome.values()):7} lines: {dict(by_outcome)}")
    assert wrong == [], f"{len(wrong)} silently wrong, e.g. {wrong[:5]}"


@pytest.mark.parametrize(
    ("text", "country", "e164"),
    [
        ("0065 6123 4567", "SG", "+6561234567"),
        ("0044 20 7946 0958", "SG", "+442079460958"),
        ("0044 20 7946 0958", "TH", "+442079460958"),
    ],
)
def test_00_in_a_country_dialling_out_with_a_carrier_code_is_read_as_the_one_valid_number(
    text, country, e164
):
    read = read_number(text, country)

    assert (read.e164, read.problem) == (e164, "")
    assert read.how_read.endswith("00 read as the international prefix")


@pytest.mark.parametrize(
    ("text", "country", "readings"),
    [
        ("0016497121234", "AU", {"+497121234", "+16497121234"}),
        ("0093234567890", "CO", {"+3234567890", "+93234567890"}),
        ("00995322123456", "BR", {"+5322123456", "+995322123456"}),
    ],
)
def test_a_line_that_reads_as_two_valid_numbers_is_neither_and_names_both(text, country, readings):
    read = read_number(text, country)

    assert read.e164 is None
    assert {reading.e164 for reading in read.alternatives} == readings
    assert all(reading.how_read for reading in read.alternatives)
    for reading in read.alternatives:
        assert _spoken(reading.e164) in read.problem
    assert "00 read as the international prefix" in read.problem


def _spoken(e164: str) -> str:
    return phonenumbers.format_number(phonenumbers.parse(e164), PhoneNumberFormat.INTERNATIONAL)


def test_a_rejected_00_line_names_the_country_after_00_not_one_its_digits_happen_to_make():
    read = read_number("0065 6123 456", "SG")

    assert read.e164 is None
    assert read.problem == "Too short for a number in Singapore: include the area code"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("415-555-O1OO", "letter O where a digit was expected: did you mean 0?"),
        ("+1 415 555 01O1", "letter O where a digit was expected: did you mean 0?"),
        ("+1 415 555 01o1", "letter o where a digit was expected: did you mean 0?"),
        ("4l5 555 0100", "letter l where a digit was expected: did you mean 1?"),
        ("+1 4I5 555 0100", "letter I where a digit was expected: did you mean 1?"),
        ("415-555-ABC1", "letter A where a digit was expected: write the number in digits"),
    ],
)
def test_a_lone_letter_among_digits_is_refused_saying_which_digit_it_looks_like(text, problem):
    read = read_number(text, "US")

    assert (read.e164, read.problem) == (None, problem)


@pytest.mark.parametrize("text", ["1-800-FLOWERS", "1 800 FLOWERS", "1-800-FLOWERS."])
def test_a_vanity_number_is_read_with_its_letters_as_keypad_digits_and_says_so(text):
    read = read_number(text, "US")

    assert read.e164 == "+18003569377"
    assert read.how_read.endswith("; letters read as keypad digits: +1 800-356-9377")


@pytest.mark.parametrize(
    "text",
    [
        "+1 (415) 555-0199 x5",
        "+1 (415) 555-0199 ext. 5",
        "+1 (415) 555-0199 extension 5",
        "+1 (415) 555-0199 #5",
        "tel:+1-415-555-0199;ext=5",
        "(415) 555-0199, x5",
    ],
)
def test_an_extension_is_left_out_of_the_number_and_the_reading_says_so(text):
    read = read_number(text, "US")

    assert read.e164 == "+14155550199"
    assert read.how_read.endswith("; extension x5 left out")


def test_each_of_two_readings_says_the_extension_was_left_out():
    read = read_number("0016497121234 x5", "AU")

    assert len(read.alternatives) == 2
    assert all(each.how_read.endswith("extension x5 left out") for each in read.alternatives)


def test_the_forms_00_example_reads_as_the_uk_number_whatever_the_default_country():
    help_text = ImportForm.base_fields["numbers"].help_text
    assert "0044 20 7946 0958" in help_text

    misread = {
        country: read
        for country in phonenumbers.SUPPORTED_REGIONS
        if (read := read_number("0044 20 7946 0958", country)).e164 != "+442079460958"
    }

    assert misread == {}

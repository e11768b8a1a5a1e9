import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat

from phone_numbers.forms import ImportForm
from phone_numbers.number_input import InputError, read_csv, read_number, read_pasted


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

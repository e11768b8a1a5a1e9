from datetime import timedelta

from django.utils import timezone

from phone_numbers.templatetags.portal import (
    ago,
    lower_first,
    number_type_label,
    readable,
    thousands,
)


def test_ago_says_just_now_in_the_first_minute():
    assert ago(timezone.now() - timedelta(seconds=20)) == "just now"


def test_ago_says_how_long_ago_after_that():
    assert ago(timezone.now() - timedelta(minutes=3, seconds=5)) == "3\xa0minutes ago"


def test_ago_says_never_for_no_time():
    assert ago(None) == "never"


def test_thousands_separates_big_counts():
    assert [thousands(count) for count in (0, 999, 1000, 50000, 1234567)] == [
        "0",
        "999",
        "1,000",
        "50,000",
        "1,234,567",
    ]


def test_number_type_label_gives_the_label_people_read():
    assert number_type_label("longcode") == "Long code"
    assert number_type_label("tollfree") == "Toll-free"
    assert number_type_label("shortcode") == "shortcode"


def test_readable_formats_every_e164_number_in_a_text_and_leaves_the_rest():
    assert readable("+14155550100") == "+1 415-555-0100"
    assert readable("+14155550160 (job 5)") == "+1 415-555-0160 (job 5)"
    assert readable("Front desk, +442079460958") == "Front desk, +44 20 7946 0958"
    assert readable("PN123+14155550100 12345678901 +12") == "PN123+14155550100 12345678901 +12"
    assert readable("") == ""


def test_lower_first_lowers_only_the_first_letter():
    assert lower_first("Assumed United States, the project's default country") == (
        "assumed United States, the project's default country"
    )
    assert lower_first("") == ""

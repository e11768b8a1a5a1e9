from datetime import timedelta

from django.utils import timezone

from phone_numbers.templatetags.portal import ago


def test_ago_says_just_now_in_the_first_minute():
    assert ago(timezone.now() - timedelta(seconds=20)) == "just now"


def test_ago_says_how_long_ago_after_that():
    assert ago(timezone.now() - timedelta(minutes=3, seconds=5)) == "3\xa0minutes ago"


def test_ago_says_never_for_no_time():
    assert ago(None) == "never"

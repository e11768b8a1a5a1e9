"""Django's debug 500 page and error reports hide the passwords in URLs (issue 19, item 10)."""

import sys

import pytest
from django.test import RequestFactory
from django.views.debug import technical_500_response

DATABASE_PASSWORD = "db-Secret-4711"
REDIS_PASSWORD = "redis-Secret-0815"
DATABASE_URL = f"postgres://portal:{DATABASE_PASSWORD}@db.internal:5432/portal"
REDIS_URL = f"redis://default:{REDIS_PASSWORD}@redis.internal:6379/0"


@pytest.fixture
def debug_with_urls(settings):
    settings.DEBUG = True
    settings.DATABASE_URL = DATABASE_URL
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.REDIS_URL = REDIS_URL
    settings.SOME_CACHE = {"LOCATION": f"rediss://:{REDIS_PASSWORD}@cache.internal:6380/1"}


def debug_page(request) -> str:
    try:
        raise RuntimeError("something broke")
    except RuntimeError:
        response = technical_500_response(request, *sys.exc_info())
    return response.content.decode()


@pytest.mark.parametrize("accept", ["text/html", "text/plain"])
def test_the_debug_page_shows_no_database_or_redis_password(debug_with_urls, accept):
    # runserver copies the environment into request.META, so the URLs are there too.
    request = RequestFactory().get(
        "/jobs/", HTTP_ACCEPT=accept, DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL
    )

    page = debug_page(request)

    assert DATABASE_PASSWORD not in page
    assert REDIS_PASSWORD not in page
    # The rest of each URL stays, to tell which server was meant.
    assert "db.internal:5432" in page
    assert "redis.internal:6379" in page
    assert "cache.internal:6380" in page


def test_a_url_without_a_password_is_shown_as_it_is(debug_with_urls, settings):
    settings.SIGNALWIRE_BASE_URL = "http://127.0.0.1:8765/api/laml/2010-04-01"

    page = debug_page(RequestFactory().get("/", HTTP_ACCEPT="text/plain"))

    assert "http://127.0.0.1:8765/api/laml/2010-04-01" in page

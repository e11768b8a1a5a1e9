import json
import re
import time
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains

from phone_numbers import audit
from phone_numbers.models import AuditAction, SpaceNumber
from portal.middleware import SESSION_RENEWED_AT
from tests.conftest import run_manage
from tests.test_settings import PRODUCTION_ENV
from tests.test_url_roles import ACCESS, ADMINS_ONLY, ANY_ROLE, url_for

pytestmark = pytest.mark.both_databases

HTMX = {"HX-Request": "true"}
SHOW_SECURITY_SETTINGS = (
    "from django.conf import settings as s; import json; print(json.dumps({name: "
    "getattr(s, name) for name in ['SESSION_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', "
    "'SESSION_COOKIE_SAMESITE', 'CSRF_COOKIE_SECURE', 'CSRF_COOKIE_HTTPONLY', "
    "'CSRF_COOKIE_SAMESITE', 'SESSION_COOKIE_AGE', 'SESSION_RENEW_SECONDS', "
    "'SECURE_HSTS_SECONDS', 'AXES_FAILURE_LIMIT', 'PORTAL_LOGIN_COOLOFF_MINUTES']}))"
)


def security_settings(env: dict) -> dict:
    result = run_manage(env, "shell", "-v", "0", "-c", SHOW_SECURITY_SETTINGS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_cookies_are_secure_httponly_and_samesite(local_mode_env):
    values = security_settings({**local_mode_env, **PRODUCTION_ENV})

    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_HTTPONLY"] is True
    assert values["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert values["SECURE_HSTS_SECONDS"] == 31536000


def test_idle_expiry_and_login_throttling_are_read_from_the_environment(local_mode_env):
    env = {
        **local_mode_env,
        **PRODUCTION_ENV,
        "PORTAL_SESSION_IDLE_MINUTES": "30",
        "PORTAL_LOGIN_FAILURE_LIMIT": "3",
        "PORTAL_LOGIN_COOLOFF_MINUTES": "60",
    }

    values = security_settings(env)

    assert values["SESSION_COOKIE_AGE"] == 30 * 60
    assert values["SESSION_RENEW_SECONDS"] == 60
    assert (values["AXES_FAILURE_LIMIT"], values["PORTAL_LOGIN_COOLOFF_MINUTES"]) == (3, 60)


@pytest.mark.django_db
def test_the_session_cookie_a_login_sets_is_httponly_samesite_and_secure_when_asked(
    client, support_user, settings
):
    settings.SESSION_COOKIE_SECURE = True

    client.post(reverse("login"), {"username": "sam", "password": "support-pass-1"})

    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] is True
    assert cookie["max-age"] == settings.SESSION_COOKIE_AGE


def test_a_short_idle_time_renews_its_sessions_at_a_tenth_of_it(local_mode_env):
    values = security_settings({**local_mode_env, "PORTAL_SESSION_IDLE_MINUTES": "5"})

    assert (values["SESSION_COOKIE_AGE"], values["SESSION_RENEW_SECONDS"]) == (300, 30)


def session_writes(queries: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in queries
        if "django_session" in query["sql"] and not query["sql"].startswith("SELECT")
    ]


def renewed(client, seconds_ago: int) -> None:
    """The client's session as last renewed that long ago, expiring in a minute."""
    session = client.session
    session[SESSION_RENEWED_AT] = int(time.time()) - seconds_ago
    session.save()
    Session.objects.filter(pk=session.session_key).update(
        expire_date=timezone.now() + timedelta(minutes=1)
    )


@pytest.mark.django_db
def test_a_session_idle_past_its_age_ends(client, support_user):
    client.force_login(support_user)
    home = reverse("phone_numbers:home")
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))

    response = client.get(home)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_a_request_a_minute_after_the_last_renewal_renews_the_session(
    client, support_user, settings
):
    client.force_login(support_user)
    renewed(client, seconds_ago=settings.SESSION_RENEW_SECONDS)

    response = client.get(reverse("phone_numbers:home"))

    assert response.status_code == 200
    assert Session.objects.get().expire_date > timezone.now() + timedelta(minutes=60)
    assert response.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == settings.SESSION_COOKIE_AGE
    assert client.session[SESSION_RENEWED_AT] >= int(time.time()) - 5


@pytest.mark.django_db
def test_a_poll_within_a_minute_of_the_last_renewal_writes_no_session(
    client, support_user, settings, project_job_and_number
):
    client.force_login(support_user)
    renewed(client, seconds_ago=settings.SESSION_RENEW_SECONDS - 5)
    expiry = Session.objects.get().expire_date
    poll = reverse("phone_numbers:job_detail", args=[project_job_and_number["job"].pk])

    with CaptureQueriesContext(connection) as queries:
        response = client.get(poll, headers=HTMX)

    assertContains(response, 'hx-trigger="every 2s"')
    assert session_writes(queries) == []
    assert settings.SESSION_COOKIE_NAME not in response.cookies
    assert Session.objects.get().expire_date == expiry


@pytest.mark.django_db
def test_a_login_renews_its_new_session_in_the_same_write(client, support_user):
    client.post(reverse("login"), {"username": "sam", "password": "support-pass-1"})

    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("phone_numbers:home"))

    assert response.status_code == 200
    assert session_writes(queries) == []


@pytest.mark.django_db
def test_logging_out_leaves_no_session_behind(client, support_user):
    client.force_login(support_user)

    client.post(reverse("logout"))

    assert not Session.objects.exists()


class InlineCodeFinder(HTMLParser):
    """Collects what the CSP (script-src/style-src 'self') would block: inline code."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("<script> without src")
        if tag == "style":
            self.problems.append("<style> element")
        if "style" in names:
            self.problems.append(f"style= on <{tag}>")
        self.problems.extend(f"{name}= on <{tag}>" for name in names if name.startswith("on"))
        for name, value in attrs:
            if name in {"href", "src", "action"} and (value or "").startswith("javascript:"):
                self.problems.append(f"javascript: URL on <{tag}>")


def inline_code(html: str) -> list[str]:
    finder = InlineCodeFinder()
    finder.feed(html)
    return finder.problems


@pytest.fixture
def objects(project_job_and_number) -> dict:
    job = project_job_and_number["job"]
    audit.record(None, AuditAction.JOB_PAUSED, job=job, changes={"reason": {"old": None}})
    # A number only in the project's Space, as an inventory sync lists one.
    space_number = SpaceNumber.objects.create(
        project=project_job_and_number["project"],
        sid="PN0001",
        number="+14155550199",
        first_seen_at=timezone.now(),
        last_seen_at=timezone.now(),
    )
    return {**project_job_and_number, "space_number": space_number}


@pytest.mark.django_db
def test_no_page_or_fragment_has_inline_script_or_style_that_the_csp_would_block(
    client, admin_user, objects
):
    pages = {"login page": client.get(reverse("login"))}
    client.force_login(admin_user)
    for name, (access, _) in ACCESS.items():
        if access not in {ANY_ROLE, ADMINS_ONLY} or name == "logout":
            continue
        url = url_for(name, objects)
        for headers in ({}, HTMX):
            response = client.get(url, headers=headers)
            if response.status_code == 200 and not response.streaming:
                pages[f"{url} {headers}"] = response
    preview = client.post(
        reverse("phone_numbers:import_new"),
        {
            "project": objects["project"].pk,
            "numbers": "+1 415 555 0199\nnot a number",
            "number_type": "longcode",
            "capabilities": ["sms"],
        },
        headers=HTMX,
    )
    pages["import preview fragment"] = preview

    assert len(pages) > 20
    for label, response in pages.items():
        assert "text/html" in response["Content-Type"], label
        assert inline_code(response.content.decode()) == [], label
        assert "unsafe-inline" not in response.get("Content-Security-Policy", ""), label


def test_the_inline_code_finder_finds_what_it_should():
    html = '<script>x()</script><p style="color:red" onclick="y()"><a href="javascript:z()">'

    assert len(inline_code(html)) == 4
    assert inline_code('<script src="/static/a.js" defer></script>') == []
    assert not re.search("style", "".join(inline_code('<p class="style">')))

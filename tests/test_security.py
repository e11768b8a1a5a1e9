import json
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from phone_numbers import audit
from phone_numbers.models import AuditAction
from tests.conftest import run_manage
from tests.test_settings import PRODUCTION_ENV
from tests.test_url_roles import ACCESS, ADMINS_ONLY, ANY_ROLE, url_for

pytestmark = pytest.mark.both_databases

HTMX = {"HX-Request": "true"}
SHOW_SECURITY_SETTINGS = (
    "from django.conf import settings as s; import json; print(json.dumps({name: "
    "getattr(s, name) for name in ['SESSION_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', "
    "'SESSION_COOKIE_SAMESITE', 'CSRF_COOKIE_SECURE', 'CSRF_COOKIE_HTTPONLY', "
    "'CSRF_COOKIE_SAMESITE', 'SESSION_COOKIE_AGE', 'SESSION_SAVE_EVERY_REQUEST', "
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
    assert values["SESSION_SAVE_EVERY_REQUEST"] is True
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


@pytest.mark.django_db
def test_a_session_idle_past_its_age_ends_and_every_request_renews_it(client, support_user):
    client.force_login(support_user)
    home = reverse("phone_numbers:home")
    session = Session.objects.get()
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() + timedelta(minutes=1))

    assert client.get(home).status_code == 200
    renewed = Session.objects.get(pk=session.pk).expire_date
    assert renewed > timezone.now() + timedelta(minutes=60)

    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(home)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


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
    return project_job_and_number


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

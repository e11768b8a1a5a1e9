"""Headers on every response: no caching of what a logged-in user sees, browser features
denied, and no Server header from gunicorn (issue 19, item 14)."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from django.db import connection
from django.urls import reverse

from tests.conftest import REPO_DIR, _database_env, free_port

pytestmark = pytest.mark.both_databases

HTMX = {"HX-Request": "true"}
DENIED_FEATURES = ["camera", "microphone", "geolocation", "payment", "usb"]


def denied_features(response) -> set[str]:
    policy = response.headers["Permissions-Policy"]
    return {item.strip().removesuffix("=()") for item in policy.split(",") if "=()" in item}


def assert_not_stored(response) -> None:
    directives = {part.strip() for part in response.headers["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= directives, response.headers["Cache-Control"]


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        (reverse("phone_numbers:home"), {}),
        # An htmx fragment of the same page.
        (reverse("phone_numbers:home") + "?q=415", HTMX),
        (reverse("phone_numbers:number_export") + "?status=", {}),
        (reverse("phone_numbers:project_list"), {}),
        (reverse("password_change"), {}),
    ],
)
def test_nothing_a_logged_in_user_sees_may_be_stored_by_a_browser_or_proxy(
    client, support_user, url, headers
):
    client.force_login(support_user)

    response = client.get(url, headers=headers)

    assert response.status_code == 200
    assert_not_stored(response)


def test_an_export_to_a_logged_in_admin_may_not_be_stored(client, admin_user):
    client.force_login(admin_user)

    response = client.get(reverse("phone_numbers:audit_export"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert_not_stored(response)


def test_a_static_file_stays_cacheable(client, support_user):
    client.force_login(support_user)

    response = client.get("/static/css/portal.css")

    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")


@pytest.mark.parametrize(
    "url", [reverse("login"), reverse("phone_numbers:healthz"), "/static/css/portal.css", "/nope/"]
)
def test_every_response_denies_camera_microphone_geolocation_and_the_like(client, db, url):
    response = client.get(url)

    assert set(DENIED_FEATURES) <= denied_features(response)


def test_a_logged_in_page_denies_the_same_features(client, admin_user):
    client.force_login(admin_user)

    response = client.get(reverse("phone_numbers:project_list"))

    assert set(DENIED_FEATURES) <= denied_features(response)


@pytest.fixture
def gunicorn_url(transactional_db, django_db_serialized_rollback, tmp_path):
    """The portal under real gunicorn, configured by gunicorn.conf.py, on a free port.

    Its test is transactional (gunicorn reads what it writes) and restores the database as it
    found it: emptied instead, a later test with serialized_rollback would find the content
    types already there, recreated by the flush, and fail at set-up to load them again.
    """
    from django.conf import settings

    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.test_settings",
        **_database_env(connection.settings_dict),
        "PORTAL_ENCRYPTION_KEYS": ",".join(settings.PORTAL_ENCRYPTION_KEYS),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi"],
        cwd=REPO_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # The first request loads the portal: slow on a busy machine.
                requests.get(url + "/healthz", timeout=10)
                break
            except (requests.ConnectionError, requests.Timeout):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "gunicorn did not start: " + (tmp_path / "gunicorn.log").read_text()
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def test_gunicorn_sends_no_server_header(gunicorn_url):
    for path in ("/healthz", "/login/", "/static/css/portal.css", "/nope/"):
        response = requests.get(gunicorn_url + path, timeout=5, allow_redirects=False)

        assert "Server" not in response.headers, (path, response.headers["Server"])
        # The portal itself answered, with its own headers.
        assert "camera" in denied_features(response)

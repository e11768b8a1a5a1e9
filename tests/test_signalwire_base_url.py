"""SIGNALWIRE_BASE_URL sends every token elsewhere: production refuses it unless explicitly
allowed, and wherever it is used the log warns and every page says so (issue 19, item 6)."""

import pytest
from django.urls import reverse

from tests.conftest import run_manage
from tests.test_settings import PRODUCTION_ENV

pytestmark = pytest.mark.both_databases

SIMULATOR_URL = "http://127.0.0.1:8765/api/laml/2010-04-01"
WARNING = f"every project's requests, API token included, go to {SIMULATOR_URL}"


def test_production_refuses_a_base_url_naming_both_variables(local_mode_env):
    env = {**local_mode_env, **PRODUCTION_ENV, "SIGNALWIRE_BASE_URL": SIMULATOR_URL}

    result = run_manage(env, "check")

    assert result.returncode == 1
    assert "SIGNALWIRE_BASE_URL" in result.stderr
    assert "PORTAL_ALLOW_SIGNALWIRE_BASE_URL=true" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("allow", ["false", "0", ""])
def test_production_refuses_it_unless_the_allow_setting_is_true(local_mode_env, allow):
    env = {
        **local_mode_env,
        **PRODUCTION_ENV,
        "SIGNALWIRE_BASE_URL": SIMULATOR_URL,
        "PORTAL_ALLOW_SIGNALWIRE_BASE_URL": allow,
    }

    assert run_manage(env, "check").returncode == 1


def test_production_allowed_starts_and_warns_at_start_up(local_mode_env):
    env = {
        **local_mode_env,
        **PRODUCTION_ENV,
        "SIGNALWIRE_BASE_URL": SIMULATOR_URL,
        "PORTAL_ALLOW_SIGNALWIRE_BASE_URL": "true",
    }

    result = run_manage(env, "check")

    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if WARNING in line]
    assert " WARNING phone_numbers.apps: " in line


def test_local_mode_accepts_it_and_warns_too(local_mode_env):
    result = run_manage({**local_mode_env, "SIGNALWIRE_BASE_URL": SIMULATOR_URL}, "check")

    assert result.returncode == 0, result.stderr
    assert WARNING in result.stderr


def test_without_a_base_url_there_is_no_warning(local_mode_env):
    result = run_manage({**local_mode_env, **PRODUCTION_ENV}, "check")

    assert result.returncode == 0, result.stderr
    assert "SIGNALWIRE_BASE_URL" not in result.stderr


@pytest.fixture
def base_url(settings):
    settings.SIGNALWIRE_BASE_URL = SIMULATOR_URL
    return SIMULATOR_URL


BANNER = f"Imports go to {SIMULATOR_URL}, not to SignalWire."


@pytest.mark.parametrize(
    "url_name",
    ["phone_numbers:home", "phone_numbers:project_list", "phone_numbers:job_list", "admin:index"],
)
def test_every_page_says_where_imports_go(client, admin_user, base_url, url_name):
    client.force_login(admin_user)

    response = client.get(reverse(url_name))

    assert response.status_code == 200
    assert BANNER in response.content.decode()


def test_the_login_page_says_imports_do_not_go_to_signalwire_without_the_address(
    client, db, base_url
):
    page = client.get(reverse("login")).content.decode()

    assert "Imports from this portal do not go to SignalWire." in page
    assert SIMULATOR_URL not in page


def test_no_banner_when_imports_go_to_signalwire(client, admin_user, settings):
    settings.SIGNALWIRE_BASE_URL = None
    client.force_login(admin_user)

    for url_name in ("phone_numbers:home", "admin:index"):
        assert "not to SignalWire" not in client.get(reverse(url_name)).content.decode()

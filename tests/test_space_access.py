"""The check-connection task against the simulator over real HTTP, and its time limit."""

import base64
import dataclasses
import json
import logging
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from phone_numbers.models import ConnectionStatus, Project, connection_check_time_limit
from phone_numbers.signalwire import API_PATH
from phone_numbers.space_access import end_stale_connection_checks
from phone_numbers.tasks import check_project_connection
from tests.conftest import free_port, raw_answer

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


@pytest.fixture
def portal_uses_simulator(simulator, settings):
    settings.SIGNALWIRE_BASE_URL = simulator.api_base_url
    settings.SIGNALWIRE_TIMEOUT = (1.0, 1.0)
    return simulator


def project_for(make_project, sim_project, **overrides):
    fields = {"project_id": sim_project.project_id, "space_host": sim_project.space_host}
    return make_project(**(fields | overrides))


def status_after_check(project) -> tuple[str, str]:
    check_project_connection(project.pk)
    project.refresh_from_db()
    return project.connection_status, project.connection_detail


def test_a_working_token_is_ok(portal_uses_simulator, make_project, sim_project):
    project = project_for(make_project, sim_project, token=sim_project.token)

    status, detail = status_after_check(project)

    assert status == ConnectionStatus.OK
    assert detail == ""
    assert project.connection_checked_at is not None


def test_a_wrong_token_is_credentials_rejected(portal_uses_simulator, make_project, sim_project):
    project = project_for(make_project, sim_project, token="PTwrong-token-0000")

    status, detail = status_after_check(project)

    assert status == ConnectionStatus.CREDENTIALS_REJECTED
    assert "401" in detail
    assert "PTwrong" not in detail


def test_an_unknown_project_id_is_credentials_rejected(
    portal_uses_simulator, make_project, sim_project
):
    project = make_project(
        project_id="00000000-0000-4000-8000-000000000000", token=sim_project.token
    )

    status, _ = status_after_check(project)

    assert status == ConnectionStatus.CREDENTIALS_REJECTED


def test_a_token_without_the_numbers_scope_is_scope_missing(
    portal_uses_simulator, make_project, sim_project
):
    limited = dataclasses.replace(
        sim_project,
        project_id="11111111-1111-4111-8111-111111111111",
        token="PTmanagement-only",
        numbers_scope=False,
        management_scope=True,
    )
    portal_uses_simulator.add_project(limited)
    project = project_for(make_project, limited, token=limited.token)

    status, _ = status_after_check(project)

    assert status == ConnectionStatus.SCOPE_MISSING


def test_a_space_that_does_not_answer_is_unreachable(make_project, sim_project):
    nothing_listens = f"http://127.0.0.1:{free_port()}/api/laml/2010-04-01"
    project = project_for(make_project, sim_project, token=sim_project.token)

    with override_settings(SIGNALWIRE_BASE_URL=nothing_listens, SIGNALWIRE_TIMEOUT=(1.0, 1.0)):
        status, _ = status_after_check(project)

    assert status == ConnectionStatus.UNREACHABLE


def test_a_project_without_a_token_is_reported_not_crashed(portal_uses_simulator, make_project):
    project = make_project(token=None)

    status, detail = status_after_check(project)

    assert status == ConnectionStatus.CREDENTIALS_REJECTED
    assert "no API token" in detail


def test_a_deleted_project_makes_the_task_do_nothing(portal_uses_simulator):
    check_project_connection(987654)

    assert portal_uses_simulator.stats()["requests"] == {}


def started(project: Project, ago: timedelta) -> Project:
    project.start_connection_check()
    Project.objects.filter(pk=project.pk).update(connection_checked_at=timezone.now() - ago)
    project.refresh_from_db()
    return project


def test_the_time_limit_covers_two_requests_at_the_signalwire_timeouts_and_a_margin():
    with override_settings(SIGNALWIRE_TIMEOUT=(3.05, 15.0)):
        assert connection_check_time_limit() == timedelta(seconds=2 * 18.05 + 30)
    with override_settings(SIGNALWIRE_TIMEOUT=(1.0, 2.0)):
        assert connection_check_time_limit() == timedelta(seconds=2 * 3 + 30)


def test_starting_a_check_records_when_it_started(make_project):
    project = make_project()
    before = timezone.now()

    project.start_connection_check()
    project.refresh_from_db()

    assert project.connection_status == ConnectionStatus.CHECKING
    assert before <= project.connection_checked_at <= timezone.now()
    assert project.is_checking_connection
    assert not project.is_connection_check_unfinished


def test_a_check_is_over_once_its_time_limit_has_passed(make_project):
    limit = connection_check_time_limit()

    inside = started(make_project(), limit - timedelta(seconds=2))
    past = started(make_project(), limit + timedelta(seconds=2))

    assert inside.is_checking_connection and not inside.is_connection_check_unfinished
    assert not past.is_checking_connection and past.is_connection_check_unfinished
    assert past.connection_status_label == "Check did not finish"


def test_a_check_is_still_running_at_the_very_end_of_its_time_limit(make_project, monkeypatch):
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)

    project = started(make_project(), connection_check_time_limit())

    assert project.is_checking_connection and not project.is_connection_check_unfinished


def test_recording_a_check_stores_its_outcome_and_time_and_no_other_field(make_project):
    project = make_project()
    # An admin edits the project while its check runs.
    Project.objects.filter(pk=project.pk).update(name="Acme Renamed", notes="New contract")

    project.record_connection_check(ConnectionStatus.UNREACHABLE, "d" * 600)

    project.refresh_from_db()
    assert (project.connection_status, project.connection_detail) == ("unreachable", "d" * 500)
    assert (project.name, project.notes) == ("Acme Renamed", "New contract")
    before = timezone.now()
    project.record_connection_check(ConnectionStatus.OK)
    project.refresh_from_db()
    assert (project.connection_status, project.connection_detail) == ("ok", "")
    assert before <= project.connection_checked_at <= timezone.now()


def test_stale_checks_are_stored_as_not_finished_and_others_are_left_alone(make_project):
    limit = connection_check_time_limit()
    stale = started(make_project(), limit + timedelta(seconds=2))
    fresh = started(make_project(), timedelta(seconds=1))
    started_by_old_code = make_project(connection_status=ConnectionStatus.CHECKING)
    finished = make_project()
    finished.record_connection_check(ConnectionStatus.OK)

    assert end_stale_connection_checks() == 2

    for project in (stale, fresh, started_by_old_code, finished):
        project.refresh_from_db()
    assert stale.connection_status == ConnectionStatus.UNCHECKED
    assert stale.is_connection_check_unfinished
    assert "No outcome within" in stale.connection_detail
    assert started_by_old_code.is_connection_check_unfinished
    assert fresh.connection_status == ConnectionStatus.CHECKING
    assert fresh.is_checking_connection
    assert finished.connection_status == ConnectionStatus.OK
    assert not finished.is_connection_check_unfinished
    assert end_stale_connection_checks() == 0


def test_a_task_that_turns_up_late_still_records_its_outcome(
    portal_uses_simulator, make_project, sim_project
):
    project = project_for(make_project, sim_project, token=sim_project.token)
    started(project, connection_check_time_limit() + timedelta(seconds=2))
    end_stale_connection_checks()

    status, detail = status_after_check(project)

    assert (status, detail) == (ConnectionStatus.OK, "")
    assert not project.is_connection_check_unfinished


def test_checking_again_after_an_unfinished_check_polls_again(make_project):
    project = started(make_project(), timedelta(hours=1))
    end_stale_connection_checks()
    project.refresh_from_db()

    project.start_connection_check()

    assert project.is_checking_connection
    assert not project.is_connection_check_unfinished


def stored_host(project: Project, host: str) -> Project:
    """The project with `host` written past the model's checks, as rows from before them are."""
    Project.objects.filter(pk=project.pk).update(space_host=host)
    project.refresh_from_db()
    return project


def test_a_host_that_cannot_form_a_url_ends_the_check_as_a_configuration_error(make_project):
    project = stored_host(make_project(), "acme.signalwire.com/x y")
    project.start_connection_check()

    status, detail = status_after_check(project)

    assert status == ConnectionStatus.CONFIGURATION
    assert detail == (
        "The Space host “acme.signalwire.com/x y” is not a SignalWire Space: an admin must "
        "correct it on the project page, and enter the token again."
    )
    assert not project.is_checking_connection


def test_a_setting_the_client_refuses_ends_the_check_as_a_configuration_error(
    make_project, settings, caplog
):
    settings.SIGNALWIRE_BASE_URL = "http://10.0.0.5/api/laml/2010-04-01"
    project = make_project(token="PTsecret-token-5150")
    project.start_connection_check()

    status, detail = status_after_check(project)

    assert status == ConnectionStatus.CONFIGURATION
    assert detail.startswith("The portal's SignalWire settings are wrong")
    assert "refusing plain http:// to 10.0.0.5" in caplog.text
    assert "PTsecret-token-5150" not in caplog.text + detail


# --- What the project page may show of a failed check (issue 19, item 5) ----------------------


# Long enough for a hostile server's answer or hang-up to arrive on a busy machine; a silent
# port uses all of it.
HOSTILE_TIMEOUT = (1.5, 1.5)


def check_against(settings, base_url, make_project, sim_project) -> tuple[str, str]:
    settings.SIGNALWIRE_BASE_URL = base_url
    settings.SIGNALWIRE_TIMEOUT = HOSTILE_TIMEOUT
    project = project_for(make_project, sim_project, token=sim_project.token)
    return status_after_check(project)


UNREACHABLE = "Space unreachable: could not connect, or no answer within 3 s."


def test_a_refused_port_a_tls_hang_up_and_a_silent_port_read_the_same(
    settings, hostile_server, make_project, sim_project, caplog
):
    refused = f"http://127.0.0.1:{free_port()}{API_PATH}"
    tls_hang_up = f"https://127.0.0.1:{hostile_server('close').port}{API_PATH}"
    plain_hang_up = f"http://127.0.0.1:{hostile_server('close').port}{API_PATH}"
    silent = f"http://127.0.0.1:{hostile_server('silent').port}{API_PATH}"

    settings.SIGNALWIRE_TIMEOUT = HOSTILE_TIMEOUT
    project = project_for(make_project, sim_project, token=sim_project.token)
    outcomes = []

    with caplog.at_level(logging.WARNING, logger="phone_numbers.space_access"):
        for url in (refused, tls_hang_up, plain_hang_up, silent):
            settings.SIGNALWIRE_BASE_URL = url
            outcomes.append(status_after_check(project))

    # One answer for all four: the page cannot be used to tell which ports are open.
    assert outcomes == [(ConnectionStatus.UNREACHABLE, UNREACHABLE)] * 4
    # The server log keeps what happened to each, for whoever runs the portal.
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 4
    assert "Connection refused" in logged[0]
    assert "SSL" in logged[1]
    # A hang-up reads as RemoteDisconnected or as a reset, depending on timing.
    assert "Connection aborted" in logged[2]
    assert "ReadTimeout" in logged[3]
    assert not any(sim_project.token in line for line in logged)


@pytest.mark.parametrize(
    ("answer", "status", "detail"),
    [
        (
            raw_answer(
                "500 INTERNAL-ONLY: db=10.0.0.5", '{"message": "INTERNAL-ONLY: db=10.0.0.5"}'
            ),
            ConnectionStatus.UNREACHABLE,
            "SignalWire answered with an error (HTTP 500).",
        ),
        (
            raw_answer("502 Bad Gateway", "<h1>INTERNAL-ONLY: db=10.0.0.5</h1>", "text/html"),
            ConnectionStatus.UNREACHABLE,
            "SignalWire answered with an error (HTTP 502).",
        ),
        (
            raw_answer("401 INTERNAL-ONLY", '{"code": 1, "message": "INTERNAL-ONLY: db=10.0.0.5"}'),
            ConnectionStatus.CREDENTIALS_REJECTED,
            "SignalWire rejected the token (HTTP 401).",
        ),
        (
            raw_answer("404 Not Found", '{"message": "INTERNAL-ONLY: db=10.0.0.5"}'),
            ConnectionStatus.CREDENTIALS_REJECTED,
            "SignalWire refused the project ID (HTTP 404).",
        ),
        (
            b"INTERNAL-ONLY: db=10.0.0.5 ready\r\n",
            ConnectionStatus.UNREACHABLE,
            UNREACHABLE,
        ),
    ],
)
def test_what_a_server_says_is_logged_but_never_stored_or_shown(
    settings,
    hostile_server,
    make_project,
    sim_project,
    client,
    support_user,
    admin_user,
    caplog,
    answer,
    status,
    detail,
):
    server = hostile_server("answer", lambda request: answer)
    base_url = f"http://127.0.0.1:{server.port}{API_PATH}"

    with caplog.at_level(logging.WARNING, logger="phone_numbers.space_access"):
        outcome = check_against(settings, base_url, make_project, sim_project)

    assert outcome == (status, detail)
    assert "INTERNAL-ONLY" in " ".join(caplog.messages)
    project = Project.objects.get()
    for user in (support_user, admin_user):
        client.force_login(user)
        page = client.get(reverse("phone_numbers:project_detail", args=[project.pk]))
        assertContains(page, detail)
        assertNotContains(page, "INTERNAL-ONLY")
        assertNotContains(page, "10.0.0.5")


def test_a_server_echoing_the_authorization_header_gets_it_scrubbed_from_the_log(
    settings, hostile_server, make_project, sim_project, caplog
):
    def echo(request: str) -> bytes:
        (authorization,) = [
            line for line in request.split("\r\n") if line.lower().startswith("authorization:")
        ]
        return raw_answer("401 Unauthorized", json.dumps({"message": authorization}))

    server = hostile_server("answer", echo)

    with caplog.at_level(logging.INFO):
        check_against(
            settings, f"http://127.0.0.1:{server.port}{API_PATH}", make_project, sim_project
        )

    encoded = base64.b64encode(f"{sim_project.project_id}:{sim_project.token}".encode()).decode()
    logged = " ".join(caplog.messages)
    assert "Basic [redacted]" in logged
    assert encoded not in logged
    assert sim_project.token not in logged


def test_a_wrong_token_on_the_simulator_reads_as_a_fixed_sentence(
    portal_uses_simulator, make_project, sim_project
):
    project = project_for(make_project, sim_project, token="PTwrong-token-0000")

    assert status_after_check(project) == (
        ConnectionStatus.CREDENTIALS_REJECTED,
        "SignalWire rejected the token (HTTP 401).",
    )


def test_a_token_that_cannot_be_decrypted_reads_as_a_fixed_sentence(make_project, settings):
    project = make_project()
    # The key the token was encrypted with is gone.
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    assert status_after_check(project) == (
        ConnectionStatus.CREDENTIALS_REJECTED,
        "The stored token cannot be decrypted with the portal's keys: enter it again.",
    )

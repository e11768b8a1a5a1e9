"""The check-connection task against the simulator over real HTTP."""

import dataclasses

import pytest
from django.test import override_settings

from phone_numbers.models import ConnectionStatus
from phone_numbers.tasks import check_project_connection
from tests.conftest import free_port

pytestmark = pytest.mark.django_db


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

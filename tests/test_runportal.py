"""What runportal (`make run`) says and starts for someone trying the portal: the admin's login
as it really is, the simulator's projects and their credentials, and a simulator that serves
them, plus any added by flag or at run time, over real HTTP."""

import re
import subprocess
import uuid

import pytest
import requests
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse

import signalwire_simulator as simulator_module
from phone_numbers.management.commands.runportal import (
    admin_login,
    banner_body,
    create_first_admin,
    simulator_command,
)
from phone_numbers.models import ConnectionStatus, Project
from phone_numbers.signalwire import CredentialsRejected, SignalWireClient
from phone_numbers.tasks import check_project_connection
from tests.conftest import REPO_DIR, free_port

# runportal is `make run`, on SQLite: its database work is tried there too.
pytestmark = pytest.mark.both_databases

EXTRA_PROJECT_ID = str(uuid.UUID(int=7))
EXTRA_TOKEN = "PTextra-project-token"


# --------------------------------------------------------------------------------------------
# The admin's login
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_restart_says_the_password_comes_from_portal_admin_password_when_it_does(monkeypatch):
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", "chosen-by-the-operator")
    admin_login(*create_first_admin())

    login = admin_login(*create_first_admin())

    assert login == "user admin, password from PORTAL_ADMIN_PASSWORD"


@pytest.mark.django_db
def test_a_restart_after_a_generated_password_does_not_claim_another_origin(monkeypatch):
    monkeypatch.delenv("PORTAL_ADMIN_PASSWORD", raising=False)
    created, generated = create_first_admin()
    first = admin_login(created, generated)

    login = admin_login(*create_first_admin())

    assert f"password {generated}" in first and "shown only this once" in first
    assert generated not in login
    assert "PORTAL_ADMIN_PASSWORD" not in login
    assert login.startswith("user admin with the password it already has")
    assert "manage.py changepassword admin" in login


@pytest.mark.django_db
def test_a_restart_says_so_when_portal_admin_password_is_no_longer_the_password(monkeypatch):
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", "chosen-by-the-operator")
    create_first_admin()
    admin = User.objects.get(username="admin")
    admin.set_password("changed-after-logging-in")
    admin.save()

    login = admin_login(*create_first_admin())

    assert "PORTAL_ADMIN_PASSWORD is not it" in login
    assert "password from PORTAL_ADMIN_PASSWORD" not in login


# --------------------------------------------------------------------------------------------
# The banner's simulator projects
# --------------------------------------------------------------------------------------------


def test_the_banner_gives_the_simulators_projects_with_their_credentials():
    body = banner_body(
        "user admin, password from PORTAL_ADMIN_PASSWORD",
        8766,
        [f"{EXTRA_PROJECT_ID}:{EXTRA_TOKEN}:extra.signalwire.test"],
    )

    for credential in (
        simulator_module.DEMO_SPACE_HOST,
        simulator_module.DEMO_PROJECT_ID,
        simulator_module.DEMO_TOKEN,
        simulator_module.SECOND_DEMO_SPACE_HOST,
        simulator_module.SECOND_DEMO_PROJECT_ID,
        simulator_module.SECOND_DEMO_TOKEN,
        f"Space host extra.signalwire.test, project ID {EXTRA_PROJECT_ID}",
        "http://127.0.0.1:8766/__sim__/projects",
        "--simulator-project",
    ):
        assert credential in body
    # A token typed on the command line is not echoed.
    assert EXTRA_TOKEN not in body


def test_a_bad_simulator_project_stops_runportal_before_it_starts_anything():
    with pytest.raises(CommandError, match="--simulator-project: a project id must be a UUID"):
        call_command("runportal", "--simulator-project", "acme:PTtoken")


# --------------------------------------------------------------------------------------------
# The simulator runportal starts, over real HTTP
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runportal_simulator():
    """The simulator exactly as runportal starts it, with one more project by flag."""
    port = free_port()
    process = subprocess.Popen(
        simulator_command(port, [f"{EXTRA_PROJECT_ID}:{EXTRA_TOKEN}:extra.signalwire.test"]),
        cwd=REPO_DIR,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = "…"
        while line and "SignalWire simulator on" not in line:
            line = process.stderr.readline()
        assert line, "the simulator exited before announcing its address"
        assert re.search(rf"http://127\.0\.0\.1:{port}/api/laml/2010-04-01", line)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()


def accepts(base_url: str, project_id: str, token: str) -> bool:
    client = SignalWireClient(
        "x.signalwire.test", project_id, token, base_url=f"{base_url}/api/laml/2010-04-01"
    )
    try:
        client.check_credentials()
    except CredentialsRejected:
        return False
    return True


def test_runportals_simulator_serves_both_demo_projects_and_one_added_by_flag(runportal_simulator):
    demo = (simulator_module.DEMO_PROJECT_ID, simulator_module.DEMO_TOKEN)
    second = (simulator_module.SECOND_DEMO_PROJECT_ID, simulator_module.SECOND_DEMO_TOKEN)

    assert accepts(runportal_simulator, *demo)
    assert accepts(runportal_simulator, *second)
    assert accepts(runportal_simulator, EXTRA_PROJECT_ID, EXTRA_TOKEN)
    assert not accepts(runportal_simulator, EXTRA_PROJECT_ID, simulator_module.DEMO_TOKEN)


def test_a_project_posted_to_the_running_simulator_is_served_at_once(runportal_simulator):
    project_id = str(uuid.uuid4())
    assert not accepts(runportal_simulator, project_id, "PTposted-at-run-time")

    added = requests.post(
        f"{runportal_simulator}/__sim__/projects",
        json={
            "project_id": project_id,
            "token": "PTposted-at-run-time",
            "space_host": "posted.signalwire.test",
        },
        timeout=5,
    )

    assert added.status_code == 201
    assert accepts(runportal_simulator, project_id, "PTposted-at-run-time")
    listed = requests.get(f"{runportal_simulator}/__sim__/projects", timeout=5).json()
    assert {project["project_id"] for project in listed} >= {
        simulator_module.DEMO_PROJECT_ID,
        simulator_module.SECOND_DEMO_PROJECT_ID,
        EXTRA_PROJECT_ID,
        project_id,
    }


@pytest.mark.django_db
def test_the_second_demo_project_is_added_on_the_add_project_page_and_checks_ok(
    client,
    admin_user,
    runportal_simulator,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    # As `make run` sets up the portal: local mode's Space hosts, every request to the simulator.
    settings.PORTAL_SPACE_HOST_SUFFIXES = ["signalwire.com", "signalwire.test"]
    settings.SIGNALWIRE_BASE_URL = f"{runportal_simulator}/api/laml/2010-04-01"
    monkeypatch.setattr(check_project_connection, "delay", check_project_connection)
    client.force_login(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("phone_numbers:project_create"),
            {
                "name": "Second customer",
                "space_host": simulator_module.SECOND_DEMO_SPACE_HOST,
                "project_id": simulator_module.SECOND_DEMO_PROJECT_ID,
                "default_country": "US",
                "notes": "",
                "token": simulator_module.SECOND_DEMO_TOKEN,
            },
        )

    project = Project.objects.get(name="Second customer")
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.connection_status == ConnectionStatus.OK


def test_the_readme_gives_the_same_simulator_credentials_as_the_banner():
    readme = (REPO_DIR / "README.md").read_text()

    for credential in (
        simulator_module.DEMO_SPACE_HOST,
        simulator_module.DEMO_PROJECT_ID,
        simulator_module.DEMO_TOKEN,
        simulator_module.SECOND_DEMO_SPACE_HOST,
        simulator_module.SECOND_DEMO_PROJECT_ID,
        simulator_module.SECOND_DEMO_TOKEN,
    ):
        assert f"`{credential}`" in readme

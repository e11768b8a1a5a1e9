import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
REPO_DIR = Path(__file__).resolve().parent.parent
# Variables that choose the portal's mode; a subprocess test sets the ones it means.
CONFIG_VARIABLES = {
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "PORTAL_ENCRYPTION_KEYS",
    "PORTAL_VAR_DIR",
    "PORTAL_ADMIN_PASSWORD",
}


@pytest.fixture(autouse=True)
def _only_loopback_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any `requests` call that would leave this machine: tests talk only to loopback."""
    real_send = requests.adapters.HTTPAdapter.send

    def guarded_send(adapter, request, *args, **kwargs):
        host = urlsplit(request.url).hostname
        if host not in LOOPBACK_HOSTS:
            raise AssertionError(f"a test tried to reach {host} over the network")
        return real_send(adapter, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", guarded_send)


@pytest.fixture
def local_mode_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a subprocess running the portal as `make run` does, in its own var/."""
    env = {key: value for key, value in os.environ.items() if key not in CONFIG_VARIABLES}
    env["PORTAL_VAR_DIR"] = str(tmp_path / "var")
    return env


def run_manage(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def support_user(db):
    from django.contrib.auth.models import Group, User

    from phone_numbers.roles import SUPPORT

    user = User.objects.create_user("sam", password="support-pass-1")
    user.groups.add(Group.objects.get(name=SUPPORT))
    return user


@pytest.fixture
def admin_user(db):
    from django.contrib.auth.models import Group, User

    from phone_numbers.roles import ADMINS

    user = User.objects.create_user("ada", password="admin-pass-1", is_staff=True)
    user.groups.add(Group.objects.get(name=ADMINS))
    return user


@pytest.fixture
def make_project(db):
    """Build a project (with an active token unless token=None); fields override defaults."""
    import uuid

    from phone_numbers.models import Project

    def make(token: str | None = "PTdefault-test-token-0001", **overrides):
        fields = {
            "name": "Acme Corp",
            "space_host": "acme.signalwire.com",
            "project_id": uuid.uuid4(),
            "default_country": "US",
        }
        project = Project.objects.create(**(fields | overrides))
        if token:
            project.replace_token(token, by=None)
        return project

    return make


# ---------------------------------------------------------------------------------------------
# SignalWire simulator fixtures (issue 3). An in-process simulator on a free 127.0.0.1 port.
# Imports stay inside the fixtures so this section does not disturb the module above.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def sim_project():
    """A fresh simulator project: random UUID and token, every switch at its default."""
    import uuid

    from phone_numbers.simulator import SimProject

    return SimProject(
        project_id=str(uuid.uuid4()),
        token="PT" + uuid.uuid4().hex,
        space_host="test.signalwire.test",
    )


@pytest.fixture
def simulator(sim_project):
    """A running `Simulator` knowing `sim_project`; `.api_base_url`, `.configure()`, `.stats()`."""
    from phone_numbers.simulator import Simulator

    sim = Simulator([sim_project], seed=1234).start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def sim_client(simulator, sim_project):
    """A `SignalWireClient` for `sim_project`, pointed at `simulator`, with short timeouts."""
    from phone_numbers.signalwire import SignalWireClient

    return SignalWireClient(
        sim_project.space_host,
        sim_project.project_id,
        sim_project.token,
        base_url=simulator.api_base_url,
        timeout=(1.0, 2.0),
        version="test",
    )

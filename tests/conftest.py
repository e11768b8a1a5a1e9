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

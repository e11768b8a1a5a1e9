"""The embedded default (`make run`) with real processes: SQLite, and the file-system broker
or the Redis that `make test` provides."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import REPO_DIR, free_port, run_manage

pytestmark = pytest.mark.integration


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def demo_connection_status(database) -> str | None:
    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "SELECT connection_status FROM phone_numbers_project WHERE name LIKE 'Demo%'"
        ).fetchone()
    return row and row[0]


@pytest.mark.parametrize("broker", ["filesystem", "redis"])
def test_a_task_sent_by_the_web_process_runs_in_a_separate_worker(local_mode_env, tmp_path, broker):
    if broker == "redis":
        if "REDIS_URL" not in os.environ:
            pytest.skip("REDIS_URL is not set; `make test` sets it")
        local_mode_env["REDIS_URL"] = os.environ["REDIS_URL"]
    database = tmp_path / "var" / "portal.sqlite3"
    assert run_manage(local_mode_env, "migrate", "--no-input").returncode == 0
    add_expired_session = (
        "from datetime import timedelta; from django.utils import timezone; "
        "from django.contrib.sessions.models import Session; "
        "Session.objects.create(session_key='expired', session_data='', "
        "expire_date=timezone.now() - timedelta(days=1))"
    )
    assert run_manage(local_mode_env, "shell", "-c", add_expired_session).returncode == 0

    def sessions_left() -> int:
        with sqlite3.connect(database) as connection:
            return connection.execute("SELECT COUNT(*) FROM django_session").fetchone()[0]

    assert sessions_left() == 1
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "--app", "portal", "worker", "--pool", "threads"],
        cwd=REPO_DIR,
        env=local_mode_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        send = run_manage(
            local_mode_env,
            "shell",
            "-c",
            "from phone_numbers.tasks import clear_expired_sessions; "
            "clear_expired_sessions.delay()",
        )
        assert send.returncode == 0, send.stderr

        wait_for(lambda: sessions_left() == 0, seconds=30, what="the worker to run the task")
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def test_runportal_serves_the_portal_and_stops_every_part(local_mode_env, tmp_path):
    port, simulator_port = free_port(), free_port()
    env = {**local_mode_env, "PORTAL_ADMIN_PASSWORD": "first-admin-password"}
    portal = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "runportal",
            "--port",
            str(port),
            # Not the default 8765, which a `make run` on this machine may hold.
            "--simulator-port",
            str(simulator_port),
            "--worker-concurrency",
            "2",
        ],
        cwd=REPO_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        banner = ""
        while "is running at" not in banner:
            line = portal.stdout.readline()
            assert line, "runportal exited before it was ready"
            banner += line
        banner += portal.stdout.readline()
        base = f"http://127.0.0.1:{port}"

        assert f"{base}/" in banner
        assert "user admin, password from PORTAL_ADMIN_PASSWORD" in banner
        assert requests.get(f"{base}/healthz", timeout=5).json()["status"] == "ok"
        login_page = requests.get(f"{base}/", timeout=5)
        assert login_page.url.startswith(f"{base}/login/")
        assert 'name="password"' in login_page.text
        assert requests.get(f"{base}/static/css/portal.css", timeout=5).status_code == 200
        # The worker checks the demo project's connection against the simulator.
        wait_for(
            lambda: demo_connection_status(tmp_path / "var" / "portal.sqlite3") == "ok",
            seconds=30,
            what="the demo project's connection check",
        )

        # The simulator answers on its port, so that the check below that it stopped can fail.
        assert requests.get(f"http://127.0.0.1:{simulator_port}/", timeout=5).status_code

        portal.send_signal(signal.SIGINT)
        assert portal.wait(timeout=30) == 0
        for stopped_port in (port, simulator_port):
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{stopped_port}/", timeout=2)
    finally:
        if portal.poll() is None:
            portal.kill()

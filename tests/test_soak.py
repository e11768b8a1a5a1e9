"""The fault soak (bench/soak.py), shortened: 150 numbers through real worker, beat and Redis
processes, with SignalWire faults, a worker killed with SIGKILL and Redis restarted mid-job."""

import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_DIR

pytestmark = pytest.mark.integration


@pytest.mark.skipif(
    not shutil.which("redis-server"),
    reason="redis-server is missing; `make test` installs it (scripts/with_test_servers.py)",
)
def test_a_150_number_soak_ends_with_every_number_terminal_and_none_created_twice():
    # The soak starts its own Redis and its own database on DATABASE_URL's server, stops
    # everything it started and bounds itself (--timeout); the outer timeout is a last resort.
    result = subprocess.run(
        [sys.executable, "bench/soak.py", "--numbers", "150", "--timeout", "90"],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    assert "OK: every check passed" in result.stdout

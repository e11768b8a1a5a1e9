"""The chaos harness (bench/chaos.py): its sustained-rate arithmetic, and its short variant,
which runs every configuration through real worker, beat and Redis processes."""

import importlib.util
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_DIR


@pytest.fixture
def chaos(monkeypatch):
    # Run as a script, the harness finds its neighbour portal_processes on sys.path[0].
    monkeypatch.syspath_prepend(str(REPO_DIR / "bench"))
    spec = importlib.util.spec_from_file_location("chaos", REPO_DIR / "bench" / "chaos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sustained_rate_is_the_mean_over_the_seconds_in_which_the_limit_binds(chaos):
    start = 1000.0
    # Four samples a second for five seconds; the limit binds in seconds 0, 1 and 3 only.
    ready = {0: 9, 1: 5, 2: 6, 3: 7, 4: 6}
    samples = [(start + s + q / 4, ready[s]) for s in range(5) for q in range(4)]
    samples[9] = (samples[9][0], 2)  # one sample of second 2 below the limit: not bound

    rate, seconds = chaos.sustained_rate(start, [5, 4, 1, 3], samples, limit=5)

    # Second 4 is the last, so not known to be whole; second 3 counts its 3 requests.
    assert (rate, seconds) == ((5 + 4 + 3) / 3, 3)


def test_a_space_that_never_answered_a_request_sustains_nothing(chaos):
    samples = [(2000.0 + q / 4, 40) for q in range(13)]

    assert chaos.sustained_rate(None, [], samples, limit=5) == (0.0, 3)
    assert chaos.sustained_rate(None, [], [], limit=5) == (None, 0)


@pytest.mark.integration
@pytest.mark.skipif(
    not shutil.which("redis-server"),
    reason="redis-server is missing; `make test` installs it (scripts/with_test_servers.py)",
)
def test_the_short_chaos_run_keeps_every_promise_in_every_configuration():
    # Each configuration starts its own Redis and database on DATABASE_URL's server, stops
    # everything it started and bounds itself (--timeout); the outer timeout is a last resort.
    result = subprocess.run(
        [sys.executable, "bench/chaos.py", "--short"],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=1500,
    )

    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-5000:]
    assert "OK: every check passed" in result.stdout

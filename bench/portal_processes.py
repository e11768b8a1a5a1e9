"""Throwaway servers and portal processes for the benchmarks that run real Celery workers.

bench/soak.py and bench/import_throughput.py each start a Redis of their own (on a free port,
never the machine's shared one on 6379), create a throwaway PostgreSQL database on the server
of DATABASE_URL, and run Celery worker and beat processes against both. Every process started
here is stopped, and the database dropped, when the caller's ExitStack closes.
"""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from cryptography.fernet import Fernet

REPO_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_SERVER = "postgres://postgres@127.0.0.1:5432"
# Variables that configure the portal. A caller may itself run under pytest, whose settings put
# memory:// into CELERY_BROKER_URL, so nothing of the kind is inherited: each bench sets its own.
CONFIG_PREFIXES = ("DJANGO_", "PORTAL_", "SIGNALWIRE_", "CELERY_")
CONFIG_NAMES = {"DATABASE_URL", "REDIS_URL"}
READY_SECONDS = 30

# The soak's SignalWire faults (soak.py, and chaos.py's kill_restart): retried away in seconds
# with the settings of portal_environment.
SOAK_FAULTS = {
    "error_429_fraction": 0.10,
    "retry_after": 1,
    "error_500_fraction": 0.05,
    "timeout_fraction": 0.05,
    # Held past the client's read timeout (1 s in portal_environment), then answered to nobody.
    "timeout_seconds": 2.0,
    "timeout_creates": 0.5,
    "reset_fraction": 0.02,
}


def clean_environment() -> dict[str, str]:
    """os.environ without any variable that configures the portal."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in CONFIG_NAMES and not name.startswith(CONFIG_PREFIXES)
    }


def portal_environment(
    *, database_url: str, redis_url: str, sim_url: str, workdir: Path, threads: int
) -> dict[str, str]:
    """What every process of a bench runs with: the production settings, tuned for seconds.

    portal.settings in production mode (DATABASE_URL set, DJANGO_DEBUG off), as a real install
    runs its workers, so every secret is given here and shared by all processes (a token this
    process encrypts must decrypt in the workers). `threads` is the workers' threads in all.
    """
    return clean_environment() | {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "PORTAL_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        # The beat schedule and collected static files stay out of the checkout's var/.
        "PORTAL_VAR_DIR": str(workdir / "var"),
        "PORTAL_LOG_LEVEL": "WARNING",
        "SIGNALWIRE_BASE_URL": sim_url,
        # Production mode refuses a base URL unless this allows it.
        "PORTAL_ALLOW_SIGNALWIRE_BASE_URL": "true",
        "SIGNALWIRE_CONNECT_TIMEOUT_MS": "1000",
        "SIGNALWIRE_READ_TIMEOUT_MS": "1000",
        "PORTAL_JOB_CONCURRENCY": str(threads),
        # The benches measure imports of thousands of numbers, not a second admin's approval.
        "PORTAL_APPROVAL_THRESHOLD": "0",
        # Ten attempts with 1-3 s backoff: faults are retried away in seconds.
        "PORTAL_MAX_ATTEMPTS": "10",
        "PORTAL_RETRY_BASE_SECONDS": "1",
        "PORTAL_RETRY_MAX_SECONDS": "3",
        # Recovery in seconds: an attempt (slot waits, lookup and POST, 1 s connect + 1 s read
        # each) ends within 5 s, so a number "submitting" for 10 s lost its worker.
        "PORTAL_RECOVERY_INTERVAL_SECONDS": "1",
        "PORTAL_ATTEMPT_SECONDS": "5",
        "PORTAL_REQUEUE_AFTER_SECONDS": "5",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {seconds:.0f} s")
        time.sleep(0.05)


def raise_on_termination() -> None:
    """Turn SIGTERM and SIGHUP into SystemExit, so `finally` blocks stop what was started."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGHUP, leave)


def stop_process(process: subprocess.Popen, seconds: float = 15) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RedisServer:
    """A throwaway redis-server on a free loopback port, with no persistence.

    `stop()` then `start()` restarts it on the same port, empty: every queued and unacked
    message is gone, as after a crash of an unpersisted Redis.
    """

    def __init__(self, workdir: Path) -> None:
        if not shutil.which("redis-server"):
            sys.exit("redis-server is not installed: sudo apt-get install -y redis-server")
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
            + ["--logfile", str(self.workdir / "redis.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.answers, READY_SECONDS, f"Redis answering on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


class ThrowawayDatabase:
    """A PostgreSQL database created on DATABASE_URL's server and dropped at the end."""

    def __init__(self, name: str, database_url: str | None = None) -> None:
        parts = urlsplit(database_url or DEFAULT_DATABASE_SERVER)
        self.server = f"{parts.scheme}://{parts.netloc}"
        self.name = name
        self.url = f"{self.server}/{name}"

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(f"{self.server}/postgres", autocommit=True)

    def create(self) -> None:
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with self._admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class CeleryProcess:
    """`celery --app portal worker|beat ...` with its output in a log file."""

    def __init__(self, name: str, arguments: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.arguments = arguments
        self.env = env
        self.log_path = logdir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.ready_text = " ready." if arguments[0] == "worker" else "beat: Starting"
        self.ready_lines_before = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        # A restarted process appends to the same log: count readiness lines, not presence.
        self.ready_lines_before = self.log().count(self.ready_text)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "--app", "portal", *self.arguments],
                cwd=REPO_DIR,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; its log:\n{self.log()[-3000:]}")
            return self.log().count(self.ready_text) > self.ready_lines_before

        wait_until(ready, READY_SECONDS, f"{self.name} ready")

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, nothing acknowledged, nothing handed back."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def worker(
    name: str, env: dict[str, str], logdir: Path, concurrency: int = 8, extra: list[str] = ()
) -> CeleryProcess:
    return CeleryProcess(
        name,
        ["worker", "--pool", "threads", "--concurrency", str(concurrency)]
        + ["--hostname", f"{name}@%h", "--loglevel", "INFO"]
        + ["--without-mingle", "--without-gossip", *extra],
        env,
        logdir,
    )


def beat(env: dict[str, str], logdir: Path) -> CeleryProcess:
    return CeleryProcess(
        "beat",
        ["beat", "--loglevel", "INFO", "--schedule", str(logdir / "beat-schedule")],
        env,
        logdir,
    )


def start_all(processes: list[CeleryProcess], stack: contextlib.ExitStack) -> None:
    """Start the processes together (they take seconds to import), then wait for each."""
    for process in processes:
        stack.callback(process.stop)
        process.start()
    for process in processes:
        process.wait_ready()


def start_gunicorn(env: dict[str, str], logdir: Path, stack: contextlib.ExitStack) -> tuple:
    """`gunicorn portal.wsgi` as production starts it (gunicorn.conf.py), on a free loopback
    port; returns (its base URL, its process). Stopped when `stack` closes."""
    port = free_port()
    log = (logdir / "gunicorn.log").open("ab")
    stack.callback(log.close)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi"],
        cwd=REPO_DIR,
        env=env | {"GUNICORN_BIND": f"127.0.0.1:{port}"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack.callback(stop_process, process)
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}: see {log.name}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    wait_until(answers, 60, "gunicorn answering /healthz")
    return base_url, process


def cpu_seconds_of(pids: set[int]) -> float:
    """CPU seconds (user + system) used so far by these processes and all their descendants,
    from /proc; a process that has already exited counts nothing."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    tree = set(pids)
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    ticks = os.sysconf("SC_CLK_TCK")
    used = 0.0
    for pid in tree:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used += (int(fields[11]) + int(fields[12])) / ticks
    return used

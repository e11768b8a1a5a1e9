"""Run a command (the test suite) with a PostgreSQL and a Redis server to talk to.

Servers already answering on 127.0.0.1:5432 and 127.0.0.1:6379 are used as they are (the
suite creates its own database there, named for this run, and drops it afterwards).
Otherwise, or with PORTAL_TEST_PRIVATE_SERVERS=true, throwaway servers are started from the
installed binaries in a temporary folder and stopped afterwards. A missing binary is
installed with apt-get when running as root on Debian; otherwise the command to run is shown.

Usage: python scripts/with_test_servers.py COMMAND [ARG ...]
"""

import contextlib
import functools
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED_POSTGRES_PORT = 5432
SHARED_REDIS_PORT = 6379
# The shared Redis may serve others; the suite keeps to a database of its own there.
REDIS_DATABASE = 15


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answers(port: int, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not answers(port):
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not start on 127.0.0.1:{port}")
        time.sleep(0.1)


def install(debian_package: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(
            f"The tests need {debian_package}, which is not installed. "
            f"Install it with: sudo apt-get install -y {debian_package}"
        )
    print(f"Installing {debian_package} for the tests…", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", debian_package],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def postgres_bin_dir() -> Path | None:
    # Debian keeps initdb and pg_ctl out of PATH, under one folder per major version.
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def start_postgres(workdir: Path, stack: contextlib.ExitStack) -> int:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        install("postgresql")
        bin_dir = postgres_bin_dir()
    data_dir, port = workdir / "postgres", free_port()
    # PostgreSQL refuses to run as root: as root, run it as the postgres system user.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data_dir.mkdir()
    if as_user:
        shutil.chown(workdir, "postgres")
        shutil.chown(data_dir, "postgres")
    # cwd: the postgres user may not enter the checkout's folder.
    run = functools.partial(subprocess.run, cwd=workdir, stdout=subprocess.DEVNULL)
    run(
        [*as_user, bin_dir / "initdb", "-D", data_dir, "-U", "postgres", "-A", "trust", "-N"],
        check=True,
    )
    options = f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*as_user, bin_dir / "pg_ctl", "-D", data_dir, "-l", workdir / "postgres.log"]
    run([*pg_ctl, "-o", options, "-w", "start"], check=True)
    stack.callback(run, [*pg_ctl, "-m", "immediate", "stop"])
    print(f"Started a throwaway PostgreSQL on 127.0.0.1:{port}", flush=True)
    return port


def start_redis(workdir: Path, stack: contextlib.ExitStack) -> int:
    if not shutil.which("redis-server"):
        install("redis-server")
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    stack.callback(server.wait)
    stack.callback(server.terminate)
    wait_until_answers(port, "Redis")
    print(f"Started a throwaway Redis on 127.0.0.1:{port}", flush=True)
    return port


def main(command: list[str]) -> int:
    private = os.environ.get("PORTAL_TEST_PRIVATE_SERVERS", "").lower() in {"1", "true", "yes"}
    # The SQLite pass (portal/test_settings.py) needs no PostgreSQL server, only Redis.
    on_sqlite = os.environ.get("PORTAL_TEST_DATABASE") == "sqlite"
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="portal-test-")))
        postgres_port = (
            SHARED_POSTGRES_PORT
            if on_sqlite or (answers(SHARED_POSTGRES_PORT) and not private)
            else start_postgres(workdir, stack)
        )
        redis_port = (
            SHARED_REDIS_PORT
            if answers(SHARED_REDIS_PORT) and not private
            else start_redis(workdir, stack)
        )
        env = {
            **os.environ,
            # pytest-django creates "test_" + this name for the run: never an existing database.
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{postgres_port}/portal_{os.getpid()}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/{REDIS_DATABASE}",
        }
        return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))

import contextlib
import fcntl
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO
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
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "PORTAL_TEST_DATABASE",
    "PORTAL_TEST_SQLITE_FILE",
}


MUTANTS_TEMPLATE_DATABASE = "test_portal_mutants"


def _is_mutant_run() -> bool:
    """True in a process that `make mutants` (mutmut) forked to test one mutant."""
    return os.environ.get("MUTANT_UNDER_TEST", "") not in ("", "stats", "fail", "list_all_tests")


def _hold_lock(name: str, *, wait: bool) -> TextIO | None:
    """The lock file `name`, locked until it is closed (or the process ends), or None."""
    lock = open(Path(tempfile.gettempdir()) / name, "w")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        lock.close()
        return None
    return lock


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix, django_db_blocker
) -> Iterator[None]:
    """Under `make mutants`, give each test process a fresh test database of its own.

    mutmut tests each mutant in a forked process, two at a time: sharing the test database's
    name, they would drop each other's database, and a reused one keeps the planner
    statistics of earlier runs (ANALYZE writes them outside the test's transaction). So a
    process takes a free slot and copies that slot's database from a migrated template, in
    a fraction of the time migrations take.
    """
    if not _is_mutant_run():
        yield
        return
    from django.conf import settings
    from django.db import connection

    for slot in itertools.count():
        if slot_lock := _hold_lock(f"portal-mutants-db-{slot}.lock", wait=False):
            break
    database = f"{MUTANTS_TEMPLATE_DATABASE}_{slot}"
    test_settings = settings.DATABASES["default"].setdefault("TEST", {})
    with _hold_lock("portal-mutants-db-template.lock", wait=True), django_db_blocker.unblock():
        test_settings["NAME"] = MUTANTS_TEMPLATE_DATABASE
        # Brings the template up to date with the migrations (a no-op once it is).
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=True)
        connection.close()
        with connection.creation._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}"')
            cursor.execute(f'CREATE DATABASE "{database}" TEMPLATE "{MUTANTS_TEMPLATE_DATABASE}"')
    test_settings["NAME"] = database
    yield
    slot_lock.close()


@pytest.fixture(scope="session")
def django_db_keepdb(request: pytest.FixtureRequest) -> bool:
    """Keep the database django_db_modify_db_settings copied for a mutant, as it is."""
    return _is_mutant_run() or request.config.getvalue("reuse_db")


AUDIT_TABLE = "phone_numbers_auditentry"


def _flush_lifting_audit_triggers(sql_flush):
    """`sql_flush`, but the audit table's triggers (migration 0009) are off while it runs."""

    def flush(ops, style, tables, **kwargs) -> list[str]:
        statements = sql_flush(ops, style, tables, **kwargs)
        if AUDIT_TABLE not in tables:
            return statements
        if ops.connection.vendor == "postgresql":
            return [
                f"ALTER TABLE {AUDIT_TABLE} DISABLE TRIGGER USER",
                *statements,
                f"ALTER TABLE {AUDIT_TABLE} ENABLE TRIGGER USER",
            ]
        # SQLite cannot disable a trigger: drop it and create it again.
        with ops.connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [AUDIT_TABLE],
            )
            triggers = cursor.fetchall()
        return [
            *(f"DROP TRIGGER {name}" for name, _ in triggers),
            *statements,
            *(sql for _, sql in triggers),
        ]

    return flush


@pytest.fixture(scope="session", autouse=True)
def _flush_empties_the_audit_log() -> Iterator[None]:
    """Transactional tests end with a flush of every table, which the audit log's triggers
    refuse: between tests, and only then, the log may be emptied."""
    from django.db import connection

    operations = type(connection.ops)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(operations, "sql_flush", _flush_lifting_audit_triggers(operations.sql_flush))
        yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On SQLite, skip each test about a PostgreSQL-only feature, giving its reason.

    `make test` runs the tests marked `both_databases` a second time on SQLite
    (PORTAL_TEST_DATABASE=sqlite, portal/test_settings.py); `postgresql_only(reason=...)` marks
    the few among them that test what only PostgreSQL has (a trigger, a query plan).
    """
    from django.db import connection

    for item in items:
        marker = item.get_closest_marker("postgresql_only")
        if marker is None:
            continue
        reason = marker.kwargs.get("reason")
        if not reason:
            raise pytest.UsageError(f"{item.nodeid}: postgresql_only needs reason='why'")
        if connection.vendor != "postgresql":
            item.add_marker(pytest.mark.skip(reason=f"PostgreSQL only: {reason}"))


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


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Nothing cached by one test (an import preview) shows in another."""
    from django.core.cache import cache

    cache.clear()


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
def sent(monkeypatch) -> list[tuple[int, float | None]]:
    """Tasks sent to the broker, as (number import pk, countdown)."""
    from phone_numbers.tasks import import_phone_number

    calls: list[tuple[int, float | None]] = []
    monkeypatch.setattr(
        import_phone_number,
        "apply_async",
        lambda args, countdown=None: calls.append((args[0], countdown)),
    )
    return calls


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


@pytest.fixture
def project_job_and_number(make_project, admin_user, monkeypatch) -> dict:
    """One of each: a project, a job of one number in it, and that number; no task is sent."""
    from phone_numbers import importing
    from phone_numbers.number_input import read_pasted
    from phone_numbers.tasks import check_project_connection, import_phone_number

    monkeypatch.setattr(import_phone_number, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(check_project_connection, "delay", lambda *args, **kwargs: None)
    project = make_project()
    job = importing.start_job(
        project=project,
        lines=read_pasted("+1 415 555 0100"),
        number_type="longcode",
        capabilities=["sms"],
        created_by=admin_user,
        source="single",
        ticket="",
    )
    return {"project": project, "job": job, "number": job.numbers.get()}


# ---------------------------------------------------------------------------------------------
# SignalWire simulator fixtures (issue 3). An in-process simulator on a free 127.0.0.1 port.
# Imports stay inside the fixtures so this section does not disturb the module above.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def sim_project():
    """A fresh simulator project: random UUID and token, every switch at its default."""
    import uuid

    from signalwire_simulator import SimProject

    return SimProject(
        project_id=str(uuid.uuid4()),
        token="PT" + uuid.uuid4().hex,
        space_host="simulated.signalwire.com",
    )


@pytest.fixture
def simulator(sim_project):
    """A running `Simulator` knowing `sim_project`; `.api_base_url`, `.configure()`, `.stats()`."""
    from signalwire_simulator import Simulator

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


# SignalWire's official OpenAPI description, for the conformance checks of the
# simulator's and the client's messages. It is reference data under a non-commercial licence,
# so it is read from ../shared/signalwire/openapi.yaml beside the checkout and never copied into
# the repository; the tests that need it are skipped, saying why, when it is missing.
SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "signalwire" / "openapi.yaml"
SPEC_URI = "https://spec.signalwire.test/compatibility/openapi.yaml"


@pytest.fixture(scope="session")
def spec():
    if not SPEC_PATH.is_file():
        pytest.skip(
            f"SignalWire's OpenAPI description is not at {SPEC_PATH} (it is reference data kept "
            "beside the checkout, never in it); conformance cannot be checked"
        )
    yaml = pytest.importorskip("yaml")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader)


@pytest.fixture(scope="session")
def validate(spec):
    """validate(schema, instance): errors of `instance` against a schema of the spec.

    `schema` is a JSON pointer into the spec (``#/components/schemas/X``) or a schema object
    whose `$ref`s point into it. OpenAPI 3.1 schemas are JSON Schema 2020-12.
    """
    import json

    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )

    def errors(schema, instance):
        if isinstance(schema, str):
            schema = {"$ref": schema}
        schema = json.loads(json.dumps(schema).replace('"#/', f'"{SPEC_URI}#/'))
        validator = Draft202012Validator(
            schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]

    return errors


# ---------------------------------------------------------------------------------------------
# Browser and worker-process fixtures. A real browser (Debian's Chromium, driven by
# Playwright) against pytest-django's `live_server`, and real Celery worker processes that
# share the test database and a Redis broker with this process.
# Imports stay inside the fixtures so this section does not disturb the module above.
# ---------------------------------------------------------------------------------------------

# Playwright cannot download its own browsers on these machines; `make test` installs this one.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # The tests talk only to 127.0.0.1: keep Chromium's own traffic off the network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT_DIR = REPO_DIR / "artifacts" / "screenshots"
WORKER_READY_SECONDS = 30
_REPORTS_KEY = pytest.StashKey[dict]()
_WORKERS_KEY = pytest.StashKey[list]()


@pytest.fixture
def page(request, transactional_db):
    """A Playwright page in a fresh headless Chromium, closed after the test.

    Playwright's sync API marks an asyncio loop as running in this thread, and Django then
    hands out other database connections (asgiref keeps them apart). So the browser starts
    after the test's database set-up and stops before its teardown, closing the connections
    opened meanwhile, and a test with a page is always transactional: what it writes is
    committed, whichever connection writes it. When the test fails, a screenshot of the page
    goes to artifacts/screenshots/FAILED-<test>.png.
    """
    import re

    from django.db import connections
    from playwright.sync_api import Error, sync_playwright

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; `make test` installs it: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            browser_page = browser.new_context().new_page()
            yield browser_page
            call = request.node.stash.get(_REPORTS_KEY, {}).get("call")
            if call is not None and call.failed:
                with contextlib.suppress(Error):
                    save_screenshot(
                        browser_page, "FAILED-" + re.sub(r"\W+", "-", request.node.name)
                    )
        finally:
            browser.close()
            # Still inside Playwright's loop: close the connections the test opened there, or
            # they would keep the test database from being dropped at the end of the run.
            connections.close_all()


def save_screenshot(page, name: str) -> Path:
    """Save a full-page screenshot of what the browser shows to artifacts/screenshots/NAME.png."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


@pytest.fixture
def log_in(live_server):
    """`log_in(page, username, password)`: log in through the real login page."""

    def log_in_as(page, username: str, password: str) -> None:
        page.goto(f"{live_server.url}/login/")
        page.locator("#id_username").fill(username)
        page.locator("#id_password").fill(password)
        # The header has a "Log out" button too, so stay inside the page's main part.
        page.locator("main").get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/login/" not in url)

    return log_in_as


class CeleryBroker:
    def __init__(self, url: str, keyprefix: str) -> None:
        self.url = url
        # Every Redis key (queues, bindings, unacked messages) of the test starts with this.
        self.keyprefix = keyprefix


class CeleryWorker:
    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _forget_broker_connections(app) -> None:
    """Make the Celery app open new broker connections from its current configuration.

    The app caches a connection pool and a producer pool (kombu keeps both in global
    registries); dropping them is what Celery itself does after a fork.
    """
    from kombu import pools

    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()


@pytest.fixture
def celery_redis_broker():
    """Make this process's Celery app publish to Redis, under a key prefix of this test's own.

    Tasks sent here (also by views in the `live_server` thread, e.g. `delay_on_commit`) reach
    workers that `start_celery_worker` starts; workers of other tests or runs never see them.
    At teardown the app goes back to the in-memory broker and the test's Redis keys are
    deleted. Skips when REDIS_URL is not set (`make test` sets it).
    """
    import uuid

    import redis

    from portal.celery import app

    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("REDIS_URL is not set; `make test` sets it")
    broker = CeleryBroker(url=redis_url, keyprefix=f"portal-test-{uuid.uuid4().hex[:12]}:")
    with pytest.MonkeyPatch.context() as patch:
        # Celery reads CELERY_BROKER_URL from the environment before its configuration, and
        # test_settings puts memory:// there; the worker reads the same key prefix from
        # PORTAL_TEST_BROKER_KEYPREFIX (portal/test_settings.py).
        patch.setenv("CELERY_BROKER_URL", broker.url)
        patch.setitem(app.conf, "broker_transport_options", {"global_keyprefix": broker.keyprefix})
        _forget_broker_connections(app)
        yield broker
    _forget_broker_connections(app)
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{broker.keyprefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _database_env(settings_dict: dict) -> dict[str, str]:
    """The variables with which portal.test_settings opens the database of `settings_dict`."""
    from urllib.parse import quote

    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return {
            "PORTAL_TEST_DATABASE": "sqlite",
            "PORTAL_TEST_SQLITE_FILE": str(settings_dict["NAME"]),
        }
    credentials = quote(settings_dict["USER"] or "", safe="")
    if settings_dict["PASSWORD"]:
        credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = quote(settings_dict["HOST"] or "localhost", safe="")
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    name = quote(settings_dict["NAME"], safe="")
    return {"DATABASE_URL": f"postgres://{credentials}@{host}{port}/{name}"}


@pytest.fixture
def start_celery_worker(
    request, transactional_db, django_db_serialized_rollback, celery_redis_broker, tmp_path
):
    """`start_celery_worker(env=None, concurrency=4, beat=False) -> CeleryWorker`: a real worker.

    It runs `celery --app portal worker --pool threads` with portal.test_settings, on the
    test database (which this process shares, so the test is transactional; it starts with
    what the migrations created, such as the roles' groups) and on `celery_redis_broker`.
    `env` adds or overrides variables, e.g. SIGNALWIRE_BASE_URL. Returns once the worker is
    ready. Workers are stopped at teardown; when the test fails, their logs (kept in tmp_path)
    are added to its report.
    """
    import time

    from django.conf import settings
    from django.db import connection

    workers: list[CeleryWorker] = []
    request.node.stash[_WORKERS_KEY] = workers

    def start(
        env: dict[str, str] | None = None, concurrency: int = 4, beat: bool = False
    ) -> CeleryWorker:
        name = f"worker{len(workers) + 1}"
        worker_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.test_settings",
            **_database_env(connection.settings_dict),
            "CELERY_BROKER_URL": celery_redis_broker.url,
            "PORTAL_TEST_BROKER_KEYPREFIX": celery_redis_broker.keyprefix,
            # Tokens this process encrypts must decrypt there.
            "PORTAL_ENCRYPTION_KEYS": ",".join(settings.PORTAL_ENCRYPTION_KEYS),
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            **(env or {}),
        }
        log_path = tmp_path / f"celery-{name}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "--app", "portal", "worker"]
                + ["--pool", "threads", "--concurrency", str(concurrency)]
                + ["--hostname", f"{name}-{celery_redis_broker.keyprefix[:-1]}@%h"]
                + ["--loglevel", "INFO", "--without-mingle", "--without-gossip"]
                + ["--without-heartbeat"]
                # With beat inside the worker, the periodic tasks run too (one beat only).
                + (["--beat", "--schedule", str(tmp_path / f"beat-{name}")] if beat else []),
                cwd=REPO_DIR,
                env=worker_env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Its own process group: stopping it also stops an embedded beat.
                start_new_session=True,
            )
        worker = CeleryWorker(process=process, log_path=log_path)
        workers.append(worker)
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while " ready." not in worker.log():
            if process.poll() is not None or time.monotonic() > deadline:
                state = "exited" if process.poll() is not None else "was not ready in time"
                raise AssertionError(f"the Celery worker {state}; its log:\n{worker.log()}")
            time.sleep(0.1)
        return worker

    yield start
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.process.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait()


@pytest.fixture
def celery_worker_process(start_celery_worker, simulator) -> CeleryWorker:
    """A running worker (4 threads) whose SignalWire requests all go to `simulator`."""
    return start_celery_worker(
        env={
            "SIGNALWIRE_BASE_URL": simulator.api_base_url,
            # The test settings are production mode, which refuses a base URL without this.
            "PORTAL_ALLOW_SIGNALWIRE_BASE_URL": "true",
        }
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test; a failing one gets the workers' logs."""
    report = yield
    item.stash.setdefault(_REPORTS_KEY, {})[report.when] = report
    if report.failed:
        for number, worker in enumerate(item.stash.get(_WORKERS_KEY, []), start=1):
            report.sections.append((f"Celery worker {number} log", worker.log()))
    return report


# ---------------------------------------------------------------------------------------------
# A hostile server on 127.0.0.1, for what the portal shows of a server's errors (issue 19).
# ---------------------------------------------------------------------------------------------


class HostileServer:
    """A loopback TCP server that, for each connection, reads the request and then either
    closes at once, says nothing, or sends `answer` (a function of the request's bytes)."""

    def __init__(self, behaviour: str, answer=None) -> None:
        self.behaviour = behaviour
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.behaviour == "close":
                conn.close()
            elif self.behaviour == "silent":
                self.held.append(conn)
            else:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                conn.sendall(self.answer(request.decode("latin-1")))
                conn.close()

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def hostile_server():
    servers = []

    def start(behaviour: str, answer=None) -> HostileServer:
        servers.append(HostileServer(behaviour, answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def raw_answer(status_line: str, body: str, content_type="application/json") -> bytes:
    payload = body.encode()
    return (
        f"HTTP/1.1 {status_line}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload

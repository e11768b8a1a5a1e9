"""The simulator: serves the API and the control endpoints, holds the Spaces and the faults."""

from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import hmac
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from signalwire_simulator.faults import (
    ListFault,
    SimConfig,
    draw_latency,
    over_rate_limit,
    pick_fault,
)
from signalwire_simulator.outcome import Outcome, error, import_error, unauthorized
from signalwire_simulator.routes import API_PREFIX, basic_credentials, decode_body, route
from signalwire_simulator.server import Handler, Server
from signalwire_simulator.spaces import (
    ProjectNumbers,
    SimProject,
    capabilities_object,
    capability_list,
    changed_record,
    dashboard_numbers,
    import_fields,
    list_page,
    new_number,
    record_update,
    rfc2822,
    validate_import,
)
from signalwire_simulator.stats import Stats

logger = logging.getLogger("signalwire_simulator")


class Simulator:
    """The simulated SignalWire API. ``start()`` serves it on a port; ``stop()`` ends it.

    Example::

        sim = Simulator([SimProject(project_id, token)]).start()
        client = SignalWireClient("x", project_id, token, base_url=sim.api_base_url)
        ...
        sim.stop()
    """

    def __init__(
        self,
        projects: Iterable[SimProject] = (),
        config: SimConfig | None = None,
        *,
        seed: int | None = None,
        exchange_log_size: int = 200,
    ) -> None:
        self._lock = threading.Lock()
        self._projects: dict[str, SimProject] = {}
        for project in projects:
            self._projects[project.project_id] = project
        self._initial_config = copy.deepcopy((config or SimConfig()).validate())
        self.config = copy.deepcopy(self._initial_config)
        self._seed = seed
        # Bandit B311 is a false alarm: seeded on purpose, so failures repeat; no security use.
        self._random = random.Random(seed)  # nosec B311
        self._numbers: dict[str, ProjectNumbers] = collections.defaultdict(ProjectNumbers)
        self._list_faults: dict[str, ListFault] = {}
        self._stats = Stats()
        self._exchanges: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=exchange_log_size
        )
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        # Late creations still to come. A reset or a stop moves to a new generation, and a
        # creation scheduled in an older one does nothing, even if its timer already fired.
        self._generation = 0
        self._timers: set[threading.Timer] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        """Serve in a background daemon thread; port 0 picks a free port. Returns self."""
        self._stopping.clear()
        self._server = Server((host, port), Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"signalwire-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.debug("SignalWire simulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, release held requests, close every connection, forget late creations."""
        self._stopping.set()
        self._forget_late_creations()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_all()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Simulator:
        return self if self._server else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def is_running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """``http://host:port`` of the running simulator."""
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        host = self._server.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def api_base_url(self) -> str:
        """The base URL to give the client: ``http://host:port/api/laml/2010-04-01``."""
        return self.url + API_PREFIX

    # -- control ------------------------------------------------------------------------------

    def configure(self, **changes: Any) -> SimConfig:
        """Change behaviour and faults at run time (same names as `SimConfig`)."""
        with self._lock:
            self.config = self.config.updated(changes)
            return self.config

    def reset(self) -> None:
        """Forget every number and stat, and put the configuration back as it started."""
        with self._lock:
            self.config = copy.deepcopy(self._initial_config)
            self._numbers.clear()
            self._list_faults.clear()
            self._stats = Stats()
            self._exchanges.clear()
            self._random = random.Random(self._seed)  # nosec B311
        self._forget_late_creations()

    def add_project(self, project: SimProject) -> None:
        """Add or replace a project."""
        with self._lock:
            self._projects[project.project_id] = project

    def projects(self) -> list[SimProject]:
        with self._lock:
            return list(self._projects.values())

    def stats(self) -> dict[str, Any]:
        """Counts per endpoint and status, creations per number, peak rate per project."""
        with self._lock:
            return self._stats.as_dict()

    def exchanges(self) -> list[dict[str, Any]]:
        """The most recent requests and answers, oldest first, Authorization redacted."""
        with self._lock:
            return copy.deepcopy(list(self._exchanges))

    def numbers(self, project_id: str) -> list[dict[str, Any]]:
        """Every number of a project, oldest first, as the API would return them."""
        with self._lock:
            numbers = self._numbers.get(project_id)
            return copy.deepcopy(numbers.records()) if numbers else []

    # -- request handling ---------------------------------------------------------------------

    def handle_api(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[str, str | None, Outcome]:
        """Route one API request; returns (endpoint name, project id, outcome)."""
        routed = route(method, path)
        if routed is None:
            return "other", None, error(404, 20404, "The requested resource was not found")
        endpoint, account_sid, number_sid = routed
        with_body = endpoint in ("import", "update")
        fields = decode_body(headers.get("Content-Type", ""), body) if with_body else {}
        number = (fields or {}).get("number")
        arrived = time.monotonic()
        with self._lock:
            config = self._config_for(account_sid)
            self._stats.saw_request(account_sid, arrived)
            if endpoint == "import" and isinstance(number, str) and number:
                self._stats.saw_import_post(account_sid, number)
            delay = draw_latency(config, self._random)
            limited = over_rate_limit(self._stats.accepted[account_sid], config, arrived)
        if delay:
            self._stopping.wait(delay)
        if limited is not None:
            return endpoint, account_sid, limited
        refusal = self._authenticate(endpoint, account_sid, headers)
        if refusal is not None:
            return endpoint, account_sid, refusal
        if endpoint == "import":
            return endpoint, account_sid, self._import(account_sid, fields, config, arrived)
        if endpoint == "list":
            with self._lock:
                armed = self._list_faults.get(account_sid)
                list_fault = armed.draw() if armed else None
            if list_fault is not None:
                return endpoint, account_sid, _list_fault_outcome(list_fault, config)
            return endpoint, account_sid, self._list(account_sid, query)
        if endpoint == "fetch":
            return endpoint, account_sid, self._fetch(account_sid, number_sid or "", path)
        if endpoint == "update":
            return endpoint, account_sid, self._update(account_sid, number_sid or "", fields, path)
        if endpoint == "release":
            return endpoint, account_sid, self._release(account_sid, number_sid or "", path)
        return endpoint, account_sid, self._account(account_sid)

    def _config_for(self, account_sid: str) -> SimConfig:
        """The config with the project's overrides. Callers hold the lock."""
        project = self._projects.get(account_sid)
        if project is None or not project.overrides:
            return self.config
        return dataclasses.replace(self.config, **project.overrides)

    def _authenticate(
        self, endpoint: str, account_sid: str, headers: Mapping[str, str]
    ) -> Outcome | None:
        username, password = basic_credentials(headers.get("Authorization", ""))
        with self._lock:
            project = self._projects.get(username or "")
        if (
            project is None
            or password is None
            or not hmac.compare_digest(project.token.encode(), password.encode())
        ):
            return unauthorized()
        # A token opens only its own project (subprojects are not simulated).
        if project.project_id != account_sid:
            return unauthorized()
        if endpoint == "account":
            return None if project.management_scope else unauthorized()
        # SignalWire documents a plain 401 for a missing scope: same body as a wrong token.
        if not project.numbers_scope:
            return unauthorized()
        if endpoint == "import" and not project.partner_api:
            return unauthorized("API access is blocked for this feature")
        return None

    def _import(
        self, account_sid: str, fields: dict[str, Any] | None, config: SimConfig, arrived: float
    ) -> Outcome:
        if fields is None:
            return error(400, 10000, "The request body could not be parsed")
        with self._lock:
            draw = self._random.random()
            creates_roll = self._random.random()
        fault = pick_fault(config, draw)
        if fault == "429":
            outcome = error(429, 20429, "Too Many Requests")
            if config.retry_after is not None:
                outcome.headers["Retry-After"] = str(math.ceil(config.retry_after))
            return outcome
        if fault == "500":
            return error(500, 10002, "Internal Server Error")
        if fault == "503":
            return error(503, 10002, "Service Unavailable")
        problem = validate_import(fields)
        if problem is not None:
            # An invalid request changes nothing, so a lost answer only hides the 422.
            if fault == "timeout":
                return Outcome(hold_seconds=config.timeout_seconds, drop=True)
            if fault == "reset":
                return Outcome(reset=True)
            return problem
        number, number_type, capabilities = import_fields(fields)
        if fault == "reset" and creates_roll >= config.reset_creates:
            return Outcome(reset=True)
        if fault == "timeout" and creates_roll >= config.timeout_creates:
            return Outcome(hold_seconds=config.timeout_seconds, drop=True)
        if fault == "timeout" and config.late_create_seconds:
            with self._lock:
                generation = self._generation
            create = functools.partial(
                self._create, account_sid, number, number_type, capabilities, config, generation
            )
            return Outcome(
                hold_seconds=config.timeout_seconds,
                create=create,
                create_at=arrived + config.late_create_seconds,
            )
        outcome = self._create(account_sid, number, number_type, capabilities, config)
        if fault == "reset":
            return Outcome(reset=True)
        if fault == "timeout":
            outcome.hold_seconds = config.timeout_seconds
        return outcome

    def _create(
        self,
        account_sid: str,
        number: str,
        number_type: str,
        capabilities: list[str],
        config: SimConfig,
        generation: int | None = None,
    ) -> Outcome:
        with self._lock:
            if generation is not None and generation != self._generation:
                # A late creation from before a reset or a stop: that request is forgotten.
                return Outcome(drop=True)
            self._stats.import_requests[account_sid][number] += 1
            existing = self._numbers[account_sid]
            if config.duplicates == "reject" and existing.sids_of(number):
                return import_error("10000", config.duplicate_message)
            record = new_number(
                account_sid,
                number,
                number_type,
                capabilities,
                origin=config.origin,
                example_nulls=config.s3_example_nulls,
            )
            existing.add(record)
            self._stats.created[account_sid][number] += 1
        # Records are never changed in place (spaces.ProjectNumbers), so no copy is needed.
        return Outcome(status=201, body=record)

    def _list(self, account_sid: str, query: str) -> Outcome:
        with self._lock:
            return list_page(self._numbers[account_sid], account_sid, query)

    def _fetch(self, account_sid: str, number_sid: str, path: str) -> Outcome:
        with self._lock:
            record = self._numbers[account_sid].get(number_sid)
            if record is not None:
                return Outcome(status=200, body=record)
        return error(404, 20404, f"The requested resource {path} was not found")

    def _update(
        self, account_sid: str, number_sid: str, fields: dict[str, Any] | None, path: str
    ) -> Outcome:
        """``POST …/IncomingPhoneNumbers/{Sid}``: change a number, or move it (``AccountSid``)."""
        if fields is None:
            return error(400, 10000, "The request body could not be parsed")
        try:
            changes, target = record_update(fields)
            return Outcome(status=200, body=self._change(account_sid, number_sid, changes, target))
        except LookupError:
            return error(404, 20404, f"The requested resource {path} was not found")
        except ValueError as exc:
            return error(400, 10000, str(exc))

    def _release(self, account_sid: str, number_sid: str, path: str) -> Outcome:
        """``DELETE …/IncomingPhoneNumbers/{Sid}``: 204, or 404 if the project has no such sid."""
        with self._lock:
            numbers = self._numbers[account_sid]
            if numbers.get(number_sid) is None:
                return error(404, 20404, f"The requested resource {path} was not found")
            numbers.remove(number_sid)
        return Outcome(status=204)

    def _account(self, account_sid: str) -> Outcome:
        with self._lock:
            project = self._projects[account_sid]
        base = f"{API_PREFIX}/Accounts/{account_sid}"
        created = rfc2822(datetime(2024, 1, 1, tzinfo=UTC))
        supported = (
            "available_phone_numbers",
            "applications",
            "calls",
            "conferences",
            "incoming_phone_numbers",
            "queues",
            "recordings",
            "messages",
            "transcriptions",
        )
        unsupported = (
            "addresses",
            "authorized_connect_apps",
            "connect_apps",
            "keys",
            "notifications",
            "outgoing_caller_ids",
            "sandbox",
            "sip",
            "short_codes",
            "usage",
        )
        names = {name: base + "/" + _camel(name) for name in supported}
        names.update(dict.fromkeys(unsupported))
        body = {
            "sid": account_sid,
            "friendly_name": project.friendly_name or project.space_host,
            "status": "active",
            # Bandit B105 is a false alarm: shown instead of a token, as SignalWire does.
            "auth_token": "redacted",  # nosec B105
            "date_created": created,
            "date_updated": created,
            "type": "Full",
            "owner_account_sid": account_sid,
            "region_preference": "us-east",
            "uri": base,
            "subproject": False,
            "signing_key": None,
            "subresource_uris": names,
        }
        return Outcome(status=200, body=body)

    # -- the Space changing by other routes (the control endpoints) ---------------------------

    def add_numbers(self, project_id: str, payload: Mapping[str, Any]) -> list[str]:
        """Add numbers "bought in the dashboard" to a project, all or none; their sids, in order.

        `payload` is the control request's body (`spaces.dashboard_numbers`). They are
        SignalWire numbers (origin ``signalwire``), not imports: the stats do not count them.
        LookupError for an unknown project; ValueError for a bad body or a number it holds.
        """
        numbers, number_type, capabilities = dashboard_numbers(payload)
        project_id = self._known_project(project_id)
        now = rfc2822(datetime.now(UTC))
        # Built outside the lock: 100,000 records take seconds, and the API answers meanwhile.
        records = [
            new_number(project_id, number, number_type, capabilities, origin="signalwire", now=now)
            for number in numbers
        ]
        with self._lock:
            existing = self._numbers[project_id]
            taken = [number for number in numbers if existing.sids_of(number)]
            if taken:
                raise ValueError(f"already in the project: {', '.join(taken[:5])}")
            for record in records:
                existing.add(record)
        return [record["sid"] for record in records]

    def release_number(self, project_id: str, ref: str) -> dict[str, Any]:
        """Release a number (by sid, or by phone number); the record it had. LookupError if the
        project does not hold it."""
        project_id = self._known_project(project_id)
        with self._lock:
            numbers = self._numbers[project_id]
            return numbers.remove(self._sid_of(numbers, ref))

    def change_number(
        self, project_id: str, ref: str, payload: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Change a number's ``capabilities`` and/or move it to another ``project_id`` of the
        same Space; the new record. LookupError / ValueError as for the API's update."""
        unknown = set(payload) - {"capabilities", "project_id"}
        if unknown or not payload:
            raise ValueError('give "capabilities" (a list) and/or "project_id" to move it to')
        changes = {}
        if "capabilities" in payload:
            changes["capabilities"] = capabilities_object(capability_list(payload["capabilities"]))
        target = payload.get("project_id")
        if target is not None:
            target = self._known_project(str(target))
        project_id = self._known_project(project_id)
        with self._lock:
            sid = self._sid_of(self._numbers[project_id], ref)
        return self._change(project_id, sid, changes, target)

    def _change(
        self, account_sid: str, sid: str, changes: Mapping[str, Any], target: str | None
    ) -> dict[str, Any]:
        """Apply `changes` to a number and move it to `target` if given and another project."""
        with self._lock:
            numbers = self._numbers[account_sid]
            record = numbers.get(sid)
            if record is None:
                raise LookupError(sid)
            if target is None or target == account_sid:
                new = changed_record(record, changes)
                numbers.replace(new)
                return new
            here, there = self._projects.get(account_sid), self._projects.get(target)
            if here is None or there is None or here.space_host != there.space_host:
                raise ValueError("AccountSid must be another project of the same Space")
            if self._numbers[target].sids_of(record["phone_number"]):
                raise ValueError("Number has already been taken in that project")
            numbers.remove(sid)
            new = changed_record(record, changes, target)
            self._numbers[target].add(new)
            return new

    def arm_list_fault(self, project_id: str, payload: Mapping[str, Any]) -> ListFault:
        """Make the project's list fail after some pages (`faults.ListFault`); replaces an
        armed one. LookupError for an unknown project, ValueError for a bad body."""
        fault = ListFault.from_dict(payload)
        project_id = self._known_project(project_id)
        with self._lock:
            self._list_faults[project_id] = fault
        return fault

    def list_fault(self, project_id: str) -> ListFault | None:
        """The project's armed list fault, with its counts so far; None if none."""
        project_id = self._known_project(project_id)
        with self._lock:
            fault = self._list_faults.get(project_id)
            return copy.copy(fault)

    def disarm_list_fault(self, project_id: str) -> None:
        project_id = self._known_project(project_id)
        with self._lock:
            self._list_faults.pop(project_id, None)

    def _known_project(self, project_id: str) -> str:
        """The canonical id of a project the simulator knows; LookupError if none."""
        try:
            project_id = str(uuid.UUID(project_id))
        except ValueError:
            raise LookupError(f"no project {project_id!r}") from None
        with self._lock:
            if project_id not in self._projects:
                raise LookupError(f"no project {project_id}")
        return project_id

    @staticmethod
    def _sid_of(numbers: ProjectNumbers, ref: str) -> str:
        """The sid `ref` names: a sid, or a phone number (its oldest holder). Lock held."""
        if ref.startswith("+"):
            sids = numbers.sids_of(ref)
            if not sids:
                raise LookupError(f"no number {ref} in the project")
            return sids[0]
        if numbers.get(ref) is None:
            raise LookupError(f"no number with sid {ref} in the project")
        return ref

    # -- bookkeeping used by the handler ------------------------------------------------------

    def count(self, endpoint: str, status: str) -> None:
        with self._lock:
            self._stats.requests[endpoint][status] += 1

    def enter(self) -> None:
        with self._lock:
            self._stats.in_flight += 1
            self._stats.max_in_flight = max(self._stats.max_in_flight, self._stats.in_flight)

    def leave(self) -> None:
        with self._lock:
            self._stats.in_flight -= 1

    def record_exchange(self, exchange: dict[str, Any]) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def hold(self, seconds: float) -> None:
        """Sleep, but wake at once when the simulator stops."""
        self._stopping.wait(seconds)

    def hold_with_late_creation(
        self, hold_seconds: float, create_at: float, create: Callable[[], Outcome]
    ) -> Outcome:
        """Hold a timed-out import whose number is created late; return the answer to send.

        Created within the hold, it is answered at the end of the hold with its real answer;
        created after it, the answer is dropped and a timer creates the number at its time.
        """
        hold_until = time.monotonic() + hold_seconds
        if create_at > hold_until:
            self._create_later(create_at - time.monotonic(), create)
            self.hold(hold_seconds)
            return Outcome(drop=True)
        if self._stopping.wait(max(0.0, create_at - time.monotonic())):
            return Outcome(drop=True)
        answer = create()
        self.hold(max(0.0, hold_until - time.monotonic()))
        return answer

    def _create_later(self, delay: float, create: Callable[[], Outcome]) -> None:
        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
            create()

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._lock:
            if self._stopping.is_set():
                return
            self._timers.add(timer)
        timer.start()

    def _forget_late_creations(self) -> None:
        with self._lock:
            self._generation += 1
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()


def _list_fault_outcome(fault: str, config: SimConfig) -> Outcome:
    if fault == "reset":
        return Outcome(reset=True)
    if fault == "timeout":
        return Outcome(hold_seconds=config.timeout_seconds, drop=True)
    message = "Internal Server Error" if fault == "500" else "Service Unavailable"
    return error(int(fault), 10002, message)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))

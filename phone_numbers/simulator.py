"""A local simulator of SignalWire's Compatibility API import endpoints, like stripe-mock.

Run it with ``python -m phone_numbers.simulator --port 8765 --demo`` (see ``--help``), or in
process with `Simulator`. Standard library only, no Django: the run command, the tests and the
benchmarks all talk to it over real HTTP on loopback.

What it serves under ``/api/laml/2010-04-01`` (also under the legacy ``/2010-04-01`` prefix and
with an optional ``.json`` suffix, NOTES.md §8.1):

- ``POST /Accounts/{sid}/ImportedPhoneNumbers``: form-urlencoded (``capabilities``,
  ``capabilities[]``, single or repeated) or JSON; 201 IncomingPhoneNumber, 422 with a string
  ``code``, 400 for an unreadable JSON body, 401 ``{code: 20003}``.
- ``GET /Accounts/{sid}/IncomingPhoneNumbers``: paged envelope; ``PhoneNumber`` (substring
  match, like SignalWire's "pattern"), ``FriendlyName``, ``PageSize``, ``Page`` + ``PageToken``.
- ``GET /Accounts/{sid}/IncomingPhoneNumbers/{sid}``: 200, or 404 ``{code: 20404}``.
- ``GET /Accounts/{sid}``: the Account object; needs the Management scope.

Behaviour follows NOTES.md §8; what SignalWire does not document is chosen here and marked
[INF] in NOTES.md: a duplicate number gives 422 "Number has already been taken" (or, with
``duplicates="allow"``, a second number, so a test can count double imports), a disabled
Partner API gives 401/20003 on import only, a token without the Numbers scope gets the same
401 body as a wrong token, and a rate limit answers 429 with code 20429.

Faults (set by flags, or at run time with ``POST /__sim__/config``):

- latency (``latency_min_ms``..``latency_max_ms``) and the per-project ``rate_limit`` (requests
  per second, counted over every API request of the project) apply to every API request;
- ``error_429_fraction``, ``error_500_fraction``, ``error_503_fraction``, ``timeout_fraction``
  and ``reset_fraction`` apply to the import endpoint only, after authentication; one random
  draw picks at most one of them, so they must add up to 1 or less;
- a timed-out import is held ``timeout_seconds`` (past the client's read timeout) and then
  answered late with its real 201 if the number was created (``timeout_creates`` is the
  fraction that are), or dropped without an answer if not; a reset closes the connection with
  an RST after reading the request (``reset_creates`` is the fraction created anyway);
- ``late_create_seconds`` puts the creation of a timed-out import that creates its number that
  long after the request arrived, so a lookup made too early does not find it yet (0: at once).
  Past the hold, the answer is dropped and the number is created later all the same;
- a project's ``overrides`` replace these fields for its own requests, so one Space of a
  simulator can be throttled hard while another is not.

Control endpoints (loopback clients only): ``GET/POST /__sim__/config``, ``POST /__sim__/reset``
(numbers, stats and config back to the start), ``GET /__sim__/stats``, ``GET/POST
/__sim__/projects``, ``GET /__sim__/exchanges`` (the last requests and answers, Authorization
redacted).

Besides the counts per endpoint and status, the stats hold what a harness needs to catch an
engine that misbehaves under load: ``created`` and ``import_posts`` (every import POST that
names a number, counted on arrival, whatever its answer) per project and number;
``posts_after_created``, the POSTs for a number the project already held when they arrived;
``peak_rate``, the most requests of a project in any one-second window; and
``requests_per_second``, a project's requests received in each whole second since its first
(at ``first_request_at``, UNIX time), for the sustained rate and the worst second.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import copy
import dataclasses
import email.utils
import functools
import hmac
import ipaddress
import json
import logging
import math
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

logger = logging.getLogger("phone_numbers.simulator")

API_PREFIX = "/api/laml/2010-04-01"
LEGACY_PREFIX = "/2010-04-01"
CONTROL_PREFIX = "/__sim__"
ALL_CAPABILITIES = ("sms", "voice", "fax", "mms")
NUMBER_TYPES = ("longcode", "tollfree")
# The spec's digits are ASCII: `\d` would take other scripts' digits too ("+١٤١٥…"). Always
# used with fullmatch, so a trailing newline is refused as well (`$` would let it through).
NUMBER_PATTERN = re.compile(r"\+[0-9]{5,30}")
ERRORS_URL = "https://signalwire.com/docs/compatibility-api/reference/errors"
IMPORT_ERRORS_URL = "https://signalwire.com/docs/rest/compatibility-api/overview/error-codes"
MAX_BODY_BYTES = 1 << 20

DEMO_PROJECT_ID = "5a1e7c1d-0d3f-4c5e-9a55-6d656d6f0001"
# Bandit B105 is a false alarm: the simulator's published demo token, which only it accepts.
DEMO_TOKEN = "PTdemo0000000000000000000000000000000000000000"  # nosec B105
DEMO_SPACE_HOST = "demo.signalwire.test"
# A second project `--demo` serves, which `make run` does not add to the portal: someone trying
# the portal adds it on the Add project page, as they would a customer's.
SECOND_DEMO_PROJECT_ID = "5a1e7c1d-0d3f-4c5e-9a55-6d656d6f0002"
SECOND_DEMO_TOKEN = "PTdemo0000000000000000000000000000000000000002"  # nosec B105
SECOND_DEMO_SPACE_HOST = "second.signalwire.test"

# A few calling codes, enough for a plausible country_code; "ZZ" is the customary
# unknown-region code (the spec wants a string, SignalWire's own example sends null).
_CALLING_CODES = {
    "1": "US",
    "7": "RU",
    "31": "NL",
    "32": "BE",
    "33": "FR",
    "34": "ES",
    "39": "IT",
    "41": "CH",
    "43": "AT",
    "44": "GB",
    "45": "DK",
    "46": "SE",
    "47": "NO",
    "48": "PL",
    "49": "DE",
    "52": "MX",
    "55": "BR",
    "61": "AU",
    "64": "NZ",
    "81": "JP",
    "353": "IE",
}


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass
class SimProject:
    """A project the simulator knows: its id (AccountSid), token, Space host and switches."""

    project_id: str
    token: str = field(repr=False)
    space_host: str = DEMO_SPACE_HOST
    partner_api: bool = True
    numbers_scope: bool = True
    management_scope: bool = False
    friendly_name: str = ""
    # `SimConfig` fields that differ for this project's requests, e.g. {"rate_limit": 2}.
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self.project_id = str(uuid.UUID(str(self.project_id)))
        except ValueError:
            raise ValueError(f"a project id must be a UUID, not {self.project_id!r}") from None
        if not self.token:
            raise ValueError("a project needs a token")
        # Checked on their own: the fault fractions also add up with those of the simulator's
        # config, and if they pass 1 there the first faults simply win (see _pick_fault).
        SimConfig().updated(self.overrides)

    @classmethod
    def parse(cls, spec: str) -> SimProject:
        """Read ``PROJECT_ID:TOKEN[:SPACE_HOST[:FLAG,FLAG...]]``.

        Flags: ``no-partner-api``, ``no-numbers-scope``, ``management-scope``.
        """
        parts = spec.split(":")
        if len(parts) < 2 or len(parts) > 4:
            raise ValueError("a project is PROJECT_ID:TOKEN[:SPACE_HOST[:FLAGS]]")
        kwargs: dict[str, Any] = {"project_id": parts[0], "token": parts[1]}
        if len(parts) > 2 and parts[2]:
            kwargs["space_host"] = parts[2]
        known = {
            "no-partner-api": ("partner_api", False),
            "no-numbers-scope": ("numbers_scope", False),
            "management-scope": ("management_scope", True),
        }
        for flag in filter(None, (parts[3] if len(parts) > 3 else "").split(",")):
            if flag not in known:
                raise ValueError(f"unknown project flag {flag!r}; known: {', '.join(known)}")
            name, value = known[flag]
            kwargs[name] = value
        return cls(**kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimProject:
        """Build from a JSON object with the field names of this class."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown project fields: {', '.join(sorted(unknown))}")
        return cls(**data)

    def public(self) -> dict[str, Any]:
        """This project without its token."""
        data = dataclasses.asdict(self)
        data.pop("token")
        return data


@dataclass
class SimConfig:
    """Behaviour and faults; every field can be changed at run time through /__sim__/config."""

    latency_min_ms: float = 0.0
    latency_max_ms: float = 0.0
    error_429_fraction: float = 0.0
    retry_after: float | None = 1
    error_500_fraction: float = 0.0
    error_503_fraction: float = 0.0
    timeout_fraction: float = 0.0
    timeout_seconds: float = 15.0
    timeout_creates: float = 0.5
    late_create_seconds: float = 0.0
    reset_fraction: float = 0.0
    reset_creates: float = 0.0
    rate_limit: float | None = None
    duplicates: str = "reject"
    duplicate_message: str = "Number has already been taken"
    origin: str = "signalwire"
    s3_example_nulls: bool = False

    _FRACTIONS = (
        "error_429_fraction",
        "error_500_fraction",
        "error_503_fraction",
        "timeout_fraction",
        "reset_fraction",
    )

    def validate(self) -> SimConfig:
        """Return self, or raise ValueError naming the first bad field."""
        for name in (*self._FRACTIONS, "timeout_creates", "reset_creates"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number from 0 to 1")
        if sum(getattr(self, name) for name in self._FRACTIONS) > 1 + 1e-9:
            raise ValueError("the fault fractions add up to more than 1")
        for name in ("latency_min_ms", "latency_max_ms", "timeout_seconds", "late_create_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a number of 0 or more")
        if self.latency_max_ms < self.latency_min_ms:
            self.latency_max_ms = self.latency_min_ms
        if self.retry_after is not None and (
            not isinstance(self.retry_after, (int, float)) or self.retry_after < 0
        ):
            raise ValueError("retry_after must be seconds of 0 or more, or null to omit it")
        if self.rate_limit is not None and (
            not isinstance(self.rate_limit, (int, float)) or self.rate_limit <= 0
        ):
            raise ValueError("rate_limit must be requests per second above 0, or null")
        if self.duplicates not in ("reject", "allow"):
            raise ValueError('duplicates must be "reject" or "allow"')
        if self.origin not in ("signalwire", "hosted"):
            raise ValueError('origin must be "signalwire" or "hosted"')
        return self

    def updated(self, changes: Mapping[str, Any]) -> SimConfig:
        """A validated copy with `changes` applied; ValueError on an unknown field."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown config fields: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes).validate()

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


class _Stats:
    """Counters for /__sim__/stats. Callers hold the simulator lock."""

    def __init__(self) -> None:
        self.requests: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.created: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.import_requests: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.recent: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self.accepted: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self.peak_rate: collections.Counter[str] = collections.Counter()
        self.import_posts: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.posts_after_created: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        # Per project: its first request (monotonic and UNIX time) and a count per whole
        # second since then; a list, so a long run costs one integer a second.
        self.first_request: dict[str, float] = {}
        self.first_request_at: dict[str, float] = {}
        self.per_second: dict[str, list[int]] = collections.defaultdict(list)
        self.in_flight = 0
        self.max_in_flight = 0

    def saw_request(self, project_id: str, now: float) -> None:
        window = self.recent[project_id]
        window.append(now)
        while window and window[0] <= now - 1.0:
            window.popleft()
        self.peak_rate[project_id] = max(self.peak_rate[project_id], len(window))
        if project_id not in self.first_request:
            self.first_request[project_id] = now
            self.first_request_at[project_id] = time.time()
        second = int(now - self.first_request[project_id])
        counts = self.per_second[project_id]
        if len(counts) <= second:
            counts.extend([0] * (second + 1 - len(counts)))
        counts[second] += 1

    def saw_import_post(self, project_id: str, number: str) -> None:
        self.import_posts[project_id][number] += 1
        if self.created.get(project_id, {}).get(number):
            self.posts_after_created[project_id][number] += 1

    def as_dict(self) -> dict[str, Any]:
        statuses: collections.Counter[str] = collections.Counter()
        for counter in self.requests.values():
            statuses.update(counter)
        return {
            "requests": {name: dict(counter) for name, counter in self.requests.items()},
            "statuses": dict(statuses),
            "created": {pid: dict(counter) for pid, counter in self.created.items()},
            "import_requests": {pid: dict(c) for pid, c in self.import_requests.items()},
            "peak_rate": dict(self.peak_rate),
            "import_posts": {pid: dict(c) for pid, c in self.import_posts.items()},
            "posts_after_created": {pid: dict(c) for pid, c in self.posts_after_created.items()},
            "requests_per_second": {pid: list(c) for pid, c in self.per_second.items()},
            "first_request_at": dict(self.first_request_at),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
        }


@dataclass
class _Outcome:
    """What a handler decided: a response to send, or a fault to act out."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hold_seconds: float = 0.0
    drop: bool = False
    reset: bool = False
    # A held import whose number is created at `create_at` (monotonic) by calling `create`.
    create: Callable[[], _Outcome] | None = None
    create_at: float = 0.0

    @property
    def label(self) -> str:
        """The status as the stats count it: the HTTP status, "timeout" or "reset"."""
        if self.reset:
            return "reset"
        return "timeout" if self.hold_seconds or self.drop else str(self.status)


def _rfc2822(moment: datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(UTC).replace(microsecond=0))


def _friendly_name(number: str) -> str:
    digits = number[1:]
    if len(digits) == 11 and digits.startswith("1"):
        return f"({digits[1:4]}) {digits[4:7]}-{digits[7:]}"
    return number


def _country_code(number: str) -> str:
    digits = number[1:]
    for length in (3, 2, 1):
        if digits[:length] in _CALLING_CODES:
            return _CALLING_CODES[digits[:length]]
    return "ZZ"


def _error(status: int, code: int, message: str) -> _Outcome:
    body = {"code": code, "message": message, "more_info": ERRORS_URL, "status": status}
    return _Outcome(status=status, body=body)


def _import_error(code: str, message: str) -> _Outcome:
    # This endpoint's own 422 model has a *string* code (NOTES.md §4.1). The documented example
    # says "status": 400 inside a 422; like NOTES advises, status here equals the HTTP status.
    body = {"code": code, "message": message, "more_info": IMPORT_ERRORS_URL, "status": 422}
    return _Outcome(status=422, body=body)


def _unauthorized(message: str = "Authentication failed") -> _Outcome:
    return _error(401, 20003, message)


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
        self._numbers: dict[str, dict[str, dict[str, Any]]] = collections.defaultdict(dict)
        self._stats = _Stats()
        self._exchanges: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=exchange_log_size
        )
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # Late creations still to come. A reset or a stop moves to a new generation, and a
        # creation scheduled in an older one does nothing, even if its timer already fired.
        self._generation = 0
        self._timers: set[threading.Timer] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        """Serve in a background daemon thread; port 0 picks a free port. Returns self."""
        self._stopping.clear()
        self._server = _Server((host, port), _Handler, self)
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
            self._stats = _Stats()
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
            return copy.deepcopy(list(self._numbers.get(project_id, {}).values()))

    # -- request handling ---------------------------------------------------------------------

    def handle_api(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[str, str | None, _Outcome]:
        """Route one API request; returns (endpoint name, project id, outcome)."""
        route = _route(method, path)
        if route is None:
            return "other", None, _error(404, 20404, "The requested resource was not found")
        endpoint, account_sid, number_sid = route
        fields = _decode_body(headers.get("Content-Type", ""), body) if endpoint == "import" else {}
        number = (fields or {}).get("number")
        arrived = time.monotonic()
        with self._lock:
            config = self._config_for(account_sid)
            self._stats.saw_request(account_sid, arrived)
            if endpoint == "import" and isinstance(number, str) and number:
                self._stats.saw_import_post(account_sid, number)
            low, high = config.latency_min_ms, config.latency_max_ms
            delay = (self._random.uniform(low, high) if high > low else low) / 1000
            limited = self._over_rate_limit(account_sid, config)
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
            return endpoint, account_sid, self._list(account_sid, query)
        if endpoint == "fetch":
            return endpoint, account_sid, self._fetch(account_sid, number_sid or "", path)
        return endpoint, account_sid, self._account(account_sid)

    def _config_for(self, account_sid: str) -> SimConfig:
        """The config with the project's overrides. Callers hold the lock."""
        project = self._projects.get(account_sid)
        if project is None or not project.overrides:
            return self.config
        return dataclasses.replace(self.config, **project.overrides)

    def _over_rate_limit(self, account_sid: str, config: SimConfig) -> _Outcome | None:
        """429 when this project's last second already holds `rate_limit` requests.

        Only accepted requests fill the limiter's window; the peak-rate stat counts every
        request received, the refused ones too, so a client that ignores 429 shows as too fast.
        """
        if not config.rate_limit:
            return None
        now = time.monotonic()
        accepted = self._stats.accepted[account_sid]
        while accepted and accepted[0] <= now - 1.0:
            accepted.popleft()
        if len(accepted) < config.rate_limit:
            accepted.append(now)
            return None
        outcome = _error(429, 20429, "Too Many Requests")
        if config.retry_after is not None:
            wait = accepted[0] + 1.0 - now
            outcome.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return outcome

    def _authenticate(
        self, endpoint: str, account_sid: str, headers: Mapping[str, str]
    ) -> _Outcome | None:
        username, password = _basic_credentials(headers.get("Authorization", ""))
        with self._lock:
            project = self._projects.get(username or "")
        if (
            project is None
            or password is None
            or not hmac.compare_digest(project.token.encode(), password.encode())
        ):
            return _unauthorized()
        # A token opens only its own project (subprojects are not simulated).
        if project.project_id != account_sid:
            return _unauthorized()
        if endpoint == "account":
            return None if project.management_scope else _unauthorized()
        # SignalWire documents a plain 401 for a missing scope: same body as a wrong token.
        if not project.numbers_scope:
            return _unauthorized()
        if endpoint == "import" and not project.partner_api:
            return _unauthorized("API access is blocked for this feature")
        return None

    def _import(
        self, account_sid: str, fields: dict[str, Any] | None, config: SimConfig, arrived: float
    ) -> _Outcome:
        if fields is None:
            return _error(400, 10000, "The request body could not be parsed")
        with self._lock:
            draw = self._random.random()
            creates_roll = self._random.random()
        fault = _pick_fault(config, draw)
        if fault == "429":
            outcome = _error(429, 20429, "Too Many Requests")
            if config.retry_after is not None:
                outcome.headers["Retry-After"] = str(math.ceil(config.retry_after))
            return outcome
        if fault == "500":
            return _error(500, 10002, "Internal Server Error")
        if fault == "503":
            return _error(503, 10002, "Service Unavailable")
        problem = _validate_import(fields)
        if problem is not None:
            # An invalid request changes nothing, so a lost answer only hides the 422.
            if fault == "timeout":
                return _Outcome(hold_seconds=config.timeout_seconds, drop=True)
            if fault == "reset":
                return _Outcome(reset=True)
            return problem
        number, number_type, capabilities = _import_fields(fields)
        if fault == "reset" and creates_roll >= config.reset_creates:
            return _Outcome(reset=True)
        if fault == "timeout" and creates_roll >= config.timeout_creates:
            return _Outcome(hold_seconds=config.timeout_seconds, drop=True)
        if fault == "timeout" and config.late_create_seconds:
            with self._lock:
                generation = self._generation
            create = functools.partial(
                self._create, account_sid, number, number_type, capabilities, config, generation
            )
            return _Outcome(
                hold_seconds=config.timeout_seconds,
                create=create,
                create_at=arrived + config.late_create_seconds,
            )
        outcome = self._create(account_sid, number, number_type, capabilities, config)
        if fault == "reset":
            return _Outcome(reset=True)
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
    ) -> _Outcome:
        with self._lock:
            if generation is not None and generation != self._generation:
                # A late creation from before a reset or a stop: that request is forgotten.
                return _Outcome(drop=True)
            self._stats.import_requests[account_sid][number] += 1
            existing = self._numbers[account_sid]
            if config.duplicates == "reject" and any(
                record["phone_number"] == number for record in existing.values()
            ):
                return _import_error("10000", config.duplicate_message)
            record = _new_number(account_sid, number, number_type, capabilities, config)
            existing[record["sid"]] = record
            self._stats.created[account_sid][number] += 1
        return _Outcome(status=201, body=copy.deepcopy(record))

    def _list(self, account_sid: str, query: str) -> _Outcome:
        params = dict(parse_qsl(query, keep_blank_values=True))
        try:
            page = int(params.get("Page", "0"))
            page_size = int(params.get("PageSize", "50"))
        except ValueError:
            return _error(400, 10000, "Page and PageSize must be integers")
        if page < 0 or not 1 <= page_size <= 1000:
            return _error(400, 10000, "PageSize must be between 1 and 1000")
        pattern = params.get("PhoneNumber")
        friendly = params.get("FriendlyName")
        with self._lock:
            matching = [
                copy.deepcopy(record)
                for record in self._numbers.get(account_sid, {}).values()
                if (not pattern or pattern in record["phone_number"])
                and (friendly is None or record["friendly_name"] == friendly)
            ]
        start = page * page_size
        if page > 0 and params.get("PageToken") != _page_token(matching, start):
            return _error(400, 54453, "PageToken is missing or invalid for the requested Page")
        items = matching[start : start + page_size]
        filters = {k: v for k, v in (("PhoneNumber", pattern), ("FriendlyName", friendly)) if v}

        def page_uri(number: int) -> str:
            query_items = {**filters, "Page": number, "PageSize": page_size}
            if number > 0:
                query_items["PageToken"] = _page_token(matching, number * page_size)
            query_text = urlencode(query_items, quote_via=quote)
            return f"{API_PREFIX}/Accounts/{account_sid}/IncomingPhoneNumbers?{query_text}"

        has_next = start + page_size < len(matching)
        body = {
            "uri": page_uri(page),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "page": page,
            "page_size": page_size,
            "incoming_phone_numbers": items,
        }
        return _Outcome(status=200, body=body)

    def _fetch(self, account_sid: str, number_sid: str, path: str) -> _Outcome:
        with self._lock:
            record = self._numbers.get(account_sid, {}).get(number_sid)
            if record is not None:
                return _Outcome(status=200, body=copy.deepcopy(record))
        return _error(404, 20404, f"The requested resource {path} was not found")

    def _account(self, account_sid: str) -> _Outcome:
        with self._lock:
            project = self._projects[account_sid]
        base = f"{API_PREFIX}/Accounts/{account_sid}"
        created = _rfc2822(datetime(2024, 1, 1, tzinfo=UTC))
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
        return _Outcome(status=200, body=body)

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
        self, hold_seconds: float, create_at: float, create: Callable[[], _Outcome]
    ) -> _Outcome:
        """Hold a timed-out import whose number is created late; return the answer to send.

        Created within the hold, it is answered at the end of the hold with its real answer;
        created after it, the answer is dropped and a timer creates the number at its time.
        """
        hold_until = time.monotonic() + hold_seconds
        if create_at > hold_until:
            self._create_later(create_at - time.monotonic(), create)
            self.hold(hold_seconds)
            return _Outcome(drop=True)
        if self._stopping.wait(max(0.0, create_at - time.monotonic())):
            return _Outcome(drop=True)
        answer = create()
        self.hold(max(0.0, hold_until - time.monotonic()))
        return answer

    def _create_later(self, delay: float, create: Callable[[], _Outcome]) -> None:
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


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _page_token(records: list[dict[str, Any]], start: int) -> str:
    """An opaque token for the page starting at `start`: PA + the previous record's sid."""
    if start <= 0 or start > len(records):
        return "PA"
    return "PA" + records[start - 1]["sid"].replace("-", "")


def _pick_fault(config: SimConfig, draw: float) -> str | None:
    threshold = 0.0
    for name, fraction in (
        ("429", config.error_429_fraction),
        ("500", config.error_500_fraction),
        ("503", config.error_503_fraction),
        ("timeout", config.timeout_fraction),
        ("reset", config.reset_fraction),
    ):
        threshold += fraction
        if draw < threshold:
            return name
    return None


_ROUTES = [
    ("import", "POST", re.compile(r"/Accounts/([^/]+)/ImportedPhoneNumbers")),
    ("list", "GET", re.compile(r"/Accounts/([^/]+)/IncomingPhoneNumbers")),
    ("fetch", "GET", re.compile(r"/Accounts/([^/]+)/IncomingPhoneNumbers/([^/]+)")),
    ("account", "GET", re.compile(r"/Accounts/([^/]+)")),
]


def _route(method: str, path: str) -> tuple[str, str, str | None] | None:
    for prefix in (API_PREFIX, LEGACY_PREFIX):
        if path.startswith(prefix + "/"):
            rest = path[len(prefix) :]
            break
    else:
        return None
    rest = rest.removesuffix(".json").rstrip("/")
    for name, route_method, pattern in _ROUTES:
        match = pattern.fullmatch(rest)
        if match and method == route_method:
            try:
                account_sid = str(uuid.UUID(match.group(1)))
            except ValueError:
                return None
            number_sid = match.group(2) if name == "fetch" else None
            return name, account_sid, number_sid
    return None


def _basic_credentials(header: str) -> tuple[str | None, str | None]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None, None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None, None
    try:
        username = str(uuid.UUID(username))
    except ValueError:
        return None, None
    return username, password


def _decode_body(content_type: str, body: bytes) -> dict[str, Any] | None:
    """The body as a dict; form arrays become lists. None when a JSON body is unreadable.

    An unknown content type reads as empty, which then fails validation like a Rails app with
    no parameters would ("Number can't be blank").
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        try:
            data = json.loads(body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            return None
        return data if isinstance(data, dict) else None
    if media_type != "application/x-www-form-urlencoded":
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key in ("capabilities", "capabilities[]"):
            fields.setdefault("capabilities", []).append(value)
        else:
            fields[key] = value
    if "capabilities" in fields:
        # `capabilities[]=` (one blank item) is how a form says "an empty array".
        fields["capabilities"] = [item for item in fields["capabilities"] if item != ""]
    return fields


def _validate_import(fields: Mapping[str, Any]) -> _Outcome | None:
    """422 in SignalWire's shape with Rails-style full messages, or None when valid."""
    messages: list[tuple[str, str]] = []
    number = fields.get("number")
    if number is None or number == "":
        messages.append(("10000", "Number can't be blank"))
    elif not isinstance(number, str) or not NUMBER_PATTERN.fullmatch(number):
        messages.append(("10000", "Number is invalid"))
    number_type = fields.get("number_type")
    if number_type is None or number_type == "":
        messages.append(("10000", "Number type can't be blank"))
    elif number_type not in NUMBER_TYPES:
        messages.append(("10000", "Number type is not included in the list"))
    if "capabilities" in fields:
        capabilities = fields["capabilities"]
        if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
            messages.append(
                (
                    "4000",
                    "The provided list of capabilities contains invalid capabilities for the "
                    "phone number",
                )
            )
        elif not capabilities:
            messages.append(("4000", "The capabilities for the phone number are missing"))
        elif any(item not in ALL_CAPABILITIES for item in capabilities):
            messages.append(
                (
                    "4000",
                    "The provided list of capabilities contains invalid capabilities for the "
                    "phone number",
                )
            )
    if not messages:
        return None
    return _import_error(messages[0][0], ", ".join(message for _, message in messages))


def _import_fields(fields: Mapping[str, Any]) -> tuple[str, str, list[str]]:
    """(number, number_type, capabilities) of a valid import body, capabilities defaulted."""
    capabilities = fields.get("capabilities") or list(ALL_CAPABILITIES)
    return fields["number"], fields["number_type"], list(dict.fromkeys(capabilities))


def _new_number(
    account_sid: str,
    number: str,
    number_type: str,
    capabilities: list[str],
    config: SimConfig,
) -> dict[str, Any]:
    sid = str(uuid.uuid4())
    now = _rfc2822(datetime.now(UTC))
    nulls = config.s3_example_nulls
    method = None if nulls else "POST"
    record: dict[str, Any] = {
        "sid": sid,
        "account_id": account_sid,
        "account_sid": account_sid,
        "friendly_name": None if nulls else _friendly_name(number),
        "phone_number": number,
        "voice_url": None,
        "voice_method": method,
        "voice_fallback_url": None,
        "voice_fallback_method": method,
        "status_callback": None,
        "status_callback_method": method,
        "voice_application_sid": None,
        "voice_caller_id_lookup": None,
        "sms_url": None,
        "sms_method": method,
        "sms_fallback_url": None,
        "sms_fallback_method": method,
        "sms_application_sid": None,
        "date_created": now,
        "date_updated": now,
        "capabilities": {name: name in capabilities for name in ("voice", "sms", "mms", "fax")},
        "beta": False,
        "api_version": "2010-04-01",
        "uri": f"{API_PREFIX}/Accounts/{account_sid}/IncomingPhoneNumbers/{sid}",
        "address_requirements": "none",
        "address_sid": None,
        "identity_sid": None,
        "trunk_sid": None,
        "origin": config.origin,
        "emergency_address_sid": None,
        "emergency_status": "Inactive",
        "country_code": None if nulls else _country_code(number),
    }
    if number_type == "tollfree":
        record["verification_status"] = "Unverified"
    return record


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type, simulator: Simulator) -> None:
        self.simulator = simulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        """Shut every open connection so idle keep-alive threads end with the server."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SignalWireSimulator/1"
    timeout = 60  # idle keep-alive connections close after a minute
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        simulator = self.server.simulator
        body = self._read_body()
        if body is None:
            return
        parts = urlsplit(self.path)
        if parts.path.startswith(CONTROL_PREFIX + "/") or parts.path == CONTROL_PREFIX:
            self._control(method, parts.path, body)
            return
        simulator.enter()
        try:
            endpoint, _, outcome = simulator.handle_api(
                method, parts.path, parts.query, self.headers, body
            )
            # Counted before the answer goes out, so a client that has its answer can rely on
            # the stats; a held request shows as "timeout" from the moment it is held.
            status = outcome.label
            simulator.count(endpoint, status)
            simulator.record_exchange(
                {
                    "method": method,
                    "path": self.path,
                    "headers": self._safe_headers(),
                    "body": body.decode("utf-8", "replace"),
                    "status": status,
                    "response_headers": outcome.headers,
                    "response_body": outcome.body,
                }
            )
            self._act(outcome)
        finally:
            simulator.leave()

    def _act(self, outcome: _Outcome) -> None:
        """Send the outcome, or act out its fault."""
        if outcome.reset:
            self._reset_connection()
            return
        if outcome.create is not None:
            outcome = self.server.simulator.hold_with_late_creation(
                outcome.hold_seconds, outcome.create_at, outcome.create
            )
        elif outcome.hold_seconds:
            self.server.simulator.hold(outcome.hold_seconds)
        if outcome.drop:
            self.close_connection = True
            return
        try:
            self._send_json(outcome.status, outcome.body, outcome.headers)
        except OSError:
            # The client gave up on a held request; the answer had nowhere to go.
            self.close_connection = True

    def _control(self, method: str, path: str, body: bytes) -> None:
        simulator = self.server.simulator
        if not _is_loopback(self.client_address[0]):
            self._send_json(403, {"error": "the control endpoints answer loopback clients only"})
            return
        name = path[len(CONTROL_PREFIX) :].strip("/")
        try:
            payload = json.loads(body.decode("utf-8") or "{}") if method == "POST" else {}
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            if (name, method) == ("config", "GET"):
                self._send_json(200, simulator.config.as_dict())
            elif (name, method) == ("config", "POST"):
                self._send_json(200, simulator.configure(**payload).as_dict())
            elif (name, method) == ("reset", "POST"):
                simulator.reset()
                self._send_json(200, {"reset": True})
            elif (name, method) == ("stats", "GET"):
                self._send_json(200, simulator.stats())
            elif (name, method) == ("exchanges", "GET"):
                self._send_json(200, simulator.exchanges())
            elif (name, method) == ("projects", "GET"):
                self._send_json(200, [project.public() for project in simulator.projects()])
            elif (name, method) == ("projects", "POST"):
                project = SimProject.from_dict(payload)
                simulator.add_project(project)
                self._send_json(201, project.public())
            else:
                self._send_json(404, {"error": f"no control endpoint {method} {path}"})
        except (ValueError, TypeError) as exc:
            self._send_json(400, {"error": str(exc)})

    # -- I/O ----------------------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send_json(411, {"error": "send a Content-Length"})
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self._send_json(413, {"error": "body too large or bad Content-Length"})
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _safe_headers(self) -> dict[str, str]:
        safe = {}
        for name, value in self.headers.items():
            if name.lower() == "authorization":
                value = value.split(" ", 1)[0] + " [redacted]"
            safe[name] = value
        return safe


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("a fraction is a number from 0 to 1")
    return value


def _optional_seconds(text: str) -> float | None:
    return None if text.lower() in ("none", "off", "") else float(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m phone_numbers.simulator",
        description="A local simulator of SignalWire's Compatibility API import endpoints.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind (8765; 0 = any)")
    parser.add_argument(
        "--project",
        action="append",
        default=[],
        metavar="ID:TOKEN[:SPACE_HOST[:FLAGS]]",
        help="a project; FLAGS is a comma list of no-partner-api, no-numbers-scope, "
        "management-scope. Repeatable.",
    )
    parser.add_argument(
        "--projects-file",
        help="JSON list of projects: {project_id, token, space_host, partner_api, "
        "numbers_scope, management_scope, overrides: {config field: value}}",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help=f"add the demo project {DEMO_PROJECT_ID} (token {DEMO_TOKEN}, {DEMO_SPACE_HOST}) "
        f"and a second one, {SECOND_DEMO_PROJECT_ID} (token {SECOND_DEMO_TOKEN}, "
        f"{SECOND_DEMO_SPACE_HOST})",
    )
    parser.add_argument("--seed", type=int, help="seed for every random choice")
    parser.add_argument("--latency-ms", type=float, help="fixed latency on every API request")
    parser.add_argument("--latency-min-ms", type=float, default=0.0)
    parser.add_argument("--latency-max-ms", type=float, default=0.0)
    parser.add_argument("--error-429-fraction", type=_fraction, default=0.0)
    parser.add_argument(
        "--retry-after",
        type=_optional_seconds,
        default=1,
        help="Retry-After seconds on 429 answers; 'none' omits the header (1)",
    )
    parser.add_argument("--error-500-fraction", type=_fraction, default=0.0)
    parser.add_argument("--error-503-fraction", type=_fraction, default=0.0)
    parser.add_argument("--timeout-fraction", type=_fraction, default=0.0)
    parser.add_argument(
        "--timeout-seconds", type=float, default=15.0, help="how long a timeout holds (15)"
    )
    parser.add_argument(
        "--timeout-creates",
        type=_fraction,
        default=0.5,
        help="fraction of timed-out imports that create the number anyway (0.5)",
    )
    parser.add_argument(
        "--late-create-seconds",
        type=float,
        default=0.0,
        help="a timed-out import that creates its number does so this long after the request "
        "arrived, so an early lookup misses it; past the hold, the answer is dropped and the "
        "number created later all the same (0: at once)",
    )
    parser.add_argument("--reset-fraction", type=_fraction, default=0.0)
    parser.add_argument(
        "--reset-creates",
        type=_fraction,
        default=0.0,
        help="fraction of reset imports that create the number anyway (0)",
    )
    parser.add_argument(
        "--rate-limit", type=float, help="requests per second per project before 429"
    )
    parser.add_argument("--duplicates", choices=("reject", "allow"), default="reject")
    parser.add_argument("--duplicate-message", default="Number has already been taken")
    parser.add_argument("--origin", choices=("signalwire", "hosted"), default="signalwire")
    parser.add_argument(
        "--s3-example-nulls",
        action="store_true",
        help="answer friendly_name, *_method and country_code as null, like SignalWire's "
        "own import example (not valid against the spec, which is the point)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request")
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The `SimConfig` the command line asks for."""
    low, high = args.latency_min_ms, args.latency_max_ms
    if args.latency_ms is not None:
        low = high = args.latency_ms
    return SimConfig(
        latency_min_ms=low,
        latency_max_ms=max(low, high),
        error_429_fraction=args.error_429_fraction,
        retry_after=args.retry_after,
        error_500_fraction=args.error_500_fraction,
        error_503_fraction=args.error_503_fraction,
        timeout_fraction=args.timeout_fraction,
        timeout_seconds=args.timeout_seconds,
        timeout_creates=args.timeout_creates,
        late_create_seconds=args.late_create_seconds,
        reset_fraction=args.reset_fraction,
        reset_creates=args.reset_creates,
        rate_limit=args.rate_limit,
        duplicates=args.duplicates,
        duplicate_message=args.duplicate_message,
        origin=args.origin,
        s3_example_nulls=args.s3_example_nulls,
    ).validate()


def projects_from_args(args: argparse.Namespace) -> list[SimProject]:
    """The projects named by ``--project``, ``--projects-file`` and ``--demo``."""
    projects = [SimProject.parse(spec) for spec in args.project]
    if args.projects_file:
        with open(args.projects_file, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, list):
            raise ValueError("the projects file must hold a JSON list")
        projects.extend(SimProject.from_dict(item) for item in data)
    if args.demo:
        projects.append(SimProject(DEMO_PROJECT_ID, DEMO_TOKEN, DEMO_SPACE_HOST))
        projects.append(
            SimProject(SECOND_DEMO_PROJECT_ID, SECOND_DEMO_TOKEN, SECOND_DEMO_SPACE_HOST)
        )
    return projects


def main(argv: list[str] | None = None) -> int:
    """Run the simulator from the command line until interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        projects = projects_from_args(args)
        config = config_from_args(args)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
    )
    if not projects:
        logger.warning("no projects: every API request will get 401 (use --project or --demo)")
    simulator = Simulator(projects, config, seed=args.seed).start(args.host, args.port)
    names = ", ".join(f"{p.project_id} ({p.space_host})" for p in projects)
    # Printed after binding, so `--port 0` callers can read the real port from this line.
    print(
        f"SignalWire simulator on {simulator.api_base_url} for {names or 'no projects'}",
        file=sys.stderr,
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: simulator.stop())
    with contextlib.suppress(KeyboardInterrupt):
        while simulator.is_running:
            time.sleep(0.2)
    simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

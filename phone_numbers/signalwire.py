"""Client for SignalWire's Compatibility (LaML) REST API: import a number, find it, check a token.

Django-free on purpose: it is built from a Space host, a project id and a token, and imports
without settings. Reference: ``shared/signalwire/NOTES.md`` (what is documented and what is
inferred) and the official OpenAPI description beside it.

Every call returns frozen dataclasses or raises a subclass of `SignalWireError` that says what
the caller should do:

- `CredentialsRejected` (401/403): fix the credential, do not retry.
- `RequestRejected` (400/404/422 and other 4xx): show the message; `is_duplicate` when SignalWire
  says the number is already there.
- `SignalWireUnavailable` (429, 5xx, timeout, connection error): retry later, honouring
  `retry_after`; when `may_have_reached_signalwire` is true, look the number up before retrying.

A call may be given a ``deadline`` (a `time.monotonic()` value) that it keeps even against a
server that answers a byte at a time; see `SignalWireClient`.

An error's `message` is safe to show to support staff: the portal's own words, or SignalWire's
message in one of its documented 4xx errors. Anything else a server or the network said (a
connection error's text, the body of a 5xx, a reason phrase) is only in `detail`, for the log:
it can hold anything the remote end chose to say, and it tells a refused connection from a
silent one.

The token never appears in an exception, a repr or a log line, raw or base64-encoded as in the
Authorization header.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import ipaddress
import json
import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.cookiejar import DefaultCookiePolicy
from importlib import metadata
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import requests
import urllib3.connection
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager
from urllib3.util.connection import allowed_gai_family, create_connection

from phone_numbers.capabilities import CAPABILITIES

logger = logging.getLogger("phone_numbers.signalwire")

API_PATH = "/api/laml/2010-04-01"
NUMBER_TYPES: tuple[str, ...] = ("longcode", "tollfree")
ENCODINGS: tuple[str, ...] = ("form", "form-repeated", "json")
DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 10.0)

_MAX_PAGES = 1000
# The list endpoint's largest PageSize (NOTES.md §5).
MAX_PAGE_SIZE = 1000
# How much of an error page that is not SignalWire's JSON the log keeps.
_DETAIL_CHARACTERS = 300
_DUPLICATE_MESSAGE = re.compile(
    r"\btaken\b|\balready\b.*\b(exists?|imported|in use|registered|added)\b", re.IGNORECASE
)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class SignalWireError(Exception):
    """Base class of every error this client raises.

    `status` is the HTTP status (None when no response arrived), `code` SignalWire's error code
    normalised to a string (the import endpoint sends strings, the rest of the API integers),
    `message` SignalWire's message or a description of what went wrong, fit to show; `detail`
    what else the server or the network said, for the log only (see the module docstring).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        more_info: str | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.more_info = more_info
        self.detail = detail

    def __str__(self) -> str:
        parts = [str(self.status)] if self.status is not None else []
        if self.code:
            parts.append(f"code {self.code}")
        prefix = f"[{', '.join(parts)}] " if parts else ""
        return f"{prefix}{self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r})"
        )


class CredentialsRejected(SignalWireError):
    """401/403: the token is wrong or revoked, lacks the Numbers scope, or the Partner API is off.

    Do not retry. `is_numbers_scope_missing` is true only when SignalWire's answers prove the
    token itself is valid (see `SignalWireClient.check_credentials`); SignalWire documents a
    plain 401 for both a bad token and a missing scope, so it is false when unsure.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        more_info: str | None = None,
        detail: str = "",
        is_numbers_scope_missing: bool = False,
    ) -> None:
        super().__init__(message, status=status, code=code, more_info=more_info, detail=detail)
        self.is_numbers_scope_missing = is_numbers_scope_missing


class RequestRejected(SignalWireError):
    """400/404/422 and any other 4xx but 401/403/429: SignalWire refused this request as sent.

    Do not retry unchanged; show `message`. `is_duplicate` is true when SignalWire says the
    number is already there (undocumented, NOTES.md §4.4: a 409, or a message saying "taken" or
    "already exists").
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        more_info: str | None = None,
        detail: str = "",
        is_duplicate: bool = False,
    ) -> None:
        super().__init__(message, status=status, code=code, more_info=more_info, detail=detail)
        self.is_duplicate = is_duplicate


class SignalWireUnavailable(SignalWireError):
    """429, 5xx, timeout, connection error or an unreadable answer: retry later.

    `retry_after` is the wait SignalWire asked for in seconds (from Retry-After), or None.
    `may_have_reached_signalwire` is true when SignalWire may have acted on the request (read
    timeout, a 5xx but 503, connection reset after sending, unreadable 2xx): look the number up
    before importing it again. It is false when the request provably never arrived or was
    refused unprocessed (connect error, connect timeout, 429, 503).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        more_info: str | None = None,
        detail: str = "",
        retry_after: float | None = None,
        may_have_reached_signalwire: bool = True,
    ) -> None:
        super().__init__(message, status=status, code=code, more_info=more_info, detail=detail)
        self.retry_after = retry_after
        self.may_have_reached_signalwire = may_have_reached_signalwire

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, retry_after={self.retry_after!r}, "
            f"may_have_reached_signalwire={self.may_have_reached_signalwire!r})"
        )


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capabilities:
    """The `capabilities` object of an IncomingPhoneNumber: four booleans."""

    voice: bool
    sms: bool
    mms: bool
    fax: bool

    def enabled(self) -> tuple[str, ...]:
        """The enabled capabilities in the API's request spelling, e.g. ``("sms", "voice")``."""
        return tuple(name for name in CAPABILITIES if getattr(self, name))


@dataclass(frozen=True)
class IncomingPhoneNumber:
    """A phone number in a project, as the import, list and fetch endpoints return it.

    Every field of the spec's `IncomingPhoneNumber` schema. Fields the spec marks non-null but
    that SignalWire's own import example returns as null (NOTES.md §3: `friendly_name`, the
    `*_method` fields, `country_code`) are typed ``str | None``; enum-like strings (`origin`,
    `address_requirements`, `emergency_status`) are kept as sent, unknown values included.
    Dates stay the strings SignalWire sent (RFC 2822); `created_at` and `updated_at` parse them
    and give None rather than fail. `raw` is the JSON object exactly as received, for storing.
    """

    sid: str
    account_sid: str
    account_id: str | None
    phone_number: str
    friendly_name: str | None
    capabilities: Capabilities | None
    origin: str | None
    country_code: str | None
    date_created: str | None
    date_updated: str | None
    uri: str | None
    api_version: str | None
    beta: bool | None
    address_requirements: str | None
    address_sid: str | None
    identity_sid: str | None
    trunk_sid: str | None
    emergency_address_sid: str | None
    emergency_status: str | None
    voice_url: str | None
    voice_method: str | None
    voice_fallback_url: str | None
    voice_fallback_method: str | None
    voice_application_sid: str | None
    voice_caller_id_lookup: bool | None
    sms_url: str | None
    sms_method: str | None
    sms_fallback_url: str | None
    sms_fallback_method: str | None
    sms_application_sid: str | None
    status_callback: str | None
    status_callback_method: str | None
    verification_status: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def created_at(self) -> datetime | None:
        """`date_created` as an aware datetime, or None when absent or unreadable."""
        return parse_rfc2822(self.date_created)

    @property
    def updated_at(self) -> datetime | None:
        """`date_updated` as an aware datetime, or None when absent or unreadable."""
        return parse_rfc2822(self.date_updated)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IncomingPhoneNumber:
        """Build from a decoded IncomingPhoneNumber object; ValueError if it is not one.

        Only `sid` and `phone_number` are required: without them the object is useless.
        Everything else is read tolerantly, a field of the wrong type becoming None.
        """
        if not isinstance(data, Mapping):
            raise ValueError("an IncomingPhoneNumber must be a JSON object")
        sid, phone_number = data.get("sid"), data.get("phone_number")
        if not isinstance(sid, str) or not sid or not isinstance(phone_number, str):
            raise ValueError("an IncomingPhoneNumber needs a sid and a phone_number")
        account_sid = _str_or_none(data.get("account_sid")) or _str_or_none(data.get("account_id"))
        return cls(
            sid=sid,
            account_sid=account_sid or "",
            account_id=_str_or_none(data.get("account_id")),
            phone_number=phone_number,
            friendly_name=_str_or_none(data.get("friendly_name")),
            capabilities=_capabilities_or_none(data.get("capabilities")),
            origin=_str_or_none(data.get("origin")),
            country_code=_str_or_none(data.get("country_code")),
            date_created=_str_or_none(data.get("date_created")),
            date_updated=_str_or_none(data.get("date_updated")),
            uri=_str_or_none(data.get("uri")),
            api_version=_str_or_none(data.get("api_version")),
            beta=_bool_or_none(data.get("beta")),
            address_requirements=_str_or_none(data.get("address_requirements")),
            address_sid=_str_or_none(data.get("address_sid")),
            identity_sid=_str_or_none(data.get("identity_sid")),
            trunk_sid=_str_or_none(data.get("trunk_sid")),
            emergency_address_sid=_str_or_none(data.get("emergency_address_sid")),
            emergency_status=_str_or_none(data.get("emergency_status")),
            voice_url=_str_or_none(data.get("voice_url")),
            voice_method=_str_or_none(data.get("voice_method")),
            voice_fallback_url=_str_or_none(data.get("voice_fallback_url")),
            voice_fallback_method=_str_or_none(data.get("voice_fallback_method")),
            voice_application_sid=_str_or_none(data.get("voice_application_sid")),
            voice_caller_id_lookup=_bool_or_none(data.get("voice_caller_id_lookup")),
            sms_url=_str_or_none(data.get("sms_url")),
            sms_method=_str_or_none(data.get("sms_method")),
            sms_fallback_url=_str_or_none(data.get("sms_fallback_url")),
            sms_fallback_method=_str_or_none(data.get("sms_fallback_method")),
            sms_application_sid=_str_or_none(data.get("sms_application_sid")),
            status_callback=_str_or_none(data.get("status_callback")),
            status_callback_method=_str_or_none(data.get("status_callback_method")),
            verification_status=_str_or_none(data.get("verification_status")),
            raw=json.loads(json.dumps(data)),
        )


@dataclass(frozen=True)
class NumberPage:
    """One page of a project's list of numbers: its numbers, and where the next page is.

    `url` is the page's own URL, `next_url` the next page's as the client will ask for it
    (None on the last page): a caller that fails mid-list can start again from there.
    """

    url: str
    page: int | None
    numbers: tuple[IncomingPhoneNumber, ...]
    next_url: str | None


def parse_rfc2822(value: str | None) -> datetime | None:
    """Parse an RFC 2822 date as SignalWire writes it; None when absent or unreadable.

    Also reads the spec examples' "Sept" spelling, which `email.utils` alone rejects.
    """
    if not value:
        return None
    text = re.sub(r"\bSept\b", "Sep", value)
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _bool_or_none(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _capabilities_or_none(value: Any) -> Capabilities | None:
    if not isinstance(value, Mapping):
        return None
    # AvailablePhoneNumbers spells them SMS/MMS; accept either case here.
    lowered = {str(key).lower(): flag for key, flag in value.items()}
    return Capabilities(**{name: lowered.get(name) is True for name in CAPABILITIES})


# --------------------------------------------------------------------------------------------
# Transport
# --------------------------------------------------------------------------------------------

_thread_state = threading.local()
_OUT_OF_TIME = "the attempt ran out of time"


class _Cutoff:
    """One request's deadline, and the sockets it uses, for the watchdog to cut at that time.

    The watchdog shuts down duplicates of the request's descriptors that it owns, never the
    request's own: the request's socket timeout also ends at the deadline, so the request may
    be closing its descriptor at that very moment, and a closed descriptor's number can
    already belong to another thread's connection (a database's, say).
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._lock = threading.Lock()
        self._duplicates: list[socket.socket] = []
        self._has_fired = False

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type)
            self._duplicates.append(duplicate)
            if self._has_fired:
                _shut_down(duplicate)

    def fire(self) -> None:
        with self._lock:
            self._has_fired = True
            for duplicate in self._duplicates:
                _shut_down(duplicate)

    def close(self) -> None:
        with self._lock:
            for duplicate in self._duplicates:
                duplicate.close()
            self._duplicates.clear()


def _shut_down(sock: socket.socket) -> None:
    # Shutting down (not closing) ends a read or write blocked on the same socket in another
    # thread at once, TLS included; it fails harmlessly when the peer has already gone.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread for the process that cuts the requests still running at their deadline.

    Socket timeouts bound each read, not a request: a server that sends a byte just before
    every read timeout holds a request for as long as it likes. Each request with a deadline
    arms a `_Cutoff` here for its duration; at the deadline this thread shuts its sockets down.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._armed: set[_Cutoff] = set()
        self._wakes_at = math.inf
        self._thread: threading.Thread | None = None

    def arm(self, cutoff: _Cutoff) -> None:
        with self._condition:
            self._armed.add(cutoff)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="signalwire-deadlines", daemon=True
                )
                self._thread.start()
            # Woken only for an earlier deadline than it sleeps towards: a run of requests
            # under one deadline (the pages of a list) wakes it once.
            if cutoff.deadline < self._wakes_at:
                self._wakes_at = cutoff.deadline
                self._condition.notify()

    def disarm(self, cutoff: _Cutoff) -> None:
        with self._condition:
            self._armed.discard(cutoff)

    def armed_count(self) -> int:
        with self._condition:
            return len(self._armed)

    def _run(self) -> None:
        with self._condition:
            while True:
                now = time.monotonic()
                for cutoff in [c for c in self._armed if c.deadline <= now]:
                    self._armed.discard(cutoff)
                    cutoff.fire()
                self._wakes_at = min((c.deadline for c in self._armed), default=math.inf)
                timeout = None if self._wakes_at == math.inf else self._wakes_at - now
                self._condition.wait(timeout)


_watchdog = _Watchdog()
# A forked child has none of its parent's threads, and the parent may have forked while the
# watchdog held its lock: the child starts with a watchdog of its own.
os.register_at_fork(after_in_child=_watchdog.__init__)


@contextlib.contextmanager
def _deadline_watched(deadline: float | None) -> Iterator[None]:
    """Let the watchdog cut this thread's request at `deadline` (no-op for None)."""
    if deadline is None:
        yield
        return
    cutoff = _Cutoff(deadline)
    _thread_state.cutoff = cutoff
    _watchdog.arm(cutoff)
    try:
        yield
    finally:
        _watchdog.disarm(cutoff)
        _thread_state.cutoff = None
        cutoff.close()


def _current_cutoff() -> _Cutoff | None:
    return getattr(_thread_state, "cutoff", None)


class _DeadlineConnectionMixin:
    """Keeps a urllib3 connection to the deadline of the request running on its thread.

    Connections are made and reused deep inside urllib3, so the request's `_Cutoff` reaches
    them through a thread-local: every session, and so every pooled connection, belongs to
    one thread.
    """

    def _new_conn(self) -> socket.socket:
        cutoff = _current_cutoff()
        if cutoff is None:
            return super()._new_conn()
        sock = self._connect_before(cutoff.deadline)
        # Watched from here on, so the TLS handshake that follows is cut too.
        cutoff.watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        cutoff = _current_cutoff()
        if cutoff is not None and self.sock is not None:
            # Already connected: reused from the pool, or connected just now (then watched
            # twice, harmlessly).
            cutoff.watch(self.sock)
        pace = getattr(_thread_state, "pace", None)
        if pace is not None:
            # Connected, and about to write the request: the moment a rate limiter's wait
            # belongs to, so that the time a new connection takes cannot make it leave late.
            _thread_state.pace = None
            pace()
        super().request(*args, **kwargs)

    def _connect_before(self, deadline: float) -> socket.socket:
        # urllib3 tries the addresses a name resolves to one after another, each with the
        # whole connect timeout (an unreachable IPv6 address, then IPv4, takes twice as long);
        # here each try gets at most the time left. Failures map to urllib3's own errors, which
        # tell `_was_sent` that nothing was sent.
        try:
            addresses = socket.getaddrinfo(
                self._dns_host, self.port, allowed_gai_family(), socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(self.host, self, exc) from exc
        failure: OSError = OSError("getaddrinfo returned no address")
        for *_, address in addresses:
            left = deadline - time.monotonic()
            if left <= 0:
                failure = TimeoutError("no time left to connect")
                break
            try:
                return create_connection(
                    address[:2],
                    min(self.timeout, left),
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                failure = exc
        if isinstance(failure, TimeoutError):
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"Connection to {self.host} timed out."
            ) from failure
        raise urllib3.exceptions.NewConnectionError(
            self,
            f"Failed to establish a new connection: {failure}",
        ) from failure


class _HTTPConnection(_DeadlineConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


class _DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections keep to the deadline of the request on their thread."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        # requests honours HTTPS_PROXY from the environment; a proxy's pools must keep to the
        # deadline too. (A SOCKS proxy brings connection classes of its own and is left alone.)
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


def _session() -> requests.Session:
    """This thread's pooled session. It carries no credentials: auth goes with each request."""
    session = getattr(_thread_state, "session", None)
    if session is None:
        session = requests.Session()
        # One session serves every project on this thread; a cookie set for one project must
        # never ride along with another project's request.
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = _DeadlineAdapter(pool_connections=32, pool_maxsize=4, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        _thread_state.session = session
    return session


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _package_version() -> str:
    try:
        return metadata.version("number-import-portal")
    except metadata.PackageNotFoundError:
        return "dev"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _standard_phrase(status: int) -> str:
    """The standard reason phrase of an HTTP status, not the one a server chose to send."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _was_sent(exc: requests.ConnectionError) -> bool:
    """Whether a connection error may have happened after the request reached the server.

    urllib3 wraps failures to connect (refused, DNS, TLS handshake, proxy, connect timeout) in
    MaxRetryError; anything else (a reset or EOF while waiting for the answer) came after the
    request was written, so SignalWire may have acted on it.
    """
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        pre_send = (
            urllib3.exceptions.NewConnectionError,
            urllib3.exceptions.ConnectTimeoutError,
            urllib3.exceptions.SSLError,
            urllib3.exceptions.ProxyError,
            urllib3.exceptions.NameResolutionError,
        )
        return not isinstance(reason.reason, pre_send)
    return True


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------


class SignalWireClient:
    """One project's view of SignalWire's Compatibility API (base ``/api/laml/2010-04-01``).

    ``base_url`` replaces ``https://{space_host}/api/laml/2010-04-01`` (the local simulator);
    plain ``http://`` is accepted only for a loopback host, so a token never travels
    unencrypted. ``encoding`` is ``"form"`` (documented; subset capabilities as
    ``capabilities[]``), ``"form-repeated"`` (subset as repeated ``capabilities`` keys) or
    ``"json"`` (what SignalWire's newer SDKs send). Every request carries a ``(connect, read)``
    timeout and a User-Agent ``{user_agent}/{version}``.

    The ``(connect, read)`` timeout bounds each connection attempt and each socket read, not a
    call: a server that trickles a byte at a time, or a list of many pages, can hold a call far
    longer. Each public method therefore takes ``deadline``, a `time.monotonic()` value at which
    the caller's attempt ends. What it guarantees:

    - no request starts once it has passed: `SignalWireUnavailable` "the attempt ran out of
      time before this request to SignalWire started", ``may_have_reached_signalwire=False``;
    - every connect and read timeout is at most the time left, each address a name resolves
      to is tried only while time is left, and a watchdog thread shuts down the socket of a
      request still running at the deadline, whatever phase it is in (TLS handshake, sending,
      status line, headers, body). That request raises `SignalWireUnavailable` "the attempt
      ran out of time while connecting to SignalWire" (nothing sent) or "... after the request
      was sent to SignalWire" (``may_have_reached_signalwire=True``: a POST may have created
      the number);
    - so a call returns or raises by the deadline, give or take a few milliseconds.

    ``pace``, given to `import_number` or `find_number`, is called once for each request (each
    page of a list) when its connection is open and the request is about to be written: a
    rate limiter waits there, so a request cannot leave later than its slot because a new
    connection took long to open. An exception it raises cancels the request before anything
    is sent, and reaches the caller as it is.

    What it does not guarantee: that SignalWire stops working on a request it has received
    (a cut POST may still create the number, so look it up before importing it again); a
    bound on name resolution, which cannot be interrupted (the resolver's own timeouts apply);
    or a bound through a SOCKS proxy, where only the socket timeouts apply.
    """

    def __init__(
        self,
        space_host: str,
        project_id: str,
        token: str,
        *,
        base_url: str | None = None,
        encoding: str = "form",
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        user_agent: str = "number-import-portal",
        version: str | None = None,
    ) -> None:
        if not project_id:
            raise ValueError("a SignalWire client needs a project id")
        if not token:
            raise ValueError("a SignalWire client needs an API token")
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
        if len(timeout) != 2 or not all(t > 0 for t in timeout):
            raise ValueError("timeout must be a (connect, read) pair of positive seconds")
        if base_url is None:
            space_host = (space_host or "").strip().lower()
            if not space_host or not re.fullmatch(r"[a-z0-9.-]+(:[0-9]+)?", space_host):
                raise ValueError(f"not a Space host name: {space_host!r}")
            base_url = f"https://{space_host}{API_PATH}"
        self.space_host = space_host
        self.project_id = project_id
        self.base_url = self._checked_base_url(base_url)
        self.encoding = encoding
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.user_agent = f"{user_agent}/{version or _package_version()}"
        self._token = token
        # What a server echoing the Authorization header would send back, encoded as requests
        # encodes it (Latin-1; a token Latin-1 cannot encode is never sent).
        self._basic_credentials = base64.b64encode(
            f"{project_id}:{token}".encode("latin-1", errors="replace")
        ).decode()
        self._account_path = f"/Accounts/{quote(project_id, safe='')}"

    def __repr__(self) -> str:
        return (
            f"SignalWireClient(space_host={self.space_host!r}, project_id={self.project_id!r}, "
            f"base_url={self.base_url!r}, encoding={self.encoding!r})"
        )

    @staticmethod
    def _checked_base_url(base_url: str) -> str:
        parts = urlsplit(base_url)
        if parts.scheme == "https" and parts.hostname:
            return base_url.rstrip("/")
        if parts.scheme == "http" and _is_loopback(parts.hostname):
            return base_url.rstrip("/")
        if parts.scheme == "http":
            raise ValueError(
                f"refusing plain http:// to {parts.hostname}: SignalWire credentials travel only "
                "over https (plain http is allowed for a loopback simulator only)"
            )
        raise ValueError(f"the SignalWire base URL must be an https:// URL, not {base_url!r}")

    # -- public API ---------------------------------------------------------------------------

    def import_number(
        self,
        number: str,
        number_type: str,
        capabilities: Iterable[str] | None = None,
        *,
        deadline: float | None = None,
        pace: Callable[[], None] | None = None,
    ) -> IncomingPhoneNumber:
        """Import a number the customer owns into this project; returns the new number.

        POST /Accounts/{project}/ImportedPhoneNumbers with ``number`` (E.164), ``number_type``
        (longcode|tollfree) and ``capabilities`` (omitted when all four are wanted, which is
        the documented default). Implements
        https://signalwire.com/docs/compatibility-api/rest/imported-phone-numbers/create-imported-phone-number

        Raises ValueError for a number type or capability the API does not know (a programming
        error: forms validate these), and `SignalWireError` subclasses for what SignalWire says.
        With a `deadline` (see the class docstring), a POST cut short by it raises
        `SignalWireUnavailable` with ``may_have_reached_signalwire=True``: the number may exist.
        """
        if number_type not in NUMBER_TYPES:
            raise ValueError(f"number_type must be one of {', '.join(NUMBER_TYPES)}")
        wanted = self._capability_list(capabilities)
        fields: dict[str, Any] = {"number": number, "number_type": number_type}
        if wanted is not None:
            fields["capabilities"] = wanted
        data, headers = self._encode(fields)
        url = self.base_url + self._account_path + "/ImportedPhoneNumbers"
        response = self._request(
            "POST", url, data=data, headers=headers, deadline=deadline, pace=pace
        )
        if response.status_code in (200, 201):
            result = self._number_from(response)
            requested = set(wanted or CAPABILITIES)
            if result.capabilities and set(result.capabilities.enabled()) != requested:
                # A Space that misreads our form array would do this silently (NOTES.md §1.3).
                logger.warning(
                    "SignalWire gave %s capabilities %s, not the requested %s; check the "
                    "request encoding setting (encoding=%s)",
                    result.phone_number,
                    sorted(result.capabilities.enabled()),
                    sorted(requested),
                    self.encoding,
                )
            logger.info("imported %s into project %s as %s", number, self.project_id, result.sid)
            return result
        raise self._error_from(response)

    def find_number(
        self,
        number: str,
        *,
        deadline: float | None = None,
        pace: Callable[[], None] | None = None,
    ) -> IncomingPhoneNumber | None:
        """The project's number equal to `number` (E.164), or None; follows every page.

        GET /Accounts/{project}/IncomingPhoneNumbers?PhoneNumber=%2B..., following
        ``next_page_uri``. The filter is documented as a pattern, so the exact match is made
        here. A `deadline` bounds the whole lookup, every page included: no page is asked for
        once it has passed. Implements
        https://signalwire.com/docs/compatibility-api/rest/incoming-phone-numbers/list-incoming-phone-numbers
        """
        query = urlencode({"PhoneNumber": number}, quote_via=quote, safe="")
        first = f"{self.base_url}{self._account_path}/IncomingPhoneNumbers?{query}"
        for _url, page, _next_url in self._pages(first, deadline, pace):
            for item in page.get("incoming_phone_numbers") or []:
                if isinstance(item, Mapping) and item.get("phone_number") == number:
                    return self._parse_number(item, status=200)
        return None

    def list_numbers(
        self,
        *,
        page_size: int = MAX_PAGE_SIZE,
        start_url: str | None = None,
        deadline: float | None = None,
        pace: Callable[[], None] | None = None,
    ) -> Iterator[NumberPage]:
        """Every number of the project, a page at a time, following ``next_page_uri``.

        GET /Accounts/{project}/IncomingPhoneNumbers?PageSize=..., then each page's
        ``next_page_uri`` as given (it carries the PageToken that pages past the first need,
        NOTES.md §5), until it is null. `start_url` (a page's `next_url`) continues a listing
        that failed part-way. A page holding a number without a sid or a phone number raises
        `SignalWireUnavailable`: a list that cannot be read whole must not be taken as the
        Space's inventory. A `deadline` bounds the whole listing, as in `find_number`.
        Implements
        https://signalwire.com/docs/compatibility-api/rest/incoming-phone-numbers/list-incoming-phone-numbers
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        first = start_url or (
            f"{self.base_url}{self._account_path}/IncomingPhoneNumbers?PageSize={page_size}"
        )
        for url, body, next_url in self._pages(first, deadline, pace):
            items = body.get("incoming_phone_numbers")
            if not isinstance(items, list):
                raise SignalWireUnavailable(
                    "SignalWire's page of numbers has no incoming_phone_numbers list",
                    status=200,
                    may_have_reached_signalwire=False,
                )
            numbers = tuple(self._parse_number(item, status=200) for item in items)
            page = body.get("page")
            yield NumberPage(
                url=url,
                page=page if isinstance(page, int) and not isinstance(page, bool) else None,
                numbers=numbers,
                next_url=next_url,
            )

    def _pages(
        self, url: str | None, deadline: float | None, pace: Callable[[], None] | None
    ) -> Iterator[tuple[str, Mapping[str, Any], str | None]]:
        """Each page of a list as (its url, its body, the next page's url), following
        ``next_page_uri`` until it is null; a list whose pages repeat, or that runs past
        _MAX_PAGES, is SignalWire unavailable rather than an endless loop."""
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= _MAX_PAGES:
                raise SignalWireUnavailable(
                    "SignalWire's list of numbers did not end (next_page_uri repeats)",
                    may_have_reached_signalwire=False,
                )
            seen.add(url)
            body = self._get_page(url, deadline, pace)
            next_url = self._next_page_url(body.get("next_page_uri"))
            yield url, body, next_url
            url = next_url

    def check_credentials(self, *, deadline: float | None = None) -> None:
        """Return if this token can read the project's numbers; raise what is wrong otherwise.

        Makes the cheap Numbers-scope read ``GET /Accounts/{project}/IncomingPhoneNumbers
        ?PageSize=1`` (NOTES.md §5). On 401/403 it asks ``GET /Accounts/{project}`` (which needs
        the Management scope instead): if that succeeds the token is valid but lacks Numbers,
        and the `CredentialsRejected` raised has ``is_numbers_scope_missing=True``. SignalWire
        answers a missing Partner API only on import, so it cannot be seen here. A `deadline`
        bounds both requests; when it cuts the second, the scope stays undecided (False).
        Implements
        https://signalwire.com/docs/compatibility-api/rest/incoming-phone-numbers/list-incoming-phone-numbers
        """
        url = f"{self.base_url}{self._account_path}/IncomingPhoneNumbers?PageSize=1"
        response = self._request("GET", url, deadline=deadline)
        if response.status_code == 200:
            return
        error = self._error_from(response)
        if isinstance(error, CredentialsRejected) and (
            response.status_code == 403 or self._token_opens_account(deadline)
        ):
            error.is_numbers_scope_missing = True
            error.message = (
                "the API token is valid but lacks the Numbers scope"
                f" (SignalWire said: {error.message})"
            )
        raise error

    # -- internals ----------------------------------------------------------------------------

    def _token_opens_account(self, deadline: float | None) -> bool:
        try:
            response = self._request("GET", self.base_url + self._account_path, deadline=deadline)
        except SignalWireError:
            return False
        return response.status_code == 200

    @staticmethod
    def _capability_list(capabilities: Iterable[str] | None) -> list[str] | None:
        if capabilities is None:
            return None
        if isinstance(capabilities, str):
            raise ValueError("capabilities must be a list of names, not one string")
        wanted = list(dict.fromkeys(capabilities))
        unknown = [name for name in wanted if name not in CAPABILITIES]
        if unknown:
            raise ValueError(f"unknown capabilities {unknown}; allowed: {CAPABILITIES}")
        if not wanted:
            raise ValueError("at least one capability is needed")
        if set(wanted) == set(CAPABILITIES):
            # All four is the documented default; omitting the array sidesteps the
            # undocumented question of how a form body spells one (NOTES.md §1.3).
            return None
        return wanted

    def _encode(self, fields: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
        if self.encoding == "json":
            return json.dumps(fields), {"Content-Type": "application/json"}
        pairs: list[tuple[str, str]] = []
        for key, value in fields.items():
            if isinstance(value, list):
                # The API looks like Rails (NOTES.md §1.3): Rails reads only `capabilities[]`
                # as an array and keeps just the last of repeated plain keys, silently dropping
                # capabilities. "form-repeated" sends the OpenAPI-default spelling instead.
                name = f"{key}[]" if self.encoding == "form" else key
                pairs.extend((name, item) for item in value)
            else:
                pairs.append((key, value))
        return urlencode(pairs), {"Content-Type": "application/x-www-form-urlencoded"}

    def _request(
        self,
        method: str,
        url: str,
        *,
        data: str | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        pace: Callable[[], None] | None = None,
    ) -> requests.Response:
        all_headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        all_headers.update(headers or {})
        logger.debug("SignalWire %s %s", method, url)
        started = time.monotonic()
        timeout = self.timeout
        if deadline is not None:
            left = deadline - started
            if left <= 0:
                raise SignalWireUnavailable(
                    f"{_OUT_OF_TIME} before this request to SignalWire started",
                    may_have_reached_signalwire=False,
                )
            timeout = (min(timeout[0], left), min(timeout[1], left))
        failure: SignalWireUnavailable | None = None
        _thread_state.pace = pace
        try:
            with _deadline_watched(deadline):
                response = _session().request(
                    method,
                    url,
                    data=data,
                    headers=all_headers,
                    auth=(self.project_id, self._token),
                    timeout=timeout,
                    allow_redirects=False,
                )
        except requests.RequestException as exc:
            failure = self._unavailable_from(exc, deadline)
        finally:
            _thread_state.pace = None
        # Raised outside the except block on purpose: the requests exception holds the prepared
        # request, Authorization header included, and must not ride along as __context__.
        if failure is not None:
            logger.info("SignalWire %s %s failed: %s (%s)", method, url, failure, failure.detail)
            raise failure
        logger.debug(
            "SignalWire %s %s -> %s in %.0f ms",
            method,
            url,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _unavailable_from(
        self, exc: requests.RequestException, deadline: float | None
    ) -> SignalWireUnavailable:
        if isinstance(exc, requests.ConnectTimeout):
            what, sent = "connecting to SignalWire timed out", False
        elif isinstance(exc, requests.Timeout):
            what, sent = "SignalWire did not answer in time", True
        elif isinstance(exc, requests.ConnectionError):
            # Through a proxy, urllib3 calls any break of the proxy's connection "unable to
            # connect to proxy", also one after the request went out: assume it may have.
            sent = isinstance(exc, requests.exceptions.ProxyError) or _was_sent(exc)
            what = (
                "the connection to SignalWire broke after the request was sent"
                if sent
                else "could not connect to SignalWire"
            )
        else:
            what, sent = "the request to SignalWire failed", True
        if deadline is not None and time.monotonic() >= deadline:
            # Cut by the deadline (a socket timeout set to the time left, or the watchdog's
            # shutdown, which surfaces as a broken connection).
            what = f"{_OUT_OF_TIME} " + (
                "after the request was sent to SignalWire"
                if sent
                else "while connecting to SignalWire"
            )
        return SignalWireUnavailable(
            what,
            detail=self._scrub(f"{type(exc).__name__}: {exc}"),
            may_have_reached_signalwire=sent,
        )

    def _get_page(
        self, url: str, deadline: float | None, pace: Callable[[], None] | None = None
    ) -> Mapping[str, Any]:
        response = self._request("GET", url, deadline=deadline, pace=pace)
        if response.status_code != 200:
            raise self._error_from(response)
        body = self._json_or_none(response)
        if not isinstance(body, Mapping):
            raise SignalWireUnavailable(
                "SignalWire answered the list request with something that is not a JSON object",
                status=response.status_code,
                may_have_reached_signalwire=False,
            )
        return body

    def _next_page_url(self, next_page_uri: Any) -> str | None:
        if not next_page_uri or not isinstance(next_page_uri, str):
            return None
        # next_page_uri is a path from the host root ("/api/laml/2010-04-01/..."); keep the
        # configured base (a proxy prefix, the simulator) in front of the part after it.
        if next_page_uri.startswith(API_PATH + "/") and self.base_url.endswith(API_PATH):
            return self.base_url + next_page_uri[len(API_PATH) :]
        url = urljoin(self.base_url + "/", next_page_uri)
        here, there = urlsplit(self.base_url), urlsplit(url)
        if (here.scheme, here.netloc) != (there.scheme, there.netloc):
            # Following it would send this project's credentials to another host.
            raise SignalWireUnavailable(
                f"refusing to follow next_page_uri to another host ({there.netloc})",
                may_have_reached_signalwire=False,
            )
        return url

    def _number_from(self, response: requests.Response) -> IncomingPhoneNumber:
        body = self._json_or_none(response)
        return self._parse_number(body, status=response.status_code)

    @staticmethod
    def _parse_number(body: Any, *, status: int) -> IncomingPhoneNumber:
        try:
            return IncomingPhoneNumber.from_json(body)
        except ValueError as exc:
            raise SignalWireUnavailable(
                f"SignalWire's answer could not be read as a phone number: {exc}",
                status=status,
                may_have_reached_signalwire=True,
            ) from None

    @staticmethod
    def _json_or_none(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    def _error_from(self, response: requests.Response) -> SignalWireError:
        status = response.status_code
        body = self._json_or_none(response)
        body = body if isinstance(body, Mapping) else {}
        raw_code = body.get("code")
        code = str(raw_code) if isinstance(raw_code, (str, int)) and raw_code != "" else None
        said = self._scrub(str(body.get("message") or body.get("error") or ""))
        phrase = _standard_phrase(status)
        more_info = body.get("more_info") if isinstance(body.get("more_info"), str) else None
        # For the log: SignalWire's message, else the start of whatever page came instead.
        detail = said or self._scrub(response.text[:_DETAIL_CHARACTERS])
        common = {"status": status, "code": code, "more_info": more_info, "detail": detail}
        logger.info("SignalWire answered %s (code %s): %s", status, code, detail or phrase)
        # SignalWire documents its 4xx errors, whose message tells support staff what to fix;
        # a 429, a 5xx or anything else is as likely a proxy's or a load balancer's page.
        message = (said or phrase) if 400 <= status < 500 and status != 429 else phrase
        if status in (401, 403):
            return CredentialsRejected(message, **common)
        if status == 429 or status >= 500:
            return SignalWireUnavailable(
                message,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                # 429 and 503 say the request was refused, not processed (RFC 9110 §15.6.4);
                # any other 5xx may have come after SignalWire acted on it.
                may_have_reached_signalwire=status not in (429, 503),
                **common,
            )
        if 400 <= status < 500:
            is_duplicate = status == 409 or bool(_DUPLICATE_MESSAGE.search(said))
            return RequestRejected(message, is_duplicate=is_duplicate, **common)
        # 1xx/3xx/unexpected 2xx: nothing says SignalWire did not act on it.
        return SignalWireUnavailable(
            f"unexpected answer from SignalWire: HTTP {status}",
            may_have_reached_signalwire=True,
            **common,
        )

    def _scrub(self, text: str) -> str:
        for secret in (self._token, self._basic_credentials):
            text = text.replace(secret, "[redacted]")
        return text


__all__ = [
    "API_PATH",
    "ENCODINGS",
    "NUMBER_TYPES",
    "Capabilities",
    "CredentialsRejected",
    "MAX_PAGE_SIZE",
    "IncomingPhoneNumber",
    "NumberPage",
    "RequestRejected",
    "SignalWireClient",
    "SignalWireError",
    "SignalWireUnavailable",
    "parse_retry_after",
    "parse_rfc2822",
]

"""The state of the simulated Spaces: the projects, their numbers, the paged list, imports.

Only data and the rules on it live here; `simulator.Simulator` holds it under its lock and the
HTTP side (`server`, `routes`) turns it into answers.
"""

from __future__ import annotations

import bisect
import dataclasses
import email.utils
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from signalwire_simulator.faults import SimConfig
from signalwire_simulator.outcome import Outcome, error, import_error
from signalwire_simulator.routes import API_PREFIX

DEMO_PROJECT_ID = "5a1e7c1d-0d3f-4c5e-9a55-6d656d6f0001"
# Bandit B105 is a false alarm: the simulator's published demo token, which only it accepts.
DEMO_TOKEN = "PTdemo0000000000000000000000000000000000000000"  # nosec B105
DEMO_SPACE_HOST = "demo.signalwire.test"
# A second project `--demo` serves, which `make run` does not add to the portal: someone trying
# the portal adds it on the Add project page, as they would a customer's.
SECOND_DEMO_PROJECT_ID = "5a1e7c1d-0d3f-4c5e-9a55-6d656d6f0002"
SECOND_DEMO_TOKEN = "PTdemo0000000000000000000000000000000000000002"  # nosec B105
SECOND_DEMO_SPACE_HOST = "second.signalwire.test"
ALL_CAPABILITIES = ("sms", "voice", "fax", "mms")
NUMBER_TYPES = ("longcode", "tollfree")
# The spec's digits are ASCII: `\d` would take other scripts' digits too ("+١٤١٥…"). Always
# used with fullmatch, so a trailing newline is refused as well (`$` would let it through).
NUMBER_PATTERN = re.compile(r"\+[0-9]{5,30}")

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
        # config, and if they pass 1 there the first faults simply win (see faults.pick_fault).
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


def capabilities_object(capabilities: Iterable[str]) -> dict[str, bool]:
    """The record's ``capabilities``: all four keys, lower case (NOTES.md §3)."""
    chosen = set(capabilities)
    return {name: name in chosen for name in ("voice", "sms", "mms", "fax")}


def rfc2822(moment: datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(UTC).replace(microsecond=0))


def friendly_name(number: str) -> str:
    digits = number[1:]
    if len(digits) == 11 and digits.startswith("1"):
        return f"({digits[1:4]}) {digits[4:7]}-{digits[7:]}"
    return number


def country_code(number: str) -> str:
    digits = number[1:]
    for length in (3, 2, 1):
        if digits[:length] in _CALLING_CODES:
            return _CALLING_CODES[digits[:length]]
    return "ZZ"


class ProjectNumbers:
    """One project's numbers, oldest first, indexed so that a list page costs about its own size.

    Records are never changed in place: a change puts a new dict in their place, so a page
    handed out (and serialised outside the simulator's lock) never shows half a change.
    Callers hold the simulator's lock.
    """

    def __init__(self) -> None:
        self._next = 0
        self._records: dict[int, dict[str, Any]] = {}  # position -> record
        self._order: list[int] = []  # the live positions, ascending
        self._position: dict[str, int] = {}  # live sid -> position
        # Every sid ever listed here -> its position: a page token naming a number released
        # (or moved away) since still says where the next page starts.
        self._cursor: dict[str, int] = {}
        self._by_number: dict[str, list[str]] = {}  # phone number -> live sids

    def __len__(self) -> int:
        return len(self._order)

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first."""
        return [self._records[position] for position in self._order]

    def get(self, sid: str) -> dict[str, Any] | None:
        position = self._position.get(sid)
        return None if position is None else self._records[position]

    def sids_of(self, number: str) -> list[str]:
        """The sids holding `number` here, oldest first (several only with duplicates allowed)."""
        return list(self._by_number.get(number, ()))

    def add(self, record: dict[str, Any]) -> None:
        """Append a record as the newest."""
        position = self._next
        self._next += 1
        sid = record["sid"]
        self._records[position] = record
        self._order.append(position)
        self._position[sid] = self._cursor[sid] = position
        self._by_number.setdefault(record["phone_number"], []).append(sid)

    def replace(self, record: dict[str, Any]) -> None:
        """Put a changed copy of a record in its place (same sid, same phone number)."""
        self._records[self._position[record["sid"]]] = record

    def remove(self, sid: str) -> dict[str, Any]:
        """Take a record out; KeyError if the sid is not here."""
        position = self._position.pop(sid)
        record = self._records.pop(position)
        del self._order[bisect.bisect_left(self._order, position)]
        sids = self._by_number[record["phone_number"]]
        sids.remove(sid)
        if not sids:
            del self._by_number[record["phone_number"]]
        return record

    def index_after(self, sid: str) -> int | None:
        """Where the page after the record `sid` starts in the live order; None if never here."""
        position = self._cursor.get(sid)
        return None if position is None else bisect.bisect_right(self._order, position)

    def scan(
        self, start: int, step: int, wanted: int, match: Callable[[dict[str, Any]], bool]
    ) -> tuple[list[int], int]:
        """Up to `wanted` indexes of matching records from `start` on, going by `step` (1 or
        -1), and the index where the scan stopped; only as many records are read as needed."""
        found: list[int] = []
        index = start
        while 0 <= index < len(self._order) and len(found) < wanted:
            if match(self._records[self._order[index]]):
                found.append(index)
            index += step
        return found, index

    def sid_at(self, index: int) -> str:
        return self._records[self._order[index]]["sid"]

    def record_at(self, index: int) -> dict[str, Any]:
        return self._records[self._order[index]]


def _token(sid: str) -> str:
    """An opaque page token: "PA" and the sid of the record the page starts after."""
    return "PA" + sid.replace("-", "")


def _token_sid(token: str | None) -> str | None:
    if not token or not token.startswith("PA"):
        return None
    try:
        return str(uuid.UUID(hex=token[2:]))
    except ValueError:
        return None


def list_page(numbers: ProjectNumbers, account_sid: str, query: str) -> Outcome:
    """One page of ``GET …/IncomingPhoneNumbers``, oldest first, in SignalWire's envelope.

    Paging is by key, as the token says: a page starts after the record its PageToken names,
    so numbers added or released between two pages neither repeat nor hide the ones after
    them. Without a filter a page reads its own records and one more; with one it reads on
    only until the page is full and one more match is seen (for ``next_page_uri``).
    """
    params = dict(parse_qsl(query, keep_blank_values=True))
    try:
        page = int(params.get("Page", "0"))
        page_size = int(params.get("PageSize", "50"))
    except ValueError:
        return error(400, 10000, "Page and PageSize must be integers")
    if page < 0 or not 1 <= page_size <= 1000:
        return error(400, 10000, "PageSize must be between 1 and 1000")
    pattern = params.get("PhoneNumber")
    friendly = params.get("FriendlyName")
    start = 0
    token = params.get("PageToken") if page > 0 else None
    if page > 0:
        after = _token_sid(token)
        start_at = None if after is None else numbers.index_after(after)
        if start_at is None:
            return error(400, 54453, "PageToken is missing or invalid for the requested Page")
        start = start_at

    def matches(record: dict[str, Any]) -> bool:
        return (not pattern or pattern in record["phone_number"]) and (
            friendly is None or record["friendly_name"] == friendly
        )

    found, _ = numbers.scan(start, 1, page_size + 1, matches)
    items = [numbers.record_at(index) for index in found[:page_size]]
    filters = {k: v for k, v in (("PhoneNumber", pattern), ("FriendlyName", friendly)) if v}

    def page_uri(number: int, page_token: str | None) -> str:
        query_items: dict[str, Any] = {**filters, "Page": number, "PageSize": page_size}
        if page_token is not None:
            query_items["PageToken"] = page_token
        query_text = urlencode(query_items, quote_via=quote)
        return f"{API_PREFIX}/Accounts/{account_sid}/IncomingPhoneNumbers?{query_text}"

    previous_uri = None
    if page > 0:
        # The previous page is the `page_size` matches before this one; its token names the
        # record just before the first of them. Reached the start: it is the first page.
        before, _ = numbers.scan(start - 1, -1, page_size, matches)
        first = before[-1] if before else 0
        if page == 1 or first == 0:
            previous_uri = page_uri(0, None)
        else:
            previous_uri = page_uri(page - 1, _token(numbers.sid_at(first - 1)))
    body = {
        "uri": page_uri(page, token),
        "first_page_uri": page_uri(0, None),
        "next_page_uri": (
            page_uri(page + 1, _token(items[-1]["sid"])) if len(found) > page_size else None
        ),
        "previous_page_uri": previous_uri,
        "page": page,
        "page_size": page_size,
        "incoming_phone_numbers": items,
    }
    return Outcome(status=200, body=body)


def validate_import(fields: Mapping[str, Any]) -> Outcome | None:
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
    return import_error(messages[0][0], ", ".join(message for _, message in messages))


def import_fields(fields: Mapping[str, Any]) -> tuple[str, str, list[str]]:
    """(number, number_type, capabilities) of a valid import body, capabilities defaulted."""
    capabilities = fields.get("capabilities") or list(ALL_CAPABILITIES)
    return fields["number"], fields["number_type"], list(dict.fromkeys(capabilities))


def new_number(
    account_sid: str,
    number: str,
    number_type: str,
    capabilities: Iterable[str],
    *,
    origin: str,
    example_nulls: bool = False,
    now: str | None = None,
) -> dict[str, Any]:
    """A new IncomingPhoneNumber record; `example_nulls` copies SignalWire's own import example
    (null friendly name, methods and country), `now` an RFC 2822 time (default: this second)."""
    sid = str(uuid.uuid4())
    now = now or rfc2822(datetime.now(UTC))
    nulls = example_nulls
    method = None if nulls else "POST"
    record: dict[str, Any] = {
        "sid": sid,
        "account_id": account_sid,
        "account_sid": account_sid,
        "friendly_name": None if nulls else friendly_name(number),
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
        "capabilities": capabilities_object(capabilities),
        "beta": False,
        "api_version": "2010-04-01",
        "uri": f"{API_PREFIX}/Accounts/{account_sid}/IncomingPhoneNumbers/{sid}",
        "address_requirements": "none",
        "address_sid": None,
        "identity_sid": None,
        "trunk_sid": None,
        "origin": origin,
        "emergency_address_sid": None,
        "emergency_status": "Inactive",
        "country_code": None if nulls else country_code(number),
    }
    if number_type == "tollfree":
        record["verification_status"] = "Unverified"
    return record


# --------------------------------------------------------------------------------------------
# The Space changing by other routes: the dashboard (control endpoints) and the update API
# --------------------------------------------------------------------------------------------

# How many numbers one control request may add: enough for a Space far above the 1,000 a
# project holds by default (NOTES.md §4.4), small enough that a typo does not eat the memory
# (a record takes about 1.7 kB).
MAX_NUMBERS_ADDED = 1_000_000

# `POST …/IncomingPhoneNumbers/{Sid}` form fields the simulator keeps, and the record field
# each sets; the other documented ones (VoiceReceiveMode, application sids…) are accepted and
# ignored, as nothing here reads them.
UPDATABLE_URLS = {
    "VoiceUrl": "voice_url",
    "VoiceFallbackUrl": "voice_fallback_url",
    "SmsUrl": "sms_url",
    "SmsFallbackUrl": "sms_fallback_url",
    "StatusCallback": "status_callback",
}
UPDATABLE_METHODS = {
    "VoiceMethod": "voice_method",
    "VoiceFallbackMethod": "voice_fallback_method",
    "SmsMethod": "sms_method",
    "SmsFallbackMethod": "sms_fallback_method",
    "StatusCallbackMethod": "status_callback_method",
}


def dashboard_numbers(payload: Mapping[str, Any]) -> tuple[list[str], str, list[str]]:
    """(numbers, number_type, capabilities) of a control request adding numbers "bought in the
    dashboard"; ValueError naming what to fix.

    The body gives ``numbers`` (a list of E.164 numbers) or ``count`` and ``start`` (the first
    of `count` consecutive numbers), and optionally ``number_type`` (``longcode``) and
    ``capabilities`` (all four).
    """
    unknown = set(payload) - {"numbers", "count", "start", "number_type", "capabilities"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    if ("numbers" in payload) == ("count" in payload or "start" in payload):
        raise ValueError('give either "numbers" (a list) or "count" and "start"')
    if "numbers" in payload:
        numbers = payload["numbers"]
        if not isinstance(numbers, list) or not numbers:
            raise ValueError('"numbers" must be a non-empty list of E.164 numbers')
    else:
        count, start = payload.get("count"), payload.get("start")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError('"count" must be a whole number of 1 or more')
        if count > MAX_NUMBERS_ADDED:
            raise ValueError(f'"count" must be at most {MAX_NUMBERS_ADDED:,}')
        if not isinstance(start, str) or not NUMBER_PATTERN.fullmatch(start):
            raise ValueError('"start" must be an E.164 number such as "+14155550000"')
        width = len(start) - 1
        first = int(start[1:])
        numbers = [f"+{first + offset:0{width}d}" for offset in range(count)]
    if len(numbers) > MAX_NUMBERS_ADDED:
        raise ValueError(f"at most {MAX_NUMBERS_ADDED:,} numbers at once")
    bad = [n for n in numbers if not isinstance(n, str) or not NUMBER_PATTERN.fullmatch(n)]
    if bad:
        raise ValueError(f"not E.164 numbers: {', '.join(map(repr, bad[:5]))}")
    if len(set(numbers)) != len(numbers):
        raise ValueError("a number is given twice")
    number_type = payload.get("number_type", "longcode")
    if number_type not in NUMBER_TYPES:
        raise ValueError(f'"number_type" must be one of {", ".join(NUMBER_TYPES)}')
    return numbers, number_type, capability_list(payload.get("capabilities", ALL_CAPABILITIES))


def capability_list(capabilities: Any) -> list[str]:
    """A control request's capabilities, checked: a non-empty list of the four names."""
    if (
        not isinstance(capabilities, (list, tuple))
        or not capabilities
        or any(item not in ALL_CAPABILITIES for item in capabilities)
    ):
        names = ", ".join(ALL_CAPABILITIES)
        raise ValueError(f'"capabilities" must be a non-empty list of {names}')
    return list(dict.fromkeys(capabilities))


def record_update(fields: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(changes to the record, AccountSid to move it to or None) of an update's form fields;
    ValueError with SignalWire-style wording when a field is invalid."""
    changes: dict[str, Any] = {}
    if "FriendlyName" in fields:
        name = fields["FriendlyName"]
        if not isinstance(name, str) or not 1 <= len(name) <= 255:
            raise ValueError("FriendlyName must be 1 to 255 characters")
        changes["friendly_name"] = name
    for field_name, key in UPDATABLE_URLS.items():
        if field_name in fields:
            url = fields[field_name]
            if not isinstance(url, str) or (url and not url.startswith(("http://", "https://"))):
                raise ValueError(f"{field_name} must be an http or https URL")
            changes[key] = url or None  # an empty value clears it
    for field_name, key in UPDATABLE_METHODS.items():
        if field_name in fields:
            if fields[field_name] not in ("GET", "POST"):
                raise ValueError(f"{field_name} must be GET or POST")
            changes[key] = fields[field_name]
    target = fields.get("AccountSid")
    if target is not None:
        try:
            target = str(uuid.UUID(str(target)))
        except ValueError:
            raise ValueError("AccountSid must be a project ID (a UUID)") from None
    return changes, target


def changed_record(
    record: Mapping[str, Any], changes: Mapping[str, Any], account_sid: str | None = None
) -> dict[str, Any]:
    """A copy of `record` with `changes`, under `account_sid` if it moves, updated now."""
    new = {**record, **changes, "date_updated": rfc2822(datetime.now(UTC))}
    if account_sid is not None:
        new["account_sid"] = new["account_id"] = account_sid
        new["uri"] = f"{API_PREFIX}/Accounts/{account_sid}/IncomingPhoneNumbers/{record['sid']}"
    return new

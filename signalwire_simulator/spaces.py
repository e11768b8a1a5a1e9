"""The state of the simulated Spaces: the projects, their numbers, the paged list, imports.

Only data and the rules on it live here; `simulator.Simulator` holds it under its lock and the
HTTP side (`server`, `routes`) turns it into answers.
"""

from __future__ import annotations

import copy
import dataclasses
import email.utils
import re
import uuid
from collections.abc import Iterable, Mapping
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


def list_page(records: Iterable[dict[str, Any]], account_sid: str, query: str) -> Outcome:
    """One page of ``GET …/IncomingPhoneNumbers`` over a project's `records`, oldest first."""
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
    matching = [
        copy.deepcopy(record)
        for record in records
        if (not pattern or pattern in record["phone_number"])
        and (friendly is None or record["friendly_name"] == friendly)
    ]
    start = page * page_size
    if page > 0 and params.get("PageToken") != page_token(matching, start):
        return error(400, 54453, "PageToken is missing or invalid for the requested Page")
    items = matching[start : start + page_size]
    filters = {k: v for k, v in (("PhoneNumber", pattern), ("FriendlyName", friendly)) if v}

    def page_uri(number: int) -> str:
        query_items = {**filters, "Page": number, "PageSize": page_size}
        if number > 0:
            query_items["PageToken"] = page_token(matching, number * page_size)
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
    return Outcome(status=200, body=body)


def page_token(records: list[dict[str, Any]], start: int) -> str:
    """An opaque token for the page starting at `start`: PA + the previous record's sid."""
    if start <= 0 or start > len(records):
        return "PA"
    return "PA" + records[start - 1]["sid"].replace("-", "")


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
    capabilities: list[str],
    config: SimConfig,
) -> dict[str, Any]:
    sid = str(uuid.uuid4())
    now = rfc2822(datetime.now(UTC))
    nulls = config.s3_example_nulls
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
        "country_code": None if nulls else country_code(number),
    }
    if number_type == "tollfree":
        record["verification_status"] = "Unverified"
    return record

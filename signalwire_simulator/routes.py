"""The API's routes, and reading a request: Basic credentials and the body (form or JSON).

Paths are served under ``/api/laml/2010-04-01``, under the legacy ``/2010-04-01`` and with an
optional ``.json`` suffix (NOTES.md §8.1). The control endpoints live under ``/__sim__``.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

API_PREFIX = "/api/laml/2010-04-01"
LEGACY_PREFIX = "/2010-04-01"
CONTROL_PREFIX = "/__sim__"


ROUTES = [
    ("import", "POST", re.compile(r"/Accounts/([^/]+)/ImportedPhoneNumbers")),
    ("list", "GET", re.compile(r"/Accounts/([^/]+)/IncomingPhoneNumbers")),
    ("fetch", "GET", re.compile(r"/Accounts/([^/]+)/IncomingPhoneNumbers/([^/]+)")),
    ("update", "POST", re.compile(r"/Accounts/([^/]+)/IncomingPhoneNumbers/([^/]+)")),
    ("release", "DELETE", re.compile(r"/Accounts/([^/]+)/IncomingPhoneNumbers/([^/]+)")),
    ("account", "GET", re.compile(r"/Accounts/([^/]+)")),
]


def route(method: str, path: str) -> tuple[str, str, str | None] | None:
    """(endpoint name, AccountSid, number sid or None) of an API path, or None if unknown."""
    for prefix in (API_PREFIX, LEGACY_PREFIX):
        if path.startswith(prefix + "/"):
            rest = path[len(prefix) :]
            break
    else:
        return None
    rest = rest.removesuffix(".json").rstrip("/")
    for name, route_method, pattern in ROUTES:
        match = pattern.fullmatch(rest)
        if match and method == route_method:
            try:
                account_sid = str(uuid.UUID(match.group(1)))
            except ValueError:
                return None
            number_sid = match.group(2) if match.re.groups == 2 else None
            return name, account_sid, number_sid
    return None


def basic_credentials(header: str) -> tuple[str | None, str | None]:
    """(project id, token) of a Basic Authorization header; (None, None) if unreadable."""
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


def decode_body(content_type: str, body: bytes) -> dict[str, Any] | None:
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

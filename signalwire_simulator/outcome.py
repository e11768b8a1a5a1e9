"""What the simulator decided for one request: an answer to send, or a fault to act out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ERRORS_URL = "https://signalwire.com/docs/compatibility-api/reference/errors"
IMPORT_ERRORS_URL = "https://signalwire.com/docs/rest/compatibility-api/overview/error-codes"


@dataclass
class Outcome:
    """What a handler decided: a response to send, or a fault to act out."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hold_seconds: float = 0.0
    drop: bool = False
    reset: bool = False
    # A held import whose number is created at `create_at` (monotonic) by calling `create`.
    create: Callable[[], Outcome] | None = None
    create_at: float = 0.0

    @property
    def label(self) -> str:
        """The status as the stats count it: the HTTP status, "timeout" or "reset"."""
        if self.reset:
            return "reset"
        return "timeout" if self.hold_seconds or self.drop else str(self.status)


def error(status: int, code: int, message: str) -> Outcome:
    body = {"code": code, "message": message, "more_info": ERRORS_URL, "status": status}
    return Outcome(status=status, body=body)


def import_error(code: str, message: str) -> Outcome:
    # This endpoint's own 422 model has a *string* code (NOTES.md §4.1). The documented example
    # says "status": 400 inside a 422; like NOTES advises, status here equals the HTTP status.
    body = {"code": code, "message": message, "more_info": IMPORT_ERRORS_URL, "status": 422}
    return Outcome(status=422, body=body)


def unauthorized(message: str = "Authentication failed") -> Outcome:
    return error(401, 20003, message)

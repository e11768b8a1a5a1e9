"""Fault injection: the run-time configuration, the draw of an import's fault, latency and the
per-project rate limit. (What the faults did is counted in `stats`.)"""

from __future__ import annotations

import collections
import dataclasses
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signalwire_simulator.outcome import Outcome, error


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


def pick_fault(config: SimConfig, draw: float) -> str | None:
    """The import fault one uniform `draw` in [0, 1) picks, or None: at most one a request."""
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


def draw_latency(config: SimConfig, rng: random.Random) -> float:
    """Seconds to hold an API request before answering it."""
    low, high = config.latency_min_ms, config.latency_max_ms
    return (rng.uniform(low, high) if high > low else low) / 1000


def over_rate_limit(
    accepted: collections.deque[float], config: SimConfig, now: float
) -> Outcome | None:
    """429 when this project's last second already holds `rate_limit` requests.

    `accepted` holds the times of the project's accepted requests. Only accepted requests fill
    the limiter's window; the peak-rate stat counts every request received, the refused ones
    too, so a client that ignores 429 shows as too fast.
    """
    if not config.rate_limit:
        return None
    while accepted and accepted[0] <= now - 1.0:
        accepted.popleft()
    if len(accepted) < config.rate_limit:
        accepted.append(now)
        return None
    outcome = error(429, 20429, "Too Many Requests")
    if config.retry_after is not None:
        wait = accepted[0] + 1.0 - now
        outcome.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return outcome


LIST_FAULTS = ("500", "503", "reset", "timeout")


@dataclass
class ListFault:
    """A list page that fails, armed for one project through ``/__sim__/projects/{id}/list-fault``:
    `after_pages` list requests are answered, then the next `times` fail with `fault` (500,
    503, a reset connection, or a timeout: held ``timeout_seconds`` and dropped), then the list
    works again. So a sync killed mid-way can be tested."""

    fault: str = "500"
    after_pages: int = 0
    times: int = 1
    served: int = 0
    failed: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ListFault:
        """From a control request's body; ValueError naming what to fix."""
        unknown = set(data) - {"fault", "after_pages", "times"}
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        fault = cls(**data)
        if fault.fault not in LIST_FAULTS:
            raise ValueError(f'"fault" must be one of {", ".join(LIST_FAULTS)}')
        for name in ("after_pages", "times"):
            value = getattr(fault, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f'"{name}" must be a whole number of 0 or more')
        return fault

    def draw(self) -> str | None:
        """The fault for the list request now arriving, or None; counts it either way."""
        if self.served < self.after_pages:
            self.served += 1
            return None
        if self.failed < self.times:
            self.failed += 1
            return self.fault
        return None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

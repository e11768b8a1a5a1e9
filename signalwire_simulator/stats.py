"""What the simulator counts for ``GET /__sim__/stats``: requests, creations, rates, in-flight."""

from __future__ import annotations

import collections
import time
from typing import Any


class Stats:
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

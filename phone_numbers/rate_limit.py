"""A per-Space limit on requests to SignalWire that every worker on every machine shares.

The schedule of each Space is one database row, so the limit holds wherever the portal's
processes share a database: across machines on PostgreSQL, across processes on the embedded
SQLite. It is the generic cell rate algorithm: each request books the next free send time,
evenly spaced, under a row lock.
"""

import time

from django.db import transaction

from phone_numbers.models import RateLimitBucket

# Requests leave evenly spaced at this fraction of the configured rate, so that network
# jitter bunching two of them together cannot push any one-second window over the limit.
SPACING_MARGIN = 0.9


def reserve_send_time(space_host: str, requests_per_second: float) -> float:
    """Book the next send slot for a request to the Space; return the seconds to wait for it."""
    interval = 1.0 / (requests_per_second * SPACING_MARGIN)
    with transaction.atomic():
        RateLimitBucket.objects.get_or_create(space_host=space_host)
        bucket = RateLimitBucket.objects.select_for_update().get(space_host=space_host)
        now = time.time()
        send_at = max(bucket.next_send_at, now)
        bucket.next_send_at = send_at + interval
        bucket.save(update_fields=["next_send_at"])
    return send_at - now

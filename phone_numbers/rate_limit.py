"""A per-Space limit on requests to SignalWire that every worker on every machine shares.

The schedule of each Space is one database row, so the limit holds wherever the portal's
processes share a database: across machines on PostgreSQL, across processes on the embedded
SQLite. It is the generic cell rate algorithm: each request books the next free send time,
evenly spaced, under a row lock.
"""

import time

from django.db import connection

# Requests leave evenly spaced at this fraction of the configured rate, so that a request that
# leaves late (a busy machine, network jitter: up to a quarter of a second) bunching up with the
# next cannot push any one-second window over the limit.
SPACING_MARGIN = 0.8


# Book a slot in one statement: the row is locked only while it runs, not for a round trip
# per step. "The later of two values" is GREATEST in PostgreSQL and MAX in SQLite.
_BOOK_SLOT = """
    INSERT INTO phone_numbers_ratelimitbucket (space_host, next_send_at) VALUES (%s, %s)
    ON CONFLICT (space_host) DO UPDATE
    SET next_send_at = {later}(phone_numbers_ratelimitbucket.next_send_at, %s) + %s
    RETURNING next_send_at
"""
BOOK_SLOT_SQL = {
    "postgresql": _BOOK_SLOT.replace("{later}", "GREATEST"),
    "sqlite": _BOOK_SLOT.replace("{later}", "MAX"),
}


def reserve_send_time(space_host: str, requests_per_second: float) -> float:
    """Book the next send slot for a request to the Space; return the seconds to wait for it."""
    interval = 1.0 / (requests_per_second * SPACING_MARGIN)
    now = time.time()
    with connection.cursor() as cursor:
        cursor.execute(
            BOOK_SLOT_SQL[connection.vendor], [space_host, now + interval, now, interval]
        )
        booked_until = cursor.fetchone()[0]
    return booked_until - interval - now

"""A per-Space limit on requests to SignalWire that every worker on every machine shares.

The schedule of each Space is one database row, so the limit holds wherever the portal's
processes share a database: across machines on PostgreSQL, across processes on the embedded
SQLite. It is the generic cell rate algorithm: each request books the next free send time,
evenly spaced, under a row lock. Times come from the database's clock, never a process's
own: machines whose clocks disagree would otherwise book overlapping slots.

A slot is booked only when it is near (`max_wait`); a request whose slot would be further
away books nothing and comes back later, so no booked slot goes unused and a Space's
schedule never fills with slots that nobody sends in.
"""

from django.db import connection

# Requests leave evenly spaced at this fraction of the configured rate. A request reaches
# SignalWire a little after its slot (a thread waking late, a busy machine, the network), and
# two requests bunched that way must not put one more than the limit into any one-second
# window: at 0.93 a request may arrive up to 1/0.93 - 1 = 75 ms later than the one after it.
# (At 0.96, 41 ms, the chaos harness saw one request too many in a second on this 2-core
# machine in four of six configurations.)
SPACING_MARGIN = 0.93
# A request that would leave later than this after its slot is not sent in it (see
# importing._wait_for_send_slot): half of those 75 ms, the other half being for the way from
# the worker to SignalWire. (A third cost the 5/s Space of the chaos harness a tenth of its
# slots, in sends given up for a later slot.)
LATEST_DEPARTURE = (1 / SPACING_MARGIN - 1) / 2

# The database's clock, in seconds since the epoch, read when the row is updated (after any
# wait for its lock) rather than when the statement started.
_NOW = {
    "postgresql": "extract(epoch FROM clock_timestamp())::float8",
    # SQLite has no sub-millisecond clock; 'now' is fixed for the length of one statement.
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
_LATER = {"postgresql": "GREATEST", "sqlite": "MAX"}


def _sql(template: str) -> str:
    return template.format(now=_NOW[connection.vendor], later=_LATER[connection.vendor])


def book_send_slot(
    space_host: str, requests_per_second: float, max_wait: float
) -> tuple[bool, float]:
    """Book the Space's next send slot if it is at most `max_wait` seconds away.

    Returns (True, seconds to wait for the booked slot), or, when the next free slot is
    further away than `max_wait`, books nothing and returns (False, seconds until it is free):
    the caller should come back then.
    """
    interval = 1.0 / (requests_per_second * SPACING_MARGIN)
    # One statement in the common case; the Space's first request ever makes its row.
    book = _sql(
        """
        INSERT INTO phone_numbers_ratelimitbucket AS bucket (space_host, next_send_at)
        VALUES (%s, {now} + %s)
        ON CONFLICT (space_host) DO UPDATE
        SET next_send_at = {later}(bucket.next_send_at, {now}) + %s
        WHERE bucket.next_send_at <= {now} + %s
        RETURNING next_send_at - %s - {now}
        """
    )
    busy = _sql(
        "SELECT next_send_at - {now} FROM phone_numbers_ratelimitbucket WHERE space_host = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(book, [space_host, interval, interval, max_wait, interval])
        booked = cursor.fetchone()
        if booked is not None:
            return True, max(booked[0], 0.0)
        cursor.execute(busy, [space_host])
        return False, max(cursor.fetchone()[0], 0.0)


def hold_back_space(space_host: str, seconds: float) -> None:
    """Send nothing more to the Space for `seconds` (SignalWire answered 429): every worker's
    next booking for it lands after that."""
    with connection.cursor() as cursor:
        cursor.execute(
            _sql(
                "UPDATE phone_numbers_ratelimitbucket "
                "SET next_send_at = {later}(next_send_at, {now} + %s) WHERE space_host = %s"
            ),
            [seconds, space_host],
        )

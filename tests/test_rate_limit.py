"""The per-Space send schedule (rate_limit.py) and the wait for a slot before a request
leaves (importing._wait_for_send_slot), one worker at a time. Spacing between Spaces and a
machine's clock are covered in test_importing.py; the limit across worker processes in
test_import_integration.py."""

import logging
import time

import pytest
from django.db import connection

from phone_numbers import importing, rate_limit
from phone_numbers.models import ImportStatus
from phone_numbers.rate_limit import SPACING_MARGIN, book_send_slot, hold_back_space
from tests.fakes import FakeSignalWire

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

SPACE = "acme.signalwire.com"  # the Space of make_project's projects


class FakeClock:
    """importing's clock: a sleep moves it on by the time slept plus how late the worker then
    wakes (the next of `wakes_late`, else on time)."""

    def __init__(self, events: list[tuple], wakes_late: list[float]) -> None:
        self.now = 0.0
        self.events = events
        self.wakes_late = wakes_late

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.events.append(("slept", seconds))
        self.now += seconds + (self.wakes_late.pop(0) if self.wakes_late else 0.0)


@pytest.fixture
def events() -> list[tuple]:
    """What an import did, in order: ("booked", wait), ("slept", seconds), ("sent", number)."""
    return []


@pytest.fixture
def wakes_late() -> list[float]:
    """Seconds each sleep of the worker overruns, in order; the test fills it in."""
    return []


@pytest.fixture
def clock(monkeypatch, events, wakes_late) -> FakeClock:
    fake = FakeClock(events, wakes_late)
    monkeypatch.setattr(importing, "time", fake)
    return fake


@pytest.fixture
def bookings(monkeypatch, events) -> list[tuple[bool, float]]:
    """Every answer of the real book_send_slot to importing."""
    answers: list[tuple[bool, float]] = []

    def recording_book_send_slot(*args, **kwargs):
        answer = book_send_slot(*args, **kwargs)
        answers.append(answer)
        events.append(("booked", answer[1]))
        return answer

    monkeypatch.setattr(importing, "book_send_slot", recording_book_send_slot)
    return answers


@pytest.fixture
def client(events) -> FakeSignalWire:
    class RecordingSignalWire(FakeSignalWire):
        def import_number(self, number, *args, **kwargs):
            result = super().import_number(number, *args, **kwargs)  # paces, then "sends"
            events.append(("sent", number))
            return result

    return RecordingSignalWire()


@pytest.fixture
def number(project_job_and_number, settings):
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 5
    return project_job_and_number["number"]


@pytest.fixture
def frozen_database_clock(monkeypatch) -> None:
    """The database's clock stopped at 0: a slot can be exactly max_wait away, and the first
    slot of a Space exactly now."""
    monkeypatch.setitem(rate_limit._NOW, connection.vendor, "0.0")


# The booking


@pytest.mark.parametrize("rate", [1, 5])
def test_a_spaces_slots_are_spaced_at_93_percent_of_its_rate(rate):
    started = time.monotonic()
    waits = [book_send_slot(SPACE, rate, max_wait=20)[1] for _ in range(11)]
    elapsed = time.monotonic() - started

    # 0.93 is the margin the chaos harness showed to be needed (rate_limit.SPACING_MARGIN):
    # ten intervals at 5/s span 2.151 s, against 2.083 s at 0.96 and 2.0 s at 1.0. The
    # database's clock moves on between the bookings by at most `elapsed`, which shortens
    # the span of the waits by as much.
    spacing = 1 / (rate * 0.93)
    assert 10 * spacing - elapsed - 0.001 <= waits[-1] - waits[0] <= 10 * spacing + 0.001


def test_a_slot_further_than_max_wait_is_not_booked_and_the_wait_for_it_is_returned(
    frozen_database_clock,
):
    spacing = 1 / (5 * SPACING_MARGIN)
    for _ in range(5):
        book_send_slot(SPACE, 5, max_wait=10)

    is_booked, wait = book_send_slot(SPACE, 5, max_wait=5 * spacing - 0.05)

    assert (is_booked, wait) == (False, pytest.approx(5 * spacing))
    # Nothing was booked: the slot is still the next free one.
    assert book_send_slot(SPACE, 5, max_wait=10) == (True, pytest.approx(5 * spacing))


def test_a_worker_with_no_time_left_to_wait_is_told_the_true_wait_even_under_a_second(
    frozen_database_clock,
):
    # Near its deadline a worker asks with max_wait 0: the answer is when to come back, and
    # a number handed back that way is due then, not a rounded-up second later.
    spacing = 1 / (5 * SPACING_MARGIN)
    book_send_slot(SPACE, 5, max_wait=0)

    assert book_send_slot(SPACE, 5, max_wait=0) == (False, pytest.approx(spacing))


def test_a_slot_exactly_max_wait_away_is_booked(frozen_database_clock):
    spacing = 1 / (5 * SPACING_MARGIN)
    book_send_slot(SPACE, 5, max_wait=0)

    assert book_send_slot(SPACE, 5, max_wait=spacing) == (True, spacing)


def test_after_a_hold_the_spaces_next_booking_lands_past_it_and_other_spaces_go_on(
    frozen_database_clock,
):
    book_send_slot(SPACE, 5, max_wait=10)
    book_send_slot("other.signalwire.com", 5, max_wait=10)

    hold_back_space(SPACE, 3)

    assert book_send_slot(SPACE, 5, max_wait=10) == (True, pytest.approx(3))
    assert book_send_slot("other.signalwire.com", 5, max_wait=10)[1] < 0.3


def test_a_hold_shorter_than_the_spaces_booked_schedule_leaves_the_schedule_as_it_is(
    frozen_database_clock,
):
    spacing = 1 / (2 * SPACING_MARGIN)
    for _ in range(10):
        book_send_slot(SPACE, 2, max_wait=10)

    hold_back_space(SPACE, 1)

    assert book_send_slot(SPACE, 2, max_wait=10) == (True, pytest.approx(10 * spacing))


# The wait before a request leaves


def test_a_request_leaves_only_after_sleeping_the_wait_its_booking_returned(
    number, clock, bookings, events, sent, client
):
    for _ in range(3):  # the Space's next 0.6 s are booked
        book_send_slot(SPACE, 5, max_wait=10)

    importing.import_number(number, client=client)

    [(_, wait)] = bookings
    assert wait > 0.5
    assert events == [("booked", wait), ("slept", wait), ("sent", number.number)]


# Half of the 75 ms the 0.93 margin leaves (rate_limit.LATEST_DEPARTURE) is 37.6 ms.


def test_a_worker_ready_37_ms_after_its_slot_sends_in_it(
    number, clock, wakes_late, bookings, sent, client
):
    wakes_late.append(0.037)

    importing.import_number(number, client=client)

    assert (len(bookings), client.posted) == (1, [number.number])


def test_a_worker_ready_38_ms_after_its_slot_books_the_next_and_sends_in_that(
    number, clock, wakes_late, bookings, events, sent, client, frozen_database_clock
):
    wakes_late.append(0.038)

    importing.import_number(number, client=client)

    [(_, first), (_, second)] = bookings
    assert second == pytest.approx(first + 1 / (5 * SPACING_MARGIN))
    assert events[-2:] == [("slept", second), ("sent", number.number)]
    assert client.posted == [number.number]


def test_a_worker_ready_exactly_the_latest_departure_after_its_slot_still_sends(
    number, frozen_database_clock, clock, wakes_late, bookings, sent, client
):
    wakes_late.append(rate_limit.LATEST_DEPARTURE)

    importing.import_number(number, client=client)

    assert (bookings, client.posted) == ([(True, 0.0)], [number.number])


def test_a_slow_answer_from_the_database_counts_as_late(
    number, clock, bookings, monkeypatch, sent, client
):
    recording_book_send_slot = importing.book_send_slot

    def slow_book_send_slot(*args, **kwargs):
        answer = recording_book_send_slot(*args, **kwargs)
        if len(bookings) == 1:
            clock.now += 0.038  # the worker learns its slot only this long after asking
        return answer

    monkeypatch.setattr(importing, "book_send_slot", slow_book_send_slot)

    importing.import_number(number, client=client)

    assert (len(bookings), client.posted) == (2, [number.number])


def test_a_worker_late_for_three_slots_in_a_row_hands_its_number_back(
    number, clock, wakes_late, bookings, sent, client
):
    wakes_late.extend([0.038] * 3)

    importing.import_number(number, client=client)

    assert len(bookings) == 3
    assert client.posted == []
    number.refresh_from_db()
    assert (number.status, number.attempts) == (ImportStatus.PENDING, 0)
    assert [pk for pk, _ in sent] == [number.pk]


def test_a_worker_ready_late_for_its_slot_logs_by_how_much(
    number, frozen_database_clock, clock, wakes_late, bookings, sent, client, caplog
):
    caplog.set_level(logging.INFO, logger="phone_numbers.importing")
    wakes_late.append(2.0)

    importing.import_number(number, client=client)

    logged = [record.getMessage() for record in caplog.records if record.name == importing.__name__]
    assert logged == ["Ready 2000 ms after a send slot; booking another"]
    assert client.posted == [number.number]


def test_a_slot_it_could_reach_only_within_a_second_of_its_deadline_is_not_booked(
    number, frozen_database_clock, clock, bookings, sent, client, settings
):
    settings.PORTAL_ATTEMPT_SECONDS = 1.5  # so a slot at most 0.5 s away may be booked
    clock.now = 1000.0
    for _ in range(3):  # the Space's next 0.645 s are booked
        book_send_slot(SPACE, 5, max_wait=10)

    importing.import_number(number, client=client)

    assert bookings == [(False, pytest.approx(3 / (5 * SPACING_MARGIN)))]
    assert client.posted == []
    number.refresh_from_db()
    assert (number.status, number.attempts) == (ImportStatus.PENDING, 0)
    # Its next attempt has a deadline of its own: it comes back at once.
    assert sent == [(number.pk, 0.0)]


def test_a_number_handed_back_comes_back_while_a_second_of_the_schedule_is_still_booked(
    number, frozen_database_clock, clock, bookings, sent, client
):
    for _ in range(12):  # the Space's next 2.58 s are booked
        book_send_slot(SPACE, 5, max_wait=10)

    importing.import_number(number, client=client)

    slot = 12 / (5 * SPACING_MARGIN)
    assert bookings == [(False, pytest.approx(slot))]
    assert sent == [(number.pk, pytest.approx(slot - 1))]

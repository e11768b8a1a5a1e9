"""One email per event, with 32 worker threads seeing the event at the same moment: threads
with their own database connections, released together by a barrier, for many rounds."""

import threading

import pytest

from phone_numbers import importing, tasks
from phone_numbers.models import ImportJob, ImportStatus
from phone_numbers.number_input import read_pasted
from phone_numbers.signalwire import CredentialsRejected
from tests.fakes import FakeSignalWire
from tests.test_import_races import race

pytestmark = [
    # Threads read what the test writes; the roles' groups stay for the tests after.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.both_databases,
]

THREADS = 32
ROUNDS = 20


@pytest.fixture
def queued(settings, monkeypatch) -> list[tuple]:
    """The emails queued, as (kind, job id, user id)."""
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 1_000_000
    emails: list[tuple] = []
    monkeypatch.setattr(
        tasks.send_job_email, "apply_async", lambda args, **kwargs: emails.append(tuple(args))
    )
    monkeypatch.setattr(tasks.import_phone_number, "apply_async", lambda *args, **kwargs: None)
    return emails


@pytest.fixture
def job_of(make_project, admin_user):
    admin_user.email = "ada@example.com"
    admin_user.save()
    project = make_project()

    def job_of(count: int, first: int) -> ImportJob:
        numbers = "\n".join(f"+1415555{index:04d}" for index in range(first, first + count))
        return importing.start_job(
            project=project,
            created_by=admin_user,
            source=ImportJob.Source.PASTE,
            ticket="",
            number_type="longcode",
            capabilities=["sms"],
            lines=read_pasted(numbers),
        )

    return job_of


class Accepting(FakeSignalWire):
    """Imports at once: no send slot to wait for (32 threads on 2 cores wake too late for
    theirs, and would hand their numbers back)."""

    def import_number(self, number, number_type, capabilities=None, deadline=None, pace=None):
        return super().import_number(number, number_type, capabilities)


def test_workers_finishing_a_jobs_last_numbers_together_mail_its_end_once(
    job_of, queued, monkeypatch
):
    monkeypatch.setattr(importing, "client_for", lambda project: Accepting())
    for round_number in range(ROUNDS):
        job = job_of(THREADS, first=round_number * THREADS)
        pks = list(job.numbers.values_list("pk", flat=True))

        race(THREADS, lambda index, pks=pks: tasks.import_phone_number(pks[index]))

        assert job.numbers.filter(status=ImportStatus.IMPORTED).count() == THREADS
        ends = [email for email in queued if email[:2] == ("ended", job.pk)]
        assert len(ends) == 1, f"round {round_number}: {len(ends)} emails"


class RefusedAtOnce:
    """SignalWire refusing the token of every number in flight at the same moment."""

    def __init__(self, count: int) -> None:
        self.barrier = threading.Barrier(count)

    def import_number(self, number, number_type, capabilities=None, deadline=None, pace=None):
        self.barrier.wait(timeout=20)
        raise CredentialsRejected("Authentication failed", status=401)


def test_a_token_refused_for_every_number_in_flight_at_once_mails_one_pause(
    job_of, queued, monkeypatch
):
    for round_number in range(ROUNDS):
        job = job_of(THREADS, first=round_number * THREADS)
        pks = list(job.numbers.values_list("pk", flat=True))
        fake = RefusedAtOnce(THREADS)
        monkeypatch.setattr(importing, "client_for", lambda project, fake=fake: fake)

        race(THREADS, lambda index, pks=pks: tasks.import_phone_number(pks[index]))

        assert job.numbers.filter(failure_category="auth").count() == THREADS
        pauses = [email for email in queued if email[:2] == ("paused", job.pk)]
        # The starter is the one admin: one email.
        assert len(pauses) == 1, f"round {round_number}: {len(pauses)} emails"

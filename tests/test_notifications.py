"""Emails about jobs (issue 18): who is told of what, once, with what in the message."""

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.utils import timezone
from pytest_django.asserts import assertContains, assertRedirects

from phone_numbers import importing, notifications, tasks
from phone_numbers.models import (
    EmailPreference,
    FailureCategory,
    ImportJob,
    ImportStatus,
    NumberImport,
)
from phone_numbers.number_input import read_pasted
from phone_numbers.roles import ADMINS
from phone_numbers.signalwire import CredentialsRejected
from tests.conftest import free_port
from tests.fakes import FakeSignalWire

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

BASE_URL = "https://portal.example.test"


@pytest.fixture(autouse=True)
def setup(settings, monkeypatch):
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 1_000_000
    settings.PORTAL_BASE_URL = BASE_URL
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Queued tasks run at once, as a worker would run them: the outbox holds what was sent.
    monkeypatch.setattr(
        tasks.send_job_email, "apply_async", lambda args, **kwargs: tasks.send_job_email(*args)
    )
    # Number tasks are not sent anywhere: the tests run them by hand.
    monkeypatch.setattr(tasks.import_phone_number, "apply_async", lambda *args, **kwargs: None)


@pytest.fixture
def starter(support_user):
    support_user.email = "sam@example.com"
    support_user.first_name, support_user.last_name = "Sam", "Support"
    support_user.save()
    return support_user


@pytest.fixture
def admins(admin_user):
    """Two admins with addresses (one of them a superuser outside the group), and one without."""
    admin_user.email = "ada@example.com"
    admin_user.save()
    boss = User.objects.create_superuser("bea", "bea@example.com", "boss-pass-1")
    User.objects.create_user("cyd", password="admin-pass-2").groups.add(
        Group.objects.get(name=ADMINS)
    )
    return [admin_user, boss]


@pytest.fixture
def job_of(make_project, starter, django_capture_on_commit_callbacks):
    project = make_project(name="Acme Corp")

    def job_of(count: int, by=None, ticket: str = "HD-7") -> ImportJob:
        numbers = "\n".join(f"+1415555{index:04d}" for index in range(count))
        with django_capture_on_commit_callbacks(execute=True):
            return importing.start_job(
                project=project,
                created_by=by or starter,
                source=ImportJob.Source.PASTE,
                ticket=ticket,
                number_type="longcode",
                capabilities=["sms"],
                lines=read_pasted(numbers),
            )

    return job_of


def finish(job: ImportJob, *outcomes: tuple[str, str]) -> None:
    """Set the job's numbers, in order, to (status, failure category)."""
    for row, (status, category) in zip(job.numbers.order_by("pk"), outcomes, strict=True):
        NumberImport.objects.filter(pk=row.pk).update(status=status, failure_category=category)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`committed(function, *args)`: call it, then run what it left for after the commit (the
    queueing of emails), as outside a test's transaction."""

    def call(function, *args):
        with django_capture_on_commit_callbacks(execute=True):
            return function(*args)

    return call


IMPORTED = (ImportStatus.IMPORTED, "")
REJECTED = (ImportStatus.FAILED, FailureCategory.INVALID_INPUT)
UNREACHABLE = (ImportStatus.FAILED, FailureCategory.NETWORK)
PENDING = (ImportStatus.PENDING, "")


def run_task(pk: int, client: FakeSignalWire, monkeypatch, capture) -> None:
    """The number's task as a worker runs it, SignalWire answering through `client`."""
    monkeypatch.setattr(importing, "client_for", lambda project: client)
    with capture(execute=True):
        tasks.import_phone_number(pk)


# --------------------------------------------------------------------------------------------
# A job's end
# --------------------------------------------------------------------------------------------


def test_a_job_end_mails_its_starter_the_counts_the_failures_by_reason_and_a_link(
    job_of, committed
):
    job = job_of(4)
    finish(job, IMPORTED, REJECTED, UNREACHABLE, REJECTED)

    assert committed(notifications.notify_if_ended, job.pk)

    [message] = mail.outbox
    assert message.to == ["sam@example.com"]
    assert message.subject == f"Job {job.pk} for Acme Corp: Partly imported (1 of 4 imported)"
    assert "Hello Sam Support," in message.body
    assert "Imported:  1 of 4" in message.body
    assert "Failed:    3" in message.body
    assert (
        "- 2 × Rejected input. SignalWire refused this number as sent: fix the number type or "
        "capabilities and retry it." in message.body
    )
    assert "- 1 × Network problem. SignalWire could not be reached. Retry later." in message.body
    assert "Ticket:  HD-7" in message.body
    assert f"The job: {BASE_URL}/jobs/{job.pk}/" in message.body
    assert f"{BASE_URL}/account/email/" in message.body


def test_a_job_end_is_mailed_once_however_often_it_is_seen(job_of, committed):
    job = job_of(2)
    finish(job, IMPORTED, IMPORTED)

    claims = [committed(notifications.notify_if_ended, job.pk) for _ in range(3)]
    committed(notifications.notify_ended_jobs)

    assert claims == [True, False, False]
    [message] = mail.outbox
    assert message.subject == f"Job {job.pk} for Acme Corp: Completed (2 of 2 imported)"


def test_a_job_with_a_number_left_to_send_has_not_ended(job_of, committed):
    job = job_of(2)
    finish(job, IMPORTED, PENDING)

    assert not committed(notifications.notify_if_ended, job.pk)
    assert mail.outbox == []


def test_a_paused_job_is_not_mailed_as_ended(job_of, committed):
    job = job_of(1)
    finish(job, (ImportStatus.FAILED, FailureCategory.AUTH))
    job.pause("SignalWire refused the project's API token.")

    assert not committed(notifications.notify_if_ended, job.pk)
    assert mail.outbox == []


def test_the_worker_that_finishes_the_last_number_mails_the_end(
    job_of, monkeypatch, django_capture_on_commit_callbacks
):
    job = job_of(2)
    first, last = job.numbers.order_by("pk")

    run_task(first.pk, FakeSignalWire(), monkeypatch, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    run_task(last.pk, FakeSignalWire(), monkeypatch, django_capture_on_commit_callbacks)

    [message] = mail.outbox
    assert message.subject == f"Job {job.pk} for Acme Corp: Completed (2 of 2 imported)"


def test_a_job_cancelled_by_a_person_is_mailed_by_beat(job_of, django_capture_on_commit_callbacks):
    job = job_of(3)
    finish(job, IMPORTED, PENDING, PENDING)
    importing.cancel_pending(job)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.recover_stuck_imports()

    [message] = mail.outbox
    assert message.subject == (
        f"Job {job.pk} for Acme Corp: Cancelled after 1 of 3 imported (1 of 3 imported)"
    )
    assert "Cancelled: 2" in message.body


def test_a_job_retried_after_its_end_is_mailed_again_when_it_ends_again(
    job_of,
    monkeypatch,
    django_capture_on_commit_callbacks,
    committed,
):
    job = job_of(2)
    finish(job, IMPORTED, UNREACHABLE)
    committed(notifications.notify_if_ended, job.pk)

    importing.retry_failed(job)
    [retried] = job.numbers.filter(status=ImportStatus.PENDING)
    run_task(retried.pk, FakeSignalWire(), monkeypatch, django_capture_on_commit_callbacks)

    first, second = mail.outbox
    assert first.subject == f"Job {job.pk} for Acme Corp: Partly imported (1 of 2 imported)"
    assert second.subject == f"Job {job.pk} for Acme Corp: Completed (2 of 2 imported)"


def test_a_starter_who_turned_job_emails_off_is_not_mailed(job_of, starter, committed):
    EmailPreference.objects.create(user=starter, wants_job_emails=False)
    job = job_of(1)
    finish(job, IMPORTED)

    assert committed(notifications.notify_if_ended, job.pk)
    assert mail.outbox == []


def test_a_starter_without_an_address_or_no_longer_active_is_not_mailed(job_of, starter, committed):
    job = job_of(1)
    finish(job, IMPORTED)
    starter.is_active = False
    starter.save()

    committed(notifications.notify_if_ended, job.pk)

    assert mail.outbox == []


def test_without_a_mail_server_nothing_is_queued(job_of, settings, committed):
    settings.PORTAL_EMAIL_ENABLED = False
    job = job_of(1)
    finish(job, IMPORTED)

    assert committed(notifications.notify_if_ended, job.pk)
    assert mail.outbox == []


def test_jobs_that_ended_before_the_upgrade_are_not_mailed(job_of, committed):
    # As migration 0014 leaves them: every job that had ended is taken as told.
    job = job_of(1)
    finish(job, IMPORTED)
    ImportJob.objects.filter(pk=job.pk).update(ended_notified_at=timezone.now())

    assert committed(notifications.notify_ended_jobs) == []
    assert mail.outbox == []


# --------------------------------------------------------------------------------------------
# A pause on credentials
# --------------------------------------------------------------------------------------------


def refused() -> CredentialsRejected:
    return CredentialsRejected("Authentication failed", status=401)


def test_a_refused_token_mails_the_starter_and_every_admin_once(
    job_of, admins, django_capture_on_commit_callbacks
):
    job = job_of(3)
    rows = list(job.numbers.select_related("job", "project").order_by("pk"))
    for row in rows:
        assert row.claim()

    # Every number in flight is refused (a revoked token, or one failing on and off), as
    # the worker handles a CredentialsRejected.
    with django_capture_on_commit_callbacks(execute=True):
        for row in rows:
            importing._fail_on_credentials(row, "Authentication failed", 401, "")

    assert sorted(message.to[0] for message in mail.outbox) == [
        "ada@example.com",
        "bea@example.com",
        "sam@example.com",
    ]
    message = next(message for message in mail.outbox if message.to == ["ada@example.com"])
    assert message.subject == (
        f"Job {job.pk} for Acme Corp is paused: SignalWire refused the project's API token"
    )
    assert "started by sam" in message.body
    assert "Ask an admin to check the project's token, then resume the job." in message.body
    assert f"{BASE_URL}/projects/{job.project_id}/" in message.body
    assert f"{BASE_URL}/jobs/{job.pk}/" in message.body


def test_a_job_resumed_and_refused_again_mails_again(
    job_of, admins, monkeypatch, django_capture_on_commit_callbacks
):
    job = job_of(2)
    first, second = job.numbers.order_by("pk")
    run_task(first.pk, FakeSignalWire([refused()]), monkeypatch, django_capture_on_commit_callbacks)
    importing.resume(job)

    run_task(first.pk, FakeSignalWire([refused()]), monkeypatch, django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 2 * 3


def test_an_admin_pausing_a_job_by_hand_mails_nobody(client, job_of, admins):
    job = job_of(2)
    client.force_login(admins[0])

    response = client.post(f"/jobs/{job.pk}/pause/")

    assert response.status_code == 302
    assert ImportJob.objects.get(pk=job.pk).is_paused
    assert mail.outbox == []


# --------------------------------------------------------------------------------------------
# An approval request (wired into the approval flow at merge)
# --------------------------------------------------------------------------------------------


def test_an_approval_request_mails_every_admin_but_the_starter(
    job_of, admins, django_capture_on_commit_callbacks
):
    ada, bea = admins
    job = job_of(3, by=ada)

    with django_capture_on_commit_callbacks(execute=True):
        notifications.notify_approval_requested(job.pk)

    [message] = mail.outbox
    assert message.to == ["bea@example.com"]
    assert message.subject == f"Job {job.pk} for Acme Corp waits for your approval (3 numbers)"
    assert "started by ada" in message.body
    assert f"{BASE_URL}/jobs/{job.pk}/" in message.body


def test_an_admin_who_turned_job_emails_off_gets_no_approval_request(
    job_of, admins, django_capture_on_commit_callbacks
):
    ada, bea = admins
    EmailPreference.objects.create(user=bea, wants_job_emails=False)
    job = job_of(1)

    with django_capture_on_commit_callbacks(execute=True):
        notifications.notify_approval_requested(job.pk)

    assert [message.to for message in mail.outbox] == [["ada@example.com"]]


# --------------------------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------------------------


def test_the_email_task_is_given_ids_only(job_of, starter, monkeypatch, committed):
    queued = []
    monkeypatch.setattr(
        tasks.send_job_email, "apply_async", lambda args, **kwargs: queued.append((args, kwargs))
    )
    job = job_of(1)
    finish(job, IMPORTED)

    committed(notifications.notify_if_ended, job.pk)

    # No address, text or token waits in the broker: the message is built when it is sent.
    assert queued == [(("ended", job.pk, starter.pk), {})]


def test_an_email_whose_job_or_person_is_gone_is_dropped(job_of, starter):
    job = job_of(1)

    assert not notifications.send("ended", job.pk + 1000, starter.pk)
    assert not notifications.send("ended", job.pk, starter.pk + 1000)
    assert mail.outbox == []


def test_a_mail_server_that_is_down_is_tried_again_later_and_at_last_given_up(
    job_of, starter, settings, caplog
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "portal", "smtp-secret-1b7e"
    settings.PORTAL_EMAIL_MAX_RETRIES = 2
    job = job_of(1)
    args = ("ended", job.pk, starter.pk)

    # Run eagerly, each retry runs at once (a worker would wait its countdown).
    tasks.send_job_email.apply(args=args)

    tries = [each.getMessage() for each in caplog.records if each.name == "phone_numbers.tasks"]
    refused = "ConnectionRefusedError: [Errno 111] Connection refused"
    assert tries == [
        f"Could not send the ended email of job {job.pk} to user {starter.pk} ({refused}); "
        "trying again in 30 s",
        f"Could not send the ended email of job {job.pk} to user {starter.pk} ({refused}); "
        "trying again in 60 s",
        f"Gave up the ended email of job {job.pk} to user {starter.pk} after 3 tries: {refused}",
    ]
    assert "smtp-secret-1b7e" not in caplog.text


def test_a_broker_that_cannot_be_reached_costs_the_email_not_the_import(
    job_of, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    def unreachable(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.send_job_email, "apply_async", unreachable)
    job = job_of(1)
    [row] = job.numbers.all()

    run_task(row.pk, FakeSignalWire(), monkeypatch, django_capture_on_commit_callbacks)

    assert NumberImport.objects.get(pk=row.pk).status == ImportStatus.IMPORTED
    assert f"Could not queue the ended email of job {job.pk}" in caplog.text


# --------------------------------------------------------------------------------------------
# The preferences page
# --------------------------------------------------------------------------------------------


def test_the_preferences_page_needs_a_login(client):
    response = client.get("/account/email/")

    assertRedirects(response, "/login/?next=/account/email/", fetch_redirect_response=False)


@pytest.mark.parametrize("role", ["support", "admin"])
def test_every_role_turns_its_job_emails_off_and_on(client, role, starter, admin_user):
    user = starter if role == "support" else admin_user
    client.force_login(user)

    page = client.get("/")
    assertContains(page, 'href="/account/email/"')
    page = client.get("/account/email/")
    assertContains(page, 'name="wants_job_emails"')
    assertContains(page, "checked")

    response = client.post("/account/email/", {})
    assert response.status_code == 302
    assert not EmailPreference.objects.get(user=user).wants_job_emails

    client.post("/account/email/", {"wants_job_emails": "on"})
    assert EmailPreference.objects.get(user=user).wants_job_emails


def test_the_preferences_page_says_when_there_is_no_address(client, admin_user):
    client.force_login(admin_user)

    assertContains(client.get("/account/email/"), "You have no email address")

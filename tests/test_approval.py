"""Four eyes for large jobs (issue 18): a job of more than PORTAL_APPROVAL_THRESHOLD numbers
sends nothing until an admin who did not start it approves it; a rejection cancels it."""

import threading
from functools import partial

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.db import connections
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains, assertTemplateUsed

from phone_numbers import audit, importing
from phone_numbers.models import (
    AuditAction,
    AuditEntry,
    ImportJob,
    ImportStatus,
    JobStatus,
    NumberImport,
)
from phone_numbers.number_input import read_pasted
from phone_numbers.roles import ADMINS
from phone_numbers.tasks import import_phone_number, send_job_email
from tests.fakes import FakeSignalWire

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

HTMX = {"HX-Request": "true"}
THRESHOLD = 3
RACE_ROUNDS = 100


@pytest.fixture(autouse=True)
def low_threshold(settings) -> None:
    settings.PORTAL_APPROVAL_THRESHOLD = THRESHOLD


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(
        import_phone_number, "apply_async", lambda args, countdown=None: calls.append(args[0])
    )
    return calls


@pytest.fixture
def project(make_project):
    return make_project(name="Acme Corp")


def make_admin(username: str) -> User:
    user = User.objects.create_user(username, password=f"{username}-pass-1", is_staff=True)
    user.groups.add(Group.objects.get(name=ADMINS))
    return user


@pytest.fixture
def other_admin(db) -> User:
    return make_admin("bea")


def start(project, user, count: int, first: int = 0) -> ImportJob:
    numbers = "\n".join(f"+1415555{index:04d}" for index in range(first, first + count))
    return importing.start_job(
        project=project,
        created_by=user,
        source=ImportJob.Source.PASTE,
        ticket="HD-7",
        number_type="longcode",
        capabilities=["sms"],
        lines=read_pasted(numbers),
    )


@pytest.fixture
def large_job(project, admin_user, sent, django_capture_on_commit_callbacks) -> ImportJob:
    """A job of one number more than the threshold, started by the admin `ada`."""
    with django_capture_on_commit_callbacks(execute=True):
        job = start(project, admin_user, THRESHOLD + 1)
    return job


def status_of(job: ImportJob) -> JobStatus:
    job.refresh_from_db()
    return job.status_for(job.counts())


def approve(client, job: ImportJob, **kwargs):
    return client.post(reverse("phone_numbers:job_approve", args=[job.pk]), **kwargs)


def reject(client, job: ImportJob, reason: str = "Ticket HD-7 asks for 3 numbers, not 4.", **kw):
    return client.post(reverse("phone_numbers:job_reject", args=[job.pk]), {"reason": reason}, **kw)


# --- The threshold ---------------------------------------------------------------------------


def test_a_job_of_more_numbers_than_the_threshold_awaits_approval_with_nothing_queued(
    large_job, sent
):
    assert large_job.needs_approval
    assert status_of(large_job) == JobStatus.AWAITING_APPROVAL
    assert sent == []
    assert set(large_job.numbers.values_list("status", "queued_at")) == {
        (ImportStatus.PENDING, None)
    }


def test_a_job_that_starts_awaiting_approval_mails_the_other_admins_once(
    project,
    admin_user,
    other_admin,
    sent,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # The email task runs at once, as a worker would: the outbox holds what was sent.
    monkeypatch.setattr(send_job_email, "apply_async", lambda args, **kwargs: send_job_email(*args))
    admin_user.email, other_admin.email = "ada@example.com", "bea@example.com"
    admin_user.save()
    other_admin.save()

    with django_capture_on_commit_callbacks(execute=True):
        job = start(project, admin_user, THRESHOLD + 1)
        # A repeated confirm finds the same job and asks nobody again.
        start(project, admin_user, THRESHOLD + 1)
        start(project, admin_user, THRESHOLD, first=100)

    [message] = mail.outbox
    assert message.to == ["bea@example.com"]
    assert f"Job {job.pk} " in message.subject
    assert "approval" in message.subject


def test_a_job_of_exactly_the_threshold_needs_no_approval_and_is_queued(
    project, support_user, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = start(project, support_user, THRESHOLD)

    assert not job.needs_approval
    assert status_of(job) == JobStatus.QUEUED
    assert sorted(sent) == sorted(job.numbers.values_list("pk", flat=True))


def test_the_default_threshold_is_1000_numbers(project, support_user, settings, sent):
    from portal import settings as portal_settings

    settings.PORTAL_APPROVAL_THRESHOLD = portal_settings.PORTAL_APPROVAL_THRESHOLD

    assert settings.PORTAL_APPROVAL_THRESHOLD == 1000
    assert not start(project, support_user, 1000).needs_approval
    assert start(project, support_user, 1001, first=1000).needs_approval


def test_threshold_0_turns_approval_off(
    project, support_user, settings, sent, django_capture_on_commit_callbacks
):
    settings.PORTAL_APPROVAL_THRESHOLD = 0

    with django_capture_on_commit_callbacks(execute=True):
        job = start(project, support_user, 50)

    assert not job.needs_approval
    assert status_of(job) == JobStatus.QUEUED
    assert len(sent) == 16  # PORTAL_JOB_CONCURRENCY: the queue's first fill


# --- Nothing is sent before approval ---------------------------------------------------------


def test_a_stray_task_of_a_job_awaiting_approval_sends_nothing(large_job, sent):
    fake = FakeSignalWire()
    number = large_job.numbers.select_related("job", "project").first()

    importing.import_number(number, client=fake)

    assert fake.calls == []
    number.refresh_from_db()
    assert (number.status, number.attempts) == (ImportStatus.PENDING, 0)


def test_the_claim_refuses_a_row_of_a_job_awaiting_approval(large_job):
    number = large_job.numbers.first()

    assert not number.claim()
    assert NumberImport.objects.get(pk=number.pk).status == ImportStatus.PENDING


def test_the_claim_refuses_a_row_of_a_rejected_job(large_job, other_admin):
    number = large_job.numbers.first()
    # As a stray task would find it, had the rejection not cancelled its rows.
    ImportJob.objects.filter(pk=large_job.pk).update(rejected_at=timezone.now())

    assert not number.claim()


def test_a_task_finishing_elsewhere_does_not_queue_a_job_awaiting_approval(large_job, sent):
    assert importing.queue_pending(large_job) == 0
    assert sent == []


def test_recovery_queues_nothing_of_a_job_awaiting_approval(large_job, sent):
    importing.recover_stuck_imports()

    assert sent == []


# --- Who may approve -------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_login(client, large_job):
    for url in (
        reverse("phone_numbers:job_approve", args=[large_job.pk]),
        reverse("phone_numbers:job_reject", args=[large_job.pk]),
    ):
        response = client.post(url)
        assert response["Location"] == f"{reverse('login')}?next={url}"
    assert status_of(large_job) == JobStatus.AWAITING_APPROVAL


def test_support_cannot_approve_or_reject_403(client, support_user, large_job, sent):
    client.force_login(support_user)

    assert approve(client, large_job).status_code == 403
    assert reject(client, large_job).status_code == 403
    assert status_of(large_job) == JobStatus.AWAITING_APPROVAL
    assert sent == []


def test_support_who_started_a_job_cannot_approve_it_either(
    client, project, support_user, sent, django_capture_on_commit_callbacks
):
    client.force_login(support_user)
    with django_capture_on_commit_callbacks(execute=True):
        job = start(project, support_user, THRESHOLD + 1)

    assert approve(client, job).status_code == 403
    assert status_of(job) == JobStatus.AWAITING_APPROVAL


def test_the_starter_cannot_approve_or_reject_their_own_job_even_by_a_crafted_post(
    client, admin_user, large_job, sent
):
    client.force_login(admin_user)

    assert approve(client, large_job).status_code == 403
    assert reject(client, large_job).status_code == 403
    assert status_of(large_job) == JobStatus.AWAITING_APPROVAL
    assert sent == []
    assert not AuditEntry.objects.filter(
        action__in=[AuditAction.JOB_APPROVED, AuditAction.JOB_REJECTED]
    ).exists()


def test_the_model_refuses_the_starter_too(large_job, admin_user, sent):
    assert not large_job.approve(admin_user)
    assert not large_job.reject(admin_user, "mine")
    assert status_of(large_job) == JobStatus.AWAITING_APPROVAL


def test_a_job_whose_starter_was_deleted_may_be_approved(large_job, admin_user, other_admin):
    admin_user.delete()
    large_job.refresh_from_db()

    assert large_job.may_be_approved_by(other_admin)
    assert large_job.approve(other_admin)


# --- Approve ---------------------------------------------------------------------------------


def test_another_admin_approves_and_the_numbers_are_queued_as_a_confirm_queues_them(
    client, large_job, other_admin, sent, django_capture_on_commit_callbacks
):
    client.force_login(other_admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = approve(client, large_job, follow=True)

    assertContains(response, "Approved: the job&#x27;s numbers are being imported.")
    assert sorted(sent) == sorted(large_job.numbers.values_list("pk", flat=True))
    assert status_of(large_job) == JobStatus.QUEUED
    assert (large_job.approved_by, large_job.approved_at is not None) == (other_admin, True)
    entry = AuditEntry.objects.get(action=AuditAction.JOB_APPROVED)
    assert (entry.username, entry.job) == ("bea", large_job)
    assertContains(response, "Approved by bea")


def test_an_approved_job_imports_its_numbers(large_job, other_admin, sent):
    importing.approve(large_job, other_admin)
    fake = FakeSignalWire()

    for number in large_job.numbers.select_related("job", "project"):
        importing.import_number(number, client=fake)

    assert len(fake.posted) == THRESHOLD + 1
    assert status_of(large_job) == JobStatus.COMPLETED


def test_approving_twice_queues_once_and_says_the_second_time_why_not(
    client, large_job, other_admin, sent
):
    client.force_login(other_admin)
    approve(client, large_job)
    queued = list(sent)

    response = approve(client, large_job, follow=True)

    assertContains(response, "Nothing was done: the job is no longer waiting for approval")
    assert sent == queued
    assert AuditEntry.objects.filter(action=AuditAction.JOB_APPROVED).count() == 1


def test_approving_a_job_of_a_deactivated_project_is_refused_saying_why(
    client, project, large_job, other_admin, sent
):
    client.force_login(other_admin)
    project.is_active = False
    project.save()

    response = approve(client, large_job, follow=True)

    assertContains(response, "The job was not approved: This project is deactivated")
    assert status_of(large_job) == JobStatus.AWAITING_APPROVAL
    assert sent == []


# --- Reject ----------------------------------------------------------------------------------


def test_a_rejected_job_ends_cancelled_with_the_reason_on_its_page(
    client, large_job, other_admin, sent
):
    client.force_login(other_admin)

    response = reject(client, large_job, follow=True)

    assertContains(response, "Rejected: the job is cancelled and nothing was sent.")
    assertContains(response, "Rejected by bea")
    assertContains(response, "Ticket HD-7 asks for 3 numbers, not 4.")
    assert status_of(large_job) == JobStatus.CANCELLED
    assert set(large_job.numbers.values_list("status", flat=True)) == {ImportStatus.CANCELLED}
    assert sent == []
    entry = AuditEntry.objects.get(action=AuditAction.JOB_REJECTED)
    assert entry.changes == {"reason": "Ticket HD-7 asks for 3 numbers, not 4."}


def test_a_rejection_without_a_reason_is_refused_naming_it(client, large_job, other_admin):
    client.force_login(other_admin)

    response = reject(client, large_job, reason="   ", follow=True)

    assertContains(response, "Give the reason for rejecting the job")
    assert status_of(large_job) == JobStatus.AWAITING_APPROVAL


def test_a_rejected_job_cannot_be_approved_afterwards(client, large_job, other_admin, sent):
    client.force_login(other_admin)
    reject(client, large_job)

    response = approve(client, large_job, follow=True)

    assertContains(response, "no longer waiting for approval")
    assert status_of(large_job) == JobStatus.CANCELLED
    assert sent == []


# --- Cancel, retry, pause on a job awaiting approval ----------------------------------------


def test_the_starter_may_cancel_a_job_awaiting_approval_and_then_it_cannot_be_approved(
    client, large_job, admin_user, other_admin, sent
):
    client.force_login(admin_user)
    client.post(reverse("phone_numbers:job_cancel", args=[large_job.pk]))
    assert status_of(large_job) == JobStatus.CANCELLED

    client.force_login(other_admin)
    approve(client, large_job)

    assert status_of(large_job) == JobStatus.CANCELLED
    assert sent == []


# --- Pages -----------------------------------------------------------------------------------


def test_the_job_page_tells_who_may_approve_and_shows_the_buttons_to_them_only(
    client, large_job, admin_user, other_admin, support_user
):
    url = large_job.get_absolute_url()
    waiting = "Waiting for approval by an admin other than ada."

    for user, sees_buttons in ((other_admin, True), (admin_user, False), (support_user, False)):
        client.force_login(user)
        response = client.get(url)
        assertContains(response, waiting)
        assertContains(response, "Awaiting approval")
        if sees_buttons:
            assertContains(response, reverse("phone_numbers:job_approve", args=[large_job.pk]))
            assertContains(response, reverse("phone_numbers:job_reject", args=[large_job.pk]))
        else:
            assertNotContains(response, "/approve/")
            assertNotContains(response, "/reject/")
        # Nothing runs: there is nothing to pause.
        assertNotContains(response, reverse("phone_numbers:job_pause", args=[large_job.pk]))


def test_the_live_fragment_shows_the_state_and_does_not_poll_while_awaiting(
    client, large_job, other_admin
):
    client.force_login(other_admin)

    response = client.get(large_job.get_absolute_url(), headers=HTMX)

    assertTemplateUsed(response, "phone_numbers/partials/job_live.html")
    assertContains(response, '<span class="badge badge-warn">Awaiting approval</span>', html=True)
    assertNotContains(response, "hx-trigger")


def test_the_jobs_list_shows_the_state(client, large_job, support_user):
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:job_list"))

    assertContains(response, '<span class="badge badge-warn">Awaiting approval</span>', html=True)


def test_the_confirm_of_a_large_job_records_the_approval_request(large_job, admin_user):
    request = RequestFactory().post("/imports/new/", REMOTE_ADDR="10.0.0.5")
    request.user = admin_user

    audit.record_job_confirmed(request, large_job)

    entry = AuditEntry.objects.get(action=AuditAction.JOB_APPROVAL_REQUESTED)
    assert entry.job == large_job
    assert entry.changes == {"numbers": THRESHOLD + 1, "threshold": THRESHOLD}


def test_a_numbers_story_tells_its_jobs_approval(client, large_job, other_admin, support_user):
    client.force_login(other_admin)
    approve(client, large_job)
    number = large_job.numbers.first()

    client.force_login(support_user)
    response = client.get(reverse("phone_numbers:number_detail", args=[number.pk]))

    story = [(event.who, event.what) for event in response.context["story"]]
    assert ("bea", "Job approved") in story


# --- Races -----------------------------------------------------------------------------------


def race(actions) -> list[bool]:
    """Run each action in its own thread and connection, released together by a barrier."""
    barrier = threading.Barrier(len(actions))
    results: list[bool] = [False] * len(actions)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = actions[index]()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    return results


@pytest.mark.postgresql_only(reason="row locks and the re-check of a racing UPDATE's WHERE")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_racing_approvals_and_rejections_of_one_job_exactly_one_wins_every_round(
    project, admin_user, sent
):
    bea, cid = make_admin("bea"), make_admin("cid")
    jobs = [start(project, admin_user, THRESHOLD + 1, first=5 * n) for n in range(RACE_ROUNDS)]

    outcomes = []
    for index, job in enumerate(jobs):
        # Each thread acts on its own copy of the job, as two requests would.
        first, second = ImportJob.objects.get(pk=job.pk), ImportJob.objects.get(pk=job.pk)
        other = partial(second.reject, cid, "no") if index % 2 else partial(second.approve, cid)
        outcomes.append(sum(race([partial(first.approve, bea), other])))

    assert outcomes == [1] * RACE_ROUNDS
    decided = ImportJob.objects.filter(pk__in=[job.pk for job in jobs])
    assert not decided.filter(approved_at__isnull=False, rejected_at__isnull=False).exists()
    assert not decided.filter(approved_at__isnull=True, rejected_at__isnull=True).exists()
    # No approved job lost its numbers to a rejection that lost the race.
    assert not NumberImport.objects.filter(
        job__approved_at__isnull=False, status=ImportStatus.CANCELLED
    ).exists()

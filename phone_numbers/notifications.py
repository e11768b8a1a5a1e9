"""Emails about import jobs: to the starter when a job ends, to the starter and every admin
when SignalWire refuses a project's token and the job pauses, to the admins when a job waits
for approval.

The events are claimed here, in the database, so each is mailed once however many workers
see it; the emails themselves go out later, from a Celery task that takes ids only
(tasks.send_job_email) and retries while the mail server is down. Nothing here can fail or
hold up an import: tasks are queued after the commit, and a broker that cannot be reached
only costs the email (logged).
"""

import logging
from enum import StrEnum

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from phone_numbers.models import (
    FAILURE_ADVICE,
    UNFINISHED_STATUSES,
    FailureCategory,
    ImportJob,
    ImportStatus,
    NumberImport,
)
from phone_numbers.roles import ADMINS

logger = logging.getLogger(__name__)


class Kind(StrEnum):
    ENDED = "ended"
    PAUSED = "paused"
    APPROVAL = "approval"


# notify_if_ended's claim: the job has ended (as _has_ended) and nobody was told yet. In SQL:
# built by the ORM it added 1.5 ms of CPU to a worker's 2.5 ms per number; written out, 0.1 ms
# (bench/job_end_check.py). Every condition is in its own WHERE, so PostgreSQL re-checks them
# all on a row another worker has just claimed.
END_CLAIM_SQL = """
    UPDATE phone_numbers_importjob SET ended_notified_at = %s
    WHERE id = %s AND ended_notified_at IS NULL AND paused_at IS NULL
        AND NOT EXISTS (
            SELECT 1 FROM phone_numbers_numberimport AS number
            WHERE number.job_id = phone_numbers_importjob.id AND number.status IN (%s, %s)
        )
"""


def _has_ended() -> Q:
    """Jobs with no number left to send that are not paused (a paused job waits for a resume,
    and its pause was mailed already)."""
    unfinished = NumberImport.objects.filter(job=OuterRef("pk"), status__in=UNFINISHED_STATUSES)
    return Q(paused_at__isnull=True) & ~Exists(unfinished)


def notify_if_ended(job_id: int) -> bool:
    """If the job has ended and its starter was not told yet, claim that and mail them.

    True for the one call that claimed it: one conditional UPDATE (`ended_notified_at IS
    NULL`, no unfinished number), so of any number of workers finishing the last numbers at
    once, exactly one mails. A job retried after it ended is told again when it ends again
    (`forget_end`).
    """
    # One statement and no transaction of its own: a worker runs it for every number it
    # finishes (the emails are queued after the commit of whatever transaction calls it).
    at = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(END_CLAIM_SQL, [at(timezone.now()), job_id, *UNFINISHED_STATUSES])
        claimed = cursor.rowcount
    if claimed:
        job = ImportJob.objects.get(pk=job_id)
        _queue(Kind.ENDED, job_id, _wanting(_starter(job)))
    return bool(claimed)


def notify_ended_jobs() -> list[int]:
    """Mail the end of every job that ended without a worker seeing it: cancelled by a person,
    failed by recovery, rejected. Beat runs it with the recovery; returns those jobs' ids."""
    ended = ImportJob.objects.filter(ended_notified_at__isnull=True).filter(_has_ended())
    return [job_id for job_id in ended.values_list("pk", flat=True) if notify_if_ended(job_id)]


def forget_end(job_id: int) -> None:
    """The job runs again (numbers retried after it ended): its next end is mailed too.

    Called once the numbers are pending again, so that no worker or beat can see the job as
    ended in between.
    """
    ImportJob.objects.filter(pk=job_id).update(ended_notified_at=None)


def notify_paused_on_credentials(job_id: int) -> None:
    """Mail the starter and every admin that SignalWire refused the job's project token.

    The caller calls it only when its own pause() paused the job (the one conditional UPDATE
    `paused_at IS NULL` that succeeded), so a token refused for every number in flight, or
    failing on and off, mails once per pause: nothing more is sent until a person resumes.
    """
    job = ImportJob.objects.get(pk=job_id)
    _queue(Kind.PAUSED, job_id, _wanting(_starter(job) | _admins()))


def notify_approval_requested(job_id: int) -> None:
    """Mail every admin but the job's starter that the job waits for their approval."""
    job = ImportJob.objects.get(pk=job_id)
    _queue(Kind.APPROVAL, job_id, _wanting(_admins().exclude(pk=job.created_by_id)))


def _starter(job: ImportJob) -> QuerySet:
    return get_user_model().objects.filter(pk=job.created_by_id)


def _admins() -> QuerySet:
    return get_user_model().objects.filter(Q(groups__name=ADMINS) | Q(is_superuser=True))


def _wanting(users: QuerySet) -> list[int]:
    """The ids of those users who can and want to get job emails."""
    return list(
        users.filter(is_active=True)
        .exclude(email="")
        .exclude(email_preference__wants_job_emails=False)
        .values_list("pk", flat=True)
        .distinct()
        .order_by("pk")
    )


def _queue(kind: Kind, job_id: int, user_ids: list[int]) -> None:
    if not settings.PORTAL_EMAIL_ENABLED or not user_ids:
        return

    def send_tasks() -> None:
        from phone_numbers.tasks import send_job_email  # the tasks module imports this one

        for user_id in user_ids:
            try:
                send_job_email.apply_async((str(kind), job_id, user_id))
            except Exception:
                # An email is not worth failing the import for (this may run in a worker
                # that has just recorded a number): the broker's outage is logged instead.
                logger.exception("Could not queue the %s email of job %s", kind, job_id)
                return

    transaction.on_commit(send_tasks)


# --------------------------------------------------------------------------------------------
# The messages, built when they are sent
# --------------------------------------------------------------------------------------------


def send(kind: str, job_id: int, user_id: int) -> bool:
    """Send one email now; False if there is no longer anyone or anything to tell.

    Raises what the mail server raises (smtplib.SMTPException, OSError), for the task to retry.
    """
    job = ImportJob.objects.select_related("project", "created_by").filter(pk=job_id).first()
    user = get_user_model().objects.filter(pk=user_id, is_active=True).exclude(email="").first()
    if job is None or user is None:
        return False
    message_for(Kind(kind), job, user).send()
    return True


def message_for(kind: Kind, job: ImportJob, user) -> EmailMessage:
    counts = job.counts()
    context = {
        "kind": str(kind),
        "job": job,
        "user": user,
        "starter": job.created_by.get_username() if job.created_by else "someone",
        "is_starter": user.pk == job.created_by_id,
        "counts": counts,
        "status_text": job.status_text(counts),
        "failures": failures_by_reason(job),
        "job_url": absolute_url(job.get_absolute_url()),
        "project_url": absolute_url(reverse("phone_numbers:project_detail", args=[job.project_id])),
        "preferences_url": absolute_url(reverse("phone_numbers:email_preferences")),
        "auth_advice": FAILURE_ADVICE[FailureCategory.AUTH],
    }
    subject = render_to_string("phone_numbers/email/job_subject.txt", context)
    body = render_to_string("phone_numbers/email/job_body.txt", context)
    return EmailMessage(
        subject=" ".join(subject.split()),
        body=body,
        to=[user.email],
        headers={"Auto-Submitted": "auto-generated"},
    )


def failures_by_reason(job: ImportJob) -> list[dict[str, object]]:
    """The job's failed numbers counted by reason, most first, each with the label and advice
    the job page shows."""
    rows = (
        job.numbers.filter(status=ImportStatus.FAILED)
        .values("failure_category")
        .annotate(count=Count("pk"))
        .order_by("-count", "failure_category")
    )
    failures = []
    for row in rows:
        category = row["failure_category"]
        label = FailureCategory(category).label if category else "Failed"
        failures.append(
            {"count": row["count"], "label": label, "advice": FAILURE_ADVICE.get(category, "")}
        )
    return failures


def absolute_url(path: str) -> str:
    return settings.PORTAL_BASE_URL + path

import logging
import re
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_variables

from phone_numbers.countries import country_names
from phone_numbers.crypto import EncryptedTextField, is_readable

logger = logging.getLogger(__name__)


class ConnectionStatus(models.TextChoices):
    UNCHECKED = "unchecked", "Not checked"
    CHECKING = "checking", "Checking…"
    OK = "ok", "OK"
    CREDENTIALS_REJECTED = "credentials_rejected", "Credentials rejected"
    SCOPE_MISSING = "scope_missing", "Numbers scope missing"
    PARTNER_API_DISABLED = "partner_api_disabled", "Partner API not enabled"
    UNREACHABLE = "unreachable", "Space unreachable"
    CONFIGURATION = "configuration", "Configuration error"


# Time for a check's task to wait in the queue behind import tasks; the requests themselves
# are bounded by the client's timeouts.
CONNECTION_CHECK_QUEUE_MARGIN = timedelta(seconds=30)


def connection_check_time_limit() -> timedelta:
    """How long a connection check may stay "checking" before it is taken as lost."""
    connect, read = settings.SIGNALWIRE_TIMEOUT
    # check_credentials makes up to two requests: the Numbers read, then on 401/403 the
    # account read that tells a wrong token from a missing scope.
    return 2 * timedelta(seconds=connect + read) + CONNECTION_CHECK_QUEUE_MARGIN


# The one name before a Space domain: letters, digits and inner hyphens. Not punycode ("xn--"):
# a Unicode look-alike of a customer's name is just what this check must not let through.
_SPACE_NAME = re.compile(r"(?!-)(?!xn--)[a-z0-9-]{1,63}(?<!-)")


def is_space_host(host: str) -> bool:
    """True for `<name>.<suffix>` with a suffix of PORTAL_SPACE_HOST_SUFFIXES, in lower case.

    Exactly one name before the suffix, and nothing else: no port, path, trailing dot or
    deeper name, so a token can only go to a SignalWire Space. An IP address in any spelling
    cannot match, since every suffix ends in letters.
    """
    name, dot, suffix = host.partition(".")
    return bool(
        dot and suffix in settings.PORTAL_SPACE_HOST_SUFFIXES and _SPACE_NAME.fullmatch(name)
    )


def validate_space_host(host: str) -> None:
    if not is_space_host(host):
        domains = " or ".join(settings.PORTAL_SPACE_HOST_SUFFIXES)
        raise ValidationError(
            f"Enter the Space's host name: one name before {domains}, like "
            f"acme.{settings.PORTAL_SPACE_HOST_SUFFIXES[0]} (no IP address, port or path).",
            code="not_a_space_host",
        )


class ProjectQuerySet(models.QuerySet):
    def active(self) -> "ProjectQuerySet":
        return self.filter(is_active=True)

    def with_token_hint(self) -> "ProjectQuerySet":
        """Annotate `active_token_last4`, the last 4 characters of the active token."""
        active = Credential.objects.filter(project=OuterRef("pk"), revoked_at__isnull=True)
        return self.annotate(active_token_last4=Subquery(active.values("token_last4")[:1]))

    def search(self, text: str) -> "ProjectQuerySet":
        text = text.strip()
        if not text:
            return self
        return self.filter(
            Q(name__icontains=text)
            | Q(space_host__icontains=text)
            | Q(project_id__icontains=text)
            | Q(notes__icontains=text)
        )


class Project(models.Model):
    """One SignalWire project in a customer's Space."""

    name = models.CharField(max_length=200, help_text="The customer, as support staff say it.")
    space_host = models.CharField(
        "Space host",
        max_length=253,
        help_text="For example acme.signalwire.com",
        validators=[validate_space_host],
    )
    project_id = models.UUIDField(
        "Project ID", help_text="A UUID, shown in the Space's API page (also called AccountSid)."
    )
    default_country = models.CharField(
        max_length=2,
        help_text="Numbers typed without a country code are read as numbers of this country.",
    )
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    connection_status = models.CharField(
        max_length=32, choices=ConnectionStatus, default=ConnectionStatus.UNCHECKED
    )
    connection_detail = models.CharField(max_length=500, blank=True)
    connection_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["space_host", "project_id"], name="unique_project_per_space"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.space_host})"

    def save(self, *args, by=None, **kwargs) -> None:
        """Save; a new Space host or project ID is checked, and revokes the stored token.

        The checks live here, not only in the form, so that the Django admin and a shell obey
        them too. A token belongs to one project of one Space: sending it elsewhere would hand
        it to whoever answers there, so a project that moves needs its token entered again.
        `by` is who revoked it.
        """
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and not {"space_host", "project_id"} & set(update_fields):
            return super().save(*args, **kwargs)
        validate_space_host(self.space_host)
        with transaction.atomic():
            moves = (
                self.pk is not None
                and Project.objects.select_for_update()
                .filter(pk=self.pk)
                .exclude(space_host=self.space_host, project_id=self.project_id)
                .exists()
            )
            super().save(*args, **kwargs)
            if moves:
                self.revoke_token(by)

    @property
    def default_country_name(self) -> str:
        return country_names().get(self.default_country, self.default_country)

    @property
    def active_credential(self) -> "Credential | None":
        # The token is decrypted only when read (to make a client), so that pages which only
        # ask whether there is one still work when no key fits it.
        return self.credentials.filter(revoked_at__isnull=True).defer("token").first()

    @property
    def has_unreadable_token(self) -> bool:
        """The active token is stored, but no configured key fits it (a key removed too
        early): it must be entered again. Checked without decrypting it."""
        stored = (
            self.credentials.filter(revoked_at__isnull=True)
            # As stored: the field itself would decrypt it.
            .annotate(stored=Cast("token", models.TextField()))
            .values_list("stored", flat=True)
            .first()
        )
        return stored is not None and not is_readable(stored)

    @sensitive_variables("token")
    def replace_token(self, token: str, by) -> "Credential":
        """Store a new token and revoke the old one, erasing its ciphertext."""
        # A with block, not the decorator: a decorator's frame would show the token in
        # error reports.
        with transaction.atomic():
            self.revoke_token(by)
            return self.credentials.create(token=token, token_last4=token[-4:], created_by=by)

    def revoke_token(self, by) -> int:
        """Revoke the active token, erasing its ciphertext; return how many were revoked."""
        return self.credentials.filter(revoked_at__isnull=True).update(
            token=None, revoked_at=timezone.now(), revoked_by=by
        )

    def start_connection_check(self) -> None:
        # While checking, connection_checked_at holds the start, so a check whose task was
        # lost (broker restart, worker killed) can be seen to be over.
        self.record_connection_check(ConnectionStatus.CHECKING)

    def record_connection_check(self, status: ConnectionStatus, detail: str = "") -> None:
        self.connection_status = status
        self.connection_detail = detail[:500]
        self.connection_checked_at = timezone.now()
        self.save(
            update_fields=[
                "connection_status",
                "connection_detail",
                "connection_checked_at",
                "updated_at",
            ]
        )

    @property
    def is_checking_connection(self) -> bool:
        return self.connection_status == ConnectionStatus.CHECKING and not self._is_check_overdue()

    @property
    def is_connection_check_unfinished(self) -> bool:
        """A check was started and recorded no outcome within its time limit."""
        if self.connection_status == ConnectionStatus.CHECKING:
            return self._is_check_overdue()
        # end_stale_connection_checks stores "unchecked" with its reason; a project never
        # checked has no detail.
        return self.connection_status == ConnectionStatus.UNCHECKED and bool(self.connection_detail)

    @property
    def connection_status_label(self) -> str:
        if self.is_connection_check_unfinished:
            return "Check did not finish"
        return self.get_connection_status_display()

    def _is_check_overdue(self) -> bool:
        # A check with no start time began before start_connection_check stamped one, so
        # before the restart that brought this code: its task is gone.
        return (
            self.connection_checked_at is None
            or timezone.now() - self.connection_checked_at > connection_check_time_limit()
        )


class Credential(models.Model):
    """An API token of a project, encrypted at rest. Only the last four characters show."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="credentials")
    # Erased (set to NULL) when the credential is revoked.
    token = EncryptedTextField(null=True)
    token_last4 = models.CharField(max_length=4)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(revoked_at__isnull=True),
                name="one_active_credential_per_project",
            )
        ]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"Token …{self.token_last4} ({state})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class NumberType(models.TextChoices):
    LONGCODE = "longcode", "Long code"
    TOLLFREE = "tollfree", "Toll-free"


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUBMITTING = "submitting", "Submitting"
    IMPORTED = "imported", "Imported"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


LIVE_STATUSES = [ImportStatus.PENDING, ImportStatus.SUBMITTING, ImportStatus.IMPORTED]
UNFINISHED_STATUSES = [ImportStatus.PENDING, ImportStatus.SUBMITTING]


class FailureCategory(models.TextChoices):
    INVALID_INPUT = "invalid_input", "Rejected input"
    DUPLICATE = "duplicate", "Already in the project"
    AUTH = "auth", "Credentials rejected"
    RATE_LIMITED = "rate_limited", "Rate limited"
    UPSTREAM = "upstream", "SignalWire error"
    NETWORK = "network", "Network problem"
    INTERNAL = "internal", "Portal error"
    CONFIGURATION = "configuration", "Configuration error"


# What support staff are told about each failure, and what to do next (PRODUCT.md).
FAILURE_ADVICE = {
    FailureCategory.INVALID_INPUT: "SignalWire refused this number as sent: fix the number "
    "type or capabilities and retry it.",
    FailureCategory.DUPLICATE: "The number is already in this customer's project: nothing to do.",
    FailureCategory.AUTH: "SignalWire refused the project's API token, so the job is paused. "
    "Ask an admin to check the project's token, then resume the job.",
    FailureCategory.RATE_LIMITED: "SignalWire asked us to slow down. Retry it: the portal "
    "waits as long as SignalWire asks.",
    FailureCategory.UPSTREAM: "SignalWire is having trouble. Retry later.",
    FailureCategory.NETWORK: "SignalWire could not be reached. Retry later.",
    FailureCategory.INTERNAL: "The portal failed while sending this number. Tell the portal's "
    "maintainers (the worker's log has the error), then retry it: a retry checks SignalWire "
    "first.",
    FailureCategory.CONFIGURATION: "Nothing was sent: the project or the portal is set up wrong, "
    "so the job is paused. Ask an admin to correct what the message names, then resume the job.",
}
# What a number waiting for its next automatic try says instead: nothing to do yet.
RETRYING_ADVICE = "Nothing to do: it is tried again by itself."
# Failures a plain retry can mend; the others need an edit (invalid input) or nothing.
RETRYABLE_CATEGORIES = [
    FailureCategory.AUTH,
    FailureCategory.RATE_LIMITED,
    FailureCategory.UPSTREAM,
    FailureCategory.NETWORK,
    FailureCategory.INTERNAL,
    FailureCategory.CONFIGURATION,
]


class JobStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    PARTIAL = "partial", "Partly imported"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


def _retrying(prefix: str = "") -> Q:
    """Unfinished numbers that were tried before: waiting for their next try, or in it."""
    return Q(**{f"{prefix}status": ImportStatus.PENDING, f"{prefix}attempts__gt": 0}) | Q(
        **{f"{prefix}status": ImportStatus.SUBMITTING, f"{prefix}attempts__gt": 1}
    )


class ImportJob(models.Model):
    """One submission by one person for one project: one number, a pasted list or a CSV."""

    class Source(models.TextChoices):
        PASTE = "paste", "Pasted list"
        CSV = "csv", "CSV file"
        SINGLE = "single", "One number"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="import_jobs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=10, choices=Source)
    ticket = models.CharField("Ticket reference", max_length=100, blank=True)
    number_type = models.CharField(max_length=10, choices=NumberType)
    capabilities = models.JSONField(default=list)
    # A digest of what was previewed, so a repeated confirm finds the job it already made.
    input_digest = models.CharField(max_length=64, db_index=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=200, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Four eyes (issue 18): a job of more than PORTAL_APPROVAL_THRESHOLD numbers sends nothing
    # until an admin other than its starter approves it. The times are the state; who did it
    # may be deleted later.
    needs_approval = models.BooleanField(default=False)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rejection_reason = models.CharField(max_length=500, blank=True)

    # When the starter was told the job ended (phone_numbers.notifications): set once per end,
    # by a conditional UPDATE, and cleared when a retry makes the job run again.
    ended_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("pause_importjob", "Can pause and resume import jobs"),
            ("approve_importjob", "Can approve and reject large import jobs of others"),
        ]
        indexes = [
            # Beat's look for ended jobs nobody was told of reads only the jobs not yet told.
            models.Index(
                fields=["id"],
                condition=Q(ended_notified_at__isnull=True),
                name="importjob_end_not_notified",
            )
        ]

    def __str__(self) -> str:
        return f"Job {self.pk} for {self.project.name}"

    def get_absolute_url(self) -> str:
        return reverse("phone_numbers:job_detail", args=[self.pk])

    def counts(self) -> dict[str, int]:
        """Number imports by status, every status present, plus `total`, and `retrying`: the
        unfinished ones that were tried before."""
        return ImportJob.counts_of([self.pk])[self.pk]

    @staticmethod
    def counts_of(job_ids: list[int]) -> dict[int, dict[str, int]]:
        """`counts()` of each of these jobs, in one query that reads only their numbers.

        A list shows a page of jobs: counting every job's numbers to show fifty of them read
        a million rows at a million numbers (README, "Benchmarks").
        """
        rows = (
            NumberImport.objects.filter(job__in=job_ids)
            .values("job", "status")
            # Counting the (never null) status, not the ids: the ids are not in the index of
            # the counts, which then answers alone.
            .annotate(n=models.Count("status"), retrying=models.Count("status", filter=_retrying()))
            .order_by()
        )
        counts = {
            job: dict.fromkeys(ImportStatus.values, 0) | {"total": 0, "retrying": 0}
            for job in job_ids
        }
        for row in rows:
            job = counts[row["job"]]
            job[row["status"]] = row["n"]
            job["total"] += row["n"]
            job["retrying"] += row["retrying"]
        return counts

    def status_for(self, counts: dict[str, int]) -> JobStatus:
        unfinished = counts["pending"] + counts["submitting"]
        if unfinished:
            if self.is_awaiting_approval:
                return JobStatus.AWAITING_APPROVAL
            if self.paused_at:
                return JobStatus.PAUSED
            has_started = counts["total"] > counts["pending"] or counts.get("retrying", 0)
            return JobStatus.RUNNING if has_started else JobStatus.QUEUED
        if self.cancelled_at and not counts["imported"]:
            return JobStatus.CANCELLED
        if counts["imported"] == counts["total"]:
            return JobStatus.COMPLETED
        return JobStatus.PARTIAL if counts["imported"] else JobStatus.FAILED

    def status_text(self, counts: dict[str, int]) -> str:
        """The status in words that say what is happening, for the job's badge."""
        status = self.status_for(counts)
        retrying = counts.get("retrying", 0)
        if status == JobStatus.RUNNING and retrying == counts["pending"] + counts["submitting"]:
            return ngettext("Retrying %(count)s number", "Retrying %(count)s numbers", retrying) % {
                "count": f"{retrying:,}"
            }
        if self.cancelled_at and status == JobStatus.PARTIAL:
            return f"Cancelled after {counts['imported']:,} of {counts['total']:,} imported"
        return status.label

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None

    @property
    def is_awaiting_approval(self) -> bool:
        return (
            self.needs_approval
            and self.approved_at is None
            and self.rejected_at is None
            and self.cancelled_at is None
        )

    def may_be_approved_by(self, user) -> bool:
        """Whether `user` may approve or reject this job: an admin who did not start it."""
        return user.has_perm("phone_numbers.approve_importjob") and user.pk != self.created_by_id

    def approve(self, by) -> bool:
        """awaiting approval → approved; False if it no longer awaits approval (approved,
        rejected or cancelled meanwhile) or `by` started it.

        One conditional UPDATE: of approvals and rejections racing for one job, exactly one
        wins. The starter is refused here too, not only by the view.
        """
        approved = (
            ImportJob.objects.filter(AWAITING_APPROVAL, pk=self.pk)
            .exclude(created_by=by)
            .update(approved_at=timezone.now(), approved_by=by)
        )
        self.refresh_from_db(fields=["approved_at", "approved_by"])
        return bool(approved)

    def reject(self, by, reason: str) -> bool:
        """awaiting approval → rejected and cancelled, with the reason; its numbers, none ever
        sent, are cancelled. False as for `approve`."""
        now = timezone.now()
        with transaction.atomic():
            rejected = (
                ImportJob.objects.filter(AWAITING_APPROVAL, pk=self.pk)
                .exclude(created_by=by)
                .update(
                    rejected_at=now,
                    rejected_by=by,
                    rejection_reason=reason[:500],
                    cancelled_at=now,
                )
            )
            if rejected:
                self.numbers.filter(status=ImportStatus.PENDING).update(
                    status=ImportStatus.CANCELLED, next_attempt_at=None, updated_at=now
                )
        self.refresh_from_db(
            fields=["rejected_at", "rejected_by", "rejection_reason", "cancelled_at"]
        )
        return bool(rejected)

    def pause(self, reason: str) -> bool:
        """Stop sending this job's numbers until it is resumed; the first reason is kept.

        True only for the call that paused it: of many failing at once, exactly one.
        """
        paused = ImportJob.objects.filter(pk=self.pk, paused_at__isnull=True).update(
            paused_at=timezone.now(), pause_reason=reason[:200]
        )
        self.refresh_from_db(fields=["paused_at", "pause_reason"])
        return bool(paused)


# A job that waits for its approval: ImportJob.is_awaiting_approval, as a filter.
AWAITING_APPROVAL = Q(
    needs_approval=True,
    approved_at__isnull=True,
    rejected_at__isnull=True,
    cancelled_at__isnull=True,
)

# NumberImport.claim: pending → submitting, on the conditions its docstring gives.
CLAIM_SQL = """
    UPDATE phone_numbers_numberimport
    SET status = %s, claimed_at = %s, updated_at = %s,
        attempts = attempts + 1, attempts_this_round = attempts_this_round + 1
    WHERE id = %s AND status = %s AND updated_at = %s
        AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
        AND NOT EXISTS (
            SELECT 1 FROM phone_numbers_importjob AS job
            WHERE job.id = phone_numbers_numberimport.job_id
                AND (job.paused_at IS NOT NULL OR (job.needs_approval AND job.approved_at IS NULL))
        )
        AND NOT EXISTS (
            SELECT 1 FROM phone_numbers_project AS project
            WHERE project.id = phone_numbers_numberimport.project_id AND NOT project.is_active
        )
        AND (
            needs_lookup
            OR NOT EXISTS (
                SELECT 1 FROM phone_numbers_importjob AS job
                WHERE job.id = phone_numbers_numberimport.job_id
                    AND job.cancelled_at IS NOT NULL
            )
        )
"""


class NumberImport(models.Model):
    """One number inside a job, with its own status, attempts and SignalWire's answer."""

    # Indexed with the id (numberimport_job_rows below), in the order the job page lists them.
    job = models.ForeignKey(
        ImportJob, on_delete=models.CASCADE, related_name="numbers", db_index=False
    )
    # The job's project, repeated so one constraint can span every job of the project.
    # Indexed with the id (numberimport_project_rows below), newest first for a text search.
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="numbers", db_index=False
    )
    number = models.CharField(max_length=32, help_text="E.164")
    input_text = models.CharField(max_length=100, blank=True, help_text="As typed.")
    input_line = models.PositiveIntegerField(null=True, blank=True)
    how_read = models.CharField(max_length=200, blank=True)
    number_type = models.CharField(max_length=10, choices=NumberType)
    capabilities = models.JSONField(default=list)

    status = models.CharField(max_length=12, choices=ImportStatus, default=ImportStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts since the row was last (re)started by a person; bounds automatic retries.
    attempts_this_round = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When a task was last sent for this row, so lost messages can be found and re-sent.
    queued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # An earlier request may have reached SignalWire: look the number up before posting.
    needs_lookup = models.BooleanField(default=False)

    failure_category = models.CharField(max_length=20, choices=FailureCategory, blank=True)
    error_code = models.CharField(max_length=20, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)

    sid = models.CharField(max_length=64, blank=True)
    friendly_name = models.CharField(max_length=100, blank=True)
    response = models.JSONField(null=True, blank=True)
    imported_at = models.DateTimeField(null=True, blank=True)
    # Drift: set by the first completed inventory sync that no longer lists this imported
    # number in its project's Space (released, moved), cleared by one that lists it again.
    missing_from_space_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "number"],
                condition=Q(status__in=["pending", "submitting", "imported"]),
                name="one_live_import_per_number_and_project",
            )
        ]
        indexes = [
            # The job page's rows, oldest first: with the job alone PostgreSQL walks the whole
            # table's ids for a large job's first page (385 ms at 50,000 of a million numbers).
            models.Index(fields=["job", "id"], name="numberimport_job_rows"),
            # A search for a project's name pages its numbers newest first by this index
            # (search.newest_by_text); by the project alone, PostgreSQL read them all (15 ms at
            # 50,000) or walked the whole table's ids down to the project's newest.
            models.Index(fields=["project", "id"], name="numberimport_project_rows"),
            # A job's counts (ImportJob.counts_of) read this index alone, never the table:
            # attempts tells the ones retrying (118 ms of table reads at 50,000 numbers). The
            # job page's rows of one status come from it in their order too: without the id,
            # its fifth page of failed rows read all 3,529 of them from the table (297 ms).
            models.Index(
                fields=["job", "status", "id"],
                include=["attempts"],
                name="numberimport_job_status_rows",
            ),
            models.Index(fields=["status", "next_attempt_at"], name="numberimport_status_due"),
            # queue_pending's two questions, how many of the job's numbers are in flight and
            # which are next, read only the rows they ask about: otherwise the first walks all
            # the job's unfinished rows and the second the primary key of the whole table.
            models.Index(
                fields=["job"],
                condition=Q(status__in=UNFINISHED_STATUSES, queued_at__isnull=False),
                name="numberimport_in_flight",
            ),
            models.Index(
                fields=["job", "id"],
                condition=Q(status=ImportStatus.PENDING, queued_at__isnull=True),
                name="numberimport_ready_to_send",
            ),
            # The numbers list's "Imported, no longer in the Space": the few missing, newest
            # first, without walking a million ids past the ones still there.
            models.Index(
                fields=["id"],
                condition=Q(missing_from_space_since__isnull=False),
                name="numberimport_missing",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.get_status_display()})"

    @property
    def failure_advice(self) -> str:
        if self.status == ImportStatus.PENDING and self.failure_category:
            return RETRYING_ADVICE
        return FAILURE_ADVICE.get(self.failure_category, "")

    def claim(self) -> bool:
        """pending → submitting, when due, its job is not paused nor waiting for (or refused)
        its approval, and its project is active; in a cancelled job only to be looked up.
        False if not this time.

        One conditional UPDATE of this table alone: of tasks racing for one row (a redelivered
        message, a duplicate), exactly one wins. Every condition is in its own WHERE (the job's
        and project's as EXISTS), because PostgreSQL re-checks only that WHERE on a row another
        transaction changed meanwhile; a filter across a join would become "id IN (...)",
        which it does not re-check. It also requires the row to be exactly as this object read
        it (every change of state stamps updated_at), so the new values are set here without
        reading the row again; a row changed meanwhile has a task of its own to come.

        Written in SQL: a worker runs it for every number, and built by the ORM it took 2 ms
        of CPU, twenty times what the statement as written costs (README, Benchmarks).
        """
        now = timezone.now()
        at = connection.ops.adapt_datetimefield_value
        with connection.cursor() as cursor:
            cursor.execute(
                CLAIM_SQL,
                [ImportStatus.SUBMITTING, at(now), at(now)]
                + [self.pk, ImportStatus.PENDING, at(self.updated_at), at(now)],
            )
            claimed = cursor.rowcount
        if claimed:
            self.status = ImportStatus.SUBMITTING
            self.claimed_at = self.updated_at = now
            self.attempts += 1
            self.attempts_this_round += 1
        return bool(claimed)

    def _leave_submitting(self, outcome: str, *, taken_back_too: bool = False, **fields) -> bool:
        """Record the attempt and move on from this object's claim; False if the row was taken
        back (recovery gave it to another task). With `taken_back_too`, the row moves whatever
        became of it since, unless it is imported: SignalWire's answer that it created the
        number is the truth, however late it comes."""
        now = fields["updated_at"] = timezone.now()
        at = connection.ops.adapt_datetimefield_value
        if taken_back_too:
            where, params = "id = %s AND status <> %s", [self.pk, ImportStatus.IMPORTED]
        else:
            where = "id = %s AND status = %s AND claimed_at " + (
                "IS NULL" if self.claimed_at is None else "= %s"
            )
            params = [self.pk, ImportStatus.SUBMITTING]
            if self.claimed_at is not None:
                params.append(at(self.claimed_at))
        # In SQL, as the claim: built by the ORM, these two statements took 1.5 ms of a
        # worker's CPU for every number.
        assignments, values = [], []
        for name, value in fields.items():
            field = NumberImport._meta.get_field(name)
            assignments.append(f"{field.column} = %s")
            values.append(field.get_db_prep_save(value, connection))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                # Bandit B608 is a false alarm: the columns are the model's own and the
                # values query parameters.
                f"UPDATE phone_numbers_numberimport SET {', '.join(assignments)} WHERE {where}",  # nosec B608
                values + params,
            )
            moved = cursor.rowcount
            if moved:
                cursor.execute(
                    "INSERT INTO phone_numbers_importattempt (number_import_id, started_at,"
                    " finished_at, outcome, http_status, error_code, message)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        self.pk,
                        at(self.claimed_at or now),
                        at(now),
                        outcome,
                        fields.get("http_status"),
                        fields.get("error_code", ""),
                        fields.get("error_message", ""),
                    ],
                )
        if moved:
            # Plain values, as written: no need to read the row back.
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(moved)

    def mark_imported(self, sid: str, friendly_name: str, response: dict, outcome: str) -> bool:
        """Imported, from this claim or, if the row was taken back meanwhile, from where it is."""
        fields = dict(
            status=ImportStatus.IMPORTED,
            sid=sid,
            friendly_name=friendly_name[:100],
            response=response,
            imported_at=timezone.now(),
            needs_lookup=False,
            next_attempt_at=None,
            failure_category="",
            error_code="",
            error_message="",
            http_status=None,
        )
        if self._leave_submitting(outcome, **fields):
            return True
        try:
            return self._leave_submitting(f"{outcome} (late answer)", taken_back_too=True, **fields)
        except IntegrityError:
            # The number went live in another job of the project meanwhile: that row stands.
            logger.warning("A late answer for number import %s found it live elsewhere", self.pk)
            return False

    def mark_cancelled(self, outcome: str) -> bool:
        """Cancelled after a lookup found the number absent from the Space."""
        return self._leave_submitting(
            outcome, status=ImportStatus.CANCELLED, needs_lookup=False, next_attempt_at=None
        )

    def cancel_unsent(self) -> bool:
        """pending → cancelled, for a number of a cancelled job that surely never reached
        SignalWire (no earlier request may have)."""
        cancelled = NumberImport.objects.filter(
            pk=self.pk, status=ImportStatus.PENDING, needs_lookup=False
        ).update(status=ImportStatus.CANCELLED, next_attempt_at=None, updated_at=timezone.now())
        if cancelled:
            # The task asks whether the number finished, to tell of its job's end.
            self.status = ImportStatus.CANCELLED
        return bool(cancelled)

    def release(self) -> None:
        """Mark the row's task as gone without claiming it (its job is paused or its project
        refused), so that queueing sends it again as soon as it may go."""
        NumberImport.objects.filter(pk=self.pk, status=ImportStatus.PENDING).update(queued_at=None)

    def mark_failed(
        self,
        category: "FailureCategory",
        message: str,
        code: str = "",
        http_status: int | None = None,
        *,
        needs_lookup: bool = False,
    ) -> bool:
        return self._leave_submitting(
            f"failed: {category.label}",
            status=ImportStatus.FAILED,
            failure_category=category,
            error_message=message[:500],
            error_code=code[:20],
            http_status=http_status,
            needs_lookup=needs_lookup,
            next_attempt_at=None,
        )

    def schedule_retry(
        self,
        delay_seconds: float,
        category: "FailureCategory",
        message: str,
        code: str,
        http_status: int | None,
        needs_lookup: bool,
        *,
        counts_as_attempt: bool = True,
    ) -> bool:
        """Back to pending, due after the delay; the error stays visible meanwhile.

        Without `counts_as_attempt` (SignalWire asked us to slow down), the attempt is given
        back to the row's budget: waiting is not failing.
        """
        extra = {} if counts_as_attempt else {"attempts_this_round": self.attempts_this_round - 1}
        return self._leave_submitting(
            f"{category.label}: retrying",
            **extra,
            status=ImportStatus.PENDING,
            next_attempt_at=timezone.now() + timedelta(seconds=delay_seconds),
            queued_at=timezone.now(),
            failure_category=category,
            error_message=message[:500],
            error_code=code[:20],
            http_status=http_status,
            needs_lookup=needs_lookup,
        )

    def hand_back(self, delay_seconds: float | None = None) -> bool:
        """Give the claimed row back unsent, no attempt counted: due after the delay, for the
        task the caller sends (its Space is busy), or with no delay and no task (its job has
        just been paused), to be queued again on resume."""
        now = timezone.now()
        return bool(
            NumberImport.objects.filter(
                pk=self.pk, status=ImportStatus.SUBMITTING, claimed_at=self.claimed_at
            ).update(
                status=ImportStatus.PENDING,
                attempts=models.F("attempts") - 1,
                attempts_this_round=models.F("attempts_this_round") - 1,
                # A lookup made in this attempt may have shown the number absent.
                needs_lookup=self.needs_lookup,
                next_attempt_at=None
                if delay_seconds is None
                else now + timedelta(seconds=delay_seconds),
                queued_at=None if delay_seconds is None else now,
                updated_at=now,
            )
        )

    @property
    def is_finished(self) -> bool:
        return self.status not in UNFINISHED_STATUSES


class EmailPreference(models.Model):
    """What emails a person wants; a person with no row gets them all."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="email_preference",
    )
    wants_job_emails = models.BooleanField(
        "Email me about import jobs",
        default=True,
        help_text="When a job I started ends, when a job pauses because SignalWire refused a "
        "project's token, and (admins) when a job waits for approval.",
    )

    def __str__(self) -> str:
        return f"Email preferences of {self.user}"


class NumberSearchRow(models.Model):
    """A narrow copy of each number import's number, status and project, for digit searches.

    PostgreSQL triggers (migration 0006) keep it equal to the number imports, so nothing in
    Python writes it; on SQLite it stays empty and searches read the number imports. A
    row is about 60 bytes against 300 for a number import, so a search that must read
    thousands of matches reads few, cached pages.
    """

    number_import = models.OneToOneField(
        NumberImport, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    number = models.CharField(max_length=32)
    status = models.CharField(max_length=12, choices=ImportStatus)

    def __str__(self) -> str:
        return f"{self.number} ({self.status})"


class ImportAttempt(models.Model):
    """One request (or lookup) made to SignalWire for a number import, and what came of it."""

    number_import = models.ForeignKey(
        NumberImport, on_delete=models.CASCADE, related_name="attempt_log"
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=40)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=20, blank=True)
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["started_at", "pk"]

    def __str__(self) -> str:
        return f"{self.outcome} at {self.started_at:%Y-%m-%d %H:%M:%S}"


def inventory_sync_stale_after() -> timedelta:
    """How long a running sync may go without reading a page before it is taken as lost."""
    return timedelta(seconds=settings.PORTAL_INVENTORY_SYNC_STALE_SECONDS)


def stale_before() -> datetime:
    """A running sync that last read a page before this time is stale."""
    return timezone.now() - inventory_sync_stale_after()


class InventorySyncQuerySet(models.QuerySet):
    def running(self) -> "InventorySyncQuerySet":
        return self.filter(status=InventorySync.Status.RUNNING)

    def stale(self) -> "InventorySyncQuerySet":
        """Running syncs that read no page for longer than a sync can wait for one: their
        worker was killed, or their message lost."""
        return self.running().filter(progressed_at__lt=stale_before())


class InventorySync(models.Model):
    """One reading of a project's whole Space inventory from SignalWire's list of numbers.

    The inventory (SpaceNumber) changes only when a sync completes, so a sync that dies
    part-way leaves the previous inventory as the current truth and itself `failed` or
    still `running` past its time.
    """

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Started by an admin"
        AFTER_JOB = "after_job", "After a job ended"
        NIGHTLY = "nightly", "Nightly"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="inventory_syncs")
    trigger = models.CharField(max_length=10, choices=Trigger)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    pages_read = models.PositiveIntegerField(default=0)
    numbers_listed = models.PositiveIntegerField(default=0)
    # What the completed sync changed in the inventory.
    added = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    error_message = models.CharField(max_length=500, blank=True)
    # When a worker began reading (started_at is when it was asked for), and the run that
    # reads: a redelivered task takes over only a sync nobody reads, or one gone stale.
    claimed_at = models.DateTimeField(null=True, blank=True)
    run_id = models.CharField(max_length=32, blank=True)
    # Each page read moves this on; a running sync it stopped moving for is stale (see stale()).
    progressed_at = models.DateTimeField(default=timezone.now)

    objects = InventorySyncQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [
            models.Index(fields=["project", "-started_at"], name="inventorysync_project_idx")
        ]
        constraints = [
            # Two syncs of one project at once would swap two readings into one inventory.
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status="running"),
                name="one_running_inventory_sync_per_project",
            )
        ]

    def __str__(self) -> str:
        return f"Sync of {self.project_id} at {self.started_at:%Y-%m-%d %H:%M:%S} ({self.status})"

    @classmethod
    def start(cls, project: Project, trigger: str, by=None) -> "InventorySync | None":
        """A new running sync of the project, or None when one is already running (a stale
        one too: inventory.request_sync ends those first, and audits them)."""
        try:
            with transaction.atomic():
                return cls.objects.create(project=project, trigger=trigger, started_by=by)
        except IntegrityError:
            return None

    @classmethod
    def end_stale(cls, project_id: int | None = None) -> list["InventorySync"]:
        """Mark stale running syncs failed, and return them (for the audit log)."""
        stale = cls.objects.stale()
        if project_id is not None:
            stale = stale.filter(project_id=project_id)
        ended = []
        for sync in stale:
            minutes = settings.PORTAL_INVENTORY_SYNC_STALE_SECONDS // 60
            if sync.mark_failed(
                f"Interrupted: no page was read for {minutes} minutes (the worker was stopped "
                "or its task lost). The inventory is the one of the last completed sync.",
                only_if_stale=True,
            ):
                ended.append(sync)
        return ended

    def claim(self) -> str | None:
        """Take this sync to read it; a token for this run, or None if another run reads it.

        A sync nobody claimed, or one whose run went stale (its worker killed, the task
        redelivered), can be claimed; the new run starts from the first page.
        """
        token = uuid.uuid4().hex
        now = timezone.now()
        with transaction.atomic():
            claimed = (
                InventorySync.objects.running()
                .filter(pk=self.pk)
                .filter(Q(run_id="") | Q(progressed_at__lt=stale_before()))
                .update(
                    run_id=token,
                    claimed_at=now,
                    progressed_at=now,
                    pages_read=0,
                    numbers_listed=0,
                )
            )
            if not claimed:
                return None
            # What an earlier run staged goes: a run stages a page only in the transaction
            # that checks its token on this (now locked) row, so none of it comes after.
            StagedSpaceNumber.objects.filter(sync=self).delete()
        self.refresh_from_db()
        return token

    def record_page(self, token: str, numbers: int) -> bool:
        """One more page read by the run holding `token`; False if that run lost the sync."""
        updated = (
            InventorySync.objects.running()
            .filter(pk=self.pk, run_id=token)
            .update(
                pages_read=models.F("pages_read") + 1,
                numbers_listed=models.F("numbers_listed") + numbers,
                progressed_at=timezone.now(),
            )
        )
        return bool(updated)

    def mark_failed(
        self, message: str, *, token: str | None = None, only_if_stale: bool = False
    ) -> bool:
        """Running → failed with `message`; only for the run holding `token` when given."""
        running = InventorySync.objects.running().filter(pk=self.pk)
        if token is not None:
            running = running.filter(run_id=token)
        if only_if_stale:
            running = running.filter(progressed_at__lt=stale_before())
        updated = running.update(
            status=InventorySync.Status.FAILED,
            finished_at=timezone.now(),
            error_message=message[:500],
        )
        if updated:
            self.refresh_from_db()
        return bool(updated)

    @property
    def is_stale(self) -> bool:
        return (
            self.status == InventorySync.Status.RUNNING
            and timezone.now() - self.progressed_at > inventory_sync_stale_after()
        )

    @property
    def status_label(self) -> str:
        """The status in words; a running sync that stopped reading is shown as interrupted
        before recovery marks it failed."""
        return "Interrupted" if self.is_stale else self.get_status_display()

    @property
    def duration_seconds(self) -> float | None:
        duration = self.duration
        return None if duration is None else duration.total_seconds()

    @property
    def duration(self) -> timedelta | None:
        """How long the reading and the swap took (not the wait in the queue before them)."""
        if self.finished_at is None:
            return None
        return self.finished_at - (self.claimed_at or self.started_at)


class StagedSpaceNumber(models.Model):
    """A number as a running sync read it from one page: held apart until the last page is
    read, then swapped into SpaceNumber in one transaction, and deleted."""

    sync = models.ForeignKey(InventorySync, on_delete=models.CASCADE, related_name="+")
    sid = models.CharField(max_length=64)
    number = models.CharField(max_length=32)
    friendly_name = models.CharField(max_length=100, blank=True)
    number_type = models.CharField(max_length=10, choices=NumberType, blank=True)
    capabilities = models.JSONField(default=list)
    origin = models.CharField(max_length=20, blank=True)
    date_created = models.DateTimeField(null=True, blank=True)
    date_updated = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A number listed twice (the list shifted under the pages) is kept once.
            models.UniqueConstraint(fields=["sync", "sid"], name="stagedspacenumber_sync_sid")
        ]
        indexes = [models.Index(fields=["sync", "number"], name="stagedspacenumber_number")]

    def __str__(self) -> str:
        return f"{self.number} read by sync {self.sync_id}"


class SpaceNumber(models.Model):
    """A number in a project's Space, as the last completed inventory sync listed it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="space_numbers")
    sid = models.CharField(max_length=64)
    number = models.CharField(max_length=32, help_text="E.164")
    friendly_name = models.CharField(max_length=100, blank=True)
    # SignalWire's record has no type; only toll-free numbers carry `verification_status`.
    number_type = models.CharField(max_length=10, choices=NumberType, blank=True)
    capabilities = models.JSONField(default=list)
    origin = models.CharField(max_length=20, blank=True)
    date_created = models.DateTimeField(null=True, blank=True)
    date_updated = models.DateTimeField(null=True, blank=True)
    # The portal's import that put this number in the Space; null: it came another way.
    number_import = models.ForeignKey(
        NumberImport,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="space_numbers",
    )
    # Set by the sync: SignalWire's capabilities or type differ from what the import recorded.
    differs_from_import = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "sid"], name="spacenumber_project_sid")
        ]
        indexes = [
            models.Index(fields=["project", "number"], name="spacenumber_project_number"),
            models.Index(fields=["number"], name="spacenumber_number"),
            # The numbers list's numbers only in a Space, newest first, and its "Imported,
            # SignalWire's record differs"; PostgreSQL's search indexes are migration 0019's.
            models.Index(
                fields=["id"],
                condition=Q(number_import__isnull=True),
                name="spacenumber_not_imported",
            ),
            models.Index(
                fields=["number_import"],
                condition=Q(differs_from_import=True),
                name="spacenumber_differs",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} in {self.project_id}"


class SpaceNumberSearchRow(models.Model):
    """A narrow copy of each number only in a Space (a SpaceNumber without an import of the
    portal's): its number and project, for digit searches, as NumberSearchRow is for imports.

    PostgreSQL triggers (migration 0020) keep it equal to those SpaceNumber rows whatever
    writes them, deletes included, so nothing in Python writes it and neither side holds a
    constraint on the other; on SQLite it stays empty and searches read SpaceNumber. About 60
    bytes a row against 250: a search that must read thousands of matches reads a quarter of
    the pages.
    """

    space_number = models.OneToOneField(
        SpaceNumber,
        on_delete=models.DO_NOTHING,
        primary_key=True,
        related_name="+",
        db_constraint=False,
    )
    project = models.ForeignKey(
        Project, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    number = models.CharField(max_length=32)

    def __str__(self) -> str:
        return self.number


class RateLimitBucket(models.Model):
    """The request schedule of one Space, shared by every worker (see rate_limit.py)."""

    space_host = models.CharField(max_length=253, primary_key=True)
    # Generic cell rate algorithm: the earliest time the next request may be sent.
    next_send_at = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return self.space_host


class AuditAction(models.TextChoices):
    LOGIN = "login", "Logged in"
    LOGIN_FAILED = "login_failed", "Login failed"
    LOCKED_OUT = "locked_out", "Locked out (too many failed logins)"
    LOGOUT = "logout", "Logged out"
    PROJECT_CREATED = "project_created", "Project created"
    PROJECT_CHANGED = "project_changed", "Project changed"
    PROJECT_DEACTIVATED = "project_deactivated", "Project deactivated"
    PROJECT_REACTIVATED = "project_reactivated", "Project reactivated"
    CREDENTIAL_ADDED = "credential_added", "API token added"
    CREDENTIAL_REPLACED = "credential_replaced", "API token replaced (old one revoked)"
    CONNECTION_CHECKED = "connection_checked", "Connection check started"
    JOB_PREVIEWED = "job_previewed", "Import previewed"
    JOB_CONFIRMED = "job_confirmed", "Import confirmed"
    JOB_PAUSED = "job_paused", "Job paused"
    JOB_RESUMED = "job_resumed", "Job resumed"
    JOB_CANCELLED = "job_cancelled", "Job cancelled"
    JOB_APPROVAL_REQUESTED = "job_approval_requested", "Approval requested (large job)"
    JOB_APPROVED = "job_approved", "Job approved"
    JOB_REJECTED = "job_rejected", "Job rejected"
    JOB_RETRIED = "job_retried", "Failed numbers retried"
    NUMBER_RETRIED = "number_retried", "Number edited and retried"
    JOB_EXPORTED = "job_exported", "Job exported (CSV)"
    NUMBERS_EXPORTED = "numbers_exported", "Numbers exported (CSV)"
    AUDIT_EXPORTED = "audit_exported", "Audit log exported (CSV)"
    USER_CREATED = "user_created", "User created"
    USER_CHANGED = "user_changed", "User changed"
    USER_DELETED = "user_deleted", "User deleted"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    GROUP_CREATED = "group_created", "Group created"
    GROUP_CHANGED = "group_changed", "Group changed"
    GROUP_DELETED = "group_deleted", "Group deleted"
    LOCKOUT_LIFTED = "lockout_lifted", "Login lockout lifted"
    INVENTORY_SYNC_REQUESTED = "inventory_sync_requested", "Space inventory sync requested"
    INVENTORY_SYNCED = "inventory_synced", "Space inventory synced"
    INVENTORY_SYNC_FAILED = "inventory_sync_failed", "Space inventory sync failed"


class AuditEntryQuerySet(models.QuerySet):
    # Append-only: bulk changes are refused as well as single ones.
    def update(self, **kwargs) -> int:
        raise PermissionError("Audit entries cannot be changed.")

    def delete(self):
        raise PermissionError("Audit entries cannot be deleted.")


class AuditEntry(models.Model):
    """Who did what, when and from where. Written once, never changed or deleted."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The database refuses to change an entry (migration 0009), so deleting a user must not
    # touch their entries: no constraint and no SET_NULL; `username` keeps who it was.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    # Kept as text: the user may be deleted later, and a failed login names no real user.
    username = models.CharField(max_length=150, blank=True, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=32, choices=AuditAction, db_index=True)
    # Projects and jobs are never deleted; one with a history says so rather than rewrite it.
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    job = models.ForeignKey(
        ImportJob, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    target = models.CharField(max_length=200, blank=True)
    # Field name → {"old": ..., "new": ...}, or counts; never a token.
    changes = models.JSONField(default=dict, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.username or 'someone'}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise PermissionError("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit entries cannot be deleted.")

    def change_lines(self) -> list[tuple[str, str]]:
        """The changes as (name, "old → new" or value) pairs, for the audit page."""
        lines = []
        for name, value in self.changes.items():
            if isinstance(value, dict) and set(value) == {"old", "new"}:
                lines.append((name, f"{_shown(value['old'])} → {_shown(value['new'])}"))
            else:
                lines.append((name, _shown(value)))
        return lines


def _shown(value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {item}" for key, item in value.items()) or "—"
    return str(value)


class LoginThrottle(models.Model):
    """Failed logins for one username, from any address: what slows down a spread-out guesser.

    Kept for any username tried, existing or not, so that the slowdown tells nobody which
    usernames exist. Forgotten PORTAL_LOGIN_SLOWDOWN_FORGET_HOURS after the last failure.
    """

    username = models.CharField(max_length=150, unique=True)
    failures = models.PositiveIntegerField(default=0)
    # The last failure, or the last attempt that took its turn during the slowdown.
    last_attempt_at = models.DateTimeField(db_index=True)

    class Meta:
        permissions = [("lift_lockout", "Can lift login lockouts and slowdowns")]

    def __str__(self) -> str:
        return self.username

    def slowed_until(self) -> datetime | None:
        """Until when attempts for this username are refused (from an unknown browser): the
        last attempt plus a delay that doubles with each failure past the threshold."""
        excess = self.failures - settings.PORTAL_LOGIN_SLOWDOWN_AFTER
        if excess < 0:
            return None
        # Doubling from the first delay; the exponent is bounded so the number stays small.
        delay = min(
            timedelta(seconds=settings.PORTAL_LOGIN_SLOWDOWN_FIRST_SECONDS) * 2 ** min(excess, 20),
            timedelta(minutes=settings.PORTAL_LOGIN_SLOWDOWN_MAX_MINUTES),
        )
        return self.last_attempt_at + delay


class AuditTally(models.Model):
    """Login events of one kind, address and username not yet written to the audit log.

    The audit log takes at most one failed login (or lockout) row per address and username a
    minute; the rest are counted here, and the count is written with the next row or, once
    the minute is over, by beat. Rows here change and are deleted: the audit log never is.
    """

    action = models.CharField(max_length=32, choices=AuditAction)
    username = models.CharField(max_length=150, blank=True)
    # Text, "" for no address: a NULL would make the unique constraint below ineffective.
    ip_address = models.CharField(max_length=45, blank=True)
    window_started_at = models.DateTimeField(db_index=True)
    not_written = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["action", "username", "ip_address"], name="audit_tally_one_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.username}@{self.ip_address}: {self.not_written}"

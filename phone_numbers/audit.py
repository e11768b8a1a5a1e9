"""The audit trail: one function records who did what, from where; receivers add the logins.

The client's address is REMOTE_ADDR. Behind a proxy that is the proxy's own address, so
X-Forwarded-For is read only when REMOTE_ADDR is one of PORTAL_TRUSTED_PROXIES, and then the
rightmost address the trusted proxies did not add is taken (the leftmost ones are whatever the
client chose to send). django-axes uses the same address for its lockout of a username at
an address.
"""

import ipaddress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models import Count, F
from django.dispatch import receiver
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone

from phone_numbers.importing import Preview
from phone_numbers.models import (
    RETRYABLE_CATEGORIES,
    AuditAction,
    AuditEntry,
    AuditTally,
    ImportJob,
    ImportStatus,
    InventorySync,
    NumberImport,
    Project,
)

# Form fields whose values never go into the trail; their change is named, nothing more.
# Bandit B105 is a false alarm: the words written instead of the token, not a password.
SECRET_FIELDS = {"token": "token replaced"}  # nosec B105


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's IP address (see the module's docstring for proxies)."""
    if request is None:
        return None
    address = _valid_ip(request.META.get("REMOTE_ADDR", ""))
    trusted = set(settings.PORTAL_TRUSTED_PROXIES)
    if address is None or address not in trusted:
        return address
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([part.strip() for part in forwarded.split(",")]):
        hop_address = _valid_ip(hop)
        if hop_address is None:
            # A malformed hop was written by the client: stop trusting the header there.
            return address
        if hop_address not in trusted:
            return hop_address
    return address


def _valid_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


# The request being served, for receivers of model signals, which are given none (see
# phone_numbers/accounts.py); None outside a request, e.g. in a shell or a task.
_current_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


def current_request() -> HttpRequest | None:
    return _current_request.get()


def remember_request(get_response):
    """Middleware: makes the request known to current_request() while it is served."""

    def middleware(request: HttpRequest):
        token = _current_request.set(request)
        try:
            return get_response(request)
        finally:
            _current_request.reset(token)

    return middleware


def record(
    request: HttpRequest | None,
    action: AuditAction,
    *,
    project: Project | None = None,
    job: ImportJob | None = None,
    target: str = "",
    changes: dict | None = None,
    username: str = "",
) -> AuditEntry:
    """Append one entry for what the request's user did."""
    user = getattr(request, "user", None)
    if user is not None and not user.is_authenticated:
        user = None
    if job is not None:
        project = project or job.project
        target = target or f"Job {job.pk}"
    elif project is not None:
        target = target or project.name
    return AuditEntry.objects.create(
        user=user,
        username=(username or (user.get_username() if user else ""))[:150],
        ip_address=client_ip(request),
        action=action,
        project=project,
        job=job,
        target=target[:200],
        changes=changes or {},
    )


def _plain(value: object) -> object:
    """A value as JSON can hold it."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, UUID | date | datetime):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value)


def form_changes(form: ModelForm) -> dict:
    """Changed fields → {"old", "new"}; a secret field only says that it changed."""
    changes: dict = {}
    for name in form.changed_data:
        if name in SECRET_FIELDS:
            changes[name] = SECRET_FIELDS[name]
        else:
            changes[name] = {
                "old": _plain(form.initial.get(name)),
                "new": _plain(form.cleaned_data.get(name)),
            }
    return changes


def record_project_saved(
    request: HttpRequest, form: ModelForm, project: Project, *, is_new: bool
) -> None:
    """A saved project form: the project created or changed, and a token added or replaced."""
    changes = form_changes(form)
    if is_new and "token" in changes:
        # A new project's token is its first: nothing was replaced. (Bandit B105: words.)
        changes["token"] = "token added"  # nosec B105
    if is_new or set(changes) - set(SECRET_FIELDS):
        action = AuditAction.PROJECT_CREATED if is_new else AuditAction.PROJECT_CHANGED
        record(request, action, project=project, changes=changes)
    if form.cleaned_data.get("token"):
        # Every earlier credential was revoked by a token save: more than one means replaced.
        replaced = project.credentials.count() > 1
        record(
            request,
            AuditAction.CREDENTIAL_REPLACED if replaced else AuditAction.CREDENTIAL_ADDED,
            project=project,
            changes={"token": SECRET_FIELDS["token"] if replaced else "token added"},
        )


def record_preview(
    request: HttpRequest, project: Project, preview: Preview, digest: str
) -> AuditEntry:
    """A preview: how many lines, and the digest that its confirmed job carries too."""
    return record(
        request,
        AuditAction.JOB_PREVIEWED,
        project=project,
        target=f"{len(preview.rows)} line(s)",
        changes={
            "lines": len(preview.rows),
            "importable": len(preview.importable),
            "rejected": preview.rejected_count,
            "input_digest": digest[:12],
        },
    )


def record_job_confirmed(request: HttpRequest, job: ImportJob) -> AuditEntry | None:
    """The job's "Import confirmed", once: a double click confirms the same job twice; and
    for a job that must wait for its approval, "Approval requested" with its size.

    The job's row lock makes a second confirm wait until the first one's entry is committed,
    so it sees that entry and writes none.
    """
    with transaction.atomic():
        ImportJob.objects.select_for_update().get(pk=job.pk)
        if AuditEntry.objects.filter(job=job, action=AuditAction.JOB_CONFIRMED).exists():
            return None
        confirmed = record(request, AuditAction.JOB_CONFIRMED, job=job)
        if job.needs_approval:
            record(
                request,
                AuditAction.JOB_APPROVAL_REQUESTED,
                job=job,
                changes={
                    "numbers": job.numbers.count(),
                    "threshold": settings.PORTAL_APPROVAL_THRESHOLD,
                },
            )
        return confirmed


def record_number_retry(
    request: HttpRequest, number_import: NumberImport, corrected: dict
) -> AuditEntry:
    """A failed number retried, with its type and capabilities as they were and as corrected."""
    changes = {
        name: {"old": getattr(number_import, name), "new": corrected[name]}
        for name in ("number_type", "capabilities")
        if getattr(number_import, name) != corrected[name]
    }
    changes["last_error"] = number_import.error_message
    return record(
        request,
        AuditAction.NUMBER_RETRIED,
        job=number_import.job,
        target=f"{number_import.number} (job {number_import.job_id})",
        changes=changes,
    )


def record_inventory_sync(sync: InventorySync, result: object | None = None) -> AuditEntry:
    """A sync that ended: completed, with what it changed (`result`, an inventory.SyncResult),
    or failed, with why. By whoever asked for it, or by the portal (nightly, after a job)."""
    changes: dict = {
        "trigger": sync.trigger,
        "pages_read": sync.pages_read,
    }
    if sync.status == InventorySync.Status.COMPLETED:
        action = AuditAction.INVENTORY_SYNCED
        changes |= {
            "numbers_listed": sync.numbers_listed,
            "added": sync.added,
            "removed": sync.removed,
            "changed": sync.changed,
        }
        if result is not None:
            changes |= {
                "marked_missing": result.marked_missing,
                "found_again": result.found_again,
            }
    else:
        action = AuditAction.INVENTORY_SYNC_FAILED
        changes["error"] = sync.error_message
    by = sync.started_by
    return AuditEntry.objects.create(
        user=by,
        username=by.get_username() if by else "",
        action=action,
        project=sync.project,
        target=f"Inventory sync {sync.pk}",
        changes=changes,
    )


@dataclass(frozen=True)
class StoryEvent:
    """One line of a number's story: when, who, what."""

    time: datetime
    who: str
    what: str
    detail: str = ""
    job: ImportJob | None = None


# Job-wide actions that may belong to one number's story (see number_story).
_JOB_ACTIONS = [
    AuditAction.NUMBER_RETRIED,
    AuditAction.JOB_RETRIED,
    AuditAction.JOB_PAUSED,
    AuditAction.JOB_RESUMED,
    AuditAction.JOB_CANCELLED,
    AuditAction.JOB_APPROVED,
    AuditAction.JOB_REJECTED,
]
_RETRYABLE_FAILURES = {f"failed: {category.label}" for category in RETRYABLE_CATEGORIES}
# What the portal writes for an attempt after which the number waits for another one.
_STILL_TRYING = ": retrying"


def number_story(number_import: NumberImport) -> list[StoryEvent]:
    """Who did what to this number, oldest first: its submission, each attempt, and the
    people's actions that touched it. For anyone who can see the number: Support cannot
    open the audit log.

    A job-wide action is told when it touched this number, as its attempts show: a retry of
    the job's failed numbers when the number's last attempt before it was a failure a retry
    mends; a pause, resume, cancel, approval or rejection while the number was still waiting
    to be imported.
    """
    job = number_import.job
    attempts = list(number_import.attempt_log.order_by("finished_at", "pk"))
    events = [
        StoryEvent(
            number_import.created_at,
            job.created_by.get_username() if job.created_by else "—",
            f"Submitted in job {job.pk}",
            f"ticket {job.ticket}" if job.ticket else "",
            job=job,
        )
    ]
    for count, attempt in enumerate(attempts, start=1):
        detail = " ".join(
            part
            for part in (
                f"HTTP {attempt.http_status}" if attempt.http_status else "",
                attempt.message,
            )
            if part
        )
        events.append(
            StoryEvent(
                attempt.finished_at, "the portal", f"Attempt {count}: {attempt.outcome}", detail
            )
        )
    entries = AuditEntry.objects.filter(
        job=job, action__in=_JOB_ACTIONS, created_at__gte=number_import.created_at
    ).order_by("pk")
    for entry in entries:
        last = next(
            (a.outcome for a in reversed(attempts) if a.finished_at <= entry.created_at), None
        )
        is_waiting = last is None or last.endswith(_STILL_TRYING)
        if entry.action == AuditAction.NUMBER_RETRIED:
            touched = entry.target == f"{number_import.number} (job {job.pk})"
            detail = "; ".join(
                f"{name}: {line}" for name, line in entry.change_lines() if name != "last_error"
            )
        elif entry.action == AuditAction.JOB_RETRIED:
            touched, detail = last in _RETRYABLE_FAILURES, "the job's failed numbers, this one too"
        else:
            touched, detail = is_waiting, "the whole job"
        if touched:
            events.append(
                StoryEvent(
                    entry.created_at, entry.username or "—", entry.get_action_display(), detail
                )
            )
    return sorted(events, key=lambda event: event.time)


def failure_counts(job: ImportJob) -> dict[str, int]:
    """The job's failed numbers by failure category, for the trail of a retry."""
    rows = (
        job.numbers.filter(status=ImportStatus.FAILED)
        .values_list("failure_category")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {category or "unknown": n for category, n in rows}


@receiver(user_logged_in, dispatch_uid="audit_login")
def _logged_in(sender, request, user, **kwargs) -> None:
    record(request, AuditAction.LOGIN, username=user.get_username())


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _logged_out(sender, request, user, **kwargs) -> None:
    # `user` is None when nobody was logged in.
    record(request, AuditAction.LOGOUT, username=user.get_username() if user else "")


# Failed logins and lockouts are written at most once per address and username in this time;
# the others are counted, and the count goes with the next row (see AuditTally).
LOGIN_EVENT_WINDOW = timedelta(minutes=1)
NOT_WRITTEN = "earlier_not_written"
# The target of a row that only carries such a count (no event of its own).
COUNT_ONLY = "count only: events held back"


def record_login_event(
    request: HttpRequest | None, action: AuditAction, username: str
) -> AuditEntry | None:
    """A failed login or a lockout, unless one for the same address and username was written
    within LOGIN_EVENT_WINDOW: then it is only counted, and the next row carries the count."""
    username = username[:150]
    now = timezone.now()
    with transaction.atomic():
        tally, created = AuditTally.objects.select_for_update().get_or_create(
            action=action,
            username=username,
            ip_address=client_ip(request) or "",
            defaults={"window_started_at": now},
        )
        if not created and now < tally.window_started_at + LOGIN_EVENT_WINDOW:
            tally.not_written = F("not_written") + 1
            tally.save(update_fields=["not_written"])
            return None
        earlier = tally.not_written
        tally.window_started_at = now
        tally.not_written = 0
        tally.save(update_fields=["window_started_at", "not_written"])
        return record(
            request, action, username=username, changes={NOT_WRITTEN: earlier} if earlier else None
        )


def write_held_back_login_events() -> None:
    """Counts of login events held back in a window that is over, as rows (beat, each minute):
    without them a burst that then stops would never reach the audit log."""
    with transaction.atomic():
        tallies = AuditTally.objects.select_for_update().filter(
            window_started_at__lte=timezone.now() - LOGIN_EVENT_WINDOW
        )
        for tally in tallies:
            if tally.not_written:
                AuditEntry.objects.create(
                    username=tally.username,
                    ip_address=tally.ip_address or None,
                    action=tally.action,
                    target=COUNT_ONLY,
                    changes={NOT_WRITTEN: tally.not_written},
                )
            tally.delete()


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    # A refused attempt (logins.LoginThrottleHandler marks it) checked no password: the
    # lockout's own row records it.
    if getattr(request, "login_refused", False):
        return
    # Django has already masked the password in `credentials`; only the username is kept.
    record_login_event(request, AuditAction.LOGIN_FAILED, str(credentials.get("username", "")))


@receiver(user_locked_out, dispatch_uid="audit_locked_out")
def _locked_out(sender, request, username=None, ip_address=None, **kwargs) -> None:
    record_login_event(request, AuditAction.LOCKED_OUT, str(username or ""))

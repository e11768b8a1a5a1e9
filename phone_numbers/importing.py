"""Importing numbers: preview, start a job, import one number, retry, cancel, pause, recover.

The one module that uses both the models and the SignalWire client. Celery tasks call in here
with primary keys; every step is safe to repeat, because a message may be delivered twice, a
worker may die mid-request, and an earlier request may have reached SignalWire before it
timed out.
"""

import dataclasses
import functools
import hashlib
import logging
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Q, QuerySet, When
from django.utils import timezone

from phone_numbers import notifications
from phone_numbers.crypto import DecryptionFailed
from phone_numbers.models import (
    RETRYABLE_CATEGORIES,
    UNFINISHED_STATUSES,
    FailureCategory,
    ImportJob,
    ImportStatus,
    NumberImport,
    Project,
    is_space_host,
)
from phone_numbers.number_input import (
    NUMBER_TYPES,
    InputLine,
    ReadNumber,
    number_type_of,
    read_number,
)
from phone_numbers.rate_limit import LATEST_DEPARTURE, book_send_slot, hold_back_space
from phone_numbers.signalwire import (
    CredentialsRejected,
    RequestRejected,
    SignalWireClient,
    SignalWireUnavailable,
)
from phone_numbers.space_access import ConfigurationError, NoActiveToken, client_for

logger = logging.getLogger(__name__)

# A repeated confirm of the same list within this time finds the job it already made.
REPEAT_CONFIRM_WINDOW = timedelta(minutes=10)
# Waiting longer than this for a send slot frees the worker thread for other jobs.
LONGEST_SLEEP_FOR_SLOT = 2.0
# An attempt does not book a slot it could only reach this close to its deadline.
SLOT_BEFORE_DEADLINE = 1.0
# Slots an attempt books, each missed by waking too late, before it hands its number back.
SLOT_TRIES = 3
# A job has at most this many seconds of its Space's sends in flight (see job_window).
SPACE_SECONDS_IN_FLIGHT = 3
# SQLite accepts at most 32,766 parameters in one query.
LOOKUP_CHUNK = 5000


class ImportRefused(Exception):
    """The job cannot start; the message says why and what to do."""


# --------------------------------------------------------------------------------------------
# Preview and start
# --------------------------------------------------------------------------------------------


TYPE_NAMES = {"longcode": "long code", "tollfree": "toll-free"}


@dataclass(frozen=True)
class PreviewRow:
    line_number: int
    text: str
    e164: str | None
    how_read: str
    problem: str
    number_type: str
    capabilities: tuple[str, ...]
    # A line that reads as two numbers: both, as (E.164, how it was read), for the person to
    # choose from; e164 is the one chosen, if any.
    readings: tuple[tuple[str, str], ...] = ()
    # The number's own type when it differs from the import's (a toll-free number in a long
    # code import) or the row's: what the row will be imported as, and why; and the choice
    # of type offered ("" for the row's own, or the other type), with the one made.
    type_note: str = ""
    type_options: tuple[tuple[str, str], ...] = ()
    type_choice: str = ""

    @property
    def is_importable(self) -> bool:
        return self.e164 is not None and not self.problem

    @property
    def sort_key(self) -> int:
        """Lines to choose for first, then rejected lines, then those whose type was
        changed, then the rest: with thousands of lines, none may hide on page 40."""
        if self.readings:
            return 0
        if not self.is_importable:
            return 1
        return 2 if self.type_note else 3


@dataclass(frozen=True)
class Preview:
    rows: list[PreviewRow]

    @cached_property
    def importable(self) -> list[PreviewRow]:
        return [row for row in self.rows if row.is_importable]

    @property
    def rejected_count(self) -> int:
        return len(self.rows) - len(self.importable)

    @property
    def to_choose_count(self) -> int:
        return sum(1 for row in self.rows if row.readings and not row.is_importable)


def input_digest(
    project: Project, lines: list[InputLine], number_type: str, capabilities: list[str]
) -> str:
    """Fingerprint of what is about to be imported, to recognise the same confirm twice."""
    digest = hashlib.sha256(f"{project.pk}|{number_type}|{sorted(capabilities)}".encode())
    for line in lines:
        digest.update(
            f"\n{line.text}|{line.number_type}|{line.capabilities}|{line.reading}|"
            f"{line.type_choice}".encode()
        )
    return digest.hexdigest()


def with_choices(lines: list[InputLine], choices: Mapping[str, str]) -> list[InputLine]:
    """The lines with the choices the person made in the preview: `reading-<line>` (one of the
    line's two readings, "" to leave it out) and `type-<line>` (longcode or tollfree, over
    the number's own type and a CSV's number_type column; "" for the row's own)."""
    chosen = []
    for line in lines:
        reading = choices.get(f"reading-{line.line_number}") or None
        type_choice = choices.get(f"type-{line.line_number}") or None
        if type_choice not in NUMBER_TYPES:
            # Only the preview's own options are taken; anything else is no choice.
            type_choice = None
        if reading or type_choice:
            line = dataclasses.replace(line, reading=reading, type_choice=type_choice)
        chosen.append(line)
    return chosen


def preview(
    project: Project, lines: list[InputLine], number_type: str, capabilities: list[str]
) -> Preview:
    """Read every line and say what would be imported, and why anything would not."""
    read = [_chosen_reading(line, project.default_country) for line in lines]
    live = _live_imports(project, {number.e164 for number in read if number.e164})
    first_line: dict[str, int] = {}
    rows = []
    for line, number in zip(lines, read, strict=True):
        problem = number.problem
        if number.e164 and not problem:
            if number.e164 in first_line:
                problem = f"Duplicate of line {first_line[number.e164]}"
            elif number.e164 in live:
                problem = live[number.e164]
            first_line.setdefault(number.e164, line.line_number)
        row_type, type_note, type_options = _row_type(line, number.e164, number_type)
        rows.append(
            PreviewRow(
                line_number=line.line_number,
                text=line.text,
                e164=number.e164,
                how_read=number.how_read,
                problem=problem,
                number_type=row_type,
                capabilities=line.capabilities or tuple(capabilities),
                readings=tuple((each.e164, each.how_read) for each in number.alternatives),
                type_note=type_note,
                type_options=type_options,
                type_choice=line.type_choice or "",
            )
        )
    rows.sort(key=lambda row: row.sort_key)
    return Preview(rows)


def _chosen_reading(line: InputLine, default_country: str) -> ReadNumber:
    """The line's reading; of a line with two, the one the person chose (or none yet)."""
    read = read_number(line.text, default_country)
    if not read.alternatives:
        return read
    if line.reading is None:
        return read
    for reading in read.alternatives:
        if reading.e164 == line.reading:
            how_read = f"{reading.how_read}; chosen of two readings"
            return ReadNumber(reading.e164, how_read=how_read, alternatives=read.alternatives)
    problem = f"{line.reading} is not one of this line's readings: choose one of them"
    return ReadNumber(None, problem=problem, alternatives=read.alternatives)


def _row_type(
    line: InputLine, e164: str | None, import_type: str
) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """The type a row is imported as, a note when that or the number's own type is not the
    import's type, and then the choice offered.

    By default the number's own type, when its range says (a toll-free number is imported as
    toll-free, even in a long code import), unless a CSV's number_type column says otherwise;
    the person may choose the other type in the preview.
    """
    own_type = number_type_of(e164) if e164 else None
    default_type = line.number_type or own_type or import_type
    row_type = line.type_choice or default_type
    if own_type is None or own_type == row_type == import_type:
        return row_type, "", ()
    other_type = next(name for name in NUMBER_TYPES if name != default_type)
    options = (("", TYPE_NAMES[default_type]), (other_type, TYPE_NAMES[other_type]))
    if own_type == row_type:
        return (
            row_type,
            f"{TYPE_NAMES[own_type]}: will be imported as {TYPE_NAMES[own_type]}",
            options,
        )
    note = (
        f"{TYPE_NAMES[own_type]} number: will be imported as {TYPE_NAMES[row_type]}, "
        "as set for this row"
    )
    return row_type, note, options


def _live_imports(project: Project, numbers: set[str]) -> dict[str, str]:
    """Why each of `numbers` already live in the project cannot be imported again."""
    found = {}
    ordered = sorted(numbers)
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        rows = NumberImport.objects.filter(
            project=project,
            number__in=ordered[start : start + LOOKUP_CHUNK],
            status__in=[*UNFINISHED_STATUSES, ImportStatus.IMPORTED],
        ).values_list("number", "status", "job_id")
        for number, status, job_id in rows:
            found[number] = (
                f"Already imported into this project (job {job_id})"
                if status == ImportStatus.IMPORTED
                else f"Already being imported into this project (job {job_id})"
            )
    return found


def read_in_every_default_country(text: str) -> dict[str, str]:
    """Every E.164 number `text` may mean in the portal, with how each was read.

    A number written without a country code means something else in each project's default
    country, so it is read once per default country in use.
    """
    countries = Project.objects.values_list("default_country", flat=True).distinct()
    readings: dict[str, str] = {}
    for country in sorted(set(countries)) or ["US"]:
        read = read_number(text, country)
        # A line with two readings may mean either: both are looked for.
        for reading in (read, *read.alternatives):
            if reading.e164:
                readings.setdefault(reading.e164, reading.how_read)
    return readings


def refusal_for(project: Project) -> str:
    """Why nothing can be imported into the project right now, or ""."""
    if not project.is_active:
        return "This project is deactivated: an admin must reactivate it before importing."
    if not is_space_host(project.space_host):
        return (
            "This project's Space host is not a SignalWire Space: ask an admin to correct it on "
            "the project page."
        )
    if project.active_credential is None:
        return "This project has no API token: ask an admin to add one on the project page."
    if project.has_unreadable_token:
        return (
            "This project's API token cannot be read with the portal's keys: ask an admin to "
            "enter it again on the project page."
        )
    return ""


def start_job(
    *,
    project: Project,
    created_by,
    source: str,
    ticket: str,
    number_type: str,
    capabilities: list[str],
    lines: list[InputLine],
) -> ImportJob:
    """Create the job and its number imports in one transaction; queue them after commit,
    unless the job is larger than PORTAL_APPROVAL_THRESHOLD: then it waits for an approval
    and nothing is queued.

    Confirming the same list twice (a double click, a resubmitted form) returns the first job.
    """
    digest = input_digest(project, lines, number_type, capabilities)
    with transaction.atomic():
        # One confirm at a time per project, so two cannot both pass the "already live" check.
        project = Project.objects.select_for_update().get(pk=project.pk)
        if refusal := refusal_for(project):
            raise ImportRefused(refusal)
        repeated = ImportJob.objects.filter(
            project=project,
            created_by=created_by,
            input_digest=digest,
            created_at__gte=timezone.now() - REPEAT_CONFIRM_WINDOW,
        ).first()
        if repeated:
            return repeated
        importable = preview(project, lines, number_type, capabilities).importable
        if not importable:
            raise ImportRefused(
                "Nothing to import: every line is either not a number or already in the project."
            )
        job = ImportJob.objects.create(
            project=project,
            created_by=created_by,
            source=source,
            ticket=ticket,
            number_type=number_type,
            capabilities=capabilities,
            input_digest=digest,
            needs_approval=needs_approval(len(importable)),
        )
        NumberImport.objects.bulk_create(
            [
                NumberImport(
                    job=job,
                    project=project,
                    number=row.e164,
                    input_text=row.text[:100],
                    input_line=row.line_number,
                    how_read=row.how_read[:200],
                    number_type=row.number_type,
                    capabilities=list(row.capabilities),
                )
                # In the order they were typed: the preview's order puts rows to look at first.
                for row in sorted(importable, key=lambda row: row.line_number)
            ],
            batch_size=1000,
        )
        if job.needs_approval:
            notifications.notify_approval_requested(job.pk)
        else:
            transaction.on_commit(lambda: queue_pending(job))
    return job


def needs_approval(count: int) -> bool:
    """Whether a job of `count` numbers must wait for a second person's approval."""
    threshold = settings.PORTAL_APPROVAL_THRESHOLD
    return bool(threshold) and count > threshold


# --------------------------------------------------------------------------------------------
# Queueing: at most PORTAL_JOB_CONCURRENCY numbers of a job are queued or running at once, so
# one huge job never fills the queue ahead of another project's one-number import.
# --------------------------------------------------------------------------------------------


def queue_pending(job: ImportJob) -> int:
    """Send tasks for the job's next pending numbers, up to its concurrency; return how many.

    Its four statements are written in SQL: a worker runs them for every number it finishes,
    and built by the ORM they took 2.9 ms of CPU, seven times what they take written out
    (README, Benchmarks).
    """
    at = connection.ops.adapt_datetimefield_value
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        # One refill of a job at a time: two at once would both see the same free places and
        # fill them twice. The lock is the job's row, held for three short statements.
        cursor.execute(
            # Bandit B608 (here and below) is a false alarm: only fixed SQL and %s
            # placeholders are joined in; every value is a query parameter.
            "SELECT 1 FROM phone_numbers_importjob WHERE id = %s AND paused_at IS NULL"  # nosec B608
            # A job waiting for its approval (or refused it) sends nothing.
            " AND NOT (needs_approval AND approved_at IS NULL)"
            + (" FOR UPDATE" if connection.features.has_select_for_update else ""),
            [job.pk],
        )
        if cursor.fetchone() is None:
            return 0
        # The conditions of the partial indexes numberimport_in_flight and
        # numberimport_ready_to_send, so that each reads only the rows it asks about.
        cursor.execute(
            "SELECT count(*) FROM phone_numbers_numberimport WHERE job_id = %s"  # nosec B608
            f" AND status IN ({', '.join(['%s'] * len(UNFINISHED_STATUSES))})"
            " AND queued_at IS NOT NULL",
            [job.pk, *UNFINISHED_STATUSES],
        )
        free = job_window() - cursor.fetchone()[0]
        if free <= 0:
            return 0
        cursor.execute(
            "SELECT id FROM phone_numbers_numberimport WHERE job_id = %s"
            " AND status = %s AND queued_at IS NULL"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= %s) ORDER BY id LIMIT %s",
            [job.pk, ImportStatus.PENDING, at(now), free],
        )
        pks = [pk for (pk,) in cursor.fetchall()]
        if not pks:
            return 0
        cursor.execute(
            "UPDATE phone_numbers_numberimport SET queued_at = %s"  # nosec B608
            f" WHERE id IN ({', '.join(['%s'] * len(pks))})",
            [at(now), *pks],
        )
        transaction.on_commit(lambda: _send(pks))
    return len(pks)


def job_window() -> int:
    """How many numbers of one job may be queued or being sent at once.

    PORTAL_JOB_CONCURRENCY, but never more than its Space can send in SPACE_SECONDS_IN_FLIGHT:
    the rest would only wait, and a number that finds no send slot soon goes back to the
    queue and comes again, so a slow Space with many numbers in flight keeps the workers and
    the database busy with numbers that cannot be sent yet.
    """
    return min(
        settings.PORTAL_JOB_CONCURRENCY,
        math.ceil(settings.PORTAL_RATE_LIMIT_PER_SPACE * SPACE_SECONDS_IN_FLIGHT),
    )


def _send(pks: list[int], countdown: float | None = None) -> None:
    """Send a task for each number; a broker that cannot be reached leaves them to recovery.

    Runs after a commit, often inside a person's request: a broker outage must not turn an
    import that is safely stored into an error page. The numbers not sent are marked unqueued,
    so beat's recovery (every PORTAL_RECOVERY_INTERVAL_SECONDS) queues them again.
    """
    from phone_numbers.tasks import import_phone_number  # the tasks module imports this one

    for index, pk in enumerate(pks):
        try:
            import_phone_number.apply_async((pk,), countdown=countdown)
        except Exception:
            logger.exception("Could not queue number imports %s; recovery will", pks[index:])
            NumberImport.objects.filter(pk__in=pks[index:], status=ImportStatus.PENDING).update(
                queued_at=None
            )
            return


# --------------------------------------------------------------------------------------------
# Importing one number
# --------------------------------------------------------------------------------------------


def import_number(number_import: NumberImport, client: SignalWireClient | None = None) -> None:
    """Import one number into its project: at most once, whatever is repeated or redelivered.

    Claims the row (pending → submitting) or returns if another task has it, it is not due,
    its job is paused or its project refused. After an attempt that may have reached
    SignalWire, it first looks the number up and records it imported if it is there, so a
    number is never posted twice; in a cancelled job that lookup is all it does. The attempt
    ends by its deadline (PORTAL_ATTEMPT_SECONDS after the claim), which recovery relies on.
    """
    job, project = number_import.job, number_import.project
    if not project.is_active:
        job.pause(refusal_for(project))
        number_import.release()
        return
    if job.cancelled_at and not number_import.needs_lookup:
        number_import.cancel_unsent()
        return
    if not number_import.claim():
        return
    deadline = time.monotonic() + settings.PORTAL_ATTEMPT_SECONDS
    try:
        client = client or client_for(project)
    except NoActiveToken as exc:
        job.pause(str(exc))
        number_import.hand_back()
        return
    except DecryptionFailed as exc:
        # SignalWire was never asked: the job says why it stopped, not that a token was refused.
        _fail_on_credentials(
            number_import, str(exc), http_status=None, code="", pause_reason=str(exc)
        )
        return
    except ConfigurationError as exc:
        # Nothing was sent, and no retry can mend it: the job waits for an admin's fix.
        number_import.mark_failed(FailureCategory.CONFIGURATION, str(exc))
        _pause_for(number_import, str(exc))
        return
    try:
        _attempt(number_import, client, deadline)
    except Exception as exc:
        # A bug, or a setting SignalWire's client refuses: whether the POST left is unknown,
        # so the number is looked up next time, and the attempt counts, so it cannot loop.
        logger.exception("Importing number import %s failed unexpectedly", number_import.pk)
        _retry_or_fail(
            number_import,
            FailureCategory.INTERNAL,
            f"The portal failed while sending this number ({type(exc).__name__}).",
            needs_lookup=True,
        )


class _HandedBack(Exception):
    """The Space had no send slot soon enough: the number was handed back for later."""


def _attempt(number_import: NumberImport, client: SignalWireClient, deadline: float) -> None:
    # Every request (a lookup's pages too) waits for its Space's send slot once its
    # connection is open, right before it is written.
    pace = functools.partial(_wait_for_send_slot, number_import, deadline)
    was_uncertain = number_import.needs_lookup
    try:
        if number_import.needs_lookup:
            existing = client.find_number(number_import.number, deadline=deadline, pace=pace)
            if existing is not None:
                number_import.mark_imported(
                    existing.sid, existing.friendly_name or "", existing.raw, "found on SignalWire"
                )
                return
            if ImportJob.objects.filter(pk=number_import.job_id, cancelled_at__isnull=False):
                number_import.mark_cancelled("not on SignalWire: cancelled")
                return
            # Known absent now: if the POST must wait for another attempt, that attempt posts
            # without looking again (a busy Space would otherwise spend its slots on lookups).
            number_import.needs_lookup = False
        result = client.import_number(
            number_import.number,
            number_import.number_type,
            number_import.capabilities,
            deadline=deadline,
            pace=pace,
        )
    except _HandedBack:
        return
    except CredentialsRejected as exc:
        _fail_on_credentials(number_import, exc.message, exc.status, exc.code or "")
    except RequestRejected as exc:
        if exc.is_duplicate and was_uncertain:
            # An earlier POST of ours may have created it after all, on a slow SignalWire:
            # look again once that POST must have finished.
            _retry_or_fail(
                number_import,
                FailureCategory.DUPLICATE,
                f"{exc.message} (an earlier request may have imported it: it is looked up again)",
                code=exc.code or "",
                http_status=exc.status,
                needs_lookup=True,
            )
            return
        category = FailureCategory.DUPLICATE if exc.is_duplicate else FailureCategory.INVALID_INPUT
        number_import.mark_failed(category, exc.message, exc.code or "", exc.status)
    except SignalWireUnavailable as exc:
        if exc.status == 429:
            _wait_as_asked(number_import, exc)
        else:
            _retry_or_fail(
                number_import,
                FailureCategory.UPSTREAM if exc.status is not None else FailureCategory.NETWORK,
                exc.message,
                code=exc.code or "",
                http_status=exc.status,
                # A failed lookup leaves the question open; a failed post may have created it.
                needs_lookup=number_import.needs_lookup or exc.may_have_reached_signalwire,
                retry_after=exc.retry_after,
            )
    else:
        number_import.mark_imported(result.sid, result.friendly_name or "", result.raw, "imported")


def _wait_for_send_slot(number_import: NumberImport, deadline: float) -> None:
    """Wait for the Space's next send slot; if it is far off, hand the number back for later
    and raise _HandedBack.

    Only a slot this attempt will use is booked, so a busy Space's schedule never fills with
    slots nobody sends in. A thread that wakes too late for its slot (a busy machine) does
    not send in it: leaving late, the request could bunch with those booked after it into
    more than the limit in one second. It books another, a few times at most.
    """
    for _ in range(SLOT_TRIES):
        asked = time.monotonic()
        longest = min(LONGEST_SLEEP_FOR_SLOT, deadline - asked - SLOT_BEFORE_DEADLINE)
        is_booked, wait = book_send_slot(
            number_import.project.space_host, settings.PORTAL_RATE_LIMIT_PER_SPACE, max(longest, 0)
        )
        if not is_booked:
            break
        # The slot is `wait` after the database's clock read it, some time between asking
        # and the answer: never leave before answer + wait, and count lateness from the
        # earliest the slot can be, so a slow answer from a busy database counts as late too.
        time.sleep(wait)
        late = time.monotonic() - (asked + wait)
        if late <= LATEST_DEPARTURE:
            return
        logger.info("Ready %.0f ms after a send slot; booking another", 1000 * late)
    else:
        wait = 0.0
    # Back while a second of the Space's schedule is still booked, so that returning numbers
    # book its next slots before it runs dry.
    come_back = max(wait - LONGEST_SLEEP_FOR_SLOT / 2, 0.0)
    number_import.hand_back(come_back)
    _send([number_import.pk], countdown=come_back)
    raise _HandedBack


def _fail_on_credentials(
    number_import: NumberImport,
    message: str,
    http_status: int | None,
    code: str,
    pause_reason: str = "SignalWire refused the project's API token.",
) -> None:
    number_import.mark_failed(FailureCategory.AUTH, message, code, http_status)
    if _pause_for(number_import, pause_reason):
        # Only the attempt that paused the job mails: the others (refused too, in flight at
        # the same time) find it paused already.
        notifications.notify_paused_on_credentials(number_import.job_id)


def _pause_for(number_import: NumberImport, reason: str) -> bool:
    """Pause the number's job; True if this call paused it."""
    paused = number_import.job.pause(reason)
    logger.warning(
        "Paused job %s of project %s: %s", number_import.job_id, number_import.project_id, reason
    )
    return paused


def _retry_or_fail(
    number_import: NumberImport,
    category: FailureCategory,
    message: str,
    *,
    code: str = "",
    http_status: int | None = None,
    needs_lookup: bool,
    retry_after: float | None = None,
) -> None:
    if number_import.attempts_this_round >= settings.PORTAL_MAX_ATTEMPTS:
        if needs_lookup:
            message += " (it may have been imported: a retry checks SignalWire first)"
        number_import.mark_failed(category, message, code, http_status, needs_lookup=needs_lookup)
        return
    delay = retry_delay(number_import.attempts_this_round, retry_after)
    if needs_lookup:
        delay = max(delay, lookup_wait())
    if number_import.schedule_retry(delay, category, message, code, http_status, needs_lookup):
        _send([number_import.pk], countdown=delay)


def lookup_wait() -> float:
    """Seconds after a request that may have created a number before it is looked up.

    That request can still be running on SignalWire: it had it for up to the read timeout
    without answering, and is given as long again, and at least as long as an attempt of ours
    may last. A lookup before then could miss the number, and the POST after it would find it
    "taken" by ourselves, or make it twice.
    """
    return max(2 * settings.SIGNALWIRE_TIMEOUT[1], settings.PORTAL_ATTEMPT_SECONDS)


def _wait_as_asked(number_import: NumberImport, exc: SignalWireUnavailable) -> None:
    """429: the whole Space waits as long as SignalWire asks, and the number's attempt is not
    used up, since waiting is not failing."""
    delay = retry_delay(number_import.attempts_this_round, exc.retry_after)
    hold_back_space(number_import.project.space_host, delay)
    resumes = timezone.localtime(timezone.now() + timedelta(seconds=delay))
    message = f"{exc.message}: SignalWire asked us to wait; sending resumes at {resumes:%H:%M:%S}."
    if number_import.schedule_retry(
        delay,
        FailureCategory.RATE_LIMITED,
        message,
        exc.code or "",
        exc.status,
        number_import.needs_lookup,
        counts_as_attempt=False,
    ):
        _send([number_import.pk], countdown=delay)


def retry_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: SignalWire's Retry-After, whatever its length (the row
    says when it resumes), else backoff with jitter up to PORTAL_RETRY_MAX_SECONDS."""
    if retry_after is not None:
        return retry_after
    ceiling = min(
        settings.PORTAL_RETRY_MAX_SECONDS,
        settings.PORTAL_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0),
    )
    # "Equal jitter": at least half the exponential delay, so retries spread out but still wait.
    # Bandit B311 is a false alarm: jitter only spreads retries in time; nothing secret.
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # nosec B311


# --------------------------------------------------------------------------------------------
# What people do to a job
# --------------------------------------------------------------------------------------------


def _refuse_to_send(job: ImportJob, *, to_retry: bool) -> None:
    """Raise ImportRefused, saying why, when nothing of the job may be sent now.

    A cancelled job may still be resumed (its numbers that may be in the Space are looked up
    before they end), but not retried.
    """
    project = Project.objects.get(pk=job.project_id)
    if refusal := refusal_for(project):
        raise ImportRefused(refusal)
    if to_retry and ImportJob.objects.filter(pk=job.pk, cancelled_at__isnull=False):
        raise ImportRefused("This job was cancelled: import its numbers again in a new job.")


def retry_failed(job: ImportJob) -> int:
    """Put the job's failed numbers that a plain retry can mend back in the queue."""
    _refuse_to_send(job, to_retry=True)
    restarted = _restart(job, job.numbers.filter(failure_category__in=RETRYABLE_CATEGORIES))
    queue_pending(job)
    return restarted


def retry_number(number_import: NumberImport, number_type: str, capabilities: list[str]) -> bool:
    """Retry one failed number, with its number type and capabilities as corrected."""
    _refuse_to_send(number_import.job, to_retry=True)
    NumberImport.objects.filter(pk=number_import.pk, status=ImportStatus.FAILED).update(
        number_type=number_type, capabilities=capabilities
    )
    restarted = _restart(number_import.job, NumberImport.objects.filter(pk=number_import.pk))
    queue_pending(number_import.job)
    return bool(restarted)


def cancel_pending(job: ImportJob) -> int:
    """Cancel the numbers surely not sent; return how many. Numbers being sent right now
    finish, and a number an earlier request may have imported is looked up first: it ends
    imported or cancelled, so that "cancelled" means "not in the Space"."""
    with transaction.atomic():
        cancelled = job.numbers.filter(status=ImportStatus.PENDING, needs_lookup=False).update(
            status=ImportStatus.CANCELLED, next_attempt_at=None, updated_at=timezone.now()
        )
        ImportJob.objects.filter(pk=job.pk).update(cancelled_at=timezone.now())
    queue_pending(job)
    return cancelled


def approve(job: ImportJob, by) -> bool:
    """Approve a job awaiting approval and queue its numbers, as a confirm does; False if it
    no longer awaits approval. Refused, saying why, when its project cannot be sent to."""
    _refuse_to_send(job, to_retry=False)
    if not job.approve(by):
        return False
    queue_pending(job)
    return True


def resume(job: ImportJob) -> None:
    """Resume a paused job: numbers stopped by a refused token or a configuration error, and
    those whose tasks came while it was paused (they ended without sending), go back in the
    queue at once."""
    _refuse_to_send(job, to_retry=False)
    with transaction.atomic():
        ImportJob.objects.filter(pk=job.pk).update(paused_at=None, pause_reason="")
        job.numbers.filter(status=ImportStatus.PENDING).update(queued_at=None)
    job.refresh_from_db()
    _restart(
        job,
        job.numbers.filter(
            failure_category__in=[FailureCategory.AUTH, FailureCategory.CONFIGURATION]
        ),
    )
    queue_pending(job)


def _restart(job: ImportJob, failed: QuerySet) -> int:
    """Failed numbers of the job → pending, with a fresh round of attempts; the last error
    stays visible. The job's next end is mailed, even if its last one was.

    A number that meanwhile went live again in its project (another job) stays failed.
    """
    restarted = _restart_numbers(failed)
    if restarted:
        notifications.forget_end(job.pk)
    return restarted


def _restart_numbers(failed: QuerySet) -> int:
    failed = failed.filter(status=ImportStatus.FAILED)
    fields = {
        "status": ImportStatus.PENDING,
        "attempts_this_round": 0,
        # One that failed just after a request that may have created it is looked up no
        # sooner than an automatic retry would be (queueing picks it up once it is due).
        "next_attempt_at": Case(
            When(needs_lookup=True, then=F("updated_at") + timedelta(seconds=lookup_wait())),
            default=None,
        ),
        "queued_at": None,
        "updated_at": timezone.now(),
    }
    try:
        with transaction.atomic():
            return failed.update(**fields)
    except IntegrityError:
        restarted = 0
        for pk in failed.values_list("pk", flat=True):
            try:
                with transaction.atomic():
                    restarted += NumberImport.objects.filter(pk=pk).update(**fields)
            except IntegrityError:
                continue
        return restarted


# --------------------------------------------------------------------------------------------
# Recovery (Celery beat)
# --------------------------------------------------------------------------------------------


def recover_stuck_imports() -> int:
    """Put back to work numbers whose task died or whose message was lost; return how many.

    - submitting for longer than an attempt can last: the worker died mid-request, so the
      number goes back to pending and is looked up on SignalWire before it is posted again
      (or fails, when that happened on every attempt);
    - pending with a task sent long ago and not taken: the message was lost (e.g. the broker
      restarted), so it is sent again (a duplicate message finds the row claimed and stops);
    - every job with numbers waiting for a place in its queue gets them queued.
    """
    now = timezone.now()
    stuck_since = now - timedelta(seconds=settings.PORTAL_STUCK_SUBMITTING_SECONDS)
    lost_since = now - timedelta(seconds=settings.PORTAL_REQUEUE_AFTER_SECONDS)
    stuck = NumberImport.objects.filter(status=ImportStatus.SUBMITTING, claimed_at__lt=stuck_since)
    # A number whose every attempt stopped its worker (a crash, not a network fault) must not
    # loop for ever: once its attempts are used up, it fails and says so.
    recovered = stuck.filter(attempts_this_round__gte=settings.PORTAL_MAX_ATTEMPTS).update(
        status=ImportStatus.FAILED,
        needs_lookup=True,
        queued_at=None,
        next_attempt_at=None,
        failure_category=FailureCategory.INTERNAL,
        error_message="The worker stopped every time it sent this number (it may have been "
        "imported: a retry checks SignalWire first).",
        updated_at=now,
    )
    recovered += stuck.update(
        status=ImportStatus.PENDING,
        needs_lookup=True,
        queued_at=None,
        next_attempt_at=None,
        error_message="The worker stopped while sending this number; it is checked and retried.",
        updated_at=now,
    )
    recovered += (
        NumberImport.objects.filter(status=ImportStatus.PENDING, queued_at__lt=lost_since)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=lost_since))
        .update(queued_at=None, updated_at=now)
    )
    waiting_jobs = (
        ImportJob.objects.filter(
            paused_at__isnull=True,
            numbers__status=ImportStatus.PENDING,
            numbers__queued_at__isnull=True,
        )
        .exclude(needs_approval=True, approved_at__isnull=True)
        .distinct()
    )
    for job in waiting_jobs:
        queue_pending(job)
    if recovered:
        logger.warning("Recovered %s stuck or lost number imports", recovered)
    return recovered

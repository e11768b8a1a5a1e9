"""Syncing a project's Space inventory: the one place where inventory models meet the client.

A sync reads SignalWire's whole list of the project's numbers, page by page, into a staging
table (StagedSpaceNumber, keyed by the sync). Only when the last page is read does one
transaction swap the reading into the inventory (SpaceNumber): numbers gone are deleted,
changed ones updated, new ones added, each linked to the portal's import of the same number,
and the drift marks set. The swap is set-based SQL, the same statements on PostgreSQL and
SQLite, so its cost does not grow with Python round trips at 100,000 numbers.

So the inventory always is one complete reading: a sync that fails or dies part-way changes
nothing in it. One sync of a project runs at a time (a partial unique constraint); a sync
whose worker died is found stale (no page read for PORTAL_INVENTORY_SYNC_STALE_SECONDS) and
reported failed, and a redelivered task takes over a stale run and starts from the first page.

Every page request goes through the Space's shared rate limit, as imports do. SignalWire
calls its GETs "effectively unlimited" (NOTES.md §5), but the portal's promise is its own:
never more requests per second to one Space than its configured limit, whatever the method.
A sync of 100,000 numbers is 100 pages, five seconds of a 20/s Space's schedule: cheap to keep.
"""

import functools
import json
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from phone_numbers import audit
from phone_numbers.capabilities import CAPABILITIES
from phone_numbers.crypto import DecryptionFailed
from phone_numbers.importing import retry_delay
from phone_numbers.models import (
    Credential,
    ImportJob,
    InventorySync,
    NumberImport,
    Project,
    SpaceNumber,
    StagedSpaceNumber,
)
from phone_numbers.rate_limit import LATEST_DEPARTURE, book_send_slot, hold_back_space
from phone_numbers.signalwire import (
    MAX_PAGE_SIZE,
    CredentialsRejected,
    IncomingPhoneNumber,
    NumberPage,
    RequestRejected,
    SignalWireClient,
    SignalWireError,
    SignalWireUnavailable,
)
from phone_numbers.space_access import ConfigurationError, NoActiveToken, client_for

logger = logging.getLogger(__name__)

# Tries of one page when SignalWire is unavailable (a timeout, a 5xx, a 429) before the sync
# fails; the wait between them follows importing.retry_delay, Retry-After first.
PAGE_TRIES = 4
# A sync waits at most this long for one retry; SignalWire asking for longer fails it (the
# wait must stay well inside PORTAL_INVENTORY_SYNC_STALE_SECONDS, or the sync looks dead).
LONGEST_RETRY_WAIT = 60.0
# A send slot is booked only this close; the sync waits and asks again for one further off.
LONGEST_SLEEP_FOR_SLOT = 2.0


class _Superseded(Exception):
    """Another run took this sync over (this one was taken for dead), or it was ended."""


@dataclass(frozen=True)
class SyncResult:
    """What a completed sync changed."""

    numbers_listed: int
    added: int
    removed: int
    changed: int
    marked_missing: int
    found_again: int


# --------------------------------------------------------------------------------------------
# Starting syncs
# --------------------------------------------------------------------------------------------


def request_sync(project: Project, trigger: str, by=None) -> InventorySync | None:
    """Start a sync of the project and queue its task; None if one is already running.

    A stale running sync (its worker gone) is first reported failed, so it never blocks this.
    """
    end_stale_syncs(project)
    sync = InventorySync.start(project, trigger, by)
    if sync is not None:
        _queue(sync.pk)
    return sync


def queue_inventory_sync_after_job(job_id: int) -> InventorySync | None:
    """Sync the inventory of a job's project once the job has ended (its numbers are in the
    Space now, or known not to be). None when the job or its project is gone or inactive, or
    a sync of the project is already running."""
    job = ImportJob.objects.select_related("project").filter(pk=job_id).first()
    if job is None or not job.project.is_active:
        return None
    return request_sync(job.project, InventorySync.Trigger.AFTER_JOB)


def sync_every_inventory() -> int:
    """Start the nightly sync of every active project with a token; return how many started."""
    has_token = Credential.objects.filter(project=OuterRef("pk"), revoked_at__isnull=True)
    projects = Project.objects.active().filter(Exists(has_token))
    return sum(
        request_sync(project, InventorySync.Trigger.NIGHTLY) is not None for project in projects
    )


def end_stale_syncs(project: Project | None = None) -> int:
    """Report failed every running sync whose worker stopped reading; return how many."""
    ended = InventorySync.end_stale(project_id=project.pk if project else None)
    for sync in ended:
        StagedSpaceNumber.objects.filter(sync=sync).delete()
        audit.record_inventory_sync(sync)
    return len(ended)


def _queue(sync_pk: int) -> None:
    from phone_numbers.tasks import sync_inventory  # the tasks module imports this one

    sync_inventory.delay_on_commit(sync_pk)


def last_sync_and_drift(project: Project) -> dict:
    """The project page's inventory panel: its last sync, and the drift counts once a sync
    has completed (before, every import would look missing)."""
    last_sync = project.inventory_syncs.select_related("started_by").first()
    has_completed = last_sync is not None and (
        last_sync.status == InventorySync.Status.COMPLETED
        or project.inventory_syncs.filter(status=InventorySync.Status.COMPLETED).exists()
    )
    if not has_completed:
        return {"last_sync": last_sync, "drift": None}
    # The Space's three counts in one reading of its rows.
    drift = SpaceNumber.objects.filter(project=project).aggregate(
        in_space=Count("pk"),
        not_imported=Count("pk", filter=Q(number_import__isnull=True)),
        differs=Count("pk", filter=Q(differs_from_import=True)),
    )
    drift["missing"] = NumberImport.objects.filter(
        project=project, missing_from_space_since__isnull=False
    ).count()
    return {"last_sync": last_sync, "drift": drift}


# --------------------------------------------------------------------------------------------
# Running one sync
# --------------------------------------------------------------------------------------------


def run_sync(sync: InventorySync, client: SignalWireClient | None = None) -> SyncResult | None:
    """Read the project's whole Space list and swap it into the inventory.

    Claims the sync first, or returns None if another run is reading it. A failure is
    recorded on the sync (and in the audit log) with a message naming what to do; the
    inventory then stays the previous complete reading.
    """
    token = sync.claim()
    if token is None:
        return None
    try:
        client = client or client_for(sync.project)
    except (NoActiveToken, ConfigurationError) as exc:
        _fail(sync, token, str(exc))
        return None
    except DecryptionFailed:
        _fail(
            sync,
            token,
            "The stored token cannot be decrypted with the portal's keys: an "
            "admin must enter it again.",
        )
        return None
    try:
        _read_every_page(sync, token, client)
        return _swap(sync, token)
    except _Superseded:
        logger.info("Inventory sync %s was taken over or ended; this run stops", sync.pk)
        return None
    except SignalWireError as exc:
        logger.warning("Inventory sync %s failed: %s (%s)", sync.pk, exc, exc.detail)
        _fail(sync, token, _failure_message(exc))
        return None
    except Exception as exc:
        logger.exception("Inventory sync %s failed unexpectedly", sync.pk)
        _fail(
            sync,
            token,
            f"The portal failed while syncing ({type(exc).__name__}): tell the portal's "
            "maintainers (the worker's log has the error).",
        )
        return None


def _failure_message(exc: SignalWireError) -> str:
    if isinstance(exc, CredentialsRejected):
        return (
            f"SignalWire refused the project's API token (HTTP {exc.status}): an admin must "
            "check the token (Check connection), then sync again."
        )
    if isinstance(exc, RequestRejected):
        return f"SignalWire refused the list request: {exc.message} (HTTP {exc.status})."
    status = f" (HTTP {exc.status})" if exc.status else ""
    return f"SignalWire could not list the numbers: {exc.message}{status}. Sync again later."


def _fail(sync: InventorySync, token: str, message: str) -> None:
    with transaction.atomic():
        if sync.mark_failed(message, token=token):
            StagedSpaceNumber.objects.filter(sync=sync).delete()
            audit.record_inventory_sync(sync)


def _read_every_page(sync: InventorySync, token: str, client: SignalWireClient) -> None:
    """Stage every page; a page SignalWire could not give is asked for again, from where the
    listing stopped, a few times."""
    space_host = sync.project.space_host
    pace = functools.partial(wait_for_send_slot, space_host)
    next_url: str | None = None
    tries = 0
    while True:
        try:
            for page in client.list_numbers(page_size=MAX_PAGE_SIZE, start_url=next_url, pace=pace):
                _stage(sync, token, page)
                tries = 0
                if page.next_url is None:
                    return
                next_url = page.next_url
            return
        except SignalWireUnavailable as exc:
            tries += 1
            delay = retry_delay(tries, exc.retry_after)
            if tries >= PAGE_TRIES or delay > LONGEST_RETRY_WAIT:
                raise
            if exc.status == 429:
                # Every worker's next request to this Space waits too, imports included.
                hold_back_space(space_host, delay)
            logger.info("Inventory sync %s: page failed (%s); again in %.1f s", sync.pk, exc, delay)
            time.sleep(delay)


def wait_for_send_slot(space_host: str) -> None:
    """Wait for the Space's next send slot, as an import's request does (importing.py).

    A sync has no other work to hand back to, so it waits, booking a slot only when it is
    near; a thread that wakes too late for its slot books another rather than send late.
    """
    while True:
        asked = time.monotonic()
        is_booked, wait = book_send_slot(
            space_host, settings.PORTAL_RATE_LIMIT_PER_SPACE, LONGEST_SLEEP_FOR_SLOT
        )
        if not is_booked:
            time.sleep(max(wait - LONGEST_SLEEP_FOR_SLOT / 2, 0.01))
            continue
        time.sleep(wait)
        if time.monotonic() - (asked + wait) <= LATEST_DEPARTURE:
            return


def type_in_space(number: IncomingPhoneNumber) -> str:
    """The number's type as SignalWire's record shows it.

    The record has no type field; the spec documents `verification_status` as "only present
    for toll-free numbers" (NOTES.md §3), so its presence says toll-free and its absence long
    code. The number's own range is not asked: the Space's record is what drift compares.
    """
    return "tollfree" if number.verification_status is not None else "longcode"


# One statement sent once per row (psycopg pipelines them): bulk_create's one statement of
# 10,000 parameters cost more to build and convert than the rows' own insert (bench/
# inventory_sync.py profile: 0.43 s a page of 1,000).
_STAGE = """
    INSERT INTO phone_numbers_stagedspacenumber (
        sync_id, sid, number, friendly_name, number_type, capabilities, origin,
        date_created, date_updated
    ) VALUES (%s, %s, %s, %s, %s, {json}, %s, %s, %s)
    ON CONFLICT (sync_id, sid) DO NOTHING
"""
_JSON_PARAMETER = {"postgresql": "CAST(%s AS jsonb)", "sqlite": "%s"}


def _stage(sync: InventorySync, token: str, page: NumberPage) -> None:
    as_date = connection.ops.adapt_datetimefield_value
    rows = [
        (
            sync.pk,
            number.sid[:64],
            number.phone_number[:32],
            (number.friendly_name or "")[:100],
            type_in_space(number),
            # In the portal's order, so the swap compares them as text.
            json.dumps(list(number.capabilities.enabled()) if number.capabilities else []),
            (number.origin or "")[:20],
            as_date(number.created_at),
            as_date(number.updated_at),
        )
        for number in page.numbers
    ]
    # The token is checked on the locked sync row in the same transaction, so a run taken
    # over (see InventorySync.claim) stages nothing after the new run cleared the staging.
    # A number listed twice (the list shifted between pages) is kept once.
    with transaction.atomic():
        if not sync.record_page(token, len(rows)):
            raise _Superseded
        if rows:
            with connection.cursor() as cursor:
                cursor.executemany(_STAGE.format(json=_JSON_PARAMETER[connection.vendor]), rows)


# --------------------------------------------------------------------------------------------
# The swap
# --------------------------------------------------------------------------------------------

# PostgreSQL and SQLite differ in four words only: "is distinct from", and how a JSON list
# is asked whether it holds a name.
_DISTINCT = {"postgresql": "IS DISTINCT FROM", "sqlite": "IS NOT"}
_HAS = {
    "postgresql": "({column} @> '[\"{name}\"]'::jsonb)",
    "sqlite": "EXISTS (SELECT 1 FROM json_each({column}) WHERE value = '{name}')",
}

_REMOVE = """
    DELETE FROM phone_numbers_spacenumber
    WHERE project_id = %(project)s AND NOT EXISTS (
        SELECT 1 FROM phone_numbers_stagedspacenumber AS st
        WHERE st.sync_id = %(sync)s AND st.sid = phone_numbers_spacenumber.sid
    )
"""
# The fields people see: a number whose only change is its date_updated is not "changed".
_CHANGE = """
    UPDATE phone_numbers_spacenumber AS sn
    SET number = st.number, friendly_name = st.friendly_name, number_type = st.number_type,
        capabilities = st.capabilities, origin = st.origin
    FROM phone_numbers_stagedspacenumber AS st
    WHERE st.sync_id = %(sync)s AND sn.project_id = %(project)s AND sn.sid = st.sid
        AND (sn.number, sn.friendly_name, sn.number_type, sn.capabilities, sn.origin)
            {distinct} (st.number, st.friendly_name, st.number_type, st.capabilities, st.origin)
"""
_SEEN = """
    UPDATE phone_numbers_spacenumber AS sn
    SET date_created = st.date_created, date_updated = st.date_updated,
        last_seen_at = %(now)s
    FROM phone_numbers_stagedspacenumber AS st
    WHERE st.sync_id = %(sync)s AND sn.project_id = %(project)s AND sn.sid = st.sid
"""
_ADD = """
    INSERT INTO phone_numbers_spacenumber (
        project_id, sid, number, friendly_name, number_type, capabilities, origin,
        date_created, date_updated, number_import_id, differs_from_import,
        first_seen_at, last_seen_at
    )
    SELECT %(project)s, st.sid, st.number, st.friendly_name, st.number_type, st.capabilities,
        st.origin, st.date_created, st.date_updated, NULL, %(false)s, %(now)s, %(now)s
    FROM phone_numbers_stagedspacenumber AS st
    WHERE st.sync_id = %(sync)s AND NOT EXISTS (
        SELECT 1 FROM phone_numbers_spacenumber AS sn
        WHERE sn.project_id = %(project)s AND sn.sid = st.sid
    )
"""
# Each number's import: the project's imported NumberImport of the same number (at most one,
# by the constraint on live imports, whose partial index the repeated status condition lets
# SQLite use too). It differs when SignalWire's type or set of capabilities is not the import's.
# Asked per row, through that index: as a join, PostgreSQL's estimate of the imports just made
# (no statistics yet) chose a nested loop over all of them, 7 s for 10,000 numbers.
_IMPORT_OF = """(
    SELECT ni.id FROM phone_numbers_numberimport AS ni
    WHERE ni.project_id = %(project)s AND ni.number = phone_numbers_spacenumber.number
        AND ni.status IN ('pending', 'submitting', 'imported') AND ni.status = 'imported'
)"""
_DIFFERS = """EXISTS (
    SELECT 1 FROM phone_numbers_numberimport AS ni
    WHERE ni.project_id = %(project)s AND ni.number = phone_numbers_spacenumber.number
        AND ni.status IN ('pending', 'submitting', 'imported') AND ni.status = 'imported'
        AND (phone_numbers_spacenumber.number_type <> ni.number_type OR {capabilities_differ})
)"""
_LINK = """
    UPDATE phone_numbers_spacenumber
    SET number_import_id = {import_of}, differs_from_import = {differs}
    WHERE project_id = %(project)s AND (
        number_import_id {distinct} {import_of} OR differs_from_import {distinct} {differs}
    )
"""
# Imported before this reading began, and not in it: released, or moved to another project.
_MARK_MISSING = """
    UPDATE phone_numbers_numberimport SET missing_from_space_since = %(now)s
    WHERE project_id = %(project)s AND status = 'imported' AND imported_at < %(reading_began)s
        AND missing_from_space_since IS NULL
        AND NOT EXISTS (
            SELECT 1 FROM phone_numbers_stagedspacenumber AS st
            WHERE st.sync_id = %(sync)s AND st.number = phone_numbers_numberimport.number
        )
"""
_CLEAR_MISSING = """
    UPDATE phone_numbers_numberimport SET missing_from_space_since = NULL
    WHERE project_id = %(project)s AND missing_from_space_since IS NOT NULL
        AND (status <> 'imported' OR EXISTS (
            SELECT 1 FROM phone_numbers_stagedspacenumber AS st
            WHERE st.sync_id = %(sync)s AND st.number = phone_numbers_numberimport.number
        ))
"""


def _sql(template: str) -> str:
    vendor = connection.vendor
    differ = " OR ".join(
        f"{_HAS[vendor].format(column='phone_numbers_spacenumber.capabilities', name=name)} <> "
        f"{_HAS[vendor].format(column='ni.capabilities', name=name)}"
        for name in CAPABILITIES
    )
    return template.format(
        distinct=_DISTINCT[vendor],
        import_of=_IMPORT_OF,
        differs=_DIFFERS.format(capabilities_differ=f"({differ})"),
    )


def _swap(sync: InventorySync, token: str) -> SyncResult:
    """Make the staged reading the inventory, in one transaction; mark the sync completed."""
    now = timezone.now()
    with transaction.atomic():
        # The sync's row lock orders this after any page or takeover of the same sync, and
        # the one-running-sync constraint keeps any other sync of the project out.
        locked = (
            InventorySync.objects.select_for_update()
            .filter(pk=sync.pk, status=InventorySync.Status.RUNNING, run_id=token)
            .first()
        )
        if locked is None:
            raise _Superseded
        params = {
            "project": sync.project_id,
            "sync": sync.pk,
            "now": now,
            "false": False,
            "reading_began": locked.claimed_at,
        }
        with connection.cursor() as cursor:

            def run(template: str) -> int:
                cursor.execute(_sql(template), params)
                return cursor.rowcount

            cursor.execute(
                "SELECT COUNT(*) FROM phone_numbers_stagedspacenumber WHERE sync_id = %s",
                [sync.pk],
            )
            listed = cursor.fetchone()[0]
            removed = run(_REMOVE)
            changed = run(_CHANGE)
            run(_SEEN)
            added = run(_ADD)
            run(_LINK)
            marked_missing = run(_MARK_MISSING)
            found_again = run(_CLEAR_MISSING)
            cursor.execute(
                "DELETE FROM phone_numbers_stagedspacenumber WHERE sync_id = %s", [sync.pk]
            )
        result = SyncResult(listed, added, removed, changed, marked_missing, found_again)
        InventorySync.objects.filter(pk=sync.pk).update(
            status=InventorySync.Status.COMPLETED,
            finished_at=timezone.now(),
            numbers_listed=listed,
            added=added,
            removed=removed,
            changed=changed,
        )
        sync.refresh_from_db()
        audit.record_inventory_sync(sync, result)
    logger.info(
        "Inventory sync %s of project %s: %s numbers, %s added, %s removed, %s changed",
        sync.pk,
        sync.project_id,
        listed,
        added,
        removed,
        changed,
    )
    return result

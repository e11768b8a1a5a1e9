"""The inventory sync (phone_numbers/inventory.py) on a fake client: staging, the swap, the drift
marks, failures part-way, one running sync per project, takeover of a stale one, the rate
limit, the tasks and the triggers (issue 17)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from phone_numbers import importing, inventory
from phone_numbers.models import (
    AuditAction,
    AuditEntry,
    ImportJob,
    ImportStatus,
    InventorySync,
    NumberImport,
    RateLimitBucket,
    SpaceNumber,
    StagedSpaceNumber,
)
from phone_numbers.number_input import read_pasted
from phone_numbers.rate_limit import book_send_slot
from phone_numbers.signalwire import CredentialsRejected, SignalWireUnavailable
from phone_numbers.tasks import (
    import_phone_number,
    recover_stuck_imports,
    sync_every_inventory,
    sync_inventory,
)
from tests.fakes import FakeSignalWire, FakeSpaceList, space_number

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

MANUAL = InventorySync.Trigger.MANUAL


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch):
    slept = []
    monkeypatch.setattr(inventory.time, "sleep", slept.append)
    return slept


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """The syncs whose task was queued (on commit)."""
    sent: list[int] = []
    monkeypatch.setattr(sync_inventory, "delay_on_commit", sent.append)
    return sent


@pytest.fixture
def project(make_project):
    return make_project()


@pytest.fixture
def imported(project, admin_user, monkeypatch):
    """`imported(numbers, number_type=, capabilities=, ago=)`: numbers the portal imported."""
    monkeypatch.setattr(import_phone_number, "apply_async", lambda *args, **kwargs: None)

    def make(numbers, number_type="longcode", capabilities=("sms", "voice", "mms", "fax"), ago=60):
        job = importing.start_job(
            project=project,
            lines=read_pasted("\n".join(numbers)),
            number_type=number_type,
            capabilities=list(capabilities),
            created_by=admin_user,
            source=ImportJob.Source.PASTE,
            ticket="",
        )
        job.numbers.update(
            status="imported", imported_at=timezone.now() - timedelta(seconds=ago), sid="x"
        )
        return {row.number: row for row in job.numbers.all()}

    return make


def sync_now(project, space: FakeSpaceList, trigger=MANUAL, by=None):
    sync = InventorySync.start(project, trigger, by)
    assert sync is not None
    result = inventory.run_sync(sync, client=space)
    sync.refresh_from_db()
    return sync, result


def inventory_of(project) -> dict[str, SpaceNumber]:
    return {row.number: row for row in SpaceNumber.objects.filter(project=project)}


# --- a first sync ---------------------------------------------------------------------------


def test_a_first_sync_lists_every_number_of_the_space_and_links_the_imported_ones(
    project, imported
):
    ours = imported(["+14155550100"])
    space = FakeSpaceList([space_number(f"+1415555010{digit}") for digit in range(5)], page_size=2)

    sync, result = sync_now(project, space)

    assert sync.status == InventorySync.Status.COMPLETED
    assert (sync.pages_read, sync.numbers_listed, sync.added) == (3, 5, 5)
    assert (sync.removed, sync.changed) == (0, 0)
    assert sync.finished_at is not None and sync.duration >= timedelta(0)
    numbers = inventory_of(project)
    assert sorted(numbers) == [f"+1415555010{digit}" for digit in range(5)]
    first = numbers["+14155550100"]
    assert first.number_import == ours["+14155550100"]
    assert first.sid == "sid-+14155550100"
    assert first.friendly_name == "friendly +14155550100"
    assert first.capabilities == ["sms", "voice", "fax", "mms"]
    assert first.number_type == "longcode"
    assert first.date_created is not None
    assert first.differs_from_import is False
    assert [n for n, row in numbers.items() if row.number_import is None] == [
        f"+1415555010{digit}" for digit in range(1, 5)
    ]
    assert not StagedSpaceNumber.objects.exists()
    assert result.numbers_listed == 5


def test_a_number_listed_on_two_pages_is_kept_once(project):
    space = FakeSpaceList([space_number("+14155550100"), space_number("+14155550101")], 1)
    space.before_page = lambda index: (
        index == 1
        and space.numbers.update({"late": space_number("+14155550100", sid="sid-+14155550100")})
    )

    sync, _ = sync_now(project, space)

    assert sync.numbers_listed == 2
    assert SpaceNumber.objects.filter(project=project).count() == 2


def test_an_empty_space_empties_the_inventory(project):
    sync_now(project, FakeSpaceList([space_number("+14155550100")]))

    sync, _ = sync_now(project, FakeSpaceList([]))

    assert (sync.pages_read, sync.numbers_listed, sync.removed) == (1, 0, 1)
    assert not SpaceNumber.objects.filter(project=project).exists()


# --- what a later sync changes --------------------------------------------------------------


def test_a_later_sync_adds_removes_and_updates_counting_each(project):
    space = FakeSpaceList([space_number(f"+1415555010{digit}") for digit in range(4)])
    sync_now(project, space)
    before = inventory_of(project)
    del space.numbers["sid-+14155550100"]
    space.numbers["sid-+14155550101"]["friendly_name"] = "renamed"
    space.numbers["sid-+14155550102"]["date_updated"] = "Fri, 29 Sep 2023 10:00:00 +0000"
    space.numbers["new"] = space_number("+14155550109", sid="new")

    sync, _ = sync_now(project, space)

    assert (sync.added, sync.removed, sync.changed, sync.numbers_listed) == (1, 1, 1, 4)
    after = inventory_of(project)
    assert sorted(after) == ["+14155550101", "+14155550102", "+14155550103", "+14155550109"]
    assert after["+14155550101"].friendly_name == "renamed"
    # A new date_updated alone is stored, but is not a change people see.
    assert after["+14155550102"].date_updated.day == 29
    assert after["+14155550103"].first_seen_at == before["+14155550103"].first_seen_at
    assert after["+14155550103"].last_seen_at > before["+14155550103"].last_seen_at
    assert after["+14155550103"].pk == before["+14155550103"].pk


def test_a_sync_leaves_other_projects_inventories_alone(project, make_project):
    other = make_project(name="Other")
    sync_now(other, FakeSpaceList([space_number("+14155550199")]))

    sync_now(project, FakeSpaceList([space_number("+14155550100")]))

    assert list(inventory_of(other)) == ["+14155550199"]


# --- drift ------------------------------------------------------------------------------------


def test_capabilities_are_compared_as_a_set(project, imported):
    imported(["+14155550100"], capabilities=["voice", "sms"])
    imported(["+14155550101"], capabilities=["sms"])
    space = FakeSpaceList(
        [
            space_number("+14155550100", capabilities=["sms", "voice"]),
            space_number("+14155550101", capabilities=["sms", "voice"]),
        ]
    )

    sync_now(project, space)

    numbers = inventory_of(project)
    assert numbers["+14155550100"].differs_from_import is False
    assert numbers["+14155550101"].differs_from_import is True


def test_the_type_is_toll_free_when_signalwire_gives_a_verification_status(project, imported):
    imported(["+18005550100"], number_type="tollfree")
    imported(["+18005550101"], number_type="tollfree")
    imported(["+14155550102"], number_type="longcode")
    space = FakeSpaceList(
        [
            space_number("+18005550100", tollfree=True),
            space_number("+18005550101"),
            space_number("+14155550102", tollfree=True),
        ]
    )

    sync_now(project, space)

    numbers = inventory_of(project)
    assert numbers["+18005550100"].number_type == "tollfree"
    assert numbers["+18005550100"].differs_from_import is False
    assert numbers["+18005550101"].differs_from_import is True
    assert numbers["+14155550102"].differs_from_import is True


def test_a_difference_disappears_once_signalwire_agrees_again(project, imported):
    imported(["+14155550100"], capabilities=["sms"])
    space = FakeSpaceList([space_number("+14155550100", capabilities=["sms", "voice"])])
    sync_now(project, space)
    assert inventory_of(project)["+14155550100"].differs_from_import is True

    space.numbers["sid-+14155550100"]["capabilities"]["voice"] = False
    sync, _ = sync_now(project, space)

    assert sync.changed == 1
    assert inventory_of(project)["+14155550100"].differs_from_import is False


def test_an_imported_number_gone_from_the_space_is_marked_missing_until_it_is_back(
    project, imported
):
    ours = imported(["+14155550100", "+14155550101"])
    space = FakeSpaceList([space_number("+14155550100")])

    sync, result = sync_now(project, space)

    missing = NumberImport.objects.get(pk=ours["+14155550101"].pk)
    assert missing.missing_from_space_since is not None
    assert NumberImport.objects.get(pk=ours["+14155550100"].pk).missing_from_space_since is None
    assert result.marked_missing == 1

    first_marked = missing.missing_from_space_since
    sync_now(project, space)
    assert NumberImport.objects.get(pk=missing.pk).missing_from_space_since == first_marked

    space.numbers["back"] = space_number("+14155550101", sid="back")
    _, result = sync_now(project, space)

    assert NumberImport.objects.get(pk=missing.pk).missing_from_space_since is None
    assert result.found_again == 1
    assert inventory_of(project)["+14155550101"].number_import_id == missing.pk


def test_an_import_that_ends_while_the_sync_reads_is_not_called_missing(project, imported):
    space = FakeSpaceList([space_number("+14155550100"), space_number("+14155550101")], 1)

    def import_finishes_now(index):
        if index == 1:
            imported(["+14155550199"], ago=0)

    space.before_page = import_finishes_now

    sync_now(project, space)

    assert not NumberImport.objects.filter(missing_from_space_since__isnull=False).exists()


def test_a_failed_import_is_never_linked_and_loses_its_missing_mark(project, imported):
    ours = imported(["+14155550100"])
    sync_now(project, FakeSpaceList([]))
    row = NumberImport.objects.get(pk=ours["+14155550100"].pk)
    assert row.missing_from_space_since is not None
    NumberImport.objects.filter(pk=row.pk).update(status="failed")

    sync_now(project, FakeSpaceList([space_number("+14155550100")]))

    assert NumberImport.objects.get(pk=row.pk).missing_from_space_since is None
    assert inventory_of(project)["+14155550100"].number_import is None


def test_the_swap_makes_as_many_queries_for_many_numbers_as_for_few(project, imported):
    def swap_queries(count: int, first: int) -> int:
        numbers = [f"+1415555{first + index:04d}" for index in range(count)]
        imported(numbers[: count // 2])
        space = FakeSpaceList([space_number(number) for number in numbers], page_size=1000)
        sync = InventorySync.start(project, MANUAL)
        token = sync.claim()
        inventory._read_every_page(sync, token, space)
        with CaptureQueriesContext(connection) as queries:
            inventory._swap(sync, token)
        return len(queries)

    assert swap_queries(3, 0) == swap_queries(1500, 5000)


# --- failures ---------------------------------------------------------------------------------


def test_a_sync_failing_part_way_leaves_the_previous_inventory_as_it_was(project):
    space = FakeSpaceList([space_number(f"+1415555010{digit}") for digit in range(4)], 2)
    sync_now(project, space)
    before = {n: (row.pk, row.last_seen_at) for n, row in inventory_of(project).items()}
    del space.numbers["sid-+14155550100"]
    space.errors[1] = [CredentialsRejected("Unauthorized", status=401)]

    sync, result = sync_now(project, space)

    assert result is None
    assert sync.status == InventorySync.Status.FAILED
    assert "refused the project's API token (HTTP 401)" in sync.error_message
    assert sync.pages_read == 1
    assert {n: (row.pk, row.last_seen_at) for n, row in inventory_of(project).items()} == before
    assert not StagedSpaceNumber.objects.exists()
    entry = AuditEntry.objects.filter(action=AuditAction.INVENTORY_SYNC_FAILED).get()
    assert entry.project == project
    assert entry.changes["error"] == sync.error_message


def test_a_page_signalwire_could_not_give_is_asked_for_again_from_where_it_stopped(
    project, _no_real_sleep
):
    space = FakeSpaceList([space_number(f"+1415555010{digit}") for digit in range(6)], 2)
    space.errors[1] = [SignalWireUnavailable("Bad Gateway", status=502)] * 2

    sync, _ = sync_now(project, space)

    assert sync.status == InventorySync.Status.COMPLETED
    assert space.asked == [0, 1, 1, 1, 2]
    assert sync.pages_read == 3
    assert sync.numbers_listed == 6
    assert len(_no_real_sleep) >= 2


def test_a_429_holds_back_the_whole_space_for_as_long_as_signalwire_asks(project, monkeypatch):
    # The next page would wait the 30 s for its slot: what is tested here is the booking.
    monkeypatch.setattr(inventory, "wait_for_send_slot", lambda space_host: None)
    book_send_slot(project.space_host, 20, 1)  # as the first page's request did
    space = FakeSpaceList([space_number("+14155550100")])
    space.errors[0] = [SignalWireUnavailable("Too Many Requests", status=429, retry_after=30)]
    before = timezone.now().timestamp()

    sync, _ = sync_now(project, space)

    assert sync.status == InventorySync.Status.COMPLETED
    held_until = RateLimitBucket.objects.get(space_host=project.space_host).next_send_at
    assert held_until >= before + 29


def test_a_sync_gives_up_after_its_tries_or_a_wait_longer_than_it_may_take(project):
    space = FakeSpaceList([space_number("+14155550100")])
    space.errors[0] = [SignalWireUnavailable("down", status=503)] * inventory.PAGE_TRIES
    sync, _ = sync_now(project, space)
    assert sync.status == InventorySync.Status.FAILED
    assert space.asked == [0] * inventory.PAGE_TRIES
    assert "could not list the numbers: down (HTTP 503)" in sync.error_message

    space = FakeSpaceList([space_number("+14155550100")])
    space.errors[0] = [SignalWireUnavailable("slow down", status=429, retry_after=3600)]
    sync, _ = sync_now(project, space)
    assert sync.status == InventorySync.Status.FAILED
    assert space.asked == [0]


def test_a_project_without_a_token_fails_its_sync_saying_so(make_project):
    project = make_project(token=None)
    sync = InventorySync.start(project, MANUAL)

    inventory.run_sync(sync)

    sync.refresh_from_db()
    assert sync.status == InventorySync.Status.FAILED
    assert sync.error_message == "This project has no API token: an admin must add one."


def test_a_bug_while_syncing_fails_the_sync_without_its_text(project, monkeypatch):
    space = FakeSpaceList([space_number("+14155550100")])
    monkeypatch.setattr(inventory, "_swap", lambda sync, token: 1 / 0)

    sync, _ = sync_now(project, space)

    assert sync.status == InventorySync.Status.FAILED
    assert sync.error_message.startswith("The portal failed while syncing (ZeroDivisionError)")


# --- one sync at a time, and syncs that died --------------------------------------------------


def test_a_second_sync_of_a_project_is_not_started_while_one_runs(project, make_project):
    first = InventorySync.start(project, MANUAL)

    assert InventorySync.start(project, MANUAL) is None
    assert InventorySync.start(make_project(name="Other"), MANUAL) is not None
    first.mark_failed("x")
    assert InventorySync.start(project, MANUAL) is not None


def test_a_stale_running_sync_is_reported_interrupted_and_the_next_one_starts(project, queued):
    stale = InventorySync.start(project, MANUAL)
    stale.claim()
    InventorySync.objects.filter(pk=stale.pk).update(
        progressed_at=timezone.now() - timedelta(minutes=6)
    )

    started = inventory.request_sync(project, MANUAL)

    stale.refresh_from_db()
    assert stale.status == InventorySync.Status.FAILED
    assert stale.error_message.startswith("Interrupted: no page was read for 5 minutes")
    assert started is not None and queued == [started.pk]
    assert AuditEntry.objects.filter(action=AuditAction.INVENTORY_SYNC_FAILED).count() == 1


def test_a_running_sync_that_still_reads_is_not_stale(project):
    sync = InventorySync.start(project, MANUAL)
    InventorySync.objects.filter(pk=sync.pk).update(
        progressed_at=timezone.now() - timedelta(minutes=4)
    )

    assert inventory.end_stale_syncs() == 0
    assert InventorySync.objects.get(pk=sync.pk).status == InventorySync.Status.RUNNING


def test_recovery_reports_every_stale_sync(project, make_project):
    for each in (project, make_project(name="Other")):
        InventorySync.start(each, MANUAL)
    InventorySync.objects.update(progressed_at=timezone.now() - timedelta(hours=1))

    assert inventory.end_stale_syncs() == 2
    assert not InventorySync.objects.running().exists()


def test_a_sync_being_read_is_not_claimed_twice(project):
    sync = InventorySync.start(project, MANUAL)

    assert sync.claim() is not None
    assert InventorySync.objects.get(pk=sync.pk).claim() is None


def test_a_redelivered_task_takes_over_a_stale_run_which_then_stops(project):
    space = FakeSpaceList([space_number(f"+1415555010{digit}") for digit in range(4)], 1)
    sync = InventorySync.start(project, MANUAL)
    taken_over = []

    def worker_stalls_and_a_redelivered_task_takes_over(index):
        if index == 2 and not taken_over:
            taken_over.append("running")
            InventorySync.objects.filter(pk=sync.pk).update(
                progressed_at=timezone.now() - timedelta(minutes=6)
            )
            redelivered = InventorySync.objects.get(pk=sync.pk)
            taken_over[0] = inventory.run_sync(redelivered, client=space)

    space.before_page = worker_stalls_and_a_redelivered_task_takes_over

    first_run = inventory.run_sync(sync, client=space)

    sync.refresh_from_db()
    assert first_run is None
    assert taken_over[0] is not None and taken_over[0].numbers_listed == 4
    assert sync.status == InventorySync.Status.COMPLETED
    assert (sync.pages_read, sync.numbers_listed) == (4, 4)
    assert SpaceNumber.objects.filter(project=project).count() == 4
    assert not StagedSpaceNumber.objects.exists()


# --- the rate limit ---------------------------------------------------------------------------


def test_every_page_waits_for_a_send_slot_of_the_space(project, monkeypatch):
    booked = []
    real = inventory.book_send_slot

    def book(space_host, rate, max_wait):
        booked.append(space_host)
        return real(space_host, rate, max_wait)

    monkeypatch.setattr(inventory, "book_send_slot", book)
    space = FakeSpaceList([space_number(f"+1415555010{digit}") for digit in range(5)], 2)

    sync_now(project, space)

    assert booked == [project.space_host] * 3


def test_a_sync_waits_for_a_slot_that_is_far_off_instead_of_sending(
    project, monkeypatch, _no_real_sleep
):
    answers = [(False, 5.0), (True, 0.0)]
    monkeypatch.setattr(inventory, "book_send_slot", lambda *args: answers.pop(0))

    inventory.wait_for_send_slot(project.space_host)

    assert answers == []
    assert _no_real_sleep[0] == pytest.approx(4.0)


# --- audit ------------------------------------------------------------------------------------


def test_a_completed_sync_is_an_audit_entry_with_what_it_changed(project, imported, admin_user):
    imported(["+14155550101"])
    space = FakeSpaceList([space_number("+14155550100")])

    sync, _ = sync_now(project, space, by=admin_user)

    entry = AuditEntry.objects.get(action=AuditAction.INVENTORY_SYNCED)
    assert entry.user == admin_user and entry.username == admin_user.username
    assert entry.project == project
    assert entry.target == f"Inventory sync {sync.pk}"
    assert entry.changes == {
        "trigger": "manual",
        "pages_read": 1,
        "numbers_listed": 1,
        "added": 1,
        "removed": 0,
        "changed": 0,
        "marked_missing": 1,
        "found_again": 0,
    }


# --- tasks and triggers -----------------------------------------------------------------------


def test_the_task_runs_a_running_sync_with_the_projects_client(project, monkeypatch):
    space = FakeSpaceList([space_number("+14155550100")])
    monkeypatch.setattr(inventory, "client_for", lambda project: space)
    sync = InventorySync.start(project, MANUAL)

    sync_inventory(sync.pk)

    assert InventorySync.objects.get(pk=sync.pk).status == InventorySync.Status.COMPLETED
    assert space.asked == [0]


def test_the_task_does_nothing_for_a_finished_or_deleted_sync(project, monkeypatch):
    space = FakeSpaceList([space_number("+14155550100")])
    monkeypatch.setattr(inventory, "client_for", lambda project: space)
    sync = InventorySync.start(project, MANUAL)
    sync.mark_failed("gone")

    sync_inventory(sync.pk)
    sync_inventory(sync.pk + 1000)

    assert space.asked == []


def test_a_sync_is_queued_after_a_job_ends(
    project, imported, queued, django_capture_on_commit_callbacks
):
    imported(["+14155550100"])
    job = ImportJob.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        sync = inventory.queue_inventory_sync_after_job(job.pk)

    assert sync.trigger == InventorySync.Trigger.AFTER_JOB
    assert sync.status == InventorySync.Status.RUNNING
    assert queued == [sync.pk]


def test_the_worker_that_finishes_a_jobs_last_number_queues_one_sync_of_its_space(
    project, imported, queued, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 1_000_000
    imported(["+14155550100", "+14155550101"])
    NumberImport.objects.update(status=ImportStatus.PENDING, imported_at=None, sid="")
    first, last = NumberImport.objects.order_by("pk")
    monkeypatch.setattr(importing, "client_for", lambda project: FakeSignalWire())

    with django_capture_on_commit_callbacks(execute=True):
        import_phone_number(first.pk)
    assert queued == []
    with django_capture_on_commit_callbacks(execute=True):
        import_phone_number(last.pk)
        # A redelivered message of the last number finds the end already seen.
        import_phone_number(last.pk)

    [sync] = InventorySync.objects.filter(pk__in=queued)
    assert sync.trigger == InventorySync.Trigger.AFTER_JOB


def test_recovery_queues_a_sync_after_a_job_that_ended_with_no_worker_there(
    project, imported, queued, django_capture_on_commit_callbacks
):
    imported(["+14155550100"])
    NumberImport.objects.update(status=ImportStatus.PENDING, imported_at=None, sid="")
    job = ImportJob.objects.get()
    importing.cancel_pending(job)

    with django_capture_on_commit_callbacks(execute=True):
        recover_stuck_imports()
        recover_stuck_imports()

    [sync] = InventorySync.objects.filter(pk__in=queued)
    assert sync.trigger == InventorySync.Trigger.AFTER_JOB


def test_no_sync_after_a_job_of_an_inactive_project_or_while_one_runs(project, imported, queued):
    imported(["+14155550100"])
    job = ImportJob.objects.get()
    running = InventorySync.start(project, MANUAL)

    assert inventory.queue_inventory_sync_after_job(job.pk) is None
    running.mark_failed("x")
    project.is_active = False
    project.save(update_fields=["is_active"])
    assert inventory.queue_inventory_sync_after_job(job.pk) is None
    assert inventory.queue_inventory_sync_after_job(job.pk + 1000) is None
    assert queued == []


def test_the_nightly_sync_starts_one_for_every_active_project_with_a_token(
    make_project, queued, django_capture_on_commit_callbacks
):
    active = make_project(name="Active")
    make_project(name="Inactive", is_active=False)
    make_project(name="No token", token=None)
    busy = make_project(name="Busy")
    InventorySync.start(busy, MANUAL)

    with django_capture_on_commit_callbacks(execute=True):
        sync_every_inventory()

    nightly = InventorySync.objects.filter(trigger=InventorySync.Trigger.NIGHTLY)
    assert [sync.project for sync in nightly] == [active]
    assert queued == [nightly.get().pk]


def test_beat_runs_the_nightly_sync_and_recovery_ends_stale_syncs(settings, project):
    from phone_numbers.tasks import recover_stuck_imports

    schedule = settings.CELERY_BEAT_SCHEDULE["sync-every-inventory"]
    assert schedule["task"] == "phone_numbers.tasks.sync_every_inventory"
    assert schedule["schedule"].hour == {settings.PORTAL_INVENTORY_SYNC_HOUR}
    InventorySync.start(project, MANUAL)
    InventorySync.objects.update(progressed_at=timezone.now() - timedelta(hours=1))

    recover_stuck_imports()

    assert InventorySync.objects.get().status == InventorySync.Status.FAILED

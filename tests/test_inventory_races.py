"""Inventory syncs raced for real: threads with their own database connections, released
together by a barrier, for many rounds (issue 17). Two syncs of one project at once must
leave one consistent inventory."""

from datetime import timedelta

import pytest
from django.utils import timezone

from phone_numbers import inventory
from phone_numbers.models import InventorySync, SpaceNumber, StagedSpaceNumber
from tests.fakes import FakeSpaceList, space_number
from tests.test_import_races import THREADS, race

pytestmark = [
    # Threads read what the test writes; the roles' groups stay for the tests after.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.both_databases,
]

ROUNDS = 30
MANUAL = InventorySync.Trigger.MANUAL


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    from phone_numbers.tasks import sync_inventory

    sent: list[int] = []
    monkeypatch.setattr(sync_inventory, "delay_on_commit", sent.append)
    return sent


def reading(round_number: int, count: int = 5) -> FakeSpaceList:
    """A Space whose numbers are this round's own, so each round's reading is told apart."""
    first = round_number * 10
    return FakeSpaceList(
        [space_number(f"+1415555{first + index:04d}") for index in range(count)], page_size=2
    )


def inventory_numbers(project) -> list[str]:
    return sorted(SpaceNumber.objects.filter(project=project).values_list("number", flat=True))


def test_of_admins_clicking_sync_at_once_exactly_one_sync_starts_every_round(make_project, queued):
    project = make_project()
    for round_number in range(ROUNDS):
        started = race(THREADS, lambda index: inventory.request_sync(project, MANUAL))

        assert sum(sync is not None for sync in started) == 1, f"round {round_number}"
        InventorySync.objects.running().update(status=InventorySync.Status.FAILED)
    assert len(queued) == ROUNDS


def test_of_redelivered_tasks_running_one_sync_at_once_one_reads_and_swaps(make_project):
    project = make_project()
    for round_number in range(ROUNDS):
        space = reading(round_number)
        sync = InventorySync.start(project, MANUAL)
        copies = [InventorySync.objects.get(pk=sync.pk) for _ in range(THREADS)]

        results = race(
            THREADS,
            lambda index, copies=copies, space=space: inventory.run_sync(
                copies[index], client=space
            ),
        )

        assert sum(result is not None for result in results) == 1, f"round {round_number}"
        sync.refresh_from_db()
        assert sync.status == InventorySync.Status.COMPLETED
        assert (sync.pages_read, sync.numbers_listed) == (3, 5)
        assert inventory_numbers(project) == sorted(space_number_list(space))


def test_of_tasks_taking_over_one_stale_sync_at_once_one_wins(make_project):
    project = make_project()
    for round_number in range(ROUNDS):
        space = reading(round_number)
        sync = InventorySync.start(project, MANUAL)
        sync.claim()
        InventorySync.objects.filter(pk=sync.pk).update(
            progressed_at=timezone.now() - timedelta(hours=1)
        )
        copies = [InventorySync.objects.get(pk=sync.pk) for _ in range(THREADS)]

        results = race(
            THREADS,
            lambda index, copies=copies, space=space: inventory.run_sync(
                copies[index], client=space
            ),
        )

        assert sum(result is not None for result in results) == 1, f"round {round_number}"
        assert inventory_numbers(project) == sorted(space_number_list(space))
        assert not StagedSpaceNumber.objects.exists()


def test_a_swap_racing_the_end_of_its_stale_sync_either_completes_or_changes_nothing(
    make_project,
):
    """Recovery (taking the sync for dead) and the sync's own last step meet on its row:
    whichever comes second must see what the first did."""
    project = make_project()
    for round_number in range(ROUNDS):
        before = inventory_numbers(project)
        space = reading(round_number)
        sync = InventorySync.start(project, MANUAL)
        token = sync.claim()
        inventory._read_every_page(sync, token, space)
        InventorySync.objects.filter(pk=sync.pk).update(
            progressed_at=timezone.now() - timedelta(hours=1)
        )

        def swap_or_end(index, sync=sync, token=token):
            if index == 0:
                try:
                    return inventory._swap(sync, token)
                except inventory._Superseded:
                    return None
            return inventory.end_stale_syncs(project)

        race(2, swap_or_end)

        sync.refresh_from_db()
        if sync.status == InventorySync.Status.COMPLETED:
            assert inventory_numbers(project) == sorted(space_number_list(space))
        else:
            assert sync.status == InventorySync.Status.FAILED, f"round {round_number}"
            assert inventory_numbers(project) == before, f"round {round_number}"
        assert not InventorySync.objects.running().exists()
        assert not StagedSpaceNumber.objects.exists()


def space_number_list(space: FakeSpaceList) -> list[str]:
    return [record["phone_number"] for record in space.numbers.values()]

"""Inventory syncs end to end: the simulator over HTTP, every list response checked against
SignalWire's official schema, drift appearing and going away, and a real worker process
killed mid-sync (issue 17)."""

import os
import signal
import time
import uuid
from urllib.parse import quote

import pytest
import requests
from django.utils import timezone

from phone_numbers import importing, inventory
from phone_numbers.models import ImportJob, InventorySync, NumberImport, SpaceNumber
from phone_numbers.number_input import read_pasted
from phone_numbers.signalwire import SignalWireClient
from phone_numbers.tasks import import_phone_number, sync_inventory
from signalwire_simulator import CONTROL_PREFIX, SimProject
from tests.test_signalwire_conformance import response_schema

pytestmark = [
    pytest.mark.both_databases,
    # Workers read what the test writes; the roles' groups stay for the tests after.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

LIST_PATH = "/Accounts/{AccountSid}/IncomingPhoneNumbers"


# --- the simulator's Space, changed as SignalWire's dashboard would: its control endpoints ----


def control(simulator, method: str, path: str, body: dict | None = None) -> dict:
    response = requests.request(
        method, f"{simulator.url}{CONTROL_PREFIX}/{path}", json=body, timeout=30
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def bought_in_dashboard(simulator, project_id: str, numbers=None, **body) -> None:
    if numbers is not None:
        body["numbers"] = list(numbers)
    control(simulator, "POST", f"projects/{project_id}/numbers", body)


def release(simulator, project_id: str, number: str) -> None:
    control(simulator, "DELETE", f"projects/{project_id}/numbers/{quote(number)}")


def change(simulator, in_project: str, number: str, **body) -> None:
    control(simulator, "POST", f"projects/{in_project}/numbers/{quote(number)}", body)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def project(make_project, sim_project, settings, simulator):
    settings.SIGNALWIRE_BASE_URL = simulator.api_base_url
    return make_project(
        project_id=sim_project.project_id,
        space_host=sim_project.space_host,
        token=sim_project.token,
    )


@pytest.fixture
def pages_read(monkeypatch) -> list[dict]:
    """Every list page's JSON body, as the client read it over HTTP."""
    bodies: list[dict] = []
    real = SignalWireClient._get_page

    def recording(self, url, deadline, pace=None):
        body = real(self, url, deadline, pace)
        bodies.append(body)
        return body

    monkeypatch.setattr(SignalWireClient, "_get_page", recording)
    return bodies


@pytest.fixture
def import_through_portal(project, admin_user, sim_client, monkeypatch):
    """Import numbers as the portal does (a job, then each number's import) into the Space."""
    monkeypatch.setattr(import_phone_number, "apply_async", lambda *args, **kwargs: None)

    def run(numbers, capabilities=("sms", "voice", "mms", "fax")) -> dict[str, NumberImport]:
        job = importing.start_job(
            project=project,
            lines=read_pasted("\n".join(numbers)),
            number_type="longcode",
            capabilities=list(capabilities),
            created_by=admin_user,
            source=ImportJob.Source.PASTE,
            ticket="",
        )
        for row in job.numbers.select_related("job", "project"):
            importing.import_number(row, client=sim_client)
        rows = {row.number: row for row in job.numbers.all()}
        assert {row.status for row in rows.values()} == {"imported"}
        # As if some time passed: imports end before a later sync begins to read.
        NumberImport.objects.filter(job=job).update(
            imported_at=timezone.now() - timezone.timedelta(seconds=5)
        )
        return rows

    return run


def sync(project) -> InventorySync:
    started = InventorySync.start(project, InventorySync.Trigger.MANUAL)
    inventory.run_sync(started)
    started.refresh_from_db()
    assert started.status == InventorySync.Status.COMPLETED, started.error_message
    return started


def drift(project) -> dict[str, list[str]]:
    space = SpaceNumber.objects.filter(project=project)
    return {
        "not_imported": sorted(space.filter(number_import=None).values_list("number", flat=True)),
        "differs": sorted(space.filter(differs_from_import=True).values_list("number", flat=True)),
        "missing": sorted(
            NumberImport.objects.filter(
                project=project, missing_from_space_since__isnull=False
            ).values_list("number", flat=True)
        ),
    }


NO_DRIFT = {"not_imported": [], "differs": [], "missing": []}


# --- tests ------------------------------------------------------------------------------------


def test_a_10000_number_space_is_synced_over_http_in_pages_that_each_match_the_spec(
    project,
    simulator,
    sim_project,
    pages_read,
    spec,
    validate,
):
    numbers = [f"+1415{index:07d}" for index in range(5_550_000, 5_560_000)]
    bought_in_dashboard(simulator, sim_project.project_id, count=10_000, start=numbers[0])

    done = sync(project)

    assert (done.pages_read, done.numbers_listed, done.added) == (10, 10_000, 10_000)
    assert SpaceNumber.objects.filter(project=project).count() == 10_000
    assert set(SpaceNumber.objects.values_list("number", flat=True)) == set(numbers)
    schema = response_schema(spec, LIST_PATH, "get", 200)
    assert len(pages_read) == 10
    for index, body in enumerate(pages_read):
        assert validate(schema, body) == [], f"page {index}"
        assert body["page_size"] == 1000
    assert all("PageToken=" in body["uri"] for body in pages_read[1:])
    assert pages_read[-1]["next_page_uri"] is None


def test_drift_appears_after_the_next_sync_and_goes_once_resolved(
    project, simulator, sim_project, import_through_portal
):
    project_id = sim_project.project_id
    import_through_portal(["+14155550100", "+14155550101", "+14155550102"])
    sync(project)
    assert drift(project) == NO_DRIFT

    bought_in_dashboard(simulator, project_id, ["+14155550199"])
    release(simulator, project_id, "+14155550101")
    change(simulator, project_id, "+14155550102", capabilities=["sms"])
    done = sync(project)

    assert (done.added, done.removed, done.changed) == (1, 1, 1)
    assert drift(project) == {
        "not_imported": ["+14155550199"],
        "differs": ["+14155550102"],
        "missing": ["+14155550101"],
    }

    # Resolved in the Space: the stray number released, the released one back, the
    # capabilities as imported.
    release(simulator, project_id, "+14155550199")
    bought_in_dashboard(simulator, project_id, ["+14155550101"])
    change(simulator, project_id, "+14155550102", capabilities=["sms", "voice", "mms", "fax"])
    sync(project)

    assert drift(project) == NO_DRIFT
    assert SpaceNumber.objects.filter(project=project, number_import__isnull=False).count() == 3


@pytest.mark.integration
def test_a_worker_killed_mid_sync_leaves_the_last_inventory_and_a_redelivery_restarts_it(
    start_celery_worker, simulator, sim_project, project, client, admin_user
):
    project_id = sim_project.project_id
    bought_in_dashboard(simulator, project_id, ["+14155550100", "+14155550101"])
    sync(project)
    bought_in_dashboard(simulator, project_id, count=8000, start="+14155550200")
    # Slow pages, so the worker is killed between two of them.
    simulator.configure(latency_min_ms=400, latency_max_ms=400)
    env = {
        "SIGNALWIRE_BASE_URL": simulator.api_base_url,
        "PORTAL_ALLOW_SIGNALWIRE_BASE_URL": "true",
        "PORTAL_RATE_LIMIT_PER_SPACE": "200",
    }
    worker = start_celery_worker(env=env, concurrency=2)
    killed = inventory.request_sync(project, InventorySync.Trigger.MANUAL, by=admin_user)
    sync_inventory.delay(killed.pk)
    deadline = time.monotonic() + 60
    while InventorySync.objects.get(pk=killed.pk).pages_read < 2:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.05)

    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait()

    killed.refresh_from_db()
    assert killed.status == InventorySync.Status.RUNNING and 2 <= killed.pages_read < 9
    assert sorted(SpaceNumber.objects.values_list("number", flat=True)) == [
        "+14155550100",
        "+14155550101",
    ]
    # Once it has read nothing for the stale time, the page says the sync was interrupted.
    InventorySync.objects.filter(pk=killed.pk).update(
        progressed_at=timezone.now() - timezone.timedelta(hours=1)
    )
    client.force_login(admin_user)
    page = client.get(f"/projects/{project.pk}/").content.decode()
    assert "Interrupted" in page
    assert "stopped without finishing" in page

    # The broker redelivers the unacknowledged task: a new worker takes the stale sync over.
    start_celery_worker(env=env, concurrency=2)
    sync_inventory.delay(killed.pk)
    deadline = time.monotonic() + 90
    while InventorySync.objects.get(pk=killed.pk).status == InventorySync.Status.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.2)

    killed.refresh_from_db()
    assert killed.status == InventorySync.Status.COMPLETED
    assert (killed.pages_read, killed.numbers_listed, killed.added) == (9, 8002, 8000)
    assert SpaceNumber.objects.filter(project=project).count() == 8002


def test_a_number_moved_to_another_project_is_missing_here_and_new_there(
    project, simulator, sim_project, import_through_portal, make_project
):
    other_sim = SimProject(
        project_id=str(uuid.uuid4()), token="PT" + uuid.uuid4().hex, space_host=project.space_host
    )
    simulator.add_project(other_sim)
    other = make_project(
        name="Other",
        project_id=other_sim.project_id,
        space_host=project.space_host,
        token=other_sim.token,
    )
    import_through_portal(["+14155550100", "+14155550101"])

    change(simulator, sim_project.project_id, "+14155550101", project_id=other_sim.project_id)
    sync(project)
    sync(other)

    assert drift(project) == {"not_imported": [], "differs": [], "missing": ["+14155550101"]}
    assert drift(other)["not_imported"] == ["+14155550101"]


def test_a_list_failing_part_way_is_read_again_from_the_page_that_failed(
    project, simulator, sim_project, monkeypatch
):
    monkeypatch.setattr(inventory.time, "sleep", lambda seconds: None)
    bought_in_dashboard(simulator, sim_project.project_id, count=3500, start="+14155550000")
    control(
        simulator,
        "POST",
        f"projects/{sim_project.project_id}/list-fault",
        {"fault": "503", "after_pages": 2, "times": 2},
    )

    done = sync(project)

    assert (done.pages_read, done.numbers_listed) == (4, 3500)
    lists = [e["path"] for e in simulator.exchanges() if "/IncomingPhoneNumbers" in e["path"]]
    # Pages 0 and 1, page 2 failing twice, then 2 and 3: never page 0 again.
    assert len(lists) == 6
    assert lists[2] == lists[3] == lists[4] and "Page=2" in lists[2]


def test_a_list_that_keeps_failing_fails_the_sync_and_keeps_the_last_inventory(
    project, simulator, sim_project, monkeypatch
):
    monkeypatch.setattr(inventory.time, "sleep", lambda seconds: None)
    bought_in_dashboard(simulator, sim_project.project_id, ["+14155550100"])
    sync(project)
    bought_in_dashboard(simulator, sim_project.project_id, count=2500, start="+14155560000")
    control(
        simulator,
        "POST",
        f"projects/{sim_project.project_id}/list-fault",
        {"fault": "reset", "after_pages": 1, "times": inventory.PAGE_TRIES},
    )
    failed = InventorySync.start(project, InventorySync.Trigger.MANUAL)

    inventory.run_sync(failed)

    failed.refresh_from_db()
    assert failed.status == InventorySync.Status.FAILED
    assert failed.pages_read == 1
    assert "SignalWire could not list the numbers" in failed.error_message
    assert list(SpaceNumber.objects.values_list("number", flat=True)) == ["+14155550100"]


def test_a_sync_keeps_to_the_spaces_rate_limit(project, simulator, sim_project, settings):
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 2
    bought_in_dashboard(simulator, sim_project.project_id, count=8000, start="+14155500000")

    done = sync(project)

    assert done.pages_read == 8
    assert simulator.stats()["peak_rate"][sim_project.project_id] <= 2

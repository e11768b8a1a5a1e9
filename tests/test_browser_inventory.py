"""Issue 17 in a real browser: an admin presses "Sync now" on a project pointed at the
simulator; a real Celery worker reads the Space, and the panel, polling by itself, shows the
sync completed and the drift, whose counts link to the numbers list's inventory filters."""

import re

import pytest
import requests
from playwright.sync_api import expect

from phone_numbers.models import InventorySync
from signalwire_simulator import CONTROL_PREFIX
from tests.conftest import save_screenshot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.both_databases,
    pytest.mark.browser,
    # The live server and the worker read what the test writes; the roles' groups stay.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SYNC_SECONDS = 30


def test_admin_syncs_a_project_and_sees_the_result_and_the_drift_without_reloading(
    page,
    live_server,
    log_in,
    admin_user,
    simulator,
    sim_project,
    make_project,
    celery_worker_process,
):
    project = make_project(
        name="Simulated customer",
        project_id=sim_project.project_id,
        space_host=sim_project.space_host,
        token=sim_project.token,
    )
    added = requests.post(
        f"{simulator.url}{CONTROL_PREFIX}/projects/{sim_project.project_id}/numbers",
        json={"count": 1500, "start": "+14155550000"},
        timeout=30,
    )
    assert added.status_code == 201
    # Slow pages, so the page shows the sync running before it ends.
    simulator.configure(latency_min_ms=700, latency_max_ms=700)
    log_in(page, "ada", "admin-pass-1")
    page.goto(f"{live_server.url}/projects/{project.pk}/")
    panel = page.locator(f"section#project-{project.pk}-inventory")
    expect(panel).to_contain_text("has not been synced yet")
    page.evaluate("window.stillTheSamePage = true")

    panel.get_by_role("button", name="Sync now").click()

    expect(panel.locator(".badge")).to_have_text("Running")
    expect(panel.get_by_role("button", name="Sync now")).to_be_disabled()
    expect(panel.locator(".badge")).to_have_text("Completed", timeout=SYNC_SECONDS * 1000)
    expect(panel).to_contain_text("1,500 (2 pages)")
    expect(panel).to_contain_text("1,500 added, 0 removed, 0 changed")
    link = panel.get_by_role("link", name="1,500 in the Space, not imported by the portal")
    expect(link).to_be_visible()
    expect(panel.get_by_role("button", name="Sync now")).to_be_enabled()
    assert page.evaluate("window.stillTheSamePage") is True
    save_screenshot(page, "project-inventory-synced")
    assert InventorySync.objects.get().started_by == admin_user

    link.click()

    page.wait_for_url(re.compile(rf"/\?project={project.pk}&inventory=not_imported$"))

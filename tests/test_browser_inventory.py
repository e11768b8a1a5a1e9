"""Issue 17 in a real browser.

An admin presses "Sync now" on a project pointed at the simulator; a real Celery worker reads
the Space, and the panel, polling by itself, shows the sync completed and the drift; its
count links to the numbers list filtered to "In the Space, not imported by the portal", and a
number there opens its page. Support finds a number only in a Space by its digits, narrows the
list to that drift without a reload, and opens the number's page."""

import re

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from phone_numbers.models import ImportJob, InventorySync, NumberImport, SpaceNumber
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

    rows = page.locator("#number-results tbody tr")
    expect(rows.first).to_contain_text("In the Space, not imported here")
    expect(page.locator("#id_inventory")).to_have_value("not_imported")
    number_link = rows.first.locator("a").first
    number = number_link.inner_text()

    number_link.click()

    expect(page.locator("main h1")).to_contain_text(number)
    expect(page.locator("main")).to_contain_text("In the Space, not imported by the portal")
    expect(page.locator("main")).to_contain_text(project.name)


@pytest.fixture
def space(make_project, support_user) -> dict:
    """Two imports of the portal's, and a number only in the Space that a sync listed."""
    project = make_project(name="Acme Corp")
    job = ImportJob.objects.create(
        project=project,
        created_by=support_user,
        source="paste",
        number_type="longcode",
        capabilities=["sms", "voice"],
        input_digest="seeded",
    )
    for number in ["+14155550100", "+14155550101"]:
        NumberImport.objects.create(
            job=job,
            project=project,
            number=number,
            number_type="longcode",
            capabilities=["sms", "voice"],
            status="imported",
            imported_at=timezone.now(),
        )
    only_there = SpaceNumber.objects.create(
        project=project,
        sid="PNboughtinthedashboard",
        number="+14155550177",
        friendly_name="Bought in the dashboard",
        capabilities=["voice"],
        first_seen_at=timezone.now(),
        last_seen_at=timezone.now(),
    )
    return {"project": project, "only_there": only_there}


def test_support_finds_a_number_only_in_the_space_filters_drift_and_opens_it(
    page, live_server, log_in, space
):
    log_in(page, "sam", "support-pass-1")
    rows = page.locator("#number-results tbody tr")
    # The imports, then the number only in the Space.
    expect(rows).to_have_count(3)
    expect(rows.nth(2)).to_contain_text("In the Space, not imported here")
    page.evaluate("window.stillTheSamePage = true")

    page.locator("#id_inventory").select_option(label="In the Space, not imported by the portal")

    expect(page).to_have_url(re.compile(r"[?&]inventory=not_imported"))
    expect(rows).to_have_count(1)
    page.locator("#id_q").press_sequentially("0177", delay=60)
    expect(page).to_have_url(re.compile(r"[?&]q=0177"))
    expect(rows).to_have_count(1)
    assert page.evaluate("window.stillTheSamePage") is True
    save_screenshot(page, "numbers-only-in-the-space")

    rows.first.get_by_role("link", name="+1 415-555-0177").click()

    expect(page.locator("main h1")).to_contain_text("+1 415-555-0177")
    main = page.locator("main")
    expect(main).to_contain_text("In the Space, not imported by the portal")
    expect(main).to_contain_text("PNboughtinthedashboard")
    expect(main).to_contain_text("Bought in the dashboard")
    save_screenshot(page, "number-only-in-the-space")

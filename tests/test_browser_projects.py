"""Issue 4 in a real browser: an admin adds a project pointed at the simulator and sees its
connection checked by a real Celery worker; a support user cannot open the projects admin."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import save_screenshot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.both_databases,
    pytest.mark.browser,
    # The live server and the worker read what the test writes; the roles' groups stay.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# Long enough that the page shows "Checking…" before the worker is done, short enough to be quick.
SIMULATOR_LATENCY_MS = 750
CHECK_SECONDS = 20
# The project's page. "Replace token" links to the edit page's #id_token; the form posts to its
# own URL without it, so the redirect back here carries no fragment (issue 15).
PROJECT_PAGE = re.compile(r"/projects/\d+/$")


def connection_badge(page: Page):
    pk = re.search(r"/projects/(\d+)/", page.url).group(1)
    return page.locator(f"section#project-{pk}-connection .badge")


def test_admin_adds_a_project_sees_ok_and_sees_a_wrong_token_rejected(
    page, live_server, log_in, admin_user, simulator, sim_project, celery_worker_process
):
    simulator.configure(latency_min_ms=SIMULATOR_LATENCY_MS, latency_max_ms=SIMULATOR_LATENCY_MS)
    log_in(page, "ada", "admin-pass-1")
    page.goto(f"{live_server.url}/projects/")
    save_screenshot(page, "projects-list-admin")

    page.locator("main").get_by_role("link", name="Add project").click()
    page.locator("#id_name").fill("Simulated customer")
    page.locator("#id_space_host").fill("https://simulated.signalwire.com/dashboard")
    page.locator("#id_project_id").fill(sim_project.project_id)
    page.locator("#id_default_country").select_option("US")
    page.locator("#id_notes").fill("Pointed at the local simulator.")
    page.locator("#id_token").fill(sim_project.token)
    save_screenshot(page, "project-add-form")
    page.locator("main").get_by_role("button", name="Add project").click()

    page.wait_for_url(PROJECT_PAGE)
    # A reload would drop this marker: the badge must change through htmx alone.
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("main h1")).to_have_text("Simulated customer")
    expect(page.locator("main")).to_contain_text("simulated.signalwire.com")
    expect(connection_badge(page)).to_have_text("OK", timeout=CHECK_SECONDS * 1000)
    expect(page.locator("main")).to_contain_text("The token works")
    assert page.evaluate("window.stillTheSamePage") is True
    save_screenshot(page, "project-detail-ok")

    page.locator("main").get_by_role("link", name="Replace token").click()
    page.locator("#id_token").fill("PT" + "0" * 32)
    save_screenshot(page, "project-edit-form")
    page.locator("main").get_by_role("button", name="Save").click()

    page.wait_for_url(PROJECT_PAGE)
    page.evaluate("window.stillTheSamePage = true")
    expect(page.get_by_role("status")).to_contain_text("saved")
    badge = connection_badge(page)
    expect(badge).to_have_text("Credentials rejected", timeout=CHECK_SECONDS * 1000)
    expect(page.locator("main")).to_contain_text("SignalWire refused this token")
    save_screenshot(page, "project-detail-credentials-rejected")

    page.locator("main").get_by_role("button", name="Check connection").click()
    expect(badge).to_have_text("Checking…")
    expect(badge).to_have_text("Credentials rejected", timeout=CHECK_SECONDS * 1000)
    assert page.evaluate("window.stillTheSamePage") is True


def test_support_user_sees_projects_but_cannot_open_the_projects_admin(
    page, live_server, log_in, support_user, make_project
):
    project = make_project(name="Acme Corp")
    log_in(page, "sam", "support-pass-1")

    listing = page.goto(f"{live_server.url}/projects/")
    assert listing.status == 200
    expect(page.locator("main")).to_contain_text("Acme Corp")
    expect(page.locator("main").get_by_role("link", name="Add project")).to_have_count(0)
    save_screenshot(page, "projects-list-support")

    for path, name in [
        ("/projects/new/", "project-add-forbidden"),
        (f"/projects/{project.pk}/edit/", "project-edit-forbidden"),
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 403, path
        expect(page.locator("body")).to_contain_text("403 Forbidden")
        expect(page.locator("#id_token")).to_have_count(0)
        save_screenshot(page, name)


def test_the_edit_form_of_a_token_ending_in_an_html_comment_opener_shows_its_save_button(
    page, live_server, log_in, admin_user, make_project
):
    project = make_project(token="PTtoken-ending-<!--")
    log_in(page, "ada", "admin-pass-1")

    page.goto(f"{live_server.url}/projects/{project.pk}/edit/")

    expect(page.locator("#id_token_helptext")).to_contain_text("(…<!--)")
    expect(page.locator("main").get_by_role("button", name="Save")).to_be_visible()

"""Issue 15 in a real browser: saving "Replace token" ends on the project page without
`#id_token`, and the project page shows its jobs, with statuses that say what is happening, and
its numbers; a number's page tells its story."""

import re

import pytest
from playwright.sync_api import expect

from phone_numbers import importing
from phone_numbers.models import ImportJob, ImportStatus, NumberImport
from phone_numbers.number_input import read_pasted
from phone_numbers.signalwire import RequestRejected, SignalWireUnavailable
from phone_numbers.tasks import check_project_connection, import_phone_number
from tests.conftest import save_screenshot
from tests.fakes import FakeSignalWire

pytestmark = [
    pytest.mark.browser,
    pytest.mark.both_databases,
    # The live server reads what the test writes; the roles' groups stay.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(autouse=True)
def no_tasks_sent(monkeypatch) -> None:
    monkeypatch.setattr(import_phone_number, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(check_project_connection, "delay", lambda *args, **kwargs: None)


def start(project, user, numbers: list[str]) -> ImportJob:
    return importing.start_job(
        project=project,
        created_by=user,
        source="paste",
        ticket="HD-15",
        number_type="longcode",
        capabilities=["sms", "voice"],
        lines=read_pasted("\n".join(numbers)),
    )


def send(number: NumberImport, fake: FakeSignalWire) -> None:
    importing.import_number(
        NumberImport.objects.select_related("job", "project").get(pk=number.pk), client=fake
    )


def test_saving_replace_token_ends_on_the_project_page_without_a_fragment(
    page, live_server, log_in, admin_user, make_project
):
    project = make_project(name="Acme Corp")
    log_in(page, "ada", "admin-pass-1")
    page.goto(f"{live_server.url}/projects/{project.pk}/")

    page.locator("main").get_by_role("link", name="Replace token").click()
    page.wait_for_url(re.compile(r"/edit/#id_token$"))
    page.locator("#id_token").fill("PTreplaced-token-0002")
    page.locator("main").get_by_role("button", name="Save").click()

    page.wait_for_url(re.compile(r"/projects/\d+/"))
    expect(page.get_by_role("status").first).to_contain_text("saved")
    assert page.url == f"{live_server.url}/projects/{project.pk}/"
    assert project.active_credential.token_last4 == "0002"


def test_project_page_shows_job_statuses_in_words_and_a_number_its_story(
    page, live_server, log_in, admin_user, support_user, make_project, settings
):
    settings.PORTAL_MAX_ATTEMPTS = 1
    project = make_project(name="Acme Corp")
    cancelled = start(project, admin_user, ["+14155550100", "+14155550101", "+14155550102"])
    send(cancelled.numbers.order_by("pk").first(), FakeSignalWire())
    importing.cancel_pending(cancelled)
    retried = start(project, admin_user, ["+14155550110", "+14155550111"])
    for number in retried.numbers.all():
        send(number, FakeSignalWire(import_errors=[SignalWireUnavailable("Down", status=503)]))
    importing.retry_failed(retried)
    start(project, admin_user, ["+14155550120"])
    duplicate = start(project, admin_user, ["+14155550130"]).numbers.get()
    send(
        duplicate,
        FakeSignalWire(import_errors=[RequestRejected("Taken", status=422, is_duplicate=True)]),
    )

    log_in(page, "sam", "support-pass-1")
    page.goto(f"{live_server.url}/projects/{project.pk}/")

    jobs = page.locator("section#jobs")
    expect(jobs).to_contain_text("Cancelled after 1 of 3 imported")
    expect(jobs).to_contain_text("Retrying 2 numbers")
    expect(jobs).to_contain_text("Queued")
    expect(page.locator("section#numbers")).to_contain_text("+1 415-555-0130")
    save_screenshot(page, "project-page-jobs-and-numbers")

    page.locator("section#numbers").get_by_role("link", name="+1 415-555-0130").click()
    expect(page.locator("main")).to_contain_text("It is in the Space, not imported by the portal.")
    story = page.locator("table.story")
    expect(story).to_contain_text("Submitted in job")
    expect(story).to_contain_text("Attempt 1: failed: Already in the project")
    assert NumberImport.objects.get(pk=duplicate.pk).status == ImportStatus.FAILED
    save_screenshot(page, "number-story")

    page.go_back()
    page.locator("section#numbers").get_by_role("link", name="+1 415-555-0100").click()
    expect(page.locator("pre.response-json")).to_contain_text('"voice": true')
    save_screenshot(page, "number-signalwire-json")

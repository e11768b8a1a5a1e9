"""Issue 6 in a real browser: a support user finds a number by typing four of its digits
into the search box, sees the list narrow without a reload, and opens the number's page."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from phone_numbers.models import ImportJob, NumberImport
from tests.conftest import save_screenshot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.both_databases,
    pytest.mark.browser,
    # The live server reads what the test writes; the roles' groups stay.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def imported_numbers(make_project, support_user) -> list[NumberImport]:
    project = make_project(name="Acme Corp")
    job = ImportJob.objects.create(
        project=project,
        created_by=support_user,
        source="paste",
        ticket="HD-77",
        number_type="longcode",
        capabilities=["sms", "voice", "fax", "mms"],
        input_digest="seeded",
    )
    return [
        NumberImport.objects.create(
            job=job,
            project=project,
            number=number,
            number_type="longcode",
            capabilities=["sms", "voice", "fax", "mms"],
            status="imported",
            sid=f"sid-{index}",
            friendly_name=number,
            imported_at=timezone.now(),
            response={"sid": f"sid-{index}", "phone_number": number, "origin": "signalwire"},
        )
        for index, number in enumerate(["+14155550100", "+14155550187", "+442079460958"])
    ]


def test_support_user_finds_a_number_by_four_digits_and_opens_its_page(
    page, live_server, log_in, support_user, imported_numbers
):
    log_in(page, "sam", "support-pass-1")
    rows = page.locator("#number-results tbody tr")
    expect(rows).to_have_count(3)
    page.evaluate("window.stillTheSamePage = true")

    page.locator("#id_q").press_sequentially("0187", delay=60)

    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("+1 415-555-0187")
    assert page.evaluate("window.stillTheSamePage") is True
    # The URL carries the search, so it can be pasted into a ticket.
    expect(page).to_have_url(re.compile(r"[?&]q=0187"))
    save_screenshot(page, "numbers-search-4-digits")

    rows.first.get_by_role("link", name="+1 415-555-0187").click()

    expect(page.locator("main h1")).to_contain_text("+1 415-555-0187")
    expect(page.locator("main")).to_contain_text("sid-1")
    expect(page.locator("main")).to_contain_text("HD-77")
    save_screenshot(page, "number-page")
    page.go_back()
    expect(page.locator("#id_q")).to_have_value("0187")

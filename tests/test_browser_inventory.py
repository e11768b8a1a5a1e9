"""Issue 17 in a real browser: support finds a number that is only in a Space by its digits,
narrows the list to "In the Space, not imported by the portal" without a reload, and opens
the page of that number."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from phone_numbers.models import ImportJob, NumberImport, SpaceNumber
from tests.conftest import save_screenshot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.both_databases,
    pytest.mark.browser,
    # The live server reads what the test writes; the roles' groups stay.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


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

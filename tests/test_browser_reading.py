"""Issue 14 in a real browser: what people paste is never read as a wrong number in silence.

The walkthrough's lines are previewed in projects of three default countries; a line that
reads as two numbers is resolved by choosing one, a toll-free number in a long code import
keeps its own type unless the person chooses the other, and the confirmed job holds exactly
the numbers and types chosen.
"""

import pytest
from playwright.sync_api import Page, expect

from phone_numbers.models import ImportJob
from tests.conftest import save_screenshot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.both_databases,
    pytest.mark.browser,
    # The live server reads what the test writes; the roles' groups stay.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def cells(page: Page, typed: str):
    """The cells of the preview's row of the line typed as `typed`."""
    return page.locator("#import-preview tbody tr").filter(has_text=typed).locator("td")


def preview(page: Page, project: str, lines: list[str]) -> None:
    page.locator("#id_project").select_option(label=project)
    page.locator("#id_numbers").fill("\n".join(lines))
    page.locator("main").get_by_role("button", name="Preview").click()
    expect(page.locator("#import-preview .preview-head")).to_be_visible()


def test_the_walkthroughs_lines_are_read_as_meant_or_offered_or_refused_and_choices_reach_the_job(
    page, live_server, log_in, support_user, make_project
):
    make_project(name="US customer", space_host="us.signalwire.com", default_country="US")
    make_project(name="SG customer", space_host="sg.signalwire.com", default_country="SG")
    make_project(name="AU customer", space_host="au.signalwire.com", default_country="AU")
    log_in(page, "sam", "support-pass-1")
    page.goto(f"{live_server.url}/imports/new/")

    # Singapore dials out with 00 and more digits; 0065… and 0044… still mean +65 and +44.
    preview(page, "SG customer (sg.signalwire.com)", ["0065 6123 4567", "0044 20 7946 0958"])
    for typed, e164, how_read in [
        ("0065 6123 4567", "+6561234567", "International number (Singapore)"),
        ("0044 20 7946 0958", "+442079460958", "International number (United Kingdom)"),
    ]:
        expect(cells(page, typed).nth(2).locator(".mono")).to_have_attribute("title", e164)
        expect(cells(page, typed).nth(3)).to_have_text(
            f"{how_read}, 00 read as the international prefix"
        )

    # Letters: a lone O refused naming the digit; a vanity number read with a note.
    preview(
        page,
        "US customer (us.signalwire.com)",
        ["415-555-O1OO", "+1 415 555 01O1", "1-800-FLOWERS", "+1 (415) 555-0199 x5"],
    )
    for typed in ["415-555-O1OO", "+1 415 555 01O1"]:
        expect(cells(page, typed).nth(3)).to_have_text(
            "Rejected letter O where a digit was expected: did you mean 0?"
        )
    expect(cells(page, "1-800-FLOWERS").nth(2).locator(".mono")).to_have_text("+1 800-356-9377")
    expect(cells(page, "1-800-FLOWERS").nth(3)).to_contain_text(
        "letters read as keypad digits: +1 800-356-9377"
    )
    expect(cells(page, "x5").nth(2).locator(".mono")).to_have_text("+1 415-555-0199")
    expect(cells(page, "x5").nth(3)).to_have_text(
        "International number (United States); extension x5 left out"
    )
    save_screenshot(page, "preview-letters-and-extension")

    # Australia: 0016 is its international prefix with a carrier code, 00 the usual one.
    preview(
        page,
        "AU customer (au.signalwire.com)",
        ["0016497121234", "+61 2 9876 5432", "+1 800 555 0100", "+44 800 123 4567"],
    )
    head = page.locator("#import-preview .preview-head")
    expect(head).to_contain_text("1 to choose")
    expect(head.locator("button[name=confirm]")).to_have_text("Import 3 numbers")
    ambiguous = cells(page, "0016497121234")
    expect(ambiguous.nth(3)).to_contain_text("Two readings: +49 7121 234")
    expect(ambiguous.nth(3)).to_contain_text("or +1 649-712-1234")
    for typed in ["+1 800 555 0100", "+44 800 123 4567"]:
        expect(cells(page, typed).nth(4)).to_contain_text(
            "toll-free: will be imported as toll-free"
        )
    save_screenshot(page, "preview-two-readings")

    # Choose a reading and a type: the preview follows each choice.
    ambiguous.nth(2).locator("select").select_option("+16497121234")
    expect(head.locator("button[name=confirm]")).to_have_text("Import 4 numbers")
    expect(cells(page, "0016497121234").nth(3)).to_have_text(
        "International number (Turks and Caicos Islands), 00 read as the international "
        "prefix; chosen of two readings"
    )
    cells(page, "+44 800 123 4567").nth(4).locator("select").select_option("longcode")
    expect(cells(page, "+44 800 123 4567").nth(4)).to_contain_text(
        "toll-free number: will be imported as long code, as set for this row"
    )
    save_screenshot(page, "preview-chosen")

    head.locator("button[name=confirm]").click()
    page.wait_for_url(f"{live_server.url}/jobs/*/")
    job = ImportJob.objects.get()
    assert dict(job.numbers.values_list("number", "number_type")) == {
        "+16497121234": "longcode",
        "+61298765432": "longcode",
        "+18005550100": "tollfree",
        "+448001234567": "longcode",
    }

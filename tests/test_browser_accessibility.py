"""Issue 15 in a real browser: every page and every state htmx reaches passes axe-core's
WCAG 2.1 AA rules with no serious or critical violation, as an admin and as Support; every
action works from the keyboard alone; the main pages log no console error."""

import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import Page, expect

from phone_numbers.models import (
    ConnectionStatus,
    FailureCategory,
    ImportJob,
    NumberImport,
)
from tests.conftest import REPO_DIR, SCREENSHOT_DIR, save_screenshot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.both_databases,
    pytest.mark.browser,
    # The live server reads what the test writes; the roles' groups stay.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# WCAG 2.0 and 2.1, levels A and AA: the portal's target.
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = {"serious", "critical"}
# Each page's figures, for the lead's note: artifacts/accessibility.txt after a run.
REPORT = REPO_DIR / "artifacts" / "accessibility.txt"
AXE = Axe()


def axe_violations(page: Page) -> list[dict]:
    """axe-core's WCAG 2.1 AA violations on what the page shows now."""
    options = {"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]}
    return AXE.run(page, options=options).response["violations"]


class AccessibilityWalk:
    """Scans page after page, noting every page's violations, and fails once, at the end,
    naming every serious or critical one (so one run gives the figures of all pages)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.problems: list[str] = []
        self.lines: list[str] = []

    def scan(self, page: Page, name: str) -> None:
        # What htmx is still fetching or swapping is not what the person will see.
        expect(page.locator(".htmx-request, .htmx-settling")).to_have_count(0)
        violations = axe_violations(page)
        blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
        self.lines.append(f"{self.role:7} {name:45} {len(blocking):3} {len(violations):3}")
        for violation in blocking:
            targets = [" ".join(node["target"]) for node in violation["nodes"]][:5]
            self.problems.append(
                f"{self.role} / {name}: {violation['impact']} {violation['id']}: "
                f"{violation['help']} at {targets}"
            )

    def assert_clean(self) -> None:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        with Path(REPORT).open("a") as report:
            report.write("\n".join(self.lines) + "\n")
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def no_sending(monkeypatch):
    """Nothing leaves for a worker: a confirmed job's numbers stay pending, a connection
    check stays "checking" until the test records its outcome."""
    from phone_numbers.tasks import check_project_connection, import_phone_number

    monkeypatch.setattr(import_phone_number, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(check_project_connection, "delay", lambda *args, **kwargs: None)


@pytest.fixture
def portal_data(make_project, admin_user, support_user, no_sending) -> dict:
    """A project with a finished job (imported and failed rows) and a running one."""
    project = make_project(name="Acme Corp", space_host="acme.signalwire.com")
    project.record_connection_check(ConnectionStatus.OK)
    make_project(name="Old customer", space_host="old.signalwire.com", is_active=False)
    finished = ImportJob.objects.create(
        project=project,
        created_by=support_user,
        source="paste",
        ticket="HD-77",
        number_type="longcode",
        capabilities=["sms", "voice"],
        input_digest="finished",
    )
    imported = NumberImport.objects.create(
        job=finished,
        project=project,
        number="+14155550100",
        input_text="(415) 555-0100",
        input_line=1,
        number_type="longcode",
        capabilities=["sms", "voice"],
        status="imported",
        attempts=1,
        sid="PN-sid-0100",
        friendly_name="+14155550100",
        imported_at=timezone.now(),
        response={"sid": "PN-sid-0100", "capabilities": {"voice": True, "sms": True}},
    )
    failed = NumberImport.objects.create(
        job=finished,
        project=project,
        number="+14155550101",
        input_line=2,
        number_type="longcode",
        capabilities=["sms", "voice"],
        status="failed",
        attempts=1,
        failure_category=FailureCategory.INVALID_INPUT,
        error_message="The number type does not match the number.",
        http_status=422,
    )
    running = ImportJob.objects.create(
        project=project,
        created_by=admin_user,
        source="paste",
        number_type="tollfree",
        capabilities=["sms", "voice", "fax", "mms"],
        input_digest="running",
    )
    for index in range(3):
        NumberImport.objects.create(
            job=running,
            project=project,
            number=f"+1800555{index:04d}",
            input_line=index + 1,
            number_type="tollfree",
            capabilities=["sms", "voice", "fax", "mms"],
        )
    return {
        "project": project,
        "finished": finished,
        "running": running,
        "imported": imported,
        "failed": failed,
    }


def visit(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("main h1")).to_be_visible()
    # A template comment over two lines is printed, not hidden.
    expect(page.locator("body")).not_to_contain_text("{#")


def test_pages_with_nothing_yet_are_accessible(page, live_server, log_in, admin_user):
    walk = AccessibilityWalk("admin")
    visit(page, f"{live_server.url}/login/")
    walk.scan(page, "login")
    page.locator("#id_username").fill("ada")
    page.locator("#id_password").fill("wrong password")
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.locator(".form-error")).to_be_visible()
    walk.scan(page, "login, wrong password")
    log_in(page, "ada", "admin-pass-1")
    for name, path in [
        ("numbers list, empty", "/"),
        ("jobs list, empty", "/jobs/"),
        ("projects list, empty", "/projects/"),
        ("audit log", "/audit/"),
    ]:
        visit(page, live_server.url + path)
        walk.scan(page, name)
    visit(page, f"{live_server.url}/audit/?person=nobody")
    walk.scan(page, "audit log, no match")
    walk.assert_clean()


def test_every_admin_page_and_htmx_state_is_accessible(page, live_server, log_in, portal_data):
    project, failed = portal_data["project"], portal_data["failed"]
    walk = AccessibilityWalk("admin")
    log_in(page, "ada", "admin-pass-1")
    pages = [
        ("numbers list", "/"),
        ("numbers list, filtered", "/?q=0100&status=&capability=sms"),
        ("numbers list, no match", "/?q=999999"),
        ("number page, imported", f"/numbers/{portal_data['imported'].pk}/"),
        ("number page, failed", f"/numbers/{failed.pk}/"),
        ("where is this number", "/numbers/where/"),
        ("where is this number, found", "/numbers/where/?number=4155550100"),
        ("where is this number, not a number", "/numbers/where/?number=hello"),
        ("jobs list", "/jobs/"),
        ("job page, running", f"/jobs/{portal_data['running'].pk}/"),
        ("job page, finished", f"/jobs/{portal_data['finished'].pk}/"),
        ("edit and retry, its own page", f"/numbers/{portal_data['failed'].pk}/retry/"),
        ("projects list", "/projects/"),
        ("projects list, no match", "/projects/?q=nothing-like-this"),
        ("project page", f"/projects/{project.pk}/"),
        ("project form, new", "/projects/new/"),
        ("project form, edit", f"/projects/{project.pk}/edit/"),
        ("audit log", "/audit/"),
        ("404 page", "/jobs/999999/"),
        ("password change", "/password/"),
        ("email preferences", "/account/email/"),
    ]
    for name, path in pages:
        visit(page, live_server.url + path)
        walk.scan(page, name)

    # A failed row's edit form, opened.
    visit(page, f"{live_server.url}/jobs/{portal_data['finished'].pk}/")
    page.get_by_text("Edit and retry").click()
    expect(page.locator(".retry-one form")).to_be_visible()
    walk.scan(page, "job page, failed row's edit form")

    # The project form refused.
    visit(page, f"{live_server.url}/projects/new/")
    page.locator("main").get_by_role("button", name="Add project").click()
    expect(page.locator(".field-error").first).to_be_visible()
    walk.scan(page, "project form, with errors")

    # New import: the page, a refused preview, a preview, then the job it starts.
    visit(page, f"{live_server.url}/imports/new/")
    walk.scan(page, "new import")
    page.locator("main").get_by_role("button", name="Preview").click()
    expect(page.locator("#import-preview .form-error")).to_be_visible()
    walk.scan(page, "new import, preview refused")
    page.locator("#id_project").select_option(label="Acme Corp (acme.signalwire.com)")
    page.locator("#id_numbers").fill("+1 415 555 0199\nhello\n0199\n+1 415 555 0100")
    page.locator("main").get_by_role("button", name="Preview").click()
    expect(page.locator("#import-preview button[name=confirm]")).to_be_visible()
    walk.scan(page, "new import, preview")
    page.locator("#import-preview button[name=confirm]").click()
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    walk.scan(page, "job page, just confirmed")

    # The numbers list's one-number import, opened, and its preview.
    visit(page, f"{live_server.url}/")
    page.locator(".single-import-panel summary").click()
    page.locator("#import-project").select_option(label="Acme Corp (acme.signalwire.com)")
    page.locator("#single-number").fill("(415) 555-0177")
    page.locator(".single-import").get_by_role("button", name="Preview").click()
    expect(page.locator("#import-preview button[name=confirm]")).to_be_visible()
    walk.scan(page, "numbers list, one-number import preview")

    # Check connection: "checking" swapped in by htmx, then the result, polled in.
    visit(page, f"{live_server.url}/projects/{project.pk}/")
    page.locator("main").get_by_role("button", name="Check connection").click()
    badge = page.locator(f"#project-{project.pk}-connection .badge")
    expect(badge).to_have_text("Checking…")
    walk.scan(page, "project page, checking connection")
    project.record_connection_check(ConnectionStatus.CREDENTIALS_REJECTED, "401 Unauthorized")
    expect(badge).not_to_have_text("Checking…", timeout=5000)
    walk.scan(page, "project page, connection result")

    # A flash message after an action.
    visit(page, f"{live_server.url}/jobs/{portal_data['running'].pk}/")
    page.locator("main").get_by_role("button", name="Pause").click()
    expect(page.locator(".messages")).to_be_visible()
    walk.scan(page, "job page, paused, with a message")
    walk.assert_clean()


def test_every_support_page_is_accessible(page, live_server, log_in, portal_data):
    walk = AccessibilityWalk("support")
    log_in(page, "sam", "support-pass-1")
    pages = [
        ("numbers list", "/"),
        ("number page, failed", f"/numbers/{portal_data['failed'].pk}/"),
        ("jobs list", "/jobs/"),
        ("job page, finished", f"/jobs/{portal_data['finished'].pk}/"),
        ("edit and retry, its own page", f"/numbers/{portal_data['failed'].pk}/retry/"),
        ("projects list", "/projects/"),
        ("project page", f"/projects/{portal_data['project'].pk}/"),
        ("403 page (audit log)", "/audit/"),
        ("403 page (project form)", "/projects/new/"),
        ("new import", "/imports/new/"),
        ("email preferences", "/account/email/"),
    ]
    for name, path in pages:
        visit(page, live_server.url + path)
        walk.scan(page, name)
    walk.assert_clean()


# A keyboard user must see where they are: the portal's own outline, not the browser's
# 1px default ring.
FOCUS_OUTLINE_PX = 2
# The job page polls every 2 s; htmx settles a swap within 20 ms.
POLL_MS = 2000
SETTLE_MS = 200
NON_TEXT_CONTRAST = 3
MAX_TABS = 60


def focused(page: Page) -> dict:
    """What has the keyboard's focus: its tag, id, name, text, and its outline with the
    contrast of the outline's colour against the background behind it (WCAG 1.4.11)."""
    return page.evaluate(
        """() => {
            const element = document.activeElement;
            const style = getComputedStyle(element);
            const rgb = text => text.match(/[\\d.]+/g).map(Number);
            const luminance = ([r, g, b]) => {
                const linear = c =>
                    (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
                return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
            };
            // The outline is drawn outside the element: on its parents' background.
            let behind = element.parentElement;
            while (behind && rgb(getComputedStyle(behind).backgroundColor)[3] === 0) {
                behind = behind.parentElement;
            }
            const background = behind
                ? rgb(getComputedStyle(behind).backgroundColor) : [255, 255, 255];
            const [light, dark] = [luminance(rgb(style.outlineColor)), luminance(background)]
                .sort((a, b) => b - a);
            return {
                tag: element.tagName.toLowerCase(),
                id: element.id,
                name: element.getAttribute("name") || "",
                text: (element.innerText || element.value || "").trim(),
                outline: style.outlineStyle,
                outlineWidth: parseFloat(style.outlineWidth),
                outlineContrast: (light + 0.05) / (dark + 0.05),
                focusVisible: element.matches(":focus-visible"),
            };
        }"""
    )


def tab_to(page: Page, matches, what: str) -> dict:
    """Press Tab until the focused element `matches`; it must show a visible focus outline."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        element = focused(page)
        if matches(element):
            assert element["focusVisible"], f"{what} has focus but not :focus-visible"
            assert element["outline"] == "solid", f"{what} shows no focus outline: {element}"
            assert element["outlineWidth"] >= FOCUS_OUTLINE_PX, f"{what}: {element}"
            assert element["outlineContrast"] >= NON_TEXT_CONTRAST, f"{what}: {element}"
            return element
    raise AssertionError(f"{MAX_TABS} presses of Tab never reached {what}")


def test_a_whole_import_works_from_the_keyboard_with_a_visible_focus(
    page, live_server, portal_data
):
    # Log in.
    page.goto(f"{live_server.url}/login/")
    tab_to(page, lambda e: e["id"] == "id_username", "the username")
    page.keyboard.type("sam")
    tab_to(page, lambda e: e["id"] == "id_password", "the password")
    page.keyboard.type("support-pass-1")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/")

    # The skip link comes first and is shown when focused.
    skip = tab_to(page, lambda e: e["text"] == "Skip to content", "the skip link")
    assert skip["tag"] == "a"
    expect(page.get_by_role("link", name="Skip to content")).to_be_in_viewport()

    # To New import, through the main menu.
    tab_to(page, lambda e: e["text"] == "New import", "the New import link")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/imports/new/")

    # Choose the project, paste numbers, preview.
    tab_to(page, lambda e: e["id"] == "id_project", "the project picker")
    page.keyboard.type("Acme")
    expect(page.locator("#id_project")).to_have_value(str(portal_data["project"].pk))
    tab_to(page, lambda e: e["id"] == "id_numbers", "the numbers box")
    page.keyboard.type("+1 415 555 0150\n(415) 555-0151\nhello")
    tab_to(page, lambda e: e["tag"] == "button" and e["text"] == "Preview", "Preview")
    page.keyboard.press("Enter")
    confirm = page.locator("#import-preview button[name=confirm]")
    expect(confirm).to_have_text("Import 2 numbers")

    # Confirm with the space bar: the job's page opens.
    tab_to(page, lambda e: e["name"] == "confirm", "the confirm button")
    page.keyboard.press("Space")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    expect(page.locator("main h1")).to_contain_text("Acme Corp")
    expect(page.locator("main")).to_contain_text("+1 415-555-0150")

    # The page polls while numbers are pending, and replaces what is on it: a focused button
    # keeps the focus, and an opened "Edit and retry" form stays open.
    job = ImportJob.objects.order_by("-pk").first()
    job.numbers.filter(number="+14155550151").update(
        status="failed", attempts=1, failure_category=FailureCategory.INVALID_INPUT
    )
    expect(page.locator("a.retry-one")).to_be_visible()
    cancel = lambda e: e["text"] == "Cancel 1 not yet sent"  # noqa: E731
    tab_to(page, cancel, "the Cancel button")
    with page.expect_response(lambda response: response.url == page.url):
        pass  # the next poll
    page.wait_for_timeout(SETTLE_MS)
    assert cancel(focused(page)), f"a poll took the focus: {focused(page)}"
    # The row's link brings its form in, with the focus on its first field (a screen reader
    # says where it is), and the polls leave it alone until it is sent.
    link = tab_to(page, lambda e: e["text"].startswith("Edit and retry"), "Edit and retry")
    # Each row's link names its number, for a screen reader's list of links.
    assert (link["tag"], " ".join(link["text"].split())) == (
        "a",
        "Edit and retry +1 415-555-0151",
    ), link
    page.keyboard.press("Enter")
    expect(page.locator(".retry-one")).to_have_attribute("open", "")
    page.wait_for_timeout(POLL_MS * 2)
    expect(page.locator(".retry-one")).to_have_attribute("open", "")
    assert focused(page)["name"] == "number_type", f"the form's field has no focus: {focused(page)}"
    page.keyboard.press("ArrowDown")
    tab_to(page, lambda e: e["text"] == "Retry", "Retry")
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_have_text("+1 415-555-0151 is being retried.")
    assert job.numbers.get(number="+14155550151").number_type == "tollfree"
    tab_to(page, lambda e: e["text"] == "Cancel 2 not yet sent", "the Cancel button")
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_have_text("2 numbers not yet sent were cancelled.")

    # Open one of its numbers, then go back to the jobs list and open the job again.
    tab_to(page, lambda e: e["text"] == "+1 415-555-0151", "the number's link")
    page.keyboard.press("Enter")
    expect(page.locator("main h1")).to_contain_text("+1 415-555-0151")
    tab_to(page, lambda e: e["text"] == "Jobs", "the Jobs link")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/jobs/")
    newest = ImportJob.objects.order_by("-pk").first()
    tab_to(page, lambda e: e["text"] == f"Job {newest.pk}", "the newest job's link")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/jobs/{newest.pk}/")


# WCAG 1.4.10: at 320 CSS pixels wide (a 1280 px window at 400 %), nothing but a table scrolls
# sideways.
NARROW = {"width": 320, "height": 700}


def test_the_pages_reflow_into_a_narrow_window(page, live_server, log_in, portal_data):
    page.set_viewport_size(NARROW)
    log_in(page, "sam", "support-pass-1")
    too_wide = {}
    for path in [
        "/",
        "/imports/new/",
        f"/jobs/{portal_data['finished'].pk}/",
        f"/numbers/{portal_data['failed'].pk}/",
        f"/projects/{portal_data['project'].pk}/",
        "/numbers/where/?number=4155550100",
    ]:
        visit(page, live_server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > NARROW["width"]:
            too_wide[path] = width
    save_screenshot(page, "layout-narrow-window")
    assert not too_wide, f"pages wider than {NARROW['width']} px: {too_wide}"


def test_what_htmx_changes_on_a_page_is_said_to_screen_readers(
    page, live_server, log_in, portal_data
):
    log_in(page, "sam", "support-pass-1")
    announcer = page.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    # The page as loaded says nothing more than itself.
    expect(announcer).to_have_text("")

    page.locator("#id_q").press_sequentially("0100", delay=30)
    expect(page).to_have_url(re.compile(r"q=0100"))
    expect(announcer).to_have_text("Showing 1–1")
    page.locator("#id_q").press_sequentially("9", delay=30)
    expect(announcer).to_have_text(
        "No numbers match. Only imported numbers are shown: choose “Any status” to see the rest."
    )

    visit(page, f"{live_server.url}/imports/new/")
    page.locator("#id_project").select_option(label="Acme Corp (acme.signalwire.com)")
    page.locator("#id_numbers").fill("+1 415 555 0180\nhello")
    page.locator("main").get_by_role("button", name="Preview").click()
    expect(announcer).to_have_text("1 to import 1 rejected of 2 lines")


def test_the_copy_button_copies_the_e164_form_from_the_keyboard_and_says_so(
    page, live_server, log_in, portal_data
):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "sam", "support-pass-1")
    visit(page, f"{live_server.url}/numbers/{portal_data['imported'].pk}/")

    tab_to(page, lambda e: e["text"] == "Copy", "the Copy button")
    page.keyboard.press("Enter")

    expect(page.locator("main h1 .copy")).to_have_text("Copied")
    expect(page.locator("#announcer")).to_have_text("Copied +14155550100")
    assert page.evaluate("navigator.clipboard.readText()") == "+14155550100"


def test_the_main_pages_log_no_console_error_and_every_request_answers(
    page, live_server, log_in, portal_data
):
    problems: list[str] = []
    page.on(
        "console",
        lambda message: message.type == "error" and problems.append(f"console: {message.text}"),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "response",
        lambda response: (
            response.status >= 400 and problems.append(f"{response.status} {response.url}")
        ),
    )
    log_in(page, "ada", "admin-pass-1")
    for path in [
        "/",
        "/numbers/where/?number=4155550100",
        "/jobs/",
        f"/jobs/{portal_data['finished'].pk}/",
        "/projects/",
        f"/projects/{portal_data['project'].pk}/",
        "/audit/",
    ]:
        visit(page, live_server.url + path)
    # htmx at work: searching, and on New import the project filter and a preview.
    visit(page, f"{live_server.url}/")
    page.locator("#id_q").press_sequentially("0100", delay=30)
    expect(page).to_have_url(re.compile(r"q=0100"))
    visit(page, f"{live_server.url}/imports/new/")
    page.locator(".project-filter").press_sequentially("acme", delay=30)
    expect(page.locator("#id_project option")).to_have_count(2)
    page.locator("#id_project").select_option(label="Acme Corp (acme.signalwire.com)")
    page.locator("#id_numbers").fill("+1 415 555 0170")
    page.locator("main").get_by_role("button", name="Preview").click()
    expect(page.locator("#import-preview button[name=confirm]")).to_be_visible()

    icon = page.request.get(f"{live_server.url}/favicon.ico")
    assert icon.ok and icon.headers["content-type"].startswith("image/"), icon.status
    assert not problems, problems


# ---------------------------------------------------------------------------------------------
# Words and layout: what people read is a label, a formatted number, a count with separators;
# nothing wraps that should not. Screenshots of each go to docs/screenshots/words-*.png.
# ---------------------------------------------------------------------------------------------

# The widths support staff's browsers have: a laptop, and a window beside a helpdesk.
LAPTOP = {"width": 1280, "height": 900}
HALF_SCREEN = {"width": 900, "height": 900}
BIG_IMPORT = 1200


def top_of(locator) -> float:
    return locator.bounding_box()["y"]


def test_the_preview_shows_labels_formatted_numbers_and_separated_counts(
    page, live_server, log_in, portal_data
):
    page.set_viewport_size(LAPTOP)
    log_in(page, "sam", "support-pass-1")
    visit(page, f"{live_server.url}/imports/new/")
    page.locator("#id_project").select_option(label="Acme Corp (acme.signalwire.com)")
    # A toll-free number in a long code import is offered both types, by their labels.
    lines = [f"+1 212 555 {index:04d}" for index in range(BIG_IMPORT - 1)] + ["1 800 555 0199"]
    page.locator("#id_numbers").fill("\n".join(lines))
    page.locator("main").get_by_role("button", name="Preview").click()

    preview = page.locator("#import-preview")
    expect(preview.locator("button[name=confirm]")).to_have_text("Import 1,200 numbers")
    expect(preview.locator(".preview-head")).to_contain_text("1,200 to import")
    expect(preview.locator(".preview-head")).to_contain_text("of 1,200 lines")
    expect(preview.locator(".pager")).to_contain_text("of 1,200")
    toll_free = preview.locator("tbody tr").first
    expect(toll_free.locator("td").nth(2).locator(".mono")).to_have_text("+1 800-555-0199")
    expect(toll_free.locator("select option")).to_have_text(["Toll-free", "Long code"])
    first = preview.locator("tbody tr").nth(1)
    number = first.locator("td").nth(2)
    expect(number.locator(".mono")).to_have_text("+1 212-555-0000")
    expect(number.locator(".mono")).to_have_attribute("title", "+12125550000")
    expect(number.get_by_role("button", name="Copy +12125550000")).to_be_visible()
    expect(first.locator("td").nth(4)).to_have_text("Long code")
    # The page holds a hundred rows: its top part says it all.
    preview.locator("h2").scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOT_DIR / "words-preview-labels-and-counts.png")


def test_edit_and_retry_works_without_javascript(page, live_server, log_in, portal_data):
    # The row's link is a real link: without script it opens the form on a page of its own.
    no_script = page.context.browser.new_context(java_script_enabled=False).new_page()
    log_in(no_script, "sam", "support-pass-1")
    visit(no_script, f"{live_server.url}/jobs/{portal_data['finished'].pk}/")

    no_script.locator("a.retry-one").click()
    no_script.wait_for_url(f"{live_server.url}/numbers/{portal_data['failed'].pk}/retry/")
    expect(no_script.locator("main h1")).to_contain_text("Edit and retry +1 415-555-0101")
    no_script.get_by_label("Type").select_option("tollfree")
    no_script.locator("main").get_by_role("button", name="Retry").click()

    no_script.wait_for_url(f"{live_server.url}/jobs/{portal_data['finished'].pk}/")
    expect(no_script.locator(".messages")).to_have_text("+1 415-555-0101 is being retried.")
    assert NumberImport.objects.get(pk=portal_data["failed"].pk).number_type == "tollfree"


def test_the_job_rows_and_a_retried_row_name_numbers_as_people_read_them(
    page, live_server, log_in, portal_data
):
    log_in(page, "sam", "support-pass-1")
    visit(page, f"{live_server.url}/jobs/{portal_data['finished'].pk}/")
    # SignalWire's default friendly name is the bare E.164 number.
    details = page.locator("tbody tr").first.locator("td").nth(5)
    expect(details).to_contain_text("+1 415-555-0100")
    expect(details).not_to_contain_text("+14155550100")
    page.get_by_text("Edit and retry").click()
    page.locator(".retry-one").get_by_role("button", name="Retry").click()

    expect(page.locator(".messages")).to_have_text("+1 415-555-0101 is being retried.")
    save_screenshot(page, "words-retry-message")
    # The audit log names it the same way.
    page.locator("header").get_by_role("button", name="Log out").click()
    log_in(page, "ada", "admin-pass-1")
    visit(page, f"{live_server.url}/audit/")
    job_pk = portal_data["finished"].pk
    retried = page.locator("tbody tr").filter(has_text=f"(job {job_pk})")
    expect(retried.locator("td").nth(5)).to_contain_text(f"+1 415-555-0101 (job {job_pk})")


def test_where_is_this_number_keeps_the_countrys_capitals(page, live_server, log_in, portal_data):
    log_in(page, "sam", "support-pass-1")
    visit(page, f"{live_server.url}/numbers/where/?number=415 555 0100")

    expect(page.locator("main")).to_contain_text(
        "Read as +1 415-555-0100 (assumed United States, the project's default country)."
    )
    save_screenshot(page, "words-where-is-this-number")


def test_the_jobs_list_says_each_jobs_status_and_keeps_job_names_on_one_line(
    page, live_server, log_in, portal_data
):
    page.set_viewport_size(HALF_SCREEN)
    log_in(page, "sam", "support-pass-1")
    visit(page, f"{live_server.url}/jobs/")

    header = page.locator("thead th")
    expect(header.nth(1)).to_have_text("Status")
    running = page.locator("tbody tr").filter(has_text=f"Job {portal_data['running'].pk}")
    finished = page.locator("tbody tr").filter(has_text=f"Job {portal_data['finished'].pk}")
    for row, job in ((running, portal_data["running"]), (finished, portal_data["finished"])):
        expect(row.locator("td").nth(1)).to_have_text(job.status_text(job.counts()))
    for row in (running, finished):
        link = row.get_by_role("link", name=re.compile(r"^Job \d+$"))
        words = link.evaluate("""link => [...link.getClientRects()].length""")
        assert words == 1, f"{link.text_content()} wraps over {words} lines"
    save_screenshot(page, "words-jobs-list-status")


def test_the_numbers_list_keeps_its_filters_and_rows_on_one_line_and_a_short_url(
    page, live_server, log_in, portal_data
):
    page.set_viewport_size(HALF_SCREEN)
    log_in(page, "sam", "support-pass-1")
    visit(page, f"{live_server.url}/")
    filters = page.locator(".filters-row")

    # The date range reads "Imported [from] to [to]" on one line.
    assert top_of(filters.locator("#id_imported_to")) == top_of(
        filters.locator("#id_imported_from")
    )
    # A number and its Copy button share one line: the row is as high as a plain one.
    cell = page.locator("#number-results tbody tr").first.locator("td").first
    number = cell.get_by_role("link", name="+1 415-555-0100")
    copy = cell.get_by_role("button", name="Copy +14155550100")
    assert abs(top_of(copy) - top_of(number)) < number.bounding_box()["height"]
    save_screenshot(page, "layout-numbers-list")

    # Filtering leaves only what was set in the URL, with htmx...
    page.locator("#id_capability").select_option("sms")
    expect(page).to_have_url(f"{live_server.url}/?capability=sms")
    # ...including "Any status", which is not the default (imported numbers only).
    page.locator("#id_status").select_option("")
    expect(page).to_have_url(f"{live_server.url}/?status=&capability=sms")
    expect(page.locator("#number-results tbody tr")).to_have_count(5)
    # ...and without htmx, by the Search button.
    page.locator("#id_q").fill("0101")
    page.locator("main").get_by_role("button", name="Search").click()
    expect(page).to_have_url(f"{live_server.url}/?q=0101&status=&capability=sms")
    expect(page.locator("#number-results tbody tr")).to_have_count(1)

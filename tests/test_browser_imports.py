"""Issue 5 in a real browser: a support user pastes 50 numbers in mixed formats with some bad
lines, sees the preview, confirms, watches the bar fill, sees the failures explained, retries
them and exports the CSV. A real Celery worker imports into the simulator over HTTP."""

import csv
import io
import re
import time

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

# The ways people write numbers, for a project whose default country is the US.
US_FORMATS = [
    "+1 415 555 {:04d}",
    "(415) 555-{:04d}",
    "415.555.{:04d}",
    "tel:+1-415-555-{:04d}",
    "1-415-555-{:04d}",
    "415 555 {:04d}",
]
GOOD_LINES = (
    [US_FORMATS[index % len(US_FORMATS)].format(100 + index) for index in range(36)]
    + [f"0044 20 7946 {958 + index:04d}" for index in range(4)]  # 00 international prefix
    + [f"011 44 20 7946 {970 + index:04d}" for index in range(4)]  # the US exit code
)
# Bad lines, each inserted before the good line at that index, with the reason people see.
BAD_LINES = {
    3: ("hello", "Not a phone number"),
    9: ("12345", "Too short for a number in United States: include the area code"),
    17: ("(415) 555-0100", "Duplicate of line 1"),  # line 1 is "+1 415 555 0100"
    25: ("555-0199", "Too short for a number in United States: include the area code"),
    38: ("+999 1234 5678", "Unknown country code"),
    44: ("+44 20 7946 0958", "Duplicate of line {uk}"),  # the first "0044 20 7946 0958"
}
IMPORTABLE = len(GOOD_LINES)

# Each request to the simulator takes this long, and the worker sends two at a time, so the
# 44 numbers take several seconds: long enough to see the bar move between two polls.
SIMULATOR_LATENCY_MS = 350
WORKER_CONCURRENCY = 2
# Of the imports, about this share answer 503; with one attempt each, those numbers fail.
FAULTY_503_FRACTION = 0.3
WORKER_ENV = {
    "SIGNALWIRE_CONNECT_TIMEOUT_MS": "1000",
    "SIGNALWIRE_READ_TIMEOUT_MS": "2000",
    "PORTAL_RETRY_BASE_SECONDS": "1",
    "PORTAL_RETRY_MAX_SECONDS": "2",
    "PORTAL_MAX_ATTEMPTS": "1",
    "PORTAL_RATE_LIMIT_PER_SPACE": "200",
}
JOB_SECONDS = 30
JOB_PAGE = re.compile(r"/jobs/(\d+)/$")


def pasted_lines() -> tuple[list[str], dict[int, str]]:
    """The 50 lines in order, and the reason expected for each bad line by line number."""
    lines: list[str] = []
    problems: dict[int, str] = {}
    for index in range(len(GOOD_LINES) + 1):
        if index in BAD_LINES:
            text, problem = BAD_LINES[index]
            lines.append(text)
            problems[len(lines)] = problem
        if index < len(GOOD_LINES):
            lines.append(GOOD_LINES[index])
    uk_line = lines.index("0044 20 7946 0958") + 1
    problems = {line: problem.format(uk=uk_line) for line, problem in problems.items()}
    return lines, problems


@pytest.fixture
def no_server_errors(page):
    """Fail the test (at teardown) naming every answer of 500 or more the browser received.

    htmx leaves the page as it was when the server fails, so a failing view would otherwise
    show only as a wait that timed out.
    """
    errors: list[str] = []

    def note(response) -> None:
        if response.status >= 500:
            errors.append(f"{response.status} {response.request.method} {response.url}")

    page.on("response", note)
    yield errors
    assert not errors, f"the server failed to answer: {errors}"


def count(page: Page, live, label: str):
    """The count badge of one status in the job's live region, e.g. "Imported 44"."""
    return live.locator("ul.counts li").filter(has=page.locator(".badge", has_text=label))


def progress_of(page: Page, pk: str) -> tuple[float, float] | None:
    return page.evaluate(
        """pk => {
            const bar = document.querySelector(`#job-${pk}-live progress`);
            return bar ? [bar.value, bar.max] : null;
        }""",
        pk,
    )


def watch_the_bar_fill(page: Page, pk: str, screenshot: str | None = None) -> list[float]:
    """Every value the progress bar shows until it is full; `screenshot` while it fills."""
    seen: list[float] = []
    deadline = time.monotonic() + JOB_SECONDS
    screenshot_taken = screenshot is None
    while True:
        shown = progress_of(page, pk)
        if shown is not None:
            value, maximum = shown
            if not seen or seen[-1] != value:
                seen.append(value)
            if 0 < value < maximum and not screenshot_taken:
                save_screenshot(page, screenshot)
                screenshot_taken = True
            if value == maximum:
                return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"the bar did not fill in {JOB_SECONDS} s: {seen}")
        page.wait_for_timeout(100)


def test_support_user_imports_50_pasted_numbers_retries_the_failures_and_exports_the_csv(
    page,
    no_server_errors,
    live_server,
    log_in,
    support_user,
    make_project,
    simulator,
    sim_project,
    start_celery_worker,
    tmp_path,
):
    make_project(
        name="Simulated customer",
        project_id=sim_project.project_id,
        space_host=sim_project.space_host,
        token=sim_project.token,
        default_country="US",
    )
    simulator.configure(
        latency_min_ms=SIMULATOR_LATENCY_MS,
        latency_max_ms=SIMULATOR_LATENCY_MS,
        error_503_fraction=FAULTY_503_FRACTION,
    )
    start_celery_worker(
        env={
            **WORKER_ENV,
            "SIGNALWIRE_BASE_URL": simulator.api_base_url,
            "PORTAL_ALLOW_SIGNALWIRE_BASE_URL": "true",
        },
        concurrency=WORKER_CONCURRENCY,
    )
    lines, problems = pasted_lines()
    assert len(lines) == 50 and len(problems) == 50 - IMPORTABLE

    # Paste, preview: the page stays (htmx), and says what is wrong with which line.
    log_in(page, "sam", "support-pass-1")
    page.goto(f"{live_server.url}/imports/new/")
    page.evaluate("window.stillTheSamePage = true")
    page.locator("#id_project").select_option(label="Simulated customer (simulated.signalwire.com)")
    page.locator("#id_numbers").fill("\n".join(lines))
    page.locator("#id_ticket").fill("SUP-5050")
    page.locator("main").get_by_role("button", name="Preview").click()

    preview = page.locator("#import-preview")
    confirm = preview.locator("button[name=confirm]")
    expect(confirm).to_have_text(f"Import {IMPORTABLE} numbers", timeout=10_000)
    assert page.evaluate("window.stillTheSamePage") is True
    expect(preview).to_contain_text(f"{IMPORTABLE} to import")
    expect(preview).to_contain_text(f"{len(problems)} rejected")
    expect(preview).to_contain_text("of 50 lines")
    rows = preview.locator("tbody tr")
    expect(rows).to_have_count(50)
    # Rejected lines first, each with its line number, what was typed and why.
    for position, (line, problem) in enumerate(sorted(problems.items())):
        row = rows.nth(position)
        expect(row.locator("td").nth(0)).to_have_text(str(line))
        expect(row.locator("td").nth(1)).to_have_text(lines[line - 1])
        expect(row.locator("td").nth(3)).to_have_text(f"Rejected {problem}")
    # The country is never guessed silently: the preview says how each number was read.
    for typed, e164, how_read in [
        ("(415) 555-0101", "+14155550101", "Assumed United States, the project's default country"),
        ("tel:+1-415-555-0103", "+14155550103", "International number (United States)"),
        (
            "0044 20 7946 0959",
            "+442079460959",
            "International number (United Kingdom), 00 read as the international prefix",
        ),
        ("011 44 20 7946 0970", "+442079460970", "International number (United Kingdom)"),
    ]:
        cells = preview.locator("tbody tr", has_text=typed).locator("td")
        expect(cells.nth(2).locator(".mono")).to_have_attribute("title", e164)
        expect(cells.nth(3)).to_have_text(how_read)
    save_screenshot(page, "new-import-preview")

    # Confirm: the job's page, whose bar fills by itself.
    confirm.click()
    page.wait_for_url(JOB_PAGE)
    pk = JOB_PAGE.search(page.url).group(1)
    live = page.locator(f"#job-{pk}-live")
    # A reload would drop this marker: the bar must move through htmx polling alone.
    page.evaluate("window.stillTheSamePage = true")
    expect(page.locator("main h1")).to_have_text(f"Job {pk}: Simulated customer")
    expect(page.locator("main")).to_contain_text("ticket SUP-5050")

    seen = watch_the_bar_fill(page, pk, screenshot="job-in-progress")
    assert page.evaluate("window.stillTheSamePage") is True
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    moving = [value for value in seen if 0 < value < IMPORTABLE]
    assert len(moving) >= 2, f"the bar did not fill step by step: {seen}"
    assert seen[-1] == IMPORTABLE
    expect(live.locator("progress")).to_have_attribute("max", str(IMPORTABLE))
    expect(live).to_contain_text(f"{IMPORTABLE} of {IMPORTABLE} done")

    # Some numbers failed; each says why and what to do.
    expect(live.locator(".progress-head .badge")).to_have_text("Partly imported")
    failed_text = count(page, live, "Failed").inner_text()
    imported_text = count(page, live, "Imported").inner_text()
    failed = int(re.search(r"\d+", failed_text).group())
    imported = int(re.search(r"\d+", imported_text).group())
    assert 0 < failed < IMPORTABLE, (failed_text, imported_text)
    assert imported + failed == IMPORTABLE
    expect(count(page, live, "Pending")).to_have_text(re.compile(r"Pending\s+0$"))
    explained = live.locator("tbody tr", has_text="SignalWire error.")
    expect(explained).to_have_count(failed)
    for position in range(failed):
        row = explained.nth(position)
        expect(row).to_contain_text("SignalWire is having trouble. Retry later.")
        expect(row).to_contain_text("SignalWire said: Service Unavailable")
        expect(row.locator("td").nth(3)).to_have_text("Failed")  # after Line, Number, Type
    expect(live.locator("tbody tr", has_text="SignalWire said")).to_have_count(failed)
    save_screenshot(page, "job-finished-with-failures")

    # SignalWire recovers; retry the failures (a plain form: a new page) and watch them go.
    simulator.configure(error_503_fraction=0.0)
    with page.expect_navigation():
        live.get_by_role("button", name="Retry failed").click()
    assert JOB_PAGE.search(page.url).group(1) == pk
    expect(page.get_by_role("status")).to_contain_text(
        f"{failed} failed number{'s are' if failed > 1 else ' is'} being retried."
    )
    page.evaluate("window.stillTheSamePage = true")
    # The failed numbers are back in the queue: the bar drops to what is done, and fills again.
    seen = watch_the_bar_fill(page, pk)
    assert page.evaluate("window.stillTheSamePage") is True
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    assert imported <= seen[0] < IMPORTABLE, seen
    expect(live.locator(".progress-head .badge")).to_have_text("Completed")
    expect(live).to_contain_text(f"{IMPORTABLE} of {IMPORTABLE} done")
    expect(count(page, live, "Imported")).to_have_text(re.compile(rf"Imported\s+{IMPORTABLE}$"))
    expect(count(page, live, "Failed")).to_have_text(re.compile(r"Failed\s+0$"))
    expect(live.get_by_role("button", name="Retry failed")).to_have_count(0)
    expect(live.locator("tbody tr", has_text="SignalWire error.")).to_have_count(0)
    save_screenshot(page, "job-after-retry")

    # Export: one row per number, all imported, each with its own sid.
    with page.expect_download() as download_info:
        page.locator("main").get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename == f"import-job-{pk}.csv"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    exported = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert list(exported[0]) == [
        "line",
        "number",
        "status",
        "number_type",
        "reason",
        "sid",
        "friendly_name",
        "attempts",
        "imported_at",
    ]
    assert len(exported) == IMPORTABLE
    assert {row["status"] for row in exported} == {"imported"}
    assert {row["reason"] for row in exported} == {""}
    assert all(row["sid"] and row["imported_at"] for row in exported)
    assert len({row["sid"] for row in exported}) == IMPORTABLE
    good_line_numbers = {str(line) for line in range(1, 51) if line not in problems}
    assert {row["line"] for row in exported} == good_line_numbers
    assert {row["number"] for row in exported} == (
        {f"+1415555{100 + index:04d}" for index in range(36)}
        | {f"+44207946{958 + index:04d}" for index in range(4)}
        | {f"+44207946{970 + index:04d}" for index in range(4)}
    )
    # The numbers that failed once took a second attempt; the others one.
    attempts = [int(row["attempts"]) for row in exported]
    assert attempts.count(1) == imported and attempts.count(2) == failed
    # And SignalWire holds each number once: the retries created nothing twice.
    created = simulator.stats()["created"].get(sim_project.project_id, {})
    assert len(created) == IMPORTABLE and set(created.values()) == {1}


def test_paging_a_csv_preview_shows_each_page_without_reading_the_file_again(
    page, no_server_errors, live_server, log_in, support_user, make_project, tmp_path, monkeypatch
):
    from phone_numbers import forms

    make_project(name="Acme Corp", default_country="US")
    numbers_csv = tmp_path / "numbers.csv"
    numbers_csv.write_text("number\n" + "\n".join(f"+1 415 555 {n:04d}" for n in range(250)))
    read: list[int] = []
    real_read_csv = forms.read_csv

    def counted(data: bytes):
        read.append(len(data))
        return real_read_csv(data)

    # The live server runs in this process: the files its form reads are counted here.
    monkeypatch.setattr(forms, "read_csv", counted)
    log_in(page, "sam", "support-pass-1")
    page.goto(f"{live_server.url}/imports/new/")
    page.locator("#id_project").select_option(label="Acme Corp (acme.signalwire.com)")
    page.locator("#id_csv_file").set_input_files(str(numbers_csv))
    page.locator("main").get_by_role("button", name="Preview").click()
    preview = page.locator("#import-preview")
    expect(preview).to_contain_text("Lines 1–100 of 250")

    preview.get_by_role("button", name="Next").click()
    expect(preview).to_contain_text("Lines 101–200 of 250")
    preview.get_by_role("button", name="Next").click()
    expect(preview).to_contain_text("Lines 201–250 of 250")

    expect(preview.locator("tbody tr").first).to_contain_text("+1 415-555-0200")
    assert read == [numbers_csv.stat().st_size]
    expect(preview.locator("button[name=confirm]")).to_have_text("Import 250 numbers")


def test_failed_rows_downloaded_from_the_job_page_and_uploaded_on_new_import_are_previewed(
    page, no_server_errors, live_server, log_in, support_user, make_project, tmp_path
):
    """Issue 18: the failed rows go back in as a file, unchanged, each with its own type and
    capabilities."""
    from phone_numbers.models import ImportJob, NumberImport

    project = make_project(name="Acme Corp", default_country="US")
    job = ImportJob.objects.create(
        project=project,
        created_by=support_user,
        source="paste",
        ticket="SUP-18",
        number_type="longcode",
        capabilities=["sms", "voice"],
        input_digest="x",
    )
    failed = {
        "+14155550100": ("longcode", ["sms", "voice"], "SignalWire said: Service Unavailable"),
        "+18005550199": ("tollfree", ["voice"], '=1+1, "quoted"'),
        "+14155550102": ("longcode", ["sms", "voice", "fax", "mms"], "Number is not valid"),
    }
    for number, (number_type, capabilities, reason) in failed.items():
        NumberImport.objects.create(
            job=job,
            project=project,
            number=number,
            number_type=number_type,
            capabilities=capabilities,
            status="failed",
            failure_category="invalid_input",
            error_message=reason,
        )
    NumberImport.objects.create(
        job=job, project=project, number="+14155550101", number_type="longcode", status="imported"
    )

    log_in(page, "sam", "support-pass-1")
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    with page.expect_download() as download_info:
        page.locator("main").get_by_role("link", name="Download failed rows").click()
    download = download_info.value
    assert download.suggested_filename == f"import-job-{job.pk}-failed.csv"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    downloaded = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [(row["number"], row["reason"]) for row in downloaded] == [
        ("+14155550100", "SignalWire said: Service Unavailable"),
        ("+18005550199", '\'=1+1, "quoted"'),
        ("+14155550102", "Number is not valid"),
    ]

    # The same file, unchanged, on New import: those three numbers, nothing else.
    page.goto(f"{live_server.url}/imports/new/")
    page.locator("#id_project").select_option(label="Acme Corp (acme.signalwire.com)")
    page.locator("#id_csv_file").set_input_files(str(path))
    page.locator("main").get_by_role("button", name="Preview").click()
    preview = page.locator("#import-preview")
    expect(preview.locator("button[name=confirm]")).to_have_text("Import 3 numbers")
    expect(preview).to_contain_text("3 to import")
    rows = preview.locator("tbody tr")
    expect(rows).to_have_count(3)
    # Each row as it failed: its own type and capabilities, not the form's.
    for shown, capabilities in [
        ("+1 415-555-0100", "SMS, Voice"),
        ("+1 800-555-0199", "Voice"),
        ("+1 415-555-0102", "SMS, Voice, Fax, MMS"),
    ]:
        row = preview.locator("tbody tr", has_text=shown)
        expect(row).to_have_count(1)
        expect(row.locator("td").last).to_have_text(capabilities)
    expect(preview.locator("tbody tr", has_text="+1 800-555-0199")).to_contain_text("Toll-free")
    expect(preview).not_to_contain_text("+1 415-555-0101")
    save_screenshot(page, "failed-rows-previewed-again")

import csv
import io

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains, assertTemplateUsed

from phone_numbers import forms, importing, previews
from phone_numbers.forms import ImportForm
from phone_numbers.models import AuditAction, AuditEntry, ImportJob, ImportStatus, NumberImport
from phone_numbers.tasks import import_phone_number
from tests.fakes import FakeSignalWire

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def sent(monkeypatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(
        import_phone_number, "apply_async", lambda args, countdown=None: calls.append(args[0])
    )
    return calls


@pytest.fixture
def project(make_project):
    return make_project(name="Acme Corp")


def form_data(for_project, numbers="+1 415 555 0100\n(415) 555-0101", **overrides) -> dict:
    return {
        "project": for_project.pk,
        "numbers": numbers,
        "number_type": "longcode",
        "capabilities": ["sms", "voice", "fax", "mms"],
        "ticket": "HD-42",
    } | overrides


def preview(client, data, **headers):
    return client.post(reverse("phone_numbers:import_new"), data, headers=headers)


def confirm(client, data, headers=HTMX):
    digest = preview(client, data, **HTMX).context["digest"]
    return client.post(
        reverse("phone_numbers:import_new"), data | {"confirm": digest}, headers=headers
    )


def test_anonymous_visitors_are_sent_to_login(client, project):
    for url in [
        reverse("phone_numbers:import_new"),
        reverse("phone_numbers:job_list"),
        reverse("phone_numbers:job_detail", args=[1]),
        reverse("phone_numbers:job_export", args=[1]),
    ]:
        assert client.get(url)["Location"].startswith(reverse("login"))


def test_a_user_without_a_role_gets_403(client, project):
    client.force_login(User.objects.create_user("nobody", password="x"))

    assert client.get(reverse("phone_numbers:import_new")).status_code == 403
    assert client.get(reverse("phone_numbers:job_list")).status_code == 403
    assert preview(client, form_data(project)).status_code == 403


def test_preview_over_htmx_shows_every_line_and_creates_nothing(client, support_user, project):
    client.force_login(support_user)

    response = preview(client, form_data(project, numbers="+1 415 555 0100\nhello\n"), **HTMX)

    assertTemplateUsed(response, "phone_numbers/partials/import_preview.html")
    assertContains(response, "+14155550100")
    assertContains(response, "Not a phone number")
    assertContains(response, "Import 1 number")
    assertNotContains(response, "<html")
    assert not ImportJob.objects.exists()


def test_confirm_creates_the_job_and_redirects_htmx_to_it(client, support_user, project, sent):
    client.force_login(support_user)

    response = confirm(client, form_data(project))

    job = ImportJob.objects.get()
    assert response["HX-Redirect"] == reverse("phone_numbers:job_detail", args=[job.pk])
    assert (job.created_by, job.ticket, job.source) == (support_user, "HD-42", "paste")
    assert sorted(job.numbers.values_list("number", flat=True)) == ["+14155550100", "+14155550101"]


def test_confirm_without_htmx_redirects_to_the_job(client, support_user, project):
    client.force_login(support_user)

    response = confirm(client, form_data(project), headers={})

    assert response.status_code == 302
    assert response["Location"] == ImportJob.objects.get().get_absolute_url()


def test_a_double_clicked_confirm_makes_one_job(client, support_user, project):
    client.force_login(support_user)

    first = confirm(client, form_data(project))
    second = confirm(client, form_data(project))

    assert ImportJob.objects.count() == 1
    assert first["HX-Redirect"] == second["HX-Redirect"]


def test_the_same_list_again_previews_as_already_in_progress(client, support_user, project):
    client.force_login(support_user)
    confirm(client, form_data(project))

    response = preview(client, form_data(project), **HTMX)

    assertContains(response, "Already being imported into this project", count=2)
    assertNotContains(response, 'name="confirm"')


def test_a_list_changed_after_the_preview_is_previewed_again(client, support_user, project):
    client.force_login(support_user)
    digest = preview(client, form_data(project), **HTMX).context["digest"]

    response = preview(
        client, form_data(project, numbers="+14155550199") | {"confirm": digest}, **HTMX
    )

    assertContains(response, "changed after the preview")
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"numbers": ""}, "Paste at least one number, or choose a CSV file."),
        ({"numbers": "   \n  "}, "Paste at least one number, or choose a CSV file."),
        ({"capabilities": []}, "Choose at least one capability."),
        ({"number_type": "mobile"}, "Select a valid choice"),
        ({"project": ""}, "Choose the project to import into."),
        ({"ticket": "x" * 101}, "at most 100 characters (this one has 101): shorten it"),
    ],
)
def test_bad_input_names_the_field_to_fix(client, support_user, project, overrides, message):
    client.force_login(support_user)

    response = preview(client, form_data(project, **overrides), **HTMX)

    assert response.status_code == 200
    assertContains(response, message)
    assert not ImportJob.objects.exists()


def test_only_invalid_lines_offer_nothing_to_import(client, support_user, project):
    client.force_login(support_user)

    response = preview(client, form_data(project, numbers="hello\n123"), **HTMX)

    assertContains(response, "Nothing here can be imported")
    assertNotContains(response, 'name="confirm"')


def test_the_import_forms_project_search_offers_only_active_projects(
    client, support_user, make_project
):
    active = make_project(name="Acme Corp")
    make_project(name="Acme Old", space_host="old.signalwire.com", is_active=False)
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:import_new"), {"project_q": "acme"})

    assert list(response.context["form"].fields["project"].queryset) == [active]


def test_a_project_without_a_token_says_why_it_cannot_import(client, support_user, make_project):
    client.force_login(support_user)
    tokenless = make_project(token=None)

    response = preview(client, form_data(tokenless), **HTMX)

    assertContains(response, "This project has no API token")


def test_a_csv_upload_is_previewed_with_its_own_columns(client, support_user, project):
    client.force_login(support_user)
    upload = SimpleUploadedFile(
        "numbers.csv", b"number,number_type\n+14155550100,tollfree\n", content_type="text/csv"
    )

    response = preview(client, form_data(project, numbers="", csv_file=upload), **HTMX)

    [row] = response.context["preview"].rows
    assert (row.e164, row.number_type) == ("+14155550100", "tollfree")


def test_a_bad_csv_is_refused_naming_the_line(client, support_user, project):
    client.force_login(support_user)
    upload = SimpleUploadedFile("numbers.csv", b"number,capabilities\n+14155550100,telex\n")

    response = preview(client, form_data(project, numbers="", csv_file=upload), **HTMX)

    assertContains(response, "Line 2, column capabilities")
    assert not ImportJob.objects.exists()


def test_a_csv_with_several_bad_rows_lists_each_and_nothing_is_saved(
    client, support_user, project, sent
):
    client.force_login(support_user)
    data = form_data(project, numbers="") | {"confirm": "0" * 64}

    for headers in (HTMX, {}):
        upload = SimpleUploadedFile(
            "numbers.csv",
            b"number,capabilities\n+14155550100,telex\n+14155550101,sms\n+1415,video\n",
        )
        response = preview(client, data | {"csv_file": upload}, **headers)

        assertContains(response, "2 rows of the CSV need correcting")
        assertContains(response, "Line 2, column capabilities: “telex”")
        assertContains(response, "Line 4, column capabilities: “video”")
    assert not ImportJob.objects.exists()
    assert not NumberImport.objects.exists()
    assert sent == []


def test_pasting_and_uploading_at_once_is_refused(client, support_user, project):
    client.force_login(support_user)
    upload = SimpleUploadedFile("numbers.csv", b"number\n+14155550100\n")

    response = preview(client, form_data(project, csv_file=upload), **HTMX)

    assertContains(response, "not both")


def test_a_long_preview_is_paged(client, support_user, project):
    client.force_login(support_user)
    numbers = "\n".join(f"+1415555{i:04d}" for i in range(250))

    response = preview(client, form_data(project, numbers=numbers, page="3"), **HTMX)

    assertContains(response, "Lines 201–250 of 250")
    assertContains(response, "+14155550249")
    assertNotContains(response, "+14155550100")


class UnreadableHugeUpload(SimpleUploadedFile):
    """A 300 MB upload as Django hands it over (kept on disk); reading it fails the test."""

    def __init__(self) -> None:
        super().__init__("numbers.csv", b"", content_type="text/csv")
        self.size = 300 * 1024 * 1024

    def read(self, *args) -> bytes:
        raise AssertionError("the 300 MB upload was read into memory")


def test_a_file_over_the_limit_is_refused_naming_the_limit_before_it_is_read(project):
    form = ImportForm(form_data(project, numbers=""), {"csv_file": UnreadableHugeUpload()})

    assert form.errors["csv_file"] == ["The file is larger than 5 MB: split it."]


def numbered(count: int, area: str = "415") -> str:
    return "\n".join(f"+1{area}555{line:04d}" for line in range(count))


# More than previews.LARGE_INPUT_BYTES pasted: 13 bytes a line.
LARGE_COUNT = previews.LARGE_INPUT_BYTES // 12


@pytest.fixture
def previews_read(monkeypatch) -> list[int]:
    """The number of lines of each preview read (importing.preview called)."""
    read: list[int] = []
    real_preview = importing.preview

    def counted(**arguments):
        read.append(len(arguments["lines"]))
        return real_preview(**arguments)

    monkeypatch.setattr(importing, "preview", counted)
    return read


@pytest.fixture
def csv_files_read(monkeypatch) -> list[int]:
    """The size of each CSV file the import form read."""
    read: list[int] = []
    real_read_csv = forms.read_csv

    def counted(data: bytes):
        read.append(len(data))
        return real_read_csv(data)

    monkeypatch.setattr(forms, "read_csv", counted)
    return read


def test_paging_a_preview_cuts_pages_from_the_kept_preview_without_reading_the_file_again(
    client, support_user, project, previews_read, csv_files_read
):
    client.force_login(support_user)
    content = ("number\n" + numbered(250)).encode()

    def upload() -> dict:
        return {"csv_file": SimpleUploadedFile("numbers.csv", content, "text/csv")}

    first = preview(client, form_data(project, numbers="") | upload(), **HTMX)
    page_of_first = {"preview_digest": first.context["digest"]}
    preview(client, form_data(project, numbers="", page="2") | page_of_first | upload(), **HTMX)
    third = preview(
        client, form_data(project, numbers="", page="3") | page_of_first | upload(), **HTMX
    )

    assert previews_read == [250]
    assert csv_files_read == [len(content)]
    assertContains(third, "Lines 201–250 of 250")
    assertContains(third, "+14155550249")
    assertContains(third, f'name="confirm" value="{first.context["digest"]}"')
    # Pressing Preview again reads the numbers again: some may have been imported since.
    preview(client, form_data(project, numbers="") | upload(), **HTMX)
    assert previews_read == [250, 250]


def test_a_new_preview_takes_the_place_of_the_persons_last_one(
    client, support_user, project, previews_read
):
    client.force_login(support_user)
    first_data = form_data(project, numbers=numbered(250))
    first = preview(client, first_data, **HTMX).context["digest"]
    first_pages = [f"import-preview:{support_user.pk}:{first}:{number}" for number in (1, 2, 3)]
    assert all(cache.get(key) for key in first_pages)

    preview(client, form_data(project, numbers=numbered(150, area="212")), **HTMX)

    assert not any(cache.get(key) for key in first_pages)
    page = preview(client, first_data | {"page": "3", "preview_digest": first}, **HTMX)
    assert previews_read == [250, 150, 250]
    assertContains(page, "Lines 201–250 of 250")


def test_a_page_without_htmx_is_cut_from_the_kept_preview_after_the_form_is_checked(
    client, support_user, project, previews_read
):
    client.force_login(support_user)
    data = form_data(project, numbers=numbered(250))
    digest = preview(client, data, **HTMX).context["digest"]

    page = preview(client, data | {"page": "3", "preview_digest": digest})

    assert previews_read == [250]
    assertContains(page, "Lines 201–250 of 250")


def test_a_kept_preview_serves_only_the_person_who_asked_for_it(
    client, support_user, admin_user, project, previews_read
):
    data = form_data(project, numbers=numbered(250))
    client.force_login(support_user)
    digest = preview(client, data, **HTMX).context["digest"]
    colleague = Client()
    colleague.force_login(admin_user)

    page = preview(colleague, data | {"page": "3", "preview_digest": digest}, **HTMX)

    assert previews_read == [250, 250]
    assertContains(page, "Lines 201–250 of 250")


def test_a_second_large_preview_of_the_same_person_is_refused_before_its_input_is_read(
    client, support_user, admin_user, project, monkeypatch, csv_files_read
):
    client.force_login(support_user)
    colleague = Client()
    colleague.force_login(admin_user)
    large = numbered(LARGE_COUNT)
    other_large = ("number\n" + numbered(LARGE_COUNT, area="212")).encode()
    during: dict = {}
    real_preview = importing.preview

    def other_large_upload() -> dict:
        return {"csv_file": SimpleUploadedFile("numbers.csv", other_large, "text/csv")}

    def preview_while_others_ask(**arguments):
        if not during:
            during["asked"] = True
            during["same person, large"] = preview(
                client, form_data(project, numbers="") | other_large_upload(), **HTMX
            )
            during["same person, small"] = preview(client, form_data(project), **HTMX)
            during["colleague, large"] = preview(
                colleague, form_data(project, numbers="") | other_large_upload(), **HTMX
            )
        return real_preview(**arguments)

    monkeypatch.setattr(importing, "preview", preview_while_others_ask)
    first = preview(client, form_data(project, numbers=large), **HTMX)

    assertContains(during["same person, large"], "A preview of yours is still being prepared")
    assert "preview" not in during["same person, large"].context
    assert len(during["same person, small"].context["preview"].rows) == 2
    assert len(during["colleague, large"].context["preview"].rows) == LARGE_COUNT
    # Only the colleague's file was read: the refusal came first.
    assert csv_files_read == [len(other_large)]
    # (The nested requests' contexts are in `first.context` too: read its page instead.)
    assertContains(first, f"of {LARGE_COUNT:,} lines")
    # The hold ends with the preview.
    after = preview(client, form_data(project, numbers="") | other_large_upload(), **HTMX)
    assert len(after.context["preview"].rows) == LARGE_COUNT


def test_a_large_preview_that_failed_holds_nothing_back(client, support_user, project, monkeypatch):
    client.force_login(support_user)
    data = form_data(project, numbers=numbered(LARGE_COUNT))
    real_preview = importing.preview

    def failing(**arguments):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(importing, "preview", failing)
    with pytest.raises(RuntimeError):
        preview(client, data, **HTMX)
    monkeypatch.setattr(importing, "preview", real_preview)

    assert len(preview(client, data, **HTMX).context["preview"].rows) == LARGE_COUNT


def started_job(project, user, numbers=("+14155550100", "+14155550101")) -> ImportJob:
    from phone_numbers.number_input import read_pasted

    return importing.start_job(
        project=project,
        created_by=user,
        source="paste",
        ticket="",
        number_type="longcode",
        capabilities=["sms"],
        lines=read_pasted("\n".join(numbers)),
    )


def test_a_list_sent_again_after_its_import_shows_the_imported_number_and_adds_only_the_new(
    client, support_user, project
):
    client.force_login(support_user)
    earlier = started_job(project, support_user, numbers=("+14155550100",))
    importing.import_number(
        earlier.numbers.select_related("job", "project").get(), client=FakeSignalWire()
    )
    # The customer sends the list again, with one number more.
    again = form_data(project, numbers="+1 415 555 0100\n(415) 555-0101")

    shown = preview(client, again, **HTMX)
    confirmed = confirm(client, again)

    assertContains(shown, f"Already imported into this project (job {earlier.pk})", count=1)
    later = ImportJob.objects.exclude(pk=earlier.pk).get()
    assert confirmed["HX-Redirect"] == later.get_absolute_url()
    assert list(later.numbers.values_list("number", flat=True)) == ["+14155550101"]
    assert NumberImport.objects.filter(number="+14155550100").get().status == ImportStatus.IMPORTED


def test_job_page_polls_while_running_and_stops_when_finished(client, support_user, project):
    client.force_login(support_user)
    job = started_job(project, support_user)
    url = reverse("phone_numbers:job_detail", args=[job.pk])

    running = client.get(url, headers=HTMX)
    for row in job.numbers.select_related("job", "project"):
        importing.import_number(row, client=FakeSignalWire())
    finished = client.get(url, headers=HTMX)

    assertTemplateUsed(running, "phone_numbers/partials/job_live.html")
    assertContains(running, 'hx-trigger="every 2s"')
    assertNotContains(finished, "hx-trigger")
    assertContains(finished, "Completed")
    assertContains(client.get(url), f"Job {job.pk}")


def test_job_page_explains_a_failure_and_filters_by_status(client, support_user, project):
    client.force_login(support_user)
    job = started_job(project, support_user)
    first, _ = job.numbers.order_by("pk")
    NumberImport.objects.filter(pk=first.pk).update(
        status="failed", failure_category="upstream", error_message="Service Unavailable"
    )

    response = client.get(reverse("phone_numbers:job_detail", args=[job.pk]), {"status": "failed"})

    assertContains(response, "SignalWire is having trouble. Retry later.")
    assertContains(response, "Service Unavailable")
    assertContains(response, "+14155550100")
    assertNotContains(response, "+14155550101")


def test_job_page_and_export_show_the_type_each_number_was_sent_with(client, support_user, project):
    client.force_login(support_user)
    job = started_job(project, support_user, numbers=("+14155550100", "+18005550100"))
    # A row's type can differ from the job's: a CSV's number_type column, or Edit and retry.
    job.numbers.filter(number="+18005550100").update(number_type="tollfree")

    page = client.get(reverse("phone_numbers:job_detail", args=[job.pk]))
    export = client.get(reverse("phone_numbers:job_export", args=[job.pk]))

    assertContains(page, "<th>Type</th>", html=True)
    assertContains(page, "<td>Long code</td>", count=1, html=True)
    assertContains(page, "<td>Toll-free</td>", count=1, html=True)
    rows = csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode()))
    assert [(row["number"], row["number_type"]) for row in rows] == [
        ("+14155550100", "longcode"),
        ("+18005550100", "tollfree"),
    ]


def test_job_actions_retry_cancel_and_support_may_not_pause(client, support_user, project, sent):
    client.force_login(support_user)
    job = started_job(project, support_user)
    first, second = job.numbers.order_by("pk")
    NumberImport.objects.filter(pk=first.pk).update(status="failed", failure_category="network")

    client.post(reverse("phone_numbers:job_retry_failed", args=[job.pk]))
    assert NumberImport.objects.get(pk=first.pk).status == ImportStatus.PENDING
    client.post(reverse("phone_numbers:job_cancel", args=[job.pk]))
    assert set(job.numbers.values_list("status", flat=True)) == {ImportStatus.CANCELLED}
    assert client.post(reverse("phone_numbers:job_pause", args=[job.pk])).status_code == 403
    assert client.post(reverse("phone_numbers:job_resume", args=[job.pk])).status_code == 403


def test_nothing_is_retried_or_resumed_into_a_deactivated_project(client, admin_user, project):
    client.force_login(admin_user)
    job = started_job(project, admin_user)
    first, _ = job.numbers.order_by("pk")
    NumberImport.objects.filter(pk=first.pk).update(status="failed", failure_category="network")
    job.pause("Paused by ada.")
    project.is_active = False
    project.save()
    retry_one = {"number_type": "longcode", "capabilities": ["sms"]}

    responses = [
        client.post(reverse("phone_numbers:job_retry_failed", args=[job.pk]), follow=True),
        client.post(reverse("phone_numbers:number_retry", args=[first.pk]), retry_one, follow=True),
        client.post(reverse("phone_numbers:job_resume", args=[job.pk]), follow=True),
    ]

    for response in responses:
        assertContains(response, "This project is deactivated")
    assert NumberImport.objects.get(pk=first.pk).status == ImportStatus.FAILED
    job.refresh_from_db()
    assert job.is_paused


def test_resuming_a_job_of_a_deactivated_project_leaves_it_paused_and_says_why(
    client, admin_user, project
):
    client.force_login(admin_user)
    job = started_job(project, admin_user)
    job.pause("Paused by ada.")
    project.is_active = False
    project.save()

    response = client.post(reverse("phone_numbers:job_resume", args=[job.pk]), follow=True)

    assertContains(
        response,
        '<li class="message message-error">This project is deactivated: an admin must '
        "reactivate it before importing.</li>",
        html=True,
    )
    assertNotContains(response, "The job is running again.")
    job.refresh_from_db()
    assert (job.is_paused, job.pause_reason) == (True, "Paused by ada.")
    assert not AuditEntry.objects.filter(action=AuditAction.JOB_RESUMED).exists()


def test_admin_pauses_and_resumes_a_job(client, admin_user, project):
    client.force_login(admin_user)
    job = started_job(project, admin_user)

    client.post(reverse("phone_numbers:job_pause", args=[job.pk]))
    job.refresh_from_db()
    assert job.is_paused
    client.post(reverse("phone_numbers:job_resume", args=[job.pk]))
    job.refresh_from_db()
    assert not job.is_paused


def test_edit_and_retry_one_failed_number(client, support_user, project):
    client.force_login(support_user)
    job = started_job(project, support_user)
    first, _ = job.numbers.order_by("pk")
    NumberImport.objects.filter(pk=first.pk).update(
        status="failed", failure_category="invalid_input"
    )

    client.post(
        reverse("phone_numbers:number_retry", args=[first.pk]),
        {"number_type": "tollfree", "capabilities": ["voice"]},
    )

    first.refresh_from_db()
    assert (first.status, first.number_type, first.capabilities) == (
        "pending",
        "tollfree",
        ["voice"],
    )


def test_edit_and_retry_without_a_capability_says_so(client, support_user, project):
    client.force_login(support_user)
    job = started_job(project, support_user)
    first, _ = job.numbers.order_by("pk")
    NumberImport.objects.filter(pk=first.pk).update(
        status="failed", failure_category="invalid_input"
    )

    response = client.post(
        reverse("phone_numbers:number_retry", args=[first.pk]),
        {"number_type": "tollfree"},
        follow=True,
    )

    assertContains(response, "Choose at least one capability.")
    assert NumberImport.objects.get(pk=first.pk).status == "failed"


def test_export_is_a_csv_of_every_number_with_its_outcome(client, support_user, project):
    client.force_login(support_user)
    job = started_job(project, support_user)
    first, second = job.numbers.select_related("job", "project").order_by("pk")
    importing.import_number(first, client=FakeSignalWire())
    NumberImport.objects.filter(pk=second.pk).update(
        status="failed", failure_category="duplicate", error_message="Number has already been taken"
    )

    response = client.get(reverse("phone_numbers:job_export", args=[job.pk]))

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Type"] == "text/csv"
    assert [(row["number"], row["status"]) for row in rows] == [
        ("+14155550100", "imported"),
        ("+14155550101", "failed"),
    ]
    assert rows[0]["sid"] and rows[0]["imported_at"]
    assert rows[1]["reason"] == "Number has already been taken"


def test_export_quotes_a_reason_a_spreadsheet_would_run_as_a_formula(client, support_user, project):
    client.force_login(support_user)
    job = started_job(project, support_user)
    job.numbers.update(status="failed", error_message="=HYPERLINK(1)", friendly_name="+ours")

    response = client.get(reverse("phone_numbers:job_export", args=[job.pk]))

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {(row["reason"], row["friendly_name"]) for row in rows} == {("'=HYPERLINK(1)", "'+ours")}
    assert {row["number"][0] for row in rows} == {"+"}


def test_jobs_list_makes_the_same_queries_for_one_job_or_many(client, support_user, make_project):
    client.force_login(support_user)

    def queries_for_the_list() -> int:
        client.get(reverse("phone_numbers:job_list"))  # renews the session, once a minute
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("phone_numbers:job_list"))
        assert response.status_code == 200
        return len(queries)

    started_job(make_project(name="Customer 0", space_host="c0.signalwire.com"), support_user)
    with_one = queries_for_the_list()
    for index in range(1, 4):
        other = make_project(name=f"Customer {index}", space_host=f"c{index}.signalwire.com")
        started_job(other, support_user)

    assert queries_for_the_list() == with_one
    assertContains(client.get(reverse("phone_numbers:job_list")), "<progress", count=4)


def test_jobs_list_counts_the_numbers_of_the_jobs_it_shows_only(
    client, support_user, make_project, monkeypatch
):
    monkeypatch.setattr("phone_numbers.views.JOBS_PAGE_SIZE", 2)
    client.force_login(support_user)
    jobs = [
        started_job(
            make_project(name=f"Customer {i}", space_host=f"c{i}.signalwire.com"), support_user
        )
        for i in range(3)
    ]

    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("phone_numbers:job_list"))

    counting = [query["sql"] for query in queries if "phone_numbers_numberimport" in query["sql"]]
    shown = f"IN ({jobs[2].pk}, {jobs[1].pk})"
    assert counting and all(shown in sql for sql in counting), counting


# What one poll of a live job's page reads, whatever the job's size (README, Benchmarks): the
# session, who is asking and their permissions, the job, its counts by status, the page of
# rows, where the shown duplicates are, and whether a failed number can be retried. Nothing is
# written: the session is renewed once a minute, not on every poll.
ONE_POLL = [
    "django_session",
    "auth_user",
    "auth_permission",
    "auth_permission",
    "phone_numbers_importjob",
    "phone_numbers_numberimport",
    "phone_numbers_numberimport",
    "phone_numbers_numberimport",
    "phone_numbers_numberimport",
]


def test_a_poll_of_the_live_job_page_makes_the_same_queries_for_10_numbers_or_500(
    client, support_user, make_project
):
    client.force_login(support_user)

    def queries_for_one_poll(job: ImportJob) -> list[str]:
        url = reverse("phone_numbers:job_detail", args=[job.pk])
        client.get(url, headers=HTMX)  # the page's first request, which renews the session
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, headers=HTMX)
        assertContains(response, 'hx-trigger="every 2s"')
        assert all(query["sql"].startswith("SELECT") for query in queries), queries.captured_queries
        return [query["sql"].split(" FROM ", 1)[1].split('"')[1] for query in queries]

    def job_of(size: int, project) -> ImportJob:
        job = started_job(project, support_user, numbers=[f"+1415555{i:04d}" for i in range(size)])
        # Every kind of row the fragment shows: imported, failed (a duplicate says where the
        # number is), waiting for a retry, and still pending so that the page keeps polling.
        numbers = list(job.numbers.order_by("pk").values_list("pk", flat=True))
        job.numbers.filter(pk__in=numbers[0::4]).update(status="imported", sid="PN1")
        job.numbers.filter(pk__in=numbers[1::4]).update(
            status="failed", failure_category="duplicate"
        )
        job.numbers.filter(pk__in=numbers[2::4]).update(
            status="failed", failure_category="upstream", attempts=1
        )
        return job

    small = job_of(10, make_project(name="Small", space_host="small.signalwire.com"))
    large = job_of(500, make_project(name="Large", space_host="large.signalwire.com"))

    assert queries_for_one_poll(large) == queries_for_one_poll(small) == ONE_POLL


def test_the_django_admin_shows_jobs_and_numbers_read_only(client, admin_user, project):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    job = started_job(project, admin_user)
    number = job.numbers.first()

    page = client.get(reverse("admin:phone_numbers_numberimport_change", args=[number.pk]))

    assertContains(page, "+14155550100")
    assertNotContains(page, 'type="submit" value="Save"')
    assertContains(client.get(reverse("admin:phone_numbers_importjob_changelist")), project.name)
    delete_url = reverse("admin:phone_numbers_numberimport_delete", args=[number.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403


# A line that reads as two numbers (issue 14): 0016 is Australia's international prefix with a
# carrier code (+49 7121 234, Germany) and 00 the usual one (+1 649-712-1234, Turks and Caicos).
TWO_READINGS = "0016497121234"


def test_a_line_with_two_readings_is_shown_with_both_and_left_out_until_one_is_chosen(
    client, support_user, make_project
):
    client.force_login(support_user)
    project = make_project(default_country="AU")
    data = form_data(project, numbers=f"+61 2 9876 5432\n{TWO_READINGS}")

    response = preview(client, data, **HTMX)

    [row] = [row for row in response.context["preview"].rows if row.line_number == 2]
    assert (row.e164, [e164 for e164, _ in row.readings]) == (None, ["+497121234", "+16497121234"])
    assert response.context["preview_counts"].to_choose == 1
    assertContains(response, '<option value="+497121234">+49 7121 234</option>', html=True)
    assertContains(response, '<option value="+16497121234">+1 649-712-1234</option>', html=True)
    assertContains(response, "1 to choose")
    confirm(client, data)
    assert list(ImportJob.objects.get().numbers.values_list("number", flat=True)) == [
        "+61298765432"
    ]


def test_the_reading_chosen_in_the_preview_is_the_number_imported(
    client, support_user, make_project
):
    client.force_login(support_user)
    project = make_project(default_country="AU")
    data = form_data(project, numbers=f"+61 2 9876 5432\n{TWO_READINGS}") | {
        "reading-2": "+16497121234"
    }

    previewed = preview(client, data, **HTMX)
    response = confirm(client, data)

    assert previewed.context["preview_counts"].importable == 2
    assert response.status_code == 200
    job = ImportJob.objects.get()
    row = job.numbers.get(input_line=2)
    assert row.number == "+16497121234"
    assert row.how_read.endswith("00 read as the international prefix; chosen of two readings")


def test_a_reading_that_is_not_one_of_the_lines_is_refused_by_the_preview(
    client, support_user, make_project
):
    client.force_login(support_user)
    project = make_project(default_country="AU")
    data = form_data(project, numbers=TWO_READINGS) | {"reading-1": "+14155550100"}

    response = preview(client, data, **HTMX)

    [row] = response.context["preview"].rows
    assert row.e164 is None
    assert row.problem == "+14155550100 is not one of this line's readings: choose one of them"


def test_a_choice_changed_after_the_preview_must_be_previewed_before_it_is_imported(
    client, support_user, make_project
):
    client.force_login(support_user)
    project = make_project(default_country="AU")
    data = form_data(project, numbers=f"+61 2 9876 5432\n{TWO_READINGS}")
    digest = preview(client, data, **HTMX).context["digest"]

    chosen = data | {"reading-2": "+497121234", "confirm": digest}
    response = preview(client, chosen, **HTMX)

    assert not ImportJob.objects.exists()
    assertContains(response, "The numbers or choices changed after the preview")
    assert response.context["preview_counts"].importable == 2


def test_a_choice_made_on_one_page_is_kept_while_paging_and_reaches_the_job(
    client, support_user, make_project
):
    client.force_login(support_user)
    project = make_project(default_country="AU")
    numbers = "\n".join([TWO_READINGS, *(f"+61 2 9876 {i:04d}" for i in range(150))])
    data = form_data(project, numbers=numbers) | {"reading-1": "+497121234"}
    digest = preview(client, data, **HTMX).context["digest"]

    second_page = preview(client, data | {"page": "2", "preview_digest": digest}, **HTMX)

    # Line 1 is on the first page: the second carries its choice in a hidden field.
    assertContains(
        second_page, '<input type="hidden" name="reading-1" value="+497121234">', html=True
    )
    client.post(reverse("phone_numbers:import_new"), data | {"confirm": digest}, headers=HTMX)
    assert ImportJob.objects.get().numbers.filter(number="+497121234").exists()


# The number's type from the number (issue 14)


def test_a_toll_free_number_in_a_long_code_import_is_imported_as_toll_free_and_says_so(
    client, support_user, project
):
    client.force_login(support_user)
    data = form_data(project, numbers="+1 415 555 0100\n+1 800 555 0100")

    response = preview(client, data, **HTMX)

    rows = {row.e164: row for row in response.context["preview"].rows}
    assert rows["+18005550100"].number_type == "tollfree"
    assert rows["+18005550100"].type_note == "toll-free: will be imported as toll-free"
    assert (rows["+14155550100"].number_type, rows["+14155550100"].type_note) == ("longcode", "")
    assertContains(response, "toll-free: will be imported as toll-free")
    confirm(client, data)
    assert dict(ImportJob.objects.get().numbers.values_list("number", "number_type")) == {
        "+14155550100": "longcode",
        "+18005550100": "tollfree",
    }


def test_a_long_code_number_in_a_toll_free_import_is_flagged_and_may_be_kept_as_chosen(
    client, support_user, project
):
    client.force_login(support_user)
    numbers = "+1 800 555 0100\n+44 20 7946 0958\n+44 800 123 4567"
    data = form_data(project, numbers=numbers, number_type="tollfree")

    flagged = preview(client, data, **HTMX)
    overridden = data | {"type-2": "tollfree"}
    kept = preview(client, overridden, **HTMX)
    confirm(client, overridden)

    [row] = [row for row in flagged.context["preview"].rows if row.line_number == 2]
    assert (row.number_type, row.type_note) == (
        "longcode",
        "long code: will be imported as long code",
    )
    [row] = [row for row in kept.context["preview"].rows if row.line_number == 2]
    assert row.number_type == "tollfree"
    assert row.type_note == "long code number: will be imported as toll-free, as set for this row"
    assert dict(ImportJob.objects.get().numbers.values_list("number", "number_type")) == {
        "+18005550100": "tollfree",
        "+442079460958": "tollfree",
        "+448001234567": "tollfree",
    }


def test_a_csv_number_type_column_wins_over_the_numbers_own_type(client, support_user, project):
    client.force_login(support_user)
    upload = SimpleUploadedFile(
        "numbers.csv", b"number,number_type\n+18005550100,longcode\n", content_type="text/csv"
    )

    response = preview(client, form_data(project, numbers="", csv_file=upload), **HTMX)

    [row] = response.context["preview"].rows
    assert row.number_type == "longcode"
    assert row.type_note == "toll-free number: will be imported as long code, as set for this row"

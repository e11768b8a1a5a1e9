"""The pages tell the whole story (issue 15): job actions offered only when they can act, where a
duplicate already is, a project's jobs and numbers, a number's own story, statuses in words,
and the bugs found in the browser."""

import re
import threading

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import (
    assertContains,
    assertNotContains,
    assertTemplateNotUsed,
    assertTemplateUsed,
)

from phone_numbers import importing, views
from phone_numbers.models import (
    AuditAction,
    AuditEntry,
    Credential,
    ImportJob,
    ImportStatus,
    NumberImport,
)
from phone_numbers.number_input import read_pasted
from phone_numbers.signalwire import RequestRejected, SignalWireUnavailable
from phone_numbers.tasks import import_phone_number
from tests.fakes import FakeSignalWire

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

HTMX = {"HX-Request": "true"}
RETRY_FAILED_BUTTON = '<button type="submit" class="button">Retry failed</button>'


@pytest.fixture(autouse=True)
def no_tasks_sent(monkeypatch) -> None:
    monkeypatch.setattr(import_phone_number, "apply_async", lambda *args, **kwargs: None)


@pytest.fixture
def project(make_project):
    return make_project(name="Acme Corp")


def start(project, user, numbers=("+14155550100", "+14155550101"), ticket="") -> ImportJob:
    return importing.start_job(
        project=project,
        created_by=user,
        source="paste",
        ticket=ticket,
        number_type="longcode",
        capabilities=["sms"],
        lines=read_pasted("\n".join(numbers)),
    )


def send(number: NumberImport, fake: FakeSignalWire) -> NumberImport:
    importing.import_number(
        NumberImport.objects.select_related("job", "project").get(pk=number.pk), client=fake
    )
    return NumberImport.objects.get(pk=number.pk)


def fail(number: NumberImport, category: str) -> None:
    NumberImport.objects.filter(pk=number.pk).update(
        status=ImportStatus.FAILED, failure_category=category, attempts=1
    )


def job_page(client, job: ImportJob):
    return client.get(reverse("phone_numbers:job_detail", args=[job.pk]))


# -- Retry failed, Edit and retry ---------------------------------------------------------------


def test_retry_failed_is_offered_only_when_a_failed_number_can_be_retried(
    client, support_user, project
):
    client.force_login(support_user)
    job = start(project, support_user)
    first, second = job.numbers.order_by("pk")
    fail(first, "duplicate")
    fail(second, "invalid_input")

    nothing_to_retry = job_page(client, job)
    fail(second, "network")
    one_to_retry = job_page(client, job)

    assertNotContains(nothing_to_retry, RETRY_FAILED_BUTTON, html=True)
    assertContains(one_to_retry, RETRY_FAILED_BUTTON, html=True)


def test_a_crafted_retry_with_nothing_retryable_writes_no_audit_entry_and_says_so(
    client, support_user, project
):
    client.force_login(support_user)
    job = start(project, support_user)
    first, second = job.numbers.order_by("pk")
    fail(first, "duplicate")
    fail(second, "invalid_input")

    response = client.post(reverse("phone_numbers:job_retry_failed", args=[job.pk]), follow=True)

    assertContains(response, "Nothing was retried: no failed number of this job can be mended")
    assertNotContains(response, "failed numbers are being retried")
    assert not AuditEntry.objects.filter(action=AuditAction.JOB_RETRIED).exists()
    assert set(job.numbers.values_list("status", flat=True)) == {ImportStatus.FAILED}


def test_edit_and_retry_is_neither_offered_nor_accepted_on_a_duplicate(
    client, support_user, project
):
    client.force_login(support_user)
    job = start(project, support_user)
    first, second = job.numbers.order_by("pk")
    fail(first, "duplicate")

    page_with_duplicate_only = job_page(client, job)
    fail(second, "invalid_input")
    page_with_both = job_page(client, job)
    response = client.post(
        reverse("phone_numbers:number_retry", args=[first.pk]),
        {"number_type": "tollfree", "capabilities": ["voice"]},
        follow=True,
    )

    assertNotContains(page_with_duplicate_only, "Edit and retry")
    assertContains(page_with_both, "Edit and retry", count=1)
    assertContains(response, "was not retried: it is already in the project")
    first.refresh_from_db()
    assert (first.status, first.number_type) == (ImportStatus.FAILED, "longcode")
    assert not AuditEntry.objects.filter(action=AuditAction.NUMBER_RETRIED).exists()


def test_the_job_page_links_each_failed_row_to_its_form_and_renders_none(
    client, support_user, project
):
    client.force_login(support_user)
    job = start(project, support_user)
    first, second = job.numbers.order_by("pk")
    fail(first, "invalid_input")
    fail(second, "upstream")

    response = job_page(client, job)

    for number in (first, second):
        url = reverse("phone_numbers:number_retry", args=[number.pk])
        assertContains(response, f'href="{url}" hx-get="{url}" hx-swap="outerHTML"', count=1)
    assertNotContains(response, 'name="number_type"')
    assertNotContains(response, "<details")


def test_edit_and_retry_opens_on_a_page_of_its_own_or_in_the_row_with_htmx(
    client, support_user, project
):
    client.force_login(support_user)
    job = start(project, support_user)
    first = job.numbers.order_by("pk").first()
    fail(first, "invalid_input")
    url = reverse("phone_numbers:number_retry", args=[first.pk])

    whole_page = client.get(url)
    in_the_row = client.get(url, headers=HTMX)

    assertTemplateUsed(whole_page, "phone_numbers/number_retry.html")
    assertContains(whole_page, f'<a href="{job.get_absolute_url()}">Job {job.pk}</a>')
    assertTemplateUsed(in_the_row, "phone_numbers/partials/number_retry.html")
    assertTemplateNotUsed(in_the_row, "base.html")
    assertContains(in_the_row, f'<details id="number-{first.pk}-retry" class="retry-one" open>')
    assert in_the_row["Vary"] == "HX-Request, Cookie"
    for response in (whole_page, in_the_row):
        assertContains(response, f'<form method="post" action="{url}" class="inline-form">')
        # The form starts from the number as it failed: its type and capabilities.
        assertContains(response, '<option value="longcode" selected>Long code</option>', html=True)
        assertContains(
            response, '<input type="checkbox" name="capabilities" value="sms" checked>', html=True
        )
        assertContains(
            response, '<input type="checkbox" name="capabilities" value="voice">', html=True
        )


def test_the_opened_form_retries_the_number_as_edited(client, support_user, project):
    client.force_login(support_user)
    job = start(project, support_user)
    first = job.numbers.order_by("pk").first()
    fail(first, "invalid_input")
    url = reverse("phone_numbers:number_retry", args=[first.pk])

    client.get(url, headers=HTMX)
    response = client.post(url, {"number_type": "tollfree", "capabilities": ["voice"]})

    assert response.status_code == 302
    assert response["Location"] == job.get_absolute_url()
    first.refresh_from_db()
    assert (first.status, first.number_type, first.capabilities) == (
        ImportStatus.PENDING,
        "tollfree",
        ["voice"],
    )


def test_edit_and_retry_says_why_a_number_it_cannot_retry_is_not_offered(
    client, support_user, project
):
    client.force_login(support_user)
    job = start(project, support_user, numbers=("+14155550100", "+14155550101", "+14155550102"))
    duplicate, imported, cancelled = job.numbers.order_by("pk")
    fail(duplicate, "duplicate")
    NumberImport.objects.filter(pk=imported.pk).update(status=ImportStatus.IMPORTED)
    other = start(project, support_user, numbers=("+14155550199",))
    fail(other.numbers.get(), "invalid_input")
    ImportJob.objects.filter(pk=other.pk).update(cancelled_at=timezone.now())
    reasons = {
        duplicate.pk: "It is already in the project, so a retry cannot import it again.",
        imported.pk: "It is imported, not failed: nothing to retry.",
        other.numbers.get().pk: "Its job was cancelled, so nothing of it is sent again.",
    }

    for pk, reason in reasons.items():
        url = reverse("phone_numbers:number_retry", args=[pk])
        for headers in ({}, HTMX):
            response = client.get(url, headers=headers)
            assertContains(response, reason)
            assertNotContains(response, 'name="number_type"')


def test_edit_and_retry_is_not_opened_for_a_user_without_a_role(client, support_user, project):
    job = start(project, support_user)
    first = job.numbers.order_by("pk").first()
    fail(first, "invalid_input")
    client.force_login(User.objects.create_user("nobody", password="nobody-pass-1"))

    for headers in ({}, HTMX):
        response = client.get(
            reverse("phone_numbers:number_retry", args=[first.pk]), headers=headers
        )
        assert response.status_code == 403


# -- Where a duplicate already is ---------------------------------------------------------------


def test_a_duplicate_failure_links_to_the_job_that_imported_the_number(
    client, support_user, project
):
    client.force_login(support_user)
    earlier = start(project, support_user, numbers=("+14155550100",))
    imported = send(earlier.numbers.get(), FakeSignalWire())
    later = start(project, support_user, numbers=("+14155550199",))
    duplicate = later.numbers.get()
    # SignalWire refused it as already there (the preview missed it: it was in flight then).
    NumberImport.objects.filter(pk=duplicate.pk).update(
        number="+14155550100", status=ImportStatus.FAILED, failure_category="duplicate"
    )

    on_job_page = job_page(client, later)
    on_number_page = client.get(reverse("phone_numbers:number_detail", args=[duplicate.pk]))

    for response in (on_job_page, on_number_page):
        assertContains(response, "The portal imported it into this project in")
        assertContains(response, f'<a href="{earlier.get_absolute_url()}">job {earlier.pk}</a>')
        assertContains(response, reverse("phone_numbers:number_detail", args=[imported.pk]))
        assertNotContains(response, "not imported by the portal")


def test_a_duplicate_imported_into_another_project_of_the_space_names_that_project(
    client, support_user, project, make_project
):
    client.force_login(support_user)
    sister = make_project(name="Acme Labs", space_host=project.space_host)
    earlier = start(sister, support_user, numbers=("+14155550100",))
    send(earlier.numbers.get(), FakeSignalWire())
    later = start(project, support_user, numbers=("+14155550100",))
    fail(later.numbers.get(), "duplicate")

    response = job_page(client, later)

    assertContains(response, "The portal imported it into")
    assertContains(response, ">Acme Labs</a>")
    assertContains(response, f">job {earlier.pk}</a>")


def test_a_duplicate_names_its_own_projects_import_before_another_projects(
    client, support_user, project, make_project
):
    client.force_login(support_user)
    own = start(project, support_user, numbers=("+14155550100",))
    send(own.numbers.get(), FakeSignalWire())
    sister = make_project(name="Acme Labs", space_host=project.space_host)
    send(start(sister, support_user, numbers=("+14155550100",)).numbers.get(), FakeSignalWire())
    later = start(project, support_user, numbers=("+14155550199",))
    NumberImport.objects.filter(job=later).update(
        number="+14155550100", status=ImportStatus.FAILED, failure_category="duplicate"
    )

    response = job_page(client, later)

    assertContains(response, f'into this project in <a href="{own.get_absolute_url()}">')
    assertNotContains(response, ">Acme Labs</a>")


def test_a_duplicate_the_portal_never_imported_is_said_to_be_in_the_space(
    client, support_user, project
):
    client.force_login(support_user)
    job = start(project, support_user, numbers=("+14155550100",))
    number = send(
        job.numbers.get(),
        FakeSignalWire(
            import_errors=[RequestRejected("Number already taken", status=422, is_duplicate=True)]
        ),
    )

    response = job_page(client, job)

    assert number.failure_category == "duplicate"
    assertContains(response, "It is in the Space, not imported by the portal.")


# -- The project page: its jobs and numbers -----------------------------------------------------


def test_project_page_shows_its_jobs_and_numbers_newest_first_to_support(
    client, support_user, project, make_project
):
    client.force_login(support_user)
    older = start(project, support_user, numbers=("+14155550100",), ticket="HD-1")
    newer = start(project, support_user, numbers=("+14155550101",), ticket="HD-2")
    elsewhere = start(make_project(name="Other"), support_user, numbers=("+14155550177",))

    response = client.get(reverse("phone_numbers:project_detail", args=[project.pk]))

    content = response.content.decode()
    assert content.index(f"Job&nbsp;{newer.pk}<") < content.index(f"Job&nbsp;{older.pk}<")
    assert content.index("415-555-0101") < content.index("415-555-0100")
    assertContains(response, "HD-1")
    assertNotContains(response, f"Job&nbsp;{elsewhere.pk}<")
    assertNotContains(response, "415-555-0177")
    assertContains(response, "Queued")


def test_project_page_pages_its_jobs_and_numbers(client, support_user, project, monkeypatch):
    client.force_login(support_user)
    monkeypatch.setattr(views, "PROJECT_JOBS_PAGE_SIZE", 1)
    monkeypatch.setattr(views, "PROJECT_NUMBERS_PAGE_SIZE", 1)
    older = start(project, support_user, numbers=("+14155550100",))
    newer = start(project, support_user, numbers=("+14155550101",))
    url = reverse("phone_numbers:project_detail", args=[project.pk])

    first = client.get(url)
    second = client.get(url, {"jobs_page": 2, "numbers_page": 2})

    assertContains(first, f"Job&nbsp;{newer.pk}<", count=2)
    assertNotContains(first, f"Job&nbsp;{older.pk}<")
    assertContains(first, "?jobs_page=2#jobs")
    assertContains(first, "?numbers_page=2#numbers")
    assertContains(second, f"Job&nbsp;{older.pk}<", count=2)
    assertNotContains(second, f"Job&nbsp;{newer.pk}<")
    assertNotContains(second, "?numbers_page=3")


# -- The number page: its story, and SignalWire's answer as JSON --------------------------------


def test_number_page_tells_support_who_did_what_to_the_number(
    client, admin_user, support_user, project
):
    job = start(project, admin_user, numbers=("+14155550100",), ticket="HD-7")
    number = send(
        job.numbers.get(),
        FakeSignalWire(import_errors=[RequestRejected("Number type is invalid", status=422)]),
    )
    client.force_login(admin_user)
    client.post(
        reverse("phone_numbers:number_retry", args=[number.pk]),
        {"number_type": "tollfree", "capabilities": ["voice"]},
    )
    send(number, FakeSignalWire())
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_detail", args=[number.pk]))

    assert client.get(reverse("phone_numbers:audit_list")).status_code == 403
    story = [(event.who, event.what) for event in response.context["story"]]
    assert story == [
        ("ada", f"Submitted in job {job.pk}"),
        ("the portal", "Attempt 1: failed: Rejected input"),
        ("ada", "Number edited and retried"),
        ("the portal", "Attempt 2: imported"),
    ]
    assertContains(response, "Who did what")
    assertContains(response, "number_type: longcode → tollfree; capabilities: sms → voice")
    assertContains(response, "HTTP 422 Number type is invalid")
    assertContains(response, "ticket HD-7")


def test_a_job_wide_retry_is_in_the_story_of_the_numbers_it_retried_only(
    client, support_user, project, settings
):
    settings.PORTAL_MAX_ATTEMPTS = 1
    client.force_login(support_user)
    job = start(project, support_user)
    first, second = job.numbers.order_by("pk")
    send(first, FakeSignalWire())
    send(second, FakeSignalWire(import_errors=[SignalWireUnavailable("Down", status=503)]))
    client.post(reverse("phone_numbers:job_retry_failed", args=[job.pk]))

    imported_story = client.get(reverse("phone_numbers:number_detail", args=[first.pk]))
    retried_story = client.get(reverse("phone_numbers:number_detail", args=[second.pk]))

    assert AuditEntry.objects.filter(action=AuditAction.JOB_RETRIED).count() == 1
    assertNotContains(imported_story, "Failed numbers retried")
    assertContains(retried_story, "Failed numbers retried")
    assertContains(retried_story, "the job&#x27;s failed numbers, this one too")


def test_a_cancel_is_in_the_story_of_a_number_it_cancelled_not_of_one_imported_before(
    client, support_user, project
):
    client.force_login(support_user)
    job = start(project, support_user)
    first, second = job.numbers.order_by("pk")
    send(first, FakeSignalWire())
    client.post(reverse("phone_numbers:job_cancel", args=[job.pk]))

    imported_story = client.get(reverse("phone_numbers:number_detail", args=[first.pk]))
    cancelled_story = client.get(reverse("phone_numbers:number_detail", args=[second.pk]))

    assertNotContains(imported_story, "Job cancelled")
    assertContains(cancelled_story, "Job cancelled")


def test_signalwire_answer_is_shown_as_formatted_json(client, support_user, project):
    client.force_login(support_user)
    job = start(project, support_user, numbers=("+14155550100",))
    number = send(job.numbers.get(), FakeSignalWire())

    response = client.get(reverse("phone_numbers:number_detail", args=[number.pk]))

    assertContains(response, '<pre class="response-json"')
    assertContains(response, "&quot;capabilities&quot;: {\n")
    assertContains(response, "&quot;voice&quot;: true")
    assertContains(response, "&quot;voice_url&quot;: null")
    assertNotContains(response, "&#x27;voice&#x27;: True")


# -- A double-clicked confirm: one job, one audit entry -----------------------------------------


def confirm_data(project, numbers="+1 415 555 0100") -> dict:
    return {
        "project": project.pk,
        "numbers": numbers,
        "number_type": "longcode",
        "capabilities": ["sms", "voice"],
        "ticket": "",
    }


def test_a_repeated_confirm_writes_one_import_confirmed_entry(client, support_user, project):
    client.force_login(support_user)
    url = reverse("phone_numbers:import_new")
    data = confirm_data(project)
    digest = client.post(url, data, headers=HTMX).context["digest"]

    first = client.post(url, data | {"confirm": digest}, headers=HTMX)
    second = client.post(url, data | {"confirm": digest}, headers=HTMX)

    assert first["HX-Redirect"] == second["HX-Redirect"]
    job = ImportJob.objects.get()
    assert AuditEntry.objects.filter(action=AuditAction.JOB_CONFIRMED, job=job).count() == 1


CONFIRM_ROUNDS = 8


def post_at_once(browsers: list[Client], url: str, data: dict) -> list:
    """POST `data` from every browser in its own thread and connection, released together."""
    barrier = threading.Barrier(len(browsers))
    answers: list = []

    def click(browser: Client) -> None:
        try:
            barrier.wait(timeout=10)
            answers.append(browser.post(url, data, headers=HTMX))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click, args=(browser,)) for browser in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_confirms_at_once_write_one_import_confirmed_entry(support_user, project):
    url = reverse("phone_numbers:import_new")
    browsers = [Client(), Client()]
    for browser in browsers:
        browser.force_login(support_user)

    for round_number in range(CONFIRM_ROUNDS):
        data = confirm_data(project, numbers=f"+1 415 555 {round_number:04d}")
        digest = browsers[0].post(url, data, headers=HTMX).context["digest"]

        answers = post_at_once(browsers, url, data | {"confirm": digest})

        assert [answer.status_code for answer in answers] == [200, 200]
        assert len({answer["HX-Redirect"] for answer in answers}) == 1
        job = ImportJob.objects.get(input_digest=digest)
        confirmed = AuditEntry.objects.filter(action=AuditAction.JOB_CONFIRMED, job=job)
        assert confirmed.count() == 1, f"round {round_number}"


# -- A token no key can read --------------------------------------------------------------------


@pytest.fixture
def unreadable_token_project(make_project, settings):
    """A project whose active token was stored under a key the portal no longer has."""
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    project = make_project(token="PTstored-under-an-old-key")
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    return project


def test_an_unreadable_token_leaves_the_project_pages_working_and_says_to_replace_it(
    client, admin_user, unreadable_token_project
):
    client.force_login(admin_user)
    project = unreadable_token_project

    detail = client.get(reverse("phone_numbers:project_detail", args=[project.pk]))
    edit = client.get(reverse("phone_numbers:project_edit", args=[project.pk]))

    assertContains(detail, "The active token cannot be read with the portal")
    assertContains(detail, "Replace the token")
    assertContains(edit, "The stored token (…-key) cannot be read with the portal")


def test_an_unreadable_token_can_be_replaced(client, admin_user, unreadable_token_project):
    client.force_login(admin_user)
    project = unreadable_token_project
    edit_url = reverse("phone_numbers:project_edit", args=[project.pk])
    data = {
        "name": project.name,
        "space_host": project.space_host,
        "project_id": str(project.project_id),
        "default_country": "US",
        "notes": "",
        "token": "PTnew-token-9999",
    }

    response = client.post(edit_url, data)

    assert response.status_code == 302
    assert Credential.objects.get(project=project, revoked_at__isnull=True).token == (
        "PTnew-token-9999"
    )
    detail = client.get(reverse("phone_numbers:project_detail", args=[project.pk]))
    assertNotContains(detail, "cannot be read")


def test_an_unreadable_token_leaves_the_django_admin_pages_working(
    client, admin_user, unreadable_token_project
):
    client.force_login(User.objects.create_superuser("root", password="x"))
    project = unreadable_token_project
    credential = Credential.objects.defer("token").get(project=project)

    for url in [
        reverse("admin:phone_numbers_project_change", args=[project.pk]),
        reverse("admin:phone_numbers_credential_changelist"),
        reverse("admin:phone_numbers_credential_change", args=[credential.pk]),
    ]:
        assert client.get(url).status_code == 200, url


def test_nothing_is_previewed_for_a_project_whose_token_cannot_be_read(
    client, support_user, unreadable_token_project
):
    client.force_login(support_user)

    response = client.post(
        reverse("phone_numbers:import_new"), confirm_data(unreadable_token_project), headers=HTMX
    )

    assertContains(response, "This project&#x27;s API token cannot be read")
    assertNotContains(response, 'name="confirm"')


def test_support_sees_an_unreadable_token_too_and_is_told_to_ask_an_admin(
    client, support_user, unreadable_token_project
):
    client.force_login(support_user)

    response = client.get(
        reverse("phone_numbers:project_detail", args=[unreadable_token_project.pk])
    )

    assertContains(response, "Ask an admin to replace the token.")


# -- Help texts are escaped ---------------------------------------------------------------------


def test_token_characters_in_a_help_text_are_escaped(client, admin_user, make_project):
    client.force_login(admin_user)
    project = make_project(token="PTsecret<b>")

    response = client.get(reverse("phone_numbers:project_edit", args=[project.pk]))

    assertContains(response, "current token (…t&lt;b&gt;)")
    assertNotContains(response, "t<b>")


# -- The Django admin: Support gets the portal's 403 --------------------------------------------


def test_support_opening_the_django_admin_gets_the_portals_403_page(client, support_user):
    client.force_login(support_user)

    response = client.get("/admin/", follow=True)

    assert response.status_code == 403
    assertTemplateUsed(response, "403.html")
    assertNotContains(response, "not authorized", status_code=403)


def test_anonymous_visitors_still_get_the_admin_login_and_admins_the_admin(client, admin_user):
    anonymous = client.get("/admin/", follow=True)
    client.force_login(admin_user)
    admin_index = client.get("/admin/")

    assert anonymous.status_code == 200
    assertContains(anonymous, 'name="password"')
    assert admin_index.status_code == 200


def test_an_admin_who_logs_in_through_the_admin_login_gets_there(client, admin_user):
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "ada", "password": "admin-pass-1", "next": "/admin/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


# -- Statuses in words --------------------------------------------------------------------------


def counts_of(**given: int) -> dict[str, int]:
    counts = dict.fromkeys(ImportStatus.values, 0) | {"retrying": 0} | given
    counts["total"] = sum(given.get(status, 0) for status in ImportStatus.values)
    return counts


@pytest.mark.parametrize(
    ("job", "counts", "text"),
    [
        (ImportJob(), counts_of(pending=2), "Queued"),
        (ImportJob(), counts_of(pending=3, retrying=3), "Retrying 3 numbers"),
        (ImportJob(), counts_of(pending=1, retrying=1), "Retrying 1 number"),
        (ImportJob(), counts_of(pending=1, imported=2, retrying=1), "Retrying 1 number"),
        (ImportJob(), counts_of(pending=1, submitting=1, retrying=1), "Running"),
        (ImportJob(), counts_of(pending=1, imported=1), "Running"),
        (
            ImportJob(cancelled_at=timezone.now()),
            counts_of(imported=32, cancelled=49_968),
            "Cancelled after 32 of 50,000 imported",
        ),
        (ImportJob(cancelled_at=timezone.now()), counts_of(cancelled=2), "Cancelled"),
        (ImportJob(), counts_of(imported=1, failed=1), "Partly imported"),
        (ImportJob(paused_at=timezone.now()), counts_of(pending=2, retrying=2), "Paused"),
    ],
)
def test_a_job_status_says_what_is_happening(job, counts, text):
    assert job.status_text(counts) == text


def test_job_page_says_retrying_while_the_failed_numbers_are_retried(
    client, support_user, project, settings
):
    settings.PORTAL_MAX_ATTEMPTS = 1
    client.force_login(support_user)
    job = start(project, support_user)
    for number in job.numbers.all():
        send(number, FakeSignalWire(import_errors=[SignalWireUnavailable("Down", status=503)]))
    assert set(job.numbers.values_list("status", flat=True)) == {ImportStatus.FAILED}

    client.post(reverse("phone_numbers:job_retry_failed", args=[job.pk]))
    response = client.get(reverse("phone_numbers:job_detail", args=[job.pk]), headers=HTMX)

    assert set(job.numbers.values_list("status", flat=True)) == {ImportStatus.PENDING}
    assertContains(response, ">Retrying 2 numbers</span>")
    assertContains(response, "badge-info")


def test_job_page_says_how_many_were_imported_before_a_cancel(client, support_user, project):
    client.force_login(support_user)
    job = start(project, support_user, numbers=("+14155550100", "+14155550101", "+14155550102"))
    send(job.numbers.order_by("pk").first(), FakeSignalWire())
    client.post(reverse("phone_numbers:job_cancel", args=[job.pk]))

    response = job_page(client, job)

    assertContains(response, ">Cancelled after 1 of 3 imported</span>")


def test_the_counts_of_a_page_of_jobs_agree_with_each_jobs_counts(support_user, project):
    job = start(project, support_user, numbers=("+14155550100", "+14155550101", "+14155550102"))
    first, second, _ = job.numbers.order_by("pk")
    NumberImport.objects.filter(pk=first.pk).update(attempts=1)
    NumberImport.objects.filter(pk=second.pk).update(status=ImportStatus.SUBMITTING, attempts=2)
    other = start(project, support_user, numbers=("+14155550199",))

    listed = ImportJob.counts_of([job.pk, other.pk])

    assert listed == {job.pk: job.counts(), other.pk: other.counts()}
    assert listed[job.pk]["retrying"] == 2
    assert listed[other.pk]["total"] == 1


# -- The import picker and the ticket field -----------------------------------------------------


def test_the_import_picker_offers_only_active_projects(client, support_user, make_project):
    client.force_login(support_user)
    active = make_project(name="Open Customer")
    closed = make_project(name="Closed Customer", is_active=False)

    pages = [
        client.get(reverse("phone_numbers:import_new")),
        client.get(reverse("phone_numbers:home")),
    ]
    crafted = client.post(reverse("phone_numbers:import_new"), confirm_data(closed), headers=HTMX)

    for page in pages:
        picker = re.search(
            r'<select name="project" required id="[^"]*">.*?</select>', page.content.decode(), re.S
        ).group()
        assert f'<option value="{active.pk}">Open Customer' in picker
        assert "Closed Customer" not in picker
    assertContains(crafted, "This project is deactivated")


def test_the_ticket_field_says_its_limit(client, support_user, project):
    client.force_login(support_user)

    page = client.get(reverse("phone_numbers:import_new"))
    home = client.get(reverse("phone_numbers:home"))
    crafted = client.post(
        reverse("phone_numbers:import_new"),
        confirm_data(project) | {"ticket": "T" * 150},
        headers=HTMX,
    )

    for form_page in (page, home):
        assertContains(form_page, 'maxlength="100"')
        assertContains(form_page, "Optional, up to 100 characters.")
    # The one-number form's hint is the one its field names as its description.
    assertContains(home, 'aria-describedby="import-ticket_helptext"')
    assertContains(home, '<p class="help" id="import-ticket_helptext">')
    assertContains(
        crafted,
        "The ticket reference can have at most 100 characters (this one has 150): shorten it.",
    )
    assert not ImportJob.objects.exists()


def test_a_user_without_a_role_cannot_read_a_number_story(client, project, support_user):
    job = start(project, support_user, numbers=("+14155550100",))
    client.force_login(User.objects.create_user("nobody", password="x"))

    response = client.get(reverse("phone_numbers:number_detail", args=[job.numbers.get().pk]))

    assert response.status_code == 403

import logging
import sys
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone
from django.views.debug import ExceptionReporter
from pytest_django.asserts import assertContains, assertNotContains, assertTemplateUsed

from phone_numbers.forms import ProjectForm
from phone_numbers.models import ConnectionStatus, Credential, Project
from phone_numbers.space_access import end_stale_connection_checks
from phone_numbers.tasks import check_project_connection

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

CANARY = "PTcanary-token-do-not-show-4242"
HTMX = {"HX-Request": "true"}


def project_data(**overrides) -> dict:
    return {
        "name": "Acme Corp",
        "space_host": "acme.signalwire.com",
        "project_id": "8f0c2a3e-1b2c-4d5e-8f90-123456789abc",
        "default_country": "US",
        "notes": "",
        "token": CANARY,
    } | overrides


@pytest.fixture
def queued_checks(monkeypatch) -> list[int]:
    queued: list[int] = []
    monkeypatch.setattr(check_project_connection, "delay", queued.append)
    return queued


def change_urls(project: Project) -> list[tuple[str, str]]:
    return [
        ("get", reverse("phone_numbers:project_create")),
        ("post", reverse("phone_numbers:project_create")),
        ("get", reverse("phone_numbers:project_edit", args=[project.pk])),
        ("post", reverse("phone_numbers:project_edit", args=[project.pk])),
        ("post", reverse("phone_numbers:project_check_connection", args=[project.pk])),
        ("post", reverse("phone_numbers:project_set_active", args=[project.pk])),
    ]


def test_anonymous_visitors_are_sent_to_login_from_every_project_page(client, make_project):
    project = make_project()
    urls = [
        ("get", reverse("phone_numbers:project_list")),
        ("get", reverse("phone_numbers:project_detail", args=[project.pk])),
        *change_urls(project),
    ]

    for method, url in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url


def test_support_reads_projects_but_gets_403_from_every_change_view(
    client, support_user, make_project
):
    project = make_project(name="Readable Ltd")
    client.force_login(support_user)

    assertContains(client.get(reverse("phone_numbers:project_list")), "Readable Ltd")
    detail = client.get(reverse("phone_numbers:project_detail", args=[project.pk]))
    assertContains(detail, "Readable Ltd")
    assertNotContains(detail, "Check connection")
    assertNotContains(detail, reverse("phone_numbers:project_edit", args=[project.pk]))
    for method, url in change_urls(project):
        assert getattr(client, method)(url).status_code == 403, f"{method} {url}"
    project.refresh_from_db()
    assert project.is_active and project.connection_status == ConnectionStatus.UNCHECKED


def test_admin_adds_a_project_and_a_connection_check_is_queued(
    client, admin_user, queued_checks, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("phone_numbers:project_create"), project_data())

    project = Project.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("phone_numbers:project_detail", args=[project.pk])
    assert project.connection_status == ConnectionStatus.CHECKING
    assert project.active_credential.token == CANARY
    assert queued_checks == [project.pk]


def test_bad_input_keeps_what_was_typed_except_the_token_and_saves_nothing(
    client, admin_user, queued_checks
):
    client.force_login(admin_user)

    response = client.post(
        reverse("phone_numbers:project_create"),
        project_data(project_id="12345", notes="call Bob first"),
    )

    assert response.status_code == 200
    assertContains(response, "Enter the project ID as a UUID")
    assertContains(response, 'value="Acme Corp"')
    assertContains(response, "call Bob first")
    assertNotContains(response, CANARY)
    assert not Project.objects.exists() and not Credential.objects.exists()
    assert queued_checks == []


def test_a_project_another_admin_saved_after_validation_is_a_form_error_not_a_500(
    client, admin_user, queued_checks, monkeypatch
):
    client.force_login(admin_user)
    data = project_data()
    validate = ProjectForm.is_valid

    def validate_then_another_admin_saves(form) -> bool:
        is_valid = validate(form)
        # The other admin's create lands after every check of this form, before its save.
        Project.objects.create(
            name="Acme (other admin)",
            space_host=data["space_host"],
            project_id=data["project_id"],
            default_country="US",
        )
        return is_valid

    monkeypatch.setattr(ProjectForm, "is_valid", validate_then_another_admin_saves)

    response = client.post(reverse("phone_numbers:project_create"), data)

    assert response.status_code == 200
    assertTemplateUsed(response, "phone_numbers/project_form.html")
    assertContains(response, "This Space already has this project in the portal.")
    assert response.context["form"].errors == {
        "project_id": ["This Space already has this project in the portal."]
    }
    assert list(Project.objects.values_list("name", flat=True)) == ["Acme (other admin)"]
    assert not Credential.objects.exists()
    assert queued_checks == []


def test_replacing_the_token_on_edit_revokes_the_old_one_and_rechecks(
    client, admin_user, make_project, queued_checks, django_capture_on_commit_callbacks
):
    project = make_project(token="PTold-token-1111")
    client.force_login(admin_user)
    data = project_data(project_id=str(project.project_id), token="PTnew-token-2222")

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("phone_numbers:project_edit", args=[project.pk]), data)

    old, new = project.credentials.order_by("pk")
    assert old.revoked_at and old.token is None
    assert new.token == "PTnew-token-2222" and new.revoked_at is None
    assert queued_checks == [project.pk]


def test_editing_without_a_token_changes_no_credential_and_queues_no_check(
    client, admin_user, make_project, queued_checks, django_capture_on_commit_callbacks
):
    project = make_project(token="PTold-token-1111")
    client.force_login(admin_user)
    data = project_data(project_id=str(project.project_id), token="", notes="VIP")

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("phone_numbers:project_edit", args=[project.pk]), data)

    project.refresh_from_db()
    assert project.notes == "VIP"
    assert project.credentials.count() == 1
    assert queued_checks == []


def test_project_search_answers_htmx_with_just_the_rows(client, support_user, make_project):
    make_project(name="Acme Corp")
    make_project(name="Globex", space_host="globex.signalwire.com")
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:project_list"), {"q": "glob"}, headers=HTMX)

    assertTemplateUsed(response, "phone_numbers/partials/project_rows.html")
    assertTemplateUsed(response, "phone_numbers/partials/connection_badge.html")
    assertContains(response, "Globex")
    assertNotContains(response, "Acme Corp")
    assertNotContains(response, "<html")
    assert "HX-Request" in response["Vary"]


def test_a_nul_in_a_project_search_is_dropped_before_the_query(client, support_user, make_project):
    make_project(name="Acme Corp")
    make_project(name="Globex", space_host="globex.signalwire.com")
    client.force_login(support_user)

    listed = client.get(reverse("phone_numbers:project_list"), {"q": "Ac\x00me"})
    picker = client.get(reverse("phone_numbers:import_new"), {"project_q": "Ac\x00me"})

    assert [project.name for project in listed.context["projects"]] == ["Acme Corp"]
    choices = picker.context["form"].fields["project"].queryset
    assert [project.name for project in choices] == ["Acme Corp"]


def test_project_search_matches_the_name_space_host_project_id_or_notes(make_project):
    acme = make_project(project_id=uuid.UUID("8f0c2a3e-1b2c-4d5e-8f90-123456789abc"))
    globex = make_project(name="Globex", space_host="gx.signalwire.com", notes="Renewal in May")

    assert list(Project.objects.search("acme corp")) == [acme]
    assert list(Project.objects.search("GX.SIGNAL")) == [globex]
    assert list(Project.objects.search("8f0c2a3e")) == [acme]
    assert list(Project.objects.search(" renewal ")) == [globex]
    assert list(Project.objects.search("  ")) == [acme, globex]


def test_the_token_hint_is_the_active_tokens_and_none_once_it_is_removed(make_project):
    replaced = make_project(token="PTold-token-1111")
    replaced.replace_token("PTnew-token-2222", by=None)
    removed = make_project(name="Globex", token="PTgone-token-3333")
    removed.credentials.update(revoked_at=timezone.now(), token=None)

    hints = dict(Project.objects.with_token_hint().values_list("name", "active_token_last4"))

    assert hints == {"Acme Corp": "2222", "Globex": None}


def test_a_credential_shows_only_its_last_four_characters_and_whether_it_is_active():
    assert str(Credential(token_last4="4242")) == "Token …4242 (active)"
    revoked = Credential(token_last4="4242", revoked_at=timezone.now())
    assert str(revoked) == "Token …4242 (revoked)"


def test_project_list_shows_the_token_hint_without_a_query_per_project(
    client, support_user, make_project, django_assert_max_num_queries
):
    for index in range(5):
        make_project(name=f"Customer {index}", token=f"PTtoken-{index}-abc{index}")
    client.force_login(support_user)

    with django_assert_max_num_queries(8):
        response = client.get(reverse("phone_numbers:project_list"))

    assertContains(response, "…abc3")


def test_check_connection_over_htmx_returns_the_polling_panel(
    client, admin_user, make_project, queued_checks, django_capture_on_commit_callbacks
):
    project = make_project()
    client.force_login(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("phone_numbers:project_check_connection", args=[project.pk]), headers=HTMX
        )

    assertTemplateUsed(response, "phone_numbers/partials/project_connection.html")
    assertContains(response, 'hx-trigger="every 1s"')
    assertContains(response, "Checking")
    assert queued_checks == [project.pk]


def test_a_finished_check_renders_without_polling(client, support_user, make_project):
    project = make_project()
    project.record_connection_check(ConnectionStatus.CREDENTIALS_REJECTED, "SignalWire said 401")
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:project_detail", args=[project.pk]), headers=HTMX)

    assertTemplateUsed(response, "phone_numbers/partials/project_connection.html")
    assertContains(response, "Credentials rejected")
    assertContains(response, "SignalWire said 401")
    assertNotContains(response, "hx-trigger")


def test_admin_deactivates_and_reactivates_a_project(client, admin_user, make_project):
    project = make_project()
    client.force_login(admin_user)
    url = reverse("phone_numbers:project_set_active", args=[project.pk])

    client.post(url, {"is_active": "false"})
    project.refresh_from_db()
    assert not project.is_active
    client.post(url, {"is_active": "true"})
    project.refresh_from_db()
    assert project.is_active


def test_unknown_project_is_a_404(client, support_user):
    client.force_login(support_user)

    assert client.get(reverse("phone_numbers:project_detail", args=[999999])).status_code == 404


def test_the_token_appears_in_no_page_fragment_admin_page_or_log(
    client, admin_user, queued_checks, caplog, django_capture_on_commit_callbacks
):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("phone_numbers:project_create"), project_data())
    project = Project.objects.get()
    credential = project.active_credential

    pages = [
        client.get(reverse("phone_numbers:project_list")),
        client.get(reverse("phone_numbers:project_list"), {"q": "acme"}, headers=HTMX),
        client.get(reverse("phone_numbers:project_detail", args=[project.pk])),
        client.get(reverse("phone_numbers:project_detail", args=[project.pk]), headers=HTMX),
        client.get(reverse("phone_numbers:project_edit", args=[project.pk])),
        client.post(
            reverse("phone_numbers:project_edit", args=[project.pk]),
            project_data(project_id="bad", token=CANARY),
        ),
        client.get(reverse("admin:phone_numbers_project_changelist")),
        client.get(reverse("admin:phone_numbers_project_change", args=[project.pk])),
        client.get(reverse("admin:phone_numbers_credential_changelist")),
        client.get(reverse("admin:phone_numbers_credential_change", args=[credential.pk])),
    ]

    for response in pages:
        assert response.status_code == 200, response.request["PATH_INFO"]
        assert CANARY not in response.content.decode(), response.request["PATH_INFO"]
    assertContains(pages[2], "…" + CANARY[-4:])
    for record in caplog.records:
        assert CANARY not in record.getMessage()


def test_an_error_report_for_a_failed_save_does_not_contain_the_token(
    client, admin_user, monkeypatch
):
    def broken_clock():
        raise RuntimeError("storage broke")

    # Fails inside Project.replace_token, whose frame holds the token.
    monkeypatch.setattr("phone_numbers.models.timezone", SimpleNamespace(now=broken_clock))
    client.force_login(admin_user)
    client.raise_request_exception = False

    response = client.post(reverse("phone_numbers:project_create"), project_data())

    assert response.status_code == 500
    # What Django's error e-mail to admins would contain, local variables included.
    exc_info = response.exc_info or sys.exc_info()
    report = ExceptionReporter(response.wsgi_request, *exc_info, is_email=True)
    assert "storage broke" in report.get_traceback_text()
    assert CANARY not in report.get_traceback_text()
    assert CANARY not in report.get_traceback_html()


def a_check_started(project: Project, seconds_ago: float) -> None:
    project.start_connection_check()
    Project.objects.filter(pk=project.pk).update(
        connection_checked_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def test_a_check_whose_task_was_lost_stops_polling_and_asks_to_check_again(
    client, admin_user, make_project
):
    project = make_project()
    a_check_started(project, seconds_ago=3600)
    client.force_login(admin_user)

    response = client.get(reverse("phone_numbers:project_detail", args=[project.pk]), headers=HTMX)

    assertTemplateUsed(response, "phone_numbers/partials/project_connection.html")
    assertContains(response, "did not finish")
    assertContains(response, "Check again")
    assertNotContains(response, "hx-trigger")
    assertNotContains(response, "Checking")
    assertNotContains(response, " disabled")


def test_a_check_started_a_moment_ago_still_polls(client, support_user, make_project):
    project = make_project()
    a_check_started(project, seconds_ago=1)
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:project_detail", args=[project.pk]), headers=HTMX)

    assertContains(response, 'hx-trigger="every 1s"')
    assertContains(response, "Checking")
    assertNotContains(response, "did not finish")


def test_support_staff_are_asked_to_get_an_admin_to_check_again(client, support_user, make_project):
    project = make_project()
    a_check_started(project, seconds_ago=3600)
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:project_detail", args=[project.pk]))

    assertContains(response, "Ask an admin to check again")
    assertNotContains(response, "hx-trigger")


def test_project_list_shows_a_lost_check_as_not_finished(client, support_user, make_project):
    a_check_started(make_project(), seconds_ago=3600)
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:project_list"))

    assertContains(response, "Check did not finish")
    assertNotContains(response, "Checking…")


def test_a_lost_check_stored_as_not_finished_shows_the_same_advice(
    client, support_user, make_project
):
    project = make_project()
    a_check_started(project, seconds_ago=3600)
    end_stale_connection_checks()
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:project_detail", args=[project.pk]), headers=HTMX)

    assertContains(response, "Check did not finish")
    assertContains(response, "Ask an admin to check again")
    assertContains(response, "No outcome within")
    assertNotContains(response, "hx-trigger")


def test_a_token_ending_in_an_html_comment_opener_is_shown_escaped_in_the_edit_form(
    client, admin_user, make_project
):
    # Unescaped, "<!--" in the help text starts a comment that hides the rest of the page,
    # the Save button included.
    project = make_project(token="PTtoken-ending-<!--")
    client.force_login(admin_user)

    response = client.get(reverse("phone_numbers:project_edit", args=[project.pk]))

    assertContains(response, "keep the current token (…&lt;!--)")
    assertNotContains(response, "<!--")
    assertContains(response, '<button type="submit" class="button button-primary">Save</button>')


def test_a_configuration_error_renders_without_polling_and_says_what_to_do(
    client, admin_user, make_project
):
    project = make_project()
    project.record_connection_check(ConnectionStatus.CONFIGURATION, "The Space host is wrong.")
    client.force_login(admin_user)

    response = client.get(reverse("phone_numbers:project_detail", args=[project.pk]), headers=HTMX)

    assertContains(response, "Configuration error")
    assertContains(response, "Nothing was sent")
    assertContains(response, "Correct it, then check again.")
    assertContains(response, "The Space host is wrong.")
    assertNotContains(response, "hx-trigger")

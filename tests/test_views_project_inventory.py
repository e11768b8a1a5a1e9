"""The project page's Space inventory panel and its "Sync now" button (issue 17); the numbers
list's side of the inventory is in test_views_inventory.py."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import (
    assertContains,
    assertNotContains,
    assertRedirects,
    assertTemplateUsed,
)

from phone_numbers.models import (
    AuditAction,
    AuditEntry,
    InventorySync,
    NumberImport,
    SpaceNumber,
)
from phone_numbers.tasks import sync_inventory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

HTMX = {"HX-Request": "true"}
PARTIAL = "phone_numbers/partials/project_inventory.html"


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(sync_inventory, "delay_on_commit", sent.append)
    return sent


@pytest.fixture
def project(make_project):
    return make_project()


def sync_url(project) -> str:
    return reverse("phone_numbers:project_sync_inventory", args=[project.pk])


def page_url(project) -> str:
    return reverse("phone_numbers:project_detail", args=[project.pk])


def completed_sync(project, **fields) -> InventorySync:
    sync = InventorySync.objects.create(project=project, trigger="nightly")
    now = timezone.now()
    values = {
        "status": "completed",
        "claimed_at": now - timedelta(seconds=12.5),
        "finished_at": now,
        "pages_read": 3,
        "numbers_listed": 2500,
        "added": 7,
        "removed": 2,
        "changed": 1,
    } | fields
    InventorySync.objects.filter(pk=sync.pk).update(**values)
    return InventorySync.objects.get(pk=sync.pk)


# --- who may sync -----------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_login(client, project, queued):
    response = client.post(sync_url(project))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not InventorySync.objects.exists() and queued == []


def test_support_may_not_start_a_sync(client, support_user, project, queued):
    client.force_login(support_user)

    response = client.post(sync_url(project), headers=HTMX)

    assert response.status_code == 403
    assert not InventorySync.objects.exists() and queued == []


def test_a_get_starts_nothing(client, admin_user, project, queued):
    client.force_login(admin_user)

    assert client.get(sync_url(project)).status_code == 405
    assert not InventorySync.objects.exists()


# --- starting one -----------------------------------------------------------------------------


def test_an_admin_starts_a_sync_and_returns_to_the_project_page(
    client, admin_user, project, queued, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(sync_url(project))

    assertRedirects(response, page_url(project) + "#inventory", fetch_redirect_response=False)
    sync = InventorySync.objects.get()
    assert (sync.trigger, sync.status, sync.started_by) == ("manual", "running", admin_user)
    assert queued == [sync.pk]
    entry = AuditEntry.objects.get(action=AuditAction.INVENTORY_SYNC_REQUESTED)
    assert (entry.user, entry.project, entry.target) == (
        admin_user,
        project,
        f"Inventory sync {sync.pk}",
    )


def test_over_htmx_the_button_returns_the_polling_panel(client, admin_user, project, queued):
    client.force_login(admin_user)

    response = client.post(sync_url(project), headers=HTMX)

    assertTemplateUsed(response, PARTIAL)
    assertContains(response, f'id="project-{project.pk}-inventory"')
    assertContains(response, 'hx-trigger="every 2s"')
    assertContains(response, "Reading the Space's list")
    assertContains(response, "disabled")


def test_a_second_click_while_a_sync_runs_starts_no_other(client, admin_user, project, queued):
    client.force_login(admin_user)
    client.post(sync_url(project), headers=HTMX)

    response = client.post(sync_url(project), follow=True)

    assert InventorySync.objects.count() == 1 and len(queued) == 1
    assertContains(response, "A sync of this project is already running.")
    assert AuditEntry.objects.filter(action=AuditAction.INVENTORY_SYNC_REQUESTED).count() == 1


# --- what the page shows ----------------------------------------------------------------------


def test_the_page_shows_the_last_completed_sync_and_the_drift_with_links(
    client, admin_user, project, project_job_and_number
):
    client.force_login(admin_user)
    project = project_job_and_number["project"]
    completed_sync(project)
    now = timezone.now()
    for index, (imported, differs) in enumerate([(None, False), (None, False), (True, True)]):
        SpaceNumber.objects.create(
            project=project,
            sid=f"s{index}",
            number=f"+1415555020{index}",
            number_import=project_job_and_number["number"] if imported else None,
            differs_from_import=differs,
            first_seen_at=now,
            last_seen_at=now,
        )
    NumberImport.objects.update(missing_from_space_since=now)

    response = client.get(page_url(project))

    assertContains(response, "Completed")
    assertContains(response, "in 12.5 s")
    assertContains(response, "2,500 (3 pages)")
    assertContains(response, "7 added, 2 removed, 1 changed")
    home = reverse("phone_numbers:home")
    for count, name, words in [
        (2, "not_imported", "in the Space, not imported by the portal"),
        (1, "missing", "imported by the portal, no longer in the Space"),
        (1, "differs", "imported, SignalWire's record differs"),
    ]:
        assertContains(
            response,
            f'<a href="{home}?project={project.pk}&amp;inventory={name}">{count} {words}</a>',
            html=True,
        )
    assertContains(response, "Sync now")


def test_a_failed_sync_shows_its_error(client, support_user, project):
    client.force_login(support_user)
    completed_sync(project, status="failed", error_message="SignalWire refused the token.")

    response = client.get(page_url(project))

    assertContains(response, "Failed")
    assertContains(response, "SignalWire refused the token.")
    assertNotContains(response, "Sync now")


def test_after_a_failed_sync_the_drift_of_the_last_completed_one_is_still_shown(
    client, support_user, project
):
    client.force_login(support_user)
    completed_sync(project)
    completed_sync(project, status="failed", error_message="SignalWire refused the token.")
    InventorySync.objects.filter(status="failed").update(
        started_at=timezone.now() + timedelta(minutes=1)
    )

    response = client.get(page_url(project))

    assertContains(response, "SignalWire refused the token.")
    assertContains(response, "inventory=missing")


def test_a_sync_that_stopped_reading_is_shown_interrupted_without_polling(
    client, admin_user, project
):
    client.force_login(admin_user)
    sync = InventorySync.objects.create(project=project, trigger="manual")
    InventorySync.objects.filter(pk=sync.pk).update(
        progressed_at=timezone.now() - timedelta(hours=1)
    )

    response = client.get(
        page_url(project), headers=HTMX | {"HX-Target": f"project-{project.pk}-inventory"}
    )

    assertTemplateUsed(response, PARTIAL)
    assertContains(response, "Interrupted")
    assertContains(response, "stopped without finishing")
    assertNotContains(response, "hx-trigger")


def test_a_project_never_synced_says_so_and_shows_no_drift(client, admin_user, project):
    client.force_login(admin_user)

    response = client.get(page_url(project))

    assertContains(response, "has not been synced yet")
    assertNotContains(response, "inventory=missing")


def test_the_connection_panel_still_polls_by_itself(client, admin_user, project):
    client.force_login(admin_user)

    response = client.get(
        page_url(project), headers=HTMX | {"HX-Target": f"project-{project.pk}-connection"}
    )

    assertTemplateUsed(response, "phone_numbers/partials/project_connection.html")
    assert PARTIAL not in [template.name for template in response.templates]

import csv
import io

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission, User
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError
from django.test import RequestFactory
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from phone_numbers import audit, importing
from phone_numbers.models import AuditAction, AuditEntry, ImportStatus, NumberImport
from phone_numbers.number_input import read_pasted
from phone_numbers.roles import ADMINS, SUPPORT
from phone_numbers.tasks import check_project_connection, import_phone_number

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

HTMX = {"HX-Request": "true"}
CANARY = "PTaudit-canary-token-7777"


@pytest.fixture(autouse=True)
def no_tasks_sent(monkeypatch) -> None:
    monkeypatch.setattr(import_phone_number, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(check_project_connection, "delay", lambda *args, **kwargs: None)


# What the user fixtures record: the users created and put in their groups.
ACCOUNT_ACTIONS = [AuditAction.USER_CREATED, AuditAction.USER_CHANGED]


def actions() -> list[str]:
    # Without the logins that force_login records, nor the fixtures' users.
    entries = AuditEntry.objects.exclude(action__in=[AuditAction.LOGIN, *ACCOUNT_ACTIONS])
    return list(entries.order_by("pk").values_list("action", flat=True))


def import_data(project, numbers="+1 415 555 0100\n+1 415 555 0101") -> dict:
    return {
        "project": project.pk,
        "numbers": numbers,
        "number_type": "longcode",
        "capabilities": ["sms", "voice"],
        "ticket": "HD-7",
    }


def test_an_admin_reads_the_whole_story_of_a_job_on_the_audit_page(
    client, support_user, admin_user, make_project
):
    project = make_project(name="Acme Corp")
    client.force_login(support_user)
    url = reverse("phone_numbers:import_new")
    digest = client.post(url, import_data(project), headers=HTMX).context["digest"]
    client.post(url, import_data(project) | {"confirm": digest}, headers=HTMX)
    job = project.jobs.get()
    NumberImport.objects.filter(job=job).update(
        status=ImportStatus.FAILED, failure_category="upstream"
    )
    client.post(reverse("phone_numbers:job_retry_failed", args=[job.pk]))

    client.force_login(admin_user)
    response = client.get(reverse("phone_numbers:audit_list"), {"job": job.pk})

    story = list(AuditEntry.objects.filter(job=job).order_by("pk"))
    assert [(entry.action, entry.username) for entry in story] == [
        (AuditAction.JOB_CONFIRMED, "sam"),
        (AuditAction.JOB_RETRIED, "sam"),
    ]
    assert story[1].changes == {"failed_before_retry": {"upstream": 2}}
    previewed = AuditEntry.objects.get(action=AuditAction.JOB_PREVIEWED)
    assert (previewed.username, previewed.project, previewed.ip_address) == (
        "sam",
        project,
        "127.0.0.1",
    )
    assert previewed.changes["importable"] == 2
    assertContains(response, "Import confirmed")
    assertContains(response, "Failed numbers retried")
    assertContains(response, "upstream: 2")
    assertContains(response, f"Job {job.pk}")
    # The preview has no job yet: it shows under the project, with the same input digest.
    by_project = client.get(reverse("phone_numbers:audit_list"), {"project": project.pk})
    assertContains(by_project, "Import previewed")
    assertContains(by_project, previewed.changes["input_digest"])


def test_project_changes_are_recorded_with_old_and_new_values_but_never_the_token(
    client, admin_user
):
    client.force_login(admin_user)
    data = {
        "name": "Acme Corp",
        "space_host": "acme.signalwire.com",
        "project_id": "8f0c2a3e-1b2c-4d5e-8f90-123456789abc",
        "default_country": "US",
        "notes": "",
        "token": CANARY,
    }
    client.post(reverse("phone_numbers:project_create"), data)
    project = AuditEntry.objects.get(action=AuditAction.PROJECT_CREATED).project
    edit = reverse("phone_numbers:project_edit", args=[project.pk])
    client.post(edit, data | {"name": "Acme Inc", "token": ""})
    client.post(edit, data | {"name": "Acme Inc", "token": CANARY + "-new"})
    client.post(reverse("phone_numbers:project_check_connection", args=[project.pk]))
    active = reverse("phone_numbers:project_set_active", args=[project.pk])
    client.post(active, {"is_active": "false"})
    client.post(active, {"is_active": "true"})

    assert actions() == [
        AuditAction.PROJECT_CREATED,
        AuditAction.CREDENTIAL_ADDED,
        AuditAction.PROJECT_CHANGED,
        AuditAction.CREDENTIAL_REPLACED,
        AuditAction.CONNECTION_CHECKED,
        AuditAction.PROJECT_DEACTIVATED,
        AuditAction.PROJECT_REACTIVATED,
    ]
    changed = AuditEntry.objects.get(action=AuditAction.PROJECT_CHANGED)
    assert changed.changes == {"name": {"old": "Acme Corp", "new": "Acme Inc"}}
    replaced = AuditEntry.objects.get(action=AuditAction.CREDENTIAL_REPLACED)
    assert replaced.changes == {"token": "token replaced"}
    # A new project's token is its first: both of its entries say it was added.
    created = AuditEntry.objects.get(action=AuditAction.PROJECT_CREATED)
    assert created.changes["token"] == "token added"
    added = AuditEntry.objects.get(action=AuditAction.CREDENTIAL_ADDED)
    assert added.changes == {"token": "token added"}
    for entry in AuditEntry.objects.exclude(action__in=[AuditAction.LOGIN, *ACCOUNT_ACTIONS]):
        assert entry.project == project
        assert CANARY not in str(entry.changes) + entry.target
        assert CANARY[-4:] not in str(entry.changes) + entry.target


def test_pause_resume_cancel_number_retry_and_export_are_recorded(client, admin_user, make_project):
    project = make_project()
    client.force_login(admin_user)
    job = importing.start_job(
        project=project,
        lines=read_pasted("+1 415 555 0100\n+1 415 555 0101"),
        number_type="longcode",
        capabilities=["sms"],
        created_by=admin_user,
        source="paste",
        ticket="",
    )
    first, _ = job.numbers.order_by("pk")
    NumberImport.objects.filter(pk=first.pk).update(
        status="failed", failure_category="invalid_input", error_message="Bad type"
    )

    client.post(reverse("phone_numbers:job_pause", args=[job.pk]))
    client.post(reverse("phone_numbers:job_resume", args=[job.pk]))
    client.post(
        reverse("phone_numbers:number_retry", args=[first.pk]),
        {"number_type": "tollfree", "capabilities": ["sms"]},
    )
    client.post(reverse("phone_numbers:job_cancel", args=[job.pk]))
    client.get(reverse("phone_numbers:job_export", args=[job.pk]))

    assert actions() == [
        AuditAction.JOB_PAUSED,
        AuditAction.JOB_RESUMED,
        AuditAction.NUMBER_RETRIED,
        AuditAction.JOB_CANCELLED,
        AuditAction.JOB_EXPORTED,
    ]
    retried = AuditEntry.objects.get(action=AuditAction.NUMBER_RETRIED)
    assert retried.changes == {
        "number_type": {"old": "longcode", "new": "tollfree"},
        "last_error": "Bad type",
    }
    assert retried.target == f"+14155550100 (job {job.pk})"
    entries = AuditEntry.objects.exclude(action__in=[AuditAction.LOGIN, *ACCOUNT_ACTIONS])
    assert set(entries.values_list("job", flat=True)) == {job.pk}


def test_logins_failed_logins_and_logouts_are_recorded(client, support_user):
    client.post(reverse("login"), {"username": "sam", "password": "wrong"})
    client.post(reverse("login"), {"username": "sam", "password": "support-pass-1"})
    client.post(reverse("logout"))

    entries = list(AuditEntry.objects.exclude(action__in=ACCOUNT_ACTIONS).order_by("pk"))
    assert [(entry.action, entry.username, entry.ip_address) for entry in entries] == [
        (AuditAction.LOGIN_FAILED, "sam", "127.0.0.1"),
        (AuditAction.LOGIN, "sam", "127.0.0.1"),
        (AuditAction.LOGOUT, "sam", "127.0.0.1"),
    ]
    assert entries[0].user is None
    assert entries[1].user == support_user
    assert "wrong" not in str(entries[0].changes)


def test_entries_cannot_be_changed_or_deleted(admin_user):
    entry = audit.record(None, AuditAction.LOGIN, username="ada")

    entry.username = "someone-else"
    with pytest.raises(PermissionError, match=r"^Audit entries cannot be changed\.$"):
        entry.save()
    with pytest.raises(PermissionError, match=r"^Audit entries cannot be deleted\.$"):
        entry.delete()
    with pytest.raises(PermissionError, match=r"^Audit entries cannot be changed\.$"):
        AuditEntry.objects.filter(pk=entry.pk).update(username="x")
    with pytest.raises(PermissionError, match=r"^Audit entries cannot be deleted\.$"):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(pk=entry.pk).username == "ada"


def test_an_entry_names_its_action_and_who_did_it_or_someone():
    assert str(AuditEntry(action=AuditAction.LOGIN, username="ada")) == "Logged in by ada"
    assert str(AuditEntry(action=AuditAction.LOGIN_FAILED)) == "Login failed by someone"


def test_the_audit_page_shows_old_and_new_values_lists_counts_and_a_dash_for_nothing():
    entry = AuditEntry(
        changes={
            "name": {"old": "Acme", "new": "Acme Corp"},
            "notes": {"old": "", "new": None},
            "capabilities": ["sms", "voice"],
            "previous_capabilities": [],
            "numbers": {"imported": 3, "failed": 1},
            "totals": {},
            "ticket": "",
            "reason": None,
            "lines": 2,
        }
    )

    assert entry.change_lines() == [
        ("name", "Acme → Acme Corp"),
        ("notes", "— → —"),
        ("capabilities", "sms, voice"),
        ("previous_capabilities", "—"),
        ("numbers", "imported: 3, failed: 1"),
        ("totals", "—"),
        ("ticket", "—"),
        ("reason", "—"),
        ("lines", "2"),
    ]


def every_entry() -> list[dict]:
    return list(AuditEntry.objects.order_by("pk").values())


def test_deleting_a_user_changes_no_entry_and_is_itself_recorded(client, admin_user):
    client.post(reverse("login"), {"username": "ada", "password": "admin-pass-1"})
    before = every_entry()
    assert before[-1]["user_id"] == admin_user.pk

    User.objects.get(pk=admin_user.pk).delete()

    after = every_entry()
    assert after[: len(before)] == before
    deleted = AuditEntry.objects.get(action=AuditAction.USER_DELETED)
    assert (deleted.target, deleted.username, deleted.ip_address) == ("ada", "", None)
    assert after[len(before) :] == [AuditEntry.objects.filter(pk=deleted.pk).values().get()]


def test_the_django_admin_shows_an_entry_of_a_deleted_user(client, admin_user, support_user):
    client.post(reverse("login"), {"username": "sam", "password": "support-pass-1"})
    entry = AuditEntry.objects.get(action=AuditAction.LOGIN)
    support_user.delete()
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)

    response = client.get(reverse("admin:phone_numbers_auditentry_change", args=[entry.pk]))

    assertContains(response, "sam")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE phone_numbers_auditentry SET username = 'mallory'",
        "DELETE FROM phone_numbers_auditentry",
        "TRUNCATE phone_numbers_auditentry",
    ],
)
def test_the_database_refuses_to_change_delete_or_truncate_entries(statement):
    if statement.startswith("TRUNCATE") and connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    audit.record(None, AuditAction.LOGIN, username="ada")

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Else TRUNCATE stops at the insert's deferred foreign-key checks, still pending.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute(statement)

    assert list(AuditEntry.objects.values_list("username", flat=True)) == ["ada"]


def test_the_base_manager_cannot_change_or_delete_entries_either():
    entry = audit.record(None, AuditAction.LOGIN, username="ada")

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry._base_manager.filter(pk=entry.pk).update(username="mallory")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry._base_manager.filter(pk=entry.pk)._raw_delete(connection.alias)

    assert AuditEntry.objects.get(pk=entry.pk).username == "ada"


def test_a_job_with_a_history_cannot_be_deleted(project_job_and_number):
    job = project_job_and_number["job"]
    audit.record(None, AuditAction.JOB_PAUSED, job=job)

    with pytest.raises(ProtectedError):
        job.delete()

    assert AuditEntry.objects.get(action=AuditAction.JOB_PAUSED).job == job


def test_the_django_admin_shows_entries_read_only(client, admin_user):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    entry = audit.record(None, AuditAction.LOGIN, username="ada")

    changelist = client.get(reverse("admin:phone_numbers_auditentry_changelist"))
    change = client.get(reverse("admin:phone_numbers_auditentry_change", args=[entry.pk]))
    delete = client.post(
        reverse("admin:phone_numbers_auditentry_delete", args=[entry.pk]), {"post": "yes"}
    )
    add = client.get(reverse("admin:phone_numbers_auditentry_add"))

    assert changelist.status_code == 200
    assertNotContains(change, 'name="_save"')
    assert delete.status_code == 403
    assert add.status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_the_audit_page_filters_by_person_action_and_date(client, admin_user):
    client.force_login(admin_user)
    audit.record(None, AuditAction.LOGIN_FAILED, username="mallory")
    audit.record(None, AuditAction.LOGIN, username="sam")
    url = reverse("phone_numbers:audit_list")

    by_person = client.get(url, {"person": "MALLORY"})
    by_action = client.get(url, {"action": AuditAction.LOGIN})
    too_late = client.get(url, {"since": "2999-01-01"})
    bad_date = client.get(url, {"since": "yesterday", "person": "sam"})

    assert [entry.username for entry in by_person.context["entries"]] == ["mallory"]
    assert [entry.username for entry in by_action.context["entries"]] == ["sam", "ada"]
    assert too_late.context["entries"] == []
    assert [entry.username for entry in bad_date.context["entries"]] == ["sam"]
    assertContains(bad_date, "Enter a date like 2026-01-31.")
    assertContains(by_person, f"{reverse('phone_numbers:audit_export')}?person=MALLORY")


def test_the_audit_page_pages_newest_first_without_counting(
    client, admin_user, django_assert_max_num_queries
):
    from phone_numbers.views import AUDIT_PAGE_SIZE

    client.force_login(admin_user)
    for number in range(AUDIT_PAGE_SIZE + 5):
        audit.record(None, AuditAction.LOGIN_FAILED, username=f"user{number}")
    url = reverse("phone_numbers:audit_list")

    first = client.get(url, {"action": AuditAction.LOGIN_FAILED})
    older = client.get(
        url, {"action": AuditAction.LOGIN_FAILED, "before": first.context["older_than"]}
    )

    assert first.context["entries"][0].username == f"user{AUDIT_PAGE_SIZE + 4}"
    assert len(first.context["entries"]) == AUDIT_PAGE_SIZE
    assert [entry.username for entry in older.context["entries"]] == [
        f"user{number}" for number in range(4, -1, -1)
    ]
    assert older.context["older_than"] is None
    assertContains(first, f"action=login_failed&amp;before={first.context['older_than']}")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    assert not any("COUNT(" in query["sql"].upper() for query in queries.captured_queries)


def test_the_audit_export_streams_the_filter_as_csv_and_defuses_formulas(client, admin_user):
    client.force_login(admin_user)
    audit.record(None, AuditAction.LOGIN_FAILED, username="=HYPERLINK(evil)")
    audit.record(None, AuditAction.LOGIN, username="sam")

    response = client.get(
        reverse("phone_numbers:audit_export"), {"action": AuditAction.LOGIN_FAILED}
    )

    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["time", "person", "ip_address", "action"]
    assert [row[1] for row in rows[1:]] == ["'=HYPERLINK(evil)"]
    exported = AuditEntry.objects.get(action=AuditAction.AUDIT_EXPORTED)
    assert exported.changes == {"filters": {"action": "login_failed"}}


def test_support_cannot_read_the_audit_and_sees_no_link(client, support_user, admin_user):
    client.force_login(support_user)
    home = client.get(reverse("phone_numbers:job_list"))
    assert client.get(reverse("phone_numbers:audit_list")).status_code == 403
    assert client.get(reverse("phone_numbers:audit_export")).status_code == 403
    assertNotContains(home, reverse("phone_numbers:audit_list"))

    client.force_login(admin_user)
    assertContains(
        client.get(reverse("phone_numbers:job_list")), reverse("phone_numbers:audit_list")
    )


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.9", "", [], "203.0.113.9"),
        # Without a trusted proxy, a client's own X-Forwarded-For is ignored.
        ("203.0.113.9", "10.9.9.9", [], "203.0.113.9"),
        ("127.0.0.1", "198.51.100.7", ["127.0.0.1"], "198.51.100.7"),
        # The leftmost hop is whatever the client sent; the proxy appended the real one.
        ("127.0.0.1", "10.9.9.9, 198.51.100.7", ["127.0.0.1"], "198.51.100.7"),
        ("127.0.0.1", "198.51.100.7, 10.0.0.2", ["127.0.0.1", "10.0.0.2"], "198.51.100.7"),
        ("127.0.0.1", "not-an-ip", ["127.0.0.1"], "127.0.0.1"),
        ("", "", [], None),
    ],
)
def test_client_ip_trusts_x_forwarded_for_only_from_a_listed_proxy(
    settings, remote, forwarded, trusted, expected
):
    settings.PORTAL_TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert audit.client_ip(request) == expected


USER_AND_GROUP_ACTIONS = [
    AuditAction.USER_CREATED,
    AuditAction.USER_CHANGED,
    AuditAction.USER_DELETED,
    AuditAction.PASSWORD_CHANGED,
    AuditAction.GROUP_CREATED,
    AuditAction.GROUP_CHANGED,
    AuditAction.GROUP_DELETED,
]
NEW_PASSWORD = "Correct-horse-battery-9"


def last_pk() -> int:
    return AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def account_entries_since(pk: int) -> list[tuple]:
    """Entries about users and groups: (action, by whom, from where, about whom, changes)."""
    entries = AuditEntry.objects.filter(pk__gt=pk, action__in=USER_AND_GROUP_ACTIONS)
    return [
        (entry.action, entry.username, entry.ip_address, entry.target, entry.changes)
        for entry in entries.order_by("pk")
    ]


@pytest.fixture
def root(db) -> User:
    return User.objects.create_superuser("root", password="root-pass-1")


def test_users_created_changed_given_a_password_and_deleted_in_the_admin_are_recorded(
    client, root, support_user
):
    admins = Group.objects.get(name=ADMINS)
    support = Group.objects.get(name=SUPPORT)
    start = last_pk()
    client.force_login(root)
    new_password = {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}

    client.post(reverse("admin:auth_user_add"), {"username": "newbie", **new_password})
    newbie = User.objects.get(username="newbie")
    client.post(
        reverse("admin:auth_user_change", args=[support_user.pk]),
        {
            "username": "sam",
            "email": "sam@example.com",
            "is_active": "on",
            "groups": [support.pk, admins.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    client.post(reverse("admin:auth_user_password_change", args=[support_user.pk]), new_password)
    client.post(reverse("admin:auth_user_delete", args=[newbie.pk]), {"post": "yes"})

    by_root = ("root", "127.0.0.1")
    assert account_entries_since(start) == [
        (
            AuditAction.USER_CREATED,
            *by_root,
            "newbie",
            {"username": "newbie", "is_active": True, "is_staff": False, "is_superuser": False},
        ),
        (
            AuditAction.USER_CHANGED,
            *by_root,
            "sam",
            {"email": {"old": "", "new": "sam@example.com"}},
        ),
        (
            AuditAction.USER_CHANGED,
            *by_root,
            "sam",
            {"groups": {"old": [SUPPORT], "new": [ADMINS, SUPPORT]}},
        ),
        (AuditAction.USER_CHANGED, *by_root, "sam", {"is_staff": {"old": False, "new": True}}),
        (AuditAction.PASSWORD_CHANGED, *by_root, "sam", {"password": "password changed"}),
        (AuditAction.USER_DELETED, *by_root, "newbie", {}),
    ]
    support_user.refresh_from_db()
    assert support_user.check_password(NEW_PASSWORD)
    trail = str(account_entries_since(start))
    assert support_user.password not in trail
    assert support_user.password.split("$")[-1] not in trail


def test_a_person_changing_their_own_password_is_recorded(client, support_user):
    start = last_pk()
    client.force_login(support_user)

    response = client.post(
        reverse("password_change"),
        {
            "old_password": "support-pass-1",
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 302
    assert account_entries_since(start) == [
        (AuditAction.PASSWORD_CHANGED, "sam", "127.0.0.1", "sam", {"password": "password changed"})
    ]


def test_groups_created_given_permissions_and_deleted_in_the_admin_are_recorded(client, root):
    view_project = Permission.objects.get(codename="view_project")
    delete_user = Permission.objects.get(codename="delete_user")
    start = last_pk()
    client.force_login(root)

    client.post(reverse("admin:auth_group_add"), {"name": "Auditors"})
    auditors = Group.objects.get(name="Auditors")
    change = reverse("admin:auth_group_change", args=[auditors.pk])
    client.post(change, {"name": "Auditors", "permissions": [view_project.pk, delete_user.pk]})
    client.post(change, {"name": "Auditors", "permissions": [view_project.pk]})
    client.post(reverse("admin:auth_group_delete", args=[auditors.pk]), {"post": "yes"})

    by_root = ("root", "127.0.0.1")
    assert account_entries_since(start) == [
        (AuditAction.GROUP_CREATED, *by_root, "Auditors", {"name": "Auditors"}),
        (
            AuditAction.GROUP_CHANGED,
            *by_root,
            "Auditors",
            {"permissions": {"old": [], "new": ["auth.delete_user", "phone_numbers.view_project"]}},
        ),
        (
            AuditAction.GROUP_CHANGED,
            *by_root,
            "Auditors",
            {
                "permissions": {
                    "old": ["auth.delete_user", "phone_numbers.view_project"],
                    "new": ["phone_numbers.view_project"],
                }
            },
        ),
        (AuditAction.GROUP_DELETED, *by_root, "Auditors", {}),
    ]


def test_changes_made_outside_a_request_are_recorded_without_a_person_or_address(support_user):
    start = last_pk()
    admins = Group.objects.get(name=ADMINS)

    admins.user_set.add(support_user)
    support_user.refresh_from_db()
    support_user.set_password(NEW_PASSWORD)
    support_user.save()
    support_user.user_permissions.add(Permission.objects.get(codename="delete_user"))
    support_user.groups.clear()

    nobody = ("", None, "sam")
    assert account_entries_since(start) == [
        (
            AuditAction.USER_CHANGED,
            *nobody,
            {"groups": {"old": [SUPPORT], "new": [ADMINS, SUPPORT]}},
        ),
        (AuditAction.USER_CHANGED, *nobody, {"is_staff": {"old": False, "new": True}}),
        (AuditAction.PASSWORD_CHANGED, *nobody, {"password": "password changed"}),
        (
            AuditAction.USER_CHANGED,
            *nobody,
            {"user_permissions": {"old": [], "new": ["auth.delete_user"]}},
        ),
        (
            AuditAction.USER_CHANGED,
            *nobody,
            {"groups": {"old": [ADMINS, SUPPORT], "new": []}},
        ),
        (AuditAction.USER_CHANGED, *nobody, {"is_staff": {"old": True, "new": False}}),
    ]


def test_a_login_records_no_user_change_not_even_when_it_rehashes_the_password(
    client, settings, support_user
):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    User.objects.filter(pk=support_user.pk).update(
        password=make_password("support-pass-1", hasher="pbkdf2_sha256")
    )
    start = last_pk()

    response = client.post(reverse("login"), {"username": "sam", "password": "support-pass-1"})

    assert response.status_code == 302
    support_user.refresh_from_db()
    assert support_user.password.startswith("md5$")  # the login did re-hash it
    assert account_entries_since(start) == []

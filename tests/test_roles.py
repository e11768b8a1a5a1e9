import pytest
from django.contrib.auth.models import Group, User

from phone_numbers.management.commands.runportal import create_first_admin
from phone_numbers.roles import ADMINS, SUPPORT

pytestmark = pytest.mark.django_db


def test_migrations_create_both_roles():
    assert set(Group.objects.values_list("name", flat=True)) >= {SUPPORT, ADMINS}


def codenames(role: str) -> set[str]:
    return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))


def test_admins_may_manage_users_and_support_may_not():
    assert {"view_user", "add_user", "change_user"} <= codenames(ADMINS)
    assert not {"view_user", "add_user", "change_user"} & codenames(SUPPORT)


def test_support_reads_projects_and_admins_change_them():
    assert "view_project" in codenames(SUPPORT)
    assert not {"add_project", "change_project", "change_credential"} & codenames(SUPPORT)
    assert {"view_project", "add_project", "change_project", "add_credential"} <= codenames(ADMINS)


def test_first_admin_gets_a_generated_password_once(monkeypatch):
    monkeypatch.delenv("PORTAL_ADMIN_PASSWORD", raising=False)

    created, password = create_first_admin()
    again = create_first_admin()

    admin = User.objects.get(username="admin")
    assert created and password
    assert admin.check_password(password)
    assert admin.is_superuser and admin.is_staff
    assert admin.groups.filter(name=ADMINS).exists()
    assert again == (False, None)


def test_first_admin_takes_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", "chosen-by-the-operator")

    created, password = create_first_admin()

    assert created and password is None
    assert User.objects.get(username="admin").check_password("chosen-by-the-operator")

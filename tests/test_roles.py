import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from phone_numbers.management.commands.runportal import create_first_admin
from phone_numbers.roles import ADMINS, SUPPORT

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


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


def in_admins(user: User) -> None:
    user.groups.add(Group.objects.get(name=ADMINS))


def staff(user: User) -> bool:
    user.refresh_from_db()
    return user.is_staff


def test_joining_admins_gives_staff_status_however_the_user_is_added():
    ada, bob = User.objects.create_user("ada"), User.objects.create_user("bob")

    ada.groups.add(Group.objects.get(name=ADMINS))
    Group.objects.get(name=ADMINS).user_set.add(bob)

    assert ada.is_staff and staff(ada)
    assert staff(bob)


@pytest.mark.parametrize(
    "leave",
    [
        lambda user, admins: user.groups.remove(admins),
        lambda user, admins: user.groups.clear(),
        lambda user, admins: user.groups.set([Group.objects.get(name=SUPPORT)]),
        lambda user, admins: admins.user_set.remove(user),
        lambda user, admins: admins.user_set.clear(),
    ],
    ids=["remove", "clear", "set", "group-side remove", "group-side clear"],
)
def test_leaving_admins_takes_staff_status_away_unless_a_superuser(leave):
    admins = Group.objects.get(name=ADMINS)
    ada = User.objects.create_user("ada", is_staff=True)
    root = User.objects.create_superuser("root", password="root-pass-1")
    admins.user_set.add(ada, root)

    leave(ada, admins)
    leave(root, admins)

    assert not staff(ada)
    assert staff(root)


def test_an_admin_removed_from_admins_in_the_django_admin_loses_staff_status(client, admin_user):
    root = User.objects.create_superuser("root", password="root-pass-1")
    client.force_login(root)

    response = client.post(
        reverse("admin:auth_user_change", args=[admin_user.pk]),
        {
            "username": "ada",
            "is_active": "on",
            "is_staff": "on",
            "groups": [Group.objects.get(name=SUPPORT).pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    assert response.status_code == 302
    assert not staff(admin_user)
    # Without staff status the Django admin is closed to her.
    client.force_login(admin_user)
    assert client.get(reverse("admin:index")).status_code == 302


def test_other_groups_leave_staff_status_as_it_is():
    operator = User.objects.create_user("op", is_staff=True)

    operator.groups.add(Group.objects.get(name=SUPPORT))
    operator.groups.remove(Group.objects.get(name=SUPPORT))

    assert staff(operator)

"""The Django user admin: full for superusers, restricted for Admins (staff, not superusers)."""

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse
from pytest_django.asserts import assertNotContains

from phone_numbers.roles import ADMINS, SUPPORT

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

NEW_PASSWORD = "Correct-horse-battery-9"


@pytest.fixture
def root(db):
    return User.objects.create_superuser("root", password="root-pass-1")


def change_url(user: User) -> str:
    return reverse("admin:auth_user_change", args=[user.pk])


def password_url(user: User) -> str:
    return reverse("admin:auth_user_password_change", args=[user.pk])


def change_data(user: User, **fields) -> dict:
    """What the admin's change form posts for `user`, as it is, with `fields` changed."""
    return {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "groups": list(user.groups.values_list("pk", flat=True)),
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        **fields,
    }


def crafted_superuser_fields() -> dict:
    """Fields the restricted form does not show, posted anyway."""
    return {
        "is_superuser": "on",
        "is_staff": "on",
        "user_permissions": [Permission.objects.get(codename="delete_user").pk],
    }


def test_an_admin_cannot_make_anyone_a_superuser_not_even_with_crafted_fields(
    client, admin_user, support_user
):
    client.force_login(admin_user)
    form = client.get(change_url(support_user))

    for user in (support_user, admin_user):
        response = client.post(
            change_url(user), change_data(user, first_name="Changed", **crafted_superuser_fields())
        )
        # Saved: the rest of the form was accepted, the crafted fields ignored.
        assert response.status_code == 302
        user.refresh_from_db()
        assert user.first_name == "Changed"
        assert not user.is_superuser
        assert not user.user_permissions.exists()
    assert not support_user.is_staff
    assertNotContains(form, 'name="is_superuser"')
    assertNotContains(form, 'name="user_permissions"')


def test_an_admin_cannot_see_change_delete_or_reset_the_password_of_a_superuser(
    client, admin_user, root
):
    client.force_login(admin_user)

    listing = client.get(reverse("admin:auth_user_changelist"))
    change_page = client.get(change_url(root))
    changed = client.post(change_url(root), change_data(root, username="rooted"))
    password = client.post(
        password_url(root),
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    deleted = client.post(reverse("admin:auth_user_delete", args=[root.pk]), {"post": "yes"})

    assertNotContains(listing, change_url(root))
    # The admin answers as for a user that does not exist.
    assert (change_page.status_code, changed.status_code) == (302, 302)
    assert change_page.url == reverse("admin:index")
    assert password.status_code == 404
    assert deleted.status_code in (302, 403)
    root.refresh_from_db()
    assert root.username == "root"
    assert root.check_password("root-pass-1")


def test_a_superuser_keeps_the_full_user_admin(client, root, support_user):
    other_root = User.objects.create_superuser("root2", password="root-pass-2")
    client.force_login(root)

    made = client.post(change_url(support_user), change_data(support_user, is_superuser="on"))
    password = client.post(
        password_url(other_root),
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert (made.status_code, password.status_code) == (302, 302)
    support_user.refresh_from_db()
    other_root.refresh_from_db()
    assert support_user.is_superuser
    assert other_root.check_password(NEW_PASSWORD)


def test_an_admin_gives_only_groups_that_grant_nothing_beyond_their_own_permissions(
    client, admin_user, support_user
):
    owners = Group.objects.create(name="Owners")
    owners.permissions.add(Permission.objects.get(codename="delete_user"))
    admins = Group.objects.get(name=ADMINS)
    support = Group.objects.get(name=SUPPORT)
    client.force_login(admin_user)

    refused = client.post(change_url(support_user), change_data(support_user, groups=[owners.pk]))
    given = client.post(
        change_url(support_user), change_data(support_user, groups=[support.pk, admins.pk])
    )

    assert refused.status_code == 200
    assert "groups" in refused.context["adminform"].form.errors
    assert given.status_code == 302
    assert set(support_user.groups.all()) == {support, admins}


def test_a_group_an_admin_cannot_give_stays_when_they_save_the_user(
    client, admin_user, support_user
):
    owners = Group.objects.create(name="Owners")
    owners.permissions.add(Permission.objects.get(codename="delete_user"))
    support_user.groups.add(owners)
    client.force_login(admin_user)

    response = client.post(
        change_url(support_user), change_data(support_user, groups=[], first_name="Sam")
    )

    assert response.status_code == 302
    assert list(support_user.groups.all()) == [owners]

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains

from phone_numbers.models import AuditAction, AuditEntry

pytestmark = pytest.mark.django_db


def log_in(client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_the_limit_and_cool_off_come_from_the_environment_with_defaults():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]


def test_a_username_is_locked_out_after_the_limit_even_with_the_right_password(
    client, support_user
):
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "sam", f"wrong-{attempt}", f"10.0.0.{attempt}").status_code == 200

    locked = log_in(client, "sam", "wrong-again", "10.0.0.99")
    right_password = log_in(client, "sam", "support-pass-1", "10.0.0.100")

    assert locked.status_code == 429
    assert right_password.status_code == 429
    assertContains(right_password, "Too many failed logins", status_code=429)
    assertContains(right_password, "Try again in 15 minutes", status_code=429)
    assertContains(right_password, "ask an admin", status_code=429)
    assert "_auth_user_id" not in client.session
    # Someone else, from another address, still logs in.
    assert log_in(client, "ada", "anything", "10.1.1.1").status_code == 200


def test_an_address_is_locked_out_after_the_limit_whatever_the_username(client, admin_user):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, f"guess{attempt}", "wrong", "198.51.100.7")

    response = log_in(client, "ada", "admin-pass-1", "198.51.100.7")

    assert response.status_code == 429
    assert log_in(client, "ada", "admin-pass-1", "198.51.100.8").status_code == 302


def test_failures_and_the_lockout_are_in_the_audit_trail(client, support_user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "sam", "wrong", "203.0.113.5")

    entries = AuditEntry.objects.order_by("pk")
    failed = entries.filter(action=AuditAction.LOGIN_FAILED)
    assert failed.count() == settings.AXES_FAILURE_LIMIT
    assert set(failed.values_list("username", "ip_address")) == {("sam", "203.0.113.5")}
    locked = entries.get(action=AuditAction.LOCKED_OUT)
    assert (locked.username, locked.ip_address) == ("sam", "203.0.113.5")


def test_after_the_cool_off_the_right_password_works_again(client, support_user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "sam", "wrong")
    long_ago = timezone.now() - timedelta(minutes=16)
    AccessAttempt.objects.update(attempt_time=long_ago)

    response = log_in(client, "sam", "support-pass-1")

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(support_user.pk)


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_locked_out(
    client, support_user, settings
):
    settings.PORTAL_TRUSTED_PROXIES = ["127.0.0.1"]

    def through_proxy(username: str, client_address: str):
        return client.post(
            reverse("login"),
            {"username": username, "password": "wrong"},
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR=client_address,
        )

    for attempt in range(settings.AXES_FAILURE_LIMIT):
        through_proxy(f"guess{attempt}", "198.51.100.7")

    assert through_proxy("other", "198.51.100.7").status_code == 429
    assert through_proxy("other", "198.51.100.8").status_code == 200

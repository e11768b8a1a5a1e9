import threading
from datetime import timedelta
from itertools import pairwise

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains

from phone_numbers import logins
from phone_numbers.audit import COUNT_ONLY, NOT_WRITTEN
from phone_numbers.models import AuditAction, AuditEntry, LoginThrottle
from phone_numbers.tasks import write_held_back_login_events
from tests.conftest import run_manage

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


def log_in(client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


@pytest.fixture
def clock(monkeypatch):
    """A clock that stands still until moved: the portal and django-axes both read it."""

    class Clock:
        now = timezone.now()

        def advance(self, **delta) -> None:
            self.now += timedelta(**delta)

    frozen = Clock()
    for target in ("django.utils.timezone.now", "axes.handlers.proxy.now", "axes.attempts.now"):
        monkeypatch.setattr(target, lambda: frozen.now)
    return frozen


def test_the_limits_come_from_the_environment_with_defaults():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.PORTAL_LOGIN_SLOWDOWN_AFTER == 10
    assert settings.PORTAL_LOGIN_SLOWDOWN_FIRST_SECONDS == 60
    assert settings.PORTAL_LOGIN_SLOWDOWN_MAX_MINUTES == 60
    assert settings.PORTAL_LOGIN_SLOWDOWN_FORGET_HOURS == 24
    assert settings.PORTAL_LOGIN_DEVICE_DAYS == 90


def test_the_slowdown_settings_are_read_from_the_environment(local_mode_env):
    names = [
        "PORTAL_LOGIN_SLOWDOWN_AFTER",
        "PORTAL_LOGIN_SLOWDOWN_FIRST_SECONDS",
        "PORTAL_LOGIN_SLOWDOWN_MAX_MINUTES",
        "PORTAL_LOGIN_SLOWDOWN_FORGET_HOURS",
        "PORTAL_LOGIN_DEVICE_DAYS",
    ]
    env = {**local_mode_env, **{name: str(value) for value, name in enumerate(names, start=2)}}
    show = f"from django.conf import settings as s; print([getattr(s, n) for n in {names!r}])"

    result = run_manage(env, "shell", "-v", "0", "-c", show)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[2, 3, 4, 5, 6]"


@pytest.mark.parametrize("name", ["PORTAL_LOGIN_SLOWDOWN_AFTER", "PORTAL_LOGIN_DEVICE_DAYS"])
def test_a_slowdown_setting_below_one_stops_start_up_naming_it(local_mode_env, name):
    result = run_manage({**local_mode_env, name: "0"}, "check")

    assert result.returncode == 1
    assert f"{name} must be 1 or more" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_username_is_locked_out_at_an_address_after_the_limit_even_with_the_right_password(
    client, support_user, admin_user
):
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "sam", f"wrong-{attempt}", "10.0.0.1").status_code == 200

    locked = log_in(client, "sam", "wrong-again", "10.0.0.1")
    right_password = log_in(client, "sam", "support-pass-1", "10.0.0.1")

    assert locked.status_code == 429
    assert right_password.status_code == 429
    assertContains(right_password, "Too many failed logins", status_code=429)
    assertContains(right_password, "Try again in 15 minutes", status_code=429)
    assertContains(right_password, "ask an admin", status_code=429)
    assert "_auth_user_id" not in client.session
    # Someone else, from the same address, still logs in.
    assert log_in(Client(), "ada", "admin-pass-1", "10.0.0.1").status_code == 302


def test_a_refused_attempt_does_not_push_the_end_of_the_lockout_back(support_user, clock):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(), "sam", f"wrong-{attempt}", "10.0.0.2")
    clock.advance(minutes=10)

    refused = log_in(Client(), "sam", "support-pass-1", "10.0.0.2")
    clock.advance(minutes=5, seconds=1)
    allowed = log_in(Client(), "sam", "support-pass-1", "10.0.0.2")

    assertContains(refused, "Try again in 5 minutes", status_code=429)
    assert allowed.status_code == 302


def test_a_good_login_by_another_user_does_not_clear_the_failures_against_a_username(
    support_user, admin_user
):
    # The loop of issue 19 item 2: guesses at "ada", then a good login as "sam" from the
    # same address, again and again.
    attacker = Client()
    for _ in range(2):
        for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
            log_in(attacker, "ada", f"guess-{attempt}", "198.51.100.7")
        assert log_in(Client(), "sam", "support-pass-1", "198.51.100.7").status_code == 302

    # ada has had twice the limit of guesses from there: she is locked out at that address.
    response = log_in(attacker, "ada", "admin-pass-1", "198.51.100.7")

    assert response.status_code == 429
    assert "_auth_user_id" not in attacker.session


def test_a_good_login_clears_only_its_own_failures(support_user):
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(Client(), "sam", f"typo-{attempt}", "203.0.113.9")
    assert log_in(Client(), "sam", "support-pass-1", "203.0.113.9").status_code == 302

    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(Client(), "sam", f"typo-{attempt}", "203.0.113.9")

    assert log_in(Client(), "sam", "support-pass-1", "203.0.113.9").status_code == 302


def test_failures_from_other_addresses_do_not_lock_the_real_person_out_of_their_browser(
    admin_user,
):
    browser = Client()
    assert log_in(browser, "ada", "admin-pass-1", "192.0.2.10").status_code == 302
    browser.post(reverse("logout"), REMOTE_ADDR="192.0.2.10")

    attacker = Client()
    for attempt in range(20):
        log_in(attacker, "ada", f"guess-{attempt}", f"10.9.0.{attempt}")

    response = log_in(browser, "ada", "admin-pass-1", "192.0.2.10")

    assert response.status_code == 302
    assert browser.session["_auth_user_id"] == str(admin_user.pk)


def test_from_a_new_browser_the_real_person_waits_out_the_slowdown_then_logs_in(admin_user, clock):
    for attempt in range(settings.PORTAL_LOGIN_SLOWDOWN_AFTER):
        log_in(Client(), "ada", f"guess-{attempt}", f"10.8.0.{attempt}")
    for wait in (60, 120, 240):
        clock.advance(seconds=wait)
        assert log_in(Client(), "ada", "another-guess", f"10.8.1.{wait % 250}").status_code == 200
    # 13 failures: the delay after the last one is 60 s doubled three times.
    expected_wait = timedelta(seconds=settings.PORTAL_LOGIN_SLOWDOWN_FIRST_SECONDS * 8)
    last_attempt_at = clock.now

    refused = log_in(Client(), "ada", "admin-pass-1", "192.0.2.20")
    clock.advance(seconds=expected_wait.total_seconds() - 1)
    still_refused = log_in(Client(), "ada", "admin-pass-1", "192.0.2.20")
    clock.advance(seconds=1)
    new_browser = Client()
    allowed = log_in(new_browser, "ada", "admin-pass-1", "192.0.2.20")

    assert refused.status_code == 429
    assertContains(refused, "Try again in 8 minutes", status_code=429)
    retry_at = timezone.localtime(last_attempt_at + expected_wait)
    assertContains(refused, f"after {retry_at:%H:%M}", status_code=429)
    # The refused attempts were no guesses: they neither counted nor pushed the time back.
    assert still_refused.status_code == 429
    assert LoginThrottle.objects.get(username="ada").failures == 13
    assert allowed.status_code == 302
    assert new_browser.session["_auth_user_id"] == str(admin_user.pk)


def test_the_slowdown_slows_a_guesser_spread_over_many_addresses(admin_user, clock):
    # One guess a minute for an hour, each from a new address (never 5 from one).
    checked_at = []
    for minute in range(60):
        response = log_in(Client(), "ada", f"guess-{minute}", f"10.7.0.{minute}")
        if response.status_code == 200:
            checked_at.append(minute * 60)
        else:
            assert response.status_code == 429
        clock.advance(minutes=1)

    after = settings.PORTAL_LOGIN_SLOWDOWN_AFTER
    gaps = [later - earlier for earlier, later in pairwise(checked_at[after - 1 :])]
    cap = settings.PORTAL_LOGIN_SLOWDOWN_MAX_MINUTES * 60
    # The first guesses go through; past them each wait is the one before doubled, up to the
    # cap: 15 guesses in the hour instead of 60.
    assert checked_at[:after] == [minute * 60 for minute in range(after)]
    assert gaps[0] == settings.PORTAL_LOGIN_SLOWDOWN_FIRST_SECONDS
    assert all(later == min(2 * earlier, cap) for earlier, later in pairwise(gaps))
    assert len(checked_at) == after + 5


def test_the_device_cookie_is_signed_http_only_and_secure_in_production(admin_user, settings):
    settings.SESSION_COOKIE_SECURE = True
    client = Client()

    log_in(client, "ada", "admin-pass-1")

    cookie = client.cookies[logins.DEVICE_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    assert cookie.value.startswith("ada:")
    assert cookie["max-age"] == 90 * 24 * 3600


def test_a_forged_or_outdated_device_cookie_is_not_a_known_browser(admin_user, clock):
    browser = Client()
    log_in(browser, "ada", "admin-pass-1")
    browser.post(reverse("logout"))
    for attempt in range(settings.PORTAL_LOGIN_SLOWDOWN_AFTER):
        log_in(Client(), "ada", f"guess-{attempt}", f"10.6.0.{attempt}")
    forged = Client()
    forged.cookies[logins.DEVICE_COOKIE] = "ada:" + "0" * 64

    assert log_in(forged, "ada", "admin-pass-1", "192.0.2.30").status_code == 429
    admin_user.set_password("a-new-pass-2")
    admin_user.save()
    # A changed password ends every device cookie of the old one.
    assert log_in(browser, "ada", "a-new-pass-2", "192.0.2.30").status_code == 429


def test_an_admin_lifts_a_lockout_and_the_locked_user_logs_in(client, support_user, admin_user):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(), "sam", f"wrong-{attempt}", "203.0.113.5")
    assert log_in(Client(), "sam", "support-pass-1", "203.0.113.5").status_code == 429
    client.force_login(admin_user)
    changelist = reverse("admin:axes_accessattempt_changelist")

    page = client.get(changelist)
    lifted = client.post(
        changelist,
        {
            "action": "lift_lockout",
            "_selected_action": [AccessAttempt.objects.get(username="sam").pk],
        },
    )

    assert page.status_code == 200
    assertContains(page, "Lift the lockout of these usernames")
    assert lifted.status_code == 302
    assert log_in(Client(), "sam", "support-pass-1", "203.0.113.5").status_code == 302
    entry = AuditEntry.objects.get(action=AuditAction.LOCKOUT_LIFTED)
    assert (entry.username, entry.target) == ("ada", "sam")
    assert entry.changes == {"addresses_cleared": 1, "failures_forgotten": 5}


def test_an_admin_lifts_a_slowdown_and_the_person_logs_in_from_a_new_browser(
    client, support_user, admin_user
):
    for attempt in range(settings.PORTAL_LOGIN_SLOWDOWN_AFTER):
        log_in(Client(), "sam", f"wrong-{attempt}", f"10.5.0.{attempt}")
    assert log_in(Client(), "sam", "support-pass-1", "192.0.2.40").status_code == 429
    client.force_login(admin_user)
    changelist = reverse("admin:phone_numbers_loginthrottle_changelist")

    page = client.get(changelist)
    lifted = client.post(
        changelist,
        {
            "action": "lift_lockout",
            "_selected_action": [LoginThrottle.objects.get(username="sam").pk],
        },
    )

    assertContains(page, "Lift the lockout of these usernames")
    assertContains(page, "sam")
    assert lifted.status_code == 302
    assert log_in(Client(), "sam", "support-pass-1", "192.0.2.40").status_code == 302
    assert AuditEntry.objects.filter(action=AuditAction.LOCKOUT_LIFTED, target="sam").exists()


def test_support_cannot_lift_lockouts_and_nobody_deletes_attempts_unaudited(
    client, support_user, admin_user
):
    log_in(Client(), "sam", "wrong", "203.0.113.6")
    support_user.is_staff = True
    support_user.save()
    client.force_login(support_user)

    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403
    client.force_login(admin_user)
    attempt = AccessAttempt.objects.get(username="sam")
    delete_page = reverse("admin:axes_accessattempt_delete", args=[attempt.pk])
    assert client.post(delete_page, {"post": "yes"}).status_code == 403
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()


def test_fifty_failed_logins_write_a_bounded_number_of_rows_and_keep_every_count(
    support_user, clock
):
    for attempt in range(50):
        log_in(Client(), "sam", f"wrong-{attempt}", "203.0.113.5")
        clock.advance(milliseconds=40)

    login_rows = AuditEntry.objects.filter(
        action__in=[AuditAction.LOGIN_FAILED, AuditAction.LOCKED_OUT]
    ).order_by("pk")
    rows_in_the_burst = login_rows.count()
    clock.advance(minutes=1)
    write_held_back_login_events()
    write_held_back_login_events()

    entries = login_rows.all()
    assert rows_in_the_burst == 2
    assert entries.count() == 4
    assert set(entries.values_list("username", "ip_address")) == {("sam", "203.0.113.5")}

    def events(action: AuditAction) -> int:
        rows = entries.filter(action=action)
        held_back = sum(entry.changes.get(NOT_WRITTEN, 0) for entry in rows)
        return rows.exclude(target=COUNT_ONLY).count() + held_back

    # 5 wrong passwords, then the lockout and 45 refused attempts.
    assert events(AuditAction.LOGIN_FAILED) == settings.AXES_FAILURE_LIMIT
    assert events(AuditAction.LOCKED_OUT) == 50 - settings.AXES_FAILURE_LIMIT + 1


def test_after_the_minute_the_next_row_carries_the_count_of_those_not_written(support_user, clock):
    for attempt in range(3):
        log_in(Client(), "sam", f"wrong-{attempt}", "203.0.113.5")
    clock.advance(minutes=1, seconds=1)

    log_in(Client(), "sam", "wrong-again", "203.0.113.5")

    failed = AuditEntry.objects.filter(action=AuditAction.LOGIN_FAILED).order_by("pk")
    assert [entry.changes for entry in failed] == [{}, {NOT_WRITTEN: 2}]


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

    def through_proxy(client_address: str):
        return client.post(
            reverse("login"),
            {"username": "sam", "password": "wrong"},
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR=client_address,
        )

    for _ in range(settings.AXES_FAILURE_LIMIT):
        through_proxy("198.51.100.7")

    assert through_proxy("198.51.100.7").status_code == 429
    assert through_proxy("198.51.100.8").status_code == 200


def guesses_at_once(count: int, network: int) -> list[int]:
    """`count` wrong guesses at "ada" from as many addresses, released together; each thread
    on its own database connection. Their status codes."""
    barrier = threading.Barrier(count)
    statuses: list[int] = []

    def guess(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            address = f"10.{network}.3.{index}"
            statuses.append(log_in(Client(), "ada", f"guess-{index}", address).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_of_guesses_racing_for_one_turn_of_the_slowdown_only_one_is_checked():
    checked_per_round = []
    for round_number in range(10):
        # The wait is just over, and 6 guesses from 6 addresses arrive together.
        LoginThrottle.objects.update_or_create(
            username="ada",
            defaults={
                "failures": settings.PORTAL_LOGIN_SLOWDOWN_AFTER,
                "last_attempt_at": timezone.now()
                - timedelta(seconds=settings.PORTAL_LOGIN_SLOWDOWN_FIRST_SECONDS + 1),
            },
        )
        statuses = guesses_at_once(6, network=round_number)
        assert len(statuses) == 6
        assert set(statuses) <= {200, 429}
        checked_per_round.append(statuses.count(200))

    assert checked_per_round == [1] * 10

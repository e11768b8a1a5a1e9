"""Login throttling: a lockout per (username, address), and a slowdown per username.

django-axes locks a username at one address after PORTAL_LOGIN_FAILURE_LIMIT failures from
there, and a good login clears only its own (username, address) pair. Locking a username
everywhere would let anyone lock a named person out; locking an address, and clearing it on
any good login from there, let one account's login wipe the guesses at another.

A guesser spread over many addresses is slowed per username instead: past
PORTAL_LOGIN_SLOWDOWN_AFTER failures for a username from anywhere, each attempt for it waits
until a delay after the last failure, a delay that doubles with each failure up to a cap.
That would let an attacker keep the real person out too, so a browser that has logged in as
that user before is not slowed: on every login the portal gives the browser a signed,
HttpOnly device cookie naming the user (OWASP, "Slow Down Online Guessing Attacks with Device
Cookies"). It holds a digest of the password hash, so a password change ends it.
"""

from datetime import datetime, timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Max, Sum, Value, When
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from phone_numbers.audit import record
from phone_numbers.models import AuditAction, LoginThrottle

DEVICE_COOKIE = "portal_device"
_DEVICE_SALT = "phone_numbers.logins.device"


class LoginThrottleHandler(AxesDatabaseHandler):
    """axes' database handler, plus the per-username slowdown."""

    def is_locked(self, request: HttpRequest, credentials: dict | None = None) -> bool:
        username = get_client_username(request, credentials)
        # Marked before any password is checked: the failure that follows a refusal is no
        # guess, so it is neither counted nor written to the audit log as a failed login.
        request.login_refused = super().is_locked(request, credentials) or (
            not is_known_device(request, username) and is_slowed_down(username)
        )
        return request.login_refused

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs) -> None:
        super().user_login_failed(sender, credentials, request, **kwargs)
        username = get_client_username(request, credentials) if request else None
        if username and not getattr(request, "login_refused", False):
            count_failure(username)


def count_failure(username: str) -> None:
    """One more failure for the username from anywhere; failures are forgotten after a
    quiet period."""
    now = timezone.now()
    forgotten = now - timedelta(hours=settings.PORTAL_LOGIN_SLOWDOWN_FORGET_HOURS)
    counted = LoginThrottle.objects.filter(username=username).update(
        failures=Case(
            When(last_attempt_at__lte=forgotten, then=Value(1)), default=F("failures") + 1
        ),
        last_attempt_at=now,
    )
    if not counted:
        try:
            with transaction.atomic():
                LoginThrottle.objects.create(username=username, failures=1, last_attempt_at=now)
        except IntegrityError:
            # A failure for the same username in another request created the row first.
            count_failure(username)
            return
    LoginThrottle.objects.filter(last_attempt_at__lte=forgotten).delete()


def slowed_until(username: str | None) -> datetime | None:
    """Until when an unknown browser is refused for this username, if that is still ahead."""
    throttle = LoginThrottle.objects.filter(username=username).first()
    until = throttle.slowed_until() if throttle else None
    return until if until and until > timezone.now() else None


def is_slowed_down(username: str | None) -> bool:
    """Whether an attempt for the username must wait. Past the threshold, an attempt that
    finds the wait over takes the turn: concurrent attempts find it taken and wait too."""
    throttle = LoginThrottle.objects.filter(username=username).first()
    until = throttle.slowed_until() if throttle else None
    if until is None:
        return False
    now = timezone.now()
    if until > now:
        return True
    # Taking the turn restarts the wait from now (a failure then lengthens it).
    taken = LoginThrottle.objects.filter(
        pk=throttle.pk, last_attempt_at=throttle.last_attempt_at
    ).update(last_attempt_at=now)
    return not taken


def locked_until(request: HttpRequest, username: str | None) -> datetime | None:
    """When this request may try the username again (None: now): the later of the end of
    the lockout at its address and the end of the slowdown (unless its browser is known)."""
    cooloff = settings.AXES_COOLOFF_TIME
    pair = AccessAttempt.objects.filter(
        username=username,
        ip_address=getattr(request, "axes_ip_address", None),
        attempt_time__gt=timezone.now() - cooloff,
    ).aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
    ends = []
    if (pair["failures"] or 0) >= settings.AXES_FAILURE_LIMIT:
        ends.append(pair["last"] + cooloff)
    if not is_known_device(request, username):
        ends.append(slowed_until(username))
    return max((end for end in ends if end), default=None)


def _device_value(user: AbstractBaseUser) -> str:
    return f"{user.get_username()}:{salted_hmac(_DEVICE_SALT, user.password).hexdigest()}"


def remember_device(response: HttpResponse, user: AbstractBaseUser) -> None:
    """Give the browser that just logged in as `user` its device cookie."""
    response.set_signed_cookie(
        DEVICE_COOKIE,
        _device_value(user),
        salt=_DEVICE_SALT,
        max_age=settings.PORTAL_LOGIN_DEVICE_DAYS * 24 * 3600,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def is_known_device(request: HttpRequest, username: str | None) -> bool:
    """Whether the request carries a valid device cookie for this username."""
    try:
        value = request.get_signed_cookie(
            DEVICE_COOKIE, salt=_DEVICE_SALT, max_age=settings.PORTAL_LOGIN_DEVICE_DAYS * 24 * 3600
        )
    except (KeyError, signing.BadSignature):
        return False
    user_model = get_user_model()
    user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
    return user is not None and constant_time_compare(value, _device_value(user))


def lift_lockout(request: HttpRequest, username: str) -> None:
    """An admin lets the username log in again: its lockouts at every address and its
    slowdown end, and the audit log says so."""
    with transaction.atomic():
        _, deleted = AccessAttempt.objects.filter(username=username).delete()
        throttle = LoginThrottle.objects.filter(username=username).first()
        failures = throttle.failures if throttle else 0
        LoginThrottle.objects.filter(username=username).delete()
        record(
            request,
            AuditAction.LOCKOUT_LIFTED,
            target=username,
            changes={
                "addresses_cleared": deleted.get("axes.AccessAttempt", 0),
                "failures_forgotten": failures,
            },
        )

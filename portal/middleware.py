"""Response headers every page of the portal carries, and the renewal of idle sessions."""

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

# The portal uses none of these browser features, so no page (or script injected into one)
# may ask for them.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)


class PrivacyHeadersMiddleware:
    """Deny browser features on every response; forbid caching anything a logged-in user sees.

    A logged-in page, htmx fragment or export holds customers' numbers and projects, which a
    shared computer's browser cache or a proxy must not keep. It sits above WhiteNoise, so
    static files get the Permissions-Policy too (and stay cacheable: no user is known there).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers["Permissions-Policy"] = PERMISSIONS_POLICY
        # request.user is set by AuthenticationMiddleware, below this one; a static file
        # served by WhiteNoise never gets that far.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response


# When the session's expiry was last moved on, in seconds since the epoch, kept in the session.
SESSION_RENEWED_AT = "portal_renewed_at"


class SessionRenewalMiddleware:
    """Move a session's expiry on when it was last moved SESSION_RENEW_SECONDS ago or more.

    Django's SESSION_SAVE_EVERY_REQUEST wrote the session (BEGIN, UPDATE, COMMIT) on every
    page and every 2 s poll of a live job page, each time to push its expiry on by seconds.
    Renewed at most once a minute instead, a session still ends after SESSION_COOKIE_AGE
    without a request, less at most that minute: the idle timeout keeps its meaning. The
    expiry in the database is not loaded with the session, so the time of the last renewal
    is kept in the session itself. Below SessionMiddleware, so that it runs first on the way
    out and the session it changes is saved, with a fresh cookie.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = request.session
        # An empty session (logged out, or never logged in) is not kept at all.
        if session.is_empty():
            return response
        now = int(time.time())
        if now - session.get(SESSION_RENEWED_AT, 0) >= settings.SESSION_RENEW_SECONDS:
            session[SESSION_RENEWED_AT] = now
        return response

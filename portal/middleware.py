"""Response headers every page of the portal carries."""

from collections.abc import Callable

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

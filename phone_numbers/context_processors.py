"""Template context every page of the portal gets."""

from django.conf import settings
from django.http import HttpRequest


def signalwire_base_url(request: HttpRequest) -> dict[str, str | None]:
    """Where imports go when SIGNALWIRE_BASE_URL replaces SignalWire, for base.html's banner."""
    return {"signalwire_base_url": settings.SIGNALWIRE_BASE_URL}

import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger(__name__)


class PhoneNumbersConfig(AppConfig):
    name = "phone_numbers"
    verbose_name = "Phone numbers"

    def ready(self) -> None:
        # Connects the audit trail's receivers for logins, logouts and lockouts, and for
        # changes of users and groups.
        from phone_numbers import accounts, audit  # noqa: F401

        if settings.SIGNALWIRE_BASE_URL:
            # Every process (web, worker, beat) says it once: each would send tokens there.
            logger.warning(
                "SIGNALWIRE_BASE_URL is set: every project's requests, API token included, go "
                "to %s, not to SignalWire",
                settings.SIGNALWIRE_BASE_URL,
            )
        if not settings.PORTAL_EMAIL_ENABLED:
            logger.warning(
                "No mail server is configured (EMAIL_URL or EMAIL_HOST): nobody is emailed "
                "when a job ends or pauses"
            )

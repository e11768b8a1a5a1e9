"""What Django's error reports (the debug 500 page, error e-mails) may show of settings."""

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

# scheme://user:PASSWORD@host: the part between the colon and the @ of a URL's user info.
_URL_PASSWORD = re.compile(r"(?P<before>[a-z][a-z0-9+.-]*://[^/@:\s]*:)[^/@\s]+(?=@)", re.I)


class SafeUrlsExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, which also masks the password of every URL it shows.

    Django hides settings whose name says KEY, PASS, TOKEN and so on, but not DATABASE_URL,
    CELERY_BROKER_URL or an environment variable such as REDIS_URL in request.META (runserver
    copies the environment there), and each of those can hold a password.
    """

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        # type(), not isinstance: a lazy object passes for a str, and evaluating it here could
        # run anything.
        if type(cleansed) is str:
            return _URL_PASSWORD.sub(rf"\g<before>{self.cleansed_substitute}", cleansed)
        return cleansed

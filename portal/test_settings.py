"""Settings for the test suite: production mode on PostgreSQL, with test-only secrets.

The defaults are set before the settings module reads the environment. `make test` points
DATABASE_URL and REDIS_URL at the servers it found or started; a plain `pytest` uses the
machine's PostgreSQL on 127.0.0.1:5432.

PORTAL_TEST_DATABASE=sqlite runs the tests on SQLite instead, as local mode (`make run`)
keeps its data: `make test`'s second pass. Every other setting stays as on PostgreSQL, so the
two passes differ only in the database.
"""

import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-" + "x" * 40)
os.environ.setdefault("PORTAL_ENCRYPTION_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1")
# Unit tests never reach a broker; integration tests start workers on REDIS_URL themselves.
os.environ.setdefault("CELERY_BROKER_URL", "memory://localhost/")
# Playwright's sync API keeps an asyncio event loop running in the test's thread (in another
# greenlet), so Django would refuse the ORM calls of browser tests and their fixtures ("You
# cannot call this from an async context"). No ORM call runs inside that loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from portal.settings import *  # noqa: E402, F403

# Notifications are queued in every test (pytest-django sends them to its locmem outbox; a
# worker process to the dummy backend unless a test gives it EMAIL_URL), with working links.
PORTAL_EMAIL_ENABLED = True
PORTAL_BASE_URL = PORTAL_BASE_URL or "https://portal.example.test"  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Templates render without collectstatic, and the live-server tests speak plain HTTP.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Each test process keeps its cache in memory, emptied before every test (tests/conftest.py).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Serve static files straight from the source folders: no collectstatic before a test run.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
# A worker started by the integration fixtures (tests/conftest.py) keeps to the Redis keys of
# its own test, so that no other run's worker takes its tasks and none are left for later.
if os.environ.get("PORTAL_TEST_BROKER_KEYPREFIX"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "global_keyprefix": os.environ["PORTAL_TEST_BROKER_KEYPREFIX"]
    }

TEST_DATABASE = os.environ.get("PORTAL_TEST_DATABASE", "postgresql")
if TEST_DATABASE not in ("postgresql", "sqlite"):
    raise ImproperlyConfigured(
        f"PORTAL_TEST_DATABASE must be postgresql or sqlite, not {TEST_DATABASE!r}"
    )
if TEST_DATABASE == "sqlite":
    # A file, not SQLite's in-memory test database: the Celery workers and the live server
    # of the integration and browser tests open it too. A worker inherits the file's name in
    # PORTAL_TEST_SQLITE_FILE (tests/conftest.py), and each test run gets a file of its own.
    os.environ.setdefault(
        "PORTAL_TEST_SQLITE_FILE",
        str(Path(tempfile.gettempdir()) / f"portal-test-{os.getpid()}.sqlite3"),
    )
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["PORTAL_TEST_SQLITE_FILE"],
            "OPTIONS": SQLITE_OPTIONS,  # noqa: F405
            "TEST": {"NAME": os.environ["PORTAL_TEST_SQLITE_FILE"]},
        }
    }

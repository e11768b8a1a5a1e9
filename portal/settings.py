"""Settings of the Number Import Portal, all read from the environment.

Local mode (DATABASE_URL unset, or DJANGO_DEBUG on) runs everything on one machine with no
servers: SQLite, kombu's file-system broker, and a secret key and an encryption key generated
once and kept in var/. Production mode (DATABASE_URL set and DJANGO_DEBUG off) takes every
secret from the environment and refuses to start without it: processes on several machines
must share one encryption key, which a key generated on each machine would silently break.
README.md lists every variable.
"""

import contextlib
import math
import os
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from celery.schedules import crontab
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be true or false (or 1/0, yes/no, on/off), not {raw!r}"
    )


def env_int(name: str, default: int) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = env_str(name)
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", default=False)
DATABASE_URL = env_str("DATABASE_URL")
LOCAL_MODE = DEBUG or not DATABASE_URL

VAR_DIR = Path(env_str("PORTAL_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)
if LOCAL_MODE:
    # Local mode keeps its database (live sessions), keys and queue here: no other user of
    # the machine may enter. chmod also tightens a var/ that earlier versions left 0755.
    # (In production var/ holds only the static files, maybe for another user to serve.)
    VAR_DIR.chmod(0o700)


def private_sqlite_file(path: Path) -> Path:
    """The SQLite database at `path`, created (empty) or tightened to 0600.

    SQLite would create it 0644; it gives its -wal and -shm files the database's own mode,
    and those left by earlier versions are tightened here too.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            file.chmod(0o600)
    return path


def local_secret(name: str, filename: str, generate: Callable[[], str]) -> str:
    """The variable's value, else (local mode only) a value generated once and kept in var/."""
    value = env_str(name)
    if value:
        return value
    if not LOCAL_MODE:
        raise ImproperlyConfigured(
            f"{name} is not set; production (DATABASE_URL set, DJANGO_DEBUG off) requires it"
        )
    path = VAR_DIR / filename
    try:
        # O_EXCL: when several processes start at once, exactly one writes the file.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(generate())
    return path.read_text().strip()


SECRET_KEY = local_secret("DJANGO_SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50))

# Newest key first: it encrypts, and every key decrypts (so old keys can be rotated out).
PORTAL_ENCRYPTION_KEYS = [
    key.strip()
    for key in local_secret(
        "PORTAL_ENCRYPTION_KEYS", "encryption_keys", lambda: Fernet.generate_key().decode()
    ).split(",")
    if key.strip()
]
for _key in PORTAL_ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            "PORTAL_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes, comma-separated, newest first)"
        ) from None

if LOCAL_MODE:
    ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
else:
    ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "DJANGO_ALLOWED_HOSTS is not set; production requires the portal's host name(s)"
        )
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    "phone_numbers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Above WhiteNoise, so static files get its Permissions-Policy too.
    "portal.middleware.PrivacyHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Below SessionMiddleware: it renews the session, which SessionMiddleware then saves.
    "portal.middleware.SessionRenewalMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Lets the audit receivers of user and group changes name who made them and from where.
    "phone_numbers.audit.remember_request",
    # Every page needs a login unless its view is marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "phone_numbers.context_processors.signalwire_base_url",
            ],
        },
    },
]


def database_from_url(url: str) -> dict:
    # The URL may hold a password, so no message below repeats it.
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError:
        config = {}
    if config.get("ENGINE") != "django.db.backends.postgresql" or not config.get("NAME"):
        raise ImproperlyConfigured(
            "DATABASE_URL is malformed; expected postgres://USER:PASSWORD@HOST:5432/NAME"
        )
    return config


# WAL and IMMEDIATE let the web server and the worker write side by side without "database is
# locked" errors. (The SQLite pass of the tests uses them too: portal/test_settings.py.)
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": private_sqlite_file(VAR_DIR / "portal.sqlite3"),
            "OPTIONS": SQLITE_OPTIONS,
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: it refuses a locked-out username or address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "phone_numbers:home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes, through phone_numbers.logins). A username is locked out at
# one address after this many failed logins from there, for the cool-off time; a good login
# clears only that pair, never another username's failures. Neither a username everywhere nor
# a whole address is locked: either would let anyone lock a named person (or an office behind
# one address) out. Failures and lockouts go to the audit trail (phone_numbers.audit bounds
# them to one row a minute per address and username, with counts).
AXES_FAILURE_LIMIT = env_int("PORTAL_LOGIN_FAILURE_LIMIT", 5)
PORTAL_LOGIN_COOLOFF_MINUTES = env_int("PORTAL_LOGIN_COOLOFF_MINUTES", 15)
AXES_COOLOFF_TIME = timedelta(minutes=PORTAL_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A refused attempt checks no password, so it does not push the end of the lockout back: the
# time the lockout page gives stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Adds the per-username slowdown below to axes' own lockout.
AXES_HANDLER = "phone_numbers.logins.LoginThrottleHandler"
# A guesser spread over many addresses is slowed per username: after this many failures for a
# username from anywhere, each further attempt waits PORTAL_LOGIN_SLOWDOWN_FIRST_SECONDS after
# the last failure, doubling with every failure up to PORTAL_LOGIN_SLOWDOWN_MAX_MINUTES. A
# browser that logged in as that user before (a signed device cookie kept for
# PORTAL_LOGIN_DEVICE_DAYS) is not slowed, so an attacker cannot keep the person out.
PORTAL_LOGIN_SLOWDOWN_AFTER = env_int("PORTAL_LOGIN_SLOWDOWN_AFTER", 10)
PORTAL_LOGIN_SLOWDOWN_FIRST_SECONDS = env_int("PORTAL_LOGIN_SLOWDOWN_FIRST_SECONDS", 60)
PORTAL_LOGIN_SLOWDOWN_MAX_MINUTES = env_int("PORTAL_LOGIN_SLOWDOWN_MAX_MINUTES", 60)
PORTAL_LOGIN_SLOWDOWN_FORGET_HOURS = env_int("PORTAL_LOGIN_SLOWDOWN_FORGET_HOURS", 24)
PORTAL_LOGIN_DEVICE_DAYS = env_int("PORTAL_LOGIN_DEVICE_DAYS", 90)
for _name in (
    "AXES_FAILURE_LIMIT",
    "PORTAL_LOGIN_COOLOFF_MINUTES",
    "PORTAL_LOGIN_SLOWDOWN_AFTER",
    "PORTAL_LOGIN_SLOWDOWN_FIRST_SECONDS",
    "PORTAL_LOGIN_SLOWDOWN_MAX_MINUTES",
    "PORTAL_LOGIN_SLOWDOWN_FORGET_HOURS",
    "PORTAL_LOGIN_DEVICE_DAYS",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be 1 or more, not {globals()[_name]}")
# The login page again, saying when to try again.
AXES_LOCKOUT_CALLABLE = "phone_numbers.views.login_locked_out"
# The address of the client, as the audit trail reads it (X-Forwarded-For only from a proxy
# listed here: without it, every login behind a proxy would share the proxy's address).
PORTAL_TRUSTED_PROXIES = env_list("PORTAL_TRUSTED_PROXIES", [])
AXES_CLIENT_IP_CALLABLE = "phone_numbers.audit.client_ip"

# Sessions end after this much idle time. A request renews its session when that was last
# done this long ago (portal.middleware.SessionRenewalMiddleware), not on every request: a
# minute, or a tenth of the idle time if that is shorter.
SESSION_COOKIE_AGE = env_int("PORTAL_SESSION_IDLE_MINUTES", 8 * 60) * 60
SESSION_RENEW_SECONDS = min(60, SESSION_COOKIE_AGE // 10)
# htmx reads the CSRF token from the page, so no script needs the cookie.
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# The debug page and error reports mask the password of every URL they show (DATABASE_URL,
# CELERY_BROKER_URL, REDIS_URL in the environment), not only settings named like secrets.
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.error_reports.SafeUrlsExceptionReporterFilter"

if not LOCAL_MODE:
    # Production sits behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # A load balancer probes /healthz over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("PORTAL_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOG_LEVEL = env_str("PORTAL_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "phone_numbers": {"level": LOG_LEVEL},
        "portal": {"level": LOG_LEVEL},
    },
}

PORTAL_VERSION = version("number-import-portal")

# Import previews and each person's hold on a large one (phone_numbers/previews.py) must be
# shared by every gunicorn worker: Redis in production. Local mode serves its pages from one
# process (runserver), whose memory (Django's default cache) is enough.
if env_str("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env_str("REDIS_URL"),
            "KEY_PREFIX": "portal-cache",
        }
    }

# Celery: Redis in production; with no broker configured (local mode only), kombu's
# file-system transport in var/, which a separate worker process polls.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or env_str("REDIS_URL")
if not CELERY_BROKER_URL:
    if not LOCAL_MODE:
        raise ImproperlyConfigured(
            "REDIS_URL (or CELERY_BROKER_URL) is not set; production requires a Redis broker"
        )
    CELERY_BROKER_URL = "filesystem://localhost/"
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 4
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The pages read our own tables, so no task result is stored anywhere.
CELERY_TASK_IGNORE_RESULT = True
# Above every HTTP timeout of the SignalWire client, so a task is never cut mid-request.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("PORTAL_TASK_SOFT_TIME_LIMIT", 60)
CELERY_TASK_TIME_LIMIT = env_int("PORTAL_TASK_TIME_LIMIT", 90)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes a worker thread's database connection before and after every
# task unless told to reuse it, and a new PostgreSQL connection (a new server process) costs
# more than all the queries of one import. Reused, it closes one only every this many tasks;
# portal/celery.py checks and ages connections around each task as Django does per request.
CELERY_DB_REUSE_MAX = 1000
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions": {
        "task": "phone_numbers.tasks.clear_expired_sessions",
        "schedule": timedelta(hours=6),
    },
    # Failed logins the audit log held back (at most one row a minute per address and
    # username) are written as a count once their minute is over.
    "write-held-back-login-events": {
        "task": "phone_numbers.tasks.write_held_back_login_events",
        "schedule": timedelta(minutes=1),
    },
}

# SignalWire. SIGNALWIRE_BASE_URL sends every project's requests to one place instead of
# https://<space host>/api/laml/2010-04-01: the local simulator. Plain http:// is refused
# unless the host is loopback, so a token never travels unencrypted. Every customer's token
# goes to whatever answers there, so production mode refuses it unless explicitly allowed;
# wherever it is used, the start-up log warns and every page says so (phone_numbers.apps,
# templates/base.html).
SIGNALWIRE_BASE_URL = env_str("SIGNALWIRE_BASE_URL") or None
PORTAL_ALLOW_SIGNALWIRE_BASE_URL = env_bool("PORTAL_ALLOW_SIGNALWIRE_BASE_URL", default=False)
if SIGNALWIRE_BASE_URL and not LOCAL_MODE and not PORTAL_ALLOW_SIGNALWIRE_BASE_URL:
    raise ImproperlyConfigured(
        "SIGNALWIRE_BASE_URL is set in production mode: every project's API token would be "
        "sent there instead of to SignalWire. Unset it, or also set "
        "PORTAL_ALLOW_SIGNALWIRE_BASE_URL=true if this install must talk to a simulator"
    )
# "form" is what SignalWire documents; "json" is what its newer SDKs send (NOTES.md §1.3).
SIGNALWIRE_REQUEST_ENCODING = env_str("SIGNALWIRE_REQUEST_ENCODING", "form")
# Checked here, not at the first import: a mistyped value would otherwise fail every number.
if SIGNALWIRE_REQUEST_ENCODING not in ("form", "form-repeated", "json"):
    raise ImproperlyConfigured(
        "SIGNALWIRE_REQUEST_ENCODING must be form, form-repeated or json, "
        f"not {SIGNALWIRE_REQUEST_ENCODING!r}"
    )
SIGNALWIRE_TIMEOUT = (
    env_int("SIGNALWIRE_CONNECT_TIMEOUT_MS", 3050) / 1000,
    env_int("SIGNALWIRE_READ_TIMEOUT_MS", 15000) / 1000,
)
# A project's Space host is one name before one of these domains (`acme.signalwire.com`), so a
# stored token can only ever be sent to a SignalWire Space. Local mode adds `signalwire.test`,
# the reserved test domain of the simulator's demo project.
PORTAL_SPACE_HOST_SUFFIXES = env_list(
    "PORTAL_SPACE_HOST_SUFFIXES",
    ["signalwire.com", "signalwire.test"] if LOCAL_MODE else ["signalwire.com"],
)
# Domain names in lower case, with at least two labels and a top-level domain of letters only,
# so that no suffix can make an IP address or a bare top-level domain a Space.
_DOMAIN = re.compile(r"(?:(?!-)(?!xn--)[a-z0-9-]{1,63}(?<!-)\.)+[a-z]{2,63}")
for _suffix in PORTAL_SPACE_HOST_SUFFIXES:
    if not _DOMAIN.fullmatch(_suffix):
        raise ImproperlyConfigured(
            "PORTAL_SPACE_HOST_SUFFIXES must list domain names in lower case, like "
            f"signalwire.com, not {_suffix!r}"
        )

# Importing. The rate limit is per Space, across every worker on every machine; SignalWire
# publishes 13,800 POSTs per 10 s for a whole Space, so the default stays far below it.
PORTAL_RATE_LIMIT_PER_SPACE = env_int("PORTAL_RATE_LIMIT_PER_SPACE", 20)
# Numbers of one job queued or being sent at once: a large job cannot crowd out the rest.
PORTAL_JOB_CONCURRENCY = env_int("PORTAL_JOB_CONCURRENCY", 16)
PORTAL_MAX_ATTEMPTS = env_int("PORTAL_MAX_ATTEMPTS", 6)
PORTAL_RETRY_BASE_SECONDS = env_int("PORTAL_RETRY_BASE_SECONDS", 2)
PORTAL_RETRY_MAX_SECONDS = env_int("PORTAL_RETRY_MAX_SECONDS", 300)
# One attempt at a number (its lookup, its waits for a send slot, its POST) ends this long
# after it claimed the row, whatever SignalWire does: every request gets only the time left.
PORTAL_ATTEMPT_SECONDS = env_int(
    "PORTAL_ATTEMPT_SECONDS", math.ceil(2 * sum(SIGNALWIRE_TIMEOUT)) + 5
)
# Recovery by beat: a number "submitting" for twice as long as an attempt can last lost its
# worker (the thread pool ignores Celery's time limits, so they cannot be the bound; a late
# answer is still recorded); a number whose task was sent this long ago and never taken lost
# its message.
PORTAL_STUCK_SUBMITTING_SECONDS = 2 * PORTAL_ATTEMPT_SECONDS
PORTAL_REQUEUE_AFTER_SECONDS = env_int("PORTAL_REQUEUE_AFTER_SECONDS", 300)
PORTAL_RECOVERY_INTERVAL_SECONDS = env_int("PORTAL_RECOVERY_INTERVAL_SECONDS", 30)
# Four eyes (issue 18): a job of more numbers than this waits for an admin other than its
# starter to approve it before anything is sent; 0 turns approval off.
PORTAL_APPROVAL_THRESHOLD = env_int("PORTAL_APPROVAL_THRESHOLD", 1000)
if PORTAL_APPROVAL_THRESHOLD < 0:
    raise ImproperlyConfigured(
        "PORTAL_APPROVAL_THRESHOLD must be 0 (no approval) or a number of numbers, "
        f"not {PORTAL_APPROVAL_THRESHOLD}"
    )
for _name in (
    "PORTAL_RATE_LIMIT_PER_SPACE",
    "PORTAL_JOB_CONCURRENCY",
    "PORTAL_MAX_ATTEMPTS",
    "PORTAL_ATTEMPT_SECONDS",
    "PORTAL_REQUEUE_AFTER_SECONDS",
    "PORTAL_RECOVERY_INTERVAL_SECONDS",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be 1 or more, not {globals()[_name]}")
# Inventory syncs (phone_numbers/inventory.py). A running sync that read no page for this
# long is taken as lost (its worker killed) and reported failed; a page waits at most its
# request's timeouts, a send slot and SignalWire's Retry-After (capped below), so far less.
PORTAL_INVENTORY_SYNC_STALE_SECONDS = env_int("PORTAL_INVENTORY_SYNC_STALE_SECONDS", 300)
# Every active project's Space is read once a night, at this hour of the day.
PORTAL_INVENTORY_SYNC_HOUR = env_int("PORTAL_INVENTORY_SYNC_HOUR", 2)
if not 0 <= PORTAL_INVENTORY_SYNC_HOUR <= 23:
    raise ImproperlyConfigured(
        f"PORTAL_INVENTORY_SYNC_HOUR must be an hour from 0 to 23, not {PORTAL_INVENTORY_SYNC_HOUR}"
    )
if PORTAL_INVENTORY_SYNC_STALE_SECONDS < 60:
    raise ImproperlyConfigured(
        "PORTAL_INVENTORY_SYNC_STALE_SECONDS must be 60 or more (a page may wait its "
        f"timeouts), not {PORTAL_INVENTORY_SYNC_STALE_SECONDS}"
    )
CELERY_BEAT_SCHEDULE["sync-every-inventory"] = {
    "task": "phone_numbers.tasks.sync_every_inventory",
    "schedule": crontab(hour=PORTAL_INVENTORY_SYNC_HOUR, minute=0),
}
CELERY_BEAT_SCHEDULE["recover-stuck-imports"] = {
    "task": "phone_numbers.tasks.recover_stuck_imports",
    "schedule": timedelta(seconds=PORTAL_RECOVERY_INTERVAL_SECONDS),
}


# Email (phone_numbers/notifications.py): a job's end and a pause on credentials are mailed to
# the people concerned, through Django's email framework. EMAIL_URL, or the usual EMAIL_HOST
# and friends; local mode with neither writes each message to a file in var/mail/ (make run
# needs no mail server); production with neither sends no email and says so at start-up.
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_SMTP_SCHEMES = {
    "smtp": (25, False, False),
    "smtp+tls": (587, True, False),
    "smtps": (465, False, True),
}


def email_from_url(url: str) -> dict[str, object]:
    """The SMTP settings of EMAIL_URL: smtp://, smtp+tls:// (STARTTLS) or smtps:// (TLS), as
    scheme://USER:PASSWORD@HOST:PORT with USER and PASSWORD percent-encoded."""
    # The URL holds a password, so no message below repeats it.
    parts = urlsplit(url)
    if parts.scheme not in _SMTP_SCHEMES:
        raise ImproperlyConfigured(
            "EMAIL_URL must start with smtp:// (plain), smtp+tls:// (STARTTLS) or smtps:// "
            "(TLS), like smtp+tls://USER:PASSWORD@mail.example.com:587"
        )
    default_port, use_tls, use_ssl = _SMTP_SCHEMES[parts.scheme]
    try:
        port = default_port if parts.port is None else parts.port
        if port == 0:
            raise ValueError
    except ValueError:
        raise ImproperlyConfigured(
            "EMAIL_URL has a port that is not a number from 1 to 65535"
        ) from None
    if not parts.hostname:
        raise ImproperlyConfigured(
            "EMAIL_URL names no mail server: smtp+tls://USER:PASSWORD@HOST:587"
        )
    return {
        "EMAIL_HOST": parts.hostname,
        "EMAIL_PORT": port,
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_USE_SSL": use_ssl,
    }


def email_from_variables() -> dict[str, object]:
    """The SMTP settings of EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD,
    EMAIL_USE_TLS and EMAIL_USE_SSL."""
    use_tls = env_bool("EMAIL_USE_TLS", default=False)
    use_ssl = env_bool("EMAIL_USE_SSL", default=False)
    if use_tls and use_ssl:
        raise ImproperlyConfigured(
            "EMAIL_USE_TLS and EMAIL_USE_SSL are both on: choose one (TLS is STARTTLS, "
            "usually port 587; SSL is TLS from the start, usually port 465)"
        )
    port = env_int("EMAIL_PORT", 465 if use_ssl else 587 if use_tls else 25)
    if not 1 <= port <= 65535:
        raise ImproperlyConfigured(f"EMAIL_PORT must be a port from 1 to 65535, not {port}")
    return {
        "EMAIL_HOST": env_str("EMAIL_HOST"),
        "EMAIL_PORT": port,
        "EMAIL_HOST_USER": env_str("EMAIL_HOST_USER"),
        "EMAIL_HOST_PASSWORD": os.environ.get("EMAIL_HOST_PASSWORD", ""),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_USE_SSL": use_ssl,
    }


if env_str("EMAIL_URL") and env_str("EMAIL_HOST"):
    raise ImproperlyConfigured("EMAIL_URL and EMAIL_HOST are both set: keep one of them")
if env_str("EMAIL_URL") or env_str("EMAIL_HOST"):
    _smtp = email_from_url(env_str("EMAIL_URL")) if env_str("EMAIL_URL") else email_from_variables()
    _source = "EMAIL_URL" if env_str("EMAIL_URL") else "EMAIL_HOST_PASSWORD"
    if (
        _smtp["EMAIL_HOST_PASSWORD"]
        and not (_smtp["EMAIL_USE_TLS"] or _smtp["EMAIL_USE_SSL"])
        and _smtp["EMAIL_HOST"] not in _LOOPBACK
    ):
        # Like a SignalWire token, a mail password never crosses the network unencrypted.
        raise ImproperlyConfigured(
            f"{_source} would send the mail password unencrypted: use smtp+tls:// or smtps:// "
            "(or EMAIL_USE_TLS / EMAIL_USE_SSL)"
        )
    globals().update(_smtp)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
elif LOCAL_MODE:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
else:
    EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
# No email is queued at all without a mail server (phone_numbers.apps warns at start-up).
PORTAL_EMAIL_ENABLED = EMAIL_BACKEND != "django.core.mail.backends.dummy.EmailBackend"
# Seconds an SMTP connection may hang before a send fails (and is retried).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# A failed send is retried after this many seconds, doubling each time up to an hour, this
# many times; then it is given up (and logged).
PORTAL_EMAIL_RETRY_SECONDS = env_int("PORTAL_EMAIL_RETRY_SECONDS", 30)
PORTAL_EMAIL_MAX_RETRIES = env_int("PORTAL_EMAIL_MAX_RETRIES", 8)
for _name in ("EMAIL_TIMEOUT", "PORTAL_EMAIL_RETRY_SECONDS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be 1 or more, not {globals()[_name]}")
if PORTAL_EMAIL_MAX_RETRIES < 0:
    raise ImproperlyConfigured(
        f"PORTAL_EMAIL_MAX_RETRIES must be 0 or more, not {PORTAL_EMAIL_MAX_RETRIES}"
    )
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL")
if not DEFAULT_FROM_EMAIL:
    if PORTAL_EMAIL_ENABLED and not LOCAL_MODE:
        raise ImproperlyConfigured(
            "DEFAULT_FROM_EMAIL is not set; production with a mail server requires the "
            "sender's address, like Number Import Portal <portal@example.com>"
        )
    DEFAULT_FROM_EMAIL = "Number Import Portal <portal@localhost>"
SERVER_EMAIL = DEFAULT_FROM_EMAIL


def base_url(raw: str) -> str:
    """PORTAL_BASE_URL without its trailing slash: http(s)://host[:port][/path]."""
    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            "PORTAL_BASE_URL must be the portal's address as people open it, like "
            f"https://portal.example.com, not {raw!r}"
        )
    return raw.rstrip("/")


# The portal's address as people open it, for the links in emails. Local mode: runportal's
# address (runportal passes its own).
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL")
if PORTAL_BASE_URL:
    PORTAL_BASE_URL = base_url(PORTAL_BASE_URL)
elif LOCAL_MODE:
    PORTAL_BASE_URL = "http://127.0.0.1:8000"
elif PORTAL_EMAIL_ENABLED:
    raise ImproperlyConfigured(
        "PORTAL_BASE_URL is not set; production with a mail server requires the portal's "
        "address for the links in emails, like https://portal.example.com"
    )

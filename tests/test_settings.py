import hashlib
import os

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal import settings as portal_settings
from tests.conftest import run_manage

PRODUCTION_ENV = {
    "DATABASE_URL": "postgres://portal:db-password-123@127.0.0.1:5432/portal",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DJANGO_SECRET_KEY": "production-like-secret-key-" + "k" * 40,
    "PORTAL_ENCRYPTION_KEYS": "nN0N7tx9Sou-Mc5SOE3TUFd40J-sT9oZ0d9vzSFe96s=",
    "DJANGO_ALLOWED_HOSTS": "portal.example.com",
}


@pytest.mark.parametrize("raw", ["1", "true", "True", " yes ", "ON"])
def test_env_bool_reads_true_spellings(monkeypatch, raw):
    monkeypatch.setenv("SOME_FLAG", raw)

    assert portal_settings.env_bool("SOME_FLAG", default=False) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "off"])
def test_env_bool_reads_false_spellings(monkeypatch, raw):
    monkeypatch.setenv("SOME_FLAG", raw)

    assert portal_settings.env_bool("SOME_FLAG", default=True) is False


def test_env_bool_rejects_an_odd_spelling_naming_the_variable(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")

    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        portal_settings.env_bool("SOME_FLAG", default=False)


def test_env_int_rejects_text_naming_the_variable(monkeypatch):
    monkeypatch.setenv("SOME_NUMBER", "ten")

    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER"):
        portal_settings.env_int("SOME_NUMBER", default=1)


@pytest.mark.parametrize(
    "missing",
    ["DJANGO_SECRET_KEY", "PORTAL_ENCRYPTION_KEYS", "DJANGO_ALLOWED_HOSTS", "REDIS_URL"],
)
def test_production_without_a_required_variable_stops_with_one_line_naming_it(
    local_mode_env, missing
):
    env = {**local_mode_env, **PRODUCTION_ENV}
    del env[missing]

    result = run_manage(env, "check")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert missing in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "mysql://portal:db-password-123@db/portal",
        "postgres://portal:db-password-123@db",
    ],
)
def test_malformed_database_url_stops_with_one_line_without_the_password(local_mode_env, url):
    env = {**local_mode_env, **PRODUCTION_ENV, "DATABASE_URL": url}

    result = run_manage(env, "check")

    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "DATABASE_URL" in result.stderr
    assert "db-password-123" not in result.stderr


def test_a_bad_encryption_key_stops_start_up(local_mode_env):
    env = {**local_mode_env, **PRODUCTION_ENV, "PORTAL_ENCRYPTION_KEYS": "not-a-fernet-key"}

    result = run_manage(env, "check")

    assert result.returncode == 1
    assert "PORTAL_ENCRYPTION_KEYS" in result.stderr
    assert "not-a-fernet-key" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIGNALWIRE_REQUEST_ENCODING", "xml"),
        ("PORTAL_RATE_LIMIT_PER_SPACE", "0"),
        ("PORTAL_ATTEMPT_SECONDS", "0"),
        ("PORTAL_APPROVAL_THRESHOLD", "-1"),
        ("PORTAL_APPROVAL_THRESHOLD", "a thousand"),
        ("PORTAL_INVENTORY_SYNC_HOUR", "24"),
        ("PORTAL_INVENTORY_SYNC_STALE_SECONDS", "30"),
    ],
)
def test_an_import_setting_that_cannot_work_stops_start_up_naming_it(local_mode_env, name, value):
    # Found at start-up, not by failing every number (issue 13).
    result = run_manage({**local_mode_env, name: value}, "check")

    assert result.returncode == 1
    assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_deploy_check_is_clean_with_production_values(local_mode_env):
    result = run_manage(
        {**local_mode_env, **PRODUCTION_ENV}, "check", "--deploy", "--fail-level", "WARNING"
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_local_mode_generates_secrets_once_and_keeps_them_private(local_mode_env, tmp_path):
    show_secret = (
        "from django.conf import settings; import hashlib; "
        "print(hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest(), "
        "settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL)"
    )

    first = run_manage(local_mode_env, "shell", "-v", "0", "-c", show_secret)
    second = run_manage(local_mode_env, "shell", "-v", "0", "-c", show_secret)

    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    secret_file = tmp_path / "var" / "secret_key"
    digest, engine, broker = first.stdout.split()
    assert digest == hashlib.sha256(secret_file.read_text().strip().encode()).hexdigest()
    assert engine == "django.db.backends.sqlite3"
    assert broker.startswith("filesystem://")
    for name in ("secret_key", "encryption_keys"):
        assert os.stat(tmp_path / "var" / name).st_mode & 0o077 == 0


# Modes of var/, the database and (the connection still open) its -wal and -shm files.
SHOW_MODES = (
    "import os; from django.conf import settings; "
    "from django.contrib.sessions.backends.db import SessionStore; SessionStore().create(); "
    "db = str(settings.DATABASES['default']['NAME']); "
    "print(*[oct(os.stat(path).st_mode & 0o777) "
    "for path in (settings.VAR_DIR, db, db + '-wal', db + '-shm')])"
)


def test_local_mode_keeps_var_and_the_database_with_its_wal_and_shm_to_their_owner(
    local_mode_env,
):
    assert run_manage(local_mode_env, "migrate", "-v", "0").returncode == 0

    result = run_manage(local_mode_env, "shell", "-v", "0", "-c", SHOW_MODES)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0o700", "0o600", "0o600", "0o600"]


def test_local_mode_tightens_a_var_and_database_that_earlier_versions_left_readable(
    local_mode_env, tmp_path
):
    assert run_manage(local_mode_env, "migrate", "-v", "0").returncode == 0
    var = tmp_path / "var"
    var.chmod(0o755)
    for name in ("portal.sqlite3", "portal.sqlite3-wal", "portal.sqlite3-shm"):
        (var / name).touch()
        (var / name).chmod(0o644)

    assert run_manage(local_mode_env, "check").returncode == 0

    assert oct(var.stat().st_mode & 0o777) == "0o700"
    for name in ("portal.sqlite3", "portal.sqlite3-wal", "portal.sqlite3-shm"):
        assert oct((var / name).stat().st_mode & 0o777) == "0o600", name


def test_production_caches_import_previews_in_redis_shared_by_every_web_worker(local_mode_env):
    show_cache = (
        "from django.conf import settings; "
        "print(settings.CACHES['default']['BACKEND'], settings.CACHES['default']['LOCATION'])"
    )

    result = run_manage({**local_mode_env, **PRODUCTION_ENV}, "shell", "-v", "0", "-c", show_cache)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.core.cache.backends.redis.RedisCache",
        PRODUCTION_ENV["REDIS_URL"],
    ]

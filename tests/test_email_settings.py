"""Email settings from the environment (issue 18): EMAIL_URL or EMAIL_HOST and friends,
DEFAULT_FROM_EMAIL and PORTAL_BASE_URL; a bad value stops start-up naming the variable."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal import settings as portal_settings
from tests.conftest import run_manage
from tests.test_settings import PRODUCTION_ENV

PASSWORD = "mail-pass-%40x"
SHOW_EMAIL = (
    "from django.conf import settings as s; print(s.EMAIL_BACKEND, s.PORTAL_EMAIL_ENABLED, "
    "getattr(s, 'EMAIL_FILE_PATH', '-'), s.PORTAL_BASE_URL, s.DEFAULT_FROM_EMAIL)"
)
MAIL_ENV = {
    "EMAIL_URL": f"smtp+tls://portal%40example.com:{PASSWORD}@mail.example.com",
    "DEFAULT_FROM_EMAIL": "Number Import Portal <portal@example.com>",
    "PORTAL_BASE_URL": "https://portal.example.com/",
}


@pytest.mark.parametrize(
    ("url", "host", "port", "use_tls", "use_ssl"),
    [
        ("smtp://127.0.0.1:1025", "127.0.0.1", 1025, False, False),
        ("smtp://mail.example.com", "mail.example.com", 25, False, False),
        ("smtp+tls://u:p@mail.example.com", "mail.example.com", 587, True, False),
        ("smtps://u:p@mail.example.com", "mail.example.com", 465, False, True),
        ("smtps://u:p@mail.example.com:2465", "mail.example.com", 2465, False, True),
    ],
)
def test_email_url_gives_the_server_its_port_and_its_encryption(url, host, port, use_tls, use_ssl):
    smtp = portal_settings.email_from_url(url)

    assert (smtp["EMAIL_HOST"], smtp["EMAIL_PORT"]) == (host, port)
    assert (smtp["EMAIL_USE_TLS"], smtp["EMAIL_USE_SSL"]) == (use_tls, use_ssl)


def test_email_url_decodes_a_percent_encoded_user_and_password():
    smtp = portal_settings.email_from_url(
        "smtps://portal%40example.com:p%40ss%3Aw@mail.example.com"
    )

    assert smtp["EMAIL_HOST_USER"] == "portal@example.com"
    assert smtp["EMAIL_HOST_PASSWORD"] == "p@ss:w"


@pytest.mark.parametrize(
    "url",
    [
        f"http://u:{PASSWORD}@mail.example.com",
        f"smtp+tls://u:{PASSWORD}@:587",
        f"smtp+tls://u:{PASSWORD}@mail.example.com:99999",
        f"smtp+tls://u:{PASSWORD}@mail.example.com:port",
    ],
)
def test_a_malformed_email_url_is_refused_without_its_password(url):
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL") as refused:
        portal_settings.email_from_url(url)

    assert PASSWORD not in str(refused.value)


def test_local_mode_writes_emails_to_files_in_var_with_links_to_runportal(local_mode_env):
    result = run_manage(local_mode_env, "shell", "--no-imports", "-c", SHOW_EMAIL)

    assert result.returncode == 0, result.stderr
    backend, enabled, path, base_url, sender = result.stdout.split(" ", 4)
    assert backend == "django.core.mail.backends.filebased.EmailBackend"
    assert enabled == "True"
    assert path == f"{local_mode_env['PORTAL_VAR_DIR']}/mail"
    assert base_url == "http://127.0.0.1:8000"


def test_production_with_a_mail_server_sends_through_it(local_mode_env):
    env = {**local_mode_env, **PRODUCTION_ENV, **MAIL_ENV}

    result = run_manage(env, "shell", "--no-imports", "-c", SHOW_EMAIL)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 4)[:4] == [
        "django.core.mail.backends.smtp.EmailBackend",
        "True",
        "-",
        "https://portal.example.com",
    ]


def test_production_without_a_mail_server_sends_nothing_and_says_so(local_mode_env):
    result = run_manage(
        {**local_mode_env, **PRODUCTION_ENV}, "shell", "--no-imports", "-c", SHOW_EMAIL
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("django.core.mail.backends.dummy.EmailBackend False")
    assert "No mail server is configured (EMAIL_URL or EMAIL_HOST)" in result.stderr


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"EMAIL_URL": f"smtp://u:{PASSWORD}@mail.example.com"}, "EMAIL_URL"),
        ({"EMAIL_URL": f"smtp+tls://u:{PASSWORD}@mail.example.com:0"}, "EMAIL_URL"),
        ({"EMAIL_URL": "", "EMAIL_HOST": "mail.example.com", "EMAIL_PORT": "25x"}, "EMAIL_PORT"),
        (
            {"EMAIL_URL": "", "EMAIL_HOST": "mail.example.com", "EMAIL_USE_TLS": "y"},
            "EMAIL_USE_TLS",
        ),
        (
            {
                "EMAIL_URL": "",
                "EMAIL_HOST": "m.example.com",
                "EMAIL_USE_TLS": "1",
                "EMAIL_USE_SSL": "1",
            },
            "EMAIL_USE_SSL",
        ),
        (
            {"EMAIL_URL": "", "EMAIL_HOST": "m.example.com", "EMAIL_HOST_PASSWORD": PASSWORD},
            "EMAIL_HOST_PASSWORD",
        ),
        ({"EMAIL_HOST": "mail.example.com"}, "EMAIL_HOST"),
        ({"DEFAULT_FROM_EMAIL": ""}, "DEFAULT_FROM_EMAIL"),
        ({"PORTAL_BASE_URL": ""}, "PORTAL_BASE_URL"),
        ({"PORTAL_BASE_URL": "portal.example.com"}, "PORTAL_BASE_URL"),
        ({"PORTAL_BASE_URL": "https://portal.example.com/?x=1"}, "PORTAL_BASE_URL"),
        ({"EMAIL_TIMEOUT": "0"}, "EMAIL_TIMEOUT"),
    ],
)
def test_a_mail_setting_that_cannot_work_stops_start_up_naming_it(local_mode_env, changes, named):
    env = {**local_mode_env, **PRODUCTION_ENV, **MAIL_ENV, **changes}

    result = run_manage(env, "check")

    assert result.returncode == 1
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr


def test_error_reports_mask_the_mail_password():
    from portal.error_reports import SafeUrlsExceptionReporterFilter

    reports = SafeUrlsExceptionReporterFilter()

    url = reports.cleanse_setting("EMAIL_URL", f"smtp+tls://u:{PASSWORD}@mail.example.com")
    assert url == "smtp+tls://u:********************@mail.example.com"
    assert reports.cleanse_setting("EMAIL_HOST_PASSWORD", PASSWORD) != PASSWORD

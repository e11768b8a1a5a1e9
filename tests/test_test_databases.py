"""Each pass of `make test` runs on the database it names: PostgreSQL, then SQLite as local
mode keeps it (PORTAL_TEST_DATABASE, portal/test_settings.py)."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


def test_each_pass_runs_on_the_database_it_names():
    assert connection.vendor == os.environ.get("PORTAL_TEST_DATABASE", "postgresql")


@pytest.mark.skipif(
    os.environ.get("PORTAL_TEST_DATABASE") != "sqlite", reason="about the SQLite pass"
)
def test_the_sqlite_pass_is_one_file_in_wal_mode_that_worker_processes_can_open():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal_mode = cursor.fetchone()[0]
        cursor.execute("SELECT file FROM pragma_database_list WHERE name = 'main'")
        file = cursor.fetchone()[0]

    assert journal_mode == "wal"
    assert connection.settings_dict["OPTIONS"] == settings.SQLITE_OPTIONS
    # Not SQLite's in-memory test database, which only this process could see.
    assert Path(file) == Path(os.environ["PORTAL_TEST_SQLITE_FILE"])
    assert Path(file).is_file()


# The test modules left out of the SQLite pass, and why. Every other module is marked
# both_databases: a new module that tests a page or a flow belongs in the SQLite pass.
POSTGRESQL_PASS_ONLY = {
    "test_capabilities.py": "no database: the capability names and labels",
    "test_chaos.py": "production's servers: restarts Redis and PostgreSQL under load",
    "test_embedded_default.py": "starts local mode itself, on SQLite, in other processes",
    "test_email_settings.py": "settings read in other processes, local mode's included",
    "test_error_reports.py": "no database: what Django's debug page and error reports show",
    "test_settings.py": "settings read in other processes, local mode's included",
    "test_signalwire.py": "no database: the SignalWire client",
    "test_signalwire_conformance.py": "no database: the client against SignalWire's API spec",
    "test_simulator.py": "no database: the SignalWire simulator",
    "test_simulator_space.py": "no database: the simulator's Space changing",
    "test_soak.py": "production's servers: a soak on its own Redis and PostgreSQL database",
    "test_templatetags.py": "no database: the template filters",
}


def test_every_test_module_is_in_the_sqlite_pass_or_says_why_not():
    tests = Path(__file__).resolve().parent
    outside_the_sqlite_pass = {
        path.name
        for path in tests.glob("test_*.py")
        if "pytest.mark.both_databases" not in path.read_text()
    }

    assert outside_the_sqlite_pass == set(POSTGRESQL_PASS_ONLY)

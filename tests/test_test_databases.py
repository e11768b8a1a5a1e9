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

"""The PostgreSQL database a benchmark runs on: created when missing, Django set up on it."""

import os
import sys
from pathlib import Path

import psycopg

# The benchmarks run as scripts (`python bench/x.py`): the portal's packages are one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def ensure_database(url: str) -> None:
    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not exists.fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def set_up_django(url: str) -> None:
    """Create the database if it is missing, and set Django up on it with the test settings
    (fast password hashing, no secrets needed)."""
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.test_settings")
    import django

    django.setup()

import pytest
from django.db import OperationalError
from django.urls import reverse
from kombu import Connection

from phone_numbers import health
from portal.celery import app as celery_app

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


def test_healthz_answers_200_without_login_when_database_and_broker_answer(client):
    response = client.get(reverse("phone_numbers:healthz"))

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_answers_503_naming_the_broker_when_it_is_down(client, monkeypatch):
    nothing_listens_here = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(
        celery_app, "connection_for_write", lambda: Connection(nothing_listens_here)
    )

    response = client.get(reverse("phone_numbers:healthz"))

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "broker": "unavailable"}
    assert "127.0.0.1:1" not in response.content.decode()


def test_healthz_answers_503_naming_the_database_when_it_is_down(client, monkeypatch):
    def refuse():
        raise OperationalError("connection refused")

    monkeypatch.setattr(health.connection, "cursor", refuse)

    response = client.get(reverse("phone_numbers:healthz"))

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable", "broker": "ok"}


def test_healthz_refuses_post(client):
    response = client.post(reverse("phone_numbers:healthz"))

    assert response.status_code == 405

"""A broker that cannot be reached when an import is confirmed (issue 13): the job is stored,
the person sees it queued, and recovery sends its numbers once the broker is back."""

import pytest
from django.urls import reverse

from phone_numbers import importing
from phone_numbers.models import ImportJob
from tests.conftest import _forget_broker_connections, free_port

# The view's transaction commits, so its on-commit send really runs inside the request.
pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.both_databases,
]


@pytest.fixture
def unreachable_broker(monkeypatch):
    from portal.celery import app

    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    _forget_broker_connections(app)
    yield
    monkeypatch.undo()
    _forget_broker_connections(app)


def test_a_confirm_while_the_broker_is_down_shows_the_job_queued(
    client, support_user, make_project, unreachable_broker
):
    project = make_project()
    client.force_login(support_user)
    data = {
        "project": project.pk,
        "numbers": "+1 415 555 0100\n+1 415 555 0101",
        "number_type": "longcode",
        "capabilities": ["sms", "voice", "fax", "mms"],
        "ticket": "",
    }
    url = reverse("phone_numbers:import_new")
    digest = client.post(url, data, headers={"HX-Request": "true"}).context["digest"]

    response = client.post(url, data | {"confirm": digest})

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == job.get_absolute_url()
    # Unqueued, so that recovery's next run queues them instead of waiting for lost messages.
    assert list(job.numbers.values_list("status", "queued_at")) == [("pending", None)] * 2
    page = client.get(job.get_absolute_url())
    assert page.status_code == 200 and b"Queued" in page.content
    importing.queue_pending(job)  # what recovery does, while the broker is still down
    assert job.numbers.filter(queued_at__isnull=False).count() == 0

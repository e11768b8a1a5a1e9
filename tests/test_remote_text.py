"""What a server at the Space host says reaches the server log, never the number and job
pages, unless it is SignalWire's own documented 4xx message (issue 19, item 5)."""

import logging

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from phone_numbers import importing
from phone_numbers.models import ImportStatus
from phone_numbers.signalwire import API_PATH, SignalWireClient
from tests.conftest import raw_answer

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]
BANNER = b"INTERNAL-ONLY: db=10.0.0.5 ready\r\n"


def import_against(server, number_import, settings) -> None:
    # One attempt only, so the number fails at once with what the server did.
    settings.PORTAL_MAX_ATTEMPTS = 1
    client = SignalWireClient(
        "acme.signalwire.com",
        str(number_import.project.project_id),
        "PTdefault-test-token-0001",
        base_url=f"http://127.0.0.1:{server.port}{API_PATH}",
        timeout=(0.5, 0.5),
    )
    importing.import_number(number_import, client=client)
    number_import.refresh_from_db()


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        # Not HTTP at all: the service's banner came back inside the connection error's text.
        (BANNER, "the connection to SignalWire broke after the request was sent"),
        (raw_answer("500 INTERNAL-ONLY", '{"message": "INTERNAL-ONLY: db=10.0.0.5"}'), "Internal"),
        (raw_answer("502 Bad Gateway", "<p>INTERNAL-ONLY: db=10.0.0.5</p>", "text/html"), "Bad"),
    ],
)
def test_a_failed_import_shows_what_happened_not_what_the_server_said(
    settings, hostile_server, project_job_and_number, client, support_user, caplog, answer, shown
):
    number_import = project_job_and_number["number"]
    server = hostile_server("answer", lambda request: answer)

    with caplog.at_level(logging.INFO, logger="phone_numbers"):
        import_against(server, number_import, settings)

    assert number_import.status == ImportStatus.FAILED
    assert shown in number_import.error_message
    assert "INTERNAL-ONLY" not in number_import.error_message
    assert "INTERNAL-ONLY" in " ".join(caplog.messages)
    client.force_login(support_user)
    for url in (
        reverse("phone_numbers:number_detail", args=[number_import.pk]),
        reverse("phone_numbers:job_detail", args=[number_import.job_id]),
    ):
        page = client.get(url)
        assertContains(page, shown)
        assertNotContains(page, "INTERNAL-ONLY")


def test_signalwires_own_message_for_a_rejected_number_is_shown(
    settings, hostile_server, project_job_and_number, client, support_user
):
    number_import = project_job_and_number["number"]
    body = '{"code": "10000", "message": "Number type can\'t be blank", "status": 422}'
    server = hostile_server("answer", lambda request: raw_answer("422 Unprocessable", body))

    import_against(server, number_import, settings)

    assert number_import.error_message == "Number type can't be blank"
    client.force_login(support_user)
    page = client.get(reverse("phone_numbers:number_detail", args=[number_import.pk]))
    assertContains(page, "SignalWire said: Number type can&#x27;t be blank")

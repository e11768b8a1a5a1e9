"""Job emails end to end (issue 18): a real worker imports through the simulator and mails a
real SMTP server (aiosmtpd) on the loopback; a mail server that is down costs nothing but a
later delivery."""

import email
import email.policy
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import free_port
from tests.test_import_integration import WORKER_ENV, finished, start_job, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.both_databases,
    # Workers read what the test writes; the roles' groups stay for the tests after.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SENDER = "Number Import Portal <portal@example.com>"
BASE_URL = "https://portal.example.com"
MAIL_USER, MAIL_PASSWORD = "portal", "smtp-secret-9f2c"


class MailServer:
    """An SMTP server on 127.0.0.1 that takes one login and keeps every message it gets."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list = []
        self.logins: list[tuple[str, str]] = []
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=port,
            authenticator=self.authenticate,
            # The loopback may carry a password in the clear (as the settings allow).
            auth_require_tls=False,
        )

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = (auth_data.login.decode(), auth_data.password.decode())
            self.logins.append(login)
            return AuthResult(success=login == (MAIL_USER, MAIL_PASSWORD))
        return AuthResult(success=False)

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(envelope)
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted"

    def start(self) -> "MailServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def wait_for_messages(self, count: int, seconds: float) -> list:
        deadline = time.monotonic() + seconds
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} of {count} messages in {seconds} s")
            time.sleep(0.1)
        return self.messages


@pytest.fixture
def mail_port() -> int:
    return free_port()


@pytest.fixture
def mail_server(mail_port):
    servers: list[MailServer] = []

    def start() -> MailServer:
        servers.append(MailServer(mail_port).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def worker(start_celery_worker, simulator, mail_port):
    return start_celery_worker(
        env={
            **WORKER_ENV,
            "SIGNALWIRE_BASE_URL": simulator.api_base_url,
            "PORTAL_ALLOW_SIGNALWIRE_BASE_URL": "true",
            "EMAIL_URL": f"smtp://{MAIL_USER}:{MAIL_PASSWORD}@127.0.0.1:{mail_port}",
            "DEFAULT_FROM_EMAIL": SENDER,
            "PORTAL_BASE_URL": BASE_URL,
            "PORTAL_EMAIL_RETRY_SECONDS": "1",
        }
    )


@pytest.fixture
def project(make_project, sim_project):
    return make_project(
        name="Acme Corp",
        project_id=sim_project.project_id,
        space_host=sim_project.space_host,
        token=sim_project.token,
    )


@pytest.fixture
def starter(support_user):
    support_user.email = "sam@example.com"
    support_user.save()
    return support_user


def test_a_finished_job_mails_its_starter_through_a_real_smtp_server(
    mail_server, worker, project, starter
):
    server = mail_server()

    job = start_job(project, starter, 3)
    wait_for(job, 60, finished)

    [message] = server.wait_for_messages(1, 30)
    assert server.logins == [(MAIL_USER, MAIL_PASSWORD)]
    assert server.envelopes[0].rcpt_tos == ["sam@example.com"]
    assert message["From"] == SENDER
    assert message["To"] == "sam@example.com"
    assert message["Subject"] == f"Job {job.pk} for Acme Corp: Completed (3 of 3 imported)"
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_content().replace("\r\n", "\n")
    assert "Imported:  3 of 3" in body
    assert "Failed:    0" in body
    assert f"The job: {BASE_URL}/jobs/{job.pk}/\n" in body


def test_a_mail_server_that_is_down_holds_up_no_import_and_gets_the_email_once_back(
    mail_server, worker, project, starter, sim_client
):
    # Already in the customer's Space: the portal's import of it fails.
    sim_client.import_number("+14155550001", "longcode", ["sms"])

    job = start_job(project, starter, 3)
    counts = wait_for(job, 60, finished)
    assert counts["imported"] == 2
    assert counts["failed"] == 1
    deadline = time.monotonic() + 20
    while f"Could not send the ended email of job {job.pk}" not in worker.log():
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.2)

    server = mail_server()

    [message] = server.wait_for_messages(1, 40)
    assert message["Subject"] == f"Job {job.pk} for Acme Corp: Partly imported (2 of 3 imported)"
    assert "- 1 × Already in the project." in message.get_content()
    assert "trying again in" in worker.log()
    assert MAIL_PASSWORD not in worker.log()

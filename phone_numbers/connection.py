"""A project's connection to SignalWire: its client, and the "Check connection" operation."""

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from phone_numbers.crypto import DecryptionFailed
from phone_numbers.models import ConnectionStatus, Project, connection_check_time_limit
from phone_numbers.signalwire import (
    CredentialsRejected,
    RequestRejected,
    SignalWireClient,
    SignalWireUnavailable,
)


class NoActiveToken(Exception):
    """The project has no token the portal can use."""


def client_for(project: Project) -> SignalWireClient:
    """A SignalWire client for the project's active credential."""
    credential = project.active_credential
    if credential is None:
        raise NoActiveToken("This project has no API token: an admin must add one.")
    return SignalWireClient(
        project.space_host,
        str(project.project_id),
        credential.token,
        base_url=settings.SIGNALWIRE_BASE_URL,
        encoding=settings.SIGNALWIRE_REQUEST_ENCODING,
        timeout=settings.SIGNALWIRE_TIMEOUT,
        version=settings.PORTAL_VERSION,
    )


def check_connection(project: Project, client: SignalWireClient | None = None) -> None:
    """Ask SignalWire whether the project's token can read its numbers; store the outcome."""
    try:
        (client or client_for(project)).check_credentials()
    except (NoActiveToken, DecryptionFailed) as exc:
        project.record_connection_check(ConnectionStatus.CREDENTIALS_REJECTED, str(exc))
    except CredentialsRejected as exc:
        status = (
            ConnectionStatus.SCOPE_MISSING
            if exc.is_numbers_scope_missing
            else ConnectionStatus.CREDENTIALS_REJECTED
        )
        project.record_connection_check(status, f"SignalWire answered: {exc}")
    except RequestRejected as exc:
        # A 404 here means the Space does not know this project ID.
        project.record_connection_check(
            ConnectionStatus.CREDENTIALS_REJECTED, f"SignalWire answered: {exc}"
        )
    except SignalWireUnavailable as exc:
        project.record_connection_check(ConnectionStatus.UNREACHABLE, str(exc))
    else:
        project.record_connection_check(ConnectionStatus.OK)


def end_stale_connection_checks() -> int:
    """Store every check still "checking" past its time limit as not finished; return how many.

    Its task was lost, so nothing else would ever end it. A task that turns up late still
    records its outcome over this.
    """
    now = timezone.now()
    limit = connection_check_time_limit()
    # One conditional UPDATE: a check started again meanwhile has a fresh start time and a
    # finished one is no longer "checking", so neither is touched.
    return (
        Project.objects.filter(connection_status=ConnectionStatus.CHECKING)
        .filter(
            Q(connection_checked_at__lt=now - limit)
            # Started before checks stamped their start time.
            | Q(connection_checked_at__isnull=True)
        )
        .update(
            connection_status=ConnectionStatus.UNCHECKED,
            connection_detail=(
                f"No outcome within {limit.total_seconds():.0f} s: the check was probably"
                " lost in a restart of the portal's workers or queue."
            ),
            updated_at=now,
        )
    )

"""A project's connection to SignalWire: its client, and the "Check connection" operation."""

import logging

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from phone_numbers.crypto import DecryptionFailed
from phone_numbers.models import (
    ConnectionStatus,
    Project,
    connection_check_time_limit,
    is_space_host,
)
from phone_numbers.signalwire import (
    CredentialsRejected,
    RequestRejected,
    SignalWireClient,
    SignalWireUnavailable,
)

logger = logging.getLogger(__name__)

# How much of a refused host a message repeats: enough to recognise it.
SHOWN_HOST_LENGTH = 80


class NoActiveToken(Exception):
    """The project has no token the portal can use."""


class ConfigurationError(Exception):
    """The project or the portal is set up so that no request can be made: nothing was sent."""


def client_for(project: Project) -> SignalWireClient:
    """A SignalWire client for the project's active credential.

    The last check before a token leaves: a host that is not a SignalWire Space (a row
    written before hosts were checked, or by QuerySet.update) never gets a client.
    """
    if not is_space_host(project.space_host):
        raise ConfigurationError(
            f"The Space host “{project.space_host[:SHOWN_HOST_LENGTH]}” is not a SignalWire "
            "Space: an admin must correct it on the project page, and enter the token again."
        )
    credential = project.active_credential
    if credential is None:
        raise NoActiveToken("This project has no API token: an admin must add one.")
    try:
        return SignalWireClient(
            project.space_host,
            str(project.project_id),
            credential.token,
            base_url=settings.SIGNALWIRE_BASE_URL,
            encoding=settings.SIGNALWIRE_REQUEST_ENCODING,
            timeout=settings.SIGNALWIRE_TIMEOUT,
            version=settings.PORTAL_VERSION,
        )
    except ValueError:
        # The client refused a setting (SIGNALWIRE_BASE_URL, say); its message names it.
        logger.exception("No SignalWire client for project %s", project.pk)
        raise ConfigurationError(
            "The portal's SignalWire settings are wrong: tell the portal's maintainers (the "
            "worker's log has the error)."
        ) from None


def check_connection(project: Project, client: SignalWireClient | None = None) -> None:
    """Ask SignalWire whether the project's token can read its numbers; store the outcome."""
    try:
        (client or client_for(project)).check_credentials()
    except (NoActiveToken, DecryptionFailed) as exc:
        project.record_connection_check(ConnectionStatus.CREDENTIALS_REJECTED, str(exc))
    except ConfigurationError as exc:
        project.record_connection_check(ConnectionStatus.CONFIGURATION, str(exc))
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

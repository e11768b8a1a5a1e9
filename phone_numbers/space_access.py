"""A project's access to its SignalWire Space: its client, and the "Check connection" operation.

Named space_access, not connection, so that it never reads as django.db.connection.
"""

import logging

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from phone_numbers.crypto import DecryptionFailed, decrypt
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
    SignalWireError,
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
    # The stored token alone, in SQL: a worker makes a client for every number, and the ORM's
    # query for the credential, then for its deferred token, took 0.8 ms of CPU.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT token FROM phone_numbers_credential"
            " WHERE project_id = %s AND revoked_at IS NULL",
            [project.pk],
        )
        active = cursor.fetchone()
    if active is None:
        raise NoActiveToken("This project has no API token: an admin must add one.")
    stored_token = active[0]
    try:
        return SignalWireClient(
            project.space_host,
            str(project.project_id),
            None if stored_token is None else decrypt(stored_token),
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
    """Ask SignalWire whether the project's token can read its numbers; store the outcome.

    The project page shows a category and a fixed sentence, never an error's own text: that
    can carry whatever the server at the Space host chose to say, and telling a refused
    connection from a TLS failure or a silent port would make the check a port scanner. The
    details go to the server log, for whoever runs the portal.
    """
    try:
        (client or client_for(project)).check_credentials()
    except (NoActiveToken, DecryptionFailed, ConfigurationError, SignalWireError) as exc:
        status, message = _outcome_of(exc)
        logger.warning(
            "Connection check of project %s (%s): %s: %s",
            project.pk,
            project.space_host,
            status.label,
            _log_text(exc),
        )
        project.record_connection_check(status, message)
    else:
        project.record_connection_check(ConnectionStatus.OK)


def _outcome_of(exc: Exception) -> tuple[ConnectionStatus, str]:
    """The status and the fixed sentence the project page shows for a failed check."""
    if isinstance(exc, NoActiveToken):
        return ConnectionStatus.CREDENTIALS_REJECTED, str(exc)
    if isinstance(exc, ConfigurationError):
        # The portal's own words: nothing was sent, so no server's text is in them.
        return ConnectionStatus.CONFIGURATION, str(exc)
    if isinstance(exc, DecryptionFailed):
        return (
            ConnectionStatus.CREDENTIALS_REJECTED,
            "The stored token cannot be decrypted with the portal's keys: enter it again.",
        )
    if isinstance(exc, CredentialsRejected) and exc.is_numbers_scope_missing:
        return (
            ConnectionStatus.SCOPE_MISSING,
            f"SignalWire accepted the token but refused to list numbers (HTTP {exc.status}).",
        )
    if isinstance(exc, CredentialsRejected):
        return ConnectionStatus.CREDENTIALS_REJECTED, (
            f"SignalWire rejected the token (HTTP {exc.status})."
        )
    if isinstance(exc, RequestRejected):
        # A 404 here means the Space does not know this project ID.
        return ConnectionStatus.CREDENTIALS_REJECTED, (
            f"SignalWire refused the project ID (HTTP {exc.status})."
        )
    if isinstance(exc, SignalWireUnavailable) and exc.status is not None:
        return (
            ConnectionStatus.UNREACHABLE,
            f"SignalWire answered with an error (HTTP {exc.status}).",
        )
    connect, read = settings.SIGNALWIRE_TIMEOUT
    return ConnectionStatus.UNREACHABLE, (
        f"Space unreachable: could not connect, or no answer within {connect + read:g} s."
    )


def _log_text(exc: Exception) -> str:
    # The token is never in a SignalWire error (the client scrubs it, raw and encoded).
    if isinstance(exc, SignalWireError) and exc.detail:
        return f"{exc} ({exc.detail})"
    return str(exc)


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

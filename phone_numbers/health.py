"""Whether the services the portal depends on answer, for /healthz."""

import logging

from django.db import DatabaseError, connection

from portal.celery import app as celery_app

logger = logging.getLogger(__name__)


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        logger.warning("Health check: the database does not answer (%s)", type(exc).__name__)
        return False
    return True


def broker_answers() -> bool:
    try:
        with celery_app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0)
    except Exception as exc:  # every kombu transport raises its own error classes
        logger.warning("Health check: the broker does not answer (%s)", type(exc).__name__)
        return False
    return True

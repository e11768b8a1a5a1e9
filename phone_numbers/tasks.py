import logging
from functools import cache
from smtplib import SMTPException

from celery import shared_task
from django.conf import settings
from django.core.management import call_command
from django.db import connection, models

from phone_numbers import audit, importing, inventory, notifications, space_access
from phone_numbers.models import ImportJob, InventorySync, NumberImport, Project

logger = logging.getLogger(__name__)

# What import_phone_number loads: a number import with its job and project.
LOADED_TOGETHER: tuple[type[models.Model], ...] = (NumberImport, ImportJob, Project)


@shared_task
def clear_expired_sessions() -> None:
    # Database sessions are never deleted by Django itself; beat runs this periodically.
    call_command("clearsessions")


@shared_task
def check_project_connection(project_pk: int) -> None:
    project = Project.objects.filter(pk=project_pk).first()
    if project is None:
        return
    space_access.check_connection(project)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def import_phone_number(number_import_pk: int) -> None:
    # acks_late is safe: import_number claims the row first, so a redelivered message that
    # finds it claimed or finished does nothing.
    number_import = _number_import_with_job_and_project(number_import_pk)
    if number_import is None or number_import.is_finished:
        return
    importing.import_number(number_import)
    # Perhaps the job's last number: whoever finishes last (once), its starter is told and
    # its Space's inventory read again.
    if number_import.is_finished and notifications.notify_if_ended(number_import.job_id):
        inventory.queue_inventory_sync_after_job(number_import.job_id)
    importing.queue_pending(number_import.job)


def _number_import_with_job_and_project(pk: int) -> NumberImport | None:
    """The number import, its job and its project, as select_related("job", "project") loads
    them: one query, each value converted from the database as the ORM does (a JSON field's,
    SQLite's dates). Written in SQL: a worker loads one for every number, and the ORM took
    0.75 ms of CPU for it, four times what this takes."""
    sql, converted = _load_plan(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, field, column in converted:
        for convert in connection.ops.get_db_converters(column) + field.get_db_converters(
            connection
        ):
            values[index] = convert(values[index], column, connection)
    loaded = []
    for model in LOADED_TOGETHER:
        fields = model._meta.concrete_fields
        own, values = values[: len(fields)], values[len(fields) :]
        loaded.append(model.from_db(connection.alias, [field.attname for field in fields], own))
    number_import, job, project = loaded
    number_import.job, number_import.project = job, project
    return number_import


@cache
def _load_plan(vendor: str) -> tuple[str, list[tuple[int, models.Field, models.Expression]]]:
    """The query, and the place, field and column of each value that needs converting: the
    same for every connection to one kind of database, so worked out once."""
    columns, converted = [], []
    for model in LOADED_TOGETHER:
        for field in model._meta.concrete_fields:
            column = field.get_col(model._meta.db_table)
            if connection.ops.get_db_converters(column) + field.get_db_converters(connection):
                converted.append((len(columns), field, column))
            columns.append(f"{model._meta.db_table}.{field.column}")
    number_imports, jobs, projects = (model._meta.db_table for model in LOADED_TOGETHER)
    # Bandit B608 is a false alarm: the tables and columns are the models' own, the id a
    # query parameter.
    sql = (
        f"SELECT {', '.join(columns)} FROM {number_imports}"  # nosec B608
        f" JOIN {jobs} ON {jobs}.id = {number_imports}.job_id"
        f" JOIN {projects} ON {projects}.id = {number_imports}.project_id"
        f" WHERE {number_imports}.id = %s"
    )
    return sql, converted


@shared_task
def recover_stuck_imports() -> None:
    importing.recover_stuck_imports()
    space_access.end_stale_connection_checks()
    inventory.end_stale_syncs()
    # Jobs that ended with no worker there to see it (cancelled, failed by recovery).
    for job_id in notifications.notify_ended_jobs():
        inventory.queue_inventory_sync_after_job(job_id)


# acks_late is safe: run_sync claims the sync first, so a redelivered message finds it read by
# a live run (and does nothing), finished (nothing), or stale (and starts it again). Celery's
# time limits do not apply to the thread pool the portal runs; a prefork pool would apply
# them, and a 100,000-number sync outlasts the default 60 s.
@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=3300, time_limit=3600)
def sync_inventory(sync_pk: int) -> None:
    sync = InventorySync.objects.select_related("project").filter(pk=sync_pk).first()
    if sync is None or sync.status != InventorySync.Status.RUNNING:
        return
    inventory.run_sync(sync)


@shared_task
def sync_every_inventory() -> None:
    inventory.sync_every_inventory()


@shared_task
def write_held_back_login_events() -> None:
    audit.write_held_back_login_events()


@shared_task(bind=True)
def send_job_email(self, kind: str, job_id: int, user_id: int) -> None:
    """Send one email about a job. Ids only: the message is built now, from the database.

    A mail server that fails is tried again after PORTAL_EMAIL_RETRY_SECONDS, doubling up to
    an hour, PORTAL_EMAIL_MAX_RETRIES times. The log names the job, the person's id and the
    server's answer, never the mail password (smtplib's errors do not hold it).
    """
    try:
        notifications.send(kind, job_id, user_id)
    except (SMTPException, OSError) as exc:
        tries = self.request.retries
        problem = f"{type(exc).__name__}: {exc}"
        if tries >= settings.PORTAL_EMAIL_MAX_RETRIES:
            logger.error(
                "Gave up the %s email of job %s to user %s after %s tries: %s",
                kind,
                job_id,
                user_id,
                tries + 1,
                problem,
            )
            return
        delay = min(settings.PORTAL_EMAIL_RETRY_SECONDS * 2**tries, 3600)
        logger.warning(
            "Could not send the %s email of job %s to user %s (%s); trying again in %s s",
            kind,
            job_id,
            user_id,
            problem,
            delay,
        )
        raise self.retry(countdown=delay, max_retries=None) from None

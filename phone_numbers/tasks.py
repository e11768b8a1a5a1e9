from celery import shared_task
from django.core.management import call_command

from phone_numbers import audit, importing, space_access
from phone_numbers.models import NumberImport, Project


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
    number_import = (
        NumberImport.objects.select_related("job", "project").filter(pk=number_import_pk).first()
    )
    if number_import is None or number_import.is_finished:
        return
    importing.import_number(number_import)
    importing.queue_pending(number_import.job)


@shared_task
def recover_stuck_imports() -> None:
    importing.recover_stuck_imports()
    space_access.end_stale_connection_checks()


@shared_task
def write_held_back_login_events() -> None:
    audit.write_held_back_login_events()

from celery import shared_task
from django.core.management import call_command

from phone_numbers import connection
from phone_numbers.models import Project


@shared_task
def clear_expired_sessions() -> None:
    # Database sessions are never deleted by Django itself; beat runs this periodically.
    call_command("clearsessions")


@shared_task
def check_project_connection(project_pk: int) -> None:
    project = Project.objects.filter(pk=project_pk).first()
    if project is None:
        return
    connection.check_connection(project)

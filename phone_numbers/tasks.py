from celery import shared_task
from django.core.management import call_command


@shared_task
def clear_expired_sessions() -> None:
    # Database sessions are never deleted by Django itself; beat runs this periodically.
    call_command("clearsessions")

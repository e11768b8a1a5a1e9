import os

from celery import Celery, signals
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def recycle_database_connections(task, **kwargs) -> None:
    """Around each task, as Django around each request: drop a connection that broke or is
    older than CONN_MAX_AGE, and health-check the others before their next query."""
    if not task.request.is_eager:  # an eager task runs inside its caller's transaction
        close_old_connections()

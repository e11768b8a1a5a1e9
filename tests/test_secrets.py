"""A canary token goes through the whole portal and must come out nowhere.

One flow: an admin adds a project with the canary as its token (through the form), the
connection check runs against the simulator over real HTTP, a number is previewed, confirmed
and imported with a real client pointed at the simulator, the job is retried, exported, and the
audit read and exported; then a save fails with an error page. Everything the portal produced
on the way is searched for the canary: pages, htmx fragments, CSV exports, log records at every
level (formatted with their tracebacks), Celery task arguments and results, the error page and
the error report Django would e-mail to admins.
"""

import logging
import sys
import uuid
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.views.debug import ExceptionReporter

from phone_numbers.models import ConnectionStatus, ImportStatus, NumberImport, Project
from phone_numbers.tasks import check_project_connection, import_phone_number
from signalwire_simulator import SimProject

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

CANARY = "PTcanary" + uuid.uuid4().hex
HTMX = {"HX-Request": "true"}
FORMATTER = logging.Formatter("%(levelname)s %(name)s %(message)s")


@pytest.fixture
def sim_project() -> SimProject:
    """The simulator's project, whose token is the canary (overrides conftest's)."""
    return SimProject(
        project_id=str(uuid.uuid4()), token=CANARY, space_host="canary.signalwire.com"
    )


@pytest.fixture
def sent_tasks(monkeypatch) -> list[tuple]:
    """Everything handed to Celery: (task name, args, kwargs). Nothing is really sent."""
    sent: list[tuple] = []
    for task in (import_phone_number, check_project_connection):
        monkeypatch.setattr(
            task,
            "apply_async",
            lambda args=(), kwargs=None, task=task, **options: sent.append(
                (task.name, tuple(args or ()), dict(kwargs or {}), options)
            ),
        )
        monkeypatch.setattr(
            task,
            "delay",
            lambda *args, task=task, **kwargs: sent.append((task.name, args, kwargs, {})),
        )
    return sent


def project_form(sim_project: SimProject, **overrides) -> dict:
    return {
        "name": "Canary customer",
        "space_host": sim_project.space_host,
        "project_id": sim_project.project_id,
        "default_country": "US",
        "notes": "",
        "token": CANARY,
    } | overrides


def body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def test_the_canary_token_appears_nowhere(
    client,
    admin_user,
    support_user,
    simulator,
    sim_project,
    sent_tasks,
    settings,
    caplog,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    settings.SIGNALWIRE_BASE_URL = simulator.api_base_url
    settings.SIGNALWIRE_TIMEOUT = (1.0, 2.0)
    admin_user.is_superuser = True
    admin_user.save()
    caplog.set_level(logging.DEBUG)
    outputs: dict[str, str] = {}

    # An admin adds the project; its connection check runs (as the worker would) over HTTP.
    client.force_login(admin_user)
    outputs["new project form"] = body(client.get(reverse("phone_numbers:project_create")))
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(
            reverse("phone_numbers:project_create"), project_form(sim_project), follow=True
        )
    outputs["project created"] = body(created)
    project = Project.objects.get()
    check_project_connection.run(project.pk)
    project.refresh_from_db()
    assert project.connection_status == ConnectionStatus.OK

    # A rejected edit, which re-renders the form with what was typed.
    outputs["rejected edit"] = body(
        client.post(
            reverse("phone_numbers:project_edit", args=[project.pk]),
            project_form(sim_project, project_id="not-a-uuid"),
        )
    )
    outputs["check connection fragment"] = body(
        client.post(
            reverse("phone_numbers:project_check_connection", args=[project.pk]), headers=HTMX
        )
    )

    # Support previews, confirms and the worker imports with a real client (the simulator).
    client.force_login(support_user)
    data = {
        "project": project.pk,
        "numbers": "+1 415 555 0100\n+1 415 555 0101",
        "number_type": "longcode",
        "capabilities": ["sms", "voice"],
        "ticket": "HD-1",
    }
    preview = client.post(reverse("phone_numbers:import_new"), data, headers=HTMX)
    outputs["preview fragment"] = body(preview)
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = client.post(
            reverse("phone_numbers:import_new"),
            data | {"confirm": preview.context["digest"]},
            headers=HTMX,
        )
    job = project.jobs.get()
    results = []
    for number in job.numbers.all():
        # As a worker runs it: the task's own code, its return value is the task result.
        results.append(import_phone_number.apply(args=(number.pk,)))
    assert set(job.numbers.values_list("status", flat=True)) == {ImportStatus.IMPORTED}
    NumberImport.objects.filter(job=job).update(
        status=ImportStatus.FAILED, failure_category="network"
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("phone_numbers:job_retry_failed", args=[job.pk]))
    number = job.numbers.first()
    outputs["confirm"] = str(confirmed.headers)

    pages = {
        "home": (reverse("phone_numbers:home"), {"status": ""}),
        "projects": (reverse("phone_numbers:project_list"), {"q": "canary"}),
        "project": (reverse("phone_numbers:project_detail", args=[project.pk]), {}),
        "jobs": (reverse("phone_numbers:job_list"), {}),
        "job": (reverse("phone_numbers:job_detail", args=[job.pk]), {}),
        "number": (reverse("phone_numbers:number_detail", args=[number.pk]), {}),
        "import form": (reverse("phone_numbers:import_new"), {}),
    }
    for name, (url, query) in pages.items():
        outputs[f"{name} page"] = body(client.get(url, query))
        outputs[f"{name} fragment"] = body(client.get(url, query, headers=HTMX))
    outputs["job export"] = body(client.get(reverse("phone_numbers:job_export", args=[job.pk])))
    outputs["numbers export"] = body(
        client.get(reverse("phone_numbers:number_export"), {"status": ""})
    )

    # The admin reads the audit, exports it, and looks at the Django admin.
    client.force_login(admin_user)
    outputs["audit page"] = body(client.get(reverse("phone_numbers:audit_list")))
    outputs["audit export"] = body(client.get(reverse("phone_numbers:audit_export")))
    for name in ("project_change", "credential_changelist", "auditentry_changelist"):
        args = [project.pk] if name == "project_change" else []
        outputs[f"admin {name}"] = body(
            client.get(reverse(f"admin:phone_numbers_{name}", args=args))
        )

    # A save that fails deep inside Project.replace_token, whose frame holds the token.
    def broken_clock():
        raise RuntimeError("storage broke")

    monkeypatch.setattr("phone_numbers.models.timezone", SimpleNamespace(now=broken_clock))
    client.raise_request_exception = False
    failed = client.post(
        reverse("phone_numbers:project_edit", args=[project.pk]),
        project_form(sim_project, token=CANARY + "x"),
    )
    assert failed.status_code == 500
    outputs["error page"] = body(failed)
    report = ExceptionReporter(failed.wsgi_request, *(failed.exc_info or sys.exc_info()))
    outputs["error report text"] = report.get_traceback_text()
    outputs["error report html"] = report.get_traceback_html()
    assert "storage broke" in outputs["error report text"]

    # Where the canary must not be.
    for name, text in outputs.items():
        assert CANARY not in text, name
        assert CANARY[2:] not in text, name
    for record in caplog.records:
        assert CANARY[2:] not in FORMATTER.format(record), record.name
    assert sent_tasks, "the flow queued no task: the check below would prove nothing"
    for name, args, kwargs, options in sent_tasks:
        assert all(isinstance(arg, int) for arg in args), (name, args)
        assert kwargs == {}, name
        assert CANARY not in repr(options), name
    for result in results:
        assert result.successful()
        assert result.result is None
        assert CANARY not in repr(result.result) + str(result.traceback)
    # The flow did reach the places where a token could leak.
    assert caplog.records
    assert simulator.stats()
    assert "…" + CANARY[-4:] in outputs["project page"]

"""Run the whole portal on this machine in the foreground: `make run` calls this."""

import contextlib
import os
import secrets
import signal
import subprocess  # nosec B404
import sys
import time

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from phone_numbers.models import Project
from phone_numbers.roles import ADMINS
from phone_numbers.signalwire import API_PATH
from phone_numbers.tasks import check_project_connection
from signalwire_simulator import (
    CONTROL_PREFIX,
    DEMO_PROJECT_ID,
    DEMO_SPACE_HOST,
    DEMO_TOKEN,
    SECOND_DEMO_PROJECT_ID,
    SECOND_DEMO_SPACE_HOST,
    SECOND_DEMO_TOKEN,
    SimProject,
)

ADMIN_USERNAME = "admin"
STARTUP_SECONDS = 60
STOP_SECONDS = 15


def create_first_admin() -> tuple[bool, str | None]:
    """Create the `admin` superuser unless it exists.

    Returns whether it was created, and the password when it was generated here (it is
    shown once and stored only as a hash).
    """
    users = get_user_model()
    if users.objects.filter(username=ADMIN_USERNAME).exists():
        return False, None
    password = os.environ.get("PORTAL_ADMIN_PASSWORD")
    generated = None if password else secrets.token_urlsafe(12)
    # An address, so that the job emails of a local portal show in var/mail/.
    admin = users.objects.create_superuser(
        ADMIN_USERNAME, email=f"{ADMIN_USERNAME}@localhost", password=password or generated
    )
    admin.groups.add(Group.objects.get(name=ADMINS))
    return True, generated


def admin_login(created: bool, generated_password: str | None) -> str:
    """How to log in as `admin`, as the banner says it: only what is known to be true."""
    if generated_password:
        return (
            f"user {ADMIN_USERNAME}, password {generated_password}\n"
            "  (shown only this once: change it under Password after logging in)"
        )
    if created:
        return f"user {ADMIN_USERNAME}, password from PORTAL_ADMIN_PASSWORD"
    # The admin exists from an earlier start: its password may have been generated, taken
    # from PORTAL_ADMIN_PASSWORD, or changed since. Only a check against the hash can tell.
    from_environment = os.environ.get("PORTAL_ADMIN_PASSWORD")
    admin = get_user_model().objects.get(username=ADMIN_USERNAME)
    if from_environment and admin.check_password(from_environment):
        return f"user {ADMIN_USERNAME}, password from PORTAL_ADMIN_PASSWORD"
    reset = f"reset it with: .venv/bin/python manage.py changepassword {ADMIN_USERNAME}"
    if from_environment:
        return (
            f"user {ADMIN_USERNAME} with its own password: PORTAL_ADMIN_PASSWORD is not it "
            f"(it is used only when the admin is created; {reset})"
        )
    return f"user {ADMIN_USERNAME} with the password it already has (forgotten? {reset})"


def simulator_command(port: int, extra_projects: list[str]) -> list[str]:
    """The simulator's command line: the two demo projects, and any added with flags."""
    extra = [argument for spec in extra_projects for argument in ("--project", spec)]
    return [
        sys.executable,
        "-m",
        "signalwire_simulator",
        "--port",
        str(port),
        "--demo",
        *extra,
    ]


def banner_body(login: str, simulator_port: int, extra_projects: list[str]) -> str:
    """What runportal prints under its address once the portal answers: who logs in, and the
    projects the simulator serves.

    The tokens printed are the simulator's own, which only it accepts (or ones typed on this
    command line): they are here so that someone trying the portal need not dig them out.
    """
    simulator = f"http://127.0.0.1:{simulator_port}"
    lines = [
        f"  Log in as {login}",
        "  “Demo customer (simulator)” imports into the local SignalWire simulator at "
        f"{simulator}:",
        f"    Space host {DEMO_SPACE_HOST}, project ID {DEMO_PROJECT_ID},",
        f"    API token {DEMO_TOKEN}",
        "  To try Projects → Add project, the simulator also serves:",
        f"    Space host {SECOND_DEMO_SPACE_HOST}, project ID {SECOND_DEMO_PROJECT_ID},",
        f"    API token {SECOND_DEMO_TOKEN}",
    ]
    for spec in extra_projects:
        project = SimProject.parse(spec)
        lines.append(
            f"    Space host {project.space_host}, project ID {project.project_id}, "
            "API token as given"
        )
    lines += [
        "  More projects: runportal --simulator-project ID:TOKEN[:SPACE_HOST], or while it runs",
        f"    POST {simulator}{CONTROL_PREFIX}/projects "
        '{"project_id": …, "token": …, "space_host": …}',
        "  Web server, Celery worker, Celery beat and simulator run until Ctrl-C.",
    ]
    return "\n".join(lines) + "\n"


def create_demo_project() -> Project | None:
    """Create the demo customer's project, served by the simulator, unless it exists."""
    if Project.objects.filter(space_host=DEMO_SPACE_HOST, project_id=DEMO_PROJECT_ID).exists():
        return None
    project = Project.objects.create(
        name="Demo customer (simulator)",
        space_host=DEMO_SPACE_HOST,
        project_id=DEMO_PROJECT_ID,
        default_country="US",
        notes="Served by the local SignalWire simulator that `make run` starts.",
    )
    project.replace_token(DEMO_TOKEN, by=None)
    return project


class Command(BaseCommand):
    help = (
        "Migrate, create the first admin and a demo project, then run the web server, a "
        "Celery worker, Celery beat and the SignalWire simulator until Ctrl-C."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--simulator-port", type=int, default=8765)
        parser.add_argument("--worker-concurrency", type=int, default=8)
        parser.add_argument(
            "--simulator-project",
            action="append",
            default=[],
            metavar="ID:TOKEN[:SPACE_HOST]",
            help="one more project for the simulator to serve, beside the two demo projects "
            "(ID is a UUID; SPACE_HOST defaults to demo.signalwire.test). Repeatable.",
        )

    def handle(
        self,
        *args,
        port: int,
        simulator_port: int,
        worker_concurrency: int,
        simulator_project: list[str],
        **options,
    ) -> None:
        for spec in simulator_project:
            try:
                SimProject.parse(spec)
            except ValueError as exc:
                raise CommandError(f"--simulator-project: {exc}") from None
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        created, generated_password = create_first_admin()
        demo_project = create_demo_project()

        address = f"127.0.0.1:{port}"
        celery = [sys.executable, "-m", "celery", "--app", "portal"]
        commands = {
            "web": [sys.executable, "manage.py", "runserver", address],
            "worker": [
                *celery,
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(worker_concurrency),
                "--loglevel",
                "INFO",
            ],
            "beat": [*celery, "beat", "--loglevel", "INFO"],
            "simulator": simulator_command(simulator_port, simulator_project),
        }
        # Every project of this local portal talks to the simulator, never to SignalWire.
        # The allow setting matters only if DATABASE_URL puts it in production mode: this
        # command starts that simulator itself, so the choice is explicit.
        env = {
            **os.environ,
            "SIGNALWIRE_BASE_URL": f"http://127.0.0.1:{simulator_port}{API_PATH}",
            "PORTAL_ALLOW_SIGNALWIRE_BASE_URL": "true",
            # The links in emails (var/mail/ unless a mail server is configured).
            "PORTAL_BASE_URL": os.environ.get("PORTAL_BASE_URL") or f"http://{address}",
        }
        # A SIGTERM (from a supervisor or a test) stops the portal like Ctrl-C does.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        processes: dict[str, subprocess.Popen] = {}
        try:
            for name, command in commands.items():
                # Each part gets its own process group, so stopping one also stops its
                # children (runserver's reloader, the worker's pool).
                # Bandit B404/B603 are false alarms: the commands are built here from
                # sys.executable and this command's own arguments, with no shell.
                processes[name] = subprocess.Popen(  # nosec B603
                    command, cwd=settings.BASE_DIR, env=env, start_new_session=True
                )
            self.wait_until_healthy(f"http://{address}/healthz", processes)
            if demo_project:
                demo_project.start_connection_check()
                check_project_connection.delay(demo_project.pk)
            self.stdout.write(
                self.style.SUCCESS(f"\nThe Number Import Portal is running at http://{address}/\n")
                + banner_body(
                    admin_login(created, generated_password), simulator_port, simulator_project
                )
            )
            self.stdout.flush()
            self.wait_for_any_exit(processes)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the portal…")
        finally:
            stop_all(processes)

    def wait_until_healthy(self, url: str, processes: dict[str, subprocess.Popen]) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            self.raise_if_any_exited(processes)
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise CommandError(f"The portal did not become healthy within {STARTUP_SECONDS} s")

    def wait_for_any_exit(self, processes: dict[str, subprocess.Popen]) -> None:
        while True:
            self.raise_if_any_exited(processes)
            time.sleep(0.5)

    def raise_if_any_exited(self, processes: dict[str, subprocess.Popen]) -> None:
        for name, process in processes.items():
            if process.poll() is not None:
                raise CommandError(
                    f"The {name} process stopped (exit code {process.returncode}); "
                    "stopping the portal."
                )


def stop_all(processes: dict[str, subprocess.Popen]) -> None:
    # A second Ctrl-C or SIGTERM must not cut the clean-up short and leave a part running.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for process in processes.values():
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

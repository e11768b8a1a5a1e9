"""Run the whole portal on this machine in the foreground: `make run` calls this."""

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from phone_numbers.roles import ADMINS

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
    admin = users.objects.create_superuser(ADMIN_USERNAME, password=password or generated)
    admin.groups.add(Group.objects.get(name=ADMINS))
    return True, generated


class Command(BaseCommand):
    help = (
        "Migrate, create the first admin, then run the web server, a Celery worker and "
        "Celery beat until Ctrl-C."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--worker-concurrency", type=int, default=8)

    def handle(self, *args, port: int, worker_concurrency: int, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        created, generated_password = create_first_admin()

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
        }
        # A SIGTERM (from a supervisor or a test) stops the portal like Ctrl-C does.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        processes: dict[str, subprocess.Popen] = {}
        try:
            for name, command in commands.items():
                # Each part gets its own process group, so stopping one also stops its
                # children (runserver's reloader, the worker's pool).
                processes[name] = subprocess.Popen(
                    command, cwd=settings.BASE_DIR, start_new_session=True
                )
            self.wait_until_healthy(f"http://{address}/healthz", processes)
            self.print_banner(f"http://{address}/", created, generated_password)
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

    def print_banner(self, url: str, created: bool, generated_password: str | None) -> None:
        if generated_password:
            login = (
                f"user {ADMIN_USERNAME}, password {generated_password}\n"
                "  (shown only this once: change it under Password after logging in)"
            )
        elif created:
            login = f"user {ADMIN_USERNAME}, password from PORTAL_ADMIN_PASSWORD"
        else:
            login = (
                f"user {ADMIN_USERNAME} with the password printed when it was created "
                f"(reset it with: .venv/bin/python manage.py changepassword {ADMIN_USERNAME})"
            )
        self.stdout.write(
            self.style.SUCCESS(f"\nThe Number Import Portal is running at {url}\n")
            + f"  Log in as {login}\n"
            + "  Web server, Celery worker and Celery beat are running. Ctrl-C stops them all.\n"
        )
        self.stdout.flush()


def stop_all(processes: dict[str, subprocess.Popen]) -> None:
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

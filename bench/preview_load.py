"""How quickly /healthz answers while one person sends 20 large import previews at once.

Starts the portal as production runs it: gunicorn with gunicorn.conf.py (WEB_CONCURRENCY
workers, 2 per core + 1 by default) and the production settings, on a throwaway PostgreSQL
database and a Redis of its own, listening on 127.0.0.1 only. One Support user then sends, at
once, N previews of the same CSV of R rows (N concurrent "Preview" clicks), and after them N
concurrent clicks on its page 2, while a poller asks /healthz every 0.2 s. It prints, for each
wave, what the previews got (the preview, the "still being prepared" refusal, or an error) and
how long they took, and /healthz's latency (median, 95th percentile, worst).

With --compare-with PATH, the same run is repeated against another checkout of the portal (for
example one of main before the preview cache), and both are printed side by side. Everything
it starts is stopped, and the database dropped, at the end; every loop ends by itself.

    .venv/bin/python bench/preview_load.py [--rows 50000] [--concurrent 20]
        [--compare-with /path/to/other/checkout]
"""

import argparse
import contextlib
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import portal_processes
import requests
from cryptography.fernet import Fernet

REPO_DIR = Path(__file__).resolve().parent.parent
HEALTHZ_EVERY_SECONDS = 0.2
REQUEST_TIMEOUT_SECONDS = 120
# A wave that has not ended by then is reported as it stands.
WAVE_DEADLINE_SECONDS = 300
SHOWN, REFUSED = "preview shown", "refused: still being prepared"

# Run by `manage.py shell` in the checkout under test: a Support user, a project with a token,
# and a logged-in session for that user, printed as "<session key> <project pk>".
SETUP_CODE = """
from django.contrib.auth.models import Group, User
from django.test import Client
from phone_numbers.models import Project
from phone_numbers.roles import SUPPORT
import uuid
user = User.objects.create_user("bench-support", password=None)
user.groups.add(Group.objects.get(name=SUPPORT))
project = Project.objects.create(
    name="Bench customer", space_host="bench.signalwire.com", project_id=uuid.uuid4(),
    default_country="US",
)
project.replace_token("PTbench-token-not-used-0001", by=None)
client = Client()
client.force_login(user)
print(client.cookies["sessionid"].value, project.pk)
"""


def csv_of(rows: int) -> bytes:
    # Valid US numbers, all different, in the written forms people export from spreadsheets.
    lines = [f"+1 415 {200 + line // 10000:03d} {line % 10000:04d}" for line in range(rows)]
    return ("number\n" + "\n".join(lines) + "\n").encode()


def manage(checkout: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed in {checkout}:\n{result.stderr[-3000:]}")
    return result.stdout


def start_gunicorn(checkout: Path, env: dict[str, str], stack: contextlib.ExitStack) -> str:
    port = portal_processes.free_port()
    log = (Path(env["PORTAL_VAR_DIR"]).parent / "gunicorn.log").open("ab")
    stack.callback(log.close)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi"],
        cwd=checkout,
        env=env | {"GUNICORN_BIND": f"127.0.0.1:{port}"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack.callback(portal_processes.stop_process, process)
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}: see {log.name}")
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{base_url}/healthz", timeout=1).status_code == 200
        return False

    portal_processes.wait_until(answers, 60, "gunicorn answering /healthz")
    return base_url


def outcome(response: requests.Response) -> str:
    if response.status_code == 200 and "<h2>Preview</h2>" in response.text:
        return SHOWN
    if (
        response.status_code == 200
        and "A preview of yours is still being prepared" in response.text
    ):
        return REFUSED
    return f"HTTP {response.status_code}"


def wave(base_url: str, session: dict[str, str], data: dict, upload: bytes, count: int) -> dict:
    """`count` concurrent preview posts, with /healthz polled until they have all ended."""
    csrf = secrets.token_hex(16)  # 32 characters: Django compares an unmasked secret as is.
    headers = {
        "Cookie": f"sessionid={session['sessionid']}; csrftoken={csrf}",
        "X-CSRFToken": csrf,
        "HX-Request": "true",
    }
    done = threading.Event()
    healthz: list[float] = []

    def poll_healthz() -> None:
        deadline = time.monotonic() + WAVE_DEADLINE_SECONDS
        while not done.is_set() and time.monotonic() < deadline:
            started = time.perf_counter()
            with contextlib.suppress(requests.RequestException):
                requests.get(f"{base_url}/healthz", timeout=REQUEST_TIMEOUT_SECONDS)
            healthz.append(time.perf_counter() - started)
            done.wait(HEALTHZ_EVERY_SECONDS)

    digests: set[str] = set()

    def post_preview(_: int) -> tuple[str, float]:
        started = time.perf_counter()
        try:
            response = requests.post(
                f"{base_url}/imports/new/",
                data=data,
                files={"csv_file": ("numbers.csv", upload, "text/csv")},
                headers=headers,
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
            result = outcome(response)
            # The page buttons of a shown preview name it (not in checkouts before the cache).
            digests.update(re.findall(r'name="preview_digest" value="(\w+)"', response.text))
        except requests.RequestException as exc:
            result = type(exc).__name__
        return result, time.perf_counter() - started

    poller = threading.Thread(target=poll_healthz)
    poller.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(post_preview, range(count)))
    elapsed = time.perf_counter() - started
    done.set()
    poller.join()
    outcomes: dict[str, int] = {}
    for result, _ in results:
        outcomes[result] = outcomes.get(result, 0) + 1
    return {
        "outcomes": outcomes,
        "wall": elapsed,
        "slowest": max(seconds for _, seconds in results),
        "healthz": healthz,
        # One input, so one digest at most.
        "page buttons send": {"preview_digest": digests.pop()} if digests else {},
    }


def run_checkout(checkout: Path, args: argparse.Namespace) -> dict[str, dict]:
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="portal-load-")))
        redis = portal_processes.RedisServer(workdir)
        stack.callback(redis.stop)
        redis.start()
        database = portal_processes.ThrowawayDatabase(
            f"portal_preview_load_{os.getpid()}", os.environ.get("DATABASE_URL")
        )
        database.create()
        stack.callback(database.drop)
        env = portal_processes.clean_environment() | {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": database.url,
            "REDIS_URL": redis.url,
            "CELERY_BROKER_URL": redis.url,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "PORTAL_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            # Plain HTTP on loopback: no TLS proxy in front of this gunicorn.
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "PORTAL_VAR_DIR": str(workdir / "var"),
            "PORTAL_LOG_LEVEL": "WARNING",
        }
        manage(checkout, env, "migrate", "--no-input", "-v", "0")
        manage(checkout, env, "collectstatic", "--no-input", "-v", "0")
        setup = manage(checkout, env, "shell", "-v", "0", "-c", SETUP_CODE)
        session_key, project_pk = setup.split()
        base_url = start_gunicorn(checkout, env, stack)
        data = {"project": project_pk, "number_type": "longcode", "capabilities": ["sms"]}
        upload = csv_of(args.rows)
        session = {"sessionid": session_key}
        previews = wave(base_url, session, data, upload, args.concurrent)
        page_click = data | {"page": "2"} | previews["page buttons send"]
        return {
            "previews": previews,
            "page 2 clicks": wave(base_url, session, page_click, upload, args.concurrent),
        }


def summary(name: str, results: dict) -> str:
    latencies = sorted(results["healthz"]) or [float("nan")]
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    outcomes = ", ".join(f"{count} {what}" for what, count in sorted(results["outcomes"].items()))
    return (
        f"  {name}: {outcomes}; all ended after {results['wall']:.1f} s "
        f"(slowest {results['slowest']:.1f} s)\n"
        f"    /healthz while they ran: {len(results['healthz'])} answers, median "
        f"{statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"worst {latencies[-1] * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument(
        "--compare-with", type=Path, help="another checkout of the portal to run the same load on"
    )
    args = parser.parse_args()
    portal_processes.raise_on_termination()
    checkouts = [("this checkout", REPO_DIR)]
    if args.compare_with:
        checkouts.append((f"{args.compare_with}", args.compare_with.resolve()))
    print(
        f"{args.concurrent} concurrent previews of a {args.rows:,}-row CSV by one person, then "
        f"{args.concurrent} concurrent clicks on its page 2; gunicorn with "
        f"{os.environ.get('WEB_CONCURRENCY', f'{(os.cpu_count() or 1) * 2 + 1}')} workers on "
        f"{os.cpu_count()} cores."
    )
    for name, checkout in checkouts:
        results = run_checkout(checkout, args)
        print(f"{name} ({checkout}):")
        for wave_name, wave_results in results.items():
            print(summary(wave_name, wave_results))


if __name__ == "__main__":
    main()

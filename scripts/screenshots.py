"""Regenerate the README's screenshots (docs/screenshots/*.png) from a seeded local portal.

Starts the whole portal as `make run` does (web, worker, beat, simulator) in a temporary
folder, seeds it with demo numbers, then drives Debian's Chromium through the pages.

    .venv/bin/python scripts/screenshots.py
"""

import html
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from playwright.sync_api import expect, sync_playwright

REPO_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_DIR / "docs" / "screenshots"
PASSWORD = "screenshots-only-password"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    port, simulator_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="portal-screenshots-") as var_dir:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "PORTAL_", "DATABASE_", "REDIS_", "CELERY_"))
        }
        env |= {"PORTAL_VAR_DIR": var_dir, "PORTAL_ADMIN_PASSWORD": PASSWORD}
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v0"], cwd=REPO_DIR, env=env, check=True)
        subprocess.run(
            [*manage, "seed_demo_numbers", "--count", "3000", "--projects", "12"],
            cwd=REPO_DIR,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        portal = subprocess.Popen(
            [*manage, "runportal", "--port", str(port), "--simulator-port", str(simulator_port)],
            cwd=REPO_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            while "is running at" not in (line := portal.stdout.readline()):
                if not line:
                    sys.exit("the portal did not start")
            # Three numbers of the import below are in the demo Space already: the job's
            # email shows its failures by reason.
            put_in_demo_space(simulator_port, [f"+1415555{index:04d}" for index in (7, 21, 42)])
            # Slow imports down, so the job page is caught in progress.
            requests.post(
                f"http://127.0.0.1:{simulator_port}/__sim__/config",
                json={"latency_min_ms": 400, "latency_max_ms": 700, "error_503_fraction": 0.08},
                timeout=5,
            ).raise_for_status()
            take_screenshots(f"http://127.0.0.1:{port}", Path(var_dir) / "mail")
        finally:
            portal.terminate()
            portal.wait(timeout=30)
    print(f"Screenshots written to {OUT_DIR.relative_to(REPO_DIR)}/")


def put_in_demo_space(simulator_port: int, numbers: list[str]) -> None:
    from phone_numbers.signalwire import API_PATH, SignalWireClient
    from signalwire_simulator import DEMO_PROJECT_ID, DEMO_SPACE_HOST, DEMO_TOKEN

    client = SignalWireClient(
        DEMO_SPACE_HOST,
        DEMO_PROJECT_ID,
        DEMO_TOKEN,
        base_url=f"http://127.0.0.1:{simulator_port}{API_PATH}",
        timeout=(2, 5),
        version="screenshots",
    )
    for number in numbers:
        client.import_number(number, "longcode", ["sms", "voice", "fax", "mms"])


def take_screenshots(base: str, mail_dir: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})

        def shot(name: str) -> None:
            page.screenshot(path=OUT_DIR / f"{name}.png")

        page.goto(f"{base}/login/")
        shot("login")
        page.fill("#id_username", "admin")
        page.fill("#id_password", PASSWORD)
        page.locator("main").get_by_role("button", name="Log in").click()

        page.goto(f"{base}/imports/new/")
        demo = page.locator("#id_project option", has_text="Demo customer").get_attribute("value")
        page.select_option("#id_project", demo)
        numbers = [f"(415) 555-{index:04d}" for index in range(60)]
        numbers[5:5] = ["+44 20 7946 0958", "tel:+1-212-555-0199", "hello", "12345"]
        page.fill("#id_numbers", "\n".join(numbers))
        page.fill("#id_ticket", "HD-20431")
        page.locator("main").get_by_role("button", name="Preview").click()
        confirm = page.locator("button[name=confirm]")
        expect(confirm).to_be_visible()
        shot("new-import-preview")

        confirm.click()
        page.wait_for_url(re.compile(r"/jobs/\d+/$"))
        page.wait_for_timeout(2500)
        shot("job-in-progress")

        page.goto(f"{base}/?q=415+555")
        expect(page.locator("#number-results table")).to_be_visible()
        shot("numbers-search")
        page.locator("#number-results tbody a").first.click()
        shot("number-page")

        page.goto(f"{base}/account/email/")
        shot("email-preferences")
        shoot_job_email(page, mail_dir)
        browser.close()


def shoot_job_email(page, mail_dir: Path) -> None:
    """The email that says the job above ended, as local mode's file backend wrote it to
    var/mail/: kept as it is (.eml) and shown in the browser (.png)."""
    deadline = time.monotonic() + 120
    while not (files := sorted(mail_dir.glob("*.log"))):
        if time.monotonic() > deadline:
            sys.exit("no job email in var/mail/ within 120 s")
        time.sleep(1)
    time.sleep(1)  # the backend writes the file while it sends
    # One file per connection: the message, then a line of dashes.
    message = files[0].read_text().split("\n" + "-" * 79)[0]
    (OUT_DIR / "email-job-ended.eml").write_text(message + "\n")
    page.set_viewport_size({"width": 900, "height": 600})
    page.set_content(
        '<pre style="font: 14px/1.45 monospace; white-space: pre-wrap; margin: 24px">'
        f"{html.escape(message)}</pre>"
    )
    page.screenshot(path=OUT_DIR / "email-job-ended.png", full_page=True)


if __name__ == "__main__":
    main()

"""The users of bench/load.py: support people at work, and people watching a live job page.

Locust runs this file; bench/load.py starts it (headless, against its own gunicorn on
127.0.0.1) and hands it a plan, a JSON file named by LOAD_PLAN: the users' names and password,
the search queries, number and job ids, and the file in which the live job's id appears once
its import starts.

Requests go as a browser behind the production TLS proxy sends them: with
X-Forwarded-Proto: https (gunicorn trusts it from 127.0.0.1), so Django serves the pages and
sets its cookies Secure; this client clears that flag as each cookie arrives, so that it
sends them back over the plain loopback HTTP, as the browser does over HTTPS.
"""

import itertools
import json
import os
import random
from pathlib import Path

import gevent
from locust import HttpUser, between, constant, events, task

PLAN = json.loads(Path(os.environ["LOAD_PLAN"]).read_text())
HTMX = {"HX-Request": "true"}
# The live job page asks for its fragment every 2 s (templates/.../job_live.html).
POLL_SECONDS = 2
LIVE_JOB_FILE = Path(PLAN["live_job_file"])
ALL_IN_FILE = Path(PLAN["all_in_file"])
# Response times (ms) by phase and page, beside Locust's own stats: "pages alone" once every
# user has logged in, "during the import" once the live job has started.
TIMES: dict[str, dict[str, list[float]]] = {"pages alone": {}, "during the import": {}}
# Each simulated person logs in with an account of their own.
SUPPORT_NAMES = itertools.cycle(PLAN["support_users"])
WATCHER_NAMES = itertools.cycle(PLAN["watcher_users"])


@events.request.add_listener
def note_time(name: str, response_time: float, **kwargs) -> None:
    if LIVE_JOB_FILE.exists():
        TIMES["during the import"].setdefault(name, []).append(response_time)
    elif ALL_IN_FILE.exists():
        TIMES["pages alone"].setdefault(name, []).append(response_time)


@events.quitting.add_listener
def save_times(**kwargs) -> None:
    Path(PLAN["times_file"]).write_text(json.dumps(TIMES))


class PortalUser(HttpUser):
    abstract = True

    def on_start(self) -> None:
        self.client.headers["X-Forwarded-Proto"] = "https"
        # Django checks a secure POST's Origin against the host it was sent to.
        self.client.headers["Origin"] = "https" + self.host.removeprefix("http")
        self.log_in(next(self.names))

    def log_in(self, username: str) -> None:
        self.client.get("/login/", name="/login/ (page)")
        self.keep_cookies()
        with self.client.post(
            "/login/",
            data={
                "username": username,
                "password": PLAN["password"],
                "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", ""),
                "next": "",
            },
            allow_redirects=False,
            name="/login/ (log in)",
            catch_response=True,
        ) as response:
            if response.status_code != 302:
                response.failure(f"login answered {response.status_code}, not a redirect")
        self.keep_cookies()

    def keep_cookies(self) -> None:
        for cookie in self.client.cookies:
            cookie.secure = False

    def page(self, url: str, name: str, expect: str, headers: dict | None = None) -> None:
        """GET a page; anything but a 200 that contains `expect` counts as a failure."""
        with self.client.get(
            url, name=name, headers=headers, allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code != 200:
                where = response.headers.get("Location", "")
                response.failure(f"HTTP {response.status_code} {where}".strip())
            elif expect not in response.text:
                response.failure(f"{expect!r} not in the page")
        # The session cookie comes again with each renewal (portal.middleware).
        self.keep_cookies()


class SupportUser(PortalUser):
    """Someone answering customers: searches, opens numbers and jobs, exports."""

    fixed_count = PLAN["support_count"]
    names = SUPPORT_NAMES
    wait_time = between(2, 5)

    @task(6)
    def search(self) -> None:
        # As the search box sends it: the results fragment, by htmx.
        kind, query = random.choice(PLAN["queries"])
        self.page(f"/?{query}", f"/ search: {kind}", "number-results", HTMX)

    @task(1)
    def numbers_page(self) -> None:
        self.page("/", "/ (numbers page)", "number-results")

    @task(4)
    def open_number(self) -> None:
        self.page(f"/numbers/{random.choice(PLAN['number_ids'])}/", "/numbers/<pk>/", "<h1")

    @task(1)
    def job_list(self) -> None:
        self.page("/jobs/", "/jobs/", "<h1")

    @task(2)
    def open_job(self) -> None:
        self.page(f"/jobs/{random.choice(PLAN['job_ids'])}/", "/jobs/<pk>/", "-live")

    @task(1)
    def open_job_failed(self) -> None:
        job = random.choice(PLAN["job_ids"])
        self.page(f"/jobs/{job}/?status=failed", "/jobs/<pk>/?status=failed", "-live")

    @task(1)
    def export_job(self) -> None:
        job = random.choice(PLAN["job_ids"])
        self.page(f"/jobs/{job}/export.csv", "/jobs/<pk>/export.csv", "number")

    @task(1)
    def export_search(self) -> None:
        _, query = random.choice(PLAN["export_queries"])
        self.page(f"/numbers/export.csv?{query}", "/numbers/export.csv?q=", "number")


class WatcherUser(PortalUser):
    """Someone with the live job's page open: the page once, then its fragment every 2 s."""

    fixed_count = PLAN["watcher_count"]
    names = WATCHER_NAMES
    wait_time = constant(POLL_SECONDS)

    def on_start(self) -> None:
        super().on_start()
        while not LIVE_JOB_FILE.exists():
            gevent.sleep(0.2)
        self.job = LIVE_JOB_FILE.read_text().strip()
        self.page(f"/jobs/{self.job}/", "/jobs/<live>/", "-live")

    @task
    def poll(self) -> None:
        self.page(f"/jobs/{self.job}/", "/jobs/<live>/ (live fragment)", "-live", HTMX)

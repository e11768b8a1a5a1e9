"""Four eyes end to end (issue 18): a real Redis broker, a real worker process, the simulator
over HTTP. Nothing of a job awaiting approval reaches SignalWire, even with its tasks sent."""

import time

import pytest
from django.contrib.auth.models import Group, User

from phone_numbers import importing
from phone_numbers.models import ImportJob, ImportStatus, JobStatus
from phone_numbers.number_input import read_pasted
from phone_numbers.roles import ADMINS
from phone_numbers.tasks import import_phone_number

pytestmark = [
    pytest.mark.integration,
    pytest.mark.both_databases,
    # The worker reads what the test writes; the roles' groups stay for the tests after.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

THRESHOLD = 3


@pytest.fixture
def project(make_project, sim_project):
    return make_project(
        project_id=sim_project.project_id,
        space_host=sim_project.space_host,
        token=sim_project.token,
    )


def start_job(project, user, numbers: list[str]) -> ImportJob:
    return importing.start_job(
        project=project,
        created_by=user,
        source=ImportJob.Source.PASTE,
        ticket="",
        number_type="longcode",
        capabilities=["sms", "voice", "fax", "mms"],
        lines=read_pasted("\n".join(numbers)),
    )


def wait_until(what: str, seconds: float, done) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {seconds} s")
        time.sleep(0.2)


def test_nothing_reaches_the_simulator_before_approval_and_everything_after(
    start_celery_worker, simulator, sim_project, project, admin_user, settings
):
    settings.PORTAL_APPROVAL_THRESHOLD = THRESHOLD
    worker = start_celery_worker(
        env={
            "SIGNALWIRE_BASE_URL": simulator.api_base_url,
            "PORTAL_ALLOW_SIGNALWIRE_BASE_URL": "true",
            "PORTAL_RATE_LIMIT_PER_SPACE": "200",
        }
    )
    large = [f"+1415555{index:04d}" for index in range(THRESHOLD + 2)]
    job = start_job(project, admin_user, large)
    assert job.status_for(job.counts()) == JobStatus.AWAITING_APPROVAL

    # A stray task for each of its numbers (a redelivery, a hand-sent task): the worker runs
    # them, and its claim refuses them all.
    stray = [import_phone_number.delay(pk) for pk in job.numbers.values_list("pk", flat=True)]
    wait_until(
        "the stray tasks' end",
        60,
        lambda: all(f"[{task.id}] succeeded" in worker.log() for task in stray),
    )
    # A small job meanwhile goes through: the worker and the simulator work.
    small = start_job(project, admin_user, ["+12125550100"])
    wait_until("the small job's import", 60, lambda: small.counts()["imported"] == 1)

    posts = simulator.stats()["import_posts"][sim_project.project_id]
    assert posts == {"+12125550100": 1}
    assert set(job.numbers.values_list("status", "attempts")) == {(ImportStatus.PENDING, 0)}

    bea = User.objects.create_user("bea", password="bea-pass-1", is_staff=True)
    bea.groups.add(Group.objects.get(name=ADMINS))
    assert importing.approve(job, bea)
    wait_until("the approved job's imports", 60, lambda: job.counts()["imported"] == len(large))

    posts = simulator.stats()["import_posts"][sim_project.project_id]
    assert posts == dict.fromkeys(["+12125550100", *large], 1)
    job.refresh_from_db()
    assert job.status_for(job.counts()) == JobStatus.COMPLETED

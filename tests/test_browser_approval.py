"""Four eyes in a real browser (issue 18): another admin finds a large job awaiting approval,
with its Approve and Reject buttons, and rejects it with a reason the page then shows; both
states pass axe-core's WCAG 2.1 AA rules as the other pages do."""

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from phone_numbers import importing
from phone_numbers.models import ImportJob, ImportStatus
from phone_numbers.number_input import read_pasted
from phone_numbers.roles import ADMINS
from phone_numbers.tasks import import_phone_number
from tests.conftest import save_screenshot
from tests.test_browser_accessibility import AccessibilityWalk

pytestmark = [
    pytest.mark.browser,
    pytest.mark.both_databases,
    # The live server reads what the test writes; the roles' groups stay.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# One more than the default threshold, PORTAL_APPROVAL_THRESHOLD's 1,000.
LARGE = 1001


def test_another_admin_sees_the_approval_box_and_rejects_the_job_with_a_reason(
    page, live_server, log_in, admin_user, make_project, monkeypatch
):
    sent: list[int] = []
    monkeypatch.setattr(
        import_phone_number, "apply_async", lambda args, **kwargs: sent.append(args[0])
    )
    project = make_project(name="Acme Corp")
    job = importing.start_job(
        project=project,
        created_by=admin_user,
        source=ImportJob.Source.CSV,
        ticket="HD-20431",
        number_type="longcode",
        capabilities=["sms", "voice"],
        lines=read_pasted("\n".join(f"+1415555{index:04d}" for index in range(LARGE))),
    )
    bea = User.objects.create_user("bea", password="bea-pass-1", is_staff=True)
    bea.groups.add(Group.objects.get(name=ADMINS))
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, "bea", "bea-pass-1")

    page.goto(f"{live_server.url}/jobs/{job.pk}/")

    main = page.locator("main")
    expect(main.locator(".badge", has_text="Awaiting approval")).to_be_visible()
    expect(main).to_contain_text("Waiting for approval by an admin other than ada.")
    expect(main.get_by_role("button", name="Approve and import 1,001 numbers")).to_be_visible()
    walk = AccessibilityWalk("admin")
    walk.scan(page, "job page, awaiting approval")
    save_screenshot(page, "job-awaiting-approval")

    main.get_by_label("Reason for rejecting").fill("HD-20431 asks for 100 numbers, not 1,001.")
    main.get_by_role("button", name="Reject").click()

    expect(main).to_contain_text("Rejected by bea")
    expect(main).to_contain_text("HD-20431 asks for 100 numbers, not 1,001.")
    expect(main.locator(".progress-head .badge")).to_have_text("Cancelled")
    walk.scan(page, "job page, rejected")
    walk.assert_clean()
    assert set(job.numbers.values_list("status", flat=True)) == {ImportStatus.CANCELLED}
    assert sent == []

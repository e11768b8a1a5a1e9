"""The CSV exports: what each file holds to the byte, that a file of many chunks holds every
row once, and the job's failed rows as a file that New import reads back (issue 18)."""

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from phone_numbers import exports
from phone_numbers.models import AuditAction, AuditEntry, ImportJob, NumberImport

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

HTMX = {"HX-Request": "true"}
CREATED = datetime(2026, 11, 30, 9, 15, 0, 123456, tzinfo=UTC)
IMPORTED = datetime(2026, 11, 30, 9, 16, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def nothing_sent(monkeypatch) -> None:
    from phone_numbers.tasks import import_phone_number

    monkeypatch.setattr(import_phone_number, "apply_async", lambda *args, **kwargs: None)


@pytest.fixture
def job(make_project, support_user) -> ImportJob:
    """A job of four numbers: imported, failed twice (one of them toll-free, one reason a
    formula), and cancelled, with every time fixed."""
    project = make_project(name="=Acme, Inc.", space_host="acme.signalwire.com")
    job = ImportJob.objects.create(
        project=project,
        created_by=support_user,
        source="csv",
        ticket="HD-7",
        number_type="longcode",
        capabilities=["sms", "voice"],
        input_digest="x",
    )
    rows = [
        {
            "number": "+14155550100",
            "input_line": 2,
            "status": "imported",
            "capabilities": ["sms", "voice"],
            "sid": "PN-1",
            "friendly_name": "(415) 555-0100",
            "attempts": 1,
            "imported_at": IMPORTED,
            "error_message": "an earlier timeout",
        },
        {
            "number": "+14155550101",
            "input_line": 3,
            "status": "failed",
            "capabilities": ["voice", "fax"],
            "failure_category": "invalid_input",
            "error_message": 'Field "number": must be, "a number"',
            "attempts": 2,
        },
        {
            "number": "+18005550100",
            "number_type": "tollfree",
            "status": "failed",
            "capabilities": ["sms", "voice", "fax", "mms"],
            "failure_category": "upstream",
            "error_message": "=HYPERLINK(1)",
            "attempts": 3,
        },
        {"number": "+14155550102", "input_line": 5, "status": "cancelled", "capabilities": []},
    ]
    for fields in rows:
        NumberImport.objects.create(
            job=job, project=project, number_type=fields.pop("number_type", "longcode"), **fields
        )
    NumberImport.objects.filter(job=job).update(created_at=CREATED)
    return job


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_the_job_export_holds_exactly_these_bytes(client, support_user, job):
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:job_export", args=[job.pk]))

    assert response["Content-Disposition"] == f'attachment; filename="import-job-{job.pk}.csv"'
    assert body(response) == (
        "line,number,status,number_type,reason,sid,friendly_name,attempts,imported_at\r\n"
        "2,+14155550100,imported,longcode,,PN-1,(415) 555-0100,1,2026-11-30T09:16:01+00:00\r\n"
        '3,+14155550101,failed,longcode,"Field ""number"": must be, ""a number""",,,2,\r\n'
        ",+18005550100,failed,tollfree,'=HYPERLINK(1),,,3,\r\n"
        "5,+14155550102,cancelled,longcode,,,,0,\r\n"
    )


def test_the_numbers_export_holds_exactly_these_bytes(client, support_user, job):
    ImportJob.objects.filter(pk=job.pk).update(created_by=None)
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_export"), {"q": "415555010", "status": ""})

    created = "2026-11-30T09:15:00.123456+00:00"
    assert body(response) == (
        "number,project,space_host,status,number_type,capabilities,friendly_name,sid,ticket,"
        "imported_by,job,created_at,imported_at,reason\r\n"
        f'+14155550102,"\'=Acme, Inc.",acme.signalwire.com,cancelled,longcode,,,,HD-7,,{job.pk},'
        f"{created},,\r\n"
        f'+14155550101,"\'=Acme, Inc.",acme.signalwire.com,failed,longcode,voice fax,,,HD-7,,'
        f'{job.pk},{created},,"Field ""number"": must be, ""a number"""\r\n'
        f'+14155550100,"\'=Acme, Inc.",acme.signalwire.com,imported,longcode,sms voice,'
        f"(415) 555-0100,PN-1,HD-7,,{job.pk},{created},2026-11-30T09:16:01+00:00,\r\n"
    )


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 30, 9, 16, 1, tzinfo=UTC),
        datetime(2026, 11, 30, 9, 16, 1, 120000, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC),
        datetime(2026, 7, 1, 23, 30, 0, 999999, tzinfo=ZoneInfo("America/New_York")),
    ],
)
def test_a_time_is_written_as_python_writes_it_in_utc(client, support_user, job, moment):
    job.numbers.update(imported_at=moment)
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:job_export", args=[job.pk]))

    written = {row["imported_at"] for row in csv.DictReader(io.StringIO(body(response)))}
    assert written == {moment.astimezone(UTC).isoformat()}


def test_the_numbers_export_names_who_imported(client, support_user, job):
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_export"), {"q": "8005550100", "status": ""})

    [row] = csv.DictReader(io.StringIO(body(response)))
    assert row["imported_by"] == "sam"
    assert row["capabilities"] == "sms voice fax mms"


def test_the_audit_export_holds_exactly_these_bytes(client, admin_user, job):
    AuditEntry.objects.create(
        username="=mallory",
        action=AuditAction.LOGIN_FAILED,
        target="+x",
        created_at=CREATED,
    )
    AuditEntry.objects.create(
        username="ada",
        ip_address="127.0.0.1",
        action=AuditAction.JOB_EXPORTED,
        project=job.project,
        job=job,
        target=f"Job {job.pk}",
        changes={"rows": "failed", "a": 1},
        created_at=IMPORTED,
    )
    client.force_login(admin_user)

    response = client.get(reverse("phone_numbers:audit_export"), {"person": "=mallory"})
    listed = client.get(reverse("phone_numbers:audit_export"), {"job": job.pk})

    assert body(response) == (
        "time,person,ip_address,action,project,job,target,changes\r\n"
        "2026-11-30T09:15:00.123456+00:00,'=mallory,,Login failed,,,'+x,\r\n"
    )
    assert body(listed).splitlines()[1] == (
        f'2026-11-30T09:16:01+00:00,ada,127.0.0.1,Job exported (CSV),"\'=Acme, Inc.",{job.pk},'
        f'Job {job.pk},"{{""a"": 1, ""rows"": ""failed""}}"'
    )


def test_an_action_the_portal_no_longer_has_is_exported_as_stored_and_quoted(
    client, admin_user, job
):
    AuditEntry.objects.create(username="ada", action="=retired_action", job=job)
    client.force_login(admin_user)

    response = client.get(reverse("phone_numbers:audit_export"), {"job": job.pk})

    [row] = csv.DictReader(io.StringIO(body(response)))
    assert row["action"] == "'=retired_action"


def test_an_export_of_many_chunks_holds_every_row_once_in_order(
    client, support_user, job, monkeypatch
):
    monkeypatch.setattr(exports, "CHUNK_SIZE", 3)
    for index in range(4):
        NumberImport.objects.create(
            job=job, project=job.project, number=f"+1415555020{index}", number_type="longcode"
        )
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:job_export", args=[job.pk]))

    pieces = list(response.streaming_content)
    rows = list(csv.DictReader(io.StringIO(b"".join(pieces).decode())))
    assert [row["number"] for row in rows] == [
        number.number for number in job.numbers.order_by("pk")
    ]
    # The header, then the 8 rows three at a time: one piece a chunk, not one a line.
    assert len(pieces) == 1 + 3


def test_an_export_makes_the_same_queries_for_few_rows_or_many(client, support_user, job):
    client.force_login(support_user)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            body(client.get(reverse("phone_numbers:number_export"), {"status": ""}))
        return len(captured)

    queries()  # the session is renewed on a first request, not on the next (a minute apart)
    few = queries()
    for index in range(30):
        NumberImport.objects.create(
            job=job, project=job.project, number=f"+1212555{index:04d}", number_type="longcode"
        )

    assert queries() == few


# -- The job's failed rows (issue 18) -------------------------------------------------------------


def test_failed_rows_are_the_job_s_failed_numbers_in_new_import_s_columns(
    client, support_user, job
):
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:job_failed_export", args=[job.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert (
        response["Content-Disposition"] == f'attachment; filename="import-job-{job.pk}-failed.csv"'
    )
    assert body(response) == (
        "number,number_type,capabilities,reason\r\n"
        '+14155550101,longcode,voice fax,"Field ""number"": must be, ""a number"""\r\n'
        "+18005550100,tollfree,sms voice fax mms,'=HYPERLINK(1)\r\n"
    )
    entry = AuditEntry.objects.get(action=AuditAction.JOB_EXPORTED)
    assert (entry.username, entry.job, entry.changes) == ("sam", job, {"rows": "failed"})


def test_failed_rows_of_a_job_with_none_are_the_header_alone(client, support_user, job):
    job.numbers.filter(status="failed").update(status="imported")
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:job_failed_export", args=[job.pk]))

    assert body(response) == "number,number_type,capabilities,reason\r\n"


def test_failed_rows_need_a_login_and_a_role(client, job):
    url = reverse("phone_numbers:job_failed_export", args=[job.pk])

    assert client.get(url)["Location"].startswith(reverse("login"))
    client.force_login(User.objects.create_user("nobody", password="x"))
    assert client.get(url).status_code == 403
    assert not AuditEntry.objects.filter(action=AuditAction.JOB_EXPORTED).exists()


def test_failed_rows_of_a_job_that_does_not_exist_are_404(client, support_user):
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:job_failed_export", args=[999999]))

    assert response.status_code == 404


def test_the_job_page_links_its_failed_rows(client, support_user, job):
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:job_detail", args=[job.pk]))

    url = reverse("phone_numbers:job_failed_export", args=[job.pk])
    assert f'href="{url}"' in response.content.decode()


def test_failed_rows_uploaded_unchanged_are_previewed_again(client, support_user, job):
    client.force_login(support_user)
    downloaded = b"".join(
        client.get(reverse("phone_numbers:job_failed_export", args=[job.pk])).streaming_content
    )
    upload = SimpleUploadedFile("failed.csv", downloaded, content_type="text/csv")

    # The form's own type and capabilities differ from every row's: the file's columns win.
    response = client.post(
        reverse("phone_numbers:import_new"),
        {
            "project": job.project.pk,
            "numbers": "",
            "csv_file": upload,
            "number_type": "longcode",
            "capabilities": ["mms"],
            "ticket": "HD-7",
        },
        headers=HTMX,
    )

    assert response.status_code == 200
    rows = sorted(response.context["preview"].rows, key=lambda row: row.line_number)
    failed = job.numbers.filter(status="failed").order_by("pk")
    assert [(row.e164, row.number_type, row.capabilities) for row in rows] == [
        (number.number, number.number_type, tuple(number.capabilities)) for number in failed
    ]
    assert all(row.is_importable for row in rows)
    assert response.context["preview_counts"].importable == 2


def test_a_number_only_in_a_space_is_exported_after_the_imports_in_their_columns(
    client, support_user, make_project
):
    from phone_numbers.models import SpaceNumber

    project = make_project(name="@Globex", space_host="globex.signalwire.com")
    SpaceNumber.objects.create(
        project=project,
        number="+14155550199",
        sid="PN-SPACE",
        friendly_name="-Lobby",
        number_type="longcode",
        capabilities=["voice", "fax"],
        date_created=CREATED,
        first_seen_at=IMPORTED,
        last_seen_at=IMPORTED,
    )
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_export"), {"q": "4155550199"})

    assert body(response).splitlines()[1:] == [
        "+14155550199,'@Globex,globex.signalwire.com,in_space_not_imported,longcode,voice fax,"
        "'-Lobby,PN-SPACE,,,,2026-11-30T09:15:00.123456+00:00,,"
    ]

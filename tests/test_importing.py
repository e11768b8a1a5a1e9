import logging
import time
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from phone_numbers import importing, tasks
from phone_numbers.models import (
    FailureCategory,
    ImportJob,
    ImportStatus,
    JobStatus,
    NumberImport,
    Project,
    RateLimitBucket,
)
from phone_numbers.number_input import read_pasted
from phone_numbers.rate_limit import SPACING_MARGIN, book_send_slot
from phone_numbers.signalwire import (
    CredentialsRejected,
    IncomingPhoneNumber,
    RequestRejected,
    SignalWireUnavailable,
)
from phone_numbers.tasks import import_phone_number
from tests.fakes import FakeSignalWire, incoming_number, number_body

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

ALL = ["sms", "voice", "fax", "mms"]


@pytest.fixture(autouse=True)
def no_rate_limit_wait(settings):
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 1_000_000


@pytest.fixture
def start(make_project, admin_user, django_capture_on_commit_callbacks):
    def start(numbers: list[str], project=None, **choices) -> ImportJob:
        with django_capture_on_commit_callbacks(execute=True):
            return importing.start_job(
                project=project or make_project(),
                created_by=admin_user,
                source=ImportJob.Source.PASTE,
                ticket="HD-1",
                number_type=choices.get("number_type", "longcode"),
                capabilities=choices.get("capabilities", ALL),
                lines=read_pasted("\n".join(numbers)),
            )

    return start


def only_row(job: ImportJob) -> NumberImport:
    [row] = job.numbers.select_related("job", "project")
    return row


def reload(row: NumberImport) -> NumberImport:
    return NumberImport.objects.select_related("job", "project").get(pk=row.pk)


# Starting a job


def test_start_creates_the_rows_and_queues_the_first_window_after_commit(start, sent, settings):
    settings.PORTAL_JOB_CONCURRENCY = 3

    job = start([f"+1415555010{i}" for i in range(5)])

    rows = list(job.numbers.order_by("pk"))
    assert [row.status for row in rows] == ["pending"] * 5
    assert [pk for pk, _ in sent] == [row.pk for row in rows[:3]]
    assert [row.queued_at is not None for row in rows] == [True, True, True, False, False]
    assert job.status_for(job.counts()) == JobStatus.QUEUED


def test_a_started_job_keeps_its_choices_and_each_row_keeps_its_line_as_read(start, sent):
    # A tel: URI's parameters are dropped when read, so its line may be longer than the
    # 100 characters kept of it.
    uri = "tel:+18885550100;phone-context=" + "x" * 90
    job = start(
        ["not a number", "(800) 555-0100", uri], number_type="tollfree", capabilities=["sms"]
    )

    assert (job.number_type, job.capabilities, job.ticket) == ("tollfree", ["sms"], "HD-1")
    rows = job.numbers.order_by("input_line")
    assert [
        (row.number, row.input_text, row.input_line, row.how_read, row.number_type) for row in rows
    ] == [
        (
            "+18005550100",
            "(800) 555-0100",
            2,
            "Assumed United States, the project's default country",
            "tollfree",
        ),
        ("+18885550100", uri[:100], 3, "International number (United States)", "tollfree"),
    ]
    assert [row.capabilities for row in rows] == [["sms"], ["sms"]]


def test_confirming_the_same_list_twice_makes_one_job(start, make_project, sent):
    project = make_project()

    first = start(["+14155550100", "+14155550101"], project=project)
    second = start(["+14155550100", "+14155550101"], project=project)

    assert first == second
    assert ImportJob.objects.count() == 1
    assert NumberImport.objects.count() == 2


def test_the_same_list_confirmed_by_someone_else_is_not_taken_for_their_own_repeat(
    start, make_project, sent, support_user, django_capture_on_commit_callbacks
):
    project = make_project()
    start(["+14155550100"], project=project)

    with (
        pytest.raises(importing.ImportRefused, match="Nothing to import"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        importing.start_job(
            project=project,
            created_by=support_user,
            source=ImportJob.Source.PASTE,
            ticket="HD-1",
            number_type="longcode",
            capabilities=ALL,
            lines=read_pasted("+14155550100"),
        )


def test_the_same_list_confirmed_again_after_the_repeat_window_is_a_new_confirm(
    start, make_project, sent
):
    project = make_project()
    first = start(["+14155550100"], project=project)
    ImportJob.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - importing.REPEAT_CONFIRM_WINDOW - timedelta(seconds=1)
    )

    # Not taken for a double click: read again, and nothing in it is new.
    with pytest.raises(importing.ImportRefused, match="Nothing to import"):
        start(["+14155550100"], project=project)


def test_a_second_list_imports_only_the_numbers_not_already_live(start, make_project, sent):
    project = make_project()
    start(["+14155550100"], project=project)

    job = start(["+14155550100", "+14155550101"], project=project)

    assert list(job.numbers.values_list("number", flat=True)) == ["+14155550101"]


def test_a_list_with_nothing_new_is_refused(start, make_project, sent):
    project = make_project()
    start(["+14155550100"], project=project)

    with pytest.raises(importing.ImportRefused) as refused:
        start(["+14155550100", "not a number"], project=project)

    assert str(refused.value) == (
        "Nothing to import: every line is either not a number or already in the project."
    )


def test_a_project_without_a_token_or_deactivated_cannot_start(start, make_project, sent):
    with pytest.raises(importing.ImportRefused) as no_token:
        start(["+14155550100"], project=make_project(token=None))
    with pytest.raises(importing.ImportRefused) as deactivated:
        start(
            ["+14155550100"], project=make_project(is_active=False, space_host="b.signalwire.com")
        )

    assert str(no_token.value) == (
        "This project has no API token: ask an admin to add one on the project page."
    )
    assert str(deactivated.value) == (
        "This project is deactivated: an admin must reactivate it before importing."
    )
    assert not ImportJob.objects.exists()


def test_preview_names_duplicates_and_numbers_already_in_the_project(start, make_project, sent):
    project = make_project()
    job = start(["+14155550100"], project=project)
    lines = read_pasted("+1 415 555 0100\n(415) 555-0101\n415.555.0101\nhello")

    rows = {row.line_number: row for row in importing.preview(project, lines, "longcode", ALL).rows}

    assert rows[1].problem == f"Already being imported into this project (job {job.pk})"
    assert rows[2].is_importable and rows[2].e164 == "+14155550101"
    assert rows[3].problem == "Duplicate of line 2"
    assert rows[4].problem == "Not a phone number"


def test_preview_lists_rejected_lines_first(make_project):
    lines = read_pasted("+14155550100\nhello\n+14155550101\n123")

    rows = importing.preview(make_project(), lines, "longcode", ALL).rows

    assert [row.line_number for row in rows] == [2, 4, 1, 3]


def test_a_searched_number_is_read_in_every_default_country_in_use(make_project):
    make_project(default_country="US")
    make_project(name="Acme UK", default_country="GB", space_host="uk.signalwire.com")

    readings = importing.read_in_every_default_country("2079460018")

    assert readings == {
        "+12079460018": "Assumed United States, the project's default country",
        "+442079460018": "Assumed United Kingdom, the project's default country",
    }


def test_a_searched_number_with_two_readings_in_a_default_country_is_looked_for_as_both(
    make_project,
):
    make_project(default_country="AU")

    readings = importing.read_in_every_default_country("0016497121234")

    assert set(readings) == {"+497121234", "+16497121234"}


def test_preview_lists_lines_to_choose_first_then_rejected_then_retyped_then_the_rest(
    make_project,
):
    lines = read_pasted("+14155550100\n+18005550100\nhello\n+14155550101\n0016497121234")

    rows = importing.preview(make_project(default_country="AU"), lines, "longcode", ALL).rows

    assert [row.line_number for row in rows] == [5, 3, 2, 1, 4]


def test_with_no_project_yet_a_searched_number_is_read_as_in_the_us():
    assert importing.read_in_every_default_country("415 555 0100") == {
        "+14155550100": "Assumed United States, the project's default country"
    }


# Importing one number


def test_a_number_is_imported_and_signalwires_answer_kept(start, sent):
    row = only_row(start(["+14155550100"], capabilities=["sms", "voice"]))
    fake = FakeSignalWire()

    importing.import_number(row, client=fake)

    row = reload(row)
    assert row.status == ImportStatus.IMPORTED
    assert row.sid == fake.numbers["+14155550100"].sid
    assert row.friendly_name == "friendly +14155550100"
    assert row.response["phone_number"] == "+14155550100"
    assert row.attempts == 1 and row.imported_at is not None
    assert fake.calls == [("import_number", "+14155550100", "longcode", ["sms", "voice"])]
    assert [attempt.outcome for attempt in row.attempt_log.all()] == ["imported"]


def test_a_task_costs_a_dozen_queries_including_queueing_the_next_number(
    start, sent, monkeypatch, django_assert_max_num_queries
):
    # Every query is a database round trip on a worker's busiest path (issue 8's benchmark):
    # load, claim, send slot, result and attempt (in a transaction), whether the job ended
    # (notifications.notify_if_ended), refill the job's window.
    job = start(["+14155550100", "+14155550101"])
    fake = FakeSignalWire()
    monkeypatch.setattr(importing, "client_for", lambda project: fake)
    first = job.numbers.order_by("pk").first()

    with django_assert_max_num_queries(13):
        import_phone_number(first.pk)

    assert reload(first).status == ImportStatus.IMPORTED


def test_a_task_loads_its_row_job_and_project_as_the_orm_would(start, sent):
    # The task loads them in SQL of its own (the ORM cost too much CPU per number): every
    # field of all three must come back as select_related brings it, converted alike.
    job = start(["+14155550100"], capabilities=["sms", "voice"])
    row = only_row(job)
    importing.import_number(row, client=FakeSignalWire())  # a response, a sid, dates
    ImportJob.objects.filter(pk=job.pk).update(paused_at=timezone.now(), pause_reason="Held")

    loaded = tasks._number_import_with_job_and_project(row.pk)
    expected = reload(row)

    for got, wanted in [
        (loaded, expected),
        (loaded.job, expected.job),
        (loaded.project, expected.project),
    ]:
        fields = type(wanted)._meta.concrete_fields
        assert [getattr(got, field.attname) for field in fields] == [
            getattr(wanted, field.attname) for field in fields
        ]
        assert not got._state.adding
    assert isinstance(loaded.response, dict) and loaded.capabilities == ["sms", "voice"]
    assert tasks._number_import_with_job_and_project(row.pk + 1000) is None


def rows_read(sql: str) -> int:
    """How many number import rows PostgreSQL reads to answer `sql`, by EXPLAIN ANALYZE."""

    def read(node: dict) -> int:
        own = 0
        if node.get("Relation Name") == "phone_numbers_numberimport":
            own = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        return own + sum(read(child) for child in node.get("Plans", []))

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        return read(cursor.fetchone()[0][0]["Plan"])


@pytest.mark.postgresql_only(
    reason="counts the rows PostgreSQL's query plans read (EXPLAIN ANALYZE)"
)
def test_queueing_the_next_numbers_reads_the_window_not_the_job_or_the_table(
    start, sent, make_project, settings
):
    # A history of finished numbers before the job, and a job far longer than its window:
    # what queue_pending reads must not grow with either (it runs once per number).
    settings.PORTAL_APPROVAL_THRESHOLD = 0  # a job this large would wait for an approval
    older = start([f"+1415555{index:04d}" for index in range(8)], project=make_project())
    NumberImport.objects.bulk_create(
        NumberImport(
            job=older, project=older.project, number=f"+1212{index:07d}", status="imported"
        )
        for index in range(3000)
    )
    job = start([f"+1646555{index:04d}" for index in range(2000)])
    done = job.numbers.filter(queued_at__isnull=False).order_by("pk")[:1]
    NumberImport.objects.filter(pk__in=done).update(status=ImportStatus.IMPORTED)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE phone_numbers_numberimport")

    with CaptureQueriesContext(connection) as queries:
        assert importing.queue_pending(job) == 1
    selects = [query["sql"] for query in queries if query["sql"].startswith("SELECT")]

    assert len(selects) == 3  # lock the job, how many are in flight, and which are next
    assert max(rows_read(sql) for sql in selects) <= 20  # the window is 16


def test_importing_twice_is_one_row_and_one_api_call(start, sent):
    row = only_row(start(["+14155550100"]))
    fake = FakeSignalWire()

    importing.import_number(row, client=fake)
    importing.import_number(reload(row), client=fake)
    importing.import_number(row, client=fake)  # a stale copy of the row, as a redelivery has

    assert fake.posted == ["+14155550100"]
    assert NumberImport.objects.count() == 1


def test_of_two_tasks_claiming_one_row_only_one_wins(start, sent):
    row = only_row(start(["+14155550100"]))

    assert [reload(row).claim(), reload(row).claim()] == [True, False]


def test_a_copy_read_before_the_row_changed_does_not_claim_it(start, sent):
    row = only_row(start(["+14155550100"]))
    stale = reload(row)
    first = reload(row)
    assert first.claim()
    # The post timed out: back to pending, due at once, to be looked up before posting again.
    first.schedule_retry(0, FailureCategory.NETWORK, "timed out", "", None, needs_lookup=True)

    assert not stale.claim()
    fresh = reload(row)
    assert fresh.claim()
    assert (fresh.needs_lookup, fresh.attempts, fresh.attempts_this_round) == (True, 2, 2)


def test_after_an_attempt_the_row_in_hand_is_what_the_database_holds(start, sent):
    row = only_row(start(["+14155550100"]))
    rejection = RequestRejected("Number type is invalid", status=422, code="10000")

    importing.import_number(row, client=FakeSignalWire(import_errors=[rejection]))

    fields = [field.attname for field in NumberImport._meta.concrete_fields]
    in_hand = {name: getattr(row, name) for name in fields}
    assert in_hand == {name: getattr(reload(row), name) for name in fields}


def test_after_a_claim_the_row_in_hand_is_what_the_database_holds(start, sent):
    row = only_row(start(["+14155550100"]))

    assert row.claim()

    fields = [field.attname for field in NumberImport._meta.concrete_fields]
    in_hand = {name: getattr(row, name) for name in fields}
    assert in_hand == {name: getattr(reload(row), name) for name in fields}
    assert in_hand["status"] == ImportStatus.SUBMITTING


def test_a_claim_moves_only_its_row_even_among_rows_one_retry_stamped_alike(start, sent):
    job = start(["+14155550100", "+14155550101", "+14155550102"])
    job.numbers.update(status=ImportStatus.FAILED, failure_category=FailureCategory.UPSTREAM)
    assert importing.retry_failed(job) == 3
    rows = list(job.numbers.select_related("job", "project").order_by("pk"))
    assert len({row.updated_at for row in rows}) == 1  # one UPDATE restarted them all

    assert rows[0].claim()

    statuses = list(job.numbers.order_by("pk").values_list("status", flat=True))
    assert statuses == ["submitting", "pending", "pending"]


def test_a_number_is_not_claimed_once_its_project_is_deactivated_whatever_other_projects_are(
    start, make_project, sent
):
    row = only_row(start(["+14155550100"]))
    make_project(name="Old customer", space_host="old.signalwire.com", is_active=False)
    # Deactivated after the task read the row: the claim itself must see it.
    Project.objects.filter(pk=row.project_id).update(is_active=False)

    assert not row.claim()

    Project.objects.filter(pk=row.project_id).update(is_active=True)
    assert reload(row).claim()


def test_422_fails_as_rejected_input_without_retry(start, sent):
    row = only_row(start(["+14155550100"]))
    rejection = RequestRejected("Number type is invalid", status=422, code="10000")

    importing.import_number(row, client=FakeSignalWire(import_errors=[rejection]))

    row = reload(row)
    assert (row.status, row.failure_category) == (
        ImportStatus.FAILED,
        FailureCategory.INVALID_INPUT,
    )
    assert (row.error_code, row.error_message, row.http_status) == (
        "10000",
        "Number type is invalid",
        422,
    )
    assert sent == [(row.pk, None)]  # only the first queueing: no retry


def test_a_number_already_in_the_project_fails_as_duplicate(start, sent):
    row = only_row(start(["+14155550100"]))
    taken = RequestRejected("Number has already been taken", status=422, is_duplicate=True)

    importing.import_number(row, client=FakeSignalWire(import_errors=[taken]))

    row = reload(row)
    assert (row.status, row.failure_category) == (ImportStatus.FAILED, FailureCategory.DUPLICATE)
    assert (row.error_code, row.error_message, row.http_status) == (
        "",
        "Number has already been taken",
        422,
    )


def test_401_fails_the_number_and_pauses_the_job_so_nothing_more_is_sent(start, sent):
    job = start(["+14155550100", "+14155550101"])
    first, second = job.numbers.select_related("job", "project").order_by("pk")
    fake = FakeSignalWire(import_errors=[CredentialsRejected("Authentication failed", status=401)])

    importing.import_number(first, client=fake)
    importing.import_number(second, client=fake)

    job.refresh_from_db()
    assert reload(first).failure_category == FailureCategory.AUTH
    assert reload(second).status == ImportStatus.PENDING
    assert job.is_paused and "token" in job.pause_reason
    assert fake.posted == ["+14155550100"]
    assert job.status_for(job.counts()) == JobStatus.PAUSED


def test_a_refused_token_is_recorded_as_signalwire_answered_and_the_pause_logged(
    start, sent, caplog
):
    row = only_row(start(["+14155550100"]))
    refused = CredentialsRejected("Authentication failed", status=401)

    importing.import_number(row, client=FakeSignalWire(import_errors=[refused]))

    row = reload(row)
    assert (row.error_message, row.error_code, row.http_status) == (
        "Authentication failed",
        "",
        401,
    )
    assert row.job.pause_reason == "SignalWire refused the project's API token."
    [record] = [record for record in caplog.records if record.name == importing.__name__]
    assert (record.levelname, record.getMessage()) == (
        "WARNING",
        f"Paused job {row.job_id} of project {row.project_id}: "
        "SignalWire refused the project's API token.",
    )


def test_a_token_that_cannot_be_decrypted_fails_the_number_and_pauses_the_job(
    start, sent, settings
):
    row = only_row(start(["+14155550100"]))
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the token's key is gone

    importing.import_number(reload(row))

    row = reload(row)
    assert (row.status, row.failure_category) == (ImportStatus.FAILED, FailureCategory.AUTH)
    assert row.error_message == (
        "A stored token cannot be decrypted with PORTAL_ENCRYPTION_KEYS: "
        "was the key it was encrypted with removed?"
    )
    assert (row.error_code, row.http_status) == ("", None)
    # SignalWire was never asked, so the job does not say it refused the token.
    assert row.job.pause_reason == row.error_message


def test_a_project_whose_token_was_removed_pauses_the_job_saying_why(start, make_project, sent):
    project = make_project()
    row = only_row(start(["+14155550100"], project=project))
    project.credentials.update(revoked_at=timezone.now(), token=None)

    importing.import_number(row)

    row = reload(row)
    assert (row.status, row.attempts, row.queued_at) == (ImportStatus.PENDING, 0, None)
    assert row.job.is_paused and "no API token" in row.job.pause_reason


def test_429_waits_as_long_as_signalwire_asks(start, sent):
    row = only_row(start(["+14155550100"]))
    limited = SignalWireUnavailable(
        "Too Many Requests", status=429, retry_after=7, may_have_reached_signalwire=False
    )
    before = timezone.now()

    importing.import_number(row, client=FakeSignalWire(import_errors=[limited]))

    row = reload(row)
    assert row.status == ImportStatus.PENDING
    assert row.failure_category == FailureCategory.RATE_LIMITED
    assert not row.needs_lookup
    assert timedelta(seconds=6.9) < row.next_attempt_at - before < timedelta(seconds=8)
    assert sent[-1] == (row.pk, 7)
    assert row.attempts_this_round == 0  # waiting as asked is not a failed attempt
    assert "sending resumes at" in row.error_message
    assert row.failure_advice == "Nothing to do: it is tried again by itself."


def test_a_429_without_retry_after_backs_off_and_shows_signalwires_answer(start, sent, settings):
    settings.PORTAL_RETRY_BASE_SECONDS = 2
    row = only_row(start(["+14155550100"]))
    limited = SignalWireUnavailable(
        "Too Many Requests", status=429, may_have_reached_signalwire=False
    )
    before = timezone.now()

    importing.import_number(row, client=FakeSignalWire(import_errors=[limited]))

    row = reload(row)
    assert (row.status, row.failure_category, row.attempts_this_round) == (
        ImportStatus.PENDING,
        FailureCategory.RATE_LIMITED,
        0,
    )
    assert (row.error_code, row.http_status) == ("", 429)
    assert row.error_message.startswith("Too Many Requests: SignalWire asked us to wait")
    # The first backoff: between half and all of PORTAL_RETRY_BASE_SECONDS.
    assert before + timedelta(seconds=1) <= row.next_attempt_at
    assert row.next_attempt_at <= timezone.now() + timedelta(seconds=2)


def test_a_timeout_makes_the_next_attempt_look_the_number_up_instead_of_posting(start, sent):
    row = only_row(start(["+14155550100"]))
    timeout = SignalWireUnavailable("did not answer in time", may_have_reached_signalwire=True)
    fake = FakeSignalWire(import_errors=[timeout])
    importing.import_number(row, client=fake)
    row = reload(row)
    assert (row.status, row.needs_lookup, row.failure_category) == (
        ImportStatus.PENDING,
        True,
        FailureCategory.NETWORK,
    )
    # The timed-out request did create the number.
    fake.numbers["+14155550100"] = incoming_number("+14155550100")
    row.next_attempt_at = None
    row.save()

    importing.import_number(reload(row), client=fake)

    row = reload(row)
    assert row.status == ImportStatus.IMPORTED
    assert fake.posted == ["+14155550100"]
    assert fake.calls[-1] == ("find_number", "+14155550100")


def test_after_a_lookup_that_finds_nothing_the_number_is_posted(start, sent):
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(needs_lookup=True)
    fake = FakeSignalWire()

    importing.import_number(reload(row), client=fake)

    assert [call[0] for call in fake.calls] == ["find_number", "import_number"]
    assert reload(row).status == ImportStatus.IMPORTED
    assert not reload(row).needs_lookup


def test_a_number_found_by_the_lookup_is_recorded_with_signalwires_answer(start, sent, settings):
    settings.PORTAL_ATTEMPT_SECONDS = 7
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(needs_lookup=True)
    deadlines = []

    class RecordingFake(FakeSignalWire):
        def find_number(self, number, deadline=None, pace=None):
            deadlines.append(deadline - time.monotonic())
            return super().find_number(number, pace=pace)

    fake = RecordingFake(existing=["+14155550100"])
    importing.import_number(reload(row), client=fake)

    row = reload(row)
    found = fake.numbers["+14155550100"]
    assert (row.status, row.sid, row.friendly_name) == (
        ImportStatus.IMPORTED,
        found.sid,
        "friendly +14155550100",
    )
    assert row.response == found.raw
    assert [attempt.outcome for attempt in row.attempt_log.all()] == ["found on SignalWire"]
    assert 6 < deadlines[0] <= 7  # the lookup keeps the attempt's deadline


@pytest.mark.parametrize("needs_lookup", [True, False], ids=["found", "posted"])
def test_a_number_signalwire_gives_no_friendly_name_is_recorded_with_a_blank_one(
    start, sent, needs_lookup
):
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(needs_lookup=needs_lookup)
    unnamed = IncomingPhoneNumber.from_json(number_body("+14155550100", friendly_name=None))

    class Unnamed(FakeSignalWire):
        def import_number(self, *args, **kwargs):
            super().import_number(*args, **kwargs)
            return unnamed

    fake = Unnamed()
    if needs_lookup:
        fake.numbers["+14155550100"] = unnamed
    importing.import_number(reload(row), client=fake)

    row = reload(row)
    assert (row.status, row.sid, row.friendly_name) == (ImportStatus.IMPORTED, unnamed.sid, "")


def test_a_rejection_after_a_lookup_that_found_nothing_fails_as_rejected_input(start, sent):
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(needs_lookup=True)
    rejection = RequestRejected("Number type is invalid", status=422, code="10000")

    importing.import_number(reload(row), client=FakeSignalWire(import_errors=[rejection]))

    row = reload(row)
    assert (row.status, row.failure_category, row.needs_lookup) == (
        ImportStatus.FAILED,
        FailureCategory.INVALID_INPUT,
        False,
    )


def test_a_failed_connection_needs_no_lookup_and_5xx_backs_off(start, sent):
    job = start(["+14155550100", "+14155550101"])
    first, second = job.numbers.select_related("job", "project").order_by("pk")
    refused = SignalWireUnavailable("could not connect", may_have_reached_signalwire=False)
    broken = SignalWireUnavailable("Internal error", status=500, may_have_reached_signalwire=True)

    importing.import_number(first, client=FakeSignalWire(import_errors=[refused]))
    importing.import_number(second, client=FakeSignalWire(import_errors=[broken]))

    assert (reload(first).failure_category, reload(first).needs_lookup) == ("network", False)
    assert (reload(second).failure_category, reload(second).needs_lookup) == ("upstream", True)
    assert reload(second).status == ImportStatus.PENDING


@pytest.mark.parametrize("code", [None, "50301"])
def test_a_5xx_is_retried_when_signalwire_asks_and_the_row_shows_its_answer(start, sent, code):
    row = only_row(start(["+14155550100"]))
    busy = SignalWireUnavailable(
        "Service Unavailable",
        status=503,
        code=code,
        retry_after=30,
        may_have_reached_signalwire=False,
    )
    before = timezone.now()

    importing.import_number(row, client=FakeSignalWire(import_errors=[busy]))

    row = reload(row)
    assert (row.status, row.failure_category, row.needs_lookup) == (
        ImportStatus.PENDING,
        FailureCategory.UPSTREAM,
        False,
    )
    assert (row.error_message, row.error_code, row.http_status) == (
        "Service Unavailable",
        code or "",
        503,
    )
    assert before + timedelta(seconds=30) <= row.next_attempt_at
    assert row.next_attempt_at <= timezone.now() + timedelta(seconds=30)
    assert sent[-1] == (row.pk, 30)


@pytest.mark.parametrize(
    "error",
    [
        SignalWireUnavailable("could not connect", may_have_reached_signalwire=False),
        SignalWireUnavailable("Service Unavailable", status=503, may_have_reached_signalwire=False),
    ],
    ids=["connect-error", "503"],
)
def test_a_lookup_that_failed_is_made_again_before_the_number_is_posted(start, sent, error):
    # An earlier POST timed out after creating the number; the lookup meant to find it fails
    # with an error that by itself says nothing reached SignalWire.
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(needs_lookup=True)
    fake = FakeSignalWire(find_errors=[error], existing=["+14155550100"])
    importing.import_number(reload(row), client=fake)
    assert (reload(row).status, reload(row).needs_lookup) == (ImportStatus.PENDING, True)
    NumberImport.objects.filter(pk=row.pk).update(next_attempt_at=None)

    importing.import_number(reload(row), client=fake)

    assert [call[0] for call in fake.calls] == ["find_number", "find_number"]
    assert reload(row).status == ImportStatus.IMPORTED
    assert fake.posted == []


def test_after_the_last_attempt_the_number_fails(start, sent, settings):
    settings.PORTAL_MAX_ATTEMPTS = 2
    row = only_row(start(["+14155550100"]))
    errors = [SignalWireUnavailable("Internal error", status=500) for _ in range(3)]
    fake = FakeSignalWire(import_errors=errors)

    for _ in range(2):
        NumberImport.objects.filter(pk=row.pk).update(next_attempt_at=None)
        importing.import_number(reload(row), client=fake)

    row = reload(row)
    assert (row.status, row.attempts, row.failure_category) == ("failed", 2, "upstream")
    assert row.error_message == (
        "Internal error (it may have been imported: a retry checks SignalWire first)"
    )
    assert row.http_status == 500
    assert row.attempt_log.count() == 2


def test_a_number_not_yet_due_or_of_a_paused_job_is_not_claimed(start, sent):
    job = start(["+14155550100", "+14155550101"])
    first, second = job.numbers.select_related("job", "project").order_by("pk")
    NumberImport.objects.filter(pk=first.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=1)
    )
    fake = FakeSignalWire()

    importing.import_number(reload(first), client=fake)
    job.pause("Paused by an admin.")
    importing.import_number(reload(second), client=fake)

    assert fake.calls == []


def test_a_busy_space_hands_the_number_back_without_counting_an_attempt(start, sent, settings):
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 1
    job = start(["+14155550100", "+14155550101", "+14155550102", "+14155550103"])
    rows = list(job.numbers.select_related("job", "project").order_by("pk"))
    fake = FakeSignalWire()
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 1_000_000
    for _ in range(4):  # book the Space's next few seconds at one request a second
        book_send_slot(rows[0].project.space_host, 1, max_wait=10)
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 1

    importing.import_number(rows[3], client=fake)

    row = reload(rows[3])
    assert (row.status, row.attempts, fake.calls) == (ImportStatus.PENDING, 0, [])
    assert row.next_attempt_at > timezone.now() + timedelta(seconds=2)


def test_a_number_handed_back_by_a_busy_space_gets_a_task_due_when_it_is(start, sent, settings):
    # Without a task of its own the number would wait for recovery, minutes later.
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 1
    row = only_row(start(["+14155550100"]))
    for _ in range(4):  # the Space's next 4 s are booked
        book_send_slot(row.project.space_host, 1, max_wait=10)
    sent.clear()

    importing.import_number(row, client=FakeSignalWire())

    row = reload(row)
    [(pk, countdown)] = sent
    assert pk == row.pk and countdown > 2
    due_in = (row.next_attempt_at - timezone.now()).total_seconds()
    assert countdown == pytest.approx(due_in, abs=0.5)  # a task sooner would find it not due


# What people do


def test_retry_failed_restarts_only_what_a_retry_can_mend(start, sent):
    job = start(["+14155550100", "+14155550101"])
    first, second = job.numbers.order_by("pk")
    NumberImport.objects.filter(pk=first.pk).update(
        status="failed", failure_category="upstream", attempts_this_round=6
    )
    NumberImport.objects.filter(pk=second.pk).update(
        status="failed", failure_category="invalid_input"
    )

    assert importing.retry_failed(job) == 1
    assert (reload(first).status, reload(first).attempts_this_round) == ("pending", 0)
    assert reload(first).failure_category == "upstream"  # the last error stays visible
    assert reload(second).status == "failed"


def test_edit_and_retry_corrects_the_number_type(start, sent):
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(status="failed", failure_category="invalid_input")

    assert importing.retry_number(row, "tollfree", ["sms"])

    row = reload(row)
    assert (row.status, row.number_type, row.capabilities) == ("pending", "tollfree", ["sms"])


def test_edit_and_retry_changes_only_the_number_retried(start, sent):
    job = start(["+14155550100", "+14155550101"])
    first, second = job.numbers.select_related("job", "project").order_by("pk")
    NumberImport.objects.filter(job=job).update(status="failed", failure_category="invalid_input")

    assert importing.retry_number(first, "tollfree", ["sms"])

    second = reload(second)
    assert (second.status, second.number_type, second.capabilities) == ("failed", "longcode", ALL)


def test_a_failed_number_live_in_another_job_is_not_restarted(start, make_project, sent):
    project = make_project()
    row = only_row(start(["+14155550100"], project=project))
    NumberImport.objects.filter(pk=row.pk).update(status="failed", failure_category="network")
    start(["+14155550100"], project=project, number_type="tollfree")

    assert importing.retry_number(row, "longcode", ALL) is False
    assert reload(row).status == "failed"


def test_retry_failed_restarts_the_others_when_one_went_live_in_another_job(
    start, make_project, sent
):
    project = make_project()
    job = start(["+14155550100", "+14155550101", "+14155550102"], project=project)
    NumberImport.objects.filter(job=job).update(status="failed", failure_category="network")
    start(["+14155550101"], project=project, number_type="tollfree")

    assert importing.retry_failed(job) == 2
    statuses = job.numbers.order_by("pk").values_list("status", flat=True)
    assert list(statuses) == ["pending", "failed", "pending"]


@pytest.mark.parametrize("became", [ImportStatus.IMPORTED, ImportStatus.SUBMITTING])
def test_edit_and_retry_from_a_stale_page_leaves_a_number_no_longer_failed_alone(
    start, sent, django_capture_on_commit_callbacks, became
):
    # The page showed the number failed; meanwhile "retry failed" sent it again, and it was
    # imported or is being sent right now. Restarting it would post it a second time.
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(status="failed", failure_category="network")
    on_the_page = reload(row)
    importing.retry_failed(row.job)
    if became == ImportStatus.IMPORTED:
        importing.import_number(reload(row), client=FakeSignalWire())
    else:
        assert reload(row).claim()
    before = reload(row)
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert importing.retry_number(on_the_page, "tollfree", ["sms"]) is False

    row = reload(row)
    assert (row.status, row.number_type, row.claimed_at) == (became, "longcode", before.claimed_at)
    assert sent == []


def test_retry_failed_leaves_numbers_waiting_as_asked_or_being_sent_alone(
    start, sent, django_capture_on_commit_callbacks
):
    job = start(["+14155550100", "+14155550101", "+14155550102"])
    failed, waiting, sending = job.numbers.select_related("job", "project").order_by("pk")
    NumberImport.objects.filter(pk=failed.pk).update(status="failed", failure_category="network")
    limited = SignalWireUnavailable("Too Many Requests", status=429, retry_after=60)
    importing.import_number(waiting, client=FakeSignalWire(import_errors=[limited]))
    # A retried number keeps its last error on the row while its next attempt is out.
    NumberImport.objects.filter(pk=sending.pk).update(failure_category="upstream")
    assert reload(sending).claim()
    untouched = ["status", "next_attempt_at", "queued_at", "claimed_at", "attempts_this_round"]
    before = list(job.numbers.exclude(pk=failed.pk).order_by("pk").values(*untouched))
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert importing.retry_failed(job) == 1

    assert reload(failed).status == ImportStatus.PENDING
    assert list(job.numbers.exclude(pk=failed.pk).order_by("pk").values(*untouched)) == before
    assert sent == [(failed.pk, None)]


def test_cancel_stops_what_was_not_sent(start, sent):
    job = start(["+14155550100", "+14155550101"])
    first, _ = job.numbers.select_related("job", "project").order_by("pk")
    importing.import_number(first, client=FakeSignalWire())

    assert importing.cancel_pending(job) == 1
    job.refresh_from_db()
    counts = job.counts()
    assert (counts["imported"], counts["cancelled"]) == (1, 1)
    assert job.status_for(counts) == JobStatus.PARTIAL


def test_cancel_clears_the_next_try_of_a_number_waiting_to_be_retried(start, sent):
    row = only_row(start(["+14155550100"]))
    an_hour_ago = timezone.now() - timedelta(hours=1)
    NumberImport.objects.filter(pk=row.pk).update(
        failure_category="upstream",
        next_attempt_at=timezone.now() + timedelta(minutes=5),
        updated_at=an_hour_ago,
    )

    assert importing.cancel_pending(row.job) == 1

    row = reload(row)
    assert (row.status, row.next_attempt_at) == (ImportStatus.CANCELLED, None)
    assert row.updated_at > an_hour_ago


def test_a_cancelled_job_refuses_retries_saying_why_and_other_jobs_still_retry(
    start, make_project, sent
):
    project = make_project()
    cancelled = only_row(start(["+14155550100"], project=project))
    other = only_row(start(["+14155550101"], project=project))
    NumberImport.objects.filter(pk__in=[cancelled.pk, other.pk]).update(
        status="failed", failure_category="network"
    )
    importing.cancel_pending(cancelled.job)

    with pytest.raises(importing.ImportRefused) as refused_all:
        importing.retry_failed(cancelled.job)
    with pytest.raises(importing.ImportRefused) as refused_one:
        importing.retry_number(reload(cancelled), "longcode", ALL)

    refusal = "This job was cancelled: import its numbers again in a new job."
    assert str(refused_all.value) == str(refused_one.value) == refusal
    assert reload(cancelled).status == ImportStatus.FAILED
    assert importing.retry_failed(other.job) == 1


def test_a_lookup_that_finds_nothing_cancels_the_number_only_in_a_cancelled_job(
    start, make_project, sent
):
    project = make_project()
    cancelled = only_row(start(["+14155550100"], project=project))
    running = only_row(start(["+14155550101"], project=project))
    NumberImport.objects.filter(pk__in=[cancelled.pk, running.pk]).update(needs_lookup=True)
    importing.cancel_pending(cancelled.job)
    fake = FakeSignalWire()

    importing.import_number(reload(cancelled), client=fake)
    importing.import_number(reload(running), client=fake)

    assert reload(cancelled).status == ImportStatus.CANCELLED
    outcomes = [attempt.outcome for attempt in reload(cancelled).attempt_log.all()]
    assert outcomes == ["not on SignalWire: cancelled"]
    assert reload(running).status == ImportStatus.IMPORTED
    assert fake.posted == ["+14155550101"]


def test_resume_puts_numbers_stopped_by_the_token_back_in_the_queue(start, sent):
    job = start(["+14155550100"])
    row = only_row(job)
    refused = CredentialsRejected("Authentication failed", status=401)
    importing.import_number(row, client=FakeSignalWire(import_errors=[refused]))
    sent.clear()

    importing.resume(reload(row).job)

    assert reload(row).status == ImportStatus.PENDING
    assert not reload(row).job.is_paused


def test_resume_clears_the_pause_and_its_reason(start, sent):
    job = start(["+14155550100"])
    job.pause("Paused by an admin.")

    importing.resume(job)

    job.refresh_from_db()
    assert (job.paused_at, job.pause_reason) == (None, "")


def test_a_job_paused_by_a_refused_token_queues_no_more_numbers_until_it_is_resumed(
    start, sent, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.PORTAL_JOB_CONCURRENCY = 2
    job = start(["+14155550100", "+14155550101", "+14155550102", "+14155550103"])
    first, second, third, fourth = job.numbers.order_by("pk")
    refused = CredentialsRejected("Authentication failed", status=401)
    monkeypatch.setattr(
        importing, "client_for", lambda project: FakeSignalWire(import_errors=[refused])
    )
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        import_phone_number(first.pk)  # pauses the job, then refills its window

    assert sent == []
    assert reload(third).queued_at is None and reload(fourth).queued_at is None
    with django_capture_on_commit_callbacks(execute=True):
        importing.resume(job)
    assert sent == [(first.pk, None), (second.pk, None)]


def test_a_paused_job_queues_nothing_while_another_job_may(start, sent, settings):
    settings.PORTAL_JOB_CONCURRENCY = 1
    paused = start(["+14155550100", "+14155550101"])
    other = start(["+12125550100", "+12125550101"])
    ImportJob.objects.filter(pk=paused.pk).update(paused_at=timezone.now())
    NumberImport.objects.update(queued_at=None)
    sent.clear()

    assert importing.queue_pending(paused) == 0
    assert importing.queue_pending(other) == 1
    assert not paused.numbers.filter(queued_at__isnull=False).exists()


# Recovery


def test_a_number_stuck_submitting_goes_back_to_pending_and_is_looked_up_first(start, sent):
    row = only_row(start(["+14155550100"]))
    assert reload(row).claim()
    NumberImport.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - timedelta(hours=1))

    assert importing.recover_stuck_imports() == 1

    row = reload(row)
    assert (row.status, row.needs_lookup) == (ImportStatus.PENDING, True)


def test_a_lost_message_is_sent_again(start, sent, django_capture_on_commit_callbacks):
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert importing.recover_stuck_imports() == 1

    assert sent == [(row.pk, None)]


def test_recovery_leaves_numbers_being_sent_just_queued_or_imported_alone(
    start, sent, django_capture_on_commit_callbacks
):
    job = start(["+14155550100", "+14155550101", "+14155550102"])
    sending, queued, imported = job.numbers.select_related("job", "project").order_by("pk")
    assert sending.claim()
    importing.import_number(imported, client=FakeSignalWire())
    NumberImport.objects.filter(pk=imported.pk).update(
        queued_at=timezone.now() - timedelta(hours=1)
    )
    before = list(job.numbers.order_by("pk").values())
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert importing.recover_stuck_imports() == 0

    assert list(job.numbers.order_by("pk").values()) == before
    assert sent == []


def test_recovery_resets_stuck_and_lost_numbers_field_by_field_and_logs_how_many(
    start, sent, settings, django_capture_on_commit_callbacks, caplog
):
    settings.PORTAL_MAX_ATTEMPTS = 3
    job = start(["+14155550100", "+14155550101", "+14155550102"])
    exhausted, stuck, lost = job.numbers.order_by("pk")
    an_hour_ago = timezone.now() - timedelta(hours=1)
    NumberImport.objects.filter(pk__in=[exhausted.pk, stuck.pk]).update(
        status=ImportStatus.SUBMITTING,
        claimed_at=an_hour_ago,
        next_attempt_at=an_hour_ago,
        error_message="Service Unavailable",
    )
    NumberImport.objects.filter(pk=exhausted.pk).update(attempts=3, attempts_this_round=3)
    NumberImport.objects.filter(job=job).update(queued_at=an_hour_ago, updated_at=an_hour_ago)
    sent.clear()
    recovering = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        assert importing.recover_stuck_imports() == 3

    fields = ["status", "failure_category", "needs_lookup", "next_attempt_at", "error_message"]
    rows = {row["pk"]: row for row in job.numbers.values("pk", "queued_at", "updated_at", *fields)}
    assert [rows[pk][name] for pk in (exhausted.pk, stuck.pk, lost.pk) for name in fields] == [
        *["failed", "internal", True, None],
        "The worker stopped every time it sent this number (it may have been imported: a "
        "retry checks SignalWire first).",
        *["pending", "", True, None],
        "The worker stopped while sending this number; it is checked and retried.",
        *["pending", "", False, None, ""],
    ]
    assert rows[exhausted.pk]["queued_at"] is None
    assert sent == [(stuck.pk, None), (lost.pk, None)]
    assert all(row["updated_at"] >= recovering for row in rows.values())
    [record] = [record for record in caplog.records if record.name == importing.__name__]
    assert record.getMessage() == "Recovered 3 stuck or lost number imports"


# Policies


def test_retry_delay_honours_retry_after_even_above_the_maximum_backoff(settings):
    settings.PORTAL_RETRY_MAX_SECONDS = 60

    assert importing.retry_delay(1, retry_after=3) == 3
    assert importing.retry_delay(1, retry_after=600) == 600


def test_retry_delay_backs_off_exponentially_with_jitter(settings):
    settings.PORTAL_RETRY_BASE_SECONDS = 2
    settings.PORTAL_RETRY_MAX_SECONDS = 300

    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (10, 300)]:
        delays = {importing.retry_delay(attempt, None) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1


def test_retry_delay_jitter_spans_the_upper_half_of_the_backoff(settings, monkeypatch):
    settings.PORTAL_RETRY_BASE_SECONDS = 2
    settings.PORTAL_RETRY_MAX_SECONDS = 300

    monkeypatch.setattr(importing.random, "uniform", lambda low, high: high)
    assert importing.retry_delay(3, None) == 8
    monkeypatch.setattr(importing.random, "uniform", lambda low, high: low)
    assert importing.retry_delay(3, None) == 4


def test_the_lookup_waits_twice_the_read_timeout_or_an_attempts_length_if_longer(settings):
    settings.SIGNALWIRE_TIMEOUT = (3.05, 15.0)

    settings.PORTAL_ATTEMPT_SECONDS = 20
    assert importing.lookup_wait() == 30
    settings.PORTAL_ATTEMPT_SECONDS = 45
    assert importing.lookup_wait() == 45


def test_the_rate_limit_spaces_requests_to_one_space_evenly():
    bookings = [book_send_slot("acme.signalwire.com", 10, max_wait=10) for _ in range(5)]
    other_space = book_send_slot("other.signalwire.com", 10, max_wait=10)

    interval = 1 / (10 * SPACING_MARGIN)
    for index, (is_booked, wait) in enumerate(bookings):
        assert is_booked
        assert wait == pytest.approx(index * interval, abs=0.02)
    assert other_space == (True, pytest.approx(0, abs=0.01))


@pytest.mark.parametrize(
    ("counts", "status"),
    [
        ({"pending": 2}, JobStatus.QUEUED),
        ({"pending": 1, "imported": 1}, JobStatus.RUNNING),
        ({"imported": 2}, JobStatus.COMPLETED),
        ({"imported": 1, "failed": 1}, JobStatus.PARTIAL),
        ({"failed": 2}, JobStatus.FAILED),
        ({"pending": 1, "submitting": 1}, JobStatus.RUNNING),
    ],
)
def test_job_status_follows_its_numbers(counts, status):
    full = dict.fromkeys(ImportStatus.values, 0) | counts
    full["total"] = sum(counts.values())

    assert ImportJob().status_for(full) == status


def test_the_job_list_counts_each_jobs_numbers_by_status(start, make_project, sent):
    job = start(["+14155550100", "+14155550101", "+14155550102"])
    start(["+14155550100"], project=make_project(space_host="other.signalwire.com"))
    imported, failed, _ = job.numbers.order_by("pk")
    NumberImport.objects.filter(pk=imported.pk).update(status=ImportStatus.IMPORTED)
    NumberImport.objects.filter(pk=failed.pk).update(status=ImportStatus.FAILED)

    other = start(["+14155550100"], project=make_project(space_host="third.signalwire.com"))
    NumberImport.objects.filter(job=other).delete()

    listed = ImportJob.counts_of([job.pk, other.pk])

    assert listed[job.pk] == {
        "pending": 1,
        "submitting": 0,
        "imported": 1,
        "failed": 1,
        "cancelled": 0,
        "total": 3,
        "retrying": 0,
    }
    assert listed[other.pk]["total"] == 0


def test_a_huge_job_does_not_hold_back_a_one_number_import(start, make_project, sent, settings):
    settings.PORTAL_JOB_CONCURRENCY = 4
    huge = start([f"+1415555{i:04d}" for i in range(100)])
    other_project = make_project(name="Other", space_host="other.signalwire.com")

    single = start(["+12125550100"], project=other_project)

    queued = [pk for pk, _ in sent]
    assert len(queued) == 5
    assert queued[-1] == only_row(single).pk
    assert huge.numbers.filter(queued_at__isnull=False).count() == 4


def test_each_finished_number_makes_room_for_the_next_of_its_job(
    start, sent, settings, django_capture_on_commit_callbacks
):
    settings.PORTAL_JOB_CONCURRENCY = 2
    job = start(["+14155550100", "+14155550101", "+14155550102"])
    first, second, third = job.numbers.select_related("job", "project").order_by("pk")
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert importing.queue_pending(job) == 0  # the window is full
        importing.import_number(first, client=FakeSignalWire())
        assert importing.queue_pending(job) == 1

    assert sent == [(third.pk, None)]


def test_a_broker_lost_midway_leaves_the_unsent_numbers_to_recovery_and_says_which(
    start, sent, monkeypatch, caplog
):
    other = only_row(start(["+12125550100"]))
    queued = []

    def broker_lost_after_one(args, countdown=None):
        if queued:
            raise ConnectionError("broker gone")
        queued.append(args[0])

    monkeypatch.setattr(import_phone_number, "apply_async", broker_lost_after_one)

    job = start(["+14155550100", "+14155550101", "+14155550102"])

    first, second, third = job.numbers.order_by("pk")
    assert queued == [first.pk]
    assert first.queued_at is not None and (second.queued_at, third.queued_at) == (None, None)
    assert reload(other).queued_at is not None  # another job's task was sent: left alone
    [record] = [record for record in caplog.records if record.name == importing.__name__]
    unsent = [second.pk, third.pk]
    assert record.getMessage() == f"Could not queue number imports {unsent}; recovery will"
    assert isinstance(record.exc_info[1], ConnectionError)


def test_a_broker_lost_midway_unqueues_only_the_numbers_still_pending(start, sent, monkeypatch):
    job = start(["+14155550100", "+14155550101"])
    first, second = job.numbers.order_by("pk")
    # Cancelled between being queued and being sent: not to be taken for one to recover.
    NumberImport.objects.filter(pk=second.pk).update(status=ImportStatus.CANCELLED)

    def broker_lost(args, countdown=None):
        raise ConnectionError("broker gone")

    monkeypatch.setattr(import_phone_number, "apply_async", broker_lost)
    importing._send([first.pk, second.pk])

    assert reload(first).queued_at is None
    assert reload(second).queued_at is not None


# Issue 13: the engine's promises at the edges


@pytest.fixture
def no_sleep(monkeypatch) -> list[float]:
    """Waits for send slots, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(importing.time, "sleep", waits.append)
    return waits


def booked_ahead(space_host: str) -> float:
    """Seconds from now to the Space's next free send slot."""
    return book_send_slot(space_host, 1_000_000, max_wait=0)[1]


def test_a_busy_space_books_only_the_slots_it_sends_in(start, sent, settings, no_sleep):
    # 16 worker threads and a limit of 2 a second: most numbers find the Space booked for
    # the next 2 s and come back later; each slot booked is a request sent.
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 2
    job = start([f"+1415555{index:04d}" for index in range(16)])
    fake = FakeSignalWire()

    started = time.monotonic()
    for row in job.numbers.select_related("job", "project"):
        importing.import_number(row, client=fake)
    elapsed = time.monotonic() - started

    interval = 1 / (2 * SPACING_MARGIN)
    assert booked_ahead(job.project.space_host) <= 2 + interval + 0.1
    # One for each slot within 2 s of the first, and the few the loop's own time freed.
    assert int(2 / interval) + 1 <= len(fake.posted) <= int((2 + elapsed) / interval) + 1
    handed_back = job.numbers.filter(status=ImportStatus.PENDING)
    assert handed_back.count() == 16 - len(fake.posted)
    assert set(handed_back.values_list("attempts", flat=True)) == {0}


def test_the_lookup_before_a_post_books_a_send_slot_of_its_own(start, sent, settings, no_sleep):
    # Lookup and POST are two requests: booking one slot for both would let a Space with
    # numbers to look up get twice its rate.
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 1
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(needs_lookup=True)

    importing.import_number(reload(row), client=FakeSignalWire())

    interval = 1 / SPACING_MARGIN
    assert reload(row).status == ImportStatus.IMPORTED
    # A slot for each request: the first free at once, the second one interval later.
    assert no_sleep == [pytest.approx(0, abs=0.2), pytest.approx(interval, abs=0.2)]
    assert booked_ahead(row.project.space_host) > 1.5 * interval


def test_an_attempt_has_a_deadline_and_the_stuck_threshold_comes_after_it(start, sent, settings):
    settings.PORTAL_ATTEMPT_SECONDS = 7
    row = only_row(start(["+14155550100"]))
    deadlines = []

    class RecordingFake(FakeSignalWire):
        def import_number(self, *args, deadline=None, **kwargs):
            deadlines.append(deadline - time.monotonic())
            return super().import_number(*args, **kwargs)

    importing.import_number(row, client=RecordingFake())

    assert 6 < deadlines[0] <= 7
    from portal import settings as portal_settings

    assert portal_settings.PORTAL_STUCK_SUBMITTING_SECONDS > portal_settings.PORTAL_ATTEMPT_SECONDS


def test_a_late_answer_for_a_number_recovery_took_back_is_recorded(start, sent):
    row = only_row(start(["+14155550100"]))

    class SlowSignalWire(FakeSignalWire):
        def import_number(self, *args, **kwargs):
            # While the POST is out, recovery decides the worker died and takes the row back.
            NumberImport.objects.filter(pk=row.pk).update(
                claimed_at=timezone.now() - timedelta(hours=1)
            )
            assert importing.recover_stuck_imports() == 1
            return super().import_number(*args, **kwargs)

    fake = SlowSignalWire()
    importing.import_number(row, client=fake)

    row = reload(row)
    assert row.status == ImportStatus.IMPORTED
    assert row.sid == fake.numbers["+14155550100"].sid
    assert "late answer" in row.attempt_log.last().outcome


def test_a_late_failure_of_an_attempt_recovery_took_back_leaves_the_row_as_recovery_left_it(
    start, sent, settings
):
    settings.PORTAL_STUCK_SUBMITTING_SECONDS = 0  # the claim just made counts as stuck
    row = only_row(start(["+14155550100"]))
    first = reload(row)
    assert first.claim()
    assert importing.recover_stuck_imports() == 1  # pending, to be looked up first

    moved = first.mark_failed(FailureCategory.INVALID_INPUT, "Number type is invalid", "", 422)

    row = reload(row)
    assert not moved
    assert (row.status, row.needs_lookup, row.failure_category) == ("pending", True, "")
    assert not row.attempt_log.exists()


def test_a_late_failure_cannot_undo_an_import_recorded_meanwhile(start, sent, settings):
    settings.PORTAL_STUCK_SUBMITTING_SECONDS = 0  # the claim just made counts as stuck
    row = only_row(start(["+14155550100"]))
    first = reload(row)
    assert first.claim()
    importing.recover_stuck_imports()
    second = reload(row)
    assert second.claim()
    # The first attempt's POST created the number: its late answer is recorded as it comes.
    assert first.mark_imported("PN-first", "", {}, "imported")

    taken = "Number has already been taken"
    moved = second.mark_failed(FailureCategory.DUPLICATE, taken, "", 422)

    row = reload(row)
    assert not moved
    assert (row.status, row.sid) == (ImportStatus.IMPORTED, "PN-first")
    # Still live in the project: the number cannot be imported into it a second time.
    lines = read_pasted("+14155550100")
    assert importing.preview(row.project, lines, "longcode", ALL).importable == []


def test_cancel_looks_up_a_number_an_earlier_request_may_have_imported(start, sent):
    job = start(["+14155550100", "+14155550101", "+14155550102"])
    found, absent, unsent = job.numbers.order_by("pk")
    NumberImport.objects.filter(pk__in=[found.pk, absent.pk]).update(needs_lookup=True)
    fake = FakeSignalWire(existing=["+14155550100"])

    assert importing.cancel_pending(job) == 1
    assert reload(unsent).status == ImportStatus.CANCELLED
    assert reload(found).status == reload(absent).status == ImportStatus.PENDING
    importing.import_number(reload(found), client=fake)
    importing.import_number(reload(absent), client=fake)

    assert reload(found).status == ImportStatus.IMPORTED
    assert reload(absent).status == ImportStatus.CANCELLED
    assert fake.posted == []


def test_a_number_sent_during_the_cancel_and_retried_after_it_is_not_sent_again(start, sent):
    job = start(["+14155550100"])
    row = only_row(job)
    busy = SignalWireUnavailable(
        "Service Unavailable", status=503, may_have_reached_signalwire=False
    )

    class CancelledMeanwhile(FakeSignalWire):
        def import_number(self, *args, **kwargs):
            importing.cancel_pending(job)  # the row is submitting: cancel leaves it
            return super().import_number(*args, **kwargs)

    fake = CancelledMeanwhile(import_errors=[busy])
    importing.import_number(row, client=fake)
    assert reload(row).status == ImportStatus.PENDING  # a 503 is retried
    NumberImport.objects.filter(pk=row.pk).update(next_attempt_at=None)

    importing.import_number(reload(row), client=fake)

    assert reload(row).status == ImportStatus.CANCELLED
    assert fake.posted == ["+14155550100"]


def test_a_429_holds_back_every_number_of_the_space(start, make_project, sent, no_sleep):
    project = make_project()
    first = only_row(start(["+14155550100"], project=project))
    other_job_row = only_row(start(["+14155550101"], project=project))
    limited = SignalWireUnavailable("Too Many Requests", status=429, retry_after=7)
    fake = FakeSignalWire(import_errors=[limited])

    importing.import_number(first, client=fake)
    importing.import_number(other_job_row, client=fake)

    assert fake.posted == ["+14155550100"]
    row = reload(other_job_row)
    assert (row.status, row.attempts) == (ImportStatus.PENDING, 0)
    assert row.next_attempt_at > timezone.now() + timedelta(seconds=5)  # back before 7 s


def test_a_retry_after_above_the_backoff_cap_is_honoured_and_the_row_says_when(
    start, sent, settings
):
    settings.PORTAL_RETRY_MAX_SECONDS = 60
    row = only_row(start(["+14155550100"]))
    limited = SignalWireUnavailable("Too Many Requests", status=429, retry_after=900)

    importing.import_number(row, client=FakeSignalWire(import_errors=[limited]))

    row = reload(row)
    assert row.next_attempt_at > timezone.now() + timedelta(seconds=890)
    resumes = timezone.localtime(row.next_attempt_at)
    assert f"resumes at {resumes:%H:%M}" in row.error_message


def test_a_failed_row_never_says_it_is_retried_by_itself(start, sent):
    row = only_row(start(["+14155550100"]))
    for category in FailureCategory:
        NumberImport.objects.filter(pk=row.pk).update(
            status=ImportStatus.FAILED, failure_category=category
        )
        assert "by itself" not in reload(row).failure_advice


def test_after_resume_the_numbers_whose_tasks_came_during_the_pause_are_sent_at_once(
    start, sent, settings, django_capture_on_commit_callbacks
):
    settings.PORTAL_JOB_CONCURRENCY = 2
    job = start(["+14155550100", "+14155550101", "+14155550102"])
    job.pause("Paused by an admin.")
    for row in job.numbers.select_related("job", "project").filter(queued_at__isnull=False):
        importing.import_number(row, client=FakeSignalWire())  # arrives, finds it paused
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        importing.resume(job)

    assert len(sent) == 2


def test_an_unexpected_error_counts_as_an_attempt_and_ends_failed(start, sent, settings):
    settings.PORTAL_MAX_ATTEMPTS = 2
    row = only_row(start(["+14155550100"]))

    class Broken(FakeSignalWire):
        def import_number(self, *args, **kwargs):
            raise ValueError("a bug")

    for _ in range(2):
        NumberImport.objects.filter(pk=row.pk).update(next_attempt_at=None)
        importing.import_number(reload(row), client=Broken())
        if reload(row).status == ImportStatus.PENDING:
            assert reload(row).needs_lookup  # the POST may have left before the error

    row = reload(row)
    assert (row.status, row.attempts, row.failure_category) == ("failed", 2, "internal")
    assert "maintainers" in row.failure_advice


def test_an_unexpected_error_is_logged_with_its_number_import_and_named_on_the_row(
    start, sent, caplog
):
    row = only_row(start(["+14155550100"]))

    class Broken(FakeSignalWire):
        def import_number(self, *args, **kwargs):
            raise ValueError("a bug")

    importing.import_number(row, client=Broken())

    row = reload(row)
    assert (row.error_message, row.error_code) == (
        "The portal failed while sending this number (ValueError).",
        "",
    )
    [record] = [record for record in caplog.records if record.name == importing.__name__]
    assert record.getMessage() == f"Importing number import {row.pk} failed unexpectedly"
    assert record.exc_info[1].args == ("a bug",)


def test_recovery_fails_a_number_whose_every_attempt_stopped_its_worker(start, sent, settings):
    settings.PORTAL_MAX_ATTEMPTS = 3
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(
        status=ImportStatus.SUBMITTING,
        attempts=3,
        attempts_this_round=3,
        claimed_at=timezone.now() - timedelta(hours=1),
    )

    importing.recover_stuck_imports()

    row = reload(row)
    assert (row.status, row.failure_category, row.needs_lookup) == ("failed", "internal", True)


def test_nothing_is_sent_into_a_deactivated_project(start, make_project, sent):
    project = make_project()
    job = start(["+14155550100", "+14155550101"], project=project)
    first, second = job.numbers.select_related("job", "project").order_by("pk")
    NumberImport.objects.filter(pk=first.pk).update(status="failed", failure_category="network")
    Project = type(project)
    Project.objects.filter(pk=project.pk).update(is_active=False)
    second = reload(second)
    fake = FakeSignalWire()

    importing.import_number(second, client=fake)
    with pytest.raises(importing.ImportRefused, match="deactivated"):
        importing.retry_failed(job)
    with pytest.raises(importing.ImportRefused, match="deactivated"):
        importing.retry_number(reload(first), "longcode", ALL)
    with pytest.raises(importing.ImportRefused, match="deactivated"):
        importing.resume(job)

    assert fake.calls == []
    assert reload(first).status == ImportStatus.FAILED
    assert reload(second).status == ImportStatus.PENDING
    job.refresh_from_db()
    assert job.is_paused and "deactivated" in job.pause_reason


def test_the_lookup_after_a_timeout_waits_out_the_read_timeout(start, sent, settings):
    settings.SIGNALWIRE_TIMEOUT = (3.05, 15.0)
    row = only_row(start(["+14155550100"]))
    timeout = SignalWireUnavailable("did not answer in time", may_have_reached_signalwire=True)

    importing.import_number(row, client=FakeSignalWire(import_errors=[timeout]))

    assert reload(row).next_attempt_at >= timezone.now() + timedelta(seconds=14.5)
    assert sent[-1][1] >= 15


def test_taken_after_an_uncertain_post_is_looked_up_again_and_ends_imported(start, sent):
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(needs_lookup=True)
    taken = RequestRejected("Number has already been taken", status=422, is_duplicate=True)
    fake = FakeSignalWire(import_errors=[taken])

    # The lookup misses: the first POST is still being handled on a slow SignalWire.
    importing.import_number(reload(row), client=fake)
    assert reload(row).status == ImportStatus.PENDING
    # By the next lookup it has created the number.
    fake.numbers["+14155550100"] = incoming_number("+14155550100")
    NumberImport.objects.filter(pk=row.pk).update(next_attempt_at=None)
    importing.import_number(reload(row), client=fake)

    row = reload(row)
    assert (row.status, row.sid) == (ImportStatus.IMPORTED, fake.numbers["+14155550100"].sid)


@pytest.mark.parametrize("code", [None, "21452"])
def test_taken_after_an_uncertain_post_waits_for_the_lookup_showing_signalwires_answer(
    start, sent, code
):
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(needs_lookup=True)
    taken = RequestRejected(
        "Number has already been taken", status=422, code=code, is_duplicate=True
    )
    before = timezone.now()

    importing.import_number(reload(row), client=FakeSignalWire(import_errors=[taken]))

    row = reload(row)
    assert (row.status, row.failure_category, row.needs_lookup) == (
        ImportStatus.PENDING,
        FailureCategory.DUPLICATE,
        True,
    )
    assert row.error_message == (
        "Number has already been taken "
        "(an earlier request may have imported it: it is looked up again)"
    )
    assert (row.error_code, row.http_status) == (code or "", 422)
    assert row.next_attempt_at >= before + timedelta(seconds=importing.lookup_wait())
    assert sent[-1] == (row.pk, importing.lookup_wait())


def test_the_send_schedule_keeps_the_databases_time_whatever_a_machines_clock_says(
    monkeypatch,
):
    book_send_slot("acme.signalwire.com", 10, max_wait=10)
    real_time = time.time
    # A worker on a machine whose clock is an hour behind books the next slot.
    monkeypatch.setattr(time, "time", lambda: real_time() - 3600)

    is_booked, wait = book_send_slot("acme.signalwire.com", 10, max_wait=10)

    assert is_booked and wait < 0.5


def test_a_cancelled_job_that_is_paused_can_be_resumed_to_settle_its_uncertain_numbers(start, sent):
    job = start(["+14155550100"])
    NumberImport.objects.filter(job=job).update(needs_lookup=True)
    job.pause("Paused by an admin.")
    importing.cancel_pending(job)

    importing.resume(job)  # the chaos harness's driver found this refused, the job stuck

    importing.import_number(only_row(job), client=FakeSignalWire())
    assert only_row(job).status == ImportStatus.CANCELLED
    with pytest.raises(importing.ImportRefused, match="cancelled"):
        importing.retry_failed(job)


def test_a_number_looked_up_and_handed_back_is_not_looked_up_again(start, sent, settings, no_sleep):
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 1
    row = only_row(start(["+14155550100"]))
    NumberImport.objects.filter(pk=row.pk).update(needs_lookup=True)
    fake = FakeSignalWire()
    # The lookup takes the Space's only free slot; the POST's is 3 s away.
    original = FakeSignalWire.find_number

    def find_then_fill(self, number, deadline=None, pace=None):
        found = original(self, number, deadline=deadline, pace=pace)
        for _ in range(2):
            book_send_slot(row.project.space_host, 1, max_wait=10)
        return found

    fake.find_number = find_then_fill.__get__(fake)
    importing.import_number(reload(row), client=fake)
    assert reload(row).status == ImportStatus.PENDING
    assert not reload(row).needs_lookup
    NumberImport.objects.filter(pk=row.pk).update(next_attempt_at=None)
    RateLimitBucket.objects.all().delete()  # the Space is free again

    importing.import_number(reload(row), client=fake)

    assert [call[0] for call in fake.calls] == ["find_number", "import_number"]
    assert reload(row).status == ImportStatus.IMPORTED


def test_a_number_retried_right_after_an_uncertain_failure_is_looked_up_no_sooner(
    start, sent, settings, django_capture_on_commit_callbacks
):
    # The chaos harness's driver pressed "retry failed" at once, the lookup missed a number
    # SignalWire was still creating, and the POST after it made the number twice.
    settings.PORTAL_MAX_ATTEMPTS = 1
    row = only_row(start(["+14155550100"]))
    timeout = SignalWireUnavailable("did not answer in time", may_have_reached_signalwire=True)
    importing.import_number(row, client=FakeSignalWire(import_errors=[timeout]))
    assert (reload(row).status, reload(row).needs_lookup) == (ImportStatus.FAILED, True)
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        importing.retry_failed(reload(row).job)

    row = reload(row)
    assert row.status == ImportStatus.PENDING
    assert row.next_attempt_at >= timezone.now() + timedelta(seconds=importing.lookup_wait() - 1)
    assert sent == []  # queued once it is due


def test_an_attempt_whose_row_was_taken_back_and_claimed_again_leaves_it_alone(start, sent):
    # Recovery gave the row to another task; the first attempt's late error must not move
    # the second attempt's claim.
    row = only_row(start(["+14155550100"]))
    first = reload(row)
    assert first.claim()
    NumberImport.objects.filter(pk=row.pk).update(
        status=ImportStatus.PENDING, claimed_at=None, next_attempt_at=None
    )
    second = reload(row)
    assert second.claim()

    moved = first.schedule_retry(0, FailureCategory.UPSTREAM, "late 500", "", 500, True)

    assert not moved
    assert (reload(row).status, reload(row).claimed_at) == ("submitting", second.claimed_at)


def test_a_slow_space_gets_no_more_numbers_of_a_job_in_flight_than_it_sends_in_3_s(
    start, sent, settings
):
    settings.PORTAL_JOB_CONCURRENCY = 16
    settings.PORTAL_RATE_LIMIT_PER_SPACE = 2

    start([f"+1415555{index:04d}" for index in range(20)])

    assert len(sent) == 6


def test_an_import_task_whose_worker_is_killed_is_delivered_again():
    # The message is acknowledged when the task ends, and returned to the queue when its
    # worker process dies; a redelivery is harmless, since import_number claims the row first.
    assert import_phone_number.acks_late is True
    assert import_phone_number.reject_on_worker_lost is True


# The rows' state changes, field by field


def test_an_import_after_a_retried_error_clears_the_error_and_logs_both_attempts(start, sent):
    row = only_row(start(["+14155550100"]))
    queued_before = row.queued_at
    assert row.claim()
    first_claim = row.claimed_at

    assert row.schedule_retry(
        0, FailureCategory.UPSTREAM, "Service Unavailable", "E503", 503, False
    )

    retried = reload(row)
    assert (retried.status, retried.failure_category, retried.error_code) == (
        ImportStatus.PENDING,
        FailureCategory.UPSTREAM,
        "E503",
    )
    assert (retried.error_message, retried.http_status) == ("Service Unavailable", 503)
    # The caller sends the retry's task: the row must not look unqueued, or it is sent twice.
    assert queued_before < retried.queued_at <= timezone.now()
    assert retried.claim()

    assert retried.mark_imported("PN-1", "x" * 120, {"sid": "PN-1"}, "imported") is True

    row = reload(row)
    assert (row.status, row.sid, row.friendly_name, row.response) == (
        ImportStatus.IMPORTED,
        "PN-1",
        "x" * 100,
        {"sid": "PN-1"},
    )
    assert (row.next_attempt_at, row.needs_lookup, row.failure_category) == (None, False, "")
    assert (row.error_code, row.error_message, row.http_status) == ("", "", None)
    log = row.attempt_log.values_list(
        "started_at", "outcome", "http_status", "error_code", "message"
    )
    assert list(log) == [
        (first_claim, "SignalWire error: retrying", 503, "E503", "Service Unavailable"),
        (retried.claimed_at, "imported", None, "", ""),
    ]


def test_a_failure_keeps_500_characters_of_the_message_and_20_of_the_code(start, sent):
    job = start(["+14155550100", "+14155550101"])
    row, uncoded = job.numbers.select_related("job", "project").order_by("pk")
    assert row.claim()
    assert row.schedule_retry(0, FailureCategory.UPSTREAM, "m" * 600, "C" * 30, 502, False)
    row = reload(row)
    assert (row.error_message, row.error_code) == ("m" * 500, "C" * 20)
    assert row.claim()

    assert row.mark_failed(FailureCategory.INVALID_INPUT, "n" * 600, "D" * 30, 422)
    assert uncoded.claim()
    assert uncoded.mark_failed(FailureCategory.INTERNAL, "The portal failed")

    row = reload(row)
    assert (row.status, row.error_message, row.error_code) == ("failed", "n" * 500, "D" * 20)
    # The retry's due time is over: a failed row is never said to come back by itself.
    assert row.next_attempt_at is None
    assert reload(uncoded).error_code == ""
    assert [attempt.message for attempt in row.attempt_log.all()] == ["m" * 500, "n" * 500]


def test_a_cancelled_number_found_absent_is_left_with_nothing_to_look_up_or_wait_for(start, sent):
    job = start(["+14155550100"])
    row = only_row(job)
    NumberImport.objects.filter(pk=row.pk).update(
        needs_lookup=True, next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    importing.cancel_pending(job)

    importing.import_number(reload(row), client=FakeSignalWire())

    row = reload(row)
    assert (row.status, row.needs_lookup, row.next_attempt_at) == ("cancelled", False, None)
    log = row.attempt_log.values_list("outcome", "http_status", "error_code", "message")
    assert list(log) == [("not on SignalWire: cancelled", None, "", "")]


def test_cancelling_an_unsent_number_moves_that_row_only_while_it_is_pending_and_certain(
    start, sent
):
    job = start(["+14155550100", "+14155550101", "+14155550102", "+14155550103"])
    waiting, uncertain, claimed, _ = job.numbers.order_by("pk")
    NumberImport.objects.filter(pk=waiting.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    NumberImport.objects.filter(pk=uncertain.pk).update(needs_lookup=True)
    waiting, uncertain, stale = reload(waiting), reload(uncertain), reload(claimed)
    assert reload(claimed).claim()

    assert waiting.cancel_unsent()
    assert not uncertain.cancel_unsent()  # an earlier request may have imported it
    assert not stale.cancel_unsent()  # a task has it now

    cancelled = reload(waiting)
    assert (cancelled.status, cancelled.next_attempt_at) == ("cancelled", None)
    assert cancelled.updated_at > waiting.updated_at
    statuses = list(job.numbers.order_by("pk").values_list("status", flat=True))
    assert statuses == ["cancelled", "pending", "submitting", "pending"]


def test_releasing_a_number_marks_only_that_pending_row_unqueued(start, sent, settings):
    settings.PORTAL_JOB_CONCURRENCY = 3
    job = start(["+14155550100", "+14155550101", "+14155550102"])
    released, other, claimed = job.numbers.order_by("pk")
    stale = reload(claimed)
    assert reload(claimed).claim()

    released.release()
    stale.release()

    unqueued = [row.queued_at is None for row in job.numbers.order_by("pk")]
    # The claimed row still counts as in flight in its job's window.
    assert unqueued == [True, False, False]


def test_a_number_handed_back_for_later_gets_its_attempt_back_and_counts_as_queued(
    start, sent, monkeypatch
):
    job = start(["+14155550100", "+14155550101"])
    row, twin = job.numbers.select_related("job", "project").order_by("pk")
    claimed_at = timezone.now()
    clock = [claimed_at]
    monkeypatch.setattr(timezone, "now", lambda: clock[0])
    # Two workers may claim in the same microsecond: the claim's time alone names no row.
    assert row.claim() and twin.claim()
    clock[0] = handed_back_at = claimed_at + timedelta(seconds=1)

    assert row.hand_back(30)

    row = reload(row)
    assert (row.status, row.attempts, row.attempts_this_round) == (ImportStatus.PENDING, 0, 0)
    assert row.next_attempt_at == handed_back_at + timedelta(seconds=30)
    # The caller sends its task now: the row counts as queued, not as lost.
    assert row.queued_at == row.updated_at == handed_back_at
    assert reload(twin).status == ImportStatus.SUBMITTING


def test_a_task_whose_row_recovery_took_back_cannot_hand_it_back(start, sent, settings):
    settings.PORTAL_STUCK_SUBMITTING_SECONDS = 0  # the claim just made counts as stuck
    row = only_row(start(["+14155550100"]))
    first = reload(row)
    assert first.claim()
    assert importing.recover_stuck_imports() == 1  # pending, to be looked up first

    assert not first.hand_back(5)
    taken_back = reload(row)
    assert (taken_back.status, taken_back.needs_lookup, taken_back.attempts) == ("pending", True, 1)

    second = reload(row)
    assert second.claim()
    assert not first.hand_back(5)
    assert (reload(row).status, reload(row).claimed_at) == ("submitting", second.claimed_at)


def test_a_late_answer_cannot_overwrite_an_import_recorded_meanwhile(start, sent, settings):
    settings.PORTAL_STUCK_SUBMITTING_SECONDS = 0  # the claim just made counts as stuck
    row = only_row(start(["+14155550100"]))
    first = reload(row)
    assert first.claim()
    importing.recover_stuck_imports()
    second = reload(row)
    assert second.claim()
    assert second.mark_imported("PN-second", "", {}, "found on SignalWire")

    assert not first.mark_imported("PN-first", "", {}, "imported")

    row = reload(row)
    assert (row.status, row.sid) == (ImportStatus.IMPORTED, "PN-second")
    assert list(row.attempt_log.values_list("outcome", flat=True)) == ["found on SignalWire"]


def test_a_late_answer_for_a_number_live_in_another_job_leaves_that_row_standing(
    start, make_project, sent, settings, caplog
):
    settings.PORTAL_STUCK_SUBMITTING_SECONDS = 0  # the claim just made counts as stuck
    settings.PORTAL_MAX_ATTEMPTS = 1
    project = make_project()
    row = only_row(start(["+14155550100"], project=project))
    first = reload(row)
    assert first.claim()
    assert importing.recover_stuck_imports() == 1  # failed: its only attempt stopped its worker
    again = start(["+14155550100", "+14155550101"], project=project).numbers.get(number=row.number)

    with caplog.at_level(logging.WARNING, logger="phone_numbers.models"):
        assert first.mark_imported("PN-late", "", {}, "imported") is False

    assert reload(row).status == ImportStatus.FAILED
    assert reload(again).status == ImportStatus.PENDING
    [record] = [record for record in caplog.records if record.name == "phone_numbers.models"]
    assert record.levelname == "WARNING"
    assert f"number import {row.pk} found it live elsewhere" in record.getMessage()


def test_pausing_a_job_keeps_the_first_reason_and_pauses_no_other_job(start, make_project, sent):
    job = start(["+14155550100"])
    other = start(["+14155550100"], project=make_project(space_host="other.signalwire.com"))

    job.pause("r" * 250)
    first_pause = (job.paused_at, job.pause_reason)
    job.pause("Paused by sam.")

    assert first_pause[1] == "r" * 200
    assert (job.paused_at, job.pause_reason) == first_pause
    job.refresh_from_db()
    assert (job.paused_at, job.pause_reason) == first_pause
    other.refresh_from_db()
    assert not other.is_paused


# A configuration error (issue 19, item 7)


def test_a_host_that_cannot_form_a_url_fails_the_number_once_and_pauses_the_job(
    start, make_project, sent, settings
):
    settings.PORTAL_STUCK_SUBMITTING_SECONDS = 0  # recovery takes back any number left sending
    project = make_project()
    row = only_row(start(["+14155550100"], project=project))
    Project.objects.filter(pk=project.pk).update(space_host="acme.signalwire.com/x y")

    import_phone_number(row.pk)
    for _ in range(3):
        importing.recover_stuck_imports()
        import_phone_number(row.pk)

    row = reload(row)
    assert (row.status, row.failure_category) == (
        ImportStatus.FAILED,
        FailureCategory.CONFIGURATION,
    )
    assert row.attempts == 1
    assert "“acme.signalwire.com/x y” is not a SignalWire Space" in row.error_message
    assert row.job.pause_reason == row.error_message
    assert row.failure_advice.startswith("Nothing was sent")


def test_a_setting_the_client_refuses_fails_the_number_as_configuration(start, sent, settings):
    row = only_row(start(["+14155550100"]))
    settings.SIGNALWIRE_BASE_URL = "http://10.0.0.5/api/laml/2010-04-01"

    importing.import_number(reload(row))

    row = reload(row)
    assert (row.status, row.failure_category) == (
        ImportStatus.FAILED,
        FailureCategory.CONFIGURATION,
    )
    assert row.error_message.startswith("The portal's SignalWire settings are wrong")
    assert row.job.is_paused


def test_resume_after_the_host_is_corrected_sends_the_configuration_failures_again(
    start, make_project, sent, django_capture_on_commit_callbacks
):
    project = make_project()
    row = only_row(start(["+14155550100"], project=project))
    Project.objects.filter(pk=project.pk).update(space_host="10.0.0.5")
    importing.import_number(reload(row))
    with pytest.raises(importing.ImportRefused, match="not a SignalWire Space"):
        importing.resume(reload(row).job)
    Project.objects.filter(pk=project.pk).update(space_host="acme.signalwire.com")
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):
        importing.resume(reload(row).job)

    assert reload(row).status == ImportStatus.PENDING
    assert not reload(row).job.is_paused
    assert [pk for pk, _ in sent] == [row.pk]

import csv
import io
from datetime import UTC

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains, assertTemplateUsed

from phone_numbers.capabilities import CAPABILITIES
from phone_numbers.models import AuditAction, AuditEntry, ImportJob, NumberImport
from phone_numbers.search import matching, newest_page

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

HTMX = {"HX-Request": "true"}


@pytest.fixture
def add_number(make_project, support_user):
    """Add a number import directly: status, project and ticket as given."""
    projects = {}

    def add(number, status="imported", project="Acme Corp", ticket="", country="US", **fields):
        if project not in projects:
            projects[project] = make_project(
                name=project,
                space_host=f"customer{len(projects)}.signalwire.com",
                default_country=country,
            )
        job = ImportJob.objects.create(
            project=projects[project],
            created_by=support_user,
            source="paste",
            ticket=ticket,
            number_type="longcode",
            capabilities=["sms", "voice", "fax", "mms"],
            input_digest="x",
        )
        return NumberImport.objects.create(
            job=job,
            project=projects[project],
            number=number,
            number_type=fields.pop("number_type", "longcode"),
            capabilities=fields.pop("capabilities", ["sms", "voice", "fax", "mms"]),
            status=status,
            **fields,
        )

    return add


def shown(response) -> list[str]:
    return [number.number for number in response.context["numbers"]]


def search(client, **params):
    return client.get(reverse("phone_numbers:home"), params)


def test_anonymous_visitors_are_sent_to_login(client):
    for url in [
        reverse("phone_numbers:home"),
        reverse("phone_numbers:number_export"),
        reverse("phone_numbers:number_where"),
        reverse("phone_numbers:number_detail", args=[1]),
    ]:
        assert client.get(url)["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    "typed", ["5550100", "555-0100", "(415) 555", "415 555 0100", "+1 415-555", "tel:+1415555"]
)
def test_any_run_of_digits_in_any_written_form_finds_the_number(
    client, support_user, add_number, typed
):
    add_number("+14155550100")
    add_number("+442079460958")
    client.force_login(support_user)

    assert shown(search(client, q=typed)) == ["+14155550100"]


def test_an_international_prefix_written_with_spaces_finds_the_number(
    client, support_user, add_number
):
    add_number("+14155550100")
    add_number("+442079460958")
    client.force_login(support_user)

    assert shown(search(client, q="+44 20 7946")) == ["+442079460958"]


LONDON = "+442079460950"


@pytest.fixture
def london_and_lookalikes(add_number):
    """The London number in a British project, beside US numbers holding parts of its digits."""
    add_number(LONDON, project="Globex UK", country="GB")
    add_number("+12079460950")  # Maine: the same ten digits after another country code
    add_number("+492079460950")  # German, and no project's default country is Germany
    add_number("+14155550200")  # 020, 0207 and 0044 anywhere, as digits
    add_number("+14155020700")
    add_number("+12125550044")


@pytest.mark.parametrize(
    "typed",
    [
        "0044 20 7946 0950",
        "00442079460950",
        "011 44 20 7946 0950",
        "+44 (0)20 7946 0950",
        "020 7946 0950",
        "(020) 7946-0950",
        "(0)20 7946 0950",
        "tel:0044-20-7946-0950",
        "００４４ ２０ ７９４６ ０９５０",
        # Partial: typed from the start, as far as the customer got.
        "0044 20 7946",
        "011 44 20 79",
        "+44 (0)20 7946",
        "+44(0)2079",
        "020 7946",
        "02079",
    ],
)
@pytest.mark.parametrize(
    "narrowed",
    [{"status": ""}, {"number_type": "longcode"}],
    ids=["through the search copy", "through the number imports"],
)
def test_a_number_typed_with_an_international_or_trunk_prefix_finds_it_and_only_it(
    client, support_user, london_and_lookalikes, typed, narrowed
):
    client.force_login(support_user)

    assert shown(search(client, q=typed, **narrowed)) == [LONDON]


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("020", ["+14155020700", "+14155550200"]),
        ("0207", ["+14155020700"]),
        ("0044", ["+12125550044"]),
        ("+44 (0)", [LONDON]),
    ],
)
def test_a_prefix_with_fewer_than_four_digits_after_it_is_only_digits_anywhere(
    client, support_user, london_and_lookalikes, typed, found
):
    # "020" alone as likely ends a number as begins one: read as a London start it would list
    # the whole city. "+44 (0)" says where the number starts, so it means exactly that.
    client.force_login(support_user)

    assert shown(search(client, q=typed, status="")) == found


def test_a_national_form_is_read_in_every_projects_default_country(
    client, support_user, add_number
):
    add_number(LONDON, project="Globex UK", country="GB")
    add_number("+492079460950", project="Globex DE", country="DE")
    add_number("+332079460950", project="Acme Corp", country="US")  # France: no FR project
    client.force_login(support_user)

    assert shown(search(client, q="020 7946 0950")) == ["+492079460950", LONDON]
    assert shown(search(client, q="020 7946")) == ["+492079460950", LONDON]


def test_text_finds_project_ticket_sid_and_friendly_name(client, support_user, add_number):
    add_number("+14155550100", project="Globex Corp")
    add_number("+14155550101", ticket="HD-4242")
    add_number("+14155550102", sid="ab12cd34-0000-4000-8000-000000000000")
    add_number("+14155550103", friendly_name="Front desk")
    client.force_login(support_user)

    assert shown(search(client, q="globex")) == ["+14155550100"]
    assert shown(search(client, q="hd-4242")) == ["+14155550101"]
    assert shown(search(client, q="AB12CD")) == ["+14155550102"]
    assert shown(search(client, q="front")) == ["+14155550103"]


def test_text_finds_every_number_it_matches_by_project_ticket_friendly_name_or_sid(add_number):
    add_number("+14155550100", project="Northwind Traders")
    add_number("+14155550101", project="Globex Corp", ticket="NORTHWIND-7")
    add_number("+14155550102", project="Globex Corp", friendly_name="Northwind front desk")
    add_number("+14155550103", project="Globex Corp", sid="northwind-0001")
    add_number("+14155550104", project="Globex Corp", friendly_name="Lobby")

    found = matching(NumberImport.objects.all(), " northwind ").values_list("number", flat=True)

    assert sorted(found) == ["+14155550100", "+14155550101", "+14155550102", "+14155550103"]


def test_imported_numbers_show_by_default_and_any_status_on_request(
    client, support_user, add_number
):
    add_number("+14155550100")
    add_number("+14155550101", status="failed")
    client.force_login(support_user)

    assert shown(search(client)) == ["+14155550100"]
    assert shown(search(client, status="")) == ["+14155550101", "+14155550100"]
    assert shown(search(client, status="failed")) == ["+14155550101"]


def test_filters_narrow_the_list(client, support_user, add_number, admin_user):
    target = add_number("+14155550100", number_type="tollfree", capabilities=["voice"])
    add_number("+14155550101", project="Globex Corp")
    add_number("+14155550102")
    target.job.created_by = admin_user
    target.job.save()
    client.force_login(support_user)

    assert shown(search(client, number_type="tollfree")) == ["+14155550100"]
    assert shown(search(client, capability="sms")) == ["+14155550102", "+14155550101"]
    assert shown(search(client, imported_by=admin_user.pk)) == ["+14155550100"]
    assert shown(search(client, project=target.project_id, q="555")) == [
        "+14155550102",
        "+14155550100",
    ]


@pytest.mark.parametrize("capability", CAPABILITIES)
def test_the_capability_filter_lists_the_numbers_that_have_it_on_both_databases(
    client, support_user, add_number, capability
):
    # Number i lacks capability i; the last number has none at all.
    numbers = [f"+1415555010{index}" for index in range(len(CAPABILITIES))]
    for number, lacking in zip(numbers, CAPABILITIES, strict=True):
        add_number(number, capabilities=[name for name in CAPABILITIES if name != lacking])
    add_number("+14155550109", capabilities=[])
    client.force_login(support_user)

    response = search(client, capability=capability)

    assert response.status_code == 200
    lacking_it = numbers[CAPABILITIES.index(capability)]
    assert shown(response) == [number for number in reversed(numbers) if number != lacking_it]


def test_imported_between_two_dates(client, support_user, add_number):
    from datetime import datetime

    add_number("+14155550100", imported_at=datetime(2026, 3, 1, 12, tzinfo=UTC))
    add_number("+14155550101", imported_at=datetime(2026, 5, 1, 12, tzinfo=UTC))
    client.force_login(support_user)

    found = search(client, imported_from="2026-02-01", imported_to="2026-03-31")

    assert shown(found) == ["+14155550100"]


def test_live_search_answers_htmx_with_the_results_only(client, support_user, add_number):
    add_number("+14155550100")
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:home"), {"q": "0100"}, headers=HTMX)

    assertTemplateUsed(response, "phone_numbers/partials/number_rows.html")
    assertNotContains(response, "<html")
    assertContains(response, "+1 415-555-0100")
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize(
    "params",
    [
        {"q": "--- () ..."},
        {"q": "5" * 500},
        {"q": "'; DROP TABLE phone_numbers_numberimport; --"},
        {"q": "<script>alert(1)</script>"},
        {"imported_from": "2026-13-45"},
        {"imported_to": "yesterday"},
        {"project": "99999"},
        {"project": "not-a-number"},
        {"imported_by": "77777"},
        {"status": "exploded"},
        {"page": "-3"},
        {"page": "lots"},
    ],
)
def test_bad_input_answers_200_with_a_message_and_nothing_unescaped(
    client, support_user, add_number, params
):
    add_number("+14155550100")
    client.force_login(support_user)

    response = search(client, **params)

    assert response.status_code == 200
    assertNotContains(response, "<script>alert(1)</script>")
    assert NumberImport.objects.count() == 1


def test_a_malformed_date_and_an_unknown_project_are_explained(client, support_user, add_number):
    add_number("+14155550100")
    client.force_login(support_user)

    response = search(client, imported_from="2026-13-45", project="99999")

    assertContains(response, "Enter a date like 2026-01-31.")
    assertContains(response, "That project does not exist: showing all projects.")
    assert shown(response) == ["+14155550100"]


def test_pages_run_the_same_queries_whatever_their_size(client, support_user, add_number):
    client.force_login(support_user)

    def queries_for_the_list() -> int:
        search(client, status="")  # renews the session, once a minute
        with CaptureQueriesContext(connection) as queries:
            assert search(client, status="").status_code == 200
        return len(queries)

    add_number("+14155550100")
    with_one = queries_for_the_list()
    for index in range(1, 60):
        add_number(f"+1415555{index:04d}", project=f"Customer{index % 3} Inc")

    # A short page also reads the numbers only in a Space, which follow the imports; a full
    # one does not (test_views_inventory counts the queries with them).
    assert queries_for_the_list() <= with_one


def test_pages_go_on_without_counting(client, support_user, add_number):
    for index in range(55):
        add_number(f"+1415555{index:04d}")
    client.force_login(support_user)

    first, second = search(client), search(client, page=2)

    assert len(shown(first)) == 50 and first.context["has_next"]
    assert len(shown(second)) == 5 and not second.context["has_next"]
    assertContains(second, "Showing 51–55")


@pytest.mark.parametrize("typed", ["４１５５５５", "٤١٥٥٥٥", "४१५५५५"])
def test_decimal_digits_of_any_script_find_the_number_as_ascii_digits_do(
    client, support_user, add_number, typed
):
    add_number("+14155550100")
    add_number("+442079460958")
    client.force_login(support_user)

    assert shown(search(client, q=typed)) == ["+14155550100"]


@pytest.mark.parametrize("typed", ["²²²", "①②③④", "4155 ²", "Ⅻ"])
def test_numerals_that_are_not_digits_find_nothing_instead_of_failing(
    client, support_user, add_number, typed
):
    add_number("+14155550100")
    add_number("+12225550100", friendly_name="Line 222")
    client.force_login(support_user)

    response = search(client, q=typed)

    assert response.status_code == 200
    assert shown(response) == []


def test_a_nul_anywhere_in_an_exports_query_string_is_recorded_as_a_replacement_character(
    client, admin_user, add_number
):
    add_number("+14155550100")
    client.force_login(admin_user)

    numbers = client.get(reverse("phone_numbers:number_export"), {"q": "415\x00", "x\x00": "1"})
    entries = client.get(reverse("phone_numbers:audit_export"), {"person": "ada\x00"})

    assert numbers.status_code == entries.status_code == 200
    # The form refuses the NUL in q, so that filter is left out, as any invalid filter is.
    assert "+14155550100" in b"".join(numbers.streaming_content).decode()
    b"".join(entries.streaming_content)
    recorded = AuditEntry.objects.filter(
        action__in=[AuditAction.NUMBERS_EXPORTED, AuditAction.AUDIT_EXPORTED]
    ).order_by("pk")
    assert [entry.changes["filters"] for entry in recorded] == [
        {"q": "415\ufffd", "x\ufffd": "1"},
        {"person": "ada\ufffd"},
    ]


def test_export_streams_the_current_search_as_csv(client, support_user, add_number):
    add_number("+14155550100", sid="sid-1", ticket="HD-1")
    add_number("+14155550101", status="failed", error_message="Service Unavailable")
    add_number("+442079460958")
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_export"), {"q": "415", "status": ""})

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Type"] == "text/csv"
    assert [(row["number"], row["status"]) for row in rows] == [
        ("+14155550101", "failed"),
        ("+14155550100", "imported"),
    ]
    assert rows[1]["sid"] == "sid-1" and rows[1]["ticket"] == "HD-1"
    assert rows[0]["reason"] == "Service Unavailable"


def test_number_page_and_numbers_export_show_the_type_each_number_was_sent_with(
    client, support_user, add_number
):
    longcode = add_number("+14155550100")
    tollfree = add_number("+18005550100", number_type="tollfree")
    client.force_login(support_user)

    pages = [
        client.get(reverse("phone_numbers:number_detail", args=[number.pk]))
        for number in (longcode, tollfree)
    ]
    export = client.get(reverse("phone_numbers:number_export"))

    assertContains(pages[0], "<dt>Type</dt><dd>Long code</dd>", html=True)
    assertContains(pages[1], "<dt>Type</dt><dd>Toll-free</dd>", html=True)
    rows = csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode()))
    assert [(row["number"], row["number_type"]) for row in rows] == [
        ("+18005550100", "tollfree"),
        ("+14155550100", "longcode"),
    ]


def test_export_quotes_free_text_a_spreadsheet_would_run_as_a_formula(
    client, support_user, add_number
):
    add_number(
        "+14155550100",
        project="=HYPERLINK(1) Corp",
        ticket="=cmd|' /C calc'!A0",
        friendly_name="@SUM(1)",
        status="failed",
        error_message="-2+3",
    )
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_export"), {"status": ""})

    (row,) = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    assert row["number"] == "+14155550100"  # a number is data, whatever its first character
    assert row["project"] == "'=HYPERLINK(1) Corp"
    assert row["ticket"] == "'=cmd|' /C calc'!A0"
    assert row["friendly_name"] == "'@SUM(1)"
    assert row["reason"] == "'-2+3"


def test_number_page_shows_the_response_the_attempts_and_the_job(client, support_user, add_number):
    number = add_number(
        "+14155550100",
        sid="sid-1",
        response={"sid": "sid-1", "origin": "signalwire", "voice_url": None},
    )
    number.attempt_log.create(started_at=number.created_at, outcome="imported", http_status=201)
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_detail", args=[number.pk]))

    assertContains(response, "+1 415-555-0100")
    assertContains(response, "origin")
    assertContains(response, "voice_url")
    assertContains(response, "201")
    assertContains(response, number.job.get_absolute_url())
    assertContains(response, 'data-copy="+14155550100"')


def test_number_page_lists_the_other_imports_of_the_same_number(client, support_user, add_number):
    number = add_number("+14155550100", project="Acme Corp")
    other = add_number("+14155550100", project="Globex Corp", status="failed")
    add_number("+14155550101", project="Initech Ltd")
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_detail", args=[number.pk]))

    assertContains(response, "<h2>Other imports of this number</h2>", html=True)
    assertContains(response, reverse("phone_numbers:number_detail", args=[other.pk]))
    assertContains(response, "Globex Corp")
    assertNotContains(response, "Initech Ltd")


def test_where_is_this_number_lists_every_project_holding_it(client, support_user, add_number):
    add_number("+14155550100", project="Acme Corp")
    add_number("+14155550100", project="Globex Corp", status="failed")
    add_number("+14155550101", project="Initech Ltd")
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_where"), {"number": "(415) 555-0100"})

    assertContains(response, "Acme Corp")
    assertContains(response, "Globex Corp")
    assertNotContains(response, "Initech Ltd")


def test_where_is_this_number_explains_what_is_not_a_number(client, support_user, add_number):
    add_number("+14155550100")
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_where"), {"number": "<b>hello</b>"})

    assertContains(response, "is not a phone number")
    assertNotContains(response, "<b>hello</b>")


@pytest.mark.parametrize("sparse", [1000, 2])
def test_newest_page_gives_the_same_rows_whichever_plan_it_picks(add_number, monkeypatch, sparse):
    # A small limit sends the search down the "many matches" path on test-sized data.
    monkeypatch.setattr("phone_numbers.search.SPARSE_MATCHES", sparse)
    for index in range(12):
        add_number(f"+1415555{index:04d}")
    for index in range(20):
        add_number(f"+1212555{index:04d}")  # newer rows that do not match "415"
    matches = matching(NumberImport.objects.all(), "415")
    expected = list(matches.order_by("-pk").values_list("number", flat=True))

    first = [row.number for row in newest_page(matches, 0, 5)]
    third = [row.number for row in newest_page(matches, 10, 5)]

    assert first == expected[:5]
    assert third == expected[10:12]


@pytest.mark.parametrize("query", ["", "project=1", "project=nonsense"])
def test_the_quick_project_select_writes_djangos_own_html(make_project, query):
    from django import forms
    from django.http import QueryDict

    from phone_numbers.forms import NumberSearchForm

    make_project(name="Acme & Sons", space_host="acme.signalwire.com")
    make_project(name="Globex", space_host="globex.signalwire.com")
    search = NumberSearchForm(QueryDict(query))
    quick = str(search["project"])
    django_select = forms.Select(attrs=search.fields["project"].widget.attrs)
    django_select.choices = search.fields["project"].widget.choices
    search.fields["project"].widget = django_select

    assert quick == str(search["project"]).replace("\n\n", "\n")
    assert "Acme &amp; Sons" in quick

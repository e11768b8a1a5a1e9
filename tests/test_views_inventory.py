"""The numbers list, the number pages and "Where is this number?" read the Space inventory
(issue 17): numbers only in a Space are found like imports, drift has its filters, a number
page shows the Space's record beside the import's."""

import csv
import io
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from phone_numbers import exports
from phone_numbers.models import (
    ImportJob,
    InventorySync,
    NumberImport,
    Project,
    SpaceNumber,
    SpaceNumberSearchRow,
)

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

SYNCED_AT = datetime(2026, 11, 2, 3, 4, tzinfo=UTC)
sids = count(1)


@pytest.fixture
def acme(make_project) -> Project:
    return make_project(name="Acme Corp", space_host="acme.signalwire.com")


@pytest.fixture
def globex(make_project) -> Project:
    return make_project(name="Globex Corp", space_host="globex.signalwire.com")


@pytest.fixture
def add_import(support_user):
    def add(project, number, status="imported", ticket="", **fields) -> NumberImport:
        job = ImportJob.objects.create(
            project=project,
            created_by=support_user,
            source="paste",
            ticket=ticket,
            number_type="longcode",
            capabilities=["sms", "voice"],
            input_digest="x",
        )
        return NumberImport.objects.create(
            job=job,
            project=project,
            number=number,
            number_type=fields.pop("number_type", "longcode"),
            capabilities=fields.pop("capabilities", ["sms", "voice"]),
            status=status,
            **fields,
        )

    return add


def in_space(project, number, number_import=None, **fields) -> SpaceNumber:
    """A number as a completed sync of `project` listed it (as the sync helper's code will)."""
    return SpaceNumber.objects.create(
        project=project,
        number=number,
        number_import=number_import,
        sid=fields.pop("sid", f"PN{next(sids):032x}"),
        capabilities=fields.pop("capabilities", ["sms", "voice"]),
        first_seen_at=fields.pop("first_seen_at", SYNCED_AT),
        last_seen_at=fields.pop("last_seen_at", SYNCED_AT),
        **fields,
    )


def synced(project, finished_at=SYNCED_AT) -> InventorySync:
    return InventorySync.objects.create(
        project=project,
        trigger=InventorySync.Trigger.NIGHTLY,
        status=InventorySync.Status.COMPLETED,
        started_at=finished_at - timedelta(seconds=30),
        finished_at=finished_at,
    )


def listed(client, **params) -> tuple[list[str], list[str]]:
    """The imports and the numbers only in a Space that the list shows for `params`."""
    response = client.get(reverse("phone_numbers:home"), params)
    assert response.status_code == 200
    return (
        [number.number for number in response.context["numbers"]],
        [number.number for number in response.context["space_numbers"]],
    )


# -- The list finds numbers only in a Space ---------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["5550100", "555-0100", "(415) 555", "+1 415-555", "tel:+1415555", "0100"]
)
def test_a_number_only_in_a_space_is_found_by_its_digits_in_any_form(
    client, support_user, acme, typed
):
    only_there = in_space(acme, "+14155550100")
    in_space(acme, "+12125559999")
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:home"), {"q": typed})

    assert [number.number for number in response.context["space_numbers"]] == ["+14155550100"]
    assertContains(response, "In the Space, not imported here")
    assertContains(response, reverse("phone_numbers:space_number_detail", args=[only_there.pk]))


def test_a_number_only_in_a_space_is_found_by_project_sid_and_friendly_name(
    client, support_user, acme, globex
):
    in_space(acme, "+14155550100", sid="PNabcdef0123", friendly_name="Front desk")
    in_space(globex, "+14155550101", sid="PN99999")
    client.force_login(support_user)

    assert listed(client, q="Acme")[1] == ["+14155550100"]
    assert listed(client, q="cdef01")[1] == ["+14155550100"]
    assert listed(client, q="front DESK")[1] == ["+14155550100"]
    assert listed(client, project=globex.pk)[1] == ["+14155550101"]
    assert listed(client, q="415", project=acme.pk)[1] == ["+14155550100"]


def test_type_capability_and_dates_apply_to_numbers_only_in_a_space(client, support_user, acme):
    in_space(
        acme,
        "+18005550100",
        number_type="tollfree",
        capabilities=["voice"],
        date_created=datetime(2026, 3, 1, 12, tzinfo=UTC),
    )
    in_space(acme, "+14155550100", capabilities=["sms", "mms"])
    client.force_login(support_user)

    assert listed(client, number_type="tollfree")[1] == ["+18005550100"]
    assert listed(client, capability="mms")[1] == ["+14155550100"]
    assert listed(client, imported_from="2026-03-01", imported_to="2026-03-01")[1] == [
        "+18005550100"
    ]
    assert listed(client, imported_from="2026-03-02")[1] == []


def test_filters_about_the_portals_imports_leave_numbers_only_in_a_space_out(
    client, support_user, acme, add_import
):
    add_import(acme, "+14155550101", status="failed", ticket="HD-1")
    in_space(acme, "+14155550100")
    client.force_login(support_user)

    assert listed(client) == ([], ["+14155550100"])
    assert listed(client, status="") == (["+14155550101"], ["+14155550100"])
    assert listed(client, status="failed") == (["+14155550101"], [])
    assert listed(client, status="", ticket="HD-1") == (["+14155550101"], [])
    assert listed(client, status="", imported_by=support_user.pk) == (["+14155550101"], [])


def test_an_imported_number_in_its_space_is_listed_once_as_the_import(
    client, support_user, acme, add_import
):
    imported = add_import(acme, "+14155550100")
    in_space(acme, "+14155550100", number_import=imported)
    client.force_login(support_user)

    assert listed(client, q="5550100") == (["+14155550100"], [])


def test_the_imports_come_first_and_pages_run_on_into_the_numbers_only_in_a_space(
    client, support_user, acme, add_import, monkeypatch
):
    monkeypatch.setattr("phone_numbers.views.NUMBERS_PAGE_SIZE", 3)
    imports = [add_import(acme, f"+1415555010{index}").number for index in range(4)]
    space = [in_space(acme, f"+1415555020{index}").number for index in range(5)]
    imports.reverse()
    space.reverse()
    client.force_login(support_user)

    for params in [{}, {"q": "415555"}]:
        pages = [
            client.get(reverse("phone_numbers:home"), {**params, "page": n}) for n in (1, 2, 3, 4)
        ]

        shown = [
            (
                [row.number for row in page.context["numbers"]],
                [row.number for row in page.context["space_numbers"]],
            )
            for page in pages
        ]
        assert shown == [
            (imports[:3], []),
            (imports[3:], space[:2]),
            ([], space[2:5]),
            ([], []),
        ]
        assert [page.context["has_next"] for page in pages] == [True, True, False, False]
        assertContains(pages[1], "Showing 4–6")


def test_a_short_page_costs_the_same_queries_however_many_numbers_are_in_the_spaces(
    client, support_user, acme, add_import
):
    add_import(acme, "+14155550100")
    in_space(acme, "+14155550200")
    client.force_login(support_user)

    def queries_for(**params) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("phone_numbers:home"), params).status_code == 200
        return len(queries)

    searches = [{}, {"q": "4155550"}, {"q": "Acme"}, {"inventory": "not_imported"}]
    # The first request after logging in renews the session; the counted ones do not.
    client.get(reverse("phone_numbers:home"))
    before = [queries_for(**params) for params in searches]
    for index in range(30):
        in_space(acme, f"+1415555{index:04d}", friendly_name="Acme line")

    assert [queries_for(**params) for params in searches] == before


# -- Drift filters ----------------------------------------------------------------------------


@pytest.fixture
def drift(acme, globex, add_import) -> dict[str, str]:
    """One number of each kind: in step, missing from its Space, differing, only in a Space."""
    in_step = add_import(acme, "+14155550100", sid="PNsame", capabilities=["sms", "voice"])
    in_space(acme, in_step.number, number_import=in_step, sid="PNsame")
    missing = add_import(acme, "+14155550101", missing_from_space_since=SYNCED_AT)
    differing = add_import(globex, "+14155550102", sid="PNdiff", capabilities=["sms", "voice"])
    in_space(
        globex,
        differing.number,
        number_import=differing,
        sid="PNdiff",
        capabilities=["voice"],
        differs_from_import=True,
    )
    in_space(globex, "+14155550103")
    synced(acme)
    synced(globex)
    return {
        "in_step": in_step.number,
        "missing": missing.number,
        "differs": differing.number,
        "not_imported": "+14155550103",
    }


def test_each_drift_filter_shows_exactly_its_numbers(client, support_user, drift):
    client.force_login(support_user)

    assert listed(client, inventory="not_imported") == ([], [drift["not_imported"]])
    assert listed(client, inventory="missing") == ([drift["missing"]], [])
    assert listed(client, inventory="differs") == ([drift["differs"]], [])
    assert listed(client) == (
        [drift["differs"], drift["missing"], drift["in_step"]],
        [drift["not_imported"]],
    )
    # With a search, and a project, as the project page's links will ask.
    assert listed(client, inventory="not_imported", q="415555") == ([], [drift["not_imported"]])
    assert listed(client, inventory="missing", q="0101") == ([drift["missing"]], [])
    assert listed(client, inventory="differs", project=drift_project(drift["differs"])) == (
        [drift["differs"]],
        [],
    )


def drift_project(number: str) -> int:
    return NumberImport.objects.get(number=number).project_id


def test_the_drift_filter_is_a_select_in_plain_words_and_an_unknown_value_is_explained(
    client, support_user, drift
):
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:home"), {"inventory": "sideways"})

    assertContains(response, '<select name="inventory"')
    assertContains(response, "In the Space, not imported by the portal")
    assertContains(response, "Imported, no longer in the Space")
    assertContains(response, "Imported, SignalWire&#x27;s record differs")
    assertContains(response, "No such inventory filter: showing every number.")
    assert len(response.context["numbers"]) == 3


# -- The number pages ---------------------------------------------------------------------------


def test_a_number_page_says_when_no_sync_has_read_the_space(client, support_user, acme, add_import):
    number = add_import(acme, "+14155550100")
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_detail", args=[number.pk]))

    assertContains(response, "No sync yet")


def test_a_number_page_shows_the_spaces_record_beside_the_imports(client, support_user, drift):
    number = NumberImport.objects.get(number=drift["differs"])
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_detail", args=[number.pk]))

    assertContains(response, "The import recorded")
    assertContains(response, "The Space holds now")
    assertContains(response, "SignalWire's record differs")
    assert response.context["differences"] == {"capabilities"}
    assertContains(
        response, "<td>SMS, Voice</td><td>Voice <strong>differs</strong></td>", html=False
    )


def test_a_number_page_of_an_import_in_step_says_so(client, support_user, drift):
    number = NumberImport.objects.get(number=drift["in_step"])
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_detail", args=[number.pk]))

    assert response.context["differences"] == set()
    assertContains(response, "Same type and capabilities as imported")
    assertNotContains(response, "<strong>differs</strong>")


def test_a_number_page_says_the_number_was_not_in_the_space_at_the_last_sync(
    client, support_user, drift
):
    number = NumberImport.objects.get(number=drift["missing"])
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_detail", args=[number.pk]))

    assertContains(response, "Not in the Space at the last sync on")
    assertContains(response, SYNCED_AT.strftime("%Y-%m-%d %H:%M"))


def test_a_number_only_in_a_space_has_a_page_with_its_record_and_project(
    client, support_user, acme, add_import
):
    there = in_space(
        acme, "+14155550100", sid="PNonlyhere", friendly_name="Bought in the dashboard"
    )
    elsewhere = add_import(acme, "+14155550100", status="failed")
    synced(acme)
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:space_number_detail", args=[there.pk]))

    assertContains(response, "In the Space, not imported by the portal")
    assertContains(response, "PNonlyhere")
    assertContains(response, "Bought in the dashboard")
    assertContains(response, reverse("phone_numbers:project_detail", args=[acme.pk]))
    assertContains(response, "<h2>The portal's imports of this number</h2>", html=True)
    assertContains(response, reverse("phone_numbers:number_detail", args=[elsewhere.pk]))


def test_a_space_number_the_portal_imported_leads_to_its_imports_page(client, support_user, drift):
    space_number = SpaceNumber.objects.get(number=drift["in_step"])
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:space_number_detail", args=[space_number.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse(
        "phone_numbers:number_detail", args=[space_number.number_import_id]
    )


def test_the_inventory_pages_need_a_login_and_a_role(client, acme):
    there = in_space(acme, "+14155550100")
    urls = [
        reverse("phone_numbers:space_number_detail", args=[there.pk]),
        reverse("phone_numbers:home") + "?inventory=not_imported",
    ]
    for url in urls:
        assert client.get(url)["Location"].startswith(reverse("login"))

    client.force_login(User.objects.create_user("nobody", password="x"))
    for url in urls:
        assert client.get(url).status_code == 403


def test_an_unknown_space_number_is_a_404(client, support_user):
    client.force_login(support_user)

    assert client.get(reverse("phone_numbers:space_number_detail", args=[999])).status_code == 404


# -- Where is this number?, and a duplicate failure -------------------------------------------


def test_where_is_this_number_answers_from_the_inventory_too(client, support_user, drift):
    client.force_login(support_user)

    response = client.get(reverse("phone_numbers:number_where"), {"number": "(415) 555-0103"})

    assertContains(response, "In the Spaces, as their last sync listed them")
    assertContains(response, "Globex Corp")
    assertContains(response, "Not imported by the portal")
    assertContains(response, SYNCED_AT.strftime("%Y-%m-%d %H:%M"))
    assertNotContains(response, "No project in the portal holds this number.")


def test_where_is_this_number_links_an_imported_space_number_to_its_import(
    client, support_user, drift
):
    client.force_login(support_user)
    number = NumberImport.objects.get(number=drift["differs"])

    response = client.get(reverse("phone_numbers:number_where"), {"number": drift["differs"]})

    assertContains(response, "Imported by the portal")
    assertContains(response, reverse("phone_numbers:number_detail", args=[number.pk]))


def test_a_duplicate_failure_links_to_where_the_number_is(client, support_user, acme, add_import):
    duplicate = add_import(acme, "+14155550100", status="failed", failure_category="duplicate")
    in_space(acme, "+14155550100")
    client.force_login(support_user)
    where = reverse("phone_numbers:number_where") + "?number=%2B14155550100"

    job_page = client.get(reverse("phone_numbers:job_detail", args=[duplicate.job_id]))
    number_page = client.get(reverse("phone_numbers:number_detail", args=[duplicate.pk]))
    answer = client.get(where)

    assertContains(job_page, f'<a href="{where}">Where is this number?</a>', html=False)
    assertContains(number_page, f'<a href="{where}">Where is this number?</a>', html=False)
    assertContains(answer, "Not imported by the portal")


# -- PostgreSQL's plans ---------------------------------------------------------------------------


@pytest.mark.parametrize("recent_rows", [1000, 3])
@pytest.mark.parametrize("text", ["4", "41", "415", "0415", "4155", "555-000", "(415) 555-0003"])
def test_a_digit_search_of_the_spaces_gives_the_same_rows_whichever_way_it_finds_them(
    client, support_user, acme, globex, monkeypatch, recent_rows, text
):
    # With a window of 3 rows the newest rows never hold a page: the index must find it.
    monkeypatch.setattr("phone_numbers.search.RECENT_ROWS", recent_rows)
    for index in range(8):
        in_space(acme, f"+1415555{index:04d}")
    for number in ["+12125550415", "+41555550000", "+15500055500"]:
        in_space(acme, number)
    for index in range(12):
        in_space(globex, f"+3312345{index:04d}")  # newest, no "415"
    digits = "".join(char for char in text if char.isdigit())
    client.force_login(support_user)

    for params in [{"q": text}, {"q": text, "project": acme.pk}, {"q": text, "capability": "sms"}]:
        narrowed = {"project": params["project"]} if "project" in params else {}
        expected = list(
            SpaceNumber.objects.filter(number__contains=digits, **narrowed)
            .order_by("-pk")
            .values_list("number", flat=True)
        )
        assert listed(client, **params)[1] == expected[:50]


def test_the_export_of_a_drift_filter_holds_exactly_its_numbers(client, support_user, drift):
    client.force_login(support_user)

    def exported(**params) -> list[dict]:
        response = client.get(reverse("phone_numbers:number_export"), params)
        return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

    every, missing = exported(), exported(inventory="missing")
    not_imported = exported(inventory="not_imported", q="415 555")

    assert [row["number"] for row in missing] == [drift["missing"]]
    assert [(row["number"], row["status"], row["project"], row["job"]) for row in not_imported] == [
        (drift["not_imported"], "in_space_not_imported", "Globex Corp", "")
    ]
    # As on the page: the imports, then the numbers only in a Space.
    assert [row["number"] for row in every] == [
        drift["differs"],
        drift["missing"],
        drift["in_step"],
        drift["not_imported"],
    ]


def test_a_number_only_in_a_space_is_exported_under_the_same_headers():
    assert [column.header for column in exports.SPACE_NUMBER_COLUMNS] == [
        column.header for column in exports.NUMBER_COLUMNS
    ]


def copied() -> set[tuple]:
    return set(SpaceNumberSearchRow.objects.values_list("pk", "project", "number"))


def space_only() -> set[tuple]:
    rows = SpaceNumber.objects.filter(number_import__isnull=True)
    return set(rows.values_list("pk", "project", "number"))


@pytest.mark.postgresql_only(
    reason="SpaceNumberSearchRow is kept by PostgreSQL's triggers (migration 0020); "
    "on SQLite it stays empty and searches read SpaceNumber"
)
def test_the_copy_of_the_numbers_only_in_a_space_follows_every_write(acme, globex, add_import):
    imported = add_import(acme, "+14155550100")
    SpaceNumber.objects.bulk_create(
        SpaceNumber(
            project=acme,
            number=number,
            number_import=imported if number == imported.number else None,
            sid=f"PN{index}",
            first_seen_at=SYNCED_AT,
            last_seen_at=SYNCED_AT,
        )
        for index, number in enumerate(["+14155550100", "+14155550101", "+14155550102"])
    )
    assert copied() == space_only()
    assert len(copied()) == 2

    SpaceNumber.objects.filter(number="+14155550101").update(number="+14155550109")
    SpaceNumber.objects.filter(number="+14155550102").update(project=globex)
    SpaceNumber.objects.filter(number="+14155550109").update(number_import=imported)
    assert copied() == space_only()
    assert {number for *_, number in copied()} == {"+14155550102"}

    imported.delete()  # the Space's records of it lose their import (SET NULL)
    assert copied() == space_only()
    assert len(copied()) == 3

    SpaceNumber.objects.filter(project=acme).delete()
    assert copied() == space_only()
    assert {project for _, project, _ in copied()} == {globex.pk}

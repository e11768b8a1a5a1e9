"""Generated bad input against every form a person fills in, and every query string a page or
export reads: no 500, every rejection names its field, and nothing is stored from a rejected
form.

Examples per form (1,600 requests in all, see FUZZED_FORMS) are set so that the file runs in
a minute or two on a quiet machine (each request is a few queries on near-empty tables).
"""

import html
import string

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone_numbers.models import (
    AuditEntry,
    Credential,
    ImportJob,
    NumberImport,
    Project,
    SpaceNumber,
)
from phone_numbers.search import Drift
from phone_numbers.tasks import check_project_connection, import_phone_number

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

HTMX = {"HX-Request": "true"}
# The forms fuzzed below; add the numbers search of issue 6 as one more test and entry here.
FUZZED_FORMS = {
    "import preview (pasted)": 400,
    "import preview (CSV bytes)": 150,
    "import preview (CSV-like text)": 200,
    "project form": 300,
    "numbers search": 250,
    "query strings of searches, pickers, audit pages and exports": 300,
}
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text a browser can send: no lone surrogates (they cannot be encoded at all).
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
# Every kind of Unicode digit: decimal digits of any script (Nd: fullwidth, Arabic-Indic,
# Devanagari...), which `int` reads, and superscripts, circled digits (No) and Roman numerals
# (Nl), which `isdigit` partly accepts but `int` cannot read. NUL travels in a URL as %00.
ODD_TEXT = ["\x00", "a\x00b", "²", "²²²", "①②③④", "４１５５", "٤١٥٥", "४१५५", "ⅫⅫ", "1" * 5000]
numerals = st.text(
    st.characters(categories=("Nd", "No", "Nl"), include_characters="\x00 +-"), max_size=20
)
query_text = st.one_of(any_text, numerals, st.sampled_from(ODD_TEXT))
phone_like = st.text(string.digits + " +-().#*xXtel:", min_size=1, max_size=24)
numbers_text = st.one_of(
    any_text,
    st.lists(st.one_of(phone_like, any_text), max_size=30).map("\n".join),
    st.sampled_from(["+1 415 555 0100", "0044 20 7946 0958", "tel:+14155550100", "\x00", " "]),
)
choice_text = st.one_of(st.sampled_from(["", "longcode", "tollfree", "LONGCODE", "x"]), any_text)
capabilities = st.lists(st.sampled_from(["sms", "voice", "fax", "mms", "", "SMS", "all"]))


@pytest.fixture(autouse=True)
def no_tasks(monkeypatch) -> None:
    monkeypatch.setattr(import_phone_number, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(check_project_connection, "delay", lambda *args, **kwargs: None)


def stored() -> tuple[int, ...]:
    return (
        Project.objects.count(),
        Credential.objects.count(),
        ImportJob.objects.count(),
        NumberImport.objects.count(),
    )


def assert_each_error_is_named_beside_its_field(response) -> None:
    form = response.context["form"]
    content = response.content.decode()
    assert "__all__" not in form.errors, form.errors
    for name, errors in form.errors.items():
        assert name in form.fields, name
        for error in errors:
            assert html.escape(error, quote=True) in content or error in content, (name, error)


def post_preview(client, data: dict, files: dict | None = None):
    before = stored()
    response = client.post(reverse("phone_numbers:import_new"), data | (files or {}), headers=HTMX)
    assert response.status_code == 200, response.status_code
    assert stored() == before, "a preview stored something"
    if response.context["form"].errors:
        assert_each_error_is_named_beside_its_field(response)
    return response


@pytest.fixture
def project_pks(make_project) -> list[str]:
    active = make_project(name="Acme Corp")
    inactive = make_project(name="Old Corp", is_active=False)
    no_token = make_project(name="No token", token=None)
    return [str(active.pk), str(inactive.pk), str(no_token.pk), "", "0", "abc", "999999"]


def test_fuzz_the_pasted_import_preview(client, support_user, project_pks):
    client.force_login(support_user)

    @settings(FUZZ, max_examples=FUZZED_FORMS["import preview (pasted)"])
    @given(
        project=st.sampled_from(project_pks),
        numbers=numbers_text,
        number_type=choice_text,
        chosen=capabilities,
        ticket=any_text,
    )
    def check(project, numbers, number_type, chosen, ticket):
        data = {
            "project": project,
            "numbers": numbers,
            "number_type": number_type,
            "capabilities": chosen,
            "ticket": ticket,
        }
        post_preview(client, data)

    check()


def csv_upload(content: bytes) -> dict:
    return {"csv_file": SimpleUploadedFile("numbers.csv", content, content_type="text/csv")}


def test_fuzz_the_csv_upload_with_random_bytes(client, support_user, project_pks):
    client.force_login(support_user)

    @settings(FUZZ, max_examples=FUZZED_FORMS["import preview (CSV bytes)"])
    @given(content=st.binary(max_size=2000), project=st.sampled_from(project_pks))
    def check(content, project):
        data = {"project": project, "number_type": "longcode", "capabilities": ["sms"]}
        post_preview(client, data, csv_upload(content))

    check()


csv_cell = st.one_of(
    phone_like,
    any_text.map(lambda text: text[:40]),
    st.sampled_from(["longcode", "tollfree", "sms", "sms voice", "sms;fax", '"', ""]),
)
csv_header = st.lists(
    st.sampled_from(["number", "Number", "number_type", "capabilities", "Number Type", "x", ""]),
    max_size=4,
)
csv_text = st.builds(
    lambda header, rows, separator: "\n".join(separator.join(line) for line in [header, *rows]),
    csv_header,
    st.lists(st.lists(csv_cell, max_size=5), max_size=20),
    st.sampled_from([",", ";", "\t"]),
)


def test_fuzz_the_csv_upload_with_csv_like_text(client, support_user, project_pks):
    client.force_login(support_user)

    @settings(FUZZ, max_examples=FUZZED_FORMS["import preview (CSV-like text)"])
    @given(
        text=csv_text,
        encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]),
        pasted=st.sampled_from(["", "", "+1 415 555 0100"]),
        chosen=capabilities,
    )
    def check(text, encoding, pasted, chosen):
        data = {
            "project": project_pks[0],
            "numbers": pasted,
            "number_type": "longcode",
            "capabilities": chosen,
        }
        post_preview(client, data, csv_upload(text.encode(encoding, errors="replace")))

    check()


host_text = st.one_of(
    any_text,
    st.sampled_from(["acme.signalwire.com", "https://acme.signalwire.com/x", "-bad-.com", ""]),
    st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z0-9-]{1,10}){1,3}", fullmatch=True),
)
uuid_text = st.one_of(any_text, st.uuids().map(str), st.uuids().map(lambda value: value.hex))


def test_fuzz_the_project_form(client, admin_user):
    client.force_login(admin_user)

    @settings(FUZZ, max_examples=FUZZED_FORMS["project form"])
    @given(
        name=any_text,
        space_host=host_text,
        project_id=uuid_text,
        default_country=st.one_of(st.sampled_from(["US", "gb", "", "ZZ", "USA"]), any_text),
        notes=any_text,
        token=st.one_of(any_text, st.text(string.ascii_letters + string.digits, max_size=250)),
    )
    def check(name, space_host, project_id, default_country, notes, token):
        data = {
            "name": name,
            "space_host": space_host,
            "project_id": project_id,
            "default_country": default_country,
            "notes": notes,
            "token": token,
        }
        before = stored()
        entries_before = AuditEntry.objects.count()
        response = client.post(reverse("phone_numbers:project_create"), data)
        if response.status_code == 302:
            assert Project.objects.count() == before[0] + 1
            return
        assert response.status_code == 200, response.status_code
        assert stored() == before, "a rejected project form stored something"
        assert AuditEntry.objects.count() == entries_before
        assert response.context["form"].errors
        assert_each_error_is_named_beside_its_field(response)

    check()


def test_fuzz_the_numbers_search(client, support_user, make_project):
    client.force_login(support_user)
    project = make_project(name="Acme Corp")
    # A number only in the Space: the list searches the inventory when the imports run out.
    SpaceNumber.objects.create(
        project=project,
        sid="PN0001",
        number="+14155550100",
        friendly_name="Front desk",
        first_seen_at=timezone.now(),
        last_seen_at=timezone.now(),
    )
    params = st.fixed_dictionaries(
        {},
        optional={
            "q": query_text,
            "project": st.one_of(st.just(str(project.pk)), any_text),
            "status": choice_text,
            "number_type": choice_text,
            "capability": st.one_of(capabilities.map(" ".join), any_text),
            "imported_from": st.one_of(st.dates().map(str), any_text),
            "imported_to": st.one_of(st.dates().map(str), any_text),
            "imported_by": any_text,
            "ticket": any_text,
            "inventory": st.one_of(st.sampled_from(Drift.values), any_text),
            "page": query_text,
        },
    )

    @settings(FUZZ, max_examples=FUZZED_FORMS["numbers search"])
    @given(query=params)
    def check(query):
        before = stored()
        response = client.get(reverse("phone_numbers:home"), query)
        assert response.status_code == 200, response.status_code
        assert stored() == before
        typed = query.get("q", "")
        if "<" in typed:
            assert typed not in response.content.decode()

    check()


# Every page and export that reads its query string, with the parameters it reads.
QUERY_READERS = {
    "phone_numbers:project_list": ["q"],
    "phone_numbers:import_new": ["project_q", "project"],
    "phone_numbers:number_where": ["number"],
    "phone_numbers:number_export": ["q", "ticket", "inventory", "page", "any"],
    "phone_numbers:audit_list": ["before", "person", "job", "since"],
    "phone_numbers:audit_export": ["before", "person", "job", "any"],
    "phone_numbers:job_list": ["page"],
}


def get_fully(client, url: str, query: dict):
    response = client.get(url, query)
    if response.streaming:
        b"".join(response.streaming_content)
    return response


@pytest.mark.parametrize("text", ODD_TEXT)
@pytest.mark.parametrize("url_name", QUERY_READERS)
def test_a_nul_or_a_numeral_int_cannot_read_in_any_query_string_is_no_500(
    client, admin_user, make_project, url_name, text
):
    make_project(name="Acme Corp")
    client.force_login(admin_user)

    response = get_fully(client, reverse(url_name), dict.fromkeys(QUERY_READERS[url_name], text))

    assert response.status_code == 200, response.status_code


def test_an_audit_page_older_than_an_unreadable_entry_id_is_the_first_page(client, admin_user):
    client.force_login(admin_user)

    for before in ["²", "①", "٣", "1" * 5000, "-1"]:
        response = client.get(reverse("phone_numbers:audit_list"), {"before": before})
        assert response.status_code == 200
        assert response.context["is_first_page"], before


def test_fuzz_the_query_strings_of_searches_pickers_audit_pages_and_exports(
    client, admin_user, make_project
):
    make_project(name="Acme Corp")
    client.force_login(admin_user)

    @settings(
        FUZZ,
        max_examples=FUZZED_FORMS["query strings of searches, pickers, audit pages and exports"],
    )
    @given(url_name=st.sampled_from(sorted(QUERY_READERS)), data=st.data())
    def check(url_name, data):
        names = QUERY_READERS[url_name]
        query = data.draw(st.fixed_dictionaries({}, optional=dict.fromkeys(names, query_text)))
        entries_before = AuditEntry.objects.count()
        response = get_fully(client, reverse(url_name), query)
        assert response.status_code == 200, response.status_code
        # An export is recorded whatever its filters hold; a page is not.
        recorded = AuditEntry.objects.count() - entries_before
        assert recorded == (1 if url_name.endswith("_export") else 0)

    check()

"""Generated bad input against every form a person fills in: no 500, every rejection names its
field, and nothing is stored from a rejected form.

Examples per form (1,300 requests in all, see FUZZED_FORMS) are set so that the file runs in
well under a minute.
"""

import html
import string

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone_numbers.models import AuditEntry, Credential, ImportJob, NumberImport, Project
from phone_numbers.tasks import check_project_connection, import_phone_number

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
# The forms fuzzed below; add the numbers search of issue 6 as one more test and entry here.
FUZZED_FORMS = {
    "import preview (pasted)": 400,
    "import preview (CSV bytes)": 150,
    "import preview (CSV-like text)": 200,
    "project form": 300,
    "numbers search": 250,
}
FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text a browser can send: no lone surrogates (they cannot be encoded at all).
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
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
    params = st.fixed_dictionaries(
        {},
        optional={
            "q": any_text,
            "project": st.one_of(st.just(str(project.pk)), any_text),
            "status": choice_text,
            "number_type": choice_text,
            "capability": st.one_of(capabilities.map(" ".join), any_text),
            "imported_from": st.one_of(st.dates().map(str), any_text),
            "imported_to": st.one_of(st.dates().map(str), any_text),
            "imported_by": any_text,
            "ticket": any_text,
            "page": any_text,
        },
    )

    @settings(FUZZ, max_examples=FUZZED_FORMS["numbers search"])
    @given(query=params)
    def check(query):
        # NUL cannot travel in a URL's query string; browsers drop it too.
        query = {name: value.replace("\x00", "") for name, value in query.items()}
        before = stored()
        response = client.get(reverse("phone_numbers:home"), query)
        assert response.status_code == 200, response.status_code
        assert stored() == before
        typed = query.get("q", "")
        if "<" in typed:
            assert typed not in response.content.decode()

    check()

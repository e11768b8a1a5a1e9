"""A stored token goes only to a SignalWire Space (issue 19, item 1).

Every path that can set a project's Space host is tried with each hostile host: the portal's
form, the Django admin, the model in a shell, and a row written behind the model's back, which
the check at the moment of sending must stop. Requests are caught at the client's transport, so
a request that would have left is seen, wherever it would have gone.
"""

import base64
from urllib.parse import urlsplit

import pytest
import requests
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.urls import reverse

from phone_numbers import importing
from phone_numbers.models import (
    ConnectionStatus,
    FailureCategory,
    ImportStatus,
    Project,
    is_space_host,
)
from phone_numbers.number_input import read_pasted
from phone_numbers.space_access import check_connection
from tests.conftest import run_manage

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]

TOKEN = "PTstored-token-of-acme-9999"
PROJECT_ID = "8f0c2a3e-1b2c-4d5e-8f90-123456789abc"

# The hosts of issue 19, and their near relations.
HOSTILE_HOSTS = [
    "127.0.0.1",
    "127.1",
    "0x7f.0.0.1",
    "169.254.169.254",
    "10.0.0.5",
    "[::1]",
    "metadata.google.internal",
    "signalwire.com.evil.example",
    "xn--sgnalwire-x4a.com",
    "xn--acme-5qa.signalwire.com",
    "signalwire.com",
    "a.b.signalwire.com",
    "acme.signalwire.com.evil.example",
    "acme-signalwire.com",
    "acme.signalwire.test",
    "acme.signalwire.com/x y",
]
# A port is refused with a message of its own (tested below); here it is one more way in.
HOSTILE_WITH_PORT = ["127.0.0.1:8443", "acme.signalwire.com:8443"]


@pytest.fixture(autouse=True)
def production_space_domains(settings) -> None:
    # Local mode (the SQLite run) also allows the simulator's signalwire.test; these tests
    # are about the production default, in either mode.
    settings.PORTAL_SPACE_HOST_SUFFIXES = ["signalwire.com"]


@pytest.fixture
def requests_sent(monkeypatch) -> list[tuple[str, str]]:
    """Every request the SignalWire client makes, as (host, Authorization); none leaves."""
    sent: list[tuple[str, str]] = []

    def record(adapter, request, *args, **kwargs):
        sent.append((urlsplit(request.url).hostname, request.headers.get("Authorization", "")))
        raise requests.ConnectionError("caught by the test before it left")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", record)
    return sent


@pytest.fixture
def acme(make_project) -> Project:
    return make_project(space_host="acme.signalwire.com", project_id=PROJECT_ID, token=TOKEN)


def assert_the_token_went_only_to_the_space(sent: list[tuple[str, str]]) -> None:
    basic = "Basic " + base64.b64encode(f"{PROJECT_ID}:{TOKEN}".encode()).decode()
    assert sent, "the check made no request at all: the transport is not where it was"
    assert {host for host, _ in sent} == {"acme.signalwire.com"}
    assert {authorization for _, authorization in sent} == {basic}


def form_data(**overrides) -> dict:
    return {
        "name": "Acme Corp",
        "space_host": "acme.signalwire.com",
        "project_id": PROJECT_ID,
        "default_country": "US",
        "notes": "",
        "token": "",
    } | overrides


# The rule


@pytest.mark.parametrize(
    "host", ["acme.signalwire.com", "a.signalwire.com", "acme-2.signalwire.com", "7.signalwire.com"]
)
def test_one_name_before_signalwire_com_is_a_space_host(host):
    assert is_space_host(host)


@pytest.mark.parametrize("host", HOSTILE_HOSTS + HOSTILE_WITH_PORT)
def test_anything_else_is_not_a_space_host(host):
    assert not is_space_host(host)


@pytest.mark.parametrize(
    "host", ["", "ACME.signalwire.com", "acme.signalwire.com.", "-acme.signalwire.com", ".com"]
)
def test_malformed_names_are_not_space_hosts(host):
    assert not is_space_host(host)


@override_settings(PORTAL_SPACE_HOST_SUFFIXES=["signalwire.com", "spaces.example.org"])
def test_a_configured_suffix_allows_one_name_before_it_too():
    assert is_space_host("acme.spaces.example.org")
    assert is_space_host("acme.signalwire.com")
    assert not is_space_host("spaces.example.org")
    assert not is_space_host("a.b.spaces.example.org")
    assert not is_space_host("acme.example.org")


@pytest.mark.parametrize("suffix", ["10.0.0.5", "com", "SignalWire.com", "signalwire.com:8443"])
def test_a_suffix_that_could_admit_an_address_or_a_whole_tld_stops_start_up(local_mode_env, suffix):
    result = run_manage({**local_mode_env, "PORTAL_SPACE_HOST_SUFFIXES": suffix}, "check")

    assert result.returncode == 1
    assert "PORTAL_SPACE_HOST_SUFFIXES" in result.stderr
    assert "Traceback" not in result.stderr


# Every path: the portal's form


@pytest.mark.parametrize("host", HOSTILE_HOSTS + HOSTILE_WITH_PORT)
def test_the_portal_form_refuses_a_hostile_host_so_the_token_never_leaves_for_it(
    client, admin_user, acme, requests_sent, host
):
    client.force_login(admin_user)

    added = client.post(
        reverse("phone_numbers:project_create"),
        form_data(space_host=host, project_id="11111111-1111-4111-8111-111111111111", token="PTx"),
    )
    edited = client.post(
        reverse("phone_numbers:project_edit", args=[acme.pk]), form_data(space_host=host)
    )

    for response in (added, edited):
        assert response.status_code == 200
        assert response.context["form"].errors["space_host"]
    assert list(Project.objects.values_list("space_host", flat=True)) == ["acme.signalwire.com"]
    check_connection(acme)
    assert_the_token_went_only_to_the_space(requests_sent)


@pytest.mark.parametrize(
    "typed",
    ["https://acme.signalwire.com:8443/", "acme.signalwire.com:8443", "https://127.0.0.1:8443/"],
)
def test_a_pasted_url_with_a_port_is_refused_with_a_message_not_stripped_of_it(
    client, admin_user, acme, typed
):
    client.force_login(admin_user)

    response = client.post(
        reverse("phone_numbers:project_edit", args=[acme.pk]), form_data(space_host=typed)
    )

    assert response.status_code == 200, "saved"
    assert response.context["form"].errors == {
        "space_host": [
            "Remove the port “:8443”: a SignalWire Space answers on the standard HTTPS port only."
        ]
    }


def test_a_host_outside_the_space_domains_is_refused_naming_them(client, admin_user):
    client.force_login(admin_user)

    response = client.post(
        reverse("phone_numbers:project_create"),
        form_data(space_host="https://signalwire.com.evil.example/", token="PTx"),
    )

    assert response.context["form"].errors["space_host"] == [
        "Enter the Space's host name: one name before signalwire.com, like "
        "acme.signalwire.com (no IP address, port or path)."
    ]


# Every path: the Django admin


@pytest.mark.parametrize("host", HOSTILE_HOSTS + HOSTILE_WITH_PORT)
@pytest.mark.parametrize("is_superuser", [False, True])
def test_the_django_admin_cannot_change_a_project_so_the_token_never_leaves(
    client, admin_user, acme, requests_sent, host, is_superuser
):
    admin_user.is_superuser = is_superuser
    admin_user.save()
    client.force_login(admin_user)
    fields = form_data(space_host=host, is_active="on")
    # The whole change form as the admin page posts it: on main this changed the host.
    inline = {
        "credentials-TOTAL_FORMS": "1",
        "credentials-INITIAL_FORMS": "1",
        "credentials-MIN_NUM_FORMS": "0",
        "credentials-MAX_NUM_FORMS": "1000",
        "credentials-0-id": str(acme.active_credential.pk),
        "credentials-0-project": str(acme.pk),
    }

    changed = client.post(
        reverse("admin:phone_numbers_project_change", args=[acme.pk]), fields | inline
    )
    added = client.post(reverse("admin:phone_numbers_project_add"), fields | inline)

    assert (changed.status_code, added.status_code) == (403, 403)
    acme.refresh_from_db()
    assert acme.space_host == "acme.signalwire.com"
    assert acme.active_credential.token == TOKEN
    assert Project.objects.count() == 1
    check_connection(acme)
    assert_the_token_went_only_to_the_space(requests_sent)


def test_the_django_admin_still_shows_a_project_to_its_admins(client, admin_user, acme):
    client.force_login(admin_user)

    response = client.get(reverse("admin:phone_numbers_project_change", args=[acme.pk]))

    assert response.status_code == 200
    assert "acme.signalwire.com" in response.content.decode()
    assert 'name="space_host"' not in response.content.decode()


# Every path: the model, as a shell uses it


@pytest.mark.parametrize("host", HOSTILE_HOSTS + HOSTILE_WITH_PORT)
def test_the_model_refuses_a_hostile_host_on_create_and_on_save(acme, requests_sent, host):
    with pytest.raises(ValidationError, match="Enter the Space's host name"):
        Project.objects.create(
            name="Evil", space_host=host, project_id=PROJECT_ID, default_country="US"
        )
    acme.space_host = host
    with pytest.raises(ValidationError, match="Enter the Space's host name"):
        acme.save()

    acme.refresh_from_db()
    assert acme.space_host == "acme.signalwire.com"
    assert Project.objects.count() == 1
    check_connection(acme)
    assert_the_token_went_only_to_the_space(requests_sent)


# Every path: a row written past the model (QuerySet.update, or before hosts were checked)


@pytest.mark.parametrize("host", HOSTILE_HOSTS + HOSTILE_WITH_PORT)
def test_the_connection_check_sends_nothing_for_a_stored_hostile_host(acme, requests_sent, host):
    Project.objects.filter(pk=acme.pk).update(space_host=host)
    acme.refresh_from_db()

    check_connection(acme)

    acme.refresh_from_db()
    assert requests_sent == []
    assert acme.connection_status == ConnectionStatus.CONFIGURATION
    assert "is not a SignalWire Space" in acme.connection_detail


@pytest.mark.parametrize("host", HOSTILE_HOSTS + HOSTILE_WITH_PORT)
def test_an_import_sends_nothing_for_a_stored_hostile_host(
    acme, admin_user, sent, requests_sent, host
):
    job = importing.start_job(
        project=acme,
        created_by=admin_user,
        source="single",
        ticket="",
        number_type="longcode",
        capabilities=["sms"],
        lines=read_pasted("+1 415 555 0100"),
    )
    Project.objects.filter(pk=acme.pk).update(space_host=host)
    row = job.numbers.select_related("job", "project").get()

    importing.import_number(row)

    row.refresh_from_db()
    job.refresh_from_db()
    assert requests_sent == []
    assert (row.status, row.failure_category) == (
        ImportStatus.FAILED,
        FailureCategory.CONFIGURATION,
    )
    assert job.is_paused and "is not a SignalWire Space" in job.pause_reason


def test_with_the_simulator_as_base_url_a_hostile_host_still_sends_nothing(
    make_project, sim_project, simulator, settings
):
    settings.SIGNALWIRE_BASE_URL = simulator.api_base_url
    project = make_project(project_id=sim_project.project_id, token=sim_project.token)
    check_connection(project)
    assert project.connection_status == ConnectionStatus.OK
    before = simulator.stats()["requests"]
    Project.objects.filter(pk=project.pk).update(space_host="169.254.169.254")
    project.refresh_from_db()

    check_connection(project)

    assert project.connection_status == ConnectionStatus.CONFIGURATION
    assert simulator.stats()["requests"] == before


# A project that moves loses its token


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("space_host", "other.signalwire.com"),
        ("project_id", "11111111-1111-4111-8111-111111111111"),
    ],
)
def test_a_new_space_host_or_project_id_saved_on_the_model_revokes_the_token(
    acme, admin_user, requests_sent, field, value
):
    setattr(acme, field, value)
    acme.save(by=admin_user)

    [credential] = acme.credentials.all()
    assert credential.token is None and credential.revoked_at is not None
    assert credential.revoked_by == admin_user
    assert acme.active_credential is None
    check_connection(acme)
    assert requests_sent == []


def test_saving_other_fields_keeps_the_token(acme):
    acme.name = "Acme Inc"
    acme.notes = "VIP"
    acme.save()
    acme.is_active = False
    acme.save(update_fields=["is_active", "updated_at"])

    assert acme.active_credential.token == TOKEN


def test_a_stored_bad_host_does_not_stop_the_check_from_recording_its_outcome(acme):
    # record_connection_check saves only its own fields: the host is not checked again there.
    Project.objects.filter(pk=acme.pk).update(space_host="acme.signalwire.com/x y")
    acme.refresh_from_db()

    acme.record_connection_check(ConnectionStatus.OK)

    acme.refresh_from_db()
    assert acme.connection_status == ConnectionStatus.OK


def test_changing_the_host_in_the_form_asks_for_the_token_again(client, admin_user, acme):
    client.force_login(admin_user)
    url = reverse("phone_numbers:project_edit", args=[acme.pk])

    response = client.post(url, form_data(space_host="other.signalwire.com"))

    assert response.status_code == 200, "saved"
    assert response.context["form"].errors == {
        "token": [
            "You changed the Space host: enter this project's API token again. The stored "
            "token is revoked, never sent to another Space or project."
        ]
    }
    acme.refresh_from_db()
    assert acme.space_host == "acme.signalwire.com"
    assert acme.active_credential.token == TOKEN


def test_changing_the_project_id_in_the_form_asks_for_the_token_again(client, admin_user, acme):
    client.force_login(admin_user)
    url = reverse("phone_numbers:project_edit", args=[acme.pk])

    response = client.post(url, form_data(project_id="11111111-1111-4111-8111-111111111111"))

    assert response.status_code == 200, "saved"
    assert "You changed the Project ID" in response.context["form"].errors["token"][0]
    assert acme.active_credential.token == TOKEN


def test_a_pasted_url_of_the_same_space_is_no_change_and_needs_no_token(client, admin_user, acme):
    client.force_login(admin_user)
    url = reverse("phone_numbers:project_edit", args=[acme.pk])

    response = client.post(url, form_data(space_host="https://ACME.signalwire.com/dashboard"))

    assert response.status_code == 302
    assert acme.active_credential.token == TOKEN


def test_moving_a_project_with_its_new_token_revokes_the_old_one_by_the_admin(
    client, admin_user, acme, monkeypatch
):
    monkeypatch.setattr("phone_numbers.views.check_project_connection.delay", lambda pk: None)
    client.force_login(admin_user)
    url = reverse("phone_numbers:project_edit", args=[acme.pk])

    response = client.post(url, form_data(space_host="other.signalwire.com", token="PTnew-1234"))

    assert response.status_code == 302
    old, new = acme.credentials.order_by("pk")
    assert (old.token, old.revoked_by) == (None, admin_user)
    assert (new.token, new.revoked_at, new.created_by) == ("PTnew-1234", None, admin_user)


def test_no_import_starts_in_a_project_whose_stored_host_is_not_a_space(acme, admin_user):
    Project.objects.filter(pk=acme.pk).update(space_host="10.0.0.5")
    acme.refresh_from_db()

    with pytest.raises(importing.ImportRefused, match="Space host is not a SignalWire Space"):
        importing.start_job(
            project=acme,
            created_by=admin_user,
            source="single",
            ticket="",
            number_type="longcode",
            capabilities=["sms"],
            lines=read_pasted("+1 415 555 0100"),
        )

"""Conformance with SignalWire's official OpenAPI description, and the client against the simulator.

The spec is reference data under a non-commercial licence, so it is read from
../shared/signalwire/openapi.yaml beside the checkout and never copied into the repository. The
spec tests are skipped, saying why, when that file is missing; the client-against-simulator
tests at the end always run.
"""

import dataclasses
import json
import socket
import uuid
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

import pytest
import responses

from phone_numbers.signalwire import (
    CredentialsRejected,
    RequestRejected,
    SignalWireClient,
    SignalWireUnavailable,
)
from signalwire_simulator import SimProject

IMPORT_PATH = "/Accounts/{AccountSid}/ImportedPhoneNumbers"


def response_schema(spec, path, method, status):
    responses_ = spec["paths"][path][method]["responses"]
    assert str(status) in responses_, f"{method.upper()} {path} documents no {status} response"
    return responses_[str(status)]["content"]["application/json"]["schema"]


def request_schema(spec, content_type="application/x-www-form-urlencoded"):
    return spec["paths"][IMPORT_PATH]["post"]["requestBody"]["content"][content_type]["schema"]


def assert_rfc2822(text):
    assert "Sept" not in text
    assert parsedate_to_datetime(text).utcoffset().total_seconds() == 0


def sim_post(simulator, project, auth=None, **kwargs):
    import requests

    if "data" not in kwargs and "json" not in kwargs:
        kwargs["data"] = {"number": "+14155550100", "number_type": "longcode"}
    return requests.post(
        f"{simulator.api_base_url}/Accounts/{project.project_id}/ImportedPhoneNumbers",
        auth=auth or (project.project_id, project.token),
        timeout=5,
        **kwargs,
    )


# --- the validator itself ---------------------------------------------------------------------


def test_the_validator_rejects_what_the_spec_forbids(validate):
    base = "#/components/schemas/"

    assert validate(base + "ImportPhoneNumberRequest", {"number": "+1", "number_type": "x"})
    assert validate(base + "ImportPhoneNumberRequest", {"number": "+14155550100"})
    assert validate(
        base + "ImportPhoneNumberRequest",
        {"number": "+14155550100", "number_type": "longcode", "PhoneNumber": "+1"},
    )
    assert validate(base + "CompatibilityImportedPhoneNumberError", {"code": 10000})
    assert validate(base + "IncomingPhoneNumber", {"sid": "x"})
    good = {"code": 20003, "message": "m", "more_info": "u", "status": 401}
    assert not validate(base + "CompatibilityErrorResponse", good)
    assert validate(base + "CompatibilityErrorResponse", {**good, "code": "20003"})
    assert not validate(base + "uuid", str(uuid.uuid4()))
    assert validate(base + "uuid", "b3877c40-da60-4998-90ad-b792e98472pn")
    capabilities = {"voice": True, "sms": True, "mms": True, "fax": True}
    assert not validate(base + "IncomingPhoneNumberCapabilities", capabilities)
    assert validate(base + "IncomingPhoneNumberCapabilities", {**capabilities, "SMS": True})
    assert not validate(
        base + "ImportPhoneNumberRequest",
        {"number": "+14155550100", "number_type": "tollfree", "capabilities": ["sms"]},
    )


# --- simulator responses for the import endpoint ------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": {"number": "+14155550100", "number_type": "longcode"}},
        {"data": {"number": "+18005550100", "number_type": "tollfree", "capabilities[]": ["sms"]}},
        {"data": {"number": "+49152234333323", "number_type": "longcode", "capabilities": "fax"}},
        {"json": {"number": "+447700900123", "number_type": "longcode", "capabilities": ["voice"]}},
        {"json": {"number": "+99912345", "number_type": "longcode"}},
    ],
)
def test_simulator_201_validates_against_the_spec(spec, validate, simulator, sim_project, kwargs):
    response = sim_post(simulator, sim_project, **kwargs)

    assert response.status_code == 201
    body = response.json()
    assert validate(response_schema(spec, IMPORT_PATH, "post", 201), body) == []
    assert_rfc2822(body["date_created"])
    assert_rfc2822(body["date_updated"])


def test_simulator_201_with_hosted_origin_validates(spec, validate, simulator, sim_project):
    simulator.configure(origin="hosted")

    body = sim_post(simulator, sim_project).json()

    assert body["origin"] == "hosted"
    assert validate(response_schema(spec, IMPORT_PATH, "post", 201), body) == []


def test_s3_example_nulls_mode_is_what_the_spec_would_reject(
    spec, validate, simulator, sim_project, sim_client
):
    simulator.configure(s3_example_nulls=True)

    body = sim_post(simulator, sim_project).json()
    result = sim_client.find_number("+14155550100")

    assert validate(response_schema(spec, IMPORT_PATH, "post", 201), body) != []
    assert result.friendly_name is None
    assert result.sms_method is None
    assert result.country_code is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": {"number_type": "longcode"}},
        {"data": {"number": "+12", "number_type": "longcode"}},
        {"data": {"number": "+14155550100"}},
        {"data": {"number": "+14155550100", "number_type": "mobile"}},
        {"data": {"number": "+14155550100", "number_type": "longcode", "capabilities": "video"}},
        {"json": {"number": "+14155550100", "number_type": "longcode", "capabilities": []}},
        {"json": {}},
        "duplicate",
    ],
)
def test_simulator_422_validates_against_the_spec(spec, validate, simulator, sim_project, kwargs):
    if kwargs == "duplicate":
        sim_post(simulator, sim_project)
        kwargs = {}

    response = sim_post(simulator, sim_project, **kwargs)

    assert response.status_code == 422
    assert validate(response_schema(spec, IMPORT_PATH, "post", 422), response.json()) == []


@pytest.mark.parametrize("case", ["bad-token", "partner-disabled", "no-numbers-scope", "bad-json"])
def test_simulator_400_and_401_validate_against_the_spec(
    spec, validate, simulator, sim_project, case
):
    kwargs = {}
    if case == "bad-token":
        kwargs["auth"] = (sim_project.project_id, "PTwrong")
    elif case == "partner-disabled":
        simulator.add_project(dataclasses.replace(sim_project, partner_api=False))
    elif case == "no-numbers-scope":
        simulator.add_project(dataclasses.replace(sim_project, numbers_scope=False))
    else:
        kwargs = {"data": "{", "headers": {"Content-Type": "application/json"}}

    response = sim_post(simulator, sim_project, **kwargs)

    expected = 400 if case == "bad-json" else 401
    assert response.status_code == expected
    assert validate(response_schema(spec, IMPORT_PATH, "post", expected), response.json()) == []


@pytest.mark.parametrize(
    "changes",
    [{"error_429_fraction": 1}, {"error_500_fraction": 1}, {"error_503_fraction": 1}],
)
def test_simulator_undocumented_errors_use_the_compat_error_shape(
    spec, validate, simulator, sim_project, changes
):
    simulator.configure(**changes)

    response = sim_post(simulator, sim_project)

    assert str(response.status_code) not in spec["paths"][IMPORT_PATH]["post"]["responses"]
    assert validate("#/components/schemas/CompatibilityErrorResponse", response.json()) == []


# --- simulator responses for the other endpoints ----------------------------------------------


def test_simulator_list_fetch_and_account_validate_against_the_spec(
    spec, validate, simulator, sim_project
):
    import requests

    simulator.add_project(dataclasses.replace(sim_project, management_scope=True))
    for i in range(3):
        sim_post(
            simulator, sim_project, data={"number": f"+4930123456{i}", "number_type": "longcode"}
        )
    auth = (sim_project.project_id, sim_project.token)
    account = f"{simulator.api_base_url}/Accounts/{sim_project.project_id}"
    list_path = "/Accounts/{AccountSid}/IncomingPhoneNumbers"
    fetch_path = "/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}"

    first = requests.get(f"{account}/IncomingPhoneNumbers?PageSize=2", auth=auth, timeout=5)
    second = requests.get(simulator.url + first.json()["next_page_uri"], auth=auth, timeout=5)
    sid = first.json()["incoming_phone_numbers"][0]["sid"]
    fetched = requests.get(f"{account}/IncomingPhoneNumbers/{sid}", auth=auth, timeout=5)
    missing = requests.get(f"{account}/IncomingPhoneNumbers/{uuid.uuid4()}", auth=auth, timeout=5)
    denied = requests.get(f"{account}/IncomingPhoneNumbers", auth=(auth[0], "x"), timeout=5)
    project = requests.get(account, auth=auth, timeout=5)

    checks = [
        (first, list_path, 200),
        (second, list_path, 200),
        (fetched, fetch_path, 200),
        (missing, fetch_path, 404),
        (denied, list_path, 401),
        (project, "/Accounts/{Sid}", 200),
    ]
    for response, path, status in checks:
        assert response.status_code == status
        assert validate(response_schema(spec, path, "get", status), response.json()) == []
    assert len(second.json()["incoming_phone_numbers"]) == 1


# --- request bodies the client sends ------------------------------------------------------------


def decode_form(body):
    """A form body as the API would read it: `capabilities[]` is the Rails spelling of an
    array, and repeated keys are the OpenAPI default for one."""
    decoded = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        if key == "capabilities[]" or key == "capabilities":
            decoded.setdefault("capabilities", []).append(value)
        else:
            assert key not in decoded, f"{key} sent twice"
            decoded[key] = value
    return decoded


@pytest.mark.parametrize("encoding", ["form", "form-repeated", "json"])
@pytest.mark.parametrize(
    ("number", "number_type", "capabilities"),
    [
        ("+14155550100", "longcode", None),
        ("+18005550100", "tollfree", ["sms", "voice", "fax", "mms"]),
        ("+49152234333323", "longcode", ["sms", "fax"]),
        ("+447700900123", "longcode", ["voice"]),
    ],
)
def test_client_request_bodies_validate_against_the_spec(
    spec, validate, encoding, number, number_type, capabilities
):
    client = SignalWireClient(
        "acme.signalwire.com", str(uuid.UUID(int=5)), "PTx", encoding=encoding
    )
    url = f"{client.base_url}/Accounts/{client.project_id}/ImportedPhoneNumbers"

    with responses.RequestsMock() as mock:
        mock.post(url, status=422, json={"code": "10000", "message": "stop here"})
        with pytest.raises(RequestRejected):
            client.import_number(number, number_type, capabilities)
        request = mock.calls[0].request

    if encoding == "json":
        assert request.headers["Content-Type"] == "application/json"
        body = json.loads(request.body)
    else:
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        body = decode_form(request.body)
    assert validate(request_schema(spec), body) == []
    assert body["number"] == number
    assert body.get("capabilities") == (
        None if capabilities is None or len(capabilities) == 4 else capabilities
    )


def test_every_import_the_client_sent_to_the_simulator_validates(
    spec, validate, simulator, sim_project
):
    for i, encoding in enumerate(["form", "form-repeated", "json"]):
        client = SignalWireClient(
            "x",
            sim_project.project_id,
            sim_project.token,
            base_url=simulator.api_base_url,
            encoding=encoding,
        )
        client.import_number(f"+1415555010{i}", "longcode", ["sms", "mms"])
        client.import_number(f"+1800555010{i}", "tollfree")

    sent = [e for e in simulator.exchanges() if e["path"].endswith("/ImportedPhoneNumbers")]

    assert len(sent) == 6
    for exchange in sent:
        is_json = exchange["headers"]["Content-Type"] == "application/json"
        body = json.loads(exchange["body"]) if is_json else decode_form(exchange["body"])
        assert validate(request_schema(spec), body) == []
        assert exchange["status"] == "201"


# --- the client against the running simulator (no spec needed) ----------------------------------


def test_client_imports_finds_and_checks_against_the_simulator(sim_client):
    imported = sim_client.import_number("+14155550100", "longcode", ["sms", "voice"])

    found = sim_client.find_number("+14155550100")

    assert imported.capabilities.enabled() == ("sms", "voice")
    assert imported.friendly_name == "(415) 555-0100"
    assert imported.created_at is not None
    assert found == imported
    assert found.raw == imported.raw
    assert sim_client.find_number("+14155550101") is None
    assert sim_client.check_credentials() is None


def test_client_find_number_follows_the_simulators_pages(simulator, sim_project, sim_client):
    for i in range(52):
        sim_post(
            simulator,
            sim_project,
            data={"number": f"+4930123456{i:02d}", "number_type": "longcode"},
        )
    sim_post(simulator, sim_project, data={"number": "+4930123456", "number_type": "longcode"})

    found = sim_client.find_number("+4930123456")

    assert found.phone_number == "+4930123456"
    lists = [e for e in simulator.exchanges() if "/IncomingPhoneNumbers" in e["path"]]
    assert len(lists) == 2
    assert "PageToken=" in lists[1]["path"]


def test_client_duplicate_is_request_rejected_and_recognisable(sim_client):
    sim_client.import_number("+14155550100", "longcode")

    with pytest.raises(RequestRejected) as info:
        sim_client.import_number("+14155550100", "longcode")

    assert info.value.is_duplicate is True
    assert info.value.status == 422
    assert info.value.code == "10000"


def test_client_invalid_number_is_request_rejected_not_duplicate(sim_client):
    with pytest.raises(RequestRejected) as info:
        sim_client.import_number("+12", "longcode")

    assert info.value.is_duplicate is False
    assert info.value.message == "Number is invalid"


def test_client_bad_token_is_credentials_rejected(simulator, sim_project):
    client = SignalWireClient(
        "x", sim_project.project_id, "PTwrong", base_url=simulator.api_base_url
    )

    with pytest.raises(CredentialsRejected) as info:
        client.check_credentials()
    with pytest.raises(CredentialsRejected):
        client.import_number("+14155550100", "longcode")

    assert info.value.is_numbers_scope_missing is False
    assert info.value.code == "20003"


def test_client_tells_a_token_missing_the_numbers_scope(simulator, sim_project, sim_client):
    simulator.add_project(
        dataclasses.replace(sim_project, numbers_scope=False, management_scope=True)
    )

    with pytest.raises(CredentialsRejected) as info:
        sim_client.check_credentials()

    assert info.value.is_numbers_scope_missing is True


def test_client_partner_api_disabled_shows_on_import_only(simulator, sim_project, sim_client):
    simulator.add_project(dataclasses.replace(sim_project, partner_api=False))

    sim_client.check_credentials()
    with pytest.raises(CredentialsRejected) as info:
        sim_client.import_number("+14155550100", "longcode")

    assert info.value.code == "20003"


@pytest.mark.parametrize(
    ("changes", "status", "retry_after", "may_have_reached"),
    [
        ({"error_429_fraction": 1, "retry_after": 4}, 429, 4.0, False),
        ({"error_429_fraction": 1, "retry_after": None}, 429, None, False),
        ({"error_500_fraction": 1}, 500, None, True),
        ({"error_503_fraction": 1}, 503, None, False),
    ],
)
def test_client_unavailable_on_simulated_errors(
    simulator, sim_client, changes, status, retry_after, may_have_reached
):
    simulator.configure(**changes)

    with pytest.raises(SignalWireUnavailable) as info:
        sim_client.import_number("+14155550100", "longcode")

    assert info.value.status == status
    assert info.value.retry_after == retry_after
    assert info.value.may_have_reached_signalwire is may_have_reached


def test_client_rate_limited_by_the_simulator_gets_retry_after(simulator, sim_client):
    simulator.configure(rate_limit=2)
    sim_client.find_number("+14155550100")
    sim_client.find_number("+14155550100")

    with pytest.raises(SignalWireUnavailable) as info:
        sim_client.find_number("+14155550100")

    assert info.value.status == 429
    assert info.value.retry_after == 1.0


def test_client_read_timeout_may_have_reached_and_the_lookup_finds_the_number(
    simulator, sim_project
):
    simulator.configure(timeout_fraction=1, timeout_seconds=1.5, timeout_creates=1)
    client = SignalWireClient(
        "x",
        sim_project.project_id,
        sim_project.token,
        base_url=simulator.api_base_url,
        timeout=(1, 0.5),
    )

    with pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode")

    assert info.value.may_have_reached_signalwire is True
    assert info.value.status is None
    assert client.find_number("+14155550100") is not None
    assert simulator.stats()["created"][sim_project.project_id] == {"+14155550100": 1}


def test_client_connection_reset_may_have_reached(simulator, sim_client):
    simulator.configure(reset_fraction=1)

    with pytest.raises(SignalWireUnavailable) as info:
        sim_client.import_number("+14155550100", "longcode")

    assert info.value.may_have_reached_signalwire is True


def test_client_connect_error_never_reached():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = SignalWireClient(
        "x", str(uuid.UUID(int=9)), "PTx", base_url=f"http://127.0.0.1:{port}/api/laml/2010-04-01"
    )

    with pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode")

    assert info.value.may_have_reached_signalwire is False
    assert "PTx" not in str(info.value)


def test_client_against_another_simulated_project_keeps_credentials_apart(simulator, sim_client):
    other = SimProject(str(uuid.uuid4()), "PTother")
    simulator.add_project(other)
    other_client = SignalWireClient(
        "x", other.project_id, other.token, base_url=simulator.api_base_url
    )

    sim_client.import_number("+14155550100", "longcode")
    other_client.import_number("+14155550100", "longcode")

    assert sim_client.find_number("+14155550100").account_sid == sim_client.project_id
    assert other_client.find_number("+14155550100").account_sid == other.project_id

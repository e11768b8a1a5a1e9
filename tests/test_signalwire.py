"""SignalWire client against a fake transport (`responses`): method, URL, auth, body, timeout,
User-Agent and the error raised for every class of answer."""

import base64
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
import urllib3.exceptions

from phone_numbers import signalwire
from phone_numbers.signalwire import (
    CredentialsRejected,
    IncomingPhoneNumber,
    RequestRejected,
    SignalWireClient,
    SignalWireError,
    SignalWireUnavailable,
    parse_retry_after,
)
from tests.fakes import PROJECT, number_body

TOKEN = "PTsecret0token0value0do0not0leak"
SPACE = "acme.signalwire.com"
BASE = f"https://{SPACE}/api/laml/2010-04-01/Accounts/{PROJECT}"
IMPORT_URL = f"{BASE}/ImportedPhoneNumbers"
LIST_URL = f"{BASE}/IncomingPhoneNumbers"
BASIC = "Basic " + base64.b64encode(f"{PROJECT}:{TOKEN}".encode()).decode()
SECRETS = (TOKEN, base64.b64encode(f"{PROJECT}:{TOKEN}".encode()).decode())


def page(numbers, next_page_uri=None):
    return {
        "uri": "/x",
        "first_page_uri": "/x",
        "next_page_uri": next_page_uri,
        "previous_page_uri": None,
        "page": 0,
        "page_size": 50,
        "incoming_phone_numbers": numbers,
    }


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client():
    return SignalWireClient(SPACE, PROJECT, TOKEN, version="9.9.9")


def form_pairs(request):
    return parse_qsl(request.body, keep_blank_values=True)


def assert_common_request(request, method, url, timeout=(3.05, 10.0)):
    assert request.method == method
    assert request.url == url
    assert request.headers["Authorization"] == BASIC
    assert request.headers["User-Agent"] == "number-import-portal/9.9.9"
    assert request.req_kwargs["timeout"] == timeout


def assert_no_secret(*texts):
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


# --- import_number: success and encodings -----------------------------------------------------


def test_import_201_posts_form_without_capabilities_when_all_four_wanted(rsps, client):
    rsps.post(IMPORT_URL, json=number_body(), status=201)

    result = client.import_number("+14155550100", "longcode", ["sms", "voice", "fax", "mms"])

    request = rsps.calls[0].request
    assert_common_request(request, "POST", IMPORT_URL)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.body == "number=%2B14155550100&number_type=longcode"
    assert isinstance(result, IncomingPhoneNumber)
    assert result.sid == "16db4a36-8a97-4e10-98c5-58daafac95f9"
    assert result.phone_number == "+14155550100"
    assert result.capabilities.enabled() == ("sms", "voice", "fax", "mms")
    assert result.created_at == datetime(2023, 9, 28, 17, 58, 29, tzinfo=UTC)
    assert result.raw == number_body()


def test_import_with_no_capabilities_argument_omits_them_too(rsps, client):
    rsps.post(IMPORT_URL, json=number_body(), status=201)

    client.import_number("+14155550100", "tollfree")

    assert form_pairs(rsps.calls[0].request) == [
        ("number", "+14155550100"),
        ("number_type", "tollfree"),
    ]


def test_import_subset_capabilities_form_uses_bracket_keys(rsps, client):
    caps = {"voice": True, "sms": True, "mms": False, "fax": False}
    rsps.post(IMPORT_URL, json=number_body(capabilities=caps), status=201)

    result = client.import_number("+14155550100", "longcode", ["sms", "voice"])

    assert form_pairs(rsps.calls[0].request) == [
        ("number", "+14155550100"),
        ("number_type", "longcode"),
        ("capabilities[]", "sms"),
        ("capabilities[]", "voice"),
    ]
    assert result.capabilities.enabled() == ("sms", "voice")


def test_import_form_repeated_encoding_repeats_plain_keys(rsps):
    client = SignalWireClient(SPACE, PROJECT, TOKEN, encoding="form-repeated", version="9.9.9")
    rsps.post(IMPORT_URL, json=number_body(), status=201)

    client.import_number("+14155550100", "longcode", ["fax"])

    assert form_pairs(rsps.calls[0].request)[2:] == [("capabilities", "fax")]


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [
        (
            ["mms", "sms"],
            {"number": "+4930123456", "number_type": "longcode", "capabilities": ["mms", "sms"]},
        ),  # noqa: E501
        (None, {"number": "+4930123456", "number_type": "longcode"}),
    ],
)
def test_import_json_encoding_sends_json_body(rsps, capabilities, expected):
    client = SignalWireClient(SPACE, PROJECT, TOKEN, encoding="json", version="9.9.9")
    rsps.post(IMPORT_URL, json=number_body("+4930123456"), status=201)

    client.import_number("+4930123456", "longcode", capabilities)

    request = rsps.calls[0].request
    assert_common_request(request, "POST", IMPORT_URL)
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == expected


def test_timeout_and_base_url_settings_are_used(rsps):
    base = "http://127.0.0.1:8765/api/laml/2010-04-01"
    client = SignalWireClient(SPACE, PROJECT, TOKEN, base_url=base, timeout=(1, 2), version="9.9.9")
    url = f"{base}/Accounts/{PROJECT}/ImportedPhoneNumbers"
    rsps.post(url, json=number_body(), status=201)

    client.import_number("+14155550100", "longcode")

    assert_common_request(rsps.calls[0].request, "POST", url, timeout=(1.0, 2.0))


def test_import_tolerates_the_nullable_fields_of_signalwires_own_example(rsps, client):
    body = number_body(
        friendly_name=None,
        voice_method=None,
        voice_fallback_method=None,
        sms_method=None,
        sms_fallback_method=None,
        status_callback_method=None,
        country_code=None,
        origin="ported",
        date_created="Tue, 25 Sept 2018 23:00:00 +0000",
        capabilities={"voice": False, "SMS": True, "MMS": False, "fax": True},
        verification_status="Unverified",
    )
    rsps.post(IMPORT_URL, json=body, status=201)

    result = client.import_number("+14155550100", "tollfree", ["sms", "fax"])

    assert result.friendly_name is None
    assert result.sms_method is None
    assert result.country_code is None
    assert result.origin == "ported"
    assert result.verification_status == "Unverified"
    assert result.created_at == datetime(2018, 9, 25, 23, 0, tzinfo=UTC)
    assert result.capabilities.enabled() == ("sms", "fax")


def test_import_warns_when_signalwire_grants_other_capabilities(rsps, client, caplog):
    rsps.post(IMPORT_URL, json=number_body(), status=201)

    with caplog.at_level(logging.WARNING, logger="phone_numbers.signalwire"):
        client.import_number("+14155550100", "longcode", ["sms"])

    assert any("capabilities" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_import_201_with_unreadable_body_may_have_reached_signalwire(rsps, client):
    rsps.post(IMPORT_URL, body="<html>ok</html>", status=201)

    with pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode")

    assert info.value.may_have_reached_signalwire is True
    assert info.value.status == 201


@pytest.mark.parametrize(
    ("number_type", "capabilities"),
    [("mobile", None), ("longcode", ["video"]), ("longcode", []), ("longcode", "sms")],
)
def test_import_refuses_unknown_type_or_capabilities_without_sending(
    rsps, client, number_type, capabilities
):
    with pytest.raises(ValueError):
        client.import_number("+14155550100", number_type, capabilities)

    assert len(rsps.calls) == 0


# --- import_number: errors --------------------------------------------------------------------


def error_body(code, message, status):
    return {"code": code, "message": message, "more_info": "https://x.test/e", "status": status}


@pytest.mark.parametrize(
    ("status", "body", "headers", "error_class", "attributes"),
    [
        (
            400,
            error_body(21421, "PhoneNumber is invalid", 400),
            {},
            RequestRejected,
            {"code": "21421", "is_duplicate": False, "message": "PhoneNumber is invalid"},
        ),
        (
            401,
            error_body(20003, "Authentication failed", 401),
            {},
            CredentialsRejected,
            {"code": "20003", "is_numbers_scope_missing": False},
        ),
        (403, {"error": "Forbidden"}, {}, CredentialsRejected, {"code": None}),
        (
            404,
            error_body(20404, "Not found", 404),
            {},
            RequestRejected,
            {"code": "20404", "is_duplicate": False},
        ),
        (
            422,
            error_body("10000", "Number type can't be blank", 422),
            {},
            RequestRejected,
            {"code": "10000", "is_duplicate": False, "message": "Number type can't be blank"},
        ),
        (
            422,
            error_body("10000", "Number has already been taken", 400),
            {},
            RequestRejected,
            {"code": "10000", "is_duplicate": True, "more_info": "https://x.test/e"},
        ),
        (
            422,
            {"message": "Phone number already exists in this Space"},
            {},
            RequestRejected,
            {"code": None, "is_duplicate": True},
        ),
        (409, {}, {}, RequestRejected, {"is_duplicate": True}),
        (
            429,
            error_body(20429, "Too Many Requests", 429),
            {"Retry-After": "7"},
            SignalWireUnavailable,
            {"code": "20429", "retry_after": 7.0, "may_have_reached_signalwire": False},
        ),
        (
            429,
            error_body(20429, "Too Many Requests", 429),
            {},
            SignalWireUnavailable,
            {"retry_after": None, "may_have_reached_signalwire": False},
        ),
        (
            500,
            error_body(10002, "Internal Server Error", 500),
            {},
            SignalWireUnavailable,
            {"retry_after": None, "may_have_reached_signalwire": True},
        ),
        (
            503,
            {},
            {"Retry-After": "30"},
            SignalWireUnavailable,
            {"retry_after": 30.0, "may_have_reached_signalwire": False, "code": None},
        ),
    ],
)
def test_import_error_statuses_raise_the_matching_error(
    rsps, client, status, body, headers, error_class, attributes
):
    rsps.post(IMPORT_URL, json=body, status=status, headers=headers)

    with pytest.raises(error_class) as info:
        client.import_number("+14155550100", "longcode")

    error = info.value
    assert error.status == status
    for name, value in attributes.items():
        assert getattr(error, name) == value, name
    assert_common_request(rsps.calls[0].request, "POST", IMPORT_URL)
    assert_no_secret(str(error), repr(error))


def test_502_with_html_body_is_unavailable_with_the_reason_as_message(rsps, client):
    rsps.post(IMPORT_URL, body="<html>Bad Gateway</html>", status=502)

    with pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode")

    assert info.value.message == "Bad Gateway"
    assert info.value.may_have_reached_signalwire is True


def test_429_retry_after_as_http_date_becomes_seconds(rsps, client):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    rsps.post(IMPORT_URL, json={}, status=429, headers={"Retry-After": when})

    with pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode")

    assert 110 <= info.value.retry_after <= 121


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("12", 12.0),
        (" 3 ", 3.0),
        ("-1", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:26:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value, expected):
    now = datetime(2015, 10, 21, 7, 27, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


def connect_refused():
    pool_error = urllib3.exceptions.NewConnectionError(None, "Connection refused")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", pool_error))


@pytest.mark.parametrize(
    ("exception", "may_have_reached"),
    [
        (requests.ReadTimeout("read timed out"), True),
        (requests.ConnectTimeout("connect timed out"), False),
        (connect_refused(), False),
        (
            requests.ConnectionError(
                urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104))
            ),
            True,
        ),
        (requests.exceptions.ChunkedEncodingError("broken body"), True),
    ],
)
def test_network_failures_are_unavailable_and_say_whether_the_request_arrived(
    rsps, client, exception, may_have_reached
):
    rsps.post(IMPORT_URL, body=exception)

    with pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode")

    error = info.value
    assert error.may_have_reached_signalwire is may_have_reached
    assert error.status is None
    assert error.retry_after is None
    # The requests exception carries the prepared request, Authorization included.
    assert error.__cause__ is None
    assert error.__context__ is None


# --- secrets ------------------------------------------------------------------------------------


def test_token_never_appears_in_errors_reprs_or_logs(rsps, client, caplog):
    outcomes = [
        {"json": error_body("10000", f"bad token {TOKEN} echoed", 422), "status": 422},
        {"json": error_body(20003, "Authentication failed", 401), "status": 401},
        {"json": {}, "status": 429, "headers": {"Retry-After": "1"}},
        {"json": {}, "status": 500},
        {"body": requests.ReadTimeout(f"timeout with {TOKEN}")},
        {"body": connect_refused()},
        {"json": number_body(), "status": 201},
    ]
    for outcome in outcomes:
        rsps.post(IMPORT_URL, **outcome)
    rsps.get(LIST_URL, json=error_body(20003, "Authentication failed", 401), status=401)
    rsps.get(BASE, json=error_body(20003, "Authentication failed", 401), status=401)
    texts = [repr(client)]

    with caplog.at_level(logging.DEBUG):
        for _ in outcomes:
            try:
                result = client.import_number("+14155550100", "longcode")
            except SignalWireError as error:
                texts += [str(error), repr(error), error.message]
            else:
                texts.append(repr(result))
        with pytest.raises(CredentialsRejected) as info:
            client.check_credentials()
        texts += [str(info.value), repr(info.value)]

    texts += [record.getMessage() for record in caplog.records]
    assert len(caplog.records) > len(outcomes)
    assert "[redacted]" in " ".join(texts)
    assert_no_secret(*texts)


def test_client_repr_names_the_project_but_not_the_token(client):
    assert PROJECT in repr(client)
    assert TOKEN not in repr(client)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://acme.signalwire.com/api/laml/2010-04-01",
        "http://10.0.0.8:8765/api/laml/2010-04-01",
        "http://127.evil.test/api/laml/2010-04-01",
        "ftp://127.0.0.1/api",
        "https:///no-host",
    ],
)
def test_plain_http_and_other_schemes_are_refused_unless_loopback(base_url):
    with pytest.raises(ValueError) as info:
        SignalWireClient(SPACE, PROJECT, TOKEN, base_url=base_url)

    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8765/api/laml/2010-04-01",
        "http://127.8.9.10/api/laml/2010-04-01",
        "http://localhost:8765/api/laml/2010-04-01/",
        "http://[::1]:8765/api/laml/2010-04-01",
        "https://proxy.example.test/sw/api/laml/2010-04-01",
    ],
)
def test_https_and_loopback_http_base_urls_are_accepted(base_url):
    client = SignalWireClient(SPACE, PROJECT, TOKEN, base_url=base_url)

    assert client.base_url == base_url.rstrip("/")


@pytest.mark.parametrize("space_host", ["", "https://acme.signalwire.com", "acme.com/path"])
def test_space_host_must_be_a_bare_host_name(space_host):
    with pytest.raises(ValueError):
        SignalWireClient(space_host, PROJECT, TOKEN)


# --- find_number ------------------------------------------------------------------------------


def test_find_number_encodes_plus_and_returns_the_exact_match(rsps, client):
    rsps.get(
        LIST_URL,
        json=page([number_body("+141555501009", sid="other"), number_body("+14155550100")]),
    )

    result = client.find_number("+14155550100")

    request = rsps.calls[0].request
    assert_common_request(request, "GET", f"{LIST_URL}?PhoneNumber=%2B14155550100")
    assert result.phone_number == "+14155550100"
    assert result.sid == "16db4a36-8a97-4e10-98c5-58daafac95f9"


def test_find_number_follows_next_page_uri(rsps, client):
    next_uri = (
        f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers"
        "?PhoneNumber=%2B14155550100&Page=1&PageSize=1&PageToken=PAabc"
    )
    rsps.get(LIST_URL, json=page([number_body("+141555501001", sid="x")], next_uri))
    rsps.get(f"https://{SPACE}{next_uri}", json=page([number_body("+14155550100", sid="y")]))

    result = client.find_number("+14155550100")

    assert result.sid == "y"
    assert [call.request.url for call in rsps.calls] == [
        f"{LIST_URL}?PhoneNumber=%2B14155550100",
        f"https://{SPACE}{next_uri}",
    ]
    assert rsps.calls[1].request.headers["Authorization"] == BASIC


def test_find_number_returns_none_after_the_last_page(rsps, client):
    next_uri = f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers?Page=1&PageToken=P"
    rsps.get(LIST_URL, json=page([number_body("+141555501001")], next_uri))
    rsps.get(f"https://{SPACE}{next_uri}", json=page([]))

    assert client.find_number("+14155550100") is None
    assert len(rsps.calls) == 2


def test_find_number_keeps_the_simulator_base_when_paging(rsps):
    base = "http://127.0.0.1:8765/api/laml/2010-04-01"
    client = SignalWireClient(SPACE, PROJECT, TOKEN, base_url=base)
    next_uri = f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers?Page=1&PageToken=P"
    rsps.get(f"{base}/Accounts/{PROJECT}/IncomingPhoneNumbers", json=page([], next_uri))
    rsps.get(f"http://127.0.0.1:8765{next_uri}", json=page([number_body()]))

    assert client.find_number("+14155550100") is not None


def test_find_number_refuses_to_send_credentials_to_another_host(rsps, client):
    rsps.get(LIST_URL, json=page([], "https://evil.test/api/laml/2010-04-01/steal"))

    with pytest.raises(SignalWireUnavailable):
        client.find_number("+14155550100")

    assert len(rsps.calls) == 1


def test_find_number_stops_when_next_page_uri_repeats(rsps, client):
    loop = f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers?Page=1&PageToken=P"
    rsps.get(LIST_URL, json=page([], loop))
    rsps.get(f"https://{SPACE}{loop}", json=page([], loop))

    with pytest.raises(SignalWireUnavailable):
        client.find_number("+14155550100")


def test_find_number_raises_credentials_rejected_on_401(rsps, client):
    rsps.get(LIST_URL, json=error_body(20003, "Authentication failed", 401), status=401)

    with pytest.raises(CredentialsRejected):
        client.find_number("+14155550100")


# --- check_credentials ------------------------------------------------------------------------


def test_check_credentials_ok_is_a_one_item_numbers_read(rsps, client):
    rsps.get(LIST_URL, json=page([]))

    assert client.check_credentials() is None

    assert_common_request(rsps.calls[0].request, "GET", f"{LIST_URL}?PageSize=1")


def test_check_credentials_401_with_account_also_401_is_rejected_credentials(rsps, client):
    rsps.get(LIST_URL, json=error_body(20003, "Authentication failed", 401), status=401)
    rsps.get(BASE, json=error_body(20003, "Authentication failed", 401), status=401)

    with pytest.raises(CredentialsRejected) as info:
        client.check_credentials()

    assert info.value.is_numbers_scope_missing is False
    assert_common_request(rsps.calls[1].request, "GET", BASE)


def test_check_credentials_401_while_the_account_opens_means_numbers_scope_missing(rsps, client):
    rsps.get(LIST_URL, json=error_body(20003, "Authentication failed", 401), status=401)
    rsps.get(BASE, json={"sid": PROJECT}, status=200)

    with pytest.raises(CredentialsRejected) as info:
        client.check_credentials()

    assert info.value.is_numbers_scope_missing is True
    assert "Numbers scope" in str(info.value)


def test_check_credentials_403_means_numbers_scope_missing(rsps, client):
    rsps.get(LIST_URL, json={"error": "Forbidden"}, status=403)

    with pytest.raises(CredentialsRejected) as info:
        client.check_credentials()

    assert info.value.is_numbers_scope_missing is True


@pytest.mark.parametrize(
    "failure",
    [{"body": requests.ConnectTimeout("slow")}, {"status": 503, "json": {}}],
)
def test_check_credentials_unreachable_is_unavailable(rsps, client, failure):
    rsps.get(LIST_URL, **failure)

    with pytest.raises(SignalWireUnavailable):
        client.check_credentials()


# --- sessions ---------------------------------------------------------------------------------


def test_each_thread_gets_its_own_pooled_session_without_credentials():
    sessions = []
    thread = threading.Thread(target=lambda: sessions.append(signalwire._session()))
    thread.start()
    thread.join()

    mine = signalwire._session()

    assert mine is signalwire._session()
    assert sessions[0] is not mine
    assert mine.auth is None
    assert "Authorization" not in mine.headers


def test_a_cookie_from_one_project_never_reaches_another(rsps):
    other_project = "c0ffee00-da60-4998-90ad-b792e98472ac"
    first = SignalWireClient(SPACE, PROJECT, TOKEN)
    second = SignalWireClient(SPACE, other_project, "PTother")
    rsps.get(LIST_URL, json=page([]), headers={"Set-Cookie": "session=abc; Path=/"})
    rsps.get(
        f"https://{SPACE}/api/laml/2010-04-01/Accounts/{other_project}/IncomingPhoneNumbers",
        json=page([]),
    )

    first.check_credentials()
    second.check_credentials()

    assert "Cookie" not in rsps.calls[1].request.headers
    assert urlsplit(rsps.calls[1].request.url).path.startswith(
        f"/api/laml/2010-04-01/Accounts/{other_project}"
    )
    expected = "Basic " + base64.b64encode(f"{other_project}:PTother".encode()).decode()
    assert rsps.calls[1].request.headers["Authorization"] == expected


def test_a_redirect_is_not_followed_and_counts_as_unavailable(rsps, client):
    rsps.post(IMPORT_URL, status=302, headers={"Location": "https://elsewhere.test/import"})

    with pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode")

    assert info.value.status == 302
    assert info.value.may_have_reached_signalwire is True
    assert len(rsps.calls) == 1


def test_check_credentials_404_for_an_unknown_project_is_request_rejected(rsps, client):
    rsps.get(
        LIST_URL, json=error_body(20404, "The requested resource was not found", 404), status=404
    )

    with pytest.raises(RequestRejected) as info:
        client.check_credentials()

    assert info.value.code == "20404"

"""SignalWire client against a fake transport (`responses`): method, URL, auth, body, timeout,
User-Agent and the error raised for every class of answer. Deadlines are tested over real
loopback sockets, against servers that answer a byte at a time."""

import base64
import ipaddress
import json
import logging
import os
import socket
import ssl
import threading
import time
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


# --- deadlines --------------------------------------------------------------------------------

# Servers below send a byte every TRICKLE_INTERVAL: every socket read returns in time, so only
# a deadline ends the call. After TRICKLE_SECONDS they send the rest, so that a client that
# ignored its deadline fails these tests slowly instead of hanging them.
TRICKLE_INTERVAL = 0.2
TRICKLE_SECONDS = 4.0
DEADLINE = 1.0
# The deadline plus room for a loaded machine; a client that ignored it would take at least
# TRICKLE_SECONDS.
CUT_WITHIN = 1.5


def http_answer(status_line, body):
    """A whole HTTP/1.1 answer with a JSON body, and where that body starts."""
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status_line}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    return head + payload, len(head)


class TrickleServer:
    """A loopback server answering every request with `answer`, trickled from `trickle_from`.

    `trickle_from=0` trickles the status line and headers; the start of the body trickles
    only the body. The first `prompt_answers` requests on a connection get the whole answer
    at once, and the connection stays open for the next. With `tls`, it speaks HTTPS.
    `connections` counts the TCP connections it accepted, `request_lines` the requests it read.
    """

    def __init__(self, answer, trickle_from, tls=None, prompt_answers=0):
        self.answer = answer
        self.trickle_from = trickle_from
        self.tls = tls
        self.prompt_answers = prompt_answers
        self.connections = 0
        self.request_lines = []
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    def base_url(self, scheme="http"):
        return f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}/api/laml/2010-04-01"

    def close(self):
        self.stopping.set()
        self.listener.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            for _ in range(self.prompt_answers):
                self._read_request(conn)
                conn.sendall(self.answer)
            self._read_request(conn)
            conn.sendall(self.answer[: self.trickle_from])
            stop_trickling = time.monotonic() + TRICKLE_SECONDS
            position = self.trickle_from
            while position < len(self.answer) and time.monotonic() < stop_trickling:
                conn.sendall(self.answer[position : position + 1])
                position += 1
                if self.stopping.wait(TRICKLE_INTERVAL):
                    return
            conn.sendall(self.answer[position:])
        except OSError:
            pass  # the client cut the connection: what these tests want
        finally:
            conn.close()

    def _read_request(self, conn):
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionResetError("the client closed the connection")
            request += chunk
        self.request_lines.append(request.split(b"\r\n", 1)[0].decode())


@pytest.fixture
def trickle_server():
    """`trickle_server(answer, trickle_from, ...) -> TrickleServer`, closed at teardown."""
    servers = []

    def start(answer, trickle_from, **options):
        servers.append(TrickleServer(answer, trickle_from, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def loopback_client(base_url):
    return SignalWireClient(SPACE, PROJECT, TOKEN, base_url=base_url, version="9.9.9")


def assert_ran_out_of_time(error, *, started, may_have_reached):
    assert time.monotonic() - started < CUT_WITHIN
    assert "ran out of time" in error.message
    assert error.may_have_reached_signalwire is may_have_reached
    assert error.__context__ is None
    assert_no_secret(str(error), repr(error))


def test_deadline_cuts_an_import_whose_status_line_and_headers_trickle(trickle_server):
    answer, _ = http_answer("201 Created", number_body())
    server = trickle_server(answer, trickle_from=0)
    client = loopback_client(server.base_url())
    started = time.monotonic()

    with pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode", deadline=started + DEADLINE)

    # The POST was sent: the number may have been created.
    assert_ran_out_of_time(info.value, started=started, may_have_reached=True)
    assert "after the request was sent" in info.value.message
    assert server.request_lines == [
        f"POST /api/laml/2010-04-01/Accounts/{PROJECT}/ImportedPhoneNumbers HTTP/1.1"
    ]


def test_deadline_cuts_a_lookup_whose_body_trickles(trickle_server):
    answer, body_starts = http_answer("200 OK", page([number_body()]))
    server = trickle_server(answer, trickle_from=body_starts)
    client = loopback_client(server.base_url())
    started = time.monotonic()

    with pytest.raises(SignalWireUnavailable) as info:
        client.find_number("+14155550100", deadline=started + DEADLINE)

    assert_ran_out_of_time(info.value, started=started, may_have_reached=True)


def test_deadline_cuts_a_trickling_answer_on_a_reused_connection(trickle_server):
    answer, _ = http_answer("200 OK", page([]))
    server = trickle_server(answer, trickle_from=0, prompt_answers=1)
    client = loopback_client(server.base_url())
    client.check_credentials(deadline=time.monotonic() + 30)
    started = time.monotonic()

    with pytest.raises(SignalWireUnavailable) as info:
        client.check_credentials(deadline=started + DEADLINE)

    assert_ran_out_of_time(info.value, started=started, may_have_reached=True)
    assert server.connections == 1
    assert len(server.request_lines) == 2


def self_signed_tls(tmp_path):
    """A server TLS context for 127.0.0.1, and the path of its certificate (to trust it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


@pytest.mark.parametrize("trickled", ["headers", "body"])
def test_deadline_cuts_a_tls_answer_that_trickles(trickle_server, tmp_path, monkeypatch, trickled):
    tls, cert_path = self_signed_tls(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
    answer, body_starts = http_answer("200 OK", page([]))
    server = trickle_server(answer, 0 if trickled == "headers" else body_starts, tls=tls)
    client = loopback_client(server.base_url("https"))
    started = time.monotonic()

    with pytest.raises(SignalWireUnavailable) as info:
        client.check_credentials(deadline=started + DEADLINE)

    assert_ran_out_of_time(info.value, started=started, may_have_reached=True)
    assert len(server.request_lines) == 1


def test_deadline_holds_through_a_proxy_from_the_environment(trickle_server, monkeypatch):
    answer, _ = http_answer("200 OK", page([]))
    proxy = trickle_server(answer, trickle_from=0)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.listener.getsockname()[1]}")
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    client = loopback_client("http://127.0.0.1:9/api/laml/2010-04-01")
    started = time.monotonic()

    with pytest.raises(SignalWireUnavailable) as info:
        client.check_credentials(deadline=started + DEADLINE)

    assert_ran_out_of_time(info.value, started=started, may_have_reached=True)
    assert proxy.request_lines[0].startswith("GET http://127.0.0.1:9/api/laml/")


def test_find_number_ends_at_the_deadline_when_its_pages_take_longer(simulator, sim_client):
    for last_digits in range(160):
        sim_client.import_number(f"+1415555{last_digits:04d}", "longcode")
    # "+1415555" matches all 160 (the filter is a pattern) and none exactly: four pages of 50
    # at 0.4 s each would take 1.6 s.
    simulator.configure(latency_min_ms=400, latency_max_ms=400)
    started = time.monotonic()

    with pytest.raises(SignalWireUnavailable) as info:
        sim_client.find_number("+1415555", deadline=started + DEADLINE)

    assert time.monotonic() - started < CUT_WITHIN
    assert "ran out of time" in info.value.message


def test_find_number_asks_for_no_page_once_the_deadline_has_passed(rsps, client):
    next_uri = f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers?Page=1&PageToken=P"

    def first_page_answered_after_the_deadline(request):
        time.sleep(0.3)
        return 200, {}, json.dumps(page([], next_uri))

    rsps.add_callback(responses.GET, LIST_URL, callback=first_page_answered_after_the_deadline)

    with pytest.raises(SignalWireUnavailable) as info:
        client.find_number("+14155550100", deadline=time.monotonic() + 0.2)

    assert len(rsps.calls) == 1
    assert "before this request to SignalWire started" in info.value.message
    assert info.value.may_have_reached_signalwire is False


def passed_deadline_calls(client):
    deadline = time.monotonic() - 0.001
    return {
        "import_number": lambda: client.import_number(
            "+14155550100", "longcode", deadline=deadline
        ),
        "find_number": lambda: client.find_number("+14155550100", deadline=deadline),
        "check_credentials": lambda: client.check_credentials(deadline=deadline),
    }


@pytest.mark.parametrize("method", ["import_number", "find_number", "check_credentials"])
def test_a_deadline_already_passed_sends_nothing(trickle_server, method):
    server = trickle_server(http_answer("200 OK", page([]))[0], trickle_from=0)
    call = passed_deadline_calls(loopback_client(server.base_url()))[method]

    with pytest.raises(SignalWireUnavailable) as info:
        call()

    assert (
        info.value.message
        == "the attempt ran out of time before this request to SignalWire started"
    )
    assert info.value.may_have_reached_signalwire is False
    assert server.connections == 0


def test_connecting_gets_only_the_time_left_across_every_address(monkeypatch):
    # A listener whose accept queue is full drops new connections' SYNs: connecting hangs.
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    address = listener.getsockname()
    fillers = [socket.socket() for _ in range(4)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(address)
    real_getaddrinfo = socket.getaddrinfo

    def three_unreachable_addresses(host, port, *args, **kwargs):
        # As for a name with several addresses, none answering.
        if host == "localhost":
            return real_getaddrinfo("127.0.0.1", port, *args, **kwargs) * 3
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", three_unreachable_addresses)
    client = loopback_client(f"http://localhost:{address[1]}/api/laml/2010-04-01")
    started = time.monotonic()
    try:
        with pytest.raises(SignalWireUnavailable) as info:
            client.import_number("+14155550100", "longcode", deadline=started + DEADLINE)
    finally:
        for sock in [listener, *fillers]:
            sock.close()

    assert_ran_out_of_time(info.value, started=started, may_have_reached=False)
    assert "while connecting" in info.value.message


def test_timeouts_are_cut_to_the_time_left(rsps, client):
    rsps.post(IMPORT_URL, json=number_body(), status=201)

    client.import_number("+14155550100", "longcode", deadline=time.monotonic() + 0.5)

    connect, read = rsps.calls[0].request.req_kwargs["timeout"]
    assert 0 < connect <= 0.5
    assert 0 < read <= 0.5


def test_a_generous_deadline_changes_nothing(simulator, sim_client):
    deadline = time.monotonic() + 30

    imported = sim_client.import_number("+14155550100", "longcode", ["sms"], deadline=deadline)
    found = sim_client.find_number("+14155550100", deadline=deadline)
    sim_client.check_credentials(deadline=deadline)

    assert found == imported
    assert imported.capabilities.enabled() == ("sms",)
    assert sim_client.find_number("+14155550199", deadline=deadline) is None


def test_pace_runs_once_per_request_when_connected_and_before_it_leaves(simulator, sim_client):
    # A rate limiter's wait: after the connection is open, so connecting cannot delay the
    # request past its slot, and before anything of the request is written.
    seen_before = []

    def pace():
        seen_before.append(simulator.stats()["requests"].get("import", {}))

    sim_client.import_number("+14155550100", "longcode", ["sms"], pace=pace)
    sim_client.find_number("+14155550100", pace=pace)

    assert seen_before == [{}, {"201": 1}]
    assert simulator.stats()["max_in_flight"] == 1


def test_an_exception_from_pace_cancels_the_request_before_anything_is_sent(simulator, sim_client):
    class NoSlot(Exception):
        pass

    def refuse():
        raise NoSlot

    with pytest.raises(NoSlot):
        sim_client.import_number("+14155550100", "longcode", ["sms"], pace=refuse)

    assert "import" not in simulator.stats()["requests"]
    assert sim_client.import_number("+14155550100", "longcode", ["sms"]).sid  # still usable


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


def test_requests_with_deadlines_leave_no_thread_cutoff_or_descriptor_behind(sim_client):
    # The first call starts the one watchdog thread and opens the pooled connection.
    sim_client.check_credentials(deadline=time.monotonic() + 30)
    threads, descriptors = threading.active_count(), open_descriptors()

    for _ in range(30):
        sim_client.find_number("+14155550100", deadline=time.monotonic() + 30)

    assert threading.active_count() <= threads
    assert open_descriptors() <= descriptors
    assert signalwire._watchdog.armed_count() == 0
    assert [t.name for t in threading.enumerate()].count("signalwire-deadlines") == 1


def test_a_forked_child_has_a_watchdog_of_its_own(trickle_server, sim_client):
    sim_client.check_credentials(deadline=time.monotonic() + 30)  # the parent's watchdog runs
    server = trickle_server(http_answer("200 OK", page([]))[0], trickle_from=0)
    client = loopback_client(server.base_url())

    pid = os.fork()
    if pid == 0:
        is_cut = False
        try:
            started = time.monotonic()
            client.check_credentials(deadline=started + DEADLINE)
        except SignalWireUnavailable as error:
            is_cut = "ran out of time" in error.message and time.monotonic() - started < CUT_WITHIN
        finally:
            os._exit(0 if is_cut else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0

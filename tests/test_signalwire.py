"""SignalWire client against a fake transport (`responses`): method, URL, auth, body, timeout,
User-Agent and the error raised for every class of answer. Deadlines are tested over real
loopback sockets, against servers that answer a byte at a time."""

import base64
import dataclasses
import ipaddress
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
import types
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from importlib import metadata
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
import urllib3.exceptions

from phone_numbers import signalwire
from phone_numbers.signalwire import (
    Capabilities,
    CredentialsRejected,
    IncomingPhoneNumber,
    RequestRejected,
    SignalWireClient,
    SignalWireError,
    SignalWireUnavailable,
    parse_retry_after,
    parse_rfc2822,
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


class ScriptedClock:
    """`time.monotonic` as `signalwire` reads it on the thread that made this clock: each
    reading is the next of `readings`, and the last one repeats. Other threads (the watchdog)
    read the real clock."""

    def __init__(self, readings):
        self.readings = list(readings)
        self.thread = threading.current_thread()

    def monotonic(self):
        if threading.current_thread() is not self.thread:
            return time.monotonic()
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


@pytest.fixture
def clock(monkeypatch):
    """`clock(*readings)`: the readings `signalwire` gets from its clock on this thread."""

    def script(*readings):
        fake = ScriptedClock(readings)
        monkeypatch.setattr(signalwire, "time", types.SimpleNamespace(monotonic=fake.monotonic))

    return script


def form_pairs(request):
    return parse_qsl(request.body, keep_blank_values=True)


def assert_common_request(request, method, url, timeout=(3.05, 10.0)):
    assert request.method == method
    assert request.url == url
    assert request.headers["Authorization"] == BASIC
    assert request.headers["User-Agent"] == "number-import-portal/9.9.9"
    assert request.headers["Accept"].lower() == "application/json"  # media types ignore case
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

    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "+14155550100" in warning
    assert "['fax', 'mms', 'sms', 'voice']" in warning
    assert "requested ['sms']" in warning
    assert "encoding=form" in warning


@pytest.mark.parametrize(
    "capabilities", [{"voice": True, "sms": True, "mms": True, "fax": True}, None]
)
def test_import_does_not_warn_when_granted_what_was_asked_or_told_nothing(
    rsps, client, caplog, capabilities
):
    rsps.post(IMPORT_URL, json=number_body(capabilities=capabilities), status=201)

    with caplog.at_level(logging.WARNING, logger="phone_numbers.signalwire"):
        result = client.import_number("+14155550100", "longcode")

    assert result.sid == "16db4a36-8a97-4e10-98c5-58daafac95f9"
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []


def test_import_200_is_a_success_like_201(rsps, client):
    rsps.post(IMPORT_URL, json=number_body(), status=200)

    result = client.import_number("+14155550100", "longcode")

    assert result.phone_number == "+14155550100"


def test_an_import_is_logged_with_the_number_the_project_and_the_new_sid(rsps, client, caplog):
    rsps.post(IMPORT_URL, json=number_body(), status=201)

    with caplog.at_level(logging.INFO, logger="phone_numbers.signalwire"):
        client.import_number("+14155550100", "longcode")

    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert "+14155550100" in line
    assert PROJECT in line
    assert "16db4a36-8a97-4e10-98c5-58daafac95f9" in line


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


@pytest.mark.parametrize(
    ("number_type", "capabilities", "message"),
    [
        ("mobile", None, "number_type must be one of longcode, tollfree"),
        (
            "longcode",
            ["video", "sms"],
            "unknown capabilities ['video']; allowed: ('sms', 'voice', 'fax', 'mms')",
        ),
        ("longcode", [], "at least one capability is needed"),
        ("longcode", "sms", "capabilities must be a list of names, not one string"),
    ],
)
def test_import_refusals_say_what_is_allowed(rsps, client, number_type, capabilities, message):
    with pytest.raises(ValueError) as info:
        client.import_number("+14155550100", number_type, capabilities)

    assert str(info.value) == message


# --- reading an IncomingPhoneNumber -----------------------------------------------------------

# Every string field of the spec's IncomingPhoneNumber schema.
STRING_FIELDS = (
    "account_sid",
    "account_id",
    "friendly_name",
    "origin",
    "country_code",
    "date_created",
    "date_updated",
    "uri",
    "api_version",
    "address_requirements",
    "address_sid",
    "identity_sid",
    "trunk_sid",
    "emergency_address_sid",
    "emergency_status",
    "voice_url",
    "voice_method",
    "voice_fallback_url",
    "voice_fallback_method",
    "voice_application_sid",
    "sms_url",
    "sms_method",
    "sms_fallback_url",
    "sms_fallback_method",
    "sms_application_sid",
    "status_callback",
    "status_callback_method",
    "verification_status",
)
OTHER_FIELDS = ("sid", "phone_number", "beta", "voice_caller_id_lookup", "capabilities", "raw")


def test_from_json_reads_every_field_of_the_schema_from_its_own_key():
    # A distinct value per field, so that a field read from another key shows.
    body = {name: f"{name} value" for name in STRING_FIELDS}
    body |= {
        "sid": "PN1",
        "phone_number": "+14155550100",
        "beta": True,
        "voice_caller_id_lookup": False,
        "capabilities": {"voice": True, "sms": False, "mms": True, "fax": False},
    }

    number = IncomingPhoneNumber.from_json(body)

    assert {f.name for f in dataclasses.fields(IncomingPhoneNumber)} == {
        *STRING_FIELDS,
        *OTHER_FIELDS,
    }
    for name in STRING_FIELDS:
        assert getattr(number, name) == f"{name} value", name
    assert number.sid == "PN1"
    assert number.phone_number == "+14155550100"
    assert number.beta is True
    assert number.voice_caller_id_lookup is False
    assert number.capabilities == Capabilities(voice=True, sms=False, mms=True, fax=False)
    assert number.raw == body


def test_from_json_reads_a_field_of_the_wrong_type_as_none():
    body = dict.fromkeys(STRING_FIELDS, 7)
    body |= {
        "sid": "PN1",
        "phone_number": "+14155550100",
        "beta": "true",
        "voice_caller_id_lookup": 1,
        "capabilities": ["voice"],
    }

    number = IncomingPhoneNumber.from_json(body)

    for name in STRING_FIELDS:
        expected = "" if name == "account_sid" else None
        assert getattr(number, name) == expected, name
    assert number.beta is None
    assert number.voice_caller_id_lookup is None
    assert number.capabilities is None


@pytest.mark.parametrize(
    ("accounts", "account_sid", "account_id"),
    [
        ({"account_sid": "AC1", "account_id": "P1"}, "AC1", "P1"),
        ({"account_id": "P1"}, "P1", "P1"),
        ({"account_sid": "AC1"}, "AC1", None),
        ({}, "", None),
    ],
)
def test_from_json_takes_the_account_sid_from_account_id_when_it_is_missing(
    accounts, account_sid, account_id
):
    number = IncomingPhoneNumber.from_json({"sid": "PN1", "phone_number": "+1415", **accounts})

    assert number.account_sid == account_sid
    assert number.account_id == account_id


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["PN1", "+14155550100"], "an IncomingPhoneNumber must be a JSON object"),
        (None, "an IncomingPhoneNumber must be a JSON object"),
        ({"phone_number": "+14155550100"}, "an IncomingPhoneNumber needs a sid and a phone_number"),
        (
            {"sid": "", "phone_number": "+14155550100"},
            "an IncomingPhoneNumber needs a sid and a phone_number",
        ),
        (
            {"sid": 7, "phone_number": "+14155550100"},
            "an IncomingPhoneNumber needs a sid and a phone_number",
        ),
        ({"sid": "PN1"}, "an IncomingPhoneNumber needs a sid and a phone_number"),
        (
            {"sid": "PN1", "phone_number": 14155550100},
            "an IncomingPhoneNumber needs a sid and a phone_number",
        ),
    ],
)
def test_from_json_refuses_what_is_not_a_phone_number_and_says_why(data, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        IncomingPhoneNumber.from_json(data)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Thu, 28 Sep 2023 17:58:29 +0000", datetime(2023, 9, 28, 17, 58, 29, tzinfo=UTC)),
        ("Thu, 28 Sep 2023 19:58:29 +0200", datetime(2023, 9, 28, 17, 58, 29, tzinfo=UTC)),
        # RFC 2822's "-0000" (no zone information) parses naive; read as UTC.
        ("Thu, 28 Sep 2023 17:58:29 -0000", datetime(2023, 9, 28, 17, 58, 29, tzinfo=UTC)),
        ("Thu, 28 Sept 2023 17:58:29 +0000", datetime(2023, 9, 28, 17, 58, 29, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_rfc2822_gives_an_aware_datetime_or_none(value, expected):
    parsed = parse_rfc2822(value)

    assert parsed == expected
    assert parsed is None or parsed.tzinfo is not None


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
            {"code": "20003", "is_numbers_scope_missing": False, "more_info": "https://x.test/e"},
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
        (
            422,
            {"error": "Number is not portable", "code": "", "more_info": 7},
            {},
            RequestRejected,
            {"message": "Number is not portable", "code": None, "more_info": None},
        ),
        (409, {}, {}, RequestRejected, {"is_duplicate": True}),
        (
            429,
            error_body(20429, "Too Many Requests", 429),
            {"Retry-After": "7"},
            SignalWireUnavailable,
            {
                "code": "20429",
                "retry_after": 7.0,
                "may_have_reached_signalwire": False,
                "more_info": "https://x.test/e",
            },
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
            500,
            error_body(10002, "Internal Server Error", 500),
            {"Retry-After": "5"},
            SignalWireUnavailable,
            {
                "message": "Internal Server Error",
                "retry_after": 5.0,
                "may_have_reached_signalwire": True,
            },
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


def test_an_error_answer_is_logged_with_its_status_code_and_message(rsps, client, caplog):
    rsps.post(IMPORT_URL, json=error_body("10000", "Number type can't be blank", 422), status=422)

    with (
        caplog.at_level(logging.INFO, logger="phone_numbers.signalwire"),
        pytest.raises(RequestRejected),
    ):
        client.import_number("+14155550100", "longcode")

    (line,) = [m for m in caplog.messages if "Number type can't be blank" in m]
    assert "422" in line
    assert "code 10000" in line
    assert "Number type can't be blank" in line


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            RequestRejected("Number is invalid", status=422, code="10000"),
            "[422, code 10000] Number is invalid",
        ),
        (CredentialsRejected("Forbidden", status=403), "[403] Forbidden"),
        (
            SignalWireUnavailable("could not connect to SignalWire"),
            "could not connect to SignalWire",
        ),
    ],
)
def test_an_errors_text_leads_with_its_status_and_code_when_known(error, text):
    assert str(error) == text


def test_each_request_is_logged_at_debug_with_its_method_url_status_and_duration(
    rsps, client, caplog, clock
):
    clock(1000.0, 1000.75)  # the request starts, then its answer has been read
    rsps.get(LIST_URL, json=page([]))

    with caplog.at_level(logging.DEBUG, logger="phone_numbers.signalwire"):
        client.check_credentials()

    url = f"{LIST_URL}?PageSize=1"
    assert [m for m in caplog.messages if f"GET {url}" in m] == [
        f"SignalWire GET {url}",
        f"SignalWire GET {url} -> 200 in 750 ms",
    ]


def test_a_failed_request_is_logged_with_its_method_url_and_what_happened(rsps, client, caplog):
    rsps.get(LIST_URL, body=requests.ConnectTimeout("slow"))

    with (
        caplog.at_level(logging.INFO, logger="phone_numbers.signalwire"),
        pytest.raises(SignalWireUnavailable) as info,
    ):
        client.check_credentials()

    (line,) = [m for m in caplog.messages if info.value.message in m]
    assert f"GET {LIST_URL}?PageSize=1" in line


def test_an_errors_repr_names_its_class_status_code_and_message():
    error = RequestRejected("PhoneNumber is invalid", status=400, code="21421")

    assert (
        repr(error) == "RequestRejected(status=400, code='21421', message='PhoneNumber is invalid')"
    )


def test_an_errors_args_hold_its_message_as_any_exceptions_do():
    # What code that knows only Exception reads: Celery's result backends store an exception
    # as its args.
    error = RequestRejected("PhoneNumber is invalid", status=400, code="21421")

    assert error.args == ("PhoneNumber is invalid",)


def test_an_unavailable_errors_repr_also_says_when_to_retry_and_whether_it_arrived():
    error = SignalWireUnavailable("Too Many Requests", status=429, retry_after=7.0)

    assert repr(error) == (
        "SignalWireUnavailable(status=429, code=None, message='Too Many Requests', "
        "retry_after=7.0, may_have_reached_signalwire=True)"
    )


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
        ("Wed, 21 Oct 2015 08:28:00 +0100", 60.0),
        # "-0000" (no zone information) parses naive; read as UTC.
        ("Wed, 21 Oct 2015 07:28:00 -0000", 60.0),
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
        (requests.ConnectionError(), True),
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


@pytest.mark.parametrize(
    ("exception", "message", "detail"),
    [
        (
            requests.ReadTimeout("read timed out"),
            "SignalWire did not answer in time",
            "ReadTimeout: read timed out",
        ),
        (
            requests.ConnectTimeout("connect timed out"),
            "connecting to SignalWire timed out",
            "ConnectTimeout: connect timed out",
        ),
        (connect_refused(), "could not connect to SignalWire", "Connection refused"),
        (
            requests.ConnectionError(
                urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104))
            ),
            "the connection to SignalWire broke after the request was sent",
            "ConnectionError: ('Connection aborted.', ConnectionResetError(104))",
        ),
        (
            requests.exceptions.ChunkedEncodingError("broken body"),
            "the request to SignalWire failed",
            "ChunkedEncodingError: broken body",
        ),
    ],
)
def test_network_failures_say_what_happened_and_keep_the_error_text_as_detail(
    rsps, client, exception, message, detail
):
    rsps.post(IMPORT_URL, body=exception)

    with pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode")

    # The error's own text can hold what a server said and tells refused from timed out: it
    # is for the log, never the message shown.
    assert info.value.message == message
    assert detail in info.value.detail


# --- secrets ------------------------------------------------------------------------------------


def test_a_token_echoed_by_signalwire_is_replaced_by_a_marker(rsps, client):
    rsps.post(IMPORT_URL, json=error_body("10000", f"bad token {TOKEN} echoed", 422), status=422)

    with pytest.raises(RequestRejected) as info:
        client.import_number("+14155550100", "longcode")

    assert info.value.message == "bad token [redacted] echoed"


def echo_authorization(request):
    message = f"you sent {request.headers['Authorization']}"
    return 422, {}, json.dumps({"code": "10000", "message": message})


def test_an_echoed_authorization_header_is_replaced_by_a_marker_in_errors_and_logs(
    rsps, client, caplog
):
    # base64(project:token) is the token too: anyone can decode it.
    rsps.add_callback(responses.POST, IMPORT_URL, callback=echo_authorization)

    with caplog.at_level(logging.DEBUG), pytest.raises(RequestRejected) as info:
        client.import_number("+14155550100", "longcode")

    assert info.value.message == "you sent Basic [redacted]"
    assert_no_secret(info.value.message, info.value.detail, str(info.value), *caplog.messages)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (500, {"code": 1, "message": "INTERNAL-ONLY: db=10.0.0.5"}, "Internal Server Error"),
        (502, "<h1>INTERNAL-ONLY: db=10.0.0.5</h1>", "Bad Gateway"),
        (503, {"message": "INTERNAL-ONLY: db=10.0.0.5"}, "Service Unavailable"),
        (429, {"message": "INTERNAL-ONLY: db=10.0.0.5"}, "Too Many Requests"),
        (599, "INTERNAL-ONLY: db=10.0.0.5", "HTTP 599"),
    ],
)
def test_an_error_page_that_is_not_a_documented_4xx_is_shown_by_its_status_and_logged(
    rsps, client, caplog, status, body, message
):
    # A 5xx or 429 page is as likely a proxy's as SignalWire's: its words are not shown.
    answer = {"json": body} if isinstance(body, dict) else {"body": body}
    rsps.post(IMPORT_URL, status=status, **answer)

    with caplog.at_level(logging.INFO), pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode")

    assert info.value.message == message
    assert "INTERNAL-ONLY" in info.value.detail
    assert "INTERNAL-ONLY" in " ".join(caplog.messages)


def test_the_reason_phrase_a_server_sends_is_never_the_message(trickle_server):
    answer, _ = http_answer("502 INTERNAL-ONLY db=10.0.0.5", [])
    server = trickle_server(answer, trickle_from=len(answer))
    client = loopback_client(server.base_url())

    with pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode")

    assert info.value.message == "Bad Gateway"


def test_signalwires_own_4xx_message_is_kept_for_support_staff(rsps, client):
    rsps.post(IMPORT_URL, json=error_body("21421", "PhoneNumber is invalid", 400), status=400)

    with pytest.raises(RequestRejected) as info:
        client.import_number("+14155550100", "longcode")

    assert info.value.message == "PhoneNumber is invalid"


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
    assert repr(client) == (
        f"SignalWireClient(space_host='{SPACE}', project_id='{PROJECT}', "
        f"base_url='https://{SPACE}/api/laml/2010-04-01', encoding='form')"
    )
    assert TOKEN not in repr(client)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"project_id": ""}, "a SignalWire client needs a project id"),
        ({"token": ""}, "a SignalWire client needs an API token"),
        ({"encoding": "xml"}, "encoding must be one of form, form-repeated, json, not 'xml'"),
        ({"timeout": (3.0,)}, "timeout must be a (connect, read) pair of positive seconds"),
        ({"timeout": (0, 10.0)}, "timeout must be a (connect, read) pair of positive seconds"),
        ({"space_host": "acme.com/x"}, "not a Space host name: 'acme.com/x'"),
        # A port is ASCII digits: int() would read these as 443 and the URL would carry them.
        (
            {"space_host": "acme.signalwire.com:٤٤٣"},
            "not a Space host name: 'acme.signalwire.com:٤٤٣'",
        ),
        (
            {"base_url": "http://acme.signalwire.com/api"},
            "refusing plain http:// to acme.signalwire.com: SignalWire credentials travel only "
            "over https (plain http is allowed for a loopback simulator only)",
        ),
        (
            {"base_url": "ftp://127.0.0.1/api"},
            "the SignalWire base URL must be an https:// URL, not 'ftp://127.0.0.1/api'",
        ),
        (
            {"base_url": "https:///api"},
            "the SignalWire base URL must be an https:// URL, not 'https:///api'",
        ),
    ],
)
def test_a_client_refuses_unusable_settings_and_says_which(settings, message):
    arguments = {"space_host": SPACE, "project_id": PROJECT, "token": TOKEN} | settings

    with pytest.raises(ValueError) as info:
        SignalWireClient(**arguments)

    assert str(info.value) == message


def test_the_project_id_cannot_leave_its_place_in_the_path(rsps):
    client = SignalWireClient(SPACE, "../x", TOKEN)
    rsps.get(f"https://{SPACE}/api/laml/2010-04-01/Accounts/..%2Fx/IncomingPhoneNumbers")

    client.check_credentials()


def test_user_agent_carries_the_installed_version_of_the_portal(rsps):
    rsps.get(LIST_URL, json=page([]))

    SignalWireClient(SPACE, PROJECT, TOKEN).check_credentials()

    version = metadata.version("number-import-portal")
    assert rsps.calls[0].request.headers["User-Agent"] == f"number-import-portal/{version}"


def test_user_agent_says_dev_when_the_portal_is_not_installed(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)

    assert SignalWireClient(SPACE, PROJECT, TOKEN).user_agent == "number-import-portal/dev"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://acme.signalwire.com/api/laml/2010-04-01",
        "http://10.0.0.8:8765/api/laml/2010-04-01",
        "http://127.evil.test/api/laml/2010-04-01",
        "ftp://127.0.0.1/api",
        "https:///no-host",
        "http:///no-host",
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
        "https://proxy.example.test/sw/api/laml/2010-04-01/",
        "https://proxy.example.test/X/",
        "http://127.0.0.1:8765/X/",
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


def test_find_number_keeps_a_proxy_prefix_of_the_base_when_paging(rsps):
    base = "https://proxy.example.test/sw/api/laml/2010-04-01"
    client = SignalWireClient(SPACE, PROJECT, TOKEN, base_url=base)
    next_uri = f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers?Page=1&PageToken=P"
    rsps.get(f"{base}/Accounts/{PROJECT}/IncomingPhoneNumbers", json=page([], next_uri))
    rsps.get(f"https://proxy.example.test/sw{next_uri}", json=page([number_body()]))

    assert client.find_number("+14155550100") is not None


def test_find_number_resolves_a_relative_next_page_uri_under_the_base(rsps, client):
    relative = f"Accounts/{PROJECT}/IncomingPhoneNumbers?Page=1&PageToken=P"
    rsps.get(LIST_URL, json=page([], relative))
    rsps.get(f"https://{SPACE}/api/laml/2010-04-01/{relative}", json=page([number_body()]))

    assert client.find_number("+14155550100").sid == "16db4a36-8a97-4e10-98c5-58daafac95f9"


@pytest.mark.parametrize("next_page_uri", ["", 7, ["/api/laml/2010-04-01/x"]])
def test_find_number_ends_at_an_empty_or_non_string_next_page_uri(rsps, client, next_page_uri):
    rsps.get(LIST_URL, json=page([], next_page_uri))

    assert client.find_number("+14155550100") is None
    assert len(rsps.calls) == 1


def test_find_number_refuses_to_send_credentials_to_another_host(rsps, client):
    rsps.get(LIST_URL, json=page([], "https://evil.test/api/laml/2010-04-01/steal"))

    with pytest.raises(SignalWireUnavailable) as info:
        client.find_number("+14155550100")

    assert len(rsps.calls) == 1
    assert info.value.message == "refusing to follow next_page_uri to another host (evil.test)"
    assert info.value.may_have_reached_signalwire is False


def test_find_number_stops_when_next_page_uri_repeats(rsps, client):
    loop = f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers?Page=1&PageToken=P"
    rsps.get(LIST_URL, json=page([], loop))
    rsps.get(f"https://{SPACE}{loop}", json=page([], loop))

    with pytest.raises(SignalWireUnavailable):
        client.find_number("+14155550100")


def test_find_number_gives_up_after_the_page_limit_of_distinct_pages(rsps, client, monkeypatch):
    monkeypatch.setattr(signalwire, "_MAX_PAGES", 3)

    def endless(request):
        following = len(rsps.calls) + 1
        next_uri = f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers?Page={following}"
        return 200, {}, json.dumps(page([], next_uri))

    rsps.add_callback(responses.GET, LIST_URL, callback=endless)

    with pytest.raises(SignalWireUnavailable) as info:
        client.find_number("+14155550100")

    assert len(rsps.calls) == 3
    assert info.value.message == "SignalWire's list of numbers did not end (next_page_uri repeats)"
    assert info.value.may_have_reached_signalwire is False


@pytest.mark.parametrize("answer", [{"body": "<html>maintenance</html>"}, {"json": []}])
def test_find_number_on_a_page_that_is_not_a_json_object_is_unavailable(rsps, client, answer):
    rsps.get(LIST_URL, status=200, **answer)

    with pytest.raises(SignalWireUnavailable) as info:
        client.find_number("+14155550100")

    assert info.value.message == (
        "SignalWire answered the list request with something that is not a JSON object"
    )
    assert info.value.status == 200
    assert info.value.may_have_reached_signalwire is False


def test_find_number_on_an_unreadable_match_is_unavailable_and_says_why(rsps, client):
    rsps.get(LIST_URL, json=page([{"phone_number": "+14155550100", "sid": ""}]))

    with pytest.raises(SignalWireUnavailable) as info:
        client.find_number("+14155550100")

    assert info.value.message == (
        "SignalWire's answer could not be read as a phone number: "
        "an IncomingPhoneNumber needs a sid and a phone_number"
    )
    assert info.value.status == 200


def test_find_number_raises_credentials_rejected_on_401(rsps, client):
    rsps.get(LIST_URL, json=error_body(20003, "Authentication failed", 401), status=401)

    with pytest.raises(CredentialsRejected):
        client.find_number("+14155550100")


# --- list_numbers -------------------------------------------------------------------------------


def numbered_page(numbers, next_page_uri=None, page_number=0):
    return page(numbers, next_page_uri) | {"page": page_number, "page_size": 1000}


def test_list_numbers_asks_for_pages_of_1000_and_follows_next_page_uri(rsps, client):
    next_uri = (
        f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers"
        "?Page=1&PageSize=1000&PageToken=PAabc"
    )
    rsps.get(
        LIST_URL,
        json=numbered_page([number_body("+14155550100", sid="a")], next_uri),
        match=[responses.matchers.query_param_matcher({"PageSize": "1000"})],
    )
    rsps.get(
        f"https://{SPACE}{next_uri}",
        json=numbered_page([number_body("+14155550101", sid="b")], None, 1),
    )

    pages = list(client.list_numbers())

    assert_common_request(rsps.calls[0].request, "GET", f"{LIST_URL}?PageSize=1000")
    assert_common_request(rsps.calls[1].request, "GET", f"https://{SPACE}{next_uri}")
    assert [[n.sid for n in p.numbers] for p in pages] == [["a"], ["b"]]
    assert [p.page for p in pages] == [0, 1]
    assert pages[0].url == f"{LIST_URL}?PageSize=1000"
    assert pages[0].next_url == f"https://{SPACE}{next_uri}"
    assert pages[1].next_url is None
    assert isinstance(pages[0].numbers[0], IncomingPhoneNumber)


def test_list_numbers_reads_one_page_at_a_time(rsps, client):
    next_uri = f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers?Page=1&PageToken=P"
    rsps.get(LIST_URL, json=numbered_page([number_body(sid="a")], next_uri))
    rsps.get(f"https://{SPACE}{next_uri}", json=numbered_page([]))

    pages = client.list_numbers()
    next(pages)

    # The second page is asked for only when the caller wants it (it stages each page first).
    assert len(rsps.calls) == 1
    assert list(pages)[0].numbers == ()


def test_list_numbers_starts_at_a_given_page_url(rsps, client):
    start = f"https://{SPACE}/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers?Page=3"
    rsps.get(start, json=numbered_page([number_body(sid="c")], None, 3))

    pages = list(client.list_numbers(start_url=start))

    assert [p.page for p in pages] == [3]
    assert rsps.calls[0].request.url == start


def test_list_numbers_keeps_the_simulator_base_when_paging(rsps):
    base = "http://127.0.0.1:8765/api/laml/2010-04-01"
    client = SignalWireClient(SPACE, PROJECT, TOKEN, base_url=base)
    next_uri = f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers?Page=1&PageToken=P"
    rsps.get(f"{base}/Accounts/{PROJECT}/IncomingPhoneNumbers", json=page([], next_uri))
    rsps.get(f"http://127.0.0.1:8765{next_uri}", json=page([number_body()]))

    assert sum(len(p.numbers) for p in client.list_numbers()) == 1


@pytest.mark.parametrize("page_size", [0, 1001])
def test_list_numbers_refuses_a_page_size_the_api_does_not_allow(client, page_size):
    with pytest.raises(ValueError, match="between 1 and 1000"):
        next(client.list_numbers(page_size=page_size))


def test_list_numbers_refuses_to_send_credentials_to_another_host(rsps, client):
    rsps.get(LIST_URL, json=page([], "https://evil.test/api/laml/2010-04-01/steal"))

    with pytest.raises(SignalWireUnavailable) as info:
        list(client.list_numbers())

    assert len(rsps.calls) == 1
    assert "another host (evil.test)" in info.value.message


def test_list_numbers_stops_when_next_page_uri_repeats(rsps, client):
    loop = f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers?Page=1&PageToken=P"
    rsps.get(LIST_URL, json=page([], loop))
    rsps.get(f"https://{SPACE}{loop}", json=page([], loop))

    with pytest.raises(SignalWireUnavailable, match="did not end"):
        list(client.list_numbers())

    assert len(rsps.calls) == 2


@pytest.mark.parametrize("items", [None, {"sid": "a"}, "x"])
def test_list_numbers_on_a_page_without_a_list_of_numbers_is_unavailable(rsps, client, items):
    rsps.get(LIST_URL, json=page([]) | {"incoming_phone_numbers": items})

    with pytest.raises(SignalWireUnavailable) as info:
        list(client.list_numbers())

    assert info.value.message == "SignalWire's page of numbers has no incoming_phone_numbers list"


def test_list_numbers_on_an_unreadable_number_fails_the_whole_page(rsps, client):
    rsps.get(LIST_URL, json=page([number_body(sid="a"), {"phone_number": "+1415", "sid": ""}]))

    with pytest.raises(SignalWireUnavailable) as info:
        list(client.list_numbers())

    assert "needs a sid and a phone_number" in info.value.message


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(401, CredentialsRejected), (404, RequestRejected), (429, SignalWireUnavailable)],
)
def test_list_numbers_raises_the_client_error_of_a_page(rsps, client, status, error_class):
    next_uri = f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers?Page=1&PageToken=P"
    rsps.get(LIST_URL, json=page([number_body()], next_uri))
    rsps.get(
        f"https://{SPACE}{next_uri}",
        json=error_body(20003, "no", status),
        status=status,
        headers={"Retry-After": "7"},
    )
    pages = client.list_numbers()

    assert len(next(pages).numbers) == 1
    with pytest.raises(error_class) as info:
        next(pages)

    assert info.value.status == status
    if status == 429:
        assert info.value.retry_after == 7


def test_list_numbers_pages_through_the_simulator_calling_pace_for_each_page(simulator, sim_client):
    for last_digits in range(120):
        sim_client.import_number(f"+1415555{last_digits:04d}", "longcode")
    paced = []

    pages = list(sim_client.list_numbers(page_size=50, pace=lambda: paced.append(1)))

    assert [len(p.numbers) for p in pages] == [50, 50, 20]
    assert len({n.sid for p in pages for n in p.numbers}) == 120
    assert len(paced) == 3


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
    assert info.value.message == (
        "the API token is valid but lacks the Numbers scope"
        " (SignalWire said: Authentication failed)"
    )


def test_check_credentials_403_means_numbers_scope_missing(rsps, client):
    rsps.get(LIST_URL, json={"error": "Forbidden"}, status=403)

    with pytest.raises(CredentialsRejected) as info:
        client.check_credentials()

    assert info.value.is_numbers_scope_missing is True


def test_check_credentials_401_with_the_account_unreachable_leaves_the_scope_undecided(
    rsps, client
):
    rsps.get(LIST_URL, json=error_body(20003, "Authentication failed", 401), status=401)
    rsps.get(BASE, body=requests.ConnectTimeout("slow"))

    with pytest.raises(CredentialsRejected) as info:
        client.check_credentials()

    assert info.value.is_numbers_scope_missing is False
    assert info.value.message == "Authentication failed"


def test_check_credentials_keeps_its_deadline_for_the_account_request(rsps, client):
    rsps.get(LIST_URL, json=error_body(20003, "Authentication failed", 401), status=401)
    rsps.get(BASE, json={"sid": PROJECT}, status=200)

    with pytest.raises(CredentialsRejected):
        client.check_credentials(deadline=time.monotonic() + 0.5)

    connect, read = rsps.calls[1].request.req_kwargs["timeout"]
    assert 0 < connect <= 0.5
    assert 0 < read <= 0.5


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


def test_a_threads_session_keeps_pools_for_32_spaces_of_4_connections_each():
    # A worker thread serves many Spaces; these bound the sockets it holds open per Space and
    # in all. Pools are made without connecting, so no network is needed.
    def pools_made_for_40_spaces():
        manager = signalwire._session().get_adapter("https://acme.signalwire.com").poolmanager
        pools = [
            manager.connection_from_host(f"space{n}.signalwire.com", 443, "https")
            for n in range(40)
        ]
        return len(manager.pools), {pool.pool.maxsize for pool in pools}

    kept, sizes = on_a_new_thread(pools_made_for_40_spaces)

    assert kept == 32
    assert sizes == {4}


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
    assert info.value.message == "unexpected answer from SignalWire: HTTP 302"
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
    assert info.value.message == (
        "the attempt ran out of time after the request was sent to SignalWire"
    )
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


def test_a_deadline_reached_exactly_as_a_request_starts_sends_nothing(rsps, client, clock):
    deadline = time.monotonic() + 30
    clock(deadline)

    with pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode", deadline=deadline)

    assert (
        info.value.message
        == "the attempt ran out of time before this request to SignalWire started"
    )
    assert len(rsps.calls) == 0


def test_a_failure_at_exactly_the_deadline_says_the_attempt_ran_out_of_time(rsps, client, clock):
    deadline = time.monotonic() + 30
    clock(deadline - 1, deadline)  # the request starts, then it fails
    rsps.post(IMPORT_URL, body=requests.ConnectTimeout("slow"))

    with pytest.raises(SignalWireUnavailable) as info:
        client.import_number("+14155550100", "longcode", deadline=deadline)

    assert info.value.message == "the attempt ran out of time while connecting to SignalWire"
    assert info.value.detail == "ConnectTimeout: slow"
    assert info.value.may_have_reached_signalwire is False


class ConnectRecorder:
    """Stands in for `signalwire.create_connection`: records each address tried and each socket
    opened, and connects for real."""

    def __init__(self, create_connection):
        self.create_connection = create_connection
        self.addresses = []
        self.sockets = []

    def __call__(self, address, *args, **kwargs):
        self.addresses.append(address)
        sock = self.create_connection(address, *args, **kwargs)
        self.sockets.append(sock)
        return sock


@pytest.fixture
def connects(monkeypatch):
    """What the deadline-bounded connections of this test tried and opened."""
    recorder = ConnectRecorder(signalwire.create_connection)
    monkeypatch.setattr(signalwire, "create_connection", recorder)
    return recorder


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
    assert info.value.message == "the attempt ran out of time while connecting to SignalWire"
    assert "Connection to localhost timed out." in info.value.detail


def test_timeouts_are_kept_when_the_deadline_leaves_more_time(rsps, client):
    rsps.post(IMPORT_URL, json=number_body(), status=201)

    client.import_number("+14155550100", "longcode", deadline=time.monotonic() + 60)

    assert rsps.calls[0].request.req_kwargs["timeout"] == (3.05, 10.0)


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


def test_the_watchdog_shuts_each_socket_down_at_its_deadline_and_forgets_it():
    watchdog = signalwire._Watchdog()
    try:
        # The second round finds the watchdog idle, with nothing armed.
        for _ in range(2):
            late_pair, early_pair = socket.socketpair(), socket.socketpair()
            late = signalwire._Cutoff(time.monotonic() + 0.3)
            early = signalwire._Cutoff(time.monotonic() + 0.1)
            try:
                late.watch(late_pair[0])
                early.watch(early_pair[0])
                # Armed second, the earlier deadline must still wake the sleeping watchdog.
                watchdog.arm(late)
                watchdog.arm(early)

                for ours, _ in (early_pair, late_pair):
                    ours.settimeout(TRICKLE_SECONDS)
                    assert ours.recv(1) == b""  # shut down, not timed out

                assert watchdog.armed_count() == 0
            finally:
                for cutoff in (late, early):
                    cutoff.close()
                for sock in (*late_pair, *early_pair):
                    sock.close()
        # A daemon, so that it never keeps a finished process alive.
        assert watchdog._thread.daemon is True
    finally:
        # Its thread lives on, idle; renamed so that the process's one watchdog stays countable.
        watchdog._thread.name = "signalwire-deadlines (a test's own)"


def test_a_socket_watched_after_its_cutoff_fired_is_shut_down_at_once():
    # The deadline can pass while a connection is being made: its socket must not escape.
    ours, theirs = socket.socketpair()
    cutoff = signalwire._Cutoff(time.monotonic())
    try:
        cutoff.fire()
        cutoff.watch(ours)

        ours.settimeout(TRICKLE_SECONDS)
        assert ours.recv(1) == b""
    finally:
        cutoff.close()
        ours.close()
        theirs.close()


def test_a_cutoff_firing_on_a_socket_that_never_connected_is_no_error():
    never_connected = socket.socket()
    cutoff = signalwire._Cutoff(time.monotonic())
    try:
        cutoff.watch(never_connected)

        cutoff.fire()
    finally:
        cutoff.close()
        never_connected.close()


def closed_port():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return listener.getsockname()[1]


def failing_resolver(answer):
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host != "localhost":
            return real_getaddrinfo(host, port, *args, **kwargs)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return resolve


@pytest.mark.parametrize(
    ("resolved", "details"),
    [
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            ["Failed to resolve 'localhost' ([Errno -2] Name or service not known)"],
        ),
        ([], ["Failed to establish a new connection: getaddrinfo returned no address"]),
        (None, ["Failed to establish a new connection: [Errno 111] Connection refused"]),
    ],
)
def test_a_connection_that_fails_within_the_deadline_says_why(monkeypatch, resolved, details):
    if resolved is not None:
        monkeypatch.setattr(socket, "getaddrinfo", failing_resolver(resolved))
    port = closed_port()
    client = loopback_client(f"http://localhost:{port}/api/laml/2010-04-01")

    with pytest.raises(SignalWireUnavailable) as info:
        client.check_credentials(deadline=time.monotonic() + 30)

    assert info.value.message == "could not connect to SignalWire"
    assert info.value.detail.startswith("ConnectionError: ")
    for detail in details:
        # After the connection (host and port), as urllib3's own errors name it.
        assert f"_HTTPConnection(host='localhost', port={port}): {detail}" in info.value.detail
    assert info.value.may_have_reached_signalwire is False


def test_no_address_is_tried_once_the_deadline_has_come(connects, clock):
    deadline = time.monotonic() + 30
    clock(deadline - 1, deadline)  # the request starts; the deadline has come as it connects
    port = closed_port()
    client = loopback_client(f"http://127.0.0.1:{port}/api/laml/2010-04-01")

    with pytest.raises(SignalWireUnavailable) as info:
        client.check_credentials(deadline=deadline)

    assert connects.addresses == []
    assert info.value.message == "the attempt ran out of time while connecting to SignalWire"
    assert info.value.detail.startswith("ConnectTimeout: ")
    # urllib3's own error, naming the connection (host and port) as urllib3 does.
    assert re.search(
        rf"\(Caused by ConnectTimeoutError\(<_HTTPConnection\(host='127\.0\.0\.1', port={port}\)"
        r" at 0x[0-9a-f]+>, 'Connection to 127\.0\.0\.1 timed out\.'\)\)$",
        info.value.detail,
    )


def test_each_address_a_name_resolves_to_is_tried_once(monkeypatch, connects):
    # getaddrinfo lists an address once per socket type unless asked for TCP only: a refusing
    # address would then be tried three times.
    port = closed_port()
    real_getaddrinfo = socket.getaddrinfo

    def localhost_is_127_0_0_1(host, *args, **kwargs):
        return real_getaddrinfo("127.0.0.1" if host == "localhost" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", localhost_is_127_0_0_1)
    client = loopback_client(f"http://localhost:{port}/api/laml/2010-04-01")

    with pytest.raises(SignalWireUnavailable) as info:
        client.check_credentials(deadline=time.monotonic() + 30)

    assert connects.addresses == [("127.0.0.1", port)]
    assert "[Errno 111] Connection refused" in info.value.detail


def test_a_deadline_bounded_connection_keeps_urllib3s_socket_options(trickle_server, connects):
    server = trickle_server(http_answer("200 OK", page([]))[0], trickle_from=0, prompt_answers=1)
    client = loopback_client(server.base_url())

    client.check_credentials(deadline=time.monotonic() + 30)

    (sock,) = connects.sockets
    # urllib3's default TCP_NODELAY: a request's last small segment leaves at once instead of
    # waiting for the server's ACK of the one before (Nagle).
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_a_deadline_bounded_request_reaches_the_address_its_name_resolves_to(monkeypatch):
    answer = http_answer("200 OK", page([]))[0]
    for family, host in [(socket.AF_INET6, "::1"), (socket.AF_INET, "127.0.0.2")]:
        listener = socket.create_server((host, 0), family=family)
        address = listener.getsockname()

        def serve(listener=listener):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        entry = (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)
        monkeypatch.setattr(socket, "getaddrinfo", failing_resolver([entry]))
        client = loopback_client(f"http://localhost:{address[1]}/api/laml/2010-04-01")
        try:
            client.check_credentials(deadline=time.monotonic() + 30)
        finally:
            listener.close()
        server.join()


def on_a_new_thread(call):
    """What `call()` returns or raises, run on a thread of its own (so with a new session)."""
    outcome = {}

    def run():
        try:
            outcome["result"] = call()
        except Exception as error:
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def test_a_broken_connection_is_not_retried_behind_the_callers_back(trickle_server):
    # The caller decides about retries (a lookup first, for an import that may have arrived).
    server = trickle_server(b"", trickle_from=0)  # reads the request, closes without answering
    client = loopback_client(server.base_url())

    with pytest.raises(SignalWireUnavailable) as info:
        on_a_new_thread(client.check_credentials)

    assert info.value.may_have_reached_signalwire is True
    assert len(server.request_lines) == 1


def test_a_request_on_a_new_thread_keeps_its_deadline(trickle_server):
    # Each thread has its own session, whose pools must be the ones that keep deadlines.
    server = trickle_server(http_answer("200 OK", page([]))[0], trickle_from=0, prompt_answers=1)
    client = loopback_client(server.base_url())

    def check():
        client.check_credentials()  # a thread's first request may have no deadline
        client.check_credentials(deadline=time.monotonic() + DEADLINE)

    with pytest.raises(SignalWireUnavailable) as info:
        on_a_new_thread(check)

    assert "ran out of time" in info.value.message


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

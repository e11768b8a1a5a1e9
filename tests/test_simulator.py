"""The SignalWire simulator over real HTTP on 127.0.0.1: behaviour, faults, control, load."""

import concurrent.futures
import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import requests

import signalwire_simulator as simulator_module
from signalwire_simulator import SimConfig, SimProject, Simulator, cli, server

ROOT = Path(__file__).resolve().parents[1]


def api(sim, project, suffix=""):
    return f"{sim.api_base_url}/Accounts/{project.project_id}{suffix}"


def post_import(sim, project, *, auth=None, timeout=(2, 5), **kwargs):
    if "data" not in kwargs and "json" not in kwargs:
        kwargs["data"] = {"number": "+14155550100", "number_type": "longcode"}
    return requests.post(
        api(sim, project, "/ImportedPhoneNumbers"),
        auth=auth or (project.project_id, project.token),
        timeout=timeout,
        **kwargs,
    )


def get(sim, project, suffix, *, auth=None, **kwargs):
    return requests.get(
        api(sim, project, suffix),
        auth=auth or (project.project_id, project.token),
        timeout=(2, 5),
        **kwargs,
    )


def created(sim, project):
    return sim.stats()["created"].get(project.project_id, {})


# --- success, list, fetch ---------------------------------------------------------------------


def test_import_201_then_number_is_listed_and_fetchable(simulator, sim_project):
    response = post_import(simulator, sim_project)

    assert response.status_code == 201
    body = response.json()
    assert response.headers["Content-Type"].startswith("application/json")
    assert body["phone_number"] == "+14155550100"
    assert body["account_sid"] == body["account_id"] == sim_project.project_id
    assert uuid.UUID(body["sid"]).version == 4
    assert body["capabilities"] == {"voice": True, "sms": True, "mms": True, "fax": True}
    assert body["uri"] == (
        f"/api/laml/2010-04-01/Accounts/{sim_project.project_id}/IncomingPhoneNumbers/{body['sid']}"
    )
    assert "verification_status" not in body
    for name in ("date_created", "date_updated"):
        assert body[name].endswith(" +0000")
        assert parsedate_to_datetime(body[name]).utcoffset().total_seconds() == 0
    listed = get(simulator, sim_project, "/IncomingPhoneNumbers", params={"PhoneNumber": "+1415"})
    assert listed.status_code == 200
    assert listed.json()["incoming_phone_numbers"] == [body]
    fetched = get(simulator, sim_project, f"/IncomingPhoneNumbers/{body['sid']}")
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert created(simulator, sim_project) == {"+14155550100": 1}


def test_tollfree_import_has_verification_status(simulator, sim_project):
    response = post_import(
        simulator, sim_project, data={"number": "+18005550100", "number_type": "tollfree"}
    )

    assert response.status_code == 201
    assert response.json()["verification_status"] == "Unverified"


def test_fetch_unknown_sid_is_404_with_code_20404(simulator, sim_project):
    response = get(simulator, sim_project, f"/IncomingPhoneNumbers/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.json()["code"] == 20404
    assert response.json()["status"] == 404


def test_list_filter_is_a_pattern_and_numbers_of_other_projects_stay_apart(simulator, sim_project):
    other = SimProject(str(uuid.uuid4()), "PTother")
    simulator.add_project(other)
    post_import(simulator, sim_project, data={"number": "+14155550100", "number_type": "longcode"})
    post_import(simulator, sim_project, data={"number": "+4930123456", "number_type": "longcode"})
    post_import(simulator, other, data={"number": "+14155550199", "number_type": "longcode"})

    mine = get(simulator, sim_project, "/IncomingPhoneNumbers", params={"PhoneNumber": "+1415555"})

    assert [n["phone_number"] for n in mine.json()["incoming_phone_numbers"]] == ["+14155550100"]


def test_list_pages_follow_next_page_uri_with_page_tokens(simulator, sim_project):
    numbers = [f"+4930123456{i}" for i in range(5)]
    for number in numbers:
        post_import(simulator, sim_project, data={"number": number, "number_type": "longcode"})
    url = api(simulator, sim_project, "/IncomingPhoneNumbers?PhoneNumber=%2B49&PageSize=2")
    seen, pages = [], 0

    while url:
        body = requests.get(url, auth=(sim_project.project_id, sim_project.token), timeout=5).json()
        pages += 1
        seen += [n["phone_number"] for n in body["incoming_phone_numbers"]]
        assert body["page_size"] == 2
        next_uri = body["next_page_uri"]
        url = simulator.url + next_uri if next_uri else None
        if next_uri:
            assert "PhoneNumber=%2B49" in next_uri
            assert "PageToken=PA" in next_uri

    assert pages == 3
    assert seen == numbers


@pytest.mark.parametrize(
    ("query", "code"),
    [("Page=1&PageSize=2", 54453), ("PageSize=0", 10000), ("PageSize=1001", 10000)],
)
def test_list_rejects_bad_paging_with_400(simulator, sim_project, query, code):
    response = get(simulator, sim_project, f"/IncomingPhoneNumbers?{query}")

    assert response.status_code == 400
    assert response.json()["code"] == code


def test_legacy_path_and_json_suffix_are_served(simulator, sim_project):
    body = post_import(simulator, sim_project).json()

    response = requests.get(
        f"{simulator.url}/2010-04-01/Accounts/{sim_project.project_id}"
        f"/IncomingPhoneNumbers/{body['sid']}.json",
        auth=(sim_project.project_id, sim_project.token),
        timeout=5,
    )

    assert response.status_code == 200
    assert response.json()["sid"] == body["sid"]


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        ({"data": {"number_type": "longcode"}}, "10000", "Number can't be blank"),
        ({"data": {"number": "+12", "number_type": "longcode"}}, "10000", "Number is invalid"),
        (
            {"data": {"number": "14155550100", "number_type": "longcode"}},
            "10000",
            "Number is invalid",
        ),
        (
            {"data": {"number": "+1" + "2" * 30, "number_type": "longcode"}},
            "10000",
            "Number is invalid",
        ),
        ({"data": {"number": "+14155550100"}}, "10000", "Number type can't be blank"),
        (
            {"data": {"number": "+14155550100", "number_type": "mobile"}},
            "10000",
            "Number type is not included in the list",
        ),
        (
            {
                "data": {
                    "number": "+14155550100",
                    "number_type": "longcode",
                    "capabilities": "video",
                }
            },
            "4000",
            "invalid capabilities",
        ),
        (
            {"data": "number=%2B14155550100&number_type=longcode&capabilities%5B%5D="},
            "4000",
            "capabilities for the phone number are missing",
        ),
        (
            {"json": {"number": "+14155550100", "number_type": "longcode", "capabilities": []}},
            "4000",
            "capabilities for the phone number are missing",
        ),
        (
            {"json": {"number": "+14155550100", "number_type": "longcode", "capabilities": "sms"}},
            "4000",
            "invalid capabilities",
        ),
        ({"json": {}}, "10000", "Number can't be blank, Number type can't be blank"),
        (
            {"data": b"number=%2B14155550100", "headers": {"Content-Type": "text/plain"}},
            "10000",
            "Number can't be blank",
        ),
    ],
)
def test_invalid_imports_get_422_in_signalwires_shape(
    simulator, sim_project, kwargs, code, message
):
    if isinstance(kwargs.get("data"), str):
        kwargs["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}

    response = post_import(simulator, sim_project, **kwargs)

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["code"], str)
    assert message in body["message"]
    assert body["status"] == 422
    assert set(body) == {"code", "message", "more_info", "status"}
    assert created(simulator, sim_project) == {}


@pytest.mark.parametrize(
    "number", ["+١٤١٥٥٥٥٠١٠٠", "+１４１５５５５０１００", "+१४१५५५५०१००", "+14155550100\n"]
)
@pytest.mark.parametrize("encoding", ["data", "json"])
def test_a_number_is_ascii_digits_only_and_without_a_trailing_newline(
    simulator, sim_project, number, encoding
):
    # The spec's pattern means 0-9: digits of other scripts, and a newline after the digits
    # that a `$` would let through, get the 422 any other malformed number gets.
    response = post_import(
        simulator, sim_project, **{encoding: {"number": number, "number_type": "longcode"}}
    )

    assert response.status_code == 422
    assert response.json()["message"] == "Number is invalid"
    assert created(simulator, sim_project) == {}


def test_malformed_json_body_is_400_with_integer_code(simulator, sim_project):
    response = post_import(
        simulator, sim_project, data="{nope", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["code"] == 10000


def test_duplicate_import_is_422_already_taken_and_creates_nothing(simulator, sim_project):
    assert post_import(simulator, sim_project).status_code == 201

    response = post_import(simulator, sim_project)

    assert response.status_code == 422
    assert response.json()["message"] == "Number has already been taken"
    assert response.json()["code"] == "10000"
    assert created(simulator, sim_project) == {"+14155550100": 1}
    assert simulator.stats()["import_requests"][sim_project.project_id] == {"+14155550100": 2}


def test_duplicates_allowed_are_counted_so_double_imports_show(simulator, sim_project):
    simulator.configure(duplicates="allow")

    first, second = post_import(simulator, sim_project), post_import(simulator, sim_project)

    assert first.status_code == second.status_code == 201
    assert first.json()["sid"] != second.json()["sid"]
    assert created(simulator, sim_project) == {"+14155550100": 2}


# --- encodings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {
                "data": "number=%2B14155550100&number_type=longcode"
                "&capabilities[]=sms&capabilities[]=fax"
            },
            {"sms", "fax"},
        ),
        (
            {
                "data": "number=%2B14155550100&number_type=longcode"
                "&capabilities=voice&capabilities=mms"
            },
            {"voice", "mms"},
        ),
        ({"data": "number=%2B14155550100&number_type=longcode&capabilities=sms"}, {"sms"}),
        ({"data": "number=%2B14155550100&number_type=longcode&capabilities%5B%5D=mms"}, {"mms"}),
        (
            {
                "json": {
                    "number": "+14155550100",
                    "number_type": "longcode",
                    "capabilities": ["voice"],
                }
            },
            {"voice"},
        ),
        (
            {"json": {"number": "+14155550100", "number_type": "longcode"}},
            {"sms", "voice", "fax", "mms"},
        ),
    ],
)
def test_form_arrays_repeated_keys_and_json_all_carry_capabilities(
    simulator, sim_project, kwargs, expected
):
    if "data" in kwargs:
        kwargs["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}

    response = post_import(simulator, sim_project, **kwargs)

    assert response.status_code == 201
    capabilities = response.json()["capabilities"]
    assert {name for name, on in capabilities.items() if on} == expected


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    ["wrong-token", "no-auth", "unknown-project", "not-basic"],
)
def test_bad_credentials_get_401_code_20003(simulator, sim_project, auth):
    kwargs = {}
    if auth == "wrong-token":
        kwargs["auth"] = (sim_project.project_id, "PTwrong")
    elif auth == "unknown-project":
        kwargs["auth"] = (str(uuid.uuid4()), sim_project.token)
    elif auth == "not-basic":
        kwargs["headers"] = {"Authorization": f"Bearer {sim_project.token}"}

    response = requests.post(
        api(simulator, sim_project, "/ImportedPhoneNumbers"),
        data={"number": "+14155550100", "number_type": "longcode"},
        timeout=5,
        **kwargs,
    )

    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authentication failed",
        "more_info": "https://signalwire.com/docs/compatibility-api/reference/errors",
        "status": 401,
    }
    assert created(simulator, sim_project) == {}


def test_a_token_opens_only_its_own_project(simulator, sim_project):
    other = SimProject(str(uuid.uuid4()), "PTother")
    simulator.add_project(other)

    response = post_import(simulator, sim_project, auth=(other.project_id, other.token))

    assert response.status_code == 401


def test_partner_api_disabled_refuses_imports_but_not_reads(simulator, sim_project):
    simulator.add_project(dataclasses.replace(sim_project, partner_api=False))

    imported = post_import(simulator, sim_project)
    listed = get(simulator, sim_project, "/IncomingPhoneNumbers")

    assert imported.status_code == 401
    assert imported.json()["code"] == 20003
    assert listed.status_code == 200


def test_token_without_numbers_scope_gets_401_on_numbers_endpoints(simulator, sim_project):
    simulator.add_project(
        dataclasses.replace(sim_project, numbers_scope=False, management_scope=True)
    )

    assert post_import(simulator, sim_project).status_code == 401
    assert get(simulator, sim_project, "/IncomingPhoneNumbers").status_code == 401
    account = get(simulator, sim_project, "")
    assert account.status_code == 200
    assert account.json()["sid"] == sim_project.project_id
    assert account.json()["auth_token"] == "redacted"


def test_account_endpoint_needs_management_scope(simulator, sim_project):
    response = get(simulator, sim_project, "")

    assert response.status_code == 401
    assert response.json()["code"] == 20003


# --- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "status", "retry_after"),
    [
        ({"error_429_fraction": 1, "retry_after": 3}, 429, "3"),
        ({"error_429_fraction": 1, "retry_after": None}, 429, None),
        ({"error_500_fraction": 1}, 500, None),
        ({"error_503_fraction": 1}, 503, None),
    ],
)
def test_error_faults_answer_the_import_and_create_nothing(
    simulator, sim_project, changes, status, retry_after
):
    simulator.configure(**changes)

    response = post_import(simulator, sim_project)

    assert response.status_code == status
    assert response.headers.get("Retry-After") == retry_after
    assert response.json()["status"] == status
    assert isinstance(response.json()["code"], int)
    assert created(simulator, sim_project) == {}
    assert simulator.stats()["requests"]["import"] == {str(status): 1}


def test_faults_apply_to_imports_only(simulator, sim_project):
    simulator.configure(error_500_fraction=1)

    assert get(simulator, sim_project, "/IncomingPhoneNumbers").status_code == 200


@pytest.mark.parametrize(("creates", "expected"), [(1.0, {"+14155550100": 1}), (0.0, {})])
def test_timeout_holds_past_the_client_and_may_have_created(
    simulator, sim_project, creates, expected
):
    simulator.configure(timeout_fraction=1, timeout_seconds=1.5, timeout_creates=creates)
    started = time.monotonic()

    with pytest.raises(requests.ReadTimeout):
        post_import(simulator, sim_project, timeout=(1, 0.5))

    assert time.monotonic() - started < 1.4
    assert created(simulator, sim_project) == expected
    listed = get(simulator, sim_project, "/IncomingPhoneNumbers").json()
    assert len(listed["incoming_phone_numbers"]) == len(expected)


def test_a_patient_client_gets_the_late_201_of_a_timed_out_import(simulator, sim_project):
    simulator.configure(timeout_fraction=1, timeout_seconds=0.3, timeout_creates=1)
    started = time.monotonic()

    response = post_import(simulator, sim_project, timeout=(1, 3))

    assert response.status_code == 201
    assert time.monotonic() - started >= 0.3
    assert simulator.stats()["requests"]["import"] == {"timeout": 1}


def listed_numbers(sim, project):
    body = get(sim, project, "/IncomingPhoneNumbers").json()
    return [record["phone_number"] for record in body["incoming_phone_numbers"]]


def wait_for(condition, seconds=5):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.01)


def test_a_late_creation_within_the_hold_is_found_only_after_its_time_then_answered_201(
    simulator, sim_project
):
    simulator.configure(
        timeout_fraction=1, timeout_seconds=1.2, timeout_creates=1, late_create_seconds=0.6
    )
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        answer = pool.submit(post_import, simulator, sim_project, timeout=(1, 5))
        wait_for(lambda: simulator.stats()["import_posts"])

        early = listed_numbers(simulator, sim_project)
        time.sleep(max(0.0, started + 0.8 - time.monotonic()))
        late = listed_numbers(simulator, sim_project)
        response = answer.result()

    assert early == []
    assert late == ["+14155550100"]
    assert response.status_code == 201
    assert response.json()["phone_number"] == "+14155550100"
    assert time.monotonic() - started >= 1.2
    assert created(simulator, sim_project) == {"+14155550100": 1}


def test_a_late_creation_past_the_hold_drops_the_answer_and_creates_the_number_later(
    simulator, sim_project
):
    simulator.configure(
        timeout_fraction=1, timeout_seconds=0.2, timeout_creates=1, late_create_seconds=1.0
    )
    started = time.monotonic()

    with pytest.raises(requests.ConnectionError):
        post_import(simulator, sim_project, timeout=(1, 5))
    dropped_after = time.monotonic() - started
    before = listed_numbers(simulator, sim_project)
    time.sleep(max(0.0, started + 1.2 - time.monotonic()))

    assert dropped_after < 0.9
    assert before == []
    assert listed_numbers(simulator, sim_project) == ["+14155550100"]
    assert created(simulator, sim_project) == {"+14155550100": 1}
    assert simulator.stats()["requests"]["import"] == {"timeout": 1}


@pytest.mark.parametrize("ending", ["reset", "stop"])
def test_reset_and_stop_forget_late_creations_still_to_come(sim_project, ending):
    config = SimConfig(
        timeout_fraction=1, timeout_seconds=0.1, timeout_creates=1, late_create_seconds=0.5
    )
    sim = Simulator([sim_project], config).start()
    try:
        with pytest.raises(requests.ConnectionError):
            post_import(sim, sim_project, timeout=(1, 5))
        getattr(sim, ending)()
        time.sleep(0.7)

        assert sim.numbers(sim_project.project_id) == []
        assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    finally:
        sim.stop()


def test_import_posts_count_every_post_naming_a_number_on_arrival_whatever_its_answer(
    simulator, sim_project
):
    number = {"number": "+14155550100"}
    statuses = []

    def post(**kwargs):
        try:
            statuses.append(post_import(simulator, sim_project, **kwargs).status_code)
        except requests.ConnectionError:
            statuses.append("no answer")

    simulator.configure(error_500_fraction=1)
    post(data={**number, "number_type": "longcode"})
    simulator.configure(error_500_fraction=0)
    post(data={**number, "number_type": "longcode"}, auth=(sim_project.project_id, "PTwrong"))
    post(data=number)
    post(data={"number_type": "longcode"})
    post(data={**number, "number_type": "longcode"})
    post(json={**number, "number_type": "longcode"})
    simulator.configure(error_429_fraction=1)
    post(data={**number, "number_type": "longcode"})
    simulator.configure(error_429_fraction=0, reset_fraction=1)
    post(data={**number, "number_type": "longcode"})
    # Held for 5 s and counted already: the client gives up after 0.2 s.
    simulator.configure(reset_fraction=0, timeout_fraction=1, timeout_seconds=5)
    with pytest.raises(requests.ReadTimeout):
        post_import(simulator, sim_project, timeout=(1, 0.2))

    stats = requests.get(f"{simulator.url}/__sim__/stats", timeout=5).json()

    assert statuses == [500, 401, 422, 422, 201, 422, 429, "no answer"]
    assert stats["import_posts"] == {sim_project.project_id: {"+14155550100": 8}}
    assert stats["posts_after_created"] == {sim_project.project_id: {"+14155550100": 4}}


def test_a_post_for_a_number_another_project_holds_is_not_a_post_after_created(
    simulator, sim_project
):
    other = SimProject(str(uuid.uuid4()), "PTother")
    simulator.add_project(other)
    post_import(simulator, other)

    post_import(simulator, sim_project)

    stats = simulator.stats()
    assert stats["posts_after_created"] == {}
    assert stats["import_posts"] == {
        other.project_id: {"+14155550100": 1},
        sim_project.project_id: {"+14155550100": 1},
    }


def test_requests_per_second_counts_every_request_received_in_each_whole_second(
    simulator, sim_project
):
    simulator.configure(rate_limit=2)
    before = time.time()
    statuses = [get(simulator, sim_project, "/IncomingPhoneNumbers").status_code for _ in range(3)]
    time.sleep(2.05)
    statuses.append(post_import(simulator, sim_project).status_code)

    stats = simulator.stats()

    assert statuses == [200, 200, 429, 201]
    assert stats["requests_per_second"] == {sim_project.project_id: [3, 0, 1]}
    assert before <= stats["first_request_at"][sim_project.project_id] <= before + 1


def test_a_projects_overrides_apply_to_its_own_requests_only(simulator, sim_project):
    throttled = SimProject(
        str(uuid.uuid4()), "PTthrottled", overrides={"rate_limit": 1, "error_500_fraction": 1}
    )
    simulator.add_project(throttled)

    throttled_answers = [post_import(simulator, throttled).status_code for _ in range(2)]
    free_answers = [post_import(simulator, sim_project).status_code for _ in range(2)]

    assert throttled_answers == [500, 429]
    assert free_answers == [201, 422]


@pytest.mark.parametrize(
    "overrides", [{"no_such_knob": 1}, {"error_500_fraction": 2}, {"late_create_seconds": -1}]
)
def test_bad_project_overrides_are_refused(simulator, overrides):
    payload = {"project_id": str(uuid.uuid4()), "token": "PTx", "overrides": overrides}

    response = requests.post(f"{simulator.url}/__sim__/projects", json=payload, timeout=5)

    assert response.status_code == 400
    with pytest.raises(ValueError):
        SimProject(**payload)


@pytest.mark.parametrize(("creates", "expected"), [(1.0, {"+14155550100": 1}), (0.0, {})])
def test_reset_breaks_the_connection_after_the_request(simulator, sim_project, creates, expected):
    simulator.configure(reset_fraction=1, reset_creates=creates)

    with pytest.raises(requests.ConnectionError) as info:
        post_import(simulator, sim_project)

    assert "reset" in str(info.value).lower() or "aborted" in str(info.value).lower()
    assert created(simulator, sim_project) == expected
    assert simulator.stats()["requests"]["import"] == {"reset": 1}


def test_fixed_latency_delays_every_api_request(simulator, sim_project):
    simulator.configure(latency_min_ms=200, latency_max_ms=200)
    started = time.monotonic()

    get(simulator, sim_project, "/IncomingPhoneNumbers")

    assert time.monotonic() - started >= 0.2


def test_random_latency_stays_within_its_bounds(simulator, sim_project):
    simulator.configure(latency_min_ms=50, latency_max_ms=120)
    timings = []

    for _ in range(4):
        started = time.monotonic()
        get(simulator, sim_project, "/IncomingPhoneNumbers")
        timings.append(time.monotonic() - started)

    assert all(0.05 <= t < 0.5 for t in timings)
    assert len({round(t, 3) for t in timings}) > 1


def test_the_seed_makes_random_faults_repeatable(sim_project):
    def statuses():
        sim = Simulator([sim_project], SimConfig(error_500_fraction=0.5), seed=7).start()
        try:
            return [
                post_import(
                    sim, sim_project, data={"number": f"+1415555{i:04d}", "number_type": "longcode"}
                ).status_code
                for i in range(12)
            ]
        finally:
            sim.stop()

    first = statuses()

    assert first == statuses()
    assert {201, 500} == set(first)


def test_rate_limit_answers_429_and_stats_show_the_peak(simulator, sim_project):
    simulator.configure(rate_limit=5)

    statuses = [get(simulator, sim_project, "/IncomingPhoneNumbers") for _ in range(8)]
    time.sleep(1.05)
    after_pause = get(simulator, sim_project, "/IncomingPhoneNumbers")

    assert [r.status_code for r in statuses] == [200] * 5 + [429] * 3
    assert statuses[-1].json()["code"] == 20429
    assert statuses[-1].headers["Retry-After"] == "1"
    assert after_pause.status_code == 200
    stats = simulator.stats()
    assert stats["peak_rate"][sim_project.project_id] == 8
    assert stats["requests"]["list"] == {"200": 6, "429": 3}


def test_peak_rate_counts_requests_in_any_one_second_window(simulator, sim_project):
    for _ in range(3):
        get(simulator, sim_project, "/IncomingPhoneNumbers")
    time.sleep(1.05)
    for _ in range(2):
        get(simulator, sim_project, "/IncomingPhoneNumbers")

    assert simulator.stats()["peak_rate"][sim_project.project_id] == 3


# --- control endpoints --------------------------------------------------------------------------


def test_control_config_changes_behaviour_at_run_time(simulator, sim_project):
    url = f"{simulator.url}/__sim__/config"

    changed = requests.post(url, json={"error_503_fraction": 1, "retry_after": 9}, timeout=5)

    assert changed.status_code == 200
    assert changed.json()["error_503_fraction"] == 1
    assert requests.get(url, timeout=5).json()["retry_after"] == 9
    assert post_import(simulator, sim_project).status_code == 503


@pytest.mark.parametrize(
    "payload",
    [
        {"no_such_knob": 1},
        {"error_500_fraction": 2},
        {"error_500_fraction": 0.6, "reset_fraction": 0.6},
        [1],
    ],
)
def test_control_config_rejects_bad_changes(simulator, payload):
    response = requests.post(f"{simulator.url}/__sim__/config", json=payload, timeout=5)

    assert response.status_code == 400
    assert simulator.config == SimConfig()


def test_control_reset_forgets_numbers_stats_and_config(simulator, sim_project):
    post_import(simulator, sim_project)
    simulator.configure(error_500_fraction=1)

    response = requests.post(f"{simulator.url}/__sim__/reset", timeout=5)

    assert response.status_code == 200
    assert simulator.config == SimConfig()
    assert simulator.stats()["created"] == {}
    assert post_import(simulator, sim_project).status_code == 201


def test_control_stats_counts_per_endpoint_status_and_creations(simulator, sim_project):
    post_import(simulator, sim_project)
    post_import(simulator, sim_project)
    get(simulator, sim_project, "/IncomingPhoneNumbers")

    stats = requests.get(f"{simulator.url}/__sim__/stats", timeout=5).json()

    assert stats["requests"] == {"import": {"201": 1, "422": 1}, "list": {"200": 1}}
    assert stats["statuses"] == {"201": 1, "422": 1, "200": 1}
    assert stats["created"] == {sim_project.project_id: {"+14155550100": 1}}
    assert stats["peak_rate"] == {sim_project.project_id: 3}
    assert stats["import_posts"] == {sim_project.project_id: {"+14155550100": 2}}
    assert stats["posts_after_created"] == {sim_project.project_id: {"+14155550100": 1}}
    assert stats["requests_per_second"] == {sim_project.project_id: [3]}


def test_control_projects_adds_a_project_and_never_shows_tokens(simulator):
    project_id = str(uuid.uuid4())
    added = requests.post(
        f"{simulator.url}/__sim__/projects",
        json={"project_id": project_id, "token": "PTnew-secret", "partner_api": False},
        timeout=5,
    )
    listing = requests.get(f"{simulator.url}/__sim__/projects", timeout=5)
    response = requests.get(
        f"{simulator.api_base_url}/Accounts/{project_id}/IncomingPhoneNumbers",
        auth=(project_id, "PTnew-secret"),
        timeout=5,
    )

    assert added.status_code == 201
    assert response.status_code == 200
    assert "PTnew-secret" not in added.text + listing.text
    assert {p["project_id"]: p["partner_api"] for p in listing.json()}[project_id] is False


def test_control_exchanges_redact_the_authorization_header(simulator, sim_project):
    post_import(simulator, sim_project)

    exchanges = requests.get(f"{simulator.url}/__sim__/exchanges", timeout=5).json()

    assert exchanges[0]["headers"]["Authorization"] == "Basic [redacted]"
    assert exchanges[0]["status"] == "201"
    assert sim_project.token not in json.dumps(exchanges)


def test_control_endpoints_answer_loopback_clients_only():
    assert server.is_loopback("127.0.0.1")
    assert server.is_loopback("::1")
    assert server.is_loopback("::ffff:127.0.0.1")
    assert not server.is_loopback("10.0.0.8")
    assert not server.is_loopback("192.168.1.2")


# --- load ---------------------------------------------------------------------------------------


def test_64_concurrent_imports_all_succeed(simulator, sim_project):
    simulator.configure(latency_min_ms=300, latency_max_ms=300)
    barrier = threading.Barrier(64)

    def one(i):
        barrier.wait()
        return post_import(
            simulator, sim_project, data={"number": f"+1415555{i:04d}", "number_type": "longcode"}
        ).status_code

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        statuses = list(pool.map(one, range(64)))
    elapsed = time.monotonic() - started

    assert statuses == [201] * 64
    assert len(created(simulator, sim_project)) == 64
    assert simulator.stats()["max_in_flight"] >= 48
    assert elapsed < 3


# --- configuration and command line -------------------------------------------------------------


def test_project_spec_parses_host_and_flags():
    project = SimProject.parse(
        f"{uuid.UUID(int=1)}:PTtok:acme.signalwire.test:no-partner-api,management-scope"
    )

    assert project.project_id == str(uuid.UUID(int=1))
    assert project.space_host == "acme.signalwire.test"
    assert (project.partner_api, project.numbers_scope, project.management_scope) == (
        False,
        True,
        True,
    )
    assert "PTtok" not in repr(project)


@pytest.mark.parametrize(
    "spec", ["not-a-uuid:tok", f"{uuid.UUID(int=1)}", f"{uuid.UUID(int=1)}:t:h:odd"]
)
def test_bad_project_specs_are_refused(spec):
    with pytest.raises(ValueError):
        SimProject.parse(spec)


def test_projects_file_and_flags_build_projects_and_config(tmp_path):
    path = tmp_path / "projects.json"
    path.write_text(
        json.dumps(
            [
                {
                    "project_id": str(uuid.UUID(int=2)),
                    "token": "PT2",
                    "numbers_scope": False,
                    "overrides": {"rate_limit": 3},
                }
            ]
        )
    )
    args = cli.build_parser().parse_args(
        [
            "--projects-file",
            str(path),
            "--demo",
            "--latency-ms",
            "25",
            "--error-429-fraction",
            "0.1",
            "--retry-after",
            "none",
            "--rate-limit",
            "20",
            "--late-create-seconds",
            "2.5",
        ]
    )

    projects = cli.projects_from_args(args)
    config = cli.config_from_args(args)

    assert [p.project_id for p in projects] == [
        str(uuid.UUID(int=2)),
        simulator_module.DEMO_PROJECT_ID,
        simulator_module.SECOND_DEMO_PROJECT_ID,
    ]
    assert projects[0].numbers_scope is False
    assert projects[0].overrides == {"rate_limit": 3}
    assert (config.latency_min_ms, config.latency_max_ms) == (25, 25)
    assert config.error_429_fraction == 0.1
    assert config.retry_after is None
    assert config.rate_limit == 20
    assert config.late_create_seconds == 2.5


def test_modules_import_without_django():
    code = (
        "import sys, phone_numbers.signalwire, signalwire_simulator.cli; "
        "assert not any(m.startswith('django') for m in sys.modules), 'django was imported'"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}

    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=30)


def test_the_simulator_shares_nothing_with_the_client():
    # It stands in for SignalWire, so it must not borrow the portal's idea of the API: no
    # import of phone_numbers from it, none of it from phone_numbers but the command that
    # starts it.
    code = (
        "import sys, signalwire_simulator.cli; "
        "assert not [m for m in sys.modules if m.startswith('phone_numbers')], 'app imported'"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=30)
    importers = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "phone_numbers").rglob("*.py")
        if "signalwire_simulator" in path.read_text()
    )
    assert importers == ["phone_numbers/management/commands/runportal.py"]


def test_command_line_serves_the_demo_project_until_terminated():
    process = subprocess.Popen(
        [sys.executable, "-m", "signalwire_simulator", "--port", "0", "--demo", "--seed", "1"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        match = None
        while match is None:
            line = process.stderr.readline()
            assert line, "the simulator exited before announcing its address"
            match = re.search(r"(http://127\.0\.0\.1:\d+/api/laml/2010-04-01)", line)
        base = match.group(1)
        response = requests.post(
            f"{base}/Accounts/{simulator_module.DEMO_PROJECT_ID}/ImportedPhoneNumbers",
            data={"number": "+14155550100", "number_type": "longcode"},
            auth=(simulator_module.DEMO_PROJECT_ID, simulator_module.DEMO_TOKEN),
            timeout=5,
        )
        assert response.status_code == 201
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0
        process.stderr.close()

"""The simulator's Space changing by other routes than the portal (issue 17), over real HTTP:
numbers bought in the dashboard, released, changed and moved, and the paged list staying
right and cheap through it. Every list response is checked against SignalWire's OpenAPI
description (skipped, saying why, when ../shared is absent)."""

import base64
import http.client
import json
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from signalwire_simulator import SimProject
from signalwire_simulator.spaces import ProjectNumbers, list_page, new_number

LIST_PATH = "/Accounts/{AccountSid}/IncomingPhoneNumbers"
NUMBER_PATH = "/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}"
ENVELOPE = {
    "uri",
    "first_page_uri",
    "next_page_uri",
    "previous_page_uri",
    "page",
    "page_size",
    "incoming_phone_numbers",
}


@pytest.fixture
def conforms(spec, validate):
    """conforms(response, path, method): the response's status is documented for the
    operation and its body validates against the schema documented for that status."""

    def check(response, path, method):
        documented = spec["paths"][path][method]["responses"]
        assert str(response.status_code) in documented, f"{response.status_code} undocumented"
        content = documented[str(response.status_code)].get("content")
        if content is None:
            assert response.content == b""
            return
        schema = content["application/json"]["schema"]
        assert validate(schema, response.json()) == []

    return check


def control(sim, method, suffix, **kwargs):
    return requests.request(method, f"{sim.url}/__sim__{suffix}", timeout=30, **kwargs)


def numbers_url(project, ref=""):
    return f"/projects/{project.project_id}/numbers" + (f"/{ref}" if ref else "")


def api(sim, project, suffix=""):
    return f"{sim.api_base_url}/Accounts/{project.project_id}{suffix}"


def auth(project):
    return (project.project_id, project.token)


def list_all(sim, project, conforms, page_size=50, **params):
    """Every number of the project, following next_page_uri; each page checked."""
    url = api(sim, project, "/IncomingPhoneNumbers")
    params = {"PageSize": page_size, **params}
    numbers, page = [], 0
    while url:
        response = requests.get(url, params=params, auth=auth(project), timeout=30)
        assert response.status_code == 200
        conforms(response, LIST_PATH, "get")
        body = response.json()
        assert set(body) == ENVELOPE
        assert body["page"] == page
        assert body["page_size"] == page_size
        assert urlsplit(response.url).path.endswith(urlsplit(body["uri"]).path)
        query = parse_qs(urlsplit(body["uri"]).query)
        assert ("PageToken" in query) == (page > 0)
        assert "PageToken" not in parse_qs(urlsplit(body["first_page_uri"]).query)
        assert (body["previous_page_uri"] is None) == (page == 0)
        numbers += body["incoming_phone_numbers"]
        url = sim.url + body["next_page_uri"] if body["next_page_uri"] else None
        if url:
            assert parse_qs(urlsplit(url).query)["PageToken"][0].startswith("PA")
        params, page = None, page + 1
    return numbers


def phone_numbers(records):
    return [record["phone_number"] for record in records]


# --- numbers bought in the dashboard -----------------------------------------------------------


def test_numbers_bought_in_the_dashboard_are_listed_as_signalwire_numbers(
    simulator, sim_project, conforms
):
    response = control(
        simulator, "POST", numbers_url(sim_project), json={"numbers": ["+14155550100", "+4930123"]}
    )

    assert response.status_code == 201
    assert response.json()["added"] == 2
    listed = list_all(simulator, sim_project, conforms)
    assert phone_numbers(listed) == ["+14155550100", "+4930123"]
    assert [record["sid"] for record in listed] == response.json()["sids"]
    assert {record["origin"] for record in listed} == {"signalwire"}
    assert listed[0]["capabilities"] == {"voice": True, "sms": True, "mms": True, "fax": True}
    assert listed[0]["account_sid"] == sim_project.project_id
    # They are in the Space: an import of one is a duplicate, and they count as no import.
    duplicate = requests.post(
        api(simulator, sim_project, "/ImportedPhoneNumbers"),
        data={"number": "+14155550100", "number_type": "longcode"},
        auth=auth(sim_project),
        timeout=5,
    )
    assert duplicate.status_code == 422
    assert simulator.stats()["created"] == {}


def test_count_and_start_add_consecutive_numbers_of_a_type_and_capabilities(
    simulator, sim_project, conforms
):
    response = control(
        simulator,
        "POST",
        numbers_url(sim_project),
        json={
            "count": 25,
            "start": "+18005550090",
            "number_type": "tollfree",
            "capabilities": ["voice", "sms"],
        },
    )

    assert response.status_code == 201
    listed = list_all(simulator, sim_project, conforms, page_size=10)
    assert phone_numbers(listed) == [f"+{18005550090 + i}" for i in range(25)]
    assert listed[0]["verification_status"] == "Unverified"
    assert listed[-1]["capabilities"] == {"voice": True, "sms": True, "mms": False, "fax": False}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, '"numbers"'),
        ({"numbers": ["+14155550100"], "count": 2, "start": "+1415"}, "either"),
        ({"numbers": ["4155550100"]}, "not E.164 numbers: '4155550100'"),
        ({"numbers": ["+14155550100", "+14155550100"]}, "twice"),
        ({"count": 0, "start": "+14155550100"}, '"count"'),
        ({"count": 2, "start": "+1"}, '"start"'),
        ({"numbers": ["+14155550100"], "capabilities": ["telex"]}, '"capabilities"'),
        ({"numbers": ["+14155550100"], "number_type": "mobile"}, '"number_type"'),
        ({"numbers": ["+14155550100"], "origin": "hosted"}, "unknown fields: origin"),
    ],
)
def test_a_bad_addition_is_400_naming_what_to_fix_and_adds_nothing(
    simulator, sim_project, body, words
):
    response = control(simulator, "POST", numbers_url(sim_project), json=body)

    assert response.status_code == 400
    assert words in response.json()["error"]
    assert simulator.numbers(sim_project.project_id) == []


def test_an_addition_is_all_or_nothing_and_an_unknown_project_is_404(simulator, sim_project):
    control(simulator, "POST", numbers_url(sim_project), json={"numbers": ["+14155550101"]})

    taken = control(
        simulator,
        "POST",
        numbers_url(sim_project),
        json={"numbers": ["+14155550100", "+14155550101"]},
    )
    unknown = control(
        simulator, "POST", f"/projects/{uuid.uuid4()}/numbers", json={"numbers": ["+14155550100"]}
    )

    assert taken.status_code == 400
    assert taken.json()["error"] == "already in the project: +14155550101"
    assert phone_numbers(simulator.numbers(sim_project.project_id)) == ["+14155550101"]
    assert unknown.status_code == 404


# --- release -----------------------------------------------------------------------------------


def add(sim, project, *numbers):
    response = control(sim, "POST", numbers_url(project), json={"numbers": list(numbers)})
    assert response.status_code == 201
    return response.json()["sids"]


def test_release_over_the_api_is_204_then_404_and_the_number_leaves_the_list(
    simulator, sim_project, conforms
):
    kept, released = add(simulator, sim_project, "+14155550100", "+14155550101")
    url = api(simulator, sim_project, f"/IncomingPhoneNumbers/{released}")

    first = requests.delete(url, auth=auth(sim_project), timeout=5)
    again = requests.delete(url, auth=auth(sim_project), timeout=5)

    assert first.status_code == 204
    assert first.content == b""
    conforms(first, NUMBER_PATH, "delete")
    assert again.status_code == 404
    assert again.json()["code"] == 20404
    conforms(again, NUMBER_PATH, "delete")
    assert requests.get(url, auth=auth(sim_project), timeout=5).status_code == 404
    assert [record["sid"] for record in list_all(simulator, sim_project, conforms)] == [kept]


def test_a_204_carries_no_body_so_the_connection_serves_the_next_request(simulator, sim_project):
    # http.client reads no body after a 204, so a stray one would be taken for the start of
    # the next answer on the same keep-alive connection.
    (sid,) = add(simulator, sim_project, "+14155550100")
    path = api(simulator, sim_project, f"/IncomingPhoneNumbers/{sid}")[len(simulator.url) :]
    token = base64.b64encode(f"{sim_project.project_id}:{sim_project.token}".encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", simulator.port, timeout=5)
    try:
        connection.request("DELETE", path, headers={"Authorization": f"Basic {token}"})
        released = connection.getresponse()
        assert released.status == 204
        assert released.getheader("Content-Length") is None
        assert released.read() == b""
        connection.request("GET", path, headers={"Authorization": f"Basic {token}"})
        fetched = connection.getresponse()
        assert fetched.status == 404
        assert json.loads(fetched.read())["code"] == 20404
    finally:
        connection.close()


def test_release_needs_the_projects_own_token_and_number(simulator, sim_project):
    other = SimProject(str(uuid.uuid4()), "PTother", sim_project.space_host)
    simulator.add_project(other)
    (sid,) = add(simulator, sim_project, "+14155550100")

    wrong_token = requests.delete(
        api(simulator, sim_project, f"/IncomingPhoneNumbers/{sid}"),
        auth=(sim_project.project_id, "PTwrong"),
        timeout=5,
    )
    from_other = requests.delete(
        api(simulator, other, f"/IncomingPhoneNumbers/{sid}"), auth=auth(other), timeout=5
    )

    assert wrong_token.status_code == 401
    assert from_other.status_code == 404
    assert len(simulator.numbers(sim_project.project_id)) == 1


def test_release_through_the_control_endpoint_by_number_or_by_sid(simulator, sim_project):
    first, second = add(simulator, sim_project, "+14155550100", "+14155550101")

    by_number = control(simulator, "DELETE", numbers_url(sim_project, "%2B14155550100"))
    by_sid = control(simulator, "DELETE", numbers_url(sim_project, second))
    unknown = control(simulator, "DELETE", numbers_url(sim_project, "+14155550100"))

    assert by_number.status_code == 200
    assert by_number.json()["sid"] == first
    assert by_sid.json()["phone_number"] == "+14155550101"
    assert simulator.numbers(sim_project.project_id) == []
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "no number +14155550100 in the project"


# --- capabilities and other changes ---------------------------------------------------------------


def test_capabilities_change_through_the_control_endpoint(simulator, sim_project, conforms):
    (sid,) = add(simulator, sim_project, "+14155550100")

    changed = control(
        simulator, "POST", numbers_url(sim_project, sid), json={"capabilities": ["fax"]}
    )
    refused = control(simulator, "POST", numbers_url(sim_project, sid), json={"capabilities": []})

    assert changed.status_code == 200
    expected = {"voice": False, "sms": False, "mms": False, "fax": True}
    assert changed.json()["capabilities"] == expected
    (listed,) = list_all(simulator, sim_project, conforms)
    assert listed["capabilities"] == expected
    assert listed["sid"] == sid
    assert refused.status_code == 400
    assert '"capabilities"' in refused.json()["error"]


def test_the_update_api_sets_friendly_name_and_urls_and_refuses_a_bad_method(
    simulator, sim_project, conforms
):
    (sid,) = add(simulator, sim_project, "+14155550100")
    url = api(simulator, sim_project, f"/IncomingPhoneNumbers/{sid}")

    updated = requests.post(
        url,
        data={"FriendlyName": "Front desk", "VoiceUrl": "https://example.com/voice"},
        auth=auth(sim_project),
        timeout=5,
    )
    refused = requests.post(url, data={"VoiceMethod": "PUT"}, auth=auth(sim_project), timeout=5)
    unknown = requests.post(
        api(simulator, sim_project, f"/IncomingPhoneNumbers/{uuid.uuid4()}"),
        data={"FriendlyName": "x"},
        auth=auth(sim_project),
        timeout=5,
    )

    assert updated.status_code == 200
    conforms(updated, NUMBER_PATH, "post")
    assert updated.json()["friendly_name"] == "Front desk"
    assert updated.json()["voice_url"] == "https://example.com/voice"
    assert refused.status_code == 400
    conforms(refused, NUMBER_PATH, "post")
    assert refused.json()["message"] == "VoiceMethod must be GET or POST"
    assert unknown.status_code == 404
    conforms(unknown, NUMBER_PATH, "post")
    (listed,) = list_all(simulator, sim_project, conforms, FriendlyName="Front desk")
    assert listed["sid"] == sid


# --- moving a number to another project of the Space --------------------------------------------


@pytest.fixture
def second_project(simulator, sim_project):
    other = SimProject(str(uuid.uuid4()), "PT" + uuid.uuid4().hex, sim_project.space_host)
    simulator.add_project(other)
    return other


def test_account_sid_on_the_update_api_moves_a_number_to_another_project(
    simulator, sim_project, second_project, conforms
):
    stays, moves = add(simulator, sim_project, "+14155550100", "+14155550101")

    response = requests.post(
        api(simulator, sim_project, f"/IncomingPhoneNumbers/{moves}"),
        data={"AccountSid": second_project.project_id},
        auth=auth(sim_project),
        timeout=5,
    )

    assert response.status_code == 200
    conforms(response, NUMBER_PATH, "post")
    moved = response.json()
    assert moved["sid"] == moves
    assert moved["account_sid"] == moved["account_id"] == second_project.project_id
    assert moved["uri"].endswith(
        f"/Accounts/{second_project.project_id}/IncomingPhoneNumbers/{moves}"
    )
    assert [r["sid"] for r in list_all(simulator, sim_project, conforms)] == [stays]
    assert list_all(simulator, second_project, conforms) == [moved]


def test_a_number_moves_only_within_its_space(simulator, sim_project, conforms):
    elsewhere = SimProject(str(uuid.uuid4()), "PTelsewhere", "elsewhere.signalwire.com")
    simulator.add_project(elsewhere)
    (sid,) = add(simulator, sim_project, "+14155550100")

    response = requests.post(
        api(simulator, sim_project, f"/IncomingPhoneNumbers/{sid}"),
        data={"AccountSid": elsewhere.project_id},
        auth=auth(sim_project),
        timeout=5,
    )

    assert response.status_code == 400
    conforms(response, NUMBER_PATH, "post")
    assert response.json()["message"] == "AccountSid must be another project of the same Space"
    assert len(list_all(simulator, sim_project, conforms)) == 1


def test_a_number_moves_through_the_control_endpoint_too(
    simulator, sim_project, second_project, conforms
):
    (sid,) = add(simulator, sim_project, "+14155550100")

    response = control(
        simulator,
        "POST",
        numbers_url(sim_project, "+14155550100"),
        json={"project_id": second_project.project_id, "capabilities": ["sms"]},
    )

    assert response.status_code == 200
    assert list_all(simulator, sim_project, conforms) == []
    (moved,) = list_all(simulator, second_project, conforms)
    assert moved["sid"] == sid
    assert moved["capabilities"]["sms"] and not moved["capabilities"]["voice"]


# --- the paged list ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["Page=1&PageSize=10", "Page=1&PageSize=10&PageToken=", "Page=2&PageToken=PAnotatoken"],
)
def test_a_page_past_the_first_needs_a_valid_page_token(simulator, sim_project, conforms, query):
    add(simulator, sim_project, *(f"+1415555{i:04d}" for i in range(30)))

    response = requests.get(
        api(simulator, sim_project, f"/IncomingPhoneNumbers?{query}"),
        auth=auth(sim_project),
        timeout=5,
    )

    assert response.status_code == 400
    assert response.json()["code"] == 54453
    conforms(response, LIST_PATH, "get")


def test_numbers_released_and_added_between_pages_neither_repeat_nor_hide_the_rest(
    simulator, sim_project, conforms
):
    sids = add(simulator, sim_project, *(f"+1415555{i:04d}" for i in range(30)))
    first = requests.get(
        api(simulator, sim_project, "/IncomingPhoneNumbers?PageSize=10"),
        auth=auth(sim_project),
        timeout=5,
    ).json()
    # The record the next page's token names, and one on the next page, go; one is added.
    control(simulator, "DELETE", numbers_url(sim_project, sids[9]))
    control(simulator, "DELETE", numbers_url(sim_project, sids[12]))
    add(simulator, sim_project, "+14155559999")

    url, rest = simulator.url + first["next_page_uri"], []
    while url:
        response = requests.get(url, auth=auth(sim_project), timeout=5)
        conforms(response, LIST_PATH, "get")
        rest += response.json()["incoming_phone_numbers"]
        next_uri = response.json()["next_page_uri"]
        url = simulator.url + next_uri if next_uri else None

    expected = [f"+1415555{i:04d}" for i in range(10, 30) if i != 12] + ["+14155559999"]
    assert phone_numbers(rest) == expected


def test_previous_page_uri_leads_back_page_by_page(simulator, sim_project, conforms):
    add(simulator, sim_project, *(f"+1415555{i:04d}" for i in range(25)))
    url = api(simulator, sim_project, "/IncomingPhoneNumbers?PageSize=10&PhoneNumber=%2B1415555")
    pages = []
    while url:
        body = requests.get(url, auth=auth(sim_project), timeout=5).json()
        pages.append(body)
        url = simulator.url + body["next_page_uri"] if body["next_page_uri"] else None

    for earlier, later in zip(pages, pages[1:], strict=False):
        back = requests.get(
            simulator.url + later["previous_page_uri"], auth=auth(sim_project), timeout=5
        )
        conforms(back, LIST_PATH, "get")
        assert back.json()["incoming_phone_numbers"] == earlier["incoming_phone_numbers"]
        assert back.json()["page"] == earlier["page"]
        assert "PhoneNumber=%2B1415555" in later["previous_page_uri"]
    assert [len(p["incoming_phone_numbers"]) for p in pages] == [10, 10, 5]


def test_thousands_of_numbers_page_through_at_page_size_1000(simulator, sim_project, conforms):
    # (Kept to 2,500 numbers: the schema check of each record is what takes the time.)
    response = control(
        simulator, "POST", numbers_url(sim_project), json={"count": 2_500, "start": "+1415000000"}
    )

    listed = list_all(simulator, sim_project, conforms, page_size=1000)

    assert response.json()["added"] == 2_500
    assert phone_numbers(listed) == [f"+{1415000000 + i}" for i in range(2_500)]


class _CountingRecords(dict):
    """A project's records that count how many are read."""

    reads = 0

    def __getitem__(self, key):
        type(self).reads += 1
        return super().__getitem__(key)


def test_a_page_reads_about_its_own_records_not_the_whole_project():
    # The list must stay fast with 100,000 numbers (bench/simulator_list.py gives the times):
    # a page past the first finds its start from the token's index, and reads its records and
    # one more (to know whether a next page exists), never the whole project.
    account = str(uuid.uuid4())
    numbers = ProjectNumbers()
    for i in range(20_000):
        numbers.add(new_number(account, f"+1415{i:07d}", "longcode", ["sms"], origin="signalwire"))
    numbers._records = _CountingRecords(numbers._records)
    after = numbers.records()[9_999]["sid"]  # reads 20,000: before the count starts
    _CountingRecords.reads = 0

    outcome = list_page(numbers, account, f"Page=10&PageSize=1000&PageToken=PA{after}")

    assert outcome.status == 200
    assert outcome.body["incoming_phone_numbers"][0]["phone_number"] == "+14150010000"
    # 1,001 forward, 1,000 back for previous_page_uri, and the page's own records.
    assert _CountingRecords.reads <= 4_000


# --- a list page that fails, for a sync killed mid-way ------------------------------------------


def page_urls(sim, project, page_size):
    """Every page's URL, following next_page_uri."""
    url, urls = api(sim, project, f"/IncomingPhoneNumbers?PageSize={page_size}"), []
    while url:
        urls.append(url)
        body = requests.get(url, auth=auth(project), timeout=5).json()
        url = sim.url + body["next_page_uri"] if body["next_page_uri"] else None
    return urls


@pytest.mark.parametrize("status", [500, 503])
def test_an_armed_list_fault_fails_the_page_after_n_then_the_list_works_again(
    simulator, sim_project, status
):
    add(simulator, sim_project, *(f"+1415555{i:04d}" for i in range(50)))
    urls = page_urls(simulator, sim_project, 10)
    armed = control(
        simulator,
        "POST",
        f"/projects/{sim_project.project_id}/list-fault",
        json={"fault": str(status), "after_pages": 2},
    )

    answers = [requests.get(url, auth=auth(sim_project), timeout=5) for url in urls]
    retried = requests.get(urls[2], auth=auth(sim_project), timeout=5)

    assert armed.status_code == 200
    assert [answer.status_code for answer in answers] == [200, 200, status, 200, 200]
    assert answers[2].json()["status"] == status
    assert retried.status_code == 200
    assert [n["phone_number"] for n in retried.json()["incoming_phone_numbers"]] == [
        f"+1415555{i:04d}" for i in range(20, 30)
    ]
    state = control(simulator, "GET", f"/projects/{sim_project.project_id}/list-fault").json()
    assert state == {"fault": str(status), "after_pages": 2, "times": 1, "served": 2, "failed": 1}


def test_a_list_fault_can_drop_the_connection_and_be_disarmed(simulator, sim_project):
    add(simulator, sim_project, "+14155550100")
    path = f"/projects/{sim_project.project_id}/list-fault"
    url = api(simulator, sim_project, "/IncomingPhoneNumbers")
    control(simulator, "POST", path, json={"fault": "reset", "after_pages": 0, "times": 5})

    with pytest.raises(requests.ConnectionError):
        requests.get(url, auth=auth(sim_project), timeout=5)
    control(simulator, "DELETE", path)

    assert requests.get(url, auth=auth(sim_project), timeout=5).status_code == 200
    assert control(simulator, "GET", path).json() is None


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"fault": "404"}, '"fault" must be one of 500, 503, reset, timeout'),
        ({"after_pages": -1}, '"after_pages" must be a whole number'),
        ({"times": "2"}, '"times" must be a whole number'),
        ({"pages": 2}, "unknown fields: pages"),
    ],
)
def test_a_bad_list_fault_is_400_naming_what_to_fix(simulator, sim_project, body, words):
    response = control(
        simulator, "POST", f"/projects/{sim_project.project_id}/list-fault", json=body
    )

    assert response.status_code == 400
    assert words in response.json()["error"]


def test_a_list_fault_for_an_unknown_project_is_404(simulator):
    response = control(simulator, "POST", f"/projects/{uuid.uuid4()}/list-fault", json={})

    assert response.status_code == 404

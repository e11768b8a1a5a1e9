"""A fake SignalWire client for the code above the client (importing, tasks)."""

import uuid
from collections.abc import Iterable

from phone_numbers.signalwire import IncomingPhoneNumber, NumberPage, SignalWireError

PROJECT = "b3877c40-da60-4998-90ad-b792e98472ac"


def number_body(number="+14155550100", **overrides) -> dict:
    """A 201 body of the import endpoint, as NOTES.md §3 describes it."""
    body = {
        "sid": "16db4a36-8a97-4e10-98c5-58daafac95f9",
        "account_id": PROJECT,
        "account_sid": PROJECT,
        "friendly_name": "(415) 555-0100",
        "phone_number": number,
        "voice_url": None,
        "voice_method": "POST",
        "voice_fallback_url": None,
        "voice_fallback_method": "POST",
        "status_callback": None,
        "status_callback_method": "POST",
        "voice_application_sid": None,
        "voice_caller_id_lookup": None,
        "sms_url": None,
        "sms_method": "POST",
        "sms_fallback_url": None,
        "sms_fallback_method": "POST",
        "sms_application_sid": None,
        "date_created": "Thu, 28 Sep 2023 17:58:29 +0000",
        "date_updated": "Thu, 28 Sep 2023 17:58:30 +0000",
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": True},
        "beta": False,
        "api_version": "2010-04-01",
        "uri": f"/api/laml/2010-04-01/Accounts/{PROJECT}/IncomingPhoneNumbers/16db4a36",
        "address_requirements": "none",
        "address_sid": None,
        "identity_sid": None,
        "trunk_sid": None,
        "origin": "signalwire",
        "emergency_address_sid": None,
        "emergency_status": "Inactive",
        "country_code": "US",
    }
    body.update(overrides)
    return body


def incoming_number(number: str, sid: str | None = None) -> IncomingPhoneNumber:
    sid = sid or str(uuid.uuid4())
    return IncomingPhoneNumber.from_json(
        number_body(number, sid=sid, friendly_name=f"friendly {number}")
    )


class FakeSignalWire:
    """Answers import_number from a script of errors, then succeeds; remembers every call.

    `existing` holds numbers already in the project (find_number finds them).
    """

    def __init__(
        self,
        import_errors: Iterable[SignalWireError] = (),
        find_errors: Iterable[SignalWireError] = (),
        existing: Iterable[str] = (),
    ) -> None:
        self.import_errors = list(import_errors)
        self.find_errors = list(find_errors)
        self.numbers = {number: incoming_number(number) for number in existing}
        self.calls: list[tuple] = []

    def import_number(
        self, number, number_type, capabilities=None, deadline=None, pace=None
    ) -> IncomingPhoneNumber:
        if pace is not None:
            pace()  # as the client does, once connected and before the request leaves
        self.calls.append(("import_number", number, number_type, list(capabilities or [])))
        if self.import_errors:
            raise self.import_errors.pop(0)
        self.numbers[number] = incoming_number(number)
        return self.numbers[number]

    def find_number(self, number, deadline=None, pace=None) -> IncomingPhoneNumber | None:
        if pace is not None:
            pace()
        self.calls.append(("find_number", number))
        if self.find_errors:
            raise self.find_errors.pop(0)
        return self.numbers.get(number)

    def check_credentials(self) -> None:
        self.calls.append(("check_credentials",))

    @property
    def posted(self) -> list[str]:
        return [call[1] for call in self.calls if call[0] == "import_number"]


class FakeSpaceList:
    """A fake client's `list_numbers` over a Space's numbers, `page_size` a page.

    `numbers` maps sid → the record's JSON (`space_number` builds one); change it between syncs
    to add, release or change numbers. `errors` maps a page index to the errors that page
    raises, one per request, before it answers. `before_page(index)` runs before each page is
    answered (to race or stop a sync part-way). `asked` lists each page index requested.
    """

    def __init__(self, numbers: Iterable[dict] = (), page_size: int = 2) -> None:
        self.numbers = {record["sid"]: record for record in numbers}
        self.page_size = page_size
        self.errors: dict[int, list[SignalWireError]] = {}
        self.before_page = lambda index: None
        self.asked: list[int] = []

    def list_numbers(self, *, page_size=1000, start_url=None, deadline=None, pace=None):
        records = list(self.numbers.values())
        index = int(start_url.rpartition("=")[2]) if start_url else 0
        while True:
            if pace is not None:
                pace()
            self.asked.append(index)
            self.before_page(index)
            if self.errors.get(index):
                raise self.errors[index].pop(0)
            chunk = records[index * self.page_size : (index + 1) * self.page_size]
            has_next = (index + 1) * self.page_size < len(records)
            yield NumberPage(
                url=f"fake://page={index}",
                page=index,
                numbers=tuple(IncomingPhoneNumber.from_json(record) for record in chunk),
                next_url=f"fake://page={index + 1}" if has_next else None,
            )
            if not has_next:
                return
            index += 1


def space_number(number: str, *, sid: str | None = None, tollfree: bool = False, **overrides):
    """A number's record in a Space's list (capabilities as a list of names, for brevity)."""
    capabilities = overrides.pop("capabilities", ["sms", "voice", "mms", "fax"])
    body = number_body(
        number,
        sid=sid or f"sid-{number}",
        friendly_name=f"friendly {number}",
        capabilities={name: name in capabilities for name in ("voice", "sms", "mms", "fax")},
        **overrides,
    )
    if tollfree:
        body["verification_status"] = "Unverified"
    return body

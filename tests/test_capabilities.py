"""The capability names are defined once (phone_numbers/capabilities.py) and shown by label."""

import re
from pathlib import Path

from phone_numbers.capabilities import CAPABILITIES, CAPABILITY_LABELS
from phone_numbers.templatetags.portal import capability_labels

REPO = Path(__file__).resolve().parent.parent
# Capability names written one after another, in any spelling of a list around them.
_NAMES_IN_A_ROW = re.compile(
    r"\b(?:sms|voice|fax|mms)\b(?:\W{1,6}\b(?:sms|voice|fax|mms)\b)+", re.IGNORECASE
)
# (The simulator, a package of its own, keeps its own list: the portal cannot drift it along.)
_ALLOWED = {"phone_numbers/capabilities.py"}


def test_the_capability_names_are_written_out_only_in_their_one_definition():
    sources = [*REPO.glob("phone_numbers/**/*.py"), *REPO.glob("templates/**/*.html")]
    written_out = sorted(
        str(path.relative_to(REPO))
        for path in sources
        if "migrations" not in path.parts
        and str(path.relative_to(REPO)) not in _ALLOWED
        and _writes_out_every_capability(path.read_text())
    )
    assert written_out == []


def _writes_out_every_capability(text: str) -> bool:
    return any(
        len({name.lower() for name in re.findall(r"\w+", run.group())}) == len(CAPABILITIES)
        for run in _NAMES_IN_A_ROW.finditer(text)
    )


def test_the_definition_is_in_the_api_order_with_a_label_each():
    # The order is the order stored and sent; the labels are what pages and forms show.
    assert CAPABILITIES == ("sms", "voice", "fax", "mms")
    assert CAPABILITY_LABELS == {"sms": "SMS", "voice": "Voice", "fax": "Fax", "mms": "MMS"}


def test_capability_labels_shows_a_rows_capabilities_as_people_read_them():
    assert capability_labels(["sms", "voice"]) == "SMS, Voice"
    assert capability_labels(["fax", "mms", "unknown"]) == "Fax, MMS, unknown"
    assert capability_labels([]) == ""

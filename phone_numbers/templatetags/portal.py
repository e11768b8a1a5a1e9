import functools
import re
from collections.abc import Iterable
from datetime import datetime, timedelta

import phonenumbers
from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from phone_numbers.capabilities import CAPABILITY_LABELS
from phone_numbers.models import NumberType

register = template.Library()


@register.filter
def ago(moment: datetime | None) -> str:
    """Say "3 minutes ago", or "just now" within the first minute."""
    if moment is None:
        return "never"
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment)} ago"


@register.simple_tag
def capability_choices() -> list[tuple[str, str]]:
    """Every capability as (name, label), for a form written out in a template."""
    return list(CAPABILITY_LABELS.items())


@register.filter
def capability_labels(names: Iterable[str]) -> str:
    """["sms", "voice"] → "SMS, Voice"; a name the portal does not know is shown as it is."""
    return ", ".join(CAPABILITY_LABELS.get(name, name) for name in names)


@register.filter
def phone(e164: str) -> str:
    """+14155550100 → "+1 415-555-0100", the way people read numbers."""
    return _international(e164)


# A page shows up to a hundred numbers, and a live job's page shows the same ones every 2 s:
# parsing each one again was a tenth of the job page's time (README, Benchmarks).
@functools.lru_cache(maxsize=10_000)
def _international(e164: str) -> str:
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except phonenumbers.NumberParseException:
        return e164


@register.filter
def thousands(count: int) -> str:
    """50000 → "50,000": a big count read at a glance."""
    return f"{count:,}"


@register.filter
def number_type_label(name: str) -> str:
    """ "longcode" → "Long code", as NumberType labels it; an unknown name is shown as it is."""
    try:
        return NumberType(name).label
    except ValueError:
        return name


@register.filter
def lower_first(text: str) -> str:
    """ "Assumed United States, …" → "assumed United States, …", to follow on in a sentence
    (the country keeps its capitals)."""
    return text[:1].lower() + text[1:]


# An E.164 number inside a text: "+14155550100 (job 5)", or a friendly name that is one.
E164_IN_TEXT = re.compile(r"(?<![\w+])\+[1-9]\d{6,14}(?!\d)")


@register.filter
def readable(text: str) -> str:
    """Every E.164 number in the text as people read numbers: SignalWire's default friendly
    name ("+14155550100"), an audit entry's target ("+14155550100 (job 5)")."""
    return E164_IN_TEXT.sub(lambda match: phone(match.group()), text)

from collections.abc import Iterable
from datetime import datetime, timedelta

import phonenumbers
from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from phone_numbers.capabilities import CAPABILITY_LABELS

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
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except phonenumbers.NumberParseException:
        return e164

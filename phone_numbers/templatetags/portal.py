from datetime import datetime, timedelta

import phonenumbers
from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(moment: datetime | None) -> str:
    """Say "3 minutes ago", or "just now" within the first minute."""
    if moment is None:
        return "never"
    if timezone.now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment)} ago"


@register.filter
def split(text: str) -> list[str]:
    return text.split()


@register.filter
def phone(e164: str) -> str:
    """+14155550100 → "+1 415-555-0100", the way people read numbers."""
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except phonenumbers.NumberParseException:
        return e164

"""The countries whose numbers the portal can read, named for people."""

from functools import cache

import phonenumbers
import pycountry

# Regions that phonenumbers reads numbers for, but that ISO 3166 (pycountry) does not name.
_EXTRA_COUNTRY_NAMES = {"AC": "Ascension Island", "TA": "Tristan da Cunha", "XK": "Kosovo"}


@cache
def country_names() -> dict[str, str]:
    """ISO 3166 alpha-2 code → English name, for every region phonenumbers supports."""
    names = {c.alpha_2: getattr(c, "common_name", c.name) for c in pycountry.countries}
    names |= _EXTRA_COUNTRY_NAMES
    return {code: names[code] for code in phonenumbers.SUPPORTED_REGIONS}


def country_choices() -> list[tuple[str, str]]:
    return sorted(country_names().items(), key=lambda choice: choice[1])

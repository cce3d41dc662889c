"""Genesys data rules, applied to desired users after mapping and before planning
(flavor ``genesys`` only).

Genesys accepts phone numbers only in E.164 (``+14255550100``) or as a tel URI
(``tel:+14255550100;ext=123``) and answers 400 to anything else, so numbers are
normalised here with ``phonenumbers`` (Google's libphonenumber): a number written
without a country code is read in ``target.phone_default_region``; an extension is kept
as a tel URI. A number that cannot be normalised fails that user's change with the
reason, instead of a 400 from the server.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from genesys_prov import scimpath
from genesys_prov.mapping import DesiredUser


def normalize_phone(value: str, region: str | None) -> str:
    """Return ``value`` as E.164, or a ``tel:`` URI when it has an extension.

    Raises ValueError with a readable reason when it is not a possible phone number.

    >>> normalize_phone("+1 (425) 555-0100", None)
    '+14255550100'
    """
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if region or value.strip().startswith("+") else \
            " (no country code, and target.phone_default_region is not set)"
        raise ValueError(f"phone number {value!r} cannot be read{hint}") from exc
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"phone number {value!r} is not a possible number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if number.extension:
        return f"tel:{e164};ext={number.extension}"
    return e164


@lru_cache(maxsize=256)
def _is_phone(target: str) -> bool:
    return scimpath.parse_path(target).attr.lower() == "phonenumbers"


def apply_genesys_rules(user: DesiredUser, phone_region: str | None) -> DesiredUser:
    """Normalise the phone numbers of one desired user in place; a number that cannot be
    normalised sets ``user.error``."""
    if user.error:
        return user
    for values in (user.values, user.create_only):
        for target, value in list(values.items()):
            if isinstance(value, str) and _is_phone(target):
                try:
                    values[target] = normalize_phone(value, phone_region)
                except ValueError as exc:
                    user.error = f"mapping {target!r}: {exc}"
                    return user
    return user

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

import re
from datetime import date
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


# Known Genesys limits (shared/spec/genesys-scim.md). Attribute length limits are
# UNCONFIRMED, so none is enforced here.
MAX_BODY_BYTES = 512_000
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")


@lru_cache(maxsize=256)
def _attr(target: str) -> str:
    return scimpath.parse_path(target).attr.lower()


def normalize_date(value: str) -> str:
    """``dateHire`` is YYYY-MM-DD in Genesys; Graph's ``employeeHireDate`` is a date-time
    (``2021-03-01T00:00:00Z``). Raises ValueError for anything that is not a date."""
    match = _DATE.match(value.strip())
    if not match:
        raise ValueError(f"dateHire {value!r} is not a date (expected YYYY-MM-DD)")
    try:
        date.fromisoformat(match.group(1))
    except ValueError as exc:
        raise ValueError(f"dateHire {value!r} is not a valid date") from exc
    return match.group(1)


def _normalize(target: str, value: str, phone_region: str | None) -> str:
    kind = _attr(target)
    if kind == "phonenumbers":
        return normalize_phone(value, phone_region)
    if kind == "datehire":
        return normalize_date(value)
    return value


def apply_genesys_rules(user: DesiredUser, phone_region: str | None) -> DesiredUser:
    """Apply Genesys' data rules to one desired user in place: phone numbers to E.164 /
    tel URI, ``dateHire`` to YYYY-MM-DD, and a user whose attributes would exceed the
    request-body limit fails here instead of at the server. A value that cannot be made
    acceptable sets ``user.error`` with the value and the reason; other users go on."""
    if user.error:
        return user
    size = 0
    for values in (user.values, user.create_only):
        for target, value in list(values.items()):
            if isinstance(value, str):
                try:
                    values[target] = value = _normalize(target, value, phone_region)
                except ValueError as exc:
                    user.error = f"mapping {target!r}: {exc}"
                    return user
                size += len(value.encode()) + len(target) + 8
    if size > MAX_BODY_BYTES:
        user.error = (f"the mapped attributes need about {size:,} bytes; Genesys accepts "
                      f"at most {MAX_BODY_BYTES:,} per request")
    return user

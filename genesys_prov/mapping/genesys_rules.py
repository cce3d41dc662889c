"""Genesys data rules, applied to desired users after mapping and before planning
(flavor ``genesys`` only).

Genesys accepts phone numbers only in E.164 (``+14255550100``) or as a tel URI
(``tel:+14255550100;ext=123``) and answers 400 to anything else, so numbers are
normalised here. A number written with a country code keeps exactly its digits (see
:func:`normalize_phone_checked`); a number written without one is read by ``phonenumbers``
(Google's libphonenumber) in ``target.phone_default_region``; an extension is kept as a
tel URI. A number that cannot be normalised fails that user's change with the reason,
instead of a 400 from the server; a number sent although libphonenumber disagrees with it
is reported as a warning on the user.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata

from genesys_prov.config import TargetConfig
from genesys_prov.mapping import scimpath
from genesys_prov.mapping.desired import DesiredUser

#: E.164 after the ``+``: a country code that does not start with 0, at most 15 digits.
_E164_DIGITS = re.compile(r"[1-9][0-9]{1,14}")
#: An extension at the end: ``ext``, ``ext.``, ``x``, ``#`` or ``;ext=`` then its digits.
_EXTENSION = re.compile(r"^(?P<main>.*?)(?:;\s*ext\s*=|ext\.?|x|#)\s*(?P<ext>[0-9]+)$",
                        re.IGNORECASE | re.DOTALL)
#: ``(0)`` right after a country code (``+44 (0)20 …``): the trunk-prefix marker.
_TRUNK_MARKER = re.compile(r"^\+\s*(?P<cc>[0-9]{1,3})\s*\(\s*0\s*\)")
#: Italy, San Marino and the Vatican dial the 0 internationally too: ``+39 (0)6 …`` keeps it.
_LEADING_ZERO_KEPT = frozenset({39, 378, 379})
#: Characters that only format a number (besides whitespace, dashes and invisible marks).
_FORMATTING = frozenset("-./()[]\u2212")
_PHONE_CACHE_SIZE = 16_384

UserRule = Callable[[DesiredUser], DesiredUser]


def _ascii_digits(text: str) -> str:
    """``text`` with every Unicode decimal digit (e.g. full-width ``１``) written in ASCII."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def _is_formatting(ch: str) -> bool:
    """Whether ``ch`` only formats a number: spaces (NBSP included), dashes, ``.``, ``/``,
    parentheses and brackets, and invisible format marks (e.g. a left-to-right mark)."""
    return ch.isspace() or ch in _FORMATTING or unicodedata.category(ch) in ("Pd", "Cf")


def _strip_formatting(value: str, text: str) -> str:
    """The digits of ``text``; raises ValueError naming the first other character."""
    digits = []
    for ch in text:
        if "0" <= ch <= "9":
            digits.append(ch)
        elif not _is_formatting(ch):
            raise ValueError(f"phone number {value!r} contains {ch!r}, which is neither a "
                             "digit nor formatting")
    return "".join(digits)


def _international(value: str, text: str) -> tuple[str, str | None]:
    """Normalise ``text`` (``value`` trimmed, tel: prefix removed, starting with ``+``)
    keeping exactly its digits; returns (normalized, warning or None)."""
    match = _EXTENSION.match(text)
    main, extension = (match.group("main"), match.group("ext")) if match else (text, None)
    trunk = _TRUNK_MARKER.match(main)
    if trunk and int(trunk.group("cc")) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE and \
            int(trunk.group("cc")) not in _LEADING_ZERO_KEPT:
        main = f"+{trunk.group('cc')}{main[trunk.end():]}"
    digits = _strip_formatting(value, main[1:])
    if not _E164_DIGITS.fullmatch(digits):
        if not digits:
            reason = "has no digits after '+'"
        elif digits[0] == "0":
            reason = "has a country code starting with 0"
        elif len(digits) > 15:
            reason = f"has {len(digits)} digits; E.164 allows at most 15"
        else:
            reason = "is too short"
        raise ValueError(f"phone number {value!r} cannot be sent as E.164: it {reason}")
    written = f"+{digits}"
    problem: str | None
    try:
        number = phonenumbers.parse(written, None)
    except phonenumbers.NumberParseException as exc:
        reason = str(exc.args[0]) if exc.args else str(exc)
        problem = f"it cannot read it: {reason.rstrip('.')}"
    else:
        read = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if read != written:
            problem = f"it reads it as {read}"
        elif not phonenumbers.is_possible_number(number):
            problem = "it is not a possible number"
        else:
            problem = None
    result = f"tel:{written};ext={extension}" if extension else written
    if problem is None:
        return result, None
    return result, (f"phone number {value!r} is not valid for libphonenumber ({problem}); "
                    f"sent as written: {result}")


def _national(value: str, region: str | None) -> str:
    """Normalise a number written without a country code, read in ``region``."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if region else \
            " (no country code, and target.phone_default_region is not set)"
        raise ValueError(f"phone number {value!r} cannot be read{hint}") from exc
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"phone number {value!r} is not a possible number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if number.extension:
        return f"tel:{e164};ext={number.extension}"
    return e164


_CallingCode = tuple[int, "re.Pattern[str] | None", frozenset[int]]


@lru_cache(maxsize=1024)  # keyed by the (at most three) digits after "+": at most 1,110
def _calling_code_rules(head: str) -> _CallingCode | None:
    """What libphonenumber checks of a ``+<code><national number>`` number whose digits
    start with ``head`` (the first three, or fewer), for :func:`_already_e164`: the length
    of the country calling code ``parse`` reads (the shortest known prefix of 1-3 digits),
    the national-prefix (carrier code) pattern ``parse`` may strip (None: it strips nothing)
    and the national-number lengths ``is_possible_number`` accepts. None when no known
    calling code starts ``head`` or libphonenumber has no metadata for it."""
    for size in (1, 2, 3):
        code = int(head[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    region = phonenumbers.region_code_for_country_code(code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    # is_possible_number reads only the national number's length (and the metadata)
    lengths = frozenset(length for length in range(2, 16) if phonenumbers.is_possible_number(
        phonenumbers.PhoneNumber(country_code=code, national_number=int("1" * length))))
    return size, (re.compile(prefix) if prefix else None), lengths


def _already_e164(value: str) -> bool:
    """Whether the full path (:func:`_normalize_phone_full`) would return ``value``
    unchanged and without a warning, decided without ``phonenumbers.parse``: ``value`` is
    ``+`` and E.164 digits, nothing else; after the country calling code ``parse`` reads,
    the national number does not start with 0 (libphonenumber keeps leading zeros apart)
    nor with anything ``parse`` would strip as a national prefix or carrier code
    (``+55 90 …``: those go the full way and keep their digits there), and its length is
    one ``is_possible_number`` accepts. Any other value takes the full path, so both paths
    give the same result for every input."""
    if not value.startswith("+") or _E164_DIGITS.fullmatch(value, 1) is None:
        return False
    rules = _calling_code_rules(value[1:4])
    if rules is None:
        return False
    size, prefix, lengths = rules
    national = value[1 + size:]
    return len(national) in lengths and national[0] != "0" and \
        (prefix is None or prefix.match(national) is None)


@lru_cache(maxsize=_PHONE_CACHE_SIZE)
def _normalize_phone_cached(value: str, region: str | None) -> tuple[str, str | None]:
    """:func:`_normalize_phone_full`, cached per (value, region) (exceptions are not
    cached)."""
    return _normalize_phone_full(value, region)


def _normalize_phone_full(value: str, region: str | None) -> tuple[str, str | None]:
    """:func:`normalize_phone_checked` the full way (libphonenumber reads every number)."""
    text = _ascii_digits(value).strip()
    if text[:4].lower() == "tel:" and text[4:].lstrip().startswith("+"):
        text = text[4:].lstrip()
    if text.startswith("+"):
        return _international(value, text)
    return _national(value, region), None


def normalize_phone_checked(value: str, region: str | None) -> tuple[str, str | None]:
    """Return ``(normalized, warning)``: ``value`` as E.164, or a ``tel:`` URI when it has
    an extension (markers ``ext``, ``ext.``, ``x``, ``#``, ``;ext=``), and a warning (None
    when there is nothing to say).

    A number written with a country code (``+…``, or a ``tel:+…`` URI) keeps exactly its
    digits, extension included: only formatting (spaces, NBSP, ``-``, ``.``, ``/``,
    parentheses, …) is removed. When libphonenumber reads it differently (it strips
    ``90`` from ``+55 90 95214-5623`` as a Brazilian carrier code) or cannot read it, the
    number is sent as written and the warning says so. One deliberate exception: a ``(0)``
    right after the country code (``+44 (0)20 7946 0000``) is the conventional trunk-prefix
    marker and is dropped (``+442079460000``) — except for Italy, San Marino and the Vatican,
    where the 0 is part of the number (``+39 (0)6 …`` → ``+3906…``).

    A number written without a country code is read by libphonenumber in ``region``
    (``target.phone_default_region``).

    Raises ValueError with a readable reason when the number cannot be made E.164 (or, without
    a country code, is not a possible number). A value already in E.164 that libphonenumber
    reads as written is returned as it is without parsing it (:func:`_already_e164`); other
    results are cached per (value, region).

    >>> normalize_phone_checked("+55 90 95214-5623", None)[0]
    '+5590952145623'
    """
    if _already_e164(value):
        return value, None
    return _normalize_phone_cached(value, region)


def normalize_phone(value: str, region: str | None) -> str:
    """Return ``value`` as E.164, or a ``tel:`` URI when it has an extension (the warning of
    :func:`normalize_phone_checked` is dropped).

    Raises ValueError with a readable reason when it cannot be made E.164.

    >>> normalize_phone("+1 (425) 555-0100", None)
    '+14255550100'
    """
    return normalize_phone_checked(value, region)[0]


# Known Genesys limits (shared/spec/genesys-scim.md). Attribute length limits are
# UNCONFIRMED, so none is enforced here.
MAX_BODY_BYTES = 512_000
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")


#: The attributes :func:`_normalize` changes (the others pass as they are).
_RULED = frozenset({"phonenumbers", "datehire"})


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


def _normalize(target: str, value: str, phone_region: str | None) -> tuple[str, str | None]:
    """The value Genesys accepts for ``target``, and a warning (or None)."""
    kind = _attr(target)
    if kind == "phonenumbers":
        return normalize_phone_checked(value, phone_region)
    if kind == "datehire":
        return normalize_date(value), None
    return value, None


def apply_genesys_rules(user: DesiredUser, phone_region: str | None) -> DesiredUser:
    """Apply Genesys' data rules to one desired user in place: phone numbers to E.164 /
    tel URI, ``dateHire`` to YYYY-MM-DD, and a user whose attributes would exceed the
    request-body limit fails here instead of at the server. A value that cannot be made
    acceptable sets ``user.error`` with the value and the reason; other users go on. A phone
    number sent as written although libphonenumber disagrees adds a ``user.warnings`` entry."""
    if user.error:
        return user
    size = 0
    for values in (user.values, user.create_only):
        for target, value in list(values.items()):
            if not isinstance(value, str):
                continue
            try:
                ruled = _attr(target) in _RULED
                if ruled:
                    value, warning = _normalize(target, value, phone_region)
            except ValueError as exc:
                user.error = f"mapping {target!r}: {exc}"
                return user
            if ruled:
                values[target] = value
                note = f"mapping {target!r}: {warning}" if warning else None
                if note is not None and note not in user.warnings:
                    user.warnings.append(note)
            size += (len(value) if value.isascii() else len(value.encode())) + len(target) + 8
    if size > MAX_BODY_BYTES:
        user.error = (f"the mapped attributes need about {size:,} bytes; Genesys accepts "
                      f"at most {MAX_BODY_BYTES:,} per request")
    return user


def user_rule(target: TargetConfig) -> UserRule | None:
    """The target's data rules for desired users (Genesys: phone numbers, dateHire)."""
    if target.flavor != "genesys":
        return None
    region = target.phone_default_region

    def rule(desired: DesiredUser) -> DesiredUser:
        return apply_genesys_rules(desired, region)

    return rule

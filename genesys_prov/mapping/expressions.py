"""Entra ID attribute-mapping expressions: parse once, evaluate for every user.

The language is the one Microsoft Entra's provisioning service uses in "Expression" mappings
(``Function(arg, ...)``, ``[attribute]``, ``"string"``, integers, ``&H`` hex numbers, empty
arguments, ``vbTextCompare`` / ``vbBinaryCompare`` and comparisons inside ``IIF`` / ``CBool``).
:func:`parse` turns the text into a tree of small closures; :meth:`Expression.evaluate` runs
it against one object's attributes. Literal regular expressions and date formats are compiled
at parse time (or cached), never per evaluation.

Values are Python values: ``None`` (null), ``str``, ``int``, ``bool`` and ``list`` for
multi-valued attributes. A ``bool`` used as text is ``"True"`` / ``"False"``; a function that
takes a boolean accepts a ``bool`` or the strings ``"True"`` / ``"False"`` (any case).

Null handling (Entra's documentation is silent or ambiguous on most of these; the choices aim
at "a null source leaves the target alone", since provisioning never sends nulls):

* most functions return null for a null source (``ToLower``, ``Mid``, ``Replace``, ``Not``,
  ``CStr``, ``CBool``, the date functions, ...);
* ``Append`` treats one null side as ``""`` and is null only when both sides are null;
* ``Left`` of null is ``""`` (documented by Entra); ``Count`` of null is ``0``;
* ``Join`` skips null / empty sources and returns ``""`` when nothing is left;
* ``Coalesce`` skips null, ``""`` and empty lists and otherwise returns the last argument;
* ``Switch`` returns the default for a null source;
* comparisons never fail on null: ``=`` and ordering give ``False``, ``<>`` gives ``True``
  (Entra fails the whole object instead).

Date-time values travel as text in Entra's display form ``M/d/yyyy h:mm:ss tt`` (UTC), which
every date function also reads back, together with ISO-8601 and generalized time
(``yyyyMMddHHmmss[.f]Z``).
"""

from __future__ import annotations

import base64
import calendar
import difflib
import functools
import re
import secrets
import string
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias

from genesys_prov.errors import EvaluationError, ExpressionError

__all__ = ["IGNORE", "MAX_LENGTH", "Expression", "function_names", "parse"]

MAX_LENGTH: Final = 10_000
"""The longest expression Entra accepts (and so do we)."""

_MAX_DEPTH: Final = 100
_MAX_INT_DIGITS: Final = 20  # a sign and 19 digits: Int64
_MAX_HEX_DIGITS: Final = 16
_SHOW_LIMIT: Final = 60


class _IgnoreType:
    """Type of :data:`IGNORE`; a singleton that survives copy and pickle."""

    _instance: _IgnoreType | None = None

    def __new__(cls) -> _IgnoreType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "IGNORE"

    def __reduce__(self) -> str:
        return "IGNORE"

    def __copy__(self) -> _IgnoreType:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _IgnoreType:
        return self


IGNORE: Final = _IgnoreType()
"""Returned by ``IgnoreFlowIfNullOrEmpty`` for a null or empty value: drop the attribute."""

Lookup: TypeAlias = Callable[[str], Any]
_Eval: TypeAlias = Callable[[Lookup], Any]

# Errors a function body may raise on odd data; they become EvaluationError.
_RUNTIME_ERRORS: Final = (ValueError, ArithmeticError, re.error, IndexError)


# --------------------------------------------------------------------------------------------
# Value helpers
# --------------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A short printable form of a value for error messages."""
    text = repr(value)
    return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 3] + "..."


def _text(value: Any, fn: str, what: str) -> str | None:
    """A single value as text (bool → "True"/"False", int → digits); lists are an error."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # over Python's int-to-text digit limit
            raise EvaluationError(f"{fn}: {what} is a number too large to use as text") \
                from None
    if isinstance(value, list):
        raise EvaluationError(
            f"{fn}: {what} is multi-valued ({len(value)} values); "
            "pick one with Item() or combine them with Join()"
        )
    if value is IGNORE:
        raise EvaluationError(
            f"{fn}: {what} comes from IgnoreFlowIfNullOrEmpty, which must enclose the "
            "whole expression (or an IIF/Switch/Coalesce branch)"
        )
    raise EvaluationError(f"{fn}: {what} has unsupported type {type(value).__name__}")


def _req_text(value: Any, fn: str, what: str) -> str:
    """Like :func:`_text` but null is an error."""
    result = _text(value, fn, what)
    if result is None:
        raise EvaluationError(f"{fn}: {what} is null")
    return result


# At most 4,000 digits: Python refuses to convert longer decimal strings (a DoS guard), and
# such a value is text, not a number, for every function here.
_INT_RE: Final = re.compile(r"\s*[+-]?\d{1,4000}\s*\Z", re.ASCII)
_HEX_RE: Final = re.compile(r"\s*&[Hh]([0-9A-Fa-f]+)\s*\Z")


def _int(value: Any, fn: str, what: str) -> int | None:
    """A whole number from an int or a numeric string (``&H`` hex allowed); null stays null."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if _INT_RE.match(value):
            return int(value)
        hex_match = _HEX_RE.match(value)
        if hex_match:
            return int(hex_match.group(1), 16)
    raise EvaluationError(f"{fn}: {what} must be a whole number, got {_show(value)}")


def _req_int(value: Any, fn: str, what: str) -> int:
    """Like :func:`_int` but null is an error."""
    result = _int(value, fn, what)
    if result is None:
        raise EvaluationError(f"{fn}: {what} is null")
    return result


def _bool(value: Any, fn: str, what: str) -> bool | None:
    """A boolean from a bool or "True"/"False" (any case); null stays null."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low == "true":
            return True
        if low == "false":
            return False
    raise EvaluationError(f"{fn}: {what} must be True or False, got {_show(value)}")


def _is_empty(value: Any) -> bool:
    """Null, the empty string or an empty list."""
    return value is None or value == "" or (isinstance(value, list) and not value)


# --------------------------------------------------------------------------------------------
# .NET regular expressions and replacement strings
# --------------------------------------------------------------------------------------------


def _net_regex_to_python(pattern: str) -> str:
    """Translate the .NET-only regex syntax Entra users write into Python's.

    ``(?<name>...)`` and ``(?'name'...)`` become ``(?P<name>...)``, ``\\k<name>`` becomes
    ``(?P=name)``, ``\\z`` becomes ``\\Z`` and .NET's ``\\Z`` (end, or before a final newline)
    becomes ``(?=\\n?\\Z)``. Character classes and escapes are copied untouched.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if not in_class and nxt == "k" and i + 2 < n and pattern[i + 2] in "<'":
                close = ">" if pattern[i + 2] == "<" else "'"
                end = pattern.find(close, i + 3)
                if end != -1:
                    out.append(f"(?P={pattern[i + 3:end]})")
                    i = end + 1
                    continue
            if not in_class and nxt == "z":
                out.append("\\Z")
            elif not in_class and nxt == "Z":
                out.append("(?=\\n?\\Z)")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("]")
                i += 1
            continue
        if pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        if pattern.startswith("(?'", i):
            end = pattern.find("'", i + 3)
            if end != -1:
                out.append(f"(?P<{pattern[i + 3:end]}>")
                i = end + 1
                continue
        out.append(ch)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    """Compile a .NET-style pattern (cached); raises ``re.error`` for anything the regex
    engine refuses (including repeat counts that overflow and nesting too deep)."""
    try:
        return re.compile(_net_regex_to_python(pattern))
    except (OverflowError, RecursionError, ValueError) as exc:
        raise re.error(f"pattern is too large or too deeply nested ({type(exc).__name__})") \
            from None


def _dynamic_regex(pattern: str) -> re.Pattern[str]:
    """Compile a pattern that only became known at run time."""
    try:
        return _regex(pattern)
    except re.error as exc:
        raise EvaluationError(
            f"Replace: invalid regular expression {_show(pattern)}: {exc}"
        ) from exc


_Part: TypeAlias = "str | int | tuple[str, str]"


@functools.lru_cache(maxsize=512)
def _substitution(regex: re.Pattern[str], replacement: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` callback implementing .NET substitutions.

    ``$$`` → ``$``; ``$&`` / ``$0`` → the match; ``$n`` / ``${n}`` / ``${name}`` → a group
    (the longest digit prefix naming an existing group); ``$``` / ``$'`` → text before / after
    the match; ``$+`` → the last group; ``$_`` → the whole input. Anything else is literal.
    """
    parts: list[_Part] = []
    literal: list[str] = []
    i, n = 0, len(replacement)
    while i < n:
        ch = replacement[i]
        if ch != "$" or i + 1 >= n:
            literal.append(ch)
            i += 1
            continue
        nxt = replacement[i + 1]
        ref: _Part | None = None
        size = 2
        if nxt == "$":
            literal.append("$")
            i += 2
            continue
        if nxt == "&":
            ref = 0
        elif nxt in "`'+_":
            ref = ("special", nxt)
        elif nxt == "{":
            end = replacement.find("}", i + 2)
            name = replacement[i + 2 : end] if end != -1 else ""
            if name.isdecimal() and int(name) <= regex.groups:
                ref, size = int(name), end - i + 1
            elif name in regex.groupindex:
                ref, size = regex.groupindex[name], end - i + 1
        elif nxt.isdecimal():
            end = i + 1
            while end < n and replacement[end].isdecimal():
                end += 1
            for stop in range(end, i + 1, -1):
                number = int(replacement[i + 1 : stop])
                if number <= regex.groups:
                    ref, size = number, stop - i
                    break
        if ref is None:
            literal.append("$")
            i += 1
            continue
        if literal:
            parts.append("".join(literal))
            literal.clear()
        parts.append(ref)
        i += size
    if literal:
        parts.append("".join(literal))

    frozen = tuple(parts)

    def expand(match: re.Match[str]) -> str:
        out: list[str] = []
        for part in frozen:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, int):
                out.append(match.group(part) or "")
            else:
                kind = part[1]
                if kind == "`":
                    out.append(match.string[: match.start()])
                elif kind == "'":
                    out.append(match.string[match.end() :])
                elif kind == "_":
                    out.append(match.string)
                else:
                    out.append(match.group(match.lastindex) or "" if match.lastindex else "")
        return "".join(out)

    return expand


def _group_ref(regex: re.Pattern[str], group: str) -> int | str:
    """A group name or number that exists in ``regex``; raises ``LookupError`` otherwise."""
    if group in regex.groupindex:
        return group
    if group.isdecimal() and int(group) <= regex.groups:
        return int(group)
    raise LookupError(group)


# --------------------------------------------------------------------------------------------
# Dates and .NET date-time format strings
# --------------------------------------------------------------------------------------------

_MONTHS: Final = tuple(calendar.month_name[1:])
_MONTHS_ABBR: Final = tuple(calendar.month_abbr[1:])
_DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAYS_ABBR: Final = tuple(day[:3] for day in _DAYS)
_FILETIME_EPOCH: Final = datetime(1601, 1, 1, tzinfo=UTC)

_ISO_RE: Final = re.compile(
    r"\s*(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?\s*\Z",
    re.ASCII,
)
_GENERALIZED_RE: Final = re.compile(
    r"\s*(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:[.,](\d+))?(Z|z|[+-]\d{4})?\s*\Z",
    re.ASCII,
)
_US_RE: Final = re.compile(
    r"\s*(\d{1,2})/(\d{1,2})/(\d{4})"
    r"(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp][Mm]))?)?\s*\Z",
    re.ASCII,
)


def _offset(text: str | None) -> timedelta | None:
    """``Z`` / ``+hh:mm`` / ``-hhmm`` / ``+hh`` as a timedelta; None when absent."""
    if not text:
        return None
    if text in "Zz":
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4]) if len(digits) > 2 else 0
    if hours > 14 or minutes > 59:
        raise ValueError(f"invalid UTC offset {text!r}")
    return sign * timedelta(hours=hours, minutes=minutes)


def _micro(fraction: str | None) -> int:
    """Fractional-second digits as microseconds (truncated)."""
    return int((fraction or "").ljust(6, "0")[:6])


def _read_datetime(value: Any, fn: str) -> datetime | None:
    """Read a date-time (ISO-8601, ``M/d/yyyy h:mm:ss tt`` or generalized time) as UTC."""
    text = _text(value, fn, "the date")
    if text is None:
        return None
    try:
        match = _ISO_RE.match(text) or _GENERALIZED_RE.match(text)
        if match:
            year, month, day, hour, minute, second, fraction, zone = match.groups()
            moment = datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                int(second or 0), _micro(fraction),
            )
            offset = _offset(zone)
            if offset is not None:
                moment = moment - offset
            return moment.replace(tzinfo=UTC)
        match = _US_RE.match(text)
        if match:
            month, day, year, hour, minute, second, ampm = match.groups()
            hours = int(hour or 0)
            if ampm:
                if not 1 <= hours <= 12:
                    raise ValueError(f"hour {hours} with {ampm}")
                hours = hours % 12 + (12 if ampm.upper() == "PM" else 0)
            return datetime(
                int(year), int(month), int(day), hours, int(minute or 0), int(second or 0),
                tzinfo=UTC,
            )
    except (ValueError, OverflowError) as exc:
        raise EvaluationError(f"{fn}: {_show(text)} is not a valid date-time: {exc}") from exc
    raise EvaluationError(
        f"{fn}: cannot read {_show(text)} as a date-time "
        "(expected ISO-8601, M/d/yyyy h:mm:ss tt or yyyyMMddHHmmss.fZ)"
    )


def _display(moment: datetime) -> str:
    """Entra's display form of a date-time: ``M/d/yyyy h:mm:ss tt``."""
    hour = moment.hour % 12 or 12
    ampm = "AM" if moment.hour < 12 else "PM"
    return (
        f"{moment.month}/{moment.day}/{moment.year} "
        f"{hour}:{moment.minute:02d}:{moment.second:02d} {ampm}"
    )


_STANDARD_FORMATS: Final = {
    "d": "M/d/yyyy",
    "D": "dddd, MMMM d, yyyy",
    "f": "dddd, MMMM d, yyyy h:mm tt",
    "F": "dddd, MMMM d, yyyy h:mm:ss tt",
    "g": "M/d/yyyy h:mm tt",
    "G": "M/d/yyyy h:mm:ss tt",
    "m": "MMMM d",
    "M": "MMMM d",
    "o": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "O": "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "s": "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
    "t": "h:mm tt",
    "T": "h:mm:ss tt",
    "u": "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
    "y": "MMMM yyyy",
    "Y": "MMMM yyyy",
}
_SPECIFIERS: Final = frozenset("dfFghHKmMstyz")
_FmtToken: TypeAlias = "str | tuple[str, int]"


@functools.lru_cache(maxsize=256)
def _format_tokens(fmt: str) -> tuple[_FmtToken, ...]:
    """Split a .NET date-time format string into literals and ``(letter, count)`` fields.

    A one-character format is a standard format (en-US patterns); ``'...'`` / ``"..."`` quote
    literals, ``\\x`` escapes one character, ``%x`` makes a lone custom specifier. Letters that
    are not specifiers (``T``, ``Z``, ...) and ``/`` ``:`` are literal. Raises ``ValueError``.
    """
    if fmt == "":
        raise ValueError("the format is empty")
    if len(fmt) == 1:
        if fmt not in _STANDARD_FORMATS:
            raise ValueError(f"{fmt!r} is not a standard date-time format")
        fmt = _STANDARD_FORMATS[fmt]
    tokens: list[_FmtToken] = []
    i, n = 0, len(fmt)

    def literal(text: str) -> None:
        if tokens and isinstance(tokens[-1], str):
            tokens[-1] += text
        else:
            tokens.append(text)

    while i < n:
        ch = fmt[i]
        if ch in "'\"":
            end = fmt.find(ch, i + 1)
            if end == -1:
                raise ValueError(f"unterminated quote at position {i + 1} of the format")
            literal(fmt[i + 1 : end])
            i = end + 1
        elif ch == "\\":
            if i + 1 >= n:
                raise ValueError("the format ends with a backslash")
            literal(fmt[i + 1])
            i += 2
        elif ch == "%" and i + 1 < n and fmt[i + 1] in _SPECIFIERS:
            tokens.append((fmt[i + 1], 1))
            i += 2
        elif ch in _SPECIFIERS:
            end = i
            while end < n and fmt[end] == ch:
                end += 1
            count = end - i
            if ch in "fF" and count > 7:
                raise ValueError(f"'{ch * count}' has more than 7 fraction digits")
            tokens.append((ch, count))
            i = end
        else:
            literal(ch)
            i += 1
    return tuple(tokens)


def _format_datetime(moment: datetime, fmt: str) -> str:
    """Format ``moment`` with a .NET format string (invariant English names).

    A naive value is "unspecified" (``K`` prints nothing); ``z`` offsets print the local
    offset, which for this tool is UTC.
    """
    out: list[str] = []
    for token in _format_tokens(fmt):
        if isinstance(token, str):
            out.append(token)
            continue
        letter, count = token
        if letter == "d":
            if count <= 2:
                out.append(f"{moment.day:0{count}d}")
            else:
                names = _DAYS if count >= 4 else _DAYS_ABBR
                out.append(names[moment.weekday()])
        elif letter == "M":
            if count <= 2:
                out.append(f"{moment.month:0{count}d}")
            else:
                names = _MONTHS if count >= 4 else _MONTHS_ABBR
                out.append(names[moment.month - 1])
        elif letter == "y":
            if count <= 2:
                out.append(f"{moment.year % 100:0{count}d}")
            else:
                out.append(f"{moment.year:0{count}d}")
        elif letter in "hH":
            hour = moment.hour if letter == "H" else (moment.hour % 12 or 12)
            out.append(f"{hour:0{min(count, 2)}d}")
        elif letter == "m":
            out.append(f"{moment.minute:0{min(count, 2)}d}")
        elif letter == "s":
            out.append(f"{moment.second:0{min(count, 2)}d}")
        elif letter in "fF":
            digits = f"{moment.microsecond:06d}0"[:count]
            if letter == "F":
                digits = digits.rstrip("0")
                if not digits and out and out[-1].endswith("."):
                    out[-1] = out[-1][:-1]
            out.append(digits)
        elif letter == "t":
            ampm = "AM" if moment.hour < 12 else "PM"
            out.append(ampm[:1] if count == 1 else ampm)
        elif letter == "g":
            out.append("A.D.")
        elif letter == "K":
            out.append("Z" if moment.tzinfo is not None else "")
        else:  # z: the offset, always UTC here
            out.append("+0" if count == 1 else "+00" if count == 2 else "+00:00")
    return "".join(out)


_FIELD_PATTERNS: Final = {
    ("d", 1): r"\d{1,2}",
    ("d", 2): r"\d{2}",
    ("M", 1): r"\d{1,2}",
    ("M", 2): r"\d{2}",
    ("y", 1): r"\d{1,2}",
    ("y", 2): r"\d{2}",
    ("y", 3): r"\d{3,4}",
    ("h", 1): r"\d{1,2}",
    ("h", 2): r"\d{2}",
    ("H", 1): r"\d{1,2}",
    ("H", 2): r"\d{2}",
    ("m", 1): r"\d{1,2}",
    ("m", 2): r"\d{2}",
    ("s", 1): r"\d{1,2}",
    ("s", 2): r"\d{2}",
    ("t", 1): r"[AaPp]",
    ("t", 2): r"[AaPp][Mm]",
    ("z", 1): r"[+-]\d{1,2}",
    ("z", 2): r"[+-]\d{2}",
    ("z", 3): r"[+-]\d{2}:\d{2}",
    ("K", 1): r"(?:Z|z|[+-]\d{2}:\d{2})?",
    ("g", 1): r"A\.D\.|AD",
}


def _field_pattern(letter: str, count: int) -> str:
    """The regex that reads one format field."""
    if letter in "fF":
        return rf"\d{{{count}}}" if letter == "f" else rf"\d{{0,{count}}}"
    if letter == "d" and count >= 3:
        return "|".join(_DAYS if count >= 4 else _DAYS_ABBR)
    if letter == "M" and count >= 3:
        return "|".join(_MONTHS if count >= 4 else _MONTHS_ABBR)
    if letter == "y" and count >= 4:
        return rf"\d{{{count}}}"
    capped = {"y": 3, "t": 2, "z": 3, "K": 1, "g": 1}.get(letter, 2)
    return _FIELD_PATTERNS[(letter, min(count, capped))]


_DATETIME_STYLES: Final = {
    name.lower(): name
    for name in (
        "None", "AllowLeadingWhite", "AllowTrailingWhite", "AllowInnerWhite",
        "AllowWhiteSpaces", "NoCurrentDateDefault", "AdjustToUniversal", "AssumeLocal",
        "AssumeUniversal", "RoundtripKind",
    )
}


@functools.lru_cache(maxsize=64)
def _styles(text: str) -> frozenset[str]:
    """Parse a .NET ``DateTimeStyles`` list (``"AssumeUniversal, AllowWhiteSpaces"``)."""
    names: set[str] = set()
    for raw in re.split(r"[,|]", text):
        name = raw.strip()
        if not name:
            continue
        known = _DATETIME_STYLES.get(name.lower())
        if known is None:
            raise ValueError(
                f"unknown DateTimeStyles value {name!r}; expected one of "
                + ", ".join(sorted(_DATETIME_STYLES.values()))
            )
        names.add(known)
    return frozenset(names)


@functools.lru_cache(maxsize=256)
def _format_reader(
    fmt: str, lenient: bool
) -> tuple[re.Pattern[str], tuple[tuple[str, str, int], ...]]:
    """A compiled regex reading ``fmt`` plus its ``(group, letter, count)`` fields."""
    pieces: list[str] = [r"\s*" if lenient else ""]
    fields: list[tuple[str, str, int]] = []
    for token in _format_tokens(fmt):
        if isinstance(token, str):
            if lenient:
                pieces.append(
                    "".join(r"\s*" if c.isspace() else re.escape(c) for c in token)
                )
            else:
                pieces.append(re.escape(token))
            continue
        letter, count = token
        group = f"g{len(fields)}"
        fields.append((group, letter, count))
        pieces.append(f"(?P<{group}>{_field_pattern(letter, count)})")
    pieces.append(r"\s*" if lenient else "")
    return re.compile("".join(pieces) + r"\Z", re.IGNORECASE), tuple(fields)


def _parse_exact(text: str, fmt: str, styles: frozenset[str]) -> datetime:
    """Read ``text`` with a .NET custom/standard format (``DateTime.ParseExact``)."""
    lenient = any(name.startswith("Allow") for name in styles)
    regex, fields = _format_reader(fmt, lenient)
    match = regex.match(text)
    if match is None:
        raise ValueError(f"{text!r} does not match the format {fmt!r}")
    year = month = day = None
    hour = minute = second = micro = 0
    pm: bool | None = None
    offset: timedelta | None = None
    for group, letter, count in fields:
        raw = match.group(group)
        if letter == "y":
            value = int(raw)
            year = (2000 + value if value < 30 else 1900 + value) if count <= 2 else value
        elif letter == "M":
            if count <= 2:
                month = int(raw)
            else:
                names = _MONTHS if count >= 4 else _MONTHS_ABBR
                month = [m.lower() for m in names].index(raw.lower()) + 1
        elif letter == "d":
            if count <= 2:
                day = int(raw)
        elif letter in "hH":
            hour = int(raw)
        elif letter == "m":
            minute = int(raw)
        elif letter == "s":
            second = int(raw)
        elif letter in "fF":
            micro = _micro(raw)
        elif letter == "t":
            pm = raw[0].upper() == "P"
        elif letter in "zK":
            if raw and raw not in "Zz" and len(raw) < 3:
                raw = raw[0] + raw[1:].zfill(2)
            offset = _offset(raw)
    if pm is not None and hour <= 12:
        hour = hour % 12 + (12 if pm else 0)
    if year is None and month is None and day is None and "NoCurrentDateDefault" not in styles:
        today = datetime.now(UTC)
        year, month, day = today.year, today.month, today.day
    moment = datetime(year or 1, month or 1, day or 1, hour, minute, second, micro)
    if offset is not None:
        return (moment - offset).replace(tzinfo=UTC)
    if styles & {"AssumeUniversal", "AssumeLocal"}:
        return moment.replace(tzinfo=UTC)
    return moment


def _filetime(moment: datetime) -> int:
    """A UTC date-time as an AD FILETIME (100-ns ticks since 1601-01-01)."""
    delta = moment - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def _add_months(moment: datetime, months: int) -> datetime:
    """Add calendar months, clamping the day to the month's end (.NET ``AddMonths``)."""
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise OverflowError("date out of range")
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


_INTERVALS: Final = {
    "d": timedelta(days=1),
    "ww": timedelta(weeks=1),
    "h": timedelta(hours=1),
    "n": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_INTERVAL_NAMES: Final = ("yyyy", "m", "d", "ww", "h", "n", "s")


def _interval(value: Any, fn: str) -> str:
    """A DateAdd/DateDiff interval name."""
    interval = _req_text(value, fn, "interval")
    if interval not in _INTERVAL_NAMES:
        raise EvaluationError(
            f"{fn}: unknown interval {_show(interval)}; expected one of "
            + ", ".join(_INTERVAL_NAMES)
        )
    return interval


# --------------------------------------------------------------------------------------------
# The functions (eager ones take evaluated values)
# --------------------------------------------------------------------------------------------


def _fn_append(source: Any, suffix: Any) -> str | None:
    left = _text(source, "Append", "source")
    right = _text(suffix, "Append", "suffix")
    if left is None and right is None:
        return None
    return (left or "") + (right or "")


def _fn_bitand(value1: Any, value2: Any) -> int | None:
    left = _int(value1, "BitAnd", "value1")
    right = _int(value2, "BitAnd", "value2")
    if left is None or right is None:
        return None
    return left & right


def _fn_cbool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        if _INT_RE.match(value):
            return int(value) != 0
    raise EvaluationError(f"CBool: expected a number or True/False, got {_show(value)}")


def _fn_cdate(value: Any) -> str | None:
    moment = _read_datetime(value, "CDate")
    return None if moment is None else _display(moment)


def _fn_base64(value: Any) -> str | None:
    text = _text(value, "ConvertToBase64", "source")
    if text is None:
        return None
    return base64.b64encode(text.encode("utf-16-le")).decode("ascii")


def _fn_utf8hex(value: Any) -> str | None:
    text = _text(value, "ConvertToUTF8Hex", "source")
    return None if text is None else text.encode("utf-8").hex().upper()


def _fn_count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, list):
        return sum(1 for item in value if item is not None)
    return 1


def _fn_cstr(value: Any) -> str | None:
    return _text(value, "CStr", "value")


def _fn_dateadd(interval: Any, value: Any, date_time: Any) -> str | None:
    unit = _interval(interval, "DateAdd")
    amount = _req_int(value, "DateAdd", "value")
    moment = _read_datetime(date_time, "DateAdd")
    if moment is None:
        return None
    try:
        if unit == "yyyy":
            moment = _add_months(moment, 12 * amount)
        elif unit == "m":
            moment = _add_months(moment, amount)
        else:
            moment = moment + amount * _INTERVALS[unit]
    except OverflowError as exc:
        raise EvaluationError(f"DateAdd: the result is out of range: {exc}") from exc
    return _display(moment)


def _fn_datediff(interval: Any, date1: Any, date2: Any) -> int | None:
    """Whole ``interval`` units from date1 to date2, truncated toward zero.

    Months and years count complete calendar months (Jan 31 → Feb 28 is one month); the
    other units divide the elapsed time. (VBA counts crossed boundaries instead; Entra does
    not document which it does.)
    """
    unit = _interval(interval, "DateDiff")
    first = _read_datetime(date1, "DateDiff")
    second = _read_datetime(date2, "DateDiff")
    if first is None or second is None:
        return None
    if unit in ("yyyy", "m"):
        months = (second.year - first.year) * 12 + second.month - first.month
        if months > 0 and _add_months(first, months) > second:
            months -= 1
        elif months < 0 and _add_months(first, months) < second:
            months += 1
        if unit == "m":
            return months
        return months // 12 if months >= 0 else -(-months // 12)
    elapsed = second - first
    step = _INTERVALS[unit]
    whole = abs(elapsed) // step
    return whole if elapsed >= timedelta(0) else -whole


def _fn_datefromnum(value: Any) -> str | None:
    ticks = _int(value, "DateFromNum", "value")
    if ticks is None:
        return None
    if ticks < 0:
        raise EvaluationError(f"DateFromNum: {ticks} is negative")
    try:
        return _display(_FILETIME_EPOCH + timedelta(microseconds=ticks // 10))
    except OverflowError as exc:
        raise EvaluationError(f"DateFromNum: {ticks} is beyond year 9999") from exc


def _format_date_time(source: Any, styles: Any, input_format: Any, output_format: Any) -> Any:
    text = _text(source, "FormatDateTime", "source")
    if text is None:
        return None
    style_text = _text(styles, "FormatDateTime", "dateTimeStyles")
    in_fmt = _req_text(input_format, "FormatDateTime", "inputFormat")
    out_fmt = _req_text(output_format, "FormatDateTime", "outputFormat")
    try:
        moment = _parse_exact(text, in_fmt, _styles(style_text or ""))
        return _format_datetime(moment, out_fmt)
    except ValueError as exc:
        raise EvaluationError(f"FormatDateTime: {exc}") from exc


def _fn_formatdatetime(*args: Any) -> Any:
    if len(args) == 3:  # the older three-argument form: (source, inputFormat, outputFormat)
        return _format_date_time(args[0], None, args[1], args[2])
    return _format_date_time(*args)


def _fn_guid() -> str:
    return str(uuid.uuid4())


def _fn_ignore(value: Any) -> Any:
    return IGNORE if _is_empty(value) else value


def _fn_instr(value1: Any, value2: Any, start: Any = None, compare: Any = None) -> int | None:
    haystack = _text(value1, "InStr", "value1")
    needle = _text(value2, "InStr", "value2")
    begin = _int(start, "InStr", "start")
    begin = 1 if begin is None else begin
    if begin < 1:
        raise EvaluationError(f"InStr: start must be 1 or more, got {begin}")
    ignore_case = _compare_mode(compare)
    if haystack is None or needle is None:
        return None
    if begin > len(haystack) + 1:
        return 0
    if needle == "":
        return begin
    if ignore_case:
        found = _caseless(needle).search(haystack, begin - 1)
        return found.start() + 1 if found else 0
    return haystack.find(needle, begin - 1) + 1


def _compare_mode(value: Any) -> bool:
    """True for text (case-insensitive) comparison, False for binary."""
    if value is None:
        return False
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("vbtextcompare", "1"):
            return True
        if low in ("vbbinarycompare", "0"):
            return False
    raise EvaluationError(
        f"InStr: compareType must be vbTextCompare or vbBinaryCompare, got {_show(value)}"
    )


@functools.lru_cache(maxsize=256)
def _caseless(needle: str) -> re.Pattern[str]:
    return re.compile(re.escape(needle), re.IGNORECASE)


def _fn_isnull(value: Any) -> bool:
    return value is None


def _fn_isnullorempty(value: Any) -> bool:
    return _is_empty(value)


def _fn_ispresent(value: Any) -> bool:
    return not _is_empty(value)


def _fn_isstring(value: Any) -> bool:
    return isinstance(value, str)


def _fn_item(attribute: Any, index: Any) -> Any:
    position = _req_int(index, "Item", "index")
    if position < 1:
        raise EvaluationError(f"Item: index is 1-based, got {position}")
    if attribute is None:
        return None
    values = attribute if isinstance(attribute, list) else [attribute]
    return values[position - 1] if position <= len(values) else None


def _fn_join(separator: Any, *sources: Any) -> str:
    glue = _text(separator, "Join", "separator") or ""
    parts: list[str] = []
    for source in sources:
        for item in source if isinstance(source, list) else (source,):
            text = _text(item, "Join", "a source value")
            if text:
                parts.append(text)
    return glue.join(parts)


def _fn_left(value: Any, num_chars: Any) -> str:
    text = _text(value, "Left", "string")
    count = _req_int(num_chars, "Left", "numChars")
    if text is None:
        return ""
    if count < 0:
        return text
    return text[:count]


def _fn_mid(source: Any, start: Any, length: Any) -> str | None:
    text = _text(source, "Mid", "source")
    begin = _req_int(start, "Mid", "start")
    size = _req_int(length, "Mid", "length")
    if begin < 1:
        raise EvaluationError(f"Mid: start is 1-based, got {begin}")
    if size < 0:
        raise EvaluationError(f"Mid: length must not be negative, got {size}")
    if text is None:
        return None
    return text[begin - 1 : begin - 1 + size]


_DIACRITIC_SPECIALS: Final = {
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "ǽ": "ae", "Ǽ": "AE", "ø": "oe", "Ø": "OE",
    "ǿ": "oe", "Ǿ": "OE", "œ": "oe", "Œ": "OE", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D",
    "ł": "l", "Ł": "L", "þ": "th", "Þ": "TH", "ı": "i", "ħ": "h", "Ħ": "H", "ŧ": "t",
    "Ŧ": "T", "ŀ": "l", "Ŀ": "L", "ŋ": "n", "Ŋ": "N", "ĸ": "k",
}


class _DiacriticTable(dict[int, str]):
    """A ``str.translate`` table filled on demand: each character without its diacritics."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        special = _DIACRITIC_SPECIALS.get(char)
        if special is None:
            decomposed = unicodedata.normalize("NFD", char)
            stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
            special = unicodedata.normalize("NFC", stripped)
        self[code] = special
        return special


_DIACRITICS: Final = _DiacriticTable()


def _fn_normalize(value: Any) -> str | None:
    """Remove diacritics character by character (ë → e, ß → ss, æ → ae, ø → oe, ...)."""
    text = _text(value, "NormalizeDiacritics", "source")
    if text is None or text.isascii():
        return text
    return text.translate(_DIACRITICS)


def _fn_not(value: Any) -> bool | None:
    flag = _bool(value, "Not", "source")
    return None if flag is None else not flag


def _fn_now() -> str:
    return _display(datetime.now(UTC))


def _fn_numfromdate(value: Any) -> int | None:
    moment = _read_datetime(value, "NumFromDate")
    return None if moment is None else _filetime(moment)


_APOSTROPHES: Final = frozenset("'’")


def _fn_pcase(source: Any, separators: Any = None) -> str | None:
    text = _text(source, "PCase", "source")
    seps = _text(separators, "PCase", "wordSeparators")
    if text is None:
        return None
    out: list[str] = []
    start = True
    for ch in text:
        if seps is None:
            separator = not (
                ch.isalnum() or ch in _APOSTROPHES or unicodedata.category(ch).startswith("M")
            )
        else:
            separator = ch in seps
        if separator:
            out.append(ch)
            start = True
        else:
            out.append(ch.title() if start else ch.lower())
            start = False
    return "".join(out)


_SPECIAL_CHARS: Final = string.punctuation


def _fn_randomstring(
    length: Any, min_numbers: Any, min_special: Any, min_capital: Any, min_lower: Any,
    avoid: Any = None,
) -> str:
    fn = "RandomString"
    size = _req_int(length, fn, "length")
    minimums = [
        _req_int(min_numbers, fn, "minNumbers"),
        _req_int(min_special, fn, "minSpecialCharacters"),
        _req_int(min_capital, fn, "minCapital"),
        _req_int(min_lower, fn, "minLower"),
    ]
    skip = set(_text(avoid, fn, "charactersToAvoid") or "")
    if not 1 <= size <= 256:
        raise EvaluationError(f"{fn}: length must be 1 to 256, got {size}")
    if any(count < 0 for count in minimums):
        raise EvaluationError(f"{fn}: the minimum counts must not be negative")
    if sum(minimums) > size:
        raise EvaluationError(f"{fn}: the minimum counts add up to more than length {size}")
    pools = [
        "".join(c for c in chars if c not in skip)
        for chars in (string.digits, _SPECIAL_CHARS, string.ascii_uppercase,
                      string.ascii_lowercase)
    ]
    chosen: list[str] = []
    for pool, count, name in zip(pools, minimums, ("digits", "special", "capital", "lower"),
                                 strict=True):
        if count and not pool:
            raise EvaluationError(f"{fn}: charactersToAvoid removes every {name} character")
        chosen.extend(secrets.choice(pool) for _ in range(count))
    everything = "".join(pools)
    if not everything:
        raise EvaluationError(f"{fn}: charactersToAvoid removes every character")
    chosen.extend(secrets.choice(everything) for _ in range(size - len(chosen)))
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)


def _fn_redact(value: Any) -> Any:
    return value


def _fn_removeduplicates(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    seen: set[Any] = set()
    result: list[Any] = []
    for item in value:
        key = (type(item), item)
        if key not in seen:
            seen.add(key)
            result.append(item)
    return result


def _fn_singleapprole(value: Any) -> Any:
    if not isinstance(value, list):
        return None if value == "" else value
    roles = _fn_removeduplicates([item for item in value if not _is_empty(item)])
    if len(roles) > 1:
        raise EvaluationError(
            f"SingleAppRoleAssignment: the user has {len(roles)} app roles, expected one"
        )
    return roles[0] if roles else None


def _fn_split(source: Any, delimiter: Any) -> list[str] | None:
    text = _text(source, "Split", "source")
    sep = _text(delimiter, "Split", "delimiter")
    if text is None:
        return None
    if text == "":
        return []
    return text.split(sep) if sep else [text]


def _fn_stripspaces(source: Any) -> str | None:
    text = _text(source, "StripSpaces", "source")
    return None if text is None else text.replace(" ", "")


_CULTURE_RE: Final = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*\Z")


def _turkic(culture: Any, fn: str) -> bool:
    """Whether ``culture`` (e.g. "tr-TR") uses the dotted/dotless i rules."""
    name = _text(culture, fn, "culture")
    if not name:
        return False
    if not _CULTURE_RE.match(name):
        raise EvaluationError(f"{fn}: {_show(name)} is not a culture name like en-US")
    return name[:2].lower() in ("tr", "az") and name[2:3] in ("", "-", "_")


def _fn_tolower(source: Any, culture: Any = None) -> str | None:
    text = _text(source, "ToLower", "source")
    turkic = _turkic(culture, "ToLower")
    if text is None:
        return None
    if turkic:
        text = text.replace("I", "ı").replace("İ", "i")
    return text.lower()


def _fn_toupper(source: Any, culture: Any = None) -> str | None:
    text = _text(source, "ToUpper", "source")
    turkic = _turkic(culture, "ToUpper")
    if text is None:
        return None
    if turkic:
        text = text.replace("i", "İ")
    return text.upper()


@functools.lru_cache(maxsize=128)
def _word_splitter(delimiters: str) -> re.Pattern[str]:
    return re.compile("[" + re.escape(delimiters) + "]+")


def _fn_word(value: Any, number: Any, delimiters: Any) -> str | None:
    text = _text(value, "Word", "string")
    index = _req_int(number, "Word", "wordNumber")
    seps = _text(delimiters, "Word", "delimiters") or ""
    if text is None:
        return None
    words = [text] if text else []
    if seps:
        words = [w for w in _word_splitter(seps).split(text) if w]
    return words[index - 1] if 1 <= index <= len(words) else ""


# --------------------------------------------------------------------------------------------
# Syntax tree
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Literal:
    value: str | int
    pos: int


@dataclass(frozen=True, slots=True)
class _Attr:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class _Empty:
    pos: int


@dataclass(frozen=True, slots=True)
class _VbConst:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class _Compare:
    op: str
    left: _Node
    right: _Node
    pos: int


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    args: tuple[_Node, ...]
    pos: int


_Node: TypeAlias = "_Literal | _Attr | _Empty | _VbConst | _Compare | _Call"
_Check: TypeAlias = Callable[[_Call, str], None]
_Builder: TypeAlias = Callable[[_Call, list[_Eval]], _Eval]


@dataclass(frozen=True, slots=True)
class _Function:
    """One supported function: arity, implementation and optional parse-time check."""

    min_args: int
    max_args: int | None
    impl: Callable[..., Any] | None = None
    build: _Builder | None = None
    check: _Check | None = None


def _const(value: Any) -> _Eval:
    def evaluate(lookup: Lookup) -> Any:
        return value

    return evaluate


def _attr(name: str) -> _Eval:
    def evaluate(lookup: Lookup) -> Any:
        return lookup(name)

    return evaluate


def _runtime_failure(name: str, exc: Exception) -> EvaluationError:
    return EvaluationError(f"{name}: {exc}")


def _eager(name: str, impl: Callable[..., Any], args: list[_Eval]) -> _Eval:
    """Evaluate every argument, then call ``impl`` (specialised for small arities)."""
    if not args:

        def call0(lookup: Lookup) -> Any:
            return impl()

        return call0
    if len(args) == 1:
        (only,) = args

        def call1(lookup: Lookup) -> Any:
            value = only(lookup)
            try:
                return impl(value)
            except _RUNTIME_ERRORS as exc:
                raise _runtime_failure(name, exc) from exc

        return call1
    if len(args) == 2:
        first, second = args

        def call2(lookup: Lookup) -> Any:
            a, b = first(lookup), second(lookup)
            try:
                return impl(a, b)
            except _RUNTIME_ERRORS as exc:
                raise _runtime_failure(name, exc) from exc

        return call2
    frozen = tuple(args)

    def calln(lookup: Lookup) -> Any:
        values = [arg(lookup) for arg in frozen]
        try:
            return impl(*values)
        except _RUNTIME_ERRORS as exc:
            raise _runtime_failure(name, exc) from exc

    return calln


def _build_coalesce(node: _Call, args: list[_Eval]) -> _Eval:
    *sources, last = args

    def coalesce(lookup: Lookup) -> Any:
        for source in sources:
            value = source(lookup)
            if not _is_empty(value):
                return value
        return last(lookup)

    return coalesce


def _build_iif(node: _Call, args: list[_Eval]) -> _Eval:
    condition, if_true, if_false = args

    def iif(lookup: Lookup) -> Any:
        flag = _bool(condition(lookup), "IIF", "condition")
        return if_true(lookup) if flag else if_false(lookup)

    return iif


def _build_switch(node: _Call, args: list[_Eval]) -> _Eval:
    source, default, *rest = args
    key_nodes = node.args[2::2]
    values = rest[1::2]
    if all(isinstance(key, _Literal) for key in key_nodes):
        table: dict[str, _Eval] = {}
        for key, value in zip(key_nodes, values, strict=True):
            assert isinstance(key, _Literal)
            table.setdefault(str(key.value), value)

        def switch_table(lookup: Lookup) -> Any:
            text = _text(source(lookup), "Switch", "source")
            chosen = table.get(text) if text is not None else None
            return (chosen or default)(lookup)

        return switch_table
    pairs = tuple(zip(rest[0::2], values, strict=True))

    def switch(lookup: Lookup) -> Any:
        text = _text(source(lookup), "Switch", "source")
        if text is not None:
            for key, value in pairs:
                if _text(key(lookup), "Switch", "key") == text:
                    return value(lookup)
        return default(lookup)

    return switch


def _build_select_unique(node: _Call, args: list[_Eval]) -> _Eval:
    def first_present(lookup: Lookup) -> Any:
        for candidate in args:
            value = candidate(lookup)
            if not _is_empty(value):
                return value
        return None

    return first_present


def _build_replace(node: _Call, args: list[_Eval]) -> _Eval:
    """Replace's five modes, chosen from which arguments are given (not from their values).

    * ``oldValue`` + ``replacementValue``: replace every ``oldValue`` in source;
    * ``oldValue`` + ``template``: replace every ``oldValue`` in template with source;
    * ``regexPattern`` + ``replacementValue``: regex replace (``$1``, ``${name}`` allowed);
    * ``regexPattern`` + ``regexGroupName`` + ``replacementValue``: replace only what that
      group matched, in every match;
    * ``regexPattern`` + ``regexGroupName`` + ``replacementAttributeName``: source if it has a
      value, else that group of the first match in the replacement attribute (null if none).
    """
    source, old, pattern, group, replacement, other, template = args
    given = [not isinstance(arg, _Empty) for arg in node.args]
    pattern_node = node.args[2]
    static = _regex(str(pattern_node.value)) if isinstance(pattern_node, _Literal) else None

    def regex(lookup: Lookup) -> re.Pattern[str]:
        if static is not None:
            return static
        text = _req_text(pattern(lookup), "Replace", "regexPattern")
        return _dynamic_regex(text)

    def group_ref(lookup: Lookup, rx: re.Pattern[str]) -> int | str:
        name = _req_text(group(lookup), "Replace", "regexGroupName")
        try:
            return _group_ref(rx, name)
        except LookupError:
            raise EvaluationError(
                f"Replace: the regex has no group named {_show(name)}"
            ) from None

    if given[1] and given[6]:

        def by_template(lookup: Lookup) -> Any:
            text = _text(source(lookup), "Replace", "source")
            old_value = _req_text(old(lookup), "Replace", "oldValue")
            shape = _text(template(lookup), "Replace", "template")
            if text is None or shape is None:
                return None
            return shape.replace(old_value, text) if old_value else shape

        return by_template
    if given[1]:

        def by_value(lookup: Lookup) -> Any:
            text = _text(source(lookup), "Replace", "source")
            old_value = _req_text(old(lookup), "Replace", "oldValue")
            new_value = _text(replacement(lookup), "Replace", "replacementValue") or ""
            if text is None:
                return None
            return text.replace(old_value, new_value) if old_value else text

        return by_value
    if given[5]:

        def from_attribute(lookup: Lookup) -> Any:
            value = source(lookup)
            if not _is_empty(value):
                return value
            rx = regex(lookup)
            ref = group_ref(lookup, rx)
            text = _text(other(lookup), "Replace", "replacementAttributeName")
            if text is None:
                return None
            found = rx.search(text)
            return found.group(ref) if found else None

        return from_attribute
    if given[3]:

        def in_group(lookup: Lookup) -> Any:
            text = _text(source(lookup), "Replace", "source")
            rx = regex(lookup)
            ref = group_ref(lookup, rx)
            new_value = _text(replacement(lookup), "Replace", "replacementValue") or ""
            if text is None:
                return None

            def swap(match: re.Match[str]) -> str:
                start, end = match.span(ref)
                if start < 0:
                    return match.group(0)
                whole = match.group(0)
                offset = match.start()
                return whole[: start - offset] + new_value + whole[end - offset :]

            return rx.sub(swap, text)

        return in_group

    replacement_text = _literal_text(node.args[4])
    if static is not None and replacement_text is not None:
        # Both literal: prepare the substitution once. Without "$" it is a constant, escaped
        # for Python's template syntax (where backslashes are special).
        fixed = static
        substitute: str | Callable[[re.Match[str]], str] = (
            _substitution(fixed, replacement_text)
            if "$" in replacement_text
            else replacement_text.replace("\\", "\\\\")
        )

        def by_fixed_regex(lookup: Lookup) -> Any:
            text = _text(source(lookup), "Replace", "source")
            return None if text is None else fixed.sub(substitute, text)

        return by_fixed_regex

    def by_regex(lookup: Lookup) -> Any:
        text = _text(source(lookup), "Replace", "source")
        rx = regex(lookup)
        new_value = _text(replacement(lookup), "Replace", "replacementValue") or ""
        if text is None:
            return None
        return rx.sub(_substitution(rx, new_value), text)

    return by_regex


# --------------------------------------------------------------------------------------------
# Parse-time checks
# --------------------------------------------------------------------------------------------


def _literal_text(node: _Node) -> str | None:
    """The text of a string literal argument, else None."""
    if isinstance(node, _Literal) and isinstance(node.value, str):
        return node.value
    return None


def _check_replace(node: _Call, text: str) -> None:
    given = [not isinstance(arg, _Empty) for arg in node.args]
    _, old, pattern, group, replacement, other, template = given
    if old and pattern:
        raise ExpressionError(
            "Replace takes either oldValue or regexPattern, not both", text, node.args[2].pos
        )
    if old:
        if replacement and template:
            raise ExpressionError(
                "Replace with oldValue takes either replacementValue or template, not both",
                text, node.args[6].pos,
            )
        if not (replacement or template):
            raise ExpressionError(
                "Replace with oldValue needs a replacementValue or a template", text, node.pos
            )
    elif pattern:
        if other and not group:
            raise ExpressionError(
                "Replace with replacementAttributeName needs a regexGroupName", text, node.pos
            )
        if not (replacement or other):
            raise ExpressionError(
                "Replace with regexPattern needs a replacementValue or a "
                "replacementAttributeName", text, node.pos,
            )
    else:
        raise ExpressionError("Replace needs an oldValue or a regexPattern", text, node.pos)
    literal = _literal_text(node.args[2])
    if literal is None:
        return
    try:
        compiled = _regex(literal)
    except re.error as exc:
        raise ExpressionError(
            f"invalid regular expression in Replace: {exc.msg}", text, node.args[2].pos
        ) from None
    group_name = _literal_text(node.args[3])
    if group_name is not None:
        try:
            _group_ref(compiled, group_name)
        except LookupError:
            raise ExpressionError(
                f"the regular expression has no group named {group_name!r}",
                text, node.args[3].pos,
            ) from None


def _check_interval(node: _Call, text: str) -> None:
    interval = _literal_text(node.args[0])
    if interval is not None and interval not in _INTERVAL_NAMES:
        raise ExpressionError(
            f"unknown {node.name} interval {interval!r}; expected one of "
            + ", ".join(_INTERVAL_NAMES),
            text, node.args[0].pos,
        )


def _check_formatdatetime(node: _Call, text: str) -> None:
    if len(node.args) == 3:
        formats = [node.args[1], node.args[2]]
    else:
        formats = [node.args[2], node.args[3]]
        styles = _literal_text(node.args[1])
        if styles is not None:
            try:
                _styles(styles)
            except ValueError as exc:
                raise ExpressionError(str(exc), text, node.args[1].pos) from None
    for arg in formats:
        fmt = _literal_text(arg)
        if fmt is not None:
            try:
                _format_tokens(fmt)
            except ValueError as exc:
                raise ExpressionError(
                    f"invalid date-time format: {exc}", text, arg.pos
                ) from None


def _check_switch(node: _Call, text: str) -> None:
    if len(node.args) % 2:
        raise ExpressionError(
            "Switch expects source, defaultValue and key/value pairs (an even number of "
            f"arguments), got {len(node.args)}", text, node.pos,
        )


def _check_randomstring(node: _Call, text: str) -> None:
    length = node.args[0]
    if isinstance(length, _Literal) and isinstance(length.value, int) and not (
        1 <= length.value <= 256
    ):
        raise ExpressionError(
            f"RandomString length must be 1 to 256, got {length.value}", text, length.pos
        )


_FUNCTIONS: Final[dict[str, _Function]] = {
    "Append": _Function(2, 2, _fn_append),
    "BitAnd": _Function(2, 2, _fn_bitand),
    "CBool": _Function(1, 1, _fn_cbool),
    "CDate": _Function(1, 1, _fn_cdate),
    "Coalesce": _Function(1, None, build=_build_coalesce),
    "ConvertToBase64": _Function(1, 1, _fn_base64),
    "ConvertToUTF8Hex": _Function(1, 1, _fn_utf8hex),
    "Count": _Function(1, 1, _fn_count),
    "CStr": _Function(1, 1, _fn_cstr),
    "DateAdd": _Function(3, 3, _fn_dateadd, check=_check_interval),
    "DateDiff": _Function(3, 3, _fn_datediff, check=_check_interval),
    "DateFromNum": _Function(1, 1, _fn_datefromnum),
    "FormatDateTime": _Function(3, 4, _fn_formatdatetime, check=_check_formatdatetime),
    "Guid": _Function(0, 0, _fn_guid),
    "IgnoreFlowIfNullOrEmpty": _Function(1, 1, _fn_ignore),
    "IIF": _Function(3, 3, build=_build_iif),
    "InStr": _Function(2, 4, _fn_instr),
    "IsNull": _Function(1, 1, _fn_isnull),
    "IsNullOrEmpty": _Function(1, 1, _fn_isnullorempty),
    "IsPresent": _Function(1, 1, _fn_ispresent),
    "IsString": _Function(1, 1, _fn_isstring),
    "Item": _Function(2, 2, _fn_item),
    "Join": _Function(2, None, _fn_join),
    "Left": _Function(2, 2, _fn_left),
    "Mid": _Function(3, 3, _fn_mid),
    "NormalizeDiacritics": _Function(1, 1, _fn_normalize),
    "Not": _Function(1, 1, _fn_not),
    "Now": _Function(0, 0, _fn_now),
    "NumFromDate": _Function(1, 1, _fn_numfromdate),
    "PCase": _Function(1, 2, _fn_pcase),
    "RandomString": _Function(5, 6, _fn_randomstring, check=_check_randomstring),
    "Redact": _Function(1, 1, _fn_redact),
    "RemoveDuplicates": _Function(1, 1, _fn_removeduplicates),
    "Replace": _Function(7, 7, build=_build_replace, check=_check_replace),
    "SelectUniqueValue": _Function(1, None, build=_build_select_unique),
    "SingleAppRoleAssignment": _Function(1, 1, _fn_singleapprole),
    "Split": _Function(2, 2, _fn_split),
    "StripSpaces": _Function(1, 1, _fn_stripspaces),
    "Switch": _Function(4, None, build=_build_switch, check=_check_switch),
    "ToLower": _Function(1, 2, _fn_tolower),
    "ToUpper": _Function(1, 2, _fn_toupper),
    "Word": _Function(3, 3, _fn_word),
}

# Where a comparison may appear: (function, argument index).
_COMPARISON_SLOTS: Final = frozenset({("IIF", 0), ("CBool", 0)})
_VB_CONSTANTS: Final = frozenset({"vbTextCompare", "vbBinaryCompare"})
_VB_SLOT: Final = ("InStr", 3)


def function_names() -> list[str]:
    """The names of every supported function, sorted."""
    return sorted(_FUNCTIONS)


# --------------------------------------------------------------------------------------------
# Comparisons (inside IIF / CBool)
# --------------------------------------------------------------------------------------------


def _comparable(value: Any) -> Any:
    if isinstance(value, list):
        raise EvaluationError(
            f"cannot compare a multi-valued attribute ({len(value)} values); use Item() or Join()"
        )
    return value


def _as_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_RE.match(value):
        return int(value)
    return None


def _compare(op: str, left: Any, right: Any) -> bool:
    """Compare two values. Null never matches: ``=`` and ordering are False, ``<>`` is True.

    Entra fails the object when IIF's attribute is null; here the comparison is simply false
    so that ``IIF([country]="USA", ...)`` takes its else branch for users without a country.
    A bool equals "True"/"False" in any case; an int compares numerically with a numeric
    string; ordering is numeric when both sides are whole numbers, else ordinal text order.
    Text equality is case-sensitive.
    """
    left, right = _comparable(left), _comparable(right)
    if left is None or right is None:
        return op == "<>"
    if op in ("=", "<>"):
        if isinstance(left, bool) or isinstance(right, bool):
            a_flag = _bool_or_none(left)
            b_flag = _bool_or_none(right)
            equal = a_flag is not None and a_flag == b_flag
        elif isinstance(left, int) or isinstance(right, int):
            a_num, b_num = _as_number(left), _as_number(right)
            equal = a_num is not None and a_num == b_num
        else:
            equal = left == right
        return equal if op == "=" else not equal
    a_num, b_num = _as_number(left), _as_number(right)
    a: Any
    b: Any
    if a_num is not None and b_num is not None:
        a, b = a_num, b_num
    else:
        a = _text(left, "comparison", "left side")
        b = _text(right, "comparison", "right side")
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def _bool_or_none(value: Any) -> bool | None:
    try:
        return _bool(value, "comparison", "value")
    except EvaluationError:
        return None


# --------------------------------------------------------------------------------------------
# Lexer and parser
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # name attr string int ( ) , op eof
    value: Any
    pos: int


_NAME_START: Final = frozenset(string.ascii_letters + "_")
_NAME_CHARS: Final = frozenset(string.ascii_letters + string.digits + "_")
_ATTR_CHARS: Final = frozenset(string.ascii_letters + string.digits + "_.-")
_HEX_DIGITS: Final = frozenset(string.hexdigits)
_WRONG_QUOTES: Final = {
    "'": "string constants use double quotes",
    "“": "use straight double quotes (\")",
    "”": "use straight double quotes (\")",
    "‘": "string constants use straight double quotes (\")",
    "’": "string constants use straight double quotes (\")",
}


class _Lexer:
    """Produces tokens on demand, so the first error in reading order is reported."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, self.text, pos)

    def next(self) -> _Token:
        text, n = self.text, len(self.text)
        i = self.pos
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            self.pos = i
            return _Token("eof", None, i)
        ch = text[i]
        start = i
        if ch in "(),":
            self.pos = i + 1
            return _Token(ch, ch, start)
        if ch == "[":
            return self._attribute(start)
        if ch == '"':
            return self._string(start)
        if (ch.isdigit() and ch.isascii()) or (
            ch == "-" and i + 1 < n and text[i + 1].isascii() and text[i + 1].isdigit()
        ):
            i += 1
            while i < n and text[i].isascii() and text[i].isdigit():
                i += 1
            if i - start > _MAX_INT_DIGITS:
                raise self.error("integer literal too large (at most 64 bits)", start)
            self.pos = i
            return _Token("int", int(text[start:i]), start)
        if ch == "&":
            if i + 1 < n and text[i + 1] in "Hh":
                i += 2
                while i < n and text[i] in _HEX_DIGITS:
                    i += 1
                if i - start - 2 > _MAX_HEX_DIGITS:
                    raise self.error("hex literal too large (at most 64 bits)", start)
                if i > start + 2:
                    self.pos = i
                    return _Token("int", int(text[start + 2 : i], 16), start)
            raise self.error("invalid hex number (expected &H followed by hex digits)", start)
        if ch in _NAME_START:
            while i < n and text[i] in _NAME_CHARS:
                i += 1
            self.pos = i
            return _Token("name", text[start:i], start)
        if ch == "=":
            self.pos = i + 1
            return _Token("op", "=", start)
        if ch in "<>":
            two = text[i : i + 2]
            op = two if two in ("<=", "<>", ">=") else ch
            self.pos = i + len(op)
            return _Token("op", op, start)
        if ch == "!" and text[i + 1 : i + 2] == "=":
            raise self.error("unexpected '!=' (use <> for not equal)", start)
        if ch in _WRONG_QUOTES:
            raise self.error(f"unexpected character {ch!r} ({_WRONG_QUOTES[ch]})", start)
        raise self.error(f"unexpected character {ch!r}", start)

    def _attribute(self, start: int) -> _Token:
        text, n = self.text, len(self.text)
        i = start + 1
        while i < n and text[i] != "]":
            if text[i] not in _ATTR_CHARS:
                if text[i] in "\n,()":
                    break
                raise self.error(
                    f"invalid character {text[i]!r} in attribute name "
                    "(letters, digits, '_', '.' and '-' are allowed)", i,
                )
            i += 1
        if i >= n or text[i] != "]":
            raise self.error("unterminated attribute name: missing ']'", start)
        if i == start + 1:
            raise self.error("empty attribute name", start)
        self.pos = i + 1
        return _Token("attr", text[start + 1 : i], start)

    def _string(self, start: int) -> _Token:
        text, n = self.text, len(self.text)
        out: list[str] = []
        i = start + 1
        while i < n:
            ch = text[i]
            if ch == '"':
                self.pos = i + 1
                return _Token("string", "".join(out), start)
            if ch == "\\" and i + 1 < n:
                nxt = text[i + 1]
                if nxt in '"\\':
                    out.append(nxt)
                else:
                    out.append("\\" + nxt)
                i += 2
                continue
            out.append(ch)
            i += 1
        raise self.error("unterminated string constant", start)


_DESCRIBE: Final = {
    "(": "'('",
    ")": "')'",
    ",": "','",
    "eof": "the end of the expression",
}


def _describe(token: _Token) -> str:
    if token.kind in _DESCRIBE:
        return _DESCRIBE[token.kind]
    if token.kind == "attr":
        return f"attribute [{token.value}]"
    if token.kind == "string":
        return "a string constant"
    if token.kind == "int":
        return f"number {token.value}"
    if token.kind == "op":
        return f"'{token.value}'"
    return f"{token.value!r}"


def _arity(spec: _Function) -> str:
    low, high = spec.min_args, spec.max_args
    noun = "argument" if (high or low) == 1 else "arguments"
    if high == low:
        return f"{low} {noun}"
    if high is None:
        return f"at least {low} {noun}"
    return f"{low} to {high} {noun}"


class _Parser:
    """Recursive descent over :class:`_Lexer` tokens with one token of look-ahead."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lexer = _Lexer(text)
        self.token = self.lexer.next()
        self.attributes: set[str] = set()
        self.redacted = False

    def error(self, message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, self.text, pos)

    def advance(self) -> _Token:
        token = self.token
        self.token = self.lexer.next()
        return token

    def parse(self) -> _Node:
        if self.token.kind == "eof":
            raise self.error("the expression is empty", 0)
        node = self.operand(depth=0, slot=None)
        if self.token.kind == ")":
            raise self.error("unbalanced parenthesis: unexpected ')'", self.token.pos)
        if self.token.kind == "op":
            raise self.error(
                f"unexpected '{self.token.value}': comparisons are only allowed as the "
                "condition of IIF or the argument of CBool", self.token.pos,
            )
        if self.token.kind != "eof":
            raise self.error(
                f"unexpected {_describe(self.token)} after the end of the expression",
                self.token.pos,
            )
        return node

    def operand(self, depth: int, slot: tuple[str, int] | None) -> _Node:
        token = self.token
        if token.kind == "name":
            self.advance()
            if self.token.kind == "(":
                return self.call(token, depth)
            name = token.value
            if name in _VB_CONSTANTS:
                if slot != _VB_SLOT:
                    raise self.error(
                        f"{name} is only allowed as the compareType argument of InStr", token.pos
                    )
                return _VbConst(name, token.pos)
            if name in _FUNCTIONS:
                raise self.error(f"expected '(' after {name}", self.token.pos)
            if name in ("True", "False"):
                hint = " (string constants need double quotes)"
            else:
                close = difflib.get_close_matches(name, _VB_CONSTANTS, n=1, cutoff=0.8)
                hint = f" (did you mean {close[0]}?)" if close else ""
            raise self.error(f"unknown name {name!r}{hint}", token.pos)
        if token.kind == "attr":
            self.advance()
            self.attributes.add(token.value)
            return _Attr(token.value, token.pos)
        if token.kind in ("string", "int"):
            self.advance()
            return _Literal(token.value, token.pos)
        if token.kind == ")":
            raise self.error("unbalanced parenthesis: unexpected ')'", token.pos)
        raise self.error(f"unexpected {_describe(token)}", token.pos)

    def call(self, name_token: _Token, depth: int) -> _Call:
        name = name_token.value
        spec = _FUNCTIONS.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, _FUNCTIONS, n=1, cutoff=0.6)
            folded = {key.lower(): key for key in _FUNCTIONS}.get(name.lower())
            suggestion = folded or (close[0] if close else None)
            hint = f" (did you mean {suggestion}?)" if suggestion else ""
            raise self.error(f"unknown function {name!r}{hint}", name_token.pos)
        if depth >= _MAX_DEPTH:
            raise self.error(f"functions are nested more than {_MAX_DEPTH} deep", name_token.pos)
        if name == "SelectUniqueValue" and depth > 0:
            raise self.error(
                "SelectUniqueValue must be the outermost function of the expression",
                name_token.pos,
            )
        if name == "Redact":
            self.redacted = True
        open_paren = self.advance()
        args: list[_Node] = []
        if self.token.kind == ")":
            self.advance()
        else:
            while True:
                args.append(self.argument(name, len(args), depth, open_paren.pos))
                token = self.token
                if token.kind == ",":
                    self.advance()
                    continue
                if token.kind == ")":
                    self.advance()
                    break
                if token.kind == "eof":
                    raise self.error(
                        "unbalanced parenthesis: this '(' is never closed", open_paren.pos
                    )
                raise self.error(
                    f"expected ',' or ')' but found {_describe(token)}", token.pos
                )
        count = len(args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            raise self.error(f"{name} expects {_arity(spec)}, got {count}", name_token.pos)
        node = _Call(name, tuple(args), name_token.pos)
        if spec.check is not None:
            spec.check(node, self.text)
        return node

    def argument(self, name: str, index: int, depth: int, open_pos: int) -> _Node:
        token = self.token
        if token.kind in (",", ")"):
            return _Empty(token.pos)
        if token.kind == "eof":
            raise self.error("unbalanced parenthesis: this '(' is never closed", open_pos)
        slot = (name, index)
        left = self.operand(depth + 1, slot)
        if self.token.kind != "op":
            return left
        op_token = self.advance()
        if slot not in _COMPARISON_SLOTS:
            raise self.error(
                f"unexpected '{op_token.value}': comparisons are only allowed as the "
                "condition of IIF or the argument of CBool", op_token.pos,
            )
        if self.token.kind in (",", ")", "eof", "op"):
            raise self.error(
                f"expected a value after '{op_token.value}' but found {_describe(self.token)}",
                self.token.pos,
            )
        right = self.operand(depth + 1, None)
        if self.token.kind == "op":
            raise self.error(
                f"unexpected '{self.token.value}': only one comparison is allowed here",
                self.token.pos,
            )
        return _Compare(op_token.value, left, right, op_token.pos)


def _compile(node: _Node) -> _Eval:
    """Turn a syntax node into a closure ``evaluate(lookup) -> value``."""
    if isinstance(node, _Attr):
        return _attr(node.name)
    if isinstance(node, _Literal):
        return _const(node.value)
    if isinstance(node, _Empty):
        return _const(None)
    if isinstance(node, _VbConst):
        return _const(node.name)
    if isinstance(node, _Compare):
        left, right, op = _compile(node.left), _compile(node.right), node.op

        def compare(lookup: Lookup) -> bool:
            return _compare(op, left(lookup), right(lookup))

        return compare
    spec = _FUNCTIONS[node.name]
    args = [_compile(arg) for arg in node.args]
    if spec.build is not None:
        return spec.build(node, args)
    assert spec.impl is not None
    return _eager(node.name, spec.impl, args)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


class Expression:
    """A parsed attribute-mapping expression; evaluate it once per source object.

    ``text`` is the original text, ``redacted`` is True when ``Redact(...)`` appears anywhere
    (callers then show ``[Redact]`` instead of the value, and evaluation errors hide details).
    """

    __slots__ = ("_attributes", "_candidates", "_root", "redacted", "text")

    text: str
    redacted: bool

    def __init__(
        self, text: str, root: _Eval, attributes: frozenset[str], redacted: bool,
        candidates: tuple[_Eval, ...] | None = None,
    ) -> None:
        self.text = text
        self.redacted = redacted
        self._root = root
        self._attributes = attributes
        self._candidates = candidates

    def attributes(self) -> frozenset[str]:
        """Every ``[attributeName]`` the expression references, spelled as written."""
        return self._attributes

    @property
    def selects_unique(self) -> bool:
        """True for a top-level ``SelectUniqueValue``: its value depends on what the target
        already holds."""
        return self._candidates is not None

    def evaluate(
        self, lookup: Lookup, *, is_taken: Callable[[Any], bool] | None = None
    ) -> Any:
        """Evaluate for one object.

        ``lookup(name)`` returns the source value of ``[name]`` (None, str, int, bool or a
        list of those). Returns None, str, int, bool, a list or :data:`IGNORE`. ``is_taken``
        is only used by a top-level ``SelectUniqueValue``: candidates are tried in order and
        the first non-empty one for which ``is_taken`` is False wins (without ``is_taken``,
        the first non-empty candidate). Raises :class:`EvaluationError` on run-time failures.
        """
        try:
            if self._candidates is not None and is_taken is not None:
                return self._select_unique(lookup, is_taken)
            return self._root(lookup)
        except EvaluationError:
            if self.redacted:
                raise EvaluationError(
                    "a redacted expression failed (details hidden by Redact)"
                ) from None
            raise

    def _select_unique(self, lookup: Lookup, is_taken: Callable[[Any], bool]) -> Any:
        assert self._candidates is not None
        tried: list[str] = []
        for candidate in self._candidates:
            value = candidate(lookup)
            if _is_empty(value):
                continue
            if not is_taken(value):
                return value
            tried.append(_show(value))
        if not tried:
            return None
        raise EvaluationError(
            "SelectUniqueValue: every candidate is already taken: " + ", ".join(tried)
        )

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Expression):
            return NotImplemented
        return self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __reduce__(self) -> tuple[Callable[[str], Expression], tuple[str]]:
        return parse, (self.text,)


def parse(text: str) -> Expression:
    """Parse an expression; raises :class:`ExpressionError` (with position) on any problem."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(text):,} characters long; the maximum is {MAX_LENGTH:,}"
        )
    parser = _Parser(text)
    node = parser.parse()
    candidates: tuple[_Eval, ...] | None = None
    if isinstance(node, _Call) and node.name == "SelectUniqueValue":
        candidates = tuple(_compile(arg) for arg in node.args)
    return Expression(
        text, _compile(node), frozenset(parser.attributes), parser.redacted, candidates
    )

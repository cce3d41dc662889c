"""Date-times: reading them (ISO-8601, ``M/d/yyyy h:mm:ss tt``, generalized time), Entra's
display form, .NET date-time format strings (formatting and ``ParseExact``), AD FILETIME,
calendar-month arithmetic and the DateAdd / DateDiff interval names."""

from __future__ import annotations

import calendar
import functools
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias

from genesys_prov.errors import EvaluationError
from genesys_prov.mapping.expressions.values import _req_text, _show, _text

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

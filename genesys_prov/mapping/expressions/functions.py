"""The eager functions of the expression language: each takes already evaluated argument
values (the lazy ones, such as IIF and Replace, live in :mod:`.builders` and
:mod:`.replace`)."""

from __future__ import annotations

import base64
import functools
import re
import secrets
import string
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from genesys_prov.errors import EvaluationError
from genesys_prov.mapping.expressions.base import IGNORE
from genesys_prov.mapping.expressions.dates import (
    _FILETIME_EPOCH,
    _INTERVALS,
    _add_months,
    _display,
    _filetime,
    _format_datetime,
    _interval,
    _parse_exact,
    _read_datetime,
    _styles,
)
from genesys_prov.mapping.expressions.values import (
    _INT_RE,
    _bool,
    _int,
    _is_empty,
    _req_int,
    _req_text,
    _show,
    _text,
)


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


def _fn_len(value: Any) -> int:
    """Characters in the string (a number counts its digits: ``Len(42568)`` is 5); null and
    ``""`` are 0. Characters are counted as Left, Mid and InStr count them (code points)."""
    text = _text(value, "Len", "string")
    return 0 if text is None else len(text)


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


APP_ROLE_TYPE: Final = "WindowsAzureActiveDirectoryRole"


def _fn_approles_complex(value: Any) -> list[dict[str, Any]] | None:
    """Every app role the user is assigned, as the SCIM ``roles`` objects Entra sends:
    ``{"primary": False, "type": "WindowsAzureActiveDirectoryRole", "display": name,
    "value": name}`` (every role is sent with primary false), in assignment order, each
    name once. Null, ``""``, an empty list or a list of empty names give null (not ``[]``):
    a user without roles leaves the target's roles alone, as Entra's add-only PATCH does.
    """
    names = value if isinstance(value, list) else [value]
    seen: dict[str, None] = {}
    for item in names:
        name = _text(item, "AppRoleAssignmentsComplex", "an app role")
        if name:
            seen.setdefault(name, None)
    if not seen:
        return None
    return [{"primary": False, "type": APP_ROLE_TYPE, "display": name, "value": name}
            for name in seen]


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

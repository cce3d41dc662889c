"""Value helpers: reading expression values as text, whole numbers and booleans (with the
error messages every function shares), and the null / empty test."""

from __future__ import annotations

import re
from typing import Any, Final

from genesys_prov.errors import EvaluationError
from genesys_prov.mapping.expressions.base import _SHOW_LIMIT, IGNORE


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

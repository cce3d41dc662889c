"""Comparisons (``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``), allowed only as the condition of
IIF or the argument of CBool; null never matches."""

from __future__ import annotations

from typing import Any

from genesys_prov.errors import EvaluationError
from genesys_prov.mapping.expressions.values import _INT_RE, _bool, _text


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

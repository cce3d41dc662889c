"""Scoping filters: decide which directory objects are in scope, the way Entra's
provisioning "scoping filters" do.

A scope is a list of *filter groups*; the clauses inside one group are ANDed and the groups
are ORed. An absent or empty scope matches everything. In ``mappings.yaml``::

    user_scope:
      - - {attribute: department, operator: EQUALS, value: Sales}
        - {attribute: accountEnabled, operator: IS TRUE}
      - - {attribute: jobTitle, operator: REGEX MATCH, value: "^Agent"}

Operators are accepted in Entra's spellings, case-insensitively, with ``_`` and spaces
interchangeable (``not_equals``, ``Greater Than``); they are normalised to the canonical
names in :data:`OPERATORS`.

Semantics (checked once per clause, per object):

* **Null.** A missing value, ``None`` or ``""`` is null. A null value makes a clause
  *false* for every operator except ``IS NULL`` - including the negative operators
  ``NOT EQUALS``, ``NOT REGEX MATCH`` and ``!&`` (Entra: "a null value makes a clause
  false"), and ``IS TRUE`` / ``IS FALSE`` / ``IS NOT NULL``.
* **Multi-valued attributes** cannot be scoped on: a list (or any other collection) makes
  the clause false for every operator, ``IS NULL`` and ``IS NOT NULL`` included.
* **Text operators** (``EQUALS``, ``NOT EQUALS``, ``REGEX MATCH``, ``NOT REGEX MATCH``,
  ``INCLUDES``, ``ENDS_WITH``) compare the attribute's text form *case-sensitively*:
  strings as they are, integers in decimal, booleans as ``True`` / ``False`` (as .NET
  prints them). The configured value is turned into text at parse time the same way, so
  ``value: 5`` equals an attribute ``"5"`` or ``5``, and ``value: true`` equals ``True``.
  An empty configured value is rejected (the clause could never be true).
* ``REGEX MATCH`` is an unanchored search (like .NET ``Regex.IsMatch``) with Python's
  :mod:`re` syntax; the pattern is compiled once, when the filter is parsed.
  ``NOT REGEX MATCH`` is its negation for non-null values.
* ``IS TRUE`` / ``IS FALSE`` are true only for a boolean: a Python ``bool`` or the strings
  ``"true"`` / ``"false"`` in any case (surrounding blanks ignored). Anything else,
  integers included, makes both false. They take no value.
* ``GREATER_THAN`` / ``GREATER_THAN_OR_EQUALS`` compare integers. The configured value must
  be an integer or a string of decimal digits (optionally signed). The attribute must be an
  integer or such a string (surrounding blanks ignored), otherwise the clause is false;
  booleans are not integers here.
* ``&`` is true when *all* bits of the configured mask are set in the attribute, ``!&``
  when *none* of them are. The mask must be a positive integer: a number, a decimal string
  or a hexadecimal string such as ``"0x2"``. The attribute value is read as for
  ``GREATER_THAN`` (decimal only).

Every mistake in a filter raises :class:`~genesys_prov.errors.MappingError` naming the
clause, e.g. ``mappings.yaml: user_scope[0][1]: unknown operator 'EQUAL' (did you mean
'EQUALS'?)``; group and clause indexes count from 0.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from genesys_prov.errors import MappingError

__all__ = ["OPERATORS", "Clause", "ScopeFilter", "parse_scope"]

EQUALS = "EQUALS"
NOT_EQUALS = "NOT EQUALS"
IS_TRUE = "IS TRUE"
IS_FALSE = "IS FALSE"
IS_NULL = "IS NULL"
IS_NOT_NULL = "IS NOT NULL"
REGEX_MATCH = "REGEX MATCH"
NOT_REGEX_MATCH = "NOT REGEX MATCH"
INCLUDES = "INCLUDES"
ENDS_WITH = "ENDS_WITH"
GREATER_THAN = "GREATER_THAN"
GREATER_THAN_OR_EQUALS = "GREATER_THAN_OR_EQUALS"
BITS_SET = "&"
BITS_NOT_SET = "!&"

#: The canonical operator names (Entra's spellings, upper-cased). Any spelling that equals
#: one of these ignoring case, with ``_`` and spaces interchangeable, is accepted.
OPERATORS: frozenset[str] = frozenset({
    EQUALS, NOT_EQUALS, IS_TRUE, IS_FALSE, IS_NULL, IS_NOT_NULL, REGEX_MATCH,
    NOT_REGEX_MATCH, INCLUDES, ENDS_WITH, GREATER_THAN, GREATER_THAN_OR_EQUALS,
    BITS_SET, BITS_NOT_SET,
})

_NO_VALUE = frozenset({IS_TRUE, IS_FALSE, IS_NULL, IS_NOT_NULL})
_TEXT = frozenset({EQUALS, NOT_EQUALS, REGEX_MATCH, NOT_REGEX_MATCH, INCLUDES, ENDS_WITH})
_BITS = frozenset({BITS_SET, BITS_NOT_SET})

_SEPARATORS = re.compile(r"[\s_]+")
_DECIMAL = re.compile(r"[+-]?[0-9]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_CLAUSE_KEYS = ("attribute", "operator", "value")
_MULTI = (list, tuple, set, frozenset, dict)


def _key(spelling: str) -> str:
    """The lookup form of an operator spelling: upper case, ``_``/blanks as one space."""
    return _SEPARATORS.sub(" ", spelling.strip().upper())


_BY_KEY: dict[str, str] = {_key(name): name for name in OPERATORS}
# Operators people reach for that Entra spells differently.
_HINTS: dict[str, str] = {
    "CONTAINS": f"did you mean {INCLUDES!r}?",
    "STARTS WITH": f"use {REGEX_MATCH!r} with a '^' anchor",
    "BEGINS WITH": f"use {REGEX_MATCH!r} with a '^' anchor",
}


def _normalise_operator(spelling: Any) -> str:
    """The canonical name of an operator spelling, or :class:`MappingError`."""
    if not isinstance(spelling, str):
        raise MappingError(f"operator must be a string, got {_kind(spelling)}")
    key = _key(spelling)
    canonical = _BY_KEY.get(key)
    if canonical is not None:
        return canonical
    hint = _HINTS.get(key)
    if hint is None:
        close = difflib.get_close_matches(key, list(_BY_KEY), n=1, cutoff=0.6)
        hint = (f"did you mean {_BY_KEY[close[0]]!r}?" if close
                else f"expected one of: {', '.join(sorted(OPERATORS))}")
    raise MappingError(f"unknown operator {spelling!r} ({hint})")


def _kind(value: Any) -> str:
    """A short description of a YAML value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _text(value: Any) -> str:
    """The text form of a scalar value, as Entra compares it (booleans as ``True``/``False``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _attribute_int(value: Any) -> int | None:
    """An attribute value read as an integer (decimal), or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        stripped = value.strip()
        if _DECIMAL.fullmatch(stripped):
            return int(stripped, 10)
    return None


def _configured_int(value: Any, operator: str) -> int:
    """The configured value of an integer operator, or :class:`MappingError`."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        stripped = value.strip()
        try:
            if _DECIMAL.fullmatch(stripped):
                number = int(stripped, 10)
            elif operator in _BITS and _HEX.fullmatch(stripped):
                number = int(stripped, 16)
        except ValueError:  # more digits than Python converts
            raise MappingError(f"{operator}: {stripped[:20]}… is too long a number") from None
    if operator in _BITS:
        if number is None or number <= 0:
            raise MappingError(
                f"{operator} needs a positive integer bit mask (e.g. 2 or \"0x2\"), "
                f"got {value!r}")
        return number
    if number is None:
        raise MappingError(f"{operator} needs an integer value, got {value!r}")
    return number


# The per-operator checks: the value they see is never null nor multi-valued.

def _check_equals(clause: Clause, value: Any) -> bool:
    return bool(_text(value) == clause.value)


def _check_not_equals(clause: Clause, value: Any) -> bool:
    return bool(_text(value) != clause.value)


def _check_is_true(clause: Clause, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


def _check_is_false(clause: Clause, value: Any) -> bool:
    if isinstance(value, bool):
        return not value
    return isinstance(value, str) and value.strip().lower() == "false"


def _check_is_null(clause: Clause, value: Any) -> bool:
    return False


def _check_is_not_null(clause: Clause, value: Any) -> bool:
    return True


def _check_regex(clause: Clause, value: Any) -> bool:
    assert clause._pattern is not None
    return clause._pattern.search(_text(value)) is not None


def _check_not_regex(clause: Clause, value: Any) -> bool:
    assert clause._pattern is not None
    return clause._pattern.search(_text(value)) is None


def _check_includes(clause: Clause, value: Any) -> bool:
    return clause.value in _text(value)


def _check_ends_with(clause: Clause, value: Any) -> bool:
    return _text(value).endswith(clause.value)


def _check_greater(clause: Clause, value: Any) -> bool:
    number = _attribute_int(value)
    return number is not None and number > clause.value


def _check_greater_or_equal(clause: Clause, value: Any) -> bool:
    number = _attribute_int(value)
    return number is not None and number >= clause.value


def _check_bits_set(clause: Clause, value: Any) -> bool:
    number = _attribute_int(value)
    return number is not None and number & clause.value == clause.value


def _check_bits_not_set(clause: Clause, value: Any) -> bool:
    number = _attribute_int(value)
    return number is not None and number & clause.value == 0


_CHECKS: dict[str, Callable[[Clause, Any], bool]] = {
    EQUALS: _check_equals,
    NOT_EQUALS: _check_not_equals,
    IS_TRUE: _check_is_true,
    IS_FALSE: _check_is_false,
    IS_NULL: _check_is_null,
    IS_NOT_NULL: _check_is_not_null,
    REGEX_MATCH: _check_regex,
    NOT_REGEX_MATCH: _check_not_regex,
    INCLUDES: _check_includes,
    ENDS_WITH: _check_ends_with,
    GREATER_THAN: _check_greater,
    GREATER_THAN_OR_EQUALS: _check_greater_or_equal,
    BITS_SET: _check_bits_set,
    BITS_NOT_SET: _check_bits_not_set,
}


@dataclass(frozen=True)
class Clause:
    """One scoping clause: ``attribute OPERATOR value``.

    Construction validates and normalises: ``operator`` becomes its canonical name (one of
    :data:`OPERATORS`); ``value`` becomes text for the text operators, an ``int`` for the
    integer and bit operators, and stays ``None`` for the ``IS ...`` operators. A regular
    expression is compiled here, once. Mistakes raise :class:`MappingError` (without the
    clause's location; :func:`parse_scope` adds it).
    """

    attribute: str
    operator: str
    value: Any = None
    _pattern: re.Pattern[str] | None = field(
        default=None, init=False, repr=False, compare=False)
    _check: Callable[[Clause, Any], bool] = field(
        default=_check_is_null, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.attribute, str) or not self.attribute.strip():
            raise MappingError(
                f"attribute must be a non-empty string, got {self.attribute!r}")
        operator = _normalise_operator(self.operator)
        value = self.value
        pattern: re.Pattern[str] | None = None
        if operator in _NO_VALUE:
            if value is not None:
                raise MappingError(f"{operator} takes no value, got {value!r}")
        elif value is None or value == "":
            raise MappingError(f"{operator} needs a value")
        elif operator in _TEXT:
            if not isinstance(value, str | int):  # bool is an int
                raise MappingError(
                    f"{operator} needs a string value, got {_kind(value)} "
                    f"({value!r}); quote it in YAML")
            value = _text(value)
            if operator in (REGEX_MATCH, NOT_REGEX_MATCH):
                try:
                    pattern = re.compile(value)
                except re.error as exc:
                    raise MappingError(
                        f"invalid regular expression {value!r}: {exc}") from None
        else:
            value = _configured_int(value, operator)
        object.__setattr__(self, "operator", operator)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_check", _CHECKS[operator])

    def test(self, lookup: Callable[[str], Any]) -> bool:
        """Whether the object whose attributes ``lookup`` reads satisfies this clause."""
        value = lookup(self.attribute)
        if value is None or (isinstance(value, str) and value == ""):
            return self.operator == IS_NULL
        if isinstance(value, _MULTI):
            return False
        return self._check(self, value)

    def describe(self) -> str:
        """The clause as text, e.g. ``department EQUALS "Sales"`` or ``uac & 2``."""
        if self.value is None:
            return f"{self.attribute} {self.operator}"
        if isinstance(self.value, str):
            return f"{self.attribute} {self.operator} {json.dumps(self.value, ensure_ascii=False)}"
        return f"{self.attribute} {self.operator} {self.value}"


@dataclass(frozen=True)
class ScopeFilter:
    """A scoping filter: ``groups`` are ORed, the clauses inside a group ANDed.

    A filter without groups matches everything (and is falsy)."""

    groups: tuple[tuple[Clause, ...], ...] = ()

    def matches(self, lookup: Callable[[str], Any]) -> bool:
        """Whether the object whose attributes ``lookup`` reads is in scope."""
        if not self.groups:
            return True
        return any(all(clause.test(lookup) for clause in group) for group in self.groups)

    def explain(self, lookup: Callable[[str], Any]) -> list[tuple[str, bool]]:
        """Every clause of every group with its result, e.g.
        ``("group 0: department EQUALS \\"Sales\\"", True)``; nothing is short-circuited.
        Groups count from 0, as in error messages."""
        return [
            (f"group {i}: {clause.describe()}", clause.test(lookup))
            for i, group in enumerate(self.groups)
            for clause in group
        ]

    def attributes(self) -> frozenset[str]:
        """The attribute names the filter reads (so the directory read can select them)."""
        return frozenset(clause.attribute for group in self.groups for clause in group)

    def __bool__(self) -> bool:
        """False when the filter has no groups (it then matches everything)."""
        return bool(self.groups)


def parse_scope(raw: Any, where: str) -> ScopeFilter:
    """Build a :class:`ScopeFilter` from the parsed YAML of ``user_scope``/``group_scope``.

    ``raw`` is a list of groups, each a list of clause mappings with ``attribute``,
    ``operator`` and (except for the ``IS ...`` operators) ``value``; ``None`` or an empty
    list gives the empty filter. ``where`` prefixes error messages, e.g.
    ``"mappings.yaml: user_scope"`` gives ``mappings.yaml: user_scope[0][1]: ...``.

    Example::

        >>> scope = parse_scope([[{"attribute": "department", "operator": "EQUALS",
        ...                         "value": "Sales"}]], "user_scope")
        >>> scope.matches({"department": "Sales"}.get)
        True
    """
    if raw is None:
        return ScopeFilter(())
    if not isinstance(raw, list):
        raise MappingError(
            f"{where}: expected a list of filter groups (each a list of clauses), "
            f"got {_kind(raw)}")
    groups: list[tuple[Clause, ...]] = []
    for g, raw_group in enumerate(raw):
        at_group = f"{where}[{g}]"
        if not isinstance(raw_group, list):
            hint = (" (a scope is a list of groups, each a list of clauses: "
                    "indent the clause under '- - ')" if isinstance(raw_group, Mapping) else "")
            raise MappingError(
                f"{at_group}: a filter group must be a list of clauses, "
                f"got {_kind(raw_group)}{hint}")
        if not raw_group:
            raise MappingError(f"{at_group}: a filter group needs at least one clause")
        groups.append(tuple(
            _parse_clause(raw_clause, f"{at_group}[{c}]")
            for c, raw_clause in enumerate(raw_group)
        ))
    return ScopeFilter(tuple(groups))


def _parse_clause(raw: Any, at: str) -> Clause:
    """One clause mapping to a :class:`Clause`; errors are prefixed with ``at``."""
    if not isinstance(raw, Mapping):
        raise MappingError(
            f"{at}: a clause must be a mapping with attribute, operator and value, "
            f"got {_kind(raw)}")
    for key in raw:
        if key not in _CLAUSE_KEYS:
            close = difflib.get_close_matches(str(key), _CLAUSE_KEYS, n=1)
            hint = (f"did you mean {close[0]!r}?" if close
                    else f"expected {', '.join(_CLAUSE_KEYS)}")
            raise MappingError(f"{at}: unknown key {key!r} ({hint})")
    for key in ("attribute", "operator"):
        if key not in raw:
            raise MappingError(f"{at}: missing {key!r}")
    try:
        return Clause(raw["attribute"], raw["operator"], raw.get("value"))
    except MappingError as exc:
        raise MappingError(f"{at}: {exc}") from None

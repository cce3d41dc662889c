"""The SCIM filter (RFC 7644 §3.4.2.2): its syntax tree, its parser (``eq``, ``ne``, ``co``,
``sw``, ``ew``, ``gt``, ``ge``, ``lt``, ``le``, ``pr``, ``and``, ``or``, ``not``, ``( )``,
``[ ]``; string values are JSON strings, so ``\\"`` and ``\\\\`` escapes decode exactly) and
its evaluation against the elements of a multi-valued attribute.

The parser is general; the emulator decides which of the parsed filters it supports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from genesys_prov.sandbox.scim.errors import ScimFault, bad_request


@dataclass(frozen=True)
class Compare:
    """``attrPath op value``."""

    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class Present:
    """``attrPath pr``."""

    path: str


@dataclass(frozen=True)
class Logical:
    """``left and right`` / ``left or right``."""

    op: str
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    """``not (inner)``."""

    inner: Filter


@dataclass(frozen=True)
class ValuePath:
    """``attrPath[inner]``."""

    path: str
    inner: Filter


Filter = Compare | Present | Logical | Not | ValuePath

_COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<punct>[()\[\]])
      | (?P<word>[^\s()\[\]"]+)
      | (?P<bad>")
    )""",
    re.VERBOSE,
)


def _invalid_filter(detail: str) -> ScimFault:
    """A 400 ``invalidFilter``."""
    return bad_request(detail, "invalidFilter")


def _tokenize(text: str) -> list[tuple[str, str]]:
    """Split a filter into (kind, text) tokens."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None or match.lastgroup == "bad":
            raise _invalid_filter(f"Unterminated string or bad character at position {pos}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _FilterParser:
    """Recursive-descent parser over the token list."""

    def __init__(self, text: str) -> None:
        """Tokenize ``text``."""
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def _peek(self) -> tuple[str, str] | None:
        """The next token, or None at the end."""
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> tuple[str, str]:
        """Consume and return the next token."""
        token = self._peek()
        if token is None:
            raise _invalid_filter(f"Unexpected end of filter: {self.text!r}")
        self.pos += 1
        return token

    def _keyword(self, word: str) -> bool:
        """Consume the keyword ``word`` (any case) if it comes next."""
        token = self._peek()
        if token is not None and token[0] == "word" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def _expect(self, punct: str) -> None:
        """Consume the punctuation ``punct`` or fail."""
        kind, value = self._next()
        if kind != "punct" or value != punct:
            raise _invalid_filter(f"Expected {punct!r} but found {value!r} in {self.text!r}")

    def parse(self) -> Filter:
        """The whole filter."""
        if not self.tokens:
            raise _invalid_filter("Empty filter")
        result = self._or()
        extra = self._peek()
        if extra is not None:
            raise _invalid_filter(f"Unexpected {extra[1]!r} in filter {self.text!r}")
        return result

    def _or(self) -> Filter:
        """``and``-terms joined by ``or``."""
        left = self._and()
        while self._keyword("or"):
            left = Logical("or", left, self._and())
        return left

    def _and(self) -> Filter:
        """Unary terms joined by ``and``."""
        left = self._unary()
        while self._keyword("and"):
            left = Logical("and", left, self._unary())
        return left

    def _unary(self) -> Filter:
        """``not (...)``, a parenthesised filter, or an attribute expression."""
        if self._keyword("not"):
            self._expect("(")
            inner = self._or()
            self._expect(")")
            return Not(inner)
        token = self._peek()
        if token == ("punct", "("):
            self.pos += 1
            inner = self._or()
            self._expect(")")
            return inner
        return self._attr_expression()

    def _attr_expression(self) -> Filter:
        """``attr op value``, ``attr pr`` or ``attr[filter]``."""
        kind, path = self._next()
        if kind != "word":
            raise _invalid_filter(f"Expected an attribute path but found {path!r}")
        token = self._peek()
        if token == ("punct", "["):
            self.pos += 1
            inner = self._or()
            self._expect("]")
            return ValuePath(path, inner)
        kind, op = self._next()
        op = op.lower()
        if kind != "word" or (op != "pr" and op not in _COMPARE_OPS):
            raise _invalid_filter(f"Unknown operator {op!r} in filter {self.text!r}")
        if op == "pr":
            return Present(path)
        return Compare(path, op, self._value())

    def _value(self) -> Any:
        """A comparison value: JSON string, true, false, null or a number."""
        kind, raw = self._next()
        if kind == "str":
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise _invalid_filter(f"Invalid string literal {raw}: {exc}") from exc
        if kind == "word":
            lowered = raw.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            if lowered == "null":
                return None
            try:
                return json.loads(raw)
            except ValueError:
                pass
        raise _invalid_filter(f"Invalid comparison value {raw!r}; strings must be quoted")


def parse_filter(text: str) -> Filter:
    """Parse a SCIM filter; raises :class:`ScimFault` (400 ``invalidFilter``)."""
    return _FilterParser(text).parse()


def _lookup(item: dict[str, Any], name: str) -> Any:
    """``item[name]`` with a case-insensitive name, or None."""
    if name in item:
        return item[name]
    lowered = name.lower()
    for key, value in item.items():
        if key.lower() == lowered:
            return value
    return None


def _compare(actual: Any, op: str, expected: Any) -> bool:
    """Evaluate ``actual op expected`` (strings case-insensitively)."""
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if actual is None or expected is None:
        return False
    if isinstance(actual, str) and isinstance(expected, str):
        if op == "co":
            return expected in actual
        if op == "sw":
            return actual.startswith(expected)
        if op == "ew":
            return actual.endswith(expected)
    if op in ("co", "sw", "ew"):
        return False
    try:
        if op == "gt":
            return bool(actual > expected)
        if op == "ge":
            return bool(actual >= expected)
        if op == "lt":
            return bool(actual < expected)
        return bool(actual <= expected)
    except TypeError:
        return False


def matches(node: Filter, item: dict[str, Any]) -> bool:
    """Whether a multi-valued attribute's element ``item`` satisfies a value filter.

    Attribute names are sub-attribute names; strings compare case-insensitively.
    """
    if isinstance(node, Compare):
        return _compare(_lookup(item, node.path), node.op, node.value)
    if isinstance(node, Present):
        value = _lookup(item, node.path)
        return value not in (None, "", [], {})
    if isinstance(node, Logical):
        if node.op == "and":
            return matches(node.left, item) and matches(node.right, item)
        return matches(node.left, item) or matches(node.right, item)
    if isinstance(node, Not):
        return not matches(node.inner, item)
    return False


def equalities(node: Filter) -> dict[str, Any] | None:
    """The ``{subAttr: value}`` a filter made only of ``eq`` joined by ``and`` pins, else None.

    Used to create the element a ``replace`` with a value filter targets when none exists.
    """
    if isinstance(node, Compare) and node.op == "eq":
        return {node.path: node.value}
    if isinstance(node, Logical) and node.op == "and":
        left, right = equalities(node.left), equalities(node.right)
        if left is None or right is None:
            return None
        return {**left, **right}
    return None

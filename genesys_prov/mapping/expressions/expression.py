"""The public face of the language: :func:`parse` and the :class:`Expression` it returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genesys_prov.errors import EvaluationError, ExpressionError
from genesys_prov.mapping.expressions.base import MAX_LENGTH, Lookup, _Eval
from genesys_prov.mapping.expressions.compiler import _compile
from genesys_prov.mapping.expressions.parser import _Parser
from genesys_prov.mapping.expressions.syntax import _Call
from genesys_prov.mapping.expressions.values import _is_empty, _show


class Expression:
    """A parsed attribute-mapping expression; evaluate it once per source object.

    ``text`` is the original text, ``redacted`` is True when ``Redact(...)`` appears anywhere
    (callers then show ``[Redact]`` instead of the value, and evaluation errors hide details).
    """

    __slots__ = ("_attributes", "_candidates", "_functions", "_root", "redacted", "text")

    text: str
    redacted: bool

    def __init__(
        self, text: str, root: _Eval, attributes: frozenset[str], redacted: bool,
        candidates: tuple[_Eval, ...] | None = None,
        functions: frozenset[str] = frozenset(),
    ) -> None:
        self.text = text
        self.redacted = redacted
        self._root = root
        self._attributes = attributes
        self._candidates = candidates
        self._functions = functions

    def attributes(self) -> frozenset[str]:
        """Every ``[attributeName]`` the expression references, spelled as written."""
        return self._attributes

    def functions(self) -> frozenset[str]:
        """Every function the expression calls, by name."""
        return self._functions

    @property
    def uses_default_domain(self) -> bool:
        """True when ``DefaultDomain()`` appears: the caller must put the tenant's default
        domain in the lookup (under :data:`~genesys_prov.mapping.expressions.DEFAULT_DOMAIN`)."""
        return "DefaultDomain" in self._functions

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
        list of those), and :data:`~genesys_prov.mapping.expressions.DEFAULT_DOMAIN` the
        tenant's default domain when :attr:`uses_default_domain`. Returns None, str, int,
        bool, a list (of those, or of AppRoleAssignmentsComplex's role objects) or
        :data:`IGNORE`. ``is_taken``
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
        text, _compile(node), frozenset(parser.attributes), parser.redacted, candidates,
        frozenset(parser.functions),
    )

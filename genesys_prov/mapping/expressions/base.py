"""Shared constants and types of the expression language: the length and nesting limits, the
:data:`IGNORE` marker, the ``Lookup`` / ``_Eval`` callable types and the run-time errors a
function body may raise."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, TypeAlias

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

DEFAULT_DOMAIN: Final = "DefaultDomain"
"""The lookup name ``DefaultDomain()`` asks for: the tenant's default verified domain. It is
not a source attribute; whoever evaluates fills it from the tenant (the caller of
:meth:`~genesys_prov.mapping.expressions.Expression.evaluate`, never a global)."""

Lookup: TypeAlias = Callable[[str], Any]
_Eval: TypeAlias = Callable[[Lookup], Any]

# Errors a function body may raise on odd data; they become EvaluationError.
_RUNTIME_ERRORS: Final = (ValueError, ArithmeticError, re.error, IndexError)

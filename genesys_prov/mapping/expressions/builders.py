"""Evaluation closures: constants, attribute reads, eager function calls, the functions
that evaluate their arguments lazily (Coalesce, IIF, Switch, SelectUniqueValue) and the one
that reads the evaluation context (DefaultDomain)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genesys_prov.errors import EvaluationError
from genesys_prov.mapping.expressions.base import _RUNTIME_ERRORS, DEFAULT_DOMAIN, Lookup, _Eval
from genesys_prov.mapping.expressions.syntax import _Call, _Literal
from genesys_prov.mapping.expressions.values import _bool, _is_empty, _show, _text


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


def _build_default_domain(node: _Call, args: list[_Eval]) -> _Eval:
    """``DefaultDomain()``: the tenant's default verified domain, asked of the lookup under
    :data:`DEFAULT_DOMAIN` (the caller fills it from the tenant). Like Entra, no known
    default domain is an error, not a null."""

    def default_domain(lookup: Lookup) -> str:
        value = lookup(DEFAULT_DOMAIN)
        if isinstance(value, str) and value:
            return value
        if value is None or value == "":
            raise EvaluationError(
                "DefaultDomain: the tenant's default verified domain is not known "
                "(it is read from Microsoft Graph's /organization when a run's mappings use "
                f"it; `mapping test` takes it as --attr {DEFAULT_DOMAIN}=DOMAIN)"
            )
        raise EvaluationError(f"DefaultDomain: expected a domain name, got {_show(value)}")

    return default_domain

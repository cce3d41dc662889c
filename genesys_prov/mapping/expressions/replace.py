"""The Replace function: its five modes (plain text, template, regex, regex group,
replacement attribute), each prepared once at parse time."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from genesys_prov.errors import EvaluationError
from genesys_prov.mapping.expressions.base import Lookup, _Eval
from genesys_prov.mapping.expressions.dotnet_regex import (
    _dynamic_regex,
    _group_ref,
    _regex,
    _substitution,
)
from genesys_prov.mapping.expressions.syntax import _Call, _Empty, _Literal, _literal_text
from genesys_prov.mapping.expressions.values import _is_empty, _req_text, _show, _text


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
    regex = _replace_regex(static, pattern)
    group_ref = _replace_group_ref(group)
    if given[1] and given[6]:
        return _replace_by_template(source, old, template)
    if given[1]:
        return _replace_by_value(source, old, replacement)
    if given[5]:
        return _replace_from_attribute(source, regex, group_ref, other)
    if given[3]:
        return _replace_in_group(source, regex, group_ref, replacement)
    replacement_text = _literal_text(node.args[4])
    if static is not None and replacement_text is not None:
        return _replace_by_fixed_regex(source, static, replacement_text)
    return _replace_by_regex(source, regex, replacement)


def _replace_regex(
    static: re.Pattern[str] | None, pattern: _Eval
) -> Callable[[Lookup], re.Pattern[str]]:
    """Replace's regex: the literal one compiled at parse time, else compiled per lookup."""

    def regex(lookup: Lookup) -> re.Pattern[str]:
        if static is not None:
            return static
        text = _req_text(pattern(lookup), "Replace", "regexPattern")
        return _dynamic_regex(text)

    return regex


def _replace_group_ref(group: _Eval) -> Callable[[Lookup, re.Pattern[str]], int | str]:
    """Replace's ``regexGroupName`` resolved against a regex (an error if it has none)."""

    def group_ref(lookup: Lookup, rx: re.Pattern[str]) -> int | str:
        name = _req_text(group(lookup), "Replace", "regexGroupName")
        try:
            return _group_ref(rx, name)
        except LookupError:
            raise EvaluationError(
                f"Replace: the regex has no group named {_show(name)}"
            ) from None

    return group_ref


def _replace_by_template(source: _Eval, old: _Eval, template: _Eval) -> _Eval:
    """Replace with ``oldValue`` + ``template``: every ``oldValue`` in template becomes source."""

    def by_template(lookup: Lookup) -> Any:
        text = _text(source(lookup), "Replace", "source")
        old_value = _req_text(old(lookup), "Replace", "oldValue")
        shape = _text(template(lookup), "Replace", "template")
        if text is None or shape is None:
            return None
        return shape.replace(old_value, text) if old_value else shape

    return by_template


def _replace_by_value(source: _Eval, old: _Eval, replacement: _Eval) -> _Eval:
    """Replace with ``oldValue`` + ``replacementValue``: plain text replacement in source."""

    def by_value(lookup: Lookup) -> Any:
        text = _text(source(lookup), "Replace", "source")
        old_value = _req_text(old(lookup), "Replace", "oldValue")
        new_value = _text(replacement(lookup), "Replace", "replacementValue") or ""
        if text is None:
            return None
        return text.replace(old_value, new_value) if old_value else text

    return by_value


def _replace_from_attribute(
    source: _Eval,
    regex: Callable[[Lookup], re.Pattern[str]],
    group_ref: Callable[[Lookup, re.Pattern[str]], int | str],
    other: _Eval,
) -> _Eval:
    """Replace with ``replacementAttributeName``: source, else a group of the other attribute."""

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


def _replace_in_group(
    source: _Eval,
    regex: Callable[[Lookup], re.Pattern[str]],
    group_ref: Callable[[Lookup, re.Pattern[str]], int | str],
    replacement: _Eval,
) -> _Eval:
    """Replace with ``regexGroupName`` + ``replacementValue``: only that group, every match."""

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


def _replace_by_fixed_regex(
    source: _Eval, fixed: re.Pattern[str], replacement_text: str
) -> _Eval:
    """Replace with a literal regex and a literal replacement, prepared once."""
    # Without "$" the replacement is a constant, escaped for Python's template syntax
    # (where backslashes are special).
    substitute: str | Callable[[re.Match[str]], str] = (
        _substitution(fixed, replacement_text)
        if "$" in replacement_text
        else replacement_text.replace("\\", "\\\\")
    )

    def by_fixed_regex(lookup: Lookup) -> Any:
        text = _text(source(lookup), "Replace", "source")
        return None if text is None else fixed.sub(substitute, text)

    return by_fixed_regex


def _replace_by_regex(
    source: _Eval, regex: Callable[[Lookup], re.Pattern[str]], replacement: _Eval
) -> _Eval:
    """Replace with ``regexPattern`` + ``replacementValue``: a regex replace per lookup."""

    def by_regex(lookup: Lookup) -> Any:
        text = _text(source(lookup), "Replace", "source")
        rx = regex(lookup)
        new_value = _text(replacement(lookup), "Replace", "replacementValue") or ""
        if text is None:
            return None
        return rx.sub(_substitution(rx, new_value), text)

    return by_regex

"""Parse-time checks of function arguments (Replace modes, literal regexes and group names,
date intervals and formats, Switch pairs, RandomString length)."""

from __future__ import annotations

import re

from genesys_prov.errors import ExpressionError
from genesys_prov.mapping.expressions.dates import _INTERVAL_NAMES, _format_tokens, _styles
from genesys_prov.mapping.expressions.dotnet_regex import _group_ref, _regex
from genesys_prov.mapping.expressions.syntax import _Call, _Empty, _Literal, _literal_text


def _check_replace(node: _Call, text: str) -> None:
    given = [not isinstance(arg, _Empty) for arg in node.args]
    _, old, pattern, group, replacement, other, template = given
    if old and pattern:
        raise ExpressionError(
            "Replace takes either oldValue or regexPattern, not both", text, node.args[2].pos
        )
    if old:
        if replacement and template:
            raise ExpressionError(
                "Replace with oldValue takes either replacementValue or template, not both",
                text, node.args[6].pos,
            )
        if not (replacement or template):
            raise ExpressionError(
                "Replace with oldValue needs a replacementValue or a template", text, node.pos
            )
    elif pattern:
        if other and not group:
            raise ExpressionError(
                "Replace with replacementAttributeName needs a regexGroupName", text, node.pos
            )
        if not (replacement or other):
            raise ExpressionError(
                "Replace with regexPattern needs a replacementValue or a "
                "replacementAttributeName", text, node.pos,
            )
    else:
        raise ExpressionError("Replace needs an oldValue or a regexPattern", text, node.pos)
    literal = _literal_text(node.args[2])
    if literal is None:
        return
    try:
        compiled = _regex(literal)
    except re.error as exc:
        raise ExpressionError(
            f"invalid regular expression in Replace: {exc.msg}", text, node.args[2].pos
        ) from None
    group_name = _literal_text(node.args[3])
    if group_name is not None:
        try:
            _group_ref(compiled, group_name)
        except LookupError:
            raise ExpressionError(
                f"the regular expression has no group named {group_name!r}",
                text, node.args[3].pos,
            ) from None


def _check_interval(node: _Call, text: str) -> None:
    interval = _literal_text(node.args[0])
    if interval is not None and interval not in _INTERVAL_NAMES:
        raise ExpressionError(
            f"unknown {node.name} interval {interval!r}; expected one of "
            + ", ".join(_INTERVAL_NAMES),
            text, node.args[0].pos,
        )


def _check_formatdatetime(node: _Call, text: str) -> None:
    if len(node.args) == 3:
        formats = [node.args[1], node.args[2]]
    else:
        formats = [node.args[2], node.args[3]]
        styles = _literal_text(node.args[1])
        if styles is not None:
            try:
                _styles(styles)
            except ValueError as exc:
                raise ExpressionError(str(exc), text, node.args[1].pos) from None
    for arg in formats:
        fmt = _literal_text(arg)
        if fmt is not None:
            try:
                _format_tokens(fmt)
            except ValueError as exc:
                raise ExpressionError(
                    f"invalid date-time format: {exc}", text, arg.pos
                ) from None


def _check_switch(node: _Call, text: str) -> None:
    if len(node.args) % 2:
        raise ExpressionError(
            "Switch expects source, defaultValue and key/value pairs (an even number of "
            f"arguments), got {len(node.args)}", text, node.pos,
        )


def _check_randomstring(node: _Call, text: str) -> None:
    length = node.args[0]
    if isinstance(length, _Literal) and isinstance(length.value, int) and not (
        1 <= length.value <= 256
    ):
        raise ExpressionError(
            f"RandomString length must be 1 to 256, got {length.value}", text, length.pos
        )

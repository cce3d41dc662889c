"""The compiler: turns a syntax tree into nested closures ``evaluate(lookup) -> value``."""

from __future__ import annotations

from genesys_prov.mapping.expressions.base import Lookup, _Eval
from genesys_prov.mapping.expressions.builders import _attr, _const, _eager
from genesys_prov.mapping.expressions.catalog import _FUNCTIONS
from genesys_prov.mapping.expressions.compare import _compare
from genesys_prov.mapping.expressions.syntax import (
    _Attr,
    _Compare,
    _Empty,
    _Literal,
    _Node,
    _VbConst,
)


def _compile(node: _Node) -> _Eval:
    """Turn a syntax node into a closure ``evaluate(lookup) -> value``."""
    if isinstance(node, _Attr):
        return _attr(node.name)
    if isinstance(node, _Literal):
        return _const(node.value)
    if isinstance(node, _Empty):
        return _const(None)
    if isinstance(node, _VbConst):
        return _const(node.name)
    if isinstance(node, _Compare):
        left, right, op = _compile(node.left), _compile(node.right), node.op

        def compare(lookup: Lookup) -> bool:
            return _compare(op, left(lookup), right(lookup))

        return compare
    spec = _FUNCTIONS[node.name]
    args = [_compile(arg) for arg in node.args]
    if spec.build is not None:
        return spec.build(node, args)
    assert spec.impl is not None
    return _eager(node.name, spec.impl, args)

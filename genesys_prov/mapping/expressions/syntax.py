"""The syntax tree: the node types the parser produces, the description of a supported
function (arity, implementation, parse-time check) and reading a string literal node."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from genesys_prov.mapping.expressions.base import _Eval


@dataclass(frozen=True, slots=True)
class _Literal:
    value: str | int
    pos: int


@dataclass(frozen=True, slots=True)
class _Attr:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class _Empty:
    pos: int


@dataclass(frozen=True, slots=True)
class _VbConst:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class _Compare:
    op: str
    left: _Node
    right: _Node
    pos: int


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    args: tuple[_Node, ...]
    pos: int


_Node: TypeAlias = "_Literal | _Attr | _Empty | _VbConst | _Compare | _Call"
_Check: TypeAlias = Callable[[_Call, str], None]
_Builder: TypeAlias = Callable[[_Call, list[_Eval]], _Eval]


@dataclass(frozen=True, slots=True)
class _Function:
    """One supported function: arity, implementation and optional parse-time check."""

    min_args: int
    max_args: int | None
    impl: Callable[..., Any] | None = None
    build: _Builder | None = None
    check: _Check | None = None


def _literal_text(node: _Node) -> str | None:
    """The text of a string literal argument, else None."""
    if isinstance(node, _Literal) and isinstance(node.value, str):
        return node.value
    return None

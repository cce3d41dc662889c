"""The parser: recursive descent from lexer tokens to a syntax tree, with the argument
counts, comparison slots, nesting limit and parse-time checks enforced as it goes."""

from __future__ import annotations

import difflib
from typing import Final

from genesys_prov.errors import ExpressionError
from genesys_prov.mapping.expressions.base import _MAX_DEPTH
from genesys_prov.mapping.expressions.catalog import (
    _COMPARISON_SLOTS,
    _FUNCTIONS,
    _VB_CONSTANTS,
    _VB_SLOT,
    UNDOCUMENTED,
)
from genesys_prov.mapping.expressions.lexer import _Lexer, _Token
from genesys_prov.mapping.expressions.syntax import (
    _Attr,
    _Call,
    _Compare,
    _Empty,
    _Function,
    _Literal,
    _Node,
    _VbConst,
)

_DESCRIBE: Final = {
    "(": "'('",
    ")": "')'",
    ",": "','",
    "eof": "the end of the expression",
}


def _describe(token: _Token) -> str:
    if token.kind in _DESCRIBE:
        return _DESCRIBE[token.kind]
    if token.kind == "attr":
        return f"attribute [{token.value}]"
    if token.kind == "string":
        return "a string constant"
    if token.kind == "int":
        return f"number {token.value}"
    if token.kind == "op":
        return f"'{token.value}'"
    return f"{token.value!r}"


def _arity(spec: _Function) -> str:
    low, high = spec.min_args, spec.max_args
    noun = "argument" if (high or low) == 1 else "arguments"
    if high == low:
        return f"{low} {noun}"
    if high is None:
        return f"at least {low} {noun}"
    return f"{low} to {high} {noun}"


class _Parser:
    """Recursive descent over :class:`_Lexer` tokens with one token of look-ahead."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lexer = _Lexer(text)
        self.token = self.lexer.next()
        self.attributes: set[str] = set()
        self.functions: set[str] = set()
        self.redacted = False

    def error(self, message: str, pos: int) -> ExpressionError:
        """An ExpressionError at ``pos`` of the text."""
        return ExpressionError(message, self.text, pos)

    def advance(self) -> _Token:
        """Consume the current token and return it."""
        token = self.token
        self.token = self.lexer.next()
        return token

    def parse(self) -> _Node:
        """Parse the whole expression: one operand, then the end of the text."""
        if self.token.kind == "eof":
            raise self.error("the expression is empty", 0)
        node = self.operand(depth=0, slot=None)
        if self.token.kind == ")":
            raise self.error("unbalanced parenthesis: unexpected ')'", self.token.pos)
        if self.token.kind == "op":
            raise self.error(
                f"unexpected '{self.token.value}': comparisons are only allowed as the "
                "condition of IIF or the argument of CBool", self.token.pos,
            )
        if self.token.kind != "eof":
            raise self.error(
                f"unexpected {_describe(self.token)} after the end of the expression",
                self.token.pos,
            )
        return node

    def operand(self, depth: int, slot: tuple[str, int] | None) -> _Node:
        """A function call, attribute, literal or (in InStr's compareType slot) a vb constant."""
        token = self.token
        if token.kind == "name":
            self.advance()
            if self.token.kind == "(":
                return self.call(token, depth)
            name = token.value
            if name in _VB_CONSTANTS:
                if slot != _VB_SLOT:
                    raise self.error(
                        f"{name} is only allowed as the compareType argument of InStr", token.pos
                    )
                return _VbConst(name, token.pos)
            if name in _FUNCTIONS:
                raise self.error(f"expected '(' after {name}", self.token.pos)
            if name in ("True", "False"):
                hint = " (string constants need double quotes)"
            else:
                close = difflib.get_close_matches(name, _VB_CONSTANTS, n=1, cutoff=0.8)
                hint = f" (did you mean {close[0]}?)" if close else ""
            raise self.error(f"unknown name {name!r}{hint}", token.pos)
        if token.kind == "attr":
            self.advance()
            self.attributes.add(token.value)
            return _Attr(token.value, token.pos)
        if token.kind in ("string", "int"):
            self.advance()
            return _Literal(token.value, token.pos)
        if token.kind == ")":
            raise self.error("unbalanced parenthesis: unexpected ')'", token.pos)
        raise self.error(f"unexpected {_describe(token)}", token.pos)

    def call(self, name_token: _Token, depth: int) -> _Call:
        """A function call whose name was just read; checks arity and runs its parse-time check."""
        name = name_token.value
        spec = _FUNCTIONS.get(name)
        if spec is None and name in UNDOCUMENTED:
            raise self.error(f"function {name!r} is not supported: {UNDOCUMENTED[name]}",
                             name_token.pos)
        if spec is None:
            close = difflib.get_close_matches(name, _FUNCTIONS, n=1, cutoff=0.6)
            folded = {key.lower(): key for key in _FUNCTIONS}.get(name.lower())
            suggestion = folded or (close[0] if close else None)
            hint = f" (did you mean {suggestion}?)" if suggestion else ""
            raise self.error(f"unknown function {name!r}{hint}", name_token.pos)
        if depth >= _MAX_DEPTH:
            raise self.error(f"functions are nested more than {_MAX_DEPTH} deep", name_token.pos)
        if name == "SelectUniqueValue" and depth > 0:
            raise self.error(
                "SelectUniqueValue must be the outermost function of the expression",
                name_token.pos,
            )
        self.functions.add(name)
        if name == "Redact":
            self.redacted = True
        open_paren = self.advance()
        args: list[_Node] = []
        if self.token.kind == ")":
            self.advance()
        else:
            while True:
                args.append(self.argument(name, len(args), depth, open_paren.pos))
                token = self.token
                if token.kind == ",":
                    self.advance()
                    continue
                if token.kind == ")":
                    self.advance()
                    break
                if token.kind == "eof":
                    raise self.error(
                        "unbalanced parenthesis: this '(' is never closed", open_paren.pos
                    )
                raise self.error(
                    f"expected ',' or ')' but found {_describe(token)}", token.pos
                )
        count = len(args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            raise self.error(f"{name} expects {_arity(spec)}, got {count}", name_token.pos)
        node = _Call(name, tuple(args), name_token.pos)
        if spec.check is not None:
            spec.check(node, self.text)
        return node

    def argument(self, name: str, index: int, depth: int, open_pos: int) -> _Node:
        """One argument of ``name``: empty, an operand, or a comparison where one is allowed."""
        token = self.token
        if token.kind in (",", ")"):
            return _Empty(token.pos)
        if token.kind == "eof":
            raise self.error("unbalanced parenthesis: this '(' is never closed", open_pos)
        slot = (name, index)
        left = self.operand(depth + 1, slot)
        if self.token.kind != "op":
            return left
        op_token = self.advance()
        if slot not in _COMPARISON_SLOTS:
            raise self.error(
                f"unexpected '{op_token.value}': comparisons are only allowed as the "
                "condition of IIF or the argument of CBool", op_token.pos,
            )
        if self.token.kind in (",", ")", "eof", "op"):
            raise self.error(
                f"expected a value after '{op_token.value}' but found {_describe(self.token)}",
                self.token.pos,
            )
        right = self.operand(depth + 1, None)
        if self.token.kind == "op":
            raise self.error(
                f"unexpected '{self.token.value}': only one comparison is allowed here",
                self.token.pos,
            )
        return _Compare(op_token.value, left, right, op_token.pos)

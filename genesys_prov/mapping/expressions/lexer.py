"""The lexer: turns expression text into tokens on demand (names, ``[attributes]``, strings,
integers, ``&H`` hex numbers, punctuation and comparison operators)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Final

from genesys_prov.errors import ExpressionError
from genesys_prov.mapping.expressions.base import _MAX_HEX_DIGITS, _MAX_INT_DIGITS


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # name attr string int ( ) , op eof
    value: Any
    pos: int


_NAME_START: Final = frozenset(string.ascii_letters + "_")
_NAME_CHARS: Final = frozenset(string.ascii_letters + string.digits + "_")
_ATTR_CHARS: Final = frozenset(string.ascii_letters + string.digits + "_.-")
_HEX_DIGITS: Final = frozenset(string.hexdigits)
_WRONG_QUOTES: Final = {
    "'": "string constants use double quotes",
    "“": "use straight double quotes (\")",
    "”": "use straight double quotes (\")",
    "‘": "string constants use straight double quotes (\")",
    "’": "string constants use straight double quotes (\")",
}


class _Lexer:
    """Produces tokens on demand, so the first error in reading order is reported."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str, pos: int) -> ExpressionError:
        """An ExpressionError at ``pos`` of the text."""
        return ExpressionError(message, self.text, pos)

    def next(self) -> _Token:
        """Read the next token (``eof`` at the end); raises ExpressionError on bad input."""
        text, n = self.text, len(self.text)
        i = self.pos
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            self.pos = i
            return _Token("eof", None, i)
        ch = text[i]
        start = i
        if ch in "(),":
            self.pos = i + 1
            return _Token(ch, ch, start)
        if ch == "[":
            return self._attribute(start)
        if ch == '"':
            return self._string(start)
        if (ch.isdigit() and ch.isascii()) or (
            ch == "-" and i + 1 < n and text[i + 1].isascii() and text[i + 1].isdigit()
        ):
            i += 1
            while i < n and text[i].isascii() and text[i].isdigit():
                i += 1
            if i - start > _MAX_INT_DIGITS:
                raise self.error("integer literal too large (at most 64 bits)", start)
            self.pos = i
            return _Token("int", int(text[start:i]), start)
        if ch == "&":
            if i + 1 < n and text[i + 1] in "Hh":
                i += 2
                while i < n and text[i] in _HEX_DIGITS:
                    i += 1
                if i - start - 2 > _MAX_HEX_DIGITS:
                    raise self.error("hex literal too large (at most 64 bits)", start)
                if i > start + 2:
                    self.pos = i
                    return _Token("int", int(text[start + 2 : i], 16), start)
            raise self.error("invalid hex number (expected &H followed by hex digits)", start)
        if ch in _NAME_START:
            while i < n and text[i] in _NAME_CHARS:
                i += 1
            self.pos = i
            return _Token("name", text[start:i], start)
        if ch == "=":
            self.pos = i + 1
            return _Token("op", "=", start)
        if ch in "<>":
            two = text[i : i + 2]
            op = two if two in ("<=", "<>", ">=") else ch
            self.pos = i + len(op)
            return _Token("op", op, start)
        if ch == "!" and text[i + 1 : i + 2] == "=":
            raise self.error("unexpected '!=' (use <> for not equal)", start)
        if ch in _WRONG_QUOTES:
            raise self.error(f"unexpected character {ch!r} ({_WRONG_QUOTES[ch]})", start)
        raise self.error(f"unexpected character {ch!r}", start)

    def _attribute(self, start: int) -> _Token:
        text, n = self.text, len(self.text)
        i = start + 1
        while i < n and text[i] != "]":
            if text[i] not in _ATTR_CHARS:
                if text[i] in "\n,()":
                    break
                raise self.error(
                    f"invalid character {text[i]!r} in attribute name "
                    "(letters, digits, '_', '.' and '-' are allowed)", i,
                )
            i += 1
        if i >= n or text[i] != "]":
            raise self.error("unterminated attribute name: missing ']'", start)
        if i == start + 1:
            raise self.error("empty attribute name", start)
        self.pos = i + 1
        return _Token("attr", text[start + 1 : i], start)

    def _string(self, start: int) -> _Token:
        text, n = self.text, len(self.text)
        out: list[str] = []
        i = start + 1
        while i < n:
            ch = text[i]
            if ch == '"':
                self.pos = i + 1
                return _Token("string", "".join(out), start)
            if ch == "\\" and i + 1 < n:
                nxt = text[i + 1]
                if nxt in '"\\':
                    out.append(nxt)
                else:
                    out.append("\\" + nxt)
                i += 2
                continue
            out.append(ch)
            i += 1
        raise self.error("unterminated string constant", start)

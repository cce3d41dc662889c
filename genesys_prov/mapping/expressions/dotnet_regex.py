""".NET regular expressions and replacement strings: translating .NET-only syntax to Python's,
compiling (cached) and expanding ``$1`` / ``${name}`` / ``$&`` style substitutions."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TypeAlias

from genesys_prov.errors import EvaluationError
from genesys_prov.mapping.expressions.values import _show


def _net_regex_to_python(pattern: str) -> str:
    """Translate the .NET-only regex syntax Entra users write into Python's.

    ``(?<name>...)`` and ``(?'name'...)`` become ``(?P<name>...)``, ``\\k<name>`` becomes
    ``(?P=name)``, ``\\z`` becomes ``\\Z`` and .NET's ``\\Z`` (end, or before a final newline)
    becomes ``(?=\\n?\\Z)``. Character classes and escapes are copied untouched.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if not in_class and nxt == "k" and i + 2 < n and pattern[i + 2] in "<'":
                close = ">" if pattern[i + 2] == "<" else "'"
                end = pattern.find(close, i + 3)
                if end != -1:
                    out.append(f"(?P={pattern[i + 3:end]})")
                    i = end + 1
                    continue
            if not in_class and nxt == "z":
                out.append("\\Z")
            elif not in_class and nxt == "Z":
                out.append("(?=\\n?\\Z)")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("]")
                i += 1
            continue
        if pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        if pattern.startswith("(?'", i):
            end = pattern.find("'", i + 3)
            if end != -1:
                out.append(f"(?P<{pattern[i + 3:end]}>")
                i = end + 1
                continue
        out.append(ch)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    """Compile a .NET-style pattern (cached); raises ``re.error`` for anything the regex
    engine refuses (including repeat counts that overflow and nesting too deep)."""
    try:
        return re.compile(_net_regex_to_python(pattern))
    except (OverflowError, RecursionError, ValueError) as exc:
        raise re.error(f"pattern is too large or too deeply nested ({type(exc).__name__})") \
            from None


def _dynamic_regex(pattern: str) -> re.Pattern[str]:
    """Compile a pattern that only became known at run time."""
    try:
        return _regex(pattern)
    except re.error as exc:
        raise EvaluationError(
            f"Replace: invalid regular expression {_show(pattern)}: {exc}"
        ) from exc


_Part: TypeAlias = "str | int | tuple[str, str]"


@functools.lru_cache(maxsize=512)
def _substitution(regex: re.Pattern[str], replacement: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` callback implementing .NET substitutions.

    ``$$`` → ``$``; ``$&`` / ``$0`` → the match; ``$n`` / ``${n}`` / ``${name}`` → a group
    (the longest digit prefix naming an existing group); ``$``` / ``$'`` → text before / after
    the match; ``$+`` → the last group; ``$_`` → the whole input. Anything else is literal.
    """
    parts: list[_Part] = []
    literal: list[str] = []
    i, n = 0, len(replacement)
    while i < n:
        ch = replacement[i]
        if ch != "$" or i + 1 >= n:
            literal.append(ch)
            i += 1
            continue
        nxt = replacement[i + 1]
        ref: _Part | None = None
        size = 2
        if nxt == "$":
            literal.append("$")
            i += 2
            continue
        if nxt == "&":
            ref = 0
        elif nxt in "`'+_":
            ref = ("special", nxt)
        elif nxt == "{":
            end = replacement.find("}", i + 2)
            name = replacement[i + 2 : end] if end != -1 else ""
            if name.isdecimal() and int(name) <= regex.groups:
                ref, size = int(name), end - i + 1
            elif name in regex.groupindex:
                ref, size = regex.groupindex[name], end - i + 1
        elif nxt.isdecimal():
            end = i + 1
            while end < n and replacement[end].isdecimal():
                end += 1
            for stop in range(end, i + 1, -1):
                number = int(replacement[i + 1 : stop])
                if number <= regex.groups:
                    ref, size = number, stop - i
                    break
        if ref is None:
            literal.append("$")
            i += 1
            continue
        if literal:
            parts.append("".join(literal))
            literal.clear()
        parts.append(ref)
        i += size
    if literal:
        parts.append("".join(literal))

    frozen = tuple(parts)

    def expand(match: re.Match[str]) -> str:
        out: list[str] = []
        for part in frozen:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, int):
                out.append(match.group(part) or "")
            else:
                kind = part[1]
                if kind == "`":
                    out.append(match.string[: match.start()])
                elif kind == "'":
                    out.append(match.string[match.end() :])
                elif kind == "_":
                    out.append(match.string)
                else:
                    out.append(match.group(match.lastindex) or "" if match.lastindex else "")
        return "".join(out)

    return expand


def _group_ref(regex: re.Pattern[str], group: str) -> int | str:
    """A group name or number that exists in ``regex``; raises ``LookupError`` otherwise."""
    if group in regex.groupindex:
        return group
    if group.isdecimal() and int(group) <= regex.groups:
        return int(group)
    raise LookupError(group)

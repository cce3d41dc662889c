"""A strict YAML loader for configuration and mappings files: safe types only, no
recursive aliases or alias bombs, bounded depth and size, no duplicate keys; every refusal is
one line naming the file, line and column."""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from genesys_prov.errors import ConfigError

MAX_DEPTH = 50
"""Deepest nesting of lists and mappings a configuration or mappings file may have (aliases
expanded); far more than any real file needs, far less than Python's recursion limit."""
MAX_VALUES = 100_000
"""Most values a file may hold once aliases are expanded (a guard against alias bombs)."""

_BREAKS = "\n\r\x85\u2028\u2029"


class _Refused(Exception):
    """Something in a YAML document the loader refuses (internal: becomes a ConfigError)."""

    def __init__(self, keypath: str, problem: str, mark: Any, advice: str = "") -> None:
        super().__init__(problem)
        self.keypath = keypath
        self.problem = problem
        self.mark = mark
        self.advice = advice


def _segment(index: Any) -> str:
    """One step of a key path as the composer sees it (a key node, a list index, None while
    a key itself is being read)."""
    if isinstance(index, int):
        return f"[{index}]"
    if isinstance(index, ScalarNode):
        text = show_variables(str(index.value))
        return f".{(text if text.isprintable() else repr(text))[:60]}"
    return ".(a key)" if index is None else ".(a complex key)"


def _scalar_identity(node: ScalarNode) -> tuple[str, str]:
    """What makes two scalar keys the same key (``null``/``~``, ``true``/``True``)."""
    value = str(node.value)
    if node.tag.endswith(":null"):
        return node.tag, ""
    if node.tag.endswith(":bool"):
        return node.tag, str(value.lower() in ("yes", "true", "on"))
    return node.tag, value


class _StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load``, refusing what the tool cannot use: aliases that refer to the value
    that contains them (a recursive structure), nesting deeper than :data:`MAX_DEPTH`, more
    than :data:`MAX_VALUES` values once aliases are expanded, duplicate keys (YAML would
    silently keep the last one), and scalars a tag cannot convert (``!!int x``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._chain: list[tuple[Node | None, Any]] = []   # (parent, index) of open nodes
        self._measure: dict[int, tuple[int, int]] = {}     # id(node) → (values, depth)
        self._parents: dict[int, tuple[Node | None, Any]] = {}  # id(node) → (parent, index)

    def _path(self, extra: str = "") -> str:
        text = "".join(_segment(index) for parent, index in self._chain if parent is not None)
        return (text + extra).lstrip(".")

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._chain.append((parent, index))
        try:
            event: Any = self.peek_event()  # type: ignore[no-untyped-call]
            if self.check_event(AliasEvent):
                target = self.anchors.get(event.anchor)
                if target is not None and any(target is p for p, _ in self._chain):
                    raise _Refused(self._path(), f"recursive alias *{event.anchor}: it refers "
                                   "to a value that contains it", event.start_mark,
                                   "write the value out instead")
                return super().compose_node(parent, index)
            if len(self._chain) > MAX_DEPTH and \
                    self.check_event(SequenceStartEvent, MappingStartEvent):
                raise _Refused(self._path(), f"nested more than {MAX_DEPTH} levels deep",
                               event.start_mark)
            node = super().compose_node(parent, index)
            if node is not None:
                self._check_node(node)
            return node
        finally:
            self._chain.pop()

    def _check_node(self, node: Node) -> None:
        """Measure a node just composed (its children are known), refuse duplicate keys."""
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            seen: dict[tuple[str, str], Node] = {}
            for key, value in node.value:
                children += (key, value)
                if not isinstance(key, ScalarNode) or key.tag.endswith(":merge"):
                    continue
                first = seen.setdefault(_scalar_identity(key), key)
                if first is not key:
                    raise _Refused(self._path(_segment(key)), "duplicate key (also on line "
                                   f"{first.start_mark.line + 1})", key.start_mark,
                                   "keep only one")
        size, depth = 1, 0
        for child in children:
            child_size, child_depth = self._measure.get(id(child), (1, 0))
            size += child_size
            depth = max(depth, child_depth + 1)
        if depth > MAX_DEPTH:
            raise _Refused(self._path(), f"nested more than {MAX_DEPTH} levels deep once "
                           "aliases are expanded", node.start_mark)
        if size > MAX_VALUES:
            raise _Refused(self._path(), f"more than {MAX_VALUES:,} values once aliases are "
                           "expanded", node.start_mark)
        self._measure[id(node)] = (size, depth)
        self._parents[id(node)] = self._chain[-1]

    def _node_path(self, node: Node) -> str:
        """The key path of a composed node (its first occurrence, for an aliased one)."""
        segments: list[str] = []
        parent, index = self._parents.get(id(node), (None, None))
        while parent is not None:
            segments.append(_segment(index))
            parent, index = self._parents.get(id(parent), (None, None))
        return "".join(reversed(segments)).lstrip(".")

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, LookupError, AttributeError, TypeError, ArithmeticError) as exc:
            kind = node.tag.rsplit(":", 1)[-1] if node.tag.startswith("tag:yaml.org") \
                else node.tag
            reason = str(exc) if isinstance(exc, ValueError) else ""
            if "digits" in reason:
                reason = "too many digits"
            if reason and isinstance(node.value, str) and node.value and node.value in reason:
                reason = ""
            detail = f" ({reason})" if reason else ""
            raise _Refused(self._node_path(node),
                           f"not a valid {kind} value{detail}", node.start_mark) from exc


def _position(text: str, index: int) -> str:
    """``line L, column C`` of a character index, columns counted in what the user wrote
    (``${VAR}``, not the placeholder that replaced it)."""
    index = max(0, min(index, len(text)))
    start = max(text.rfind(ch, 0, index) for ch in _BREAKS) + 1
    line = sum(text.count(ch, 0, index) for ch in _BREAKS) - text.count("\r\n", 0, index) + 1
    return f"line {line}, column {len(show_variables(text[start:index])) + 1}"


def _one_line(text: str) -> str:
    return re.sub(r"\s*[\n\r\x85\u2028\u2029]\s*", " ", text).strip()


def load_yaml(text: str, where: str, error: type[ConfigError] = ConfigError) -> Any:
    """Parse one YAML document like ``yaml.safe_load`` (``None`` for an empty document),
    refusing recursive aliases, excessive nesting, alias bombs and duplicate keys.

    Every problem raises ``error`` with a one-line message starting with ``where`` and,
    when known, the key path and the line and column."""
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)
        node = loader.get_single_node()
        return None if node is None else loader.construct_document(node)
    except _Refused as exc:
        at = f" at {_position(text, exc.mark.index)}" if exc.mark is not None else ""
        path = show_variables(exc.keypath)
        path = path if len(path) <= 80 else f"{path[:40]}...{path[-37:]}"
        advice = f"; {exc.advice}" if exc.advice else ""
        message = f"{where}: {path + ': ' if path else ''}{exc.problem}{at}{advice}"
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at {_position(text, mark.index)}" if mark is not None else ""
        problem = exc.problem or ""
        if exc.context and (not problem or problem.startswith(("but ", "second "))):
            # "found duplicate anchor 'a'; first occurrence" / "second occurrence"
            first = exc.context_mark if problem.startswith("second ") else None
            first_at = f" at {_position(text, first.index)};" if first is not None else ""
            problem = f"{exc.context}{first_at} {problem}".strip()
        message = f"{where}: {problem or 'invalid YAML'}{at}"
    except ReaderError as exc:
        char = exc.character
        shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        at = f" at {_position(text, int(exc.position))}" if isinstance(exc.position, int) \
            else ""
        message = f"{where}: the character {shown} is not allowed in YAML ({exc.reason}){at}"
    except yaml.YAMLError as exc:
        message = f"{where}: invalid YAML ({exc})"
    except RecursionError:
        message = f"{where}: nested too deeply"
    finally:
        if loader is not None:
            loader.dispose()
    raise error(_one_line(show_variables(message)))


VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{")


PLACEHOLDER = re.compile(r"__genesys_prov_(?:env-([A-Za-z_][A-Za-z0-9_]*)|escape|invalid)-__")


def hide_variables(text: str) -> str:
    """Swap ``${VAR}``, ``$${`` and stray ``${`` for placeholders (before YAML parsing)."""
    def placeholder(match: re.Match[str]) -> str:
        if match.group(1):
            return f"__genesys_prov_env-{match.group(1)}-__"
        return "__genesys_prov_escape-__" if match.group(0) == "$${" else \
            "__genesys_prov_invalid-__"

    return VARIABLE.sub(placeholder, text)


def show_variables(text: str) -> str:
    """Undo :func:`hide_variables` for display: messages show what the user wrote."""
    def original(match: re.Match[str]) -> str:
        if match.group(1):
            return f"${{{match.group(1)}}}"
        return "$${" if "escape" in match.group(0) else "${"

    return PLACEHOLDER.sub(original, text)

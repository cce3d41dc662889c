"""Reading ``mappings.yaml``: the default file, parsing and checking every entry (one
line per error, naming the entry), into a :class:`~genesys_prov.mapping.mappings.Mappings`."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from genesys_prov.config import read_text
from genesys_prov.errors import ExpressionError, MappingError
from genesys_prov.mapping import expressions, scimpath
from genesys_prov.mapping.filters import parse_scope
from genesys_prov.mapping.mappings import AttributeMapping, Mappings, known_source
from genesys_prov.mapping.scimpath import TargetPath
from genesys_prov.strict_yaml import load_yaml

_ENTRY_KEYS = {"target", "source", "constant", "expression", "default", "apply", "match"}
_SECTIONS = ("user", "group", "user_scope", "group_scope")


def default_mappings_text() -> str:
    """The built-in default Genesys mappings (the same as the repository's mappings.yaml)."""
    return (Path(__file__).parent.parent / "data" / "mappings.yaml").read_text(encoding="utf-8")


def load_mappings(path: str | os.PathLike[str]) -> Mappings:
    """Read and validate a mappings file.

    Example::

        mappings = load_mappings("mappings.yaml")
        [m.target for m in mappings.user]
    """
    p = Path(path)
    text = read_text(p, MappingError, "mappings file ")
    where = str(p) if str(p).isprintable() else repr(str(p))
    return parse_mappings(text, where=where, path=p)


def parse_mappings(text: str, where: str = "mappings", path: Path | None = None) -> Mappings:
    """Validate mappings YAML text. Every problem raises :class:`MappingError` whose message
    starts with ``where`` (one line, except that an expression error ends with the expression
    and a caret under the problem)."""
    raw = load_yaml(text, where, MappingError)
    if raw is None:
        raise MappingError(f"{where}: the file is empty; it needs a 'user:' list of mappings")
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: expected 'user:' and 'group:' lists at the top level")
    unknown = [key for key in raw if key not in _SECTIONS]
    if unknown:
        raise MappingError(f"{where}: unknown section {_show_key(unknown[0])} "
                           "(expected user, group, user_scope, group_scope)")
    if "user" not in raw:
        raise MappingError(f"{where}: the 'user' list is missing")
    user = _entries(raw["user"], "user", where)
    group = _entries(raw.get("group") or [], "group", where)
    _check_user(user, where)
    if group and not any(m.match is not None for m in group):
        raise MappingError(f"{where}: no group mapping is marked for matching "
                           "(add match: 1 to one, usually displayName)")
    user_scope = parse_scope(raw.get("user_scope"), f"{where}: user_scope")
    for name in user_scope.attributes():
        if not known_source(name):
            raise MappingError(f"{where}: user_scope: unknown source attribute {name!r}")
    group_scope = parse_scope(raw.get("group_scope"), f"{where}: group_scope")
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Mappings(user=user, group=group, digest=digest, path=path, user_scope=user_scope,
                    group_scope=group_scope)


def _show_key(key: Any) -> str:
    """A key for messages: quoted text, or ``null``/``true``/``1`` as YAML spells it."""
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    text = repr(key) if isinstance(key, str) else str(key)
    return text if len(text) <= 60 else text[:57] + "..."


def _show_value(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _plain_value(value: Any) -> bool:
    """True for what YAML gives for JSON-like data: text, numbers, true/false, null, lists
    and mappings with string keys (not dates, binary, sets or ordered pairs, which the
    target could not be sent)."""
    if value is None or isinstance(value, str | int | float):
        return True
    if isinstance(value, list):
        return all(_plain_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_value(v) for k, v in value.items())
    return False


def _check_value(at: str, key: str, value: Any, path: TargetPath) -> None:
    """A ``constant`` or ``default``: plain data of the target attribute's type."""
    if not _plain_value(value):
        kind = type(value).__name__
        raise MappingError(f"{at}: {key} must be text, a number, true/false, a list or a "
                           f"mapping, got a {kind} {_show_value(value)} (quote it in YAML)")
    try:
        scimpath.coerce(path, value)
    except ValueError as exc:
        raise MappingError(f"{at}: {key}: {exc}") from None


def _entries(raw: Any, section: str, where: str) -> tuple[AttributeMapping, ...]:
    if not isinstance(raw, list):
        raise MappingError(f"{where}: {section}: expected a list of mappings")
    out = []
    targets: set[str] = set()
    for i, entry in enumerate(raw):
        at = f"{where}: {section}[{i}]"
        if not isinstance(entry, dict):
            raise MappingError(f"{at}: expected a mapping like {{target: ..., source: ...}}")
        extra = [key for key in entry if key not in _ENTRY_KEYS]
        if extra:
            raise MappingError(f"{at}: unknown key {_show_key(extra[0])}")
        target = entry.get("target")
        if target is None:
            raise MappingError(f"{at}: 'target' is required")
        if not isinstance(target, str) or not target.strip():
            raise MappingError(f"{at}: 'target' must be a SCIM attribute name, got "
                               f"{_show_value(target)}")
        at = f"{where}: {section} mapping {_show_value(target, 120)}"
        kinds = [k for k in ("source", "constant", "expression") if k in entry]
        if len(kinds) != 1:
            raise MappingError(f"{at}: needs exactly one of source, constant, expression")
        try:
            path = scimpath.parse_path(target)
        except MappingError as exc:
            raise MappingError(f"{where}: {section}: {exc}") from exc
        if path.text.lower() in targets:  # 'work' and "work" are the same target
            raise MappingError(f"{at}: mapped twice")
        targets.add(path.text.lower())
        apply = entry.get("apply", "always")
        if apply not in ("always", "on_create"):
            raise MappingError(f"{at}: apply must be 'always' or 'on_create', got "
                               f"{_show_value(apply)}")
        match = entry.get("match")
        if match is not None and (not isinstance(match, int) or isinstance(match, bool)
                                  or match < 1):
            raise MappingError(f"{at}: match must be a positive integer (the precedence)")
        source = entry.get("source")
        if "source" in entry and (not isinstance(source, str) or not source.strip()):
            raise MappingError(f"{at}: source must be an attribute name")
        for key in ("constant", "default"):
            if entry.get(key) is not None:
                _check_value(at, key, entry[key], path)
        expression = None
        if "expression" in entry:
            if not isinstance(entry["expression"], str):
                raise MappingError(f"{at}: expression must be a string")
            try:
                expression = expressions.parse(entry["expression"])
            except ExpressionError as exc:
                raise MappingError(f"{at}: {exc}") from exc
        if expression is not None and expression.selects_unique and \
                (apply != "on_create" or match is not None):
            raise MappingError(f"{at}: SelectUniqueValue needs apply: on_create and cannot be "
                               "a matching attribute (its value depends on the target)")
        out.append(AttributeMapping(
            target=target, path=path, source=source, constant=entry.get("constant"),
            expression=expression, default=entry.get("default"), apply=apply, match=match,
        ))
    return tuple(out)


def _check_user(user: Iterable[AttributeMapping], where: str) -> None:
    precedences: dict[int, str] = {}
    matching = 0
    for m in user:
        for name in m.source_names():
            if not known_source(name):
                raise MappingError(
                    f"{where}: user mapping {m.target!r}: unknown source attribute {name!r}"
                )
        if m.match is not None:
            matching += 1
            if m.match in precedences:
                raise MappingError(f"{where}: user mappings {precedences[m.match]!r} and "
                                   f"{m.target!r} have the same match precedence {m.match}")
            precedences[m.match] = m.target
            if m.path.filter_attr is not None and m.path.attr.lower() != "emails":
                raise MappingError(f"{where}: user mapping {m.target!r}: cannot match on a "
                                   "filtered multi-valued attribute")
    if not matching:
        raise MappingError(f"{where}: no user mapping is marked for matching "
                           "(add match: 1 to one, usually userName)")

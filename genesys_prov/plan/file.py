"""Reviewed plans: ``sync --dry-run --plan-out plan.json`` writes a plan that
``genesys-prov apply plan.json`` later applies exactly.

The file holds every change with before/after values, the target's version (ETag) of each
object it touches, the digest of the configuration and mappings it was made with, its
creation time and a sha256 checksum over the changes. Applying refuses a file whose
checksum does not match, whose settings changed, or that is older than ``--max-age``.

The file holds the real values the changes will write — including values that reports show
as ``[Redact]`` — so it is written readable by its owner only (mode 0600).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, TextIO

from genesys_prov.errors import ConfigError
from genesys_prov.plan.model import (
    Action,
    AttributeChange,
    Change,
    GroupAction,
    GroupChange,
    MemberRef,
    Plan,
)

PLAN_SCHEMA = 1


def _value(value: Any) -> Any:
    return value.data() if isinstance(value, MemberRef) else value


def _ref(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"id", "source_id", "display"}:
        return MemberRef(value["id"], value["source_id"], str(value["display"]))
    return value


def _attr(a: AttributeChange) -> dict[str, Any]:
    return {"attribute": a.attribute, "old": _value(a.old), "new": _value(a.new), "op": a.op,
            "redacted": a.redacted}


def _change_data(c: Change) -> dict[str, Any]:
    return {"action": c.action.value, "identity": c.identity, "source_id": c.source_id,
            "target_id": c.target_id, "reason": c.reason, "version": c.version,
            "wave": c.wave, "attributes": [_attr(a) for a in c.attributes]}


def _group_data(g: GroupChange) -> dict[str, Any]:
    return {"action": g.action.value, "identity": g.identity, "source_id": g.source_id,
            "target_id": g.target_id, "version": g.version,
            "attributes": [_attr(a) for a in g.attributes],
            "add": [m.data() for m in g.add], "remove": [m.data() for m in g.remove]}


def checksum(changes: list[dict[str, Any]], group_changes: list[dict[str, Any]]) -> str:
    """sha256 over the canonical JSON of the changes (real values included)."""
    blob = json.dumps([changes, group_changes], sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _c_encoder(item_separator: str, key_separator: str, sort_keys: bool) -> Callable[[Any], str]:
    """``json.JSONEncoder(ensure_ascii=False, default=str, sort_keys=sort_keys,
    separators=(item_separator, key_separator)).encode`` with its C encoder made once (the
    JSONEncoder makes one per call), without the check for circular references (a plan has
    none)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover (CPython has the C encoder)
        return json.JSONEncoder(ensure_ascii=False, default=str, sort_keys=sort_keys,
                                separators=(item_separator, key_separator)).encode
    encoder = make(None, str, encode_basestring, None, key_separator, item_separator,
                   sort_keys, False, True)
    return lambda value: "".join(encoder(value, 0))


#: Compact JSON of one value, as :func:`checksum` writes it.
_COMPACT = _c_encoder(",", ":", True)
#: ``json.dumps(value, indent=1, ensure_ascii=False, default=str)`` (the pure-Python encoder).
_INDENTED = json.JSONEncoder(indent=1, ensure_ascii=False, default=str).encode
#: Any other scalar (a float, or a value written with ``default=str``), as json writes it.
_OTHER_SCALAR = json.JSONEncoder(ensure_ascii=False, default=str).encode
_CONTAINERS = (dict, list, tuple)


def _stream_checksum(changes: Iterable[str], group_changes: Iterable[str]) -> str:
    """:func:`checksum`, one change at a time, given each change's compact JSON
    (``_COMPACT``): the same bytes are hashed (a JSON list is its members' JSON joined by
    ``,`` inside ``[]``) without the whole plan as one string."""
    digest = hashlib.sha256(b"[")
    for n, texts in enumerate((changes, group_changes)):
        digest.update(b",[" if n else b"[")
        for i, text in enumerate(texts):
            digest.update((text if i == 0 else "," + text).encode())
        digest.update(b"]")
    digest.update(b"]")
    return digest.hexdigest()


@functools.lru_cache(maxsize=64)
def _flat_encoder(level: int) -> Callable[[Any], str]:
    """The encoder writing the members of a container at nesting ``level`` - 1 one a line,
    indented like ``indent=1`` (valid when no member is itself a container)."""
    return _c_encoder(",\n" + " " * level, ": ", False)


def _scalar(value: Any) -> str:
    """A value that is not a container, as json writes it."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return encode_basestring(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return int.__repr__(value)
    return _OTHER_SCALAR(value)


def _indented(value: Any, level: int) -> str:
    """``json.dumps(value, indent=1, ensure_ascii=False, default=str)`` as it appears at
    nesting ``level`` of a document, byte for byte: containers of scalars through the C
    encoder, others member by member; anything unusual (a key that is not a string) through
    the Python encoder itself."""
    if not isinstance(value, _CONTAINERS):
        return _scalar(value)
    if not value:
        return "{}" if isinstance(value, dict) else "[]"
    pad = "\n" + " " * (level + 1)
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            return _INDENTED(value).replace("\n", "\n" + " " * level)
        members: Iterable[Any] = value.values()
    else:
        members = value
    if not any(isinstance(member, _CONTAINERS) for member in members):
        text = _flat_encoder(level + 1)(value)
    elif isinstance(value, dict):
        text = "{" + ",".join(f"{pad}{encode_basestring(key)}: {_indented(member, level + 1)}"
                              for key, member in value.items())[len(pad):] + "}"
    else:
        text = "[" + ",".join(pad + _indented(member, level + 1)
                              for member in value)[len(pad):] + "]"
    return f"{text[0]}{pad}{text[1:-1]}\n{' ' * level}{text[-1]}"


def _compact_value(value: Any) -> str:
    """``_COMPACT(value)``, quicker for a value that is not a container."""
    return _COMPACT(value) if isinstance(value, _CONTAINERS) else _scalar(value)


_ATTR_PAD = "\n" + " " * 5   # the members of an attribute change in a plan file


@functools.lru_cache(maxsize=4096)
def _cached_head(attribute: str, compact: bool) -> str:
    return _attribute_head(attribute, compact)


def _attribute_head(attribute: Any, compact: bool) -> str:
    """What an attribute change's JSON starts with, up to its first value (``old`` in a
    plan file, ``new`` in the checksum's sorted keys)."""
    if compact:
        return f'{{"attribute":{_compact_value(attribute)},"new":'
    return f'{{{_ATTR_PAD}"attribute": {_indented(attribute, 5)},{_ATTR_PAD}"old": '


@functools.lru_cache(maxsize=4096)
def _cached_tail(op: str, redacted: bool, compact: bool) -> str:
    return _attribute_tail(op, redacted, compact)


def _attribute_tail(op: Any, redacted: Any, compact: bool) -> str:
    """What an attribute change's JSON ends with, after its values."""
    if compact:
        return f',"op":{_compact_value(op)},"redacted":{_compact_value(redacted)}}}'
    return (f',{_ATTR_PAD}"op": {_indented(op, 5)},{_ATTR_PAD}"redacted": '
            f'{_indented(redacted, 5)}\n    }}')


def _head_and_tail(a: AttributeChange, compact: bool) -> tuple[str, str]:
    """:func:`_attribute_head` and :func:`_attribute_tail`, cached for the usual types."""
    if type(a.attribute) is str and type(a.op) is str and type(a.redacted) is bool:
        return _cached_head(a.attribute, compact), _cached_tail(a.op, a.redacted, compact)
    return _attribute_head(a.attribute, compact), _attribute_tail(a.op, a.redacted, compact)


def _attribute_json(a: AttributeChange) -> str:
    """``_indented(_attr(a), 4)``: an attribute change where a plan file holds it, made
    without the dict."""
    head, tail = _head_and_tail(a, False)
    return (f"{head}{_indented(_value(a.old), 5)},{_ATTR_PAD}"
            f'"new": {_indented(_value(a.new), 5)}{tail}')


def _attribute_compact(a: AttributeChange) -> str:
    """``_COMPACT(_attr(a))``: an attribute change as the checksum hashes it (sorted keys),
    made without the dict."""
    head, tail = _head_and_tail(a, True)
    return (f'{head}{_compact_value(_value(a.new))},"old":{_compact_value(_value(a.old))}'
            f"{tail}")


def _change_json(c: Change) -> str:
    """``_indented(_change_data(c), 2)``: one change as a plan file holds it, made without
    the intermediate dicts."""
    p = "\n   "
    attributes = ",\n    ".join(map(_attribute_json, c.attributes))
    return (f'{{{p}"action": {_indented(c.action.value, 3)},'
            f'{p}"identity": {_indented(c.identity, 3)},'
            f'{p}"source_id": {_indented(c.source_id, 3)},'
            f'{p}"target_id": {_indented(c.target_id, 3)},'
            f'{p}"reason": {_indented(c.reason, 3)},{p}"version": {_indented(c.version, 3)},'
            f'{p}"wave": {_indented(c.wave, 3)},{p}"attributes": '
            + (f"[\n    {attributes}\n   ]" if c.attributes else "[]") + "\n  }")


def _change_compact(c: Change) -> str:
    """``_COMPACT(_change_data(c))``: one change as :func:`checksum` hashes it (sorted keys),
    made without the intermediate dicts."""
    return (f'{{"action":{_compact_value(c.action.value)},"attributes":['
            f'{",".join(map(_attribute_compact, c.attributes))}],'
            f'"identity":{_compact_value(c.identity)},"reason":{_compact_value(c.reason)},'
            f'"source_id":{_compact_value(c.source_id)},'
            f'"target_id":{_compact_value(c.target_id)},'
            f'"version":{_compact_value(c.version)},"wave":{_compact_value(c.wave)}}}')


def _write_document(document: dict[str, Any], out: TextIO) -> None:
    """``json.dump(document, out, indent=1, ensure_ascii=False, default=str)``, byte for
    byte, where each top-level list is given as an iterator of its members' JSON already
    indented for their place (:func:`_indented` at level 2): a plan's changes are made as
    they are written, never held."""
    if not document:
        out.write("{}")
        return
    for n, (key, value) in enumerate(document.items()):
        out.write(f"{',' if n else '{'}\n {encode_basestring(key)}: ")
        if not isinstance(value, Iterator):
            out.write(_indented(value, 1))
            continue
        empty = True
        for text in value:
            out.write(f"{'[' if empty else ','}\n  {text}")
            empty = False
        out.write("[]" if empty else "\n ]")
    out.write("\n}")


def write_plan(path: str | os.PathLike[str], plan: Plan, settings_digest: str) -> str:
    """Write ``plan`` for a later ``apply``; returns the checksum. The file is what
    ``json.dump(document, indent=1)`` writes, written a change at a time (the changes are
    turned into JSON twice, for the checksum and for the file, instead of being held)."""
    digest = _stream_checksum(map(_change_compact, plan.changes),
                              (_COMPACT(_group_data(g)) for g in plan.group_changes))
    document = {
        "schema": PLAN_SCHEMA, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "created_epoch": time.time(), "settings_digest": settings_digest,
        "in_scope": plan.in_scope, "counts": plan.counts(), "checksum": digest,
        "changes": map(_change_json, plan.changes),
        "group_changes": (_indented(_group_data(g), 2) for g in plan.group_changes),
    }
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            _write_document(document, out)
        partial.replace(target)
    except OSError as exc:
        raise ConfigError(f"--plan-out {path}: cannot write: {exc.strerror}") from exc
    return digest


def _attr_from(d: dict[str, Any]) -> AttributeChange:
    return AttributeChange(str(d["attribute"]), _ref(d.get("old")), _ref(d.get("new")),
                           str(d.get("op", "replace")), bool(d.get("redacted", False)))


def _member(d: dict[str, Any]) -> MemberRef:
    return MemberRef(d.get("id"), d.get("source_id"), str(d.get("display", "")))


def read_plan(path: str | os.PathLike[str], settings_digest: str, max_age: float,
              now: float | None = None) -> Plan:
    """Load a plan file for ``apply``, refusing a tampered, stale or foreign one."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the plan: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: not a plan file (invalid JSON: {exc})") from exc
    if not isinstance(document, dict) or document.get("schema") != PLAN_SCHEMA:
        raise ConfigError(f"{path}: not a genesys-prov plan (schema {PLAN_SCHEMA} expected)")
    changes, groups = document.get("changes"), document.get("group_changes")
    if not isinstance(changes, list) or not isinstance(groups, list):
        raise ConfigError(f"{path}: the plan has no change lists")
    if checksum(changes, groups) != document.get("checksum"):
        raise ConfigError(f"{path}: the checksum does not match the changes: the plan was "
                          "modified after it was made; refusing to apply it")
    if document.get("settings_digest") != settings_digest:
        raise ConfigError(f"{path}: the configuration or mappings changed since the plan was "
                          "made; make a new plan")
    age = (now if now is not None else time.time()) - float(document.get("created_epoch", 0))
    if age > max_age:
        raise ConfigError(f"{path}: the plan is {age / 3600:.1f} h old (made "
                          f"{document.get('created')}); --max-age is {max_age / 3600:g} h: "
                          "make a new plan")
    try:
        user_changes = tuple(Change(
            Action(c["action"]), str(c["identity"]), str(c["source_id"]), c.get("target_id"),
            tuple(_attr_from(a) for a in c.get("attributes", [])), str(c.get("reason", "")),
            c.get("version"), int(c.get("wave", 0))) for c in changes)
        group_changes = tuple(GroupChange(
            GroupAction(g["action"]), str(g["identity"]), str(g["source_id"]),
            g.get("target_id"), tuple(_attr_from(a) for a in g.get("attributes", [])),
            tuple(_member(m) for m in g.get("add", [])),
            tuple(_member(m) for m in g.get("remove", [])), g.get("version"))
            for g in groups)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: a change in the plan is malformed ({exc})") from exc
    plan = Plan(changes=user_changes, group_changes=group_changes,
                in_scope=int(document.get("in_scope") or 0))
    return replace(plan)


def parse_age(text: str) -> float:
    """``--max-age``: ``24h``, ``90m``, ``2d`` or seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        if text[-1:] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise ConfigError(f"--max-age {text!r}: expected e.g. 24h, 90m, 2d") from None

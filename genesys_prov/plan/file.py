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
from collections.abc import Iterable, Iterator
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


#: Compact JSON of one value, as :func:`checksum` writes it.
_COMPACT = functools.partial(json.dumps, sort_keys=True, separators=(",", ":"),
                             ensure_ascii=False, default=str)


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


def _indented(value: Any, level: int) -> str:
    """``json.dumps(value, indent=1, ensure_ascii=False, default=str)`` as it appears at
    nesting ``level`` of a document: its lines shifted right by ``level`` (JSON escapes
    every newline inside a string, so each raw newline starts a line of the layout)."""
    text = json.dumps(value, indent=1, ensure_ascii=False, default=str)
    return text.replace("\n", "\n" + " " * level) if level else text


def _change_json(c: Change) -> str:
    """One change as a plan file holds it (at nesting level 2)."""
    return _indented(_change_data(c), 2)


def _change_compact(c: Change) -> str:
    """One change as :func:`checksum` hashes it."""
    return _COMPACT(_change_data(c))


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

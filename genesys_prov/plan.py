"""The plan: a pure function of (desired users, target users) that yields typed changes.

A :class:`Plan` is a value: sorted, counted, serialisable (``plan.data()``) and
checksummed. Dry-run output, reports and apply all use the same object.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from genesys_prov import scimpath
from genesys_prov.mapping import DesiredUser, Mappings

REDACT_MARK = "[Redact]"


class Action(StrEnum):
    """What a change does to a target user."""

    CREATE = "create"
    UPDATE = "update"
    REACTIVATE = "reactivate"
    DEACTIVATE = "deactivate"


_ORDER = {Action.CREATE: 0, Action.UPDATE: 1, Action.REACTIVATE: 2, Action.DEACTIVATE: 3}


@dataclass(frozen=True, slots=True)
class AttributeChange:
    """One attribute's old → new value; ``op`` is the SCIM PATCH op that will set it
    (``replace``, or ``add`` when the multi-valued element does not exist yet)."""

    attribute: str
    old: Any
    new: Any
    op: str = "replace"
    redacted: bool = False

    def data(self) -> dict[str, Any]:
        """JSON-ready form; redacted values are masked."""
        show = (lambda v: REDACT_MARK if v is not None else None) if self.redacted else \
            (lambda v: v)
        return {"attribute": self.attribute, "old": show(self.old), "new": show(self.new),
                "op": self.op}


@dataclass(frozen=True, slots=True)
class Change:
    """A typed change to one target user."""

    action: Action
    identity: str
    source_id: str
    target_id: str | None
    attributes: tuple[AttributeChange, ...] = ()
    reason: str = ""
    version: str | None = None

    @property
    def sort_key(self) -> tuple[int, str, str]:
        """Fixed order: creates, updates, reactivations, deactivations; then identity."""
        return (_ORDER[self.action], self.identity.lower(), self.source_id)

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "action": self.action.value, "identity": self.identity,
            "source_id": self.source_id, "target_id": self.target_id,
            "reason": self.reason, "version": self.version,
            "attributes": [a.data() for a in self.attributes],
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """A directory user deliberately not acted on, with the reason."""

    identity: str
    source_id: str
    reason: str

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"identity": self.identity, "source_id": self.source_id, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Failure:
    """A directory user that cannot be planned (Entra's error codes where they exist)."""

    identity: str
    source_id: str
    code: str
    reason: str
    target_ids: tuple[str, ...] = ()

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"identity": self.identity, "source_id": self.source_id, "code": self.code,
                "reason": self.reason, "target_ids": list(self.target_ids)}


@dataclass(frozen=True, slots=True)
class Unmanaged:
    """A target user that no directory user matches; left alone."""

    target_id: str
    user_name: str
    active: bool

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"target_id": self.target_id, "userName": self.user_name, "active": self.active}


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a run would do, and everything it decided not to do."""

    changes: tuple[Change, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    failures: tuple[Failure, ...] = ()
    unmanaged: tuple[Unmanaged, ...] = ()
    unchanged: int = 0
    source_users: int = 0
    target_users: int = 0

    def counts(self) -> dict[str, int]:
        """Number of changes per action, plus skipped, failed, unmanaged and unchanged."""
        out = {a.value: 0 for a in Action}
        for change in self.changes:
            out[change.action.value] += 1
        out.update(skipped=len(self.skipped), failed=len(self.failures),
                   unmanaged=len(self.unmanaged), unchanged=self.unchanged)
        return out

    @property
    def writes(self) -> int:
        """Number of write requests the plan needs (one per change)."""
        return len(self.changes)

    def checksum(self) -> str:
        """sha256 over the canonical JSON of the changes: ties an apply to a reviewed plan."""
        blob = json.dumps([c.data() for c in self.changes], sort_keys=True,
                          separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def data(self) -> dict[str, Any]:
        """The whole plan as JSON-ready data (stable key order)."""
        return {
            "counts": self.counts(),
            "source_users": self.source_users,
            "target_users": self.target_users,
            "checksum": self.checksum(),
            "changes": [c.data() for c in self.changes],
            "skipped": [s.data() for s in self.skipped],
            "failures": [f.data() for f in self.failures],
            "unmanaged": [u.data() for u in self.unmanaged],
        }


@dataclass(frozen=True, slots=True)
class TargetUser:
    """The part of a target user that planning reads: identity, state, and the value of
    each mapped attribute (``values[i]`` for ``Mappings.user_paths()[i]``). Keeping this
    instead of the SCIM JSON keeps memory small at 100,000 users."""

    id: str
    user_name: str
    active: bool
    version: str | None
    values: tuple[Any, ...]
    present: tuple[bool, ...]  # does the multi-valued element of a filter path exist?


def snapshot(resource: dict[str, Any], mappings: Mappings) -> TargetUser:
    """Reduce a SCIM user resource to a :class:`TargetUser`."""
    paths = mappings.user_paths()
    meta = resource.get("meta")
    version = meta.get("version") if isinstance(meta, dict) else None
    return TargetUser(
        id=str(resource.get("id")),
        user_name=str(resource.get("userName", "")),
        active=resource.get("active", True) is not False,
        version=version if isinstance(version, str) else None,
        values=tuple(scimpath.get_value(resource, p) for _, p in paths),
        present=tuple(scimpath.has_element(resource, p) for _, p in paths),
    )


def _norm(path: scimpath.TargetPath, value: Any) -> Any:
    return value.lower() if isinstance(value, str) and path.case_insensitive else value


def build_plan(desired: Iterable[DesiredUser],
               target: Sequence[TargetUser | dict[str, Any]], mappings: Mappings) -> Plan:
    """Compare desired users with the target's users and return the plan.

    Pure: no I/O. ``target`` holds :class:`TargetUser` snapshots (SCIM dicts are accepted
    and reduced). Matching follows the mappings' ``match`` precedence; two target users for
    one source user is a ``DuplicateTargetEntries`` failure, never a guess."""
    paths = dict(mappings.user_paths())
    position = {name: i for i, (name, _) in enumerate(mappings.user_paths())}
    match_paths = {m.target: m.path for m in mappings.user_match}
    has_active = mappings.active_mapping is not None
    users = [t if isinstance(t, TargetUser) else snapshot(t, mappings) for t in target]
    index: dict[str, dict[Any, list[TargetUser]]] = {t: {} for t in match_paths}
    for snap in users:
        for name, path in match_paths.items():
            value = snap.values[position[name]]
            if value is not None:
                index[name].setdefault(_norm(path, value), []).append(snap)
    changes: list[Change] = []
    skipped: list[Skipped] = []
    failures: list[Failure] = []
    claimed: dict[str, str] = {}
    unchanged = 0
    sources = 0
    for user in sorted(desired, key=lambda d: d.source_id):
        sources += 1
        if user.error:
            failures.append(Failure(user.identity, user.source_id, "MappingFailed", user.error))
            continue
        if not user.match_keys:
            names = ", ".join(match_paths)
            failures.append(Failure(user.identity, user.source_id, "MandatoryFieldsMissing",
                                    f"no value for any matching attribute ({names})"))
            continue
        found: list[TargetUser] = []
        for name, value in user.match_keys:
            found = index[name].get(_norm(match_paths[name], value), [])
            if found:
                break
        if len(found) > 1:
            ids = tuple(sorted(t.id for t in found))
            failures.append(Failure(user.identity, user.source_id, "DuplicateTargetEntries",
                                    f"{len(found)} target users match ({', '.join(ids)})", ids))
            continue
        if not found:
            if not user.active:
                why = "account is disabled" if user.soft_deleted else "mapped active is false"
                skipped.append(Skipped(user.identity, user.source_id,
                                       f"not created: {why} and the user is not in the target"))
                continue
            attrs = {**user.create_only, **user.values}
            items = [AttributeChange(k, None, v, redacted=k in user.redacted)
                     for k, v in attrs.items()]
            if has_active:
                items.append(AttributeChange("active", None, True))
            changes.append(Change(Action.CREATE, user.identity, user.source_id, None,
                                  tuple(sorted(items, key=lambda a: a.attribute)),
                                  reason="no matching user in the target"))
            continue
        snap = found[0]
        target_id = snap.id
        if target_id in claimed:
            failures.append(Failure(
                user.identity, user.source_id, "DuplicateSourceEntries",
                f"target user {target_id} is already matched by source user "
                f"{claimed[target_id]}", (target_id,)))
            continue
        claimed[target_id] = user.source_id
        version = snap.version
        target_active = snap.active
        if not user.active:
            if target_active:
                why = "account is disabled" if user.soft_deleted else "mapped active is false"
                changes.append(Change(Action.DEACTIVATE, user.identity, user.source_id,
                                      target_id, (AttributeChange("active", True, False),),
                                      reason=why, version=version))
            else:
                unchanged += 1
            continue
        diffs = []
        for name, new in user.values.items():
            path = paths[name]
            old = snap.values[position[name]]
            if old is not None and scimpath.same_value(path, old, new):
                continue
            op = scimpath.patch_operation(path, new, snap.present[position[name]])["op"]
            diffs.append(AttributeChange(name, old, new, op, redacted=name in user.redacted))
        diffs.sort(key=lambda a: a.attribute)
        if not target_active:
            items = [AttributeChange("active", False, True), *diffs]
            changes.append(Change(Action.REACTIVATE, user.identity, user.source_id, target_id,
                                  tuple(items), reason="account is enabled in the directory",
                                  version=version))
        elif diffs:
            changes.append(Change(Action.UPDATE, user.identity, user.source_id, target_id,
                                  tuple(diffs), reason="attributes differ", version=version))
        else:
            unchanged += 1
    unmanaged = sorted(
        (Unmanaged(t.id, t.user_name, t.active) for t in users if t.id not in claimed),
        key=lambda u: (u.user_name.lower(), u.target_id),
    )
    return Plan(
        changes=tuple(sorted(changes, key=lambda c: c.sort_key)),
        skipped=tuple(sorted(skipped, key=lambda s: (s.identity.lower(), s.source_id))),
        failures=tuple(sorted(failures, key=lambda f: (f.identity.lower(), f.source_id))),
        unmanaged=tuple(unmanaged),
        unchanged=unchanged,
        source_users=sources,
        target_users=len(users),
    )

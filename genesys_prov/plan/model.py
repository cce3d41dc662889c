"""The plan's values: typed changes with old → new, the :class:`Plan` that holds them, and
what planning reads from the target (:class:`TargetUser`, :class:`TargetGroup`).

A :class:`Plan` is a value: sorted, counted, serialisable (``plan.data()``) and
checksummed. Dry-run output, reports and apply all use the same object.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

REDACT_MARK = "[Redact]"
LATE_WAVE = 1_000  # wave of the manager fix-ups that run after every create


class Action(StrEnum):
    """What a change does to a target user."""

    CREATE = "create"
    UPDATE = "update"
    REACTIVATE = "reactivate"
    DEACTIVATE = "deactivate"
    DELETE = "delete"


_ORDER = {Action.CREATE: 0, Action.UPDATE: 1, Action.REACTIVATE: 2, Action.DEACTIVATE: 3,
          Action.DELETE: 4}
REMOVALS = frozenset({Action.DEACTIVATE, Action.DELETE})


class GroupAction(StrEnum):
    """What a change does to a target group."""

    CREATE = "create group"
    UPDATE = "update group"


@dataclass(frozen=True, slots=True)
class MemberRef:
    """A reference to a target user: its id when it exists, or the source id of a user
    this run creates (resolved when applying), and a name to show."""

    target_id: str | None
    source_id: str | None
    display: str

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.target_id, "source_id": self.source_id, "display": self.display}


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
        """JSON-ready form; redacted values are masked, references shown with names."""
        def show(value: Any) -> Any:
            if isinstance(value, MemberRef):
                return value.data()
            if self.redacted and value is not None:
                return REDACT_MARK
            return value

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
    wave: int = 0  # creates: managers first (wave 0 has no manager created in this run)

    @property
    def sort_key(self) -> tuple[int, int, str, str]:
        """Fixed order: creates (by wave), updates, reactivations, deactivations; then
        identity."""
        return (_ORDER[self.action], self.wave, self.identity.lower(), self.source_id)

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "action": self.action.value, "identity": self.identity,
            "source_id": self.source_id, "target_id": self.target_id,
            "reason": self.reason, "version": self.version, "wave": self.wave,
            "attributes": [a.data() for a in self.attributes],
        }


@dataclass(frozen=True, slots=True)
class GroupChange:
    """A change to one target group: create it (generic targets), set attributes, and add
    or remove members."""

    action: GroupAction
    identity: str
    source_id: str
    target_id: str | None
    attributes: tuple[AttributeChange, ...] = ()
    add: tuple[MemberRef, ...] = ()
    remove: tuple[MemberRef, ...] = ()
    version: str | None = None

    @property
    def sort_key(self) -> tuple[int, str, str]:
        """Creates first, then updates; then name."""
        return (0 if self.action is GroupAction.CREATE else 1, self.identity.lower(),
                self.source_id)

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "action": self.action.value, "identity": self.identity,
            "source_id": self.source_id, "target_id": self.target_id,
            "version": self.version,
            "attributes": [a.data() for a in self.attributes],
            "add_members": [m.data() for m in self.add],
            "remove_members": [m.data() for m in self.remove],
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """A directory object deliberately not acted on (or only in part), with the reason.
    ``kind`` is ``user``, ``group`` or ``manager`` (a manager reference left alone)."""

    identity: str
    source_id: str
    reason: str
    kind: str = "user"

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "identity": self.identity, "source_id": self.source_id,
                "reason": self.reason}


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
class PlanWarning:
    """Something written as planned that deserves a look (e.g. a phone number sent as
    written because libphonenumber does not know it)."""

    identity: str
    source_id: str
    message: str

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"identity": self.identity, "source_id": self.source_id,
                "message": self.message}


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
    group_changes: tuple[GroupChange, ...] = ()
    out_of_scope: int = 0
    source_groups: int = 0
    target_groups: int = 0
    held: tuple[Change, ...] = ()        # deactivations/deletions held by the safety guard
    held_reason: str = ""
    matched: tuple[tuple[str, str], ...] = ()        # (source id, target id) of matched users
    matched_groups: tuple[tuple[str, str], ...] = ()
    in_scope: int = 0
    warnings: tuple[PlanWarning, ...] = ()   # users written with a value worth a look

    def counts(self) -> dict[str, int]:
        """Number of changes per action, plus skipped, failed, unmanaged and unchanged."""
        out = {a.value: 0 for a in Action}
        for change in self.changes:
            out[change.action.value] += 1
        out["group create"] = sum(g.action is GroupAction.CREATE for g in self.group_changes)
        out["group update"] = sum(g.action is GroupAction.UPDATE for g in self.group_changes)
        out["members added"] = sum(len(g.add) for g in self.group_changes)
        out["members removed"] = sum(len(g.remove) for g in self.group_changes)
        out.update(skipped=len(self.skipped), failed=len(self.failures),
                   unmanaged=len(self.unmanaged), unchanged=self.unchanged,
                   out_of_scope=self.out_of_scope, held=len(self.held))
        return out

    @property
    def writes(self) -> int:
        """Number of changes (user and group) the plan holds."""
        return len(self.changes) + len(self.group_changes)

    def checksum(self) -> str:
        """sha256 over the canonical JSON of the changes: ties an apply to a reviewed plan."""
        blob = json.dumps([c.data() for c in self.changes] +
                          [g.data() for g in self.group_changes], sort_keys=True,
                          separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def data(self) -> dict[str, Any]:
        """The whole plan as JSON-ready data (stable key order)."""
        return {
            "counts": self.counts(),
            "source_users": self.source_users,
            "target_users": self.target_users,
            "source_groups": self.source_groups,
            "target_groups": self.target_groups,
            "checksum": self.checksum(),
            "changes": [c.data() for c in self.changes],
            "group_changes": [g.data() for g in self.group_changes],
            "skipped": [s.data() for s in self.skipped],
            "failures": [f.data() for f in self.failures],
            "unmanaged": [u.data() for u in self.unmanaged],
            "held": [c.data() for c in self.held],
            "held_reason": self.held_reason,
            "warnings": [w.data() for w in self.warnings],
        }


@dataclass(frozen=True, slots=True)
class TargetUser:
    """The part of a target user that planning reads: identity, state, the value of each
    mapped attribute (``values[i]`` for ``Mappings.user_paths()[i]``) and the manager's id.
    Keeping this instead of the SCIM JSON keeps memory small at 100,000 users."""

    id: str
    user_name: str
    active: bool
    version: str | None
    values: tuple[Any, ...]
    present: tuple[bool, ...]  # does the multi-valued element of a filter path exist?
    manager: str | None = None


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """The part of a target group that planning reads."""

    id: str
    display_name: str
    version: str | None
    values: dict[str, Any]
    members: frozenset[str]


@dataclass(frozen=True)
class PlanOptions:
    """Settings that change what the planner decides. ``links`` are the state's source id
    → target id links (users); ``on_hard_delete`` is what happens to a linked user who no
    longer exists in the directory."""

    skip_out_of_scope_deletions: bool = False
    remove_unmanaged_members: bool = False
    create_groups: bool = False
    flavor: str = "genesys"
    links: Mapping[str, str] = field(default_factory=dict)
    on_hard_delete: str = "delete"
    hard_deleted: frozenset[str] = frozenset()  # linked users Graph confirms hard-deleted
    # Incremental plans: only these linked users may be found gone from the directory
    # (None: a full plan, where every linked user missing from the directory is).
    gone_candidates: frozenset[str] | None = None

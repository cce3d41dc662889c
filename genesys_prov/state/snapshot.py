"""The snapshot incremental runs plan from: every directory user as last read (with whether
assignments and group memberships put it in scope, and its manager), the direct user
members of the groups that count, and, on each link, what the target held for that user
after the run (:class:`~genesys_prov.plan.model.TargetUser` as JSON).

The snapshot is trusted only when the run that wrote it finished (the ``snapshot`` meta
key holds the settings digest it was written under); a run clears the key before it
writes anything, so a killed run leaves no half-written snapshot behind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from genesys_prov.mapping.desired import manager_id
from genesys_prov.mapping.mappings import Mappings
from genesys_prov.plan.model import Action, Change, MemberRef, TargetUser
from genesys_prov.state.db import State

SNAPSHOT_META = "snapshot"
BATCH = 2000


def stored_user(user: Mapping[str, Any]) -> str:
    """A directory user as the snapshot keeps it (JSON, without OData annotations)."""
    return json.dumps({k: v for k, v in user.items() if not k.startswith("@")},
                      separators=(",", ":"), sort_keys=True)


def merge_user(stored: Mapping[str, Any], partial: Mapping[str, Any]) -> dict[str, Any]:
    """A stored user with a delta's partial object applied: the properties it carries
    replace the stored ones; ``manager@delta`` sets or clears the manager. Merging the same
    partial twice gives the same result, so duplicates and replays are harmless."""
    merged = dict(stored)
    for key, value in partial.items():
        if key == "manager@delta":
            entries = [e for e in value if isinstance(e, dict)] if isinstance(value, list) \
                else []
            live = [e for e in entries if "@removed" not in e and "id" in e]
            merged["manager"] = {"id": str(live[-1]["id"])} if live else None
        elif not key.startswith("@") and "@" not in key and key != "id":
            merged[key] = value
    return merged


class SnapshotWriter:
    """Stores the users and groups a complete directory read sees, in batches, so memory
    stays flat; :meth:`finish` drops what the read did not see. A
    :class:`~genesys_prov.source.scope.Keeper`."""

    def __init__(self, state: State, run_id: str) -> None:
        self.state = state
        self.run_id = run_id
        self.rows: list[UserRow] = []
        self.groups: list[tuple[str, str, list[str]]] = []
        self.pending_members = 0

    def user(self, user: dict[str, Any], member_reason: str | None) -> None:
        """Keep one user as read."""
        self.rows.append(user_row(user, member_reason is None, member_reason))
        if len(self.rows) >= BATCH:
            self.flush()

    def group(self, group: dict[str, Any], members: list[str]) -> None:
        """Keep one group whose members count, with its direct user members."""
        self.groups.append((str(group["id"]).lower(), stored_user(group), members))
        self.pending_members += len(members) + 1
        if self.pending_members >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Store what is collected so far (one transaction each for users and groups)."""
        if self.rows:
            self.state.put_source_users(self.run_id, self.rows)
            self.rows = []
        if self.groups:
            self.state.put_source_groups(self.run_id, self.groups)
            self.groups, self.pending_members = [], 0

    def finish(self) -> None:
        """Store the rest and forget what the read did not see (a complete read)."""
        self.flush()
        self.state.drop_source_not_read_by(self.run_id)


UserRow = tuple[str, str, bool, str | None, str | None]


def user_row(user: Mapping[str, Any], member_scope: bool, reason: str | None) -> UserRow:
    """A stored user: (lower-case id, JSON, in scope by memberships, why not, manager)."""
    manager = manager_id(dict(user))
    return (str(user["id"]).lower(), stored_user(user), member_scope, reason,
            manager.lower() if manager else None)


def target_json(user: TargetUser) -> str:
    """A target user's snapshot as JSON (its version is not kept: it changes on writes)."""
    return json.dumps({"id": user.id, "userName": user.user_name, "active": user.active,
                       "values": list(user.values), "present": list(user.present),
                       "manager": user.manager}, separators=(",", ":"))


def target_from_json(text: str, width: int) -> TargetUser | None:
    """The snapshot stored by :func:`target_json`; None when it does not fit the mappings
    (``width`` values)."""
    data = json.loads(text)
    values, present = data.get("values"), data.get("present")
    if not isinstance(values, list) or not isinstance(present, list) or \
            len(values) != width or len(present) != width:
        return None
    return TargetUser(id=str(data["id"]), user_name=str(data.get("userName", "")),
                      active=bool(data.get("active", True)), version=None,
                      values=tuple(values), present=tuple(bool(p) for p in present),
                      manager=data.get("manager"))


def after_change(before: TargetUser | None, change: Change, target_id: str,
                 mappings: Mappings, links: Mapping[str, str]) -> TargetUser:
    """What the target holds for a user once ``change`` succeeded (managers this run
    created are resolved through ``links``)."""
    position = {name: i for i, (name, _) in enumerate(mappings.user_paths())}
    width = len(position)
    values = list(before.values) if before else [None] * width
    present = list(before.present) if before else [False] * width
    active = before.active if before else True
    manager = before.manager if before else None
    user_name = before.user_name if before else ""
    manager_name = mappings.manager_mapping.target if mappings.manager_mapping else None
    for item in change.attributes:
        new = item.new
        if item.attribute == manager_name:
            if isinstance(new, MemberRef):
                manager = new.target_id or links.get(new.source_id or "")
            else:
                manager = None
            continue
        if item.attribute == "active":
            active = bool(new)
        if item.attribute == "userName" and isinstance(new, str):
            user_name = new
        i = position.get(item.attribute)
        if i is not None:
            # a redacted value (a password) is never stored; unknown, as a target that
            # does not return it would report
            values[i] = None if item.redacted else new
            present[i] = present[i] or new is not None
    if change.action is Action.DEACTIVATE:
        active = False
    elif change.action in (Action.CREATE, Action.REACTIVATE):
        active = True
    return TargetUser(id=target_id, user_name=user_name, active=active, version=None,
                      values=tuple(values), present=tuple(present), manager=manager)


def stored_targets(state: State, source_ids: list[str],
                   mappings: Mappings) -> dict[str, TargetUser]:
    """What the target held after the last run for these linked users (those known)."""
    width = len(mappings.user_paths())
    out = {}
    for sid, text in state.applied(source_ids).items():
        target = target_from_json(text, width)
        if target is not None:
            out[sid] = target
    return out

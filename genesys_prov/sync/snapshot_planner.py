"""Planning an incremental run from the snapshot (see :mod:`genesys_prov.state.snapshot`).

An incremental run merges the partial objects Graph's delta rounds send with the stored
ones, recomputes scope from the stored members and the re-read assignments, and plans the
changed users and groups with :func:`~genesys_prov.plan.build.build_plan` — full-sync
semantics, without reading the directory; of the target only a lookup per new user and the
groups listing when members change. What the snapshot cannot answer alone (nested
memberships, deleted groups, groups entering or leaving ``group_scope``, SelectUniqueValue
creates, …) raises :class:`_Fallback`: the caller reads the directory instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from genesys_prov.mapping.desired import DesiredGroup, DesiredUser, desired_group
from genesys_prov.mapping.genesys_rules import UserRule
from genesys_prov.mapping.mappings import Mappings, source_reader
from genesys_prov.plan.build import build_plan
from genesys_prov.plan.model import (
    Plan,
    PlanOptions,
    TargetGroup,
    TargetUser,
)
from genesys_prov.source.delta import Delta
from genesys_prov.source.graph import USER_TYPE
from genesys_prov.source.scope import (
    Assignments,
    member_reason,
    scoped_user,
    stored_member_reason,
)
from genesys_prov.state.db import State
from genesys_prov.state.snapshot import (
    SNAPSHOT_META,
    UserRow,
    merge_user,
    stored_targets,
    stored_user,
    user_row,
)


@dataclass
class QuickPlan:
    """A plan made from the snapshot, and what to store in the snapshot once it is
    applied."""

    plan: Plan
    before: dict[str, TargetUser]
    source_rows: list[UserRow] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)             # users gone (lower-case ids)
    member_changes: list[tuple[str, str, bool]] = field(default_factory=list)
    group_rows: list[tuple[str, str]] = field(default_factory=list)  # (group id, JSON)

    def store(self, state: State, run_id: str) -> None:
        """Bring the snapshot up to date with what this run read."""
        state.put_source_users(run_id, self.source_rows)
        state.drop_source_users(self.dropped)
        state.change_members(self.member_changes)
        state.set_group_data(self.group_rows)


class _Fallback(Exception):
    """The snapshot cannot answer alone; the message says why."""


@dataclass
class SnapshotInputs:
    """What planning from the snapshot needs besides the state and the delta: the app's
    assignments (None with ``scope: all``), whether nested groups count, how to look up an
    unlinked user in the target, how to list the target's groups, and how many lookups
    are worth it (more: listing the target is cheaper)."""

    assigned: Assignments | None
    nested: bool
    lookup: Callable[[DesiredUser], list[TargetUser]]
    target_groups: Callable[[], list[TargetGroup]]
    max_lookups: int = 25


class _SnapshotPlanner:
    """One plan from the snapshot; see :func:`plan_from_snapshot`."""

    def __init__(self, state: State, delta: Delta, mappings: Mappings, options: PlanOptions,
                 rule: UserRule | None, inputs: SnapshotInputs) -> None:
        self.state, self.delta, self.mappings = state, delta, mappings
        self.options, self.rule, self.inputs = options, rule, inputs
        self.stored_groups = {gid: json.loads(text)
                              for gid, text in state.source_groups().items()}
        self.quick = QuickPlan(Plan(), {})
        self.touched_groups: set[str] = set()
        self.desired: dict[str, DesiredUser] = {}   # lower-case id → desired (context)
        self.subset: dict[str, DesiredUser] = {}
        self.targets: dict[str, TargetUser] = {}
        self.scope_change = 0
        self.lookups: list[DesiredUser] = []
        self.original: dict[str, str] = {}          # lower-case id → directory id


    def read_groups(self) -> None:
        for item in self.delta.changes.get("groups", []):
            gid = str(item.get("id", "")).lower()
            if self.mappings.uses_app_roles and item.get("members@delta"):
                # a user's app roles come from the assigned groups they are in
                raise _Fallback("memberships changed and a mapping reads appRoleAssignments")
            if self.inputs.nested and item.get("members@delta"):
                # the snapshot holds the assigned groups' transitive members; a change in
                # any group may move them
                raise _Fallback("memberships changed and nested groups count")
            if gid not in self.stored_groups:
                if "@removed" not in item and (self.mappings.group_scope or (
                        self.inputs.assigned is None and self.mappings.group)):
                    raise _Fallback("a group the snapshot does not hold changed")
                continue  # a group whose members do not count
            if "@removed" in item:
                raise _Fallback("a group was deleted")
            if any(k not in ("id", "members@delta") and "@" not in k for k in item):
                merged = merge_user(self.stored_groups[gid], item)
                if self.mappings.group_scope and not self.mappings.group_scope.matches(
                        source_reader(merged)):
                    raise _Fallback("a group left group_scope")
                self.stored_groups[gid] = merged
                self.quick.group_rows.append((gid, stored_user(merged)))
                self.touched_groups.add(gid)
            for member in item.get("members@delta") or []:
                if not isinstance(member, dict) or "id" not in member:
                    continue
                if member.get("@odata.type", USER_TYPE) != USER_TYPE:
                    continue  # without nested_groups only direct user members count
                uid = str(member["id"]).lower()
                self.original.setdefault(uid, str(member["id"]))
                self.quick.member_changes.append((gid, uid, "@removed" not in member))
                self.touched_groups.add(gid)


    def read_users(self) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        partials: dict[str, dict[str, Any]] = {}
        removed: dict[str, str] = {}
        for item in self.delta.changes.get("users", []):
            uid = str(item.get("id", "")).lower()
            if not uid:
                raise _Fallback("a user change without an id")
            self.original[uid] = str(item["id"])
            if "@removed" in item:
                reason = item["@removed"].get("reason") if isinstance(
                    item["@removed"], dict) else None
                removed[uid] = str(reason or "changed")
                partials.pop(uid, None)
            else:
                partials[uid] = {**partials.get(uid, {}), **item}
                removed.pop(uid, None)
        return partials, removed

    def member_scope(self, uid: str, groups: set[str]) -> tuple[bool, str | None]:
        why = member_reason(self.inputs.assigned, uid, bool(groups & self.stored_groups.keys()))
        return why is None, why

    def scoped(self, obj: dict[str, Any], member_scope: bool,
               reason: str | None) -> DesiredUser:
        why = stored_member_reason(member_scope, reason)
        return scoped_user(obj, self.mappings, why, self.rule)


    def plan(self) -> QuickPlan:
        self.read_groups()
        partials, removed = self.read_users()
        members_moved = {uid for _, uid, _ in self.quick.member_changes}
        retried = {sid.lower() for sid in self.delta.retry}
        for sid in self.delta.retry:
            self.original.setdefault(sid.lower(), sid)
        affected = sorted(set(partials) | set(removed) | members_moved | retried)
        stored = self.state.source_users(affected)
        memberships = self.state.groups_of(affected)
        before_groups = {uid: set(groups) for uid, groups in memberships.items()}
        for gid, uid, added in self.quick.member_changes:
            (memberships.setdefault(uid, set()).add if added
             else memberships.setdefault(uid, set()).discard)(gid)
        objects = {uid: json.loads(text) for uid, (text, _, _) in stored.items()}
        for uid in affected:  # the directory's spelling of each id (the links use it)
            self.original[uid] = str(objects[uid]["id"]) if uid in objects \
                else self.original.get(uid, uid)
        held = stored_targets(self.state, [self.original[u] for u in affected], self.mappings)
        activated: list[str] = []
        gone: set[str] = set()
        hard: set[str] = set()
        for uid in affected:
            old_obj = objects.get(uid)
            old = self.scoped(old_obj, stored[uid][1], stored[uid][2]) if old_obj else None
            sid = self.original[uid]
            if uid in removed:
                self.quick.dropped.append(uid)
                self.scope_change -= int(bool(old and old.in_scope))
                self.touched_groups |= before_groups.get(uid, set())
                if sid in self.options.links:
                    if sid not in held or held[sid].id != self.options.links[sid]:
                        raise _Fallback("a deleted user has no stored target state")
                    gone.add(sid)
                    self.targets[held[sid].id] = held[sid]
                    if removed[uid] == "deleted":
                        hard.add(sid)
                continue
            if old_obj is None and uid not in partials:
                raise _Fallback("a user the snapshot does not know")
            obj = merge_user(old_obj or {}, partials.get(uid, {}))
            obj["id"] = sid
            in_members, reason = self.member_scope(uid, memberships.get(uid, set()))
            self.quick.source_rows.append(user_row(obj, in_members, reason))
            new = self.scoped(obj, in_members, reason)
            self.desired[uid] = new
            self.scope_change += int(new.in_scope) - int(bool(old and old.in_scope))
            if old is None or (old.in_scope, old.active) != (new.in_scope, new.active):
                self.touched_groups |= before_groups.get(uid, set()) | memberships.get(
                    uid, set())
                if new.active:
                    activated.append(uid)
            elif uid in retried and new.active:
                # a retried create may provision a manager its reports are still waiting for
                self.touched_groups |= memberships.get(uid, set())
                activated.append(uid)
            self.add_user(sid, new, held)
        self.add_reports(activated)
        self.look_up()
        context = self.context()
        groups, target_groups = self.groups()
        options = replace(self.options, gone_candidates=frozenset(gone),
                          hard_deleted=frozenset(hard))
        plan = build_plan(list(self.subset.values()),
                          [*self.targets.values(), *self.old_managers()], self.mappings,
                          groups, target_groups, options, context=context)
        last = self.state.last_in_scope()
        in_scope = last + self.scope_change if last is not None else plan.in_scope
        self.quick.plan = replace(plan, in_scope=in_scope, target_users=len(self.targets))
        self.quick.before = dict(self.targets)
        return self.quick

    def add_user(self, sid: str, user: DesiredUser, held: dict[str, TargetUser]) -> None:
        if sid in self.options.links:
            target = held.get(sid)
            if target is None or target.id != self.options.links[sid]:
                raise _Fallback("a changed user has no stored target state")
            self.subset[sid.lower()] = user
            self.targets[target.id] = target
        elif user.active:
            if user.unique:
                raise _Fallback("a new user has a SelectUniqueValue mapping")
            self.lookups.append(user)
        # inactive and never matched: nothing in the target to change

    def look_up(self) -> None:
        """Find the new users in the target by their matching attribute (one GET each)."""
        if len(self.lookups) > self.inputs.max_lookups:
            raise _Fallback(f"{len(self.lookups)} new users to look up")
        linked = set(self.options.links.values())
        for user in self.lookups:
            for found in self.inputs.lookup(user):
                if found.id in linked:
                    raise _Fallback("a new user matches a target user linked to another")
                self.targets[found.id] = found
            self.subset[user.source_id.lower()] = user

    def add_reports(self, activated: list[str]) -> None:
        """A manager provisioned or enabled now is set on its direct reports."""
        gone = set(self.quick.dropped)
        reports = [r for r in self.state.reports_of(activated)
                   if r not in self.desired and r not in gone]
        rows = self.state.source_users(reports)
        ids = [str(json.loads(rows[r][0])["id"]) for r in reports if r in rows]
        held = stored_targets(self.state, ids, self.mappings)
        for uid in reports:
            if uid not in rows:
                continue
            text, member_scope, reason = rows[uid]
            user = self.scoped(json.loads(text), member_scope, reason)
            self.desired[uid] = user
            if user.source_id in self.options.links:
                self.add_user(user.source_id, user, held)

    def context(self) -> list[DesiredUser]:
        """Every directory user planning may ask about: the changed users, their managers,
        and every member of the groups planned."""
        wanted = {u.manager.lower() for u in self.subset.values() if u.manager}
        if self.mappings.group:
            for members in self.state.members_of(sorted(self.touched_groups)).values():
                wanted |= members
            for gid, uid, added in self.quick.member_changes:
                if added and gid in self.touched_groups:
                    wanted.add(uid)
        missing = sorted(wanted - self.desired.keys())
        for uid, (text, member_scope, reason) in self.state.source_users(missing).items():
            self.desired[uid] = self.scoped(json.loads(text), member_scope, reason)
        return list(self.desired.values())

    def groups(self) -> tuple[list[DesiredGroup], list[TargetGroup]]:
        if not self.mappings.group or not self.touched_groups:
            return [], []
        touched = sorted(self.touched_groups)
        members = self.state.members_of(touched)
        for gid, uid, added in self.quick.member_changes:
            if gid in members:
                (members[gid].add if added else members[gid].discard)(uid)
        gone = set(self.quick.dropped)
        desired = []
        for gid in touched:
            in_scope = tuple(sorted(self.desired[u].source_id for u in members[gid]
                                    if u not in gone and u in self.desired
                                    and self.desired[u].in_scope))
            desired.append(desired_group(self.stored_groups[gid], self.mappings, in_scope))
        return desired, self.inputs.target_groups()

    def old_managers(self) -> list[TargetUser]:
        """The target users the changed users' current managers are, to show their names."""
        by_target = {tid: sid for sid, tid in self.options.links.items()}
        old = sorted({by_target[t.manager] for t in self.targets.values()
                      if t.manager in by_target and t.manager not in self.targets})
        return [t for t in stored_targets(self.state, old, self.mappings).values()
                if t.id not in self.targets]


def plan_from_snapshot(state: State, delta: Delta, mappings: Mappings, digest: str,
                       options: PlanOptions, rule: UserRule | None,
                       inputs: SnapshotInputs) -> QuickPlan | str:
    """Plan an incremental run from the snapshot — the stored directory and what the
    target held after the last run — or say why it cannot (the caller then reads the
    directory). Attribute changes, enable/disable, soft and hard deletes, new users and
    membership changes of the groups that count are planned as a full sync would; a
    new user is looked up in the target by its matching attribute, the groups planned are
    listed. Nothing is written."""
    if state.get_meta(SNAPSHOT_META) != digest:
        return "no complete snapshot from the last run"
    try:
        return _SnapshotPlanner(state, delta, mappings, options, rule, inputs).plan()
    except _Fallback as exc:
        return str(exc)

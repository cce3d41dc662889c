"""Incremental runs: what Graph's delta rounds changed, and planning from the snapshot.

A real run keeps a snapshot in the state database: every directory user as last read
(with whether assignments and group memberships put it in scope, and its manager), the
direct user members of the groups that count, and, on each link, what the target held for
that user after the run (:class:`~genesys_prov.plan.model.TargetUser` as JSON). An incremental
run merges the partial objects Graph sends with the stored ones, recomputes scope from the
stored members and the re-read assignments, and plans the changed users and groups with
:func:`~genesys_prov.plan.model.build_plan` — full-sync semantics, without reading the directory;
of the target only a lookup per new user and the groups listing when members change. What
the snapshot cannot answer alone (nested memberships, deleted groups, groups entering or
leaving ``group_scope``, SelectUniqueValue creates, …) falls back to reading the directory
(or a full sync), which refreshes the snapshot.

The snapshot is trusted only when the run that wrote it finished (the ``snapshot`` meta
key holds the settings digest it was written under); a run clears the key before it
writes anything, so a killed run leaves no half-written snapshot behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from genesys_prov.mapping.mappings import (
    DesiredGroup,
    DesiredUser,
    Mappings,
    desired_group,
    manager_id,
    read_source,
)
from genesys_prov.plan.model import (
    Action,
    Change,
    MemberRef,
    Plan,
    PlanOptions,
    TargetGroup,
    TargetUser,
    build_plan,
)
from genesys_prov.source.scope import (
    DEFAULT_ACCESS_REASON,
    NOT_ASSIGNED,
    USER_TYPE,
    Assignments,
    UserRule,
    scoped_user,
)
from genesys_prov.state.db import State
from genesys_prov.target import apply as applying

SNAPSHOT_META = "snapshot"
BATCH = 2000


@dataclass
class Delta:
    """What the stored delta links returned: the changes and the new links."""

    links: dict[str, str] = field(default_factory=dict)
    changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    assigned: Assignments | None = None  # the app's assignments, re-read with the delta
    retry: set[str] = field(default_factory=set)  # escrowed users due for another try

    @property
    def count(self) -> int:
        """Number of changed objects."""
        return sum(len(c) for c in self.changes.values())

    def describe(self) -> str:
        """What this incremental run is about, for the output."""
        retried = f", {len(self.retry)} escrowed change(s) retried" if self.retry else ""
        return f"{self.count} directory change(s){retried}"

    def changed_user_ids(self) -> set[str]:
        """Users whose desired state may differ: changed, removed, added to / removed
        from a group, or waiting in escrow for another try."""
        ids = {str(c["id"]) for c in self.changes.get("users", []) if "id" in c} | self.retry
        for group in self.changes.get("groups", []):
            for member in group.get("members@delta") or []:
                if isinstance(member, dict) and "id" in member:
                    ids.add(str(member["id"]))
        return ids


# --- the source side of the snapshot --------------------------------------------------------

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


# --- the target side of the snapshot --------------------------------------------------------

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


def applied_rows(plan: Plan, before: Mapping[str, TargetUser],
                 outcomes: Iterable[applying.Outcome], mappings: Mappings,
                 links: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """(source id, target snapshot JSON or None) for every user the run matched or
    changed: what the target holds now. A failed or skipped change makes it unknown
    (None), so a later run reads the target before planning that user again."""
    now: dict[str, TargetUser | None] = {}
    for source_id, target_id in plan.matched:
        now[source_id] = before.get(target_id)
    for outcome in outcomes:
        change = outcome.change
        if not isinstance(change, Change) or change.action is Action.DELETE:
            continue
        sid = change.source_id
        if outcome.status in (applying.SUCCESS, applying.ADOPTED) and outcome.target_id:
            if outcome.status == applying.ADOPTED:
                now[sid] = None  # adopted an existing user: what it holds was not read
                continue
            prior = now.get(sid) or (before.get(change.target_id) if change.target_id
                                     else None)
            now[sid] = after_change(prior, change, outcome.target_id, mappings, links)
        else:
            now[sid] = None
    return [(sid, target_json(t) if t is not None else None) for sid, t in now.items()]


# --- planning from the snapshot -------------------------------------------------------------

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


def _reader(obj: dict[str, Any]) -> Callable[[str], Any]:
    return lambda name: read_source(obj, name)


def _member_reason(member_scope: bool, reason: str | None) -> str | None:
    return None if member_scope else (reason or NOT_ASSIGNED)


class Fallback(Exception):
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

    # source side -----------------------------------------------------------------------

    def read_groups(self) -> None:
        for item in self.delta.changes.get("groups", []):
            gid = str(item.get("id", "")).lower()
            if self.inputs.nested and item.get("members@delta"):
                # the snapshot holds the assigned groups' transitive members; a change in
                # any group may move them
                raise Fallback("memberships changed and nested groups count")
            if gid not in self.stored_groups:
                if "@removed" not in item and (self.mappings.group_scope or (
                        self.inputs.assigned is None and self.mappings.group)):
                    raise Fallback("a group the snapshot does not hold changed")
                continue  # a group whose members do not count
            if "@removed" in item:
                raise Fallback("a group was deleted")
            if any(k not in ("id", "members@delta") and "@" not in k for k in item):
                merged = merge_user(self.stored_groups[gid], item)
                if self.mappings.group_scope and not self.mappings.group_scope.matches(
                        _reader(merged)):
                    raise Fallback("a group left group_scope")
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
                raise Fallback("a user change without an id")
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
        assigned = self.inputs.assigned
        if assigned is None:
            return True, None
        if uid in assigned.users or groups & self.stored_groups.keys():
            return True, None
        return False, (DEFAULT_ACCESS_REASON if uid in assigned.default_only_users
                       else NOT_ASSIGNED)

    def scoped(self, obj: dict[str, Any], member_scope: bool,
               reason: str | None) -> DesiredUser:
        return scoped_user(obj, self.mappings, _member_reason(member_scope, reason), self.rule)

    # planning --------------------------------------------------------------------------

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
                        raise Fallback("a deleted user has no stored target state")
                    gone.add(sid)
                    self.targets[held[sid].id] = held[sid]
                    if removed[uid] == "deleted":
                        hard.add(sid)
                continue
            if old_obj is None and uid not in partials:
                raise Fallback("a user the snapshot does not know")
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
                raise Fallback("a changed user has no stored target state")
            self.subset[sid.lower()] = user
            self.targets[target.id] = target
        elif user.active:
            if user.unique:
                raise Fallback("a new user has a SelectUniqueValue mapping")
            self.lookups.append(user)
        # inactive and never matched: nothing in the target to change

    def look_up(self) -> None:
        """Find the new users in the target by their matching attribute (one GET each)."""
        if len(self.lookups) > self.inputs.max_lookups:
            raise Fallback(f"{len(self.lookups)} new users to look up")
        linked = set(self.options.links.values())
        for user in self.lookups:
            for found in self.inputs.lookup(user):
                if found.id in linked:
                    raise Fallback("a new user matches a target user linked to another")
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
    except Fallback as exc:
        return str(exc)

"""Incremental runs: what Graph's delta rounds changed, and planning from the snapshot.

A real run keeps a snapshot in the state database: every directory user as last read
(with whether assignments and group memberships put it in scope), and, on each link, what
the target held for that user after the run (:class:`~genesys_prov.plan.TargetUser` as
JSON). When a delta round shows only attribute changes of users the snapshot knows — no
one enters or leaves scope, is enabled or disabled, deleted, or moves between groups — the
run plans from the snapshot alone: the partial objects Graph sends are merged with the
stored ones, and the result is compared with what the target held. That costs the delta
pages and one write per changed user; nothing is read from the target. Anything else falls
back to the general incremental plan (or a full sync), which refreshes the snapshot.

The snapshot is trusted only when the run that wrote it finished (the ``snapshot`` meta
key holds the settings digest it was written under); a run clears the key before it
writes anything, so a killed run leaves no half-written snapshot behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from genesys_prov import apply as applying
from genesys_prov.directory import UserRule, scoped_user
from genesys_prov.mapping import DesiredUser, Mappings
from genesys_prov.plan import (
    Action,
    Change,
    MemberRef,
    Plan,
    PlanOptions,
    TargetUser,
    build_plan,
)
from genesys_prov.state import State

SNAPSHOT_META = "snapshot"
BATCH = 2000


@dataclass
class Delta:
    """What the stored delta links returned: the changes and the new links."""

    links: dict[str, str] = field(default_factory=dict)
    changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Number of changed objects."""
        return sum(len(c) for c in self.changes.values())

    def changed_user_ids(self) -> set[str]:
        """Users whose desired state may differ: changed, removed, or added to / removed
        from a group."""
        ids = {str(c["id"]) for c in self.changes.get("users", []) if "id" in c}
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
    """Collects the users a full directory read sees and stores them in batches, so
    memory stays flat; :meth:`finish` drops users the read did not see."""

    def __init__(self, state: State, run_id: str) -> None:
        self.state = state
        self.run_id = run_id
        self.rows: list[tuple[str, str, bool, str | None]] = []

    def keep(self, user: dict[str, Any], member_reason: str | None) -> None:
        """The ``keep`` callback of :func:`~genesys_prov.directory.read_directory`."""
        self.rows.append((str(user["id"]), stored_user(user), member_reason is None,
                          member_reason))
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Store what is collected."""
        if self.rows:
            self.state.put_source_users(self.run_id, self.rows)
            self.rows = []

    def finish(self) -> None:
        """Store the rest and forget users the read did not see (a complete read)."""
        self.flush()
        self.state.drop_source_users_not_read_by(self.run_id)


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
    """A plan made from the snapshot, and the merged users to store once it is applied."""

    plan: Plan
    before: dict[str, TargetUser]
    source_rows: list[tuple[str, str, bool, str | None]]


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


def _member_reason(member_scope: bool, reason: str | None) -> str | None:
    return None if member_scope else (reason or "not assigned to the application")


def plan_from_snapshot(state: State, delta: Delta, mappings: Mappings, digest: str,
                       options: PlanOptions, rule: UserRule | None) -> QuickPlan | str:
    """Plan an incremental run from the snapshot alone, or say why it cannot (the caller
    then reads the directory). Nothing is written."""
    if state.get_meta(SNAPSHOT_META) != digest:
        return "no complete snapshot from the last run"
    if delta.changes.get("groups"):
        return "groups changed"
    partials: dict[str, dict[str, Any]] = {}
    for item in delta.changes.get("users", []):
        if "@removed" in item:
            return "a user was deleted"
        sid = str(item.get("id", ""))
        partials[sid] = {**partials.get(sid, {}), **item}
    stored = state.source_users(list(partials))
    if len(stored) != len(partials):
        return "a user the snapshot does not know"
    held = stored_targets(state, list(partials), mappings)
    subset: list[DesiredUser] = []
    targets: dict[str, TargetUser] = {}
    rows: list[tuple[str, str, bool, str | None]] = []
    for sid, partial in partials.items():
        text, member_scope, reason = stored[sid]
        member_reason = _member_reason(member_scope, reason)
        old_obj = json.loads(text)
        new_obj = merge_user(old_obj, partial)
        rows.append((sid, stored_user(new_obj), member_scope, reason))
        old = scoped_user(old_obj, mappings, member_reason)
        new = scoped_user(new_obj, mappings, member_reason, rule)
        if (old.in_scope, old.active) != (new.in_scope, new.active):
            return "a user entered or left scope, or was enabled or disabled"
        if sid not in options.links:
            if new.active:
                return "a changed user in scope is not linked"
            continue  # out of scope or disabled, and not in the target: nothing to do
        target = held.get(sid)
        if target is None or target.id != options.links[sid]:
            return "a changed user has no stored target state"
        subset.append(new)
        targets[target.id] = target
    # managers: the new ones as directory users (are they provisioned?), the old ones as
    # target users (to show their names)
    managers = sorted({u.manager for u in subset if u.manager} - set(partials))
    context = list(subset)
    for text, member_scope, reason in state.source_users(managers).values():
        context.append(scoped_user(json.loads(text), mappings,
                                   _member_reason(member_scope, reason), rule))
    by_target = {tid: sid for sid, tid in options.links.items()}
    old_managers = sorted({by_target[t.manager] for t in targets.values()
                           if t.manager in by_target and t.manager not in targets})
    shown = [t for t in stored_targets(state, old_managers, mappings).values()
             if t.id not in targets]
    plan = build_plan(subset, [*targets.values(), *shown], mappings, (), (),
                      replace(options, gone_candidates=frozenset()), context=context)
    plan = replace(plan, in_scope=state.last_in_scope() or plan.in_scope,
                   target_users=len(targets))
    return QuickPlan(plan, targets, rows)

"""Building the plan: a pure function of (desired users, target users) that yields typed
changes (:func:`build_plan`), and the reduction of SCIM resources to what it reads.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from genesys_prov.mapping import scimpath
from genesys_prov.mapping.desired import DesiredGroup, DesiredUser
from genesys_prov.mapping.mappings import Mappings
from genesys_prov.plan.groups import GroupPlanner
from genesys_prov.plan.model import (
    LATE_WAVE,
    REMOVALS,
    Action,
    AttributeChange,
    Change,
    Failure,
    GroupChange,
    MemberRef,
    Plan,
    PlanOptions,
    PlanWarning,
    Skipped,
    TargetGroup,
    TargetUser,
    Unmanaged,
)


def _version(resource: dict[str, Any]) -> str | None:
    meta = resource.get("meta")
    version = meta.get("version") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


def target_user(resource: dict[str, Any], mappings: Mappings) -> TargetUser:
    """Reduce a SCIM user resource to a :class:`TargetUser`."""
    paths = mappings.user_paths()
    manager_mapping = mappings.manager_mapping
    manager = None
    if manager_mapping is not None:
        value = scimpath.get_value(resource, manager_mapping.path)
        manager = value if isinstance(value, str) and value else None
    return TargetUser(
        id=str(resource.get("id")),
        user_name=str(resource.get("userName", "")),
        active=resource.get("active", True) is not False,
        version=_version(resource),
        values=tuple(scimpath.get_value(resource, p) for _, p in paths),
        present=tuple(scimpath.has_element(resource, p) for _, p in paths),
        manager=manager,
    )


def target_group(resource: dict[str, Any], mappings: Mappings) -> TargetGroup:
    """Reduce a SCIM group resource to a :class:`TargetGroup`."""
    members = resource.get("members") or []
    ids = frozenset(str(m["value"]) for m in members if isinstance(m, dict) and "value" in m)
    return TargetGroup(
        id=str(resource.get("id")),
        display_name=str(resource.get("displayName", "")),
        version=_version(resource),
        values={name: scimpath.get_value(resource, path)
                for name, path in mappings.group_paths()},
        members=ids,
    )


_BY_ATTRIBUTE = operator.attrgetter("attribute")


def _norm(path: scimpath.TargetPath, value: Any) -> Any:
    return value.lower() if isinstance(value, str) and path.case_insensitive else value


def _why_inactive(user: DesiredUser) -> str:
    if not user.in_scope:
        return f"out of scope: {user.scope_reason or 'not in scope'}"
    return "account is disabled" if user.soft_deleted else "mapped active is false"


def _gone_user(source_id: str, user_name: str) -> DesiredUser:
    """A stand-in for a linked user who is no longer in the directory."""
    return DesiredUser(source_id=source_id, identity=user_name or source_id,
                       soft_deleted=True, active=False, in_scope=False,
                       scope_reason="deleted in the directory")


@dataclass
class _Pending:
    """A user change being assembled (the manager pass may still add to it)."""

    user: DesiredUser
    action: Action
    target: TargetUser | None
    items: list[AttributeChange]
    reason: str


class _Planner:
    """One planning pass; see :func:`build_plan`."""

    def __init__(self, mappings: Mappings, options: PlanOptions) -> None:
        self.mappings = mappings
        self.options = options
        self.sets_active = mappings.active_mapping is not None
        self.paths = dict(mappings.user_paths())
        self.position = {name: i for i, (name, _) in enumerate(mappings.user_paths())}
        self.match_paths = {m.target: m.path for m in mappings.user_match}
        self.skipped: list[Skipped] = []
        self.failures: list[Failure] = []
        self.pending: dict[str, _Pending] = {}
        self.links: dict[str, TargetUser] = {}      # source id → matched target user
        self.users: dict[str, DesiredUser] = {}
        self.unchanged: set[str] = set()
        self.out_of_scope = 0
        self.target: list[TargetUser] = []
        self.taken: dict[str, set[Any]] = {}
        self.context: dict[str, DesiredUser] = {}  # incremental: every directory user
        self.matched_groups: list[tuple[str, str]] = []
        self.resolved: dict[str, MemberRef | None] = {}  # see _provisioned

    def plan_users(self, desired: Iterable[DesiredUser], target: list[TargetUser]) -> None:
        self.target = target
        index: dict[str, dict[Any, list[TargetUser]]] = {t: {} for t in self.match_paths}
        for snap in target:
            for name, path in self.match_paths.items():
                value = snap.values[self.position[name]]
                if value is not None:
                    index[name].setdefault(_norm(path, value), []).append(snap)
        claimed: dict[str, str] = {}
        by_id = {t.id: t for t in target} if self.options.links else {}
        for user in sorted(desired, key=lambda d: d.source_id):
            self.users[user.source_id] = user
            if user.error:
                self.failures.append(Failure(user.identity, user.source_id, "MappingFailed",
                                             user.error))
                continue
            if not user.match_keys:
                names = ", ".join(self.match_paths)
                self.failures.append(Failure(
                    user.identity, user.source_id, "MandatoryFieldsMissing",
                    f"no value for any matching attribute ({names})"))
                continue
            found: list[TargetUser] = []
            linked = by_id.get(self.options.links.get(user.source_id, ""))
            if linked is not None:  # the state's link wins: a renamed user stays matched
                found = [linked]
            for name, value in user.match_keys:
                if found:
                    break
                found = index[name].get(_norm(self.match_paths[name], value), [])
            if len(found) > 1:
                ids = tuple(sorted(t.id for t in found))
                self.failures.append(Failure(
                    user.identity, user.source_id, "DuplicateTargetEntries",
                    f"{len(found)} target users match ({', '.join(ids)})", ids))
                continue
            if not found:
                self._unmatched(user)
                continue
            snap = found[0]
            if snap.id in claimed:
                self.failures.append(Failure(
                    user.identity, user.source_id, "DuplicateSourceEntries",
                    f"target user {snap.id} is already matched by source user "
                    f"{claimed[snap.id]}", (snap.id,)))
                continue
            claimed[snap.id] = user.source_id
            self.links[user.source_id] = snap
            self._matched(user, snap)

    def _taken(self, name: str) -> set[Any]:
        """Values of a mapped attribute the target already holds (plus this run's picks)."""
        if name not in self.taken:
            path = self.paths[name]
            i = self.position[name]
            self.taken[name] = {_norm(path, t.values[i]) for t in self.target
                                if t.values[i] is not None}
        return self.taken[name]

    def _pick_unique(self, user: DesiredUser) -> dict[str, Any] | None:
        """SelectUniqueValue: the first candidate no target user holds and no other create
        of this run took — checked against the target listing this run already read, so it
        costs no request. None (and a failure) when every candidate is taken."""
        picks: dict[str, Any] = {}
        for name, candidates in user.unique.items():
            taken = self._taken(name)
            path = self.paths[name]
            pick = next((c for c in candidates if _norm(path, c) not in taken), None)
            if pick is None:
                shown = ", ".join(map(str, candidates)) or "none"
                self.failures.append(Failure(
                    user.identity, user.source_id, "UniqueValueUnavailable",
                    f"mapping {name!r}: SelectUniqueValue: every candidate is already taken "
                    f"in the target ({shown})"))
                return None
            taken.add(_norm(path, pick))
            picks[name] = pick
        return picks

    def _unmatched(self, user: DesiredUser) -> None:
        if user.active:
            picks = self._pick_unique(user) if user.unique else {}
            if picks is None:
                return
            attrs = {**user.create_only, **picks, **user.values}
            redacted = user.redacted
            items = [AttributeChange(k, None, v, "replace", k in redacted)
                     for k, v in attrs.items()]
            if self.sets_active:
                items.append(AttributeChange("active", None, True))
            self.pending[user.source_id] = _Pending(user, Action.CREATE, None, items,
                                                    "no matching user in the target")
        elif user.in_scope:
            self.skipped.append(Skipped(user.identity, user.source_id,
                                        f"not created: {_why_inactive(user)} and the user is "
                                        "not in the target"))
        elif user.scope_reason and "Default Access" in user.scope_reason:
            self.skipped.append(Skipped(user.identity, user.source_id, user.scope_reason))
        else:
            self.out_of_scope += 1

    def _matched(self, user: DesiredUser, snap: TargetUser) -> None:
        if not user.active:
            if not snap.active:
                self.unchanged.add(user.source_id)
            elif not user.in_scope and self.options.skip_out_of_scope_deletions:
                self.skipped.append(Skipped(
                    user.identity, user.source_id,
                    f"{_why_inactive(user)}; not deactivated (skip_out_of_scope_deletions)"))
            else:
                self.pending[user.source_id] = _Pending(
                    user, Action.DEACTIVATE, snap, [AttributeChange("active", True, False)],
                    _why_inactive(user))
            return
        diffs = []
        for name, new in user.values.items():
            path = self.paths[name]
            i = self.position[name]
            old = snap.values[i]
            if old is not None and scimpath.same_value(path, old, new):
                continue
            op = scimpath.patch_operation(path, new, snap.present[i])["op"]
            diffs.append(AttributeChange(name, old, new, op, redacted=name in user.redacted))
        if not snap.active:
            self.pending[user.source_id] = _Pending(
                user, Action.REACTIVATE, snap, [AttributeChange("active", False, True), *diffs],
                "account is enabled in the directory")
        else:
            self.pending[user.source_id] = _Pending(user, Action.UPDATE, snap, diffs,
                                                    "attributes differ")

    def plan_hard_deletes(self, target: list[TargetUser]) -> None:
        """Linked users who are no longer in the directory. Only those Graph confirms as
        hard-deleted are deleted in the target (per ``on_hard_delete``); the others — soft-
        deleted (restorable for 30 days) or unknown — are deactivated, the safe choice: a
        restored user gets their Genesys account back with its roles. Only linked users."""
        if not self.options.links:
            return
        by_id = {t.id: t for t in target}
        claimed = {snap.id for snap in self.links.values()}
        candidates = self.options.gone_candidates
        for source_id, target_id in sorted(self.options.links.items()):
            if source_id in self.users or target_id in claimed:
                continue
            if candidates is not None and source_id not in candidates:
                continue
            snap = by_id.get(target_id)
            if snap is None:
                continue
            hard = source_id in self.options.hard_deleted
            reason = "deleted in the directory" if hard else \
                "soft-deleted in the directory (or no longer readable)"
            if hard and self.options.on_hard_delete == "delete":
                self.pending[source_id] = _Pending(
                    _gone_user(source_id, snap.user_name), Action.DELETE, snap, [],
                    reason)
            elif snap.active:
                self.pending[source_id] = _Pending(
                    _gone_user(source_id, snap.user_name), Action.DEACTIVATE, snap,
                    [AttributeChange("active", True, False)], reason)

    def _provisioned(self, source_id: str | None) -> MemberRef | None:
        """A reference to the target user of an in-scope, active directory user that exists
        in the target or is created by this plan; None otherwise. Asked only once the users
        are planned (managers, waves, groups ask up to three times per user), when the
        answer no longer changes: each source id is resolved once."""
        if source_id is None:
            return None
        if source_id in self.resolved:
            return self.resolved[source_id]
        ref = self.resolved[source_id] = self._resolve(source_id)
        return ref

    def _resolve(self, source_id: str) -> MemberRef | None:
        """:meth:`_provisioned` for one source id, worked out."""
        user = self.users.get(source_id) or self.context.get(source_id)
        if user is None or not user.active:
            return None
        snap = self.links.get(source_id)
        if snap is not None:
            return MemberRef(snap.id, source_id, user.identity)
        pending = self.pending.get(source_id)
        if pending is not None and pending.action is Action.CREATE:
            return MemberRef(None, source_id, user.identity)
        if source_id not in self.users and source_id in self.options.links:
            # an incremental plan: an unchanged user the state links to a target user
            return MemberRef(self.options.links[source_id], source_id, user.identity)
        return None

    def plan_managers(self, by_target_id: dict[str, TargetUser]) -> None:
        mapping = self.mappings.manager_mapping
        if mapping is None:
            return
        name = mapping.target
        for source_id, user in self.users.items():
            if not user.active or (source_id not in self.pending
                                   and source_id not in self.links):
                continue
            snap = self.links.get(source_id)
            current = snap.manager if snap is not None else None
            wanted = self._provisioned(user.manager)
            if user.manager is not None and wanted is None:
                manager = self.users.get(user.manager) or self.context.get(user.manager)
                who = manager.identity if manager else user.manager
                self.skipped.append(Skipped(
                    user.identity, source_id,
                    f"manager {who} is not provisioned (out of scope, disabled or failed); "
                    "the reference is set by a later run once it is", kind="manager"))
                continue
            if wanted is not None and wanted.target_id is not None and \
                    wanted.target_id == current:
                continue
            if wanted is None and current is None:
                continue
            old = None
            if current is not None:
                holder = by_target_id.get(current)
                old = MemberRef(current, None, holder.user_name if holder else current)
            item = AttributeChange(name, old, wanted, "remove" if wanted is None else "replace")
            pending = self.pending.get(source_id)
            if pending is None:
                assert snap is not None
                pending = _Pending(user, Action.UPDATE, snap, [], "manager differs")
                self.pending[source_id] = pending
            elif pending.action is Action.DEACTIVATE:
                continue
            pending.items.append(item)

    def _waves(self) -> dict[str, int]:
        """Creates in manager-tree order: a user's wave is one more than its manager's when
        the manager is created in the same run. A cycle is cut (its manager is set by a
        later PATCH in the same run)."""
        waves: dict[str, int] = {}
        creating = {sid for sid, p in self.pending.items() if p.action is Action.CREATE}
        for start in sorted(creating):
            # walk up the manager chain (iteratively: org charts can be deep) until a user
            # whose wave is known or who has no manager created in this run
            chain: list[str] = []
            seen: set[str] = set()
            sid: str | None = start
            base = -1
            while sid is not None and sid not in waves:
                chain.append(sid)
                seen.add(sid)
                manager = self.users[sid].manager
                if manager is None or manager not in creating or manager in seen \
                        or self._provisioned(manager) is None:
                    sid = None
                else:
                    sid = manager
            if sid is not None:
                base = waves[sid]
            for offset, member in enumerate(reversed(chain), start=1):
                waves[member] = base + offset
        return waves

    def user_changes(self) -> list[Change]:
        waves = self._waves() if self.mappings.manager_mapping is not None else {}
        manager = self.mappings.manager_mapping
        changes: list[Change] = []
        late: list[Change] = []
        for sid, p in self.pending.items():
            items = p.items
            if p.action is Action.CREATE and manager is not None:
                names = list(map(_BY_ATTRIBUTE, items))  # the first manager item, if any
                ref = items[names.index(manager.target)].new if manager.target in names \
                    else None
                if isinstance(ref, MemberRef) and ref.target_id is None and \
                        waves.get(ref.source_id or "", -1) >= waves.get(sid, 0):
                    # a manager cycle: create without the manager, set it right after
                    items = [i for i in items if i.attribute != manager.target]
                    late.append(Change(Action.UPDATE, p.user.identity, sid, None,
                                       (AttributeChange(manager.target, None, ref),),
                                       reason="manager in a cycle: set after the creates",
                                       wave=LATE_WAVE))
            if not items and p.action is not Action.DELETE:
                self.unchanged.add(sid)
                continue
            changes.append(Change(
                p.action, p.user.identity, sid, p.target.id if p.target else None,
                tuple(sorted(items, key=_BY_ATTRIBUTE)), reason=p.reason,
                version=p.target.version if p.target else None, wave=waves.get(sid, 0)))
        return changes + late

    def plan_groups(self, desired: Iterable[DesiredGroup],
                    target: list[TargetGroup]) -> list[GroupChange]:
        """Plan the groups (see :mod:`genesys_prov.plan.groups`) with what the users'
        pass matched and created."""
        managed = {snap.id for snap in self.links.values()} | set(self.options.links.values())
        names = {snap.id: snap.user_name for snap in self.links.values()}
        groups = GroupPlanner(self.mappings, self.options, self._provisioned, managed, names)
        changes = groups.plan(desired, target)
        self.failures += groups.failures
        self.skipped += groups.skipped
        self.matched_groups += groups.matched
        return changes




def build_plan(desired: Iterable[DesiredUser],
               target: Sequence[TargetUser | dict[str, Any]], mappings: Mappings,
               groups: Iterable[DesiredGroup] = (),
               target_groups: Sequence[TargetGroup | dict[str, Any]] = (),
               options: PlanOptions | None = None,
               context: Sequence[DesiredUser] | None = None) -> Plan:
    """Compare the directory with the target and return the plan.

    Pure: no I/O. ``target`` holds :class:`TargetUser` snapshots (SCIM dicts are accepted
    and reduced). Matching follows the mappings' ``match`` precedence; two target users for
    one source user is a ``DuplicateTargetEntries`` failure, never a guess. Managers are
    resolved to target ids (or to users this plan creates, which are then created managers
    first); group members are the target ids of the group's in-scope members."""
    opts = options or PlanOptions()
    planner = _Planner(mappings, opts)
    if context is not None:  # an incremental plan: `desired` is only the changed users
        planner.context = {u.source_id: u for u in context}
    users = [t if isinstance(t, TargetUser) else target_user(t, mappings) for t in target]
    planner.plan_users(desired, users)
    planner.plan_hard_deletes(users)
    planner.plan_managers({u.id: u for u in users} if mappings.manager_mapping else {})
    changes = planner.user_changes()
    tgroups = [g if isinstance(g, TargetGroup) else target_group(g, mappings)
               for g in target_groups]
    group_list = list(groups)
    group_changes = planner.plan_groups(group_list, tgroups) if mappings.group else []
    written = {c.source_id for c in changes if c.action not in REMOVALS}
    warnings = sorted((PlanWarning(u.identity, u.source_id, text)
                       for sid in written if (u := planner.users.get(sid)) is not None
                       for text in u.warnings),
                      key=lambda w: (w.identity.lower(), w.source_id, w.message))
    linked = {snap.id for snap in planner.links.values()}
    unmanaged = [] if context is not None else sorted(
        (Unmanaged(t.id, t.user_name, t.active) for t in users if t.id not in linked),
        key=lambda u: (u.user_name.lower(), u.target_id),
    )
    return Plan(
        changes=tuple(sorted(changes, key=lambda c: c.sort_key)),
        skipped=tuple(sorted(planner.skipped,
                             key=lambda s: (s.kind, s.identity.lower(), s.source_id))),
        failures=tuple(sorted(planner.failures,
                              key=lambda f: (f.identity.lower(), f.source_id))),
        unmanaged=tuple(unmanaged),
        unchanged=len(planner.unchanged),
        source_users=len(planner.users),
        target_users=len(users),
        group_changes=tuple(sorted(group_changes, key=lambda g: g.sort_key)),
        out_of_scope=planner.out_of_scope,
        source_groups=len(group_list),
        target_groups=len(tgroups),
        matched=tuple((sid, snap.id) for sid, snap in planner.links.items()),
        matched_groups=tuple(planner.matched_groups),
        in_scope=sum(1 for u in (context if context is not None else planner.users.values())
                     if u.in_scope),
        warnings=tuple(warnings),
    )

"""Planning groups: match each desired group (by the group mappings' ``match`` order),
then its attribute changes and the members to add and remove — only members this tool
manages are removed unless ``remove_unmanaged_members``. Groups are created only with
``create_groups`` (Genesys cannot create groups over SCIM)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from genesys_prov.mapping.desired import DesiredGroup
from genesys_prov.mapping.mappings import Mappings
from genesys_prov.plan.model import (
    AttributeChange,
    Failure,
    GroupAction,
    GroupChange,
    MemberRef,
    PlanOptions,
    Skipped,
    TargetGroup,
)


def ref_key(ref: MemberRef) -> tuple[str, str]:
    """How members are sorted in a change: by name, then id."""
    return (ref.display.lower(), ref.target_id or ref.source_id or "")


class GroupPlanner:
    """One pass over the groups. ``provisioned`` resolves a source user id to the member
    reference it has in the target (None: not provisioned); ``managed`` are the target
    users this tool manages, ``names`` their userNames."""

    def __init__(self, mappings: Mappings, options: PlanOptions,
                 provisioned: Callable[[str | None], MemberRef | None],
                 managed: set[str], names: dict[str, str]) -> None:
        self.mappings, self.options = mappings, options
        self.provisioned, self.managed, self.names = provisioned, managed, names
        self.failures: list[Failure] = []
        self.skipped: list[Skipped] = []
        self.matched: list[tuple[str, str]] = []

    def _index(self, target: list[TargetGroup]) -> dict[str, dict[Any, list[TargetGroup]]]:
        """Target groups by each matching attribute's value."""
        match = self.mappings.group_match
        index: dict[str, dict[Any, list[TargetGroup]]] = {m.target: {} for m in match}
        for existing in target:
            for m in match:
                value = existing.values.get(m.target)
                if value is not None:
                    index[m.target].setdefault(value, []).append(existing)
        return index

    def plan(self, desired: Iterable[DesiredGroup],
             target: list[TargetGroup]) -> list[GroupChange]:
        """The group changes, sorted by source id; failures and skips are collected."""
        index = self._index(target)
        changes = []
        for group in sorted(desired, key=lambda g: g.source_id):
            if group.error:
                self.failures.append(Failure(group.identity, group.source_id, "MappingFailed",
                                             group.error))
                continue
            found: list[TargetGroup] = []
            for name, value in group.match_keys:
                found = index.get(name, {}).get(value, [])
                if found:
                    break
            if len(found) > 1:
                ids = tuple(sorted(g.id for g in found))
                self.failures.append(Failure(group.identity, group.source_id,
                                             "DuplicateTargetEntries",
                                             f"{len(found)} target groups match", ids))
                continue
            refs = [r for r in (self.provisioned(sid) for sid in group.members) if r]
            change = self._update(group, found[0], refs) if found else self._missing(group, refs)
            if change is not None:
                changes.append(change)
        return changes

    def _missing(self, group: DesiredGroup, refs: list[MemberRef]) -> GroupChange | None:
        """No target group matches: create it, or say why it is skipped."""
        if self.options.create_groups:
            attrs = tuple(AttributeChange(k, None, v) for k, v in sorted(group.values.items()))
            return GroupChange(GroupAction.CREATE, group.identity, group.source_id, None, attrs,
                               tuple(sorted(refs, key=ref_key)))
        if self.options.flavor == "genesys":
            reason = (f"no Genesys group named {group.identity!r}: create it in Genesys "
                      "(groups cannot be created over SCIM), and the next run fills it")
        else:
            reason = "no target group matches and target.create_groups is false"
        self.skipped.append(Skipped(group.identity, group.source_id, reason, kind="group"))
        return None

    def _update(self, group: DesiredGroup, tgroup: TargetGroup,
                refs: list[MemberRef]) -> GroupChange | None:
        """A matched group: its attribute changes and the members to add and remove."""
        self.matched.append((group.source_id, tgroup.id))
        attrs_changed = tuple(
            AttributeChange(k, tgroup.values.get(k), v) for k, v in sorted(group.values.items())
            if k not in dict(group.match_keys) and tgroup.values.get(k) != v)
        wanted_ids = {r.target_id for r in refs if r.target_id}
        add = [r for r in refs if r.target_id is None or r.target_id not in tgroup.members]
        removable = tgroup.members - wanted_ids
        if not self.options.remove_unmanaged_members:
            removable &= self.managed
        remove = [MemberRef(tid, None, self.names.get(tid, tid)) for tid in removable]
        if not (attrs_changed or add or remove):
            return None
        return GroupChange(GroupAction.UPDATE, group.identity, group.source_id, tgroup.id,
                           attrs_changed, tuple(sorted(add, key=ref_key)),
                           tuple(sorted(remove, key=ref_key)), tgroup.version)

"""Reading the directory and deciding who is in scope.

``scope: assigned`` (the default, as in Entra): the users assigned to the enterprise app,
plus the direct members of the groups assigned to it (all nested members with
``nested_groups: true``). Assignments whose only role is Default Access are excluded and
reported. ``scope: all``: every user and every group. Either way the scoping filters of
the mappings narrow the result.

Every directory user is read (one paged listing, the manager expanded in the same
request), so a user who left scope can be matched and deactivated in the target.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from genesys_prov.config import SourceConfig
from genesys_prov.mapping.genesys_rules import UserRule
from genesys_prov.mapping.mappings import (
    DesiredGroup,
    DesiredUser,
    Mappings,
    desired_group,
    desired_user,
    read_source,
)
from genesys_prov.plan.model import Skipped
from genesys_prov.source.graph import GraphReader

DEFAULT_ACCESS = "00000000-0000-0000-0000-000000000000"
DEFAULT_ACCESS_REASON = "invalid permission: Default Access role"
NOT_ASSIGNED = "not assigned to the application"
USER_TYPE = "#microsoft.graph.user"

Progress = Callable[[str, int], None]


class Keeper(Protocol):
    """Sees the directory as read (the snapshot incremental runs plan from)."""

    def user(self, user: dict[str, Any], member_reason: str | None) -> None:
        """Every user object as read, and why memberships leave it out of scope (None:
        they keep it in)."""

    def group(self, group: dict[str, Any], members: list[str]) -> None:
        """Every group whose members count, with its user member ids (lower case)."""


@dataclass
class Assignments:
    """Who is assigned to the enterprise application."""

    users: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    default_only_users: set[str] = field(default_factory=set)
    default_only_groups: set[str] = field(default_factory=set)
    digest: str = ""  # of every (type, principal, role): tells a later run whether they changed


def read_assignments(graph: GraphReader, config: SourceConfig) -> Assignments:
    """Read ``appRoleAssignedTo`` and sort principals into users and groups; a principal
    whose only role is Default Access is set aside (unless ``exclude_default_access`` is
    false)."""
    assert config.service_principal_id is not None
    roles: dict[tuple[str, str], set[str]] = {}
    for item in graph.iter_assignments(config.service_principal_id):
        key = (str(item.get("principalType", "")), str(item.get("principalId", "")).lower())
        roles.setdefault(key, set()).add(str(item.get("appRoleId", "")).lower())
    flat = sorted((kind, principal, role) for (kind, principal), ids in roles.items()
                  for role in ids)
    out = Assignments(digest=hashlib.sha256(json.dumps(flat).encode()).hexdigest())
    for (kind, principal), role_ids in roles.items():
        default_only = role_ids == {DEFAULT_ACCESS} and config.exclude_default_access
        if kind == "User":
            (out.default_only_users if default_only else out.users).add(principal)
        elif kind == "Group":
            (out.default_only_groups if default_only else out.groups).add(principal)
    return out


@dataclass
class Directory:
    """The directory as the planner needs it."""

    users: list[DesiredUser]
    groups: list[DesiredGroup]
    skipped: list[Skipped]
    assignments_digest: str = ""


def _reader(obj: dict[str, Any]) -> Callable[[str], Any]:
    """A source-attribute lookup for one directory object (for the scoping filters)."""
    return lambda name: read_source(obj, name)


def _user_members(graph: GraphReader, group_id: str, transitive: bool) -> Iterator[str]:
    for member in graph.iter_members(group_id, transitive=transitive):
        kind = member.get("@odata.type")
        if kind is None or kind == USER_TYPE:
            yield str(member["id"]).lower()


def scoped_user(user: dict[str, Any], mappings: Mappings, member_reason: str | None,
                rule: UserRule | None = None) -> DesiredUser:
    """The desired state of one directory user. ``member_reason`` is why assignments and
    group memberships leave the user out of scope (None: they keep it in); the
    ``user_scope`` filter is applied on top."""
    in_scope = member_reason is None
    reason = member_reason
    if in_scope and mappings.user_scope and not mappings.user_scope.matches(_reader(user)):
        in_scope = False
        reason = "filtered out by user_scope"
    desired = desired_user(user, mappings, in_scope=in_scope, scope_reason=reason)
    return rule(desired) if rule else desired


def read_directory(graph: GraphReader, config: SourceConfig, mappings: Mappings,
                   rule: UserRule | None = None,
                   progress: Progress | None = None,
                   keeper: Keeper | None = None) -> Directory:
    """Read users, groups and assignments and return desired users and groups, each user
    marked in or out of scope with the reason; ``keeper`` sees what was read."""
    skipped: list[Skipped] = []
    assigned = read_assignments(graph, config) if config.scope == "assigned" else None
    want_groups = bool(mappings.group) or assigned is not None
    groups: list[dict[str, Any]] = []
    if want_groups:
        for group in graph.iter_groups(mappings.group_select()):
            gid = str(group["id"]).lower()
            if assigned is not None:
                if gid in assigned.default_only_groups and gid not in assigned.groups:
                    skipped.append(Skipped(str(group.get("displayName") or gid), gid,
                                           DEFAULT_ACCESS_REASON, kind="group"))
                    continue
                if gid not in assigned.groups:
                    continue
            if mappings.group_scope and \
                    not mappings.group_scope.matches(_reader(group)):
                continue
            groups.append(group)
    members: dict[str, list[str]] = {}
    for n, group in enumerate(groups, start=1):
        gid = str(group["id"]).lower()
        members[gid] = list(_user_members(graph, str(group["id"]), config.nested_groups))
        if keeper is not None:
            keeper.group(group, members[gid])
        if progress:
            progress("groups", n)
    in_scope_ids: set[str] | None = None
    if assigned is not None:
        in_scope_ids = set(assigned.users)
        for ids in members.values():
            in_scope_ids.update(ids)
    users: list[DesiredUser] = []
    select = mappings.graph_select()
    expand = mappings.manager_mapping is not None
    for user in graph.iter_users(select, expand_manager=expand):
        uid = str(user["id"]).lower()
        member_reason = None
        if in_scope_ids is not None and uid not in in_scope_ids:
            member_reason = (DEFAULT_ACCESS_REASON
                             if assigned and uid in assigned.default_only_users
                             else NOT_ASSIGNED)
        if keeper is not None:
            keeper.user(user, member_reason)
        users.append(scoped_user(user, mappings, member_reason, rule))
        if progress and len(users) % 1000 == 0:
            progress("source", len(users))
    if progress:
        progress("source", len(users))
    scoped = {u.source_id.lower(): u.source_id for u in users if u.in_scope}
    desired_groups = [
        desired_group(g, mappings, tuple(scoped[m] for m in members[str(g["id"]).lower()]
                                         if m in scoped))
        for g in groups
    ] if mappings.group else []
    return Directory(users, desired_groups, skipped,
                     assigned.digest if assigned is not None else "")

"""Reading the directory and deciding who is in scope.

``scope: assigned`` (the default, as in Entra): the users assigned to the enterprise app,
plus the direct members of the groups assigned to it (all nested members with
``nested_groups: true``). Assignments whose only role is Default Access are excluded and
reported. ``scope: all``: every user and every group. Either way the scoping filters of
the mappings narrow the result.

Every directory user is read (one paged listing; when the mappings need the manager, a
delta round that carries it at 200 users a page), so a user who left scope can be matched
and deactivated in the target.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from genesys_prov.config import SourceConfig
from genesys_prov.errors import ConfigError
from genesys_prov.mapping.desired import DesiredGroup, DesiredUser, desired_group, desired_user
from genesys_prov.mapping.genesys_rules import UserRule
from genesys_prov.mapping.mappings import APP_ROLE_ASSIGNMENTS, Mappings, source_reader
from genesys_prov.plan.model import Skipped
from genesys_prov.source.graph import USER_TYPE, GraphReader

DEFAULT_ACCESS = "00000000-0000-0000-0000-000000000000"
DEFAULT_ACCESS_REASON = "invalid permission: Default Access role"
NOT_ASSIGNED = "not assigned to the application"
FILTERED_OUT = "filtered out by user_scope"

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
    # read only when a mapping uses appRoleAssignments (app_roles=True):
    role_names: dict[str, str] | None = None                     # app role id → its name
    principal_roles: dict[str, set[str]] = field(default_factory=dict)  # principal → role ids

    def user_roles(self, uid: str, groups: Iterable[str] = ()) -> list[str]:
        """The app role names of one user (lower-case id): their direct assignments and
        those of the assigned ``groups`` they are a member of; Default Access and roles the
        app does not define give none. Sorted, without duplicates."""
        names = self.role_names or {}
        ids = set(self.principal_roles.get(uid, ()))
        for gid in groups:
            ids |= self.principal_roles.get(gid, set())
        return sorted({names[i] for i in ids if i in names})


def role_names(app_roles: Iterable[dict[str, Any]]) -> dict[str, str]:
    """App role id (lower case) → the name a mapping sees: its ``displayName``, else its
    ``value``."""
    out = {}
    for role in app_roles:
        name = role.get("displayName") or role.get("value")
        if role.get("id") and isinstance(name, str) and name:
            out[str(role["id"]).lower()] = name
    return out


def read_assignments(graph: GraphReader, config: SourceConfig,
                     app_roles: bool = False) -> Assignments:
    """Read ``appRoleAssignedTo`` and sort principals into users and groups; a principal
    whose only role is Default Access is set aside (unless ``exclude_default_access`` is
    false). ``app_roles``: also read the app's role definitions, so that
    :meth:`Assignments.user_roles` can name each user's roles (the digest then covers the
    role names too: renaming a role changes it)."""
    assert config.service_principal_id is not None
    roles: dict[tuple[str, str], set[str]] = {}
    for item in graph.iter_assignments(config.service_principal_id):
        key = (str(item.get("principalType", "")), str(item.get("principalId", "")).lower())
        roles.setdefault(key, set()).add(str(item.get("appRoleId", "")).lower())
    flat: list[Any] = sorted((kind, principal, role) for (kind, principal), ids in roles.items()
                             for role in ids)
    names = role_names(graph.app_roles(config.service_principal_id)) if app_roles else None
    if names is not None:
        flat.append(sorted(names.items()))
    out = Assignments(digest=hashlib.sha256(json.dumps(flat).encode()).hexdigest(),
                      role_names=names,
                      principal_roles={principal: ids for (_, principal), ids in roles.items()})
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


def member_reason(assigned: Assignments | None, uid: str, in_assigned_group: bool) -> str | None:
    """Why assignments and group memberships leave a user (lower-case id) out of scope;
    None when they keep it in: ``scope: all``, assigned directly, or a member of an
    assigned group. The one place this is decided (full reads, the snapshot, explain)."""
    if assigned is None or uid in assigned.users or in_assigned_group:
        return None
    return DEFAULT_ACCESS_REASON if uid in assigned.default_only_users else NOT_ASSIGNED


def stored_member_reason(member_scope: bool, reason: str | None) -> str | None:
    """:func:`member_reason` as the snapshot stores it: (in scope by memberships, why not)."""
    return None if member_scope else (reason or NOT_ASSIGNED)


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
    if in_scope and mappings.user_scope and not mappings.user_scope.matches(source_reader(user)):
        in_scope = False
        reason = FILTERED_OUT
    desired = desired_user(user, mappings, in_scope=in_scope, scope_reason=reason)
    return rule(desired) if rule else desired


@dataclass
class _UserRoles:
    """Fills ``appRoleAssignments`` on user objects as read: the roles from ``assignments``
    and from the assigned groups (``members``: group id → member ids) a user is in."""

    assignments: Assignments
    members: dict[str, list[str]]
    groups_of: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for gid, ids in self.members.items():
            if gid in self.assignments.principal_roles:
                for uid in ids:
                    self.groups_of.setdefault(uid, []).append(gid)

    def fill(self, user: dict[str, Any], uid: str) -> None:
        """Set ``user["appRoleAssignments"]`` (a list of role names, maybe empty)."""
        user[APP_ROLE_ASSIGNMENTS] = self.assignments.user_roles(uid, self.groups_of.get(uid, ()))


def _read_users(graph: GraphReader, mappings: Mappings, assigned: Assignments | None,
                in_scope_ids: set[str] | None, rule: UserRule | None,
                progress: Progress | None, keeper: Keeper | None,
                delta_links: dict[str, str] | None,
                roles: _UserRoles | None = None) -> list[DesiredUser]:
    """Every directory user as a desired user (with ``appRoleAssignments`` when ``roles``
    is given). A delta round may report a user twice (a change while it was read): the
    last copy wins, in the first one's place."""
    users: list[DesiredUser] = []
    position: dict[str, int] = {}

    def keep_link(link: str) -> None:
        if delta_links is not None:
            delta_links["users"] = link

    expand = mappings.manager_mapping is not None
    for user in graph.iter_users(mappings.graph_select(), expand, keep_link):
        uid = str(user["id"]).lower()
        why = member_reason(assigned, uid, in_scope_ids is None or uid in in_scope_ids)
        if roles is not None:
            roles.fill(user, uid)
        if keeper is not None:
            keeper.user(user, why)
        desired = scoped_user(user, mappings, why, rule)
        if uid in position:
            users[position[uid]] = desired
            continue
        position[uid] = len(users)
        users.append(desired)
        if progress and len(users) % 1000 == 0:
            progress("source", len(users))
    if progress:
        progress("source", len(users))
    return users


def _role_group_members(graph: GraphReader, config: SourceConfig, assignments: Assignments,
                        members: dict[str, list[str]]) -> dict[str, list[str]]:
    """The user members of every assigned group that carries an app role (the members
    already read are reused)."""
    out = {}
    for gid in sorted(assignments.groups | assignments.default_only_groups):
        if any(r != DEFAULT_ACCESS for r in assignments.principal_roles.get(gid, ())):
            out[gid] = members[gid] if gid in members else \
                list(_user_members(graph, gid, config.nested_groups))
    return out


def user_app_roles(graph: GraphReader, config: SourceConfig, uid: str) -> list[str] | None:
    """The app role names of one user (lower-case id), for ``explain`` and ``provision``:
    as :func:`read_directory` fills ``appRoleAssignments`` (None without a service
    principal)."""
    if not config.service_principal_id:
        return None
    assignments = read_assignments(graph, config, app_roles=True)
    members = _role_group_members(graph, config, assignments, {})
    return assignments.user_roles(uid, [gid for gid, ids in members.items() if uid in ids])


def read_directory(graph: GraphReader, config: SourceConfig, mappings: Mappings,
                   rule: UserRule | None = None,
                   progress: Progress | None = None,
                   keeper: Keeper | None = None,
                   delta_links: dict[str, str] | None = None) -> Directory:
    """Read users, groups and assignments and return desired users and groups, each user
    marked in or out of scope with the reason; ``keeper`` sees what was read. When the
    users come from a delta round, its link is put in ``delta_links["users"]``."""
    skipped: list[Skipped] = []
    if mappings.uses_app_roles and not config.service_principal_id:
        raise ConfigError("source.service_principal_id: required when a mapping reads "
                          "appRoleAssignments (the roles come from the app's assignments)")
    assignments = read_assignments(graph, config, mappings.uses_app_roles) \
        if config.service_principal_id and (config.scope == "assigned"
                                             or mappings.uses_app_roles) else None
    assigned = assignments if config.scope == "assigned" else None
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
                    not mappings.group_scope.matches(source_reader(group)):
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
        in_scope_ids = set()
        for ids in members.values():
            in_scope_ids.update(ids)
    roles = None
    if assignments is not None and mappings.uses_app_roles:
        roles = _UserRoles(assignments, _role_group_members(graph, config, assignments, members))
    users = _read_users(graph, mappings, assigned, in_scope_ids, rule, progress, keeper,
                        delta_links, roles)
    scoped = {u.source_id.lower(): u.source_id for u in users if u.in_scope}
    desired_groups = [
        desired_group(g, mappings, tuple(scoped[m] for m in members[str(g["id"]).lower()]
                                         if m in scoped))
        for g in groups
    ] if mappings.group else []
    return Directory(users, desired_groups, skipped,
                     assignments.digest if assignments is not None else "")

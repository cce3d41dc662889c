"""Entra's provisioning job, emulated: the initial cycle of the "PureCloud by Genesys"
gallery app's job, run from the sandbox Graph's directory into the Genesys emulator, so
the sandbox Genesys holds what Entra's job would have left there.

What one cycle does (spec/entra-provisioning.md):

1. **Scope** — users assigned to the enterprise app directly or through a group (direct
   members only: Entra does not follow nested groups); an assignment whose only role is
   Default Access does not entitle (Entra logs it as an invalid permission). The user
   object mapping's scoping filter narrows that.
2. **Users** — each user in scope, in directory order, is matched by the matching
   attributes in precedence order (two target users for one value: DuplicateTargetEntries,
   no write). Found: one ``PATCH`` with a ``replace`` per attribute whose value differs
   (``ObjectAddOnly`` mappings are not updated; nulls are never sent). Not found: a
   disabled user (``IsSoftDeleted``) is skipped, anyone else is created with one ``POST``
   carrying every non-null value (``defaultValue`` when the source is null).
3. **Managers** — then each provisioned user's manager, as a reference: a ``PATCH`` of the
   enterprise ``manager`` with the manager's Genesys id, when the manager was provisioned
   too (``exportMissingReferences`` false: a manager out of scope is left unset).
4. **Groups** — each assigned group is matched by its matching attributes; a group Genesys
   lacks is ``POST``\\ ed (Genesys answers 405: groups cannot be created over SCIM, a
   failure as in Entra); a matched one gets its differing values, then one ``PATCH``
   adding the provisioned direct members it lacks.

Every write goes to the Genesys emulator's own app in-process (the static token, the
emulator's validation: a phone that is not E.164 is a 400 and that user is not created),
and each failure is recorded with the status and the SCIM detail, as Entra's provisioning
log would show it. Reads (matching) look at the emulator's state directly.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from genesys_prov.errors import EvaluationError
from genesys_prov.mapping.mappings import read_source
from genesys_prov.mapping.scimpath import (
    get_value,
    has_element,
    patch_operation,
    same_value,
    set_value,
)
from genesys_prov.sandbox._http import Request
from genesys_prov.sandbox.entra.schema import Flow, ObjectFlow, read_schema
from genesys_prov.sandbox.genesys import BASE_PATH, GenesysEmulator
from genesys_prov.sandbox.graph import GraphEmulator

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
DEFAULT_ACCESS = "00000000-0000-0000-0000-000000000000"


@dataclass
class JobFailure:
    """One object the job could not provision (as Entra's provisioning log shows it)."""

    kind: str           # user, manager, group, members
    identity: str       # userPrincipalName or group displayName
    source_id: str
    status: int         # the HTTP status Genesys answered (0: failed before any request)
    code: str           # Entra's error code: SystemForCrossDomainIdentityManagement…, …
    reason: str         # the SCIM detail or the evaluation error
    sent: dict[str, Any] | None = None


@dataclass
class EntraJobReport:
    """What one emulated cycle did."""

    created: list[str] = field(default_factory=list)       # userNames
    updated: list[str] = field(default_factory=list)       # userNames of matched users
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (identity, reason)
    managers: dict[str, str] = field(default_factory=dict)  # userName → manager userName
    members: dict[str, list[str]] = field(default_factory=dict)   # group → userNames added
    failures: list[JobFailure] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)     # source id → Genesys id
    entitled: int = 0
    writes: int = 0

    def failed(self, kind: str = "user") -> list[str]:
        """Identities that failed, of one kind."""
        return [f.identity for f in self.failures if f.kind == kind]

    def execution_state(self) -> str:
        """``Succeeded``, or ``Warning`` when something failed (Entra's cycle states)."""
        return "Warning" if self.failures else "Succeeded"


class _Scim:
    """The Genesys emulator's app, called in-process with the static token."""

    def __init__(self, genesys: GenesysEmulator) -> None:
        self.genesys = genesys

    def send(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """(status, parsed answer) of one request."""
        request = Request(method, f"{BASE_PATH}{path}", {}, {
            "Authorization": f"Bearer {self.genesys.static_token}",
            "Content-Type": "application/scim+json",
        }, json.dumps(body).encode("utf-8"))
        response = self.genesys(request)
        answer = json.loads(response.body.decode("utf-8")) if response.body else None
        return response.status, answer


def entitled_users(graph: GraphEmulator) -> tuple[list[dict[str, Any]], set[str], set[str]]:
    """(users assigned directly or through an assigned group, ids of assigned groups, ids
    of users whose only assignment is Default Access): Default-Access-only assignments
    do not count; nested groups are not followed."""
    roles: dict[tuple[str, str], set[str]] = {}
    for item in graph.app_role_assignments:
        key = (item["principalType"], item["principalId"].lower())
        roles.setdefault(key, set()).add(item["appRoleId"].lower())
    entitled = {(kind, pid) for (kind, pid), ids in roles.items() if ids != {DEFAULT_ACCESS}}
    groups = {pid for kind, pid in entitled if kind == "Group"}
    user_ids = {pid for kind, pid in entitled if kind == "User"}
    for group in graph.groups:
        if group["id"].lower() in groups:
            user_ids.update(m.lower() for m in group.get("members", []))
    users = [u for u in graph.users if u["id"].lower() in user_ids]
    default_only = {pid for (kind, pid) in roles if kind == "User"} - user_ids
    return users, groups, default_only


def _failure(kind: str, identity: str, source_id: str, status: int, answer: Any,
             sent: dict[str, Any] | None) -> JobFailure:
    """A failure from a Genesys answer (or an evaluation error text)."""
    detail = answer.get("detail") if isinstance(answer, dict) else str(answer)
    code = {400: "SystemForCrossDomainIdentityManagementBadRequest",
            405: "SystemForCrossDomainIdentityManagementMethodNotAllowed",
            409: "Conflict", 0: "MappingEvaluationFailed"}.get(
        status, "SystemForCrossDomainIdentityManagementServiceIncompatible")
    return JobFailure(kind, identity, source_id, status, code, str(detail), sent)


def _values(flow: ObjectFlow, obj: dict[str, Any], creating: bool) -> list[tuple[Flow, Any]]:
    """(mapping, value) of every value mapping that flows (nulls dropped; defaults and
    add-only mappings only when ``creating``)."""
    out = []
    for mapping in flow.values:
        if mapping.on_create_only and not creating:
            continue
        value = mapping.value(obj)
        if value is None and creating and mapping.default is not None:
            value = mapping.default
        if value is not None:
            out.append((mapping, value))
    return out


def _key(mapping: Flow, value: Any) -> Any:
    """A matching value as an index key (case-insensitive attributes lower-cased)."""
    if isinstance(value, str) and mapping.path.case_insensitive:
        return value.lower()
    return value if isinstance(value, str | int | bool) else json.dumps(value, sort_keys=True)


class _MatchIndex:
    """The target resources by the value of each matching attribute, so matching costs
    one look-up per attribute rather than a scan of the target (Entra's filtered GET)."""

    def __init__(self, flow: ObjectFlow, resources: dict[str, dict[str, Any]]) -> None:
        self.flow = flow
        self.resources = resources
        self.index: dict[str, dict[Any, set[str]]] = {m.target: {} for m in flow.matching}
        self.keys: dict[str, dict[str, Any]] = {}
        for rid in resources:
            self.add(rid)

    def add(self, rid: str) -> None:
        """Index (again) the resource ``rid`` as it is now."""
        resource = self.resources[rid]
        keys = self.keys.setdefault(rid, {})
        for mapping in self.flow.matching:
            by_value = self.index[mapping.target]
            if mapping.target in keys:
                by_value[keys.pop(mapping.target)].discard(rid)
            value = get_value(resource, mapping.path)
            if value is not None:
                keys[mapping.target] = _key(mapping, value)
                by_value.setdefault(keys[mapping.target], set()).add(rid)

    def find(self, obj: dict[str, Any]) -> list[str]:
        """Target ids the first matching attribute with a value finds (precedence order)."""
        for mapping in self.flow.matching:
            value = mapping.value(obj)
            if value is None:
                continue
            found = self.index[mapping.target].get(_key(mapping, value))
            if found:
                return sorted(found)
        return []


def _changes(values: list[tuple[Flow, Any]], resource: dict[str, Any]) -> list[dict[str, Any]]:
    """PATCH operations for the values that differ from ``resource``."""
    return [patch_operation(m.path, value, has_element(resource, m.path))
            for m, value in values
            if not same_value(m.path, get_value(resource, m.path), value)]


class EntraJob:
    """One cycle of the emulated job (see the module's description)."""

    def __init__(self, graph: GraphEmulator, genesys: GenesysEmulator,
                 schema: dict[str, Any]) -> None:
        self.graph = graph
        self.genesys = genesys
        self.schema = read_schema(schema)
        self.scim = _Scim(genesys)
        self.report = EntraJobReport()
        self.user_index: _MatchIndex | None = None

    def run(self) -> EntraJobReport:
        """Users, then managers, then groups; returns the report."""
        users, groups, default_only = entitled_users(self.graph)
        self.report.skipped.extend(
            (_identity(u), "invalid permission: only the Default Access role")
            for u in self.graph.users if u["id"].lower() in default_only)
        flow = self.schema.users
        if flow is not None and flow.enabled:
            self.user_index = _MatchIndex(flow, self.genesys.users)
            in_scope = []
            for user in users:
                if flow.scope.matches(functools.partial(read_source, user)):
                    in_scope.append(user)
                else:
                    self.report.skipped.append((_identity(user), "out of the scoping filter"))
            self.report.entitled = len(in_scope)
            for user in in_scope:
                self._user(flow, user)
            for user in in_scope:
                self._manager(flow, user)
        if self.schema.groups is not None and self.schema.groups.enabled:
            for group in self.graph.groups:
                if group["id"].lower() in groups and self.schema.groups.scope.matches(
                        functools.partial(read_source, group)):
                    self._group(self.schema.groups, group)
        return self.report

    def _send(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """One write, counted."""
        self.report.writes += 1
        return self.scim.send(method, path, body)

    def _user(self, flow: ObjectFlow, user: dict[str, Any]) -> None:
        """Match, then update or create one user."""
        identity = _identity(user)
        assert self.user_index is not None
        try:
            found = self.user_index.find(user)
            values = _values(flow, user, creating=not found)
        except (EvaluationError, ValueError) as exc:
            self.report.failures.append(_failure("user", identity, user["id"], 0, str(exc),
                                                 None))
            return
        if len(found) > 1:
            self.report.failures.append(JobFailure(
                "user", identity, user["id"], 0, "DuplicateTargetEntries",
                f"{len(found)} Genesys users match this user"))
            return
        if found:
            self._update(user, found[0], values)
        elif read_source(user, "IsSoftDeleted"):
            self.report.skipped.append((identity, "disabled in the directory, not in Genesys"))
        else:
            self._create(user, values)

    def _create(self, user: dict[str, Any], values: list[tuple[Flow, Any]]) -> None:
        """``POST /Users`` with every value."""
        body: dict[str, Any] = {"schemas": [CORE_USER]}
        for mapping, value in values:
            set_value(body, mapping.path, value)
        status, answer = self._send("POST", "/Users", body)
        if status != 201:
            self.report.failures.append(_failure("user", _identity(user), user["id"], status,
                                                 answer, body))
            return
        self.report.links[user["id"].lower()] = answer["id"]
        if self.user_index is not None:
            self.user_index.add(answer["id"])
        self.report.created.append(answer["userName"])

    def _update(self, user: dict[str, Any], uid: str, values: list[tuple[Flow, Any]]) -> None:
        """``PATCH /Users/{id}`` with the values that differ (none: no request)."""
        self.report.links[user["id"].lower()] = uid
        operations = _changes(values, self.genesys.users[uid])
        if not operations:
            return
        body = {"schemas": [PATCH_OP], "Operations": operations}
        status, answer = self._send("PATCH", f"/Users/{uid}", body)
        if status not in (200, 204):
            self.report.failures.append(_failure("user", _identity(user), user["id"], status,
                                                 answer, body))
            return
        self.report.updated.append(self.genesys.users[uid]["userName"])
        if self.user_index is not None:
            self.user_index.add(uid)

    def _manager(self, flow: ObjectFlow, user: dict[str, Any]) -> None:
        """Set a provisioned user's manager when the manager was provisioned too."""
        mapping = flow.reference("manager")
        uid = self.report.links.get(user["id"].lower())
        manager = user.get("manager")
        if mapping is None or uid is None or not isinstance(manager, str) or not manager:
            return
        manager_uid = self.report.links.get(manager.lower())
        if manager_uid is None:
            return
        if get_value(self.genesys.users[uid], mapping.path) == manager_uid:
            return
        body = {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": mapping.target, "value": {"value": manager_uid}}]}
        status, answer = self._send("PATCH", f"/Users/{uid}", body)
        if status not in (200, 204):
            self.report.failures.append(_failure("manager", _identity(user), user["id"],
                                                 status, answer, body))
            return
        self.report.managers[self.genesys.users[uid]["userName"]] = \
            self.genesys.users[manager_uid]["userName"]

    def _group(self, flow: ObjectFlow, group: dict[str, Any]) -> None:
        """Match a group by its matching attributes; update it and add its members."""
        name = str(group.get("displayName") or group["id"])
        try:
            found = _MatchIndex(flow, self.genesys.groups).find(group)
            values = _values(flow, group, creating=not found)
        except (EvaluationError, ValueError) as exc:
            self.report.failures.append(_failure("group", name, group["id"], 0, str(exc), None))
            return
        if not found:
            body: dict[str, Any] = {"schemas": [CORE_GROUP]}
            for mapping, value in values:
                set_value(body, mapping.path, value)
            status, answer = self._send("POST", "/Groups", body)
            self.report.failures.append(_failure("group", name, group["id"], status, answer,
                                                 body))
            return
        gid = found[0]
        operations = _changes(values, self.genesys.groups[gid])
        if operations:
            body = {"schemas": [PATCH_OP], "Operations": operations}
            status, answer = self._send("PATCH", f"/Groups/{gid}", body)
            if status not in (200, 204):
                self.report.failures.append(_failure("group", name, group["id"], status,
                                                     answer, body))
        if flow.reference("members") is not None:
            self._members(name, group, gid)

    def _members(self, name: str, group: dict[str, Any], gid: str) -> None:
        """One ``PATCH`` adding the provisioned direct members the group lacks."""
        present = {m["value"] for m in self.genesys.groups[gid].get("members", [])}
        wanted = [self.report.links[m.lower()] for m in group.get("members", [])
                  if m.lower() in self.report.links]
        missing = [uid for uid in dict.fromkeys(wanted) if uid not in present]
        if not missing:
            return
        body = {"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": uid} for uid in missing]}]}
        status, answer = self._send("PATCH", f"/Groups/{gid}", body)
        if status not in (200, 204):
            self.report.failures.append(_failure("members", name, group["id"], status, answer,
                                                 body))
            return
        self.report.members[name] = [self.genesys.users[uid]["userName"] for uid in missing]


def _identity(user: dict[str, Any]) -> str:
    """How the provisioning log names a user."""
    return str(user.get("userPrincipalName") or user.get("displayName") or user["id"])


def run_entra_job(graph: GraphEmulator, genesys: GenesysEmulator,
                  schema: dict[str, Any]) -> EntraJobReport:
    """Run Entra's initial cycle with ``schema`` from ``graph``'s directory into
    ``genesys``; returns what it created, updated, skipped and what failed."""
    return EntraJob(graph, genesys, schema).run()

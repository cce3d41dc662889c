"""The Microsoft Graph + Entra token endpoint emulator (behaviour: spec/graph.md).

Two apps share one state: :meth:`GraphEmulator.login_app` (the Entra authority: OpenID
discovery and the v2.0 token endpoint, enough for MSAL's client-credentials flow) and
:meth:`GraphEmulator.graph_app` (``/v1.0``: users, a user's manager, groups, direct and
transitive members, the service principal and its ``appRoleAssignedTo``).

Decisions:

* Tokens are opaque to the API (a JWT-shaped string the emulator remembers); the
  client-assertion JWT of certificate credentials is checked for shape, ``iss``/``sub``,
  ``aud``, ``exp`` and an ``x5t``/``x5t#S256`` header, not for its signature (unless
  ``certificate_thumbprints`` is non-empty, the thumbprint must then be registered).
* ``$select`` of an unknown property, ``$top`` outside 1..999, an unknown ``$`` query option
  and ``$filter``/``$orderby``/``$search``/``$count``/``$skip`` are 400 (not emulated).
* Injected throttling (:meth:`throttle_next`) applies to ``/v1.0`` requests, not to the
  token endpoint.
* Path segments and query option names are case-insensitive, as on Graph; a user is
  addressable by id or userPrincipalName.
* Delta query (``/users/delta``, ``/groups/delta``): the mutators (:meth:`set_user`,
  :meth:`add_user`, :meth:`soft_delete_user`, …) append to a per-kind change log under one
  monotonically increasing sequence number; a delta token is that number (plus the previous
  round's, a select hash and a generation), so an incremental round scans only the log after
  it. The log keeps at most :attr:`GraphEmulator.delta_log_limit` entries; a token older than
  what was dropped, of another generation (:meth:`expire_delta_tokens`) or malformed is
  410 Gone. Direct edits of ``users``/``groups`` dicts are not tracked.
* Delta pages (``Prefer: odata.maxpagesize``, default 100) are cut by object (initial round,
  keyset on creation order) or by change-log position (later rounds), so an object changed
  again later in a round may appear twice; links carry ``$select`` and the token its hash
  (a different ``$select`` is 400). ``members`` is reported only when selected on groups;
  a cleared manager is ``manager@delta: [{id, "@removed": {"reason": "deleted"}}]``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from genesys_prov.sandbox._http import Request, RequestLog, Response, same_secret

_log = logging.getLogger(__name__)

JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"
GRAPH_RESOURCE_IDS = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
DEFAULT_PERMISSIONS = ("User.Read.All", "GroupMember.Read.All", "Application.Read.All")
MAX_TOP = 999
DEFAULT_TOP = 100

USER_DEFAULT_SELECT = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
)
#: Properties of microsoft.graph.user that $select accepts (v1.0).
USER_PROPERTIES = (
    "id", "aboutMe", "accountEnabled", "ageGroup", "assignedLicenses", "assignedPlans",
    "birthday", "businessPhones", "city", "companyName", "consentProvidedForMinor", "country",
    "createdDateTime", "creationType", "deletedDateTime", "department", "displayName",
    "employeeHireDate", "employeeLeaveDateTime", "employeeId", "employeeOrgData",
    "employeeType", "externalUserState", "externalUserStateChangeDateTime", "faxNumber",
    "givenName", "hireDate", "identities", "imAddresses", "interests", "isResourceAccount",
    "jobTitle", "lastPasswordChangeDateTime", "legalAgeGroupClassification", "mail",
    "mailNickname", "mobilePhone", "mySite", "officeLocation", "onPremisesDistinguishedName",
    "onPremisesDomainName", "onPremisesExtensionAttributes", "onPremisesImmutableId",
    "onPremisesLastSyncDateTime", "onPremisesSamAccountName", "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled", "onPremisesUserPrincipalName", "otherMails", "passwordPolicies",
    "pastProjects", "postalCode", "preferredDataLocation", "preferredLanguage", "preferredName",
    "provisionedPlans", "proxyAddresses", "responsibilities", "schools",
    "securityIdentifier", "showInAddressList", "signInSessionsValidFromDateTime", "skills",
    "state", "streetAddress", "surname", "usageLocation", "userPrincipalName", "userType",
)
GROUP_DEFAULT_SELECT = (
    "id", "createdDateTime", "description", "displayName", "groupTypes", "mail", "mailEnabled",
    "mailNickname", "securityEnabled", "visibility",
)
GROUP_PROPERTIES = (
    *GROUP_DEFAULT_SELECT, "classification", "deletedDateTime", "expirationDateTime",
    "isAssignableToRole", "membershipRule", "membershipRuleProcessingState",
    "onPremisesDomainName", "onPremisesLastSyncDateTime", "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "preferredDataLocation",
    "preferredLanguage", "proxyAddresses", "renewedDateTime", "securityIdentifier", "theme",
)
_COLLECTIONS = frozenset(
    {"businessPhones", "otherMails", "proxyAddresses", "identities", "imAddresses",
     "assignedLicenses", "assignedPlans", "provisionedPlans", "interests", "pastProjects",
     "responsibilities", "schools", "skills", "groupTypes"}
)
_USER_LOOKUP = {name.lower(): name for name in USER_PROPERTIES}
_GROUP_LOOKUP = {name.lower(): name for name in GROUP_PROPERTIES}
_INTERNAL = frozenset({"manager", "members"})
EXPAND_MAX_TOP = 100
_KNOWN_OPTIONS = frozenset({"$select", "$top", "$expand", "$skiptoken"})
_UNSUPPORTED_OPTIONS = frozenset(
    {"$filter", "$orderby", "$search", "$count", "$skip", "$format", "$apply", "$deltatoken"}
)
_USER_TYPE = "#microsoft.graph.user"
_GROUP_TYPE = "#microsoft.graph.group"

#: Change-log entries kept per kind (users, groups) before the oldest are dropped.
DELTA_LOG_LIMIT = 100_000
_DELTA_TOKEN = "sbx-delta"
_DELTA_PAGE = "sbx-delta-page"
_DELTA_OPTIONS = frozenset({"$select", "$deltatoken", "$skiptoken"})
_DELTA_UNSUPPORTED = frozenset(
    {"$expand", "$top", "$orderby", "$filter", "$search", "$count", "$skip", "$format",
     "$apply"}
)
_USER_DELTA_LOOKUP = {**_USER_LOOKUP, "manager": "manager"}
_GROUP_DELTA_LOOKUP = {**_GROUP_LOOKUP, "members": "members"}
_REMOVED_DELETED = {"reason": "deleted"}
_REMOVED_CHANGED = {"reason": "changed"}


@dataclass(frozen=True, slots=True)
class _Change:
    """One change-log entry: what happened to which object at which sequence number.

    ``op``: ``create``, ``update`` (``props`` changed; ``old_manager`` when ``manager`` did),
    ``soft`` (soft delete), ``restore``, ``hard`` (permanent delete), ``member+``/``member-``
    (``member_id`` of ``member_type`` joined / left the group).
    """

    seq: int
    object_id: str
    op: str
    props: tuple[str, ...] = ()
    old_manager: str | None = None
    member_id: str = ""
    member_type: str = _USER_TYPE


@dataclass(slots=True)
class _Net:
    """The net effect of the change-log entries of one object within a delta window."""

    object_id: str
    state: str = ""
    full: bool = False
    props: set[str] = field(default_factory=set)
    manager_touched: bool = False
    old_manager: str | None = None
    members: dict[str, tuple[str, str, bool]] = field(default_factory=dict)

    def apply(self, change: _Change) -> None:
        """Fold one entry in (entries arrive in sequence order)."""
        if change.op in ("create", "restore"):
            self.state, self.full = "present", True
        elif change.op == "soft":
            self.state = "soft"
        elif change.op == "hard":
            self.state = "hard"
        elif change.op == "update":
            self.props.update(change.props)
            if "manager" in change.props and not self.manager_touched:
                self.manager_touched = True
                self.old_manager = change.old_manager
        else:
            self.members[change.member_id.lower()] = (
                change.member_id, change.member_type, change.op == "member+"
            )


class _Payload(dict[str, Any]):
    """A handler's JSON answer with extra response headers."""

    def __init__(self, data: dict[str, Any], headers: dict[str, str]) -> None:
        """The answer and its headers."""
        super().__init__(data)
        self.headers = headers


class GraphError(Exception):
    """A Graph error answer: ``{"error": {"code", "message", "innerError"}}``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Status, Graph error code and message."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class AadError(Exception):
    """An Entra token-endpoint error answer (``error``, ``error_description`` AADSTS…)."""

    def __init__(self, status: int, error: str, aadsts: str, description: str) -> None:
        """Status, OAuth error code, AADSTS number and description."""
        super().__init__(description)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description


def _b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def graph_error_response(status: int, detail: str) -> Response:
    """A Graph error answer for failures below the emulator (e.g. 413 from the server)."""
    code = "RequestEntityTooLarge" if status == 413 else "BadRequest"
    return Response.json(status, {"error": {"code": code, "message": detail}}, JSON_TYPE)


class GraphEmulator(RequestLog):
    """State, behaviour and request log of the emulated Entra tenant and Graph API.

    ``users`` and ``groups`` are the directory's objects (Graph JSON plus the internal
    ``"manager"`` / ``"members"`` fields, which the API exposes only as relationships).
    """

    def __init__(
        self,
        directory: dict[str, Any],
        tenant_id: str,
        client_id: str,
        client_secret: str,
        service_principal: dict[str, Any],
    ) -> None:
        """Load ``directory`` (the demo-directory.json shape)."""
        super().__init__()
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.service_principal = service_principal
        self.users: list[dict[str, Any]] = list(directory.get("users", []))
        self.groups: list[dict[str, Any]] = list(directory.get("groups", []))
        self.app_role_assignments: list[dict[str, Any]] = list(
            directory.get("app_role_assignments", [])
        )
        #: Application permissions (roles) granted to the client; tokens carry them.
        self.granted_permissions: set[str] = set(DEFAULT_PERMISSIONS)
        #: When non-empty, certificate credentials must use one of these SHA-1 thumbprints
        #: (upper-case hex).
        self.certificate_thumbprints: set[str] = set()
        self.token_lifetime = 3599
        self.clock: Callable[[], float] = time.monotonic
        self.authority_host = ""
        self.graph_url = ""
        self._lock = threading.RLock()
        self._tokens: dict[str, tuple[float, frozenset[str]]] = {}
        self._throttle_remaining = 0
        self._throttle_retry_after = 0
        self._throttle_status = 429
        #: Soft-deleted users (lower-case id → user), restorable with :meth:`restore_user`.
        self.deleted_users: dict[str, dict[str, Any]] = {}
        #: Change-log entries kept per kind; older entries are dropped (their tokens → 410).
        self.delta_log_limit = DELTA_LOG_LIMIT
        self._seq = 0
        self._changes: dict[str, list[_Change]] = {"user": [], "group": []}
        self._floor: dict[str, int] = {"user": 0, "group": 0}
        self._delta_generation = secrets.token_hex(4)
        self._replay_pending = False
        self._ordinals: dict[str, dict[str, int]] = {"user": {}, "group": {}}
        self._next_ordinal = 0
        self._reindex()

    # ----------------------------------------------------------------- public helpers

    def _reindex(self) -> None:
        """Rebuild the id / userPrincipalName look-ups."""
        self._user_by_id = {u["id"].lower(): u for u in self.users}
        self._user_by_upn = {
            u["userPrincipalName"].lower(): u for u in self.users if u.get("userPrincipalName")
        }
        self._group_by_id = {g["id"].lower(): g for g in self.groups}
        for kind, items in (("user", self.users), ("group", self.groups)):
            ordinals = self._ordinals[kind]
            for item in items:
                if item["id"].lower() not in ordinals:
                    ordinals[item["id"].lower()] = self._next_ordinal
                    self._next_ordinal += 1

    def throttle_next(self, n: int, retry_after: int = 0, status: int = 429) -> None:
        """Answer the next ``n`` /v1.0 requests with ``status`` (429, 503 or 504)."""
        if status not in (429, 503, 504):
            raise ValueError("status must be 429, 503 or 504")
        with self._lock:
            self._throttle_remaining = n
            self._throttle_retry_after = retry_after
            self._throttle_status = status

    def set_user(self, user_id: str, **props: Any) -> None:
        """Change properties of a user (``manager=<id or None>`` sets the manager).

        Properties whose value really changes are recorded for delta query."""
        with self._lock:
            user = self._user_by_id.get(user_id.lower())
            if user is None:
                raise KeyError(user_id)
            changed = tuple(name for name, value in props.items()
                            if name != "id" and user.get(name) != value)
            old_id, old_manager = user["id"], user.get("manager")
            user.update(props)
            if "id" in props or "userPrincipalName" in props:
                self._rename("user", old_id, user["id"])
                self._reindex()
            if changed:
                self._record("user", user["id"], "update", props=changed,
                             old_manager=old_manager if "manager" in changed else None)

    def add_user(self, user: dict[str, Any]) -> None:
        """Add a user to the directory (Graph JSON; ``manager`` optional)."""
        with self._lock:
            self.users.append(user)
            self._reindex()
            self._record("user", user["id"], "create")

    def remove_user(self, user_id: str) -> None:
        """Hard-delete a user (also a soft-deleted one): gone from listings, groups,
        assignments and as a manager; delta reports ``@removed: deleted``."""
        with self._lock:
            lowered = user_id.lower()
            gone = self._user_by_id.get(lowered) or self.deleted_users.pop(lowered, None)
            self.users = [u for u in self.users if u["id"].lower() != lowered]
            for user in self.users:
                if (user.get("manager") or "").lower() == lowered:
                    self._record("user", user["id"], "update", props=("manager",),
                                 old_manager=user["manager"])
                    user["manager"] = None
            for group in self.groups:
                members = group.get("members", [])
                kept = [m for m in members if m.lower() != lowered]
                if len(kept) != len(members):
                    group["members"] = kept
                    if gone is not None:
                        self._record("group", group["id"], "member-",
                                     member_id=gone["id"], member_type=_USER_TYPE)
            self.app_role_assignments = [
                a for a in self.app_role_assignments if a["principalId"].lower() != lowered
            ]
            self._reindex()
            if gone is not None:
                self._ordinals["user"].pop(lowered, None)
                self._record("user", gone["id"], "hard")

    def soft_delete_user(self, user_id: str) -> None:
        """Soft-delete a user: gone from listings and member lists (group memberships are
        kept for :meth:`restore_user`); delta reports ``@removed: changed``."""
        with self._lock:
            lowered = user_id.lower()
            user = self._user_by_id.get(lowered) or self._user_by_upn.get(lowered)
            if user is None:
                raise KeyError(user_id)
            lowered = user["id"].lower()
            self.users = [u for u in self.users if u is not user]
            user["deletedDateTime"] = _now_iso()
            self.deleted_users[lowered] = user
            self._reindex()
            self._record("user", user["id"], "soft")
            for group in self._groups_with(lowered):
                self._record("group", group["id"], "member-", member_id=user["id"])
            # the reports lose their (expanded) manager while it is in the recycle bin
            for other in self.users:
                if (other.get("manager") or "").lower() == lowered:
                    self._record("user", other["id"], "update", props=("manager",),
                                 old_manager=other["manager"])

    def restore_user(self, user_id: str) -> None:
        """Restore a soft-deleted user (with its group memberships); delta reports it in
        full again."""
        with self._lock:
            user = self.deleted_users.pop(user_id.lower(), None)
            if user is None:
                raise KeyError(user_id)
            user["deletedDateTime"] = None
            # A restored user pages after every other one (it gets a new ordinal).
            self._ordinals["user"].pop(user["id"].lower(), None)
            self.users.append(user)
            self._reindex()
            self._record("user", user["id"], "restore")
            for group in self._groups_with(user["id"].lower()):
                self._record("group", group["id"], "member+", member_id=user["id"])
            for other in self.users:
                if (other.get("manager") or "").lower() == user["id"].lower():
                    self._record("user", other["id"], "update", props=("manager",))

    def set_group(self, group_id: str, **props: Any) -> None:
        """Change properties of a group (``members=[ids]`` replaces the direct members)."""
        with self._lock:
            group = self._group_by_id.get(group_id.lower())
            if group is None:
                raise KeyError(group_id)
            if "members" in props:
                old = {m.lower(): m for m in group.get("members", [])}
                new = {m.lower(): m for m in props["members"]}
                for key, member_id in old.items():
                    if key not in new:
                        self._record("group", group["id"], "member-", member_id=member_id,
                                     member_type=self._member_type(member_id) or _USER_TYPE)
                for key, member_id in new.items():
                    if key not in old:
                        self._record("group", group["id"], "member+", member_id=member_id,
                                     member_type=self._member_type(member_id) or _USER_TYPE)
            changed = tuple(name for name, value in props.items()
                            if name not in ("id", "members") and group.get(name) != value)
            old_id = group["id"]
            group.update(props)
            if "id" in props:
                self._rename("group", old_id, group["id"])
                self._reindex()
            if changed:
                self._record("group", group["id"], "update", props=changed)

    def add_group_member(self, group_id: str, member_id: str) -> None:
        """Add a user or group as a direct member (no-op when it already is one)."""
        with self._lock:
            group = self._group_by_id.get(group_id.lower())
            member = self._user_by_id.get(member_id.lower()) or self._group_by_id.get(
                member_id.lower()
            )
            if group is None or member is None:
                raise KeyError(group_id if group is None else member_id)
            members = group.setdefault("members", [])
            if any(m.lower() == member["id"].lower() for m in members):
                return
            members.append(member["id"])
            self._record("group", group["id"], "member+", member_id=member["id"],
                         member_type=self._member_type(member["id"]) or _USER_TYPE)

    def remove_group_member(self, group_id: str, member_id: str) -> None:
        """Remove a direct member (no-op when it is not one)."""
        with self._lock:
            group = self._group_by_id.get(group_id.lower())
            if group is None:
                raise KeyError(group_id)
            members = group.get("members", [])
            found = next((m for m in members if m.lower() == member_id.lower()), None)
            if found is None:
                return
            group["members"] = [m for m in members if m is not found]
            self._record("group", group["id"], "member-", member_id=found,
                         member_type=self._member_type(found) or _USER_TYPE)

    def expire_delta_tokens(self) -> None:
        """Invalidate every issued delta token and delta page link (410 Gone on use)."""
        with self._lock:
            self._delta_generation = secrets.token_hex(4)

    def replay_next_delta(self) -> None:
        """Make the next request that follows a deltaLink repeat the previous incremental
        round's changes once more (as Graph may deliver a change twice)."""
        with self._lock:
            self._replay_pending = True

    def _record(self, kind: str, object_id: str, op: str, *, props: tuple[str, ...] = (),
                old_manager: str | None = None, member_id: str = "",
                member_type: str = _USER_TYPE) -> None:
        """Append a change-log entry (dropping the oldest quarter when over the limit)."""
        self._seq += 1
        log = self._changes[kind]
        log.append(_Change(self._seq, object_id, op, props, old_manager, member_id,
                           member_type))
        limit = max(1, self.delta_log_limit)
        if len(log) > limit:
            drop = len(log) - (limit * 3) // 4
            self._floor[kind] = log[drop - 1].seq
            del log[:drop]

    def _rename(self, kind: str, old_id: str, new_id: str) -> None:
        """Carry an object's paging ordinal over to its new id."""
        ordinals = self._ordinals[kind]
        if old_id.lower() != new_id.lower() and old_id.lower() in ordinals:
            ordinals[new_id.lower()] = ordinals.pop(old_id.lower())

    def _groups_with(self, lowered_member_id: str) -> list[dict[str, Any]]:
        """The groups that list this member id directly."""
        return [g for g in self.groups
                if any(m.lower() == lowered_member_id for m in g.get("members", []))]

    def _member_type(self, member_id: str) -> str | None:
        """The ``@odata.type`` of an existing or soft-deleted member, else None."""
        lowered = member_id.lower()
        if lowered in self._user_by_id or lowered in self.deleted_users:
            return _USER_TYPE
        if lowered in self._group_by_id:
            return _GROUP_TYPE
        return None

    def expire_tokens(self) -> None:
        """Make every issued access token fail validation (401 on the next call)."""
        with self._lock:
            self._tokens.clear()

    # ----------------------------------------------------------------- login app

    def login_app(self, request: Request) -> Response:
        """The Entra authority: discovery documents and the v2.0 token endpoint."""
        route = "?"
        try:
            parts = [p for p in request.path.split("/") if p]
            lowered = [p.lower() for p in parts]
            if len(parts) >= 2 and lowered[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                route = "/{tenant}/v2.0/.well-known/openid-configuration"
                response = self._discovery(parts[0], v2=True)
            elif len(parts) >= 2 and lowered[1:] == [".well-known", "openid-configuration"]:
                route = "/{tenant}/.well-known/openid-configuration"
                response = self._discovery(parts[0], v2=False)
            elif len(parts) == 4 and lowered[1:] == ["oauth2", "v2.0", "token"]:
                route = "/{tenant}/oauth2/v2.0/token"
                response = self._token(request, parts[0])
            else:
                raise AadError(404, "invalid_request", "90019", f"No endpoint at {request.path}")
        except AadError as err:
            response = self._aad_error(err)
        self.record(request, response.status, route)
        return response

    def _aad_error(self, err: AadError) -> Response:
        """An Entra-style token-endpoint error answer."""
        trace = str(uuid.uuid4())
        correlation = str(uuid.uuid4())
        return Response.json(
            err.status,
            {
                "error": err.error,
                "error_description": (
                    f"AADSTS{err.aadsts}: {err.description} Trace ID: {trace} "
                    f"Correlation ID: {correlation} Timestamp: {_now_iso()}"
                ),
                "error_codes": [int(err.aadsts)],
                "timestamp": _now_iso(),
                "trace_id": trace,
                "correlation_id": correlation,
            },
        )

    def _check_tenant(self, tenant: str) -> None:
        """Raise AADSTS90002 for an unknown tenant."""
        if tenant.lower() not in (self.tenant_id.lower(), "organizations"):
            raise AadError(
                400, "invalid_tenant", "90002",
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.",
            )

    def _discovery(self, tenant: str, v2: bool) -> Response:
        """An OpenID Connect discovery document (v2.0 or v1)."""
        self._check_tenant(tenant)
        base = f"{self.authority_host}/{self.tenant_id}"
        suffix = "/v2.0" if v2 else ""
        return Response.json(200, {
            "token_endpoint": f"{base}/oauth2{suffix}/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post", "private_key_jwt", "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery{suffix}/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0" if v2 else f"{self.authority_host}/{self.tenant_id}/",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.graph_url}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2{suffix}/authorize",
            "device_authorization_endpoint": f"{base}/oauth2{suffix}/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2{suffix}/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid"],
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": self.graph_url.removeprefix("https://"),
        })

    def _token(self, request: Request, tenant: str) -> Response:
        """The v2.0 token endpoint (client credentials: secret or client assertion)."""
        if request.method != "POST":
            raise AadError(405, "invalid_request", "900561",
                           "The endpoint only accepts POST requests.")
        self._check_tenant(tenant)
        try:
            form = request.form()
        except UnicodeDecodeError:
            form = {}
        client_id = form.get("client_id", "")
        secret = form.get("client_secret")
        header = request.header("Authorization") or ""
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ":"
            client_id, _, secret = decoded.partition(":")
        if form.get("grant_type") != "client_credentials":
            raise AadError(400, "unsupported_grant_type", "70003",
                           "The app requested an unsupported grant type "
                           f"'{form.get('grant_type')}'.")
        if not client_id:
            raise AadError(400, "invalid_request", "900144",
                           "The request body must contain the following parameter: 'client_id'.")
        if not same_secret(client_id.lower(), self.client_id.lower()):
            raise AadError(400, "unauthorized_client", "700016",
                           f"Application with identifier '{client_id}' was not found in the "
                           f"directory '{self.tenant_id}'.")
        scopes = form.get("scope", "").split()
        accepted = {f"{r}/.default" for r in (self.graph_url, *GRAPH_RESOURCE_IDS)}
        if len(scopes) != 1 or scopes[0] not in accepted:
            raise AadError(400, "invalid_scope", "1002012",
                           f"The provided value for scope {' '.join(scopes)} is not valid. "
                           "Client credential flows must have a scope value with /.default "
                           "suffixed to the resource identifier (application ID URI).")
        assertion = form.get("client_assertion")
        if assertion is not None:
            self._check_assertion(assertion, form.get("client_assertion_type", ""))
        elif secret is None:
            raise AadError(401, "invalid_client", "7000218",
                           "The request body must contain the following parameter: "
                           "'client_assertion' or 'client_secret'.")
        elif not same_secret(secret, self.client_secret):
            raise AadError(401, "invalid_client", "7000215",
                           "Invalid client secret provided. Ensure the secret being sent in the "
                           f"request is the client secret value, not the client secret ID, for "
                           f"a secret added to app '{self.client_id}'.")
        return Response.json(200, self._issue_token(), headers={"Cache-Control": "no-store"})

    def _check_assertion(self, assertion: str, assertion_type: str) -> None:
        """Check a client-assertion JWT's shape and claims (not its signature)."""
        if assertion_type != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            raise AadError(400, "invalid_request", "50027",
                           f"Invalid client_assertion_type '{assertion_type}'.")
        try:
            header_b64, payload_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(header_b64))
            payload = json.loads(_b64url_decode(payload_b64))
            _b64url_decode(signature_b64)
        except (ValueError, binascii.Error) as exc:
            raise AadError(401, "invalid_client", "50027",
                           f"JWT token is invalid or malformed: {exc}.") from exc
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise AadError(401, "invalid_client", "50027", "JWT token is invalid or malformed.")
        thumbprint = header.get("x5t") or header.get("x5t#S256")
        if not thumbprint:
            raise AadError(401, "invalid_client", "700027",
                           "Client assertion contains an invalid signature: no x5t header.")
        if self.certificate_thumbprints and "x5t" in header:
            raw = _b64url_decode(str(header["x5t"])).hex().upper()
            if raw not in self.certificate_thumbprints:
                raise AadError(401, "invalid_client", "700027",
                               f"Client assertion contains an invalid signature. [Reason - The "
                               f"key was not found., Thumbprint of key used by client: '{raw}']")
        if payload.get("iss") != self.client_id or payload.get("sub") != self.client_id:
            raise AadError(401, "invalid_client", "700023",
                           "Client assertion audience/issuer claim does not match the client.")
        if not str(payload.get("aud", "")).startswith(self.authority_host):
            raise AadError(401, "invalid_client", "700021",
                           f"Client assertion audience claim does not match Realm issuer. "
                           f"Review the documentation at https://aka.ms/certCreds. "
                           f"Actual: {payload.get('aud')}")
        if not isinstance(payload.get("exp"), int | float) or payload["exp"] < time.time():
            raise AadError(401, "invalid_client", "700024",
                           "Client assertion is not within its valid time range.")

    def _issue_token(self) -> dict[str, Any]:
        """Issue and remember an access token."""
        issued = int(time.time())
        claims = {
            "aud": self.graph_url,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.token_lifetime,
            "appid": self.client_id,
            "idtyp": "app",
            "roles": sorted(self.granted_permissions),
            "tid": self.tenant_id,
            "uti": secrets.token_urlsafe(16),
        }
        header = {"typ": "JWT", "alg": "RS256", "kid": "sandbox"}
        token = ".".join((
            _b64url(json.dumps(header).encode()),
            _b64url(json.dumps(claims).encode()),
            _b64url(secrets.token_bytes(32)),
        ))
        with self._lock:
            self._tokens[token] = (
                self.clock() + self.token_lifetime, frozenset(self.granted_permissions)
            )
        return {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        }

    # ----------------------------------------------------------------- graph app

    def graph_app(self, request: Request) -> Response:
        """The Graph API (``/v1.0``)."""
        route = "?"
        request_id = str(uuid.uuid4())
        try:
            route, handler, args, permissions = self._route(request)
            self._check_throttle()
            roles = self._check_token(request)
            if permissions and not roles.intersection(permissions):
                raise GraphError(403, "Authorization_RequestDenied",
                                 "Insufficient privileges to complete the operation.")
            with self._lock:
                payload = handler(request, *args)
            response = Response.json(
                200, payload, JSON_TYPE, payload.headers if isinstance(payload, _Payload) else None
            )
        except GraphError as err:
            response = Response.json(
                err.status,
                {"error": {
                    "code": err.code,
                    "message": err.message,
                    "innerError": {
                        "date": _now_iso(),
                        "request-id": request_id,
                        "client-request-id": request.header("client-request-id") or request_id,
                    },
                }},
                JSON_TYPE,
                err.headers,
            )
        response.headers["request-id"] = request_id
        response.headers["client-request-id"] = (
            request.header("client-request-id") or request_id
        )
        self.record(request, response.status, route)
        return response

    def _route(self, request: Request) -> tuple[
        str, Callable[..., dict[str, Any]], list[str], tuple[str, ...]
    ]:
        """(route template, handler, path arguments, permissions accepted) for a request."""
        parts = [p for p in request.path.split("/") if p]
        if not parts or parts[0].lower() != "v1.0":
            raise GraphError(400, "BadRequest", f"Invalid version in {request.path!r}.")
        segments = parts[1:]
        lowered = [s.lower() for s in segments]
        if len(lowered) == 2 and lowered[1] == "delta()":
            lowered[1] = "delta"
        users_perm = ("User.Read.All", "User.ReadBasic.All", "Directory.Read.All",
                      "User.ReadWrite.All", "Directory.ReadWrite.All")
        groups_perm = ("GroupMember.Read.All", "Group.Read.All", "Directory.Read.All",
                       "Group.ReadWrite.All", "Directory.ReadWrite.All")
        apps_perm = ("Application.Read.All", "Directory.Read.All", "Application.ReadWrite.All")
        table: list[tuple[list[str | None], str, Callable[..., dict[str, Any]],
                          tuple[str, ...]]] = [
            (["users"], "/v1.0/users", self._list_users, users_perm),
            (["users", "delta"], "/v1.0/users/delta", self._users_delta, users_perm),
            (["groups", "delta"], "/v1.0/groups/delta", self._groups_delta, groups_perm),
            (["users", None], "/v1.0/users/{id}", self._get_user, users_perm),
            (["users", None, "manager"], "/v1.0/users/{id}/manager", self._get_manager,
             users_perm),
            (["groups"], "/v1.0/groups", self._list_groups, groups_perm),
            (["groups", None], "/v1.0/groups/{id}", self._get_group, groups_perm),
            (["groups", None, "members"], "/v1.0/groups/{id}/members", self._members,
             groups_perm),
            (["groups", None, "transitivemembers"], "/v1.0/groups/{id}/transitiveMembers",
             self._transitive_members, groups_perm),
            (["directory", "deleteditems", "microsoft.graph.user"],
             "/v1.0/directory/deletedItems/microsoft.graph.user", self._list_deleted_users,
             users_perm),
            (["directory", "deleteditems", None], "/v1.0/directory/deletedItems/{id}",
             self._get_deleted_item, users_perm),
            (["serviceprincipals", None], "/v1.0/servicePrincipals/{id}",
             self._get_service_principal, apps_perm),
            (["serviceprincipals", None, "approleassignedto"],
             "/v1.0/servicePrincipals/{id}/appRoleAssignedTo", self._app_role_assigned_to,
             apps_perm),
        ]
        for pattern, route, handler, permissions in table:
            if len(pattern) != len(lowered):
                continue
            args: list[str] = []
            for want, got, original in zip(pattern, lowered, segments, strict=True):
                if want is None:
                    args.append(original)
                elif want != got:
                    break
            else:
                if request.method != "GET":
                    raise GraphError(405, "Request_BadRequest",
                                     "Specified HTTP method is not allowed for the request "
                                     "target.")
                return route, handler, args, permissions
        last = segments[-1] if segments else ""
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{last}'.")

    def _check_throttle(self) -> None:
        """Raise the injected throttling error, if any is pending."""
        with self._lock:
            if self._throttle_remaining <= 0:
                return
            self._throttle_remaining -= 1
            status = self._throttle_status
            retry_after = self._throttle_retry_after
        code, message = {
            429: ("TooManyRequests", "Too many requests: the application is being throttled."),
            503: ("serviceNotAvailable", "The service is temporarily unavailable."),
            504: ("UnknownError", "The gateway timed out."),
        }[status]
        raise GraphError(status, code, message, {"Retry-After": str(retry_after)})

    def _check_token(self, request: Request) -> frozenset[str]:
        """The token's roles, or 401 for a missing, unknown or expired token."""
        header = request.header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.",
                             {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
        with self._lock:
            found = self._tokens.get(token.strip())
        if found is None:
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Access token validation failure. Invalid audience.",
                             {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
        expires, roles = found
        if expires <= self.clock():
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Lifetime validation failed, the token is expired.",
                             {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
        return roles

    # ----------------------------------------------------------------- query options

    def _options(self, request: Request) -> dict[str, str]:
        """The ``$`` query options, lower-cased; 400 for unknown or unsupported ones."""
        options: dict[str, str] = {}
        for name, values in request.query.items():
            lowered = name.lower()
            if not lowered.startswith("$"):
                continue
            if lowered in _UNSUPPORTED_OPTIONS:
                raise GraphError(400, "Request_UnsupportedQuery",
                                 f"The query option '{name}' is not supported by the sandbox.")
            if lowered not in _KNOWN_OPTIONS:
                raise GraphError(400, "BadRequest",
                                 f"Query option '{name}' is not allowed. Make sure that the "
                                 "query option is valid and is allowed for this resource.")
            options[lowered] = values[0]
        return options

    @staticmethod
    def _select(text: str | None, lookup: dict[str, str], type_name: str,
                default: tuple[str, ...]) -> list[str]:
        """The properties ``$select`` names (``id`` first), or the default set."""
        if text is None:
            return list(default)
        names = ["id"]
        for raw in text.split(","):
            name = raw.strip()
            if not name:
                continue
            lowered = name.lower()
            canonical = lookup.get(lowered)
            if canonical is None and lowered.startswith("extension_"):
                canonical = name
            if canonical is None:
                raise GraphError(400, "Request_BadRequest",
                                 f"Could not find a property named '{name}' on type "
                                 f"'microsoft.graph.{type_name}'.")
            if canonical not in names:
                names.append(canonical)
        return names

    @staticmethod
    def _top(options: dict[str, str]) -> int:
        """The page size (``$top``, 1..999, default 100)."""
        text = options.get("$top")
        if text is None:
            return DEFAULT_TOP
        try:
            top = int(text)
        except ValueError:
            top = 0
        if not 1 <= top <= MAX_TOP:
            raise GraphError(400, "Request_BadRequest",
                             f"Invalid page size specified: '{text}'. Must be between 1 and "
                             f"{MAX_TOP} inclusive.")
        return top

    @staticmethod
    def _offset(options: dict[str, str]) -> int:
        """The offset an opaque ``$skiptoken`` encodes (0 without one)."""
        token = options.get("$skiptoken")
        if token is None:
            return 0
        try:
            text = _b64url_decode(token).decode("ascii")
            prefix, _, number = text.partition(":")
            if prefix != "sbx1":
                raise ValueError(prefix)
            return int(number)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise GraphError(400, "Directory_ExpiredPageToken",
                             "The specified page token value has expired or is invalid.") from exc

    def _page(self, request: Request, base_path: str, options: dict[str, str],
              items: list[Any], context: str) -> tuple[list[Any], dict[str, Any]]:
        """Cut one page out of ``items`` and build the envelope (without ``value``).

        As in Graph (known issue 13635), ``$expand`` on directory objects returns at most
        100 objects a page, whatever ``$top`` asks for."""
        top = self._top(options)
        if options.get("$expand"):
            top = min(top, EXPAND_MAX_TOP)
        offset = self._offset(options)
        page = items[offset : offset + top]
        envelope: dict[str, Any] = {"@odata.context": context}
        if offset + top < len(items):
            params = [
                (name, values[0])
                for name, values in request.query.items()
                if name.lower() != "$skiptoken"
            ]
            params.append(("$skiptoken", _b64url(f"sbx1:{offset + top}".encode())))
            query = urlencode(params, safe="$,()=", quote_via=quote)
            envelope["@odata.nextLink"] = f"{self.graph_url}{base_path}?{query}"
        return page, envelope

    def _context(self, entity_set: str, select: list[str] | None) -> str:
        """An ``@odata.context`` URL."""
        suffix = f"({','.join(select)})" if select else ""
        return f"{self.graph_url}/v1.0/$metadata#{entity_set}{suffix}"

    # ----------------------------------------------------------------- shaping objects

    @staticmethod
    def _shape(obj: dict[str, Any], names: list[str]) -> dict[str, Any]:
        """``obj`` reduced to ``names`` (missing collections as [], others as null)."""
        out: dict[str, Any] = {}
        for name in names:
            if name in _INTERNAL:
                continue
            if name.startswith("extension_"):
                if name in obj:
                    out[name] = obj[name]
                continue
            value = obj.get(name)
            if value is None and name in _COLLECTIONS:
                value = []
            out[name] = value
        return out

    def _user_json(self, user: dict[str, Any], names: list[str]) -> dict[str, Any]:
        """A user as Graph returns it with ``names`` selected."""
        return self._shape(user, names)

    def _group_json(self, group: dict[str, Any], names: list[str]) -> dict[str, Any]:
        """A group as Graph returns it with ``names`` selected."""
        data = self._shape(group, names)
        for name, default in (("groupTypes", []), ("mailEnabled", False),
                              ("createdDateTime", "2024-01-15T09:30:00Z")):
            if name in data and data[name] is None:
                data[name] = group.get(name, default)
        return data

    def _expand_manager(self, text: str | None) -> list[str] | None:
        """``$expand=manager`` / ``manager($select=a,b)`` → manager properties, else None."""
        if text is None:
            return None
        spec = text.strip()
        lowered = spec.lower()
        if lowered == "manager":
            return list(USER_DEFAULT_SELECT)
        if lowered.startswith("manager(") and spec.endswith(")"):
            inner = spec[len("manager(") : -1].strip()
            if inner.lower().startswith("$select="):
                return self._select(inner[len("$select="):], _USER_LOOKUP, "user",
                                    USER_DEFAULT_SELECT)
        raise GraphError(400, "BadRequest",
                         f"Parsing OData Select and Expand failed: could not expand '{spec}'; "
                         "the sandbox supports $expand=manager($select=...) on users.")

    def _find_user(self, key: str) -> dict[str, Any]:
        """A user by id or userPrincipalName, else 404."""
        lowered = key.lower()
        user = self._user_by_id.get(lowered) or self._user_by_upn.get(lowered)
        if user is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{key}' does not exist or one of its queried "
                             "reference-property objects are not present.")
        return user

    def _find_group(self, key: str) -> dict[str, Any]:
        """A group by id, else 404."""
        group = self._group_by_id.get(key.lower())
        if group is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{key}' does not exist or one of its queried "
                             "reference-property objects are not present.")
        return group

    # ----------------------------------------------------------------- handlers

    def _list_users(self, request: Request) -> dict[str, Any]:
        """``GET /v1.0/users``."""
        options = self._options(request)
        select_text = options.get("$select")
        names = self._select(select_text, _USER_LOOKUP, "user", USER_DEFAULT_SELECT)
        manager_names = self._expand_manager(options.get("$expand"))
        page, envelope = self._page(
            request, "/v1.0/users", options, self.users,
            self._context("users", names if select_text else None),
        )
        values = []
        for user in page:
            data = self._user_json(user, names)
            if manager_names is not None:
                manager = self._user_by_id.get((user.get("manager") or "").lower())
                if manager is not None:
                    data["manager"] = {
                        "@odata.type": _USER_TYPE, **self._user_json(manager, manager_names)
                    }
            values.append(data)
        envelope["value"] = values
        if "@odata.nextLink" in envelope:
            envelope["@odata.nextLink"] = envelope.pop("@odata.nextLink")
        return envelope

    def _list_deleted_users(self, request: Request) -> dict[str, Any]:
        """``GET /v1.0/directory/deletedItems/microsoft.graph.user``: the soft-deleted
        users (restorable for 30 days), paged like ``/users``."""
        options = self._options(request)
        select_text = options.get("$select")
        names = self._select(select_text, _USER_LOOKUP, "user", USER_DEFAULT_SELECT)
        page, envelope = self._page(
            request, "/v1.0/directory/deletedItems/microsoft.graph.user", options,
            list(self.deleted_users.values()),
            self._context("directoryObjects/microsoft.graph.user",
                          names if select_text else None))
        envelope["value"] = [self._user_json(user, names) for user in page]
        if "@odata.nextLink" in envelope:
            envelope["@odata.nextLink"] = envelope.pop("@odata.nextLink")
        return envelope

    def _get_deleted_item(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/directory/deletedItems/{id}``: a soft-deleted user (restorable for
        30 days), or 404 when the object was hard-deleted (or never existed)."""
        user = self.deleted_users.get(key.lower())
        if user is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{key}' does not exist or one of its queried "
                             "reference-property objects are not present.")
        return {"@odata.context": f"{self.graph_url}/v1.0/$metadata#directoryObjects/$entity",
                "@odata.type": _USER_TYPE, "id": user["id"],
                "userPrincipalName": user.get("userPrincipalName")}

    def _get_user(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/users/{id}``."""
        options = self._options(request)
        select_text = options.get("$select")
        names = self._select(select_text, _USER_LOOKUP, "user", USER_DEFAULT_SELECT)
        user = self._find_user(key)
        data: dict[str, Any] = {
            "@odata.context": self._context("users", names if select_text else None) + "/$entity"
        }
        data.update(self._user_json(user, names))
        manager_names = self._expand_manager(options.get("$expand"))
        if manager_names is not None:
            manager = self._user_by_id.get((user.get("manager") or "").lower())
            if manager is not None:
                data["manager"] = {"@odata.type": _USER_TYPE,
                                   **self._user_json(manager, manager_names)}
        return data

    def _get_manager(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/users/{id}/manager``."""
        options = self._options(request)
        names = self._select(options.get("$select"), _USER_LOOKUP, "user", USER_DEFAULT_SELECT)
        user = self._find_user(key)
        manager = self._user_by_id.get((user.get("manager") or "").lower())
        if manager is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             "Resource 'manager' does not exist or one of its queried "
                             "reference-property objects are not present.")
        return {
            "@odata.context": f"{self.graph_url}/v1.0/$metadata#directoryObjects/$entity",
            "@odata.type": _USER_TYPE,
            **self._user_json(manager, names),
        }

    def _list_groups(self, request: Request) -> dict[str, Any]:
        """``GET /v1.0/groups``."""
        options = self._options(request)
        if "$expand" in options:
            raise GraphError(400, "Request_UnsupportedQuery",
                             "The sandbox does not support $expand on groups.")
        select_text = options.get("$select")
        names = self._select(select_text, _GROUP_LOOKUP, "group", GROUP_DEFAULT_SELECT)
        page, envelope = self._page(
            request, "/v1.0/groups", options, self.groups,
            self._context("groups", names if select_text else None),
        )
        envelope["value"] = [self._group_json(g, names) for g in page]
        if "@odata.nextLink" in envelope:
            envelope["@odata.nextLink"] = envelope.pop("@odata.nextLink")
        return envelope

    def _get_group(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/groups/{id}``."""
        options = self._options(request)
        select_text = options.get("$select")
        names = self._select(select_text, _GROUP_LOOKUP, "group", GROUP_DEFAULT_SELECT)
        group = self._find_group(key)
        return {
            "@odata.context": self._context("groups", names if select_text else None)
            + "/$entity",
            **self._group_json(group, names),
        }

    def _directory_objects(self, request: Request, member_ids: list[str], route: str) -> (
        dict[str, Any]
    ):
        """A page of directoryObjects (users and groups, typed)."""
        options = self._options(request)
        if "$expand" in options:
            raise GraphError(400, "Request_UnsupportedQuery",
                             "The sandbox does not support $expand on members.")
        select_text = options.get("$select")
        if select_text is not None:
            user_names = self._member_select(select_text)
            group_names = user_names
        else:
            user_names, group_names = list(USER_DEFAULT_SELECT), list(GROUP_DEFAULT_SELECT)
        page, envelope = self._page(
            request, route, options, member_ids,
            f"{self.graph_url}/v1.0/$metadata#directoryObjects",
        )
        values = []
        for member_id in page:
            user = self._user_by_id.get(member_id.lower())
            if user is not None:
                values.append({"@odata.type": _USER_TYPE, **self._user_json(user, user_names)})
                continue
            group = self._group_by_id.get(member_id.lower())
            if group is not None:
                shaped = self._group_json(
                    group, [n for n in group_names if n in GROUP_PROPERTIES or n == "id"]
                )
                values.append({"@odata.type": _GROUP_TYPE, **shaped})
        envelope["value"] = values
        if "@odata.nextLink" in envelope:
            envelope["@odata.nextLink"] = envelope.pop("@odata.nextLink")
        return envelope

    @staticmethod
    def _member_select(text: str) -> list[str]:
        """``$select`` for mixed users and groups."""
        names = ["id"]
        for raw in text.split(","):
            name = raw.strip()
            if not name:
                continue
            canonical = _USER_LOOKUP.get(name.lower()) or _GROUP_LOOKUP.get(name.lower())
            if canonical is None:
                raise GraphError(400, "Request_BadRequest",
                                 f"Could not find a property named '{name}' on type "
                                 "'microsoft.graph.directoryObject'.")
            if canonical not in names:
                names.append(canonical)
        return names

    def _members(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/groups/{id}/members`` (direct members)."""
        group = self._find_group(key)
        members = [m for m in group.get("members", []) if self._exists(m)]
        return self._directory_objects(request, members, f"/v1.0/groups/{group['id']}/members")

    def _transitive_members(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/groups/{id}/transitiveMembers`` (breadth-first)."""
        group = self._find_group(key)
        seen: set[str] = {group["id"].lower()}
        ordered: list[str] = []
        queue = list(group.get("members", []))
        while queue:
            member_id = queue.pop(0)
            lowered = member_id.lower()
            if lowered in seen or not self._exists(member_id):
                continue
            seen.add(lowered)
            ordered.append(member_id)
            nested = self._group_by_id.get(lowered)
            if nested is not None:
                queue.extend(nested.get("members", []))
        return self._directory_objects(
            request, ordered, f"/v1.0/groups/{group['id']}/transitiveMembers"
        )

    def _exists(self, object_id: str) -> bool:
        """Whether a user or group with this id exists."""
        lowered = object_id.lower()
        return lowered in self._user_by_id or lowered in self._group_by_id

    def _find_service_principal(self, key: str) -> dict[str, Any]:
        """The service principal by id, else 404."""
        if key.lower() != str(self.service_principal["id"]).lower():
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{key}' does not exist or one of its queried "
                             "reference-property objects are not present.")
        return self.service_principal

    def _get_service_principal(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/servicePrincipals/{id}``."""
        self._options(request)
        sp = self._find_service_principal(key)
        return {
            "@odata.context": f"{self.graph_url}/v1.0/$metadata#servicePrincipals/$entity",
            "id": sp["id"],
            "appId": sp.get("appId"),
            "displayName": sp.get("displayName"),
            "servicePrincipalType": "Application",
            "accountEnabled": True,
            "appRoles": sp.get("appRoles", []),
        }

    def _app_role_assigned_to(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo``."""
        options = self._options(request)
        sp = self._find_service_principal(key)
        assignments = [a for a in self.app_role_assignments if self._exists(a["principalId"])]
        page, envelope = self._page(
            request, f"/v1.0/servicePrincipals/{sp['id']}/appRoleAssignedTo", options,
            assignments,
            f"{self.graph_url}/v1.0/$metadata#servicePrincipals('{sp['id']}')/appRoleAssignedTo",
        )
        values = []
        for assignment in page:
            principal_id = assignment["principalId"]
            principal: dict[str, Any] = (
                self._user_by_id.get(principal_id.lower())
                or self._group_by_id.get(principal_id.lower())
                or {}
            )
            values.append({
                "id": assignment.get("id") or _b64url(
                    uuid.uuid5(uuid.NAMESPACE_OID, f"{principal_id}/{sp['id']}").bytes * 2
                )[:43],
                "deletedDateTime": None,
                "appRoleId": assignment["appRoleId"],
                "createdDateTime": assignment.get("createdDateTime", "2024-01-15T09:30:00Z"),
                "principalDisplayName": principal.get("displayName"),
                "principalId": principal_id,
                "principalType": assignment["principalType"],
                "resourceDisplayName": sp.get("displayName"),
                "resourceId": sp["id"],
            })
        envelope["value"] = values
        if "@odata.nextLink" in envelope:
            envelope["@odata.nextLink"] = envelope.pop("@odata.nextLink")
        return envelope

    # ----------------------------------------------------------------- delta query

    def _users_delta(self, request: Request) -> dict[str, Any]:
        """``GET /v1.0/users/delta``."""
        return self._delta(request, "user")

    def _groups_delta(self, request: Request) -> dict[str, Any]:
        """``GET /v1.0/groups/delta``."""
        return self._delta(request, "group")

    def _delta(self, request: Request, kind: str) -> dict[str, Any]:
        """One page of a delta round: initial (no token), following a ``$deltatoken``
        (the changes since) or a ``$skiptoken`` (the next page of either)."""
        entity_set = f"{kind}s"
        options: dict[str, str] = {}
        for name, given in request.query.items():
            lowered = name.lower()
            if not lowered.startswith("$"):
                continue
            if lowered in _DELTA_UNSUPPORTED:
                raise GraphError(400, "Request_UnsupportedQuery",
                                 f"The query option '{name}' is not supported with delta "
                                 f"query on {entity_set}.")
            if lowered not in _DELTA_OPTIONS:
                raise GraphError(400, "BadRequest",
                                 f"Query option '{name}' is not allowed. Make sure that the "
                                 "query option is valid and is allowed for this resource.")
            options[lowered] = given[0]
        select_text = options.get("$select")
        lookup, default = (
            (_USER_DELTA_LOOKUP, USER_DEFAULT_SELECT) if kind == "user"
            else (_GROUP_DELTA_LOOKUP, GROUP_DEFAULT_SELECT)
        )
        names = self._select(select_text, lookup, kind, default)
        select_hash = hashlib.sha256(
            ",".join(sorted(n.lower() for n in names)).encode()
        ).hexdigest()[:16]
        size, applied = self._max_page_size(request)
        envelope: dict[str, Any] = {
            "@odata.context": self._context(entity_set, names if select_text else None)
        }
        link_base = f"{self.graph_url}/v1.0/{entity_set}/delta"
        link_select = [("$select", select_text)] if select_text is not None else []

        def link(option: str, *fields: object) -> str:
            prefix = _DELTA_TOKEN if option == "$deltatoken" else _DELTA_PAGE
            token = _b64url(":".join(
                str(f) for f in (prefix, kind, self._delta_generation, select_hash, *fields)
            ).encode())
            query = urlencode([*link_select, (option, token)], safe="$,()=", quote_via=quote)
            return f"{link_base}?{query}"

        def gone(reason: str) -> GraphError:
            location = link_base
            if link_select:
                location += "?" + urlencode(link_select, safe="$,()=", quote_via=quote)
            return GraphError(410, "syncStateNotFound",
                              f"The delta token is {reason}; start a new round (full sync) "
                              "at the Location given.", {"Location": location})

        def decode(option: str, prefix: str) -> list[str]:
            """The fields after the select hash of a token of ours, else 410 (or 400)."""
            try:
                parts = _b64url_decode(options[option]).decode("ascii").split(":")
            except (ValueError, binascii.Error, UnicodeDecodeError):
                parts = []
            if len(parts) < 5 or parts[0] != prefix or parts[1] != kind:
                raise gone("malformed or unknown")
            if parts[2] != self._delta_generation:
                raise gone("expired")
            if parts[3] != select_hash:
                raise GraphError(400, "Request_BadRequest",
                                 "The $select of a delta link cannot be changed: follow the "
                                 "link as given, or start a new round for other properties.")
            return parts[4:]

        def numbers(fields: list[str], count: int) -> list[int]:
            """``count`` sequence numbers / ordinals (each -1 or more), else 410."""
            try:
                parsed = [int(f) for f in fields]
            except ValueError:
                parsed = []
            if len(parsed) != count or any(n < -1 for n in parsed):
                raise gone("malformed or unknown")
            return parsed

        deltatoken = options.get("$deltatoken")
        if deltatoken is not None and "$skiptoken" in options:
            raise GraphError(400, "Request_BadRequest",
                             "$deltatoken and $skiptoken cannot be combined.")
        floor = self._floor[kind]
        next_link: str | None
        delta_link: str | None
        if deltatoken is not None and deltatoken.lower() == "latest":
            values: list[dict[str, Any]] = []
            next_link = None
            delta_link = link("$deltatoken", self._seq, self._seq)
        elif deltatoken is not None:
            seq, previous = numbers(decode("$deltatoken", _DELTA_TOKEN), 2)
            if not 0 <= previous <= seq <= self._seq:
                raise gone("malformed or unknown")
            if seq < floor:
                raise gone("expired")
            after = seq
            if self._replay_pending:
                self._replay_pending = False
                after = max(previous, floor)
            to = self._seq
            values, last, more = self._delta_changes(kind, names, after, to, size)
            next_link = link("$skiptoken", "c", last, to, seq) if more else None
            delta_link = None if more else link("$deltatoken", to, seq)
        elif "$skiptoken" in options:
            fields = decode("$skiptoken", _DELTA_PAGE)
            mode, rest = fields[0], fields[1:]
            if mode == "i":
                start, after_ordinal = numbers(rest, 2)
                if not 0 <= start <= self._seq:
                    raise gone("malformed or unknown")
                values, last, more = self._delta_initial(kind, names, after_ordinal, size)
                next_link = link("$skiptoken", "i", start, last) if more else None
                delta_link = None if more else link("$deltatoken", start, start)
            elif mode == "c":
                after, to, base = numbers(rest, 3)
                if not (0 <= after <= to <= self._seq and 0 <= base <= to):
                    raise gone("malformed or unknown")
                if after < floor:
                    raise gone("expired")
                values, last, more = self._delta_changes(kind, names, after, to, size)
                next_link = link("$skiptoken", "c", last, to, base) if more else None
                delta_link = None if more else link("$deltatoken", to, base)
            else:
                raise gone("malformed or unknown")
        else:
            start = self._seq
            values, last, more = self._delta_initial(kind, names, -1, size)
            next_link = link("$skiptoken", "i", start, last) if more else None
            delta_link = None if more else link("$deltatoken", start, start)
        envelope["value"] = values
        if next_link is not None:
            envelope["@odata.nextLink"] = next_link
        if delta_link is not None:
            envelope["@odata.deltaLink"] = delta_link
        return _Payload(envelope, applied)

    @staticmethod
    def _max_page_size(request: Request) -> tuple[int, dict[str, str]]:
        """The page size a ``Prefer: odata.maxpagesize=N`` header asks for (1..999), else
        the default, and the ``Preference-Applied`` header to answer with."""
        for preference in (request.header("Prefer") or "").split(","):
            name, _, value = preference.strip().partition("=")
            if name.strip().lower() != "odata.maxpagesize":
                continue
            try:
                size = int(value.strip().strip('"'))
            except ValueError:
                continue
            if size >= 1:
                size = min(size, MAX_TOP)
                return size, {"Preference-Applied": f"odata.maxpagesize={size}"}
        return DEFAULT_TOP, {}

    def _delta_initial(self, kind: str, names: list[str], after_ordinal: int, size: int) -> (
        tuple[list[dict[str, Any]], int, bool]
    ):
        """A page of every current object after ``after_ordinal`` (keyset paging, so
        objects added or removed meanwhile do not shift the pages): (values, the last
        ordinal delivered, whether more follow)."""
        items = self.users if kind == "user" else self.groups
        ordinals = self._ordinals[kind]

        def ordinal(obj: dict[str, Any]) -> int:
            return ordinals.get(obj["id"].lower(), -1)

        index = bisect.bisect_right(items, after_ordinal, key=ordinal)
        page = items[index : index + size]
        values = [self._delta_full(kind, obj, names) for obj in page]
        last = ordinal(page[-1]) if page else after_ordinal
        return values, last, index + size < len(items)

    def _delta_changes(self, kind: str, names: list[str], after: int, to: int, size: int) -> (
        tuple[list[dict[str, Any]], int, bool]
    ):
        """A page of the changes in (``after``, ``to``]: the log entries from ``after`` on
        for at most ``size`` objects, each folded into its net effect. Returns (values,
        the last sequence number consumed, whether more follow). Entries that change
        nothing selected are skipped, so they neither fill pages nor show up."""
        log = self._changes[kind]
        selected = frozenset(names)
        index = bisect.bisect_right(log, after, key=lambda change: change.seq)
        nets: dict[str, _Net] = {}
        last = after
        more = False
        while index < len(log) and log[index].seq <= to:
            change = log[index]
            if (change.op == "update" and selected.isdisjoint(change.props)) or (
                change.op in ("member+", "member-") and "members" not in selected
            ):
                last = change.seq
                index += 1
                continue
            key = change.object_id.lower()
            net = nets.get(key)
            if net is None:
                if len(nets) >= size:
                    more = True
                    break
                net = nets[key] = _Net(change.object_id)
            net.apply(change)
            last = change.seq
            index += 1
        values = []
        for key, net in nets.items():
            rendered = self._delta_net(kind, key, net, names)
            if rendered is not None:
                values.append(rendered)
        return values, last, more

    def _delta_net(self, kind: str, key: str, net: _Net, names: list[str]) -> (
        dict[str, Any] | None
    ):
        """An object's net change as delta reports it (None: nothing selected changed)."""
        if net.state == "hard":
            return {"id": net.object_id, "@removed": dict(_REMOVED_DELETED)}
        if net.state == "soft":
            return {"id": net.object_id, "@removed": dict(_REMOVED_CHANGED)}
        if kind == "user":
            obj = self._user_by_id.get(key) or self.deleted_users.get(key)
        else:
            obj = self._group_by_id.get(key)
        if obj is None:  # gone since the window's end; a later round reports that
            return None
        if net.full:
            return self._delta_full(kind, obj, names)
        changed = [n for n in names if n in net.props and n not in _INTERNAL]
        data: dict[str, Any] = {"id": obj["id"]}
        if changed:
            shaped = (self._user_json(obj, changed) if kind == "user"
                      else self._group_json(obj, changed))
            data.update(shaped)
        if "manager" in names and net.manager_touched:
            manager = obj.get("manager")
            if manager and self._exists(manager):
                data["manager@delta"] = [{"@odata.type": _USER_TYPE, "id": manager}]
            elif manager or net.old_manager:  # cleared, or in the recycle bin
                data["manager@delta"] = [{"@odata.type": _USER_TYPE,
                                          "id": manager or net.old_manager,
                                          "@removed": dict(_REMOVED_DELETED)}]
        if "members" in names and net.members:
            data["members@delta"] = [
                {"@odata.type": member_type, "id": member_id,
                 **({} if added else {"@removed": dict(_REMOVED_DELETED)})}
                for member_id, member_type, added in net.members.values()
            ]
        return data if len(data) > 1 else None

    def _delta_full(self, kind: str, obj: dict[str, Any], names: list[str]) -> dict[str, Any]:
        """An object in full (as the initial round and a creation report it)."""
        if kind == "user":
            data = self._user_json(obj, names)
            manager = obj.get("manager")
            if "manager" in names and manager and self._exists(manager):
                data["manager@delta"] = [{"@odata.type": _USER_TYPE, "id": manager}]
            return data
        data = self._group_json(obj, names)
        if "members" in names:
            members = []
            for member_id in obj.get("members", []):
                lowered = member_id.lower()
                if lowered in self._user_by_id:
                    members.append({"@odata.type": _USER_TYPE, "id": member_id})
                elif lowered in self._group_by_id:
                    members.append({"@odata.type": _GROUP_TYPE, "id": member_id})
            data["members@delta"] = members
        return data

"""The Graph API app (``/v1.0``): routing, injected throttling, the bearer token and
its permissions, then the handler; errors become Graph error answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from genesys_prov.sandbox._http import Request, Response
from genesys_prov.sandbox.directory.tenant import DOMAIN
from genesys_prov.sandbox.graph.answers import JSON_TYPE, GraphError, Payload
from genesys_prov.sandbox.graph.delta import DeltaQuery
from genesys_prov.sandbox.graph.encoding import now_iso
from genesys_prov.sandbox.graph.groups import GroupResources
from genesys_prov.sandbox.graph.synchronization import (
    SYNCHRONIZATION_PERMISSIONS,
    SynchronizationResources,
)
from genesys_prov.sandbox.graph.users import UserResources


class GraphApi(UserResources, GroupResources, SynchronizationResources, DeltaQuery):
    """The Graph app of the Graph emulator (:meth:`graph_app`)."""

    #: The tenant's verified domains (``GET /organization``); a test may replace them.
    verified_domains: tuple[dict[str, Any], ...] = (
        {"name": DOMAIN, "isDefault": True, "isInitial": False, "type": "Managed",
         "capabilities": "Email, OfficeCommunicationsOnline"},
        {"name": "contoso.onmicrosoft.com", "isDefault": False, "isInitial": True,
         "type": "Managed", "capabilities": "Email, OfficeCommunicationsOnline"},
    )

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
                200, payload, JSON_TYPE, payload.headers if isinstance(payload, Payload) else None
            )
        except GraphError as err:
            response = Response.json(
                err.status,
                {"error": {
                    "code": err.code,
                    "message": err.message,
                    "innerError": {
                        "date": now_iso(),
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
        org_perm = ("Organization.Read.All", "Directory.Read.All",
                    "Organization.ReadWrite.All", "Directory.ReadWrite.All")
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
            (["organization"], "/v1.0/organization", self._organization, org_perm),
            (["serviceprincipals", None], "/v1.0/servicePrincipals/{id}",
             self._get_service_principal, apps_perm),
            (["serviceprincipals", None, "approleassignedto"],
             "/v1.0/servicePrincipals/{id}/appRoleAssignedTo", self._app_role_assigned_to,
             apps_perm),
            (["serviceprincipals", None, "synchronization", "jobs"],
             "/v1.0/servicePrincipals/{id}/synchronization/jobs", self._sync_jobs,
             SYNCHRONIZATION_PERMISSIONS),
            (["serviceprincipals", None, "synchronization", "jobs", None],
             "/v1.0/servicePrincipals/{id}/synchronization/jobs/{jobId}", self._sync_job,
             SYNCHRONIZATION_PERMISSIONS),
            (["serviceprincipals", None, "synchronization", "jobs", None, "schema"],
             "/v1.0/servicePrincipals/{id}/synchronization/jobs/{jobId}/schema",
             self._sync_schema, SYNCHRONIZATION_PERMISSIONS),
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

    def _organization(self, request: Request) -> dict[str, Any]:
        """``GET /v1.0/organization``: the tenant (``$select`` honoured)."""
        options = self._options(request)
        org: dict[str, Any] = {"id": self.tenant_id, "displayName": "Contoso",
                               "verifiedDomains": [dict(d) for d in self.verified_domains]}
        if "$select" in options:
            names = [n.strip() for n in options["$select"].split(",") if n.strip()]
            org = {k: org.get(k) for k in ["id", *names]}
        return {"@odata.context": f"{self.graph_url}/v1.0/$metadata#organization",
                "value": [org]}

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

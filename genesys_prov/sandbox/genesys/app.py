"""The SCIM app: routing a request to its handler after the method check, the limits,
the token and the permission; faults become SCIM error answers."""

from __future__ import annotations

from collections.abc import Callable

from genesys_prov.sandbox._http import Request, Response
from genesys_prov.sandbox.genesys.auth import Auth
from genesys_prov.sandbox.genesys.discovery import Discovery
from genesys_prov.sandbox.genesys.groups import GroupEndpoints
from genesys_prov.sandbox.genesys.limits import RateLimits
from genesys_prov.sandbox.genesys.routes import (
    ALLOWED,
    BASE_PATH,
    PERMISSIONS,
    PUBLIC_ROUTES,
    TOKEN_PATH,
)
from genesys_prov.sandbox.genesys.users import UserEndpoints
from genesys_prov.sandbox.scim import (
    SCIM_CONTENT_TYPE,
    ScimFault,
)


class ScimApp(RateLimits, Auth, Discovery, UserEndpoints, GroupEndpoints):
    """The app callable of the Genesys emulator."""

    def __call__(self, request: Request) -> Response:
        """Handle one HTTP request (the server's app callable)."""
        route = "?"
        try:
            if request.path == TOKEN_PATH:
                route = TOKEN_PATH
                response = self._token(request)
            elif request.path == BASE_PATH or request.path.startswith(BASE_PATH + "/"):
                route, args = self._match(request.path[len(BASE_PATH) :])
                response = self._scim(request, route, args)
            else:
                raise ScimFault(404, f"No resource at {request.path}")
        except ScimFault as fault:
            response = Response.json(
                fault.status, fault.body(), SCIM_CONTENT_TYPE, fault.headers
            )
        self.record(request, response.status, route)
        return response

    @staticmethod
    def _match(rest: str) -> tuple[str, list[str]]:
        """The route template and its arguments for a path below the base path."""
        parts = [part for part in rest.split("/") if part]
        if len(parts) == 1 and parts[0] in ("Users", "Groups", "Schemas", "ResourceTypes",
                                            "ServiceProviderConfig"):
            return f"/{parts[0]}", []
        if len(parts) == 2 and parts[0] in ("Users", "Groups", "Schemas"):
            return f"/{parts[0]}/{{id}}", [parts[1]]
        if len(parts) == 2 and parts[0] == "ResourceTypes":
            return "/ResourceTypes/{name}", [parts[1]]
        raise ScimFault(404, f"No SCIM endpoint at {BASE_PATH}{rest}")

    def _scim(self, request: Request, route: str, args: list[str]) -> Response:
        """Method check, throttling, authentication and permission, then the handler."""
        allowed = ALLOWED[route]
        if request.method not in allowed:
            detail = f"{request.method} is not supported on {route}"
            if route.startswith("/Groups"):
                detail = (
                    f"{request.method} {route}: Genesys Cloud groups cannot be created or "
                    "deleted over SCIM; create the group in Genesys Cloud first"
                )
            raise ScimFault(405, detail, headers={"Allow": ", ".join(allowed)})
        self._check_throttle()
        if route not in PUBLIC_ROUTES:
            self._check_token(request)
            permission = PERMISSIONS.get((request.method, route))
            if permission is not None and permission in self.denied_permissions:
                raise ScimFault(
                    403, f"The OAuth client is missing the permission '{permission}'"
                )
        handlers: dict[str, Callable[..., Response]] = {
            "/Users": self._users,
            "/Users/{id}": self._user,
            "/Groups": self._list_groups,
            "/Groups/{id}": self._group,
            "/Schemas": self._schemas,
            "/Schemas/{id}": self._schema,
            "/ResourceTypes": self._resource_types,
            "/ResourceTypes/{name}": self._resource_type,
            "/ServiceProviderConfig": self._spc,
        }
        return handlers[route](request, *args)

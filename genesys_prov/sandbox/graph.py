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
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
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
        self._reindex()

    # ----------------------------------------------------------------- public helpers

    def _reindex(self) -> None:
        """Rebuild the id / userPrincipalName look-ups."""
        self._user_by_id = {u["id"].lower(): u for u in self.users}
        self._user_by_upn = {
            u["userPrincipalName"].lower(): u for u in self.users if u.get("userPrincipalName")
        }
        self._group_by_id = {g["id"].lower(): g for g in self.groups}

    def throttle_next(self, n: int, retry_after: int = 0, status: int = 429) -> None:
        """Answer the next ``n`` /v1.0 requests with ``status`` (429, 503 or 504)."""
        if status not in (429, 503, 504):
            raise ValueError("status must be 429, 503 or 504")
        with self._lock:
            self._throttle_remaining = n
            self._throttle_retry_after = retry_after
            self._throttle_status = status

    def set_user(self, user_id: str, **props: Any) -> None:
        """Change properties of a user (``manager=<id or None>`` sets the manager)."""
        with self._lock:
            user = self._user_by_id.get(user_id.lower())
            if user is None:
                raise KeyError(user_id)
            user.update(props)
            if "id" in props or "userPrincipalName" in props:
                self._reindex()

    def add_user(self, user: dict[str, Any]) -> None:
        """Add a user to the directory (Graph JSON; ``manager`` optional)."""
        with self._lock:
            self.users.append(user)
            self._reindex()

    def remove_user(self, user_id: str) -> None:
        """Hard-delete a user: gone from listings, groups, assignments and as a manager."""
        with self._lock:
            lowered = user_id.lower()
            self.users = [u for u in self.users if u["id"].lower() != lowered]
            for user in self.users:
                if (user.get("manager") or "").lower() == lowered:
                    user["manager"] = None
            for group in self.groups:
                group["members"] = [m for m in group.get("members", []) if m.lower() != lowered]
            self.app_role_assignments = [
                a for a in self.app_role_assignments if a["principalId"].lower() != lowered
            ]
            self._reindex()

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
            response = Response.json(200, payload, JSON_TYPE)
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
        users_perm = ("User.Read.All", "User.ReadBasic.All", "Directory.Read.All",
                      "User.ReadWrite.All", "Directory.ReadWrite.All")
        groups_perm = ("GroupMember.Read.All", "Group.Read.All", "Directory.Read.All",
                       "Group.ReadWrite.All", "Directory.ReadWrite.All")
        apps_perm = ("Application.Read.All", "Directory.Read.All", "Application.ReadWrite.All")
        table: list[tuple[list[str | None], str, Callable[..., dict[str, Any]],
                          tuple[str, ...]]] = [
            (["users"], "/v1.0/users", self._list_users, users_perm),
            (["users", None], "/v1.0/users/{id}", self._get_user, users_perm),
            (["users", None, "manager"], "/v1.0/users/{id}/manager", self._get_manager,
             users_perm),
            (["groups"], "/v1.0/groups", self._list_groups, groups_perm),
            (["groups", None], "/v1.0/groups/{id}", self._get_group, groups_perm),
            (["groups", None, "members"], "/v1.0/groups/{id}/members", self._members,
             groups_perm),
            (["groups", None, "transitivemembers"], "/v1.0/groups/{id}/transitiveMembers",
             self._transitive_members, groups_perm),
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

"""The Entra authority: OpenID discovery documents and the v2.0 token endpoint (client
credentials with a secret, a certificate's client-assertion JWT, or a federated assertion
matching one of the app's federated identity credentials), enough for MSAL; and the
managed identity endpoints MSAL's ``ManagedIdentityClient`` calls: an App Service-style
host's (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``) and an Azure VM's instance metadata
service (IMDS)."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from genesys_prov.sandbox._http import Request, Response, same_secret
from genesys_prov.sandbox.graph.answers import AadError
from genesys_prov.sandbox.graph.encoding import b64url, b64url_decode, now_iso
from genesys_prov.sandbox.graph.state import GraphState

GRAPH_RESOURCE_IDS = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: The audience Entra expects in a federated assertion (the default of a federated credential).
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
#: The App Service managed identity API version MSAL sends.
MI_API_VERSION = "2019-08-01"
MI_PATH = "/msi/token"
#: The Azure VM instance metadata service's token path, and the API version MSAL sends it.
IMDS_PATH = "/metadata/identity/oauth2/token"
IMDS_API_VERSION = "2018-02-01"
_NO_IDENTITY = ("No User Assigned or Delegated Managed Identity found for specified "
                "ClientId/ResourceId/PrincipalId.")
_IMDS_NO_IDENTITY = "Identity not found"


@dataclass(frozen=True)
class FederatedCredential:
    """One federated identity credential of the app: the external issuer, subject and
    audience a federated assertion must carry."""

    issuer: str
    subject: str
    audience: str = FEDERATION_AUDIENCE


class _MiError(Exception):
    """A managed identity endpoint refusal: its status and message (App Service's shape)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class EntraLogin(GraphState):
    """The login app of the Graph emulator (:meth:`login_app`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """The tenant's state (see :class:`GraphState`), the host's managed identities and
        the app's federated credentials."""
        super().__init__(*args, **kwargs)
        #: The managed identity endpoint's secret (the host's ``IDENTITY_HEADER``).
        self.identity_header = secrets.token_urlsafe(24)
        #: The client id of the host's system-assigned identity (None: it has none).
        self.system_identity: str | None = None
        #: The client ids of the user-assigned identities attached to the host.
        self.user_identities: set[str] = set()
        #: The app's federated identity credentials; a federated assertion must match one.
        self.federated_credentials: list[FederatedCredential] = []
        #: How each access token was obtained: ``secret``, ``certificate``, ``federated`` or
        #: ``managed_identity:<client id>``.
        self.token_origins: dict[str, str] = {}
        self._minted: set[str] = set()

    def mint_federated_token(self, issuer: str | None = None, subject: str | None = None,
                             audience: str = FEDERATION_AUDIENCE,
                             lifetime: int = 3600) -> str:
        """A federated assertion as the external issuer (a cluster's OIDC issuer) would
        sign it; only assertions minted here are accepted (their signature is "valid").
        ``issuer`` / ``subject`` default to the first federated credential's;
        a negative ``lifetime`` gives an expired one."""
        first = self.federated_credentials[0] if self.federated_credentials else None
        now = int(time.time())
        claims = {
            "iss": issuer or (first.issuer if first else "https://issuer.invalid"),
            "sub": subject or (first.subject if first else "unknown"),
            "aud": [audience], "iat": now, "nbf": min(now, now + lifetime),
            "exp": now + lifetime, "jti": str(uuid.uuid4()),
        }
        header = {"alg": "RS256", "kid": "sandbox-oidc", "typ": "JWT"}
        token = ".".join((b64url(json.dumps(header).encode()),
                          b64url(json.dumps(claims).encode()), b64url(secrets.token_bytes(64))))
        with self._lock:
            self._minted.add(token)
        return token

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
            elif lowered == ["msi", "token"]:
                route = MI_PATH
                response = self._managed_identity(request)
            elif lowered == ["metadata", "identity", "oauth2", "token"]:
                route = IMDS_PATH
                response = self._imds(request)
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
                    f"Correlation ID: {correlation} Timestamp: {now_iso()}"
                ),
                "error_codes": [int(err.aadsts)],
                "timestamp": now_iso(),
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
        origin = "secret"
        if assertion is not None:
            origin = self._check_assertion(assertion, form.get("client_assertion_type", ""))
        elif secret is None:
            raise AadError(401, "invalid_client", "7000218",
                           "The request body must contain the following parameter: "
                           "'client_assertion' or 'client_secret'.")
        elif not same_secret(secret, self.client_secret):
            raise AadError(401, "invalid_client", "7000215",
                           "Invalid client secret provided. Ensure the secret being sent in the "
                           f"request is the client secret value, not the client secret ID, for "
                           f"a secret added to app '{self.client_id}'.")
        return Response.json(200, self._issue_token(origin),
                             headers={"Cache-Control": "no-store"})

    def _check_assertion(self, assertion: str, assertion_type: str) -> str:
        """Check a client-assertion JWT's shape and claims: a certificate's (not its
        signature) or, without a certificate thumbprint, a federated one; returns which."""
        if assertion_type != JWT_BEARER:
            raise AadError(400, "invalid_request", "50027",
                           f"Invalid client_assertion_type '{assertion_type}'.")
        try:
            header_b64, payload_b64, signature_b64 = assertion.split(".")
            header = json.loads(b64url_decode(header_b64))
            payload = json.loads(b64url_decode(payload_b64))
            b64url_decode(signature_b64)
        except (ValueError, binascii.Error) as exc:
            raise AadError(401, "invalid_client", "50027",
                           f"JWT token is invalid or malformed: {exc}.") from exc
        if not isinstance(header, dict) or not isinstance(payload, dict):
            raise AadError(401, "invalid_client", "50027", "JWT token is invalid or malformed.")
        thumbprint = header.get("x5t") or header.get("x5t#S256")
        if not thumbprint and self.federated_credentials:
            self._check_federated(assertion, payload)
            return "federated"
        if not thumbprint:
            raise AadError(401, "invalid_client", "700027",
                           "Client assertion contains an invalid signature: no x5t header.")
        if self.certificate_thumbprints and "x5t" in header:
            raw = b64url_decode(str(header["x5t"])).hex().upper()
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
        _check_lifetime(payload)
        return "certificate"

    def _check_federated(self, assertion: str, payload: dict[str, Any]) -> None:
        """A federated assertion: minted by the issuer (its "signature"), matching one of
        the app's federated credentials (issuer, subject, audience), within its lifetime."""
        with self._lock:
            known = assertion in self._minted
        if not known:
            raise AadError(401, "invalid_client", "50013",
                           "Assertion failed signature validation. [Reason - The key was not "
                           "found.]")
        audiences = payload.get("aud")
        audiences = audiences if isinstance(audiences, list) else [audiences]
        if not any(c.issuer == payload.get("iss") and c.subject == payload.get("sub")
                   and c.audience in audiences for c in self.federated_credentials):
            raise AadError(400, "invalid_request", "70021",
                           f"No matching federated identity record found for presented "
                           f"assertion. Assertion Issuer: '{payload.get('iss')}'. Assertion "
                           f"Subject: '{payload.get('sub')}'. Assertion Audience: "
                           f"'{','.join(str(a) for a in audiences)}'.")
        _check_lifetime(payload)

    def _managed_identity(self, request: Request) -> Response:
        """The App Service managed identity endpoint: ``GET ?api-version=2019-08-01&resource=
        ...[&client_id=...]`` with ``X-IDENTITY-HEADER``; answers ``access_token``,
        ``expires_on`` (epoch seconds, a string), ``resource``, ``token_type``."""
        try:
            resource, identity = self._check_identity_request(request)
        except _MiError as err:
            return Response.json(err.status, {"statusCode": err.status, "message": err.message})
        answer = self._issue_token(f"managed_identity:{identity}", appid=identity)
        return Response.json(200, {
            "access_token": answer["access_token"],
            "expires_on": str(int(time.time()) + self.token_lifetime),
            "resource": resource, "token_type": "Bearer", "client_id": identity,
        })

    def _check_identity_request(self, request: Request) -> tuple[str, str]:
        """The resource and the identity's client id of a managed identity request."""
        if request.method != "GET":
            raise _MiError(405, "The endpoint only accepts GET requests.")
        if not same_secret(request.header("X-IDENTITY-HEADER") or "", self.identity_header):
            raise _MiError(401, "The X-IDENTITY-HEADER header is missing or does not match.")
        if request.param("api-version") != MI_API_VERSION:
            raise _MiError(400, f"api-version {request.param('api-version')!r} is not "
                                f"supported; use {MI_API_VERSION}.")
        return self._resource_and_identity(request, _NO_IDENTITY)

    def _imds(self, request: Request) -> Response:
        """The Azure VM instance metadata service: ``GET ?api-version=2018-02-01&resource=
        ...[&client_id=...]`` with ``Metadata: true``; answers ``access_token``,
        ``expires_in`` / ``expires_on`` (strings), ``resource``, ``token_type``; refusals are
        ``{"error", "error_description"}``, as IMDS answers them."""
        try:
            if request.method != "GET":
                raise _MiError(405, "The request method is not supported.")
            if (request.header("Metadata") or "").lower() != "true":
                raise _MiError(400, "Required metadata header not specified")
            if request.param("api-version") != IMDS_API_VERSION:
                raise _MiError(400, f"Invalid version: api-version "
                                    f"{request.param('api-version')!r} (the sandbox serves "
                                    f"{IMDS_API_VERSION})")
            resource, identity = self._resource_and_identity(request, _IMDS_NO_IDENTITY)
        except _MiError as err:
            return Response.json(err.status, {"error": "invalid_request",
                                              "error_description": err.message})
        answer = self._issue_token(f"managed_identity:{identity}", appid=identity)
        now = int(time.time())
        return Response.json(200, {
            "access_token": answer["access_token"], "client_id": identity,
            "expires_in": str(self.token_lifetime), "ext_expires_in": str(self.token_lifetime),
            "expires_on": str(now + self.token_lifetime), "not_before": str(now),
            "resource": resource, "token_type": "Bearer",
        })

    def _resource_and_identity(self, request: Request, unknown: str) -> tuple[str, str]:
        """The resource (Graph, else 400) and the client id of the identity a managed
        identity request names (``client_id``: a user-assigned one attached to the host;
        none: the system-assigned one); ``unknown`` is the endpoint's refusal of others."""
        resource = request.param("resource") or ""
        if resource.rstrip("/") not in (self.graph_url, *GRAPH_RESOURCE_IDS):
            raise _MiError(400, f"The resource '{resource}' is not valid.")
        others = [name for name in ("mi_res_id", "object_id", "principal_id")
                  if request.param(name)]
        client_id = request.param("client_id")
        if others or (client_id is not None and client_id not in self.user_identities):
            raise _MiError(400, unknown)
        identity = client_id or self.system_identity
        if identity is None:
            raise _MiError(400, "No managed identity is assigned to this resource.")
        return resource, identity

    def _issue_token(self, origin: str, appid: str | None = None) -> dict[str, Any]:
        """Issue and remember an access token (``origin``: how it was asked for)."""
        issued = int(time.time())
        claims = {
            "aud": self.graph_url,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.token_lifetime,
            "appid": appid or self.client_id,
            "idtyp": "app",
            "roles": sorted(self.granted_permissions),
            "tid": self.tenant_id,
            "uti": secrets.token_urlsafe(16),
        }
        header = {"typ": "JWT", "alg": "RS256", "kid": "sandbox"}
        token = ".".join((
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(claims).encode()),
            b64url(secrets.token_bytes(32)),
        ))
        with self._lock:
            self._tokens[token] = (
                self.clock() + self.token_lifetime, frozenset(self.granted_permissions)
            )
            self.token_origins[token] = origin
        return {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        }


def _check_lifetime(payload: dict[str, Any]) -> None:
    """AADSTS700024 unless the assertion's ``exp`` is in the future."""
    if not isinstance(payload.get("exp"), int | float) or payload["exp"] < time.time():
        raise AadError(401, "invalid_client", "700024",
                       "Client assertion is not within its valid time range.")

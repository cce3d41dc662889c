"""The SCIM 2.0 client for Genesys Cloud (and any RFC 7643/7644 server).

Payload builders are pure functions; I/O goes through :meth:`ScimClient._request`.
Reads are paged lists (never one GET per user); writes are POST (create) and PATCH with
only the changed attributes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from genesys_prov import redact, scimpath
from genesys_prov.config import TargetConfig
from genesys_prov.errors import AuthError, ScimError, TargetError
from genesys_prov.http import HttpClient, TransportError
from genesys_prov.plan import Change, GroupChange, MemberRef

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCIM_JSON = "application/scim+json"
# RFC 7644 expected statuses per operation.
CREATED = frozenset({201, 200})  # §3.3: 201 Created (some servers answer 200)
PATCHED = frozenset({200, 204})  # §3.5.2: 200 with the resource, or 204 No Content
LISTED = frozenset({200})        # §3.4.2
# Permissions Genesys needs per operation (for 403 messages).
GENESYS_PERMISSIONS = {"POST": "directory:user:add", "PATCH": "directory:user:edit",
                       "PUT": "directory:user:edit", "DELETE": "directory:user:delete"}
GENESYS_GROUP_PERMISSION = "directory:group:edit"
GENESYS_PAGE_LIMIT_UNTRIMMED = 25


Resolve = Callable[[MemberRef], str | None]


def _no_refs(ref: MemberRef) -> str | None:
    return ref.target_id


def _wire_value(path: scimpath.TargetPath, value: Any, resolve: Resolve) -> Any:
    """The value as sent: a reference becomes its target id, and the enterprise manager is
    sent as ``{"value": id}`` (RFC 7643 §4.3). Returns None when a reference cannot be
    resolved (its user was not created)."""
    if isinstance(value, MemberRef):
        value = resolve(value)
        if value is None:
            return None
    if path.attr.lower() == "manager" and isinstance(value, str):
        return {"value": value}
    return value


def build_create(change: Change, resolve: Resolve = _no_refs) -> dict[str, Any]:
    """The POST /Users body for a create change (an unresolvable manager is left out)."""
    payload: dict[str, Any] = {"schemas": [scimpath.CORE_USER]}
    for item in change.attributes:
        path = scimpath.parse_path(item.attribute)
        value = _wire_value(path, item.new, resolve)
        if value is not None:
            scimpath.set_value(payload, path, value)
    return payload


def build_patch(change: Change, resolve: Resolve = _no_refs) -> dict[str, Any]:
    """The PATCH /Users/{id} body for an update, reactivate or deactivate change: one
    operation per changed attribute (an unresolvable reference is left out)."""
    ops = []
    for item in change.attributes:
        path = scimpath.parse_path(item.attribute)
        if item.op == "remove":
            ops.append({"op": "remove", "path": path.text})
            continue
        value = _wire_value(path, item.new, resolve)
        if value is not None:
            ops.append(scimpath.patch_operation(path, value, element_exists=item.op != "add"))
    return {"schemas": [PATCH_OP], "Operations": ops}


def build_group_create(change: GroupChange, resolve: Resolve = _no_refs) -> dict[str, Any]:
    """The POST /Groups body (generic targets): mapped attributes and the members."""
    payload: dict[str, Any] = {"schemas": [CORE_GROUP]}
    for item in change.attributes:
        scimpath.set_value(payload, scimpath.parse_path(item.attribute), item.new)
    members = [{"value": tid} for tid in (resolve(r) for r in change.add) if tid]
    if members:
        payload["members"] = members
    return payload


def build_group_patches(change: GroupChange, batch_size: int,
                        resolve: Resolve = _no_refs) -> list[dict[str, Any]]:
    """The PATCH /Groups/{id} bodies for a group update: attribute ``replace`` ops first,
    then members, at most ``batch_size`` members per request (``add`` with a value list,
    ``remove`` with ``members[value eq "id"]``)."""
    ops: list[dict[str, Any]] = [
        {"op": "replace", "path": item.attribute, "value": item.new}
        for item in change.attributes
    ]
    adds = [tid for tid in (resolve(r) for r in change.add) if tid]
    removes = [r.target_id for r in change.remove if r.target_id]
    bodies: list[dict[str, Any]] = []
    while adds or removes or ops:
        room = batch_size
        batch_ops, ops = ops, []
        take_add, adds = adds[:room], adds[room:]
        room -= len(take_add)
        take_remove, removes = removes[:room], removes[room:]
        if take_add:
            batch_ops.append({"op": "add", "path": "members",
                              "value": [{"value": tid} for tid in take_add]})
        batch_ops += [{"op": "remove",
                       "path": f"members[value eq {scimpath.escape_filter_value(tid)}]"}
                      for tid in take_remove]
        bodies.append({"schemas": [PATCH_OP], "Operations": batch_ops})
    return bodies


def scim_error(response: requests.Response, method: str, path: str) -> ScimError:
    """Turn an error response into a readable :class:`ScimError` (status, scimType,
    detail), whatever the body looks like."""
    detail = ""
    scim_type = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = str(body.get("detail") or body.get("message") or body.get("error_description")
                     or body.get("error") or "")
        scim_type = body.get("scimType")
    if not detail:
        detail = (response.reason or "error") if not response.text else response.text[:200]
    return ScimError(response.status_code, redact.scrub(detail), scim_type, method, path)


@dataclass
class _Token:
    value: str
    expires_at: float


class ScimClient:
    """Talks to one SCIM tenant.

    Example::

        client = ScimClient(config.target, http)
        for user in client.list_users(["userName", "title"]):
            ...
    """

    def __init__(self, config: TargetConfig, http: HttpClient) -> None:
        self.config = config
        self.http = http
        self.base = config.url.rstrip("/")
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        if config.token:
            redact.register(config.token)

    # --- auth ------------------------------------------------------------------------------

    def _bearer(self, force: bool = False) -> str:
        if self.config.token:
            return self.config.token
        with self._token_lock:
            now = time.monotonic()
            if force or self._token is None or now >= self._token.expires_at:
                self._token = self._fetch_token()
            return self._token.value

    def _fetch_token(self) -> _Token:
        oauth = self.config.oauth
        assert oauth is not None
        try:
            response = self.http.request(
                "POST", oauth.token_url, data={"grant_type": "client_credentials"},
                auth=(oauth.client_id, oauth.client_secret), idempotent=True,
                count_as="token",
            )
        except TransportError as exc:
            raise TargetError(f"Genesys OAuth: cannot reach {oauth.token_url}: {exc}") from exc
        if response.status_code != 200:
            err = scim_error(response, "POST", urlsplit(oauth.token_url).path)
            raise AuthError(f"Genesys OAuth: token request refused: HTTP {err.status}: "
                            f"{err.detail}")
        try:
            body = response.json()
            token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthError("Genesys OAuth: the token response has no access_token") from exc
        redact.register(token)
        # Refresh a minute early (or at 90 % of a short lifetime).
        margin = min(60.0, lifetime * 0.1)
        return _Token(token, time.monotonic() + lifetime - margin)

    # --- plumbing --------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                 json: Any = None, headers: dict[str, str] | None = None,
                 auth: bool = True, idempotent: bool | None = None) -> requests.Response:
        url = self.base + path
        if params:
            # %20 for spaces, not '+': some SCIM servers read '+' in a filter literally.
            url += "?" + urlencode(params, quote_via=quote)
        for attempt in (0, 1):
            hdrs = {"Accept": SCIM_JSON}
            if json is not None:
                hdrs["Content-Type"] = SCIM_JSON
            if auth:
                hdrs["Authorization"] = f"Bearer {self._bearer(force=attempt == 1)}"
            hdrs.update(headers or {})
            response = self.http.request(method, url, json=json, headers=hdrs,
                                         idempotent=idempotent)
            if response.status_code == 401 and auth and attempt == 0 and self.config.oauth:
                continue  # one re-auth, then give up
            return response
        raise AssertionError("unreachable")

    def _check_auth(self, response: requests.Response, method: str, path: str) -> None:
        if response.status_code == 401:
            raise AuthError(f"SCIM target refused the credentials (HTTP 401 on {method} {path})")
        if response.status_code == 403:
            need = (GENESYS_GROUP_PERMISSION if path.startswith("/Groups")
                    else GENESYS_PERMISSIONS.get(method)) \
                if self.config.flavor == "genesys" else None
            hint = f"; the operation needs the permission {need}" if need else ""
            raise AuthError(f"SCIM target forbids {method} {path} (HTTP 403){hint}")

    def _json(self, response: requests.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise TargetError(f"{method} {path}: the target answered HTTP "
                              f"{response.status_code} with a body that is not JSON") from exc

    # --- reads -----------------------------------------------------------------------------

    def get(self, path: str, params: dict[str, Any] | None = None, auth: bool = True) -> Any:
        """GET a SCIM endpoint and return its JSON; errors raise TargetError/AuthError."""
        try:
            response = self._request("GET", path, params=params, auth=auth)
        except TransportError as exc:
            raise TargetError(f"cannot reach the SCIM target: {exc}") from exc
        self._check_auth(response, "GET", path)
        if response.status_code not in LISTED:
            raise TargetError(str(scim_error(response, "GET", path)),
                              status=response.status_code)
        return self._json(response, "GET", path)

    def _pages(self, path: str, params: dict[str, Any], page_size: int) -> Iterator[dict[str, Any]]:
        start = 1
        seen = 0
        while True:
            query = {**params, "startIndex": start, "count": page_size}
            body = self.get(path, query)
            if not isinstance(body, dict) or not isinstance(body.get("Resources", []), list):
                raise TargetError(f"GET {path}: the answer is not a SCIM ListResponse")
            resources = body.get("Resources") or []
            total = body.get("totalResults")
            if not isinstance(total, int):
                raise TargetError(f"GET {path}: the ListResponse has no totalResults")
            for resource in resources:
                if not isinstance(resource, dict) or "id" not in resource:
                    raise TargetError(f"GET {path}: a listed resource has no id")
                yield resource
            seen += len(resources)
            if seen >= total:
                return
            if not resources:
                raise TargetError(f"GET {path}: the listing ended early: {seen} of {total} "
                                  "resources were returned; refusing to plan on a partial "
                                  "view of the target")
            start += len(resources)

    def _list_params(self, attributes: Sequence[str]) -> tuple[dict[str, Any], int]:
        """Listing parameters and page size: above 25 only when ``attributes=`` trims the
        response (Genesys answers 429 otherwise)."""
        params: dict[str, Any] = {}
        page = self.config.page_size
        if attributes:
            params["attributes"] = ",".join(attributes)
        elif self.config.flavor == "genesys":
            page = min(page, GENESYS_PAGE_LIMIT_UNTRIMMED)
        return params, page

    def list_groups(self, attributes: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        """Every group in the target, paged (trimmed with ``attributes=`` like users)."""
        params, page = self._list_params(attributes)
        return self._pages("/Groups", params, page)

    def _create(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = self._request("POST", path, json=payload)
        self._check_auth(response, "POST", path)
        if response.status_code not in CREATED:
            raise scim_error(response, "POST", path)
        body = self._json(response, "POST", path)
        if not isinstance(body, dict) or "id" not in body:
            raise ScimError(response.status_code, "the created resource has no id", None,
                            "POST", path)
        return body

    def create_group(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST /Groups (generic targets only: Genesys cannot create groups)."""
        return self._create("/Groups", payload)

    def patch_group(self, group_id: str, body: dict[str, Any],
                    version: str | None = None) -> None:
        """PATCH /Groups/{id} (member adds/removes, attributes)."""
        path = f"/Groups/{group_id}"
        response = self._request("PATCH", path, json=body,
                                 headers={"If-Match": version} if version else None)
        self._check_auth(response, "PATCH", path)
        if response.status_code not in PATCHED:
            raise scim_error(response, "PATCH", path)

    def list_users(self, attributes: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        """Every user in the target, paged. For Genesys, the unfiltered list hides
        inactive users, so a second listing with ``filter=active eq false`` follows; the
        page size is above 25 only when ``attributes=`` trims the response."""
        params, page = self._list_params(attributes)
        seen: set[str] = set()
        for resource in self._pages("/Users", params, page):
            seen.add(resource["id"])
            yield resource
        if self.config.flavor == "genesys":
            inactive = {**params, "filter": "active eq false"}
            for resource in self._pages("/Users", inactive, page):
                if resource["id"] not in seen:
                    yield resource

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        """GET /Users/{id}; None when the user does not exist (404)."""
        path = f"/Users/{user_id}"
        try:
            response = self._request("GET", path)
        except TransportError as exc:
            raise TargetError(f"cannot reach the SCIM target: {exc}") from exc
        self._check_auth(response, "GET", path)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise TargetError(str(scim_error(response, "GET", path)), status=response.status_code)
        body = self._json(response, "GET", path)
        if not isinstance(body, dict) or "id" not in body:
            raise TargetError(f"GET {path}: the answer is not a SCIM user")
        return body

    def find_users(self, attribute: str, value: str) -> list[dict[str, Any]]:
        """Users whose ``attribute`` equals ``value`` (``filter=attribute eq "value"``,
        escaped)."""
        flt = f"{attribute} eq {scimpath.escape_filter_value(value)}"
        body = self.get("/Users", {"filter": flt})
        resources = body.get("Resources") if isinstance(body, dict) else None
        if not isinstance(resources, list):
            raise TargetError("GET /Users: the answer is not a SCIM ListResponse")
        return [r for r in resources if isinstance(r, dict)]

    # --- writes ----------------------------------------------------------------------------

    def create_user(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST /Users; returns the created resource. Never retried blindly: a
        TransportError with ``ambiguous`` set means it may have been created."""
        return self._create("/Users", payload)

    def delete_user(self, user_id: str, version: str | None = None) -> None:
        """DELETE /Users/{id} (a user hard-deleted in the directory). A 404 counts as done:
        the user is already gone."""
        path = f"/Users/{user_id}"
        response = self._request("DELETE", path,
                                 headers={"If-Match": version} if version else None)
        self._check_auth(response, "DELETE", path)
        if response.status_code not in (200, 204, 404):
            raise scim_error(response, "DELETE", path)

    def patch_user(self, user_id: str, body: dict[str, Any],
                   version: str | None = None) -> dict[str, Any] | None:
        """PATCH /Users/{id}; returns the resource on 200, None on 204."""
        path = f"/Users/{user_id}"
        headers = {"If-Match": version} if version else None
        # Only-replace PATCHes set absolute values, so repeating one is harmless.
        replace_only = all(op.get("op") == "replace" for op in body.get("Operations", []))
        response = self._request("PATCH", path, json=body, headers=headers,
                                 idempotent=replace_only)
        self._check_auth(response, "PATCH", path)
        if response.status_code not in PATCHED:
            raise scim_error(response, "PATCH", path)
        if response.status_code == 204 or not response.content:
            return None
        result = self._json(response, "PATCH", path)
        return result if isinstance(result, dict) else None

"""The SCIM 2.0 client for Genesys Cloud (and any RFC 7643/7644 server).

Payload builders are pure functions; I/O goes through :meth:`ScimClient._request`, with
the bearer token from :class:`~genesys_prov.target.auth.TokenSource`.
Reads are paged lists (never one GET per user); writes are POST (create) and PATCH with
only the changed attributes.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlencode

import requests

from genesys_prov.config import TargetConfig
from genesys_prov.errors import AuthError, TargetError
from genesys_prov.http import HttpClient, TransportError
from genesys_prov.mapping import scimpath
from genesys_prov.plan.model import Change, GroupChange, MemberRef
from genesys_prov.target.auth import TOKEN_ATTEMPTS as TOKEN_ATTEMPTS
from genesys_prov.target.auth import TokenSource
from genesys_prov.target.auth import _Token as _Token
from genesys_prov.target.auth import secret_hint as _secret_hint
from genesys_prov.target.auth import token_refused as token_refused
from genesys_prov.target.responses import scim_error as scim_error

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCIM_JSON = "application/scim+json"
# RFC 7644 expected statuses per operation.
CREATED = frozenset({201, 200})  # §3.3: 201 Created (some servers answer 200)
PATCHED = frozenset({200, 204})  # §3.5.2: 200 with the resource, or 204 No Content
LISTED = frozenset({200})        # §3.4.2
# Permissions Genesys needs per operation (for 403 messages).
log = logging.getLogger(__name__)

_PageFuture = Future[tuple[list[dict[str, Any]], int]]
GENESYS_PERMISSIONS = {"POST": "directory:user:add", "PATCH": "directory:user:edit",
                       "PUT": "directory:user:edit", "DELETE": "directory:user:delete"}
GENESYS_GROUP_PERMISSION = "directory:group:edit"
GENESYS_PAGE_LIMIT_UNTRIMMED = 25
BODY_ATTEMPTS = 3  # a read answered with a body that is not JSON is asked again this often


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


def _resource_limited(response: requests.Response) -> bool:
    """A 429 that is about the page, not the rate: Genesys' "internal resource limits"
    (no point in waiting; ask for a smaller page)."""
    return response.status_code == 429 and "resource limit" in response.text.lower()


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
        self.tokens = TokenSource(config, http)
        self._page_cap = config.page_size  # lowered when the target refuses a page size

    def _bearer(self, force: bool = False) -> str:
        """The bearer token to send (see :meth:`TokenSource.bearer`)."""
        return self.tokens.bearer(force)

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                 json: Any = None, headers: dict[str, str] | None = None,
                 auth: bool = True, idempotent: bool | None = None,
                 give_up: Callable[[requests.Response], bool] | None = None,
                 ) -> requests.Response:
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
                                         idempotent=idempotent, give_up=give_up)
            if response.status_code == 401 and auth and attempt == 0 and self.config.oauth:
                continue  # one re-auth, then give up
            return response
        raise AssertionError("unreachable")

    def _check_auth(self, response: requests.Response, method: str, path: str) -> None:
        if response.status_code == 401:
            what = "target.oauth.client_id and target.oauth.client_secret" \
                if self.config.oauth else "target.token"
            raise AuthError(f"SCIM target refused the credentials (HTTP 401 on {method} "
                            f"{path}): check {what}{_secret_hint(self.config)}")
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

    def get(self, path: str, params: dict[str, Any] | None = None, auth: bool = True,
            give_up: Callable[[requests.Response], bool] | None = None) -> Any:
        """GET a SCIM endpoint and return its JSON; errors raise TargetError/AuthError. A
        body that is not JSON (a proxy's error page, a cut-off answer) is asked for again
        a few times before it is an error."""
        for attempt in range(1, BODY_ATTEMPTS + 1):
            try:
                response = self._request("GET", path, params=params, auth=auth,
                                         give_up=give_up)
            except TransportError as exc:
                raise TargetError(f"cannot reach the SCIM target: {exc}") from exc
            self._check_auth(response, "GET", path)
            if response.status_code not in LISTED:
                raise TargetError(str(scim_error(response, "GET", path)),
                                  status=response.status_code)
            try:
                return response.json()
            except ValueError as exc:
                if attempt == BODY_ATTEMPTS:
                    raise TargetError(f"GET {path}: the target answered HTTP "
                                      f"{response.status_code} with a body that is not JSON, "
                                      f"{BODY_ATTEMPTS} times") from exc
        raise AssertionError("unreachable")

    def _page(self, path: str, params: dict[str, Any], start: int,
              count: int) -> tuple[list[dict[str, Any]], int]:
        """One page of a listing: its resources (each checked to carry an id) and the
        ListResponse's ``totalResults``."""
        query = {**params, "startIndex": start, "count": count}
        body = self.get(path, query, give_up=_resource_limited)
        if not isinstance(body, dict) or not isinstance(body.get("Resources", []), list):
            raise TargetError(f"GET {path}: the answer is not a SCIM ListResponse")
        resources = body.get("Resources") or []
        total = body.get("totalResults")
        if not isinstance(total, int):
            raise TargetError(f"GET {path}: the ListResponse has no totalResults")
        for resource in resources:
            if not isinstance(resource, dict) or "id" not in resource:
                raise TargetError(f"GET {path}: a listed resource has no id")
        return resources, total

    def _pages(self, path: str, params: dict[str, Any], page_size: int) -> Iterator[dict[str, Any]]:
        """Every resource of a listing, in order. Once the first page shows that the
        server honours the page size, the pages after it (their ``startIndex`` follows
        from ``totalResults``) are fetched several at a time, under the shared limiter;
        anything unexpected (a short page, a page refused as too expensive) goes back to
        one page at a time from there."""
        start, seen, total, ahead = 1, 0, 1, self.config.concurrency > 1
        while seen < total:
            count = min(page_size, self._page_cap)
            try:
                resources, total = self._page(path, params, start, count)
            except TargetError as exc:
                if exc.status != 429 or count <= 1:
                    raise
                # Genesys refuses pages it finds too expensive with 429: halve and go on
                self._page_cap = max(1, count // 2)
                log.info("GET %s: the target refused a page with 429; asking for %d per "
                         "page", path, self._page_cap)
                continue
            yield from resources
            seen += len(resources)
            if seen < total and not resources:
                raise TargetError(f"GET {path}: the listing ended early: {seen} of {total} "
                                  "resources were returned; refusing to plan on a partial "
                                  "view of the target")
            start += len(resources)
            if ahead and len(resources) == count and seen < total:
                ahead = False  # once per listing: after a fallback, one page at a time
                got = yield from self._pages_ahead(path, params, start, count, total)
                start, seen = start + got, seen + got

    def _pages_ahead(self, path: str, params: dict[str, Any], start: int, count: int,
                     total: int) -> Generator[dict[str, Any], None, int]:
        """Fetch the pages from ``start`` to ``total`` ``concurrency`` at a time and yield
        their resources in order; returns how many were yielded. Stops at the first page
        that is short (the listing moved, or the server cut it) or refused as too
        expensive: the caller goes on from there one page at a time."""
        got = 0
        with ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="list") as pool, \
                contextlib.closing(self._submitted(pool, path, params,
                                                   range(start, total + 1, count),
                                                   count)) as pages:
            for first, future in pages:
                try:
                    resources, _ = future.result()
                except TargetError as exc:
                    if exc.status == 429:
                        return got  # too expensive: the caller halves the page
                    raise
                yield from resources
                got += len(resources)
                if len(resources) < count and first + count <= total:
                    return got  # a short page before the end
        return got

    def _submitted(self, pool: ThreadPoolExecutor, path: str, params: dict[str, Any],
                   starts: Iterable[int], count: int
                   ) -> Generator[tuple[int, _PageFuture], None, None]:
        """Pages submitted to ``pool`` ``concurrency`` ahead of the one yielded, in order
        of ``startIndex``; closing the iterator cancels the pages not yet started."""
        pending = iter(starts)
        window: collections.deque[tuple[int, _PageFuture]] = collections.deque()

        def submit(first: int) -> None:
            window.append((first, pool.submit(self._page, path, params, first, count)))

        try:
            for first in itertools.islice(pending, self.config.concurrency):
                submit(first)
            while window:
                item = window.popleft()
                following = next(pending, None)
                if following is not None:
                    submit(following)
                yield item
        finally:
            for _, future in window:
                future.cancel()

    def _list_params(self, attributes: Sequence[str]) -> tuple[dict[str, Any], int]:
        """Listing parameters and page size: above 25 only when ``attributes=`` trims the
        response (Genesys cuts pages to 25 otherwise). A trimmed listing also asks for
        ``meta.version`` on generic servers (RFC 7644 servers such as scim2-server leave
        ``meta`` out otherwise, and a reviewed plan needs each object's version); Genesys
        documents ``meta`` as always returned."""
        params: dict[str, Any] = {}
        page = self.config.page_size
        if attributes:
            names = list(attributes)
            if self.config.flavor != "genesys" and not any(
                    a.lower() in ("meta", "meta.version") for a in names):
                names.append("meta.version")
            params["attributes"] = ",".join(names)
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
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "id" not in body:
            # it was created, but the answer does not say as what: find it, never re-send
            raise TransportError(f"POST {path}: HTTP {response.status_code} with an answer "
                                 "that carries no resource id", ambiguous=True)
        return body

    def create_group(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST /Groups (generic targets only: Genesys cannot create groups)."""
        return self._create("/Groups", payload)

    def patch_group(self, group_id: str, body: dict[str, Any],
                    version: str | None = None) -> None:
        """PATCH /Groups/{id} (member adds/removes, attributes)."""
        path = f"/Groups/{group_id}"
        # member adds/removes and replaces leave the same group when repeated
        response = self._request("PATCH", path, json=body, idempotent=True,
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
        return self._find("/Users", attribute, value, {})

    def find_groups(self, display_name: str) -> list[dict[str, Any]]:
        """Groups named ``display_name`` (without their members)."""
        return self._find("/Groups", "displayName", display_name,
                          {"excludedAttributes": "members"})

    def _find(self, path: str, attribute: str, value: str,
              params: dict[str, Any]) -> list[dict[str, Any]]:
        flt = f"{attribute} eq {scimpath.escape_filter_value(value)}"
        body = self.get(path, {"filter": flt, **params})
        resources = body.get("Resources") if isinstance(body, dict) else None
        if not isinstance(resources, list):
            raise TargetError(f"GET {path}: the answer is not a SCIM ListResponse")
        return [r for r in resources if isinstance(r, dict)]

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
        try:  # it was applied: an unreadable answer is no reason to fail it
            result = response.json()
        except ValueError:
            return None
        return result if isinstance(result, dict) else None

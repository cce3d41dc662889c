"""Reading Microsoft Graph: MSAL client-credentials auth and paged user listings.

Reading has no side effects. Any failure while reading raises
:class:`~genesys_prov.errors.SourceError` (or AuthError), so a run never plans on a
partial directory.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from genesys_prov import redact
from genesys_prov.config import SourceConfig
from genesys_prov.errors import AuthError, DeltaExpired, SourceError
from genesys_prov.http import (
    HttpClient,
    TransportError,
    describe_transport_error,
    tls_permanent,
)
from genesys_prov.source.credentials import GraphCredential, token_endpoint

API_VERSION = "v1.0"
MAX_TOP = 999
DELETED_LOOKUPS = 3  # more users gone than this: list the deleted users once instead
BODY_ATTEMPTS = 3  # a page answered with a body that is not JSON is asked again this often
DELTA_PAGE = 200  # Graph's largest delta page (``Prefer: odata.maxpagesize`` is capped there)
_PREFER_DELTA = {"Prefer": f"odata.maxpagesize={DELTA_PAGE}"}
USER_TYPE = "#microsoft.graph.user"
SYNC_PERMISSION = "Synchronization.Read.All"


# Graph's error codes for a delta token it no longer knows; real responses spell the first
# with a capital S (microsoftgraph/microsoft-graph-docs#2350), so they are compared in lower case.
DELTA_RESET_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})


def _error_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else {}


def _graph_error(response: requests.Response) -> str:
    err = _error_body(response)
    if err:
        return f"{err.get('code', '')}: {err.get('message', '')}".strip(": ")
    return response.reason or "error"


def _delta_reset(response: requests.Response) -> bool:
    """Does Graph say the delta token is gone (410, or a code such as SyncStateNotFound in
    any case)?"""
    if response.status_code == 410:
        return True
    if response.status_code < 400:  # a page: its body is read once, by the caller
        return False
    code = str(_error_body(response).get("code") or "").lower()
    return code in DELTA_RESET_CODES or any(c in response.text.lower()
                                            for c in DELTA_RESET_CODES)


class GraphReader:
    """Reads users from Microsoft Graph.

    Example::

        reader = GraphReader(config.source, http)
        for user in reader.iter_users(["id", "userPrincipalName", "displayName"]):
            ...
    """

    def __init__(self, config: SourceConfig, http: HttpClient) -> None:
        self.config = config
        self.http = http
        self.base = f"{config.graph_url.rstrip('/')}/{API_VERSION}"
        self._app: GraphCredential | None = None
        self._lock = threading.Lock()
        self.pages_read = 0

    def _msal(self) -> GraphCredential:
        if self._app is None:
            try:
                self._app = GraphCredential(self.config, self.http.session, self.http.timeout)
            except ValueError as exc:  # MSAL raises ValueError for a bad authority/response
                raise AuthError(f"Microsoft Entra: {redact.scrub(str(exc))}") from exc
            except requests.RequestException as exc:
                raise self._unreachable(exc) from exc
        return self._app

    def _unreachable(self, exc: requests.RequestException) -> SourceError:
        url = token_endpoint(self.config)
        error = SourceError(f"Microsoft Entra: "
                            f"{describe_transport_error(exc, url, self.http.timeout)}")
        if isinstance(exc, requests.exceptions.SSLError) and tls_permanent(exc):
            error.transient = False  # not a network hiccup
        return error

    def token(self, fresh: bool = False) -> str:
        """An access token for Graph (cached and refreshed by MSAL); ``fresh`` drops the
        cached one first (Graph refused it: expired or revoked)."""
        with self._lock:
            app = self._msal()
            scope = f"{self.config.graph_url.rstrip('/')}/.default"
            if fresh:
                app.forget()
            try:
                result = app.acquire(scope)
            except requests.RequestException as exc:
                raise self._unreachable(exc) from exc
            except ValueError as exc:
                raise AuthError(f"Microsoft Entra: {redact.scrub(str(exc))}") from exc
        if not isinstance(result, dict) or "access_token" not in result:
            raise AuthError(redact.scrub(app.refusal(result)))
        token = str(result["access_token"])
        redact.register(token)
        return token

    def get(self, url: str, params: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> dict[str, Any]:
        """GET a Graph URL (absolute, or relative to ``/v1.0``) and return its JSON object;
        ``headers`` are sent besides the token (``Prefer``)."""
        if not url.startswith("http"):
            url = self.base + url
        if urlsplit(url).netloc != urlsplit(self.base).netloc:
            raise SourceError(f"Graph sent a link to another host ({urlsplit(url).netloc}); "
                              "refusing to send it the token")
        for _ in range(BODY_ATTEMPTS):
            response = self._send(url, params, headers)
            if response.status_code == 401:  # expired or revoked mid-run: one fresh token
                response = self._send(url, params, headers, fresh=True)
            body = self._check(response, url)
            if body is not None:
                return body
        raise SourceError(f"Graph: GET {urlsplit(url).path} answered with a body that is not "
                          f"JSON, {BODY_ATTEMPTS} times")

    def _check(self, response: requests.Response, url: str) -> dict[str, Any] | None:
        """The JSON object of a 200 answer; None when the body is not JSON (asked again);
        raises for error statuses."""
        path = urlsplit(url).path
        if _delta_reset(response):
            raise DeltaExpired(f"Graph no longer knows the delta token for {path} "
                               f"(HTTP {response.status_code} "
                               f"{_error_body(response).get('code') or 'Gone'})")
        if response.status_code in (401, 403):
            raise AuthError(f"Graph refused GET {path} (HTTP {response.status_code}): "
                            f"{redact.scrub(_graph_error(response))}")
        if response.status_code != 200:
            raise SourceError(f"Graph: GET {path} failed with HTTP {response.status_code}: "
                              f"{redact.scrub(_graph_error(response))}",
                              status=response.status_code)
        try:
            body = response.json()
        except ValueError:
            return None
        if not isinstance(body, dict):
            raise SourceError(f"Graph: GET {path} answered with unexpected JSON")
        return body

    def _send(self, url: str, params: dict[str, Any] | None, extra: dict[str, str] | None,
              fresh: bool = False) -> requests.Response:
        token = self.token(fresh=True) if fresh else self.token()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                   **(extra or {})}
        try:
            return self.http.request("GET", url, params=params, headers=headers)
        except TransportError as exc:
            error = SourceError(f"Graph: {exc}")
            error.transient = exc.transient
            raise error from exc

    def iter_pages(self, path: str, params: dict[str, Any],
                   delta_link: Callable[[str], None] | None = None
                   ) -> Iterator[list[dict[str, Any]]]:
        """Follow ``@odata.nextLink`` until it is absent; yield each page's objects. With
        ``delta_link`` the path is a delta round (pages of up to 200 objects), and the
        round's ``@odata.deltaLink`` is handed to it at the end."""
        url: str | None = path
        query: dict[str, Any] | None = params
        headers = _PREFER_DELTA if delta_link is not None else None
        while url:
            body = self.get(url, query, headers)
            value = body.get("value")
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise SourceError(f"Graph: {urlsplit(url).path}: the page has no 'value' list")
            self.pages_read += 1
            yield value
            link = body.get("@odata.nextLink")
            if link is not None and not isinstance(link, str):
                raise SourceError("Graph: @odata.nextLink is not a URL")
            if link is None and delta_link is not None:
                final = body.get("@odata.deltaLink")
                if not isinstance(final, str):
                    raise SourceError("Graph: a delta round ended without a deltaLink")
                delta_link(final)
            url, query = link, None

    def _objects(self, path: str, params: dict[str, Any], kind: str,
                 delta_link: Callable[[str], None] | None = None) -> Iterator[dict[str, Any]]:
        for page in self.iter_pages(path, params, delta_link):
            for obj in page:
                if not isinstance(obj.get("id"), str):
                    raise SourceError(f"Graph: {kind} without an id was returned by {path}")
                yield obj

    def iter_users(self, select: Sequence[str], expand_manager: bool = False,
                   delta_link: Callable[[str], None] | None = None
                   ) -> Iterator[dict[str, Any]]:
        """Every user in the directory with exactly the ``select``ed properties.

        With ``expand_manager`` each carries ``manager: {id}`` (never one request per
        user). ``$expand=manager`` would cap a page at 100 users (a known Graph limit), so
        the manager comes from a delta round instead (``$select=…,manager``, 200 users a
        page), whose ``@odata.deltaLink`` is handed to ``delta_link``: the link the next
        incremental run follows, at no extra request. Without the manager, ``/users`` at
        999 a page is cheaper."""
        if not expand_manager:
            params = {"$select": ",".join(select), "$top": str(MAX_TOP)}
            return self._objects("/users", params, "a user")
        names = [*select, *([] if "manager" in select else ["manager"])]
        return self._delta_users(names, delta_link)

    def _delta_users(self, select: Sequence[str], delta_link: Callable[[str], None] | None
                     ) -> Iterator[dict[str, Any]]:
        """The users of a delta round, in the shape ``/users?$expand=manager`` gives them
        (``manager@delta`` becomes ``manager: {id}``); removed objects are left out."""
        params = {"$select": ",".join(select)}
        for user in self._objects("/users/delta", params, "a user",
                                  delta_link or (lambda _link: None)):
            if "@removed" in user:
                continue
            managers = user.pop("manager@delta", None)
            current = [m for m in managers if isinstance(m, dict) and "@removed" not in m
                       and isinstance(m.get("id"), str)] if isinstance(managers, list) else []
            if current:
                user["manager"] = {"@odata.type": USER_TYPE, "id": current[-1]["id"]}
            yield user

    def iter_groups(self, select: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Every group in the directory with the ``select``ed properties."""
        params = {"$select": ",".join(select), "$top": str(MAX_TOP)}
        return self._objects("/groups", params, "a group")

    def get_group(self, group_id: str, select: Sequence[str]) -> dict[str, Any]:
        """One group by id."""
        return self.get(f"/groups/{group_id}", {"$select": ",".join(select)})

    def iter_members(self, group_id: str, transitive: bool = False) -> Iterator[dict[str, Any]]:
        """The direct (or, with ``transitive``, nested) members of a group: ids and
        ``@odata.type``, paged."""
        rel = "transitiveMembers" if transitive else "members"
        params = {"$select": "id", "$top": str(MAX_TOP)}
        return self._objects(f"/groups/{group_id}/{rel}", params, "a member")

    def delta_start(self, kind: str, select: Sequence[str]) -> str:
        """A delta link that starts "from now" (``$deltatoken=latest``): taken before a full
        read, so the next incremental run sees every change made since (a replay of a few
        is harmless)."""
        params = {"$select": ",".join(select), "$deltatoken": "latest"}
        return self._drain_delta(f"/{kind}/delta", params)[1]

    def delta_changes(self, link: str) -> tuple[list[dict[str, Any]], str]:
        """Follow a stored delta link to the end of the round: the changed objects and the
        new delta link. Raises DeltaExpired when Graph no longer knows the token, and for
        any other 4xx answer (but 401/403/429) to the stored link: the way back is a full
        sync, not the same dead link on every run."""
        try:
            return self._drain_delta(link, None)
        except SourceError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and \
                    exc.status not in (401, 403, 429):
                raise DeltaExpired(f"Graph refused the stored delta link: {exc}") from exc
            raise

    def _drain_delta(self, url: str, params: dict[str, Any] | None
                     ) -> tuple[list[dict[str, Any]], str]:
        changes: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            body = self.get(next_url, params, _PREFER_DELTA)
            value = body.get("value")
            if not isinstance(value, list):
                raise SourceError("Graph: a delta page has no 'value' list")
            changes.extend(v for v in value if isinstance(v, dict))
            delta = body.get("@odata.deltaLink")
            if isinstance(delta, str):
                return changes, delta
            link = body.get("@odata.nextLink")
            if not isinstance(link, str):
                raise SourceError("Graph: a delta round ended without a deltaLink")
            next_url, params = link, None
        raise SourceError("Graph: a delta round ended without a deltaLink")

    def is_soft_deleted(self, object_id: str) -> bool | None:
        """Is a user missing from ``/users`` only soft-deleted (in the recycle bin, restorable
        for 30 days)? True / False (hard-deleted), or None when Graph cannot tell (e.g. no
        permission): the caller must then assume the safer case."""
        try:
            self.get(f"/directory/deletedItems/{object_id}")
            return True
        except AuthError:
            return None
        except SourceError as exc:
            return False if exc.status == 404 else None

    def soft_deleted(self, object_ids: Sequence[str]) -> dict[str, bool | None]:
        """:meth:`is_soft_deleted` for many users: a few are looked up one by one; more
        cost one paged listing of the deleted users instead (``$select=id``). A listing
        Graph refuses (no permission) leaves every answer unknown (None)."""
        if len(object_ids) <= DELETED_LOOKUPS:
            return {oid: self.is_soft_deleted(oid) for oid in object_ids}
        params = {"$select": "id", "$top": str(MAX_TOP)}
        try:
            deleted = {str(obj["id"]).lower() for obj in self._objects(
                "/directory/deletedItems/microsoft.graph.user", params, "a deleted user")}
        except (AuthError, SourceError):
            return dict.fromkeys(object_ids)
        return {oid: oid.lower() in deleted for oid in object_ids}

    def app_roles(self, service_principal_id: str) -> list[dict[str, Any]]:
        """The app roles the enterprise application defines (``appRoles`` of its service
        principal): ``{id, displayName, value, ...}``."""
        body = self.get(f"/servicePrincipals/{service_principal_id}", {"$select": "id,appRoles"})
        roles = body.get("appRoles")
        return [r for r in roles if isinstance(r, dict)] if isinstance(roles, list) else []

    def iter_assignments(self, service_principal_id: str) -> Iterator[dict[str, Any]]:
        """The app role assignments of the enterprise application, paged:
        ``{principalId, principalType, appRoleId}``."""
        params = {"$top": str(MAX_TOP)}
        return self._objects(f"/servicePrincipals/{service_principal_id}/appRoleAssignedTo",
                             params, "an assignment")

    def synchronization_jobs(self, service_principal_id: str) -> list[dict[str, Any]]:
        """The provisioning (synchronization) jobs of an enterprise application; needs the
        application permission ``Synchronization.Read.All``."""
        path = f"/servicePrincipals/{quote(service_principal_id, safe='')}/synchronization/jobs"
        self.token()  # a credential failure is not a missing permission
        with _needs_sync_permission():
            return list(self._objects(path, {}, "a synchronization job"))

    def synchronization_schema(self, service_principal_id: str, job_id: str
                               ) -> dict[str, Any]:
        """The ``synchronizationSchema`` of one job (its rules, mappings and scoping
        filters); needs ``Synchronization.Read.All``."""
        path = (f"/servicePrincipals/{quote(service_principal_id, safe='')}"
                f"/synchronization/jobs/{quote(job_id, safe='')}/schema")
        self.token()
        with _needs_sync_permission():
            return self.get(path)

    def default_domain(self) -> str:
        """The tenant's default verified domain (what ``DefaultDomain()`` returns): one
        ``GET /organization?$select=verifiedDomains``, the domain with ``isDefault`` true.
        Needs Organization.Read.All (or Directory.Read.All). No default domain is a
        :class:`SourceError`, as Entra fails DefaultDomain() then."""
        try:
            body = self.get("/organization", {"$select": "verifiedDomains"})
        except AuthError as exc:
            raise AuthError(f"{exc} (DefaultDomain() in the mappings needs the application "
                            "permission Organization.Read.All or Directory.Read.All)") from exc
        orgs = body.get("value")
        for org in orgs if isinstance(orgs, list) else []:
            domains = org.get("verifiedDomains") if isinstance(org, dict) else None
            for domain in domains if isinstance(domains, list) else []:
                name = domain.get("name") if isinstance(domain, dict) else None
                if domain.get("isDefault") is True and isinstance(name, str) and name:
                    return name
        raise SourceError("Graph: the tenant has no default verified domain "
                          "(GET /organization?$select=verifiedDomains), which DefaultDomain() "
                          "needs")


@contextlib.contextmanager
def _needs_sync_permission() -> Iterator[None]:
    """Graph refusing a synchronization read: say which permission it needs."""
    try:
        yield
    except AuthError as exc:
        raise AuthError(f"{exc}; reading Entra's provisioning job needs the application "
                        f"permission {SYNC_PERMISSION} (or Synchronization.ReadWrite.All) "
                        "with admin consent") from exc

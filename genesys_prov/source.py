"""Reading Microsoft Graph: MSAL client-credentials auth and paged user listings.

Reading has no side effects. Any failure while reading raises
:class:`~genesys_prov.errors.SourceError` (or AuthError), so a run never plans on a
partial directory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import msal
import requests

from genesys_prov import redact
from genesys_prov.config import SourceConfig
from genesys_prov.errors import AuthError, ConfigError, DeltaExpired, SourceError
from genesys_prov.http import HttpClient, TransportError

API_VERSION = "v1.0"
MAX_TOP = 999
DELETED_LOOKUPS = 3  # more users gone than this: list the deleted users once instead


def _credential(config: SourceConfig) -> Any:
    if config.client_secret is not None:
        redact.register(config.client_secret)
        return config.client_secret
    cert = config.certificate
    assert cert is not None
    try:
        key = cert.private_key_path.read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigError(f"source.certificate.private_key_path: cannot read "
                          f"{cert.private_key_path}: {exc.strerror}") from exc
    redact.register(key)
    return {"private_key": key, "thumbprint": cert.thumbprint}


def _graph_error(response: requests.Response) -> str:
    try:
        body = response.json()
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            return f"{err.get('code', '')}: {err.get('message', '')}".strip(": ")
    except ValueError:
        pass
    return response.reason or "error"


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
        self._app: Any = None
        self._lock = threading.Lock()
        self.pages_read = 0

    def _msal(self) -> Any:
        if self._app is None:
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.config.client_id,
                    client_credential=_credential(self.config),
                    authority=f"{self.config.authority_host.rstrip('/')}/{self.config.tenant_id}",
                    http_client=self.http.session,
                    instance_discovery=False,
                    timeout=self.http.timeout,
                )
            except ValueError as exc:  # MSAL raises ValueError for a bad authority/response
                raise AuthError(f"Microsoft Entra: {redact.scrub(str(exc))}") from exc
            except requests.RequestException as exc:
                raise SourceError(f"Microsoft Entra: cannot reach "
                                  f"{self.config.authority_host}: {type(exc).__name__}") from exc
        return self._app

    def token(self) -> str:
        """An access token for Graph (cached and refreshed by MSAL)."""
        with self._lock:
            app = self._msal()
            scope = f"{self.config.graph_url.rstrip('/')}/.default"
            try:
                result = app.acquire_token_for_client(scopes=[scope])
            except requests.RequestException as exc:
                raise SourceError(f"Microsoft Entra: cannot reach the token endpoint: "
                                  f"{type(exc).__name__}") from exc
            except ValueError as exc:
                raise AuthError(f"Microsoft Entra: {redact.scrub(str(exc))}") from exc
        if not isinstance(result, dict) or "access_token" not in result:
            err = result.get("error", "error") if isinstance(result, dict) else "error"
            desc = result.get("error_description", "") if isinstance(result, dict) else ""
            first = str(desc).splitlines()[0] if desc else ""
            raise AuthError(redact.scrub(f"Microsoft Entra refused the credentials: {err}: "
                                         f"{first}".rstrip(": ")))
        token = str(result["access_token"])
        redact.register(token)
        return token

    def get(self, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET a Graph URL (absolute, or relative to ``/v1.0``) and return its JSON object."""
        if not url.startswith("http"):
            url = self.base + url
        if urlsplit(url).netloc != urlsplit(self.base).netloc:
            raise SourceError(f"Graph sent a link to another host ({urlsplit(url).netloc}); "
                              "refusing to send it the token")
        headers = {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}
        try:
            response = self.http.request("GET", url, params=params, headers=headers)
        except TransportError as exc:
            raise SourceError(f"Graph: {exc}") from exc
        path = urlsplit(url).path
        if response.status_code == 410 or (response.status_code in (400, 404) and
                                           "syncStateNotFound" in response.text):
            raise DeltaExpired(f"Graph: the delta token for {path} expired "
                               f"(HTTP {response.status_code})")
        if response.status_code in (401, 403):
            raise AuthError(f"Graph refused GET {path} (HTTP {response.status_code}): "
                            f"{redact.scrub(_graph_error(response))}")
        if response.status_code != 200:
            raise SourceError(f"Graph: GET {path} failed with HTTP {response.status_code}: "
                              f"{redact.scrub(_graph_error(response))}")
        try:
            body = response.json()
        except ValueError as exc:
            raise SourceError(f"Graph: GET {path} answered with a body that is not JSON") \
                from exc
        if not isinstance(body, dict):
            raise SourceError(f"Graph: GET {path} answered with unexpected JSON")
        return body

    def iter_pages(self, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Follow ``@odata.nextLink`` until it is absent; yield each page's objects."""
        url: str | None = path
        query: dict[str, Any] | None = params
        while url:
            body = self.get(url, query)
            value = body.get("value")
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise SourceError(f"Graph: {urlsplit(url).path}: the page has no 'value' list")
            self.pages_read += 1
            yield value
            link = body.get("@odata.nextLink")
            if link is not None and not isinstance(link, str):
                raise SourceError("Graph: @odata.nextLink is not a URL")
            url, query = link, None

    def _objects(self, path: str, params: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
        for page in self.iter_pages(path, params):
            for obj in page:
                if not isinstance(obj.get("id"), str):
                    raise SourceError(f"Graph: {kind} without an id was returned by {path}")
                yield obj

    def iter_users(self, select: Sequence[str],
                   expand_manager: bool = False) -> Iterator[dict[str, Any]]:
        """Every user in the directory with exactly the ``select``ed properties; with
        ``expand_manager`` each carries ``manager: {id}`` from the same listing (never one
        request per user; Graph then pages at most 100 users, a known Graph limit)."""
        params = {"$select": ",".join(select), "$top": str(MAX_TOP)}
        if expand_manager:
            params["$expand"] = "manager($select=id)"
        return self._objects("/users", params, "a user")

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
        new delta link. Raises DeltaExpired when Graph no longer knows the token."""
        return self._drain_delta(link, None)

    def _drain_delta(self, url: str, params: dict[str, Any] | None
                     ) -> tuple[list[dict[str, Any]], str]:
        changes: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            body = self.get(next_url, params)
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
            return False if "HTTP 404" in str(exc) else None

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

    def iter_assignments(self, service_principal_id: str) -> Iterator[dict[str, Any]]:
        """The app role assignments of the enterprise application, paged:
        ``{principalId, principalType, appRoleId}``."""
        params = {"$top": str(MAX_TOP)}
        return self._objects(f"/servicePrincipals/{service_principal_id}/appRoleAssignedTo",
                             params, "an assignment")

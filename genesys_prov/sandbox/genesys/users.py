"""The user endpoints: ``GET``/``POST /Users`` and ``GET``/``PUT``/``PATCH``/``DELETE
/Users/{id}``."""

from __future__ import annotations

from genesys_prov.sandbox._http import Request, Response
from genesys_prov.sandbox._ranked import RankedSet
from genesys_prov.sandbox.genesys.exchange import Exchange
from genesys_prov.sandbox.genesys.paging import Paging
from genesys_prov.sandbox.genesys.resource_types import USER_EXTENSIONS
from genesys_prov.sandbox.genesys.user_filters import IdSequence, UserFilters
from genesys_prov.sandbox.genesys.user_store import UserStore
from genesys_prov.sandbox.scim import (
    USER_SCHEMA,
    ScimFault,
)


class UserEndpoints(UserStore, UserFilters, Paging, Exchange):
    """The handlers of the user routes."""

    def _users(self, request: Request) -> Response:
        """``GET /Users`` (list or filter) and ``POST /Users``."""
        if request.method == "POST":
            return self._create_user(request)
        start, count = self._paging(request, USER_SCHEMA, USER_EXTENSIONS)
        filter_text = request.param("filter")
        with self._lock:
            source: RankedSet | IdSequence
            source = self._active if not filter_text else self._filter_users(filter_text)
            total = len(source)
            if count == 0:
                return self._list_response(total, start, [])
            if isinstance(source, RankedSet):
                ids = [self._seq_ids[n] for n in source.page(start - 1, count)]
            else:
                ids = source.page(start - 1, count)
            resources = [self._render_user(request, self.users[uid]) for uid in ids]
            return self._list_response(total, start, resources)

    def _user(self, request: Request, uid: str) -> Response:
        """``GET``, ``PUT``, ``PATCH`` and ``DELETE /Users/{id}``."""
        with self._lock:
            user = self.users.get(uid)
            if user is None:
                raise ScimFault(404, f"User {uid} not found")
            if request.method == "GET":
                cached = self._not_modified(request, user)
                if cached is not None:
                    return cached
                return self._resource_response(200, self._render_user(request, user))
            self._check_if_match(request, user)
            if request.method == "DELETE":
                self._delete_user(uid)
                return Response(204)
            body = self._json_object(request)
            if request.method == "PUT":
                candidate = self._ingest_user(body)
                if "roles" not in candidate and "roles" in user:
                    candidate["roles"] = user["roles"]
                stored = self._update_user(uid, candidate)
                return self._resource_response(200, self._render_user(request, stored))
            stored = self._patch_user(uid, body)
            if not self.patch_returns_body:
                return Response(204, b"", {"ETag": stored["meta"]["version"]})
            return self._resource_response(200, self._render_user(request, stored))

    def _create_user(self, request: Request) -> Response:
        """``POST /Users``."""
        body = self._json_object(request)
        candidate = self._ingest_user(body)
        with self._lock:
            stored = self._store_new_user(candidate, None)
            return self._resource_response(
                201, self._render_user(request, stored),
                {"Location": stored["meta"]["location"]},
            )

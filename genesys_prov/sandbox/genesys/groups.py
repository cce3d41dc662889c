"""The group endpoints: ``GET /Groups`` (with the ``id`` / ``displayName`` filters) and
``GET``/``PUT``/``PATCH /Groups/{id}``."""

from __future__ import annotations

import copy
from typing import Any

from genesys_prov.sandbox._http import Request, Response
from genesys_prov.sandbox.genesys.coercion import (
    coerce,
)
from genesys_prov.sandbox.genesys.exchange import Exchange
from genesys_prov.sandbox.genesys.group_store import GroupStore
from genesys_prov.sandbox.genesys.paging import Paging
from genesys_prov.sandbox.genesys.patch import GROUP_PATCHER, patch_operations
from genesys_prov.sandbox.scim import (
    GROUP_SCHEMA,
    Compare,
    ScimFault,
    bad_request,
    parse_filter,
    split_urn,
)
from genesys_prov.sandbox.scim.errors import invalid_syntax


class GroupEndpoints(GroupStore, Paging, Exchange):
    """The handlers of the group routes."""

    def _list_groups(self, request: Request) -> Response:
        """``GET /Groups`` (list or filter)."""
        start, count = self._paging(request, GROUP_SCHEMA, ())
        filter_text = request.param("filter")
        with self._lock:
            ids = self._group_order if not filter_text else self._filter_groups(filter_text)
            total = len(ids)
            page = [] if count == 0 else ids[start - 1 : start - 1 + count]
            resources = [self._render_group(request, self.groups[gid]) for gid in page]
            return self._list_response(total, start, resources)

    def _filter_groups(self, text: str) -> list[str]:
        """The groups a (supported) filter selects."""
        node = parse_filter(text)
        if isinstance(node, Compare) and node.op == "eq" and isinstance(node.value, str):
            schema, rest = split_urn(node.path, (GROUP_SCHEMA,))
            name = (rest if schema is not None else node.path).lower()
            if name == "id":
                return [node.value] if node.value in self.groups else []
            if name == "displayname":
                found = self._group_names.get(node.value.lower())
                return [found] if found else []
        raise bad_request(
            f"Unsupported filter {text!r}; supported group filters: id eq, displayName eq",
            "invalidFilter",
        )

    def _group(self, request: Request, gid: str) -> Response:
        """``GET``, ``PUT`` and ``PATCH /Groups/{id}``."""
        with self._lock:
            group = self.groups.get(gid)
            if group is None:
                raise ScimFault(404, f"Group {gid} not found")
            if request.method == "GET":
                cached = self._not_modified(request, group)
                if cached is not None:
                    return cached
                return self._resource_response(200, self._render_group(request, group))
            self._check_if_match(request, group)
            body = self._json_object(request)
            if request.method == "PUT":
                candidate: dict[str, Any] = {"meta": group["meta"]}
                for key, value in body.items():
                    if key.lower() in ("schemas", "id", "meta") or value is None:
                        continue
                    attr = GROUP_SCHEMA.attr(key)
                    if attr is None:
                        raise invalid_syntax(f"Unknown attribute '{key}'")
                    candidate[attr.name] = coerce(attr, value, attr.name)
            else:
                candidate = copy.deepcopy(group)
                for operation in patch_operations(body):
                    GROUP_PATCHER.apply(candidate, operation)
            self._commit_group(gid, candidate, group)
            stored = self.groups[gid]
            if request.method == "PATCH" and not self.patch_returns_body:
                return Response(204, b"", {"ETag": stored["meta"]["version"]})
            return self._resource_response(200, self._render_group(request, stored))

"""The ``/v1.0`` group resources: groups, one group, and its direct and transitive
members (typed directory objects)."""

from __future__ import annotations

from typing import Any

from genesys_prov.sandbox._http import Request
from genesys_prov.sandbox.graph.answers import GraphError
from genesys_prov.sandbox.graph.properties import (
    GROUP_DEFAULT_SELECT,
    GROUP_LOOKUP,
    GROUP_PROPERTIES,
    GROUP_TYPE,
    USER_DEFAULT_SELECT,
    USER_LOOKUP,
    USER_TYPE,
)
from genesys_prov.sandbox.graph.shaping import Shaping


class GroupResources(Shaping):
    """The handlers of the group routes."""

    def _list_groups(self, request: Request) -> dict[str, Any]:
        """``GET /v1.0/groups``."""
        options = self._options(request)
        if "$expand" in options:
            raise GraphError(400, "Request_UnsupportedQuery",
                             "The sandbox does not support $expand on groups.")
        select_text = options.get("$select")
        names = self._select(select_text, GROUP_LOOKUP, "group", GROUP_DEFAULT_SELECT)
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
        names = self._select(select_text, GROUP_LOOKUP, "group", GROUP_DEFAULT_SELECT)
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
                values.append({"@odata.type": USER_TYPE, **self._user_json(user, user_names)})
                continue
            group = self._group_by_id.get(member_id.lower())
            if group is not None:
                shaped = self._group_json(
                    group, [n for n in group_names if n in GROUP_PROPERTIES or n == "id"]
                )
                values.append({"@odata.type": GROUP_TYPE, **shaped})
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
            canonical = USER_LOOKUP.get(name.lower()) or GROUP_LOOKUP.get(name.lower())
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

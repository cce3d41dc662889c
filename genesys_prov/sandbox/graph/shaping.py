"""Shaping directory objects as Graph returns them: ``$select``ed properties, group
defaults, an expanded manager, and look-ups that 404 like Graph."""

from __future__ import annotations

from typing import Any

from genesys_prov.sandbox.graph.answers import GraphError
from genesys_prov.sandbox.graph.properties import (
    COLLECTIONS,
    INTERNAL,
    USER_DEFAULT_SELECT,
    USER_LOOKUP,
)
from genesys_prov.sandbox.graph.query import QueryOptions


class Shaping(QueryOptions):
    """Users and groups as the API shows them."""

    @staticmethod
    def _shape(obj: dict[str, Any], names: list[str]) -> dict[str, Any]:
        """``obj`` reduced to ``names`` (missing collections as [], others as null)."""
        out: dict[str, Any] = {}
        for name in names:
            if name in INTERNAL:
                continue
            if name.startswith("extension_"):
                if name in obj:
                    out[name] = obj[name]
                continue
            value = obj.get(name)
            if value is None and name in COLLECTIONS:
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
                return self._select(inner[len("$select="):], USER_LOOKUP, "user",
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

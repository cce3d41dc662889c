"""The ``/v1.0`` user resources: users, one user, a user's manager, and the soft-deleted
users in ``directory/deletedItems``."""

from __future__ import annotations

from typing import Any

from genesys_prov.sandbox._http import Request
from genesys_prov.sandbox.graph.answers import GraphError
from genesys_prov.sandbox.graph.properties import (
    USER_DEFAULT_SELECT,
    USER_LOOKUP,
    USER_TYPE,
)
from genesys_prov.sandbox.graph.shaping import Shaping


class UserResources(Shaping):
    """The handlers of the user routes."""

    def _list_users(self, request: Request) -> dict[str, Any]:
        """``GET /v1.0/users``."""
        options = self._options(request)
        select_text = options.get("$select")
        names = self._select(select_text, USER_LOOKUP, "user", USER_DEFAULT_SELECT)
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
                        "@odata.type": USER_TYPE, **self._user_json(manager, manager_names)
                    }
            values.append(data)
        envelope["value"] = values
        if "@odata.nextLink" in envelope:
            envelope["@odata.nextLink"] = envelope.pop("@odata.nextLink")
        return envelope

    def _list_deleted_users(self, request: Request) -> dict[str, Any]:
        """``GET /v1.0/directory/deletedItems/microsoft.graph.user``: the soft-deleted
        users (restorable for 30 days), paged like ``/users``."""
        options = self._options(request)
        select_text = options.get("$select")
        names = self._select(select_text, USER_LOOKUP, "user", USER_DEFAULT_SELECT)
        page, envelope = self._page(
            request, "/v1.0/directory/deletedItems/microsoft.graph.user", options,
            list(self.deleted_users.values()),
            self._context("directoryObjects/microsoft.graph.user",
                          names if select_text else None))
        envelope["value"] = [self._user_json(user, names) for user in page]
        if "@odata.nextLink" in envelope:
            envelope["@odata.nextLink"] = envelope.pop("@odata.nextLink")
        return envelope

    def _get_deleted_item(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/directory/deletedItems/{id}``: a soft-deleted user (restorable for
        30 days), or 404 when the object was hard-deleted (or never existed)."""
        user = self.deleted_users.get(key.lower())
        if user is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{key}' does not exist or one of its queried "
                             "reference-property objects are not present.")
        return {"@odata.context": f"{self.graph_url}/v1.0/$metadata#directoryObjects/$entity",
                "@odata.type": USER_TYPE, "id": user["id"],
                "userPrincipalName": user.get("userPrincipalName")}

    def _get_user(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/users/{id}``."""
        options = self._options(request)
        select_text = options.get("$select")
        names = self._select(select_text, USER_LOOKUP, "user", USER_DEFAULT_SELECT)
        user = self._find_user(key)
        data: dict[str, Any] = {
            "@odata.context": self._context("users", names if select_text else None) + "/$entity"
        }
        data.update(self._user_json(user, names))
        manager_names = self._expand_manager(options.get("$expand"))
        if manager_names is not None:
            manager = self._user_by_id.get((user.get("manager") or "").lower())
            if manager is not None:
                data["manager"] = {"@odata.type": USER_TYPE,
                                   **self._user_json(manager, manager_names)}
        return data

    def _get_manager(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/users/{id}/manager``."""
        options = self._options(request)
        names = self._select(options.get("$select"), USER_LOOKUP, "user", USER_DEFAULT_SELECT)
        user = self._find_user(key)
        manager = self._user_by_id.get((user.get("manager") or "").lower())
        if manager is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             "Resource 'manager' does not exist or one of its queried "
                             "reference-property objects are not present.")
        return {
            "@odata.context": f"{self.graph_url}/v1.0/$metadata#directoryObjects/$entity",
            "@odata.type": USER_TYPE,
            **self._user_json(manager, names),
        }

"""The ``/v1.0`` service principal resources: the enterprise application and the users
and groups assigned to it (``appRoleAssignedTo``)."""

from __future__ import annotations

import uuid
from typing import Any

from genesys_prov.sandbox._http import Request
from genesys_prov.sandbox.graph.answers import GraphError
from genesys_prov.sandbox.graph.encoding import b64url
from genesys_prov.sandbox.graph.shaping import Shaping


class ServicePrincipalResources(Shaping):
    """The handlers of the service principal routes."""

    def _find_service_principal(self, key: str) -> dict[str, Any]:
        """The service principal by id, else 404."""
        if key.lower() != str(self.service_principal["id"]).lower():
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{key}' does not exist or one of its queried "
                             "reference-property objects are not present.")
        return self.service_principal

    def _get_service_principal(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/servicePrincipals/{id}``."""
        self._options(request)
        sp = self._find_service_principal(key)
        return {
            "@odata.context": f"{self.graph_url}/v1.0/$metadata#servicePrincipals/$entity",
            "id": sp["id"],
            "appId": sp.get("appId"),
            "displayName": sp.get("displayName"),
            "servicePrincipalType": "Application",
            "accountEnabled": True,
            "appRoles": sp.get("appRoles", []),
        }

    def _app_role_assigned_to(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/servicePrincipals/{id}/appRoleAssignedTo``."""
        options = self._options(request)
        sp = self._find_service_principal(key)
        assignments = [a for a in self.app_role_assignments if self._exists(a["principalId"])]
        page, envelope = self._page(
            request, f"/v1.0/servicePrincipals/{sp['id']}/appRoleAssignedTo", options,
            assignments,
            f"{self.graph_url}/v1.0/$metadata#servicePrincipals('{sp['id']}')/appRoleAssignedTo",
        )
        values = []
        for assignment in page:
            principal_id = assignment["principalId"]
            principal: dict[str, Any] = (
                self._user_by_id.get(principal_id.lower())
                or self._group_by_id.get(principal_id.lower())
                or {}
            )
            values.append({
                "id": assignment.get("id") or b64url(
                    uuid.uuid5(uuid.NAMESPACE_OID, f"{principal_id}/{sp['id']}").bytes * 2
                )[:43],
                "deletedDateTime": None,
                "appRoleId": assignment["appRoleId"],
                "createdDateTime": assignment.get("createdDateTime", "2024-01-15T09:30:00Z"),
                "principalDisplayName": principal.get("displayName"),
                "principalId": principal_id,
                "principalType": assignment["principalType"],
                "resourceDisplayName": sp.get("displayName"),
                "resourceId": sp["id"],
            })
        envelope["value"] = values
        if "@odata.nextLink" in envelope:
            envelope["@odata.nextLink"] = envelope.pop("@odata.nextLink")
        return envelope

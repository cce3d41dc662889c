"""The discovery endpoints: ``/Schemas``, ``/ResourceTypes`` and
``/ServiceProviderConfig`` (served without a token)."""

from __future__ import annotations

from typing import Any

from genesys_prov.sandbox._http import Request, Response
from genesys_prov.sandbox.genesys.exchange import Exchange
from genesys_prov.sandbox.genesys.routes import (
    BASE_PATH,
)
from genesys_prov.sandbox.scim import (
    ALL_SCHEMAS,
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_USER,
    GENESYS_USER,
    RESOURCE_TYPE_SCHEMA,
    SCIM_CONTENT_TYPE,
    SPC_SCHEMA,
    ScimFault,
)


class Discovery(Exchange):
    """The handlers of the discovery routes."""

    def _schemas(self, request: Request) -> Response:
        """``GET /Schemas``."""
        resources = [schema.to_json(self.base_url + BASE_PATH) for schema in ALL_SCHEMAS]
        return self._list_response(len(resources), 1, resources)

    def _schema(self, request: Request, schema_id: str) -> Response:
        """``GET /Schemas/{id}``."""
        for schema in ALL_SCHEMAS:
            if schema.id == schema_id:
                return Response.json(200, schema.to_json(self.base_url + BASE_PATH),
                                     SCIM_CONTENT_TYPE)
        raise ScimFault(404, f"Schema {schema_id} not found")

    def _resource_type_docs(self) -> list[dict[str, Any]]:
        """The User and Group resource types."""
        base = self.base_url + BASE_PATH
        return [
            {
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": "User",
                "name": "User",
                "endpoint": "/Users",
                "description": "Genesys Cloud user",
                "schema": CORE_USER,
                "schemaExtensions": [
                    {"schema": ENTERPRISE_USER, "required": False},
                    {"schema": GENESYS_USER, "required": False},
                ],
                "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/User"},
            },
            {
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": "Group",
                "name": "Group",
                "endpoint": "/Groups",
                "description": "Genesys Cloud group",
                "schema": CORE_GROUP,
                "schemaExtensions": [],
                "meta": {"resourceType": "ResourceType",
                         "location": f"{base}/ResourceTypes/Group"},
            },
        ]

    def _resource_types(self, request: Request) -> Response:
        """``GET /ResourceTypes``."""
        docs = self._resource_type_docs()
        return self._list_response(len(docs), 1, docs)

    def _resource_type(self, request: Request, name: str) -> Response:
        """``GET /ResourceTypes/{name}``."""
        for doc in self._resource_type_docs():
            if doc["id"] == name:
                return Response.json(200, doc, SCIM_CONTENT_TYPE)
        raise ScimFault(404, f"Resource type {name} not found")

    def _spc(self, request: Request) -> Response:
        """``GET /ServiceProviderConfig``."""
        base = self.base_url + BASE_PATH
        return Response.json(
            200,
            {
                "schemas": [SPC_SCHEMA],
                "documentationUri": "https://developer.genesys.cloud/useragentmanagement/scim/",
                "patch": {"supported": True},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": True, "maxResults": self.max_results},
                "changePassword": {"supported": True},
                "sort": {"supported": False},
                "etag": {"supported": True},
                "authenticationSchemes": [
                    {
                        "type": "oauthbearertoken",
                        "name": "OAuth Bearer Token",
                        "description": "OAuth client credentials grant, or a pre-issued token",
                        "specUri": "https://www.rfc-editor.org/info/rfc6750",
                        "primary": True,
                    }
                ],
                "meta": {
                    "resourceType": "ServiceProviderConfig",
                    "location": f"{base}/ServiceProviderConfig",
                },
            },
            SCIM_CONTENT_TYPE,
        )

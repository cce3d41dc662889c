"""Reading SCIM requests and writing SCIM answers: JSON bodies, resources as the request
asked for them, single resources with their ETag, ListResponses, conditional requests
(``If-Match``, ``If-None-Match``) and errors below the emulator."""

from __future__ import annotations

from typing import Any

from genesys_prov.sandbox._http import Request, Response
from genesys_prov.sandbox.genesys.meta import etag_value
from genesys_prov.sandbox.genesys.projection import exclude, include, parse_attribute_list
from genesys_prov.sandbox.genesys.resource_types import (
    GROUP_ALWAYS,
    USER_ALWAYS,
    USER_EXTENSIONS,
)
from genesys_prov.sandbox.genesys.state import GenesysState
from genesys_prov.sandbox.scim import (
    GROUP_SCHEMA,
    LIST_SCHEMA,
    SCIM_CONTENT_TYPE,
    USER_SCHEMA,
    Schema,
    ScimFault,
    bad_request,
)
from genesys_prov.sandbox.scim.errors import invalid_syntax


def scim_error_response(status: int, detail: str) -> Response:
    """A SCIM error answer for failures below the emulator (e.g. 413 from the server)."""
    return Response.json(status, ScimFault(status, detail).body(), SCIM_CONTENT_TYPE)


class Exchange(GenesysState):
    """The request and answer helpers of the handlers."""

    @staticmethod
    def _json_object(request: Request) -> dict[str, Any]:
        """The request body as a JSON object, else 400 ``invalidSyntax``."""
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid_syntax(f"The request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise invalid_syntax("The request body must be a JSON object")
        return body

    def _render(
        self,
        request: Request,
        resource: dict[str, Any],
        core: Schema,
        extensions: tuple[Schema, ...],
        always: tuple[str, ...],
    ) -> dict[str, Any]:
        """A resource as the request asked for it (``attributes`` / ``excludedAttributes``)."""
        attributes = parse_attribute_list(request.param("attributes"), core, extensions)
        if attributes is not None:
            return include(resource, attributes, always)
        excluded = parse_attribute_list(request.param("excludedAttributes"), core, extensions)
        if excluded is not None:
            return exclude(resource, excluded, always)
        return resource

    def _render_user(self, request: Request, user: dict[str, Any]) -> dict[str, Any]:
        """A user as the request asked for it."""
        return self._render(request, user, USER_SCHEMA, USER_EXTENSIONS, USER_ALWAYS)

    def _render_group(self, request: Request, group: dict[str, Any]) -> dict[str, Any]:
        """A group as the request asked for it."""
        return self._render(request, group, GROUP_SCHEMA, (), GROUP_ALWAYS)

    @staticmethod
    def _resource_response(
        status: int, resource: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Response:
        """A single-resource answer with its ETag."""
        all_headers = {"ETag": resource["meta"]["version"]}
        if headers:
            all_headers.update(headers)
        return Response.json(status, resource, SCIM_CONTENT_TYPE, all_headers)

    @staticmethod
    def _list_response(total: int, start: int, resources: list[dict[str, Any]]) -> Response:
        """A ListResponse answer."""
        return Response.json(
            200,
            {
                "schemas": [LIST_SCHEMA],
                "totalResults": total,
                "startIndex": start,
                "itemsPerPage": len(resources),
                "Resources": resources,
            },
            SCIM_CONTENT_TYPE,
        )

    @staticmethod
    def _check_if_match(request: Request, resource: dict[str, Any]) -> None:
        """Raise 400 ``invalidVers`` when If-Match names another version."""
        header = request.header("If-Match")
        if header is None or header.strip() == "*":
            return
        current = resource["meta"]["version"]
        wanted = {etag_value(tag) for tag in header.split(",")}
        if etag_value(current) not in wanted:
            raise bad_request(
                f"The version {header.strip()} does not match the current version {current}",
                "invalidVers",
            )

    @staticmethod
    def _not_modified(request: Request, resource: dict[str, Any]) -> Response | None:
        """A 304 answer when If-None-Match names the current version, else None."""
        header = request.header("If-None-Match")
        if header is None:
            return None
        current = resource["meta"]["version"]
        tags = {etag_value(tag) for tag in header.split(",")}
        if "*" in tags or etag_value(current) in tags:
            return Response(304, b"", {"ETag": current})
        return None

"""SCIM error answers (RFC 7644 §3.12): :class:`ScimFault` and the 400s built from it."""

from __future__ import annotations

from typing import Any

from genesys_prov.sandbox.scim.urns import ERROR_SCHEMA


class ScimFault(Exception):
    """An error the emulator answers with (RFC 7644 §3.12)."""

    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """``scim_type`` is set only where RFC 7644 defines one (400s and 409 uniqueness)."""
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The error document: schemas, status (a string), scimType (when any), detail."""
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type is not None:
            body["scimType"] = self.scim_type
        body["detail"] = self.detail
        return body


def bad_request(detail: str, scim_type: str) -> ScimFault:
    """A 400 with ``scim_type``."""
    return ScimFault(400, detail, scim_type)


def invalid_value(detail: str) -> ScimFault:
    """A 400 ``invalidValue``."""
    return bad_request(detail, "invalidValue")


def invalid_syntax(detail: str) -> ScimFault:
    """A 400 ``invalidSyntax``."""
    return bad_request(detail, "invalidSyntax")

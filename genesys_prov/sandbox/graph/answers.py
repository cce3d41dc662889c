"""What the Graph emulator answers: JSON payloads (with extra headers), Graph errors
(``{"error": {"code", "message", "innerError"}}``) and Entra token-endpoint errors."""

from __future__ import annotations

from typing import Any

from genesys_prov.sandbox._http import Response

JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;charset=utf-8"


class Payload(dict[str, Any]):
    """A handler's JSON answer with extra response headers."""

    def __init__(self, data: dict[str, Any], headers: dict[str, str]) -> None:
        """The answer and its headers."""
        super().__init__(data)
        self.headers = headers


class GraphError(Exception):
    """A Graph error answer: ``{"error": {"code", "message", "innerError"}}``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Status, Graph error code and message."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class AadError(Exception):
    """An Entra token-endpoint error answer (``error``, ``error_description`` AADSTS…)."""

    def __init__(self, status: int, error: str, aadsts: str, description: str) -> None:
        """Status, OAuth error code, AADSTS number and description."""
        super().__init__(description)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description


def graph_error_response(status: int, detail: str) -> Response:
    """A Graph error answer for failures below the emulator (e.g. 413 from the server)."""
    code = "RequestEntityTooLarge" if status == 413 else "BadRequest"
    return Response.json(status, {"error": {"code": code, "message": detail}}, JSON_TYPE)

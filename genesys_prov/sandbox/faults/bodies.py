"""The bodies the proxy answers with when it does not forward: SCIM and Graph error bodies,
and the HTML page of a load balancer in trouble."""

from __future__ import annotations

import json

#: The default GARBAGE body: what a load balancer in trouble answers.
GARBAGE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>"
    b"<body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your"
    b" request. Please try again later.</p><hr><address>fault-proxy</address></body></html>\n"
)


def scim_error_body(status: int, detail: str = "injected") -> bytes:
    """A SCIM (RFC 7644 §3.12) error body."""
    payload = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(status),
        "detail": detail,
    }
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def graph_error_body(code: str = "TooManyRequests", message: str = "injected") -> bytes:
    """A Microsoft Graph error body, for ``Rule(Fault.STATUS, body=...)``."""
    zero = "00000000-0000-0000-0000-000000000000"
    payload = {"error": {"code": code, "message": message,
                         "innerError": {"request-id": zero, "client-request-id": zero}}}
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")

"""The proxy's side towards the upstream: forwarding one request, and what came back
(:class:`Upstream`) or why nothing did (:class:`UpstreamError`)."""

from __future__ import annotations

import http.client
from email.message import Message
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genesys_prov.sandbox.faults.proxy import FaultProxy

#: Headers that describe one connection, not the message: never copied across the proxy.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})
#: Request headers the proxy sets itself (or drops) when it forwards.
REQUEST_DROPPED = HOP_BY_HOP | {"host", "content-length", "expect"}
#: Response headers the proxy recomputes.
RESPONSE_DROPPED = HOP_BY_HOP | {"content-length"}


class Upstream:
    """What the upstream answered."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]],
                 body: bytes) -> None:
        """Hold one upstream response."""
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)


class UpstreamError(Exception):
    """The upstream could not be reached or did not answer; ``forwarded`` says whether the
    request was sent before the failure."""

    def __init__(self, message: str, forwarded: bool) -> None:
        """Record the failure."""
        super().__init__(message)
        self.forwarded = forwarded


def forward(proxy: FaultProxy, method: str, target: str, request_headers: Message,
            body: bytes) -> Upstream:
    """Send the request to the upstream and read its whole answer."""
    headers: dict[str, str] = {}
    connection_tokens = {
        token.strip().lower()
        for value in request_headers.get_all("Connection", [])
        for token in value.split(",")
    }
    for name, value in request_headers.items():
        lowered = name.lower()
        if lowered in REQUEST_DROPPED or lowered in connection_tokens:
            continue
        joiner = "; " if lowered == "cookie" else ", "
        headers[name] = f"{headers[name]}{joiner}{value}" if name in headers else value
    headers["Connection"] = "close"
    conn = proxy._upstream_connection()
    forwarded = False
    try:
        conn.request(method, target, body=body or None, headers=headers)
        forwarded = True
        response = conn.getresponse()
        data = response.read()
        return Upstream(response.status, response.reason, response.getheaders(), data)
    except (OSError, http.client.HTTPException) as exc:
        raise UpstreamError(f"upstream {type(exc).__name__}: {exc}", forwarded) from exc
    finally:
        proxy._release_upstream(conn)


def response_headers(upstream: Upstream, *, drop: frozenset[str] = frozenset()
                     ) -> list[tuple[str, str]]:
    """The upstream's headers minus hop-by-hop ones (and ``drop``)."""
    connection_tokens = {
        token.strip().lower()
        for name, value in upstream.headers if name.lower() == "connection"
        for token in value.split(",")
    }
    return [(name, value) for name, value in upstream.headers
            if name.lower() not in RESPONSE_DROPPED
            and name.lower() not in connection_tokens and name.lower() not in drop]

"""The proxy's request handler: reads requests off one kept-alive client connection, asks
the proxy's rules what to do with each, and forwards, answers, delays or resets."""

from __future__ import annotations

import contextlib
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from genesys_prov.sandbox._http import BodyError, read_body
from genesys_prov.sandbox.faults.bodies import GARBAGE_PAGE, scim_error_body
from genesys_prov.sandbox.faults.events import Event
from genesys_prov.sandbox.faults.rules import Fault, Rule
from genesys_prov.sandbox.faults.upstream import (
    Upstream,
    UpstreamError,
    forward,
    response_headers,
)

if TYPE_CHECKING:
    from genesys_prov.sandbox.faults.server import ProxyConnection, ProxyServer

_log = logging.getLogger(__name__)

#: Statuses whose answers never carry a body.
NO_BODY_STATUSES = frozenset({204, 304})
#: Largest request body the proxy reads.
MAX_BODY = 16 * 1024 * 1024
#: An idle kept-alive client connection is closed after this many seconds.
IDLE_TIMEOUT = 60.0


class ProxyHandler(BaseHTTPRequestHandler):
    """Reads requests off one kept-alive client connection and applies the proxy's rules."""

    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy/1.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    server: ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's messages to logging (never to stderr)."""
        _log.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked), or None when it is unreadable."""
        try:
            return read_body(self.rfile, self.headers, MAX_BODY)
        except BodyError:
            return None

    def _send(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes,
              content_length: int | None) -> None:
        """Write a status line, ``headers`` (+ Content-Length) and ``body`` in one write."""
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        if content_length is not None:
            lines.append(f"Content-Length: {content_length}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body)
        self.wfile.flush()

    def _answer(self, status: int, reason: str, headers: list[tuple[str, str]],
                body: bytes, head_length: int | None = None) -> None:
        """Send a complete answer, with a Content-Length matching ``body`` (for HEAD:
        ``head_length``, the length a GET would have had, when known)."""
        if status in NO_BODY_STATUSES or status < 200:
            self._send(status, reason, headers, b"", None)
        elif self.command == "HEAD":
            self._send(status, reason, headers, b"",
                       head_length if head_length is not None else len(body))
        else:
            self._send(status, reason, headers, body, len(body))

    def _reset(self) -> None:
        """End the connection with a TCP RST (done by the server once the handler returns)."""
        self.server.conn_of(self.request).reset = True
        self.close_connection = True

    def _proxy(self) -> None:
        """Handle one request; its connection is busy meanwhile."""
        conn = self.server.conn_of(self.request)
        conn.busy = True
        try:
            self._handle_request(conn)
        finally:
            conn.busy = False

    def _handle_request(self, conn: ProxyConnection) -> None:
        """Decide what to do with this request, do it, and log it."""
        proxy = self.server.proxy
        body = self._read_body()
        if conn.reset or proxy.refusing:  # the proxy went down while the request was read
            self._reset()
            return
        if body is None:
            self.close_connection = True
            proxy._record(Event(self.command, self.path, Fault.PASS, False, 400,
                                error="unreadable request body"))
            self._answer(400, "Bad Request", [("Content-Type", "application/scim+json")],
                         scim_error_body(400, "fault-proxy: unreadable request body"))
            return
        index, rule = proxy._decide(self.command, self.path,
                                    body.decode("utf-8", errors="replace"))
        fault = rule.fault if rule is not None else Fault.PASS
        if rule is not None and rule.action is not None:
            rule.action()

        def record(forwarded: bool, status: int | None, upstream: Upstream | None = None,
                   error: str = "") -> None:
            proxy._record(Event(self.command, self.path, fault, forwarded, status,
                                upstream.status if upstream is not None else None, index, error))

        if rule is not None and fault is Fault.STATUS:
            record(False, rule.status)
            self._inject_status(rule)
            return
        if fault is Fault.RESET_BEFORE or fault is Fault.DOWN:
            record(False, None)
            self._reset()
            if rule is not None and fault is Fault.DOWN:
                with contextlib.suppress(RuntimeError):  # the proxy is being stopped
                    proxy.down(rule.delay or None)
            return
        if rule is not None and fault is Fault.DELAY and proxy._halt.wait(rule.delay):
            record(False, None, error="proxy stopped during the delay")
            self._reset()
            return
        try:
            upstream = forward(proxy, self.command, self.path, self.headers, body)
        except UpstreamError as exc:
            self.close_connection = True
            if conn.reset:  # the proxy went down or is stopping
                record(exc.forwarded, None, error=str(exc))
                return
            record(exc.forwarded, 502, error=str(exc))
            self._answer(502, "Bad Gateway", [("Content-Type", "application/scim+json")],
                         scim_error_body(502, f"fault-proxy: {exc}"))
            return
        if conn.reset:  # the proxy went down meanwhile
            self.close_connection = True
            record(True, None, upstream, "proxy went down before answering")
            return
        if fault is Fault.RESET_AFTER:
            record(True, None, upstream)
            self._reset()
            return
        if fault is Fault.TRUNCATE:
            self.close_connection = True
            headers = response_headers(upstream)
            declared = upstream.header("Content-Length")
            length = int(declared) if declared and declared.isdigit() else len(upstream.body)
            half = upstream.body[: len(upstream.body) // 2]
            record(True, upstream.status, upstream)
            self._send(upstream.status, upstream.reason, headers, half, length)
            return
        if fault is Fault.GARBAGE:
            headers = response_headers(
                upstream, drop=frozenset({"content-type", "content-encoding", "etag"}))
            headers.append(("Content-Type", "text/html; charset=utf-8"))
            garbage = rule.body if rule is not None and rule.body is not None else GARBAGE_PAGE
            record(True, upstream.status, upstream)
            self._answer(upstream.status, upstream.reason, headers, garbage)
            return
        declared = upstream.header("Content-Length")
        record(True, upstream.status, upstream)  # logged before the client can see it
        self._answer(upstream.status, upstream.reason, response_headers(upstream),
                     upstream.body, int(declared) if declared and declared.isdigit() else None)

    def _inject_status(self, rule: Rule) -> None:
        """Answer ``rule.status`` with ``rule.headers`` and a SCIM (or the rule's) body."""
        headers = list(rule.headers.items())
        has_type = any(name.lower() == "content-type" for name, _ in headers)
        if rule.body is None:
            body = scim_error_body(rule.status)
            if not has_type:
                headers.append(("Content-Type", "application/scim+json"))
        else:
            body = rule.body
            if not has_type:
                headers.append(("Content-Type", "application/json"))
        try:
            reason = HTTPStatus(rule.status).phrase
        except ValueError:
            reason = "Injected"
        self._answer(rule.status, reason, headers, body)

    do_GET = _proxy
    do_HEAD = _proxy
    do_POST = _proxy
    do_PUT = _proxy
    do_PATCH = _proxy
    do_DELETE = _proxy
    do_OPTIONS = _proxy

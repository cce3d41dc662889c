"""A fault-injecting HTTP(S) reverse proxy for end-to-end tests.

:class:`FaultProxy` sits in front of one upstream server (``http://`` or ``https://``) and
forwards every request to it, unless one of its :class:`Rule` objects says to inject a
:class:`Fault` instead: an error status, a reset connection (before or after the upstream
applied the request), a truncated or non-JSON answer, a delay, or the whole target being down.

Example::

    with Sandbox() as sb, sandbox_proxy(sb, seed=7) as proxy:
        proxy.add(Rule(Fault.RESET_AFTER, method="POST", path=r"/Users$", times=1))
        config = sb.config()
        config["target"]["url"] = proxy.url
        ...
        assert [e.fault for e in proxy.log].count(Fault.RESET_AFTER) == 1

Decisions are deterministic: every rule draws from its own RNG seeded from the proxy's
``seed`` and the rule's position, so the n-th request a rule matches always gets the same
decision, whatever the thread interleaving.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import random
import re
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from genesys_prov.sandbox._http import BodyError, read_body, server_context

if TYPE_CHECKING:
    from genesys_prov.sandbox import Sandbox

__all__ = [
    "Event",
    "Fault",
    "FaultProxy",
    "Rule",
    "graph_error_body",
    "sandbox_contexts",
    "sandbox_proxy",
    "scim_error_body",
]

_log = logging.getLogger(__name__)

#: Headers that describe one connection, not the message: never copied across the proxy.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})
#: Request headers the proxy sets itself (or drops) when it forwards.
_REQUEST_DROPPED = _HOP_BY_HOP | {"host", "content-length", "expect"}
#: Response headers the proxy recomputes.
_RESPONSE_DROPPED = _HOP_BY_HOP | {"content-length"}
#: Statuses whose answers never carry a body.
_NO_BODY_STATUSES = frozenset({204, 304})
#: Largest request body the proxy reads.
_MAX_BODY = 16 * 1024 * 1024
#: An idle kept-alive client connection is closed after this many seconds.
_IDLE_TIMEOUT = 60.0
#: SO_LINGER on, with a zero timeout: close() sends a TCP RST instead of a FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)
#: The default GARBAGE body: what a load balancer in trouble answers.
_GARBAGE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>"
    b"<body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your"
    b" request. Please try again later.</p><hr><address>fault-proxy</address></body></html>\n"
)


class Fault(StrEnum):
    """What the proxy does with one request."""

    #: Forward normally.
    PASS = "pass"
    #: Answer ``Rule.status`` without forwarding (SCIM error body unless ``Rule.body``).
    STATUS = "status"
    #: Read the request, do not forward it, reset the client connection (TCP RST).
    RESET_BEFORE = "reset_before"
    #: Forward (the upstream applies it), read the answer, reset the client connection.
    RESET_AFTER = "reset_after"
    #: Forward, then send the upstream's status, headers and Content-Length but only half the
    #: body, then close the connection.
    TRUNCATE = "truncate"
    #: Forward, then answer the upstream's status with an HTML body (``text/html``).
    GARBAGE = "garbage"
    #: Sleep ``Rule.delay`` seconds, then forward (even when the client has given up).
    DELAY = "delay"


@dataclass
class Rule:
    """When (method, path regex, counters, probability) to inject which fault.

    Among the requests the rule matches (``method`` and ``path``), the first ``skip`` pass,
    then the fault is applied with ``probability`` (a skipped or not-drawn request passes:
    the rule still decided). After ``times`` applications the rule stops matching, so later
    rules get their turn.
    """

    fault: Fault
    #: HTTP method (case-insensitive), or None for any.
    method: str | None = None
    #: Regex searched in the request target (path and query), or None for any.
    path: str | None = None
    #: Regex searched in the request body (as UTF-8 text), or None for any: e.g. one user's
    #: userName, to fail that user's create only.
    request_body: str | None = None
    #: Apply to this many requests, then stop matching; None = unlimited.
    times: int | None = None
    #: Apply with this probability (from the rule's seeded RNG).
    probability: float = 1.0
    #: Let the first ``skip`` matching requests pass before applying.
    skip: int = 0
    #: STATUS: the status to answer.
    status: int = 503
    #: STATUS: extra response headers (e.g. ``{"Retry-After": "2"}``).
    headers: dict[str, str] = field(default_factory=dict)
    #: STATUS / GARBAGE: the body to send instead of the default one.
    body: bytes | None = None
    #: DELAY: seconds to sleep before forwarding.
    delay: float = 0.0


@dataclass(frozen=True)
class Event:
    """One request the proxy received, and what became of it."""

    method: str
    #: The request target (path and query) as the client sent it.
    path: str
    fault: Fault
    #: Whether the request was sent to the upstream (it may have applied it).
    forwarded: bool
    #: The status the client was sent (None when its connection was reset instead).
    status: int | None
    #: The status the upstream answered (None when not forwarded or it did not answer).
    upstream_status: int | None = None
    #: Position (among the current rules) of the rule that decided; None if none matched.
    rule: int | None = None
    #: Why the proxy answered 502 itself, or why the answer could not be delivered.
    error: str = ""


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


def sandbox_contexts(sb: Sandbox) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """``(tls, upstream_ssl)`` for a proxy in front of one of ``sb``'s HTTPS emulators.

    ``tls`` presents a certificate for 127.0.0.1 issued by the sandbox's CA, so clients that
    trust ``sb.ca_bundle`` trust the proxy; ``upstream_ssl`` trusts that CA.
    """
    if sb._ca is None:
        raise RuntimeError("the sandbox is not started")
    tls = server_context(sb._ca.issue_cert("127.0.0.1", "localhost"))
    upstream_ssl = ssl.create_default_context(cafile=str(sb.ca_bundle))
    return tls, upstream_ssl


def sandbox_proxy(sb: Sandbox, target: str = "genesys", *, seed: int = 0) -> FaultProxy:
    """A (not yet started) HTTPS proxy in front of ``sb``'s ``"genesys"`` SCIM API (base URL
    ``sb.genesys_url``; its ``/oauth/token`` is at ``proxy.url_for(sb.genesys_token_url)``),
    ``"graph"`` or ``"login"`` (the Entra authority)."""
    urls = {"genesys": sb.genesys_url, "graph": sb.graph_url, "login": sb.authority_host}
    if target not in urls:
        raise ValueError(f"unknown sandbox target {target!r}; expected one of {sorted(urls)}")
    if not urls[target]:
        raise RuntimeError("the sandbox is not started")
    tls, upstream_ssl = sandbox_contexts(sb)
    return FaultProxy(urls[target], seed=seed, tls=tls, upstream_ssl=upstream_ssl)


# ---------------------------------------------------------------------------------- internals


@dataclass
class _Armed:
    """A rule as the proxy holds it: compiled, with its counters and its RNG."""

    rule: Rule
    index: int
    rng: random.Random
    pattern: re.Pattern[str] | None
    method: str | None
    body_pattern: re.Pattern[str] | None = None
    seen: int = 0
    applied: int = 0


@dataclass(eq=False)
class _Conn:
    """One accepted client connection."""

    sock: socket.socket
    #: Set when the connection must end with a TCP RST (fault, or the proxy going down).
    reset: bool = False
    #: Set while a request read off it is being handled.
    busy: bool = False
    #: Set once the connection is closed.
    closed: threading.Event = field(default_factory=threading.Event)


def _hard_close(sock: socket.socket) -> None:
    """Close ``sock`` with SO_LINGER 0, so the peer gets a TCP RST."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    with contextlib.suppress(OSError):
        sock.close()


def _graceful_close(sock: socket.socket) -> None:
    """Send a FIN (after whatever was written), then close."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_WR)
    with contextlib.suppress(OSError):
        sock.close()


class _Upstream:
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


class _UpstreamError(Exception):
    """The upstream could not be reached or did not answer; ``forwarded`` says whether the
    request was sent before the failure."""

    def __init__(self, message: str, forwarded: bool) -> None:
        """Record the failure."""
        super().__init__(message)
        self.forwarded = forwarded


class _Abort(Exception):
    """The proxy is stopping: drop the request."""


class _Handler(BaseHTTPRequestHandler):
    """Reads requests off one kept-alive client connection and applies the proxy's rules."""

    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy/1.0"
    sys_version = ""
    timeout = _IDLE_TIMEOUT
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's messages to logging (never to stderr)."""
        _log.debug("%s %s", self.address_string(), format % args)

    # -- I/O helpers --------------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked), or None when it is unreadable."""
        try:
            return read_body(self.rfile, self.headers, _MAX_BODY)
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
        if status in _NO_BODY_STATUSES or status < 200:
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

    def _forward(self, body: bytes) -> _Upstream:
        """Send the request to the upstream and read its whole answer."""
        proxy = self.server.proxy
        headers: dict[str, str] = {}
        connection_tokens = {
            token.strip().lower()
            for value in self.headers.get_all("Connection", [])
            for token in value.split(",")
        }
        for name, value in self.headers.items():
            lowered = name.lower()
            if lowered in _REQUEST_DROPPED or lowered in connection_tokens:
                continue
            joiner = "; " if lowered == "cookie" else ", "
            headers[name] = f"{headers[name]}{joiner}{value}" if name in headers else value
        headers["Connection"] = "close"
        conn = proxy._upstream_connection()
        forwarded = False
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            forwarded = True
            response = conn.getresponse()
            data = response.read()
            return _Upstream(response.status, response.reason, response.getheaders(), data)
        except (OSError, http.client.HTTPException) as exc:
            raise _UpstreamError(f"upstream {type(exc).__name__}: {exc}", forwarded) from exc
        finally:
            proxy._release_upstream(conn)

    @staticmethod
    def _response_headers(upstream: _Upstream, *, drop: frozenset[str] = frozenset()
                          ) -> list[tuple[str, str]]:
        """The upstream's headers minus hop-by-hop ones (and ``drop``)."""
        connection_tokens = {
            token.strip().lower()
            for name, value in upstream.headers if name.lower() == "connection"
            for token in value.split(",")
        }
        return [(name, value) for name, value in upstream.headers
                if name.lower() not in _RESPONSE_DROPPED
                and name.lower() not in connection_tokens and name.lower() not in drop]

    # -- the request ------------------------------------------------------------------------------

    def _proxy(self) -> None:
        """Handle one request; its connection is busy meanwhile."""
        conn = self.server.conn_of(self.request)
        conn.busy = True
        try:
            self._handle_request(conn)
        finally:
            conn.busy = False

    def _handle_request(self, conn: _Conn) -> None:
        """Decide what to do with this request, do it, and log it."""
        proxy = self.server.proxy
        body = self._read_body()
        if conn.reset:  # the proxy went down while the request was being read
            self.close_connection = True
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

        def record(forwarded: bool, status: int | None, upstream: _Upstream | None = None,
                   error: str = "") -> None:
            proxy._record(Event(self.command, self.path, fault, forwarded, status,
                                upstream.status if upstream is not None else None, index, error))

        if rule is not None and fault is Fault.STATUS:
            record(False, rule.status)
            self._inject_status(rule)
            return
        if fault is Fault.RESET_BEFORE:
            record(False, None)
            self._reset()
            return
        if rule is not None and fault is Fault.DELAY and proxy._halt.wait(rule.delay):
            record(False, None, error="proxy stopped during the delay")
            self._reset()
            return
        try:
            upstream = self._forward(body)
        except _UpstreamError as exc:
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
            headers = self._response_headers(upstream)
            declared = upstream.header("Content-Length")
            length = int(declared) if declared and declared.isdigit() else len(upstream.body)
            half = upstream.body[: len(upstream.body) // 2]
            record(True, upstream.status, upstream)
            self._send(upstream.status, upstream.reason, headers, half, length)
            return
        if fault is Fault.GARBAGE:
            headers = self._response_headers(
                upstream, drop=frozenset({"content-type", "content-encoding", "etag"}))
            headers.append(("Content-Type", "text/html; charset=utf-8"))
            garbage = rule.body if rule is not None and rule.body is not None else _GARBAGE_PAGE
            record(True, upstream.status, upstream)
            self._answer(upstream.status, upstream.reason, headers, garbage)
            return
        declared = upstream.header("Content-Length")
        record(True, upstream.status, upstream)  # logged before the client can see it
        self._answer(upstream.status, upstream.reason, self._response_headers(upstream),
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


class _Server(ThreadingHTTPServer):
    """The listening side for one up-period of a :class:`FaultProxy`."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, proxy: FaultProxy, port: int) -> None:
        """Bind 127.0.0.1:``port`` (0 = ephemeral)."""
        self.proxy = proxy
        self._conns: dict[socket.socket, _Conn] = {}
        super().__init__(("127.0.0.1", port), _Handler)

    def conn_of(self, sock: socket.socket) -> _Conn:
        """The tracked record of the connection ``sock`` (a detached one if unknown)."""
        with self.proxy._lock:
            return self._conns.get(sock) or _Conn(sock)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Serve one connection: register it, do the TLS handshake, run the handler, close."""
        raw: socket.socket = request
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.settimeout(10)
        conn = _Conn(raw)
        if not self.proxy._register(self, conn):
            _hard_close(raw)
            return
        try:
            sock = raw
            if self.proxy.tls is not None:
                try:
                    sock = self.proxy.tls.wrap_socket(raw, server_side=True,
                                                      do_handshake_on_connect=False)
                    with self.proxy._lock:
                        conn.sock = sock
                    sock.do_handshake()
                except (OSError, ssl.SSLError):
                    _log.debug("TLS handshake with %s failed", client_address, exc_info=True)
                    return
            with self.proxy._lock:
                self._conns[sock] = conn
            if not conn.reset:
                _Handler(sock, client_address, self)
        finally:
            self.proxy._unregister(conn)
            with self.proxy._lock:
                self._conns.pop(conn.sock, None)
            if conn.reset:
                _hard_close(conn.sock)
            else:
                _graceful_close(conn.sock)
            conn.closed.set()

    def shutdown_request(self, request: Any) -> None:
        """Closing is done by :meth:`finish_request`; just make sure the socket is closed."""
        with contextlib.suppress(OSError):
            request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log (at DEBUG) instead of printing a traceback to stderr."""
        _log.debug("connection from %s ended with an error", client_address, exc_info=True)


class FaultProxy:
    """A reverse proxy in front of ``upstream`` that injects faults by rule.

    ``tls``: when given, the proxy serves HTTPS with this server context. ``upstream_ssl``:
    the client context for an ``https://`` upstream (default: the system trust store).
    ``upstream_timeout``: seconds to wait for the upstream (connect and each read).
    """

    def __init__(self, upstream: str, *, seed: int = 0, tls: ssl.SSLContext | None = None,
                 upstream_ssl: ssl.SSLContext | None = None,
                 upstream_timeout: float = 30.0) -> None:
        """Prepare the proxy; nothing listens until :meth:`start`."""
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http:// or https:// URL, not {upstream!r}")
        self.upstream = upstream
        self.seed = seed
        self.tls = tls
        self.upstream_timeout = upstream_timeout
        self._upstream_https = parts.scheme == "https"
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or (443 if self._upstream_https else 80)
        self._upstream_origin = f"{parts.scheme}://{parts.netloc}"
        self._upstream_ssl = upstream_ssl
        if self._upstream_https and upstream_ssl is None:
            self._upstream_ssl = ssl.create_default_context()
        self._base_path = parts.path.rstrip("/")
        #: The port the proxy listens on (fixed by the first :meth:`start`).
        self.port = 0
        #: ``scheme://127.0.0.1:port`` of the proxy.
        self.origin = ""
        #: The drop-in replacement of ``upstream``: :attr:`origin` + the upstream's base path.
        self.url = ""
        self._lock = threading.RLock()  # rules, counters, log, connection sets
        self._life = threading.RLock()  # start / stop / up / down
        self._rules: list[_Armed] = []
        self._events: list[Event] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._conns: set[_Conn] = set()
        self._workers: set[threading.Thread] = set()
        self._upstreams: set[http.client.HTTPConnection] = set()
        self._halt = threading.Event()
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Bind 127.0.0.1 on an ephemeral port, start serving; returns :attr:`url`."""
        with self._life:
            if self._started:
                return self.url
            self._halt.clear()
            self._listen(0)
            self._started = True
            scheme = "https" if self.tls is not None else "http"
            self.origin = f"{scheme}://127.0.0.1:{self.port}"
            self.url = self.origin + self._base_path
            _log.debug("fault proxy %s -> %s", self.url, self.upstream)
            return self.url

    def stop(self) -> None:
        """Stop listening, reset every open connection, abort delayed requests, and wait
        (briefly) for the worker threads."""
        with self._life:
            if not self._started:
                return
            self._started = False
            self._halt.set()
            timer = self._timer
            self._cancel_timer()
            self._close_listener()
            with self._lock:
                upstreams = list(self._upstreams)
                workers = list(self._workers)
            for conn in upstreams:
                if conn.sock is not None:
                    with contextlib.suppress(OSError):
                        conn.sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 2.0
        if timer is not None:
            timer.join(timeout=max(0.0, deadline - time.monotonic()))
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> FaultProxy:
        """Start and return the proxy."""
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Stop the proxy."""
        self.stop()

    def down(self, seconds: float | None = None) -> None:
        """Take the target down: close the listening socket (connects are refused) and reset
        every open connection. With ``seconds``, come back up on the same port after that
        long."""
        with self._life:
            if not self._started:
                raise RuntimeError("the proxy is not started")
            self._cancel_timer()
            self._close_listener()
            if seconds is not None:
                timer = threading.Timer(seconds, self._auto_up)
                timer.daemon = True
                timer.name = "fault-proxy-up"
                self._timer = timer
                timer.start()

    def up(self) -> None:
        """Listen again, on the same port (no-op when already up)."""
        with self._life:
            if not self._started:
                raise RuntimeError("the proxy is not started")
            self._cancel_timer()
            if self._server is None:
                self._listen(self.port)

    @property
    def is_up(self) -> bool:
        """Whether the proxy is accepting connections."""
        with self._life:
            return self._server is not None

    def _auto_up(self) -> None:
        """The timer's callback of :meth:`down` with ``seconds``."""
        with self._life:
            if self._started and self._timer is threading.current_thread():
                self._timer = None
                self._listen(self.port)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _listen(self, port: int) -> None:
        """Bind a fresh listening socket and start its serving thread."""
        server = _Server(self, port)
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"fault-proxy-{self.port}", daemon=True)
        self._server, self._thread = server, thread
        thread.start()

    def _close_listener(self) -> None:
        """Stop accepting, close the listening socket, reset the open connections."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        with self._lock:
            conns = list(self._conns)
            for conn in conns:
                conn.reset = True
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            with contextlib.suppress(OSError):  # wakes the handler blocked reading it
                socket.socket.shutdown(conn.sock, socket.SHUT_RD)
        # Idle keep-alive connections are reset before returning (so a client sees them
        # dropped); busy ones are reset when their request is done.
        deadline = time.monotonic() + 2.0
        for conn in conns:
            if not conn.busy:
                conn.closed.wait(max(0.0, deadline - time.monotonic()))

    def _register(self, server: _Server, conn: _Conn) -> bool:
        """Track a new connection; False when ``server`` is no longer the live one."""
        with self._lock:
            if server is not self._server:
                return False
            self._conns.add(conn)
            self._workers.add(threading.current_thread())
            return True

    def _unregister(self, conn: _Conn) -> None:
        with self._lock:
            self._conns.discard(conn)
            self._workers.discard(threading.current_thread())

    def _upstream_connection(self) -> http.client.HTTPConnection:
        """A new connection to the upstream, tracked so :meth:`stop` can abort it."""
        conn: http.client.HTTPConnection
        if self._upstream_https:
            conn = http.client.HTTPSConnection(self._upstream_host, self._upstream_port,
                                               timeout=self.upstream_timeout,
                                               context=self._upstream_ssl)
        else:
            conn = http.client.HTTPConnection(self._upstream_host, self._upstream_port,
                                              timeout=self.upstream_timeout)
        with self._lock:
            if self._halt.is_set():
                raise _UpstreamError("the proxy is stopping", False)
            self._upstreams.add(conn)
        return conn

    def _release_upstream(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._upstreams.discard(conn)
        conn.close()

    # -- rules ----------------------------------------------------------------------------------

    def add(self, *rules: Rule) -> None:
        """Append rules; they are checked in order and the first matching one decides."""
        with self._lock:
            for rule in rules:
                if not 0.0 <= rule.probability <= 1.0:
                    raise ValueError(f"probability must be in [0, 1], not {rule.probability}")
                if (rule.times is not None and rule.times < 0) or rule.skip < 0:
                    raise ValueError("times and skip must not be negative")
                if rule.delay < 0:
                    raise ValueError("delay must not be negative")
                index = len(self._rules)
                self._rules.append(_Armed(
                    rule=rule,
                    index=index,
                    rng=random.Random(f"fault-proxy:{self.seed}:{index}"),
                    pattern=re.compile(rule.path) if rule.path is not None else None,
                    method=rule.method.upper() if rule.method is not None else None,
                    body_pattern=re.compile(rule.request_body)
                    if rule.request_body is not None else None,
                ))

    def clear(self) -> None:
        """Remove every rule (the log is kept)."""
        with self._lock:
            self._rules.clear()

    def applied(self, index: int) -> int:
        """How many times the rule at ``index`` (in :meth:`add` order) injected its fault."""
        with self._lock:
            return self._rules[index].applied

    def _decide(self, method: str, target: str,
                body: str = "") -> tuple[int | None, Rule | None]:
        """``(index of the deciding rule or None, the rule whose fault to inject or None)``.

        A matching rule that lets the request pass (``skip``, ``probability``) still decides:
        its index is returned with no rule.
        """
        with self._lock:
            for armed in self._rules:
                if armed.method is not None and armed.method != method.upper():
                    continue
                if armed.pattern is not None and not armed.pattern.search(target):
                    continue
                if armed.body_pattern is not None and not armed.body_pattern.search(body):
                    continue
                rule = armed.rule
                if rule.times is not None and armed.applied >= rule.times:
                    continue
                armed.seen += 1
                if armed.seen <= rule.skip:
                    return armed.index, None
                if rule.probability < 1.0 and armed.rng.random() >= rule.probability:
                    return armed.index, None
                armed.applied += 1
                return armed.index, rule
            return None, None

    # -- log ------------------------------------------------------------------------------------

    def _record(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    @property
    def log(self) -> list[Event]:
        """A snapshot of every request received, logged as its outcome is decided (before
        the client sees it)."""
        with self._lock:
            return list(self._events)

    def clear_log(self) -> None:
        """Forget the logged events."""
        with self._lock:
            self._events.clear()

    def forwarded(self, method: str | None = None) -> list[Event]:
        """The logged requests that reached the upstream (optionally only ``method``)."""
        wanted = method.upper() if method is not None else None
        return [event for event in self.log
                if event.forwarded and (wanted is None or event.method == wanted)]

    def injected(self) -> list[Event]:
        """The logged requests that got a fault (anything but PASS)."""
        return [event for event in self.log if event.fault is not Fault.PASS]

    def url_for(self, upstream_url: str) -> str:
        """``upstream_url`` (on the upstream's host) rewritten to go through the proxy."""
        if not self.origin:
            raise RuntimeError("the proxy is not started")
        if not upstream_url.startswith(self._upstream_origin):
            raise ValueError(f"{upstream_url!r} is not on {self._upstream_origin}")
        return self.origin + upstream_url[len(self._upstream_origin):]

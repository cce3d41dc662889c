"""HTTPS plumbing shared by the emulators: request/response values, the request log and a
keep-alive, threaded, TLS-wrapped ``http.server``.

Each emulator is an *app*: a callable taking a :class:`Request` and returning a
:class:`Response`. The server does only I/O; everything an emulator decides lives in the app.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_log = logging.getLogger(__name__)

#: Header names whose values never reach the request log.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-identity-header"})
#: Form / JSON body fields whose values never reach the request log.
_SECRET_FIELDS = frozenset({"client_secret", "client_assertion", "password", "access_token"})
REDACTED = "[redacted]"

#: Largest request body accepted (Genesys documents 512,000 bytes).
MAX_BODY_BYTES = 512_000


class BodyError(Exception):
    """A request body that cannot be read: the status to answer and why."""

    def __init__(self, status: HTTPStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def read_body(rfile: Any, headers: Any, limit: int) -> bytes:
    """Read one request body off ``rfile`` (``Content-Length`` or chunked), at most ``limit``
    bytes; raises :class:`BodyError` for a malformed, short or too large one."""
    if (headers.get("Transfer-Encoding") or "").lower() == "chunked":
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = rfile.readline(1024)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BodyError(HTTPStatus.BAD_REQUEST, "Malformed chunked body") from None
            if size == 0:
                while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > limit:
                raise BodyError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request body too large")
            chunks.append(rfile.read(size))
            rfile.readline(1024)
    length_text = headers.get("Content-Length")
    if not length_text:
        return b""
    try:
        length = int(length_text)
    except ValueError:
        raise BodyError(HTTPStatus.BAD_REQUEST, "Invalid Content-Length") from None
    if length < 0:
        raise BodyError(HTTPStatus.BAD_REQUEST, "Invalid Content-Length")
    if length > limit:
        raise BodyError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"Request body of {length} bytes exceeds the limit of {limit} bytes")
    body = rfile.read(length)
    if len(body) != length:
        raise BodyError(HTTPStatus.BAD_REQUEST, "The request body ended early")
    return bytes(body)


@dataclass
class RecordedRequest:
    """One request as an emulator received it, with secrets redacted, and the status it got."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int


@dataclass
class Request:
    """A parsed HTTP request handed to an emulator app."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    #: Lower-cased header names → values, for case-insensitive look-ups.
    _lower: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        """Index the headers by lower-cased name."""
        self._lower = {name.lower(): value for name, value in self.headers.items()}

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None."""
        return self._lower.get(name.lower())

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name`` (case-sensitive), or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (first value of each)."""
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}


@dataclass
class Response:
    """What an app answers: status, headers and an already-encoded body."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        content_type: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> Response:
        """A JSON response (UTF-8, compact)."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        all_headers = {"Content-Type": content_type}
        if headers:
            all_headers.update(headers)
        return cls(status, body, all_headers)


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two strings (any characters)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with credential-bearing values replaced by ``[redacted]``."""
    return {
        name: (REDACTED if name.lower() in _SECRET_HEADERS else value)
        for name, value in headers.items()
    }


def parse_body_for_log(request: Request) -> Any:
    """The request body as the log keeps it: parsed JSON or form dict, secrets redacted."""
    if not request.body:
        return None
    content_type = (request.header("Content-Type") or "").lower()
    if "x-www-form-urlencoded" in content_type:
        try:
            form: dict[str, Any] = dict(request.form())
        except UnicodeDecodeError:
            return None
        return {k: (REDACTED if k in _SECRET_FIELDS else v) for k, v in form.items()}
    try:
        parsed = request.json()
    except (ValueError, UnicodeDecodeError):
        return request.body.decode("utf-8", errors="replace")
    if isinstance(parsed, dict) and _SECRET_FIELDS.intersection(parsed):
        return {k: (REDACTED if k in _SECRET_FIELDS else v) for k, v in parsed.items()}
    return parsed


class RequestLog:
    """The request log and per-route counters every emulator keeps.

    ``record_requests = False`` keeps only the counters (the benchmark's setting).
    Counter keys: the HTTP method (``"POST"``), the method and route template
    (``"POST /Users"``), and the status (``"status 429"``).
    """

    def __init__(self) -> None:
        """Start with an empty log."""
        self.record_requests: bool = True
        self.requests: list[RecordedRequest] = []
        self.counts: collections.Counter[str] = collections.Counter()
        self._log_lock = threading.Lock()

    def record(self, request: Request, status: int, route: str) -> None:
        """Append ``request`` (answered with ``status``) to the log and bump the counters."""
        entry = None
        if self.record_requests:
            entry = RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query,
                headers=redact_headers(request.headers),
                body=parse_body_for_log(request),
                status=status,
            )
        with self._log_lock:
            self.counts[request.method] += 1
            self.counts[f"{request.method} {route}"] += 1
            self.counts[f"status {status}"] += 1
            if entry is not None:
                self.requests.append(entry)

    def reset_log(self) -> None:
        """Forget every recorded request and counter."""
        with self._log_lock:
            self.requests.clear()
            self.counts.clear()


App = Callable[[Request], Response]
#: Builds the error answer (in the emulated API's format) for transport-level failures.
ErrorFactory = Callable[[int, str], Response]


def plain_error_response(status: int, detail: str) -> Response:
    """A minimal JSON error answer."""
    return Response.json(status, {"error": detail})


class _Handler(BaseHTTPRequestHandler):
    """Parses one request at a time off a kept-alive connection and hands it to the app."""

    protocol_version = "HTTP/1.1"
    server_version = "genesys-prov-sandbox/1.0"
    sys_version = ""
    #: Idle keep-alive connections are closed after this many seconds.
    timeout = 120
    server: _TLSServer

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's own messages to logging (never to stderr)."""
        _log.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering an unreadable one (and closing)."""
        try:
            return read_body(self.rfile, self.headers, MAX_BODY_BYTES)
        except BodyError as exc:
            self._fail(exc.status, exc.detail)
            return None

    def _fail(self, status: HTTPStatus, detail: str) -> None:
        """Answer a request the server could not even parse, and close the connection."""
        self.close_connection = True
        self._write(self.server.error_response(int(status), detail))

    def _dispatch(self) -> None:
        """Handle any method: parse, call the app, write the answer in one write."""
        body = self._read_body()
        if body is None:
            return
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=unquote(parts.path),
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=dict(self.headers.items()),
            body=body,
        )
        try:
            response = self.server.app(request)
        except Exception as exc:  # an emulator bug must not kill the connection silently
            _log.debug("emulator failed on %s %s", request.method, request.path, exc_info=True)
            response = Response.json(500, {"error": f"sandbox internal error: {exc!r}"})
        self._write(response)

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch
    do_HEAD = _dispatch
    do_OPTIONS = _dispatch

    def _write(self, response: Response) -> None:
        """Serialise the status line, headers and body and send them in one write."""
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers.items())
        body = response.body
        if response.status in (204, 304) or self.command == "HEAD":
            body = b""
        if response.status not in (204, 304):
            lines.append(f"Content-Length: {len(response.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body)
        self.wfile.flush()


class _TLSServer(ThreadingHTTPServer):
    """A threaded HTTP server that does the TLS handshake in each connection's own thread."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, app: App, context: ssl.SSLContext, error_response: ErrorFactory
    ) -> None:
        """Bind 127.0.0.1 on an ephemeral port."""
        self.app = app
        self.error_response = error_response
        self.context = context
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Wrap the accepted socket in TLS (in the worker thread), then serve it."""
        raw: socket.socket = request
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.settimeout(10)
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            _log.debug("TLS handshake with %s failed", client_address, exc_info=True)
            return
        with self._connections_lock:
            self.connections.add(tls)
        try:
            _Handler(tls, client_address, self)
        finally:
            with self._connections_lock:
                self.connections.discard(tls)
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log (at DEBUG) instead of printing a traceback to stderr."""
        _log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def drop_connections(self) -> None:
        """Shut down every open connection so its thread ends."""
        with self._connections_lock:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)


class EmulatorServer:
    """One HTTPS endpoint (127.0.0.1, ephemeral port) serving one app in a daemon thread."""

    def __init__(
        self,
        app: App,
        context: ssl.SSLContext,
        name: str,
        error_response: ErrorFactory = plain_error_response,
    ) -> None:
        """Prepare (not yet bind) a server for ``app``."""
        self._app = app
        self._error_response = error_response
        self._context = context
        self._name = name
        self._server: _TLSServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        """Bind, start serving, and return the base URL (``https://127.0.0.1:PORT``)."""
        server = _TLSServer(self._app, self._context, self._error_response)
        port = server.server_address[1]
        self.url = f"https://127.0.0.1:{port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sandbox-{self._name}",
            daemon=True,
        )
        self._thread.start()
        _log.debug("sandbox %s listening on %s", self._name, self.url)
        return self.url

    def serve(self, app: App) -> None:
        """Serve ``app`` from now on, at the same address (requests already being handled
        finish with the app they started with)."""
        self._app = app
        if self._server is not None:
            self._server.app = app

    def stop(self) -> None:
        """Stop accepting, close open connections and wait for the serving thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None


def server_context(leaf_cert: Any) -> ssl.SSLContext:
    """An HTTPS server context (TLS ≥ 1.2) presenting ``leaf_cert`` (a ``trustme.LeafCert``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    leaf_cert.configure_cert(context)
    return context

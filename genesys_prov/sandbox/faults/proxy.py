"""The fault-injecting reverse proxy itself: :class:`FaultProxy`'s life (start, stop, down,
up), the connections it tracks to abort them, and its upstream connections; its rules come
from :class:`~.rules.RuleBook` and its log from :class:`~.events.EventLog`."""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import ssl
import threading
import time
from types import TracebackType
from urllib.parse import urlsplit

from genesys_prov.sandbox.faults.events import Event, EventLog
from genesys_prov.sandbox.faults.rules import ArmedRule, RuleBook
from genesys_prov.sandbox.faults.server import LINGER_RESET, ProxyConnection, ProxyServer
from genesys_prov.sandbox.faults.upstream import UpstreamError

_log = logging.getLogger(__name__)


class FaultProxy(RuleBook, EventLog):
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
        self._rules: list[ArmedRule] = []
        self._events: list[Event] = []
        self._server: ProxyServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._conns: set[ProxyConnection] = set()
        self._workers: set[threading.Thread] = set()
        self._upstreams: set[http.client.HTTPConnection] = set()
        self._halt = threading.Event()
        self._started = False
        self._refusing = False

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

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """Wait until every client connection has ended: after its client went away (e.g.
        was killed), the request in hand is still handled (a delayed one is forwarded all
        the same) before the connection ends. False if ``timeout`` seconds passed first."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._conns:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)

    @property
    def refusing(self) -> bool:
        """Whether requests are being refused: set the moment :meth:`down` starts, so a
        request arriving on a kept-alive connection while the listener closes is reset, not
        forwarded."""
        return self._refusing

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
        server = ProxyServer(self, port)
        self._refusing = False
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"fault-proxy-{self.port}", daemon=True)
        self._server, self._thread = server, thread
        thread.start()

    def _close_listener(self) -> None:
        """Stop accepting, close the listening socket, reset the open connections."""
        self._refusing = True
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
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            with contextlib.suppress(OSError):  # wakes the handler blocked reading it
                socket.socket.shutdown(conn.sock, socket.SHUT_RD)
        # Idle keep-alive connections are reset before returning (so a client sees them
        # dropped); busy ones are reset when their request is done.
        deadline = time.monotonic() + 2.0
        for conn in conns:
            if not conn.busy:
                conn.closed.wait(max(0.0, deadline - time.monotonic()))

    def _register(self, server: ProxyServer, conn: ProxyConnection) -> bool:
        """Track a new connection; False when ``server`` is no longer the live one."""
        with self._lock:
            if server is not self._server:
                return False
            self._conns.add(conn)
            self._workers.add(threading.current_thread())
            return True

    def _unregister(self, conn: ProxyConnection) -> None:
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
                raise UpstreamError("the proxy is stopping", False)
            self._upstreams.add(conn)
        return conn

    def _release_upstream(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._upstreams.discard(conn)
        conn.close()

    def url_for(self, upstream_url: str) -> str:
        """``upstream_url`` (on the upstream's host) rewritten to go through the proxy."""
        if not self.origin:
            raise RuntimeError("the proxy is not started")
        if not upstream_url.startswith(self._upstream_origin):
            raise ValueError(f"{upstream_url!r} is not on {self._upstream_origin}")
        return self.origin + upstream_url[len(self._upstream_origin):]

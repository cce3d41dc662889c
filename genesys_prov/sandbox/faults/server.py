"""The listening side of a fault proxy: one :class:`ProxyServer` per up-period, and the
client connections it accepted (:class:`ProxyConnection`), closed with a FIN or a RST."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from genesys_prov.sandbox.faults.handler import ProxyHandler

if TYPE_CHECKING:
    from genesys_prov.sandbox.faults.proxy import FaultProxy

_log = logging.getLogger(__name__)

#: SO_LINGER on, with a zero timeout: close() sends a TCP RST instead of a FIN.
LINGER_RESET = struct.pack("ii", 1, 0)


@dataclass(eq=False)
class ProxyConnection:
    """One accepted client connection."""

    sock: socket.socket
    #: Set when the connection must end with a TCP RST (fault, or the proxy going down).
    reset: bool = False
    #: Set while a request read off it is being handled.
    busy: bool = False
    #: Set once the connection is closed.
    closed: threading.Event = field(default_factory=threading.Event)


def hard_close(sock: socket.socket) -> None:
    """Close ``sock`` with SO_LINGER 0, so the peer gets a TCP RST."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    with contextlib.suppress(OSError):
        sock.close()


def graceful_close(sock: socket.socket) -> None:
    """Send a FIN (after whatever was written), then close."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_WR)
    with contextlib.suppress(OSError):
        sock.close()


class ProxyServer(ThreadingHTTPServer):
    """The listening side for one up-period of a :class:`FaultProxy`."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, proxy: FaultProxy, port: int) -> None:
        """Bind 127.0.0.1:``port`` (0 = ephemeral)."""
        self.proxy = proxy
        self._conns: dict[socket.socket, ProxyConnection] = {}
        super().__init__(("127.0.0.1", port), ProxyHandler)

    def conn_of(self, sock: socket.socket) -> ProxyConnection:
        """The tracked record of the connection ``sock`` (a detached one if unknown)."""
        with self.proxy._lock:
            return self._conns.get(sock) or ProxyConnection(sock)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Serve one connection: register it, do the TLS handshake, run the handler, close."""
        raw: socket.socket = request
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.settimeout(10)
        conn = ProxyConnection(raw)
        if not self.proxy._register(self, conn):
            hard_close(raw)
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
                ProxyHandler(sock, client_address, self)
        finally:
            self.proxy._unregister(conn)
            with self.proxy._lock:
                self._conns.pop(conn.sock, None)
            if conn.reset:
                hard_close(conn.sock)
            else:
                graceful_close(conn.sock)
            conn.closed.set()

    def shutdown_request(self, request: Any) -> None:
        """Closing is done by :meth:`finish_request`; just make sure the socket is closed."""
        with contextlib.suppress(OSError):
            request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log (at DEBUG) instead of printing a traceback to stderr."""
        _log.debug("connection from %s ended with an error", client_address, exc_info=True)

"""A fault proxy in front of one of a :class:`~genesys_prov.sandbox.Sandbox`'s HTTPS
emulators, trusted by the same CA."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from genesys_prov.sandbox._http import server_context
from genesys_prov.sandbox.faults.proxy import FaultProxy

if TYPE_CHECKING:
    from genesys_prov.sandbox import Sandbox


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

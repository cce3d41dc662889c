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

The parts: :mod:`.rules` (faults and rules), :mod:`.events` (the log), :mod:`.proxy` (the
proxy's life), :mod:`.handler` and :mod:`.server` (the client side), :mod:`.upstream` (the
upstream side), :mod:`.bodies` (the bodies it answers with itself) and :mod:`.sandbox_proxy`.
"""

from __future__ import annotations

from genesys_prov.sandbox.faults.bodies import graph_error_body, scim_error_body
from genesys_prov.sandbox.faults.events import Event
from genesys_prov.sandbox.faults.proxy import FaultProxy
from genesys_prov.sandbox.faults.rules import Fault, Rule
from genesys_prov.sandbox.faults.sandbox_proxy import sandbox_contexts, sandbox_proxy

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

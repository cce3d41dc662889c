"""The HTTP connections of one run: a Graph reader and a SCIM client, each with its own
limiter, and the requests they sent."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from genesys_prov.config import Config
from genesys_prov.http import HttpClient, RateLimiter, make_session
from genesys_prov.mapping.mappings import Mappings
from genesys_prov.source.graph import GraphReader
from genesys_prov.target.scim import ScimClient

log = logging.getLogger(__name__)

#: Connections kept per Graph host: the Graph read may have two requests in flight.
GRAPH_POOL = 2


@dataclass
class Connections:
    """The HTTP clients of one run: Graph and SCIM each get their own limiter."""

    graph: GraphReader
    scim: ScimClient
    graph_http: HttpClient
    scim_http: HttpClient

    def request_counts(self) -> dict[str, dict[str, int]]:
        """Requests sent so far, by side and method."""
        return {"graph": dict(self.graph_http.counts), "target": dict(self.scim_http.counts)}


def connect(config: Config) -> Connections:
    """Build the Graph reader and SCIM client for a configuration (no request is sent)."""
    workers = config.target.concurrency
    # The target's pool: its workers (writes, or listing pages `concurrency` at a time)
    # and a token renewal beside them (the token URL may be on the same host).
    graph_http = HttpClient(make_session(config.verify, pool_size=GRAPH_POOL), RateLimiter(0),
                            timeout=config.target.timeout)
    scim_http = HttpClient(make_session(config.verify, pool_size=workers + 1),
                           RateLimiter(config.target.rate_limit_per_minute),
                           timeout=config.target.timeout)
    return Connections(GraphReader(config.source, graph_http),
                       ScimClient(config.target, scim_http), graph_http, scim_http)


def tenant_mappings(mappings: Mappings, conn: Connections) -> Mappings:
    """``mappings`` with what they need from the tenant, read once per run: the default
    verified domain when a mapping calls ``DefaultDomain()`` (one Graph request, none
    otherwise or when it is already known)."""
    if not mappings.uses_default_domain or mappings.default_domain is not None:
        return mappings
    domain = conn.graph.default_domain()
    log.info("the tenant's default verified domain (DefaultDomain()): %s", domain)
    return mappings.with_default_domain(domain)

"""The Microsoft Graph + Entra token endpoint emulator (behaviour: spec/graph.md).

Two apps share one state: :meth:`GraphEmulator.login_app` (the Entra authority: OpenID
discovery and the v2.0 token endpoint, enough for MSAL's client-credentials flow) and
:meth:`GraphEmulator.graph_app` (``/v1.0``: users, a user's manager, groups, direct and
transitive members, the service principal, its ``appRoleAssignedTo`` and its
``synchronization/jobs`` with each job's ``schema``).

Decisions:

* Tokens are opaque to the API (a JWT-shaped string the emulator remembers); the
  client-assertion JWT of certificate credentials is checked for shape, ``iss``/``sub``,
  ``aud``, ``exp`` and an ``x5t``/``x5t#S256`` header, not for its signature (unless
  ``certificate_thumbprints`` is non-empty, the thumbprint must then be registered).
* ``$select`` of an unknown property, ``$top`` outside 1..999, an unknown ``$`` query option
  and ``$filter``/``$orderby``/``$search``/``$count``/``$skip`` are 400 (not emulated).
* Injected throttling (:meth:`throttle_next`) applies to ``/v1.0`` requests, not to the
  token endpoint.
* Path segments and query option names are case-insensitive, as on Graph; a user is
  addressable by id or userPrincipalName.
* Delta query (``/users/delta``, ``/groups/delta``): the mutators (:meth:`set_user`,
  :meth:`add_user`, :meth:`soft_delete_user`, …) append to a per-kind change log under one
  monotonically increasing sequence number; a delta token is that number (plus the previous
  round's, a select hash and a generation), so an incremental round scans only the log after
  it. The log keeps at most :attr:`GraphEmulator.delta_log_limit` entries; a token older than
  what was dropped, of another generation (:meth:`expire_delta_tokens`) or malformed is
  410 Gone. Direct edits of ``users``/``groups`` dicts are not tracked.
* Delta pages (``Prefer: odata.maxpagesize``, default 100) are cut by object (initial round,
  keyset on creation order) or by change-log position (later rounds), so an object changed
  again later in a round may appear twice; links carry ``$select`` and the token its hash
  (a different ``$select`` is 400). ``members`` is reported only when selected on groups;
  a cleared manager is ``manager@delta: [{id, "@removed": {"reason": "deleted"}}]``.

The parts: :mod:`.emulator` (the whole), :mod:`.state` (the tenant and the helpers that
change it), :mod:`.login` (the Entra authority), :mod:`.api` (the ``/v1.0`` front door),
:mod:`.query` and :mod:`.shaping` (query options, objects as returned), :mod:`.users`,
:mod:`.groups`, :mod:`.service_principal` and :mod:`.synchronization` (the resources; the
last is Entra's provisioning job of the app and its schema), :mod:`.delta`,
:mod:`.delta_links` and :mod:`.changes` (delta query), :mod:`.properties`,
:mod:`.answers` and :mod:`.encoding`.
"""

from __future__ import annotations

from genesys_prov.sandbox.graph.answers import JSON_TYPE, AadError, GraphError, graph_error_response
from genesys_prov.sandbox.graph.changes import DELTA_LOG_LIMIT
from genesys_prov.sandbox.graph.emulator import GraphEmulator
from genesys_prov.sandbox.graph.login import GRAPH_RESOURCE_IDS
from genesys_prov.sandbox.graph.properties import (
    GROUP_DEFAULT_SELECT,
    GROUP_PROPERTIES,
    USER_DEFAULT_SELECT,
    USER_PROPERTIES,
)
from genesys_prov.sandbox.graph.query import DEFAULT_TOP, EXPAND_MAX_TOP, MAX_TOP
from genesys_prov.sandbox.graph.state import DEFAULT_PERMISSIONS

__all__ = [
    "DEFAULT_PERMISSIONS",
    "DEFAULT_TOP",
    "DELTA_LOG_LIMIT",
    "EXPAND_MAX_TOP",
    "GRAPH_RESOURCE_IDS",
    "GROUP_DEFAULT_SELECT",
    "GROUP_PROPERTIES",
    "JSON_TYPE",
    "MAX_TOP",
    "USER_DEFAULT_SELECT",
    "USER_PROPERTIES",
    "AadError",
    "GraphEmulator",
    "GraphError",
    "graph_error_response",
]

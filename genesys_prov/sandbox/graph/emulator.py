"""The Graph emulator: one state shared by the Entra login app and the Graph API app."""

from __future__ import annotations

from genesys_prov.sandbox.graph.api import GraphApi
from genesys_prov.sandbox.graph.login import EntraLogin


class GraphEmulator(EntraLogin, GraphApi):
    """State, behaviour and request log of the emulated Entra tenant and Graph API.

    ``users`` and ``groups`` are the directory's objects (Graph JSON plus the internal
    ``"manager"`` / ``"members"`` fields, which the API exposes only as relationships).
    """

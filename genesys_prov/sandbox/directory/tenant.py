"""The tenant every sandbox directory lives in: its mail domain, the enterprise application
(service principal) users are assigned to and its app roles, and the id and attribute
helpers both directory builders (:mod:`.demo`, :mod:`.synthetic`) use."""

from __future__ import annotations

import random
import uuid
from typing import Any

DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"
USER_ROLE = "2a9c5e4b-7d1f-4c3e-8b6a-5f0d9e2c1a47"
SUPERVISOR_ROLE = "6e1b8d3a-0c4f-4a9e-b7d2-3f5c8a1e9b60"
SERVICE_PRINCIPAL_ID = "4b7e2f9c-1d3a-4e8b-a6c5-0f2d7b9e3a18"
SERVICE_PRINCIPAL_APP_ID = "c3f1a8e6-5b2d-4f7a-9e0c-8d4b6a2f1e35"
DOMAIN = "contoso.com"


def service_principal() -> dict[str, Any]:
    """The enterprise application ("Genesys Cloud for Azure") users are assigned to."""
    return {
        "id": SERVICE_PRINCIPAL_ID,
        "appId": SERVICE_PRINCIPAL_APP_ID,
        "displayName": "Genesys Cloud for Azure",
        "appRoles": [
            {"id": USER_ROLE, "displayName": "User", "value": "User",
             "allowedMemberTypes": ["User"], "isEnabled": True,
             "description": "Genesys Cloud user"},
            {"id": SUPERVISOR_ROLE, "displayName": "Supervisor", "value": "Supervisor",
             "allowedMemberTypes": ["User"], "isEnabled": True,
             "description": "Genesys Cloud supervisor"},
        ],
    }


def extension_attributes(**values: str) -> dict[str, str | None]:
    """onPremisesExtensionAttributes with 1..15 null except ``values``."""
    attributes: dict[str, str | None] = {f"extensionAttribute{n}": None for n in range(1, 16)}
    attributes.update(values)
    return attributes


def guid(rng: random.Random) -> str:
    """A version-4-shaped GUID drawn from ``rng`` (deterministic)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))

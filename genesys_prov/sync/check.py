"""The connection test (`genesys-prov check`): both sides, without writing."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genesys_prov.config import Config
from genesys_prov.errors import (
    AuthError,
    GenesysProvError,
    TargetError,
)
from genesys_prov.mapping.mappings_file import load_mappings
from genesys_prov.sync.connections import connect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckStep:
    """One step of the connection test."""

    name: str
    ok: bool
    detail: str


@dataclass
class CheckResult:
    """The connection test's steps, Entra's "Test connection" and a bit more."""

    steps: list[CheckStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every step passed."""
        return all(s.ok for s in self.steps)

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok,
                "steps": [{"name": s.name, "ok": s.ok, "detail": s.detail} for s in self.steps]}


def run_check(config: Config) -> CheckResult:
    """Test both connections without writing: a Graph token and one read; the target's
    auth with ``GET /Users?filter=userName eq "<random GUID>"`` (expects an empty list),
    then ``/ServiceProviderConfig`` and ``/Schemas`` when offered."""
    mappings = load_mappings(config.mappings_path)
    conn = connect(config)
    result = CheckResult()

    def step(name: str, fn: Callable[[], str], required: bool = True) -> bool:
        try:
            result.steps.append(CheckStep(name, True, fn()))
            return True
        except GenesysProvError as exc:
            if required or isinstance(exc, AuthError):
                result.steps.append(CheckStep(name, False, str(exc)))
            else:
                result.steps.append(CheckStep(name, True, f"not offered ({exc})"))
            return False

    def graph_token() -> str:
        conn.graph.token()
        return f"token acquired from {config.source.authority_host}"

    def graph_read() -> str:
        body = conn.graph.get("/users", {"$select": ",".join(mappings.graph_select()),
                                         "$top": "1"})
        return f"read {len(body.get('value') or [])} user(s) with the mapped $select"

    def target_probe() -> str:
        found = conn.scim.find_users("userName", str(uuid.uuid4()))
        if found:
            raise TargetError("a random userName matched users: the target ignores filters")
        return "authenticated; a filter for a random userName returned an empty list"

    def spc() -> str:
        body = conn.scim.get("/ServiceProviderConfig")
        patch = (body.get("patch") or {}).get("supported") if isinstance(body, dict) else None
        return f"patch supported: {patch}"

    def schemas() -> str:
        body = conn.scim.get("/Schemas")
        items = body.get("Resources", body) if isinstance(body, dict) else body
        return f"{len(items) if isinstance(items, list) else 0} schema(s)"

    def graph_assignments() -> str:
        sp = config.source.service_principal_id
        body = conn.graph.get(f"/servicePrincipals/{sp}/appRoleAssignedTo", {"$top": "999"})
        more = " (more pages)" if body.get("@odata.nextLink") else ""
        return f"read {len(body.get('value') or [])} assignment(s) of the application{more}"

    if step("graph: token", graph_token):
        step("graph: read users", graph_read)
        if config.source.scope == "assigned":
            step("graph: read app assignments", graph_assignments)
    if step("target: authenticate and filter", target_probe):
        step("target: /ServiceProviderConfig", spc, required=False)
        step("target: /Schemas", schemas, required=False)
    return result

"""The connection test (`genesys-prov check`): both sides, without writing."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genesys_prov.config import Config
from genesys_prov.errors import (
    AuthError,
    GenesysProvError,
    SourceError,
    TargetError,
)
from genesys_prov.mapping.mappings_file import load_mappings
from genesys_prov.source.credentials import describe_auth, token_endpoint
from genesys_prov.source.graph import GraphReader
from genesys_prov.sync.connections import connect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckStep:
    """One step of the connection test."""

    name: str
    ok: bool
    detail: str
    warning: bool = False


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
                "steps": [{"name": s.name, "ok": s.ok, "detail": s.detail,
                           "warning": s.warning} for s in self.steps]}


def run_check(config: Config) -> CheckResult:
    """Test both connections without writing: a Graph token and one read; the target's
    auth with ``GET /Users?filter=userName eq "<random GUID>"`` (expects an empty list),
    then ``/ServiceProviderConfig`` and ``/Schemas`` when offered; last, the state of
    Entra's own provisioning job for the application (never a failure)."""
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
        return (f"token acquired with {describe_auth(config.source)} from "
                f"{token_endpoint(config.source)}")

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

    def graph_domain() -> str:
        return f"DefaultDomain() is {conn.graph.default_domain()}"

    if step("graph: token", graph_token):
        step("graph: read users", graph_read)
        if config.source.scope == "assigned":
            step("graph: read app assignments", graph_assignments)
        if mappings.uses_default_domain:  # needs Organization.Read.All
            step("graph: default domain", graph_domain)
    if step("target: authenticate and filter", target_probe):
        step("target: /ServiceProviderConfig", spc, required=False)
        step("target: /Schemas", schemas, required=False)
    if result.steps[0].ok:  # the Graph token
        result.steps.append(entra_job_step(conn.graph, config.source.service_principal_id))
    return result


ENTRA_JOB_STEP = "entra: provisioning job"
FIGHT = ("Entra's job and genesys-prov would fight over the same users: pause Entra's job "
         "(Provisioning > Stop provisioning) before scheduling genesys-prov")
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def entra_job_step(graph: GraphReader, service_principal_id: str | None) -> CheckStep:
    """The state of Entra's own provisioning job(s) for the application, a warning when
    one runs (both engines would write the same users). Never fails ``check``: without
    the permission it says that it could not be read, and why."""
    if not service_principal_id:
        return CheckStep(ENTRA_JOB_STEP, True,
                         "not checked: no source.service_principal_id configured")
    try:
        jobs = graph.synchronization_jobs(service_principal_id)
    except (AuthError, SourceError) as exc:
        return CheckStep(ENTRA_JOB_STEP, True, f"could not be read: {exc}", warning=True)
    if not jobs:
        return CheckStep(ENTRA_JOB_STEP, True, "the application has no provisioning job")
    described = [describe_job(job) for job in jobs]
    running = any(active for _, active in described)
    detail = "; ".join(text for text, _ in described)
    return CheckStep(ENTRA_JOB_STEP, True, f"{detail}. {FIGHT}" if running else detail,
                     warning=running)


def describe_job(job: dict[str, Any]) -> tuple[str, bool]:
    """One synchronization job in words (state, quarantine reason, schedule, last cycle)
    and whether it runs (active or quarantined: it still retries)."""
    status = job.get("status") if isinstance(job.get("status"), dict) else {}
    schedule = job.get("schedule") if isinstance(job.get("schedule"), dict) else {}
    assert isinstance(status, dict) and isinstance(schedule, dict)
    code = str(status.get("code") or "unknown")
    scheduled = schedule.get("state") == "Active"
    running = code in ("Active", "Quarantine") or (scheduled and code in ("NotRun", "unknown"))
    state = {"Active": "running (active)", "Paused": "paused", "NotRun": "not run yet",
             "NotConfigured": "not configured", "Quarantine": "quarantined"}.get(code, code)
    quarantine = status.get("quarantine")
    if code == "Quarantine" and isinstance(quarantine, dict):
        state += f" (reason: {quarantine.get('reason') or 'unknown'}"
        error = quarantine.get("error")
        if isinstance(error, dict) and error.get("message"):
            state += f": {error['message']}"
        state += f"; since {quarantine.get('currentBegan') or '?'})"
    parts = [f"job {job.get('id')}: {state}",
             f"schedule {schedule.get('state') or 'unknown'}"
             + (f", every {_interval(schedule.get('interval'))}"
                if schedule.get("interval") else "")]
    last = status.get("lastExecution")
    if isinstance(last, dict):
        when = last.get("timeEnded") or last.get("timeBegan") or "?"
        parts.append(f"last cycle {when} {last.get('state') or ''}".rstrip())
    else:
        parts.append("no cycle yet")
    return ", ".join(parts), running


def _interval(value: Any) -> str:
    """An ISO 8601 duration (``PT40M``) in words (``40 min``); anything else as given."""
    match = _DURATION.match(str(value))
    if not match or not any(match.groups()):
        return str(value)
    units = ("d", "h", "min", "s")
    return " ".join(f"{int(n)} {unit}" for n, unit in zip(match.groups(), units, strict=True)
                    if n)

"""What a run keeps of what it did, the same for sync, apply and provision: links,
escrow, the provisioning log, and the target state each user was left in."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from genesys_prov.mapping.mappings import Mappings
from genesys_prov.plan.model import (
    Action,
    Change,
    GroupAction,
    GroupChange,
    Plan,
    TargetUser,
)
from genesys_prov.state.db import LogRecord
from genesys_prov.state.snapshot import after_change, target_json
from genesys_prov.target import apply as applying

log = logging.getLogger(__name__)


_LOG_ACTIONS = {Action.CREATE: "Create", Action.UPDATE: "Update", Action.REACTIVATE: "Enable",
                Action.DEACTIVATE: "Disable", Action.DELETE: "Delete"}


def outcome_records(run_id: str, outcome: applying.Outcome) -> list[LogRecord]:
    """Provisioning-log records for one applied change."""
    change = outcome.change
    status = {applying.FAILURE: "Failure", applying.SKIPPED: "Skipped"}.get(outcome.status,
                                                                          "Success")

    def rec(action: str, properties: list[dict[str, Any]]) -> LogRecord:
        return LogRecord(run_id, change.identity, change.source_id,
                         outcome.target_id or change.target_id, action, status, outcome.code,
                         outcome.error, properties)

    if isinstance(change, GroupChange):
        out = []
        if change.action is GroupAction.CREATE or change.attributes:
            action = "Create" if change.action is GroupAction.CREATE else "Update"
            out.append(rec(action, [a.data() for a in change.attributes]))
        if change.add:
            out.append(rec("AddMembers", [m.data() for m in change.add]))
        if change.remove:
            out.append(rec("RemoveMembers", [m.data() for m in change.remove]))
        return out
    return [rec(_LOG_ACTIONS[change.action], [a.data() for a in change.attributes])]


def plan_records(run_id: str, plan: Plan) -> list[LogRecord]:
    """Provisioning-log records for what the plan did not attempt: failures, skips, held."""
    out = [LogRecord(run_id, f.identity, f.source_id, None, "Other", "Failure", f.code,
                     f.reason) for f in plan.failures]
    out += [LogRecord(run_id, s.identity, s.source_id, None, "Skip",
                      "Warning" if s.kind == "manager" else "Skipped", None, s.reason)
            for s in plan.skipped]
    out += [LogRecord(run_id, c.identity, c.source_id, c.target_id, _LOG_ACTIONS[c.action],
                      "Skipped", "SafetyGuard", plan.held_reason,
                      [a.data() for a in c.attributes]) for c in plan.held]
    out += [LogRecord(run_id, w.identity, w.source_id, None, "Other", "Warning", "ValueWarning",
                      w.message) for w in plan.warnings]
    return out


TRANSIENT_ESCROW_BACKOFF = 300.0   # first retry of a change that failed for a transient reason
def applied_rows(plan: Plan, before: Mapping[str, TargetUser],
                 outcomes: Iterable[applying.Outcome], mappings: Mappings,
                 links: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """(source id, target snapshot JSON or None) for every user the run matched or
    changed: what the target holds now. A failed or skipped change makes it unknown
    (None), so a later run reads the target before planning that user again."""
    now: dict[str, TargetUser | None] = {}
    for source_id, target_id in plan.matched:
        now[source_id] = before.get(target_id)
    for outcome in outcomes:
        change = outcome.change
        if not isinstance(change, Change) or change.action is Action.DELETE:
            continue
        sid = change.source_id
        if outcome.status in (applying.SUCCESS, applying.ADOPTED) and outcome.target_id:
            if outcome.status == applying.ADOPTED:
                now[sid] = None  # adopted an existing user: what it holds was not read
                continue
            prior = now.get(sid) or (before.get(change.target_id) if change.target_id
                                     else None)
            now[sid] = after_change(prior, change, outcome.target_id, mappings, links)
        else:
            now[sid] = None
    return [(sid, target_json(t) if t is not None else None) for sid, t in now.items()]



"""The safety guards (Entra's accidental-deletion prevention, and more) and escrow's hold
on a plan: pure functions of a plan and the settings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from genesys_prov.config import Config
from genesys_prov.errors import SafetyError
from genesys_prov.plan.model import REMOVALS, Plan, Skipped


def guard_plan(plan: Plan, config: Config, linked: int, last_in_scope: int | None,
               allow_deletions: bool) -> Plan:
    """The safety guards (Entra's accidental-deletion prevention, and more).

    Source health — raises :class:`SafetyError` before any write: the directory shows no
    user in scope while the state links users, or the in-scope count dropped by more than
    ``safety.max_source_drop`` since the last run. Deletion threshold — more
    deactivations and deletions than ``safety.max_deactivations`` are held (taken out of
    the plan and listed); the rest of the plan goes ahead. ``allow_deletions`` lets both
    through."""
    if allow_deletions:
        return plan
    safety = config.safety
    if plan.in_scope == 0 and linked > 0:
        raise SafetyError(f"source-health guard: the directory shows no user in scope while "
                          f"{linked} users are linked; nothing was written (check the "
                          "assignments, or run with --allow-deletions if this is intended)")
    if last_in_scope:
        drop = 100.0 * (last_in_scope - plan.in_scope) / last_in_scope
        if drop > safety.max_source_drop_percent:
            raise SafetyError(
                f"source-health guard: users in scope dropped from {last_in_scope} to "
                f"{plan.in_scope} ({drop:.1f}% > max_source_drop "
                f"{safety.max_source_drop_percent:g}%) since the last run; nothing was written "
                "(run with --allow-deletions if this is intended)")
    removals = [c for c in plan.changes if c.action in REMOVALS]
    if safety.max_deactivations is not None:
        limit = safety.max_deactivations
        shown = str(limit)
    else:
        percent = safety.max_deactivations_percent or 0.0
        limit = int(linked * percent / 100)
        shown = f"{percent:g}% of {linked} linked users = {limit}"
    if len(removals) <= limit:
        return plan
    reason = (f"accidental-deletion guard: {len(removals)} deactivations/deletions exceed "
              f"max_deactivations ({shown}); they were held, the rest was applied. Review them "
              "and run with --allow-deletions to apply them")
    held = {id(c) for c in removals}
    return replace(plan, changes=tuple(c for c in plan.changes if id(c) not in held),
                   held=tuple(removals), held_reason=reason)


def settled_ids(plan: Plan) -> dict[str, list[str]]:
    """Matched users and groups the plan has nothing to do for (and did not fail or hold):
    whatever escrow held for them is settled (e.g. a create whose answer was lost but
    which landed)."""
    busy = {c.source_id for c in (*plan.changes, *plan.held)} | \
        {f.source_id for f in plan.failures} | {s.source_id for s in plan.skipped}
    busy_groups = {g.source_id for g in plan.group_changes}
    return {"user": [sid for sid, _ in plan.matched if sid not in busy],
            "group": [sid for sid, _ in plan.matched_groups if sid not in busy_groups]}


def hold_escrowed(plan: Plan, waiting: dict[str, dict[str, Any]]) -> Plan:
    """Take changes of objects still waiting in escrow out of the plan, as skipped items
    saying when they are retried and why they failed."""
    if not waiting:
        return plan
    keep, skipped = [], list(plan.skipped)
    for change in plan.changes:
        entry = waiting.get(change.source_id)
        if entry is None:
            keep.append(change)
            continue
        when = datetime.fromtimestamp(entry["next_retry"], UTC).isoformat(timespec="seconds")
        skipped.append(Skipped(change.identity, change.source_id,
                               f"in escrow after {entry['attempts']} failed attempt(s); next "
                               f"retry at {when} (`sync --retry-now` sends it now): "
                               f"{entry['last_error']}"))
    return replace(plan, changes=tuple(keep), skipped=tuple(skipped))

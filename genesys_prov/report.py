"""Renderers: turn a plan, a sync result or a check result into rich renderables or JSON.

They build objects; the CLI decides where they are printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from genesys_prov.apply import FAILURE, Outcome
from genesys_prov.plan import Action, Change, Plan
from genesys_prov.scimpath import ENTERPRISE_USER, GENESYS_USER
from genesys_prov.sync import CheckResult, SyncResult

STYLE = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.REACTIVATE: "cyan",
         Action.DEACTIVATE: "red", Action.DELETE: "bold red"}


def show_value(value: Any) -> str:
    """A value as shown in tables: null as ∅, strings as-is, the rest as JSON."""
    if value is None:
        return "∅"
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "display" in value:  # a user reference
        return str(value["display"]) + (" (created in this run)" if not value.get("id") else "")
    return json.dumps(value, ensure_ascii=False)


def counts_table(plan: Plan, title: str = "Plan") -> Table:
    """The plan's counts: users, groups and what was left alone (zero rows left out,
    except the user actions)."""
    counts = plan.counts()
    table = Table(title=title, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    always = {a.value for a in Action}
    for key, value in counts.items():
        if value or key in always:
            table.add_row(key.replace("_", " "), str(value))
    return table


def group_changes_table(plan: Plan, max_rows: int = 200) -> RenderableType:
    """Each group change: members added and removed (by name), attributes."""
    table = Table(title="Group changes", title_justify="left")
    table.add_column("action")
    table.add_column("group")
    table.add_column("change", overflow="fold")
    for change in plan.group_changes[:max_rows]:
        lines = [f"{short_attribute(a.attribute)}: {show_value(a.data()['old'])} → "
                 f"{show_value(a.data()['new'])}" for a in change.attributes]
        lines += [f"+ {show_value(m.data())}" for m in change.add]
        lines += [f"- {show_value(m.data())}" for m in change.remove]
        table.add_row(Text(change.action.value, style="magenta"), Text(change.identity),
                      Text("\n".join(lines)))
    rest = len(plan.group_changes) - max_rows
    if rest > 0:
        return Group(table, Text(f"… and {rest} more group change(s)"))
    return table


SHORT_SCHEMAS = {ENTERPRISE_USER + ":": "enterprise:", GENESYS_USER + ":": "genesys:"}


def short_attribute(name: str) -> str:
    """An attribute path as shown in tables: the long extension URNs shortened
    (``enterprise:department``); JSON output keeps the full path."""
    for prefix, short in SHORT_SCHEMAS.items():
        if name.startswith(prefix):
            return short + name[len(prefix):]
    return name


def _change_rows(change: Change) -> Iterator[tuple[str, str, str, str]]:
    if not change.attributes:
        yield change.action.value, change.identity, "", change.reason
        return
    for i, attr in enumerate(change.attributes):
        data = attr.data()
        arrow = (f"{show_value(data['new'])}" if change.action is Action.CREATE
                 else f"{show_value(data['old'])} → {show_value(data['new'])}")
        yield (change.action.value if i == 0 else "", change.identity if i == 0 else "",
               short_attribute(attr.attribute), arrow)


def changes_table(plan: Plan, max_rows: int = 200) -> RenderableType:
    """Each change with its attributes, old → new; at most ``max_rows`` changes."""
    table = Table(title="Changes", title_justify="left", show_lines=False)
    table.add_column("action")
    table.add_column("user")
    table.add_column("attribute")
    table.add_column("old → new", overflow="fold")
    for change in plan.changes[:max_rows]:
        for action, identity, attribute, arrow in _change_rows(change):
            table.add_row(Text(action, style=STYLE[change.action]), Text(identity),
                          Text(attribute), Text(arrow))
    rest = len(plan.changes) - max_rows
    if rest > 0:
        return Group(table, Text(f"… and {rest} more change(s); use --output json for all"))
    return table


def notes_table(plan: Plan, max_rows: int = 200) -> RenderableType | None:
    """Skipped users, planning failures and unmanaged target users."""
    rows: list[tuple[str, str, str]] = []
    rows += [("failed", f.identity, f"{f.code}: {f.reason}") for f in plan.failures]
    rows += [("skipped" if s.kind == "user" else f"skipped {s.kind}", s.identity, s.reason)
             for s in plan.skipped]
    rows += [("unmanaged", u.user_name, f"target user {u.target_id} matches no directory user;"
              " left alone") for u in plan.unmanaged]
    if not rows:
        return None
    table = Table(title="Not changed", title_justify="left")
    table.add_column("status")
    table.add_column("user")
    table.add_column("reason", overflow="fold")
    for status, who, why in rows[:max_rows]:
        table.add_row(Text(status, style="red" if status == "failed" else "dim"), Text(who),
                      Text(why))
    if len(rows) > max_rows:
        return Group(table, Text(f"… and {len(rows) - max_rows} more"))
    return table


def failures_table(outcomes: list[Outcome], max_rows: int = 200) -> Table:
    """Changes that failed while applying, with the reason."""
    table = Table(title="Failed changes", title_justify="left")
    table.add_column("action")
    table.add_column("user")
    table.add_column("code")
    table.add_column("reason", overflow="fold")
    for o in [o for o in outcomes if o.status == FAILURE][:max_rows]:
        table.add_row(o.change.action.value, Text(o.change.identity), o.code or "",
                      Text(o.error or ""))
    return table


def plan_renderables(plan: Plan, max_rows: int = 200) -> list[RenderableType]:
    """Everything shown for a plan: counts, changes, and what was not changed."""
    out: list[RenderableType] = [counts_table(plan)]
    if plan.changes:
        out.append(changes_table(plan, max_rows))
    if plan.group_changes:
        out.append(group_changes_table(plan, max_rows))
    notes = notes_table(plan, max_rows)
    if notes is not None:
        out.append(notes)
    return out


def summary_line(result: SyncResult) -> str:
    """One line: what was done (or would be), and the requests it took."""
    counts = result.plan.counts()
    keys = [a.value for a in Action] + ["group create", "group update"]
    parts = [f"{counts[k]} {k}" for k in keys if counts[k]]
    planned = ", ".join(parts) if parts else "no changes"
    target = result.requests.get("target", {})
    graph = result.requests.get("graph", {})
    reqs = (f"requests: Graph {sum(graph.values())}, target {sum(target.values())} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(target.items())) or 'none'})")
    if result.mode == "incremental":
        return (f"Incremental: no directory changes since the last run; the target was not "
                f"read or written. {reqs}")
    if result.dry_run:
        return f"Dry run: would apply {planned}; nothing was written. {reqs}"
    if result.applied is None:
        return f"Nothing to do: the target already matches the directory. {reqs}"
    applied = result.applied.counts()
    return (f"Applied {planned}: {applied['success']} succeeded, {applied['failure']} failed "
            f"in {result.applied.elapsed:.1f}s. {reqs}")


def check_table(result: CheckResult) -> Table:
    """The steps of ``check`` with their outcome."""
    table = Table(title="Connection check", title_justify="left")
    table.add_column("step")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for s in result.steps:
        table.add_row(s.name, Text("ok", style="green") if s.ok else Text("FAILED", style="red"),
                      Text(s.detail))
    return table


def to_json(data: Any) -> str:
    """Stable, indented JSON."""
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def log_table(records: list[dict[str, Any]]) -> Table:
    """Provisioning-log records as a table."""
    table = Table(title=f"Provisioning log ({len(records)} records)", title_justify="left")
    for name in ("time", "action", "status", "identity", "detail"):
        table.add_column(name, overflow="fold")
    for r in records:
        props = r.get("properties") or []
        detail = r.get("reason") or ", ".join(
            str(p.get("attribute") or p.get("display") or "") for p in props)
        style = {"Failure": "red", "Warning": "yellow", "Skipped": "dim"}.get(r["status"], "")
        table.add_row(str(r["time"]), Text(str(r["action"])), Text(str(r["status"]),
                      style=style), Text(str(r.get("identity") or "")), Text(detail))
    return table


def state_table(summary: dict[str, Any]) -> Table:
    """``state show`` as a two-column table."""
    table = Table(title="State", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    last = summary.get("last_run") or {}
    table.add_row("database", Text(str(summary["database"])))
    table.add_row("linked users", str(summary["links"]["user"]))
    table.add_row("linked groups", str(summary["links"]["group"]))
    table.add_row("delta links", ", ".join(summary["delta_links"]) or "none")
    table.add_row("last run", Text(f"{last.get('id')} {last.get('status')} at "
                                   f"{last.get('finished')}" if last else "none"))
    table.add_row("log records", str(summary["log_records"]))
    return table

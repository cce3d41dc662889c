"""Renderers: turn a plan, a sync result or a check result into rich renderables or JSON.

They build objects; the CLI decides where they are printed.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from genesys_prov.errors import ConfigError
from genesys_prov.mapping.scimpath import ENTERPRISE_USER, GENESYS_USER
from genesys_prov.plan.model import Action, Change, Plan
from genesys_prov.sync.check import CheckResult
from genesys_prov.sync.preflight import check_output_path
from genesys_prov.sync.result import SyncResult
from genesys_prov.target.apply import FAILURE, Outcome

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
    rows += [("warning", w.identity, w.message) for w in plan.warnings]
    if not rows:
        return None
    table = Table(title="Not changed, and warnings", title_justify="left") if plan.warnings \
        else Table(title="Not changed", title_justify="left")
    table.add_column("status")
    table.add_column("user")
    table.add_column("reason", overflow="fold")
    for status, who, why in rows[:max_rows]:
        style = {"failed": "red", "warning": "yellow"}.get(status, "dim")
        table.add_row(Text(status, style=style), Text(who), Text(why))
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
    escrow = escrow_sentence(result.escrow)
    if result.mode == "incremental" and result.mode_reason == "no directory changes":
        return (f"Incremental: no directory changes since the last run; the target was not "
                f"read or written.{escrow} {reqs}")
    mode = f"Incremental ({result.mode_reason}): " if result.mode == "incremental" else ""
    if result.dry_run:
        return f"{mode}Dry run: would apply {planned}; nothing was written.{escrow} {reqs}"
    if result.applied is None:
        return (f"{mode}Nothing to do: the target already matches the directory.{escrow} "
                f"{reqs}")
    applied = result.applied.counts()
    skipped = f", {applied['skipped']} skipped" if applied.get("skipped") else ""
    retried = f" ({result.applied.retried} tried twice)" if result.applied.retried else ""
    return (f"{mode}Applied {planned}: {applied['success']} succeeded, {applied['failure']} "
            f"failed{skipped}{retried} in {result.applied.elapsed:.1f}s.{escrow} {reqs}")


def escrow_sentence(escrow: dict[str, Any] | None) -> str:
    """`` N change(s) wait in escrow …`` for the summary line, or "" when none do."""
    if not escrow:
        return ""
    return (f" {escrow['count']} change(s) wait in escrow (oldest failed {escrow['oldest']}, "
            f"next retry {escrow['next_retry']}; `sync --retry-now` sends them now).")


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
    snap = summary.get("snapshot") or {}
    table.add_row("snapshot", f"{snap.get('users', 0)} directory users, target state known "
                  f"for {snap.get('target_known', 0)} linked users; " +
                  ("incremental runs plan attribute changes from it" if snap.get("trusted")
                   else "not trusted until a run finishes (incremental runs read the "
                   "directory)"))
    return table


# --- report files -------------------------------------------------------------------------

REPORT_FORMATS = (".json", ".csv", ".md", ".html")
REPORT_SCHEMA = 1
CSV_COLUMNS = ("action", "identity", "source_id", "target_id", "attribute", "old", "new",
               "status", "reason")


def check_report_paths(paths: Sequence[str]) -> None:
    """Refuse report paths before the run starts: an unsupported extension, a directory
    that does not exist, a file that cannot be written."""
    for path in paths:
        if not path.lower().endswith(REPORT_FORMATS):
            raise ConfigError(f"--report {path}: the format follows the extension; supported: "
                              f"{', '.join(REPORT_FORMATS)}")
        check_output_path("--report", path)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and "display" in value:
        return str(value["display"])
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def report_rows(result: SyncResult) -> Iterator[dict[str, str]]:
    """One row per attribute change (and per member added or removed), then skipped items
    and failures — the CSV report's rows. Redacted values stay redacted."""
    outcomes = {}
    if result.applied is not None:
        for o in result.applied.outcomes + result.applied.group_outcomes:
            outcomes[(o.change.source_id, type(o.change).__name__)] = o
    default = "planned" if result.dry_run else "not applied"
    for change in result.plan.changes:
        outcome = outcomes.get((change.source_id, "Change"))
        status = outcome.status if outcome else default
        reason = (outcome.error if outcome and outcome.error else change.reason) or ""
        items = change.attributes or ()
        if not items:
            yield dict(zip(CSV_COLUMNS, (change.action.value, change.identity, change.source_id,
                                         change.target_id or "", "", "", "", status, reason),
                           strict=True))
        for item in items:
            data = item.data()
            yield dict(zip(CSV_COLUMNS, (
                change.action.value, change.identity, change.source_id, change.target_id or "",
                item.attribute, _cell(data["old"]), _cell(data["new"]), status, reason),
                strict=True))
    for group in result.plan.group_changes:
        outcome = outcomes.get((group.source_id, "GroupChange"))
        status = outcome.status if outcome else default
        reason = (outcome.error if outcome and outcome.error else "") or ""
        for item in group.attributes:
            data = item.data()
            yield dict(zip(CSV_COLUMNS, (group.action.value, group.identity, group.source_id,
                                         group.target_id or "", item.attribute,
                                         _cell(data["old"]), _cell(data["new"]), status,
                                         reason), strict=True))
        for verb, members in (("add member", group.add), ("remove member", group.remove)):
            for member in members:
                yield dict(zip(CSV_COLUMNS, (verb, group.identity, group.source_id,
                                             group.target_id or "", "members",
                                             "" if verb == "add member" else member.display,
                                             member.display if verb == "add member" else "",
                                             status, reason), strict=True))
    for skipped in result.plan.skipped:
        yield dict(zip(CSV_COLUMNS, (f"skip {skipped.kind}", skipped.identity,
                                     skipped.source_id, "", "", "", "", "skipped",
                                     skipped.reason), strict=True))
    for failure in result.plan.failures:
        yield dict(zip(CSV_COLUMNS, ("fail", failure.identity, failure.source_id,
                                     ",".join(failure.target_ids), "", "", "", "failure",
                                     f"{failure.code}: {failure.reason}"), strict=True))
    for held in result.plan.held:
        yield dict(zip(CSV_COLUMNS, (held.action.value, held.identity, held.source_id,
                                     held.target_id or "", "", "", "", "held",
                                     result.plan.held_reason), strict=True))
    for warning in result.plan.warnings:
        yield dict(zip(CSV_COLUMNS, ("warning", warning.identity, warning.source_id, "", "",
                                     "", "", "warning", warning.message), strict=True))


def _markdown(result: SyncResult) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    title = "Dry run" if result.dry_run else "Sync"
    lines = [f"# genesys-prov {title.lower()} report", "",
             f"- run: `{result.run_id}` ({result.mode}"
             f"{': ' + esc(result.mode_reason) if result.mode_reason else ''})",
             f"- {summary_line(result)}", "", "## Counts", "", "| what | count |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {v} |" for k, v in result.plan.counts().items() if v]
    rows = list(report_rows(result))
    lines += ["", "## Changes", ""]
    if rows:
        lines += ["| " + " | ".join(CSV_COLUMNS) + " |", "|" + "---|" * len(CSV_COLUMNS)]
        lines += ["| " + " | ".join(esc(row[c]) for c in CSV_COLUMNS) + " |" for row in rows]
    else:
        lines.append("No changes.")
    return "\n".join(lines) + "\n"


def write_reports(paths: Sequence[str], result: SyncResult) -> None:
    """Write one report per path; the format follows the extension (.json: the complete
    result with a schema version; .csv: one row per attribute change; .md: for tickets;
    .html: one self-contained page, filterable and sortable, no network).
    Each file is written whole or not at all (written aside, then renamed)."""
    for path in paths:
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix == ".json":
            text = to_json({"schema": REPORT_SCHEMA, "generated": datetime.now(UTC).isoformat(
                timespec="seconds"), **result.data()})
        elif suffix == ".csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(report_rows(result))
            text = buffer.getvalue()
        elif suffix == ".html":
            text = _html(result)
        else:
            text = _markdown(result)
        partial = target.with_name(target.name + ".partial")
        try:
            partial.write_text(text, encoding="utf-8")
            partial.replace(target)
        except OSError as exc:
            raise ConfigError(f"--report {path}: cannot write: {exc.strerror}") from exc


_HTML_STYLE = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4;cursor:pointer;user-select:none}
table.counts{width:auto;min-width:20em}
.counts td{text-align:right}.counts td:first-child{text-align:left}
td.id{font:12px monospace;white-space:nowrap;color:#555}
tr.failure td{background:#fde8e8}tr.held td{background:#fff3cd}
#filters{margin:1em 0}#filters input{width:24em}
"""

_HTML_SCRIPT = """
const rows=[...document.querySelectorAll('#changes tbody tr')];
const q=document.getElementById('q'),act=document.getElementById('action'),
st=document.getElementById('status'),shown=document.getElementById('visible-count');
function apply(){const t=q.value.toLowerCase();let n=0;
for(const r of rows){const ok=(!t||r.textContent.toLowerCase().includes(t))&&
(!act.value||r.dataset.action===act.value)&&(!st.value||r.dataset.status===st.value);
r.hidden=!ok;if(ok)n++;}shown.textContent=n;}
for(const e of [q,act,st])e.addEventListener('input',apply);
document.querySelectorAll('#changes th').forEach((th,i)=>th.addEventListener('click',()=>{
const body=th.closest('table').tBodies[0],dir=th.dataset.dir==='asc'?-1:1;
th.dataset.dir=dir>0?'asc':'desc';
[...body.rows].sort((a,b)=>a.cells[i].textContent.localeCompare(b.cells[i].textContent)*dir)
.forEach(r=>body.appendChild(r));}));
const p=new URLSearchParams(location.hash.slice(1));
if(p.has('q'))q.value=p.get('q');if(p.has('action'))act.value=p.get('action');
if(p.has('status'))st.value=p.get('status');apply();
"""


def _html_cell(column: str, value: str) -> str:
    if column in ("source_id", "target_id"):
        return f'<td class="id" title="{html.escape(value)}">{html.escape(value[:8])}</td>'
    if column == "attribute":
        return f'<td title="{html.escape(value)}">{html.escape(short_attribute(value))}</td>'
    return f"<td>{html.escape(value)}</td>"


def _html(result: SyncResult) -> str:
    esc = html.escape
    rows = list(report_rows(result))
    actions = sorted({r["action"] for r in rows})
    statuses = sorted({r["status"] for r in rows})
    title = "dry run" if result.dry_run else "sync"
    counts = "".join(f"<tr><td>{esc(k.replace('_', ' '))}</td><td>{v}</td></tr>"
                     for k, v in result.plan.counts().items() if v)
    head = "".join(f"<th>{esc(c)}</th>" for c in CSV_COLUMNS)
    body = "".join(
        f'<tr class="{esc(r["status"])}" data-action="{esc(r["action"])}" '
        f'data-status="{esc(r["status"])}">' +
        "".join(_html_cell(c, r[c]) for c in CSV_COLUMNS) + "</tr>" for r in rows)
    options = "".join(f'<option value="{esc(a)}">{esc(a)}</option>' for a in actions)
    status_options = "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in statuses)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>genesys-prov {title} report</title><style>{_HTML_STYLE}</style></head><body>
<h1>genesys-prov {title} report</h1>
<p id="summary">{esc(summary_line(result))}</p>
<p>Run <code>{esc(result.run_id)}</code>, {esc(result.mode)}{
        ': ' + esc(result.mode_reason) if result.mode_reason else ''}.</p>
<h2>Counts</h2><table class="counts" id="counts"><tbody>{counts}</tbody></table>
<h2>Changes</h2>
<div id="filters"><input id="q" type="search" placeholder="Filter: user, attribute, value…">
<select id="action"><option value="">every action</option>{options}</select>
<select id="status"><option value="">every status</option>{status_options}</select>
<span><span id="visible-count">{len(rows)}</span> of {len(rows)} rows</span></div>
<table id="changes"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<script>{_HTML_SCRIPT}</script></body></html>
"""


def explain_renderables(data: dict[str, Any]) -> list[RenderableType]:
    """``explain`` as tables: source, scope, mappings, matching, plan."""
    user = data["user"]
    source = Table(title=f"Source: {user['userPrincipalName']} ({user['id']})",
                   title_justify="left", show_header=False)
    source.add_column("attribute")
    source.add_column("value", overflow="fold")
    for key, value in user["source"].items():
        source.add_row(Text(key), Text(show_value(value)))
    scope = data["scope"]
    verdict = Text("in scope" if scope["in_scope"] else "OUT OF SCOPE",
                   style="green" if scope["in_scope"] else "red")
    scope_table = Table(title=Text.assemble("Scope (", scope["mode"], "): ", verdict),
                        title_justify="left", show_header=False)
    scope_table.add_column("why", overflow="fold")
    scope_table.add_column("result")
    for reason in scope["reasons"]:
        scope_table.add_row(Text(reason), "")
    for clause in scope["user_scope"]:
        scope_table.add_row(Text(f"user_scope {clause['clause']}"),
                            Text(str(clause["result"]),
                                 style="green" if clause["result"] else "red"))
    maps = Table(title="Mappings", title_justify="left")
    for column in ("target", "from", "value"):
        maps.add_column(column, overflow="fold")
    for m in data["mappings"]:
        origin = m.get("expression") or m.get("source") or "constant"
        value = (m.get("error") and f"error: {m['error']}") or show_value(m.get("value"))
        maps.add_row(Text(short_attribute(m["target"])), Text(origin), Text(value))
    match = Table(title="Matching (in precedence order)", title_justify="left")
    for column in ("by", "value", "found"):
        match.add_column(column, overflow="fold")
    for attempt in data["matching"]:
        found = ", ".join(attempt["found"]) or attempt.get("note", "nothing")
        match.add_row(Text(attempt["by"]), Text(show_value(attempt["value"])), Text(found))
    plan = data["plan"]
    out: list[RenderableType] = [source, scope_table, maps, match]
    if plan["changes"]:
        change_table = Table(title="Planned change", title_justify="left")
        for column in ("action", "attribute", "old → new"):
            change_table.add_column(column, overflow="fold")
        for change in plan["changes"]:
            for i, attr in enumerate(change["attributes"] or [{}]):
                change_table.add_row(
                    Text(change["action"] if i == 0 else ""),
                    Text(short_attribute(attr.get("attribute", ""))),
                    Text(f"{show_value(attr.get('old'))} → {show_value(attr.get('new'))}"
                         if attr else change["reason"]))
        out.append(change_table)
    reasons = [s["reason"] for s in plan["skipped"]] + \
        [f"{f['code']}: {f['reason']}" for f in plan["failures"]]
    if not plan["changes"]:
        out.append(Text("Planned change: none — " + ("; ".join(reasons) if reasons else
                                                    "the target already matches")))
    else:
        out += [Text(f"Note: {reason}", style="yellow") for reason in reasons]
    return out


def estimate_line(writes: int, rate_per_minute: int) -> str | None:
    """Say up front what applying costs: the requests and, at the configured rate limit,
    the time (None when it is quick)."""
    if writes == 0:
        return None
    if rate_per_minute <= 0:
        return f"Applying needs about {writes} write request(s) (rate limit off)."
    minutes = writes / rate_per_minute
    if minutes < 1:
        return None
    shown = f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
    return (f"Applying needs about {writes} write request(s): at least {shown} at "
            f"{rate_per_minute} requests/minute.")

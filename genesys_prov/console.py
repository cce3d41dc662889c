"""The terminal: rich tables of a plan, a result, a check, the log, the state and an
explanation; progress bars (or log lines without a terminal) and the up-front estimate.
Only the command line uses it; it builds renderables and the CLI prints them.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from genesys_prov.mapping.scimpath import short_attribute
from genesys_prov.plan.model import Action, Change, Plan
from genesys_prov.source.scope import Progress
from genesys_prov.sync.check import CheckResult
from genesys_prov.sync.explain import named
from genesys_prov.sync.mappings import Imported
from genesys_prov.sync.result import SyncResult
from genesys_prov.target.apply import FAILURE, Outcome

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
if not console.is_terminal and "COLUMNS" not in os.environ:
    # Pipes and cron logs: tables wide enough that values are not folded.
    console = Console(highlight=False, width=140)

STYLE = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.REACTIVATE: "cyan",
         Action.DEACTIVATE: "red", Action.DELETE: "bold red"}


def verbatim_examples(help_text: str | None) -> str | None:
    """A command's help with every paragraph of its ``Example:`` block marked (click's
    ``\\b``) to be printed as written, never re-wrapped. The block ends at the first
    paragraph that is not indented (e.g. ``Exit codes:``)."""
    if not help_text:
        return help_text
    text, cut, rest = inspect.cleandoc(help_text).partition("\f")
    out: list[str] = []
    in_example = False
    for paragraph in re.split(r"\n[ \t]*\n", text):
        head, _, tail = paragraph.partition("\n")
        if head.strip() == "Example:":
            out.append(head)
            in_example, paragraph = True, tail
            if not tail:
                continue
        elif in_example and not head.startswith((" ", "\b")):
            in_example = False
        if in_example and paragraph.split("\n", 1)[0].strip() != "\b":
            paragraph = "\b\n" + paragraph
        out.append(paragraph)
    return "\n\n".join(out) + cut + rest


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


def counts_line(plan: Plan) -> str:
    """The plan's counts on one line: the changes by action, then what was left alone."""
    counts = plan.counts()
    changes = [f"{counts[k]} {k}" for k in [a.value for a in Action] +
               ["group create", "group update"] if counts[k]]
    members = [f"{sign}{counts[f'members {word}']} members"
               for sign, word in (("+", "added"), ("-", "removed")) if counts[f"members {word}"]]
    alone = [f"{counts[k]} {k.replace('_', ' ')}" for k in
             ("skipped", "failed", "unmanaged", "out_of_scope", "held") if counts[k]]
    return ("Plan: " + (", ".join(changes) or "no changes")
            + (f" ({', '.join(members)})" if members else "")
            + (f"; not changed: {', '.join(alone)}" if alone else ""))


def _example(change: Change) -> str:
    """One change in a few words: a create's attributes, else the first old → new."""
    names = [short_attribute(a.attribute) for a in change.attributes]
    if change.action is Action.CREATE:
        shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
        return f"{len(names)} attributes: {shown}"
    if not change.attributes:
        return change.reason
    data = change.attributes[0].data()
    more = f" (+{len(names) - 1} more)" if len(names) > 1 else ""
    return f"{names[0]}: {show_value(data['old'])} → {show_value(data['new'])}{more}"


def plan_examples(plan: Plan, max_rows: int = 6) -> Table | None:
    """A few example rows of a plan: the first change of each action, the first group
    change and the first thing left alone (at most ``max_rows``); None when empty."""
    rows: list[tuple[Text, str, str]] = []
    seen: set[Action] = set()
    for change in plan.changes:
        if change.action not in seen:
            seen.add(change.action)
            rows.append((Text(change.action.value, style=STYLE[change.action]),
                         change.identity, _example(change)))
    for group in plan.group_changes[:1]:
        parts = [f"+{len(group.add)} members"] * bool(group.add) + \
            [f"-{len(group.remove)} members"] * bool(group.remove) + \
            [short_attribute(a.attribute) for a in group.attributes]
        rows.append((Text(group.action.value, style="magenta"), group.identity,
                     ", ".join(parts)))
    users_first = sorted(plan.skipped, key=lambda s: s.kind != "user")
    for skipped in users_first[:1]:
        rows.append((Text("skipped", style="dim"), skipped.identity, skipped.reason))
    if not rows or max_rows <= 0:
        return None
    table = Table(title="Examples (one per kind)", title_justify="left", box=None,
                  padding=(0, 2, 0, 0))
    for column in ("action", "who", "what"):
        table.add_column(column, overflow="fold")
    for action, who, what in rows[:max_rows]:
        table.add_row(action, Text(who), Text(what))
    return table


def plan_digest(result: SyncResult, max_rows: int = 6) -> list[RenderableType]:
    """A run in a few lines (the demo's story): the counts by action, a few example rows,
    the summary line. ``--output json`` has the whole plan."""
    out: list[RenderableType] = [Text(counts_line(result.plan))]
    examples = plan_examples(result.plan, max_rows)
    if examples is not None:
        out.append(examples)
    out.append(Text(result.summary()))
    return out


def check_table(result: CheckResult) -> Table:
    """The steps of ``check`` with their outcome."""
    table = Table(title="Connection check", title_justify="left")
    table.add_column("step")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for s in result.steps:
        outcome = Text("FAILED", style="red") if not s.ok else \
            Text("warning", style="yellow") if s.warning else Text("ok", style="green")
        table.add_row(s.name, outcome, Text(s.detail))
    return table


def log_table(records: list[dict[str, Any]]) -> Table:
    """Provisioning-log records as a table."""
    table = Table(title=f"Provisioning log ({len(records)} records)", title_justify="left")
    for name in ("time", "run", "action", "status", "identity", "detail"):
        table.add_column(name, overflow="fold")
    for r in records:
        style = {"Failure": "red", "Warning": "yellow", "Skipped": "dim"}.get(r["status"], "")
        table.add_row(str(r["time"]), Text(str(r.get("run_id") or "")), Text(str(r["action"])),
                      Text(str(r["status"]), style=style), Text(str(r.get("identity") or "")),
                      Text(_log_detail(r)))
    return table


def _log_detail(record: dict[str, Any]) -> str:
    """A log record's reason, else the attributes it changed."""
    props = record.get("properties") or []
    return str(record.get("reason") or ", ".join(
        str(p.get("attribute") or p.get("display") or "") for p in props))


LOG_CSV_COLUMNS = ("time", "run_id", "action", "status", "identity", "source_id", "target_id",
                   "code", "reason", "properties")


def log_csv(records: list[dict[str, Any]]) -> str:
    """Provisioning-log records as CSV with a header row (``properties`` as JSON)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LOG_CSV_COLUMNS)
    for r in records:
        writer.writerow([json.dumps(r.get(k) or [], ensure_ascii=False, default=str)
                         if k == "properties" else "" if r.get(k) is None else r[k]
                         for k in LOG_CSV_COLUMNS])
    return out.getvalue()


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
                                   f"{local_time(last.get('finished'))}" if last else "none"))
    table.add_row("log records", str(summary["log_records"]))
    table.add_row("quarantine", _quarantine_text(summary.get("quarantine")))
    table.add_row("escrow", _escrow_text(summary.get("escrow") or []))
    snap = summary.get("snapshot") or {}
    table.add_row("snapshot", f"{snap.get('users', 0)} directory users, target state known "
                  f"for {snap.get('target_known', 0)} linked users; " +
                  ("incremental runs plan attribute changes from it" if snap.get("trusted")
                   else "not trusted until a run finishes (incremental runs read the "
                   "directory)"))
    return table


def local_time(moment: str | None) -> str:
    """An ISO 8601 time (as the state keeps it, UTC) in this machine's time zone."""
    if not moment:
        return "-"
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _quarantine_text(info: dict[str, Any] | None) -> Text:
    """``state show``'s quarantine row."""
    if not info:
        return Text("no")
    return Text(f"QUARANTINED since {local_time(info.get('since'))}: {info.get('reason')}; "
                f"{info.get('probes', 0)} failed probe(s), last at "
                f"{local_time(info.get('last_probe'))}; `genesys-prov check` then `sync` "
                "probes at once, `genesys-prov state reset` clears it", style="red")


ESCROW_ROWS = 10


def _escrow_text(entries: list[dict[str, Any]]) -> Text:
    """``state show``'s escrow row: how many changes wait, then one line each (the first
    :data:`ESCROW_ROWS`)."""
    if not entries:
        return Text("empty")
    lines = [f"{len(entries)} change(s) waiting; `genesys-prov state retry` makes them due"]
    for entry in entries[:ESCROW_ROWS]:
        lines.append(f"{entry.get('identity') or entry['source_id']}: {entry['attempts']} "
                     f"attempt(s) since {local_time(entry['first_failed'])}, next retry "
                     f"{local_time(entry['next_retry'])} — {entry.get('last_error') or ''}")
    if len(entries) > ESCROW_ROWS:
        lines.append(f"… and {len(entries) - ESCROW_ROWS} more (--output json lists all)")
    return Text("\n".join(lines))


def _mapping_value(m: dict[str, Any], names: dict[str, str]) -> str:
    """A mapping's row value: what will be sent, with the mapped value beside it when the
    target's data rules changed it (phone numbers, dateHire), names beside ids."""
    if m.get("error"):
        return f"error: {m['error']}"
    value = m.get("value")
    if "sent" not in m or m["sent"] == value:
        return named(show_value(value), names)
    return f"{show_value(m['sent'])}  (mapped: {show_value(value)}; target data rules)"


def _source_table(user: dict[str, Any], names: dict[str, str]) -> Table:
    source = Table(title=f"Source: {user['userPrincipalName']} ({user['id']})",
                   title_justify="left", show_header=False)
    source.add_column("attribute")
    source.add_column("value", overflow="fold")
    for key, value in user["source"].items():
        if key == "manager" and isinstance(value, dict) and value.get("id"):
            value = str(value["id"])
        source.add_row(Text(key), Text(named(show_value(value), names)))
    return source


def _scope_table(scope: dict[str, Any], names: dict[str, str]) -> Table:
    verdict = Text("in scope" if scope["in_scope"] else "OUT OF SCOPE",
                   style="green" if scope["in_scope"] else "red")
    scope_table = Table(title=Text.assemble("Scope (", scope["mode"], "): ", verdict),
                        title_justify="left", show_header=False)
    scope_table.add_column("why", overflow="fold")
    scope_table.add_column("result")
    for reason in scope["reasons"]:
        scope_table.add_row(Text(named(reason, names)), "")
    for clause in scope["user_scope"]:
        scope_table.add_row(Text(f"user_scope {clause['clause']}"),
                            Text(str(clause["result"]),
                                 style="green" if clause["result"] else "red"))
    return scope_table


def explain_renderables(data: dict[str, Any]) -> list[RenderableType]:
    """``explain`` as tables: source, scope, mappings (what will be sent), matching, plan;
    directory objects named by id get their names beside the id."""
    names: dict[str, str] = data.get("names") or {}
    maps = Table(title="Mappings (the value sent, after the target's data rules)",
                 title_justify="left")
    for column in ("target", "from", "value"):
        maps.add_column(column, overflow="fold")
    for m in data["mappings"]:
        origin = m.get("expression") or m.get("source") or "constant"
        maps.add_row(Text(short_attribute(m["target"])), Text(origin),
                     Text(_mapping_value(m, names)))
    match = Table(title="Matching (in precedence order)", title_justify="left")
    for column in ("by", "value", "found"):
        match.add_column(column, overflow="fold")
    for attempt in data["matching"]:
        found = ", ".join(attempt["found"]) or attempt.get("note", "nothing")
        match.add_row(Text(attempt["by"]), Text(show_value(attempt["value"])), Text(found))
    plan = data["plan"]
    out: list[RenderableType] = [_source_table(data["user"], names),
                                 _scope_table(data["scope"], names), maps, match]
    if plan["changes"]:
        out.append(_planned_change(plan["changes"]))
    reasons = [named(s["reason"], names) for s in plan["skipped"]] + \
        [f"{f['code']}: {named(f['reason'], names)}" for f in plan["failures"]]
    if not plan["changes"]:
        out.append(Text("Planned change: none — " + ("; ".join(reasons) if reasons else
                                                    "the target already matches")))
    else:
        out += [Text(f"Note: {reason}", style="yellow") for reason in reasons]
    return out


def _planned_change(changes: list[dict[str, Any]]) -> Table:
    change_table = Table(title="Planned change", title_justify="left")
    for column in ("action", "attribute", "old → new"):
        change_table.add_column(column, overflow="fold")
    for change in changes:
        for i, attr in enumerate(change["attributes"] or [{}]):
            change_table.add_row(
                Text(change["action"] if i == 0 else ""),
                Text(short_attribute(attr.get("attribute", ""))),
                Text(f"{show_value(attr.get('old'))} → {show_value(attr.get('new'))}"
                     if attr else change["reason"]))
    return change_table


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


_LABELS = {"source": "reading the directory", "groups": "reading group members",
           "target": "reading the target", "apply": "applying changes"}


def progress(rate_per_minute: int) -> tuple[Callable[[str, int], None], Callable[[], None]]:
    """Progress for a run: rich progress bars (count, rate, time left) on a terminal;
    periodic INFO log lines otherwise (cron: they go to --log-file, or stderr with -v).
    Before applying, what the writes cost at the rate limit is said up front."""
    log = logging.getLogger("genesys_prov.progress")
    totals: dict[str, int] = {}
    if not err_console.is_terminal:
        last: dict[str, int] = {}
        seen: dict[str, int] = {}
        current: list[str] = []

        def finish_stage() -> None:
            if current and seen.get(current[0], -1) != last.get(current[0], -1):
                log.info("%s: %d done", _LABELS.get(current[0], current[0]), seen[current[0]])
                last[current[0]] = seen[current[0]]

        def log_update(stage: str, n: int) -> None:
            if not current or current[0] != stage:
                finish_stage()
                current[:] = [stage]
            if stage == "plan":
                totals["apply"] = n
                line = estimate_line(n, rate_per_minute)
                if line:
                    log.info("%s", line)
                return
            seen[stage] = n
            step = max(1000, totals.get(stage, 0) // 10)
            if n - last.get(stage, 0) >= step or n == totals.get(stage):
                last[stage] = n
                of = f" of {totals[stage]}" if stage in totals else ""
                log.info("%s: %d%s", _LABELS.get(stage, stage), n, of)

        return log_update, finish_stage

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    bars = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeRemainingColumn(), console=err_console,
                    transient=True)
    tasks: dict[str, Any] = {}
    bars.start()

    def update(stage: str, n: int) -> None:
        if stage == "plan":
            totals["apply"] = n
            line = estimate_line(n, rate_per_minute)
            if line:
                bars.console.print(line)
            return
        if stage not in tasks:
            tasks[stage] = bars.add_task(_LABELS.get(stage, stage), total=totals.get(stage))
        bars.update(tasks[stage], completed=n)

    return update, bars.stop


def quiet_progress(rate_per_minute: int, quiet: bool) -> tuple[Progress, Callable[[], None]]:
    """Progress for ``sync``: none with ``--quiet`` on a terminal (no bars); otherwise
    :func:`progress` (without a terminal, log lines go on even when quiet)."""
    if quiet and err_console.is_terminal:
        return (lambda stage, n: None), (lambda: None)
    return progress(rate_per_minute)


def sync_renderables(result: SyncResult, max_rows: int) -> list[RenderableType]:
    """A sync or apply result: the plan, the failures, the summary line."""
    out: list[RenderableType] = list(plan_renderables(result.plan, max_rows))
    if result.applied is not None and result.applied.failed:
        out.append(failures_table(result.applied.outcomes, max_rows))
    out.append(Text(result.summary()))
    return out


def provision_lines(data: dict[str, Any]) -> list[RenderableType]:
    """``provision``: one line per step, ✓ or ✗ (a step that passed is cut to the width of
    the terminal; a failing one is shown whole; ``--output json`` has every detail)."""
    out: list[RenderableType] = []
    for step in data["steps"]:
        mark = Text("✓ " if step["ok"] else "✗ ", style="green" if step["ok"] else "red")
        line = Text.assemble(mark, (step["step"], "bold"), " — ", step["detail"])
        if step["ok"]:
            line.no_wrap, line.overflow = True, "ellipsis"
        out.append(line)
    if data["dry_run"]:
        out.append(Text("Dry run: nothing was written."))
    return out


def validation_lines(path: str, schema: str, findings: list[Any]) -> list[RenderableType]:
    """``mapping validate``: what was checked against what, each finding, the counts."""
    out: list[RenderableType] = [Text(f"Mappings {path}: checked against {schema}.")]
    for f in findings:
        style = "red" if f.level == "error" else "yellow"
        out.append(Text.assemble((f.level, style), ": ", f"{f.where}: {f.message}"))
    errors = sum(1 for f in findings if f.level == "error")
    out.append(Text(f"{errors} error(s), {len(findings) - errors} warning(s)"))
    return out


def import_report_lines(done: Imported) -> list[str]:
    """``mapping import``'s report (for stderr): where the schema came from, what was
    converted, each element NOT converted with its reason and line, the validation."""
    result = done.result
    lines = [f"Imported Entra's rule {result.rule!r} from {result.source}.", *done.notes]
    lines.append(f"{len(result.converted)} element(s) converted, "
                 f"{len(result.not_converted)} NOT converted.")
    for item in result.not_converted:
        where = f"{item.section} " if item.section else ""
        name = item.origin.target or item.origin.object_mapping
        lines.append(f"  NOT CONVERTED: {where}{name!r}: {item.reason}")
        lines += [f"      {line}" for line in item.lines]
    errors = sum(1 for f in result.findings if f.level == "error")
    lines.append(f"mapping validate --offline: {errors} error(s), "
                 f"{len(result.findings) - errors} warning(s)")
    lines += [f"  {f.level}: {f.where}: {f.message.splitlines()[0]}" for f in result.findings]
    if done.out is not None:
        lines.append(f"Wrote {done.out}.")
    return lines

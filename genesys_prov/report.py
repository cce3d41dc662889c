"""Report files of a run — JSON (complete), CSV (one row per attribute change, member,
skip and failure), Markdown and HTML (self-contained) — written atomically, chosen by
extension from a table of writers.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from genesys_prov.errors import ConfigError
from genesys_prov.mapping.scimpath import short_attribute
from genesys_prov.plan.model import Plan
from genesys_prov.target.apply import ApplyResult


class RunRecord(Protocol):
    """What a report shows of a run (a :class:`~genesys_prov.sync.result.SyncResult`)."""

    plan: Plan
    dry_run: bool
    applied: ApplyResult | None
    run_id: str
    mode: str
    mode_reason: str

    def data(self) -> dict[str, Any]:
        """The complete, JSON-ready result."""

    def summary(self) -> str:
        """One line: what was done."""


def check_output_path(option: str, path: str) -> None:
    """Refuse an output file that cannot be written, before anything else happens: its
    directory must exist and be writable, and the path must not be a directory."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise ConfigError(f"{option} {path}: is a directory")
    if not parent.is_dir():
        raise ConfigError(f"{option} {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or \
            (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"{option} {path}: not writable")

_ENCODER = json.JSONEncoder(indent=2, ensure_ascii=False, sort_keys=False, default=str)


def to_json(data: Any) -> str:
    """Stable, indented JSON."""
    return _ENCODER.encode(data)


def iter_json(data: Any) -> Iterator[str]:
    """:func:`to_json`'s text in pieces, as it is encoded (for writing a large document
    without holding it)."""
    return _ENCODER.iterencode(data)


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


def report_rows(result: RunRecord) -> Iterator[dict[str, str]]:
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


def _markdown(result: RunRecord) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    title = "Dry run" if result.dry_run else "Sync"
    lines = [f"# genesys-prov {title.lower()} report", "",
             f"- run: `{result.run_id}` ({result.mode}"
             f"{': ' + esc(result.mode_reason) if result.mode_reason else ''})",
             f"- {result.summary()}", "", "## Counts", "", "| what | count |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {v} |" for k, v in result.plan.counts().items() if v]
    rows = list(report_rows(result))
    lines += ["", "## Changes", ""]
    if rows:
        lines += ["| " + " | ".join(CSV_COLUMNS) + " |", "|" + "---|" * len(CSV_COLUMNS)]
        lines += ["| " + " | ".join(esc(row[c]) for c in CSV_COLUMNS) + " |" for row in rows]
    else:
        lines.append("No changes.")
    return "\n".join(lines) + "\n"


def _json(result: RunRecord) -> str:
    return to_json({"schema": REPORT_SCHEMA,
                    "generated": datetime.now(UTC).isoformat(timespec="seconds"),
                    **result.data()})


def _csv(result: RunRecord) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report_rows(result))
    return buffer.getvalue()


def write_reports(paths: Sequence[str], result: RunRecord) -> None:
    """Write one report per path; the format follows the extension (:data:`WRITERS`: .json:
    the complete result with a schema version; .csv: one row per attribute change; .md:
    for tickets; .html: one self-contained page, filterable and sortable, no network).
    Each file is written whole or not at all (written aside, then renamed)."""
    for path in paths:
        target = Path(path)
        text = WRITERS.get(target.suffix.lower(), _markdown)(result)
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


def _html(result: RunRecord) -> str:
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
<p id="summary">{esc(result.summary())}</p>
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


WRITERS: dict[str, Callable[[RunRecord], str]] = {
    ".json": _json, ".csv": _csv, ".md": _markdown, ".html": _html}
REPORT_FORMATS = tuple(WRITERS)

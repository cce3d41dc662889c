"""The pipeline: source (Graph) → mapping → plan → apply, and the connection check.

These are the library entry points the CLI calls; they never print or exit. Progress is
reported through an optional callback ``progress(stage, done)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from genesys_prov.config import Config
from genesys_prov.errors import (
    AuthError,
    ConfigError,
    DeltaExpired,
    GenesysProvError,
    QuarantineError,
    SafetyError,
    SourceError,
    TargetError,
)
from genesys_prov.http import HttpClient, RateLimiter, make_session
from genesys_prov.mapping.genesys_rules import apply_genesys_rules
from genesys_prov.mapping.mappings import DesiredUser, Mappings, load_mappings
from genesys_prov.mapping.tools import builtin_genesys_schemas, schema_errors
from genesys_prov.notify import Incident, Notifier
from genesys_prov.plan.file import read_plan, write_plan
from genesys_prov.plan.model import (
    REMOVALS,
    Action,
    Change,
    GroupAction,
    GroupChange,
    Plan,
    PlanOptions,
    Skipped,
    TargetGroup,
    TargetUser,
    build_plan,
    group_snapshot,
    snapshot,
)
from genesys_prov.source.graph import GraphReader
from genesys_prov.source.scope import (
    Directory,
    Keeper,
    UserRule,
    read_assignments,
    read_directory,
)
from genesys_prov.state.db import LogRecord, RunLock, State
from genesys_prov.sync.snapshot_planner import (
    SNAPSHOT_META,
    Delta,
    QuickPlan,
    SnapshotInputs,
    SnapshotWriter,
    applied_rows,
    plan_from_snapshot,
    stored_targets,
)
from genesys_prov.target import apply as applying
from genesys_prov.target.scim import ScimClient

Progress = Callable[[str, int], None]
Known = Callable[[list[str]], dict[str, TargetUser]]
log = logging.getLogger(__name__)


@dataclass
class Connections:
    """The HTTP clients of one run: Graph and SCIM each get their own limiter."""

    graph: GraphReader
    scim: ScimClient
    graph_http: HttpClient
    scim_http: HttpClient

    def request_counts(self) -> dict[str, dict[str, int]]:
        """Requests sent so far, by side and method."""
        return {"graph": dict(self.graph_http.counts), "target": dict(self.scim_http.counts)}


def connect(config: Config) -> Connections:
    """Build the Graph reader and SCIM client for a configuration (no request is sent)."""
    workers = config.target.concurrency
    graph_http = HttpClient(make_session(config.verify, pool_size=2), RateLimiter(0),
                            timeout=config.target.timeout)
    scim_http = HttpClient(make_session(config.verify, pool_size=workers),
                           RateLimiter(config.target.rate_limit_per_minute),
                           timeout=config.target.timeout)
    return Connections(GraphReader(config.source, graph_http),
                       ScimClient(config.target, scim_http), graph_http, scim_http)


@dataclass
class SyncResult:
    """What a sync read, planned and (unless dry-run) applied."""

    plan: Plan
    dry_run: bool
    applied: applying.ApplyResult | None = None
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    run_id: str = ""
    mode: str = "full"          # full | incremental
    mode_reason: str = ""       # why a full sync ran (or "no directory changes")
    quarantined: str | None = None  # why this run put the job in quarantine
    escrow: dict[str, Any] | None = None  # what waits in escrow after the run

    @property
    def failed(self) -> bool:
        """True when any user failed (in planning or applying)."""
        return bool(self.plan.failures) or bool(self.applied and self.applied.failed)

    def data(self) -> dict[str, Any]:
        """JSON-ready form (the ``--output json`` document)."""
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "mode": self.mode,
            "mode_reason": self.mode_reason,
            "quarantined": self.quarantined,
            "escrow": self.escrow,
            "plan": self.plan.data(),
            "result": self.applied.data() if self.applied else None,
            "requests": self.requests,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


T = TypeVar("T")


def _collect(items: Iterable[T], stage: str, progress: Progress | None) -> list[T]:
    """Drain an iterator into a list, reporting progress every 1,000 items."""
    out: list[T] = []
    for item in items:
        out.append(item)
        if progress and len(out) % 1000 == 0:
            progress(stage, len(out))
    if progress:
        progress(stage, len(out))
    return out


def plan_options(config: Config, links: dict[str, str] | None = None) -> PlanOptions:
    """The planner's settings from a configuration (and the state's links)."""
    return PlanOptions(
        skip_out_of_scope_deletions=config.source.skip_out_of_scope_deletions,
        remove_unmanaged_members=config.target.remove_unmanaged_members,
        create_groups=config.target.create_groups,
        flavor=config.target.flavor,
        links=links or {},
        on_hard_delete=config.target.on_hard_delete,
    )


def user_rule(config: Config) -> UserRule | None:
    """The target's data rules for desired users (Genesys: phone numbers, dateHire)."""
    if config.target.flavor != "genesys":
        return None
    region = config.target.phone_default_region

    def rule(desired: DesiredUser) -> DesiredUser:
        return apply_genesys_rules(desired, region)

    return rule


def _read_directory(config: Config, mappings: Mappings, conn: Connections,
                    progress: Progress | None, keeper: Keeper | None = None) -> Directory:
    """Read the directory (with the Genesys data rules applied). A read that fails after
    some pages is a safety stop: it must never look like a smaller directory."""
    try:
        return read_directory(conn.graph, config.source, mappings, user_rule(config),
                              progress, keeper)
    except SourceError as exc:
        if conn.graph.pages_read:
            raise SafetyError(f"source-health guard: the Graph read failed part-way after "
                              f"{conn.graph.pages_read} page(s) ({exc}); nothing was written")\
                from exc
        raise


def _target_groups(conn: Connections, mappings: Mappings) -> list[TargetGroup]:
    if not mappings.group:
        return []
    return [group_snapshot(g, mappings)
            for g in conn.scim.list_groups(mappings.group_target_attributes())]


def _hard_deleted(conn: Connections, gone: list[str]) -> frozenset[str]:
    """Which linked users missing from the directory Graph confirms as hard-deleted (not
    in the deleted items); unknown counts as soft-deleted, the safe side."""
    return frozenset(sid for sid, soft in conn.graph.soft_deleted(gone).items()
                     if soft is False)


def _with_directory_skips(plan: Plan, directory: Directory) -> Plan:
    if not directory.skipped:
        return plan
    return replace(plan, skipped=tuple(sorted(
        (*plan.skipped, *directory.skipped),
        key=lambda s: (s.kind, s.identity.lower(), s.source_id))))


@dataclass
class Reading:
    """What a run read and planned: the plan, the time each phase took, the digest of the
    app's assignments it saw, and the target users it read (by id)."""

    plan: Plan
    timings: dict[str, float]
    assignments_digest: str
    before: dict[str, TargetUser]


def read_and_plan(config: Config, mappings: Mappings, conn: Connections,
                  progress: Progress | None = None,
                  links: dict[str, str] | None = None,
                  keeper: Keeper | None = None) -> Reading:
    """Read both sides completely and build the plan; also returns the digest of the
    app's assignments the read saw (stored for the next incremental run, so it never
    needs a second read). Any read failure raises before a single write is sent."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    directory = _read_directory(config, mappings, conn, progress, keeper)
    timings["read_source"] = time.monotonic() - started
    started = time.monotonic()
    listing = (snapshot(r, mappings) for r in conn.scim.list_users(mappings.target_attributes()))
    target = _collect(listing, "target", progress)
    target_groups = _target_groups(conn, mappings)
    timings["read_target"] = time.monotonic() - started
    started = time.monotonic()
    options = plan_options(config, links)
    if links:
        present = {u.source_id for u in directory.users}
        gone = [sid for sid in links if sid not in present]
        hard = _hard_deleted(conn, gone)
        options = replace(options, hard_deleted=hard)
    plan = build_plan(directory.users, target, mappings, directory.groups, target_groups,
                      options)
    timings["plan"] = time.monotonic() - started
    return Reading(_with_directory_skips(plan, directory), timings,
                   directory.assignments_digest, {t.id: t for t in target})


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


def _probe_changes(conn: Connections, config: Config, state: State,
                   kinds: dict[str, list[str]]) -> tuple[str, Delta | None]:
    """Follow the stored delta links (one Graph request each when nothing changed) and
    re-read the app's assignments (they have no delta). Returns ("", delta) when an
    incremental run may go on (delta.count may be 0), else (why a full sync is needed,
    None)."""
    delta = Delta()
    for kind in kinds:
        link = state.delta_link(kind)
        if link is None:
            return f"no delta link for {kind}", None
        delta.changes[kind], delta.links[kind] = conn.graph.delta_changes(link)
    if config.source.scope == "assigned" and config.source.service_principal_id:
        delta.assigned = read_assignments(conn.graph, config.source)
    digest = delta.assigned.digest if delta.assigned else ""
    if digest != (state.get_meta("assignments_digest") or ""):
        return "the application's assignments changed", None
    return "", delta


def _find_target(conn: Connections, mappings: Mappings,
                 user: DesiredUser) -> list[dict[str, Any]]:
    """Target users holding an unlinked user's first matching value that finds any."""
    for name, value in user.match_keys:
        if isinstance(value, str):
            found = conn.scim.find_users(mappings_path(mappings, name), value)
            if found:
                return found
    return []


def read_and_plan_changes(config: Config, mappings: Mappings, conn: Connections,
                          links: dict[str, str], changed: set[str],
                          progress: Progress | None = None,
                          keeper: Keeper | None = None,
                          known: Known | None = None) -> Reading:
    """An incremental plan when the snapshot cannot answer alone (users entering or
    leaving scope, deleted, moving between groups): the directory is read (Graph is
    cheap). Of the target, the changed users are taken from the snapshot (``known``: what
    the target held after the last run) or else read — one GET each, instead of listing
    every user — and the groups are listed. The direct reports of changed users are
    planned too: a manager created or enabled now is set on them (a manager who was not
    provisioned is left for "a later run", and this is it). The users that did not change
    keep their links."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    directory = _read_directory(config, mappings, conn, progress, keeper)
    timings["read_source"] = time.monotonic() - started
    started = time.monotonic()
    reports = {u.source_id for u in directory.users
               if u.manager in changed and u.source_id in links}
    subset = [u for u in directory.users if u.source_id in changed or u.source_id in reports]
    stored = known([u.source_id for u in subset]) if known else {}
    snapshots: list[TargetUser] = []
    seen: set[str] = set()
    if any(u.unique and u.source_id not in links and u.active for u in subset):
        # a create with SelectUniqueValue must see every value the target holds
        listing = conn.scim.list_users(mappings.target_attributes())
        snapshots = _collect((snapshot(r, mappings) for r in listing), "target", progress)
        seen.update(t.id for t in snapshots)
        subset_reads: list[DesiredUser] = []
    else:
        subset_reads = subset
    for user in subset_reads:
        held = stored.get(user.source_id)
        if held is not None and held.id == links.get(user.source_id):
            seen.add(held.id)
            snapshots.append(held)
            continue
        resource = conn.scim.get_user(links[user.source_id]) \
            if user.source_id in links else None
        if resource is None:  # not linked (or gone): look it up by its matching attribute
            found = _find_target(conn, mappings, user)
            resource = found[0] if len(found) == 1 else None
            snapshots.extend(snapshot(r, mappings) for r in found
                             if str(r.get("id")) not in seen)
            seen.update(str(r.get("id")) for r in found)
        if resource is not None and str(resource.get("id")) not in seen:
            seen.add(str(resource["id"]))
            snapshots.append(snapshot(resource, mappings))
    present = {u.source_id for u in directory.users}
    gone = {sid for sid in changed if sid in links and sid not in present}
    for sid in sorted(gone):
        if links[sid] in seen:
            continue
        resource = conn.scim.get_user(links[sid])
        if resource is not None and str(resource.get("id")) not in seen:
            seen.add(str(resource["id"]))
            snapshots.append(snapshot(resource, mappings))
    target_groups = _target_groups(conn, mappings)
    timings["read_target"] = time.monotonic() - started
    started = time.monotonic()
    hard = _hard_deleted(conn, sorted(gone))
    options = replace(plan_options(config, links), hard_deleted=hard,
                      gone_candidates=frozenset(gone))
    plan = build_plan(subset, snapshots, mappings, directory.groups, target_groups, options,
                      context=directory.users)
    timings["plan"] = time.monotonic() - started
    return Reading(_with_directory_skips(plan, directory), timings,
                   directory.assignments_digest, {t.id: t for t in snapshots})


def mappings_path(mappings: Mappings, target: str) -> str:
    """The SCIM attribute name to filter on for a matching mapping."""
    return next(m.path.qualified_attr for m in mappings.user if m.target == target)


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


def settings_digest(config: Config, mappings: Mappings) -> str:
    """What, when it changes, forces a full sync: the mappings, the scope, the target."""
    src, tgt = config.source, config.target
    blob = json.dumps([mappings.digest, src.scope, src.service_principal_id, src.nested_groups,
                       src.exclude_default_access, tgt.url, tgt.flavor])
    return hashlib.sha256(blob.encode()).hexdigest()


def _delta_kinds(config: Config, mappings: Mappings) -> dict[str, list[str]]:
    """Which Graph delta rounds a run tracks, with their ``$select``."""
    kinds = {"users": mappings.graph_select() +
             (["manager"] if mappings.manager_mapping is not None else [])}
    if mappings.group or config.source.scope == "assigned":
        kinds["groups"] = sorted({*mappings.group_select(), "members"})
    return kinds


def full_sync_reason(state: State, digest: str, full: bool, now: float) -> str | None:
    """Why this run must read everything (None: an incremental run may do)."""
    if full:
        return "--full was given"
    if state.delta_link("users") is None:
        return "no delta links yet (first run, or after state reset)"
    if state.get_meta("settings_digest") != digest:
        return "the mappings or scope settings changed since the last run"
    last = state.last_run()
    if last is not None and last["status"] not in ("success", "incremental", "failed"):
        return f"the last run ended with status {last['status']!r}"
    if any(e["next_retry"] <= now for e in state.escrowed("group").values()):
        return "escrowed group changes are due for a retry"
    return None


QUARANTINE = "quarantine"
INCREMENTAL_MIN_READS = 25
FAILURE_RATE = 0.40
NO_CHANGES = "no directory changes"
TRANSIENT_ESCROW_BACKOFF = 300.0   # first retry of a change that failed for a transient reason
QUARANTINE_FIRST_PROBE = 300.0     # probes back off from 5 minutes to the configured interval
SCHEMA_META = "schema_checked"


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def quarantine_cause(exc: BaseException) -> str | None:
    """Why an error puts the job in quarantine (None: it does not)."""
    if isinstance(exc, AuthError):
        return f"authentication failed: {exc}"
    if isinstance(exc, TargetError) and exc.status == 404:
        return "the target answers 404 on its SCIM endpoints (wrong tenant URL?)"
    return None


def failure_rate_cause(applied: applying.ApplyResult | None, minimum: int) -> str | None:
    """Too many failures: more than 40 % of the attempted changes, once enough were tried."""
    if applied is None:
        return None
    attempted = len(applied.outcomes) + len(applied.group_outcomes)
    failed = len(applied.failed)
    if attempted >= minimum and failed > FAILURE_RATE * attempted:
        return f"{failed} of {attempted} changes failed (over {FAILURE_RATE:.0%})"
    return None


def config_fingerprint(config: Config) -> str:
    """A digest of every setting and secret (never stored in the clear): when it changes,
    a quarantined job probes at once instead of waiting for its next probe."""
    blob = repr((config.source, config.target, config.ca_bundle, config.mappings_path))
    return hashlib.sha256(blob.encode()).hexdigest()


def _enter_quarantine(state: State, run_id: str, reason: str, now: float,
                      config: Config) -> None:
    state.set_meta(QUARANTINE, json.dumps({"since": _iso(now), "reason": reason,
                                           "last_probe": now, "probes": 0,
                                           "fingerprint": config_fingerprint(config)}))
    state.log([LogRecord(run_id, "job", None, None, "Other", "Failure", "Quarantined", reason)])


def next_probe(info: dict[str, Any], config: Config) -> float:
    """When a quarantined job probes next: 5 minutes after entering, then doubling up to
    ``safety.quarantine_probe_interval_minutes``."""
    cap = config.safety.quarantine_probe_interval
    gap = min(cap, QUARANTINE_FIRST_PROBE * float(2 ** min(int(info.get("probes", 0)), 30)))
    return float(info["last_probe"]) + gap


def _quarantine_gate(config: Config, state: State, run_id: str, now: float) -> bool:
    """While quarantined, a run only probes the connection: 5 minutes after entering, then
    at growing gaps; at once when the configuration or a secret changed, or after a
    passing ``check``. Returns True when the job just left quarantine; raises
    QuarantineError otherwise."""
    info = json.loads(state.get_meta(QUARANTINE) or "null")
    if not info:
        return False
    when = next_probe(info, config)
    where = (f"quarantined since {info['since']} ({info['reason']}); `genesys-prov state "
             "reset` clears it")
    changed = info.get("fingerprint") != config_fingerprint(config)
    if now < when and not changed and not info.get("probe_now"):
        raise QuarantineError(f"{where}; next connection probe at {_iso(when)} (or at once "
                              "after a passing `genesys-prov check` or a configuration change)")
    check = run_check(config)
    if not check.ok:
        info.update(last_probe=now, probes=int(info.get("probes", 0)) + 1, probe_now=False,
                    fingerprint=config_fingerprint(config))
        state.set_meta(QUARANTINE, json.dumps(info))
        failed = next(s for s in check.steps if not s.ok)
        raise QuarantineError(f"{where}; the probe failed at {failed.name}: {failed.detail}; "
                              f"next probe at {_iso(next_probe(info, config))}")
    state.delete_meta(QUARANTINE)
    state.log([LogRecord(run_id, "job", None, None, "Other", "Success", "QuarantineLeft",
                         f"left quarantine ({info['reason']}): the connection probe passed")])
    return True


def incidents_of(result: SyncResult | None, quarantined: str | None) -> list[Incident]:
    """What a run found that deserves an email (one per incident, not one per run)."""
    out = []
    if result is not None and result.failed:
        failures = len(result.plan.failures) + len(result.applied.failed if result.applied
                                                   else [])
        lines = [f"{f.identity}: {f.code}: {f.reason}" for f in result.plan.failures[:20]]
        if result.applied:
            lines += [f"{o.change.identity}: {o.code}: {o.error}"
                      for o in result.applied.failed[:20]]
        out.append(Incident("failures", f"genesys-prov: {failures} change(s) failed",
                            "These changes failed (more in `genesys-prov logs --status "
                            "failure`):\n\n" + "\n".join(lines)))
    if result is not None and result.plan.held:
        out.append(Incident("held", f"genesys-prov: {len(result.plan.held)} deactivation(s) "
                            "held by the safety guard", result.plan.held_reason + "\n\n" +
                            "\n".join(c.identity for c in result.plan.held[:50])))
    if quarantined:
        out.append(Incident("quarantine", "genesys-prov entered quarantine",
                            f"{quarantined}\n\nLater runs only probe the connection until it "
                            "works; `genesys-prov state reset` clears the quarantine."))
    return out


def _notify(config: Config, state: State, incidents: list[Incident]) -> None:
    def load() -> dict[str, str]:
        data = json.loads(state.get_meta("notify_open") or "{}")
        return data if isinstance(data, dict) else {}

    def save(value: dict[str, str]) -> None:
        state.set_meta("notify_open", json.dumps(value))

    notifier = Notifier(config.notify, load, save)
    for line in notifier.update(incidents, {"quarantine": "genesys-prov left quarantine"}):
        log.info("notification: %s", line)


def note_check_passed(config: Config) -> bool:
    """A passing ``check`` lets a quarantined job probe at its next run instead of waiting.
    Returns True when the job is quarantined (and will now probe at once). Creates no state
    where there is none."""
    if not (config.state_dir / "state.sqlite3").exists():
        return False
    with State.open(config.state_dir) as state:
        info = json.loads(state.get_meta(QUARANTINE) or "null")
        if not info:
            return False
        info["probe_now"] = True
        state.set_meta(QUARANTINE, json.dumps(info))
        return True


def escrow_info(state: State) -> dict[str, Any] | None:
    """What waits in escrow: count, oldest failure and next retry (ISO times), or None."""
    summary = state.escrow_summary()
    if summary is None:
        return None
    return {"count": summary["count"], "oldest": _iso(summary["oldest"]),
            "next_retry": _iso(summary["next_retry"])}


def _escrow_waiting(state: State, run_id: str, digest: str, dry_run: bool, retry_now: bool,
                    now: float) -> dict[str, dict[str, Any]]:
    """The escrowed users whose changes this run holds back (not due yet). A change of the
    mappings or settings releases escrow: those users are planned afresh (a dry run only
    plans them; a real run also forgets the entries)."""
    stored = state.get_meta("settings_digest")
    if stored is not None and stored != digest:
        if not dry_run:
            released = state.escrow_release()
            if released:
                state.log([LogRecord(run_id, str(e["identity"]), str(e["source_id"]), None,
                                     "Other", "Success", "EscrowReleased",
                                     "the mappings or settings changed: planned afresh")
                           for e in released])
        return {}
    if retry_now:
        return {}
    return {sid: e for sid, e in state.escrowed("user").items() if e["next_retry"] > now}


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


def check_target_schema(config: Config, mappings: Mappings, conn: Connections, state: State,
                        digest: str) -> None:
    """Every mapped target attribute must exist in the target's schema before anything is
    written (otherwise every user fails with HTTP 400): the built-in Genesys schema for
    ``flavor: genesys``; the target's ``/Schemas`` (plus RFC 7643's common attributes) for
    generic targets, read once per settings digest. Raises ConfigError (exit 2)."""
    if config.target.flavor == "genesys":
        schemas: list[dict[str, Any]] | None = builtin_genesys_schemas()
        where = "the built-in Genesys schema"
    elif state.get_meta(SCHEMA_META) == digest:
        return
    else:
        try:
            body = conn.scim.get("/Schemas")
        except TargetError as exc:
            if exc.status in (404, 405, 501):
                log.warning("the target does not offer /Schemas; mapped attributes are not "
                            "checked before writing")
                return
            raise
        items = body.get("Resources") if isinstance(body, dict) else body
        schemas = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else None
        where = "the target's /Schemas"
        if not schemas:
            return
    errors = schema_errors(mappings, schemas, config.target.flavor)
    if errors:
        first = "; ".join(f"{f.where}: {f.message}" for f in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ConfigError(f"{config.mappings_path.name}: {len(errors)} mapping error(s) "
                          f"against {where}: {first}{more}; nothing was written (see "
                          "`genesys-prov mapping validate`)")
    if config.target.flavor != "genesys":
        state.set_meta(SCHEMA_META, digest)


def run_sync(config: Config, *, dry_run: bool = False, allow_deletions: bool = False,
             full: bool = False, progress: Progress | None = None,
             clock: Callable[[], float] = time.time,
             plan_out: str | None = None, retry_now: bool = False) -> SyncResult:
    """Read the directory and the target, plan, and apply unless ``dry_run``.

    A real run holds the state directory's lock (a second run gets exit 5), links every
    matched and created user, and writes every attempted change to the provisioning log
    as it happens. The safety guards, the plan-out path and the mapped target attributes
    (against the target's schema) are checked before any write. Changes waiting in escrow
    are retried when due, or now with ``retry_now``; a change of the mappings or settings
    releases them (they are planned afresh).

    Example::

        result = run_sync(load_config("genesys-prov.yaml"), dry_run=True)
        result.plan.counts()
    """
    mappings = load_mappings(config.mappings_path)
    if plan_out:
        check_output_path("--plan-out", plan_out)
    lock: contextlib.AbstractContextManager[Any] = \
        contextlib.nullcontext() if dry_run else RunLock(config.state_dir)
    with lock, State.open(config.state_dir) as state:
        run_id = state.start_run(dry_run)
        status = "error"
        in_scope: int | None = None
        counts: dict[str, int] = {}
        try:
            left_quarantine = not dry_run and _quarantine_gate(config, state, run_id, clock())
            conn = connect(config)
            digest = settings_digest(config, mappings)
            check_target_schema(config, mappings, conn, state, digest)
            waiting = _escrow_waiting(state, run_id, digest, dry_run, retry_now, clock())
            kinds = _delta_kinds(config, mappings)
            reason = full_sync_reason(state, digest, full or left_quarantine or bool(plan_out),
                                      clock())
            if left_quarantine:
                reason = "the job just left quarantine"
            elif plan_out:
                reason = "a plan file is made from a full comparison"
            elif reason is None and retry_now and state.escrowed("group"):
                reason = "escrowed group changes are retried now (--retry-now)"
            delta: Delta | None = None
            quick: QuickPlan | None = None
            quick_seconds = 0.0
            why_not = ""
            trusted = False
            links = state.links("user")
            if reason is None:
                try:
                    reason, delta = _probe_changes(conn, config, state, kinds)
                except DeltaExpired as exc:
                    reason, delta = f"{exc}: starting over", None
                if delta is not None:
                    delta.retry = {sid for sid in state.escrowed("user") if sid not in waiting}
                if delta is not None and delta.count == 0 and not delta.retry:
                    in_scope = state.last_in_scope()
                    if not dry_run:
                        for kind, link in delta.links.items():
                            state.set_delta_link(kind, link)
                    status = "incremental"
                    if not dry_run:
                        _notify(config, state, [])
                    return SyncResult(plan=Plan(in_scope=in_scope or 0), dry_run=dry_run,
                                      requests=conn.request_counts(), run_id=run_id,
                                      mode="incremental", mode_reason=NO_CHANGES,
                                      escrow=escrow_info(state))
                trusted = state.get_meta(SNAPSHOT_META) == digest
                # reading k users one by one beats listing them all (two listings of
                # ⌈n / page⌉ pages) only while k is small; under 25 it hardly matters
                max_reads = max(INCREMENTAL_MIN_READS,
                                2 * -(-len(links) // config.target.page_size))
                if delta is not None:
                    started = time.monotonic()
                    inputs = SnapshotInputs(
                        delta.assigned, config.source.nested_groups,
                        lambda user: [snapshot(r, mappings)
                                      for r in _find_target(conn, mappings, user)],
                        lambda: _target_groups(conn, mappings), max_reads)
                    attempt = plan_from_snapshot(state, delta, mappings, digest,
                                                 plan_options(config, links), user_rule(config),
                                                 inputs)
                    if isinstance(attempt, QuickPlan):
                        quick = attempt
                        quick_seconds = time.monotonic() - started
                    else:
                        why_not = attempt
                        changed = delta.changed_user_ids()
                        if trusted:  # what the snapshot holds need not be read
                            changed -= set(state.applied(sorted(changed)))
                        if len(changed) > max_reads:
                            reason = (f"{len(changed)} changed users to read: listing the "
                                      "target is cheaper than reading them one by one")
                            delta = None
            writer = None if dry_run else SnapshotWriter(state, run_id)
            if not dry_run:
                state.delete_meta(SNAPSHOT_META)  # trusted again once this run finishes
            if delta is not None and quick is not None:
                starts = delta.links
                mode, reason = "incremental", delta.describe()
                reading = Reading(quick.plan, {"plan": quick_seconds},
                                  state.get_meta("assignments_digest") or "", quick.before)
            elif delta is not None:
                starts = delta.links
                mode = "incremental"
                reason = f"{delta.describe()}; the directory was read ({why_not})"

                def known(ids: list[str]) -> dict[str, TargetUser]:
                    return stored_targets(state, ids, mappings) if trusted else {}

                reading = read_and_plan_changes(config, mappings, conn, links,
                                                delta.changed_user_ids(), progress, writer,
                                                known)
            else:
                mode = "full"
                starts = {} if dry_run else {
                    kind: conn.graph.delta_start(kind, select) for kind, select in kinds.items()}
                reading = read_and_plan(config, mappings, conn, progress, links, writer)
            if writer is not None and quick is None:
                writer.finish()
            plan, timings = reading.plan, reading.timings
            in_scope = plan.in_scope
            try:
                plan = guard_plan(plan, config, len(links), state.last_in_scope(),
                                  allow_deletions)
            except SafetyError:
                status = "blocked"
                raise
            now = clock()
            expired = [] if dry_run else state.expire_escrow(now, config.safety.escrow_max_age)
            plan = hold_escrowed(plan, waiting)
            counts = plan.counts()
            result = SyncResult(plan=plan, dry_run=dry_run, timings=timings, run_id=run_id,
                                mode=mode, mode_reason=reason or "")
            if plan_out:
                write_plan(plan_out, plan, digest)
            if not dry_run:
                state.link_many("user", list(plan.matched))
                state.link_many("group", list(plan.matched_groups))
                settled = settled_ids(plan)  # escrowed, but nothing left to do for them
                state.escrow_clear_many("user", settled["user"])
                state.escrow_clear_many("group", settled["group"])
                state.log(plan_records(run_id, plan) + [
                    LogRecord(run_id, str(e["identity"]), str(e["source_id"]), None, "Other",
                              "Failure", "EscrowExpired",
                              f"dropped from escrow after {e['attempts']} failed attempts: "
                              f"{e['last_error']}") for e in expired])
            if progress:
                progress("plan", plan.writes)
            if not dry_run and plan.writes:
                result.applied = _apply(config, mappings, conn, plan, state, run_id, progress,
                                        clock)
                timings["apply"] = result.applied.elapsed
                cause = (f"authentication failed while applying: {result.applied.aborted}"
                         if result.applied.aborted else
                         failure_rate_cause(result.applied,
                                            config.safety.quarantine_min_failures))
                if cause:
                    _enter_quarantine(state, run_id, cause, clock(), config)
                    result.quarantined = cause
            result.requests = conn.request_counts()
            result.escrow = escrow_info(state)
            status = "held" if plan.held else "failed" if result.failed else "success"
            if status == "success" and mode == "incremental":
                status = "incremental"
            if not dry_run:
                state.set_applied(applied_rows(plan, reading.before,
                                               result.applied.outcomes if result.applied
                                               else (), mappings, state.links("user")))
                if quick is not None:
                    quick.store(state, run_id)
                for kind, link in starts.items():
                    state.set_delta_link(kind, link)
                state.set_meta("settings_digest", digest)
                state.set_meta("assignments_digest", reading.assignments_digest)
                state.set_meta(SNAPSHOT_META, digest)
                _notify(config, state, incidents_of(result, result.quarantined))
            return result
        except SafetyError as exc:
            if not dry_run:
                _notify(config, state, [Incident("blocked", "genesys-prov: a safety guard "
                                                 "stopped the run", str(exc))])
            raise
        except QuarantineError as exc:
            if not dry_run:
                _notify(config, state, incidents_of(None, str(exc)))
            raise
        except (AuthError, TargetError) as exc:
            cause = quarantine_cause(exc)
            if cause and not dry_run:
                _enter_quarantine(state, run_id, cause, clock(), config)
                _notify(config, state, incidents_of(None, cause))
            raise
        finally:
            state.finish_run(run_id, status, in_scope, counts)


def _apply(config: Config, mappings: Mappings, conn: Connections, plan: Plan, state: State,
           run_id: str, progress: Progress | None,
           clock: Callable[[], float], strict: bool = False) -> applying.ApplyResult:
    done = 0
    safety = config.safety

    def record(outcome: applying.Outcome) -> None:
        nonlocal done
        done += 1
        change = outcome.change
        kind = "group" if isinstance(change, GroupChange) else "user"
        if outcome.status == applying.SKIPPED:
            pass
        elif outcome.status == applying.FAILURE:
            if outcome.code not in ("Aborted", "Unauthorized"):
                # the network or the server's 5xx: worth trying again soon, not in an hour
                backoff = min(TRANSIENT_ESCROW_BACKOFF, safety.escrow_backoff) \
                    if applying.transient(outcome) else safety.escrow_backoff
                state.escrow_failure(kind, change.source_id, change.identity,
                                     outcome.error or "", clock(), backoff,
                                     safety.escrow_max_backoff)
        else:
            state.escrow_clear(kind, change.source_id)
        if outcome.status != applying.FAILURE and outcome.target_id:
            if isinstance(change, Change) and change.action is Action.DELETE:
                state.unlink("user", change.source_id)
            else:
                state.link(kind, change.source_id, outcome.target_id)
        state.log(outcome_records(run_id, outcome))
        if progress and (done % 100 == 0 or done == plan.writes):
            progress("apply", done)

    matching = [m.target for m in mappings.user_match]
    return applying.apply_plan(plan, conn.scim, matching, config.target.concurrency,
                               on_outcome=record,
                               member_batch_size=config.target.member_batch_size,
                               strict=strict)


def apply_plan_file(config: Config, path: str, *, max_age: float = 86400.0,
                    allow_deletions: bool = False, progress: Progress | None = None,
                    clock: Callable[[], float] = time.time) -> SyncResult:
    """Apply a plan made by ``sync --dry-run --plan-out`` exactly: refuse it when its
    checksum does not match, the configuration or mappings changed, or it is older than
    ``max_age`` seconds; send ``If-Match`` with the version each object had when the plan
    was made, so whatever changed in the target since is skipped and reported, never
    overwritten. The safety guards apply as for ``sync``.

    Example::

        result = apply_plan_file(load_config("genesys-prov.yaml"), "plan.json")
    """
    mappings = load_mappings(config.mappings_path)
    plan = read_plan(path, settings_digest(config, mappings), max_age, clock())
    with RunLock(config.state_dir), State.open(config.state_dir) as state:
        run_id = state.start_run(False)
        status = "error"
        try:
            links = state.links("user")
            try:
                plan = guard_plan(plan, config, len(links), state.last_in_scope(),
                                  allow_deletions)
            except SafetyError:
                status = "blocked"
                raise
            conn = connect(config)
            result = SyncResult(plan=plan, dry_run=False, run_id=run_id, mode="plan",
                                mode_reason=f"applying {path}")
            state.log(plan_records(run_id, plan))
            if plan.writes:
                result.applied = _apply(config, mappings, conn, plan, state, run_id, progress,
                                        clock, strict=True)
            result.requests = conn.request_counts()
            status = "held" if plan.held else "failed" if result.failed else "applied"
            return result
        finally:
            state.finish_run(run_id, status, None, plan.counts())


# --- check ----------------------------------------------------------------------------------

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


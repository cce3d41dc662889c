"""The pipeline: source (Graph) → mapping → plan → apply, and the connection check.

These are the library entry points the CLI calls; they never print or exit. Progress is
reported through an optional callback ``progress(stage, done)``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from genesys_prov.config import Config
from genesys_prov.errors import (
    AuthError,
    DeltaExpired,
    QuarantineError,
    SafetyError,
    TargetError,
)
from genesys_prov.mapping.genesys_rules import user_rule
from genesys_prov.mapping.mappings import Mappings, load_mappings
from genesys_prov.notify import Incident
from genesys_prov.plan.build import target_user
from genesys_prov.plan.file import read_plan, write_plan
from genesys_prov.plan.model import (
    Action,
    Change,
    GroupChange,
    Plan,
    TargetUser,
)
from genesys_prov.plan.safety import guard_plan, hold_escrowed, settled_ids
from genesys_prov.source.delta import Delta
from genesys_prov.source.scope import Progress
from genesys_prov.state.db import LogRecord, RunLock, State
from genesys_prov.state.snapshot import SNAPSHOT_META, SnapshotWriter, stored_targets
from genesys_prov.sync.bookkeeping import (
    TRANSIENT_ESCROW_BACKOFF,
    applied_rows,
    outcome_records,
    plan_records,
)
from genesys_prov.sync.connections import Connections, connect
from genesys_prov.sync.digests import settings_digest
from genesys_prov.sync.incidents import (
    _enter_quarantine,
    _escrow_waiting,
    _notify,
    _quarantine_gate,
    escrow_info,
    failure_rate_cause,
    incidents_of,
    quarantine_cause,
)
from genesys_prov.sync.inputs import (
    INCREMENTAL_MIN_READS,
    Reading,
    _delta_kinds,
    _find_target,
    _probe_changes,
    _target_groups,
    full_sync_reason,
    plan_options,
    read_and_plan,
    read_and_plan_changes,
)
from genesys_prov.sync.preflight import check_output_path, check_target_schema
from genesys_prov.sync.result import SyncResult
from genesys_prov.sync.snapshot_planner import QuickPlan, SnapshotInputs, plan_from_snapshot
from genesys_prov.target import apply as applying

log = logging.getLogger(__name__)


NO_CHANGES = "no directory changes"


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
                        lambda user: [target_user(r, mappings)
                                      for r in _find_target(conn, mappings, user)],
                        lambda: _target_groups(conn, mappings), max_reads)
                    attempt = plan_from_snapshot(state, delta, mappings, digest,
                                                 plan_options(config, links), user_rule(config.target),
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



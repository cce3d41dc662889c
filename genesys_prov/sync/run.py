"""A sync, in phases: open the run (lock, run record, notify on error) → the gates
(quarantine, the target's schema, escrow) → choose the inputs and plan → the guards,
escrow's hold, the plan file → return on dry-run → apply → finish (snapshot, delta links,
digests, notifications). And the exact apply of a reviewed plan file.

These are the library entry points the CLI calls; they never print or exit. Progress is
reported through an optional callback ``progress(stage, done)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from genesys_prov.config import Config
from genesys_prov.errors import SafetyError
from genesys_prov.mapping.mappings import Mappings
from genesys_prov.mapping.mappings_file import load_mappings
from genesys_prov.plan.file import read_plan, write_plan
from genesys_prov.plan.model import Plan
from genesys_prov.plan.safety import guard_plan, hold_escrowed
from genesys_prov.report import check_output_path
from genesys_prov.source.scope import Progress
from genesys_prov.state.snapshot import SNAPSHOT_META
from genesys_prov.sync.bookkeeping import Bookkeeper, applied_rows, keep_plan, plan_records
from genesys_prov.sync.connections import Connections, connect, tenant_mappings
from genesys_prov.sync.context import RunContext, fewer_full_collections, run_context
from genesys_prov.sync.digests import settings_digest
from genesys_prov.sync.incidents import (
    enter_quarantine,
    escrow_info,
    escrow_waiting,
    failure_rate_cause,
    incidents_of,
    quarantine_gate,
)
from genesys_prov.sync.inputs import DEFAULT_DOMAIN_META, NO_CHANGES, Ask, Choice, choose_reading
from genesys_prov.sync.preflight import check_target_schema
from genesys_prov.sync.result import SyncResult
from genesys_prov.target import apply as applying

__all__ = ["NO_CHANGES", "apply_plan_file", "run_sync"]


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
    with run_context(config, mappings, dry_run=dry_run, clock=clock, progress=progress,
                     incidents=True) as run:
        left_quarantine = not dry_run and quarantine_gate(config, run.state, run.run_id,
                                                          clock())
        conn = connect(config)
        run.mappings = tenant_mappings(run.mappings, conn)
        ask = Ask(settings_digest(config, mappings), {}, full, left_quarantine,
                  bool(plan_out), retry_now)
        check_target_schema(config, mappings, conn, run.state, ask.digest)
        ask.waiting = escrow_waiting(run.state, run.run_id, ask.digest, dry_run, retry_now,
                                     clock())
        with fewer_full_collections():  # not while applying: see its docstring
            choice = choose_reading(run, conn, ask)
            if choice.reading is None:
                return _nothing_changed(run, conn, choice)
            result = _planned(run, choice, ask, allow_deletions, plan_out)
        if not dry_run:
            _apply_and_watch(run, conn, result)
        _finish(run, conn, result, choice, ask.digest)
        return result
    raise AssertionError("unreachable")  # pragma: no cover (mypy: the context may swallow)


def _nothing_changed(run: RunContext, conn: Connections, choice: Choice) -> SyncResult:
    """The directory did not change: nothing is read from or written to the target."""
    run.in_scope = run.state.last_in_scope()
    run.status = "incremental"
    if not run.dry_run:
        for kind, link in choice.starts.items():
            run.state.set_delta_link(kind, link)
        run.notify([])
    return SyncResult(plan=Plan(in_scope=run.in_scope or 0), dry_run=run.dry_run,
                      requests=conn.request_counts(), run_id=run.run_id,
                      mode="incremental", mode_reason=choice.reason, unchanged=True,
                      escrow=escrow_info(run.state))


def _guarded(run: RunContext, plan: Plan, allow_deletions: bool) -> Plan:
    """The safety guards; a stop records the run as blocked."""
    try:
        return guard_plan(plan, run.config, len(run.state.links("user")),
                          run.state.last_in_scope(), allow_deletions)
    except SafetyError:
        run.status = "blocked"
        raise


def _planned(run: RunContext, choice: Choice, ask: Ask, allow_deletions: bool,
             plan_out: str | None) -> SyncResult:
    """The plan as it will be applied: guarded, escrow's waiting changes held back, written
    to the plan file; a real run links and logs it before the first write."""
    assert choice.reading is not None
    plan = choice.reading.plan
    run.in_scope = plan.in_scope
    plan = _guarded(run, plan, allow_deletions)
    expired = [] if run.dry_run else \
        run.state.expire_escrow(run.clock(), run.config.safety.escrow_max_age)
    plan = hold_escrowed(plan, ask.waiting)
    run.counts = plan.counts()
    result = SyncResult(plan=plan, dry_run=run.dry_run, timings=choice.reading.timings,
                        run_id=run.run_id, mode=choice.mode, mode_reason=choice.reason or "",
                        full_reason=choice.full_reason)
    if plan_out:
        write_plan(plan_out, plan, ask.digest)
    if not run.dry_run:
        keep_plan(run.state, run.run_id, plan, expired)
    if run.progress:
        run.progress("plan", plan.writes)
    return result


def _apply_and_watch(run: RunContext, conn: Connections, result: SyncResult) -> None:
    """Apply the plan; too many failures, or authentication failing on the way, put the
    job in quarantine."""
    if not result.plan.writes:
        return
    result.applied = apply_with_bookkeeping(run, conn, result.plan)
    result.timings["apply"] = result.applied.elapsed
    cause = (f"authentication failed while applying: {result.applied.aborted}"
             if result.applied.aborted else
             failure_rate_cause(result.applied, run.config.safety.quarantine_min_failures))
    if cause:
        enter_quarantine(run.state, run.run_id, cause, run.clock(), run.config)
        result.quarantined = cause


def _finish(run: RunContext, conn: Connections, result: SyncResult, choice: Choice,
            digest: str) -> None:
    """Count, set the run's status and, for a real run, bring the snapshot, the delta
    links and the digests up to date (the snapshot is trusted again) and notify."""
    assert choice.reading is not None
    plan = result.plan
    result.requests = conn.request_counts()
    result.escrow = escrow_info(run.state)
    run.status = "held" if plan.held else "failed" if result.failed else "success"
    if run.status == "success" and choice.mode == "incremental":
        run.status = "incremental"
    if run.dry_run:
        return
    state = run.state
    outcomes = result.applied.outcomes if result.applied else ()
    state.set_applied(applied_rows(plan, choice.reading.before, outcomes, run.mappings,
                                   state.links("user")))
    if choice.quick is not None:
        choice.quick.store(state, run.run_id)
    for kind, link in choice.starts.items():
        state.set_delta_link(kind, link)
    state.set_meta("settings_digest", digest)
    if run.mappings.default_domain is not None:
        state.set_meta(DEFAULT_DOMAIN_META, run.mappings.default_domain)
    state.set_meta("assignments_digest", choice.reading.assignments_digest)
    state.set_meta(SNAPSHOT_META, digest)
    run.notify(incidents_of(result, result.quarantined))


def apply_with_bookkeeping(run: RunContext, conn: Connections, plan: Plan,
                           strict: bool = False) -> applying.ApplyResult:
    """Apply a plan, recording the outcomes as they arrive, in batches (:class:`Bookkeeper`);
    whatever ends the apply, what is left of the last batch is written."""
    config, mappings = run.config, run.mappings
    with Bookkeeper(run.state, run.run_id, config.safety, run.clock, plan.writes,
                    run.progress) as record:
        return applying.apply_plan(plan, conn.scim, match_attributes(mappings),
                                   config.target.concurrency, on_outcome=record,
                                   member_batch_size=config.target.member_batch_size,
                                   strict=strict, on_wait=record.flush)


def match_attributes(mappings: Mappings) -> list[str]:
    """The target attributes users are matched on, in precedence order."""
    return [m.target for m in mappings.user_match]


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
    with run_context(config, mappings, clock=clock, progress=progress) as run:
        run.counts = plan.counts()
        plan = _guarded(run, plan, allow_deletions)
        run.counts = plan.counts()
        conn = connect(config)
        result = SyncResult(plan=plan, dry_run=False, run_id=run.run_id, mode="plan",
                            mode_reason=f"applying {path}")
        run.state.log(plan_records(run.run_id, plan))
        if plan.writes:
            result.applied = apply_with_bookkeeping(run, conn, plan, strict=True)
        result.requests = conn.request_counts()
        run.status = "held" if plan.held else "failed" if result.failed else "applied"
        return result
    raise AssertionError("unreachable")  # pragma: no cover

"""What a run keeps of what it did, the same for sync, apply and provision: links,
escrow, the provisioning log (written in batches, one transaction each), and the target
state each user was left in."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from genesys_prov.config import SafetyConfig
from genesys_prov.mapping.mappings import Mappings
from genesys_prov.plan.model import (
    Action,
    Change,
    GroupAction,
    GroupChange,
    Plan,
    TargetUser,
)
from genesys_prov.plan.safety import settled_ids
from genesys_prov.source.scope import Progress
from genesys_prov.state.db import LogRecord, State
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




def keep_plan(state: State, run_id: str, plan: Plan,
              expired: Iterable[Mapping[str, Any]] = ()) -> None:
    """Before a real run applies its plan: link every matched user and group, settle the
    escrow of those the plan has nothing to do for, and log what the plan will not attempt
    (failures, skips, held changes, warnings) and what escrow dropped (``expired``)."""
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


#: Outcomes written per transaction, and the most seconds an outcome waits for its batch
#: (checked as outcomes arrive; :meth:`Bookkeeper.flush` writes the rest).
BATCH_SIZE = 200
BATCH_SECONDS = 1.0


@dataclass
class Bookkeeper:
    """Records each outcome, for every way of applying (sync, a plan file, provision): the
    provisioning log, the link (or unlink, for a delete), and escrow — a failure waits there
    (a transient one is tried again after 5 minutes), a success clears it.

    Outcomes are written in batches, one transaction each: ``batch_size`` of them, or what
    arrived in ``batch_seconds``, whichever comes first; :meth:`flush` writes what is left,
    and leaving the ``with`` block flushes whatever ended the apply. A run killed before a
    batch is written loses its links and log records only: the next run matches the users
    it created by their matching attribute (a full read lists them) and links them then.
    ``progress`` hears of every 100th outcome and the last.

    Example::

        with Bookkeeper(state, run_id, config.safety, time.time) as record:
            apply_plan(plan, scim, match, 4, on_outcome=record, on_wait=record.flush)
    """

    state: State
    run_id: str
    safety: SafetyConfig
    clock: Callable[[], float]
    total: int = 0
    progress: Progress | None = None
    done: int = 0
    batch_size: int = field(default_factory=lambda: BATCH_SIZE)
    batch_seconds: float = field(default_factory=lambda: BATCH_SECONDS)
    timer: Callable[[], float] = time.monotonic
    batches: int = 0  # transactions written
    _pending: list[applying.Outcome] = field(default_factory=list, repr=False)
    _opened: float = 0.0  # when the first outcome of the pending batch arrived

    def __call__(self, outcome: applying.Outcome) -> None:
        """Take one outcome; its batch is written when full or a second old."""
        self.done += 1
        if not self._pending:
            self._opened = self.timer()
        self._pending.append(outcome)
        if len(self._pending) >= self.batch_size or \
                self.timer() - self._opened >= self.batch_seconds:
            self.flush()
        if self.progress and (self.done % 100 == 0 or self.done == self.total):
            self.progress("apply", self.done)

    def flush(self) -> None:
        """Write the outcomes taken since the last batch, in one transaction (the log's
        JSON lines are appended once it is committed)."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        with self.state.transaction():
            self._record(batch)
            self.state.log([r for o in batch for r in outcome_records(self.run_id, o)])
        self.batches += 1

    def __enter__(self) -> Bookkeeper:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.flush()

    def _record(self, batch: list[applying.Outcome]) -> None:
        """Escrow and link a batch's outcomes, a few statements for the whole batch (each
        statement lets the workers' threads in, so few statements keep a batch short).
        Escrow keeps each object's order: a user's create and its manager fix-up may share
        a batch, and the fix-up's failure must not be cleared by the create's success."""
        escrow: dict[tuple[str, str], list[applying.Outcome]] = {}
        links: dict[str, list[tuple[str, str]]] = {"user": [], "group": []}
        unlinks: list[str] = []
        for outcome in batch:
            change = outcome.change
            kind = "group" if isinstance(change, GroupChange) else "user"
            if outcome.status != applying.SKIPPED:
                escrow.setdefault((kind, change.source_id), []).append(outcome)
            if outcome.status != applying.FAILURE and outcome.target_id:
                if isinstance(change, Change) and change.action is Action.DELETE:
                    unlinks.append(change.source_id)
                else:
                    links[kind].append((change.source_id, outcome.target_id))
        for kind in links:
            self.state.escrow_clear_many(kind, [
                sid for (k, sid), seen in escrow.items()
                if k == kind and all(o.status != applying.FAILURE for o in seen)])
            self.state.link_many(kind, links[kind])
        self.state.unlink_many("user", unlinks)  # a deleted user is linked by no other change
        for (kind, sid), seen in escrow.items():
            if any(o.status == applying.FAILURE for o in seen):
                for outcome in seen:  # in their order
                    if outcome.status == applying.FAILURE:
                        self._escrow(kind, outcome)
                    else:
                        self.state.escrow_clear(kind, sid)

    def _escrow(self, kind: str, outcome: applying.Outcome) -> None:
        if outcome.code in ("Aborted", "Unauthorized"):
            return
        # the network or the server's 5xx: worth trying again soon, not in an hour
        backoff = min(TRANSIENT_ESCROW_BACKOFF, self.safety.escrow_backoff) \
            if applying.transient(outcome) else self.safety.escrow_backoff
        change = outcome.change
        self.state.escrow_failure(kind, change.source_id, change.identity, outcome.error or "",
                                  self.clock(), backoff, self.safety.escrow_max_backoff)

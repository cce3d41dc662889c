"""What a run did: the plan, what was applied, the requests and timings, and how the
run ended (as enums the command line turns into exit codes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from genesys_prov.plan.model import Action, Plan
from genesys_prov.target import apply as applying


class FullReason(StrEnum):
    """Why a run read both sides completely (the text a run shows may add details)."""

    REQUESTED = "--full was given"
    FIRST_RUN = "no delta links yet (first run, or after state reset)"
    SETTINGS_CHANGED = "the mappings or scope settings changed since the last run"
    DEFAULT_DOMAIN_CHANGED = "the tenant's default domain (DefaultDomain()) changed"
    LAST_RUN = "the last run did not end well"
    GROUP_ESCROW_DUE = "escrowed group changes are due for a retry"
    LEFT_QUARANTINE = "the job just left quarantine"
    PLAN_FILE = "a plan file is made from a full comparison"
    RETRY_NOW = "escrowed group changes are retried now (--retry-now)"
    NO_DELTA_LINK = "no delta link for a kind of object"
    DELTA_EXPIRED = "the delta link expired"
    ASSIGNMENTS_CHANGED = "the application's assignments changed"
    TOO_MANY_READS = "too many changed users to read one by one"


class RunEnd(Enum):
    """How a run ended, for the exit code: worst first."""

    ABORTED = "aborted"          # applying stopped (authentication failed on the way)
    QUARANTINED = "quarantined"  # the run put the job in quarantine
    HELD = "held"                # the safety guard held deactivations
    FAILED = "failed"            # some changes failed
    OK = "ok"


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
    full_reason: FullReason | None = None  # why a full sync ran (None: it did not)
    unchanged: bool = False  # the directory did not change: the target was not read
    escrow: dict[str, Any] | None = None  # what waits in escrow after the run

    @property
    def failed(self) -> bool:
        """True when any user failed (in planning or applying)."""
        return bool(self.plan.failures) or bool(self.applied and self.applied.failed)

    @property
    def end(self) -> RunEnd:
        """How the run ended (the command line's exit code)."""
        if self.applied is not None and self.applied.aborted:
            return RunEnd.ABORTED
        if self.quarantined:
            return RunEnd.QUARANTINED
        if self.plan.held:
            return RunEnd.HELD
        return RunEnd.FAILED if self.failed else RunEnd.OK

    def summary(self) -> str:
        """One line: what was done (or would be), and the requests it took."""
        counts = self.plan.counts()
        keys = [a.value for a in Action] + ["group create", "group update"]
        parts = [f"{counts[k]} {k}" for k in keys if counts[k]]
        planned = ", ".join(parts) if parts else "no changes"
        target = self.requests.get("target", {})
        graph = self.requests.get("graph", {})
        reqs = (f"requests: Graph {sum(graph.values())}, target {sum(target.values())} "
                f"({', '.join(f'{k} {v}' for k, v in sorted(target.items())) or 'none'})")
        escrow = escrow_sentence(self.escrow)
        if self.unchanged:
            return (f"Incremental: no directory changes since the last run; the target was not "
                    f"read or written.{escrow} {reqs}")
        mode = f"Incremental ({self.mode_reason}): " if self.mode == "incremental" else ""
        if self.dry_run:
            return f"{mode}Dry run: would apply {planned}; nothing was written.{escrow} {reqs}"
        if self.applied is None:
            return (f"{mode}Nothing to do: the target already matches the directory.{escrow} "
                    f"{reqs}")
        applied = self.applied.counts()
        skipped = f", {applied['skipped']} skipped" if applied.get("skipped") else ""
        retried = f" ({self.applied.retried} tried twice)" if self.applied.retried else ""
        return (f"{mode}Applied {planned}: {applied['success']} succeeded, {applied['failure']} "
                f"failed{skipped}{retried} in {self.applied.elapsed:.1f}s.{escrow} {reqs}")

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


def escrow_sentence(escrow: dict[str, Any] | None) -> str:
    """`` N change(s) wait in escrow …`` for the summary line, or "" when none do."""
    if not escrow:
        return ""
    return (f" {escrow['count']} change(s) wait in escrow (oldest failed {escrow['oldest']}, "
            f"next retry {escrow['next_retry']}; `sync --retry-now` sends them now).")

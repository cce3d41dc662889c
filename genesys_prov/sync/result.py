"""What a run did: the plan, what was applied, the requests and timings, and how the
run ended (as enums the command line turns into exit codes)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from genesys_prov.plan.model import (
    Plan,
)
from genesys_prov.target import apply as applying

log = logging.getLogger(__name__)


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

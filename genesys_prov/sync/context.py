"""The skeleton every run shares (sync, apply, provision): the state directory's lock for
a real run, the state, the run record — started, and finished with the run's status
whatever happens — and, for scheduled syncs, the incidents that stop a run (a safety guard,
quarantine, authentication) turned into quarantine and notifications."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from genesys_prov.config import Config
from genesys_prov.errors import AuthError, QuarantineError, SafetyError, TargetError
from genesys_prov.mapping.mappings import Mappings
from genesys_prov.notify import Incident
from genesys_prov.source.scope import Progress
from genesys_prov.state.db import RunLock, State
from genesys_prov.sync.incidents import (
    enter_quarantine,
    incidents_of,
    quarantine_cause,
    send_notifications,
)


@dataclass
class RunContext:
    """One run: its settings, its state and run id, and what its record ends with."""

    config: Config
    mappings: Mappings
    state: State
    run_id: str
    dry_run: bool
    clock: Callable[[], float] = time.time
    progress: Progress | None = None
    status: str = "error"            # what the run record ends with
    in_scope: int | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def notify(self, incidents: list[Incident]) -> None:
        """Send (or close) the notifications of a real run."""
        if not self.dry_run:
            send_notifications(self.config, self.state, incidents)


#: Full collections at most every this many gen-1 collections while a run is open (Python's
#: default is 10).
RUN_FULL_COLLECTION_THRESHOLD = 1_000


@contextlib.contextmanager
def fewer_full_collections(threshold: int = RUN_FULL_COLLECTION_THRESHOLD) -> Iterator[None]:
    """Python's cyclic garbage collector tuned for a run, then restored: a run builds
    hundreds of thousands of objects that live until it ends (the desired users, the plan)
    and makes almost no reference cycles, so the default full collection — every time the
    old generation grew by a quarter — kept walking the same growing heap (a quarter of the
    planning CPU at 100,000 users). Young collections still run as usual; only full ones
    wait for ``threshold`` gen-1 collections. A nested or concurrent run that finds the
    threshold already raised leaves it alone.

    Used for reading and planning only: applying builds no large heap, and its requests
    leave short-lived reference cycles (responses, exceptions) that full collections
    should keep clearing."""
    before = gc.get_threshold()
    if before[2] >= threshold:
        yield
        return
    gc.set_threshold(before[0], before[1], threshold)
    try:
        yield
    finally:
        if gc.get_threshold()[2] == threshold:
            gc.set_threshold(*before)


@contextlib.contextmanager
def run_context(config: Config, mappings: Mappings, *, dry_run: bool = False,
                clock: Callable[[], float] = time.time, progress: Progress | None = None,
                incidents: bool = False) -> Iterator[RunContext]:
    """Open a run: lock (real runs only), state, run record. With ``incidents`` (scheduled
    syncs), a safety stop, quarantine or an authentication failure is notified, and an
    authentication failure or a wrong target URL puts the job in quarantine.

    Example::

        with run_context(config, mappings) as run:
            run.status = "success"
    """
    lock: contextlib.AbstractContextManager[Any] = \
        contextlib.nullcontext() if dry_run else RunLock(config.state_dir)
    with lock, State.open(config.state_dir) as state:
        run = RunContext(config, mappings, state, state.start_run(dry_run), dry_run, clock,
                         progress)
        try:
            yield run
        except (SafetyError, QuarantineError, AuthError, TargetError) as exc:
            if incidents:
                _incident(run, exc)
            raise
        finally:
            state.finish_run(run.run_id, run.status, run.in_scope, run.counts)


def _incident(run: RunContext, exc: Exception) -> None:
    """Quarantine and notifications for an error that stopped a scheduled sync."""
    if isinstance(exc, SafetyError):
        run.notify([Incident("blocked", "genesys-prov: a safety guard stopped the run",
                             str(exc))])
    elif isinstance(exc, QuarantineError):
        run.notify(incidents_of(None, str(exc)))
    else:
        cause = quarantine_cause(exc)
        if cause and not run.dry_run:
            enter_quarantine(run.state, run.run_id, cause, run.clock(), run.config)
            run.notify(incidents_of(None, cause))

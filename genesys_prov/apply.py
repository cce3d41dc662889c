"""Apply a plan: every change with ``concurrency`` workers under the shared rate limiter.

A failed change never stops the others. A create that fails ambiguously (a 409, or no
answer) is never re-sent blindly: the user is looked up by its matching attribute and
adopted when it exists.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from genesys_prov import scimpath
from genesys_prov.errors import AuthError, ConnectError, GenesysProvError, ScimError
from genesys_prov.http import TransportError
from genesys_prov.plan import Action, AttributeChange, Change, Plan
from genesys_prov.target import ScimClient, build_create, build_patch

SUCCESS = "success"
FAILURE = "failure"
ADOPTED = "adopted"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one change."""

    change: Change
    status: str
    target_id: str | None = None
    error: str | None = None
    code: str | None = None

    def data(self) -> dict[str, Any]:
        """JSON-ready form: the change plus its outcome."""
        return {**self.change.data(), "status": self.status, "result_target_id": self.target_id,
                "error": self.error, "code": self.code}


@dataclass
class ApplyResult:
    """The outcome of every change, and totals."""

    outcomes: list[Outcome] = field(default_factory=list)
    elapsed: float = 0.0
    aborted: str | None = None

    def counts(self) -> dict[str, int]:
        """Outcomes by status."""
        counter = Counter(o.status for o in self.outcomes)
        return {SUCCESS: counter[SUCCESS] + counter[ADOPTED], FAILURE: counter[FAILURE]}

    @property
    def failed(self) -> list[Outcome]:
        """Outcomes that failed."""
        return [o for o in self.outcomes if o.status == FAILURE]

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"counts": self.counts(), "elapsed_seconds": round(self.elapsed, 3),
                "aborted": self.aborted, "outcomes": [o.data() for o in self.outcomes]}


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ScimError):
        if exc.status == 409:
            return "Conflict"
        if exc.status == 429:
            return "TooManyRequests"
        return f"HTTP{exc.status}"
    if isinstance(exc, AuthError):
        return "Unauthorized"
    return "ConnectionError"


class Applier:
    """Runs changes against a SCIM client."""

    def __init__(self, client: ScimClient, match_attributes: list[str]) -> None:
        self.client = client
        self.match_attributes = match_attributes

    def apply_one(self, change: Change) -> Outcome:
        """Apply one change and report its outcome (never raises for a per-user failure)."""
        try:
            if change.action is Action.CREATE:
                return self._create(change)
            assert change.target_id is not None
            self.client.patch_user(change.target_id, build_patch(change))
            return Outcome(change, SUCCESS, change.target_id)
        except AuthError:
            raise  # every later change would fail too: the caller stops the run
        except (ScimError, TransportError, ConnectError) as exc:
            return Outcome(change, FAILURE, change.target_id, str(exc), _error_code(exc))

    def _create(self, change: Change) -> Outcome:
        try:
            created = self.client.create_user(build_create(change))
            return Outcome(change, SUCCESS, str(created["id"]))
        except ScimError as exc:
            if exc.status != 409:
                raise
            why = f"create answered 409 ({exc.detail})"
        except TransportError as exc:
            if not exc.ambiguous:
                raise
            why = f"create got no answer ({exc})"
        return self._adopt(change, why)

    def _adopt(self, change: Change, why: str) -> Outcome:
        """Find the user a create collided with, by matching attribute, and bring it to the
        desired state."""
        wanted = {a.attribute: a.new for a in change.attributes}
        for name in self.match_attributes:
            value = wanted.get(name)
            if not isinstance(value, str):
                continue
            found = self.client.find_users(scimpath.parse_path(name).qualified_attr, value)
            if len(found) > 1:
                return Outcome(change, FAILURE, None, f"{why}; {len(found)} users match "
                               f"{name} {value!r}", "DuplicateTargetEntries")
            if len(found) == 1:
                existing = found[0]
                diffs = []
                for item in change.attributes:
                    path = scimpath.parse_path(item.attribute)
                    old = scimpath.get_value(existing, path)
                    if old is not None and scimpath.same_value(path, old, item.new):
                        continue
                    op = "replace" if scimpath.has_element(existing, path) else "add"
                    diffs.append(AttributeChange(item.attribute, old, item.new, op))
                target_id = str(existing["id"])
                if diffs:
                    update = Change(Action.UPDATE, change.identity, change.source_id,
                                    target_id, tuple(diffs))
                    self.client.patch_user(target_id, build_patch(update))
                return Outcome(change, ADOPTED, target_id, None, None)
        return Outcome(change, FAILURE, None, f"{why}; no existing user was found by the "
                       "matching attributes", "Conflict")


def apply_plan(plan: Plan, client: ScimClient, match_attributes: list[str], concurrency: int,
               on_outcome: Callable[[Outcome], None] | None = None) -> ApplyResult:
    """Apply every change of ``plan`` with ``concurrency`` workers.

    At most ``2 × concurrency`` changes are in flight, so memory does not grow with the
    plan. An authentication failure stops the run (every later change would fail too);
    other failures are recorded and the rest continues."""
    applier = Applier(client, match_attributes)
    result = ApplyResult()
    started = time.monotonic()
    stop = threading.Event()

    def run(change: Change) -> Outcome:
        if stop.is_set():
            return Outcome(change, FAILURE, change.target_id, "not attempted: the run stopped",
                           "Aborted")
        try:
            return applier.apply_one(change)
        except AuthError as exc:
            stop.set()
            result.aborted = str(exc)
            return Outcome(change, FAILURE, change.target_id, str(exc), "Unauthorized")
        except GenesysProvError as exc:
            return Outcome(change, FAILURE, change.target_id, str(exc), "Error")

    def record(outcome: Outcome) -> None:
        result.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    for outcome in _bounded_map(run, plan.changes, concurrency):
        record(outcome)
    result.outcomes.sort(key=lambda o: o.change.sort_key)
    result.elapsed = time.monotonic() - started
    return result


def _bounded_map(fn: Callable[[Change], Outcome], items: Iterable[Change],
                 workers: int) -> Iterator[Outcome]:
    """Like ``executor.map`` but with a bounded number of submitted tasks; yields in
    completion order."""
    limit = workers * 2
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply") as pool:
        pending: set[Future[Outcome]] = set()
        for item in items:
            pending.add(pool.submit(fn, item))
            if len(pending) >= limit:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        for future in pending:
            yield future.result()

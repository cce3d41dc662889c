"""Apply a plan: every change with ``concurrency`` workers under the shared rate limiter.

A failed change never stops the others. A write whose fate is unknown (no answer, a 5xx,
an unreadable answer) is never re-sent blindly: a create looks the user up by its matching
attribute and adopts it when it exists (else sends it again); an update reads the user
and checks whether the new values are there. What failed for a transient reason (the
network, 5xx, 429) is tried once more at the end of its phase, so only what still fails
goes to escrow. Never a duplicate: a create is only re-sent after a lookup found nothing.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from genesys_prov.errors import AuthError, ConnectError, GenesysProvError, ScimError
from genesys_prov.http import TransportError
from genesys_prov.mapping import scimpath
from genesys_prov.plan.model import (
    LATE_WAVE,
    Action,
    AttributeChange,
    Change,
    GroupAction,
    GroupChange,
    MemberRef,
    Plan,
)
from genesys_prov.target.scim import (
    ScimClient,
    build_create,
    build_group_create,
    build_group_patches,
    build_patch,
)

SUCCESS = "success"
FAILURE = "failure"
SKIPPED = "skipped"
ADOPTED = "adopted"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one change (a user change or a group change)."""

    change: Change | GroupChange
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
    group_outcomes: list[Outcome] = field(default_factory=list)
    elapsed: float = 0.0
    aborted: str | None = None
    retried: int = 0  # changes tried a second time after a transient failure

    def counts(self) -> dict[str, int]:
        """Outcomes by status (user and group changes together)."""
        counter = Counter(o.status for o in self.outcomes + self.group_outcomes)
        return {SUCCESS: counter[SUCCESS] + counter[ADOPTED], FAILURE: counter[FAILURE],
                SKIPPED: counter[SKIPPED]}

    @property
    def failed(self) -> list[Outcome]:
        """Outcomes that failed."""
        return [o for o in self.outcomes + self.group_outcomes if o.status == FAILURE]

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"counts": self.counts(), "elapsed_seconds": round(self.elapsed, 3),
                "aborted": self.aborted, "retried": self.retried,
                "outcomes": [o.data() for o in self.outcomes],
                "group_outcomes": [o.data() for o in self.group_outcomes]}


STALE_REASON = ("changed in the target since the plan was made (its version no longer "
                "matches); not overwritten — make a new plan")
#: Failure codes that trying again may cure: the network, the server's 5xx, throttling.
TRANSIENT_CODES = frozenset({"ConnectionError", "TooManyRequests", "HTTP500", "HTTP502",
                             "HTTP503", "HTTP504"})
#: Statuses after which a write may or may not have been applied.
UNKNOWN_FATE = frozenset({500, 502, 503, 504})
CREATE_ATTEMPTS = 3       # POSTs of one create whose fate stayed unknown, each after a lookup
RETRY_PASS_DELAY = 10.0   # seconds before a phase's transient failures are tried once more
DELETED_NAME_HINT = (
    "Genesys keeps the userName and email of deleted users, so a deleted user's name cannot "
    "be used again while no user is found by it: restore the deleted user in Genesys, or "
    "give this user another userName and email")


def _stale(exc: ScimError) -> bool:
    """A precondition failure: Genesys answers 400 invalidVers, RFC 7644 servers 412."""
    return exc.status == 412 or exc.scim_type == "invalidVers"


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ScimError):
        if exc.status == 409:
            return "Conflict"
        if exc.status == 429:
            return "TooManyRequests"
        return f"HTTP{exc.status}"
    if isinstance(exc, AuthError):
        return "Unauthorized"
    if isinstance(exc, TransportError) and not exc.transient:
        return "TLSError"
    return "ConnectionError"


def transient(outcome: Outcome) -> bool:
    """Did this change fail for a reason that trying again may cure?"""
    return outcome.status == FAILURE and outcome.code in TRANSIENT_CODES


def _backoff(attempt: int) -> float:
    return float(min(8.0, 0.5 * 2 ** (attempt - 1)))


class Applier:
    """Runs changes against a SCIM client, resolving references to users created in the
    same run."""

    def __init__(self, client: ScimClient, match_attributes: list[str],
                 member_batch_size: int = 50, strict: bool = False,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.match_attributes = match_attributes
        self.member_batch_size = member_batch_size
        # strict: applying a reviewed plan — send If-Match with the version the plan saw,
        # and skip (never overwrite or adopt) what changed in the target since
        self.strict = strict
        self.sleep = sleep
        self.created: dict[str, str] = {}  # source id → target id of users created now
        self._lock = threading.Lock()
        # creates sent with an unknown fate: a later attempt (the retry pass) looks first
        self._maybe_landed: set[int] = set()

    def resolve(self, ref: MemberRef) -> str | None:
        """The target id behind a reference (None when its user was not created)."""
        if ref.target_id:
            return ref.target_id
        with self._lock:
            return self.created.get(ref.source_id or "")

    def _remember(self, source_id: str, target_id: str) -> None:
        with self._lock:
            self.created[source_id] = target_id

    def apply_one(self, change: Change) -> Outcome:
        """Apply one user change and report its outcome (never raises for a per-user
        failure; an authentication failure is raised, since every later change would fail
        too)."""
        try:
            if change.action is Action.CREATE:
                outcome = self._create(change)
                if outcome.target_id and outcome.status != FAILURE:
                    self._remember(change.source_id, outcome.target_id)
                return outcome
            target_id = change.target_id or self.created.get(change.source_id)
            if target_id is None:
                return Outcome(change, FAILURE, None, "the user was not created in this run",
                               "Dependency")
            version = change.version if self.strict else None
            if self.strict and version is None and change.target_id:
                # the listing gave no version to send with If-Match: compare instead
                changed, version, done = self._changed_since_plan(change, change.target_id)
                if done:  # e.g. this run's own first attempt, whose answer was lost
                    return Outcome(change, SUCCESS, target_id)
                if changed:
                    return Outcome(change, SKIPPED, change.target_id, changed,
                                   "ChangedSincePlan")
            if change.action is Action.DELETE:
                self.client.delete_user(target_id, version)
                return Outcome(change, SUCCESS, target_id)
            body = build_patch(change, self.resolve)
            if not body["Operations"]:  # its only reference points at a user not created
                return Outcome(change, SKIPPED, target_id,
                               "the referenced user was not created in this run; a later run "
                               "sets it", "Dependency")
            return self._patch(change, target_id, body, version)
        except AuthError:
            raise
        except (ScimError, TransportError, ConnectError) as exc:
            return self._failed(change, exc)

    def _patch(self, change: Change, target_id: str, body: dict[str, Any],
               version: str | None) -> Outcome:
        """PATCH a user. One that cannot safely be repeated (an ``add``) and whose fate is
        unknown is checked by reading the user: applied → success, else sent once more."""
        try:
            self.client.patch_user(target_id, body, version)
            return Outcome(change, SUCCESS, target_id)
        except ScimError as exc:
            if exc.status not in UNKNOWN_FATE:
                raise
        except TransportError as exc:
            if not exc.ambiguous:
                raise
        if self._holds(change, target_id):
            return Outcome(change, SUCCESS, target_id)
        self.client.patch_user(target_id, body, version)
        return Outcome(change, SUCCESS, target_id)

    def _holds(self, change: Change, target_id: str,
               existing: dict[str, Any] | None = None) -> bool:
        """Does the target user (read now, unless given) already hold every new value of
        ``change``? Never true for a delete."""
        if change.action is Action.DELETE:
            return False
        existing = existing if existing is not None else self.client.get_user(target_id)
        if existing is None:
            return False
        for item in change.attributes:
            path = scimpath.parse_path(item.attribute)
            current = scimpath.get_value(existing, path)
            if item.op == "remove":
                if current is not None:
                    return False
                continue
            new = self.resolve(item.new) if isinstance(item.new, MemberRef) else item.new
            if new is None:
                continue
            if current is None or not scimpath.same_value(path, current, new):
                return False
        return True

    def _changed_since_plan(self, change: Change,
                            target_id: str) -> tuple[str, str | None, bool]:
        """For a reviewed plan whose object had no version: read the object and compare it
        with the old values the plan saw. Returns why it changed (or ""), the version it
        has now (sent with If-Match when there is one), and whether the change is already
        done (the object holds the new values, or a deleted user is gone)."""
        existing = self.client.get_user(target_id)
        if existing is None:
            if change.action is Action.DELETE:
                return "", None, True
            return ("the user no longer exists in the target (deleted since the plan was "
                    "made); not recreated — make a new plan"), None, False
        if self._holds(change, target_id, existing):
            return "", None, True
        for item in change.attributes:
            path = scimpath.parse_path(item.attribute)
            old = item.old.target_id if isinstance(item.old, MemberRef) else item.old
            now = scimpath.get_value(existing, path)
            if old is None and now is None:
                continue
            if old is None or now is None or not scimpath.same_value(path, now, old):
                return (f"{item.attribute} is {now!r} in the target, the plan expected "
                        f"{old!r}: changed since the plan was made; not overwritten — make a "
                        "new plan"), None, False
        meta = existing.get("meta")
        version = meta.get("version") if isinstance(meta, dict) else None
        return "", version if isinstance(version, str) else None, False

    def apply_group(self, change: GroupChange) -> Outcome:
        """Apply one group change: create (generic targets) or PATCH in member batches."""
        try:
            if change.action is GroupAction.CREATE:
                return self._create_group(change)
            assert change.target_id is not None
            version = change.version if self.strict else None
            for body in build_group_patches(change, self.member_batch_size, self.resolve):
                if body["Operations"]:
                    self.client.patch_group(change.target_id, body, version)
                    version = None  # our own first batch changed the version
            return Outcome(change, SUCCESS, change.target_id)
        except AuthError:
            raise
        except (ScimError, TransportError, ConnectError) as exc:
            return self._failed(change, exc)

    def _failed(self, change: Change | GroupChange, exc: Exception) -> Outcome:
        """The outcome of a change the target refused: skipped when a reviewed plan meets
        an object that changed since (never overwritten), a failure otherwise."""
        if self.strict and isinstance(exc, ScimError) and _stale(exc):
            if isinstance(change, Change) and change.target_id and self._already(change):
                return Outcome(change, SUCCESS, change.target_id)
            return Outcome(change, SKIPPED, change.target_id, STALE_REASON, "ChangedSincePlan")
        return Outcome(change, FAILURE, change.target_id, str(exc), _error_code(exc))

    def _already(self, change: Change) -> bool:
        """A reviewed change refused as stale may have moved the version itself (its first
        attempt landed, the answer was lost): done when the user holds the new values."""
        try:
            return change.target_id is not None and self._holds(change, change.target_id)
        except (ScimError, TransportError, ConnectError):
            return False

    def _create(self, change: Change) -> Outcome:
        """POST the user. A 409 adopts the user it collided with; a POST whose fate is
        unknown is resolved by a lookup on the matching attributes (see
        :meth:`_resolve_create`)."""
        payload = build_create(change, self.resolve)

        def collided(why: str) -> Outcome:
            if self.strict:
                return Outcome(change, SKIPPED, None, "a user with this userName appeared in "
                               "the target since the plan was made; make a new plan",
                               "ChangedSincePlan")
            return self._adopt(change, why, conflict=True)

        def lookup(why: str) -> Outcome | None:
            found = self._adopt(change, why, conflict=False)
            return found if found.status != FAILURE or \
                found.code == "DuplicateTargetEntries" else None

        return self._resolve_create(change, lambda: self.client.create_user(payload),
                                    collided, lookup)

    def _resolve_create(self, change: Change | GroupChange,
                        send: Callable[[], dict[str, Any]],
                        collided: Callable[[str], Outcome],
                        lookup: Callable[[str], Outcome | None]) -> Outcome:
        """POST with ``send``; a 409 goes to ``collided``. A POST whose fate is unknown (no
        answer, a 5xx, an answer without an id) is never re-sent blindly: ``lookup`` looks
        for what it may have created — found: that outcome (adopted); not found: sent
        again, at most ``CREATE_ATTEMPTS`` POSTs. When even the lookup failed, the retry
        pass looks again before it sends anything (a group's name need not be unique, so
        a blind second POST could make a duplicate)."""
        why = ""
        error: Exception | None = None
        if id(change) in self._maybe_landed:  # tried before in this run, fate unknown
            found = lookup("an earlier create of this run may have landed")
            if found is not None:
                return found
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                return Outcome(change, SUCCESS, str(send()["id"]))
            except ScimError as exc:
                if exc.status == 409:
                    return collided(f"create answered 409 ({exc.detail})")
                if exc.status not in UNKNOWN_FATE:
                    raise
                why, error = f"create answered HTTP {exc.status}", exc
            except TransportError as exc:
                if not exc.ambiguous:
                    raise
                why, error = f"create got no answer ({exc})", exc
            self._maybe_landed.add(id(change))  # kept if the lookup itself fails
            found = lookup(why)
            if found is not None:
                return found
            if attempt < CREATE_ATTEMPTS:
                self.sleep(_backoff(attempt))
        return Outcome(change, FAILURE, None, f"{why}; not found by the matching attributes "
                       f"after {CREATE_ATTEMPTS} attempts",
                       _error_code(error) if error else "ConnectionError")

    def _create_group(self, change: GroupChange) -> Outcome:
        """POST /Groups (generic targets), resolved like a user's create: a group whose
        create may have landed is looked up by its displayName and completed."""
        payload = build_group_create(change, self.resolve)
        name = next((a.new for a in change.attributes
                     if a.attribute.lower() == "displayname" and isinstance(a.new, str)), None)

        def lookup(why: str) -> Outcome | None:
            if name is None:
                return None
            found = self.client.find_groups(name)
            if len(found) > 1:
                return Outcome(change, FAILURE, None, f"{why}; {len(found)} groups are named "
                               f"{name!r}", "DuplicateTargetEntries")
            if not found:
                return None
            target_id = str(found[0]["id"])
            adopted = replace(change, action=GroupAction.UPDATE, target_id=target_id)
            for body in build_group_patches(adopted, self.member_batch_size, self.resolve):
                if body["Operations"]:
                    self.client.patch_group(target_id, body)
            return Outcome(change, ADOPTED, target_id)

        def collided(why: str) -> Outcome:
            found = lookup(why)
            return found if found is not None else Outcome(
                change, FAILURE, None, f"{why}; no group named {name!r} was found", "Conflict")

        return self._resolve_create(change, lambda: self.client.create_group(payload),
                                    collided, lookup)

    def _adopt(self, change: Change, why: str, conflict: bool = True) -> Outcome:
        """Find the user a create collided with (or may have created), by matching
        attribute, and bring it to the desired state."""
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
                    new = item.new
                    if isinstance(new, MemberRef):
                        new = self.resolve(new)
                    if new is None or (old is not None and scimpath.same_value(path, old, new)):
                        continue
                    op = "replace" if scimpath.has_element(existing, path) else "add"
                    diffs.append(AttributeChange(item.attribute, old, new, op))
                target_id = str(existing["id"])
                if diffs:
                    update = Change(Action.UPDATE, change.identity, change.source_id,
                                    target_id, tuple(diffs))
                    self.client.patch_user(target_id, build_patch(update))
                return Outcome(change, ADOPTED, target_id, None, None)
        hint = f"; {DELETED_NAME_HINT}" if conflict and \
            self.client.config.flavor == "genesys" else ""
        return Outcome(change, FAILURE, None, f"{why}; no existing user was found by the "
                       f"matching attributes{hint}", "Conflict" if conflict else "NotFound")


def _phases(plan: Plan) -> list[list[Change]]:
    """User changes in the order they must run: creates wave by wave (managers before
    their reports), then the other user changes, then manager fix-ups of a cycle."""
    phases: dict[tuple[int, int], list[Change]] = {}
    for change in plan.changes:
        if change.action is Action.CREATE:
            key = (0, change.wave)
        else:
            key = (2, 0) if change.wave >= LATE_WAVE else (1, 0)
        phases.setdefault(key, []).append(change)
    return [phases[k] for k in sorted(phases)]


def apply_plan(plan: Plan, client: ScimClient, match_attributes: list[str], concurrency: int,
               on_outcome: Callable[[Outcome], None] | None = None,
               member_batch_size: int = 50, strict: bool = False,
               sleep: Callable[[float], None] = time.sleep,
               on_wait: Callable[[], None] | None = None) -> ApplyResult:
    """Apply every change of ``plan`` with ``concurrency`` workers.

    Users first (managers created before their reports, so a create already carries its
    manager's id), then group changes, so new users land in their groups in the same run.
    At most ``IN_FLIGHT_PER_WORKER × concurrency`` changes are in flight, so memory does
    not grow with the plan. An authentication failure stops the run; other failures are
    recorded and the rest continues. What failed for a transient reason is tried once more
    at the end of its phase (after ``RETRY_PASS_DELAY`` seconds; ``on_wait`` is called
    before that wait, so a caller that buffers outcomes can write them); ``on_outcome``
    sees each change once, with its final outcome, on the calling thread."""
    applier = Applier(client, match_attributes, member_batch_size, strict, sleep)
    result = ApplyResult()
    started = time.monotonic()
    stop = threading.Event()

    def guarded(fn: Callable[[Any], Outcome]) -> Callable[[Any], Outcome]:
        def run(change: Any) -> Outcome:
            if stop.is_set():
                return Outcome(change, FAILURE, change.target_id,
                               "not attempted: the run stopped", "Aborted")
            try:
                return fn(change)
            except AuthError as exc:
                stop.set()
                result.aborted = str(exc)
                return Outcome(change, FAILURE, change.target_id, str(exc), "Unauthorized")
            except GenesysProvError as exc:
                return Outcome(change, FAILURE, change.target_id, str(exc), "Error")
        return run

    def run_phase(fn: Callable[[Any], Outcome], changes: Iterable[Any],
                  into: list[Outcome]) -> None:
        again: list[Outcome] = []
        for outcome in _bounded_map(guarded(fn), changes, concurrency):
            if transient(outcome) and not stop.is_set():
                again.append(outcome)  # reported after the second try
                continue
            into.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        if again and not stop.is_set():
            if on_wait is not None:
                on_wait()
            sleep(RETRY_PASS_DELAY)
            retried = list(_bounded_map(guarded(fn), [o.change for o in again], concurrency))
            result.retried += len(retried)
        else:
            retried = again
        for outcome in retried:
            into.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

    for phase in _phases(plan):
        run_phase(applier.apply_one, phase, result.outcomes)
    run_phase(applier.apply_group, plan.group_changes, result.group_outcomes)
    order = {id(c): i for i, c in enumerate(plan.changes)}
    result.outcomes.sort(key=lambda o: order.get(id(o.change), 0))
    result.group_outcomes.sort(key=lambda o: o.change.sort_key)
    result.elapsed = time.monotonic() - started
    return result


T = TypeVar("T")
#: Changes submitted per worker: enough that the workers never wait while the caller
#: records a batch of outcomes, few enough that memory does not grow with the plan.
IN_FLIGHT_PER_WORKER = 4


def _bounded_map(fn: Callable[[T], Outcome], items: Iterable[T],
                 workers: int) -> Iterator[Outcome]:
    """Like ``executor.map`` but with at most ``IN_FLIGHT_PER_WORKER × workers`` tasks
    submitted; yields each result as soon as it is done (completion order), handed over
    through a queue — no wait over every pending future per result."""
    limit = workers * IN_FLIGHT_PER_WORKER
    finished: queue.SimpleQueue[Future[Outcome]] = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply") as pool:
        in_flight = 0
        for item in items:
            if in_flight >= limit:
                yield finished.get().result()
                in_flight -= 1
            pool.submit(fn, item).add_done_callback(finished.put)
            in_flight += 1
        for _ in range(in_flight):
            yield finished.get().result()

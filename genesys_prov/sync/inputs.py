"""Every way of gathering a plan's inputs, each returning a :class:`Reading`: the full read of
both sides, the read path of an incremental run (the directory read, the changed users' target
state from the snapshot or one GET each), the snapshot path (no directory read), and one
user (explain, provision). :func:`choose_reading` decides which one a run takes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import quote

from genesys_prov.config import Config
from genesys_prov.errors import ConfigError, DeltaExpired, SafetyError, SourceError
from genesys_prov.mapping.desired import DesiredUser, desired_user
from genesys_prov.mapping.genesys_rules import user_rule
from genesys_prov.mapping.mappings import APP_ROLE_ASSIGNMENTS, Mappings, source_reader
from genesys_prov.plan.build import build_plan, target_group, target_user
from genesys_prov.plan.model import (
    Plan,
    PlanOptions,
    TargetGroup,
    TargetUser,
)
from genesys_prov.source.delta import Delta
from genesys_prov.source.graph import USER_TYPE
from genesys_prov.source.scope import (
    FILTERED_OUT,
    Directory,
    Keeper,
    Progress,
    member_reason,
    read_assignments,
    read_directory,
    scoped_user,
    user_app_roles,
)
from genesys_prov.state.db import State
from genesys_prov.state.snapshot import SNAPSHOT_META, SnapshotWriter, stored_targets
from genesys_prov.sync.connections import Connections
from genesys_prov.sync.context import RunContext
from genesys_prov.sync.result import FullReason
from genesys_prov.sync.snapshot_planner import QuickPlan, SnapshotInputs, plan_from_snapshot

log = logging.getLogger(__name__)


Known = Callable[[list[str]], dict[str, TargetUser]]


T = TypeVar("T")


def _collect(items: Iterable[T], stage: str, progress: Progress | None,
             stop: threading.Event | None = None) -> list[T]:
    """Drain an iterator into a list, reporting progress every 1,000 items; ``stop``
    ends it early (the other side of a concurrent read failed)."""
    out: list[T] = []
    for item in items:
        out.append(item)
        if progress and len(out) % 1000 == 0:
            progress(stage, len(out))
        if stop is not None and stop.is_set():
            break
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


def _read_directory(config: Config, mappings: Mappings, conn: Connections,
                    progress: Progress | None, keeper: Keeper | None = None,
                    delta_links: dict[str, str] | None = None) -> Directory:
    """Read the directory (with the Genesys data rules applied). A read that fails after
    some pages is a safety stop: it must never look like a smaller directory."""
    try:
        return read_directory(conn.graph, config.source, mappings, user_rule(config.target),
                              progress, keeper, delta_links)
    except SourceError as exc:
        if conn.graph.pages_read:
            raise SafetyError(f"source-health guard: the Graph read failed part-way after "
                              f"{conn.graph.pages_read} page(s) ({exc}); nothing was written")\
                from exc
        raise


def _target_groups(conn: Connections, mappings: Mappings) -> list[TargetGroup]:
    if not mappings.group:
        return []
    return [target_group(g, mappings)
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
    subject: Subject | None = None  # one user's reading: what was seen (explain)


TargetRead = tuple[list[TargetUser], list[TargetGroup], float]


def _read_target(conn: Connections, mappings: Mappings,
                 stop: threading.Event) -> TargetRead:
    """The whole target: its users and groups, and the seconds the listing took."""
    started = time.monotonic()
    listing = (target_user(r, mappings) for r in conn.scim.list_users(mappings.target_attributes()))
    users = _collect(listing, "target", None, stop)
    groups = [] if stop.is_set() else _target_groups(conn, mappings)
    return users, groups, time.monotonic() - started


def _read_both(config: Config, mappings: Mappings, conn: Connections,
               progress: Progress | None, keeper: Keeper | None,
               delta_links: dict[str, str] | None) -> tuple[Directory, TargetRead, float]:
    """Read the directory and list the target at the same time (the listing on a second
    thread, under the target's limiter). A failure on either side raises before a
    single write; a failed directory read stops the listing early."""
    stop = threading.Event()
    with ThreadPoolExecutor(1, thread_name_prefix="target-read") as pool:
        listing = pool.submit(_read_target, conn, mappings, stop)
        started = time.monotonic()
        try:
            directory = _read_directory(config, mappings, conn, progress, keeper,
                                        delta_links)
        except BaseException:
            stop.set()
            raise
        seconds = time.monotonic() - started
        target = listing.result()
    if progress:
        progress("target", len(target[0]))
    return directory, target, seconds


def read_and_plan(config: Config, mappings: Mappings, conn: Connections,
                  progress: Progress | None = None,
                  links: dict[str, str] | None = None,
                  keeper: Keeper | None = None,
                  delta_links: dict[str, str] | None = None) -> Reading:
    """Read both sides completely (at the same time) and build the plan; also returns the
    digest of the app's assignments the read saw (stored for the next incremental run,
    so it never needs a second read). Any read failure raises before a single write is
    sent. A users' delta round read on the way leaves its link in ``delta_links``."""
    directory, (target, target_groups, target_seconds), source_seconds = _read_both(
        config, mappings, conn, progress, keeper, delta_links)
    timings = {"read_source": source_seconds, "read_target": target_seconds}
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


def _probe_changes(conn: Connections, config: Config, state: State,
                   kinds: dict[str, list[str]],
                   app_roles: bool = False) -> tuple[Why | None, Delta | None]:
    """Follow the stored delta links (one Graph request each when nothing changed) and
    re-read the app's assignments (they have no delta; with ``app_roles``, a mapping reads
    appRoleAssignments, also with ``scope: all``, and the app's role names count). Returns
    ("", delta) when an incremental run may go on (delta.count may be 0), else (why a full
    sync is needed, None)."""
    delta = Delta()
    for kind in kinds:
        link = state.delta_link(kind)
        if link is None:
            return (FullReason.NO_DELTA_LINK, f"no delta link for {kind}"), None
        delta.changes[kind], delta.links[kind] = conn.graph.delta_changes(link)
    assignments = None
    if config.source.service_principal_id and (config.source.scope == "assigned" or app_roles):
        assignments = read_assignments(conn.graph, config.source, app_roles)
        if config.source.scope == "assigned":
            delta.assigned = assignments
    digest = assignments.digest if assignments else ""
    if digest != (state.get_meta("assignments_digest") or ""):
        return (FullReason.ASSIGNMENTS_CHANGED, FullReason.ASSIGNMENTS_CHANGED.value), None
    return None, delta


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
        snapshots = _collect((target_user(r, mappings) for r in listing), "target", progress)
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
            snapshots.extend(target_user(r, mappings) for r in found
                             if str(r.get("id")) not in seen)
            seen.update(str(r.get("id")) for r in found)
        if resource is not None and str(resource.get("id")) not in seen:
            seen.add(str(resource["id"]))
            snapshots.append(target_user(resource, mappings))
    present = {u.source_id for u in directory.users}
    gone = {sid for sid in changed if sid in links and sid not in present}
    for sid in sorted(gone):
        if links[sid] in seen:
            continue
        resource = conn.scim.get_user(links[sid])
        if resource is not None and str(resource.get("id")) not in seen:
            seen.add(str(resource["id"]))
            snapshots.append(target_user(resource, mappings))
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


def _delta_kinds(config: Config, mappings: Mappings) -> dict[str, list[str]]:
    """Which Graph delta rounds a run tracks, with their ``$select``."""
    kinds = {"users": mappings.graph_select() +
             (["manager"] if mappings.manager_mapping is not None else [])}
    if mappings.group or config.source.scope == "assigned" or mappings.uses_app_roles:
        kinds["groups"] = sorted({*mappings.group_select(), "members"})
    return kinds


Why = tuple[FullReason, str]  # why a run reads everything, and the text it shows
INCREMENTAL_MIN_READS = 25
NO_CHANGES = "no directory changes"


#: The state key of the default domain the last run's mappings evaluated DefaultDomain() to.
DEFAULT_DOMAIN_META = "default_domain"


def full_sync_reason(state: State, digest: str, full: bool, now: float,
                     domain: str | None = None) -> Why | None:
    """Why this run must read everything (None: an incremental run may do). ``domain``:
    the tenant's default domain when the mappings call ``DefaultDomain()`` (a change
    re-evaluates every user, as a mapping change does)."""
    if full:
        return FullReason.REQUESTED, FullReason.REQUESTED.value
    if state.delta_link("users") is None:
        return FullReason.FIRST_RUN, FullReason.FIRST_RUN.value
    if state.get_meta("settings_digest") != digest:
        return FullReason.SETTINGS_CHANGED, FullReason.SETTINGS_CHANGED.value
    before = state.get_meta(DEFAULT_DOMAIN_META)
    if domain is not None and before is not None and before != domain:
        return (FullReason.DEFAULT_DOMAIN_CHANGED,
                f"the tenant's default domain changed from {before} to {domain} "
                f"(DefaultDomain())")
    last = state.last_run()
    if last is not None and last["status"] not in ("success", "incremental", "failed"):
        return FullReason.LAST_RUN, f"the last run ended with status {last['status']!r}"
    if any(e["next_retry"] <= now for e in state.escrowed("group").values()):
        return FullReason.GROUP_ESCROW_DUE, FullReason.GROUP_ESCROW_DUE.value
    return None


@dataclass
class Ask:
    """What a sync asks of its inputs."""

    digest: str                          # the settings digest
    waiting: dict[str, dict[str, Any]]   # escrowed users not due yet
    full: bool = False
    left_quarantine: bool = False
    plan_out: bool = False
    retry_now: bool = False


@dataclass
class Choice:
    """The inputs a run planned from, and why: ``reading`` is None when the directory did
    not change (nothing to plan); ``starts`` are the delta links to keep once the run
    finishes; ``quick`` is the snapshot path's plan (it brings the snapshot up to date)."""

    reading: Reading | None
    mode: str
    reason: str
    full_reason: FullReason | None
    starts: dict[str, str]
    quick: QuickPlan | None = None


def _forced(run: RunContext, ask: Ask) -> Why | None:
    """A full read the run's own settings or state call for (before Graph is asked)."""
    if ask.left_quarantine:
        return FullReason.LEFT_QUARANTINE, FullReason.LEFT_QUARANTINE.value
    if ask.plan_out:
        return FullReason.PLAN_FILE, FullReason.PLAN_FILE.value
    why = full_sync_reason(run.state, ask.digest, ask.full, run.clock(),
                           run.mappings.default_domain)
    if why is None and ask.retry_now and run.state.escrowed("group"):
        return FullReason.RETRY_NOW, FullReason.RETRY_NOW.value
    return why


def _probe(run: RunContext, conn: Connections, kinds: dict[str, list[str]],
           waiting: dict[str, dict[str, Any]]) -> tuple[Why | None, Delta | None]:
    """Follow the delta links; an expired one means starting over with a full read."""
    try:
        why, delta = _probe_changes(conn, run.config, run.state, kinds,
                                    run.mappings.uses_app_roles)
    except DeltaExpired as exc:
        return (FullReason.DELTA_EXPIRED, f"{exc}: starting over"), None
    if delta is not None:
        delta.retry = {sid for sid in run.state.escrowed("user") if sid not in waiting}
    return why, delta


def _snapshot_attempt(run: RunContext, conn: Connections, delta: Delta, ask: Ask,
                      max_reads: int) -> tuple[QuickPlan | str, float]:
    """Plan from the snapshot, or say why it cannot (and how long it took)."""
    config, mappings, state = run.config, run.mappings, run.state
    started = time.monotonic()
    inputs = SnapshotInputs(
        delta.assigned, config.source.nested_groups,
        lambda user: [target_user(r, mappings) for r in _find_target(conn, mappings, user)],
        lambda: _target_groups(conn, mappings), max_reads)
    attempt = plan_from_snapshot(state, delta, mappings, ask.digest,
                                 plan_options(config, state.links("user")),
                                 user_rule(config.target), inputs)
    return attempt, time.monotonic() - started


def _too_many_reads(run: RunContext, delta: Delta, trusted: bool, max_reads: int) -> Why | None:
    """Reading k users one by one beats listing them all (two listings of ⌈n / page⌉
    pages) only while k is small."""
    changed = delta.changed_user_ids()
    if trusted:  # what the snapshot holds need not be read
        changed -= set(run.state.applied(sorted(changed)))
    if len(changed) <= max_reads:
        return None
    return FullReason.TOO_MANY_READS, (f"{len(changed)} changed users to read: listing the "
                                       "target is cheaper than reading them one by one")


def choose_reading(run: RunContext, conn: Connections, ask: Ask) -> Choice:
    """Gather a sync's inputs the cheapest way that gives the same plan as a full read:
    nothing when the directory did not change; the snapshot path; the read path; or a
    full read of both sides (the first run, --full, a plan file, changed settings, an
    expired delta link, too many users to read one by one, …). A real run keeps what it
    reads in the snapshot (trusted again only once the run finishes)."""
    config, mappings, state = run.config, run.mappings, run.state
    kinds = _delta_kinds(config, mappings)
    why, delta = _forced(run, ask), None
    if why is None:
        why, delta = _probe(run, conn, kinds, ask.waiting)
    if delta is not None and delta.count == 0 and not delta.retry:
        return Choice(None, "incremental", NO_CHANGES, None, delta.links)
    links = state.links("user")
    trusted = state.get_meta(SNAPSHOT_META) == ask.digest
    # under 25 reads it hardly matters; above two listings, listing is cheaper
    max_reads = max(INCREMENTAL_MIN_READS, 2 * -(-len(links) // config.target.page_size))
    quick, why_not, seconds = None, "", 0.0
    if delta is not None:
        attempt, seconds = _snapshot_attempt(run, conn, delta, ask, max_reads)
        if isinstance(attempt, QuickPlan):
            quick = attempt
        else:
            why_not = attempt
            why = _too_many_reads(run, delta, trusted, max_reads)
            delta = None if why else delta
    writer = None if run.dry_run else SnapshotWriter(state, run.run_id)
    if writer is not None:
        state.delete_meta(SNAPSHOT_META)  # trusted again once this run finishes
    if delta is not None and quick is not None:
        reading = Reading(quick.plan, {"plan": seconds},
                          state.get_meta("assignments_digest") or "", quick.before)
        return Choice(reading, "incremental", delta.describe(), None, delta.links, quick)
    if delta is not None:
        def known(ids: list[str]) -> dict[str, TargetUser]:
            return stored_targets(state, ids, mappings) if trusted else {}

        reading = read_and_plan_changes(config, mappings, conn, links,
                                        delta.changed_user_ids(), run.progress, writer, known)
        choice = Choice(reading, "incremental",
                        f"{delta.describe()}; the directory was read ({why_not})", None,
                        delta.links)
    else:
        # taken before the read (a change made meanwhile is seen by the next run); the
        # users' link comes from the read itself when it is a delta round (the manager)
        by_delta = "users" if mappings.manager_mapping is not None else ""
        starts = {} if run.dry_run else {
            kind: conn.graph.delta_start(kind, select) for kind, select in kinds.items()
            if kind != by_delta}
        read_links: dict[str, str] = {}
        reading = read_and_plan(config, mappings, conn, run.progress, links, writer,
                                read_links)
        if not run.dry_run:
            starts.update(read_links)
        reason, text = why if why else (FullReason.REQUESTED, "")
        choice = Choice(reading, "full", text, reason, starts)
    if writer is not None:
        writer.finish()
    return choice


@dataclass
class Subject:
    """What reading one user saw, for ``explain`` to show and ``provision`` to go on with:
    the directory object, the scope decision (every assignment and scoping clause), the
    assigned groups holding the user, and the matching attempts in precedence order."""

    user: dict[str, Any]
    scope: dict[str, Any]
    member_of: list[str]
    attempts: list[dict[str, Any]]


def _graph_user(conn: Connections, mappings: Mappings, who: str) -> dict[str, Any]:
    params = {"$select": ",".join(mappings.graph_select())}
    if mappings.manager_mapping is not None:
        params["$expand"] = "manager($select=id)"
    try:
        return conn.graph.get(f"/users/{quote(who, safe='@')}", params)
    except SourceError as exc:
        if "404" in str(exc):
            raise ConfigError(f"{who}: no such user in the directory") from exc
        raise


def _one_user_scope(config: Config, mappings: Mappings, conn: Connections,
                    user: dict[str, Any]) -> tuple[dict[str, Any], list[str], str | None]:
    """The scope decision for one user, with every reason; the assigned groups holding it;
    and why memberships leave it out (:func:`member_reason`)."""
    uid = str(user["id"]).lower()
    scope: dict[str, Any] = {"mode": config.source.scope, "in_scope": True, "reasons": []}
    member_of: list[str] = []
    why = None
    if config.source.scope == "assigned":
        assigned = read_assignments(conn.graph, config.source)
        for gid in sorted(assigned.groups):
            members = conn.graph.iter_members(gid, transitive=config.source.nested_groups)
            if any(str(m["id"]).lower() == uid and m.get("@odata.type", USER_TYPE) == USER_TYPE
                   for m in members):
                member_of.append(gid)
        why = member_reason(assigned, uid, bool(member_of))
        scope["reasons"] = [why] if why else (
            ["assigned to the application directly"] if uid in assigned.users else []) + \
            [f"member of assigned group {gid}" for gid in member_of]
    clauses = mappings.user_scope.explain(source_reader(user)) if mappings.user_scope else []
    scope["user_scope"] = [{"clause": c, "result": r} for c, r in clauses]
    if why is not None:
        scope["in_scope"] = False
    if mappings.user_scope and not mappings.user_scope.matches(source_reader(user)):
        scope["in_scope"] = False
        scope["reasons"].append(FILTERED_OUT)
    return scope, member_of, why


def _match_one(conn: Connections, mappings: Mappings, desired: DesiredUser,
               linked: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Find one user in the target as a sync would: the state's link first, then each
    matching attribute in precedence order until one finds someone."""
    attempts: list[dict[str, Any]] = []
    found: dict[str, dict[str, Any]] = {}
    if linked:
        resource = conn.scim.get_user(linked)
        attempts.append({"by": "state link", "value": linked,
                         "found": [linked] if resource else []})
        if resource:
            found[str(resource["id"])] = resource
    for m in mappings.user_match:
        value = dict(desired.match_keys).get(m.target)
        if value is None:
            attempts.append({"by": m.target, "value": None, "found": [],
                             "note": "no value: this attribute cannot match"})
        elif found:
            attempts.append({"by": m.target, "value": value, "found": [],
                             "note": "not tried: an earlier attempt found the user"})
        else:
            hits = conn.scim.find_users(m.path.qualified_attr, str(value))
            attempts.append({"by": m.target, "value": value,
                             "found": [str(h.get("id")) for h in hits]})
            found.update((str(hit["id"]), hit) for hit in hits)
    return attempts, list(found.values())


def read_one_user(config: Config, mappings: Mappings, conn: Connections, who: str,
                  links: dict[str, str]) -> Reading:
    """One user (UPN or object id) from both sides, planned alone as a sync would plan it
    (``explain``, ``provision``); a manager already provisioned is read so the plan can
    reference it. ``Reading.subject`` holds what was seen. Nothing is written."""
    started = time.monotonic()
    user = _graph_user(conn, mappings, who)
    if mappings.uses_app_roles:
        roles = user_app_roles(conn.graph, config.source, str(user["id"]).lower())
        if roles is not None:
            user[APP_ROLE_ASSIGNMENTS] = roles
    scope, member_of, why = _one_user_scope(config, mappings, conn, user)
    desired = scoped_user(user, mappings, why, user_rule(config.target))
    attempts, found = _match_one(conn, mappings, desired, links.get(desired.source_id))
    context = [desired]
    if desired.manager and desired.manager in links:
        try:
            manager = conn.graph.get(f"/users/{desired.manager}",
                                     {"$select": ",".join(mappings.graph_select())})
            context.append(desired_user(manager, mappings))
        except SourceError:
            pass  # gone: the plan shows the manager as not provisioned
    targets = [target_user(r, mappings) for r in found]
    plan = build_plan([desired], targets, mappings, options=plan_options(config, links),
                      context=context)
    return Reading(plan, {"plan": time.monotonic() - started}, "",
                   {t.id: t for t in targets}, Subject(user, scope, member_of, attempts))

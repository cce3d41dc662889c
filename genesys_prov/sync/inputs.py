"""Every way of gathering a plan's inputs, each returning a :class:`Reading`: the full read of
both sides, the read path of an incremental run (the directory read, the changed users' target
state from the snapshot or one GET each), the snapshot path (no directory read), and one
user (explain, provision). :func:`choose_reading` decides which one a run takes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from genesys_prov.config import Config
from genesys_prov.errors import (
    SafetyError,
    SourceError,
)
from genesys_prov.mapping.genesys_rules import user_rule
from genesys_prov.mapping.mappings import DesiredUser, Mappings
from genesys_prov.plan.build import build_plan, target_group, target_user
from genesys_prov.plan.model import (
    Plan,
    PlanOptions,
    TargetGroup,
    TargetUser,
)
from genesys_prov.source.delta import Delta
from genesys_prov.source.scope import Directory, Keeper, Progress, read_assignments, read_directory
from genesys_prov.state.db import State
from genesys_prov.sync.connections import Connections

log = logging.getLogger(__name__)


Known = Callable[[list[str]], dict[str, TargetUser]]


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


def _read_directory(config: Config, mappings: Mappings, conn: Connections,
                    progress: Progress | None, keeper: Keeper | None = None) -> Directory:
    """Read the directory (with the Genesys data rules applied). A read that fails after
    some pages is a safety stop: it must never look like a smaller directory."""
    try:
        return read_directory(conn.graph, config.source, mappings, user_rule(config.target),
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
    listing = (target_user(r, mappings) for r in conn.scim.list_users(mappings.target_attributes()))
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


INCREMENTAL_MIN_READS = 25

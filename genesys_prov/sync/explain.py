"""``genesys-prov explain USER``: why one user is (or would be) the way they are in the
target — without writing anything.

The answer is data (a dict): the source values read, the scope decision with every
assignment and scoping clause, each mapping's value, the matching attempts in precedence
order and what they found, and the planned change with old → new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from genesys_prov.config import Config
from genesys_prov.errors import AuthError, ConfigError, SourceError
from genesys_prov.mapping import expressions
from genesys_prov.mapping.genesys_rules import apply_genesys_rules
from genesys_prov.mapping.mappings import (
    ENTRA_ALIASES,
    desired_user,
    evaluate,
    load_mappings,
    read_source,
)
from genesys_prov.plan.build import build_plan, target_user
from genesys_prov.plan.model import REDACT_MARK, GroupAction, GroupChange, MemberRef, Plan
from genesys_prov.source.scope import DEFAULT_ACCESS_REASON, USER_TYPE, read_assignments
from genesys_prov.state.db import RunLock, State
from genesys_prov.sync.bookkeeping import outcome_records
from genesys_prov.sync.check import run_check
from genesys_prov.sync.connections import Connections, connect
from genesys_prov.sync.inputs import plan_options
from genesys_prov.target.apply import FAILURE, Applier


def _show(value: Any, redacted: bool) -> Any:
    if value is expressions.IGNORE:
        return "(IgnoreFlowIfNullOrEmpty: not sent)"
    return REDACT_MARK if redacted and value is not None else value


def explain_user(config: Config, who: str) -> dict[str, Any]:
    """Explain one user (UPN or object id) end to end; reads both sides, writes nothing.
    The user is planned alone: a manager who is created in the same run of a real sync
    shows here as "not provisioned".

    Example::

        explain_user(load_config("genesys-prov.yaml"), "ada@contoso.com")["plan"]
    """
    return investigate(config, who).data


@dataclass
class Investigation:
    """What ``explain`` found, with the objects ``provision`` goes on with."""

    data: dict[str, Any]
    conn: Connections
    plan: Plan
    member_of: list[str] = field(default_factory=list)  # assigned groups holding the user


def investigate(config: Config, who: str) -> Investigation:
    """Read one user from both sides and plan it alone (no write)."""
    mappings = load_mappings(config.mappings_path)
    conn = connect(config)
    member_of: list[str] = []
    params = {"$select": ",".join(mappings.graph_select())}
    if mappings.manager_mapping is not None:
        params["$expand"] = "manager($select=id)"
    try:
        user = conn.graph.get(f"/users/{quote(who, safe='@')}", params)
    except SourceError as exc:
        if "404" in str(exc):
            raise ConfigError(f"{who}: no such user in the directory") from exc
        raise
    uid = str(user["id"]).lower()

    # scope
    scope: dict[str, Any] = {"mode": config.source.scope, "in_scope": True, "reasons": []}
    if config.source.scope == "assigned":
        assigned = read_assignments(conn.graph, config.source)
        via = []
        if uid in assigned.users:
            via.append("assigned to the application directly")
        for gid in sorted(assigned.groups):
            members = conn.graph.iter_members(gid, transitive=config.source.nested_groups)
            if any(str(m["id"]).lower() == uid and m.get("@odata.type", USER_TYPE) == USER_TYPE
                   for m in members):
                via.append(f"member of assigned group {gid}")
                member_of.append(gid)
        if not via:
            scope["in_scope"] = False
            via.append(DEFAULT_ACCESS_REASON if uid in assigned.default_only_users
                       else "not assigned to the application (directly or by a group)")
        scope["reasons"] = via
    clauses = mappings.user_scope.explain(lambda name: read_source(user, name)) \
        if mappings.user_scope else []
    scope["user_scope"] = [{"clause": c, "result": r} for c, r in clauses]
    if mappings.user_scope and not mappings.user_scope.matches(
            lambda name: read_source(user, name)):
        scope["in_scope"] = False
        scope["reasons"].append("filtered out by user_scope")

    # mappings
    values = []
    for m in mappings.user:
        entry: dict[str, Any] = {"target": m.target, "kind": m.kind, "apply": m.apply}
        if m.expression is not None:
            entry["expression"] = m.expression.text
        elif m.source is not None:
            entry["source"] = m.source
        if m.is_reference:
            entry["value"] = (user.get("manager") or {}).get("id") \
                if isinstance(user.get("manager"), dict) else None
            entry["note"] = "a reference: resolved to the target id of that user"
        else:
            try:
                entry["value"] = _show(evaluate(m, user, scope["in_scope"]), m.redacted)
            except Exception as exc:
                entry["error"] = str(exc)
        values.append(entry)

    desired = desired_user(user, mappings, in_scope=scope["in_scope"],
                           scope_reason="; ".join(scope["reasons"]) or None)
    if config.target.flavor == "genesys":
        desired = apply_genesys_rules(desired, config.target.phone_default_region)

    # matching
    attempts: list[dict[str, Any]] = []
    found: dict[str, dict[str, Any]] = {}
    with State.open(config.state_dir) as state:
        links = state.links("user")
    linked = links.get(desired.source_id)
    if linked:
        try:
            resource = conn.scim.get_user(linked)
        except AuthError:
            raise
        attempts.append({"by": "state link", "value": linked,
                         "found": [linked] if resource else []})
        if resource:
            found[str(resource["id"])] = resource
    for m in mappings.user_match:
        value = dict(desired.match_keys).get(m.target)
        if value is None:
            attempts.append({"by": m.target, "value": None, "found": [],
                             "note": "no value: this attribute cannot match"})
            continue
        if found:
            attempts.append({"by": m.target, "value": value, "found": [],
                             "note": "not tried: an earlier attempt found the user"})
            continue
        hits = conn.scim.find_users(m.path.qualified_attr, str(value))
        attempts.append({"by": m.target, "value": value,
                         "found": [str(h.get("id")) for h in hits]})
        for hit in hits:
            found[str(hit["id"])] = hit

    context = [desired]
    if desired.manager and desired.manager in links:
        # the manager is provisioned already: read it so the plan can reference it
        try:
            manager = conn.graph.get(f"/users/{desired.manager}",
                                     {"$select": ",".join(mappings.graph_select())})
            context.append(desired_user(manager, mappings))
        except SourceError:
            pass  # gone: the plan shows the manager as not provisioned
    plan = build_plan([desired], [target_user(r, mappings) for r in found.values()], mappings,
                      options=plan_options(config, links), context=context)
    hidden = {ENTRA_ALIASES.get(n, n).split(".", 1)[0]
              for m in mappings.user if m.redacted for n in m.source_names()}
    source = {k: (REDACT_MARK if k in hidden and v is not None else v)
              for k, v in user.items() if not k.startswith("@")}
    return Investigation({
        "user": {"id": user["id"], "userPrincipalName": user.get("userPrincipalName"),
                 "source": source},
        "scope": scope,
        "mappings": values,
        "matching": attempts,
        "plan": {"changes": [c.data() for c in plan.changes],
                 "skipped": [s.data() for s in plan.skipped],
                 "failures": [f.data() for f in plan.failures],
                 "unchanged": plan.unchanged == 1},
    }, conn, plan, member_of)


def provision_user(config: Config, who: str, dry_run: bool = False) -> dict[str, Any]:
    """Entra's "provision on demand" for one user: test connection, import, scope, match,
    action — each step with its outcome — then the user's groups (adds only: other members
    are never touched here). Logged in the provisioning log like any run.

    Example::

        provision_user(load_config("genesys-prov.yaml"), "ada@contoso.com")["steps"]
    """
    steps: list[dict[str, Any]] = []
    check = run_check(config)
    steps.append({"step": "test connection", "ok": check.ok,
                  "detail": "; ".join(f"{s.name}: {s.detail}" for s in check.steps)})
    if not check.ok:
        return {"steps": steps, "dry_run": dry_run}
    found = investigate(config, who)
    data = found.data
    steps.append({"step": "import", "ok": True,
                  "detail": f"read {data['user']['userPrincipalName']} "
                            f"({len(data['user']['source'])} attributes)"})
    scope = data["scope"]
    steps.append({"step": "scope", "ok": True, "in_scope": scope["in_scope"],
                  "detail": "; ".join(scope["reasons"]) or "in scope"})
    match = [a for a in data["matching"] if a["found"]]
    steps.append({"step": "match", "ok": True,
                  "detail": (f"matched by {match[0]['by']}: {', '.join(match[0]['found'])}"
                             if match else "no target user matches")})
    plan = found.plan
    action = {"step": "action", "ok": True, "changes": data["plan"]["changes"],
              "detail": "; ".join(f"{c['action']} ({len(c['attributes'])} attributes)"
                                  for c in data["plan"]["changes"]) or
              "nothing to do" + (": " + "; ".join(s["reason"] for s in data["plan"]["skipped"])
                                 if data["plan"]["skipped"] else "")}
    steps.append(action)
    if dry_run or not plan.changes:
        return {"steps": steps, "dry_run": dry_run, "explain": data}
    mappings = load_mappings(config.mappings_path)
    with RunLock(config.state_dir), State.open(config.state_dir) as state:
        run_id = state.start_run(False)
        applier = Applier(found.conn.scim, [m.target for m in mappings.user_match],
                          config.target.member_batch_size)
        outcomes = [applier.apply_one(c) for c in plan.changes]
        target_id = None
        for outcome in outcomes:
            state.log(outcome_records(run_id, outcome))
            if outcome.status != FAILURE and outcome.target_id:
                state.link("user", outcome.change.source_id, outcome.target_id)
                target_id = outcome.target_id
        action["ok"] = all(o.status != FAILURE for o in outcomes)
        action["detail"] = "; ".join(f"{o.change.action.value}: {o.status}"
                                     + (f" ({o.error})" if o.error else "") for o in outcomes)
        groups_step: dict[str, Any] = {"step": "groups", "ok": True, "added": []}
        if target_id and mappings.group and found.member_of:
            names = {str(found.conn.graph.get(f"/groups/{gid}", {"$select": "id,displayName"})
                         .get("displayName")): gid for gid in found.member_of}
            for group in found.conn.scim.list_groups(["displayName", "members"]):
                name = str(group.get("displayName"))
                members = {str(m.get("value")) for m in group.get("members") or []}
                if name in names and target_id not in members:
                    change = GroupChange(GroupAction.UPDATE, name, names[name],
                                         str(group["id"]),
                                         add=(MemberRef(target_id, None, who),))
                    outcome = applier.apply_group(change)
                    state.log(outcome_records(run_id, outcome))
                    groups_step["added"].append(name)
                    groups_step["ok"] = groups_step["ok"] and outcome.status != FAILURE
        groups_step["detail"] = ("added to " + ", ".join(groups_step["added"])
                                 if groups_step["added"] else "no group to add")
        steps.append(groups_step)
        state.finish_run(run_id, "success" if all(s["ok"] for s in steps) else "failed",
                         None, plan.counts())
    return {"steps": steps, "dry_run": dry_run, "explain": data}

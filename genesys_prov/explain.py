"""``genesys-prov explain USER``: why one user is (or would be) the way they are in the
target — without writing anything.

The answer is data (a dict): the source values read, the scope decision with every
assignment and scoping clause, each mapping's value, the matching attempts in precedence
order and what they found, and the planned change with old → new.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from genesys_prov import expressions
from genesys_prov.config import Config
from genesys_prov.directory import DEFAULT_ACCESS_REASON, USER_TYPE, read_assignments
from genesys_prov.errors import AuthError, ConfigError, SourceError
from genesys_prov.mapping import (
    ENTRA_ALIASES,
    desired_user,
    evaluate,
    load_mappings,
    read_source,
)
from genesys_prov.plan import REDACT_MARK, build_plan, snapshot
from genesys_prov.rules import apply_genesys_rules
from genesys_prov.state import State
from genesys_prov.sync import connect, plan_options


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
    mappings = load_mappings(config.mappings_path)
    conn = connect(config)
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

    plan = build_plan([desired], [snapshot(r, mappings) for r in found.values()], mappings,
                      options=plan_options(config, links))
    hidden = {ENTRA_ALIASES.get(n, n).split(".", 1)[0]
              for m in mappings.user if m.redacted for n in m.source_names()}
    source = {k: (REDACT_MARK if k in hidden and v is not None else v)
              for k, v in user.items() if not k.startswith("@")}
    return {
        "user": {"id": user["id"], "userPrincipalName": user.get("userPrincipalName"),
                 "source": source},
        "scope": scope,
        "mappings": values,
        "matching": attempts,
        "plan": {"changes": [c.data() for c in plan.changes],
                 "skipped": [s.data() for s in plan.skipped],
                 "failures": [f.data() for f in plan.failures],
                 "unchanged": plan.unchanged == 1},
    }

"""``genesys-prov provision USER``: Entra's "provision on demand" for one user — test
connection, import, scope, match, action, each step with its outcome — then the user's
groups (adds only: other members are never touched here)."""

from __future__ import annotations

from typing import Any

from genesys_prov.config import Config
from genesys_prov.mapping.mappings_file import load_mappings
from genesys_prov.plan.model import GroupAction, GroupChange, MemberRef
from genesys_prov.sync.bookkeeping import Bookkeeper
from genesys_prov.sync.check import CheckResult, run_check
from genesys_prov.sync.context import RunContext, run_context
from genesys_prov.sync.explain import Investigation, investigate, named
from genesys_prov.sync.run import match_attributes
from genesys_prov.target.apply import FAILURE, Applier

Step = dict[str, Any]


def provision_user(config: Config, who: str, dry_run: bool = False) -> dict[str, Any]:
    """Entra's "provision on demand" for one user: test connection, import, scope, match,
    action — each step with its outcome — then the user's groups (adds only: other members
    are never touched here). Logged in the provisioning log like any run, and recorded as a
    sync records it (links, escrow).

    Example::

        provision_user(load_config("genesys-prov.yaml"), "ada@contoso.com")["steps"]
    """
    check = run_check(config)
    steps: list[Step] = [_connection_step(check)]
    if not check.ok:
        return {"steps": steps, "dry_run": dry_run}
    found = investigate(config, who)
    steps += _read_steps(found)
    if dry_run or not found.plan.changes:
        return {"steps": steps, "dry_run": dry_run, "explain": found.data}
    mappings = load_mappings(config.mappings_path)
    with run_context(config, mappings) as run:
        run.counts = found.plan.counts()
        applier = Applier(found.conn.scim, match_attributes(mappings),
                          config.target.member_batch_size)
        target_id = _act(run, applier, found, steps[-1])
        steps.append(_add_to_groups(run, applier, found, target_id, who))
        run.status = "success" if all(s["ok"] for s in steps) else "failed"
    return {"steps": steps, "dry_run": dry_run, "explain": found.data}


def _connection_step(check: CheckResult) -> Step:
    """The connection test as one step: one short line (the checks that failed or warned,
    else how many passed); ``checks`` has each check with its detail."""
    failed = [s for s in check.steps if not s.ok]
    warned = [s for s in check.steps if s.ok and s.warning]
    if failed:
        detail = "; ".join(f"{s.name} FAILED: {s.detail}" for s in failed)
    else:
        detail = f"Graph and the target answered ({len(check.steps)} checks passed)"
    detail += "".join(f"; warning: {s.name}: {s.detail}" for s in warned)
    return {"step": "test connection", "ok": check.ok, "detail": detail,
            "checks": [{"name": s.name, "ok": s.ok, "warning": s.warning, "detail": s.detail}
                       for s in check.steps]}


def _read_steps(found: Investigation) -> list[Step]:
    """The import, scope, match and (planned) action steps."""
    data = found.data
    scope = data["scope"]
    match = [a for a in data["matching"] if a["found"]]
    changes, skipped = data["plan"]["changes"], data["plan"]["skipped"]
    nothing = "nothing to do" + (": " + "; ".join(s["reason"] for s in skipped)
                                 if skipped else "")
    return [
        {"step": "import", "ok": True,
         "detail": f"read {data['user']['userPrincipalName']} "
                   f"({len(data['user']['source'])} attributes)"},
        {"step": "scope", "ok": True, "in_scope": scope["in_scope"],
         "detail": named("; ".join(scope["reasons"]), data["names"]) or "in scope"},
        {"step": "match", "ok": True,
         "detail": (f"matched by {match[0]['by']}: {', '.join(match[0]['found'])}"
                    if match else "no target user matches")},
        {"step": "action", "ok": True, "changes": changes,
         "detail": "; ".join(f"{c['action']} ({len(c['attributes'])} attributes)"
                             for c in changes) or nothing},
    ]


def _act(run: RunContext, applier: Applier, found: Investigation, action: Step) -> str | None:
    """Apply the user's change; returns the user's target id when it succeeded."""
    outcomes = [applier.apply_one(c) for c in found.plan.changes]
    target_id = None
    with Bookkeeper(run.state, run.run_id, run.config.safety, run.clock) as record:
        for outcome in outcomes:
            record(outcome)
            if outcome.status != FAILURE and outcome.target_id:
                target_id = outcome.target_id
    action["ok"] = all(o.status != FAILURE for o in outcomes)
    action["detail"] = "; ".join(f"{o.change.action.value}: {o.status}"
                                 + (f" ({o.error})" if o.error else "") for o in outcomes)
    return target_id


def _add_to_groups(run: RunContext, applier: Applier, found: Investigation,
                   target_id: str | None, who: str) -> Step:
    """Add the user to the assigned groups that hold it in the directory (adds only)."""
    step: Step = {"step": "groups", "ok": True, "added": []}
    if target_id and run.mappings.group and found.member_of:
        graph, scim = found.conn.graph, found.conn.scim
        names = {str(graph.get(f"/groups/{gid}", {"$select": "id,displayName"})
                     .get("displayName")): gid for gid in found.member_of}
        for group in scim.list_groups(["displayName", "members"]):
            name = str(group.get("displayName"))
            members = {str(m.get("value")) for m in group.get("members") or []}
            if name in names and target_id not in members:
                change = GroupChange(GroupAction.UPDATE, name, names[name], str(group["id"]),
                                     add=(MemberRef(target_id, None, who),))
                outcome = applier.apply_group(change)
                with Bookkeeper(run.state, run.run_id, run.config.safety,
                                run.clock) as record:
                    record(outcome)
                step["added"].append(name)
                step["ok"] = step["ok"] and outcome.status != FAILURE
    step["detail"] = ("added to " + ", ".join(step["added"]) if step["added"]
                      else "no group to add")
    return step

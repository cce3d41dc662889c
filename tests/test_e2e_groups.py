"""End to end, issue 3: assigned scope, scoping filters, groups, memberships and managers,
against the project's emulators (Genesys flavor) — asserting what Genesys holds and what
it was sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genesys_prov.sandbox import Sandbox
from tests.conftest import run_cli, write_config

pytestmark = pytest.mark.e2e
DEFAULT_ACCESS = "00000000-0000-0000-0000-000000000000"
MANAGER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def configure(sb: Sandbox, tmp_path: Path, mappings: str | None = None,
              source: dict[str, Any] | None = None, **target: Any) -> str:
    config = sb.config()
    config["source"].update(source or {})
    config["target"].update(target)
    return str(write_config(tmp_path, config, mappings))


def sync(cfg: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("--config", cfg, "sync", "--output", "json", *extra)
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def expected_scope(sb: Sandbox, nested: bool = False) -> set[str]:
    """Independently of the tool: enabled users assigned directly (not only Default
    Access) or members of an assigned group — ids."""
    users = {u["id"]: u for u in sb.graph.users}
    groups = {g["id"]: g for g in sb.graph.groups}
    direct: set[str] = set()
    assigned_groups: set[str] = set()
    for a in sb.graph.app_role_assignments:
        if a["appRoleId"] == DEFAULT_ACCESS:
            continue
        (direct if a["principalType"] == "User" else assigned_groups).add(a["principalId"])

    def members(gid: str, seen: frozenset[str] = frozenset()) -> set[str]:
        out = set()
        for m in groups[gid]["members"]:
            if m in users:
                out.add(m)
            elif nested and m in groups and m not in seen:
                out |= members(m, seen | {gid})
        return out

    scope = set(direct)
    for gid in assigned_groups:
        scope |= members(gid)
    return {uid for uid in scope if users[uid].get("accountEnabled", True)}


def held(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {u["userName"].lower(): u for u in sb.genesys.users.values()}


def upn(sb: Sandbox, uid: str) -> str:
    return next(u["userPrincipalName"].lower() for u in sb.graph.users if u["id"] == uid)


def group_members(sb: Sandbox, name: str) -> set[str]:
    group = next(g for g in sb.genesys.groups.values() if g["displayName"] == name)
    ids = {m["value"] for m in group.get("members", [])}
    return {u["userName"].lower() for u in sb.genesys.users.values() if u["id"] in ids}


def test_assigned_scope_groups_and_managers_in_one_run(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    unmanaged = {u["userName"].lower() for u in sandbox.genesys.users.values()
                 if u["userName"].lower() not in {x["userPrincipalName"].lower()
                                                  for x in sandbox.graph.users}}
    code, out = sync(cfg)
    assert code == 0, out["plan"]["failures"]
    scope = expected_scope(sandbox)
    in_genesys = {name for name, u in held(sandbox).items() if u["active"]} - unmanaged
    assert in_genesys == {upn(sandbox, uid) for uid in scope}

    # every mapped group holds exactly its in-scope members
    by_id = {u["id"]: u for u in sandbox.graph.users}
    for group in sandbox.graph.groups:
        if not any(g["displayName"] == group["displayName"]
                   for g in sandbox.genesys.groups.values()):
            continue
        want = {upn(sandbox, m) for m in group["members"] if m in by_id and m in scope}
        assert group_members(sandbox, group["displayName"]) == want, group["displayName"]

    # managers point at the right users, set in the create itself
    genesys = held(sandbox)
    for uid in scope:
        manager = by_id[uid].get("manager")
        target = genesys[upn(sandbox, uid)]
        ref = (target.get(MANAGER) or {}).get("manager")
        if manager in scope:
            assert ref is not None and ref["value"] == genesys[upn(sandbox, manager)]["id"]
        else:
            assert ref is None
    posts = [r for r in sandbox.genesys.writes() if r.method == "POST"]
    order = [p.body["userName"].lower() for p in posts]
    for post in posts:
        manager_ref = (post.body.get(MANAGER) or {}).get("manager")
        if manager_ref:  # the manager was created (or existed) before this create
            manager_name = next(u["userName"].lower() for u in sandbox.genesys.users.values()
                                if u["id"] == manager_ref["value"])
            if manager_name in order:
                assert order.index(manager_name) < order.index(post.body["userName"].lower())
    user_patches = [r for r in sandbox.genesys.writes()
                    if r.method == "PATCH" and "/Users/" in r.path]
    assert len(user_patches) == out["plan"]["counts"]["update"] + \
        out["plan"]["counts"]["reactivate"]  # no second PATCH per created user

    # skipped: the Default-Access-only user and the group Genesys does not have
    reasons = {(s["kind"], s["identity"]): s["reason"] for s in out["plan"]["skipped"]}
    assert any("Default Access" in r for (k, _), r in reasons.items() if k == "user")
    assert "create it in Genesys" in reasons[("group", "Nested Team")]

    sandbox.genesys.reset_log()
    code, out = sync(cfg)
    assert code == 0
    assert out["plan"]["changes"] == [] and out["plan"]["group_changes"] == []
    assert sandbox.genesys.writes() == []


def test_request_economy(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    code, _ = sync(cfg, "--dry-run")
    assert code == 0
    graph_gets = [r for r in sandbox.graph.requests
                  if r.method == "GET" and r.path.startswith("/v1.0/")]
    assigned_groups = {a["principalId"] for a in sandbox.graph.app_role_assignments
                       if a["principalType"] == "Group"}
    # assignments + groups + one member listing per assigned group + users (with the
    # manager: one delta round, 200 users a page, not $expand's 100)
    assert len(graph_gets) == 3 + len(assigned_groups)
    users_call = next(r for r in graph_gets if r.path.endswith("/users/delta"))
    assert "manager" in users_call.query["$select"][0].split(",")
    assert "$expand" not in users_call.query
    genesys_gets = [r for r in sandbox.genesys.requests if r.method == "GET"]
    assert sorted(r.path.rsplit("/", 1)[1] for r in genesys_gets) == ["Groups", "Users", "Users"]
    # a real run reads the assignments once (their digest for the next run comes with it)
    sandbox.graph.requests.clear()
    assert sync(cfg)[0] == 0
    assert sum(r.path.endswith("/appRoleAssignedTo") for r in sandbox.graph.requests) == 1


def test_moving_a_user_between_groups_is_one_add_and_one_remove(sandbox: Sandbox,
                                                                 tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    sales = next(g for g in sandbox.graph.groups if g["displayName"] == "Sales Agents")
    support = next(g for g in sandbox.graph.groups if g["displayName"] == "Support Agents")
    scope = expected_scope(sandbox)
    mover = next(m for m in sales["members"] if m in scope and m not in support["members"])
    sandbox.graph.remove_group_member(sales["id"], mover)
    sandbox.graph.add_group_member(support["id"], mover)
    sandbox.genesys.reset_log()
    code, _ = sync(cfg)
    assert code == 0
    writes = sandbox.genesys.writes()
    assert all("/Groups/" in w.path for w in writes)
    ops = [op for w in writes for op in w.body["Operations"]]
    target_id = held(sandbox)[upn(sandbox, mover)]["id"]
    assert sorted(op["op"] for op in ops) == ["add", "remove"]
    add = next(op for op in ops if op["op"] == "add")
    remove = next(op for op in ops if op["op"] == "remove")
    assert add["value"] == [{"value": target_id}]
    assert remove["path"] == f'members[value eq "{target_id}"]'
    assert upn(sandbox, mover) in group_members(sandbox, "Support Agents")
    assert upn(sandbox, mover) not in group_members(sandbox, "Sales Agents")


def test_leaving_scope_deactivates_unless_skipped(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    support = next(g for g in sandbox.graph.groups if g["displayName"] == "Support Agents")
    scope = expected_scope(sandbox)
    leaver = next(m for m in support["members"] if m in scope)
    sandbox.graph.remove_group_member(support["id"], leaver)

    (tmp_path / "keep").mkdir()
    keep = configure(sandbox, tmp_path / "keep", source={"skip_out_of_scope_deletions": True})
    sandbox.genesys.reset_log()
    code, out = sync(keep, "--dry-run")
    assert out["plan"]["counts"]["deactivate"] == 0
    assert any("skip_out_of_scope_deletions" in s["reason"] for s in out["plan"]["skipped"])

    code, out = sync(cfg)
    assert code == 0
    (change,) = [c for c in out["plan"]["changes"] if c["action"] == "deactivate"]
    assert change["reason"] == "out of scope: not assigned to the application"
    assert held(sandbox)[upn(sandbox, leaver)]["active"] is False
    assert upn(sandbox, leaver) not in group_members(sandbox, "Support Agents")


def test_nested_groups_only_when_asked(sandbox: Sandbox, tmp_path: Path) -> None:
    nested = next(g for g in sandbox.graph.groups if g["displayName"] == "Nested Team")
    supervisors = next(g for g in sandbox.graph.groups if g["id"] in nested["members"])
    # Supervisors reach the app only through Nested Team
    sandbox.graph.app_role_assignments[:] = [
        a for a in sandbox.graph.app_role_assignments if a["principalId"] != supervisors["id"]]
    flat = configure(sandbox, tmp_path)
    _, out = sync(flat, "--dry-run")
    created = {c["identity"].lower() for c in out["plan"]["changes"] if c["action"] == "create"}
    sup_users = {upn(sandbox, m) for m in supervisors["members"]}
    assert not sup_users & created
    (tmp_path / "n").mkdir()
    deep = configure(sandbox, tmp_path / "n", source={"nested_groups": True})
    _, out = sync(deep, "--dry-run")
    created = {c["identity"].lower() for c in out["plan"]["changes"] if c["action"] == "create"}
    assert sup_users <= created
    assert any(r.path.endswith("/transitiveMembers") for r in sandbox.graph.requests)


def test_manager_assigned_later_is_fixed_by_the_next_run(sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    _, out = sync(cfg)
    warnings = [s for s in out["plan"]["skipped"] if s["kind"] == "manager"]
    assert warnings
    report = next(w for w in warnings if "nestor.wilke" in w["reason"])
    nestor = next(u for u in sandbox.graph.users
                  if u["userPrincipalName"].startswith("nestor.wilke"))
    sandbox.graph.app_role_assignments.append(
        {"principalId": nestor["id"], "principalType": "User",
         "appRoleId": "2a9c5e4b-7d1f-4c3e-8b6a-5f0d9e2c1a47"})
    sandbox.genesys.reset_log()
    code, out = sync(cfg)
    assert code == 0
    genesys = held(sandbox)
    nestor_id = genesys["nestor.wilke@contoso.com"]["id"]
    assert genesys[report["identity"].lower()][MANAGER]["manager"]["value"] == nestor_id
    patches = [w for w in sandbox.genesys.writes() if w.method == "PATCH"
               and w.path.endswith(genesys[report["identity"].lower()]["id"])]
    assert patches[0].body["Operations"] == [
        {"op": "replace", "path": f"{MANAGER}:manager", "value": {"value": nestor_id}}]


def test_removed_manager_is_cleared(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    genesys = held(sandbox)
    by_id = {u["id"]: u for u in sandbox.graph.users}
    scope = expected_scope(sandbox)
    user = next(by_id[uid] for uid in scope if by_id[uid].get("manager") in scope)
    sandbox.graph.set_user(user["id"], manager=None)
    sandbox.genesys.reset_log()
    assert sync(cfg)[0] == 0
    (write,) = sandbox.genesys.writes()
    assert write.body["Operations"] == [{"op": "remove", "path": f"{MANAGER}:manager"}]
    assert not (held(sandbox)[user["userPrincipalName"].lower()].get(MANAGER) or {}) \
        .get("manager")
    assert genesys  # the first sync created them


def test_member_batches_respect_the_batch_size(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path, member_batch_size=2)
    assert sync(cfg)[0] == 0
    patches = [w for w in sandbox.genesys.writes() if "/Groups/" in w.path]
    for patch in patches:
        members = sum(len(op["value"]) if op["op"] == "add" else 1
                      for op in patch.body["Operations"] if "members" in op["path"])
        assert members <= 2
    assert len(patches) > 3


def test_user_scope_filter(sandbox: Sandbox, tmp_path: Path) -> None:
    from genesys_prov.mapping.mappings_file import default_mappings_text

    mappings = default_mappings_text() + (
        "user_scope:\n  - - {attribute: department, operator: EQUALS, value: Sales}\n")
    cfg = configure(sandbox, tmp_path, mappings=mappings)
    _, out = sync(cfg, "--dry-run")
    by_upn = {u["userPrincipalName"].lower(): u for u in sandbox.graph.users}
    created = [c["identity"].lower() for c in out["plan"]["changes"] if c["action"] == "create"]
    assert created and all(by_upn[name].get("department") == "Sales" for name in created)


def test_bad_scope_operator_exits_2(sandbox: Sandbox, tmp_path: Path) -> None:
    from genesys_prov.mapping.mappings_file import default_mappings_text

    mappings = default_mappings_text() + (
        "user_scope:\n  - - {attribute: department, operator: EQUAL, value: Sales}\n")
    cfg = configure(sandbox, tmp_path, mappings=mappings)
    result = run_cli("--config", cfg, "sync", "--dry-run")
    assert result.exit_code == 2
    assert "user_scope[0][0]: unknown operator 'EQUAL'" in result.stderr
    assert sandbox.graph.requests == []


def test_check_reads_the_assignments(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    result = run_cli("--config", cfg, "check", "--output", "json")
    assert result.exit_code == 0
    steps = {s["name"]: s for s in json.loads(result.stdout)["steps"]}
    assert steps["graph: read app assignments"]["ok"]
    assert "assignment(s)" in steps["graph: read app assignments"]["detail"]

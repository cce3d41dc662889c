"""End to end, issue 5 (first part): state, links, lock, safety guards, provisioning log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genesys_prov.mapping.mappings_file import default_mappings_text
from genesys_prov.sandbox import Sandbox
from genesys_prov.state.db import RunLock, State
from tests.conftest import run_cli, write_config

pytestmark = pytest.mark.e2e


def configure(sb: Sandbox, tmp_path: Path, **extra: Any) -> str:
    config = sb.config(scope="all")
    for key, value in extra.items():
        section, _, name = key.partition("__")
        if name:
            config.setdefault(section, {})[name] = value
        else:
            config[key] = value
    return str(write_config(tmp_path, config))


def sync(cfg: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli("--config", cfg, "sync", "--output", "json", *extra)
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}, result.stderr


def test_links_and_log_are_recorded(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    code, out, _ = sync(cfg)
    assert code == 0
    with State.open(tmp_path / ".genesys-prov") as state:
        links = state.links("user")
        held = {u["id"] for u in sandbox.genesys.users.values()}
        created = [c for c in out["plan"]["changes"] if c["action"] == "create"]
        assert len(links) >= len(created) and set(links.values()) <= held
        records = state.query_log(run=out["run_id"])
    creates = [r for r in records if r["action"] == "Create"]
    assert len(creates) == len(created) and all(r["status"] == "Success" for r in creates)
    assert any(r["action"] == "Skip" for r in records)
    day_files = list((tmp_path / ".genesys-prov" / "logs").glob("*.jsonl"))
    assert day_files and len(day_files[0].read_text().splitlines()) == len(records)
    assert sandbox.genesys_client_secret not in day_files[0].read_text()

    result = run_cli("--config", cfg, "logs", "--action", "Create", "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(created)
    result = run_cli("--config", cfg, "logs", "--since", "1h", "--status", "failure")
    assert result.exit_code == 0 and "0 records" in result.stdout
    shown = json.loads(run_cli("--config", cfg, "state", "show", "--json").stdout)
    assert shown["links"]["user"] == len(links) and shown["last_run"]["status"] == "success"
    assert shown["snapshot"] == {"users": len(sandbox.graph.users),
                                 "target_known": len(links), "trusted": True}
    table = run_cli("--config", cfg, "state", "show").stdout
    assert "incremental runs plan attribute changes from it" in " ".join(table.split())


def test_renamed_user_stays_linked(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    user = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.set_user(user["id"], userPrincipalName="renamed." + user["userPrincipalName"])
    sandbox.genesys.reset_log()
    code, out, _ = sync(cfg)
    assert code == 0
    (change,) = out["plan"]["changes"]
    assert change["action"] == "update"
    assert [a["attribute"] for a in change["attributes"]] == ["userName"]
    assert [w.method for w in sandbox.genesys.writes()] == ["PATCH"]


def test_hard_deleted_user_is_deleted_or_deactivated(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    enabled = [u for u in sandbox.graph.users if u.get("accountEnabled", True)]
    gone, also_gone = enabled[0], enabled[1]
    sandbox.graph.remove_user(gone["id"])
    sandbox.genesys.reset_log()
    code, out, _ = sync(cfg)
    assert code == 0
    (change,) = [c for c in out["plan"]["changes"] if c["action"] == "delete"]
    assert change["reason"] == "deleted in the directory"
    deletes = [w for w in sandbox.genesys.writes() if w.method == "DELETE"]
    assert len(deletes) == 1 and deletes[0].path.endswith(change["target_id"])
    # the others' writes only clear the manager reference the deleted user held
    patches = [w for w in sandbox.genesys.writes() if w.method == "PATCH"]
    assert all(op["op"] == "remove" for w in patches for op in w.body["Operations"])
    assert gone["userPrincipalName"].lower() not in {
        u["userName"].lower() for u in sandbox.genesys.users.values()}
    with State.open(tmp_path / ".genesys-prov") as state:
        assert gone["id"] not in state.links("user")

    (tmp_path / "d").mkdir()
    cfg2 = configure(sandbox, tmp_path / "d", target__on_hard_delete="deactivate")
    assert sync(cfg2)[0] == 0
    sandbox.graph.remove_user(also_gone["id"])
    sandbox.genesys.reset_log()
    code, out, _ = sync(cfg2)
    (change,) = [c for c in out["plan"]["changes"] if c["action"] == "deactivate"]
    assert change["identity"].lower() == also_gone["userPrincipalName"].lower()


def test_deletion_guard_holds_and_allow_deletions_applies(sandbox: Sandbox,
                                                          tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path, safety={"max_deactivations": 2,
                                               "max_source_drop": "90%"})
    assert sync(cfg)[0] == 0
    victims = [u for u in sandbox.graph.users if u.get("accountEnabled", True)][:3]
    for user in victims:
        sandbox.graph.set_user(user["id"], accountEnabled=False, jobTitle="Gone")
    sandbox.genesys.reset_log()
    code, out, err = sync(cfg)
    assert code == 3
    assert "accidental-deletion guard: 3 deactivations/deletions exceed max_deactivations (2)" \
        in err
    assert len(out["plan"]["held"]) == 3
    assert not any(w.body and w.body.get("Operations") == [
        {"op": "replace", "path": "active", "value": False}] for w in sandbox.genesys.writes())
    assert all(u["active"] for u in sandbox.genesys.users.values()
               if u["userName"].lower() in {v["userPrincipalName"].lower() for v in victims})
    code, out, _ = sync(cfg, "--allow-deletions")
    assert code == 0
    assert sum(c["action"] == "deactivate" for c in out["plan"]["changes"]) == 3


def test_source_health_guards(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    everyone = list(sandbox.graph.users)
    for user in everyone[:10]:
        sandbox.graph.remove_user(user["id"])
    sandbox.genesys.reset_log()
    code, _, err = sync(cfg)
    assert code == 3
    assert err.startswith("Error: source-health guard: users in scope dropped from")
    assert sandbox.genesys.writes() == []
    code, _, err = sync(cfg)  # trying again does not get past the guard
    assert code == 3 and "dropped from" in err
    for user in everyone[10:]:
        sandbox.graph.remove_user(user["id"])
    code, _, err = sync(cfg)
    assert code == 3 and "shows no user in scope" in err
    assert sandbox.genesys.writes() == []


def test_second_run_exits_5_while_the_lock_is_held(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    with RunLock(tmp_path / ".genesys-prov"):
        result = run_cli("--config", cfg, "sync")
        assert result.exit_code == 5
        assert result.stderr.startswith("Error: another run holds the lock")
        assert "pid" in result.stderr
        dry = run_cli("--config", cfg, "sync", "--dry-run")  # a dry run reads, never locks
        assert dry.exit_code == 0
    assert sandbox.genesys.writes() == []
    assert run_cli("--config", cfg, "sync").exit_code == 0


def test_state_reset(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    assert run_cli("--config", cfg, "state", "reset").exit_code == 0
    with State.open(tmp_path / ".genesys-prov") as state:
        assert state.links("user")
    result = run_cli("--config", cfg, "state", "reset", "--forget-links", "--yes")
    assert result.stdout == "State reset (links forgotten).\n"
    with State.open(tmp_path / ".genesys-prov") as state:
        assert state.links("user") == {}


def test_quiet_and_log_file_for_cron(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    log = tmp_path / "run.log"
    result = run_cli("--config", cfg, "--log-file", str(log), "sync", "--quiet")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 1 and result.stdout.startswith("Applied ")
    text = log.read_text()
    assert "Applied " in text
    assert sandbox.genesys_client_secret not in text and sandbox.client_secret not in text


def test_escrow_retries_with_backoff_then_clears(sandbox: Sandbox, tmp_path: Path) -> None:
    from genesys_prov.config import load_config
    from genesys_prov.sync.run import run_sync

    config = load_config(configure(sandbox, tmp_path))
    bad = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.set_user(bad["id"], userPrincipalName="not-an-email")
    clock = [1_000_000.0]

    def now() -> float:
        return clock[0]

    first = run_sync(config, clock=now)
    assert first.applied is not None and len(first.applied.failed) == 1
    with State.open(config.state_dir) as state:
        entry = state.escrowed()[bad["id"]]
    assert entry["attempts"] == 1 and entry["next_retry"] == clock[0] + 3600

    sandbox.genesys.reset_log()
    clock[0] += 1800  # not yet: the change waits in escrow, no request is spent on it
    second = run_sync(config, clock=now)
    assert sandbox.genesys.requests == [] and second.mode == "incremental"
    third = run_sync(config, clock=now, full=True)  # a full run shows why it is held back
    assert any("in escrow after 1 failed attempt(s)" in s.reason for s in third.plan.skipped)
    assert sandbox.genesys.writes() == []

    clock[0] += 1801  # due: retried, fails again, backoff doubles
    run_sync(config, clock=now)
    with State.open(config.state_dir) as state:
        entry = state.escrowed()[bad["id"]]
    assert entry["attempts"] == 2 and entry["next_retry"] == clock[0] + 7200

    sandbox.graph.set_user(bad["id"], userPrincipalName="fixed.user@contoso.com")
    clock[0] += 7201
    fourth = run_sync(config, clock=now)
    assert fourth.applied is not None and fourth.applied.failed == []
    with State.open(config.state_dir) as state:
        assert state.escrowed() == {}

    clock[0] += 29 * 86400  # nothing left to expire; expiry is covered by the state unit
    assert run_sync(config, clock=now).plan.changes == ()


def test_escrow_entries_expire_after_28_days(tmp_path: Path) -> None:
    with State.open(tmp_path) as state:
        state.escrow_failure("user", "s1", "ada", "HTTP 400", 0.0, 3600, 86400)
        assert state.expire_escrow(27 * 86400.0, 28 * 86400.0) == []
        (dropped,) = state.expire_escrow(29 * 86400.0, 28 * 86400.0)
        assert dropped["source_id"] == "s1" and state.escrowed() == {}


def test_incremental_run_with_no_changes_costs_a_few_graph_requests(sandbox: Sandbox,
                                                                     tmp_path: Path) -> None:
    config = sandbox.config()  # scope: assigned, groups mapped
    cfg = str(write_config(tmp_path, config))
    code, out, _ = sync(cfg)
    assert code == 0 and out["mode"] == "full"
    sandbox.genesys.reset_log()
    sandbox.graph.requests.clear()
    code, out, _ = sync(cfg)
    assert code == 0
    assert out["mode"] == "incremental" and out["plan"]["changes"] == []
    assert sandbox.genesys.requests == []  # not even a token request
    api = [r.path for r in sandbox.graph.requests if r.path.startswith("/v1.0/")]
    assert sorted(api) == sorted(["/v1.0/users/delta", "/v1.0/groups/delta",
                                  f"/v1.0/servicePrincipals/{sandbox.service_principal_id}"
                                  "/appRoleAssignedTo"])


def _graph_api_paths(sb: Sandbox) -> list[str]:
    return sorted(r.path for r in sb.graph.requests if r.path.startswith("/v1.0/"))


def test_a_changed_user_costs_the_delta_pages_and_one_write(sandbox: Sandbox,
                                                            tmp_path: Path) -> None:
    """Planned from the snapshot: no directory read, no target read, one PATCH."""
    cfg = str(write_config(tmp_path, sandbox.config()))  # assigned scope, groups, managers
    assert sync(cfg)[0] == 0
    held = {u["userName"].lower() for u in sandbox.genesys.users.values() if u["active"]}
    user = next(u for u in sandbox.graph.users if u["userPrincipalName"].lower() in held)
    sandbox.graph.set_user(user["id"], jobTitle="Night Shift Lead")
    code, out, _ = sync(cfg, "--dry-run")  # a dry run sees it but does not move the watermark
    assert out["mode"] == "incremental" and out["mode_reason"] == "1 directory change(s)"
    assert [c["action"] for c in out["plan"]["changes"]] == ["update"]
    sandbox.genesys.reset_log()
    sandbox.graph.requests.clear()
    code, out, _ = sync(cfg)
    assert code == 0 and out["mode"] == "incremental"
    (write,) = sandbox.genesys.writes()
    assert write.body["Operations"] == [{"op": "replace", "path": "title",
                                         "value": "Night Shift Lead"}]
    assert [r.method for r in sandbox.genesys.requests if "/scim/" in r.path] == ["PATCH"]
    assert _graph_api_paths(sandbox) == sorted([
        "/v1.0/users/delta", "/v1.0/groups/delta",
        f"/v1.0/servicePrincipals/{sandbox.service_principal_id}/appRoleAssignedTo"])
    # the next change of the same user diffs against what the last run wrote
    department = user.get("department")
    sandbox.graph.set_user(user["id"], jobTitle="Day Shift Lead", department="Night Ops")
    sandbox.genesys.reset_log()
    code, out, _ = sync(cfg)
    (change,) = out["plan"]["changes"]
    assert {a["attribute"]: (a["old"], a["new"]) for a in change["attributes"]} == {
        "title": ("Night Shift Lead", "Day Shift Lead"),
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":
            (department, "Night Ops")}
    assert len(sandbox.genesys.writes()) == 1
    assert sync(cfg)[1]["mode_reason"] == "no directory changes"
    code, out, _ = sync(cfg, "--full")  # and a full comparison agrees
    assert out["plan"]["changes"] == [] and out["plan"]["group_changes"] == []


def test_a_new_manager_is_set_from_the_snapshot(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, sandbox.config()))
    assert sync(cfg)[0] == 0
    by_name = {u["userName"].lower(): u for u in sandbox.genesys.users.values() if u["active"]}
    active = [u for u in sandbox.graph.users if u["userPrincipalName"].lower() in by_name]
    user, boss = active[0], next(u for u in active[1:] if u["id"] != active[0].get("manager"))
    sandbox.graph.set_user(user["id"], manager=boss["id"])
    sandbox.genesys.reset_log()
    code, out, _ = sync(cfg)
    assert code == 0 and out["mode_reason"] == "1 directory change(s)"
    (write,) = sandbox.genesys.writes()
    boss_id = by_name[boss["userPrincipalName"].lower()]["id"]
    assert write.body["Operations"] == [{
        "op": "replace",
        "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "value": {"value": boss_id}}]
    assert [r.method for r in sandbox.genesys.requests if "/scim/" in r.path] == ["PATCH"]
    code, out, _ = sync(cfg, "--full")
    assert out["plan"]["changes"] == []


def _group_members(sb: Sandbox, name: str) -> set[str]:
    group = next(g for g in sb.genesys.groups.values() if g["displayName"] == name)
    return {m["value"] for m in group.get("members", [])}


def _scim_calls(sb: Sandbox) -> list[str]:
    return [f"{r.method} {r.path.rsplit('/scim/v2', 1)[-1]}" for r in sb.genesys.requests
            if "/scim/" in r.path]


def test_disable_join_and_leave_are_planned_from_the_snapshot(sandbox: Sandbox,
                                                              tmp_path: Path) -> None:
    """Scope and membership changes cost the delta pages, then only what they change:
    no directory read; of the target, the groups listing and a lookup for a newcomer."""
    cfg = str(write_config(tmp_path, sandbox.config()))  # assigned scope, groups, managers
    assert sync(cfg)[0] == 0
    by_name = {u["userName"].lower(): u for u in sandbox.genesys.users.values()}
    sales = next(g for g in sandbox.graph.groups if g["displayName"] == "Sales Agents")
    member = next(u for u in sandbox.graph.users if u["id"] in sales["members"]
                  and by_name.get(u["userPrincipalName"].lower(), {}).get("active"))
    target_id = by_name[member["userPrincipalName"].lower()]["id"]
    assert target_id in _group_members(sandbox, "Sales Agents")
    sandbox.graph.set_user(member["id"], accountEnabled=False)
    sandbox.genesys.reset_log()
    sandbox.graph.requests.clear()
    code, out, _ = sync(cfg)
    assert code == 0 and out["mode_reason"] == "1 directory change(s)"
    assert [c["action"] for c in out["plan"]["changes"]] == ["deactivate"]
    assert target_id not in _group_members(sandbox, "Sales Agents")
    assert sorted(_scim_calls(sandbox)) == sorted(
        ["GET /Groups", f"PATCH /Groups/{out['plan']['group_changes'][0]['target_id']}",
         f"PATCH /Users/{target_id}"])
    assert len(_graph_api_paths(sandbox)) == 3  # users delta, groups delta, assignments
    # someone outside scope joins an assigned group: looked up, created, added
    outsider = next(u for u in sandbox.graph.users if u.get("accountEnabled", True)
                    and u["userPrincipalName"].lower() not in by_name)
    sandbox.graph.add_group_member(sales["id"], outsider["id"])
    sandbox.genesys.reset_log()
    code, out, _ = sync(cfg)
    assert code == 0 and out["mode_reason"] == "1 directory change(s)"
    creates = [c for c in out["plan"]["changes"] if c["action"] == "create"]
    assert [c["source_id"] for c in creates] == [outsider["id"]]
    # anyone else changed is a direct report who now gets this manager
    reports = {u["id"] for u in sandbox.graph.users if u.get("manager") == outsider["id"]}
    assert {c["source_id"] for c in out["plan"]["changes"]} - {outsider["id"]} <= reports
    created = next(u for u in sandbox.genesys.users.values()
                   if u["userName"].lower() == outsider["userPrincipalName"].lower())
    assert created["id"] in _group_members(sandbox, "Sales Agents")
    calls = [c.split(" ")[0] for c in _scim_calls(sandbox)]
    assert (calls.count("GET"), calls.count("POST")) == (2, 1)  # the lookup, the groups
    # and leaves again: deactivated, removed from the group
    sandbox.graph.remove_group_member(sales["id"], outsider["id"])
    code, out, _ = sync(cfg)
    assert [c["action"] for c in out["plan"]["changes"]] == ["deactivate"]
    assert created["id"] not in _group_members(sandbox, "Sales Agents")
    code, out, _ = sync(cfg, "--full")
    assert out["plan"]["changes"] == [] and out["plan"]["group_changes"] == []


def test_nested_memberships_read_the_directory_and_a_killed_run_drops_the_snapshot(
        sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.config()
    config["source"]["nested_groups"] = True
    cfg = str(write_config(tmp_path, config))
    assert sync(cfg)[0] == 0
    sales = next(g for g in sandbox.graph.groups if g["displayName"] == "Sales Agents")
    sandbox.graph.remove_group_member(sales["id"], sales["members"][0])
    code, out, _ = sync(cfg)
    assert code == 0 and out["mode"] == "incremental"
    assert out["mode_reason"] == ("1 directory change(s); the directory was read "
                                  "(memberships changed and nested groups count)")
    # a run that stops before it finishes leaves no trusted snapshot behind
    with State.open(tmp_path / ".genesys-prov") as state:
        assert state.get_meta("snapshot")
        state.delete_meta("snapshot")
    user = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.set_user(user["id"], jobTitle="Back Soon")
    code, out, _ = sync(cfg)
    assert out["mode_reason"].endswith("(no complete snapshot from the last run)")
    assert sync(cfg)[1]["mode_reason"] == "no directory changes"
    sandbox.graph.set_user(user["id"], jobTitle="Back Later")
    assert sync(cfg)[1]["mode_reason"] == "1 directory change(s)"  # trusted again


def test_an_incremental_create_with_select_unique_value_sees_every_target_value(
        sandbox: Sandbox, tmp_path: Path) -> None:
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    text = default_mappings_text().replace(
        "  - {target: title, source: jobTitle}\n",
        "  - {target: title, source: jobTitle}\n"
        f"  - target: \"{ext}:employeeNumber\"\n"
        "    apply: on_create\n"
        "    expression: >-\n"
        "      SelectUniqueValue(ToLower([givenName]), ToLower(Join(\".\", [givenName],\n"
        "                        [surname])))\n")
    cfg = str(write_config(tmp_path, sandbox.config(scope="all"), mappings=text))
    assert sync(cfg)[0] == 0
    taken = {u.get(ext, {}).get("employeeNumber") for u in sandbox.genesys.users.values()}
    assert "megan" in taken  # Megan Bowen was created with the first candidate
    sandbox.graph.add_user({"id": "0c0ffee0-0000-4000-8000-00000000000a",
                            "userPrincipalName": "megan.other@contoso.com",
                            "displayName": "Megan Other", "givenName": "Megan",
                            "surname": "Other", "accountEnabled": True})
    code, out, _ = sync(cfg)
    assert code == 0 and out["mode"] == "incremental", out["mode_reason"]
    (create,) = [c for c in out["plan"]["changes"] if c["action"] == "create"]
    values = {a["attribute"]: a["new"] for a in create["attributes"]}
    assert values[f"{ext}:employeeNumber"] == "megan.other"  # "megan" is taken


def test_an_expired_delta_token_triggers_a_full_sync(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    sandbox.graph.expire_delta_tokens()
    code, out, _ = sync(cfg)
    assert code == 0 and out["mode"] == "full"
    assert out["mode_reason"] == ("Graph no longer knows the delta token for /v1.0/users/delta "
                                  "(HTTP 410 syncStateNotFound): starting over")
    assert sync(cfg)[1]["mode"] == "incremental"


def test_incremental_changes_keep_full_sync_semantics(sandbox: Sandbox, tmp_path: Path) -> None:
    """Disable, soft-delete, hard-delete, a new user and a membership move, all in one
    incremental run: the same result a full sync gives."""
    cfg = str(write_config(tmp_path, sandbox.config()))  # assigned scope, groups, managers
    assert sync(cfg)[0] == 0
    held = {u["userName"].lower(): u for u in sandbox.genesys.users.values()}
    users = [u for u in sandbox.graph.users
             if u["userPrincipalName"].lower() in held and held[u["userPrincipalName"].lower()]
             ["active"] and u["id"] not in {a["principalId"] for a in
                                            sandbox.graph.app_role_assignments}]
    disabled, soft, hard = users[0], users[1], users[2]
    sandbox.graph.set_user(disabled["id"], accountEnabled=False)
    sandbox.graph.soft_delete_user(soft["id"])
    sandbox.graph.remove_user(hard["id"])
    sales = next(g for g in sandbox.graph.groups if g["displayName"] == "Sales Agents")
    newcomer = {"id": "0c0ffee0-0000-4000-8000-000000000001",
                "userPrincipalName": "new.agent@contoso.com", "displayName": "New Agent",
                "accountEnabled": True, "jobTitle": "Agent", "manager": None}
    sandbox.graph.add_user(newcomer)
    sandbox.graph.add_group_member(sales["id"], newcomer["id"])
    sandbox.genesys.reset_log()
    code, out, _ = sync(cfg)
    assert code == 0, out
    assert out["mode"] == "incremental"
    actions = {c["identity"].lower(): c["action"] for c in out["plan"]["changes"]}
    assert actions[disabled["userPrincipalName"].lower()] == "deactivate"
    assert actions[soft["userPrincipalName"].lower()] == "deactivate"
    assert actions[hard["userPrincipalName"].lower()] == "delete"
    assert actions["new.agent@contoso.com"] == "create"
    after = {u["userName"].lower(): u for u in sandbox.genesys.users.values()}
    group = next(g for g in sandbox.genesys.groups.values() if g["displayName"] == "Sales Agents")
    members = {m["value"] for m in group.get("members", [])}
    assert after["new.agent@contoso.com"]["id"] in members
    assert held[disabled["userPrincipalName"].lower()]["id"] not in members
    assert not any(r.method == "GET" and r.path.endswith("/Users") and "startIndex" in r.query
                   for r in sandbox.genesys.requests)  # the user list was not read
    # and a full sync finds nothing left to do
    code, out, _ = sync(cfg, "--full")
    assert out["plan"]["changes"] == [] and out["plan"]["group_changes"] == []


def test_changed_mappings_force_a_full_sync(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    mappings = tmp_path / "mappings.yaml"
    mappings.write_text(mappings.read_text().replace(
        "{target: title, source: jobTitle}", "{target: title, source: department}"))
    _, out, _ = sync(cfg)
    assert out["mode"] == "full"
    assert out["mode_reason"] == "the mappings or scope settings changed since the last run"
    assert out["plan"]["counts"]["update"] > 0
    assert sync(cfg, "--full")[1]["mode_reason"] == "--full was given"


def test_full_sync_corrects_drift_made_by_hand_in_genesys(sandbox: Sandbox,
                                                          tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    user = next(u for u in sandbox.graph.users
                if u.get("accountEnabled", True) and u.get("jobTitle"))
    held = next(u for u in sandbox.genesys.users.values()
                if u["userName"].lower() == user["userPrincipalName"].lower())
    held["title"] = "Changed by hand"
    assert sync(cfg)[1]["mode"] == "incremental"  # the directory did not change
    sandbox.genesys.reset_log()
    code, _, _ = sync(cfg, "--full")
    assert code == 0
    (write,) = sandbox.genesys.writes()
    assert write.body["Operations"] == [{"op": "replace", "path": "title",
                                         "value": user["jobTitle"]}]


def test_killed_initial_load_resumes_without_duplicates(tmp_path: Path) -> None:
    """kill -9 in the middle of an initial load of 2,000 users, then run again."""
    import signal
    import subprocess
    import sys
    import time

    with Sandbox(users=2000, workdir=tmp_path) as sb:
        cfg = str(write_config(tmp_path, sb.config()))
        sb.genesys.record_requests = False
        before = len(sb.genesys.users)
        proc = subprocess.Popen([sys.executable, "-m", "genesys_prov", "--config", cfg, "sync",
                                 "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while len(sb.genesys.users) - before < 400 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = len(sb.genesys.users) - before
        assert 400 <= partial < 1900  # killed part-way

        again = subprocess.run([sys.executable, "-m", "genesys_prov", "--config", cfg, "sync",
                                "--output", "json"], capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        names = [u["userName"].lower() for u in sb.genesys.users.values()]
        assert len(names) == len(set(names))
        out = json.loads(again.stdout)
        created = out["plan"]["counts"]["create"]
        assert partial + created == len(sb.genesys.users) - before  # nothing created twice
        with State.open(tmp_path / ".genesys-prov") as state:
            links = state.links("user")
        assert len(set(links.values())) == len(links)
        last = subprocess.run([sys.executable, "-m", "genesys_prov", "--config", cfg, "sync",
                               "--output", "json"], capture_output=True, text=True, timeout=300)
        assert json.loads(last.stdout)["mode"] == "incremental"


def test_quarantine_on_bad_credentials_probes_then_leaves(sandbox: Sandbox,
                                                          tmp_path: Path) -> None:
    from genesys_prov.config import load_config
    from genesys_prov.errors import AuthError, QuarantineError
    from genesys_prov.sync.run import run_sync

    good = sandbox.config(scope="all")
    bad = json.loads(json.dumps(good))
    bad["target"]["oauth"]["client_secret"] = "revoked-secret-value"
    cfg_path = write_config(tmp_path, bad)
    clock = [5_000_000.0]
    with pytest.raises(AuthError):
        run_sync(load_config(cfg_path), clock=lambda: clock[0])
    with State.open(tmp_path / ".genesys-prov") as state:
        assert "authentication failed" in state.summary()["quarantine"]["reason"]

    sandbox.genesys.reset_log()
    clock[0] += 240  # the first probe is 5 minutes after entering: no request at all
    with pytest.raises(QuarantineError, match="next connection probe at"):
        run_sync(load_config(cfg_path), clock=lambda: clock[0])
    assert sandbox.genesys.requests == []

    clock[0] += 61  # probe due, still failing: stays quarantined, next probe 10 min later
    with pytest.raises(QuarantineError, match=r"the probe failed.*next probe at "
                                              r"1970-02-27T21:08:21"):
        run_sync(load_config(cfg_path), clock=lambda: clock[0])
    clock[0] += 300  # within the (doubled) gap
    with pytest.raises(QuarantineError, match="next connection probe at"):
        run_sync(load_config(cfg_path), clock=lambda: clock[0])
    write_config(tmp_path, good)  # the admin fixes the secret: probed at once
    result = run_sync(load_config(cfg_path), clock=lambda: clock[0])
    assert result.mode_reason == "the job just left quarantine"
    assert result.applied is not None and result.applied.failed == []
    with State.open(tmp_path / ".genesys-prov") as state:
        assert state.summary()["quarantine"] is None
        assert state.query_log(action="Other", status="success")[-1]["code"] == "QuarantineLeft"


def test_quarantine_on_404_and_on_failure_rate(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.config(scope="all")
    config["target"]["url"] = sandbox.genesys_url + "/wrong"
    (tmp_path / "a").mkdir()
    cfg = str(write_config(tmp_path / "a", config))
    result = run_cli("--config", cfg, "sync")
    assert result.exit_code == 4
    shown = json.loads(run_cli("--config", cfg, "state", "show", "--json").stdout)
    assert "404" in shown["quarantine"]["reason"]
    result = run_cli("--config", cfg, "sync")  # quarantined: exit 4 at once, no request
    assert result.exit_code == 4 and "quarantined since" in result.stderr

    (tmp_path / "b").mkdir()
    cfg = configure(sandbox, tmp_path / "b", safety={"quarantine_min_failures": 5})
    enabled = [u for u in sandbox.graph.users if u.get("accountEnabled", True)]
    for user in enabled[: len(enabled) // 2 + 2]:
        sandbox.graph.set_user(user["id"], userPrincipalName=f"broken-{user['id'][:8]}")
    result = run_cli("--config", cfg, "sync", "--quiet")
    assert result.exit_code == 4
    assert "the job is now quarantined" in result.stderr and "changes failed" in result.stderr


def test_email_once_per_incident_through_a_real_smtp_server(sandbox: Sandbox,
                                                            tmp_path: Path) -> None:
    from tests.test_notify import smtp_server

    with smtp_server() as (inbox, port):
        cfg = configure(sandbox, tmp_path, notify={"email": {
            "to": "ops@contoso.com", "from": "genesys-prov@contoso.com",
            "smtp_host": "127.0.0.1", "smtp_port": port, "starttls": False}})
        bad = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
        sandbox.graph.set_user(bad["id"], mobilePhone="call reception")
        assert sync(cfg)[0] == 1
        assert [m.message["Subject"] for m in inbox.messages] == [
            "genesys-prov: 1 change(s) failed"]
        assert "call reception" in inbox.messages[0].message.get_content()
        assert sync(cfg, "--full")[0] == 1  # the same incident: no second mail
        assert len(inbox.messages) == 1
        sandbox.graph.set_user(bad["id"], mobilePhone="+1 425 555 0199")
        assert sync(cfg)[0] == 0  # resolved: closed silently
        assert len(inbox.messages) == 1
        assert sandbox.client_secret not in inbox.messages[0].message.get_content()


def test_a_failing_smtp_server_never_fails_the_sync(sandbox: Sandbox, tmp_path: Path) -> None:
    from tests.test_notify import free_port

    cfg = configure(sandbox, tmp_path, notify={"email": {
        "to": "ops@contoso.com", "from": "genesys-prov@contoso.com",
        "smtp_host": "127.0.0.1", "smtp_port": free_port(), "starttls": False}})
    bad = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.set_user(bad["id"], mobilePhone="call reception")
    code, out, _ = sync(cfg)
    assert code == 1 and out["result"]["counts"]["success"] > 10  # exit 1 is the user failure


def test_lock_between_two_processes_and_stale_lock_taken_over(sandbox: Sandbox,
                                                             tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = configure(sandbox, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from genesys_prov.state.db import RunLock\n"
         f"with RunLock(Path({str(tmp_path / '.genesys-prov')!r})):\n"
         "    print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = subprocess.run([sys.executable, "-m", "genesys_prov", "--config", cfg, "sync"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 5
        assert f"pid {holder.pid}" in result.stderr
        assert sandbox.genesys.writes() == []
    finally:
        holder.kill()  # dies holding the lock: the OS releases it
        holder.wait()
    result = subprocess.run([sys.executable, "-m", "genesys_prov", "--config", cfg, "sync",
                             "--quiet"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_many_gone_users_cost_one_listing_of_deleted_items(sandbox: Sandbox,
                                                          tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    held = {u["userName"].lower() for u in sandbox.genesys.users.values() if u["active"]}
    users = [u for u in sandbox.graph.users if u["userPrincipalName"].lower() in held][:5]
    for user in users[:2]:
        sandbox.graph.soft_delete_user(user["id"])
    for user in users[2:]:
        sandbox.graph.remove_user(user["id"])
    sandbox.graph.requests.clear()
    code, out, _ = sync(cfg, "--full")
    assert code == 0
    gone = {u["id"] for u in users}
    actions = {c["source_id"]: c["action"] for c in out["plan"]["changes"]
               if c["source_id"] in gone}  # (their reports' managers are cleared too)
    assert actions == {**{u["id"]: "deactivate" for u in users[:2]},
                       **{u["id"]: "delete" for u in users[2:]}}
    lookups = [r.path for r in sandbox.graph.requests if "deletedItems" in r.path]
    assert lookups == ["/v1.0/directory/deletedItems/microsoft.graph.user"]


def test_soft_deleted_user_is_deactivated_not_deleted(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    user = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.soft_delete_user(user["id"])
    sandbox.genesys.reset_log()
    code, out, _ = sync(cfg)
    assert code == 0
    (change,) = [c for c in out["plan"]["changes"] if c["identity"].lower() ==
                 user["userPrincipalName"].lower()]
    assert change["action"] == "deactivate"
    assert change["reason"] == "soft-deleted in the directory (or no longer readable)"
    assert not [w for w in sandbox.genesys.writes() if w.method == "DELETE"]
    # the delta round says "soft-deleted" (@removed: changed): nothing to look up
    assert not [r.path for r in sandbox.graph.requests if "deletedItems" in r.path]
    # restored within 30 days: the same Genesys user comes back
    sandbox.graph.restore_user(user["id"])
    code, out, _ = sync(cfg)
    (change,) = [c for c in out["plan"]["changes"] if c["identity"].lower() ==
                 user["userPrincipalName"].lower()]
    assert change["action"] == "reactivate"


def test_many_changes_plan_from_the_snapshot_or_list_the_target(tmp_path: Path) -> None:
    with Sandbox(users=200, workdir=tmp_path) as sb:
        cfg = str(write_config(tmp_path, sb.config(scope="all")))
        assert sync(cfg)[0] == 0
        for user in sb.graph.users[:40]:
            sb.graph.set_user(user["id"], jobTitle="Reorganised")
        sb.genesys.reset_log()
        code, out, _ = sync(cfg)  # attribute changes only: the snapshot answers
        assert code == 0 and out["mode"] == "incremental"
        enabled = sum(1 for u in sb.graph.users[:40] if u.get("accountEnabled", True))
        assert out["plan"]["counts"]["update"] >= enabled - 2
        assert {r.method for r in sb.genesys.requests if "/scim/" in r.path} == {"PATCH"}
        for user in sb.graph.users[40:80]:  # disabled: the snapshot knows their target
            sb.graph.set_user(user["id"], accountEnabled=False)
        sb.genesys.reset_log()
        code, out, _ = sync(cfg)
        assert code == 0 and out["mode_reason"] == "40 directory change(s)"
        assert out["plan"]["counts"]["deactivate"] >= 30
        assert not [r for r in sb.genesys.requests if r.method == "GET" and "/Users" in r.path]
        for n in range(40):  # many new users must be looked up: the target is listed
            sb.graph.add_user({"id": f"00000000-0000-4000-8000-{n:012d}",
                               "userPrincipalName": f"new{n}@contoso.com",
                               "displayName": f"New {n}", "accountEnabled": True})
        code, out, _ = sync(cfg)
        assert code == 0 and out["mode"] == "full"
        assert out["mode_reason"] == ("40 changed users to read: listing the target is "
                                      "cheaper than reading them one by one")
        assert out["plan"]["counts"]["create"] == 40


def test_a_replayed_delta_round_is_harmless(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    user = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.set_user(user["id"], jobTitle="Replayed Title")
    assert sync(cfg)[0] == 0
    sandbox.graph.replay_next_delta()  # Graph sends the same changes again
    sandbox.genesys.reset_log()
    code, out, _ = sync(cfg)
    assert code == 0 and out["mode"] == "incremental"
    assert out["plan"]["changes"] == [] and sandbox.genesys.writes() == []


def test_reports_json_csv_md(sandbox: Sandbox, tmp_path: Path) -> None:
    import csv as csvlib

    mappings = (Path(__file__).parent.parent / "mappings.yaml").read_text().replace(
        "{target: title, source: jobTitle}", "{target: title, expression: 'Redact([jobTitle])'}")
    config = sandbox.config(scope="all")
    cfg = str(write_config(tmp_path, config, mappings))
    out_dir = tmp_path / "reports"
    out_dir.mkdir()
    paths = [str(out_dir / f"plan.{ext}") for ext in ("json", "csv", "md")]
    args = [a for p in paths for a in ("--report", p)]
    result = run_cli("--config", cfg, "sync", "--dry-run", *args)
    assert result.exit_code == 0, result.stderr
    data = json.loads(Path(paths[0]).read_text())
    assert data["schema"] == 1 and data["dry_run"] is True
    assert data["plan"]["counts"]["create"] == len(
        [c for c in data["plan"]["changes"] if c["action"] == "create"])
    rows = list(csvlib.DictReader(Path(paths[1]).read_text().splitlines()))
    assert rows and set(rows[0]) == {"action", "identity", "source_id", "target_id",
                                     "attribute", "old", "new", "status", "reason"}
    titles = [r for r in rows if r["attribute"] == "title"]
    assert titles and all(r["new"] == "[Redact]" and r["status"] == "planned" for r in titles)
    shown = [a for c in data["plan"]["changes"] for a in c["attributes"]
             if a["attribute"] == "title"]
    assert shown and all(a["new"] == "[Redact]" for a in shown)
    markdown = Path(paths[2]).read_text()
    assert all("[Redact]" in line for line in markdown.splitlines() if "| title |" in line)
    assert markdown.startswith("# genesys-prov dry run report") and "| create |" in markdown
    assert sandbox.genesys.writes() == []

    result = run_cli("--config", cfg, "sync", "--report", str(out_dir / "after.csv"))
    assert result.exit_code == 0
    rows = list(csvlib.DictReader((out_dir / "after.csv").read_text().splitlines()))
    assert {r["status"] for r in rows if r["action"] == "create"} == {"success"}


def test_unknown_report_format_exits_2_before_any_request(sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    result = run_cli("--config", cfg, "sync", "--report", str(tmp_path / "plan.pdf"))
    assert result.exit_code == 2 and "supported: .json, .csv, .md" in result.stderr
    assert sandbox.graph.requests == [] and sandbox.genesys.requests == []


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (make test "
                    "installs it when it can)")
def test_html_report_loads_filters_and_counts_in_a_real_browser(sandbox: Sandbox,
                                                                tmp_path: Path) -> None:
    import re as regex
    import subprocess

    cfg = configure(sandbox, tmp_path)
    page = tmp_path / "plan.html"
    result = run_cli("--config", cfg, "sync", "--dry-run", "--report", str(page))
    assert result.exit_code == 0
    text = page.read_text()
    assert "<script src" not in text and "http://" not in text.split("<script>")[1]

    def dom(fragment: str) -> str:
        out = subprocess.run(
            [str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'chrome'}", "--dump-dom",
             f"{page.as_uri()}#{fragment}"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    creates = [c for c in json.loads(run_cli("--config", cfg, "sync", "--dry-run", "--output",
                                             "json").stdout)["plan"]["changes"]
               if c["action"] == "create"]
    loaded = dom("")
    assert "genesys-prov dry run report" in loaded
    counts = regex.search(r'<table class="counts" id="counts">.*?</table>', loaded, regex.S)
    assert counts and f"<td>create</td><td>{len(creates)}</td>" in counts.group(0)
    filtered = dom("action=create")
    rows = regex.findall(r'<tr class="[^"]*" data-action="([^"]+)"[^>]*?( hidden="")?>',
                         filtered)
    visible = [a for a, hidden in rows if not hidden]
    assert visible and set(visible) == {"create"}
    shown = int(regex.search(r'<span id="visible-count">(\d+)</span>', filtered).group(1))
    assert shown == len(visible)
    searched = dom("q=" + creates[0]["identity"])
    visible = [a for a, hidden in regex.findall(
        r'<tr class="[^"]*" data-action="([^"]+)"[^>]*?( hidden="")?>', searched) if not hidden]
    assert 0 < len(visible) < len(rows)


def test_progress_lines_and_the_up_front_estimate_for_cron(sandbox: Sandbox,
                                                            tmp_path: Path) -> None:
    from genesys_prov.console import estimate_line

    assert estimate_line(0, 300) is None
    assert estimate_line(100, 300) is None  # quick: not worth a line
    assert estimate_line(9_000, 300) == ("Applying needs about 9000 write request(s): at "
                                         "least 30 min at 300 requests/minute.")
    assert estimate_line(100_000, 300) == ("Applying needs about 100000 write request(s): at "
                                           "least 5.6 h at 300 requests/minute.")
    cfg = configure(sandbox, tmp_path)
    log = tmp_path / "cron.log"
    result = run_cli("--config", cfg, "--log-file", str(log), "sync", "--quiet")
    assert result.exit_code == 0
    text = log.read_text()
    assert "reading the directory: " in text and "reading the target: " in text
    assert "applying changes: " in text
    assert "write request(s) (rate limit off)" in text

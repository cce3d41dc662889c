"""`genesys-prov explain USER`: why one user is the way they are, in one screen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genesys_prov.sandbox import Sandbox
from tests.conftest import run_cli, sales_agent_not_in_target, write_config

pytestmark = pytest.mark.e2e


def test_explain_an_update_without_writing(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, sandbox.config()))
    held = {u["userName"].lower(): u for u in sandbox.genesys.users.values()}
    user = next(u for u in sandbox.graph.users if u["userPrincipalName"].lower() in held
                and held[u["userPrincipalName"].lower()]["active"])
    result = run_cli("--config", cfg, "explain", user["userPrincipalName"], "--output", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["user"]["id"] == user["id"]
    assert data["scope"]["in_scope"] is True and data["scope"]["reasons"]
    values = {m["target"]: m.get("value") for m in data["mappings"]}
    assert values["userName"] == user["userPrincipalName"]
    assert values["active"] is True
    (attempt,) = [a for a in data["matching"] if a["by"] == "userName"]
    assert attempt["found"] == [held[user["userPrincipalName"].lower()]["id"]]
    (change,) = data["plan"]["changes"]
    assert change["action"] == "update" and change["attributes"]
    assert sandbox.genesys.writes() == []

    table = run_cli("--config", cfg, "explain", user["userPrincipalName"])
    assert table.exit_code == 0
    for heading in ("Source:", "Scope (assigned): in scope", "Mappings", "Matching",
                    "Planned change"):
        assert heading in table.stdout


def test_explain_out_of_scope_and_unknown_users(sandbox: Sandbox, tmp_path: Path) -> None:
    from genesys_prov.mapping.mappings_file import default_mappings_text

    mappings = default_mappings_text() + (
        "user_scope:\n  - - {attribute: department, operator: EQUALS, value: Nowhere}\n")
    cfg = str(write_config(tmp_path, sandbox.config(), mappings))
    user = sandbox.graph.users[0]
    data = json.loads(run_cli("--config", cfg, "explain", user["id"], "--output",
                              "json").stdout)
    assert data["scope"]["in_scope"] is False
    assert data["scope"]["user_scope"] == [
        {"clause": 'group 0: department EQUALS "Nowhere"', "result": False}]
    result = run_cli("--config", cfg, "explain", "nobody@contoso.com")
    assert result.exit_code == 2 and "no such user" in result.stderr


def test_provision_on_demand_creates_one_user_with_groups_and_logs_it(sandbox: Sandbox,
                                                                      tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, sandbox.config()))
    user = sales_agent_not_in_target(sandbox)
    dry = run_cli("--config", cfg, "provision", user["userPrincipalName"], "--dry-run")
    assert dry.exit_code == 0, dry.stdout + dry.stderr
    for step in ("test connection", "import", "scope", "match", "action"):
        assert f"✓ {step}" in dry.stdout
    assert sandbox.genesys.writes() == []

    result = run_cli("--config", cfg, "provision", user["userPrincipalName"], "--output",
                     "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    steps = {s["step"]: s for s in json.loads(result.stdout)["steps"]}
    assert steps["action"]["detail"].startswith("create: success")
    assert steps["groups"]["added"] == ["Sales Agents"]
    created = next(u for u in sandbox.genesys.users.values()
                   if u["userName"].lower() == user["userPrincipalName"].lower())
    group = next(g for g in sandbox.genesys.groups.values() if g["displayName"] == "Sales Agents")
    assert created["id"] in {m["value"] for m in group["members"]}
    posts = [w for w in sandbox.genesys.writes() if w.method == "POST"]
    assert len(posts) == 1  # only that user
    logs = run_cli("--config", cfg, "logs", "--json").stdout.splitlines()
    actions = {json.loads(line)["action"] for line in logs}
    assert {"Create", "AddMembers"} <= actions


def test_init_writes_a_valid_starter_config(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from genesys_prov.config import load_config
    from genesys_prov.mapping.mappings_file import default_mappings_text

    target = tmp_path / "cfg"
    monkeypatch.delenv("GRAPH_CLIENT_SECRET", raising=False)
    result = run_cli("init", "--dir", str(target), "--tenant-id", "contoso.onmicrosoft.com",
                     "--client-id", "11111111-2222-3333-4444-555555555555", "--target-url",
                     "https://api.mypurecloud.ie/api/v2/scim/v2", "--scope", "all",
                     "--genesys-client-id", "abc")
    assert result.exit_code == 0, result.stderr
    assert "Next: export GRAPH_CLIENT_SECRET and GENESYS_CLIENT_SECRET" in result.stdout
    assert (target / "mappings.yaml").read_text() == default_mappings_text()
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", "x" * 12)
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", "y" * 12)
    config = load_config(target / "genesys-prov.yaml")
    assert config.target.oauth is not None
    assert config.target.oauth.token_url == "https://login.mypurecloud.ie/oauth/token"
    again = run_cli("init", "--dir", str(target), "--tenant-id", "t", "--client-id", "c",
                    "--target-url", "https://api.mypurecloud.ie/api/v2/scim/v2",
                    "--scope", "all")
    assert again.exit_code == 2 and "exists (use --force" in again.stderr

    # with the secrets set, init goes on to `check`; --no-check stops before any request
    result = run_cli("init", "--dir", str(tmp_path / "other"), "--tenant-id", "t",
                     "--client-id", "c", "--target-url",
                     "https://api.mypurecloud.ie/api/v2/scim/v2", "--scope", "all",
                     "--genesys-client-id", "abc", "--no-check")
    assert result.exit_code == 0 and "Next:" not in result.stdout


def test_provision_sets_an_already_provisioned_manager(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, sandbox.config()))
    by_id = {u["id"]: u for u in sandbox.graph.users}
    report_user = next(u for u in sandbox.graph.users
                       if u.get("manager") in by_id and by_id[u["manager"]].get("jobTitle")
                       and u["userPrincipalName"].startswith("aoife"))
    manager = by_id[report_user["manager"]]
    assert run_cli("--config", cfg, "provision", manager["userPrincipalName"]).exit_code == 0
    result = run_cli("--config", cfg, "provision", report_user["userPrincipalName"])
    assert result.exit_code == 0, result.stdout
    held = {u["userName"].lower(): u for u in sandbox.genesys.users.values()}
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert held[report_user["userPrincipalName"].lower()][ext]["manager"]["value"] == \
        held[manager["userPrincipalName"].lower()]["id"]

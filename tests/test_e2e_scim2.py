"""End to end against scim2-server, python-scim's RFC 7644 server: a SCIM target this
project did not write (flavor: generic). The source is the project's Graph emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genesys_prov.sandbox import Sandbox
from tests.conftest import Scim2Server, run_cli, write_config

pytestmark = pytest.mark.e2e


def configure(sb: Sandbox, server: Scim2Server, tmp_path: Path) -> str:
    config = sb.config(scope="all")
    config["target"] = {"url": server.url, "token": server.token, "flavor": "generic",
                        "rate_limit_per_minute": 0, "concurrency": 4}
    return str(write_config(tmp_path, config))


def sync(cfg: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("--config", cfg, "sync", "--output", "json", *extra)
    return result.exit_code, json.loads(result.stdout)


def by_name(server: Scim2Server) -> dict[str, dict[str, Any]]:
    return {u["userName"].lower(): u for u in server.users()}


def test_full_sync_then_silence_then_one_minimal_patch(sandbox: Sandbox, scim2_server: Scim2Server,
                                                       tmp_path: Path) -> None:
    cfg = configure(sandbox, scim2_server, tmp_path)

    code, out = sync(cfg, "--dry-run")
    assert code == 0 and scim2_server.writes() == []

    code, out = sync(cfg)
    assert code == 0, out["result"]
    held = by_name(scim2_server)
    enabled = [u for u in sandbox.graph.users if u.get("accountEnabled", True)]
    assert len(held) == len(enabled)
    for user in enabled:
        target = held[user["userPrincipalName"].lower()]
        assert target["displayName"] == user["displayName"]
        assert target.get("title") == user.get("jobTitle")
        assert target.get("active") is True

    scim2_server.requests.clear()
    code, out = sync(cfg)
    assert code == 0
    assert out["plan"]["changes"] == []
    assert scim2_server.writes() == []

    user = enabled[0]
    sandbox.graph.set_user(user["id"], department="Research & Development")
    scim2_server.requests.clear()
    code, out = sync(cfg)
    assert code == 0
    (write,) = scim2_server.writes()
    assert write.method == "PATCH"
    body = json.loads(write.body)
    dept = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
    assert body["Operations"] == [{"op": "replace", "path": dept,
                                   "value": "Research & Development"}]
    target = by_name(scim2_server)[user["userPrincipalName"].lower()]
    ext = target["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    assert ext["department"] == "Research & Development"


def test_disable_deactivates_on_generic_target(sandbox: Sandbox, scim2_server: Scim2Server,
                                               tmp_path: Path) -> None:
    cfg = configure(sandbox, scim2_server, tmp_path)
    assert sync(cfg)[0] == 0
    user = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.set_user(user["id"], accountEnabled=False)
    scim2_server.requests.clear()
    code, _ = sync(cfg)
    assert code == 0
    (write,) = scim2_server.writes()
    assert json.loads(write.body)["Operations"] == [
        {"op": "replace", "path": "active", "value": False}]
    assert by_name(scim2_server)[user["userPrincipalName"].lower()]["active"] is False
    scim2_server.requests.clear()
    assert sync(cfg)[1]["plan"]["changes"] == []
    assert scim2_server.writes() == []


def test_generic_target_gets_groups_created_with_members_and_managers(
        sandbox: Sandbox, scim2_server: Scim2Server, tmp_path: Path) -> None:
    config = sandbox.config()  # scope: assigned
    config["target"] = {"url": scim2_server.url, "token": scim2_server.token,
                        "flavor": "generic", "rate_limit_per_minute": 0}
    cfg = str(write_config(tmp_path, config))
    code, out = sync(cfg)
    assert code == 0, out["result"]
    users = by_name(scim2_server)
    ids = {u["id"]: name for name, u in users.items()}
    groups = {}
    for resource in scim2_server.storage.resources:
        data = resource.model_dump()
        if "members" in data or data.get("schemas") == [
                "urn:ietf:params:scim:schemas:core:2.0:Group"]:
            groups[data["displayName"]] = {ids[m["value"]] for m in data.get("members") or []}
    scoped = {u["id"]: u["userPrincipalName"].lower() for u in sandbox.graph.users}
    created = {c["identity"] for c in out["plan"]["group_changes"]}
    assert created == set(groups)  # every assigned group was created (Nested Team too)
    for group in sandbox.graph.groups:
        if group["displayName"] in groups:
            want = {scoped[m] for m in group["members"] if scoped.get(m) in users}
            assert groups[group["displayName"]] == want
    ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    by_id = {u["id"]: u for u in sandbox.graph.users}
    with_manager = 0
    for uid, name in scoped.items():
        manager = by_id[uid].get("manager")
        if name in users and manager and scoped.get(manager) in users:
            ref = users[name][ext]["manager"]["value"]
            assert ref == users[scoped[manager]]["id"]
            with_manager += 1
    assert with_manager > 5

    scim2_server.requests.clear()
    code, out = sync(cfg)
    assert code == 0
    assert out["plan"]["changes"] == [] and out["plan"]["group_changes"] == []
    assert scim2_server.writes() == []

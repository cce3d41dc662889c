"""Incremental runs converge: after random directory changes and one incremental run, a
full comparison (``sync --full --dry-run``) finds nothing left to do.

Seeded rounds of mixed changes — attributes, managers, renames, enable/disable, soft and
hard deletes, restores, new users, membership moves — against the demo sandbox (scope
``assigned``, groups and managers mapped). Whatever path an incremental run takes (the
snapshot, or reading the directory), its result must equal a full sync's.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from genesys_prov.sandbox import Sandbox
from tests.conftest import run_cli, write_config

pytestmark = pytest.mark.e2e


def _sync(cfg: str, *extra: str) -> dict[str, Any]:
    result = run_cli("--config", cfg, "sync", "--output", "json", *extra)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _mutations(sb: Sandbox, rng: random.Random) -> list[Callable[[], str]]:
    graph = sb.graph

    def present() -> dict[str, Any]:
        return rng.choice(graph.users)

    def retitle() -> str:
        user = present()
        graph.set_user(user["id"], jobTitle=f"Title {rng.randrange(1000)}")
        return f"retitle {user['id']}"

    def move_department() -> str:
        user = present()
        graph.set_user(user["id"], department=rng.choice(["Sales", "Support", "Ops"]))
        return f"department {user['id']}"

    def toggle() -> str:
        user = present()
        graph.set_user(user["id"], accountEnabled=not user.get("accountEnabled", True))
        return f"toggle {user['id']}"

    def new_manager() -> str:
        user, boss = present(), present()
        graph.set_user(user["id"], manager=None if boss is user else boss["id"])
        return f"manager {user['id']}"

    def rename() -> str:
        user = present()
        local, _, domain = user["userPrincipalName"].partition("@")
        graph.set_user(user["id"], userPrincipalName=f"{local}.r{rng.randrange(99)}@{domain}")
        return f"rename {user['id']}"

    def soft_delete() -> str:
        user = present()
        graph.soft_delete_user(user["id"])
        return f"soft delete {user['id']}"

    def restore() -> str:
        if not graph.deleted_users:
            return retitle()
        user_id = rng.choice(sorted(graph.deleted_users))
        graph.restore_user(user_id)
        return f"restore {user_id}"

    def hard_delete() -> str:
        user = present()
        graph.remove_user(user["id"])
        return f"hard delete {user['id']}"

    def join() -> str:
        group, user = rng.choice(graph.groups), present()
        graph.add_group_member(group["id"], user["id"])
        return f"join {user['id']} {group['displayName']}"

    def leave() -> str:
        group = rng.choice([g for g in graph.groups if g.get("members")] or graph.groups)
        if not group.get("members"):
            return retitle()
        member = rng.choice(group["members"])
        graph.remove_group_member(group["id"], member)
        return f"leave {member} {group['displayName']}"

    def newcomer() -> str:
        user_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        graph.add_user({"id": user_id, "userPrincipalName": f"n{user_id[:8]}@contoso.com",
                        "displayName": f"New {user_id[:8]}", "accountEnabled": True,
                        "jobTitle": "Agent", "manager": present()["id"]})
        graph.add_group_member(rng.choice(graph.groups)["id"], user_id)
        return f"new {user_id}"

    weighted = [retitle] * 4 + [move_department] * 2 + [new_manager] * 2 + [
        toggle, rename, soft_delete, restore, hard_delete, join, leave, newcomer]
    return weighted


@pytest.mark.parametrize(("seed", "variant"), [(1, "assigned"), (3, "assigned"),
                                               (7, "nested"), (11, "all")])
def test_incremental_runs_converge_with_a_full_sync(sandbox: Sandbox, tmp_path: Path,
                                                    seed: int, variant: str) -> None:
    config = sandbox.config(scope="all") if variant == "all" else sandbox.config()
    if variant == "nested":  # membership changes then read the directory
        config["source"]["nested_groups"] = True
    cfg = str(write_config(tmp_path, config))
    _sync(cfg)
    rng = random.Random(seed)
    mutations = _mutations(sandbox, rng)
    modes = set()
    for round_no in range(12):
        done = [rng.choice(mutations)() for _ in range(rng.randint(1, 3))]
        out = _sync(cfg, "--allow-deletions")
        modes.add("full" if out["mode"] == "full" else
                  "read" if "directory was read" in out["mode_reason"] else "snapshot")
        assert out["result"] is None or not [
            o for o in out["result"]["outcomes"] if o["status"] == "failure"], done
        check = _sync(cfg, "--full", "--dry-run")
        left = [(c["action"], c["identity"], c["attributes"]) for c in check["plan"]["changes"]]
        groups = [(g["identity"], g["add_members"], g["remove_members"])
                  for g in check["plan"]["group_changes"]]
        assert (left, groups) == ([], []), f"round {round_no}: {done} → {out['mode_reason']}"
    assert "snapshot" in modes  # incremental runs planned from the snapshot
    if variant == "nested":
        assert "read" in modes  # and from a directory read

"""Reviewed plans: `sync --dry-run --plan-out` then `apply` applies exactly that plan, and
nothing that moved in between."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genesys_prov.sandbox import Sandbox
from tests.conftest import run_cli, write_config

pytestmark = pytest.mark.e2e


def make(sb: Sandbox, tmp_path: Path) -> tuple[str, Path]:
    cfg = str(write_config(tmp_path, sb.config()))
    plan = tmp_path / "plan.json"
    result = run_cli("--config", cfg, "sync", "--dry-run", "--plan-out", str(plan))
    assert result.exit_code == 0, result.stderr
    assert sb.genesys.writes() == []
    return cfg, plan


def test_apply_changes_exactly_the_plan_and_nothing_that_moved(sandbox: Sandbox,
                                                               tmp_path: Path) -> None:
    cfg, plan = make(sandbox, tmp_path)
    assert oct(plan.stat().st_mode & 0o777) == "0o600"
    document = json.loads(plan.read_text())
    update = next(c for c in document["changes"] if c["action"] == "update")
    assert update["version"]  # the target's ETag when the plan was made
    # meanwhile an admin edits that user in Genesys: its version moves on
    target = sandbox.genesys.users[update["target_id"]]
    import requests

    session = requests.Session()
    session.verify = str(sandbox.ca_bundle)
    session.trust_env = False
    response = session.patch(
        f"{sandbox.genesys_url}/Users/{target['id']}",
        headers={"Authorization": f"Bearer {sandbox.genesys_static_token}"},
        json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [{"op": "replace", "path": "title", "value": "Edited by hand"}]})
    assert response.status_code in (200, 204)
    sandbox.genesys.reset_log()

    result = run_cli("--config", cfg, "apply", str(plan), "--output", "json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    outcomes = {o["identity"]: o for o in out["result"]["outcomes"]}
    assert outcomes[update["identity"]]["status"] == "skipped"
    assert outcomes[update["identity"]]["code"] == "ChangedSincePlan"
    assert sandbox.genesys.users[target["id"]]["title"] == "Edited by hand"  # not overwritten
    planned = {(c["action"], c["identity"]) for c in document["changes"]}
    applied = {(o["action"], o["identity"]) for o in out["result"]["outcomes"]}
    assert applied == planned  # exactly the plan
    posts = [w for w in sandbox.genesys.writes() if w.method == "POST"]
    assert len(posts) == sum(1 for c in document["changes"] if c["action"] == "create")
    patches = [w for w in sandbox.genesys.writes() if w.method == "PATCH" and "/Users/" in w.path]
    assert all(w.headers.get("If-Match") for w in patches)


def test_tampered_foreign_or_stale_plans_are_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg, plan = make(sandbox, tmp_path)
    document = json.loads(plan.read_text())
    create = next(c for c in document["changes"] if c["action"] == "create")
    create["attributes"][0]["new"] = "tampered"
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(document))
    result = run_cli("--config", cfg, "apply", str(tampered))
    assert result.exit_code == 2 and "checksum does not match" in result.stderr

    result = run_cli("--config", cfg, "apply", str(plan), "--max-age", "0s")
    assert result.exit_code == 2 and "--max-age" in result.stderr

    mappings = tmp_path / "mappings.yaml"
    mappings.write_text(mappings.read_text().replace("source: jobTitle", "source: department"))
    result = run_cli("--config", cfg, "apply", str(plan))
    assert result.exit_code == 2 and "changed since the plan was made" in result.stderr
    assert sandbox.genesys.writes() == []


def test_plan_out_needs_dry_run(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, sandbox.config()))
    result = run_cli("--config", cfg, "sync", "--plan-out", str(tmp_path / "p.json"))
    assert result.exit_code == 2 and "--plan-out needs --dry-run" in result.stderr

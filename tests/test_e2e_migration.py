"""The migration story of issue 13, end to end against the sandbox: Entra's provisioning
job ran with its schema (the gallery default, or a customised one), genesys-prov reads that
schema from the sandbox Graph with `mapping import --from-entra`, the result validates, and a
dry run plans nothing — and it would plan something if the import were wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from genesys_prov.sandbox import Sandbox
from genesys_prov.sandbox.graph.synchronization import job_id_for
from tests.conftest import run_cli, write_config
from tests.test_sandbox_entra import NO_CHANGES, changes


def _import(sb: Sandbox, directory: Path) -> tuple[Path, str]:
    """``mapping import --from-entra --out`` with the sandbox's configuration; the config
    path and the import's report (stderr)."""
    config = write_config(directory, sb.config())
    out = directory / "imported.yaml"
    result = run_cli("--config", str(config), "mapping", "import", "--from-entra",
                     "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert "# NOT CONVERTED (" not in out.read_text(encoding="utf-8")
    return config, result.stderr


def _dry_run(config: Path, mappings: Path) -> dict[str, Any]:
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["mappings"] = str(mappings)
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    result = run_cli("--config", str(config), "sync", "--dry-run", "--full", "--output", "json")
    assert result.exit_code == 0, result.stderr
    plan: dict[str, Any] = json.loads(result.stdout)["plan"]
    return plan


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["gallery", "customised"])
def test_import_validate_and_a_dry_run_that_plans_nothing(tmp_path: Path, kind: str) -> None:
    with Sandbox(workdir=tmp_path, entra_job=kind) as sb:
        config, report = _import(sb, tmp_path)
        imported = tmp_path / "imported.yaml"
        assert sb.entra_report is not None
        # the one failure Entra's job has: a group Genesys lacks (groups cannot be created)
        assert [(f.kind, f.status) for f in sb.entra_report.failures] == [("group", 405)]
        assert sb.entra_report.created, "Entra's job provisioned nobody"
        validated = run_cli("mapping", "validate", "--mappings", str(imported), "--offline")
        assert validated.exit_code == 0, validated.stdout + validated.stderr
        plan = _dry_run(config, imported)
        assert changes(plan) == NO_CHANGES
        assert plan["failures"] == []
        assert plan["counts"]["unchanged"] == len(sb.entra_report.created) + len(
            sb.entra_report.updated)
        assert sb.genesys.writes() == []
        header = imported.read_text(encoding="utf-8").split("\nuser:", 1)[0]
        assert sb.service_principal_id in report and "0 error(s)" in report
        assert job_id_for(sb.tenant_id, sb.service_principal_id) in header


@pytest.mark.e2e
def test_the_proof_can_fail_a_scope_lost_in_the_import_shows(tmp_path: Path) -> None:
    """Drop the imported scoping filter: the users Entra left out become creates. The
    zero above is a real comparison, not a dry run that plans nothing whatever it reads."""
    with Sandbox(workdir=tmp_path, entra_job="customised") as sb:
        config, _ = _import(sb, tmp_path)
        imported = tmp_path / "imported.yaml"
        data = yaml.safe_load(imported.read_text(encoding="utf-8"))
        assert data.get("user_scope"), "the customised schema's scoping filter was not imported"
        del data["user_scope"]
        widened = tmp_path / "widened.yaml"
        widened.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        plan = _dry_run(config, widened)
        assert sb.entra_report is not None
        created = [c for c in plan["changes"] if c["action"] == "create"]
        assert len(created) >= 1
        assert not {c["identity"] for c in created} & set(sb.entra_report.created)
        assert sb.genesys.writes() == []


@pytest.mark.e2e
def test_check_shows_entra_job_is_running(tmp_path: Path) -> None:
    with Sandbox(workdir=tmp_path, entra_job="gallery") as sb:
        config = write_config(tmp_path, sb.config())
        result = run_cli("--config", str(config), "check", "--output", "json")
        assert result.exit_code == 0, result.stderr
        steps = json.loads(result.stdout)
        text = json.dumps(steps).lower()
        assert "entra" in text and "active" in text
        sb.graph.set_synchronization_state("Paused")
        paused = run_cli("--config", str(config), "check", "--output", "json")
        assert "paused" in paused.stdout.lower()


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["gallery", "customised"])
def test_the_proof_holds_on_a_synthetic_directory(tmp_path: Path, kind: str) -> None:
    """The same story on 400 generated users (groups, managers, disabled users, several
    departments): the measured version is `python -m genesys_prov.sandbox.migrationcheck`."""
    from genesys_prov.sandbox.migrationcheck import migration_check

    figures = migration_check(400, kind, tmp_path)
    assert figures["import"]["not_converted"] == 0 and figures["import"]["valid"]
    assert set(figures["dry_run"]["planned"].values()) == {0}
    assert figures["dry_run"]["unchanged"] == figures["entra_job"]["created"] > 0
    assert figures["dry_run"]["target_writes"] == 0
    if kind == "customised":
        assert figures["entra_job"]["entitled"] < 400  # the scoping filter left users out

"""What ships: the wheel's package data covers every data file, and the deployment examples
(systemd unit + timer, Kubernetes CronJob) are well-formed. `.ci/package-check` builds the
wheel and runs it outside the checkout; these tests keep it from going stale quietly."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from genesys_prov.config import parse_config
from genesys_prov.strict_yaml import hide_variables, load_yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "genesys_prov"


def _package_data() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["genesys_prov"]
    assert isinstance(patterns, list)
    return [str(p) for p in patterns]


def test_every_data_file_is_in_the_wheel() -> None:
    patterns = _package_data()
    data_files = sorted(
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    )
    assert "data/mappings.yaml" in data_files
    missing = [f for f in data_files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert missing == [], f"add these to [tool.setuptools.package-data]: {missing}"


def test_the_default_mappings_ship_identical_to_the_repository_copy() -> None:
    assert (PACKAGE / "data" / "mappings.yaml").read_text(encoding="utf-8") == \
        (ROOT / "mappings.yaml").read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_systemd_units_verify(tmp_path: Path) -> None:
    executable = shutil.which("genesys-prov") or str(Path(shutil.which("python3") or "/bin/sh"))
    for name in ("genesys-prov.service", "genesys-prov.timer"):
        text = (ROOT / "examples" / "systemd" / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("/usr/local/bin/genesys-prov", executable),
                                     encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "genesys-prov.service"),
         str(tmp_path / "genesys-prov.timer")],
        capture_output=True, text=True, timeout=60, check=False)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if str(tmp_path) in line
            or "genesys-prov" in line]
    assert done.returncode == 0 and ours == [], done.stdout + done.stderr


def test_the_kubernetes_cronjob_is_complete() -> None:
    docs = list(yaml.safe_load_all(
        (ROOT / "examples" / "kubernetes" / "cronjob.yaml").read_text(encoding="utf-8")))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"ServiceAccount", "PersistentVolumeClaim", "CronJob"}
    job = kinds["CronJob"]["spec"]
    assert job["concurrencyPolicy"] == "Forbid"
    pod = job["jobTemplate"]["spec"]["template"]
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod["spec"]["serviceAccountName"] == kinds["ServiceAccount"]["metadata"]["name"]
    assert "azure.workload.identity/client-id" in kinds["ServiceAccount"]["metadata"][
        "annotations"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]
              if "persistentVolumeClaim" in v}
    assert claims == {kinds["PersistentVolumeClaim"]["metadata"]["name"]}
    raw = load_yaml(hide_variables(
        (ROOT / "examples" / "kubernetes" / "genesys-prov.yaml").read_text(encoding="utf-8")),
        "genesys-prov.yaml")
    assert raw["state_dir"] == next(
        m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]
        if m["name"] == "state")
    # what the workload identity webhook and the Secret put into the pod's environment
    environ = {"AZURE_TENANT_ID": "8a3f5c2e-4b1d-4e6f-9a7c-2d5e8f1b3c4a",
               "AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
               "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
               "GENESYS_CLIENT_SECRET": "not-a-secret"}
    config = parse_config((ROOT / "examples" / "kubernetes" / "genesys-prov.yaml").read_text(
        encoding="utf-8"), base_dir=ROOT, environ=environ)
    assert config.source.auth == "federated"
    assert str(config.source.federated_token_file) == environ["AZURE_FEDERATED_TOKEN_FILE"]

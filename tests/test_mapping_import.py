"""`genesys-prov mapping import` end to end (Graph faked with `responses`, files in tmp_path),
and the Entra job's state in `check`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses

from genesys_prov.config import SourceConfig
from genesys_prov.errors import AuthError
from genesys_prov.http import HttpClient, RateLimiter, make_session
from genesys_prov.mapping.entra_import import convert_schema
from genesys_prov.source.graph import GraphReader
from genesys_prov.sync.check import FIGHT, describe_job, entra_job_step
from tests.conftest import run_cli

DATA = Path(__file__).parent / "data" / "entra"
GRAPH = "https://graph.example.test"
SP = "4b7e2f9c-1d3a-4e8b-a6c5-0f2d7b9e3a18"
JOBS = f"{GRAPH}/v1.0/servicePrincipals/{SP}/synchronization/jobs"
GALLERY_JOB = "PureCloudByGenesys.0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210"
OTHER_JOB = "AAD2AADProvisioning.aaaaaaaabbbbbbbbccccccccdddddddd.00000000111111112222222233333333"
DENIED = {"error": {"code": "Authorization_RequestDenied",
                    "message": "Insufficient privileges to complete the operation."}}


def gallery() -> dict[str, Any]:
    data = json.loads((DATA / "gallery_schema.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def job(job_id: str, code: str = "Paused", state: str = "Paused", **status: Any) -> dict[str, Any]:
    return {"id": job_id, "templateId": job_id.split(".")[0],
            "schedule": {"expiration": None, "interval": "PT40M", "state": state},
            "status": {"code": code, "lastExecution": None, "quarantine": None, **status}}


@pytest.fixture(autouse=True)
def graph_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GraphReader, "token", lambda self, fresh=False: "graph-token")


def configure(tmp_path: Path) -> str:
    (tmp_path / "mappings.yaml").write_text(
        "user:\n  - {target: userName, source: userPrincipalName, match: 1}\n")
    path = tmp_path / "genesys-prov.yaml"
    path.write_text(f"""
source:
  tenant_id: contoso.onmicrosoft.com
  client_id: 11111111-2222-3333-4444-555555555555
  client_secret: graph-secret-value
  graph_url: {GRAPH}
  service_principal_id: {SP}
target:
  url: https://api.mypurecloud.ie/api/v2/scim/v2
  token: genesys-token-value
""")
    return str(path)


def reader() -> GraphReader:
    cfg = SourceConfig(tenant_id="t", client_id="c", client_secret="graph-secret-1",
                       graph_url=GRAPH)
    return GraphReader(cfg, HttpClient(make_session(), RateLimiter(0), timeout=5,
                                       sleep=lambda s: None))


@responses.activate
def test_jobs_and_schema_are_read_from_graph() -> None:
    responses.get(JOBS, json={"value": [job(GALLERY_JOB)]})
    responses.get(f"{JOBS}/{GALLERY_JOB}/schema", json=gallery())
    graph = reader()
    assert [j["id"] for j in graph.synchronization_jobs(SP)] == [GALLERY_JOB]
    assert graph.synchronization_schema(SP, GALLERY_JOB)["id"] == GALLERY_JOB
    assert [c.request.headers["Authorization"] for c in responses.calls] == [
        "Bearer graph-token"] * 2


@responses.activate
def test_403_names_the_permission() -> None:
    responses.get(JOBS, status=403, json=DENIED)
    with pytest.raises(AuthError) as caught:
        reader().synchronization_jobs(SP)
    assert "HTTP 403" in str(caught.value) and "Authorization_RequestDenied" in str(caught.value)
    assert "needs the application permission Synchronization.Read.All" in str(caught.value)


@responses.activate
def test_import_from_entra_403_exits_4_in_one_line(tmp_path: Path) -> None:
    responses.get(JOBS, status=403, json=DENIED)
    result = run_cli("--config", configure(tmp_path), "mapping", "import", "--from-entra")
    assert result.exit_code == 4
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "Synchronization.Read.All" in result.stderr


@responses.activate
def test_several_jobs_the_one_that_provisions_a_scim_app_is_used(tmp_path: Path) -> None:
    inbound = gallery()
    inbound["id"] = OTHER_JOB
    inbound["synchronizationRules"][0]["targetDirectoryName"] = "Azure Active Directory"
    responses.get(JOBS, json={"value": [job(OTHER_JOB), job(GALLERY_JOB)]})
    responses.get(f"{JOBS}/{OTHER_JOB}/schema", json=inbound)
    responses.get(f"{JOBS}/{GALLERY_JOB}/schema", json=gallery())
    out = tmp_path / "imported.yaml"
    result = run_cli("--config", configure(tmp_path), "mapping", "import", "--from-entra",
                     "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    text = out.read_text(encoding="utf-8")
    expected = convert_schema(gallery(), f"service principal {SP}", "2000-01-01").text
    assert text.split("\n", 1)[1] == expected.split("\n", 1)[1]  # all but the date
    assert f"# Source: service principal {SP}; job {GALLERY_JOB};" in text
    assert (f"2 provisioning jobs: using {GALLERY_JOB} (its schema has a rule from Entra to an "
            f"application); not used: {OTHER_JOB} (no rule from Entra to an application)"
            ) in result.stderr
    assert f"Wrote {out}." in result.stderr


@responses.activate
def test_an_explicit_service_principal_wins(tmp_path: Path) -> None:
    other = "99999999-8888-7777-6666-555555555555"
    url = f"{GRAPH}/v1.0/servicePrincipals/{other}/synchronization/jobs"
    responses.get(url, json={"value": [job(GALLERY_JOB)]})
    responses.get(f"{url}/{GALLERY_JOB}/schema", json=gallery())
    result = run_cli("--config", configure(tmp_path), "mapping", "import", "--from-entra", other)
    assert result.exit_code == 0, result.stderr
    assert f"# Source: service principal {other};" in result.stdout
    assert [c.request.url.split("?")[0] for c in responses.calls] == [
        url, f"{url}/{GALLERY_JOB}/schema"]


@responses.activate
def test_no_job_is_a_usage_error(tmp_path: Path) -> None:
    responses.get(JOBS, json={"value": []})
    result = run_cli("--config", configure(tmp_path), "mapping", "import", "--from-entra")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: the application (service principal {SP}) has no "
                             "provisioning job: nothing to import\n")


def write_schema(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_from_file_prints_the_mappings_and_reports_on_stderr(tmp_path: Path) -> None:
    path = write_schema(tmp_path, gallery())
    result = run_cli("mapping", "import", "--from-file", path)
    assert result.exit_code == 0, result.stderr
    expected = convert_schema(gallery(), f"file {path}", "2000-01-01").text
    assert result.stdout.split("\n", 1)[1] == expected.split("\n", 1)[1]
    assert result.stderr.splitlines() == [
        f"Imported Entra's rule 'USER_OUTBOUND_USER' from file {path}.",
        "12 element(s) converted, 0 NOT converted.",
        "mapping validate --offline: 0 error(s), 0 warning(s)"]


def test_out_writes_the_file_and_never_overwrites_without_force(tmp_path: Path) -> None:
    path = write_schema(tmp_path, gallery())
    out = tmp_path / "mappings-imported.yaml"
    first = run_cli("mapping", "import", "--from-file", path, "--out", str(out))
    assert first.exit_code == 0 and first.stdout == ""
    written = out.read_text(encoding="utf-8")
    assert "\nuser:\n" in written and oct(out.stat().st_mode & 0o777) == "0o644"
    out.write_text("# edited by hand\n", encoding="utf-8")
    again = run_cli("mapping", "import", "--from-file", path, "--out", str(out))
    assert again.exit_code == 2
    assert again.stderr == f"Error: {out} already exists: pass --force to overwrite it\n"
    assert out.read_text(encoding="utf-8") == "# edited by hand\n"
    forced = run_cli("mapping", "import", "--from-file", path, "--out", str(out), "--force")
    assert forced.exit_code == 0
    assert out.read_text(encoding="utf-8") == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mappings-imported.yaml",
                                                          "schema.json"]  # no temporary left
    validate = run_cli("mapping", "validate", "--mappings", str(out), "--offline")
    assert validate.exit_code == 0 and "0 error(s), 0 warning(s)" in validate.stdout


def test_output_json_has_everything_on_stdout(tmp_path: Path) -> None:
    s = gallery()
    s["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"][4][
        "flowType"] = "ValueAddOnly"
    result = run_cli("mapping", "import", "--from-file", write_schema(tmp_path, s),
                     "--output", "json")
    assert result.exit_code == 0 and result.stderr == ""
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["out"] is None and data["notes"] == []
    assert len(data["converted"]) == 11
    assert data["not_converted"] == [{
        "section": "user", "yaml": "- {target: title, source: jobTitle}",
        "reason": "flowType ValueAddOnly (sets the value only while the target has none) has "
                  "no equivalent",
        "origin": {"rule": "USER_OUTBOUND_USER",
                   "object_mapping": "Provision Azure Active Directory Users",
                   "target": "title"}}]
    assert "# NOT CONVERTED (flowType ValueAddOnly" in data["mappings"]


def test_not_converted_items_are_listed_on_stderr(tmp_path: Path) -> None:
    s = gallery()
    s["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"][4][
        "flowType"] = "AttributeAddOnly"
    result = run_cli("mapping", "import", "--from-file", write_schema(tmp_path, s))
    assert result.exit_code == 0
    assert "  NOT CONVERTED: user 'title': flowType AttributeAddOnly" in result.stderr
    assert "      - {target: title, source: jobTitle}" in result.stderr
    assert "11 element(s) converted, 1 NOT converted." in result.stderr


def test_a_result_that_does_not_validate_is_written_and_exits_2(tmp_path: Path) -> None:
    s = gallery()
    s["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"][0][
        "matchingPriority"] = 0
    out = tmp_path / "m.yaml"
    result = run_cli("mapping", "import", "--from-file", write_schema(tmp_path, s),
                     "--out", str(out))
    assert result.exit_code == 2
    assert out.exists()
    assert "  error: imported mappings: no user mapping is marked for matching" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"Error: {out} do not pass `mapping validate --offline` (1 error(s)): imported "
        "mappings: no user mapping is marked for matching (add match: 1 to one, usually "
        "userName)")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not JSON: Expecting property name enclosed in double quotes at line 1, "
                  "column 2"),
    (json.dumps({"value": [job(GALLERY_JOB)]}), 'a Graph list ({"value": [...]}), not a '
                                                 "synchronizationSchema"),
    (json.dumps({"id": "x"}), "not a synchronizationSchema (expected a JSON object with a "
                              "'synchronizationRules' list)"),
])
def test_a_bad_file_is_one_line_exit_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "schema.json"
    path.write_text(content, encoding="utf-8")
    result = run_cli("mapping", "import", "--from-file", str(path))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {path}: {message}")
    assert len(result.stderr.splitlines()) == 1


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text("\ufeff" + json.dumps(gallery()), encoding="utf-8")
    assert run_cli("mapping", "import", "--from-file", str(path)).exit_code == 0


@pytest.mark.parametrize("args", [[], ["--from-file", "a.json", "--from-entra"]])
def test_exactly_one_source(args: list[str]) -> None:
    result = run_cli("mapping", "import", *args)
    assert result.exit_code == 2
    assert result.stderr == "Error: give one of --from-entra [SP_ID] or --from-file PATH\n"


def test_describe_job_states() -> None:
    last = {"state": "Succeeded", "timeBegan": "2026-12-04T08:00:00Z",
            "timeEnded": "2026-12-04T08:02:10Z"}
    text, running = describe_job(job(GALLERY_JOB, "Active", "Active", lastExecution=last))
    assert running
    assert text == (f"job {GALLERY_JOB}: running (active), schedule Active, every 40 min, "
                    "last cycle 2026-12-04T08:02:10Z Succeeded")
    text, running = describe_job(job(GALLERY_JOB))
    assert not running and ": paused, schedule Paused, every 40 min, no cycle yet" in text
    quarantine = {"reason": "EncounteredBaseEscrowThreshold", "currentBegan": "2026-12-01T00:00Z",
                  "error": {"code": "x", "message": "too many failures"}}
    text, running = describe_job(job(GALLERY_JOB, "Quarantine", "Active",
                                     quarantine=quarantine))
    assert running
    assert ("quarantined (reason: EncounteredBaseEscrowThreshold: too many failures; since "
            "2026-12-01T00:00Z)") in text


@responses.activate
def test_check_step_warns_when_entra_job_runs() -> None:
    responses.get(JOBS, json={"value": [job(GALLERY_JOB, "Active", "Active")]})
    step = entra_job_step(reader(), SP)
    assert step.ok and step.warning
    assert step.detail.endswith(FIGHT) and "running (active)" in step.detail


@responses.activate
def test_check_step_paused_job_is_fine() -> None:
    responses.get(JOBS, json={"value": [job(GALLERY_JOB)]})
    step = entra_job_step(reader(), SP)
    assert step.ok and not step.warning and "paused" in step.detail


@responses.activate
def test_check_step_without_permission_says_why_and_does_not_fail() -> None:
    responses.get(JOBS, status=403, json=DENIED)
    step = entra_job_step(reader(), SP)
    assert step.ok and step.warning
    assert step.detail.startswith("could not be read: Graph refused GET ")
    assert "Synchronization.Read.All" in step.detail


def test_check_step_without_a_service_principal() -> None:
    step = entra_job_step(reader(), None)
    assert step.ok and not step.warning
    assert step.detail == "not checked: no source.service_principal_id configured"


def test_from_entra_without_a_service_principal_says_how(tmp_path: Path) -> None:
    cfg = configure(tmp_path)
    text = Path(cfg).read_text().replace(f"  service_principal_id: {SP}\n", "  scope: all\n")
    Path(cfg).write_text(text)
    result = run_cli("--config", cfg, "mapping", "import", "--from-entra")
    assert result.exit_code == 2
    assert result.stderr == ("Error: --from-entra needs the enterprise application's service "
                             "principal id: --from-entra SP_ID, or "
                             "source.service_principal_id\n")


def test_the_check_table_shows_a_warning() -> None:
    from rich.console import Console

    from genesys_prov.console import check_table
    from genesys_prov.sync.check import CheckResult, CheckStep

    result = CheckResult([CheckStep("graph: token", True, "token acquired"),
                          CheckStep("entra: provisioning job", True, "running", warning=True)])
    console = Console(width=120, record=True)
    console.print(check_table(result))
    lines = console.export_text().splitlines()
    assert any("entra: provisioning job" in line and "warning" in line for line in lines)
    assert result.ok and result.data()["steps"][1]["warning"] is True

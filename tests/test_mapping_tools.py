"""`genesys-prov mapping test` and `mapping validate` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genesys_prov.sandbox import Sandbox
from tests.conftest import run_cli, write_config


@pytest.mark.parametrize(
    ("expression", "attrs", "expected"),
    [
        ('Append([userPrincipalName], ".test")', ["userPrincipalName=John.Doe@contoso.com"],
         "John.Doe@contoso.com.test"),
        ("Coalesce([mail],[userPrincipalName])", ["userPrincipalName=John.Doe@contoso.com"],
         "John.Doe@contoso.com"),
        ('Replace([mobile], , "[()\\\\s-]+", , "", , )', ["mobile=+1 (999) 888-7777"],
         "+19998887777"),
        ('Switch([state], "Australia/Sydney", "NSW","Australia/Sydney","QLD",'
         '"Australia/Brisbane")', ["state=QLD"], "Australia/Brisbane"),
        ('ToLower(Join("@", NormalizeDiacritics(StripSpaces(Join(".", [givenName], '
         '[surname]))), "contoso.com"))', ["givenName=Zoë", "surname=Smith"],
         "zoe.smith@contoso.com"),
        ("Not([IsSoftDeleted])", ["accountEnabled=false"], "False"),
        ("[telephoneNumber]", ["businessPhones=+1 425", "businessPhones=+1 426"], "+1 425"),
        ("Join(\",\", [proxyAddresses])", ["proxyAddresses=a", "proxyAddresses=b"], "a,b"),
    ],
)
def test_mapping_test_prints_the_value_alone(expression, attrs, expected):
    args = ["mapping", "test", expression]
    for attr in attrs:
        args += ["--attr", attr]
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected + "\n"


def test_mapping_test_json_null_lists_and_redact(tmp_path: Path):
    result = run_cli("mapping", "test", "[mail]", "--json")
    assert json.loads(result.stdout) == {"value": None}
    result = run_cli("mapping", "test", "Split([x], \",\")", "--attr", "x=a,b", "--json")
    assert json.loads(result.stdout) == {"value": ["a", "b"]}
    result = run_cli("mapping", "test", "Redact([x])", "--attr", "x=secret")
    assert result.stdout == "[Redact]\n"
    result = run_cli("mapping", "test", "Redact([x])", "--attr", "x=secret", "--reveal")
    assert result.stdout == "secret\n"
    user = tmp_path / "user.json"
    user.write_text(json.dumps({"givenName": "Ada", "surname": "Lovelace"}))
    result = run_cli("mapping", "test", 'Join(" ", [givenName], [surname])', "--user",
                     str(user))
    assert result.stdout == "Ada Lovelace\n"


def test_mapping_test_syntax_error_exits_2_with_caret():
    result = run_cli("mapping", "test", 'Join(".", [givenName]')
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: ") and "line 1, column 5" in lines[0]
    assert lines[2].strip() == "^"


def test_mapping_test_runtime_error_exits_with_reason():
    result = run_cli("mapping", "test", "CDate([x])", "--attr", "x=garbage")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")


def test_mapping_test_from_graph(sandbox: Sandbox, tmp_path: Path):
    cfg = str(write_config(tmp_path, sandbox.config()))
    user = sandbox.graph.users[0]
    result = run_cli("--config", cfg, "mapping", "test", "ToUpper([userPrincipalName])",
                     "--from-graph", user["userPrincipalName"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == user["userPrincipalName"].upper() + "\n"
    call = [r for r in sandbox.graph.requests if r.path.startswith("/v1.0/users/")][-1]
    assert "userPrincipalName" in call.query["$select"][0]
    assert sandbox.genesys.requests == []


def test_validate_default_mappings_offline_is_clean(tmp_path: Path):
    path = tmp_path / "mappings.yaml"
    path.write_text((Path(__file__).parent.parent / "mappings.yaml").read_text())
    result = run_cli("mapping", "validate", "--mappings", str(path), "--offline",
                     "--output", "json")
    assert result.exit_code == 0, result.stdout
    out = json.loads(result.stdout)
    assert out["ok"] is True and out["findings"] == []
    assert out["schema"] == "the built-in Genesys schema"


def test_validate_reports_errors_and_warnings(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("""
user:
  - {target: displayName, source: displayName, match: 1}
  - {target: nickName, source: mailNickname}
  - {target: 'phoneNumbers[type eq "pager"].value', source: mobile}
  - {target: title, constant: ""}
""")
    result = run_cli("mapping", "validate", "--mappings", str(path), "--offline",
                     "--output", "json")
    assert result.exit_code == 2
    findings = {(f["level"], f["where"]): f["message"]
                for f in json.loads(result.stdout)["findings"]}
    assert "no attribute 'nickName'" in findings[("error", "user mapping 'nickName'")]
    assert "cannot filter on" in findings[("warning", "user mapping 'displayName'")]
    assert "'pager' is not one of" in findings[
        ("warning", "user mapping 'phoneNumbers[type eq \"pager\"].value'")]
    assert "never sent" in findings[("warning", "user mapping 'title'")]


def test_validate_broken_file_is_refused_with_the_caret(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("user:\n  - {target: userName, expression: 'Lower([mail])', match: 1}\n")
    result = run_cli("mapping", "validate", "--mappings", str(path), "--offline")
    assert result.exit_code == 2
    assert "unknown function" in result.stderr.lower() and "^" in result.stderr


def test_validate_online_reads_the_targets_schemas(sandbox: Sandbox, tmp_path: Path):
    cfg = str(write_config(tmp_path, sandbox.config()))
    result = run_cli("--config", cfg, "mapping", "validate", "--output", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    out = json.loads(result.stdout)
    assert out["schema"].startswith("the target's /Schemas")
    assert any(r.path.endswith("/Schemas") for r in sandbox.genesys.requests)
    assert sandbox.genesys.writes() == []


def test_validate_knows_rfc_7643_common_attributes_on_generic_servers(
        sandbox: Sandbox, scim2_server: Any, tmp_path: Path) -> None:
    """Observed: `externalId` was flagged on scim2-server, whose /Schemas lists the common
    attributes apart from the resource's own (RFC 7643 §3.1)."""
    config = sandbox.config(scope="all")
    config["target"] = {"url": scim2_server.url, "token": scim2_server.token,
                        "flavor": "generic"}
    mappings = ("user:\n  - {target: userName, source: userPrincipalName, match: 1}\n"
                "  - {target: externalId, source: objectId}\n")
    cfg = str(write_config(tmp_path, config, mappings))
    result = run_cli("--config", cfg, "mapping", "validate", "--output", "json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["findings"] == []


def test_validate_refuses_both_phone_types_genesys_keeps_in_one_field(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("user:\n  - {target: userName, source: userPrincipalName, match: 1}\n"
                    "  - {target: 'phoneNumbers[type eq \"other\"].value', source: mobile}\n"
                    "  - {target: 'phoneNumbers[type eq \"microsoftteams\"].value', "
                    "source: telephoneNumber}\n")
    result = run_cli("mapping", "validate", "--mappings", str(path), "--offline")
    assert result.exit_code == 2
    assert "microsoftteams and other phone numbers in one field" in result.stdout

"""End to end: a mapping that calls DefaultDomain() against the sandbox Graph and Genesys
emulators — the tenant's default verified domain is read once per run (GET /organization)
and reaches every path that evaluates mappings (full read, snapshot, explain, mapping test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genesys_prov.mapping.mappings_file import default_mappings_text
from genesys_prov.sandbox import Sandbox
from genesys_prov.sandbox.directory.tenant import DOMAIN
from tests.conftest import run_cli, sales_agent_not_in_target, write_config

pytestmark = pytest.mark.e2e

ORG = "GET /v1.0/organization"
TITLE = "Join(\" @ \", [displayName], DefaultDomain())"


def mappings_text() -> str:
    text = default_mappings_text()
    old = "  - {target: title, source: jobTitle}\n"
    assert old in text
    return text.replace(old, f"  - {{target: title, expression: '{TITLE}'}}\n")


def configure(sb: Sandbox, tmp_path: Path) -> str:
    sb.graph.granted_permissions.add("Organization.Read.All")
    return str(write_config(tmp_path, sb.config(), mappings_text()))


def sync(cfg: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli("--config", cfg, "sync", "--output", "json", *extra)
    return result.exit_code, json.loads(result.stdout or "null"), result.stderr


def titles(sb: Sandbox) -> dict[str, str | None]:
    return {u["userName"].lower(): u.get("title") for u in sb.genesys.users.values()
            if u["active"]}


def use_default_domain(sb: Sandbox, domain: str) -> None:
    sb.graph.verified_domains = (  # type: ignore[misc]
        {"name": f"{DOMAIN}", "isDefault": False, "isInitial": True},
        {"name": domain, "isDefault": True, "isInitial": False},
    )


def test_sync_sends_the_default_domain_reading_it_once_per_run(sandbox: Sandbox,
                                                               tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    code, out, err = sync(cfg)
    assert code == 0, err
    assert out["mode"] == "full"
    users = {u["userPrincipalName"].lower(): u for u in sandbox.graph.users}
    held = titles(sandbox)
    unmanaged = {name: title for name, title in held.items() if name not in users}
    assert len(held) > 5
    for name, title in held.items():
        if name in users:
            assert title == f"{users[name]['displayName']} @ {DOMAIN}"
    assert sandbox.graph.counts[ORG] == 1  # not once per user

    # The snapshot path: one changed user, planned without a full read, same domain.
    user = next(u for u in sandbox.graph.users if u["userPrincipalName"].lower() in held)
    sandbox.graph.set_user(user["id"], displayName="Renamed Person")
    sandbox.genesys.reset_log()
    code, out, err = sync(cfg)
    assert code == 0, err
    assert out["mode"] == "incremental"
    (write,) = sandbox.genesys.writes()
    assert {"op": "replace", "path": "title",
            "value": f"Renamed Person @ {DOMAIN}"} in write.body["Operations"]
    assert sandbox.graph.counts[ORG] == 2

    # A new default domain reaches every user on the next run, which reads everything and
    # says why (a dry run first: every managed user planned, nothing written).
    use_default_domain(sandbox, "fabrikam.example")
    sandbox.genesys.reset_log()
    code, out, err = sync(cfg, "--dry-run")
    assert code == 0, err
    assert out["mode"] == "full", out["mode_reason"]
    assert out["mode_reason"] == (f"the tenant's default domain changed from {DOMAIN} to "
                                  "fabrikam.example (DefaultDomain())")
    assert out["plan"]["counts"]["update"] == len(held) - len(unmanaged)
    assert sandbox.genesys.writes() == []
    code, out, err = sync(cfg)
    assert code == 0, err
    assert out["mode"] == "full" and "default domain changed" in out["mode_reason"]
    renamed = {name: title for name, title in titles(sandbox).items() if name in users}
    assert renamed and all(t == f"{users[n]['displayName']} @ fabrikam.example"
                           for n, t in renamed.items())
    assert {n: t for n, t in titles(sandbox).items() if n not in users} == unmanaged
    assert sandbox.graph.counts[ORG] == 4
    code, out, err = sync(cfg)  # the new domain is remembered: incremental again
    assert code == 0 and out["mode"] != "full", out["mode_reason"]


def test_without_organization_read_all_the_run_stops_before_any_write(
        sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, sandbox.config(), mappings_text()))
    assert "Organization.Read.All" not in sandbox.graph.granted_permissions
    code, _, err = sync(cfg)
    assert code == 4, err  # a connection / permission failure
    assert "Graph refused GET /v1.0/organization (HTTP 403)" in err
    assert "needs the application permission Organization.Read.All" in err
    assert sandbox.genesys.writes() == []


def test_no_default_domain_is_an_error_not_a_guess(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    sandbox.graph.verified_domains = ({"name": DOMAIN, "isDefault": False},)  # type: ignore[misc]
    code, _, err = sync(cfg)
    assert code == 4, err
    assert "no default verified domain" in err
    assert sandbox.genesys.writes() == []


def test_mappings_without_default_domain_never_ask(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, sandbox.config()))
    assert sync(cfg)[0] == 0
    assert sandbox.graph.counts[ORG] == 0


def test_explain_shows_the_value_with_the_domain(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    user = sandbox.graph.users[0]
    result = run_cli("--config", cfg, "explain", user["userPrincipalName"], "--output", "json")
    assert result.exit_code == 0, result.stderr
    values = {m["target"]: m.get("value") for m in json.loads(result.stdout)["mappings"]}
    assert values["title"] == f"{user['displayName']} @ {DOMAIN}"
    assert sandbox.graph.counts[ORG] == 1
    assert sandbox.genesys.writes() == []


def test_mapping_test_reads_the_domain_from_graph_or_takes_it_offline(
        sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    user = sandbox.graph.users[0]
    upn = user["userPrincipalName"]
    result = run_cli("--config", cfg, "mapping", "test", TITLE, "--from-graph", upn)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{user['displayName']} @ {DOMAIN}\n"
    assert sandbox.graph.counts[ORG] == 1
    given = run_cli("--config", cfg, "mapping", "test", TITLE, "--from-graph", upn,
                    "--attr", "DefaultDomain=example.org")
    assert given.stdout == f"{user['displayName']} @ example.org\n"
    assert sandbox.graph.counts[ORG] == 1  # an explicit --attr wins: no request
    offline = run_cli("mapping", "test", TITLE, "--attr", "displayName=Ada",
                      "--attr", "DefaultDomain=contoso.com")
    assert offline.exit_code == 0 and offline.stdout == "Ada @ contoso.com\n"
    missing = run_cli("mapping", "test", TITLE, "--attr", "displayName=Ada")
    assert missing.exit_code != 0
    assert "DefaultDomain=DOMAIN" in missing.stderr


def test_provision_creates_the_user_with_the_domain(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    user = sales_agent_not_in_target(sandbox)
    result = run_cli("--config", cfg, "provision", user["userPrincipalName"], "--output",
                     "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    created = next(u for u in sandbox.genesys.users.values()
                   if u["userName"].lower() == user["userPrincipalName"].lower())
    assert created["title"] == f"{user['displayName']} @ {DOMAIN}"
    # once by provision's connection test (`check` tests the permission), once for the user
    assert sandbox.graph.counts[ORG] == 2


def test_check_tests_the_permission_default_domain_needs(sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
    """`check` reads the default domain when the mappings call DefaultDomain(): without
    Organization.Read.All it fails (exit 4) naming the permission, before any sync would."""
    cfg = str(write_config(tmp_path, sandbox.config(), mappings_text()))
    refused = run_cli("--config", cfg, "check", "--output", "json")
    assert refused.exit_code == 4
    steps = {s["name"]: s for s in json.loads(refused.stdout)["steps"]}
    assert not steps["graph: default domain"]["ok"]
    assert "Organization.Read.All" in steps["graph: default domain"]["detail"]
    sandbox.graph.granted_permissions.add("Organization.Read.All")
    passed = run_cli("--config", cfg, "check", "--output", "json")
    assert passed.exit_code == 0, passed.stdout
    steps = {s["name"]: s for s in json.loads(passed.stdout)["steps"]}
    assert steps["graph: default domain"]["detail"] == f"DefaultDomain() is {DOMAIN}"
    plain = str(write_config(tmp_path, sandbox.config()))
    names = [s["name"] for s in json.loads(run_cli("--config", plain, "check", "--output",
                                                   "json").stdout)["steps"]]
    assert "graph: default domain" not in names

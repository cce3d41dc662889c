"""End to end: the CLI against the project's own Graph and Genesys emulators over HTTPS.

Every test asserts on what the emulators received and hold, not only on exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from genesys_prov.mapping.genesys_rules import normalize_phone
from genesys_prov.sandbox import Sandbox
from tests.conftest import run_cli, write_config

pytestmark = pytest.mark.e2e
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def configure(sb: Sandbox, tmp_path: Path, mappings: str | None = None, **target: Any) -> str:
    config = sb.config(scope="all")
    config["target"].update(target)
    return str(write_config(tmp_path, config, mappings))


def sync(cfg: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("--config", cfg, "sync", "--output", "json", *extra)
    return result.exit_code, json.loads(result.stdout)


def genesys_by_username(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {u["userName"].lower(): u for u in sb.genesys.users.values()}


def phone(user: dict[str, Any], kind: str) -> str | None:
    for p in user.get("phoneNumbers") or []:
        if p.get("type") == kind:
            return p.get("value")
    return None


def work_email(user: dict[str, Any]) -> str | None:
    for e in user.get("emails") or []:
        if e.get("type") == "work":
            return e.get("value")
    return None


def test_dry_run_sends_no_writes(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    before = json.dumps(sandbox.genesys.users, sort_keys=True)
    code, out = sync(cfg, "--dry-run")
    assert code == 0
    assert out["dry_run"] is True and out["result"] is None
    assert out["plan"]["counts"]["create"] > 0
    assert sandbox.genesys.writes() == []
    assert {r.method for r in sandbox.genesys.requests} <= {"GET", "POST"}  # POST = token
    assert json.dumps(sandbox.genesys.users, sort_keys=True) == before


def test_first_sync_makes_target_match_directory_then_second_sync_is_silent(
        sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    code, out = sync(cfg)
    assert code == 0, out["plan"]["failures"]
    held = genesys_by_username(sandbox)
    for user in sandbox.graph.users:
        target = held.get(user["userPrincipalName"].lower())
        if not user.get("accountEnabled", True):
            assert target is None or target["active"] is False
            continue
        assert target is not None, user["userPrincipalName"]
        assert target["active"] is True
        assert target["displayName"] == user["displayName"]
        if user.get("jobTitle"):
            assert target.get("title") == user["jobTitle"]
        if user.get("department"):
            assert target[ENTERPRISE]["department"] == user["department"]
        if user.get("mail"):
            assert work_email(target) == user["mail"]
        if user.get("mobilePhone"):
            assert phone(target, "mobile") == normalize_phone(user["mobilePhone"], None)
        if user.get("businessPhones"):
            assert phone(target, "work") == normalize_phone(user["businessPhones"][0], None)
    # nothing was read one user at a time
    gets = [r for r in sandbox.genesys.requests if r.method == "GET"]
    assert all(r.path.endswith(("/Users", "/Groups")) for r in gets)

    sandbox.genesys.reset_log()
    code, out = sync(cfg)
    assert code == 0
    assert out["plan"]["changes"] == []
    assert sandbox.genesys.writes() == []


def test_one_changed_attribute_sends_one_minimal_patch(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    user = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.set_user(user["id"], jobTitle="Chief Listener")
    sandbox.genesys.reset_log()
    code, _ = sync(cfg)
    assert code == 0
    (write,) = sandbox.genesys.writes()
    assert write.method == "PATCH"
    assert write.body["Operations"] == [{"op": "replace", "path": "title",
                                         "value": "Chief Listener"}]
    target = genesys_by_username(sandbox)[user["userPrincipalName"].lower()]
    assert write.path.endswith(f"/Users/{target['id']}")
    assert target["title"] == "Chief Listener"


def test_disabled_user_is_deactivated_not_deleted(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg)[0] == 0
    user = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.set_user(user["id"], accountEnabled=False)
    sandbox.genesys.reset_log()
    code, _ = sync(cfg)
    assert code == 0
    (write,) = sandbox.genesys.writes()
    assert write.method == "PATCH"
    assert write.body["Operations"] == [{"op": "replace", "path": "active", "value": False}]
    assert genesys_by_username(sandbox)[user["userPrincipalName"].lower()]["active"] is False
    # and it is not re-created or re-activated by the next run
    sandbox.genesys.reset_log()
    assert sync(cfg)[0] == 0
    assert sandbox.genesys.writes() == []


def test_inactive_genesys_user_is_reactivated_not_recreated(sandbox: Sandbox,
                                                            tmp_path: Path) -> None:
    inactive = [u for u in sandbox.genesys.users.values() if u.get("active") is False]
    directory = {u["userPrincipalName"].lower(): u for u in sandbox.graph.users}
    matched = [u for u in inactive if u["userName"].lower() in directory]
    assert matched, "the demo data has an inactive Genesys user that is in the directory"
    cfg = configure(sandbox, tmp_path)
    code, _ = sync(cfg)
    assert code == 0
    posts = [w for w in sandbox.genesys.writes() if w.method == "POST"]
    created = {w.body["userName"].lower() for w in posts}
    for user in matched:
        assert user["userName"].lower() not in created
        enabled = directory[user["userName"].lower()].get("accountEnabled", True)
        assert sandbox.genesys.users[user["id"]]["active"] is enabled


def test_429_storm_is_ridden_out(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    sandbox.genesys.throttle_next(15, retry_after=0)
    sandbox.graph.throttle_next(3, retry_after=0)
    code, out = sync(cfg)
    assert code == 0, out
    statuses = [r.status for r in sandbox.genesys.requests]
    assert statuses.count(429) >= 15
    assert sync(cfg)[1]["plan"]["changes"] == []


def test_patch_answering_204_is_accepted(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.genesys.patch_returns_body = False
    cfg = configure(sandbox, tmp_path)
    code, out = sync(cfg)
    assert code == 0
    assert out["result"]["counts"]["failure"] == 0


def test_static_token_works(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.config(oauth=False, scope="all")
    cfg = str(write_config(tmp_path, config))
    assert sync(cfg, "--dry-run")[0] == 0


def test_quote_in_username_is_escaped_and_adopted(sandbox: Sandbox, tmp_path: Path) -> None:
    """A create that collides (409) re-reads by the escaped userName and adopts."""
    from genesys_prov.config import load_config
    from genesys_prov.plan.model import Action, AttributeChange, Change
    from genesys_prov.sync.connections import connect
    from genesys_prov.target.apply import Applier

    name = 'o"brien\\x@contoso.com'
    existing = sandbox.genesys.add_user({"userName": name, "displayName": "Old", "active": True})
    cfg = load_config(configure(sandbox, tmp_path))
    conn = connect(cfg)
    change = Change(Action.CREATE, name, "src-1", None, (
        AttributeChange("userName", None, name), AttributeChange("displayName", None, "New")))
    outcome = Applier(conn.scim, ["userName"]).apply_one(change)
    assert outcome.status == "adopted"
    assert outcome.target_id == existing["id"]
    assert sandbox.genesys.users[existing["id"]]["displayName"] == "New"
    lookups = [r for r in sandbox.genesys.requests if "filter" in r.query]
    assert lookups[-1].query["filter"] == [r'userName eq "o\"brien\\x@contoso.com"']


def test_check_reports_each_step(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    result = run_cli("--config", cfg, "check", "--output", "json")
    assert result.exit_code == 0, result.stdout
    steps = json.loads(result.stdout)["steps"]
    assert [s["name"] for s in steps][:3] == ["graph: token", "graph: read users",
                                             "target: authenticate and filter"]
    assert sandbox.genesys.writes() == []


def test_check_exits_4_on_bad_credentials(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.config()
    config["source"]["client_secret"] = "wrong-secret-value"
    config["target"]["oauth"]["client_secret"] = "also-wrong-value"
    cfg = str(write_config(tmp_path, config))
    result = run_cli("--config", cfg, "check")
    assert result.exit_code == 4
    assert "FAILED" in result.stdout
    assert "wrong-secret-value" not in result.stdout + result.stderr
    assert "also-wrong-value" not in result.stdout + result.stderr
    sync_result = run_cli("--config", cfg, "sync", "--dry-run")
    assert sync_result.exit_code == 4
    assert sync_result.stderr.startswith("Error: ")
    assert "Traceback" not in sync_result.stderr


def test_bad_expression_exits_2_before_any_request(sandbox: Sandbox, tmp_path: Path) -> None:
    bad = "user:\n  - {target: userName, expression: 'ToLower([userPrincipalName]', match: 1}\n"
    cfg = configure(sandbox, tmp_path, mappings=bad)
    result = run_cli("--config", cfg, "sync", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert "^" in result.stderr
    assert sandbox.genesys.requests == [] and sandbox.graph.requests == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["target"].update(concurency=2), "target.concurency: unknown key"),
        (lambda c: c["target"].update(url="http://api.mypurecloud.com/api/v2/scim/v2"),
         "only travel over TLS"),
        (lambda c: c["source"].pop("tenant_id"), "source.tenant_id: required key is missing"),
    ],
)
def test_bad_config_exits_2(sandbox: Sandbox, tmp_path: Path, edit: Any, message: str) -> None:
    config = sandbox.config()
    edit(config)
    cfg = str(write_config(tmp_path, config))
    result = run_cli("--config", cfg, "sync", "--dry-run")
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_yaml_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "genesys-prov.yaml"
    path.write_text("source: [unclosed\n")
    result = run_cli("--config", str(path), "sync")
    assert result.exit_code == 2
    assert "line" in result.stderr and result.stderr.startswith("Error: ")


def test_secrets_never_in_verbose_output(sandbox: Sandbox, tmp_path: Path, capfd) -> None:
    cfg = configure(sandbox, tmp_path)
    result = run_cli("--config", cfg, "-vvv", "sync", "--dry-run", "--output", "json")
    captured = capfd.readouterr()
    everything = result.stdout + result.stderr + captured.out + captured.err
    for secret in (sandbox.client_secret, sandbox.genesys_client_secret):
        assert secret not in everything


def test_certificate_credential_gets_a_graph_token(sandbox: Sandbox, tmp_path: Path) -> None:
    key_path, thumbprint = sandbox.issue_client_certificate()
    config = sandbox.config()
    del config["source"]["client_secret"]
    config["source"]["certificate"] = {"private_key_path": str(key_path),
                                       "thumbprint": thumbprint}
    cfg = str(write_config(tmp_path, config))
    code, out = sync(cfg, "--dry-run")
    assert code == 0
    assert out["plan"]["counts"]["create"] > 0
    assert key_path.read_text() not in json.dumps(out)


def test_expired_genesys_token_is_renewed_once_mid_run(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    assert sync(cfg, "--dry-run")[0] == 0
    # every token issued so far is now invalid; the next run's first call re-authenticates
    sandbox.genesys.expire_tokens()
    from genesys_prov.config import load_config
    from genesys_prov.sync.connections import connect

    conn = connect(load_config(cfg))
    conn.scim._bearer()  # a token the server is about to forget
    sandbox.genesys.expire_tokens()
    assert list(conn.scim.list_users(["userName"]))
    tokens = [r for r in sandbox.genesys.requests if r.path.endswith("/oauth/token")]
    assert len(tokens) >= 3  # dry-run, the forgotten one, the renewal


def test_graph_failing_writes_nothing_and_exits_4(sandbox: Sandbox,
                                                   tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    sandbox.graph.throttle_next(50, retry_after=0, status=503)
    result = run_cli("--config", cfg, "sync")
    assert result.exit_code == 4
    assert re.match(r"Error: Graph: GET /v1.0/[\w/]+ failed with HTTP 503", result.stderr)
    assert sandbox.genesys.writes() == []


def test_demo_command_shows_plan_sync_and_silence() -> None:
    result = run_cli("demo")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "1. sync --dry-run" in out and "2. sync" in out and "3. sync again" in out
    assert "Dry run: would apply" in out and "nothing was written" in out
    assert "Genesys emulator received 0 write(s)." in out
    assert "Applied " in out and ", 0 failed" in out
    assert "Genesys emulator received 0 write(s)." in out
    assert out.rstrip().endswith(
        '[{"op": "replace", "path": "title", "value": "Head of Customer Happiness"}]')
    assert "Incremental: no directory changes since the last run" in out
    # step 4 is an incremental run with one change: one PATCH, nothing else read
    assert ("Incremental (1 directory change(s)): Applied 1 update: 1 succeeded, 0 failed"
            in out)
    assert "Full sync" not in out


def test_sandbox_command_serves_until_stopped(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    directory = tmp_path / "sb"
    proc = subprocess.Popen([sys.executable, "-m", "genesys_prov", "sandbox", "--users", "30",
                             "--dir", str(directory)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        config = directory / "genesys-prov.yaml"
        deadline = time.monotonic() + 60
        while not config.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert config.exists(), proc.stderr.read() if proc.poll() is not None else "timeout"
        code, out = sync(str(config), "--dry-run")
        assert code == 0
        assert out["plan"]["source_users"] == 30
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=30)
    assert "Genesys emulator:" in stdout and "sync --dry-run" in stdout


def test_one_bad_user_fails_alone_and_exits_1(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    bad = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.set_user(bad["id"], mobilePhone="call reception")
    result = run_cli("--config", cfg, "sync", "--output", "json")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    (failure,) = out["plan"]["failures"]
    assert failure["source_id"] == bad["id"] and "call reception" in failure["reason"]
    assert out["result"]["counts"]["failure"] == 0
    held = genesys_by_username(sandbox)
    assert bad["userPrincipalName"].lower() not in held
    others = [u for u in sandbox.graph.users
              if u.get("accountEnabled", True) and u["id"] != bad["id"]]
    assert all(u["userPrincipalName"].lower() in held for u in others)


def test_target_refusal_of_one_write_is_reported_with_scim_detail(sandbox: Sandbox,
                                                                  tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    sandbox.graph.set_user(sandbox.graph.users[0]["id"], userPrincipalName="not-an-email")
    result = run_cli("--config", cfg, "sync", "--output", "json")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    failed = [o for o in out["result"]["outcomes"] if o["status"] == "failure"]
    assert len(failed) == 1
    assert failed[0]["error"].startswith("POST /Users: HTTP 400")
    assert out["result"]["counts"]["success"] >= 20

"""What was observed against servers this project did not write, and as a new user would
(issue 10's findings), each with a test that failed before the fix: reviewed plans on
scim2-server, checks before any write, private state files, escrow and quarantine that help
the admin, Genesys as documented, and one-line errors instead of tracebacks."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import requests

from genesys_prov.sandbox import Sandbox
from genesys_prov.state.db import State
from tests.conftest import Scim2Server, run_cli, write_config

pytestmark = pytest.mark.e2e
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def sync(cfg: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli("--config", cfg, "sync", "--output", "json", *extra)
    out = json.loads(result.stdout) if result.stdout.lstrip().startswith("{") else {}
    return result.exit_code, out, result.stderr


def on_scim2(sb: Sandbox, server: Scim2Server, tmp_path: Path,
             mappings: str | None = None) -> str:
    config = sb.config(scope="all")
    config["target"] = {"url": server.url, "token": server.token, "flavor": "generic",
                        "rate_limit_per_minute": 0, "concurrency": 4}
    return str(write_config(tmp_path, config, mappings))


def hand_edit(server: Scim2Server, user_id: str, title: str) -> None:
    response = requests.patch(
        f"{server.url}/Users/{user_id}", headers={"Authorization": f"Bearer {server.token}"},
        json={"schemas": [PATCH_OP],
              "Operations": [{"op": "replace", "path": "title", "value": title}]}, timeout=10)
    assert response.status_code in (200, 204), response.text


# --- finding 2: reviewed plans that really protect ------------------------------------------

def _plan_a_title_change(sandbox: Sandbox, scim2_server: Scim2Server, tmp_path: Path
                         ) -> tuple[str, Path, dict[str, Any], dict[str, Any]]:
    cfg = on_scim2(sandbox, scim2_server, tmp_path)
    assert sync(cfg)[0] == 0
    users = [u for u in sandbox.graph.users if u.get("accountEnabled", True)][:2]
    for user in users:
        sandbox.graph.set_user(user["id"], jobTitle="Planned Title")
    plan = tmp_path / "plan.json"
    result = run_cli("--config", cfg, "sync", "--dry-run", "--plan-out", str(plan))
    assert result.exit_code == 0, result.stderr
    document = json.loads(plan.read_text())
    by_name = {c["identity"]: c for c in document["changes"]}
    return cfg, plan, by_name[users[0]["userPrincipalName"]], \
        by_name[users[1]["userPrincipalName"]]


def test_a_plan_made_on_scim2_server_holds_versions_and_never_overwrites_a_hand_edit(
        sandbox: Sandbox, scim2_server: Scim2Server, tmp_path: Path) -> None:
    """Observed: the listing trimmed with `attributes=` made scim2-server leave `meta` out,
    the plan held `version: null`, no If-Match was sent, and `apply` overwrote an edit."""
    cfg, plan, edited, untouched = _plan_a_title_change(sandbox, scim2_server, tmp_path)
    assert edited["version"] and untouched["version"]  # meta.version is asked for
    hand_edit(scim2_server, edited["target_id"], "Edited by hand")
    result = run_cli("--config", cfg, "apply", str(plan), "--output", "json")
    assert result.exit_code == 0, result.stderr
    outcomes = {o["identity"]: o for o in json.loads(result.stdout)["result"]["outcomes"]}
    assert outcomes[edited["identity"]]["code"] == "ChangedSincePlan"
    assert outcomes[untouched["identity"]]["status"] == "success"
    held = {u["id"]: u for u in scim2_server.users()}
    assert held[edited["target_id"]]["title"] == "Edited by hand"
    assert held[untouched["target_id"]]["title"] == "Planned Title"


def test_a_change_without_a_version_is_compared_before_it_is_written(
        sandbox: Sandbox, scim2_server: Scim2Server, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that gives no version at all: the object is read and compared with the old
    values the plan saw before anything is written."""
    from genesys_prov.plan import build as planning

    monkeypatch.setattr(planning, "_version", lambda resource: None)
    cfg, plan, edited, untouched = _plan_a_title_change(sandbox, scim2_server, tmp_path)
    assert edited["version"] is None and untouched["version"] is None
    hand_edit(scim2_server, edited["target_id"], "Edited by hand")
    scim2_server.requests.clear()
    result = run_cli("--config", cfg, "apply", str(plan), "--output", "json")
    assert result.exit_code == 0, result.stderr
    outcomes = {o["identity"]: o for o in json.loads(result.stdout)["result"]["outcomes"]}
    assert outcomes[edited["identity"]]["code"] == "ChangedSincePlan"
    assert "Edited by hand" in outcomes[edited["identity"]]["error"]
    assert outcomes[untouched["identity"]]["status"] == "success"
    held = {u["id"]: u for u in scim2_server.users()}
    assert held[edited["target_id"]]["title"] == "Edited by hand"
    assert held[untouched["target_id"]]["title"] == "Planned Title"
    patches = [r for r in scim2_server.requests if r.method == "PATCH"]
    assert [r.path.rsplit("/", 1)[-1] for r in patches] == [untouched["target_id"]]


# --- finding 7: checked before any write -------------------------------------------------------

MISSPELT = """user:
  - {target: userName, source: userPrincipalName, match: 1}
  - {target: displayName, source: displayName}
  - {target: titel, source: jobTitle}
"""


def test_a_target_attribute_that_does_not_exist_fails_before_any_write(
        sandbox: Sandbox, scim2_server: Scim2Server, tmp_path: Path) -> None:
    """Observed: `titel` passed `sync --dry-run`, then failed 19 users with HTTP 400."""
    (tmp_path / "generic").mkdir()
    cfg = on_scim2(sandbox, scim2_server, tmp_path / "generic", MISSPELT)
    for extra in (("--dry-run",), ()):
        code, _, err = sync(cfg, *extra)
        assert code == 2, err
        assert "mapping error(s) against the target's /Schemas" in err and "'titel'" in err
    assert scim2_server.writes() == []

    (tmp_path / "genesys").mkdir()
    cfg = str(write_config(tmp_path / "genesys", sandbox.config(), MISSPELT))
    code, _, err = sync(cfg)
    assert code == 2 and "against the built-in Genesys schema" in err
    assert sandbox.genesys.writes() == []


def test_report_and_plan_paths_are_checked_before_any_write(sandbox: Sandbox,
                                                            tmp_path: Path) -> None:
    """Observed: a --report path in a missing directory failed after the changes were
    applied."""
    cfg = str(write_config(tmp_path, sandbox.config()))
    result = run_cli("--config", cfg, "sync", "--report", str(tmp_path / "nope" / "r.html"))
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"Error: --report {tmp_path / 'nope' / 'r.html'}: the "
                                     f"directory {tmp_path / 'nope'} does not exist")
    result = run_cli("--config", cfg, "sync", "--dry-run", "--plan-out", str(tmp_path))
    assert result.exit_code == 2 and "is a directory" in result.stderr
    assert sandbox.genesys.writes() == []


# --- finding 9: private state -------------------------------------------------------------------

def test_the_state_directory_and_every_file_in_it_are_private(sandbox: Sandbox,
                                                              tmp_path: Path) -> None:
    """Observed: 0755 / 0644 when the first real `sync` created it (the run lock made the
    directory first)."""
    cfg = str(write_config(tmp_path, sandbox.config()))
    old = os.umask(0o022)
    try:
        assert sync(cfg)[0] == 0
    finally:
        os.umask(old)
    state_dir = tmp_path / ".genesys-prov"
    modes = {p.relative_to(state_dir).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in [state_dir, *state_dir.rglob("*")]}
    assert modes["."] == 0o700 and modes["logs"] == 0o700
    files = {name: mode for name, mode in modes.items() if name not in (".", "logs")}
    assert {"state.sqlite3", "run.lock"} <= files.keys()
    assert any(name.startswith("logs/") for name in files)
    assert all(mode == 0o600 for mode in files.values()), files


# --- finding 6: escrow and quarantine that help the admin ---------------------------------------

def test_a_mapping_change_releases_escrow(sandbox: Sandbox, tmp_path: Path) -> None:
    """Observed: after fixing a bad mapping, `sync --full --dry-run` still planned nothing
    (the change sat in escrow)."""
    cfg = str(write_config(tmp_path, sandbox.config(scope="all")))
    assert sync(cfg)[0] == 0
    user = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.set_user(user["id"], jobTitle="Head of Escrow")
    good = (tmp_path / "mappings.yaml").read_text()
    bad = good.replace("source: mail}", "source: displayName}")  # not an email: HTTP 400
    assert bad != good
    (tmp_path / "mappings.yaml").write_text(bad)
    code, out, _ = sync(cfg)
    assert code == 1 and out["escrow"]["count"] >= 1
    (tmp_path / "mappings.yaml").write_text(good)  # the admin fixes the mapping
    code, out, _ = sync(cfg, "--full", "--dry-run")
    assert code == 0
    assert [c["identity"] for c in out["plan"]["changes"]] == [user["userPrincipalName"]]
    assert not [s for s in out["plan"]["skipped"] if "escrow" in s["reason"]]
    code, out, _ = sync(cfg)
    assert code == 0 and out["escrow"] is None
    with State.open(tmp_path / ".genesys-prov") as state:
        assert state.query_log(action="Other")[-1]["code"] == "EscrowReleased"


def test_a_passing_check_lets_a_quarantined_job_probe_at_once(sandbox: Sandbox,
                                                              tmp_path: Path) -> None:
    """Observed: one wrong secret locked the job for 60 minutes, and a passing `check` did
    not lift the quarantine. Here the secret is rotated and restored on the server's side,
    so the configuration does not change: the passing check is what lets the next run
    probe."""
    cfg = str(write_config(tmp_path, sandbox.config(scope="all")))
    real = sandbox.genesys.client_secret
    sandbox.genesys.client_secret = "rotated-by-an-admin"
    assert sync(cfg)[0] == 4
    sandbox.genesys.client_secret = real
    code, _, err = sync(cfg)
    assert code == 4 and "next connection probe at" in err  # 5 minutes away
    check = run_cli("--config", cfg, "check")
    assert check.exit_code == 0 and "probes the connection at once" in check.stdout
    code, out, err = sync(cfg)
    assert code == 0, err
    assert out["mode_reason"] == "the job just left quarantine"


def test_summary_names_what_waits_in_escrow(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, sandbox.config(scope="all")))
    assert sync(cfg)[0] == 0
    with State.open(tmp_path / ".genesys-prov") as state:
        sid = next(iter(state.links("user")))
        # failed "in 2096": its retry is not due yet
        state.escrow_failure("user", sid, "someone@contoso.com", "HTTP 500", 4_000_000_000.0,
                             3600, 86400)
    result = run_cli("--config", cfg, "sync", "--quiet")
    assert result.exit_code == 0
    assert result.stdout.startswith(
        "Incremental: no directory changes since the last run; the target was not read or "
        "written. 1 change(s) wait in escrow (oldest failed 2096-10-02T07:06:40+00:00, next "
        "retry 2096-10-02T08:06:40+00:00; `sync --retry-now` sends them now).")
    assert sync(cfg)[1]["escrow"] == {"count": 1, "oldest": "2096-10-02T07:06:40+00:00",
                                      "next_retry": "2096-10-02T08:06:40+00:00"}


# --- finding 11: Genesys as documented ---------------------------------------------------------

def test_a_page_refused_for_its_expensive_attributes_is_asked_again_smaller(
        tmp_path: Path) -> None:
    with Sandbox(users=120, workdir=tmp_path) as sb:
        cfg = str(write_config(tmp_path, sb.config()))
        code, reference, err = sync(cfg, "--dry-run")
        assert code == 0, err
        sb.genesys.expensive_page_limit = 10  # manager is mapped: pages over 10 are refused
        sb.genesys.reset_log()
        code, out, err = sync(cfg, "--dry-run")
        assert code == 0, err
        assert out["plan"]["counts"] == reference["plan"]["counts"]
        counts = [int(r.query["count"][0]) for r in sb.genesys.requests
                  if r.path.endswith("/Users") and "count" in r.query]
        assert counts[0] == 100 and min(counts) <= 10
        assert [r.status for r in sb.genesys.requests].count(429) >= 1


def test_a_name_kept_by_a_deleted_genesys_user_is_explained(sandbox: Sandbox,
                                                            tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, sandbox.config(scope="all")))
    code, out, _ = sync(cfg, "--dry-run")
    name = next(c["identity"] for c in out["plan"]["changes"] if c["action"] == "create")
    sandbox.genesys.deleted_names.add(name.lower())
    code, out, _ = sync(cfg)
    assert code == 1
    (failed,) = [o for o in out["result"]["outcomes"] if o["status"] == "failure"]
    assert failed["identity"] == name and failed["code"] == "Conflict"
    assert "Genesys keeps the userName and email of deleted users" in failed["error"]


def test_a_phone_number_is_sent_as_written_with_a_warning(sandbox: Sandbox,
                                                          tmp_path: Path) -> None:
    """Observed: `+55 90 95214-5623` became `+55952145623` (libphonenumber strips 90 as a
    Brazilian carrier code): a wrong number, and the run reported success."""
    cfg = str(write_config(tmp_path, sandbox.config(scope="all")))
    assert sync(cfg)[0] == 0
    user = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.set_user(user["id"], mobilePhone="+55 90 95214-5623")
    sandbox.genesys.reset_log()
    report = tmp_path / "run.csv"
    code, out, _ = sync(cfg, "--report", str(report))
    assert code == 0
    (write,) = sandbox.genesys.writes()
    assert "+5590952145623" in json.dumps(write.body)
    (warning,) = out["plan"]["warnings"]
    assert warning["identity"] == user["userPrincipalName"]
    assert "sent as written: +5590952145623" in warning["message"]
    assert ",warning," in report.read_text()
    records = run_cli("--config", cfg, "logs", "--status", "warning", "--json").stdout
    assert "sent as written" in records


# --- finding 8: one line, never a traceback -----------------------------------------------------

GOOD_SOURCE = {"tenant_id": "t", "client_id": "c", "client_secret": "s", "scope": "all"}


@pytest.mark.parametrize(("text", "message"), [
    ("source: &a [*a]\ntarget: {url: https://x}\n", "recursive alias"),
    (json.dumps({"source": GOOD_SOURCE, "target": {"url": "https://[::1/v2", "token": "t"}}),
     "target.url: not a valid URL"),
])
def test_bad_configurations_exit_2_with_one_line(tmp_path: Path, text: str,
                                                 message: str) -> None:
    path = tmp_path / "genesys-prov.yaml"
    path.write_text(text)
    result = run_cli("--config", str(path), "sync", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_a_missing_ca_bundle_variable_exits_2_naming_it(sandbox: Sandbox,
                                                        tmp_path: Path) -> None:
    config = sandbox.config()
    del config["ca_bundle"]
    cfg = str(write_config(tmp_path, config))
    result = run_cli("--config", cfg, "check",
                     env={"REQUESTS_CA_BUNDLE": str(tmp_path / "missing.pem")})
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: REQUESTS_CA_BUNDLE: file not found")


def test_a_tls_failure_says_what_to_set(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.config()
    del config["ca_bundle"]  # the sandbox's private CA is not trusted
    cfg = str(write_config(tmp_path, config))
    result = run_cli("--config", cfg, "sync", "--dry-run",
                     env={"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""})
    assert result.exit_code == 4
    assert result.stderr.count("\n") == 1
    assert "TLS failure talking to 127.0.0.1" in result.stderr
    assert "set ca_bundle in the configuration (or REQUESTS_CA_BUNDLE)" in result.stderr


def test_connection_refused_is_one_readable_line(sandbox: Sandbox, tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    config = sandbox.config()
    config["target"] = {"url": f"http://127.0.0.1:{port}/scim/v2", "token": "t",
                        "rate_limit_per_minute": 0}
    cfg = str(write_config(tmp_path, config))
    result = run_cli("--config", cfg, "sync", "--dry-run")
    assert result.exit_code == 4
    assert result.stderr == (f"Error: cannot reach the SCIM target: GET http://127.0.0.1:{port}"
                             f"/scim/v2/Users: cannot connect to 127.0.0.1:{port} (connection "
                             "refused): is the server up and the URL right?\n")


def test_a_wrong_genesys_secret_names_its_variable(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.config()
    config["target"]["oauth"]["client_secret"] = "${GENESYS_CLIENT_SECRET}"
    cfg = str(write_config(tmp_path, config))
    result = run_cli("--config", cfg, "check", "--output", "json",
                     env={"GENESYS_CLIENT_SECRET": "not-the-secret"})
    assert result.exit_code == 4
    steps = {s["name"]: s for s in json.loads(result.stdout)["steps"]}
    detail = steps["target: authenticate and filter"]["detail"]
    assert detail == ("Genesys OAuth refused the client credentials (HTTP 401, invalid_client): "
                      "check target.oauth.client_id and the secret in "
                      "target.oauth.client_secret (read from ${GENESYS_CLIENT_SECRET}), and "
                      "that the OAuth client uses the client-credentials grant")
    assert "Basic" not in result.stdout


def test_an_unexpected_error_is_one_line_with_its_own_exit_code(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from genesys_prov import cli

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(cli, "load_config", boom)
    monkeypatch.setattr("sys.argv", ["genesys-prov", "check"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("Error: internal error (RuntimeError: something nobody expected)")

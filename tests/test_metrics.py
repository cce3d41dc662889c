"""`sync --metrics-file`: the Prometheus text file written after every run, read back with
prometheus_client's own parser and compared with the plan, what the sandbox received and
what the state holds."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import prometheus_client.exposition as exposition
import pytest
from prometheus_client.parser import text_string_to_metric_families

from genesys_prov.config import parse_config
from genesys_prov.errors import ConfigError, LockError, TargetError
from genesys_prov.metrics import MetricsFile, change_counts
from genesys_prov.plan.model import Action, Change, Plan
from genesys_prov.sandbox import Sandbox
from genesys_prov.state.db import State
from genesys_prov.target.apply import ADOPTED, FAILURE, ApplyResult, Outcome
from tests.conftest import run_cli, write_config

pytestmark = pytest.mark.e2e
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def configure(sb: Sandbox, tmp_path: Path, **extra: Any) -> str:
    config = sb.config(scope="all")
    config.update(extra)
    return str(write_config(tmp_path, config))


def read_metrics(path: Path) -> Samples:
    """Every sample of the file, by (name, sorted labels), parsed by prometheus_client."""
    out: Samples = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        assert family.documentation, family.name  # every metric has HELP text
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(f"genesys_prov_{name}", tuple(sorted(labels.items())))]


def by_label(samples: Samples, name: str, label: str, **fixed: str) -> dict[str, float]:
    """The samples of one metric whose labels include ``fixed``, keyed by ``label``."""
    out = {}
    for (sample, labels), number in samples.items():
        found = dict(labels)
        if sample == f"genesys_prov_{name}" and fixed.items() <= found.items():
            out[found[label]] = number
    return out


def sync(cfg: str, prom: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("--config", cfg, "sync", "--output", "json", "--metrics-file", str(prom),
                     *extra)
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}


def graph_api_gets(sb: Sandbox) -> int:
    """GETs the Graph API received (MSAL's discovery and token requests are its own)."""
    return sum(r.method == "GET" and r.path.startswith("/v1.0/") for r in sb.graph.requests)


def recorded_in_scope(tmp_path: Path) -> int:
    """Users in scope as the state recorded the last run."""
    with State.open(tmp_path / ".genesys-prov") as state:
        last = state.last_run(real_only=False)
    assert last is not None
    return int(last["in_scope"])


def test_dry_run_then_sync_metrics_match_the_plan_and_the_sandbox(sandbox: Sandbox,
                                                                   tmp_path: Path) -> None:
    cfg, prom = configure(sandbox, tmp_path), tmp_path / "genesys_prov.prom"
    sandbox.graph.reset_log()
    code, dry = sync(cfg, prom, "--dry-run")
    assert code == 0 and sandbox.genesys.writes() == []
    samples = read_metrics(prom)
    assert value(samples, "last_run_dry_run") == 1
    assert value(samples, "last_run_status", status="success") == 1
    planned = by_label(samples, "last_run_changes", "action", status="planned")
    for action in Action:
        assert planned[action.value] == dry["plan"]["counts"][action.value]
    assert planned["create"] > 0
    assert by_label(samples, "last_run_requests", "method", side="target") == {
        "GET": sandbox.genesys.counts["GET"], "token": sandbox.genesys.counts["POST"]}
    assert value(samples, "last_run_requests", side="graph", method="GET") == \
        graph_api_gets(sandbox)
    assert value(samples, "runs_total", status="success", dry_run="true") == 1
    assert value(samples, "last_success_timestamp_seconds") == 0  # a dry run is no success
    assert value(samples, "users_in_scope") == recorded_in_scope(tmp_path) > 0

    sandbox.genesys.reset_log()
    sandbox.graph.reset_log()
    before = time.time()
    code, out = sync(cfg, prom)
    assert code == 0
    samples = read_metrics(prom)
    assert value(samples, "last_run_dry_run") == 0
    succeeded = by_label(samples, "last_run_changes", "action", status="success")
    for action in Action:
        assert succeeded[action.value] == out["plan"]["counts"][action.value]
    assert succeeded["update_group"] == out["plan"]["counts"]["group update"] > 0
    assert by_label(samples, "last_run_changes", "action", status="failure") == \
        dict.fromkeys((a.value for a in Action), 0.0)
    sent = Counter(r.method for r in sandbox.genesys.requests if r.path != "/oauth/token")
    assert by_label(samples, "last_run_requests", "method", side="target") == {
        **sent, "token": 1}
    assert out["requests"]["target"] == {**sent, "token": 1}
    assert value(samples, "last_run_requests", side="graph", method="GET") == \
        graph_api_gets(sandbox)
    assert value(samples, "runs_total", status="success", dry_run="false") == 1
    assert value(samples, "runs_total", status="success", dry_run="true") == 1
    assert before - 1 <= value(samples, "last_success_timestamp_seconds") <= time.time()
    assert value(samples, "quarantined") == 0 and value(samples, "escrow_size") == 0
    assert value(samples, "users_in_scope") == recorded_in_scope(tmp_path)
    assert 0 < value(samples, "last_run_duration_seconds") < 600


def test_a_failed_change_shows_in_escrow_and_is_no_success(sandbox: Sandbox,
                                                           tmp_path: Path) -> None:
    cfg, prom = configure(sandbox, tmp_path), tmp_path / "genesys_prov.prom"
    bad = next(u for u in sandbox.graph.users if u.get("accountEnabled", True))
    sandbox.graph.set_user(bad["id"], userPrincipalName="not-an-email")
    code, _ = sync(cfg, prom)
    assert code == 1
    samples = read_metrics(prom)
    assert value(samples, "last_run_status", status="failed") == 1
    assert value(samples, "last_run_changes", action="create", status="failure") == 1
    assert value(samples, "escrow_size") == 1
    with State.open(tmp_path / ".genesys-prov") as state:
        assert len(state.escrowed()) == 1
    assert value(samples, "last_success_timestamp_seconds") == 0
    assert value(samples, "runs_total", status="failed", dry_run="false") == 1

    code, _ = sync(cfg, prom)  # nothing changed: an incremental run is a success
    samples = read_metrics(prom)
    assert value(samples, "last_run_status", status="incremental") == 1
    assert value(samples, "last_success_timestamp_seconds") > 0
    assert value(samples, "escrow_size") == 1  # not due yet: still waiting
    assert value(samples, "runs_total", status="incremental", dry_run="false") == 1


def test_a_failing_run_still_writes_the_file_and_quarantine_shows(sandbox: Sandbox,
                                                                  tmp_path: Path) -> None:
    config = sandbox.config(scope="all")
    config["target"]["oauth"]["client_secret"] = "not-the-secret"
    cfg, prom = str(write_config(tmp_path, config)), tmp_path / "genesys_prov.prom"
    result = run_cli("--config", cfg, "sync", "--metrics-file", str(prom))
    assert result.exit_code == 4 and result.stderr.startswith("Error: ")
    assert sandbox.genesys.writes() == []
    samples = read_metrics(prom)
    assert value(samples, "quarantined") == 1
    assert value(samples, "last_run_status", status="error") == 1
    assert value(samples, "runs_total", status="error", dry_run="false") == 1
    assert value(samples, "last_success_timestamp_seconds") == 0
    assert by_label(samples, "last_run_changes", "action") == {}  # no result: no changes
    assert by_label(samples, "last_run_requests", "method") == {}

    # quarantined: the next run stops at the gate, and the file says so again
    result = run_cli("--config", cfg, "sync", "--metrics-file", str(prom))
    assert result.exit_code == 4 and "quarantined" in result.stderr
    samples = read_metrics(prom)
    assert value(samples, "runs_total", status="error", dry_run="false") == 2
    assert value(samples, "quarantined") == 1


def test_held_deletions_and_a_safety_stop_write_the_file(sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path, safety={"max_deactivations": 2})
    prom = tmp_path / "genesys_prov.prom"
    assert sync(cfg, prom)[0] == 0
    everyone = [u for u in sandbox.graph.users if u.get("accountEnabled", True)]
    for user in everyone[:3]:
        sandbox.graph.set_user(user["id"], accountEnabled=False)
    code, out = sync(cfg, prom)
    assert code == 3 and len(out["plan"]["held"]) == 3
    samples = read_metrics(prom)
    assert value(samples, "last_run_status", status="held") == 1
    assert value(samples, "last_run_changes", action="deactivate", status="held") == 3
    assert value(samples, "last_run_changes", action="deactivate", status="success") == 0

    for user in everyone[3:13]:  # a third of the directory is gone: the run stops
        sandbox.graph.remove_user(user["id"])
    sandbox.genesys.reset_log()
    code, _ = sync(cfg, prom)
    assert code == 3 and sandbox.genesys.writes() == []
    samples = read_metrics(prom)
    assert value(samples, "last_run_status", status="blocked") == 1
    assert by_label(samples, "runs_total", "status", dry_run="false") == {
        "success": 1, "held": 1, "blocked": 1}
    with State.open(tmp_path / ".genesys-prov") as state:
        last = state.last_run()
    assert last is not None and last["status"] == "blocked"
    assert value(samples, "users_in_scope") == last["in_scope"]  # what the guard saw


def test_an_unwritable_metrics_file_fails_before_any_request(sandbox: Sandbox,
                                                             tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    sandbox.genesys.reset_log()
    sandbox.graph.reset_log()
    missing = tmp_path / "no-such-dir" / "genesys_prov.prom"
    result = run_cli("--config", cfg, "sync", "--metrics-file", str(missing))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --metrics-file ") and "does not exist" in \
        result.stderr
    directory = tmp_path / "a-dir.prom"
    directory.mkdir()
    result = run_cli("--config", cfg, "sync", "--metrics-file", str(directory))
    assert result.exit_code == 2 and "is a directory" in result.stderr
    assert sandbox.genesys.requests == [] and sandbox.graph.requests == []
    assert not (tmp_path / ".genesys-prov").exists()


def test_the_configuration_key_is_the_default(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path, metrics_file="metrics/genesys_prov.prom")
    result = run_cli("--config", cfg, "sync", "--dry-run")
    assert result.exit_code == 2  # its directory is checked before the run
    assert result.stderr.startswith(f"Error: metrics_file {tmp_path / 'metrics'}")
    (tmp_path / "metrics").mkdir()
    assert run_cli("--config", cfg, "sync", "--dry-run").exit_code == 0
    samples = read_metrics(tmp_path / "metrics" / "genesys_prov.prom")
    assert value(samples, "last_run_dry_run") == 1
    other = tmp_path / "other.prom"  # the option wins over the key
    assert run_cli("--config", cfg, "sync", "--dry-run", "--metrics-file",
                   str(other)).exit_code == 0
    assert value(read_metrics(other), "runs_total", status="success", dry_run="true") == 2


def test_the_key_is_read_relative_to_the_configuration(tmp_path: Path) -> None:
    text = ("source: {tenant_id: t, client_id: c, client_secret: s, scope: all}\n"
            "target: {url: 'https://api.mypurecloud.com/api/v2/scim/v2', token: x}\n")
    assert parse_config(text, base_dir=tmp_path).metrics_file is None
    config = parse_config(text + "metrics_file: m/x.prom\n", base_dir=tmp_path)
    assert config.metrics_file == tmp_path / "m" / "x.prom"
    absolute = parse_config(text + "metrics_file: /var/lib/x.prom\n", base_dir=tmp_path)
    assert absolute.metrics_file == Path("/var/lib/x.prom")


class FakeRun:
    """A finished run as the metrics see it."""

    def __init__(self, plan: Plan, dry_run: bool = False,
                 applied: ApplyResult | None = None) -> None:
        self.plan, self.dry_run, self.applied = plan, dry_run, applied
        self.run_id = "r1"
        self.requests = {"graph": {"GET": 3}, "target": {"GET": 2, "POST": 1}}


def test_the_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prom = tmp_path / "genesys_prov.prom"
    prom.write_text("# the previous run's file\n", encoding="utf-8")
    metrics = MetricsFile(str(prom), tmp_path / "state")
    with metrics.measure():
        pass
    inode = prom.stat().st_ino
    metrics.write(FakeRun(Plan()))
    assert prom.stat().st_ino != inode  # replaced by a rename, never rewritten in place
    assert value(read_metrics(prom), "last_run_requests", side="target", method="POST") == 1
    written = prom.read_text(encoding="utf-8")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exposition.os, "rename", refuse)
    monkeypatch.setattr(exposition.os, "replace", refuse)
    with pytest.raises(ConfigError, match=r"--metrics-file .*No space left"):
        metrics.write(FakeRun(Plan()))
    assert prom.read_text(encoding="utf-8") == written  # the old file, whole
    assert sorted(os.listdir(tmp_path)) == ["genesys_prov.prom", "state"]  # no leftovers


def test_an_error_run_writes_the_file_and_the_error_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    prom = tmp_path / "genesys_prov.prom"
    ticks = iter([0.0, 100.0, 107.5])  # the first: the locked run's start
    metrics = MetricsFile(str(prom), tmp_path / "state", clock=lambda: next(ticks),
                          wall=lambda: 1_800_000_000.0)
    with pytest.raises(LockError), metrics.measure():
        raise LockError("another run holds the lock")
    assert not prom.exists()  # the run holding the lock writes it when it ends
    with pytest.raises(TargetError), metrics.measure():
        raise TargetError("the target is down")
    samples = read_metrics(prom)
    assert value(samples, "last_run_status", status="error") == 1  # never recorded a run
    assert value(samples, "quarantined") == 0
    assert value(samples, "last_run_duration_seconds") == 7.5
    assert value(samples, "last_run_timestamp_seconds") == 1_800_000_007.5
    assert by_label(samples, "last_run_changes", "action") == {}

    gone = MetricsFile(str(tmp_path / "gone" / "x.prom"), tmp_path / "state")
    with pytest.raises(TargetError, match="still down"), gone.measure():
        raise TargetError("still down")  # the run's error, not the file's
    assert "the metrics file was not written: --metrics-file" in caplog.text


def test_change_counts_by_outcome() -> None:
    create = Change(Action.CREATE, "ada", "s1", None)
    adopted = Change(Action.CREATE, "bob", "s2", None)
    update = Change(Action.UPDATE, "cy", "s3", "t3")
    left = Change(Action.DEACTIVATE, "di", "s4", "t4")
    held = Change(Action.DELETE, "ed", "s5", "t5")
    plan = Plan(changes=(create, adopted, update, left), held=(held,))
    applied = ApplyResult(outcomes=[Outcome(create, "success"), Outcome(adopted, ADOPTED),
                                    Outcome(update, FAILURE, error="HTTP 400")],
                          aborted="authentication failed")
    counts = change_counts(FakeRun(plan, applied=applied))
    assert {k: v for k, v in counts.items() if v} == {
        ("create", "success"): 2, ("update", "failure"): 1,
        ("deactivate", "not_applied"): 1, ("delete", "held"): 1}
    dry = change_counts(FakeRun(plan, dry_run=True))
    assert {k: v for k, v in dry.items() if v} == {
        ("create", "planned"): 2, ("update", "planned"): 1, ("deactivate", "planned"): 1,
        ("delete", "held"): 1}


def test_apply_of_a_reviewed_plan_writes_the_metrics_too(sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
    """`apply PLAN --metrics-file`: the applied changes counted like a sync's, the run a
    success, an unwritable path refused before the plan is applied."""
    cfg, prom = configure(sandbox, tmp_path), tmp_path / "genesys_prov.prom"
    plan = tmp_path / "plan.json"
    made = run_cli("--config", cfg, "sync", "--dry-run", "--plan-out", str(plan))
    assert made.exit_code == 0, made.stderr
    refused = run_cli("--config", cfg, "apply", str(plan), "--metrics-file",
                      str(tmp_path / "missing" / "x.prom"))
    assert refused.exit_code == 2 and sandbox.genesys.writes() == []
    applied = run_cli("--config", cfg, "apply", str(plan), "--output", "json",
                      "--metrics-file", str(prom))
    assert applied.exit_code == 0, applied.stderr
    counts = json.loads(applied.stdout)["plan"]["counts"]
    samples = read_metrics(prom)
    succeeded = by_label(samples, "last_run_changes", "action", status="success")
    assert succeeded["create"] == counts["create"] > 0
    assert value(samples, "last_run_dry_run") == 0
    assert value(samples, "last_success_timestamp_seconds") > 0
    assert len([w for w in sandbox.genesys.writes() if w.method == "POST"]) == counts["create"]

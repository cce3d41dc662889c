"""The fault matrix: real syncs through the fault-injecting proxy
(``genesys_prov.sandbox.faults``), in front of scim2-server (python-scim's RFC 7644 server,
which this project did not write) and of the sandbox's Genesys emulator.

Every case asserts what the tool promises under that fault:

- **0 duplicates**: the server created each user once (one 201 per user name), and no two
  target users share a userName;
- **convergence**: within the runs promised — most faults are resolved inside the faulted
  run itself (``sync --full --dry-run`` right after it plans nothing and nothing waits in
  escrow); the others after one clean run;
- **the documented exit code** of the faulted run.

``make test`` runs a small directory; ``make soak`` (``GENESYS_PROV_SOAK=1``) runs the same
matrix on a larger one with several seeds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from genesys_prov.sandbox import Sandbox
from genesys_prov.sandbox.faults import (
    Fault,
    FaultProxy,
    Rule,
    graph_error_body,
    sandbox_proxy,
)
from genesys_prov.target import apply as applying
from tests.conftest import Scim2Server, run_cli, write_config

pytestmark = pytest.mark.e2e

SOAK = os.environ.get("GENESYS_PROV_SOAK") == "1"
USERS = 1000 if SOAK else 60
SEEDS = (1, 2, 3, 4, 5) if SOAK else (1,)
SCALE = 3.0 if SOAK else 1.0  # fault rates in the soak


@pytest.fixture(autouse=True)
def _short_retry_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The end-of-phase retry pass waits 10 s in production; half a second here."""
    monkeypatch.setattr(applying, "RETRY_PASS_DELAY", 0.5)


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff between retries in hundredths of seconds: the number of attempts is what a
    case tests (a case about time, like the target down for two seconds, keeps the real
    backoff)."""
    from genesys_prov.http import HttpClient

    monkeypatch.setattr(HttpClient, "_backoff", lambda self, attempt: 0.02 * attempt)
    monkeypatch.setattr(applying, "_backoff", lambda attempt: 0.02 * attempt)


def sync(cfg: str, *args: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli("--config", cfg, "sync", "--output", "json", *args)
    out = json.loads(result.stdout) if result.stdout.lstrip().startswith("{") else {}
    return result.exit_code, out, result.stderr


def failures(out: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The failed outcomes of a run, for assertion messages."""
    result = out.get("result") or {}
    return [(o["identity"], o["code"], o["error"]) for o in
            result.get("outcomes", []) + result.get("group_outcomes", [])
            if o["status"] == "failure"]


@dataclass
class Rig:
    """A Graph emulator as the source and one SCIM target behind a fault proxy."""

    sb: Sandbox
    proxy: FaultProxy
    cfg: str
    names: Callable[[], list[str]]     # the userNames the target holds (lower case)
    graph: FaultProxy | None = None
    before: set[str] = field(default_factory=set)

    def expected(self) -> set[str]:
        """The userNames the directory says the target must hold (active, in scope)."""
        return {u["userPrincipalName"].lower() for u in self.sb.graph.users
                if u.get("accountEnabled", True)}

    def creates_201(self) -> int:
        return sum(1 for e in self.proxy.log if e.method == "POST"
                   and e.path.split("?")[0].endswith("/Users") and e.upstream_status == 201)

    def assert_no_duplicates(self) -> None:
        names = self.names()
        assert len(names) == len(set(names)), "a user was created twice"
        created = len(set(names) - self.before)
        assert self.creates_201() <= created, "the server created more users than exist"

    def assert_converged(self) -> None:
        """The target holds the directory: a full comparison plans nothing, and nothing
        waits in escrow."""
        code, out, err = sync(self.cfg, "--full", "--dry-run")
        assert code == 0, err
        plan = out["plan"]
        assert plan["changes"] == [] and plan["group_changes"] == [], plan["changes"][:3]
        assert plan["failures"] == []
        assert not [s for s in plan["skipped"] if "escrow" in s["reason"]]
        assert out["escrow"] is None
        assert self.expected() <= set(self.names())


@pytest.fixture(params=[(target, seed) for target in ("scim2-server", "genesys")
                        for seed in SEEDS], ids=lambda p: f"{p[0]}-seed{p[1]}")
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    """The source, the target behind a proxy (and Graph behind one too), configured."""
    target, seed = request.param
    with Sandbox(users=USERS, seed=seed, workdir=tmp_path) as sb, \
            sandbox_proxy(sb, "graph", seed=seed) as graph:
        sb.graph.graph_url = graph.url  # its links (and the token's audience) go through it
        if target == "genesys":
            with sandbox_proxy(sb, seed=seed) as proxy:
                config = sb.config()
                config["target"]["url"] = proxy.url
                config["target"]["oauth"]["token_url"] = proxy.url_for(sb.genesys_token_url)
                config["source"]["graph_url"] = graph.url
                before = {u["userName"].lower() for u in sb.genesys.users.values()}
                yield Rig(sb, proxy, str(write_config(tmp_path, config)),
                          lambda: [u["userName"].lower() for u in sb.genesys.users.values()],
                          graph, before)
        else:
            server: Scim2Server = request.getfixturevalue("scim2_server")
            with FaultProxy(server.url, seed=seed) as proxy:
                config = sb.config(scope="all")
                config["target"] = {"url": proxy.url, "token": server.token,
                                    "flavor": "generic", "rate_limit_per_minute": 0,
                                    "concurrency": 4}
                config["source"]["graph_url"] = graph.url
                yield Rig(sb, proxy, str(write_config(tmp_path, config)),
                          lambda: [u["userName"].lower() for u in server.users()], graph)


def _rate(p: float) -> float:
    return min(0.5, p * SCALE)


# --- faults resolved inside the faulted run ---------------------------------------------------

IN_RUN: dict[str, list[Rule]] = {
    "429 storm": [Rule(Fault.STATUS, status=429, headers={"Retry-After": "0"},
                       probability=_rate(0.3), times=int(80 * SCALE))],
    "5xx burst on writes": [Rule(Fault.STATUS, method="POST", status=503, skip=3, times=25),
                            Rule(Fault.STATUS, method="PATCH", status=502, times=10)],
    "5xx on reads": [Rule(Fault.STATUS, method="GET", status=503, skip=1, times=4)],
    "500 on creates": [Rule(Fault.STATUS, method="POST", status=500, probability=_rate(0.2))],
    "resets before sending (5 %)": [Rule(Fault.RESET_BEFORE, probability=_rate(0.05))],
    "resets after the server applied it": [Rule(Fault.RESET_AFTER, probability=_rate(0.1))],
    "truncated answers": [Rule(Fault.TRUNCATE, probability=_rate(0.1))],
    "answers that are not JSON": [Rule(Fault.GARBAGE, probability=_rate(0.1))],
}


def figures(record: Callable[[str, object], None], rig: Rig, code: int,
            out: dict[str, Any]) -> None:
    """What a faulted run met and did, for the fault-matrix table (``--junitxml``)."""
    result = out.get("result") or {}
    outcomes = result.get("outcomes", [])
    record("faults_injected", len(rig.proxy.injected()) +
           (len(rig.graph.injected()) if rig.graph else 0))
    record("requests_to_target", len(rig.proxy.log))
    record("exit_code", code)
    record("users_created", len(set(rig.names()) - rig.before))
    record("creates_adopted", sum(1 for o in outcomes if o["status"] == "adopted"))
    record("changes_tried_twice", result.get("retried", 0))
    record("failed", len(failures(out)))


@pytest.mark.parametrize("case", list(IN_RUN))
@pytest.mark.usefixtures("quick_backoff")
def test_transient_faults_are_resolved_in_the_run(rig: Rig, case: str,
                                                  record_property: Callable[[str, object],
                                                                            None]) -> None:
    rig.proxy.add(*IN_RUN[case])
    code, out, err = sync(rig.cfg)
    figures(record_property, rig, code, out)
    assert rig.proxy.injected(), "the fault never fired"
    rig.proxy.clear()
    if SOAK and code == 1:
        # at soak rates (up to half of all requests) a few changes can outlast the run's
        # own retries: only for transient reasons, kept in escrow, sent by the next run
        assert {c for _, c, _ in failures(out)} <= applying.TRANSIENT_CODES, failures(out)
        assert out["escrow"]["count"] >= len(failures(out))
        code, out, err = sync(rig.cfg, "--retry-now")
    elif SOAK and code == 4:
        # or a read garbled three times in a row stops the run before its first write
        assert not [e for e in rig.proxy.log if e.method in ("POST", "PATCH", "DELETE")
                    and "/oauth/" not in e.path], err
        code, out, err = sync(rig.cfg)
    assert code == 0, (err, failures(out))
    rig.assert_no_duplicates()
    rig.assert_converged()


def test_target_down_for_two_seconds_mid_run(rig: Rig, record_property: Callable[
        [str, object], None]) -> None:
    """The target stops answering (connection refused) after the first creates; requests
    that never reached it are sent again with backoff, so the run still completes."""
    rig.proxy.add(Rule(Fault.DOWN, method="POST", path=r"/Users$", skip=5, times=1, delay=2.0))
    code, out, err = sync(rig.cfg)
    figures(record_property, rig, code, out)
    assert rig.proxy.applied(0) == 1
    assert code == 0, (err, failures(out))
    rig.assert_no_duplicates()
    rig.assert_converged()


def test_graph_token_expires_mid_read(rig: Rig) -> None:
    """Graph answers 401 InvalidAuthenticationToken on the users' page, after the
    assignments and groups were read with the same token: one fresh token, one retry, no
    quarantine."""
    assert rig.graph is not None
    rig.graph.add(Rule(Fault.STATUS, method="GET", path=r"/users", times=1, status=401,
                       body=graph_error_body("InvalidAuthenticationToken",
                                             "Lifetime validation failed, the token is "
                                             "expired.")))
    code, _, err = sync(rig.cfg)
    assert code == 0, err
    assert len(rig.graph.injected()) == 1
    rig.assert_converged()


@pytest.mark.usefixtures("quick_backoff")
def test_graph_pages_failing_briefly_are_read_again(rig: Rig) -> None:
    assert rig.graph is not None
    rig.graph.add(Rule(Fault.STATUS, method="GET", path=r"/users", times=3, status=503,
                       body=graph_error_body("ServiceUnavailable", "try later")))
    code, _, err = sync(rig.cfg)
    assert code == 0, err
    assert len(rig.graph.injected()) == 3
    rig.assert_converged()


def test_oauth_token_endpoint_failing_and_tokens_expiring(rig: Rig) -> None:
    """Genesys' token endpoint answers 503 twice, and every issued token is revoked in the
    middle of the run: the client asks again and re-authenticates."""
    if rig.proxy.url.startswith("http://"):
        pytest.skip("scim2-server takes a static token")
    rig.proxy.add(Rule(Fault.STATUS, method="POST", path=r"/oauth/token", times=2, status=503))
    # every token is revoked as the eighth create arrives (before it is forwarded)
    rig.proxy.add(Rule(Fault.PASS, method="POST", path=r"/Users$", skip=7, times=1,
                       action=rig.sb.genesys.expire_tokens))
    code, _, err = sync(rig.cfg)
    assert rig.proxy.applied(1) == 1
    assert code == 0, err
    tokens = [e for e in rig.proxy.log if e.path.startswith("/oauth/token")]
    assert len(tokens) >= 4  # 2 refused, the first token, the one after the revocation
    rig.assert_no_duplicates()
    rig.assert_converged()


# --- faults that stop a run, and the clean run after it ---------------------------------------

@pytest.mark.usefixtures("quick_backoff")
def test_graph_failing_part_way_stops_before_any_write_then_converges(rig: Rig) -> None:
    """Graph keeps failing after the first page: a safety stop (exit 3), nothing written;
    the next clean run converges."""
    assert rig.graph is not None
    reads = r"/v1\.0/(users|groups|servicePrincipals)(\?|/(?!delta))"  # not the delta rounds
    rig.graph.add(Rule(Fault.STATUS, method="GET", path=reads, skip=1, status=503,
                       body=graph_error_body("ServiceUnavailable", "down")))
    code, _, err = sync(rig.cfg)
    assert code == 3, err
    assert "failed part-way" in err
    # the target may have been listed meanwhile (the two reads run at the same time), but
    # nothing was written
    writes = [e for e in rig.proxy.log if e.method in ("POST", "PATCH", "PUT", "DELETE")
              and not e.path.startswith("/oauth/token")]
    assert writes == []
    rig.graph.clear()
    code, _, err = sync(rig.cfg)
    assert code == 0, err
    rig.assert_no_duplicates()
    rig.assert_converged()


@pytest.mark.usefixtures("quick_backoff")
def test_target_down_for_long_then_the_next_run_converges(rig: Rig) -> None:
    """The target goes away for good after some creates: the run ends (exit 1: changes
    failed, kept in escrow for a retry in minutes, not an hour), the summary names what
    waits in escrow, and `sync --retry-now` retries exactly those."""
    code, out, err = sync(rig.cfg, "--dry-run")
    planned = out["plan"]["counts"]["create"]

    # down for good after 70 % of the creates: the rest fail (half failing would be over
    # the 40 % failure rate that quarantines the job, exit 4 — `make soak`, 1,000 users)
    rig.proxy.add(Rule(Fault.DOWN, method="POST", path=r"/Users$", skip=planned * 7 // 10))
    result = run_cli("--config", rig.cfg, "sync", "--quiet")
    assert result.exit_code == 1, result.stderr
    assert "wait in escrow" in result.stdout and "sync --retry-now" in result.stdout
    rig.proxy.clear()
    rig.proxy.up()
    code, out, err = sync(rig.cfg)  # the escrowed changes are due in 5 minutes, not now
    assert code == 0 and out["mode_reason"] == "no directory changes", err
    missing = len(rig.expected() - set(rig.names()))
    assert 0 < missing < planned and out["escrow"]["count"] >= missing, (
        missing, planned, out["escrow"], result.stdout)
    code, out, err = sync(rig.cfg, "--retry-now")
    assert code == 0, err
    assert out["plan"]["counts"]["create"] == missing
    assert out["escrow"] is None
    rig.assert_no_duplicates()
    rig.assert_converged()


@pytest.mark.usefixtures("quick_backoff")
def test_escrowed_updates_are_retried_incrementally(rig: Rig) -> None:
    """Updates that keep failing (the target answers 503 to every PATCH) wait in escrow;
    runs say so; `state retry` makes them due and the next run — incremental, from the
    snapshot — sends exactly those."""
    assert sync(rig.cfg)[0] == 0
    users = [u for u in rig.sb.graph.users if u.get("accountEnabled", True)][:3]
    for user in users:
        rig.sb.graph.set_user(user["id"], jobTitle="Escrow Tester")
    rig.proxy.add(Rule(Fault.STATUS, method="PATCH", status=503))
    code, out, err = sync(rig.cfg)
    assert code == 1, err
    assert out["escrow"]["count"] == 3 and out["result"]["retried"] == 3
    rig.proxy.clear()
    code, out, _ = sync(rig.cfg)
    assert code == 0 and out["mode_reason"] == "no directory changes"
    assert out["escrow"]["count"] == 3
    retry = run_cli("--config", rig.cfg, "state", "retry")
    assert retry.exit_code == 0 and retry.stdout.startswith("3 escrowed change(s) are due now")
    rig.proxy.clear_log()
    code, out, err = sync(rig.cfg)
    assert code == 0, err
    assert out["mode"] == "incremental"
    assert out["mode_reason"].startswith("0 directory change(s), 3 escrowed change(s) retried")
    assert sorted(c["identity"] for c in out["plan"]["changes"]) == sorted(
        u["userPrincipalName"] for u in users)
    assert len([e for e in rig.proxy.log if e.method == "PATCH"]) == 3
    assert out["escrow"] is None
    rig.assert_converged()


# --- delta tokens -----------------------------------------------------------------------------

@pytest.mark.parametrize("answer", ["410", "400 SyncStateNotFound"])
def test_an_expired_delta_token_starts_over_once(rig: Rig, answer: str) -> None:
    code, _, err = sync(rig.cfg)
    assert code == 0, err
    user = next(u for u in rig.sb.graph.users if u.get("accountEnabled", True))
    rig.sb.graph.set_user(user["id"], jobTitle="Chief Fault Injector")
    assert rig.graph is not None
    if answer == "410":
        rig.sb.graph.expire_delta_tokens()
    else:  # as real Graph answers it (microsoftgraph/microsoft-graph-docs#2350)
        rig.graph.add(Rule(Fault.STATUS, method="GET", path=r"/delta", times=1, status=400,
                           body=graph_error_body("SyncStateNotFound",
                                                 "The sync state is not found.")))
    code, out, err = sync(rig.cfg)
    assert code == 0, err
    assert out["mode"] == "full" and "no longer knows the delta token" in out["mode_reason"]
    assert [c["identity"] for c in out["plan"]["changes"]] == [user["userPrincipalName"]]
    code, out, err = sync(rig.cfg)
    assert code == 0 and out["mode"] == "incremental", out.get("mode_reason")
    rig.assert_converged()


# --- kill -9 at five points of an initial load ------------------------------------------------

KILL_POINTS = {
    "while reading the directory": lambda sb, log: any("/users" in r.path
                                                       for r in list(sb.graph.requests)),
    "after the first create": lambda sb, log: _count(log, "POST") >= 1,
    "in the middle of the creates": lambda sb, log: _count(log, "POST") >= USERS // 3,
    "after the creates": lambda sb, log: _count(log, "POST") >= USERS * 9 // 10,
    "while patching group members": lambda sb, log: _count(log, "PATCH", "/Groups/") >= 1,
}


def _count(log: list[Any], method: str, path: str = "") -> int:
    return sum(1 for e in log if e.method == method and path in e.path)


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_9_during_an_initial_load(tmp_path: Path, point: str) -> None:
    """``kill -9`` at a point of an initial load, then run again: no duplicates, the second
    run completes (exit 0) and the target converges."""
    with Sandbox(users=USERS, workdir=tmp_path) as sb, sandbox_proxy(sb) as proxy:
        config = sb.config()
        config["target"].update(url=proxy.url, concurrency=1)
        config["target"]["oauth"]["token_url"] = proxy.url_for(sb.genesys_token_url)
        cfg = str(write_config(tmp_path, config))
        # slow every write a little so that each point is reached while the run goes on
        proxy.add(Rule(Fault.DELAY, method="POST", path=r"/Users", delay=0.02),
                  Rule(Fault.DELAY, method="PATCH", delay=0.05))
        before = {u["userName"].lower() for u in sb.genesys.users.values()}
        reached = KILL_POINTS[point]
        proc = subprocess.Popen([sys.executable, "-m", "genesys_prov", "--config", cfg, "sync",
                                 "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not reached(sb, proxy.log) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proxy.clear()
        # a write the proxy was still delaying when the client died is forwarded all the
        # same: let it land before counting what the killed run created
        assert proxy.wait_closed(30)
        names = [u["userName"].lower() for u in sb.genesys.users.values()]
        partial = len(set(names) - before)
        again = subprocess.run([sys.executable, "-m", "genesys_prov", "--config", cfg, "sync",
                                "--output", "json"], capture_output=True, text=True,
                               timeout=300)
        assert again.returncode == 0, again.stderr
        names = [u["userName"].lower() for u in sb.genesys.users.values()]
        assert len(names) == len(set(names))
        created = json.loads(again.stdout)["plan"]["counts"]["create"]
        assert partial + created == len(set(names) - before)  # nothing created twice
        check = run_cli("--config", cfg, "sync", "--full", "--dry-run", "--output", "json")
        plan = json.loads(check.stdout)["plan"]
        assert plan["changes"] == [] and plan["group_changes"] == []


@pytest.mark.usefixtures("quick_backoff")
def test_a_manager_whose_create_kept_failing_is_set_on_its_reports_by_the_retry(
        rig: Rig) -> None:
    """A manager's create fails at every attempt of the run, so its reports are created
    without a manager; the escrow retry creates the manager and sets it on them (an
    incremental run from the snapshot)."""
    code, out, _ = sync(rig.cfg, "--dry-run")
    skipped_managers = {s["identity"] for s in out["plan"]["skipped"] if s["kind"] == "manager"}
    creates = [c for c in out["plan"]["changes"] if c["action"] == "create"]
    by_source = {c["source_id"]: c["identity"] for c in creates}
    reporting = [u for u in rig.sb.graph.users if u.get("accountEnabled", True)
                 and isinstance(u.get("manager"), str) and u["manager"] in by_source
                 and u["userPrincipalName"] not in skipped_managers]
    manager = by_source[reporting[0]["manager"]]
    rig.proxy.add(Rule(Fault.STATUS, method="POST", path=r"/Users$", status=500,
                       request_body=re.escape(json.dumps(manager))))
    code, out, _ = sync(rig.cfg)
    assert code == 1
    assert [(who, code) for who, code, _ in failures(out)] == [(manager, "HTTP500")]
    reports = {s["identity"] for s in out["plan"]["skipped"]} & {
        u["userPrincipalName"] for u in reporting if by_source[u["manager"]] == manager}
    rig.proxy.clear()
    code, out, err = sync(rig.cfg, "--retry-now")
    assert code == 0, err
    planned = {c["identity"] for c in out["plan"]["changes"]}
    assert manager in planned and reports <= planned
    rig.assert_converged()

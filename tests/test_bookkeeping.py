"""Outcomes are recorded in batches: one transaction per N outcomes or per second, a flush
at the end and on every way out of an apply, progress on every 100th outcome and the
last; the state's transactions (nested ones join, a rollback drops the log's lines)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import responses

from genesys_prov.config import SafetyConfig, TargetConfig
from genesys_prov.http import HttpClient, RateLimiter, make_session
from genesys_prov.plan.model import Action, AttributeChange, Change, Plan
from genesys_prov.state.db import LogRecord, State
from genesys_prov.sync import bookkeeping
from genesys_prov.sync.bookkeeping import Bookkeeper
from genesys_prov.sync.run import apply_with_bookkeeping
from genesys_prov.target.apply import FAILURE, SUCCESS, Outcome, apply_plan
from genesys_prov.target.scim import ScimClient

BASE = "https://api.example.test/api/v2/scim/v2"


def create(i: int, wave: int = 0) -> Change:
    return Change(Action.CREATE, f"u{i}@x", f"s-{i}", None,
                  (AttributeChange("userName", None, f"u{i}@x"),), wave=wave)


def success(i: int) -> Outcome:
    return Outcome(create(i), SUCCESS, f"t-{i}")


class Commits:
    """Counts the transactions committed on a state's connection."""

    def __init__(self, state: State) -> None:
        self.count = 0
        state._db.set_trace_callback(self._seen)

    def _seen(self, sql: str) -> None:
        if sql.strip().upper() == "COMMIT":
            self.count += 1


@pytest.fixture(autouse=True)
def batches_by_size_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No batch is cut by the clock (a loaded machine may pause a second anywhere)."""
    monkeypatch.setattr(bookkeeping, "BATCH_SECONDS", 3600.0)


@pytest.fixture
def state(tmp_path: Path) -> Any:
    with State.open(tmp_path / "state") as opened:
        yield opened


def log_lines(state: State) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted((state.directory / "logs").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()]


def keeper(state: State, **kwargs: Any) -> Bookkeeper:
    kwargs.setdefault("timer", lambda: 0.0)  # the clock never moves: batches by size
    return Bookkeeper(state, "run-1", SafetyConfig(), time.time, **kwargs)


def test_one_transaction_per_batch_and_the_rest_at_the_end(state: State) -> None:
    commits = Commits(state)
    with keeper(state, batch_size=3) as record:
        for i in range(7):
            record(success(i))
        assert commits.count == 2 and record.batches == 2
        assert len(state.links("user")) == 6  # the 7th waits for its batch
        assert len(state.query_log(run="run-1")) == 6 and len(log_lines(state)) == 6
    assert commits.count == 3 and record.batches == 3
    assert state.links("user") == {f"s-{i}": f"t-{i}" for i in range(7)}
    assert [r["identity"] for r in log_lines(state)] == [f"u{i}@x" for i in range(7)]
    assert [r["identity"] for r in state.query_log(run="run-1")] == \
        [f"u{i}@x" for i in range(7)]


def test_a_batch_is_written_after_a_second_even_when_not_full(state: State) -> None:
    now = [0.0]
    commits = Commits(state)
    record = keeper(state, batch_size=200, batch_seconds=1.0, timer=lambda: now[0])
    for i, moment in enumerate([0.0, 0.4, 0.9]):
        now[0] = moment
        record(success(i))
    assert commits.count == 0
    now[0] = 1.1
    record(success(3))  # the batch opened at 0.0: a second old
    assert commits.count == 1 and len(state.links("user")) == 4
    now[0] = 1.5
    record(success(4))  # a new batch, opened at 1.5
    assert commits.count == 1
    record.flush()
    record.flush()  # nothing left: no empty transaction
    assert commits.count == 2 and len(state.links("user")) == 5


def test_what_was_taken_is_written_when_the_apply_raises(state: State) -> None:
    with pytest.raises(RuntimeError, match="boom"), keeper(state) as record:
        record(success(1))
        record(Outcome(create(2), FAILURE, None, "refused", "HTTP400"))
        raise RuntimeError("boom")
    assert state.links("user") == {"s-1": "t-1"}
    assert set(state.escrowed("user")) == {"s-2"}
    assert [r["status"] for r in log_lines(state)] == ["Success", "Failure"]


def test_progress_hears_every_100th_outcome_and_the_last(state: State) -> None:
    heard: list[tuple[str, int]] = []
    with keeper(state, total=250, progress=lambda stage, n: heard.append((stage, n)),
                batch_size=200) as record:
        for i in range(250):
            record(success(i))
    assert heard == [("apply", 100), ("apply", 200), ("apply", 250)]
    assert record.batches == 2


def test_outcomes_of_one_batch_are_recorded_in_their_order(state: State) -> None:
    """A create and its manager fix-up (a later phase) may share a batch: the fix-up's
    failure must stay in escrow, not be cleared by the create's success."""
    fixup = Change(Action.UPDATE, "u1@x", "s-1", "t-1",
                   (AttributeChange("manager", None, "t-9"),), wave=1000)
    with keeper(state) as record:
        record(success(1))
        record(Outcome(fixup, FAILURE, "t-1", "busy", "HTTP503"))
    assert set(state.escrowed("user")) == {"s-1"}
    assert state.links("user") == {"s-1": "t-1"}
    with keeper(state) as record:  # the other way round: the success comes last
        record(Outcome(create(2), FAILURE, None, "busy", "HTTP503"))
        record(Outcome(fixup, FAILURE, "t-1", "busy", "HTTP503"))
        record(Outcome(fixup, SUCCESS, "t-1"))
        record(success(3))
    assert set(state.escrowed("user")) == {"s-2"}
    assert state.links("user") == {"s-1": "t-1", "s-3": "t-3"}


def client() -> ScimClient:
    http = HttpClient(make_session(), RateLimiter(0), timeout=5, sleep=lambda s: None)
    return ScimClient(TargetConfig(url=BASE, token="tok-123456"), http)


def run_of(state: State) -> Any:
    """What apply_with_bookkeeping reads of a run, and of its connections."""
    config = SimpleNamespace(safety=SafetyConfig(),
                             target=SimpleNamespace(concurrency=1, member_batch_size=50))
    mappings = SimpleNamespace(user_match=[SimpleNamespace(target="userName")])
    return SimpleNamespace(config=config, mappings=mappings, state=state, run_id="run-1",
                           clock=time.time, progress=None)


@responses.activate
def test_the_apply_writes_what_it_recorded_when_it_stops_on_an_error(state: State) -> None:
    for i in range(3):
        responses.post(f"{BASE}/Users", status=201, json={"id": f"t-{i}"})
    responses.post(f"{BASE}/Users", body=RuntimeError("boom"))
    commits = Commits(state)
    plan = Plan(changes=tuple(create(i) for i in range(5)))
    with pytest.raises(RuntimeError, match="boom"):
        apply_with_bookkeeping(run_of(state), SimpleNamespace(scim=client()), plan)
    assert state.links("user") == {f"s-{i}": f"t-{i}" for i in range(3)}
    assert commits.count == 1  # the three outcomes before the error, in one transaction
    assert len(log_lines(state)) == 3


@responses.activate
def test_the_apply_writes_its_outcomes_in_one_transaction_at_the_end(state: State) -> None:
    for i in range(5):
        responses.post(f"{BASE}/Users", status=201, json={"id": f"t-{i}"})
    commits = Commits(state)
    plan = Plan(changes=tuple(create(i) for i in range(5)))
    result = apply_with_bookkeeping(run_of(state), SimpleNamespace(scim=client()), plan)
    assert result.counts()["success"] == 5
    assert commits.count == 1 and len(state.links("user")) == 5


@responses.activate
def test_buffered_outcomes_are_written_before_the_retry_pass_waits(state: State) -> None:
    responses.post(f"{BASE}/Users", status=201, json={"id": "t-0"})
    for _ in range(6):  # the first attempt of the PATCH, with every retry
        responses.patch(f"{BASE}/Users/t-1", status=503, json={"detail": "busy"})
    responses.patch(f"{BASE}/Users/t-1", json={"id": "t-1"})
    update = Change(Action.UPDATE, "u1@x", "s-1", "t-1", (AttributeChange("title", "a", "b"),))
    events: list[str] = []
    record = keeper(state)

    def flush() -> None:
        events.append(f"flush ({len(record._pending)} pending)")
        record.flush()

    with record:
        apply_plan(Plan(changes=(create(0), update)), client(), ["userName"], 1,
                   on_outcome=record, sleep=lambda s: events.append(f"sleep {s}"),
                   on_wait=flush)
    assert events == ["flush (1 pending)", "sleep 10.0"]
    assert state.links("user") == {"s-0": "t-0", "s-1": "t-1"}


def test_a_transaction_commits_once_and_its_log_lines_follow_the_commit(
        state: State) -> None:
    commits = Commits(state)
    record = LogRecord("run-1", "a@x", "s-a", "t-a", "Create", "Success")
    with state.transaction():
        state.link("user", "s-a", "t-a")
        with state.transaction():  # joins the outer one
            state.log([record])
        state.escrow_clear("user", "s-a")
        assert commits.count == 0 and log_lines(state) == []
    assert commits.count == 1 and [r["identity"] for r in log_lines(state)] == ["a@x"]


def test_a_transaction_that_raises_writes_nothing(state: State) -> None:
    with pytest.raises(ValueError), state.transaction():
        state.link("user", "s-a", "t-a")
        state.log([LogRecord("run-1", "a@x", "s-a", "t-a", "Create", "Success")])
        raise ValueError("stop")
    assert state.links("user") == {} and log_lines(state) == []
    assert state.query_log() == []
    state.log([LogRecord("run-1", "b@x", "s-b", "t-b", "Create", "Success")])
    assert [r["identity"] for r in log_lines(state)] == ["b@x"]  # the next one is fine


def test_many_rows_go_in_a_few_statements_in_their_order(state: State) -> None:
    """Past the parameter limit of one statement, rows are split; a later link of the
    same source object wins; every id is cleared or unlinked."""
    statements: list[str] = []
    state._db.set_trace_callback(statements.append)
    pairs = [(f"s-{i}", f"t-{i}") for i in range(600)] + [("s-7", "t-again")]
    state.link_many("user", pairs)
    inserts = [s for s in statements if s.startswith("INSERT INTO links")]
    assert 2 <= len(inserts) <= 4 and statements.count("COMMIT") == 1
    links = state.links("user")
    assert len(links) == 600 and links["s-7"] == "t-again"
    state.unlink_many("user", [f"s-{i}" for i in range(0, 600, 2)])
    assert sorted(state.links("user")) == sorted(f"s-{i}" for i in range(1, 600, 2))
    for i in range(700):
        state.escrow_failure("user", f"s-{i}", f"u{i}@x", "busy", 0.0, 60.0, 3600.0)
    state.escrow_clear_many("user", [f"s-{i}" for i in range(650)])
    assert sorted(state.escrowed("user")) == sorted(f"s-{i}" for i in range(650, 700))
    records = [LogRecord("run-1", f"u{i}@x", f"s-{i}", None, "Create", "Success",
                         properties=[{"attribute": "userName", "new": f"u{i}@x"}])
               for i in range(250)]
    state.log(records)
    assert [r["identity"] for r in state.query_log(run="run-1")] == \
        [f"u{i}@x" for i in range(250)]
    assert [r["properties"][0]["new"] for r in log_lines(state)] == \
        [f"u{i}@x" for i in range(250)]

"""Metrics for monitoring: after every run, the Prometheus text format for node_exporter's
textfile collector (or anything that reads it), written whole or not at all.

Two kinds of numbers go in the file:

- **the job's**, read from the state database, so the file can be regenerated at any time
  and two runs never disagree: runs by status (a counter: every finished run the database
  recorded), the last successful run's time, escrow's size, quarantine;
- **the last run's**, from the run itself: its status, changes by action and status,
  requests by side and method, duration, users in scope. A run that stopped with an error
  has no result: its changes and requests are left out (its status, duration, users in
  scope and the job's numbers are still written).

The file is built by ``prometheus_client`` (a collector of metric families, no global
registry) and written with its ``write_to_textfile``: a temporary file beside the target,
then renamed over it, so a scrape never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from genesys_prov.errors import ConfigError, LockError
from genesys_prov.plan.model import Action, Change, GroupChange, Plan
from genesys_prov.report import check_output_path
from genesys_prov.state.db import State
from genesys_prov.target.apply import ADOPTED, FAILURE, SKIPPED, SUCCESS, ApplyResult

log = logging.getLogger(__name__)

PREFIX = "genesys_prov_"
#: Run statuses that count as a successful run (``last_success_timestamp_seconds``): a sync
#: that applied everything (or had nothing to do), and an applied plan file.
SUCCESS_STATUSES = ("success", "incremental", "applied")
#: The state's meta key that holds the quarantine (set by sync.incidents).
QUARANTINE_META = "quarantine"
#: A change's status in the last run's changes when the run did not apply it.
PLANNED, HELD, NOT_APPLIED = "planned", "held", "not_applied"


class MeasuredRun(Protocol):
    """What the metrics take from a finished run (a
    :class:`~genesys_prov.sync.result.SyncResult`)."""

    plan: Plan
    dry_run: bool
    applied: ApplyResult | None
    run_id: str
    requests: dict[str, dict[str, int]]


@dataclass
class LastRun:
    """The last run as the metrics show it: its result (None when it stopped with an
    error), when it started and ended (Unix time) and how long it took (seconds)."""

    result: MeasuredRun | None
    started: float
    ended: float
    duration: float


def metric_families(state: State, last: LastRun) -> list[Metric]:
    """Every metric of the file: the job's (from ``state``) and the last run's."""
    families = _job_families(state)
    record = _record(state, last)
    status = str(record["status"]) if record and record["status"] else "error"
    dry = bool(record["dry_run"]) if record else bool(last.result and last.result.dry_run)
    families += [
        _gauge("last_run_status", "The last run's status (the label; the value is always 1): "
               "success, incremental, applied, failed, held, blocked or error.",
               {(status,): 1.0}, ["status"]),
        _gauge("last_run_dry_run", "1 when the last run was a dry run (--dry-run).",
               {(): float(dry)}),
        _gauge("last_run_timestamp_seconds", "When the last run ended (Unix time).",
               {(): last.ended}),
        _gauge("last_run_duration_seconds", "How long the last run took, in seconds.",
               {(): last.duration}),
    ]
    in_scope = _in_scope(state, last, record)
    if in_scope is not None:
        families.append(_gauge("users_in_scope", "Users in scope as the last run saw them "
                               "(after an error: as the last run that got that far).",
                               {(): float(in_scope)}))
    if last.result is not None:
        families += _result_families(last.result)
    return families


def _job_families(state: State) -> list[Metric]:
    """The numbers the state database holds: they survive any run and can be rebuilt."""
    runs = CounterMetricFamily(PREFIX + "runs", "Finished runs by status (every run the "
                               "state database recorded).", labels=["status", "dry_run"])
    for (status, dry), count in sorted(state.run_totals().items()):
        runs.add_metric([status, "true" if dry else "false"], count)
    success = state.last_finished(SUCCESS_STATUSES)
    escrow = state.escrow_summary()
    quarantined = json.loads(state.get_meta(QUARANTINE_META) or "null")
    return [
        runs,
        _gauge("last_success_timestamp_seconds", "When the last successful real run ended "
               "(Unix time; 0: none yet). Successful: status success, incremental or applied.",
               {(): _epoch(success) if success else 0.0}),
        _gauge("escrow_size", "Changes waiting in escrow for a later retry.",
               {(): float(escrow["count"]) if escrow else 0.0}),
        _gauge("quarantined", "1 while the job is in quarantine (runs only probe the "
               "connection), else 0.", {(): 1.0 if quarantined else 0.0}),
    ]


def _result_families(result: MeasuredRun) -> list[Metric]:
    """The last run's changes and requests."""
    requests: dict[tuple[str, ...], float] = {
        (side, method): float(count) for side, methods in sorted(result.requests.items())
        for method, count in sorted(methods.items())}
    return [
        _gauge("last_run_changes", "The last run's changes by action and status (planned: a "
               "dry run; held: by the safety guard; not_applied: the apply stopped first).",
               {tuple(key): float(n) for key, n in sorted(change_counts(result).items())},
               ["action", "status"]),
        _gauge("last_run_requests", "HTTP requests the last run sent, by side (graph, target) "
               "and method (token: the target's OAuth token requests).", requests,
               ["side", "method"]),
    ]


def change_counts(result: MeasuredRun) -> Counter[tuple[str, str]]:
    """Changes by (action, status): each planned change with its outcome (success, failure,
    skipped; planned in a dry run, not_applied when the apply stopped before it) and each
    change the safety guard held. User actions always have their statuses, zero or not."""
    statuses = (PLANNED,) if result.dry_run else (SUCCESS, FAILURE, SKIPPED)
    out: Counter[tuple[str, str]] = Counter()
    for action in (a.value for a in Action):
        for status in statuses:
            out[(action, status)] = 0
    outcomes: dict[tuple[str, str], str] = {}
    if result.applied is not None:
        for o in result.applied.outcomes + result.applied.group_outcomes:
            status = SUCCESS if o.status == ADOPTED else o.status
            outcomes[(type(o.change).__name__, o.change.source_id)] = status
    default = PLANNED if result.dry_run else NOT_APPLIED
    changes: list[Change | GroupChange] = [*result.plan.changes, *result.plan.group_changes]
    for change in changes:
        key = (type(change).__name__, change.source_id)
        out[(_action(change.action.value), outcomes.get(key, default))] += 1
    for held in result.plan.held:
        out[(_action(held.action.value), HELD)] += 1
    return out


def _action(value: str) -> str:
    """An action as a label value: ``create group`` → ``create_group``."""
    return value.replace(" ", "_")


def _record(state: State, last: LastRun) -> dict[str, Any] | None:
    """The last run's record in the state: the result's run, or after an error the latest
    run if it started with this one (None: the run stopped before it was recorded)."""
    if last.result is not None:
        return state.run_record(last.result.run_id)
    record = state.last_run(real_only=False)
    if record is None or _epoch(str(record["started"])) < int(last.started):
        return None
    return record


def _in_scope(state: State, last: LastRun, record: dict[str, Any] | None) -> int | None:
    if last.result is not None:
        return last.result.plan.in_scope
    recorded = record.get("in_scope") if record else None
    return int(recorded) if recorded is not None else state.last_in_scope()


def _gauge(name: str, help_text: str, samples: dict[tuple[str, ...], float],
           labels: Iterable[str] = ()) -> GaugeMetricFamily:
    family = GaugeMetricFamily(PREFIX + name, help_text, labels=list(labels))
    for values, value in samples.items():
        family.add_metric(list(values), value)
    return family


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


class _Families(Collector):
    """A collector that yields metric families made beforehand (the registry's shape)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        """The families, as ``CollectorRegistry`` asks for them."""
        yield from self.families


def write_metrics(path: str | Path, state_dir: Path, last: LastRun,
                  option: str = "--metrics-file") -> None:
    """Write the metrics file: a temporary file beside ``path``, renamed over it (a reader
    sees the old file or the new one, never a part). Raises ConfigError (naming ``option``,
    where the path came from) when it cannot."""
    with State.open(state_dir) as state:
        families = metric_families(state, last)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    try:
        write_to_textfile(str(path), registry)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write: "
                          f"{exc.strerror or exc}") from exc


@dataclass
class MetricsFile:
    """The metrics file of one run: :meth:`measure` times the run and, when it stops with an
    error, writes the file on its way out; :meth:`write` writes it for a run that returned.
    A ``path`` of None writes nothing; ``option`` says where the path came from (messages).

    Example::

        metrics = MetricsFile("/var/lib/node_exporter/genesys_prov.prom", config.state_dir)
        with metrics.measure():
            result = run_sync(config)
        metrics.write(result)
    """

    path: str | None
    state_dir: Path
    option: str = "--metrics-file"
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    _started: float = field(default=0.0, init=False)
    _started_wall: float = field(default=0.0, init=False)
    _duration: float = field(default=0.0, init=False)

    def check(self) -> None:
        """Refuse a file that cannot be written, before the run starts (ConfigError)."""
        if self.path is not None:
            check_output_path(self.option, self.path)

    @contextlib.contextmanager
    def measure(self) -> Iterator[None]:
        """Time the run inside; when it raises (anything but another run holding the lock:
        that run writes the file when it ends), write the file, then let the error go on.
        A file that cannot be written then is logged, not raised: the run's error wins."""
        self._started, self._started_wall = self.clock(), self.wall()
        try:
            yield
        except LockError:
            raise
        except Exception:
            self._duration = self.clock() - self._started
            self._after_error()
            raise
        self._duration = self.clock() - self._started

    def write(self, result: MeasuredRun) -> None:
        """Write the file for a run that returned its result (raises ConfigError)."""
        if self.path is not None:
            write_metrics(self.path, self.state_dir, self._last(result), self.option)

    def _after_error(self) -> None:
        if self.path is None:
            return
        try:
            write_metrics(self.path, self.state_dir, self._last(None), self.option)
        except Exception as exc:  # whatever it is, the run's own error is the one to report
            log.warning("the metrics file was not written: %s", exc)

    def _last(self, result: MeasuredRun | None) -> LastRun:
        return LastRun(result, self._started_wall, self._started_wall + self._duration,
                       self._duration)

"""The run history: when each run started and finished, how, and what it saw."""

from __future__ import annotations

import json
import uuid
from typing import Any

from genesys_prov.state.connection import Connection, utc_now


class RunHistory(Connection):
    """The ``runs`` table of :class:`~genesys_prov.state.db.State`."""

    def start_run(self, dry_run: bool) -> str:
        """Record the start of a run; returns its id."""
        run_id = uuid.uuid4().hex[:12]
        self._write("INSERT INTO runs (id, started, dry_run) VALUES (?, ?, ?)",
                    (run_id, utc_now(), int(dry_run)))
        return run_id

    def finish_run(self, run_id: str, status: str, in_scope: int | None,
                   counts: dict[str, int]) -> None:
        """Record how a run ended, with the number of in-scope users it saw."""
        self._write("UPDATE runs SET finished = ?, status = ?, in_scope = ?, counts = ? "
                    "WHERE id = ?", (utc_now(), status, in_scope, json.dumps(counts), run_id))

    def last_run(self, real_only: bool = True) -> dict[str, Any] | None:
        """The most recent finished run (not dry-runs, unless asked)."""
        where = "WHERE finished IS NOT NULL" + (" AND dry_run = 0" if real_only else "")
        rows = self._read(f"SELECT id, started, finished, status, in_scope, counts, dry_run "
                          f"FROM runs {where} ORDER BY finished DESC, rowid DESC LIMIT 1")
        return _run(rows[0]) if rows else None

    def last_in_scope(self) -> int | None:
        """Users in scope as seen by the last real run that was allowed to proceed (a run a
        guard stopped does not count: otherwise a second attempt would pass the guard)."""
        rows = self._read("SELECT in_scope FROM runs WHERE dry_run = 0 AND in_scope IS NOT NULL"
                          " AND status IN ('success', 'failed', 'held', 'incremental') "
                          "ORDER BY finished DESC, rowid DESC LIMIT 1")
        return int(rows[0][0]) if rows else None

    def run_totals(self) -> dict[tuple[str, bool], int]:
        """How many runs finished with each status, by (status, dry run) — every run the
        database has recorded (runs are never forgotten, ``state reset`` included)."""
        rows = self._read("SELECT status, dry_run, count(*) FROM runs "
                          "WHERE finished IS NOT NULL GROUP BY status, dry_run")
        return {(str(status), bool(dry)): int(n) for status, dry, n in rows}

    def run_record(self, run_id: str) -> dict[str, Any] | None:
        """One run's record (as :meth:`last_run` returns it), or None."""
        rows = self._read("SELECT id, started, finished, status, in_scope, counts, dry_run "
                          "FROM runs WHERE id = ?", (run_id,))
        return _run(rows[0]) if rows else None

    def last_finished(self, statuses: tuple[str, ...]) -> str | None:
        """When the last real (not dry) run that ended with one of ``statuses`` finished
        (UTC ISO 8601), or None."""
        marks = ", ".join("?" for _ in statuses)
        rows = self._read(f"SELECT max(finished) FROM runs WHERE dry_run = 0 AND "
                          f"status IN ({marks})", statuses)
        return str(rows[0][0]) if rows and rows[0][0] else None


def _run(row: tuple[Any, ...]) -> dict[str, Any]:
    """A ``runs`` row (id, started, finished, status, in_scope, counts, dry_run) as a dict."""
    rid, started, finished, status, in_scope, counts, dry = row
    return {"id": rid, "started": started, "finished": finished, "status": status,
            "in_scope": in_scope, "counts": json.loads(counts or "{}"), "dry_run": bool(dry)}

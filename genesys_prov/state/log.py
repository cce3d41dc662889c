"""The provisioning log: one record per attempted change (like Entra's provisioning log),
kept in the ``log`` table and written as JSON lines under ``logs/<date>.jsonl``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from genesys_prov import redact
from genesys_prov.state.connection import Connection, utc_now
from genesys_prov.state.files import private_append


@dataclass(frozen=True)
class LogRecord:
    """One provisioning-log record (Entra's provisioning log, one per attempted change)."""

    run_id: str
    identity: str
    source_id: str | None
    target_id: str | None
    action: str   # Create / Update / Disable / Enable / Delete / AddMembers / RemoveMembers / Skip
    status: str   # Success / Failure / Skipped / Warning
    code: str | None = None
    reason: str | None = None
    properties: Sequence[dict[str, Any]] = ()
    time: str = ""

    def data(self) -> dict[str, Any]:
        """JSON-ready form (secrets scrubbed; redacted values are already masked)."""
        return {
            "time": self.time or utc_now(), "run_id": self.run_id, "identity": self.identity,
            "source_id": self.source_id, "target_id": self.target_id, "action": self.action,
            "status": self.status, "code": self.code,
            "reason": redact.scrub(self.reason) if self.reason else None,
            "properties": list(self.properties),
        }


class ProvisioningLog(Connection):
    """The provisioning log of :class:`~genesys_prov.state.db.State`."""

    def log(self, records: Sequence[LogRecord]) -> None:
        """Append records to the log table and to ``logs/<date>.jsonl`` (committed at once;
        inside a transaction, with it — the JSON lines are appended once it is committed)."""
        if not records:
            return
        rows = [r.data() for r in records]
        # the properties are encoded once, for the table and for the JSON line
        encoded = [json.dumps(d.pop("properties"), ensure_ascii=False, default=str)
                   for d in rows]
        with self.transaction():
            self._insert_rows(
                "INSERT INTO log (time, run_id, identity, source_id, target_id, action, status,"
                " code, reason, properties)",
                [(d["time"], d["run_id"], d["identity"], d["source_id"], d["target_id"],
                  d["action"], d["status"], d["code"], d["reason"], properties)
                 for d, properties in zip(rows, encoded, strict=True)])
            self._on_commit(lambda: self._append_lines(rows, encoded))

    def _append_lines(self, rows: Sequence[dict[str, Any]], encoded: Sequence[str]) -> None:
        """The records as JSON lines (``properties`` last, as :meth:`LogRecord.data` orders
        them), appended to ``logs/<date>.jsonl`` in one write."""
        day = rows[0]["time"][:10]
        text = "".join(json.dumps(d, ensure_ascii=False, default=str)[:-1] +
                       f', "properties": {properties}}}\n'
                       for d, properties in zip(rows, encoded, strict=True))
        with private_append(self.directory / "logs" / f"{day}.jsonl") as out:
            out.write(text)

    def query_log(self, since: str | None = None, status: str | None = None,
                  action: str | None = None, user: str | None = None,
                  run: str | None = None, limit: int = 10_000) -> list[dict[str, Any]]:
        """Log records, newest last, filtered (case-insensitive status/action)."""
        clauses, params = [], []
        if since:
            clauses.append("time >= ?")
            params.append(since)
        if status:
            clauses.append("lower(status) = lower(?)")
            params.append(status)
        if action:
            clauses.append("lower(action) = lower(?)")
            params.append(action)
        if user:
            clauses.append("(lower(identity) = lower(?) OR source_id = ?)")
            params += [user, user]
        if run:
            clauses.append("run_id = ?")
            params.append(run)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._read(f"SELECT time, run_id, identity, source_id, target_id, action, status,"
                          f" code, reason, properties FROM log {where} ORDER BY seq DESC LIMIT ?",
                          (*params, limit))
        keys = ("time", "run_id", "identity", "source_id", "target_id", "action", "status",
                "code", "reason", "properties")
        out = [dict(zip(keys, row, strict=True)) for row in reversed(rows)]
        for record in out:
            record["properties"] = json.loads(record["properties"] or "[]")
        return out

"""Escrow: failed changes waiting to be retried, with a doubling back-off, until they
succeed, are released or expire."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genesys_prov import redact
from genesys_prov.state.connection import Connection


class EscrowStore(Connection):
    """The ``escrow`` table of :class:`~genesys_prov.state.db.State`."""

    def escrow_failure(self, kind: str, source_id: str, identity: str, error: str,
                       now: float, backoff: float, max_backoff: float) -> int:
        """Record a failed change: it is retried after ``backoff`` seconds, doubling with
        every further failure up to ``max_backoff``. Returns the attempt count."""
        rows = self._read("SELECT attempts FROM escrow WHERE kind = ? AND source_id = ?",
                          (kind, source_id))
        attempts = (int(rows[0][0]) if rows else 0) + 1
        wait = min(backoff * 2 ** (attempts - 1), max_backoff)
        self._write(
            "INSERT INTO escrow (kind, source_id, identity, attempts, first_failed, next_retry,"
            " last_error) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(kind, source_id) DO UPDATE "
            "SET attempts = excluded.attempts, next_retry = excluded.next_retry, "
            "last_error = excluded.last_error, identity = excluded.identity",
            (kind, source_id, identity, attempts, now, now + wait, redact.scrub(error)))
        return attempts

    def escrow_clear(self, kind: str, source_id: str) -> None:
        """A change succeeded: forget its escrow entry."""
        self._write("DELETE FROM escrow WHERE kind = ? AND source_id = ?", (kind, source_id))

    def escrow_clear_many(self, kind: str, source_ids: Sequence[str]) -> None:
        """Forget the escrow entries of these objects (nothing is left to do for them)."""
        self._delete_ids("DELETE FROM escrow WHERE kind = ? AND source_id IN", kind,
                         source_ids)

    def escrow_release(self) -> list[dict[str, Any]]:
        """Forget every escrow entry (the mappings or settings changed: those objects are
        planned afresh); returns what was released."""
        keys = ("kind", "source_id", "identity", "attempts", "last_error")
        rows = self._read("SELECT kind, source_id, identity, attempts, last_error FROM escrow")
        self._write("DELETE FROM escrow")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def escrow_due_now(self, who: str | None = None) -> int:
        """Make escrowed changes due now — all, or one user's (source id or identity, any
        case). Returns how many entries changed."""
        with self._lock:
            if who is None:
                cursor = self._db.execute("UPDATE escrow SET next_retry = 0")
            else:
                cursor = self._db.execute(
                    "UPDATE escrow SET next_retry = 0 WHERE lower(source_id) = lower(?) OR "
                    "lower(identity) = lower(?)", (who, who))
            return int(cursor.rowcount)

    def escrow_summary(self) -> dict[str, Any] | None:
        """How many changes wait in escrow, since when and until when (epoch seconds), or
        None when escrow is empty."""
        count, oldest, soonest = self._read(
            "SELECT count(*), min(first_failed), min(next_retry) FROM escrow")[0]
        if not count:
            return None
        return {"count": int(count), "oldest": float(oldest), "next_retry": float(soonest)}

    def escrowed(self, kind: str = "user") -> dict[str, dict[str, Any]]:
        """Every escrow entry of ``kind`` by source id."""
        keys = ("identity", "attempts", "first_failed", "next_retry", "last_error")
        return {str(r[0]): dict(zip(keys, r[1:], strict=True)) for r in self._read(
            "SELECT source_id, identity, attempts, first_failed, next_retry, last_error "
            "FROM escrow WHERE kind = ?", (kind,))}

    def expire_escrow(self, now: float, max_age: float) -> list[dict[str, Any]]:
        """Drop entries that kept failing for longer than ``max_age`` seconds; returns them."""
        rows = self._read("SELECT kind, source_id, identity, attempts, last_error FROM escrow "
                          "WHERE first_failed < ?", (now - max_age,))
        self._write("DELETE FROM escrow WHERE first_failed < ?", (now - max_age,))
        keys = ("kind", "source_id", "identity", "attempts", "last_error")
        return [dict(zip(keys, r, strict=True)) for r in rows]

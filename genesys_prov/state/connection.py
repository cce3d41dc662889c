"""The connection the parts of the state database share: its directory and file, the
SQLite connection and the lock that serialises its use across threads, with the small
helpers every table's code uses (one-statement reads and writes, timestamps, id chunks)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def utc_now() -> str:
    """The current time as stored in the database (UTC ISO 8601, whole seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def chunks(items: Sequence[str], size: int = 500) -> list[list[str]]:
    """Split ids for ``IN (...)`` queries (SQLite limits the number of parameters)."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


class Connection:
    """The base of :class:`~genesys_prov.state.db.State` and of each of its parts: the
    attributes ``State`` sets when it opens the database, and one-statement reads and
    writes under the lock (every write is committed at once)."""

    directory: Path
    path: Path
    _db: sqlite3.Connection
    _lock: threading.Lock

    def _write(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._lock:
            self._db.execute(sql, params)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

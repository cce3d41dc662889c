"""The connection the parts of the state database share: its directory and file, the
SQLite connection and the lock that serialises its use across threads, with the small
helpers every table's code uses (one-statement reads and writes, transactions, timestamps,
id chunks)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def utc_now() -> str:
    """The current time as stored in the database (UTC ISO 8601, whole seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def iso_utc(moment: float) -> str:
    """Epoch seconds as UTC ISO 8601 with its offset, whole seconds."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


#: Bound parameters per statement (SQLite's default limit before 3.32).
MAX_PARAMETERS = 999


def chunks(items: Sequence[str], size: int = 500) -> list[list[str]]:
    """Split ids for ``IN (...)`` queries (SQLite limits the number of parameters)."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


class Connection:
    """The base of :class:`~genesys_prov.state.db.State` and of each of its parts: the
    attributes ``State`` sets when it opens the database, one-statement reads and writes
    under the lock (a write outside a transaction is committed at once), and
    :meth:`transaction`, which makes every write inside it one commit."""

    directory: Path
    path: Path
    _db: sqlite3.Connection
    _lock: threading.RLock
    _depth: int  # transactions open (nested ones join the outermost)
    _after_commit: list[Callable[[], None]]

    def _write(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._lock:
            self._db.execute(sql, params)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write inside is committed together when the outermost transaction ends
        (rolled back if it raises); other threads wait for it. A transaction opened inside
        another joins it. What :meth:`_on_commit` was given runs after the commit."""
        with self._lock:
            if self._depth == 0:
                self._db.execute("BEGIN")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                    self._after_commit.clear()
                raise
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")
                done, self._after_commit = self._after_commit, []
                for action in done:
                    action()

    def _insert_rows(self, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
        """``head VALUES (…), (…), … tail`` for many rows (in their order) in one
        transaction, with as few statements as the parameter limit allows: SQLite does a
        statement's rows in one call, where ``executemany`` lets other threads in between
        every two rows."""
        if not rows:
            return
        width = len(rows[0])
        per = max(1, MAX_PARAMETERS // width)
        mark = "(" + ",".join("?" * width) + ")"
        with self.transaction():
            for start in range(0, len(rows), per):
                part = rows[start:start + per]
                self._db.execute(f"{head} VALUES {','.join([mark] * len(part))} {tail}",
                                 [value for row in part for value in row])

    def _delete_ids(self, sql: str, kind: str, ids: Sequence[str]) -> None:
        """``sql`` (ending ``IN``) for ``kind`` and the ids, a few hundred a statement, in
        one transaction."""
        with self.transaction():
            for part in chunks(ids):
                self._db.execute(f"{sql} ({','.join('?' * len(part))})", [kind, *part])

    def _on_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once what was written so far is committed: now, outside a
        transaction; after the commit, inside one (never, if it is rolled back)."""
        with self._lock:
            if self._depth:
                self._after_commit.append(action)
                return
        action()

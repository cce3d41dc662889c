"""State: one SQLite database per configuration (standard library ``sqlite3``, WAL mode).

It holds the links (source object id ↔ target id), the run history, the provisioning log
(also written as JSON lines under ``logs/``), Graph delta links and settings digests.
Every write is committed at once, so a run killed at any moment loses nothing it did.
A file lock makes sure only one run at a time uses a database.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from genesys_prov import redact
from genesys_prov.errors import ConfigError, LockError

SCHEMA_VERSION = 4
_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE links (
        kind TEXT NOT NULL, source_id TEXT NOT NULL, target_id TEXT NOT NULL,
        updated TEXT NOT NULL, PRIMARY KEY (kind, source_id));
    CREATE INDEX links_target ON links (kind, target_id);
    CREATE TABLE delta_links (kind TEXT PRIMARY KEY, link TEXT NOT NULL, updated TEXT NOT NULL);
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, started TEXT NOT NULL, finished TEXT, dry_run INTEGER NOT NULL,
        status TEXT, in_scope INTEGER, counts TEXT);
    CREATE TABLE log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, run_id TEXT NOT NULL,
        identity TEXT, source_id TEXT, target_id TEXT, action TEXT NOT NULL,
        status TEXT NOT NULL, code TEXT, reason TEXT, properties TEXT);
    CREATE INDEX log_time ON log (time);
    """,
    2: """
    CREATE TABLE escrow (
        kind TEXT NOT NULL, source_id TEXT NOT NULL, identity TEXT, attempts INTEGER NOT NULL,
        first_failed REAL NOT NULL, next_retry REAL NOT NULL, last_error TEXT,
        PRIMARY KEY (kind, source_id));
    """,
    3: """
    CREATE TABLE source_users (
        id TEXT PRIMARY KEY, data TEXT NOT NULL, member_scope INTEGER NOT NULL,
        reason TEXT, run_id TEXT NOT NULL);
    ALTER TABLE links ADD COLUMN applied TEXT;
    """,
    4: """
    ALTER TABLE source_users ADD COLUMN manager TEXT;
    CREATE INDEX source_users_manager ON source_users (manager);
    CREATE TABLE source_groups (id TEXT PRIMARY KEY, data TEXT NOT NULL, run_id TEXT NOT NULL);
    CREATE TABLE source_members (
        group_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (group_id, user_id));
    CREATE INDEX source_members_user ON source_members (user_id);
    """,
}


def _tighten(path: Path, mode: int) -> None:
    """Make an existing file or directory of ours private (one left by an older version)."""
    try:
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(mode)
    except OSError:
        pass


def private_directory(path: Path) -> None:
    """Create ``path`` (and its parents) readable by its owner only; tighten it when it
    already exists and is ours. The state holds directory data and secrets' neighbours."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(path, 0o700)
    for child in path.iterdir():
        if child.is_file():
            _tighten(child, 0o600)


def private_append(path: Path) -> Any:
    """Open ``path`` for appending, created readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8")


def _chunks(items: Sequence[str], size: int = 500) -> list[list[str]]:
    """Split ids for ``IN (...)`` queries (SQLite limits the number of parameters)."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
            "time": self.time or _now(), "run_id": self.run_id, "identity": self.identity,
            "source_id": self.source_id, "target_id": self.target_id, "action": self.action,
            "status": self.status, "code": self.code,
            "reason": redact.scrub(self.reason) if self.reason else None,
            "properties": list(self.properties),
        }


class State:
    """The state database of one configuration.

    Example::

        with State.open(Path(".genesys-prov")) as state:
            state.links("user")
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            # it holds directory data (the snapshot, the log): owner-only
            private_directory(directory)
            private_directory(directory / "logs")
            self.path = directory / "state.sqlite3"
            # created 0600 here; SQLite gives its -wal and -shm files the same mode
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            _tighten(self.path, 0o600)
            self._db = sqlite3.connect(self.path, check_same_thread=False,
                                       isolation_level=None, timeout=30)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"state_dir: cannot open the state database in {directory}: "
                              f"{exc}") from exc
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    @classmethod
    def open(cls, directory: Path) -> State:
        """Open (creating and migrating as needed) the database in ``directory``."""
        return cls(directory)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _migrate(self) -> None:
        with self._lock:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError(f"state_dir: the state database {self.path} is from a newer "
                                  f"genesys-prov (schema {version}); upgrade genesys-prov")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                self._db.executescript("BEGIN;" + _MIGRATIONS[target] +
                                       f"PRAGMA user_version = {target}; COMMIT;")

    def _write(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._lock:
            self._db.execute(sql, params)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    # --- meta ------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A stored setting (e.g. the digest of the mappings of the last run)."""
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting."""
        self._write("INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def delete_meta(self, key: str) -> None:
        """Forget a stored setting."""
        self._write("DELETE FROM meta WHERE key = ?", (key,))

    # --- links -----------------------------------------------------------------------------

    def links(self, kind: str = "user") -> dict[str, str]:
        """source id → target id for every linked object of ``kind``."""
        return {str(s): str(t) for s, t in self._read(
            "SELECT source_id, target_id FROM links WHERE kind = ?", (kind,))}

    def link(self, kind: str, source_id: str, target_id: str) -> None:
        """Remember that ``source_id`` is ``target_id`` in the target (committed at once).
        What the target holds for it becomes unknown until the run records it
        (:meth:`set_applied`): a change was just written."""
        self._write("INSERT INTO links (kind, source_id, target_id, updated) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(kind, source_id) DO UPDATE SET target_id = excluded.target_id, "
                    "updated = excluded.updated, applied = NULL",
                    (kind, source_id, target_id, _now()))

    def link_many(self, kind: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Link many objects in one transaction."""
        now = _now()
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO links (kind, source_id, target_id, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(kind, source_id) DO UPDATE SET target_id = excluded.target_id, "
                "updated = excluded.updated, applied = NULL",
                [(kind, s, t, now) for s, t in pairs])
            self._db.execute("COMMIT")

    def unlink(self, kind: str, source_id: str) -> None:
        """Forget a link (the target object was deleted)."""
        self._write("DELETE FROM links WHERE kind = ? AND source_id = ?", (kind, source_id))

    # --- the snapshot incremental runs plan from ------------------------------------------

    def put_source_users(self, run_id: str,
                         rows: Sequence[tuple[str, str, bool, str | None, str | None]]) -> None:
        """Store directory users as last read: (id, object JSON, in scope by assignment /
        membership, why not, manager id), in one transaction, tagged with the run that
        read them."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO source_users (id, data, member_scope, reason, manager, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data, "
                "member_scope = excluded.member_scope, reason = excluded.reason, "
                "manager = excluded.manager, run_id = excluded.run_id",
                [(i, d, int(m), r, mgr, run_id) for i, d, m, r, mgr in rows])
            self._db.execute("COMMIT")

    def drop_source_users(self, ids: Sequence[str]) -> None:
        """Forget directory users (deleted in the directory)."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM source_users WHERE id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM source_members WHERE user_id = ?",
                                 [(i,) for i in ids])
            self._db.execute("COMMIT")

    def put_source_groups(self, run_id: str,
                          rows: Sequence[tuple[str, str, Sequence[str]]]) -> None:
        """Store groups whose members decide scope or are provisioned, with their direct
        user members as last read: (id, object JSON, member ids), one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            for gid, data, members in rows:
                self._db.execute(
                    "INSERT INTO source_groups (id, data, run_id) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET data = excluded.data, "
                    "run_id = excluded.run_id", (gid, data, run_id))
                self._db.execute("DELETE FROM source_members WHERE group_id = ?", (gid,))
                self._db.executemany(
                    "INSERT OR IGNORE INTO source_members (group_id, user_id) VALUES (?, ?)",
                    [(gid, m) for m in members])
            self._db.execute("COMMIT")

    def change_members(self, changes: Sequence[tuple[str, str, bool]]) -> None:
        """Apply membership changes to stored groups: (group id, user id, added?)."""
        with self._lock:
            self._db.execute("BEGIN")
            for gid, uid, added in changes:
                self._db.execute(
                    "INSERT OR IGNORE INTO source_members (group_id, user_id) VALUES (?, ?)"
                    if added else
                    "DELETE FROM source_members WHERE group_id = ? AND user_id = ?", (gid, uid))
            self._db.execute("COMMIT")

    def set_group_data(self, rows: Sequence[tuple[str, str]]) -> None:
        """Update stored groups' objects (id, JSON); their members are kept."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("UPDATE source_groups SET data = ? WHERE id = ?",
                                 [(data, gid) for gid, data in rows])
            self._db.execute("COMMIT")

    def drop_source_not_read_by(self, run_id: str) -> None:
        """After a complete directory read: forget users and groups that read did not see."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM source_users WHERE run_id != ?", (run_id,))
            self._db.execute("DELETE FROM source_members WHERE group_id IN "
                             "(SELECT id FROM source_groups WHERE run_id != ?)", (run_id,))
            self._db.execute("DELETE FROM source_groups WHERE run_id != ?", (run_id,))
            self._db.execute("COMMIT")

    def source_users(self, ids: Sequence[str]) -> dict[str, tuple[str, bool, str | None]]:
        """Stored directory users by id: (object JSON, member scope, reason)."""
        out: dict[str, tuple[str, bool, str | None]] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for i, d, m, r in self._read(
                    f"SELECT id, data, member_scope, reason FROM source_users WHERE id IN "
                    f"({marks})", chunk):
                out[str(i)] = (str(d), bool(m), r)
        return out

    def reports_of(self, manager_ids: Sequence[str]) -> list[str]:
        """Stored directory users whose manager is one of these."""
        out: list[str] = []
        for chunk in _chunks(manager_ids):
            marks = ",".join("?" * len(chunk))
            out += [str(r[0]) for r in self._read(
                f"SELECT id FROM source_users WHERE manager IN ({marks})", chunk)]
        return out

    def source_groups(self) -> dict[str, str]:
        """Stored groups: id → object JSON."""
        return {str(i): str(d) for i, d in self._read("SELECT id, data FROM source_groups")}

    def members_of(self, group_ids: Sequence[str]) -> dict[str, set[str]]:
        """Stored direct user members of these groups."""
        return self._memberships("group_id", "user_id", group_ids)

    def groups_of(self, user_ids: Sequence[str]) -> dict[str, set[str]]:
        """The stored groups each of these users is a direct member of."""
        return self._memberships("user_id", "group_id", user_ids)

    def _memberships(self, key: str, value: str, ids: Sequence[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {i: set() for i in ids}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for k, v in self._read(f"SELECT {key}, {value} FROM source_members "
                                   f"WHERE {key} IN ({marks})", chunk):
                out[str(k)].add(str(v))
        return out

    def applied(self, source_ids: Sequence[str], kind: str = "user") -> dict[str, str]:
        """What the target holds for linked objects as of their last run (JSON), when
        known."""
        out: dict[str, str] = {}
        for chunk in _chunks(source_ids):
            marks = ",".join("?" * len(chunk))
            for sid, value in self._read(
                    f"SELECT source_id, applied FROM links WHERE kind = ? AND applied IS NOT "
                    f"NULL AND source_id IN ({marks})", [kind, *chunk]):
                out[str(sid)] = str(value)
        return out

    def set_applied(self, rows: Sequence[tuple[str, str | None]], kind: str = "user") -> None:
        """Record what the target holds for linked objects (None: unknown), one
        transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE links SET applied = ? WHERE kind = ? AND source_id = ?",
                [(value, kind, sid) for sid, value in rows])
            self._db.execute("COMMIT")

    # --- delta links -------------------------------------------------------------------------

    def delta_link(self, kind: str) -> str | None:
        """The stored Graph delta link for ``kind`` (users / groups)."""
        rows = self._read("SELECT link FROM delta_links WHERE kind = ?", (kind,))
        return str(rows[0][0]) if rows else None

    def set_delta_link(self, kind: str, link: str) -> None:
        """Store a Graph delta link."""
        self._write("INSERT INTO delta_links (kind, link, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT(kind) DO UPDATE SET link = excluded.link, "
                    "updated = excluded.updated", (kind, link, _now()))

    # --- runs ------------------------------------------------------------------------------

    def start_run(self, dry_run: bool) -> str:
        """Record the start of a run; returns its id."""
        run_id = uuid.uuid4().hex[:12]
        self._write("INSERT INTO runs (id, started, dry_run) VALUES (?, ?, ?)",
                    (run_id, _now(), int(dry_run)))
        return run_id

    def finish_run(self, run_id: str, status: str, in_scope: int | None,
                   counts: dict[str, int]) -> None:
        """Record how a run ended, with the number of in-scope users it saw."""
        self._write("UPDATE runs SET finished = ?, status = ?, in_scope = ?, counts = ? "
                    "WHERE id = ?", (_now(), status, in_scope, json.dumps(counts), run_id))

    def last_run(self, real_only: bool = True) -> dict[str, Any] | None:
        """The most recent finished run (not dry-runs, unless asked)."""
        where = "WHERE finished IS NOT NULL" + (" AND dry_run = 0" if real_only else "")
        rows = self._read(f"SELECT id, started, finished, status, in_scope, counts, dry_run "
                          f"FROM runs {where} ORDER BY finished DESC, rowid DESC LIMIT 1")
        if not rows:
            return None
        rid, started, finished, status, in_scope, counts, dry = rows[0]
        return {"id": rid, "started": started, "finished": finished, "status": status,
                "in_scope": in_scope, "counts": json.loads(counts or "{}"),
                "dry_run": bool(dry)}

    def last_in_scope(self) -> int | None:
        """Users in scope as seen by the last real run that was allowed to proceed (a run a
        guard stopped does not count: otherwise a second attempt would pass the guard)."""
        rows = self._read("SELECT in_scope FROM runs WHERE dry_run = 0 AND in_scope IS NOT NULL"
                          " AND status IN ('success', 'failed', 'held', 'incremental') "
                          "ORDER BY finished DESC, rowid DESC LIMIT 1")
        return int(rows[0][0]) if rows else None

    # --- provisioning log --------------------------------------------------------------------

    def log(self, records: Sequence[LogRecord]) -> None:
        """Append records to the log table and to ``logs/<date>.jsonl`` (committed at once)."""
        if not records:
            return
        rows = [r.data() for r in records]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO log (time, run_id, identity, source_id, target_id, action, status,"
                " code, reason, properties) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(d["time"], d["run_id"], d["identity"], d["source_id"], d["target_id"],
                  d["action"], d["status"], d["code"], d["reason"],
                  json.dumps(d["properties"], ensure_ascii=False, default=str))
                 for d in rows])
            self._db.execute("COMMIT")
            day = rows[0]["time"][:10]
            with private_append(self.directory / "logs" / f"{day}.jsonl") as out:
                for d in rows:
                    out.write(json.dumps(d, ensure_ascii=False, default=str) + "\n")

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

    # --- escrow ----------------------------------------------------------------------------

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
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM escrow WHERE kind = ? AND source_id = ?",
                                 [(kind, sid) for sid in source_ids])
            self._db.execute("COMMIT")

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

    # --- show / reset --------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """What ``state show`` prints."""
        counts = dict(self._read("SELECT kind, count(*) FROM links GROUP BY kind"))
        return {
            "database": str(self.path),
            "schema_version": SCHEMA_VERSION,
            "links": {"user": counts.get("user", 0), "group": counts.get("group", 0)},
            "delta_links": [str(r[0]) for r in self._read("SELECT kind FROM delta_links")],
            "last_run": self.last_run(real_only=False),
            "log_records": self._read("SELECT count(*) FROM log")[0][0],
            "escrow": [{"source_id": sid, **entry} for sid, entry in
                       sorted(self.escrowed("user").items())],
            "quarantine": json.loads(self.get_meta("quarantine") or "null"),
            "snapshot": {
                "users": self._read("SELECT count(*) FROM source_users")[0][0],
                "target_known": self._read(
                    "SELECT count(*) FROM links WHERE kind = 'user' AND applied IS NOT NULL"
                )[0][0],
                "trusted": self.get_meta("snapshot") is not None,
            },
        }

    def reset(self, forget_links: bool = False) -> None:
        """Entra's "restart": clear the watermark (delta links), escrow and settings digests;
        ``forget_links`` also forgets the links (a full reset)."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM delta_links")
            self._db.execute("DELETE FROM meta")
            self._db.execute("DELETE FROM escrow")
            self._db.execute("DELETE FROM source_users")
            self._db.execute("DELETE FROM source_groups")
            self._db.execute("DELETE FROM source_members")
            if forget_links:
                self._db.execute("DELETE FROM links")
            self._db.execute("COMMIT")


class RunLock:
    """An exclusive lock on a state directory: one run at a time. The operating system
    releases it when the holder dies, so a stale lock is taken over by the next run."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "run.lock"
        self._file: Any = None

    def __enter__(self) -> RunLock:
        try:
            private_directory(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"state_dir: cannot create the run lock in {self.path.parent}: "
                              f"{exc.strerror}") from exc
        handle = os.fdopen(fd, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            try:
                info = json.loads(holder)
                who = f"pid {info['pid']}, started {info['started']}"
            except (ValueError, KeyError, TypeError):
                who = "an unknown process"
            raise LockError(f"another run holds the lock on {self.path.parent} ({who})") \
                from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "started": _now()}))
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def parse_since(text: str) -> str:
    """``--since``: a duration (``30m``, ``2h``, ``7d``) or a date / ISO date-time."""
    text = text.strip()
    units = {"m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        moment = time.time() - int(text[:-1]) * units[text[-1]]
        return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since {text!r}: expected 30m, 2h, 7d or a date like "
                          "2026-11-01") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="seconds")

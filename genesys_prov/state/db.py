"""State: one SQLite database per configuration (standard library ``sqlite3``, WAL mode).

It holds the links (source object id ↔ target id), the run history, the provisioning log
(also written as JSON lines under ``logs/``), Graph delta links and settings digests.
Every write is committed at once, or with its batch (:meth:`State.transaction`: a run
records its outcomes a few hundred at a time), so a run killed at any moment loses at most
the batch it had not written yet — which the next run finds again by matching.
A file lock makes sure only one run at a time uses a database.

:class:`State` opens and migrates the database; each table's code is a part it inherits
(:mod:`~genesys_prov.state.meta`, :mod:`~genesys_prov.state.links`,
:mod:`~genesys_prov.state.snapshot_store`, :mod:`~genesys_prov.state.delta_links`,
:mod:`~genesys_prov.state.runs`, :mod:`~genesys_prov.state.log`,
:mod:`~genesys_prov.state.escrow`).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from genesys_prov.errors import ConfigError, LockError
from genesys_prov.state.connection import iso_utc
from genesys_prov.state.connection import utc_now as _now
from genesys_prov.state.delta_links import DeltaLinkStore
from genesys_prov.state.escrow import EscrowStore
from genesys_prov.state.files import private_append as private_append
from genesys_prov.state.files import private_directory as private_directory
from genesys_prov.state.files import tighten as _tighten
from genesys_prov.state.links import LinkStore
from genesys_prov.state.log import LogRecord as LogRecord
from genesys_prov.state.log import ProvisioningLog
from genesys_prov.state.meta import MetaStore
from genesys_prov.state.runs import RunHistory
from genesys_prov.state.snapshot_store import SnapshotStore

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


class State(MetaStore, LinkStore, SnapshotStore, DeltaLinkStore, RunHistory,
            ProvisioningLog, EscrowStore):
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
        self._lock = threading.RLock()
        self._depth = 0
        self._after_commit = []
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
            "escrow": [{"source_id": sid, **entry, "first_failed": iso_utc(
                entry["first_failed"]), "next_retry": iso_utc(entry["next_retry"])}
                       for sid, entry in sorted(self.escrowed("user").items())],
            "quarantine": self._quarantine(),
            "snapshot": {
                "users": self._read("SELECT count(*) FROM source_users")[0][0],
                "target_known": self._read(
                    "SELECT count(*) FROM links WHERE kind = 'user' AND applied IS NOT NULL"
                )[0][0],
                "trusted": self.get_meta("snapshot") is not None,
            },
        }

    def _quarantine(self) -> dict[str, Any] | None:
        """The stored quarantine, its times as ISO 8601 (None: not quarantined)."""
        info = json.loads(self.get_meta("quarantine") or "null")
        if info and isinstance(info.get("last_probe"), int | float):
            info["last_probe"] = iso_utc(info["last_probe"])
        return info if info else None

    def reset(self, forget_links: bool = False) -> None:
        """Entra's "restart": clear the watermark (delta links), escrow and settings digests;
        ``forget_links`` also forgets the links (a full reset)."""
        with self.transaction():
            self._db.execute("DELETE FROM delta_links")
            self._db.execute("DELETE FROM meta")
            self._db.execute("DELETE FROM escrow")
            self._db.execute("DELETE FROM source_users")
            self._db.execute("DELETE FROM source_groups")
            self._db.execute("DELETE FROM source_members")
            if forget_links:
                self._db.execute("DELETE FROM links")


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

"""Storage of the snapshot incremental runs plan from: directory users and groups as last
read, their direct memberships, and, on each link, what the target held after the run.

What the snapshot means and when it is trusted is :mod:`genesys_prov.state.snapshot`."""

from __future__ import annotations

from collections.abc import Sequence

from genesys_prov.state.connection import Connection, chunks


class SnapshotStore(Connection):
    """The snapshot tables of :class:`~genesys_prov.state.db.State` (``source_users``,
    ``source_groups``, ``source_members`` and the ``applied`` column of the links)."""

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
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            for i, d, m, r in self._read(
                    f"SELECT id, data, member_scope, reason FROM source_users WHERE id IN "
                    f"({marks})", chunk):
                out[str(i)] = (str(d), bool(m), r)
        return out

    def reports_of(self, manager_ids: Sequence[str]) -> list[str]:
        """Stored directory users whose manager is one of these."""
        out: list[str] = []
        for chunk in chunks(manager_ids):
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
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            for k, v in self._read(f"SELECT {key}, {value} FROM source_members "
                                   f"WHERE {key} IN ({marks})", chunk):
                out[str(k)].add(str(v))
        return out

    def applied(self, source_ids: Sequence[str], kind: str = "user") -> dict[str, str]:
        """What the target holds for linked objects as of their last run (JSON), when
        known."""
        out: dict[str, str] = {}
        for chunk in chunks(source_ids):
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

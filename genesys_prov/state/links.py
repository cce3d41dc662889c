"""Links: which target object each source object is (source object id ↔ target id)."""

from __future__ import annotations

from collections.abc import Sequence

from genesys_prov.state.connection import Connection, utc_now


class LinkStore(Connection):
    """The links of :class:`~genesys_prov.state.db.State`, per kind (user / group)."""

    def links(self, kind: str = "user") -> dict[str, str]:
        """source id → target id for every linked object of ``kind``."""
        return {str(s): str(t) for s, t in self._read(
            "SELECT source_id, target_id FROM links WHERE kind = ?", (kind,))}

    def link(self, kind: str, source_id: str, target_id: str) -> None:
        """Remember that ``source_id`` is ``target_id`` in the target (committed at once,
        or with the transaction it is part of).
        What the target holds for it becomes unknown until the run records it
        (:meth:`set_applied`): a change was just written."""
        self._write("INSERT INTO links (kind, source_id, target_id, updated) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(kind, source_id) DO UPDATE SET target_id = excluded.target_id, "
                    "updated = excluded.updated, applied = NULL",
                    (kind, source_id, target_id, utc_now()))

    def link_many(self, kind: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Link many objects in one transaction (a later pair for the same source object
        wins)."""
        now = utc_now()
        self._insert_rows(
            "INSERT INTO links (kind, source_id, target_id, updated)",
            [(kind, s, t, now) for s, t in pairs],
            "ON CONFLICT(kind, source_id) DO UPDATE SET target_id = excluded.target_id, "
            "updated = excluded.updated, applied = NULL")

    def unlink(self, kind: str, source_id: str) -> None:
        """Forget a link (the target object was deleted)."""
        self._write("DELETE FROM links WHERE kind = ? AND source_id = ?", (kind, source_id))

    def unlink_many(self, kind: str, source_ids: Sequence[str]) -> None:
        """Forget many links in one transaction."""
        self._delete_ids("DELETE FROM links WHERE kind = ? AND source_id IN", kind, source_ids)

"""Graph delta links: where the next incremental read of users and groups starts."""

from __future__ import annotations

from genesys_prov.state.connection import Connection, utc_now


class DeltaLinkStore(Connection):
    """The stored Graph delta links of :class:`~genesys_prov.state.db.State`, per kind."""

    def delta_link(self, kind: str) -> str | None:
        """The stored Graph delta link for ``kind`` (users / groups)."""
        rows = self._read("SELECT link FROM delta_links WHERE kind = ?", (kind,))
        return str(rows[0][0]) if rows else None

    def set_delta_link(self, kind: str, link: str) -> None:
        """Store a Graph delta link."""
        self._write("INSERT INTO delta_links (kind, link, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT(kind) DO UPDATE SET link = excluded.link, "
                    "updated = excluded.updated", (kind, link, utc_now()))

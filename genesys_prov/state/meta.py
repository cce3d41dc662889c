"""Stored settings (the ``meta`` table): digests of the last run's mappings and settings,
the quarantine, whether the snapshot is trusted."""

from __future__ import annotations

from genesys_prov.state.connection import Connection


class MetaStore(Connection):
    """Key/value settings of :class:`~genesys_prov.state.db.State`."""

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

"""The users' look-up indexes (userName, emails, externalId, employeeNumber, division,
manager, externalIds) and the active / inactive listings in creation order."""

from __future__ import annotations

from typing import Any

from genesys_prov.sandbox.genesys.state import GenesysState
from genesys_prov.sandbox.scim import (
    ENTERPRISE_USER,
    GENESYS_USER,
)


class UserIndex(GenesysState):
    """Finding users by indexed value, and keeping the indexes."""

    def _lookup(self, index: str, key: str) -> list[str]:
        """The ids an index holds under ``key`` (a new list)."""
        bucket = self._index[index].get(key)
        if bucket is None:
            return []
        if isinstance(bucket, str):
            return [bucket]
        return list(bucket)

    def _index_entries(self, user: dict[str, Any]) -> set[tuple[str, str]]:
        """The (index, key) pairs a user is findable under."""
        entries = {("userName", user["userName"].lower())}
        for email in user.get("emails", []):
            if email.get("value"):
                entries.add(("email", email["value"].lower()))
        if user.get("externalId"):
            entries.add(("externalId", user["externalId"]))
        enterprise = user.get(ENTERPRISE_USER, {})
        if enterprise.get("employeeNumber"):
            entries.add(("employeeNumber", enterprise["employeeNumber"]))
        if enterprise.get("division"):
            entries.add(("division", enterprise["division"].lower()))
        if enterprise.get("manager"):
            entries.add(("manager", enterprise["manager"]["value"]))
        for entry in user.get(GENESYS_USER, {}).get("externalIds", []):
            entries.add(("externalIds", f"{entry['authority']}\n{entry['value']}"))
        return entries

    def _reindex(self, uid: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Move a user's index entries and listing membership from ``old`` to ``new``."""
        before = self._index_entries(old) if old else set()
        after = self._index_entries(new) if new else set()
        for name, key in before - after:
            index = self._index[name]
            bucket = index.get(key)
            if bucket == uid:
                del index[key]
            elif isinstance(bucket, set):
                bucket.discard(uid)
                if len(bucket) == 1:
                    index[key] = next(iter(bucket))
        for name, key in after - before:
            index = self._index[name]
            bucket = index.get(key)
            if bucket is None:
                index[key] = uid
            elif isinstance(bucket, set):
                bucket.add(uid)
            elif bucket != uid:
                index[key] = {bucket, uid}
        seq = self._seq[uid]
        if new is None:
            self._active.discard(seq)
            self._inactive.discard(seq)
        elif new.get("active", True):
            self._inactive.discard(seq)
            self._active.add(seq)
        else:
            self._active.discard(seq)
            self._inactive.add(seq)

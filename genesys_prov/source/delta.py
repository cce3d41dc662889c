"""What Graph's delta rounds changed since the last run (users, groups and their members),
with the links to follow next time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genesys_prov.source.scope import Assignments


@dataclass
class Delta:
    """What the stored delta links returned: the changes and the new links."""

    links: dict[str, str] = field(default_factory=dict)
    changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    assigned: Assignments | None = None  # the app's assignments, re-read with the delta
    retry: set[str] = field(default_factory=set)  # escrowed users due for another try

    @property
    def count(self) -> int:
        """Number of changed objects."""
        return sum(len(c) for c in self.changes.values())

    def describe(self) -> str:
        """What this incremental run is about, for the output."""
        retried = f", {len(self.retry)} escrowed change(s) retried" if self.retry else ""
        return f"{self.count} directory change(s){retried}"

    def changed_user_ids(self) -> set[str]:
        """Users whose desired state may differ: changed, removed, added to / removed
        from a group, or waiting in escrow for another try."""
        ids = {str(c["id"]) for c in self.changes.get("users", []) if "id" in c} | self.retry
        for group in self.changes.get("groups", []):
            for member in group.get("members@delta") or []:
                if isinstance(member, dict) and "id" in member:
                    ids.add(str(member["id"]))
        return ids

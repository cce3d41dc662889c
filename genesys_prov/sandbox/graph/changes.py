"""The delta change log: one :class:`Change` per mutation of a user or group, and the
:class:`NetChange` a delta window folds an object's changes into."""

from __future__ import annotations

from dataclasses import dataclass, field

from genesys_prov.sandbox.graph.properties import USER_TYPE

#: Change-log entries kept per kind (users, groups) before the oldest are dropped.
DELTA_LOG_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Change:
    """One change-log entry: what happened to which object at which sequence number.

    ``op``: ``create``, ``update`` (``props`` changed; ``old_manager`` when ``manager`` did),
    ``soft`` (soft delete), ``restore``, ``hard`` (permanent delete), ``member+``/``member-``
    (``member_id`` of ``member_type`` joined / left the group).
    """

    seq: int
    object_id: str
    op: str
    props: tuple[str, ...] = ()
    old_manager: str | None = None
    member_id: str = ""
    member_type: str = USER_TYPE


@dataclass(slots=True)
class NetChange:
    """The net effect of the change-log entries of one object within a delta window."""

    object_id: str
    state: str = ""
    full: bool = False
    props: set[str] = field(default_factory=set)
    manager_touched: bool = False
    old_manager: str | None = None
    members: dict[str, tuple[str, str, bool]] = field(default_factory=dict)

    def apply(self, change: Change) -> None:
        """Fold one entry in (entries arrive in sequence order)."""
        if change.op in ("create", "restore"):
            self.state, self.full = "present", True
        elif change.op == "soft":
            self.state = "soft"
        elif change.op == "hard":
            self.state = "hard"
        elif change.op == "update":
            self.props.update(change.props)
            if "manager" in change.props and not self.manager_touched:
                self.manager_touched = True
                self.old_manager = change.old_manager
        else:
            self.members[change.member_id.lower()] = (
                change.member_id, change.member_type, change.op == "member+"
            )

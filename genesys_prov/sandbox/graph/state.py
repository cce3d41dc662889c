"""The emulated tenant's state: its directory (users, groups, app role assignments, the
recycle bin), tokens, throttling, the delta change log, and the helpers tests use to
change them (each change is recorded for delta query)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from genesys_prov.sandbox._http import RequestLog
from genesys_prov.sandbox.graph.changes import DELTA_LOG_LIMIT, Change
from genesys_prov.sandbox.graph.encoding import now_iso
from genesys_prov.sandbox.graph.properties import GROUP_TYPE, USER_TYPE

DEFAULT_PERMISSIONS = ("User.Read.All", "GroupMember.Read.All", "Application.Read.All",
                       "Synchronization.Read.All")


class GraphState(RequestLog):
    """The directory, tokens, throttling and change log the Graph emulator's apps share,
    and the helpers that change them."""

    def __init__(
        self,
        directory: dict[str, Any],
        tenant_id: str,
        client_id: str,
        client_secret: str,
        service_principal: dict[str, Any],
    ) -> None:
        """Load ``directory`` (the demo-directory.json shape)."""
        super().__init__()
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.service_principal = service_principal
        self.users: list[dict[str, Any]] = list(directory.get("users", []))
        self.groups: list[dict[str, Any]] = list(directory.get("groups", []))
        self.app_role_assignments: list[dict[str, Any]] = list(
            directory.get("app_role_assignments", [])
        )
        #: Application permissions (roles) granted to the client; tokens carry them.
        self.granted_permissions: set[str] = set(DEFAULT_PERMISSIONS)
        #: When non-empty, certificate credentials must use one of these SHA-1 thumbprints
        #: (upper-case hex).
        self.certificate_thumbprints: set[str] = set()
        self.token_lifetime = 3599
        self.clock: Callable[[], float] = time.monotonic
        self.authority_host = ""
        self.graph_url = ""
        self._lock = threading.RLock()
        self._tokens: dict[str, tuple[float, frozenset[str]]] = {}
        self._throttle_remaining = 0
        self._throttle_retry_after = 0
        self._throttle_status = 429
        #: Soft-deleted users (lower-case id → user), restorable with :meth:`restore_user`.
        self.deleted_users: dict[str, dict[str, Any]] = {}
        #: Change-log entries kept per kind; older entries are dropped (their tokens → 410).
        self.delta_log_limit = DELTA_LOG_LIMIT
        self._seq = 0
        self._changes: dict[str, list[Change]] = {"user": [], "group": []}
        self._floor: dict[str, int] = {"user": 0, "group": 0}
        self._delta_generation = secrets.token_hex(4)
        self._replay_pending = False
        self._ordinals: dict[str, dict[str, int]] = {"user": {}, "group": {}}
        self._next_ordinal = 0
        self._reindex()

    def _reindex(self) -> None:
        """Rebuild the id / userPrincipalName look-ups."""
        self._user_by_id = {u["id"].lower(): u for u in self.users}
        self._user_by_upn = {
            u["userPrincipalName"].lower(): u for u in self.users if u.get("userPrincipalName")
        }
        self._group_by_id = {g["id"].lower(): g for g in self.groups}
        for kind, items in (("user", self.users), ("group", self.groups)):
            ordinals = self._ordinals[kind]
            for item in items:
                if item["id"].lower() not in ordinals:
                    ordinals[item["id"].lower()] = self._next_ordinal
                    self._next_ordinal += 1

    def throttle_next(self, n: int, retry_after: int = 0, status: int = 429) -> None:
        """Answer the next ``n`` /v1.0 requests with ``status`` (429, 503 or 504)."""
        if status not in (429, 503, 504):
            raise ValueError("status must be 429, 503 or 504")
        with self._lock:
            self._throttle_remaining = n
            self._throttle_retry_after = retry_after
            self._throttle_status = status

    def set_user(self, user_id: str, **props: Any) -> None:
        """Change properties of a user (``manager=<id or None>`` sets the manager).

        Properties whose value really changes are recorded for delta query."""
        with self._lock:
            user = self._user_by_id.get(user_id.lower())
            if user is None:
                raise KeyError(user_id)
            changed = tuple(name for name, value in props.items()
                            if name != "id" and user.get(name) != value)
            old_id, old_manager = user["id"], user.get("manager")
            user.update(props)
            if "id" in props or "userPrincipalName" in props:
                self._rename("user", old_id, user["id"])
                self._reindex()
            if changed:
                self._record("user", user["id"], "update", props=changed,
                             old_manager=old_manager if "manager" in changed else None)

    def add_user(self, user: dict[str, Any]) -> None:
        """Add a user to the directory (Graph JSON; ``manager`` optional)."""
        with self._lock:
            self.users.append(user)
            self._reindex()
            self._record("user", user["id"], "create")

    def remove_user(self, user_id: str) -> None:
        """Hard-delete a user (also a soft-deleted one): gone from listings, groups,
        assignments and as a manager; delta reports ``@removed: deleted``."""
        with self._lock:
            lowered = user_id.lower()
            gone = self._user_by_id.get(lowered) or self.deleted_users.pop(lowered, None)
            self.users = [u for u in self.users if u["id"].lower() != lowered]
            for user in self.users:
                if (user.get("manager") or "").lower() == lowered:
                    self._record("user", user["id"], "update", props=("manager",),
                                 old_manager=user["manager"])
                    user["manager"] = None
            for group in self.groups:
                members = group.get("members", [])
                kept = [m for m in members if m.lower() != lowered]
                if len(kept) != len(members):
                    group["members"] = kept
                    if gone is not None:
                        self._record("group", group["id"], "member-",
                                     member_id=gone["id"], member_type=USER_TYPE)
            self.app_role_assignments = [
                a for a in self.app_role_assignments if a["principalId"].lower() != lowered
            ]
            self._reindex()
            if gone is not None:
                self._ordinals["user"].pop(lowered, None)
                self._record("user", gone["id"], "hard")

    def soft_delete_user(self, user_id: str) -> None:
        """Soft-delete a user: gone from listings and member lists (group memberships are
        kept for :meth:`restore_user`); delta reports ``@removed: changed``."""
        with self._lock:
            lowered = user_id.lower()
            user = self._user_by_id.get(lowered) or self._user_by_upn.get(lowered)
            if user is None:
                raise KeyError(user_id)
            lowered = user["id"].lower()
            self.users = [u for u in self.users if u is not user]
            user["deletedDateTime"] = now_iso()
            self.deleted_users[lowered] = user
            self._reindex()
            self._record("user", user["id"], "soft")
            for group in self._groups_with(lowered):
                self._record("group", group["id"], "member-", member_id=user["id"])
            # the reports lose their (expanded) manager while it is in the recycle bin
            for other in self.users:
                if (other.get("manager") or "").lower() == lowered:
                    self._record("user", other["id"], "update", props=("manager",),
                                 old_manager=other["manager"])

    def restore_user(self, user_id: str) -> None:
        """Restore a soft-deleted user (with its group memberships); delta reports it in
        full again."""
        with self._lock:
            user = self.deleted_users.pop(user_id.lower(), None)
            if user is None:
                raise KeyError(user_id)
            user["deletedDateTime"] = None
            # A restored user pages after every other one (it gets a new ordinal).
            self._ordinals["user"].pop(user["id"].lower(), None)
            self.users.append(user)
            self._reindex()
            self._record("user", user["id"], "restore")
            for group in self._groups_with(user["id"].lower()):
                self._record("group", group["id"], "member+", member_id=user["id"])
            for other in self.users:
                if (other.get("manager") or "").lower() == user["id"].lower():
                    self._record("user", other["id"], "update", props=("manager",))

    def set_group(self, group_id: str, **props: Any) -> None:
        """Change properties of a group (``members=[ids]`` replaces the direct members)."""
        with self._lock:
            group = self._group_by_id.get(group_id.lower())
            if group is None:
                raise KeyError(group_id)
            if "members" in props:
                old = {m.lower(): m for m in group.get("members", [])}
                new = {m.lower(): m for m in props["members"]}
                for key, member_id in old.items():
                    if key not in new:
                        self._record("group", group["id"], "member-", member_id=member_id,
                                     member_type=self._member_type(member_id) or USER_TYPE)
                for key, member_id in new.items():
                    if key not in old:
                        self._record("group", group["id"], "member+", member_id=member_id,
                                     member_type=self._member_type(member_id) or USER_TYPE)
            changed = tuple(name for name, value in props.items()
                            if name not in ("id", "members") and group.get(name) != value)
            old_id = group["id"]
            group.update(props)
            if "id" in props:
                self._rename("group", old_id, group["id"])
                self._reindex()
            if changed:
                self._record("group", group["id"], "update", props=changed)

    def add_group_member(self, group_id: str, member_id: str) -> None:
        """Add a user or group as a direct member (no-op when it already is one)."""
        with self._lock:
            group = self._group_by_id.get(group_id.lower())
            member = self._user_by_id.get(member_id.lower()) or self._group_by_id.get(
                member_id.lower()
            )
            if group is None or member is None:
                raise KeyError(group_id if group is None else member_id)
            members = group.setdefault("members", [])
            if any(m.lower() == member["id"].lower() for m in members):
                return
            members.append(member["id"])
            self._record("group", group["id"], "member+", member_id=member["id"],
                         member_type=self._member_type(member["id"]) or USER_TYPE)

    def remove_group_member(self, group_id: str, member_id: str) -> None:
        """Remove a direct member (no-op when it is not one)."""
        with self._lock:
            group = self._group_by_id.get(group_id.lower())
            if group is None:
                raise KeyError(group_id)
            members = group.get("members", [])
            found = next((m for m in members if m.lower() == member_id.lower()), None)
            if found is None:
                return
            group["members"] = [m for m in members if m is not found]
            self._record("group", group["id"], "member-", member_id=found,
                         member_type=self._member_type(found) or USER_TYPE)

    def expire_delta_tokens(self) -> None:
        """Invalidate every issued delta token and delta page link (410 Gone on use)."""
        with self._lock:
            self._delta_generation = secrets.token_hex(4)

    def replay_next_delta(self) -> None:
        """Make the next request that follows a deltaLink repeat the previous incremental
        round's changes once more (as Graph may deliver a change twice)."""
        with self._lock:
            self._replay_pending = True

    def _record(self, kind: str, object_id: str, op: str, *, props: tuple[str, ...] = (),
                old_manager: str | None = None, member_id: str = "",
                member_type: str = USER_TYPE) -> None:
        """Append a change-log entry (dropping the oldest quarter when over the limit)."""
        self._seq += 1
        log = self._changes[kind]
        log.append(Change(self._seq, object_id, op, props, old_manager, member_id,
                           member_type))
        limit = max(1, self.delta_log_limit)
        if len(log) > limit:
            drop = len(log) - (limit * 3) // 4
            self._floor[kind] = log[drop - 1].seq
            del log[:drop]

    def _rename(self, kind: str, old_id: str, new_id: str) -> None:
        """Carry an object's paging ordinal over to its new id."""
        ordinals = self._ordinals[kind]
        if old_id.lower() != new_id.lower() and old_id.lower() in ordinals:
            ordinals[new_id.lower()] = ordinals.pop(old_id.lower())

    def _groups_with(self, lowered_member_id: str) -> list[dict[str, Any]]:
        """The groups that list this member id directly."""
        return [g for g in self.groups
                if any(m.lower() == lowered_member_id for m in g.get("members", []))]

    def _member_type(self, member_id: str) -> str | None:
        """The ``@odata.type`` of an existing or soft-deleted member, else None."""
        lowered = member_id.lower()
        if lowered in self._user_by_id or lowered in self.deleted_users:
            return USER_TYPE
        if lowered in self._group_by_id:
            return GROUP_TYPE
        return None

    def expire_tokens(self) -> None:
        """Make every issued access token fail validation (401 on the next call)."""
        with self._lock:
            self._tokens.clear()

    def _exists(self, object_id: str) -> bool:
        """Whether a user or group with this id exists."""
        lowered = object_id.lower()
        return lowered in self._user_by_id or lowered in self._group_by_id

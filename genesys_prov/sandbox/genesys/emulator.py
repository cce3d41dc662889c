"""The Genesys emulator: its SCIM app, and the helpers tests use to seed the org and
turn its knobs."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from genesys_prov.sandbox._http import RecordedRequest
from genesys_prov.sandbox.genesys.app import ScimApp
from genesys_prov.sandbox.genesys.meta import timestamp
from genesys_prov.sandbox.genesys.routes import (
    TOKEN_PATH,
)
from genesys_prov.sandbox.scim import (
    CORE_GROUP,
    ScimFault,
)


class GenesysEmulator(ScimApp):
    """State, behaviour and request log of the emulated Genesys Cloud org.

    ``users`` holds every user that exists (active or not) by id, exactly as the API returns
    it; a deleted user moves to ``deleted_users`` and is invisible to the API, but its userName
    and emails stay in ``deleted_names`` (not reusable). ``groups`` holds
    the groups by id. Tests may read these freely and seed with :meth:`add_user` /
    :meth:`add_group`; all other changes go through HTTP.
    """

    def writes(self) -> list[RecordedRequest]:
        """The recorded non-GET requests, excluding the OAuth token POST."""
        return [
            r
            for r in self.requests
            if r.method not in ("GET", "HEAD", "OPTIONS") and r.path != TOKEN_PATH
        ]

    def throttle_next(self, n: int, retry_after: int = 0) -> None:
        """Answer the next ``n`` SCIM requests with 429 and ``Retry-After: retry_after``."""
        with self._limit_lock:
            self._throttle_remaining = n
            self._throttle_retry_after = retry_after

    def expire_tokens(self) -> None:
        """Invalidate every token issued by /oauth/token (the static token stays valid)."""
        with self._lock:
            self._tokens.clear()

    def add_user(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Seed a user directly (validated like POST; keeps ``id`` if given). Returns a copy.

        Raises ``ValueError`` with the SCIM detail when the resource would be refused.
        """
        with self._lock:
            try:
                wanted = resource.get("id")
                body = self._ingest_user(resource)
                uid = wanted if isinstance(wanted, str) and wanted else None
                if uid is not None and (uid in self.users or uid in self.deleted_users):
                    raise ValueError(f"user id {uid} already exists")
                stored = self._store_new_user(body, uid)
            except ScimFault as fault:
                raise ValueError(fault.detail) from fault
            return copy.deepcopy(stored)

    def add_group(
        self,
        display_name: str,
        members: Iterable[str] = (),
        group_id: str | None = None,
        external_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a group as an admin would in the Genesys UI; ``members`` are user ids or
        userNames. Returns a copy of the stored group."""
        with self._lock:
            if display_name.lower() in self._group_names:
                raise ValueError(f"group {display_name!r} already exists")
            gid = group_id or self._new_id()
            member_ids = []
            for member in members:
                if member in self.users:
                    member_ids.append(member)
                    continue
                found = self._lookup("userName", member.lower())
                if not found:
                    raise ValueError(f"unknown group member {member!r}")
                member_ids.extend(found)
            group: dict[str, Any] = {
                "schemas": [CORE_GROUP], "id": gid, "displayName": display_name,
            }
            if external_id:
                group["externalId"] = external_id
            group["members"] = [{"value": m} for m in member_ids]
            group["meta"] = {"resourceType": "Group", "created": timestamp()}
            self._group_seq[gid] = len(self._group_order)
            try:
                self._commit_group(gid, group, None)
            except ScimFault as fault:
                del self._group_seq[gid]
                raise ValueError(fault.detail) from fault
            self._group_order.append(gid)
            return copy.deepcopy(self.groups[gid])

    def load(self, seed_state: dict[str, Any]) -> None:
        """Seed users and groups from a directory's ``"genesys"`` part."""
        for user in seed_state.get("users", []):
            self.add_user(user)
        for group in seed_state.get("groups", []):
            self.add_group(
                group["displayName"],
                group.get("members", []),
                group_id=group.get("id"),
                external_id=group.get("externalId"),
            )

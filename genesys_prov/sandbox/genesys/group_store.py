"""Storing groups: validating a group, numbering its versions, and keeping its members'
read-only ``groups`` attributes in step."""

from __future__ import annotations

from typing import Any

from genesys_prov.sandbox.genesys.meta import timestamp, weak_etag
from genesys_prov.sandbox.genesys.resource_types import (
    USER_KEY_ORDER,
)
from genesys_prov.sandbox.genesys.state import GenesysState
from genesys_prov.sandbox.scim import (
    CORE_GROUP,
    ScimFault,
)
from genesys_prov.sandbox.scim.errors import invalid_value


class GroupStore(GenesysState):
    """Committing groups and their memberships."""

    def _commit_group(
        self, gid: str, candidate: dict[str, Any], previous: dict[str, Any] | None
    ) -> None:
        """Validate a group, store it, and update its members' ``groups`` attributes."""
        name = candidate.get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise invalid_value("displayName is required")
        holder = self._group_names.get(name.lower())
        if holder is not None and holder != gid:
            raise ScimFault(409, f"A group named {name!r} already exists", "uniqueness")
        members: list[dict[str, Any]] = []
        seen: set[str] = set()
        for member in candidate.get("members", []):
            member_id = member.get("value")
            if not isinstance(member_id, str) or member_id not in self.users:
                raise invalid_value(f"Group member {member_id!r} is not an existing user")
            if member_id in seen:
                continue
            seen.add(member_id)
            members.append({
                "value": member_id,
                "$ref": self._location("Users", member_id),
                "display": self.users[member_id]["displayName"],
            })
        if previous is not None:
            del self._group_names[previous["displayName"].lower()]
        self._group_names[name.lower()] = gid
        group: dict[str, Any] = {"schemas": [CORE_GROUP], "id": gid, "displayName": name}
        if candidate.get("externalId"):
            group["externalId"] = candidate["externalId"]
        group["members"] = members
        version = self._versions.get(gid, 0) + 1
        self._versions[gid] = version
        group["meta"] = {
            "resourceType": "Group",
            "created": candidate["meta"]["created"],
            "lastModified": timestamp(),
            "location": self._location("Groups", gid),
            "version": weak_etag(version),
        }
        old_ids = {m["value"] for m in previous.get("members", [])} if previous else set()
        self.groups[gid] = group
        renamed = previous is not None and previous["displayName"] != name
        for member_id in seen - old_ids:
            self._member_of.setdefault(member_id, set()).add(gid)
        for member_id in old_ids - seen:
            self._member_of.get(member_id, set()).discard(gid)
        for member_id in (seen | old_ids) if renamed else (seen ^ old_ids):
            self._refresh_user_groups(member_id)

    def _replace_group_members(
        self, gid: str, group: dict[str, Any], members: list[dict[str, Any]]
    ) -> None:
        """Store ``group`` with ``members`` as its member list."""
        candidate = dict(group)
        candidate["members"] = members
        self._commit_group(gid, candidate, group)

    def _refresh_user_groups(self, uid: str) -> None:
        """Rewrite a user's read-only ``groups`` attribute from its memberships."""
        user = self.users.get(uid)
        if user is None:
            return
        group_ids = sorted(self._member_of.get(uid, ()), key=lambda g: self._group_seq.get(g, -1))
        refs = [
            {"value": gid, "$ref": self._location("Groups", gid),
             "display": self.groups[gid]["displayName"], "type": "direct"}
            for gid in group_ids
        ]
        updated = {key: value for key, value in user.items() if key != "groups"}
        if refs:
            updated["groups"] = refs
        self.users[uid] = {key: updated[key] for key in USER_KEY_ORDER if key in updated}

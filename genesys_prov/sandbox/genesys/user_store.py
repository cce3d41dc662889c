"""Storing users: creating, replacing, patching and deleting a stored user (with its
indexes, versions, group memberships and the users it manages)."""

from __future__ import annotations

import copy
from typing import Any

from genesys_prov.sandbox.genesys.group_store import GroupStore
from genesys_prov.sandbox.genesys.patch import USER_PATCHER, patch_operations
from genesys_prov.sandbox.genesys.user_rules import UserRules
from genesys_prov.sandbox.scim import (
    ENTERPRISE_USER,
)


class UserStore(UserRules, GroupStore):
    """Changing the stored users."""

    def _store_new_user(self, candidate: dict[str, Any], uid: str | None) -> dict[str, Any]:
        """Finalize, number, store and index a new user."""
        uid = uid or self._new_id()
        stored = self._finalize_user(uid, candidate, None)
        self._check_deleted_names(stored)
        self._seq[uid] = len(self._seq_ids)
        self._seq_ids.append(uid)
        self._versions[uid] = 1
        self.users[uid] = stored
        self._reindex(uid, None, stored)
        return stored

    def _update_user(self, uid: str, candidate: dict[str, Any]) -> dict[str, Any]:
        """Finalize and store a new state of an existing user."""
        previous = self.users[uid]
        stored = self._finalize_user(uid, candidate, previous)
        self._versions[uid] += 1
        self.users[uid] = stored
        self._reindex(uid, previous, stored)
        if stored["displayName"] != previous["displayName"]:
            for ref in stored.get("groups", []):
                group = self.groups[ref["value"]]
                for member in group.get("members", []):
                    if member["value"] == uid:
                        member["display"] = stored["displayName"]
        return stored

    def _patch_user(self, uid: str, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a PatchOp body to a copy of the user, then store it."""
        operations = patch_operations(body)
        work = copy.deepcopy(self.users[uid])
        for operation in operations:
            USER_PATCHER.apply(work, operation)
        return self._update_user(uid, work)

    def _delete_user(self, uid: str) -> None:
        """Delete a user: out of groups, cleared as a manager, hidden."""
        user = self.users[uid]
        self._reindex(uid, user, None)
        for ref in user.get("groups", []):
            group = self.groups[ref["value"]]
            members = [m for m in group.get("members", []) if m["value"] != uid]
            self._replace_group_members(ref["value"], group, members)
        for report_id in self._lookup("manager", uid):
            report = copy.deepcopy(self.users[report_id])
            report[ENTERPRISE_USER].pop("manager", None)
            self._update_user(report_id, report)
        del self.users[uid]
        self._member_of.pop(uid, None)
        self.deleted_users[uid] = user
        self.deleted_names.add(user["userName"].lower())
        self.deleted_names.update(
            email["value"].lower() for email in user.get("emails", []) if email.get("value")
        )

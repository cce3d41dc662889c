"""The directory of a tenant whose Entra job has been running: phone numbers in E.164.

Genesys refuses a phone number that is not E.164 (or a tel URI) and Entra sends numbers
as the directory holds them, so in a tenant where Entra's job provisions users cleanly
the admins have written the numbers in E.164 (otherwise every such user sits in Entra's
escrow). ``Sandbox(entra_job=...)`` therefore serves the demo (or synthetic) directory
with its ``mobilePhone`` and ``businessPhones`` in E.164; everything else is unchanged.
A test that wants to see a number Genesys refuses passes its own ``directory``.
"""

from __future__ import annotations

import copy
from typing import Any

from genesys_prov.mapping.genesys_rules import normalize_phone


def e164_directory(directory: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``directory`` whose users' phone numbers are E.164 (their region from
    ``usageLocation``)."""
    out = copy.deepcopy(directory)
    for user in out.get("users", []):
        region = user.get("usageLocation")
        if user.get("mobilePhone"):
            user["mobilePhone"] = normalize_phone(user["mobilePhone"], region)
        user["businessPhones"] = [normalize_phone(p, region)
                                  for p in user.get("businessPhones") or []]
    return out

"""Directories the sandbox serves: the fixed demo directory and deterministic synthetic ones.

A directory is a JSON-able dict::

    {"users": [Graph user + "manager": <id or null>],
     "groups": [{id, displayName, description, mailNickname, securityEnabled,
                 "members": [<user or group id>]}],
     "app_role_assignments": [{principalId, principalType, appRoleId}],
     "service_principal": {id, appId, displayName, appRoles},
     "genesys": {"users": [SCIM users that already exist in Genesys],
                 "groups": [{id, displayName, members: [<userName or id>]}]}}

``python -m genesys_prov.sandbox.data > examples/demo-directory.json`` writes the demo
directory (see :mod:`genesys_prov.sandbox.data`). The demo directory is built in :mod:`.demo`,
synthetic ones in :mod:`.synthetic`, the tenant they share in :mod:`.tenant`.
"""

from __future__ import annotations

from genesys_prov.sandbox.directory.demo import demo_directory
from genesys_prov.sandbox.directory.synthetic import generate_directory
from genesys_prov.sandbox.directory.tenant import (
    DEFAULT_ACCESS_ROLE,
    DOMAIN,
    SERVICE_PRINCIPAL_APP_ID,
    SERVICE_PRINCIPAL_ID,
    SUPERVISOR_ROLE,
    USER_ROLE,
    service_principal,
)

__all__ = [
    "DEFAULT_ACCESS_ROLE",
    "DOMAIN",
    "SERVICE_PRINCIPAL_APP_ID",
    "SERVICE_PRINCIPAL_ID",
    "SUPERVISOR_ROLE",
    "USER_ROLE",
    "demo_directory",
    "generate_directory",
    "service_principal",
]

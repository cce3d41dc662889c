"""SCIM 2.0 building blocks for the Genesys emulator (RFC 7643 / RFC 7644).

* :class:`ScimFault` — an error answer (RFC 7644 §3.12 body), in :mod:`.errors`;
* :class:`Attr` / :class:`Schema` — the schemas the emulator serves at ``/Schemas`` and
  validates against (Genesys' subset of core User, the enterprise extension, the Genesys
  extension, core Group), in :mod:`.schemas`;
* :func:`parse_filter` — the RFC 7644 §3.4.2.2 filter grammar (``eq``, ``ne``, ``co``, ``sw``,
  ``ew``, ``gt``, ``ge``, ``lt``, ``le``, ``pr``, ``and``, ``or``, ``not``, ``( )``, ``[ ]``);
  string values are JSON strings, so ``\\"`` and ``\\\\`` escapes decode exactly; in
  :mod:`.filters`;
* :func:`parse_path` — the PATCH ``path`` grammar (RFC 7644 §3.5.2, figure 1), in
  :mod:`.paths`;
* the message and schema URNs, in :mod:`.urns`.

The emulator decides which of the parsed filters it supports; the parser itself is general.
The parser deliberately shares no code with the client's (:mod:`genesys_prov.mapping.scimpath`),
so a parsing mistake in one is not hidden by the other.
"""

from __future__ import annotations

from genesys_prov.sandbox.scim.errors import ScimFault, bad_request
from genesys_prov.sandbox.scim.filters import (
    Compare,
    Filter,
    Logical,
    Not,
    Present,
    ValuePath,
    equalities,
    matches,
    parse_filter,
)
from genesys_prov.sandbox.scim.paths import Path, parse_path, split_urn
from genesys_prov.sandbox.scim.schemas import (
    ALL_SCHEMAS,
    EMAIL_TYPES,
    ENTERPRISE_SCHEMA,
    GENESYS_SCHEMA,
    GROUP_SCHEMA,
    IGNORED_CORE_USER_ATTRIBUTES,
    PHONE_TYPES,
    USER_SCHEMA,
    Attr,
    Schema,
)
from genesys_prov.sandbox.scim.urns import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_USER,
    ERROR_SCHEMA,
    GENESYS_USER,
    LIST_SCHEMA,
    PATCH_SCHEMA,
    RESOURCE_TYPE_SCHEMA,
    SCHEMA_SCHEMA,
    SCIM_CONTENT_TYPE,
    SPC_SCHEMA,
)

__all__ = [
    "ALL_SCHEMAS",
    "CORE_GROUP",
    "CORE_USER",
    "EMAIL_TYPES",
    "ENTERPRISE_SCHEMA",
    "ENTERPRISE_USER",
    "ERROR_SCHEMA",
    "GENESYS_SCHEMA",
    "GENESYS_USER",
    "GROUP_SCHEMA",
    "IGNORED_CORE_USER_ATTRIBUTES",
    "LIST_SCHEMA",
    "PATCH_SCHEMA",
    "PHONE_TYPES",
    "RESOURCE_TYPE_SCHEMA",
    "SCHEMA_SCHEMA",
    "SCIM_CONTENT_TYPE",
    "SPC_SCHEMA",
    "USER_SCHEMA",
    "Attr",
    "Compare",
    "Filter",
    "Logical",
    "Not",
    "Path",
    "Present",
    "Schema",
    "ScimFault",
    "ValuePath",
    "bad_request",
    "equalities",
    "matches",
    "parse_filter",
    "parse_path",
    "split_urn",
]

"""What the emulator's User and Group resources are made of: the User schema
extensions, the attributes always returned, the order of a stored user's keys, and
the attributes Genesys returns only with expensive look-ups."""

from __future__ import annotations

from genesys_prov.sandbox.scim import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_SCHEMA,
    ENTERPRISE_USER,
    GENESYS_SCHEMA,
    GENESYS_USER,
)

DEFAULT_ROLE = "employee"

USER_EXTENSIONS = (ENTERPRISE_SCHEMA, GENESYS_SCHEMA)
USER_SCHEMAS_LIST = [CORE_USER, ENTERPRISE_USER, GENESYS_USER]
#: Attributes Genesys fetches with expensive secondary look-ups, by schema URN.
EXPENSIVE_ATTRIBUTES: dict[str, frozenset[str]] = {
    CORE_USER: frozenset({"externalId", "roles"}),
    ENTERPRISE_USER: frozenset({"manager"}),
    GENESYS_USER: frozenset({"routingSkills", "routingLanguages"}),
    CORE_GROUP: frozenset({"externalId"}),
}
USER_ALWAYS = ("schemas", "id", "userName", "active", "meta")
GROUP_ALWAYS = ("schemas", "id", "meta")
USER_KEY_ORDER = (
    "schemas",
    "id",
    "externalId",
    "userName",
    "displayName",
    "active",
    "title",
    "emails",
    "phoneNumbers",
    "roles",
    "groups",
    ENTERPRISE_USER,
    GENESYS_USER,
    "meta",
)

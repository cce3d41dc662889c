"""The SCIM schemas the Genesys emulator serves at ``/Schemas`` and validates against
(RFC 7643 §7): Genesys' subset of core User, the enterprise extension, the Genesys extension
and core Group, built from :class:`Attr` and :class:`Schema`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genesys_prov.sandbox.scim.urns import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE_USER,
    GENESYS_USER,
    SCHEMA_SCHEMA,
)


@dataclass(frozen=True)
class Attr:
    """One attribute definition (RFC 7643 §7)."""

    name: str
    type: str = "string"
    multi: bool = False
    required: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    case_exact: bool = False
    canonical: tuple[str, ...] = ()
    sub: tuple[Attr, ...] = ()
    description: str = ""
    reference_types: tuple[str, ...] = ()

    def sub_attr(self, name: str) -> Attr | None:
        """The sub-attribute called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        for candidate in self.sub:
            if candidate.name.lower() == lowered:
                return candidate
        return None

    def to_json(self) -> dict[str, Any]:
        """The RFC 7643 §7 representation."""
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi,
            "description": self.description or self.name,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.canonical:
            data["canonicalValues"] = list(self.canonical)
        if self.reference_types:
            data["referenceTypes"] = list(self.reference_types)
        if self.sub:
            data["subAttributes"] = [s.to_json() for s in self.sub]
        return data


@dataclass(frozen=True)
class Schema:
    """A schema: its URN, name and attributes."""

    id: str
    name: str
    description: str
    attributes: tuple[Attr, ...]

    def attr(self, name: str) -> Attr | None:
        """The attribute called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        for candidate in self.attributes:
            if candidate.name.lower() == lowered:
                return candidate
        return None

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The ``/Schemas/{id}`` resource."""
        return {
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_json() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{self.id}"},
        }


PHONE_TYPES = ("work", "work2", "work3", "work4", "home", "mobile", "other", "microsoftteams")
EMAIL_TYPES = ("work", "home", "other")


def _proficiency_list(name: str, description: str) -> Attr:
    """A routingSkills-style attribute: [{name, proficiency}]."""
    return Attr(
        name,
        "complex",
        multi=True,
        description=description,
        sub=(
            Attr("name", case_exact=True, required=True, description="The name (case-sensitive)."),
            Attr("proficiency", "decimal", description="Proficiency, 0.0 to 5.0."),
        ),
    )


USER_SCHEMA = Schema(
    CORE_USER,
    "User",
    "Genesys Cloud user (the subset of the RFC 7643 core User schema Genesys implements).",
    (
        Attr(
            "userName",
            required=True,
            uniqueness="server",
            description="The user's Genesys Cloud email address; unique, case-insensitive.",
        ),
        Attr("displayName", required=True, description="The display name of the user."),
        Attr("active", "boolean", description="Whether the user is active."),
        Attr("title", description="The user's title."),
        Attr(
            "externalId",
            case_exact=True,
            description="An identifier for the user as defined by the provisioning client.",
        ),
        Attr(
            "password",
            mutability="writeOnly",
            returned="never",
            description="The new password for the Genesys Cloud user (random when omitted).",
        ),
        Attr(
            "emails",
            "complex",
            multi=True,
            description="Email addresses; the 'other' address mirrors userName and is read-only.",
            sub=(
                Attr("value", description="The email address."),
                Attr("type", canonical=EMAIL_TYPES, description="The type of email address."),
                Attr("primary", "boolean", description="Whether this is the primary address."),
            ),
        ),
        Attr(
            "phoneNumbers",
            "complex",
            multi=True,
            description="Phone numbers, E.164 or a tel URI (tel:+nnnnnnnn;ext=xxxxx).",
            sub=(
                Attr("value", description="The phone number, E.164 or tel URI."),
                Attr("type", canonical=PHONE_TYPES, description="The type of phone number."),
                Attr("primary", "boolean", description="Whether this is the primary number."),
            ),
        ),
        Attr(
            "roles",
            "complex",
            multi=True,
            description="Roles of the user (role names).",
            sub=(Attr("value", description="The role name."),),
        ),
        Attr(
            "groups",
            "complex",
            multi=True,
            mutability="readOnly",
            description="Groups the user is a member of; change membership through /Groups.",
            sub=(
                Attr("value", mutability="readOnly", description="The group id."),
                Attr(
                    "$ref",
                    "reference",
                    mutability="readOnly",
                    reference_types=("Group",),
                    description="The group URI.",
                ),
                Attr("display", mutability="readOnly", description="The group's display name."),
                Attr("type", mutability="readOnly", canonical=("direct",), description="direct"),
            ),
        ),
    ),
)

ENTERPRISE_SCHEMA = Schema(
    ENTERPRISE_USER,
    "EnterpriseUser",
    "Enterprise user extension (Genesys subset, plus division and dateHire).",
    (
        Attr("employeeNumber", description="The user's employee number."),
        Attr("department", description="The user's department."),
        Attr("division", description="The name of the user's Genesys Cloud division."),
        Attr("dateHire", description="Hire date, YYYY-MM-DD."),
        Attr(
            "manager",
            "complex",
            description="The user's manager (a Genesys user id).",
            sub=(
                Attr("value", description="The id of the manager."),
                Attr(
                    "$ref",
                    "reference",
                    mutability="readOnly",
                    reference_types=("User",),
                    description="The manager's URI.",
                ),
            ),
        ),
    ),
)

GENESYS_SCHEMA = Schema(
    GENESYS_USER,
    "GenesysUser",
    "Genesys Cloud user extension.",
    (
        _proficiency_list("routingSkills", "Routing skills (at most 50; names must exist)."),
        _proficiency_list("routingLanguages", "Routing languages (at most 50; names must exist)."),
        Attr(
            "externalIds",
            "complex",
            multi=True,
            description="External identifiers; the x-pc:scimv2:v1 authority is immutable.",
            sub=(
                Attr("authority", case_exact=True, required=True, description="The authority."),
                Attr("value", case_exact=True, required=True, description="The identifier."),
            ),
        ),
    ),
)

GROUP_SCHEMA = Schema(
    CORE_GROUP,
    "Group",
    "Genesys Cloud group (cannot be created or deleted over SCIM).",
    (
        Attr("displayName", required=True, uniqueness="server", description="The group name."),
        Attr("externalId", case_exact=True, description="The provisioning client's identifier."),
        Attr(
            "members",
            "complex",
            multi=True,
            description="The members of the group (users).",
            sub=(
                Attr("value", mutability="immutable", description="The member's id."),
                Attr(
                    "$ref",
                    "reference",
                    mutability="immutable",
                    reference_types=("User",),
                    description="The member's URI.",
                ),
                Attr("display", mutability="readOnly", description="The member's display name."),
                Attr("type", mutability="immutable", canonical=("User",), description="User"),
            ),
        ),
    ),
)

ALL_SCHEMAS = (USER_SCHEMA, ENTERPRISE_SCHEMA, GENESYS_SCHEMA, GROUP_SCHEMA)

#: RFC 7643 core User attributes Genesys does not implement: accepted and dropped.
IGNORED_CORE_USER_ATTRIBUTES = frozenset(
    name.lower()
    for name in (
        "name",
        "nickName",
        "profileUrl",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "addresses",
        "ims",
        "photos",
        "entitlements",
        "x509Certificates",
    )
)

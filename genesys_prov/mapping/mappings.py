"""Attribute mappings: the :class:`Mappings` model and the source attributes a mapping
may read (Entra and Graph names). Reading ``mappings.yaml`` is
:mod:`~genesys_prov.mapping.mappings_file`; turning a directory user into what it should be
in the target is :mod:`~genesys_prov.mapping.desired`.

A mapping entry has exactly one of ``source`` (a directory attribute, Entra or Graph
name), ``constant`` or ``expression``; optional ``default`` (used on create when the value
is null), ``apply: always | on_create`` and ``match`` (matching precedence, 1 first).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesys_prov.mapping import expressions
from genesys_prov.mapping.filters import ScopeFilter
from genesys_prov.mapping.scimpath import TargetPath

# Entra's source attribute names that differ from Graph's, and how to read them.
ENTRA_ALIASES: dict[str, str] = {
    "objectId": "id",
    "mobile": "mobilePhone",
    "telephoneNumber": "businessPhones",
    "facsimileTelephoneNumber": "faxNumber",
    "physicalDeliveryOfficeName": "officeLocation",
}
for _n in range(1, 16):
    ENTRA_ALIASES[f"extensionAttribute{_n}"] = (
        f"onPremisesExtensionAttributes.extensionAttribute{_n}"
    )

# Graph user properties a mapping may name (plus extension_<appId>_<name>).
GRAPH_USER_PROPERTIES = frozenset({
    "id", "userPrincipalName", "displayName", "givenName", "surname", "mail", "mailNickname",
    "jobTitle", "department", "companyName", "employeeId", "employeeType", "accountEnabled",
    "usageLocation", "preferredLanguage", "city", "state", "country", "postalCode",
    "streetAddress", "officeLocation", "employeeHireDate", "userType", "mobilePhone",
    "businessPhones", "faxNumber", "onPremisesExtensionAttributes", "proxyAddresses",
    "otherMails", "onPremisesSamAccountName", "onPremisesImmutableId",
    "onPremisesUserPrincipalName", "onPremisesDomainName", "onPremisesDistinguishedName",
    "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "createdDateTime",
    "externalUserState", "creationType", "ageGroup", "imAddresses", "showInAddressList",
    "preferredName", "securityIdentifier", "employeeLeaveDateTime", "employeeOrgData",
})
# Computed or reference attributes: not read as plain properties.
COMPUTED = frozenset({"IsSoftDeleted"})
REFERENCES = frozenset({"manager", "members"})
#: Read from the enterprise app's assignments, not from the user object: the user's app
#: role names (source.scope.read_directory fills it when a mapping reads it).
APP_ROLE_ASSIGNMENTS = "appRoleAssignments"



@dataclass(frozen=True)
class AttributeMapping:
    """One mapping entry."""

    target: str
    path: TargetPath
    source: str | None = None
    constant: Any = None
    expression: expressions.Expression | None = None
    default: Any = None
    apply: str = "always"
    match: int | None = None

    @property
    def kind(self) -> str:
        """``direct``, ``constant`` or ``expression``."""
        if self.expression is not None:
            return "expression"
        return "direct" if self.source is not None else "constant"

    @property
    def is_reference(self) -> bool:
        """True for ``manager``/``members``: references wired by the groups support."""
        return self.source in REFERENCES

    @property
    def redacted(self) -> bool:
        """True when the value must never be shown (``Redact(...)``)."""
        return self.expression is not None and self.expression.redacted

    def source_names(self) -> frozenset[str]:
        """Directory attributes this mapping reads, as written."""
        if self.expression is not None:
            return self.expression.attributes()
        return frozenset({self.source}) if self.source is not None else frozenset()


@dataclass(frozen=True)
class Mappings:
    """The validated mappings for users and groups."""

    user: tuple[AttributeMapping, ...]
    group: tuple[AttributeMapping, ...] = ()
    digest: str = ""
    path: Path | None = None
    user_scope: ScopeFilter = field(default_factory=ScopeFilter)
    group_scope: ScopeFilter = field(default_factory=ScopeFilter)
    #: The tenant's default verified domain, what ``DefaultDomain()`` returns; a run whose
    #: mappings use it fills it once (:meth:`with_default_domain`), never per user.
    default_domain: str | None = None

    @property
    def uses_default_domain(self) -> bool:
        """True when a user or group mapping's expression calls ``DefaultDomain()``."""
        return any(m.expression is not None and m.expression.uses_default_domain
                   for m in (*self.user, *self.group))

    def with_default_domain(self, domain: str | None) -> Mappings:
        """These mappings evaluated in a tenant whose default verified domain is ``domain``."""
        return dataclasses.replace(self, default_domain=domain)

    @property
    def manager_mapping(self) -> AttributeMapping | None:
        """The user mapping that carries the manager reference, if any."""
        return next((m for m in self.user if m.source == "manager"), None)

    @property
    def members_mapping(self) -> AttributeMapping | None:
        """The group mapping that carries the members reference, if any."""
        return next((m for m in self.group if m.source == "members"), None)

    @property
    def group_match(self) -> tuple[AttributeMapping, ...]:
        """Group mappings used for matching, in precedence order."""
        return tuple(sorted((m for m in self.group if m.match is not None),
                            key=lambda m: m.match or 0))

    def group_paths(self) -> tuple[tuple[str, TargetPath], ...]:
        """(target name, path) of the group mappings that flow as values."""
        return tuple((m.target, m.path) for m in self.group if not m.is_reference)

    def group_select(self) -> list[str]:
        """The Graph ``$select`` for groups: what the group mappings and scope read."""
        return _graph_select({"id", "displayName"}, self.group_scope.attributes(), self.group)

    def group_target_attributes(self) -> list[str]:
        """Top-level group attributes to list from the target (members included when the
        members mapping exists)."""
        seen: dict[str, None] = {"displayName": None}
        for mapping in self.group:
            seen[mapping.path.qualified_attr] = None
        return list(seen)

    @property
    def user_match(self) -> tuple[AttributeMapping, ...]:
        """User mappings used for matching, in precedence order."""
        return tuple(sorted((m for m in self.user if m.match is not None),
                            key=lambda m: m.match or 0))

    @property
    def active_mapping(self) -> AttributeMapping | None:
        """The mapping for the target's ``active`` attribute, if any."""
        return next((m for m in self.user if m.path.is_boolean and m.path.attr == "active"),
                    None)

    def user_paths(self) -> tuple[tuple[str, TargetPath], ...]:
        """(target name, parsed path) of every user mapping that flows as a value
        (references excluded), in file order."""
        return self._user_paths

    @functools.cached_property
    def _user_paths(self) -> tuple[tuple[str, TargetPath], ...]:
        return tuple((m.target, m.path) for m in self.user if not m.is_reference)

    @functools.cached_property
    def uses_app_roles(self) -> bool:
        """Whether a user mapping or the user scope reads ``appRoleAssignments`` (then the
        app's role assignments are resolved to each user's role names)."""
        return any(APP_ROLE_ASSIGNMENTS in m.source_names() for m in self.user) or \
            APP_ROLE_ASSIGNMENTS in set(self.user_scope.attributes())

    def graph_select(self) -> list[str]:
        """The Graph ``$select`` list: exactly the properties the user mappings read, plus
        ``id``, ``userPrincipalName``, ``displayName`` and ``accountEnabled`` which every run
        needs (identity in reports, IsSoftDeleted)."""
        return _graph_select({"id", "userPrincipalName", "displayName", "accountEnabled"},
                             self.user_scope.attributes(), self.user)

    def target_attributes(self) -> list[str]:
        """Top-level target attributes the user mappings write (for SCIM ``attributes=``),
        always with ``userName`` and ``active``: RFC 7643 does not return ``active`` by
        default once ``attributes=`` is given, and the plan needs it."""
        seen: dict[str, None] = {"userName": None, "active": None}
        for mapping in self.user:
            if not mapping.is_reference or mapping.source == "manager":
                seen[mapping.path.qualified_attr] = None
        return list(seen)


def _graph_select(base: set[str], scope_names: Iterable[str],
                  mappings: Iterable[AttributeMapping]) -> list[str]:
    """``base`` plus the Graph properties behind scoping attributes and value mappings."""
    names = [*scope_names, *(n for m in mappings if not m.is_reference
                             for n in m.source_names())]
    needed = set(base)
    for name in names:
        prop = graph_property(name)
        if prop is not None:
            needed.add(prop.split(".", 1)[0])
    return sorted(needed)


def graph_property(name: str) -> str | None:
    """The Graph property path behind a source attribute name (None for computed ones)."""
    if name in COMPUTED or name in REFERENCES or name == APP_ROLE_ASSIGNMENTS:
        return None
    return ENTRA_ALIASES.get(name, name)


def known_source(name: str) -> bool:
    """True for a source attribute name this tool can read (Entra or Graph name, computed,
    reference, or a directory extension)."""
    if name in COMPUTED or name in REFERENCES or name in ENTRA_ALIASES or \
            name == APP_ROLE_ASSIGNMENTS:
        return True
    if name.startswith("extension_"):
        return True
    root = name.split(".", 1)[0]
    return root in GRAPH_USER_PROPERTIES


def suggest_source(name: str) -> str | None:
    """The known source attribute ``name`` most likely means: the same name in another
    case, else the closest spelling (``jobTitel`` → ``jobTitle``), else None."""
    names = sorted(GRAPH_USER_PROPERTIES | COMPUTED | REFERENCES | set(ENTRA_ALIASES))
    same = [n for n in names if n.lower() == name.lower() and n != name]
    if same:
        return same[0]
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.8)
    return lowered[close[0]] if close else None


def source_reader(obj: dict[str, Any]) -> Callable[[str], Any]:
    """A source-attribute lookup for one directory object (for the scoping filters)."""
    return lambda name: read_source(obj, name)


def source_getter(name: str) -> Callable[[dict[str, Any]], Any]:
    """``read_source(user, name)`` as a function of the user, with ``name`` resolved once
    (compiled mappings read every user through it)."""
    if name == "IsSoftDeleted":
        return lambda user: bool(user.get("@removed")) or user.get("accountEnabled") is False
    prop = ENTRA_ALIASES.get(name, name)
    if "." in prop:
        head, _, tail = prop.partition(".")

        def nested(user: dict[str, Any]) -> Any:
            inner = user.get(head)
            return inner.get(tail) if isinstance(inner, dict) else None

        return nested
    if name == "telephoneNumber":
        def first(user: dict[str, Any]) -> Any:
            value = user.get(prop)
            return value[0] if isinstance(value, list) and value else None

        return first

    def plain(user: dict[str, Any]) -> Any:
        value = user.get(prop)
        return None if value == "" else value

    return plain


def read_source(user: dict[str, Any], name: str) -> Any:
    """Read a source attribute (Entra or Graph name) from a Graph user object.

    ``IsSoftDeleted`` is true when the account is disabled (or marked removed);
    ``telephoneNumber`` is the first of ``businessPhones``."""
    if name == "IsSoftDeleted":
        return bool(user.get("@removed")) or user.get("accountEnabled") is False
    prop = ENTRA_ALIASES.get(name, name)
    if "." in prop:
        head, _, tail = prop.partition(".")
        inner = user.get(head)
        return inner.get(tail) if isinstance(inner, dict) else None
    value = user.get(prop)
    if name == "telephoneNumber":
        return value[0] if isinstance(value, list) and value else None
    if value == "":
        return None
    return value

"""Attribute mappings: load ``mappings.yaml`` and turn a directory user into the SCIM
values it should have in the target (a :class:`DesiredUser`).

A mapping entry has exactly one of ``source`` (a directory attribute, Entra or Graph
name), ``constant`` or ``expression``; optional ``default`` (used on create when the value
is null), ``apply: always | on_create`` and ``match`` (matching precedence, 1 first).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genesys_prov.config import load_yaml, read_text
from genesys_prov.errors import EvaluationError, ExpressionError, MappingError
from genesys_prov.mapping import expressions, scimpath
from genesys_prov.mapping.filters import ScopeFilter, parse_scope
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

_ENTRY_KEYS = {"target", "source", "constant", "expression", "default", "apply", "match"}
_SECTIONS = ("user", "group", "user_scope", "group_scope")


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
    if name in COMPUTED or name in REFERENCES:
        return None
    return ENTRA_ALIASES.get(name, name)


def known_source(name: str) -> bool:
    """True for a source attribute name this tool can read (Entra or Graph name, computed,
    reference, or a directory extension)."""
    if name in COMPUTED or name in REFERENCES or name in ENTRA_ALIASES:
        return True
    if name.startswith("extension_"):
        return True
    root = name.split(".", 1)[0]
    return root in GRAPH_USER_PROPERTIES


def source_reader(obj: dict[str, Any]) -> Callable[[str], Any]:
    """A source-attribute lookup for one directory object (for the scoping filters)."""
    return lambda name: read_source(obj, name)


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


# --- loading ---------------------------------------------------------------------------------

def default_mappings_text() -> str:
    """The built-in default Genesys mappings (the same as the repository's mappings.yaml)."""
    return (Path(__file__).parent.parent / "data" / "mappings.yaml").read_text(encoding="utf-8")


def load_mappings(path: str | os.PathLike[str]) -> Mappings:
    """Read and validate a mappings file.

    Example::

        mappings = load_mappings("mappings.yaml")
        [m.target for m in mappings.user]
    """
    p = Path(path)
    text = read_text(p, MappingError, "mappings file ")
    where = str(p) if str(p).isprintable() else repr(str(p))
    return parse_mappings(text, where=where, path=p)


def parse_mappings(text: str, where: str = "mappings", path: Path | None = None) -> Mappings:
    """Validate mappings YAML text. Every problem raises :class:`MappingError` whose message
    starts with ``where`` (one line, except that an expression error ends with the expression
    and a caret under the problem)."""
    raw = load_yaml(text, where, MappingError)
    if raw is None:
        raise MappingError(f"{where}: the file is empty; it needs a 'user:' list of mappings")
    if not isinstance(raw, dict):
        raise MappingError(f"{where}: expected 'user:' and 'group:' lists at the top level")
    unknown = [key for key in raw if key not in _SECTIONS]
    if unknown:
        raise MappingError(f"{where}: unknown section {_show_key(unknown[0])} "
                           "(expected user, group, user_scope, group_scope)")
    if "user" not in raw:
        raise MappingError(f"{where}: the 'user' list is missing")
    user = _entries(raw["user"], "user", where)
    group = _entries(raw.get("group") or [], "group", where)
    _check_user(user, where)
    if group and not any(m.match is not None for m in group):
        raise MappingError(f"{where}: no group mapping is marked for matching "
                           "(add match: 1 to one, usually displayName)")
    user_scope = parse_scope(raw.get("user_scope"), f"{where}: user_scope")
    for name in user_scope.attributes():
        if not known_source(name):
            raise MappingError(f"{where}: user_scope: unknown source attribute {name!r}")
    group_scope = parse_scope(raw.get("group_scope"), f"{where}: group_scope")
    digest = hashlib.sha256(text.encode()).hexdigest()
    return Mappings(user=user, group=group, digest=digest, path=path, user_scope=user_scope,
                    group_scope=group_scope)


def _show_key(key: Any) -> str:
    """A key for messages: quoted text, or ``null``/``true``/``1`` as YAML spells it."""
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    text = repr(key) if isinstance(key, str) else str(key)
    return text if len(text) <= 60 else text[:57] + "..."


def _show_value(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _plain_value(value: Any) -> bool:
    """True for what YAML gives for JSON-like data: text, numbers, true/false, null, lists
    and mappings with string keys (not dates, binary, sets or ordered pairs, which the
    target could not be sent)."""
    if value is None or isinstance(value, str | int | float):
        return True
    if isinstance(value, list):
        return all(_plain_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_value(v) for k, v in value.items())
    return False


def _check_value(at: str, key: str, value: Any, path: TargetPath) -> None:
    """A ``constant`` or ``default``: plain data of the target attribute's type."""
    if not _plain_value(value):
        kind = type(value).__name__
        raise MappingError(f"{at}: {key} must be text, a number, true/false, a list or a "
                           f"mapping, got a {kind} {_show_value(value)} (quote it in YAML)")
    try:
        scimpath.coerce(path, value)
    except ValueError as exc:
        raise MappingError(f"{at}: {key}: {exc}") from None


def _entries(raw: Any, section: str, where: str) -> tuple[AttributeMapping, ...]:
    if not isinstance(raw, list):
        raise MappingError(f"{where}: {section}: expected a list of mappings")
    out = []
    targets: set[str] = set()
    for i, entry in enumerate(raw):
        at = f"{where}: {section}[{i}]"
        if not isinstance(entry, dict):
            raise MappingError(f"{at}: expected a mapping like {{target: ..., source: ...}}")
        extra = [key for key in entry if key not in _ENTRY_KEYS]
        if extra:
            raise MappingError(f"{at}: unknown key {_show_key(extra[0])}")
        target = entry.get("target")
        if target is None:
            raise MappingError(f"{at}: 'target' is required")
        if not isinstance(target, str) or not target.strip():
            raise MappingError(f"{at}: 'target' must be a SCIM attribute name, got "
                               f"{_show_value(target)}")
        at = f"{where}: {section} mapping {_show_value(target, 120)}"
        if target.lower() in targets:
            raise MappingError(f"{at}: mapped twice")
        targets.add(target.lower())
        kinds = [k for k in ("source", "constant", "expression") if k in entry]
        if len(kinds) != 1:
            raise MappingError(f"{at}: needs exactly one of source, constant, expression")
        try:
            path = scimpath.parse_path(target)
        except MappingError as exc:
            raise MappingError(f"{where}: {section}: {exc}") from exc
        apply = entry.get("apply", "always")
        if apply not in ("always", "on_create"):
            raise MappingError(f"{at}: apply must be 'always' or 'on_create', got "
                               f"{_show_value(apply)}")
        match = entry.get("match")
        if match is not None and (not isinstance(match, int) or isinstance(match, bool)
                                  or match < 1):
            raise MappingError(f"{at}: match must be a positive integer (the precedence)")
        source = entry.get("source")
        if "source" in entry and (not isinstance(source, str) or not source.strip()):
            raise MappingError(f"{at}: source must be an attribute name")
        for key in ("constant", "default"):
            if entry.get(key) is not None:
                _check_value(at, key, entry[key], path)
        expression = None
        if "expression" in entry:
            if not isinstance(entry["expression"], str):
                raise MappingError(f"{at}: expression must be a string")
            try:
                expression = expressions.parse(entry["expression"])
            except ExpressionError as exc:
                raise MappingError(f"{at}: {exc}") from exc
        if expression is not None and expression.selects_unique and \
                (apply != "on_create" or match is not None):
            raise MappingError(f"{at}: SelectUniqueValue needs apply: on_create and cannot be "
                               "a matching attribute (its value depends on the target)")
        out.append(AttributeMapping(
            target=target, path=path, source=source, constant=entry.get("constant"),
            expression=expression, default=entry.get("default"), apply=apply, match=match,
        ))
    return tuple(out)


def _check_user(user: Iterable[AttributeMapping], where: str) -> None:
    precedences: dict[int, str] = {}
    matching = 0
    for m in user:
        for name in m.source_names():
            if not known_source(name):
                raise MappingError(
                    f"{where}: user mapping {m.target!r}: unknown source attribute {name!r}"
                )
        if m.match is not None:
            matching += 1
            if m.match in precedences:
                raise MappingError(f"{where}: user mappings {precedences[m.match]!r} and "
                                   f"{m.target!r} have the same match precedence {m.match}")
            precedences[m.match] = m.target
            if m.path.filter_attr is not None and m.path.attr.lower() != "emails":
                raise MappingError(f"{where}: user mapping {m.target!r}: cannot match on a "
                                   "filtered multi-valued attribute")
    if not matching:
        raise MappingError(f"{where}: no user mapping is marked for matching "
                           "(add match: 1 to one, usually userName)")


# --- evaluation ------------------------------------------------------------------------------

@dataclass(slots=True)
class DesiredUser:
    """What one directory user should look like in the target."""

    source_id: str
    identity: str
    soft_deleted: bool
    active: bool
    values: dict[str, Any] = field(default_factory=dict)        # always-applied, non-null
    create_only: dict[str, Any] = field(default_factory=dict)   # on_create values + defaults
    match_keys: list[tuple[str, Any]] = field(default_factory=list)  # (target, value)
    redacted: frozenset[str] = frozenset()
    error: str | None = None
    in_scope: bool = True
    scope_reason: str | None = None   # why the user is out of scope, when it is
    manager: str | None = None        # source id of the manager (when manager is mapped)
    unique: dict[str, list[Any]] = field(default_factory=dict)  # SelectUniqueValue candidates
    warnings: list[str] = field(default_factory=list)  # sent anyway, but worth a look


def evaluate(mapping: AttributeMapping, user: dict[str, Any], in_scope: bool = True) -> Any:
    """The value a mapping produces for one directory object (may be None or IGNORE).

    ``IsSoftDeleted`` is also true for a user who is out of scope (Entra's definition)."""
    def lookup(name: str) -> Any:
        if name == "IsSoftDeleted" and not in_scope:
            return True
        return read_source(user, name)

    if mapping.expression is not None:
        return mapping.expression.evaluate(lookup)
    if mapping.source is not None:
        return lookup(mapping.source)
    return mapping.constant


def _candidates(mapping: AttributeMapping, user: dict[str, Any], in_scope: bool) -> list[Any]:
    """Every non-empty candidate of a SelectUniqueValue mapping, in order (the planner picks
    the first one the target does not hold)."""
    assert mapping.expression is not None
    seen: list[Any] = []

    def record(value: Any) -> bool:
        seen.append(scimpath.coerce(mapping.path, value))
        return True  # "taken": makes the evaluator offer the next candidate

    def lookup(name: str) -> Any:
        return True if name == "IsSoftDeleted" and not in_scope else read_source(user, name)

    try:
        mapping.expression.evaluate(lookup, is_taken=record)
    except EvaluationError:
        if not seen:
            raise
    return seen


def _mapped(mapping: AttributeMapping, obj: dict[str, Any], in_scope: bool = True) -> Any:
    """The mapping's value coerced to the target type (IGNORE passes through); raises
    EvaluationError or ValueError for this object."""
    value = evaluate(mapping, obj, in_scope)
    return value if value is expressions.IGNORE else scimpath.coerce(mapping.path, value)


def manager_id(user: dict[str, Any]) -> str | None:
    """The manager's object id from ``$expand=manager($select=id)`` (None when absent)."""
    manager = user.get("manager")
    if isinstance(manager, dict) and isinstance(manager.get("id"), str):
        return str(manager["id"])
    return manager if isinstance(manager, str) and manager else None


def desired_user(user: dict[str, Any], mappings: Mappings, in_scope: bool = True,
                 scope_reason: str | None = None) -> DesiredUser:
    """Apply the user mappings to one Graph user.

    A mapping that fails for this user (an expression error, a value of the wrong type)
    marks the whole user as failed with the reason; nulls are never sent. A user out of
    scope is soft-deleted in Entra's sense (``IsSoftDeleted`` is true)."""
    source_id = str(user.get("id", ""))
    identity = str(user.get("userPrincipalName") or user.get("displayName") or source_id)
    soft = bool(read_source(user, "IsSoftDeleted")) or not in_scope
    desired = DesiredUser(source_id=source_id, identity=identity, soft_deleted=soft,
                          active=not soft, in_scope=in_scope, scope_reason=scope_reason)
    if mappings.manager_mapping is not None:
        desired.manager = manager_id(user)
    redacted = set()
    for m in mappings.user:
        if m.is_reference:
            continue
        if m.expression is not None and m.expression.selects_unique:
            try:
                desired.unique[m.target] = _candidates(m, user, in_scope)
            except (EvaluationError, ValueError) as exc:
                desired.error = f"mapping {m.target!r}: {exc}"
                return desired
            continue
        try:
            value = _mapped(m, user, in_scope)
        except (EvaluationError, ValueError) as exc:
            desired.error = f"mapping {m.target!r}: {exc}"
            return desired
        if value is expressions.IGNORE:
            continue
        if m.redacted:
            redacted.add(m.target)
        if m.path.is_boolean and m.path.attr.lower() == "active":
            if value is not None:
                desired.active = bool(value)
            continue
        if value is None:
            if m.default is not None:
                desired.create_only[m.target] = scimpath.coerce(m.path, m.default)
            continue
        if m.apply == "on_create":
            desired.create_only[m.target] = value
        else:
            desired.values[m.target] = value
    for m in mappings.user_match:
        value = desired.values.get(m.target, desired.create_only.get(m.target))
        if value is not None:
            desired.match_keys.append((m.target, value))
    desired.redacted = frozenset(redacted)
    return desired


@dataclass(slots=True)
class DesiredGroup:
    """What one directory group should look like in the target."""

    source_id: str
    identity: str
    values: dict[str, Any] = field(default_factory=dict)
    match_keys: list[tuple[str, Any]] = field(default_factory=list)
    members: tuple[str, ...] = ()   # source ids of the in-scope member users
    error: str | None = None


def desired_group(group: dict[str, Any], mappings: Mappings,
                  members: tuple[str, ...] = ()) -> DesiredGroup:
    """Apply the group mappings to one Graph group (``members``: in-scope member user ids)."""
    source_id = str(group.get("id", ""))
    identity = str(group.get("displayName") or source_id)
    desired = DesiredGroup(source_id=source_id, identity=identity, members=members)
    for m in mappings.group:
        if m.is_reference:
            continue
        try:
            value = _mapped(m, group)
        except (EvaluationError, ValueError) as exc:
            desired.error = f"group mapping {m.target!r}: {exc}"
            return desired
        if value is not None and value is not expressions.IGNORE:
            desired.values[m.target] = value
    for m in mappings.group_match:
        value = desired.values.get(m.target)
        if value is not None:
            desired.match_keys.append((m.target, value))
    return desired

"""The desired state: a directory user or group through the mappings — each mapping's
value (expressions evaluated, defaults, IgnoreFlowIfNullOrEmpty), as a
:class:`DesiredUser` or :class:`DesiredGroup` the planner compares with the target."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genesys_prov.errors import EvaluationError
from genesys_prov.mapping import expressions, scimpath
from genesys_prov.mapping.mappings import AttributeMapping, Mappings, read_source


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

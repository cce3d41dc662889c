"""The desired state: a directory user or group through the mappings — each mapping's
value (expressions evaluated, defaults, IgnoreFlowIfNullOrEmpty), as a
:class:`DesiredUser` or :class:`DesiredGroup` the planner compares with the target."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genesys_prov.errors import EvaluationError
from genesys_prov.mapping import expressions, scimpath
from genesys_prov.mapping.mappings import (
    COMPUTED,
    AttributeMapping,
    Mappings,
    read_source,
    source_getter,
)


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


def source_lookup(obj: dict[str, Any], in_scope: bool = True,
                  default_domain: str | None = None) -> expressions.Lookup:
    """The lookup expressions read for one directory object: its source attributes
    (``IsSoftDeleted`` is also true out of scope, Entra's definition), and the tenant's
    default domain under :data:`~genesys_prov.mapping.expressions.DEFAULT_DOMAIN` (what
    ``DefaultDomain()`` asks for) when it is known."""
    if in_scope and default_domain is None:
        return functools.partial(read_source, obj)
    reserved = expressions.DEFAULT_DOMAIN

    def lookup(name: str) -> Any:
        if name == "IsSoftDeleted" and not in_scope:
            return True
        if name == reserved and default_domain is not None:
            return default_domain
        return read_source(obj, name)

    return lookup


def evaluate(mapping: AttributeMapping, user: dict[str, Any], in_scope: bool = True,
             default_domain: str | None = None) -> Any:
    """The value a mapping produces for one directory object (may be None or IGNORE).

    ``IsSoftDeleted`` is also true for a user who is out of scope (Entra's definition);
    ``DefaultDomain()`` is ``default_domain``."""
    lookup = source_lookup(user, in_scope, default_domain)
    if mapping.expression is not None:
        return mapping.expression.evaluate(lookup)
    if mapping.source is not None:
        return lookup(mapping.source)
    return mapping.constant


def _candidates(mapping: AttributeMapping, user: dict[str, Any], in_scope: bool,
                default_domain: str | None = None) -> list[Any]:
    """Every non-empty candidate of a SelectUniqueValue mapping, in order (the planner picks
    the first one the target does not hold)."""
    assert mapping.expression is not None
    seen: list[Any] = []

    def record(value: Any) -> bool:
        seen.append(scimpath.coerce(mapping.path, value))
        return True  # "taken": makes the evaluator offer the next candidate

    lookup = source_lookup(user, in_scope, default_domain)
    try:
        mapping.expression.evaluate(lookup, is_taken=record)
    except EvaluationError:
        if not seen:
            raise
    return seen


def _mapped(mapping: AttributeMapping, obj: dict[str, Any], in_scope: bool = True,
            default_domain: str | None = None) -> Any:
    """The mapping's value coerced to the target type (IGNORE passes through); raises
    EvaluationError or ValueError for this object."""
    value = evaluate(mapping, obj, in_scope, default_domain)
    return value if value is expressions.IGNORE else scimpath.coerce(mapping.path, value)


def manager_id(user: dict[str, Any]) -> str | None:
    """The manager's object id from ``$expand=manager($select=id)`` (None when absent)."""
    manager = user.get("manager")
    if isinstance(manager, dict) and isinstance(manager.get("id"), str):
        return str(manager["id"])
    return manager if isinstance(manager, str) and manager else None


_Value = Callable[[dict[str, Any], expressions.Lookup], Any]


def _value_function(mapping: AttributeMapping) -> _Value:
    """The mapping compiled into ``value(user, lookup)``: what :func:`_mapped` returns
    (coerced to the target type, IGNORE passed through, errors raised), with the kind of
    mapping and the target type decided once: an expression is its compiled evaluator, a
    source attribute a direct read, a constant its value."""
    coerce = scimpath.coercer(mapping.path)
    if mapping.expression is not None:
        evaluate_expression = mapping.expression.evaluate
        ignore = expressions.IGNORE

        def expression(user: dict[str, Any], lookup: expressions.Lookup) -> Any:
            value = evaluate_expression(lookup)
            return value if value is ignore else coerce(value)

        return expression
    if mapping.source is not None and mapping.source not in COMPUTED:
        read = source_getter(mapping.source)
        return lambda user, lookup: coerce(read(user))
    if mapping.source is not None:  # computed (IsSoftDeleted): the lookup knows the scope
        name = mapping.source
        return lambda user, lookup: coerce(lookup(name))
    constant = mapping.constant
    return lambda user, lookup: coerce(constant)


@dataclass(frozen=True, slots=True)
class _Step:
    """One value mapping of a :class:`UserProgram`, decided once."""

    mapping: AttributeMapping
    target: str
    value: _Value
    unique: bool      # a SelectUniqueValue expression: candidates, not one value
    redacted: bool
    active: bool      # the target's boolean ``active``: sets DesiredUser.active
    on_create: bool


class UserProgram:
    """The user mappings of one :class:`Mappings` compiled once into plain functions
    (:func:`user_program`): :func:`desired_user` runs its steps for every user instead of
    interpreting the mapping table."""

    def __init__(self, mappings: Mappings) -> None:
        """Compile ``mappings.user`` (references are wired elsewhere and skipped)."""
        self.steps = tuple(
            _Step(m, m.target, _value_function(m),
                  m.expression is not None and m.expression.selects_unique, m.redacted,
                  m.path.is_boolean and m.path.attr.lower() == "active",
                  m.apply == "on_create")
            for m in mappings.user if not m.is_reference)
        self.match_targets = tuple(m.target for m in mappings.user_match)
        self.has_manager = mappings.manager_mapping is not None
        self.default_domain = mappings.default_domain


_PROGRAMS: dict[int, tuple[Mappings, UserProgram]] = {}
_PROGRAMS_KEPT = 8


def user_program(mappings: Mappings) -> UserProgram:
    """The :class:`UserProgram` of ``mappings``, compiled on first use and kept for a few
    Mappings objects (a run uses one; each entry holds its Mappings, so an id is never
    reused while its entry lives)."""
    entry = _PROGRAMS.get(id(mappings))
    if entry is not None and entry[0] is mappings:
        return entry[1]
    program = UserProgram(mappings)
    if len(_PROGRAMS) >= _PROGRAMS_KEPT:
        _PROGRAMS.clear()
    _PROGRAMS[id(mappings)] = (mappings, program)
    return program


def desired_user(user: dict[str, Any], mappings: Mappings, in_scope: bool = True,
                 scope_reason: str | None = None) -> DesiredUser:
    """Apply the user mappings to one Graph user (their compiled :func:`user_program`).

    A mapping that fails for this user (an expression error, a value of the wrong type)
    marks the whole user as failed with the reason; nulls are never sent. A user out of
    scope is soft-deleted in Entra's sense (``IsSoftDeleted`` is true)."""
    program = user_program(mappings)
    source_id = str(user.get("id", ""))
    identity = str(user.get("userPrincipalName") or user.get("displayName") or source_id)
    soft = bool(read_source(user, "IsSoftDeleted")) or not in_scope
    desired = DesiredUser(source_id=source_id, identity=identity, soft_deleted=soft,
                          active=not soft, in_scope=in_scope, scope_reason=scope_reason)
    if program.has_manager:
        desired.manager = manager_id(user)
    lookup = source_lookup(user, in_scope, program.default_domain)
    values, create_only = desired.values, desired.create_only
    redacted = set()
    for step in program.steps:
        try:
            if step.unique:
                desired.unique[step.target] = _candidates(step.mapping, user, in_scope,
                                                          program.default_domain)
                continue
            value = step.value(user, lookup)
        except (EvaluationError, ValueError) as exc:
            desired.error = f"mapping {step.target!r}: {exc}"
            return desired
        if value is expressions.IGNORE:
            continue
        if step.redacted:
            redacted.add(step.target)
        if step.active:
            if value is not None:
                desired.active = bool(value)
        elif value is not None:
            (create_only if step.on_create else values)[step.target] = value
        elif step.mapping.default is not None:
            create_only[step.target] = scimpath.coerce(step.mapping.path, step.mapping.default)
    for target in program.match_targets:
        value = values.get(target, create_only.get(target))
        if value is not None:
            desired.match_keys.append((target, value))
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
            value = _mapped(m, group, default_domain=mappings.default_domain)
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

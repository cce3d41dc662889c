"""A ``synchronizationSchema`` read the way Entra's job reads it: the rule whose target is
the SCIM app, its user and group object mappings, each attribute mapping's source as an
expression (``source.expression``, or rebuilt from ``name`` and ``parameters``), and the
scoping filter.

This reads the schema JSON itself, never a ``mappings.yaml``: the emulated job is the
reference the ``mapping import`` converter is tested against, so it must not share the
converter's code. It evaluates with the library's expression language, filters and SCIM
paths (the sandbox may use the library).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from genesys_prov.mapping import expressions
from genesys_prov.mapping.filters import ScopeFilter, parse_scope
from genesys_prov.mapping.mappings import read_source
from genesys_prov.mapping.scimpath import TargetPath, coerce, parse_path

#: The schemas the sandbox serves: ``gallery_schema.json`` and ``customised_schema.json``.
SCHEMA_KINDS = ("gallery", "customised")
#: How the source directory is named in rules (old and new product names).
SOURCE_DIRECTORIES = frozenset({"azure active directory", "microsoft entra id"})
#: Entra's reference attributes (flow as target ids, after the objects they point to).
REFERENCES = frozenset({"manager", "members"})
#: Scoping operators that take no value.
_NO_VALUE = frozenset({"IS TRUE", "IS FALSE", "IS NULL", "IS NOT NULL"})


def load_schema(kind: str) -> dict[str, Any]:
    """The sandbox's ``<kind>_schema.json`` (``gallery`` or ``customised``), parsed."""
    if kind not in SCHEMA_KINDS:
        raise ValueError(f"schema kind must be one of {SCHEMA_KINDS}, got {kind!r}")
    text = resources.files("genesys_prov.sandbox.entra").joinpath(f"{kind}_schema.json")
    data: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return data


def _quoted(text: str) -> str:
    """A string constant as Entra writes it (backslash escapes ``\\`` and ``"``)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def source_expression(source: dict[str, Any]) -> str:
    """The expression text of an attribute mapping's ``source``: its ``expression`` when
    present, else rebuilt from ``type``, ``name`` and the ordered ``parameters``."""
    given = source.get("expression")
    if isinstance(given, str) and given.strip():
        return given
    kind, name = source.get("type"), str(source.get("name") or "")
    if kind == "Attribute":
        return f"[{name}]"
    if kind == "Constant":
        return _quoted(name) if name else ""
    arguments = [source_expression(p.get("value") or {}) for p in source.get("parameters", [])]
    return f"{name}({', '.join(arguments)})"


@dataclass(frozen=True)
class Flow:
    """One attribute mapping of an object mapping."""

    target: str
    path: TargetPath
    expression: expressions.Expression | None   # None for a reference
    reference: str | None                        # "manager" / "members"
    default: str | None
    on_create_only: bool
    matching: int                                # 0: not a matching attribute

    def value(self, obj: dict[str, Any]) -> Any:
        """The value this mapping flows for one directory object, converted to the target
        attribute's type (None: nothing flows). Raises EvaluationError / ValueError."""
        assert self.expression is not None
        value = self.expression.evaluate(lambda name: read_source(obj, name))
        if value is expressions.IGNORE or value == "":
            return None
        return coerce(self.path, value)


@dataclass(frozen=True)
class ObjectFlow:
    """One object mapping (User → User or Group → Group)."""

    name: str
    enabled: bool
    flows: tuple[Flow, ...]
    scope: ScopeFilter

    @property
    def matching(self) -> tuple[Flow, ...]:
        """The matching attributes in precedence order."""
        return tuple(sorted((f for f in self.flows if f.matching), key=lambda f: f.matching))

    @property
    def values(self) -> tuple[Flow, ...]:
        """The mappings that flow values (references excluded)."""
        return tuple(f for f in self.flows if f.reference is None)

    def reference(self, name: str) -> Flow | None:
        """The mapping of reference ``name`` (``manager`` / ``members``), if any."""
        return next((f for f in self.flows if f.reference == name), None)


@dataclass(frozen=True)
class JobSchema:
    """The user and group object mappings of the rule that targets the SCIM app."""

    users: ObjectFlow | None
    groups: ObjectFlow | None


def _flow(raw: dict[str, Any]) -> Flow:
    """One ``attributeMapping``."""
    source = raw.get("source") or {}
    name = source.get("name")
    reference = name if source.get("type") == "Attribute" and name in REFERENCES else None
    text = source_expression(source)
    return Flow(
        target=str(raw["targetAttributeName"]),
        path=parse_path(str(raw["targetAttributeName"])),
        expression=None if reference else expressions.parse(text),
        reference=reference,
        default=raw.get("defaultValue"),
        on_create_only=raw.get("flowType") == "ObjectAddOnly",
        matching=int(raw.get("matchingPriority") or 0),
    )


def scope_filter(scope: dict[str, Any] | None) -> ScopeFilter:
    """An object mapping's ``scope`` (filter groups ORed, clauses ANDed) as a ScopeFilter."""
    groups = (scope or {}).get("groups") or []
    raw = []
    for group in groups:
        clauses = []
        for clause in group.get("clauses", []):
            operator = str(clause.get("operatorName", ""))
            values = (clause.get("targetOperand") or {}).get("values") or []
            value = None if operator.upper().replace("_", " ") in _NO_VALUE or not values \
                else values[0]
            clauses.append({"attribute": clause.get("sourceOperandName"),
                            "operator": operator, "value": value})
        raw.append(clauses)
    return parse_scope(raw, "scope")


def _object_flow(raw: dict[str, Any]) -> ObjectFlow:
    """One ``objectMapping``."""
    return ObjectFlow(
        name=str(raw.get("name", "")),
        enabled=bool(raw.get("enabled", True)),
        flows=tuple(_flow(m) for m in raw.get("attributeMappings", [])),
        scope=scope_filter(raw.get("scope")),
    )


def read_schema(schema: dict[str, Any]) -> JobSchema:
    """The object mappings of the rule whose source is Entra and whose target is not
    (the SCIM app's directory, ``customappsso`` for gallery SCIM apps)."""
    for rule in schema.get("synchronizationRules", []):
        source = str(rule.get("sourceDirectoryName", "")).lower()
        target = str(rule.get("targetDirectoryName", "")).lower()
        if source in SOURCE_DIRECTORIES and target not in SOURCE_DIRECTORIES:
            objects = {(m.get("sourceObjectName"), m.get("targetObjectName")): m
                       for m in rule.get("objectMappings", [])}
            users = objects.get(("User", "User"))
            groups = objects.get(("Group", "Group"))
            return JobSchema(users=_object_flow(users) if users else None,
                             groups=_object_flow(groups) if groups else None)
    raise ValueError("the schema has no rule from Entra to the SCIM app")

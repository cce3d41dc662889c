"""Tools for mappings: evaluate one expression (``mapping test``) and check a mappings file
against the target's schema (``mapping validate``).

Nothing here prints: the CLI renders the results.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from genesys_prov.errors import ConfigError, GenesysProvError
from genesys_prov.mapping import expressions
from genesys_prov.mapping.mappings import (
    AttributeMapping,
    Mappings,
    graph_property,
    known_source,
    read_source,
)
from genesys_prov.mapping.scimpath import CORE_USER, TargetPath

CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
# Genesys' documented user filters (shared/spec/genesys-scim.md): matching on anything else
# fails for every user, since matching needs `filter=<attr> eq "<value>"`.
GENESYS_FILTERABLE = frozenset({
    "id", "username", "email", "emails", "externalid", "employeenumber", "division",
    "manager", "active",
})
BOOLEAN_SOURCES = frozenset({"accountEnabled", "IsSoftDeleted", "showInAddressList",
                             "onPremisesSyncEnabled"})
GRAPH_GROUP_PROPERTIES = frozenset({
    "id", "objectId", "displayName", "description", "mail", "mailNickname", "mailEnabled",
    "securityEnabled", "groupTypes", "visibility", "classification", "createdDateTime",
    "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled",
    "securityIdentifier", "members",
})


# --- mapping test ---------------------------------------------------------------------------

def parse_attr_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` options into source attributes; a repeated name becomes a list
    (a multi-valued attribute). ``true``/``false`` for boolean properties become booleans."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--attr {pair!r}: expected NAME=VALUE")
        typed: Any = value
        if name in BOOLEAN_SOURCES and value.lower() in ("true", "false"):
            typed = value.lower() == "true"
        if name in out:
            previous = out[name]
            out[name] = [*previous, typed] if isinstance(previous, list) else [previous, typed]
        else:
            out[name] = typed
    return out


def load_user_file(path: str | Path) -> dict[str, Any]:
    """A Graph user object from a JSON file (as ``GET /users/{id}`` returns it)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--user {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"--user {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"--user {path}: expected a JSON object (one user)")
    return data


@dataclass(frozen=True)
class ExpressionResult:
    """The value of an expression for one set of source attributes."""

    value: Any
    ignored: bool
    redacted: bool

    def data(self, reveal: bool = False) -> dict[str, Any]:
        """``{"value": ...}`` (masked when redacted unless ``reveal``)."""
        value = self.value
        if self.redacted and not reveal and value is not None:
            value = "[Redact]"
        out: dict[str, Any] = {"value": value}
        if self.ignored:
            out["ignored"] = True
        return out


def try_expression(text: str, user: dict[str, Any]) -> ExpressionResult:
    """Evaluate ``text`` (an Entra expression, or a bare ``[attribute]``) against a user's
    source attributes. Entra and Graph names both resolve; an attribute given explicitly
    wins over a computed one (so ``IsSoftDeleted=True`` can be tested directly).

    Example::

        try_expression('Append([givenName], "!")', {"givenName": "Zoë"}).value  # 'Zoë!'
    """
    expression = expressions.parse(text)

    def lookup(name: str) -> Any:
        if name in user:
            value = user[name]
            return None if value == "" else value
        return read_source(user, name)

    value = expression.evaluate(lookup)
    ignored = value is expressions.IGNORE
    return ExpressionResult(None if ignored else value, ignored, expression.redacted)


def graph_select_for(text: str) -> list[str]:
    """The Graph ``$select`` an expression needs."""
    names = expressions.parse(text).attributes()
    props = {"id", "userPrincipalName", "accountEnabled"}
    for name in names:
        prop = graph_property(name)
        if prop is not None:
            props.add(prop.split(".", 1)[0])
    return sorted(props)


def graph_user_path(upn: str) -> str:
    """``/users/{upn}`` with the UPN escaped for a URL path."""
    return f"/users/{quote(upn, safe='@')}"


# --- mapping validate -----------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """One result of validation: ``error`` refuses the file, ``warning`` does not."""

    level: str
    where: str
    message: str

    def data(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"level": self.level, "where": self.where, "message": self.message}


def builtin_genesys_schemas() -> list[dict[str, Any]]:
    """The Genesys SCIM schemas as documented (shared/spec/genesys-scim.md), for offline
    validation."""
    path = Path(__file__).parent.parent / "data" / "genesys_schemas.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, list)
    return data


def _index(schemas: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for schema in schemas:
        attrs = schema.get("attributes") or []
        out[str(schema.get("id", "")).lower()] = {
            str(a.get("name", "")).lower(): a for a in attrs if isinstance(a, dict)}
    return out


# RFC 7643 §3.1: attributes every resource has, whether or not a server's /Schemas lists
# them with the resource's own attributes.
COMMON_ATTRIBUTES = {
    "id": {"name": "id", "mutability": "readOnly"},
    "externalid": {"name": "externalId", "mutability": "readWrite"},
    "meta": {"name": "meta", "mutability": "readOnly"},
}
# Genesys keeps these phone types in one field: mapping both never converges.
GENESYS_SHARED_PHONE_TYPES = frozenset({"microsoftteams", "other"})


def _check_target(mapping: AttributeMapping, path: TargetPath, core: str,
                  index: dict[str, dict[str, dict[str, Any]]], where: str) -> list[Finding]:
    schema_id = (path.schema or core).lower()
    attrs = index.get(schema_id)
    if attrs is None:
        return [Finding("error", where, f"the target has no schema {path.schema or core}")]
    attr = attrs.get(path.attr.lower())
    if attr is None and path.schema is None:
        attr = COMMON_ATTRIBUTES.get(path.attr.lower())
    if attr is None:
        return [Finding("error", where, f"the target's schema has no attribute {path.attr!r}")]
    out = []
    if attr.get("mutability") == "readOnly":
        out.append(Finding("warning", where, f"{path.attr!r} is read-only in the target: "
                           "the value is never written"))
    subs = {str(s.get("name", "")).lower(): s for s in attr.get("subAttributes") or []}
    for sub in (path.filter_attr, path.sub):
        if sub and subs and sub.lower() not in subs:
            out.append(Finding("error", where,
                               f"{path.attr!r} has no sub-attribute {sub!r}"))
    if path.filter_attr and path.filter_value is not None and subs:
        canonical = subs.get(path.filter_attr.lower(), {}).get("canonicalValues") or []
        if canonical and path.filter_value not in canonical:
            out.append(Finding("warning", where,
                               f"{path.filter_attr} {path.filter_value!r} is not one of the "
                               f"target's values ({', '.join(canonical)})"))
    return out


def _never_produces(mapping: AttributeMapping) -> str | None:
    if mapping.kind == "constant" and mapping.constant in (None, ""):
        return "the constant is empty: the attribute is never sent (nulls are never sent)"
    if mapping.expression is not None and not mapping.expression.attributes():
        try:
            value = mapping.expression.evaluate(lambda name: None)
        except GenesysProvError:
            return None
        if value is None or value is expressions.IGNORE or value == "":
            return "the expression reads no attribute and is always empty: never sent"
    return None


def validate_mappings(mappings: Mappings, schemas: Sequence[dict[str, Any]] | None,
                      flavor: str = "genesys") -> list[Finding]:
    """Check a loaded mappings file (its expressions already parsed) against the target's
    schemas (None: skip that check). Returns errors and warnings, sorted."""
    findings: list[Finding] = []
    index = _index(schemas) if schemas else None
    for section, core, items in (("user", CORE_USER, mappings.user),
                                 ("group", CORE_GROUP, mappings.group)):
        for m in items:
            where = f"{section} mapping {m.target!r}"
            if section == "group":
                for name in m.source_names():
                    if name not in GRAPH_GROUP_PROPERTIES and not name.startswith("extension_"):
                        findings.append(Finding("warning", where,
                                                f"unknown group source attribute {name!r}"))
            elif any(not known_source(n) for n in m.source_names()):  # pragma: no cover
                findings.append(Finding("error", where, "unknown source attribute"))
            if m.path.attr.lower() == "id":
                findings.append(Finding("error", where, "'id' is assigned by the target"))
            if index is not None:
                findings += _check_target(m, m.path, core, index, where)
            reason = _never_produces(m)
            if reason:
                findings.append(Finding("warning", where, reason))
            if section == "user" and m.match is not None and flavor == "genesys" and \
                    m.path.attr.lower() not in GENESYS_FILTERABLE:
                findings.append(Finding(
                    "warning", where,
                    f"matching on {m.target!r}, which Genesys cannot filter on: matching "
                    "would fail for every user (filterable: userName, emails, externalId, "
                    "employeeNumber, division, manager, active, id)"))
    if flavor == "genesys":
        findings += _shared_phone_field(mappings)
    order = {"error": 0, "warning": 1}
    return sorted(findings, key=lambda f: (order[f.level], f.where, f.message))


def _shared_phone_field(mappings: Mappings) -> list[Finding]:
    """Genesys stores ``microsoftteams`` and ``other`` phone numbers in one field: with
    both mapped, every run would overwrite one with the other."""
    both = [m for m in mappings.user
            if m.path.attr.lower() == "phonenumbers" and m.path.filter_value is not None
            and str(m.path.filter_value).lower() in GENESYS_SHARED_PHONE_TYPES]
    if len({str(m.path.filter_value).lower() for m in both}) < 2:
        return []
    return [Finding("error", f"user mapping {both[-1].target!r}",
                    "Genesys keeps microsoftteams and other phone numbers in one field; map "
                    "one or the other (with both, each run overwrites one with the other)")]


def schema_errors(mappings: Mappings, schemas: Sequence[dict[str, Any]] | None,
                  flavor: str) -> list[Finding]:
    """The errors of :func:`validate_mappings` alone: what makes a run fail for every
    user, checked before anything is written."""
    return [f for f in validate_mappings(mappings, schemas, flavor) if f.level == "error"]

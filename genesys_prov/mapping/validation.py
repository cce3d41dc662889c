"""``mapping validate``: check a mappings file against a target schema (the built-in
Genesys schema, or a target's ``/Schemas``) — unknown attributes, filters the target cannot
run, mappings that can never produce a value. Nothing here prints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genesys_prov.errors import GenesysProvError
from genesys_prov.mapping import expressions
from genesys_prov.mapping.mappings import (
    AttributeMapping,
    Mappings,
    known_source,
)
from genesys_prov.mapping.scimpath import CORE_USER, TargetPath

CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
# Genesys' documented user filters (shared/spec/genesys-scim.md): matching on anything else
# fails for every user, since matching needs `filter=<attr> eq "<value>"`.
GENESYS_FILTERABLE = frozenset({
    "id", "username", "email", "emails", "externalid", "employeenumber", "division",
    "manager", "active",
})
GRAPH_GROUP_PROPERTIES = frozenset({
    "id", "objectId", "displayName", "description", "mail", "mailNickname", "mailEnabled",
    "securityEnabled", "groupTypes", "visibility", "classification", "createdDateTime",
    "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled",
    "securityIdentifier", "members",
})


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
            findings += _check_mapping(m, section, core, index, flavor)
    if flavor == "genesys":
        findings += _shared_phone_field(mappings)
        findings += _genesys_external_ids(mappings)
    order = {"error": 0, "warning": 1}
    return sorted(findings, key=lambda f: (order[f.level], f.where, f.message))


def _check_mapping(m: AttributeMapping, section: str, core: str,
                   index: dict[str, dict[str, dict[str, Any]]] | None,
                   flavor: str) -> list[Finding]:
    """The findings for one mapping of the ``user`` or ``group`` section."""
    where = f"{section} mapping {m.target!r}"
    findings = _source_findings(m, section, where)
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
    return findings


def _source_findings(m: AttributeMapping, section: str, where: str) -> list[Finding]:
    """The findings about the source attributes one mapping reads."""
    findings: list[Finding] = []
    if section == "group":
        for name in m.source_names():
            if name not in GRAPH_GROUP_PROPERTIES and not name.startswith("extension_"):
                findings.append(Finding("warning", where,
                                        f"unknown group source attribute {name!r}"))
    elif any(not known_source(n) for n in m.source_names()):  # pragma: no cover
        findings.append(Finding("error", where, "unknown source attribute"))
    return findings


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


#: The authority of Genesys' own externalIds entry (immutable).
GENESYS_OWN_AUTHORITY = "x-pc:scimv2:v1"


def _genesys_external_ids(mappings: Mappings) -> list[Finding]:
    """The Genesys extension's ``externalIds`` is mapped one authority at a time: a mapping
    of the whole list, or of Genesys' own ``x-pc:scimv2:v1`` entry, would overwrite what
    Genesys keeps immutable."""
    out = []
    for m in mappings.user:
        if m.path.attr.lower() != "externalids" or m.path.schema is None:
            continue
        where = f"user mapping {m.target!r}"
        if m.path.filter_attr is None or m.path.filter_attr.lower() != "authority":
            out.append(Finding("error", where, "map externalIds one authority at a time, "
                               'e.g. externalIds[authority eq "microsoftteams"].value'))
        elif str(m.path.filter_value).lower().startswith(GENESYS_OWN_AUTHORITY):
            out.append(Finding("error", where, f"the {GENESYS_OWN_AUTHORITY} entry is "
                               "Genesys' own and immutable"))
    return out


def schema_errors(mappings: Mappings, schemas: Sequence[dict[str, Any]] | None,
                  flavor: str) -> list[Finding]:
    """The errors of :func:`validate_mappings` alone: what makes a run fail for every
    user, checked before anything is written."""
    return [f for f in validate_mappings(mappings, schemas, flavor) if f.level == "error"]

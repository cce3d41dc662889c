"""``mapping import``: Entra's provisioning schema (a ``synchronizationSchema``, as Graph
returns it and the Entra portal downloads it) turned into ``mappings.yaml`` text.

Pure: the schema comes in as a dict, the result goes out as a value — the YAML text, every
converted entry with where it came from (rule, object mapping, target attribute), every
element that could not be converted with its reason and the YAML it would have been, and the
findings of ``mapping validate --offline`` on the result. Nothing is dropped silently: an
element that cannot be converted exactly is written as a ``# NOT CONVERTED (reason): ...``
comment where it would have been.

Only the rule whose source is Entra (``Azure Active Directory`` / ``Microsoft Entra ID``) and
whose target is the app (``customappsso`` for gallery SCIM apps) is converted; of it, the
``User`` and ``Group`` object mappings (attribute mappings and scoping filters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from genesys_prov.errors import ExpressionError, MappingError
from genesys_prov.mapping import expressions, scimpath, validation
from genesys_prov.mapping.filters import Clause
from genesys_prov.mapping.mappings import AttributeMapping, Mappings, known_source
from genesys_prov.mapping.mappings_file import parse_mappings

ENTRA_DIRECTORIES = frozenset({"azure active directory", "microsoft entra id",
                               "azureactivedirectory", "microsoftentraid"})
GALLERY_SCIM_DIRECTORY = "customappsso"
ON_CREATE_FLOW = "ObjectAddOnly"
ALWAYS_FLOW = "Always"
# Entra's flow types this tool has no equivalent for, and what they mean.
UNSUPPORTED_FLOWS = {
    "MultiValueAddOnly": "flowType MultiValueAddOnly (only adds values to a multi-valued "
                         "attribute, never replaces them) has no equivalent",
    "ValueAddOnly": "flowType ValueAddOnly (sets the value only while the target has none) "
                    "has no equivalent",
    "AttributeAddOnly": "flowType AttributeAddOnly (sets the attribute only while the target "
                        "has none) has no equivalent",
}
SECTIONS = {"user": "user", "group": "group"}
HELP_LINES = (
    "# Each entry: target (a SCIM path) and exactly one of source / constant / expression;",
    "# optional default (used on create when the value is null), apply (always | on_create),",
    "# and match (matching precedence: 1 is tried first).",
)


@dataclass(frozen=True)
class Origin:
    """Where an element came from in Entra's schema."""

    rule: str
    object_mapping: str
    target: str

    def data(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"rule": self.rule, "object_mapping": self.object_mapping,
                "target": self.target}


@dataclass(frozen=True)
class Converted:
    """One element converted: its section (``user``, ``group``, ``user_scope``,
    ``group_scope``), its YAML lines (one for a mapping entry), where it came from, and a
    note when the conversion changed its form."""

    section: str
    lines: tuple[str, ...]
    origin: Origin
    note: str = ""

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"section": self.section, "yaml": "\n".join(self.lines),
                "origin": self.origin.data(), "note": self.note}


@dataclass(frozen=True)
class NotConverted:
    """One element that could not be converted exactly: why, and the YAML lines it would
    have been (written as comments where it would have been)."""

    section: str
    reason: str
    lines: tuple[str, ...]
    origin: Origin

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"section": self.section, "reason": self.reason, "yaml": "\n".join(self.lines),
                "origin": self.origin.data()}


@dataclass(frozen=True)
class ImportResult:
    """What an import produced: the mappings file text, what was converted, what was not,
    and what ``mapping validate --offline`` says about the text."""

    text: str
    source: str
    rule: str
    converted: tuple[Converted, ...]
    not_converted: tuple[NotConverted, ...]
    findings: tuple[validation.Finding, ...]

    @property
    def ok(self) -> bool:
        """True when the text loads and validation found no error."""
        return not any(f.level == "error" for f in self.findings)

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"source": self.source, "rule": self.rule, "ok": self.ok,
                "converted": [c.data() for c in self.converted],
                "not_converted": [n.data() for n in self.not_converted],
                "findings": [f.data() for f in self.findings], "mappings": self.text}


class _Skip(Exception):
    """An element that cannot be converted (internal; becomes a :class:`NotConverted`)."""

    def __init__(self, reason: str, lines: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.lines = lines


@dataclass
class _Section:
    """The items of one section, in schema order."""

    items: list[Converted | NotConverted] = field(default_factory=list)
    origin: str = ""

    @property
    def converted(self) -> list[Converted]:
        return [i for i in self.items if isinstance(i, Converted)]


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MappingError(f"{where}: expected a JSON object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MappingError(f"{where}: expected a JSON list")
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def is_scim_rule(rule: Any) -> bool:
    """True for a synchronization rule from Entra to an application (not the reverse, and
    not Entra to Entra)."""
    if not isinstance(rule, dict):
        return False
    source = _text(rule.get("sourceDirectoryName")).strip().lower()
    target = _text(rule.get("targetDirectoryName")).strip().lower()
    return source in ENTRA_DIRECTORIES and bool(target) and target not in ENTRA_DIRECTORIES


def scim_rule(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The rule whose target is the SCIM app: Entra → ``customappsso`` first, else the first
    rule from Entra to another directory; None when there is none."""
    rules = [r for r in _list(schema.get("synchronizationRules"), "synchronizationRules")
             if is_scim_rule(r)]
    for rule in rules:
        if _text(rule.get("targetDirectoryName")).strip().lower() == GALLERY_SCIM_DIRECTORY:
            return rule  # type: ignore[no-any-return]
    return rules[0] if rules else None


class _Dumper(yaml.SafeDumper):
    """YAML as people write it: a string holding ``'`` (and no ``"``) in double quotes
    rather than with doubled single quotes."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if "'" in value and '"' not in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _flow(value: Any) -> str:
    """One value as a single line of YAML flow style."""
    text = yaml.dump(value, Dumper=_Dumper, default_flow_style=True, sort_keys=False,
                     allow_unicode=True, width=1_000_000)
    return text.strip().removesuffix("...").strip()


def _quote(text: str) -> str:
    """A string constant in Entra's expression language."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rebuild_expression(source: dict[str, Any]) -> str:
    """An expression's text from Entra's parsed form (``name`` + ordered ``parameters``):
    an Attribute is ``[name]``, a Constant a quoted string, a Function ``Name(arg, ...)``
    with a missing parameter value as an empty argument. Anything else raises
    :class:`MappingError`."""
    kind = source.get("type")
    name = _text(source.get("name"))
    if kind == "Attribute":
        return f"[{name}]"
    if kind == "Constant":
        return _quote(name)
    if kind != "Function" or not name:
        raise MappingError(f"cannot rebuild an expression from a source of type {kind!r}")
    args = []
    for param in _list(source.get("parameters"), f"{name}: parameters"):
        value = param.get("value") if isinstance(param, dict) else None
        args.append(rebuild_expression(value) if isinstance(value, dict) else "")
    return f"{name}({', '.join(args)})"


def _expression_text(source: dict[str, Any]) -> tuple[str, str]:
    """The expression of a Function source and a note when it was rebuilt."""
    given = _text(source.get("expression")).strip()
    if given:
        return given, ""
    try:
        return rebuild_expression(source), "expression rebuilt from the function's parameters"
    except MappingError as exc:
        raise _Skip(str(exc)) from None


def _check_sources(names: Sequence[str], section: str) -> None:
    for name in names:
        known = known_source(name) if section == "user" else \
            name in validation.GRAPH_GROUP_PROPERTIES or name.startswith("extension_")
        if not known:
            raise _Skip(f"unknown source attribute {name!r}")


def _parse_expression(text: str) -> expressions.Expression:
    try:
        return expressions.parse(text)
    except ExpressionError as exc:
        reason = exc.reason.replace("\n", " ")
        if reason.startswith("function") and "is not supported" in reason:
            raise _Skip(reason) from None
        if reason.startswith("unknown function"):
            raise _Skip(f"{reason}: not in genesys-prov's expression language") from None
        raise _Skip(f"the expression does not parse: {reason}") from None


def _source_entry(source: Any, section: str) -> tuple[dict[str, Any], str]:
    """``source`` / ``constant`` / ``expression`` for one attribute mapping's source, and a
    note when the form changed."""
    if not isinstance(source, dict):
        raise _Skip("the mapping has no source (mapping type None)")
    kind = source.get("type")
    if kind == "Attribute":
        name = _text(source.get("name"))
        _check_sources([name], section)
        return {"source": name}, ""
    if kind == "Constant":
        return {"constant": _text(source.get("name"))}, ""
    if kind == "Function":
        text, note = _expression_text(source)
        parsed = _parse_expression(text)
        _check_sources(sorted(parsed.attributes()), section)
        return {"expression": text}, note
    raise _Skip(f"unknown source type {kind!r}")


def _entry(mapping: dict[str, Any], section: str) -> tuple[dict[str, Any], str]:
    """The ``mappings.yaml`` entry of one Entra attribute mapping (and a note), or _Skip
    carrying the line it would have been."""
    target = _text(mapping.get("targetAttributeName"))
    entry: dict[str, Any] = {"target": target}
    source = mapping.get("source")
    try:
        if source is None and mapping.get("defaultValue") not in (None, ""):
            entry.update(constant=mapping["defaultValue"], apply="on_create")
            note = "Entra mapping type None with a default: the default is sent on create"
        else:
            produced, note = _source_entry(source, section)
            entry.update(produced)
    except _Skip as skip:
        entry.update(_raw_source(source))
        raise _Skip(skip.reason, (f"- {_flow(_finish(entry, mapping))}",)) from None
    entry = _finish(entry, mapping)
    line = f"- {_flow(entry)}"
    flow = mapping.get("flowType", ALWAYS_FLOW)
    if flow in UNSUPPORTED_FLOWS:
        raise _Skip(UNSUPPORTED_FLOWS[flow], (line,))
    if flow not in (ALWAYS_FLOW, ON_CREATE_FLOW, None):
        raise _Skip(f"unknown flowType {flow!r}", (line,))
    try:
        _check_entry(entry, section)
    except _Skip as skip:
        raise _Skip(skip.reason, (line,)) from None
    return entry, note


def _raw_source(source: Any) -> dict[str, Any]:
    """What a source that cannot be converted would have been, for the comment."""
    if not isinstance(source, dict):
        return {}
    kind = source.get("type")
    if kind == "Attribute":
        return {"source": _text(source.get("name"))}
    if kind == "Constant":
        return {"constant": _text(source.get("name"))}
    text = _text(source.get("expression"))
    if not text:
        try:
            text = rebuild_expression(source)
        except MappingError:
            text = _text(source.get("name"))
    return {"expression": text}


def _finish(entry: dict[str, Any], mapping: dict[str, Any]) -> dict[str, Any]:
    """Add ``default``, ``apply`` and ``match`` to an entry."""
    out = dict(entry)
    default = mapping.get("defaultValue")
    if default not in (None, "") and "constant" not in out:
        out["default"] = default
    if mapping.get("flowType") == ON_CREATE_FLOW:
        out["apply"] = "on_create"
    priority = mapping.get("matchingPriority")
    if isinstance(priority, int) and not isinstance(priority, bool) and priority > 0:
        out["match"] = priority
    return out


def _check_entry(entry: dict[str, Any], section: str) -> None:
    """Refuse an entry the target cannot take: a bad path, a value of the wrong type, an
    attribute the built-in Genesys schema lacks."""
    try:
        path = scimpath.parse_path(entry["target"])
    except MappingError as exc:
        raise _Skip(str(exc)) from None
    for key in ("constant", "default"):
        if key in entry:
            try:
                scimpath.coerce(path, entry[key])
            except ValueError as exc:
                raise _Skip(f"{key}: {exc}") from None
    expression = expressions.parse(entry["expression"]) if "expression" in entry else None
    if expression is not None and expression.selects_unique and \
            (entry.get("apply") != "on_create" or "match" in entry):
        raise _Skip("SelectUniqueValue needs 'Only during object creation' and cannot be a "
                    "matching attribute")
    mapping = AttributeMapping(target=entry["target"], path=path, source=entry.get("source"),
                               constant=entry.get("constant"), expression=expression,
                               default=entry.get("default"),
                               apply=entry.get("apply", "always"), match=entry.get("match"))
    alone = Mappings(user=(mapping,)) if section == "user" else \
        Mappings(user=(), group=(mapping,))
    errors = [f for f in validation.validate_mappings(alone, validation.builtin_genesys_schemas())
              if f.level == "error"]
    if errors:
        raise _Skip(f"the Genesys schema: {errors[0].message}")


def _clause(raw: Any, where: str) -> dict[str, Any]:
    """One scoping clause as a ``user_scope`` clause mapping."""
    raw = _dict(raw, where)
    clause: dict[str, Any] = {"attribute": _text(raw.get("sourceOperandName")),
                              "operator": _text(raw.get("operatorName"))}
    operand = raw.get("targetOperand")
    values = _list(operand.get("values"), f"{where}.targetOperand.values") \
        if isinstance(operand, dict) else []
    if len(values) > 1:
        raise _Skip(f"clause {_flow(clause)} has several values ({len(values)})")
    if values:
        clause["value"] = values[0]
    try:
        Clause(clause["attribute"], clause["operator"], clause.get("value"))
    except MappingError as exc:
        try:
            Clause(clause["attribute"], clause["operator"])
        except MappingError:
            raise _Skip(f"clause {_flow(clause)}: {exc}") from None
        clause.pop("value")  # an IS ... operator with a value Entra keeps: not needed
    return clause


def _scope_lines(scope: dict[str, Any], section: str, where: str) -> tuple[str, ...]:
    """The YAML lines of a scoping filter (``- - {clause}`` ...), or _Skip."""
    for other in ("inputFilterGroups", "categoryFilterGroups"):
        if _list(scope.get(other), f"{where}.{other}"):
            raise _Skip(f"{other} has no equivalent")
    lines: list[str] = []
    for g, group in enumerate(_list(scope.get("groups"), f"{where}.groups")):
        clauses = _list(_dict(group, f"{where}.groups[{g}]").get("clauses"),
                        f"{where}.groups[{g}].clauses")
        for c, raw in enumerate(clauses):
            clause = _clause(raw, f"{where}.groups[{g}].clauses[{c}]")
            if section == "user" and not known_source(clause["attribute"]):
                raise _Skip(f"unknown source attribute {clause['attribute']!r}")
            lines.append(("- - " if c == 0 else "  - ") + _flow(clause))
    return tuple(lines)


def _scope_item(mapping: dict[str, Any], section: str, origin: Origin,
                where: str) -> Converted | NotConverted | None:
    scope = mapping.get("scope")
    if not scope:
        return None
    scope = _dict(scope, f"{where}.scope")
    at = Origin(origin.rule, origin.object_mapping, "scope")
    try:
        lines = _scope_lines(scope, section, f"{where}.scope")
    except _Skip as skip:
        lines = (f"{section}_scope:", *(f"  {line}" for line in _raw_scope(scope)))
        reason = f"{skip.reason}; without this filter the scope is wider than Entra's"
        return NotConverted(f"{section}_scope", reason, lines, at)
    return Converted(f"{section}_scope", lines, at) if lines else None


def _raw_scope(scope: dict[str, Any]) -> tuple[str, ...]:
    """The scope as it would have been, for the comment (no checks)."""
    lines = []
    for group in scope.get("groups") or []:
        clauses = group.get("clauses") if isinstance(group, dict) else None
        for c, raw in enumerate(clauses if isinstance(clauses, list) else []):
            raw = raw if isinstance(raw, dict) else {}
            operand = raw.get("targetOperand")
            values = operand.get("values") if isinstance(operand, dict) else None
            clause = {"attribute": raw.get("sourceOperandName"),
                      "operator": raw.get("operatorName")}
            if values:
                clause["value"] = values[0] if len(values) == 1 else values
            lines.append(("- - " if c == 0 else "  - ") + _flow(clause))
    return tuple(lines) or (_flow(scope),)


def _object_items(mapping: dict[str, Any], section: str, origin: Origin,
                  where: str) -> list[Converted | NotConverted]:
    """Every attribute mapping of one object mapping, converted or not."""
    items: list[Converted | NotConverted] = []
    for i, raw in enumerate(_list(mapping.get("attributeMappings"),
                                  f"{where}.attributeMappings")):
        raw = _dict(raw, f"{where}.attributeMappings[{i}]")
        at = Origin(origin.rule, origin.object_mapping, _text(raw.get("targetAttributeName")))
        try:
            entry, note = _entry(raw, section)
        except _Skip as skip:
            items.append(NotConverted(section, skip.reason, skip.lines, at))
            continue
        items.append(Converted(section, (f"- {_flow(entry)}",), at, note))
    return items


def _object_section(mapping: dict[str, Any]) -> str | None:
    """``user`` or ``group`` for Entra's User → User and Group → Group object mappings."""
    source = _text(mapping.get("sourceObjectName")).lower()
    target = _text(mapping.get("targetObjectName")).lower().rsplit(":", 1)[-1]
    return SECTIONS.get(source) if source == target else None


@dataclass
class _Document:
    """The sections being built, and elements that belong to no section."""

    sections: dict[str, _Section] = field(default_factory=lambda: {
        "user": _Section(), "user_scope": _Section(), "group": _Section(),
        "group_scope": _Section()})
    loose: list[NotConverted] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def add_object(self, mapping: dict[str, Any], rule: str, where: str) -> None:
        """Convert one object mapping into its sections (or a loose NOT CONVERTED)."""
        name = _text(mapping.get("name")) or \
            f"{mapping.get('sourceObjectName')} → {mapping.get('targetObjectName')}"
        origin = Origin(rule, name, "")
        section = _object_section(mapping)
        items = _object_items(mapping, section or "user", origin, where)
        scope = _scope_item(mapping, section or "user", origin, where)
        why = None
        if section is None:
            why = (f"object mapping {name!r} ({mapping.get('sourceObjectName')} → "
                   f"{mapping.get('targetObjectName')}) is not users or groups")
        elif section in self.seen:
            why = f"a second {section} object mapping ({name!r})"
        elif mapping.get("enabled") is False:
            why = f"object mapping {name!r} is disabled in Entra: Entra provisions no {section}s"
        if why is not None:
            self.loose.append(NotConverted(section or "", why,
                                           _whole(section or "user", items, scope), origin))
            return
        assert section is not None
        self.seen.add(section)
        self.sections[section].items += items
        self.sections[section].origin = f"Entra: rule {rule!r}, object mapping {name!r}"
        if scope is not None:
            self.sections[f"{section}_scope"].items.append(scope)
            self.sections[f"{section}_scope"].origin = f"Entra: the scoping filter of {name!r}"


def _whole(section: str, items: Sequence[Converted | NotConverted],
           scope: Converted | NotConverted | None) -> tuple[str, ...]:
    """All the lines an object mapping would have been, with its section headings."""
    lines = [f"{section}:", *(f"  {line}" for item in items for line in item.lines)]
    if isinstance(scope, NotConverted):
        lines += scope.lines
    elif scope is not None:
        lines += [f"{section}_scope:", *(f"  {line}" for line in scope.lines)]
    return tuple(lines)


def _comment(item: NotConverted, indent: str) -> list[str]:
    first, *rest = item.lines or ("",)
    head = f"{indent}# NOT CONVERTED ({item.reason}): {first}".rstrip()
    return [head, *(f"{indent}#   {line}" for line in rest)]


def _render_section(name: str, section: _Section) -> list[str]:
    if not section.items:
        return []
    if not section.converted:
        heading = [f"{name}: []"] if name == "user" else []
        return heading + [line for item in section.items
                          if isinstance(item, NotConverted) for line in _comment(item, "")]
    lines = [f"{name}:"] + ([f"  # {section.origin}"] if section.origin else [])
    for item in section.items:
        if isinstance(item, NotConverted):
            lines += _comment(item, "  ")
            continue
        if item.note:
            lines.append(f"  # {item.note}")
        lines += [f"  {line}" for line in item.lines]
    return lines


def _header(schema: dict[str, Any], rule: dict[str, Any], source: str, generated: str,
            doc: _Document) -> list[str]:
    converted = sum(len(s.converted) for s in doc.sections.values())
    missing = sum(1 for s in doc.sections.values() for i in s.items
                  if isinstance(i, NotConverted)) + len(doc.loose)
    version = _text(schema.get("version")) or "unknown"
    job = _text(schema.get("id")) or "unknown"
    return [
        f"# Imported from Entra's provisioning job by `genesys-prov mapping import` on "
        f"{generated}.",
        f"# Source: {source}; job {job}; schema version {version}.",
        f"# Rule: {_text(rule.get('name')) or _text(rule.get('id'))} "
        f"({rule.get('sourceDirectoryName')} → {rule.get('targetDirectoryName')}).",
        f"# {converted} element(s) converted, {missing} NOT CONVERTED"
        + (" (see the comments below)." if missing else "."),
        *HELP_LINES,
    ]


def convert_schema(schema: Any, source: str, generated: str) -> ImportResult:
    """Convert a ``synchronizationSchema`` into ``mappings.yaml`` text, listing what could
    not be converted and what ``mapping validate --offline`` says about the result.
    ``source`` says where the schema came from (a file, or a service principal and job) and
    ``generated`` is the date written in the header. A schema of the wrong shape raises
    :class:`MappingError`.

    Example::

        result = convert_schema(json.load(open("schema.json")), "file schema.json",
                                "2026-12-04")
        print(result.text)
    """
    schema = _dict(schema, source)
    if not isinstance(schema.get("synchronizationRules"), list):
        raise MappingError(f"{source}: not a synchronizationSchema (it has no "
                           "'synchronizationRules' list)")
    rule = scim_rule(schema)
    if rule is None:
        raise MappingError(f"{source}: no synchronization rule from Microsoft Entra ID to an "
                           "application (sourceDirectoryName 'Azure Active Directory')")
    index = schema["synchronizationRules"].index(rule)
    where = f"{source}: synchronizationRules[{index}]"
    name = _text(rule.get("name")) or _text(rule.get("id"))
    doc = _Document()
    for i, raw in enumerate(_list(rule.get("objectMappings"), f"{where}.objectMappings")):
        doc.add_object(_dict(raw, f"{where}.objectMappings[{i}]"), name,
                       f"{where}.objectMappings[{i}]")
    lines = _header(schema, rule, source, generated, doc)
    for section_name, section in doc.sections.items():
        lines += _render_section(section_name, section)
    for item in doc.loose:
        lines += _comment(item, "")
    text = "\n".join(lines) + "\n"
    return ImportResult(
        text=text, source=source, rule=name,
        converted=tuple(i for s in doc.sections.values() for i in s.converted),
        not_converted=tuple([i for s in doc.sections.values() for i in s.items
                             if isinstance(i, NotConverted)] + doc.loose),
        findings=tuple(check_text(text)))


def check_text(text: str) -> list[validation.Finding]:
    """What ``mapping validate --offline`` says about mappings text: the one error that
    stops it loading, or its findings against the built-in Genesys schema."""
    try:
        mappings = parse_mappings(text, where="imported mappings")
    except MappingError as exc:
        return [validation.Finding("error", "imported mappings",
                                   str(exc).removeprefix("imported mappings: "))]
    return validation.validate_mappings(mappings, validation.builtin_genesys_schemas())

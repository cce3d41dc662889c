"""SCIM attribute paths: the PATCH ``path`` grammar (RFC 7644 §3.5.2, figure 1), also used
for ``attributes=`` entries, resolved against a resource type's schemas."""

from __future__ import annotations

from dataclasses import dataclass

from genesys_prov.sandbox.scim.errors import bad_request
from genesys_prov.sandbox.scim.filters import Filter, parse_filter
from genesys_prov.sandbox.scim.schemas import (
    IGNORED_CORE_USER_ATTRIBUTES,
    USER_SCHEMA,
    Attr,
    Schema,
)


@dataclass(frozen=True)
class Path:
    """A resolved PATCH path (or ``attributes=`` entry).

    ``schema`` is the schema the attribute belongs to; ``attr`` is None when the path names a
    whole extension object; ``ignored`` marks RFC core attributes Genesys does not implement.
    """

    schema: Schema
    attr: Attr | None
    filter: Filter | None = None
    sub: Attr | None = None
    ignored: bool = False


def split_urn(text: str, schemas: tuple[Schema, ...]) -> tuple[Schema | None, str]:
    """Split a URN-qualified attribute path into (schema, rest); (None, text) when unqualified.

    The longest matching schema URN wins; matching is case-insensitive.
    """
    lowered = text.lower()
    best: Schema | None = None
    for schema in schemas:
        urn = schema.id.lower()
        if (lowered == urn or lowered.startswith(urn + ":")) and (
            best is None or len(urn) > len(best.id)
        ):
            best = schema
    if best is None:
        return None, text
    return best, text[len(best.id) + 1 :]


def _split_value_path(text: str) -> tuple[str, str | None, str]:
    """``attr[filter].sub`` → (attr, filter text or None, '.sub' remainder)."""
    bracket = text.find("[")
    if bracket == -1:
        return text, None, ""
    depth = 0
    in_string = False
    escaped = False
    for index in range(bracket, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return text[:bracket], text[bracket + 1 : index], text[index + 1 :]
    raise bad_request(f"Unbalanced '[' in path {text!r}", "invalidPath")


def parse_path(text: str, core: Schema, extensions: tuple[Schema, ...]) -> Path:
    """Resolve a PATCH path against a resource type's core schema and extensions.

    Raises :class:`ScimFault` 400 ``invalidPath`` for unknown attributes or bad syntax and
    400 ``invalidFilter`` for a bad value filter.
    """
    text = text.strip()
    if not text:
        raise bad_request("Empty path", "invalidPath")
    schema, rest = split_urn(text, (core, *extensions))
    if schema is None:
        schema = core
    elif not rest:
        if schema is core:
            raise bad_request(f"Path {text!r} names no attribute", "invalidPath")
        return Path(schema, None)
    name, filter_text, remainder = _split_value_path(rest)
    sub_name: str | None = None
    if filter_text is None and "." in name:
        name, sub_name = name.split(".", 1)
    elif remainder:
        if not remainder.startswith(".") or len(remainder) < 2:
            raise bad_request(f"Unexpected {remainder!r} after ']' in path {text!r}", "invalidPath")
        sub_name = remainder[1:]
    attr = schema.attr(name)
    if attr is None:
        if schema is core and core is USER_SCHEMA and name.lower() in IGNORED_CORE_USER_ATTRIBUTES:
            return Path(schema, None, ignored=True)
        raise bad_request(f"Unknown attribute {name!r} in path {text!r}", "invalidPath")
    parsed_filter = parse_filter(filter_text) if filter_text is not None else None
    if parsed_filter is not None and not attr.multi:
        raise bad_request(f"A value filter needs a multi-valued attribute: {text!r}", "invalidPath")
    sub: Attr | None = None
    if sub_name is not None:
        sub = attr.sub_attr(sub_name)
        if sub is None:
            raise bad_request(f"Unknown sub-attribute {sub_name!r} in path {text!r}", "invalidPath")
    return Path(schema, attr, parsed_filter, sub)

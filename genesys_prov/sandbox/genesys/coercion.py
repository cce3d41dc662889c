"""Value coercion: checking and converting client-written values against a schema
attribute (booleans may arrive as ``"True"``/``"False"``), and putting attributes and
sub-attributes in schema order."""

from __future__ import annotations

from typing import Any

from genesys_prov.sandbox.scim import (
    Attr,
    Schema,
)
from genesys_prov.sandbox.scim.errors import invalid_syntax, invalid_value


def coerce_scalar(attr: Attr, value: Any, where: str) -> Any:
    """Check/convert one non-complex value against ``attr``'s type."""
    if attr.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise invalid_value(f"'{where}' must be a boolean, got {value!r}")
    if attr.type in ("decimal", "integer"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise invalid_value(f"'{where}' must be a number, got {value!r}")
    if not isinstance(value, str):
        raise invalid_value(f"'{where}' must be a string, got {value!r}")
    return value


def coerce_complex(attr: Attr, value: Any, where: str) -> dict[str, Any]:
    """Check/convert one complex value; read-only sub-attributes are dropped."""
    if isinstance(value, str) and attr.sub_attr("value") is not None and not attr.multi:
        value = {"value": value}  # a bare id for e.g. manager (Entra has sent one)
    if not isinstance(value, dict):
        raise invalid_value(f"'{where}' must be an object, got {value!r}")
    result: dict[str, Any] = {}
    for key, sub_value in value.items():
        sub = attr.sub_attr(key)
        if sub is None:
            if key.lower() == "display" or key.lower() == "displayname":
                continue  # a common read-only decoration clients echo back
            raise invalid_syntax(f"Unknown sub-attribute '{where}.{key}'")
        if sub.mutability == "readOnly" or sub_value is None:
            continue
        result[sub.name] = coerce_scalar(sub, sub_value, f"{where}.{sub.name}")
    order = [s.name for s in attr.sub]
    return {name: result[name] for name in order if name in result}


def coerce(attr: Attr, value: Any, where: str) -> Any:
    """Check/convert a whole attribute value (list for multi-valued attributes)."""
    if attr.multi:
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:
            if item is None:
                continue
            if attr.type == "complex":
                out.append(coerce_complex(attr, item, where))
            else:
                out.append(coerce_scalar(attr, item, where))
        return out
    if attr.type == "complex":
        return coerce_complex(attr, value, where)
    return coerce_scalar(attr, value, where)


def schema_ordered(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its attributes in the schema's order."""
    return {a.name: data[a.name] for a in schema.attributes if a.name in data}


def sub_ordered(attr: Attr, item: dict[str, Any]) -> dict[str, Any]:
    """A complex value with its sub-attributes in the schema's order."""
    return {s.name: item[s.name] for s in attr.sub if s.name in item}

"""Projection: a resource trimmed to the ``attributes`` a request asks for, or without
its ``excludedAttributes`` (RFC 7644 §3.4.2.5)."""

from __future__ import annotations

from typing import Any

from genesys_prov.sandbox.scim import (
    CORE_GROUP,
    CORE_USER,
    Path,
    Schema,
    ScimFault,
    parse_path,
)


def parse_attribute_list(text: str | None, core: Schema, extensions: tuple[Schema, ...]) -> (
    list[Path] | None
):
    """``attributes=a,b.c,urn:…:d`` → resolved paths; unknown names are ignored (RFC 7644)."""
    if text is None or not text.strip():
        return None
    paths = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            path = parse_path(part, core, extensions)
        except ScimFault:
            continue
        if not path.ignored:
            paths.append(path)
    return paths


def include(resource: dict[str, Any], paths: list[Path], always: tuple[str, ...]) -> (
    dict[str, Any]
):
    """``resource`` trimmed to ``paths`` plus the always-returned attributes."""
    out: dict[str, Any] = {key: resource[key] for key in always if key in resource}
    for path in paths:
        is_core = path.schema.id in (CORE_USER, CORE_GROUP)
        source = resource if is_core else resource.get(path.schema.id)
        if not isinstance(source, dict):
            continue
        if path.attr is None:
            out[path.schema.id] = source
            continue
        target = out if is_core else out.setdefault(path.schema.id, {})
        value = source.get(path.attr.name)
        if value is None:
            continue
        if path.sub is None:
            target[path.attr.name] = value
        elif isinstance(value, list):
            previous = target.get(path.attr.name)
            slices = [
                {path.sub.name: item[path.sub.name]} if path.sub.name in item else {}
                for item in value
            ]
            if isinstance(previous, list) and len(previous) == len(slices):
                slices = [{**old, **new} for old, new in zip(previous, slices, strict=True)]
            target[path.attr.name] = slices
        elif isinstance(value, dict) and path.sub.name in value:
            target.setdefault(path.attr.name, {})[path.sub.name] = value[path.sub.name]
    return {key: out[key] for key in resource if key in out}


def exclude(resource: dict[str, Any], paths: list[Path], always: tuple[str, ...]) -> (
    dict[str, Any]
):
    """``resource`` without ``paths`` (always-returned attributes stay)."""
    out = dict(resource)
    for path in paths:
        is_core = path.schema.id in (CORE_USER, CORE_GROUP)
        if path.attr is None:
            out.pop(path.schema.id, None)
            continue
        if is_core and path.attr.name in always:
            continue
        if is_core:
            container = out
        else:
            found = out.get(path.schema.id)
            if not isinstance(found, dict):
                continue
            container = out[path.schema.id] = dict(found)
        if path.sub is None:
            container.pop(path.attr.name, None)
            continue
        value = container.get(path.attr.name)
        sub_name = path.sub.name
        if isinstance(value, list):
            container[path.attr.name] = [
                {k: v for k, v in item.items() if k != sub_name} for item in value
            ]
        elif isinstance(value, dict):
            container[path.attr.name] = {k: v for k, v in value.items() if k != sub_name}
    return out

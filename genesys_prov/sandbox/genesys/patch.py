"""The PATCH engine: RFC 7644 §3.5.2 operations applied to a resource dict in its stored
form (paths, value filters, sub-attributes, ``add`` merging of multi-valued attributes),
and reading the ``Operations`` of a PatchOp body."""

from __future__ import annotations

from typing import Any

from genesys_prov.sandbox.genesys.coercion import (
    coerce,
    coerce_complex,
    coerce_scalar,
)
from genesys_prov.sandbox.genesys.resource_types import (
    USER_EXTENSIONS,
)
from genesys_prov.sandbox.scim import (
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    USER_SCHEMA,
    Attr,
    Path,
    Schema,
    bad_request,
    equalities,
    matches,
    parse_path,
    split_urn,
)
from genesys_prov.sandbox.scim.errors import invalid_syntax, invalid_value


def lookup_key(mapping: dict[str, Any], name: str) -> str | None:
    """The key of ``mapping`` equal to ``name`` ignoring case, or None."""
    if name in mapping:
        return name
    lowered = name.lower()
    for key in mapping:
        if key.lower() == lowered:
            return key
    return None


def item_key(attr: Attr, item: dict[str, Any]) -> Any:
    """What makes two elements of a multi-valued attribute 'the same' for ``add`` merging."""
    if attr.name in ("phoneNumbers", "emails"):
        kind = item.get("type")
        return ("type", kind.lower()) if isinstance(kind, str) else None
    if attr.name in ("routingSkills", "routingLanguages"):
        return ("name", item.get("name"))
    if attr.name == "externalIds":
        return ("ext", item.get("authority"), item.get("value"))
    if "value" in item:
        return ("value", item["value"])
    return None


def merge_multi(attr: Attr, existing: list[Any], new: list[Any]) -> list[Any]:
    """``add`` to a multi-valued attribute: same-key elements are replaced, others appended."""
    result = list(existing)
    for item in new:
        key = item_key(attr, item) if isinstance(item, dict) else ("scalar", item)
        if key is not None:
            for index, current in enumerate(result):
                current_key = (
                    item_key(attr, current) if isinstance(current, dict) else ("scalar", current)
                )
                if current_key == key:
                    result[index] = {**current, **item} if isinstance(item, dict) else item
                    break
            else:
                result.append(item)
        else:
            result.append(item)
    return result


class Patcher:
    """Applies RFC 7644 §3.5.2 operations to a resource dict in its stored form."""

    def __init__(self, core: Schema, extensions: tuple[Schema, ...]) -> None:
        """Patch against a resource type's schemas."""
        self.core = core
        self.extensions = extensions

    def apply(self, resource: dict[str, Any], operation: Any) -> None:
        """Apply one operation (``{"op", "path"?, "value"?}``) to ``resource`` in place."""
        if not isinstance(operation, dict):
            raise invalid_syntax(f"Each operation must be an object, got {operation!r}")
        fields = {key.lower(): value for key, value in operation.items()}
        op = fields.get("op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise invalid_syntax(f"Unsupported PATCH op {op!r}; use add, replace or remove")
        op = op.lower()
        path = fields.get("path")
        value = fields.get("value")
        if path is None or path == "":
            if op == "remove":
                raise bad_request("A remove operation needs a path", "noTarget")
            if not isinstance(value, dict):
                raise invalid_syntax(f"An {op} without a path needs an object value")
            self._apply_map(resource, op, value)
            return
        if not isinstance(path, str):
            raise invalid_syntax(f"path must be a string, got {path!r}")
        self._apply_path(resource, op, path, value, explicit=True)

    def _apply_map(self, resource: dict[str, Any], op: str, value: dict[str, Any]) -> None:
        """Apply an operation without a path: each key of ``value`` is a path."""
        for key, item in value.items():
            if key.lower() in ("schemas", "id", "meta"):
                continue
            schema, rest = split_urn(key, (self.core, *self.extensions))
            if schema is not None and schema is not self.core and not rest:
                if not isinstance(item, dict):
                    raise invalid_value(f"'{key}' must be an object")
                for sub_key, sub_item in item.items():
                    self._apply_path(resource, op, f"{schema.id}:{sub_key}", sub_item, False)
                continue
            self._apply_path(resource, op, key, item, explicit=False)

    def _apply_path(
        self, resource: dict[str, Any], op: str, text: str, value: Any, explicit: bool
    ) -> None:
        """Apply an operation to one path."""
        path = parse_path(text, self.core, self.extensions)
        if path.ignored:
            return
        if path.attr is None:  # the whole extension object
            if op == "remove":
                resource.pop(path.schema.id, None)
                return
            if not isinstance(value, dict):
                raise invalid_value(f"'{text}' must be an object")
            for sub_key, sub_item in value.items():
                self._apply_path(resource, op, f"{path.schema.id}:{sub_key}", sub_item, explicit)
            return
        attr = path.attr
        if attr.mutability == "readOnly":
            if explicit:
                raise bad_request(f"Attribute '{attr.name}' is read-only", "mutability")
            return
        if path.schema is self.core:
            container = resource
        elif op == "remove":
            found = resource.get(path.schema.id)
            if not isinstance(found, dict):
                return
            container = found
        else:
            container = resource.setdefault(path.schema.id, {})
        if path.filter is not None:
            self._apply_filtered(container, op, path, value, text)
        elif path.sub is not None:
            self._apply_sub(container, op, path, value, text)
        else:
            self._apply_whole(container, op, attr, value, text)
        if path.schema is not self.core and not container:
            resource.pop(path.schema.id, None)

    def _apply_whole(
        self, container: dict[str, Any], op: str, attr: Attr, value: Any, where: str
    ) -> None:
        """Apply an operation to a whole attribute (no filter, no sub-attribute)."""
        if op == "remove":
            if attr.multi and value is not None:
                # {"op":"remove","path":"members","value":[{"value":"id"}]} (Entra's form)
                doomed = coerce(attr, value, where)
                keys = {item_key(attr, item) for item in doomed if isinstance(item, dict)}
                kept = [
                    item
                    for item in container.get(attr.name, [])
                    if item_key(attr, item) not in keys
                ]
                container[attr.name] = kept
                if not kept:
                    container.pop(attr.name, None)
                return
            container.pop(attr.name, None)
            return
        if value is None or value == [] or value == "":
            if op == "replace" or value is None:
                container.pop(attr.name, None)
            return
        coerced = coerce(attr, value, where)
        if attr.multi:
            if op == "add":
                coerced = merge_multi(attr, container.get(attr.name, []), coerced)
            container[attr.name] = coerced
        elif attr.type == "complex":
            current = container.get(attr.name) or {}
            container[attr.name] = {**current, **coerced}
        else:
            container[attr.name] = coerced

    def _apply_sub(
        self, container: dict[str, Any], op: str, path: Path, value: Any, where: str
    ) -> None:
        """Apply an operation to a sub-attribute of a single complex attribute."""
        attr, sub = path.attr, path.sub
        assert attr is not None and sub is not None
        if attr.multi:
            raise bad_request(
                f"'{where}' names a sub-attribute of every element; use a value filter, "
                f'e.g. {attr.name}[type eq "work"].{sub.name}',
                "invalidPath",
            )
        if sub.mutability == "readOnly":
            raise bad_request(f"Attribute '{where}' is read-only", "mutability")
        current = dict(container.get(attr.name) or {})
        if op == "remove" or value is None:
            current.pop(sub.name, None)
        else:
            current[sub.name] = coerce_scalar(sub, value, where)
        if current and (attr.sub_attr("value") is None or "value" in current):
            container[attr.name] = current
        else:
            container.pop(attr.name, None)

    def _apply_filtered(
        self, container: dict[str, Any], op: str, path: Path, value: Any, where: str
    ) -> None:
        """Apply an operation to the elements a value filter selects."""
        attr, sub, value_filter = path.attr, path.sub, path.filter
        assert attr is not None and value_filter is not None
        items: list[dict[str, Any]] = [dict(item) for item in container.get(attr.name, [])]
        hits = [index for index, item in enumerate(items) if matches(value_filter, item)]
        if op == "remove" or value is None:
            if sub is None or sub.name == "value":
                items = [item for index, item in enumerate(items) if index not in hits]
            else:
                for index in hits:
                    items[index].pop(sub.name, None)
        else:
            if sub is not None:
                if sub.mutability == "readOnly":
                    raise bad_request(f"Attribute '{where}' is read-only", "mutability")
                patch = {sub.name: coerce_scalar(sub, value, where)}
            else:
                patch = coerce_complex(attr, value, where)
            if hits:
                for index in hits:
                    items[index] = {**items[index], **patch}
            else:
                pinned = equalities(value_filter)
                if pinned is None:
                    raise bad_request(
                        f"No element matches '{where}' and its filter does not say how to "
                        "create one (use eq and 'and' only)",
                        "noTarget",
                    )
                created = coerce_complex(attr, pinned, where)
                items.append({**created, **patch})
        if items:
            container[attr.name] = items
        else:
            container.pop(attr.name, None)


USER_PATCHER = Patcher(USER_SCHEMA, USER_EXTENSIONS)
GROUP_PATCHER = Patcher(GROUP_SCHEMA, ())


def patch_operations(body: dict[str, Any]) -> list[Any]:
    """The ``Operations`` of a PatchOp body, else 400 ``invalidSyntax``."""
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or PATCH_SCHEMA not in schemas:
        raise invalid_syntax(f"A PATCH body must list the schema {PATCH_SCHEMA}")
    key = lookup_key(body, "Operations")
    operations = body.get(key) if key else None
    if not isinstance(operations, list) or not operations:
        raise invalid_syntax("A PATCH body needs a non-empty 'Operations' list")
    return operations

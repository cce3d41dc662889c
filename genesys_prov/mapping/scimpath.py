"""SCIM attribute paths as used by mapping targets (RFC 7644 §3.10 / §3.5.2, the subset Entra
sends): ``title``, ``name.givenName``, ``emails[type eq "work"].value`` and URN-qualified
``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department``.

Pure functions: read a value out of a resource, write one into a payload, and build the
PATCH operation that changes it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genesys_prov.errors import MappingError

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GENESYS_USER = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"

_NAME = r"[A-Za-z$][A-Za-z0-9_$-]*"
_FILTER = re.compile(
    rf'^\[\s*(?P<fattr>{_NAME})\s+eq\s+(?:"(?P<fval>(?:[^"\\]|\\.)*)"'
    rf"|'(?P<sval>(?:[^'\\]|\\.)*)')\s*\](?:\.(?P<sub>{_NAME}))?$"
)
#: Typographic quotes pasted from a web page (‘ ’ ‚ ‛ and “ ” „ ‟) read as ASCII quotes.
_TYPOGRAPHIC_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'",
                                     "\u201b": "'", "\u201c": '"', "\u201d": '"',
                                     "\u201e": '"', "\u201f": '"'})
_PLAIN = re.compile(rf"^(?P<attr>{_NAME})(?:\.(?P<sub>{_NAME}))?$")
# Attributes whose SCIM type is boolean (values "True"/"False" from expressions are coerced).
BOOLEAN_ATTRIBUTES = frozenset({"active"})
# Attributes whose values compare case-insensitively (RFC 7643: caseExact false).
CASE_INSENSITIVE = frozenset({"username", "emails"})
#: Multi-valued complex attributes mapped as a whole and compared as sets: ``roles``
#: (``[{value: role name}]``) and the Genesys extension's ``routingSkills`` /
#: ``routingLanguages`` (``[{name, proficiency}]``). See :func:`set_elements`.
SET_ATTRIBUTES = frozenset({"roles", "routingskills", "routinglanguages"})
#: The proficiency of a skill or language given by its name alone.
DEFAULT_PROFICIENCY = 0.0


@dataclass(frozen=True)
class TargetPath:
    """A parsed SCIM attribute path."""

    text: str
    schema: str | None
    attr: str
    filter_attr: str | None = None
    filter_value: str | None = None
    sub: str | None = None

    @property
    def qualified_attr(self) -> str:
        """The attribute name with its schema URN when it has one (for ``attributes=``
        and for ``add`` operations)."""
        return f"{self.schema}:{self.attr}" if self.schema else self.attr

    @property
    def is_boolean(self) -> bool:
        """True when the target attribute is a SCIM boolean."""
        return self.sub is None and self.filter_attr is None and \
            self.attr.lower() in BOOLEAN_ATTRIBUTES

    @property
    def is_set(self) -> bool:
        """True for a multi-valued attribute mapped as a whole and compared as a set
        (``roles``, ``routingSkills``, ``routingLanguages``)."""
        return self.sub is None and self.filter_attr is None and \
            self.attr.lower() in SET_ATTRIBUTES

    @property
    def case_insensitive(self) -> bool:
        """True when values of this attribute compare without regard to case."""
        return self.attr.lower() in CASE_INSENSITIVE


def parse_path(text: str) -> TargetPath:
    """Parse a mapping target path; raises MappingError for anything unsupported.

    A filter value may be written in double quotes, in single quotes (as Microsoft's
    tutorials write it) or in typographic quotes pasted from a web page (‘ ’ “ ”): all parse
    to the same path, whose ``text`` is the double-quoted form.

    >>> parse_path('emails[type eq "work"].value').filter_value
    'work'
    """
    schema: str | None = None
    rest = text.strip()
    if rest.lower().startswith("urn:"):
        bracket = rest.find("[")
        head = rest if bracket == -1 else rest[:bracket]
        tail = "" if bracket == -1 else rest[bracket:]
        if ":" not in head[4:]:
            raise MappingError(f"target {text!r}: a URN path needs the attribute after the URN")
        schema, _, attr_part = head.rpartition(":")
        rest = attr_part + tail
    bracket = rest.find("[")
    if bracket != -1:
        attr = rest[:bracket]
        match = _FILTER.match(rest[bracket:].translate(_TYPOGRAPHIC_QUOTES))
        if not re.fullmatch(_NAME, attr) or not match:
            raise MappingError(
                f'target {text!r}: expected a filter path like emails[type eq "work"].value'
            )
        quoted = match.group("fval")
        value = re.sub(r"\\(.)", r"\1", match.group("sval") if quoted is None else quoted)
        sub = match.group("sub")
        canonical = (f"{schema}:" if schema else "") + \
            f"{attr}[{match.group('fattr')} eq {escape_filter_value(value)}]" + \
            (f".{sub}" if sub else "")
        return TargetPath(canonical, schema, attr, match.group("fattr"), value, sub or "value")
    plain = _PLAIN.match(rest)
    if not plain:
        raise MappingError(f"target {text!r}: not a SCIM attribute path")
    return TargetPath(text, schema, plain.group("attr"), sub=plain.group("sub"))


def _iget(container: Any, key: str) -> Any:
    """Case-insensitive dict lookup (SCIM attribute names are case-insensitive)."""
    if not isinstance(container, dict):
        return None
    if key in container:
        return container[key]
    lower = key.lower()
    for k, v in container.items():
        if k.lower() == lower:
            return v
    return None


def _container(resource: dict[str, Any], path: TargetPath) -> Any:
    return resource if path.schema is None else _iget(resource, path.schema)


def _find_element(items: Any, path: TargetPath) -> dict[str, Any] | None:
    if not isinstance(items, list):
        return None
    assert path.filter_attr is not None and path.filter_value is not None
    want = path.filter_value.lower()
    for item in items:
        got = _iget(item, path.filter_attr)
        if isinstance(got, str) and got.lower() == want:
            return item if isinstance(item, dict) else None
    return None


def get_value(resource: dict[str, Any], path: TargetPath) -> Any:
    """The value at ``path`` in a SCIM resource, or None. A complex reference such as
    the enterprise ``manager`` is reduced to its ``value``."""
    value = _iget(_container(resource, path), path.attr)
    if path.filter_attr is not None:
        element = _find_element(value, path)
        return None if element is None else _iget(element, path.sub or "value")
    if path.sub is not None:
        return _iget(value, path.sub)
    if path.is_set:
        return set_elements(path, value, strict=False)
    if isinstance(value, dict) and "value" in value and path.attr.lower() == "manager":
        return value["value"]
    return value


def has_element(resource: dict[str, Any], path: TargetPath) -> bool:
    """For a filter path: does the resource hold an element matching the filter?"""
    if path.filter_attr is None:
        return True
    return _find_element(_iget(_container(resource, path), path.attr), path) is not None


def set_value(payload: dict[str, Any], path: TargetPath, value: Any) -> None:
    """Write ``value`` at ``path`` into a payload being built (for POST)."""
    if path.schema is not None:
        schemas = payload.setdefault("schemas", [CORE_USER])
        if path.schema not in schemas:
            schemas.append(path.schema)
        container: dict[str, Any] = payload.setdefault(path.schema, {})
    else:
        container = payload
    if path.filter_attr is not None:
        items: list[dict[str, Any]] = container.setdefault(path.attr, [])
        element = _find_element(items, path)
        if element is None:
            element = {path.filter_attr: path.filter_value}
            items.append(element)
        element[path.sub or "value"] = value
    elif path.sub is not None:
        container.setdefault(path.attr, {})[path.sub] = value
    else:
        container[path.attr] = value


def patch_operation(path: TargetPath, value: Any, element_exists: bool = True) -> dict[str, Any]:
    """The PATCH operation that sets ``path`` to ``value``.

    A filter path whose element exists is replaced in place
    (``replace emails[type eq "work"].value``); one whose element is missing is added to
    the multi-valued attribute (``add emails [{type: work, value: ...}]``), since RFC 7644
    §3.5.2.3 makes a replace whose filter matches nothing an error."""
    if path.filter_attr is not None and not element_exists:
        element = {path.filter_attr: path.filter_value, path.sub or "value": value}
        return {"op": "add", "path": path.qualified_attr, "value": [element]}
    return {"op": "replace", "path": path.text, "value": value}


def _role(item: Any) -> dict[str, Any] | None:
    """One ``roles`` element: a role name, or a mapping with a ``value`` (other keys, such as
    AppRoleAssignmentsComplex's ``primary`` / ``type`` / ``display``, are dropped)."""
    if isinstance(item, dict):
        item = _iget(item, "value")
    if item is None:
        return None
    if not isinstance(item, str | int | float) or isinstance(item, bool):
        raise ValueError(f"a role must be a name or {{value: name}}, got {item!r}")
    name = str(item).strip()
    return {"value": name} if name else None


def _proficiency(name: str, level: Any) -> float:
    """A routing proficiency as a number from 0 to 5."""
    try:
        number = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"{name!r}: proficiency {level!r} is not a number") from None
    if not 0 <= number <= 5:
        raise ValueError(f"{name!r}: proficiency {level!r} is not between 0 and 5")
    return number


def _routing(item: Any) -> dict[str, Any] | None:
    """One ``routingSkills`` / ``routingLanguages`` element: ``"name"``,
    ``"name:proficiency"`` (split at the last colon) or a mapping ``{name, proficiency}``."""
    if isinstance(item, dict):
        name, level = _iget(item, "name"), _iget(item, "proficiency")
    elif isinstance(item, str):
        head, colon, tail = item.rpartition(":")
        try:
            float(tail)
        except ValueError:
            colon = ""
        name, level = (head, tail) if colon else (item, None)
    else:
        raise ValueError(f"expected 'name' or 'name:proficiency', got {item!r}")
    if not isinstance(name, str) or not name.strip():
        return None
    name = name.strip()
    level = DEFAULT_PROFICIENCY if level is None else _proficiency(name, level)
    return {"name": name, "proficiency": level}


def set_elements(path: TargetPath, value: Any, strict: bool = True) -> list[dict[str, Any]] | None:
    """The canonical value of a set attribute (:attr:`TargetPath.is_set`): its elements
    without duplicates, sorted, so that two values are equal exactly when they hold the
    same set. ``roles``: ``[{value}]`` from role names or mappings with a ``value``;
    ``routingSkills`` / ``routingLanguages``: ``[{name, proficiency}]`` from names,
    ``"name:proficiency"`` strings or mappings (a name given twice keeps its first
    proficiency). A single value counts as a list of one; no element at all is None (never
    sent). ``strict=False`` (values read from the target) skips malformed elements instead
    of raising ValueError."""
    if value is None:
        return None
    items = value if isinstance(value, list | tuple) else [value]
    element = _role if path.attr.lower() == "roles" else _routing
    key = "value" if element is _role else "name"
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        try:
            made = element(item)
        except ValueError as exc:
            if strict:
                raise ValueError(f"{path.text}: {exc}") from None
            continue
        if made is not None:
            out.setdefault(made[key], made)
    return [out[name] for name in sorted(out)] or None


def coerce(path: TargetPath, value: Any) -> Any:
    """Convert a mapped value to the target attribute's type: "True"/"False" → bool for
    boolean attributes, numbers → strings for string attributes, the canonical element
    list for set attributes (:func:`set_elements`)."""
    if value is None:
        return None
    if path.is_set:
        return set_elements(path, value)
    if path.is_boolean:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"{path.text} is a boolean; got {value!r}")
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return str(value)
    return value


def _coerce_text(value: Any) -> Any:
    """:func:`coerce` for a path that is not a boolean."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return str(value)
    return value


def coercer(path: TargetPath) -> Callable[[Any], Any]:
    """``coerce(path, value)`` as a function of the value, the path's type decided once."""
    return functools.partial(coerce, path) if path.is_boolean or path.is_set else _coerce_text


def same_value(path: TargetPath, old: Any, new: Any) -> bool:
    """Do two values of ``path`` compare equal for SCIM's purposes?"""
    if path.is_set:
        return set_elements(path, old, strict=False) == set_elements(path, new, strict=False)
    if isinstance(old, str) and isinstance(new, str) and path.case_insensitive:
        return old.lower() == new.lower()
    if isinstance(old, bool) or isinstance(new, bool):
        return bool(coerce(path, old) == coerce(path, new)) if path.is_boolean else old == new
    return bool(old == new)


def escape_filter_value(value: str) -> str:
    """Quote a value for a SCIM filter: backslash and double quote are escaped (RFC 7644
    §3.4.2.2 uses JSON string rules), so attacker-controlled data cannot break out."""
    return json.dumps(value, ensure_ascii=False)


SHORT_SCHEMAS = {ENTERPRISE_USER + ":": "enterprise:", GENESYS_USER + ":": "genesys:"}


def short_attribute(name: str) -> str:
    """An attribute path as shown in tables: the long extension URNs shortened
    (``enterprise:department``); JSON output keeps the full path."""
    for prefix, short in SHORT_SCHEMAS.items():
        if name.startswith(prefix):
            return short + name[len(prefix):]
    return name

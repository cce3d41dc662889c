"""The Genesys Cloud SCIM 2.0 emulator (behaviour: /work/shared/spec/genesys-scim.md).

Routes (base path ``/api/v2/scim/v2``)::

    POST   /oauth/token                     client credentials (Basic auth) → bearer token
    GET    /Users            POST /Users
    GET    /Users/{id}       PUT, PATCH, DELETE /Users/{id}
    GET    /Groups           (POST → 405: groups cannot be created over SCIM)
    GET    /Groups/{id}      PUT, PATCH /Groups/{id}   (DELETE → 405)
    GET    /Schemas[/{id}], /ResourceTypes[/{name}], /ServiceProviderConfig   (no token needed)

Decisions where Genesys' behaviour is unconfirmed (each is a deliberate, documented choice):

* ``POST /Groups`` and ``DELETE /Groups/{id}`` answer **405** with a SCIM error body and an
  ``Allow`` header (the route exists, the verb was withdrawn in 2021).
* RFC 7643 core User attributes Genesys does not implement (``name``, ``addresses``, …) are
  accepted and dropped; attributes no schema knows are ``400 invalidSyntax`` (bodies) or
  ``400 invalidPath`` (PATCH paths).
* A ``replace`` whose value-filter path matches nothing creates the element
  (``phoneNumbers[type eq "mobile"].value`` adds a mobile number); RFC 7644 would allow
  ``noTarget``, Genesys is lenient. A ``remove`` that matches nothing is a no-op.
* Booleans may arrive as the strings ``"True"``/``"False"`` (Entra has sent them so).
* Phone types and email types must be canonical values and unique per user; phone values must
  be E.164 or a tel URI (``tel:+nnnn;ext=nnn``).
* ``userName`` must look like an email address (it is the Genesys primary email).
* ``count`` > 25 without ``attributes``/``excludedAttributes`` is cut to 25 without an error
  (documented; Users and Groups; ``startIndex``/``itemsPerPage``/``totalResults`` stay
  consistent); a trimmed ``count`` is clamped to ``max_results`` (RFC 7644 §3.4.2.4 allows
  fewer).
* ``expensive_page_limit`` (off by default): a listing whose page size exceeds it and whose
  returned attributes include an expensive one (``externalId``, ``roles``, the enterprise
  ``manager``, ``routingSkills``, ``routingLanguages``) → 429 "internal resource limits",
  without ``Retry-After`` (waiting does not help; a smaller page or fewer attributes does).
* Attribute lists ignore names they do not know and sub-attributes of ``meta``
  (``attributes=userName,meta.version``); ``meta`` is always returned.
* ``phoneNumbers`` types ``other`` and ``microsoftteams`` share one Genesys field: writing one
  replaces the other (in one body, the later element wins).
* A deleted user's userName and emails stay reserved (``deleted_names``): re-creating a user
  with one of them → 409 ``uniqueness`` although a ``userName eq`` filter finds nobody.
* Only the documented user filters are accepted (``active eq false`` but not ``active eq true``);
  anything else is ``400 invalidFilter``.
* Order of checks on a SCIM request: injected throttle → rate limit → token → permission.
* Deleting a user removes it from its groups and clears it as anyone's manager.
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
import math
import random
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from genesys_prov.sandbox._http import (
    RecordedRequest,
    Request,
    RequestLog,
    Response,
    same_secret,
)
from genesys_prov.sandbox._ranked import RankedSet
from genesys_prov.sandbox.scim import (
    ALL_SCHEMAS,
    CORE_GROUP,
    CORE_USER,
    EMAIL_TYPES,
    ENTERPRISE_SCHEMA,
    ENTERPRISE_USER,
    GENESYS_SCHEMA,
    GENESYS_USER,
    GROUP_SCHEMA,
    IGNORED_CORE_USER_ATTRIBUTES,
    LIST_SCHEMA,
    PATCH_SCHEMA,
    PHONE_TYPES,
    RESOURCE_TYPE_SCHEMA,
    SCIM_CONTENT_TYPE,
    SPC_SCHEMA,
    USER_SCHEMA,
    Attr,
    Compare,
    Logical,
    Path,
    Schema,
    ScimFault,
    ValuePath,
    bad_request,
    equalities,
    matches,
    parse_filter,
    parse_path,
    split_urn,
)

_log = logging.getLogger(__name__)

BASE_PATH = "/api/v2/scim/v2"
TOKEN_PATH = "/oauth/token"
XPC_AUTHORITY = "x-pc:scimv2:v1"
DEFAULT_DIVISION = "Home"
DEFAULT_ROLE = "employee"
#: Largest page served without trimming (Genesys: "internal resource limits").
UNTRIMMED_PAGE_LIMIT = 25
DEFAULT_COUNT = 25

USER_EXTENSIONS = (ENTERPRISE_SCHEMA, GENESYS_SCHEMA)
USER_SCHEMAS_LIST = [CORE_USER, ENTERPRISE_USER, GENESYS_USER]
#: Attributes Genesys fetches with expensive secondary look-ups, by schema URN.
EXPENSIVE_ATTRIBUTES: dict[str, frozenset[str]] = {
    CORE_USER: frozenset({"externalId", "roles"}),
    ENTERPRISE_USER: frozenset({"manager"}),
    GENESYS_USER: frozenset({"routingSkills", "routingLanguages"}),
    CORE_GROUP: frozenset({"externalId"}),
}
#: Phone types stored in the same Genesys field (writing one replaces the other).
SHARED_PHONE_TYPES = frozenset({"other", "microsoftteams"})
_USER_ALWAYS = ("schemas", "id", "userName", "active", "meta")
_GROUP_ALWAYS = ("schemas", "id", "meta")
_USER_KEY_ORDER = (
    "schemas",
    "id",
    "externalId",
    "userName",
    "displayName",
    "active",
    "title",
    "emails",
    "phoneNumbers",
    "roles",
    "groups",
    ENTERPRISE_USER,
    GENESYS_USER,
    "meta",
)

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_TEL_URI = re.compile(r"^tel:\+[1-9]\d{1,14}(;ext=\d{1,10})?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: permission each (method, route) needs (genesys-scim.md "Authentication").
_PERMISSIONS = {
    ("POST", "/Users"): "directory:user:add",
    ("PUT", "/Users/{id}"): "directory:user:edit",
    ("PATCH", "/Users/{id}"): "directory:user:edit",
    ("DELETE", "/Users/{id}"): "directory:user:delete",
    ("GET", "/Groups"): "directory:group:edit",
    ("GET", "/Groups/{id}"): "directory:group:edit",
    ("PUT", "/Groups/{id}"): "directory:group:edit",
    ("PATCH", "/Groups/{id}"): "directory:group:edit",
}
_PUBLIC_ROUTES = frozenset(
    {"/Schemas", "/Schemas/{id}", "/ResourceTypes", "/ResourceTypes/{name}",
     "/ServiceProviderConfig"}
)
_ALLOWED = {
    "/Users": ("GET", "POST"),
    "/Users/{id}": ("GET", "PUT", "PATCH", "DELETE"),
    "/Groups": ("GET",),
    "/Groups/{id}": ("GET", "PUT", "PATCH"),
    "/Schemas": ("GET",),
    "/Schemas/{id}": ("GET",),
    "/ResourceTypes": ("GET",),
    "/ResourceTypes/{name}": ("GET",),
    "/ServiceProviderConfig": ("GET",),
}


def _now() -> str:
    """The current UTC time as SCIM writes it (ISO 8601, milliseconds, Z)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _version(number: int) -> str:
    """The weak ETag of version ``number``."""
    return f'W/"{number}"'


def _etag_value(tag: str) -> str:
    """An entity tag without its weak prefix and quotes, for comparisons."""
    tag = tag.strip()
    if tag.startswith(("W/", "w/")):
        tag = tag[2:]
    return tag.strip('"')


def _invalid_value(detail: str) -> ScimFault:
    """A 400 ``invalidValue``."""
    return bad_request(detail, "invalidValue")


def _invalid_syntax(detail: str) -> ScimFault:
    """A 400 ``invalidSyntax``."""
    return bad_request(detail, "invalidSyntax")


def _lookup_key(mapping: dict[str, Any], name: str) -> str | None:
    """The key of ``mapping`` equal to ``name`` ignoring case, or None."""
    if name in mapping:
        return name
    lowered = name.lower()
    for key in mapping:
        if key.lower() == lowered:
            return key
    return None


# --------------------------------------------------------------------------- value coercion


def _coerce_scalar(attr: Attr, value: Any, where: str) -> Any:
    """Check/convert one non-complex value against ``attr``'s type."""
    if attr.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _invalid_value(f"'{where}' must be a boolean, got {value!r}")
    if attr.type in ("decimal", "integer"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise _invalid_value(f"'{where}' must be a number, got {value!r}")
    if not isinstance(value, str):
        raise _invalid_value(f"'{where}' must be a string, got {value!r}")
    return value


def _coerce_complex(attr: Attr, value: Any, where: str) -> dict[str, Any]:
    """Check/convert one complex value; read-only sub-attributes are dropped."""
    if isinstance(value, str) and attr.sub_attr("value") is not None and not attr.multi:
        value = {"value": value}  # a bare id for e.g. manager (Entra has sent one)
    if not isinstance(value, dict):
        raise _invalid_value(f"'{where}' must be an object, got {value!r}")
    result: dict[str, Any] = {}
    for key, sub_value in value.items():
        sub = attr.sub_attr(key)
        if sub is None:
            if key.lower() == "display" or key.lower() == "displayname":
                continue  # a common read-only decoration clients echo back
            raise _invalid_syntax(f"Unknown sub-attribute '{where}.{key}'")
        if sub.mutability == "readOnly" or sub_value is None:
            continue
        result[sub.name] = _coerce_scalar(sub, sub_value, f"{where}.{sub.name}")
    order = [s.name for s in attr.sub]
    return {name: result[name] for name in order if name in result}


def _coerce(attr: Attr, value: Any, where: str) -> Any:
    """Check/convert a whole attribute value (list for multi-valued attributes)."""
    if attr.multi:
        items = value if isinstance(value, list) else [value]
        out = []
        for item in items:
            if item is None:
                continue
            if attr.type == "complex":
                out.append(_coerce_complex(attr, item, where))
            else:
                out.append(_coerce_scalar(attr, item, where))
        return out
    if attr.type == "complex":
        return _coerce_complex(attr, value, where)
    return _coerce_scalar(attr, value, where)


def _schema_ordered(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its attributes in the schema's order."""
    return {a.name: data[a.name] for a in schema.attributes if a.name in data}


def _sub_ordered(attr: Attr, item: dict[str, Any]) -> dict[str, Any]:
    """A complex value with its sub-attributes in the schema's order."""
    return {s.name: item[s.name] for s in attr.sub if s.name in item}


def scim_error_response(status: int, detail: str) -> Response:
    """A SCIM error answer for failures below the emulator (e.g. 413 from the server)."""
    return Response.json(status, ScimFault(status, detail).body(), SCIM_CONTENT_TYPE)


def _item_key(attr: Attr, item: dict[str, Any]) -> Any:
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


def _merge_multi(attr: Attr, existing: list[Any], new: list[Any]) -> list[Any]:
    """``add`` to a multi-valued attribute: same-key elements are replaced, others appended."""
    result = list(existing)
    for item in new:
        key = _item_key(attr, item) if isinstance(item, dict) else ("scalar", item)
        if key is not None:
            for index, current in enumerate(result):
                current_key = (
                    _item_key(attr, current) if isinstance(current, dict) else ("scalar", current)
                )
                if current_key == key:
                    result[index] = {**current, **item} if isinstance(item, dict) else item
                    break
            else:
                result.append(item)
        else:
            result.append(item)
    return result


# --------------------------------------------------------------------------- PATCH engine


class _Patcher:
    """Applies RFC 7644 §3.5.2 operations to a resource dict in its stored form."""

    def __init__(self, core: Schema, extensions: tuple[Schema, ...]) -> None:
        """Patch against a resource type's schemas."""
        self.core = core
        self.extensions = extensions

    def apply(self, resource: dict[str, Any], operation: Any) -> None:
        """Apply one operation (``{"op", "path"?, "value"?}``) to ``resource`` in place."""
        if not isinstance(operation, dict):
            raise _invalid_syntax(f"Each operation must be an object, got {operation!r}")
        fields = {key.lower(): value for key, value in operation.items()}
        op = fields.get("op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise _invalid_syntax(f"Unsupported PATCH op {op!r}; use add, replace or remove")
        op = op.lower()
        path = fields.get("path")
        value = fields.get("value")
        if path is None or path == "":
            if op == "remove":
                raise bad_request("A remove operation needs a path", "noTarget")
            if not isinstance(value, dict):
                raise _invalid_syntax(f"An {op} without a path needs an object value")
            self._apply_map(resource, op, value)
            return
        if not isinstance(path, str):
            raise _invalid_syntax(f"path must be a string, got {path!r}")
        self._apply_path(resource, op, path, value, explicit=True)

    def _apply_map(self, resource: dict[str, Any], op: str, value: dict[str, Any]) -> None:
        """Apply an operation without a path: each key of ``value`` is a path."""
        for key, item in value.items():
            if key.lower() in ("schemas", "id", "meta"):
                continue
            schema, rest = split_urn(key, (self.core, *self.extensions))
            if schema is not None and schema is not self.core and not rest:
                if not isinstance(item, dict):
                    raise _invalid_value(f"'{key}' must be an object")
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
                raise _invalid_value(f"'{text}' must be an object")
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
                doomed = _coerce(attr, value, where)
                keys = {_item_key(attr, item) for item in doomed if isinstance(item, dict)}
                kept = [
                    item
                    for item in container.get(attr.name, [])
                    if _item_key(attr, item) not in keys
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
        coerced = _coerce(attr, value, where)
        if attr.multi:
            if op == "add":
                coerced = _merge_multi(attr, container.get(attr.name, []), coerced)
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
            current[sub.name] = _coerce_scalar(sub, value, where)
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
                patch = {sub.name: _coerce_scalar(sub, value, where)}
            else:
                patch = _coerce_complex(attr, value, where)
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
                created = _coerce_complex(attr, pinned, where)
                items.append({**created, **patch})
        if items:
            container[attr.name] = items
        else:
            container.pop(attr.name, None)


_USER_PATCHER = _Patcher(USER_SCHEMA, USER_EXTENSIONS)
_GROUP_PATCHER = _Patcher(GROUP_SCHEMA, ())


# --------------------------------------------------------------------------- projection


def _parse_attribute_list(text: str | None, core: Schema, extensions: tuple[Schema, ...]) -> (
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


def _include(resource: dict[str, Any], paths: list[Path], always: tuple[str, ...]) -> (
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


def _exclude(resource: dict[str, Any], paths: list[Path], always: tuple[str, ...]) -> (
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


# --------------------------------------------------------------------------- the emulator


class _Sequence:
    """A filtered result: ids in creation order."""

    def __init__(self, ids: list[str]) -> None:
        """Wrap ``ids``, already in creation order."""
        self.ids = ids

    def __len__(self) -> int:
        """The number of matching ids."""
        return len(self.ids)

    def page(self, offset: int, count: int) -> list[str]:
        """Up to ``count`` ids after skipping ``offset``."""
        return self.ids[offset : offset + count]


class GenesysEmulator(RequestLog):
    """State, behaviour and request log of the emulated Genesys Cloud org.

    ``users`` holds every user that exists (active or not) by id, exactly as the API returns
    it; a deleted user moves to ``deleted_users`` and is invisible to the API, but its userName
    and emails stay in ``deleted_names`` (not reusable). ``groups`` holds
    the groups by id. Tests may read these freely and seed with :meth:`add_user` /
    :meth:`add_group`; all other changes go through HTTP.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        static_token: str,
        rate_limit_per_minute: int | None = None,
        seed: int = 42,
    ) -> None:
        """An empty org; ``base_url`` is set by the Sandbox once the server is bound."""
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.static_token = static_token
        self.rate_limit_per_minute: int | None = rate_limit_per_minute
        #: False → PATCH answers 204 No Content (clients must accept both).
        self.patch_returns_body: bool = True
        #: Page size ceiling for trimmed listings (ServiceProviderConfig filter.maxResults).
        self.max_results: int = 100
        #: When set, a listing page larger than this that returns an expensive attribute
        #: (``EXPENSIVE_ATTRIBUTES``) is refused with 429 "internal resource limits".
        self.expensive_page_limit: int | None = None
        #: Lifetime (s) of tokens from /oauth/token.
        self.token_lifetime: int = 86400
        #: Permissions the OAuth client lacks: requests needing one get 403.
        self.denied_permissions: set[str] = set()
        #: Role names that exist in the org (``roles[].value`` must be one of them).
        self.role_names: set[str] = {
            DEFAULT_ROLE, "admin", "Master Admin", "Supervisor", "User", "Communicate - User",
        }
        #: Routing skills / languages that exist (names are case-sensitive).
        self.routing_skills: set[str] = {"Sales", "Support", "Billing", "Escalations"}
        self.routing_languages: set[str] = {"English", "French", "German", "Spanish", "Japanese"}
        #: Monotonic clock used for rate limits and token expiry (tests may replace it).
        self.clock: Callable[[], float] = time.monotonic
        self.base_url = ""

        self.users: dict[str, dict[str, Any]] = {}
        self.deleted_users: dict[str, dict[str, Any]] = {}
        #: userNames and emails (lower case) of deleted users: creating a user with one → 409.
        #: Tests may clear it to allow reuse.
        self.deleted_names: set[str] = set()
        self.groups: dict[str, dict[str, Any]] = {}

        self._lock = threading.RLock()
        self._rng = random.Random(f"genesys-{seed}")
        self._versions: dict[str, int] = {}
        self._seq: dict[str, int] = {}
        self._seq_ids: list[str] = []
        self._active = RankedSet()
        self._inactive = RankedSet()
        #: index name → key → the id (one holder) or a set of ids (several holders)
        self._index: dict[str, dict[str, str | set[str]]] = {
            name: {}
            for name in (
                "userName", "email", "externalId", "employeeNumber", "division", "manager",
                "externalIds",
            )
        }
        self._group_order: list[str] = []
        self._group_seq: dict[str, int] = {}
        self._group_names: dict[str, str] = {}
        self._member_of: dict[str, set[str]] = {}
        self._tokens: dict[str, float] = {}
        self._throttle_remaining = 0
        self._throttle_retry_after = 0
        self._window: deque[float] = deque()
        self._limit_lock = threading.Lock()

    # ----------------------------------------------------------------- public helpers

    def writes(self) -> list[RecordedRequest]:
        """The recorded non-GET requests, excluding the OAuth token POST."""
        return [
            r
            for r in self.requests
            if r.method not in ("GET", "HEAD", "OPTIONS") and r.path != TOKEN_PATH
        ]

    def throttle_next(self, n: int, retry_after: int = 0) -> None:
        """Answer the next ``n`` SCIM requests with 429 and ``Retry-After: retry_after``."""
        with self._limit_lock:
            self._throttle_remaining = n
            self._throttle_retry_after = retry_after

    def expire_tokens(self) -> None:
        """Invalidate every token issued by /oauth/token (the static token stays valid)."""
        with self._lock:
            self._tokens.clear()

    def add_user(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Seed a user directly (validated like POST; keeps ``id`` if given). Returns a copy.

        Raises ``ValueError`` with the SCIM detail when the resource would be refused.
        """
        with self._lock:
            try:
                wanted = resource.get("id")
                body = self._ingest_user(resource)
                uid = wanted if isinstance(wanted, str) and wanted else None
                if uid is not None and (uid in self.users or uid in self.deleted_users):
                    raise ValueError(f"user id {uid} already exists")
                stored = self._store_new_user(body, uid)
            except ScimFault as fault:
                raise ValueError(fault.detail) from fault
            return copy.deepcopy(stored)

    def add_group(
        self,
        display_name: str,
        members: Iterable[str] = (),
        group_id: str | None = None,
        external_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a group as an admin would in the Genesys UI; ``members`` are user ids or
        userNames. Returns a copy of the stored group."""
        with self._lock:
            if display_name.lower() in self._group_names:
                raise ValueError(f"group {display_name!r} already exists")
            gid = group_id or self._new_id()
            member_ids = []
            for member in members:
                if member in self.users:
                    member_ids.append(member)
                    continue
                found = self._lookup("userName", member.lower())
                if not found:
                    raise ValueError(f"unknown group member {member!r}")
                member_ids.extend(found)
            group: dict[str, Any] = {
                "schemas": [CORE_GROUP], "id": gid, "displayName": display_name,
            }
            if external_id:
                group["externalId"] = external_id
            group["members"] = [{"value": m} for m in member_ids]
            group["meta"] = {"resourceType": "Group", "created": _now()}
            self._group_seq[gid] = len(self._group_order)
            try:
                self._commit_group(gid, group, None)
            except ScimFault as fault:
                del self._group_seq[gid]
                raise ValueError(fault.detail) from fault
            self._group_order.append(gid)
            return copy.deepcopy(self.groups[gid])

    def load(self, seed_state: dict[str, Any]) -> None:
        """Seed users and groups from a directory's ``"genesys"`` part."""
        for user in seed_state.get("users", []):
            self.add_user(user)
        for group in seed_state.get("groups", []):
            self.add_group(
                group["displayName"],
                group.get("members", []),
                group_id=group.get("id"),
                external_id=group.get("externalId"),
            )

    # ----------------------------------------------------------------- the app

    def __call__(self, request: Request) -> Response:
        """Handle one HTTP request (the server's app callable)."""
        route = "?"
        try:
            if request.path == TOKEN_PATH:
                route = TOKEN_PATH
                response = self._token(request)
            elif request.path == BASE_PATH or request.path.startswith(BASE_PATH + "/"):
                route, args = self._match(request.path[len(BASE_PATH) :])
                response = self._scim(request, route, args)
            else:
                raise ScimFault(404, f"No resource at {request.path}")
        except ScimFault as fault:
            response = Response.json(
                fault.status, fault.body(), SCIM_CONTENT_TYPE, fault.headers
            )
        self.record(request, response.status, route)
        return response

    @staticmethod
    def _match(rest: str) -> tuple[str, list[str]]:
        """The route template and its arguments for a path below the base path."""
        parts = [part for part in rest.split("/") if part]
        if len(parts) == 1 and parts[0] in ("Users", "Groups", "Schemas", "ResourceTypes",
                                            "ServiceProviderConfig"):
            return f"/{parts[0]}", []
        if len(parts) == 2 and parts[0] in ("Users", "Groups", "Schemas"):
            return f"/{parts[0]}/{{id}}", [parts[1]]
        if len(parts) == 2 and parts[0] == "ResourceTypes":
            return "/ResourceTypes/{name}", [parts[1]]
        raise ScimFault(404, f"No SCIM endpoint at {BASE_PATH}{rest}")

    def _scim(self, request: Request, route: str, args: list[str]) -> Response:
        """Method check, throttling, authentication and permission, then the handler."""
        allowed = _ALLOWED[route]
        if request.method not in allowed:
            detail = f"{request.method} is not supported on {route}"
            if route.startswith("/Groups"):
                detail = (
                    f"{request.method} {route}: Genesys Cloud groups cannot be created or "
                    "deleted over SCIM; create the group in Genesys Cloud first"
                )
            raise ScimFault(405, detail, headers={"Allow": ", ".join(allowed)})
        self._check_throttle()
        if route not in _PUBLIC_ROUTES:
            self._check_token(request)
            permission = _PERMISSIONS.get((request.method, route))
            if permission is not None and permission in self.denied_permissions:
                raise ScimFault(
                    403, f"The OAuth client is missing the permission '{permission}'"
                )
        handlers: dict[str, Callable[..., Response]] = {
            "/Users": self._users,
            "/Users/{id}": self._user,
            "/Groups": self._list_groups,
            "/Groups/{id}": self._group,
            "/Schemas": self._schemas,
            "/Schemas/{id}": self._schema,
            "/ResourceTypes": self._resource_types,
            "/ResourceTypes/{name}": self._resource_type,
            "/ServiceProviderConfig": self._spc,
        }
        return handlers[route](request, *args)

    # ----------------------------------------------------------------- limits and auth

    def _check_throttle(self) -> None:
        """Raise 429 for an injected throttle or when over the per-minute limit."""
        with self._limit_lock:
            if self._throttle_remaining > 0:
                self._throttle_remaining -= 1
                raise ScimFault(
                    429,
                    "Rate limit exceeded: too many requests",
                    headers={"Retry-After": str(self._throttle_retry_after)},
                )
            limit = self.rate_limit_per_minute
            if not limit:
                return
            now = self.clock()
            window = self._window
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= limit:
                wait = max(1, math.ceil(window[0] + 60 - now))
                raise ScimFault(
                    429,
                    f"Rate limit exceeded: {limit} requests per minute",
                    headers={"Retry-After": str(wait)},
                )
            window.append(now)

    def _check_token(self, request: Request) -> None:
        """Raise 401 unless the request carries a valid bearer token."""
        header = request.header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ScimFault(
                401, "Authentication failed: a bearer token is required",
                headers={"WWW-Authenticate": 'Bearer realm="Genesys Cloud"'},
            )
        if same_secret(token, self.static_token):
            return
        with self._lock:
            expires = self._tokens.get(token)
        if expires is None or expires <= self.clock():
            raise ScimFault(
                401, "Authentication failed: the token is invalid or expired",
                headers={"WWW-Authenticate": 'Bearer realm="Genesys Cloud", error="invalid_token"'},
            )

    def _token(self, request: Request) -> Response:
        """``POST /oauth/token``: client credentials with HTTP Basic client authentication."""
        if request.method != "POST":
            return Response.json(405, {"error": "method_not_allowed"}, headers={"Allow": "POST"})
        header = request.header("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        client_id = client_secret = ""
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            client_id, _, client_secret = decoded.partition(":")
        if not (
            same_secret(client_id, self.client_id)
            and same_secret(client_secret, self.client_secret)
        ):
            return Response.json(
                401,
                {"error": "invalid_client",
                 "error_description": "Client authentication failed (HTTP Basic client_id:secret)"},
                headers={"WWW-Authenticate": 'Basic realm="Genesys Cloud"'},
            )
        try:
            form = request.form()
        except UnicodeDecodeError:
            form = {}
        if form.get("grant_type") != "client_credentials":
            return Response.json(
                400,
                {"error": "unsupported_grant_type",
                 "error_description": "grant_type must be client_credentials"},
            )
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = self.clock() + self.token_lifetime
        return Response.json(
            200,
            {"access_token": token, "token_type": "bearer", "expires_in": self.token_lifetime},
            headers={"Cache-Control": "no-store"},
        )

    # ----------------------------------------------------------------- request helpers

    @staticmethod
    def _json_object(request: Request) -> dict[str, Any]:
        """The request body as a JSON object, else 400 ``invalidSyntax``."""
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise _invalid_syntax(f"The request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _invalid_syntax("The request body must be a JSON object")
        return body

    @staticmethod
    def _int_param(request: Request, name: str) -> int | None:
        """An integer query parameter, or None when absent."""
        text = request.param(name)
        if text is None or text == "":
            return None
        try:
            return int(text)
        except ValueError as exc:
            raise _invalid_value(f"'{name}' must be an integer, got {text!r}") from exc

    def _paging(
        self, request: Request, core: Schema, extensions: tuple[Schema, ...]
    ) -> tuple[int, int]:
        """(startIndex, count) after the page-size rules: an untrimmed page is cut to 25, a
        trimmed one to ``max_results``; with ``expensive_page_limit`` set, a larger page that
        returns an expensive attribute is refused (429, no Retry-After)."""
        start = max(1, self._int_param(request, "startIndex") or 1)
        asked = self._int_param(request, "count")
        count = DEFAULT_COUNT if asked is None else max(0, asked)
        trimmed = bool(request.param("attributes") or request.param("excludedAttributes"))
        count = min(count, self.max_results)
        if not trimmed:
            count = min(count, UNTRIMMED_PAGE_LIMIT)
        limit = self.expensive_page_limit
        if limit is not None and count > limit:
            expensive = self._expensive_returned(request, core, extensions)
            if expensive:
                raise ScimFault(
                    429,
                    f"A page of {count} with {', '.join(expensive)} exceeds internal resource "
                    f"limits; request at most {limit} per page, or leave those attributes out "
                    "with 'attributes' or 'excludedAttributes'",
                )
        return start, count

    @staticmethod
    def _expensive_returned(
        request: Request, core: Schema, extensions: tuple[Schema, ...]
    ) -> list[str]:
        """The expensive attributes a listing would return (names, in a stable order)."""
        wanted = {
            (schema.id, name)
            for schema in (core, *extensions)
            for name in EXPENSIVE_ATTRIBUTES.get(schema.id, ())
        }
        attributes = _parse_attribute_list(request.param("attributes"), core, extensions)
        if attributes is not None:
            returned = {
                (path.schema.id, name)
                for path in attributes
                for name in (
                    EXPENSIVE_ATTRIBUTES.get(path.schema.id, ()) if path.attr is None
                    else (path.attr.name,)
                )
            }
        else:
            returned = set(wanted)
            excluded = _parse_attribute_list(
                request.param("excludedAttributes"), core, extensions
            )
            for path in excluded or ():
                if path.attr is None:
                    returned = {item for item in returned if item[0] != path.schema.id}
                elif path.sub is None:
                    returned.discard((path.schema.id, path.attr.name))
        return sorted(name for _, name in returned & wanted)

    def _render(
        self,
        request: Request,
        resource: dict[str, Any],
        core: Schema,
        extensions: tuple[Schema, ...],
        always: tuple[str, ...],
    ) -> dict[str, Any]:
        """A resource as the request asked for it (``attributes`` / ``excludedAttributes``)."""
        attributes = _parse_attribute_list(request.param("attributes"), core, extensions)
        if attributes is not None:
            return _include(resource, attributes, always)
        excluded = _parse_attribute_list(request.param("excludedAttributes"), core, extensions)
        if excluded is not None:
            return _exclude(resource, excluded, always)
        return resource

    def _render_user(self, request: Request, user: dict[str, Any]) -> dict[str, Any]:
        """A user as the request asked for it."""
        return self._render(request, user, USER_SCHEMA, USER_EXTENSIONS, _USER_ALWAYS)

    def _render_group(self, request: Request, group: dict[str, Any]) -> dict[str, Any]:
        """A group as the request asked for it."""
        return self._render(request, group, GROUP_SCHEMA, (), _GROUP_ALWAYS)

    @staticmethod
    def _resource_response(
        status: int, resource: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Response:
        """A single-resource answer with its ETag."""
        all_headers = {"ETag": resource["meta"]["version"]}
        if headers:
            all_headers.update(headers)
        return Response.json(status, resource, SCIM_CONTENT_TYPE, all_headers)

    @staticmethod
    def _list_response(total: int, start: int, resources: list[dict[str, Any]]) -> Response:
        """A ListResponse answer."""
        return Response.json(
            200,
            {
                "schemas": [LIST_SCHEMA],
                "totalResults": total,
                "startIndex": start,
                "itemsPerPage": len(resources),
                "Resources": resources,
            },
            SCIM_CONTENT_TYPE,
        )

    @staticmethod
    def _check_if_match(request: Request, resource: dict[str, Any]) -> None:
        """Raise 400 ``invalidVers`` when If-Match names another version."""
        header = request.header("If-Match")
        if header is None or header.strip() == "*":
            return
        current = resource["meta"]["version"]
        wanted = {_etag_value(tag) for tag in header.split(",")}
        if _etag_value(current) not in wanted:
            raise bad_request(
                f"The version {header.strip()} does not match the current version {current}",
                "invalidVers",
            )

    @staticmethod
    def _not_modified(request: Request, resource: dict[str, Any]) -> Response | None:
        """A 304 answer when If-None-Match names the current version, else None."""
        header = request.header("If-None-Match")
        if header is None:
            return None
        current = resource["meta"]["version"]
        tags = {_etag_value(tag) for tag in header.split(",")}
        if "*" in tags or _etag_value(current) in tags:
            return Response(304, b"", {"ETag": current})
        return None

    def _new_id(self) -> str:
        """A fresh resource id (deterministic for a given seed and request order)."""
        while True:
            candidate = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            if candidate not in self.users and candidate not in self.groups and (
                candidate not in self.deleted_users
            ):
                return candidate

    def _location(self, kind: str, rid: str) -> str:
        """The absolute URL of a resource."""
        return f"{self.base_url}{BASE_PATH}/{kind}/{rid}"

    # ----------------------------------------------------------------- discovery

    def _schemas(self, request: Request) -> Response:
        """``GET /Schemas``."""
        resources = [schema.to_json(self.base_url + BASE_PATH) for schema in ALL_SCHEMAS]
        return self._list_response(len(resources), 1, resources)

    def _schema(self, request: Request, schema_id: str) -> Response:
        """``GET /Schemas/{id}``."""
        for schema in ALL_SCHEMAS:
            if schema.id == schema_id:
                return Response.json(200, schema.to_json(self.base_url + BASE_PATH),
                                     SCIM_CONTENT_TYPE)
        raise ScimFault(404, f"Schema {schema_id} not found")

    def _resource_type_docs(self) -> list[dict[str, Any]]:
        """The User and Group resource types."""
        base = self.base_url + BASE_PATH
        return [
            {
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": "User",
                "name": "User",
                "endpoint": "/Users",
                "description": "Genesys Cloud user",
                "schema": CORE_USER,
                "schemaExtensions": [
                    {"schema": ENTERPRISE_USER, "required": False},
                    {"schema": GENESYS_USER, "required": False},
                ],
                "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/User"},
            },
            {
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": "Group",
                "name": "Group",
                "endpoint": "/Groups",
                "description": "Genesys Cloud group",
                "schema": CORE_GROUP,
                "schemaExtensions": [],
                "meta": {"resourceType": "ResourceType",
                         "location": f"{base}/ResourceTypes/Group"},
            },
        ]

    def _resource_types(self, request: Request) -> Response:
        """``GET /ResourceTypes``."""
        docs = self._resource_type_docs()
        return self._list_response(len(docs), 1, docs)

    def _resource_type(self, request: Request, name: str) -> Response:
        """``GET /ResourceTypes/{name}``."""
        for doc in self._resource_type_docs():
            if doc["id"] == name:
                return Response.json(200, doc, SCIM_CONTENT_TYPE)
        raise ScimFault(404, f"Resource type {name} not found")

    def _spc(self, request: Request) -> Response:
        """``GET /ServiceProviderConfig``."""
        base = self.base_url + BASE_PATH
        return Response.json(
            200,
            {
                "schemas": [SPC_SCHEMA],
                "documentationUri": "https://developer.genesys.cloud/useragentmanagement/scim/",
                "patch": {"supported": True},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": True, "maxResults": self.max_results},
                "changePassword": {"supported": True},
                "sort": {"supported": False},
                "etag": {"supported": True},
                "authenticationSchemes": [
                    {
                        "type": "oauthbearertoken",
                        "name": "OAuth Bearer Token",
                        "description": "OAuth client credentials grant, or a pre-issued token",
                        "specUri": "https://www.rfc-editor.org/info/rfc6750",
                        "primary": True,
                    }
                ],
                "meta": {
                    "resourceType": "ServiceProviderConfig",
                    "location": f"{base}/ServiceProviderConfig",
                },
            },
            SCIM_CONTENT_TYPE,
        )

    # ----------------------------------------------------------------- users: HTTP

    def _users(self, request: Request) -> Response:
        """``GET /Users`` (list or filter) and ``POST /Users``."""
        if request.method == "POST":
            return self._create_user(request)
        start, count = self._paging(request, USER_SCHEMA, USER_EXTENSIONS)
        filter_text = request.param("filter")
        with self._lock:
            source: RankedSet | _Sequence
            source = self._active if not filter_text else self._filter_users(filter_text)
            total = len(source)
            if count == 0:
                return self._list_response(total, start, [])
            if isinstance(source, RankedSet):
                ids = [self._seq_ids[n] for n in source.page(start - 1, count)]
            else:
                ids = source.page(start - 1, count)
            resources = [self._render_user(request, self.users[uid]) for uid in ids]
            return self._list_response(total, start, resources)

    def _user(self, request: Request, uid: str) -> Response:
        """``GET``, ``PUT``, ``PATCH`` and ``DELETE /Users/{id}``."""
        with self._lock:
            user = self.users.get(uid)
            if user is None:
                raise ScimFault(404, f"User {uid} not found")
            if request.method == "GET":
                cached = self._not_modified(request, user)
                if cached is not None:
                    return cached
                return self._resource_response(200, self._render_user(request, user))
            self._check_if_match(request, user)
            if request.method == "DELETE":
                self._delete_user(uid)
                return Response(204)
            body = self._json_object(request)
            if request.method == "PUT":
                candidate = self._ingest_user(body)
                if "roles" not in candidate and "roles" in user:
                    candidate["roles"] = user["roles"]
                stored = self._update_user(uid, candidate)
                return self._resource_response(200, self._render_user(request, stored))
            stored = self._patch_user(uid, body)
            if not self.patch_returns_body:
                return Response(204, b"", {"ETag": stored["meta"]["version"]})
            return self._resource_response(200, self._render_user(request, stored))

    def _create_user(self, request: Request) -> Response:
        """``POST /Users``."""
        body = self._json_object(request)
        candidate = self._ingest_user(body)
        with self._lock:
            stored = self._store_new_user(candidate, None)
            return self._resource_response(
                201, self._render_user(request, stored),
                {"Location": stored["meta"]["location"]},
            )

    # ----------------------------------------------------------------- users: filters

    @staticmethod
    def _filter_attribute(path: str) -> str | None:
        """The index a filter attribute path uses, or None when unsupported."""
        schema, rest = split_urn(path, (USER_SCHEMA, *USER_EXTENSIONS))
        name = (rest if schema is not None else path).lower()
        if schema is None or schema is USER_SCHEMA:
            return {
                "id": "id", "username": "userName", "email": "email", "emails": "email",
                "emails.value": "email", "externalid": "externalId", "active": "active",
                "employeenumber": "employeeNumber", "division": "division",
                "manager": "manager", "manager.value": "manager",
            }.get(name)
        if schema is ENTERPRISE_SCHEMA:
            return {
                "employeenumber": "employeeNumber", "division": "division",
                "manager": "manager", "manager.value": "manager",
            }.get(name)
        return None

    def _filter_users(self, text: str) -> RankedSet | _Sequence:
        """The users a (supported) filter selects."""
        node = parse_filter(text)
        supported = (
            'supported user filters: id, userName, email, externalId, employeeNumber, division '
            'and manager with eq and a quoted string; "active eq false"; '
            f'{GENESYS_USER}:externalIds[authority eq "a" and value eq "v"]'
        )
        if isinstance(node, Compare):
            field = self._filter_attribute(node.path)
            if field is None or node.op != "eq":
                raise bad_request(f"Unsupported filter {text!r}; {supported}", "invalidFilter")
            if field == "active":
                if node.value is False:
                    return self._inactive
                raise bad_request(f"Unsupported filter {text!r}; {supported}", "invalidFilter")
            if not isinstance(node.value, str):
                raise bad_request(
                    f"The value in {text!r} must be a quoted string", "invalidFilter"
                )
            if field == "id":
                return _Sequence([node.value] if node.value in self.users else [])
            key = node.value.lower() if field in ("userName", "email", "division") else node.value
            return self._ordered(self._lookup(field, key))
        if isinstance(node, ValuePath):
            schema, rest = split_urn(node.path, USER_EXTENSIONS)
            pinned = equalities(node.inner) if isinstance(node.inner, Logical | Compare) else None
            if (
                schema is GENESYS_SCHEMA
                and rest.lower() == "externalids"
                and pinned is not None
                and {k.lower() for k in pinned} == {"authority", "value"}
                and all(isinstance(v, str) for v in pinned.values())
            ):
                values = {k.lower(): v for k, v in pinned.items()}
                key = f"{values['authority']}\n{values['value']}"
                return self._ordered(self._lookup("externalIds", key))
        raise bad_request(f"Unsupported filter {text!r}; {supported}", "invalidFilter")

    def _ordered(self, ids: Iterable[str]) -> _Sequence:
        """``ids`` in creation order."""
        return _Sequence(sorted(ids, key=self._seq.__getitem__))

    # ----------------------------------------------------------------- users: state

    def _ingest_user(self, body: dict[str, Any]) -> dict[str, Any]:
        """A POST/PUT body → the client-writable part of a stored user (not yet validated)."""
        result: dict[str, Any] = {}
        for key, value in body.items():
            lowered = key.lower()
            if lowered in ("schemas", "id", "meta", "groups"):
                continue
            if value is None:
                continue
            attr = USER_SCHEMA.attr(key)
            if attr is not None:
                if attr.name == "password":
                    _coerce_scalar(attr, value, "password")
                    continue
                result[attr.name] = _coerce(attr, value, attr.name)
                continue
            if lowered in IGNORED_CORE_USER_ATTRIBUTES:
                continue
            schema, rest = split_urn(key, (USER_SCHEMA, *USER_EXTENSIONS))
            if schema in USER_EXTENSIONS and not rest:
                assert schema is not None
                if not isinstance(value, dict):
                    raise _invalid_value(f"'{key}' must be an object")
                extension: dict[str, Any] = {}
                for sub_key, sub_value in value.items():
                    sub_attr = schema.attr(sub_key)
                    if sub_attr is None:
                        raise _invalid_syntax(f"Unknown attribute '{schema.id}:{sub_key}'")
                    if sub_value is None:
                        continue
                    extension[sub_attr.name] = _coerce(
                        sub_attr, sub_value, f"{schema.id}:{sub_attr.name}"
                    )
                if extension:
                    result[schema.id] = extension
                continue
            raise _invalid_syntax(f"Unknown attribute '{key}'")
        return result

    def _finalize_user(
        self, uid: str, candidate: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Recompute the read-only parts, validate, and order the keys; returns the resource."""
        user_name = candidate.get("userName")
        if not isinstance(user_name, str) or not user_name.strip():
            raise _invalid_value("userName is required")
        if not _EMAIL.match(user_name):
            raise _invalid_value(f"userName must be an email address, got {user_name!r}")
        display_name = candidate.get("displayName")
        if not isinstance(display_name, str) or not display_name.strip():
            raise _invalid_value("displayName is required")
        candidate.setdefault("active", True)
        candidate.pop("password", None)

        emails = [e for e in candidate.get("emails", []) if (e.get("type") or "") != "other"]
        self._check_typed_list(emails, "emails", EMAIL_TYPES, self._check_email)
        emails.append({"value": user_name, "type": "other"})
        candidate["emails"] = emails

        phones = self._one_shared_phone(candidate.get("phoneNumbers", []))
        self._check_typed_list(phones, "phoneNumbers", PHONE_TYPES, self._check_phone)
        candidate["phoneNumbers"] = phones
        if not phones:
            candidate.pop("phoneNumbers", None)

        roles = candidate.get("roles")
        if roles is None and previous is None:
            candidate["roles"] = [{"value": DEFAULT_ROLE}]
        elif roles is not None:
            for role in roles:
                if role.get("value") not in self.role_names:
                    raise _invalid_value(f"Unknown role {role.get('value')!r}")
            if not roles:
                candidate.pop("roles")

        if previous is not None and previous.get("groups"):
            candidate["groups"] = previous["groups"]
        else:
            candidate.pop("groups", None)

        enterprise = dict(candidate.get(ENTERPRISE_USER) or {})
        enterprise.setdefault("division", DEFAULT_DIVISION)
        manager = enterprise.get("manager")
        if manager is not None:
            manager_id = manager.get("value")
            if not manager_id:
                enterprise.pop("manager")
            elif manager_id not in self.users or manager_id == uid:
                raise _invalid_value(f"Manager {manager_id!r} is not an existing user")
            else:
                enterprise["manager"] = {
                    "value": manager_id, "$ref": self._location("Users", manager_id)
                }
        hired = enterprise.get("dateHire")
        if hired is not None and not _DATE.match(hired):
            raise _invalid_value(f"dateHire must be YYYY-MM-DD, got {hired!r}")
        candidate[ENTERPRISE_USER] = enterprise

        genesys = dict(candidate.get(GENESYS_USER) or {})
        for name, known in (("routingSkills", self.routing_skills),
                            ("routingLanguages", self.routing_languages)):
            entries = genesys.get(name)
            if entries is None:
                continue
            if len(entries) > 50:
                raise _invalid_value(f"At most 50 {name} are allowed")
            for entry in entries:
                if entry.get("name") not in known:
                    raise _invalid_value(f"Unknown {name[:-1]} {entry.get('name')!r}")
                level = entry.get("proficiency", 0)
                if not 0 <= level <= 5:
                    raise _invalid_value(f"{name} proficiency must be 0.0-5.0, got {level!r}")
        kept = [
            entry
            for entry in genesys.get("externalIds", [])
            if not str(entry.get("authority", "")).startswith(XPC_AUTHORITY)
        ]
        for entry in kept:
            if not entry.get("authority") or not entry.get("value"):
                raise _invalid_value("externalIds entries need an authority and a value")
        genesys["externalIds"] = [{"authority": XPC_AUTHORITY, "value": uid}, *kept]
        candidate[GENESYS_USER] = genesys

        candidate["schemas"] = list(USER_SCHEMAS_LIST)
        candidate["id"] = uid
        version = self._versions.get(uid, 0) + 1
        now = _now()
        candidate["meta"] = {
            "resourceType": "User",
            "created": previous["meta"]["created"] if previous else now,
            "lastModified": now,
            "location": self._location("Users", uid),
            "version": _version(version),
        }
        self._check_unique_user_name(user_name, uid)
        for schema in (USER_SCHEMA, *USER_EXTENSIONS):
            container = candidate if schema is USER_SCHEMA else candidate[schema.id]
            if schema is not USER_SCHEMA:
                candidate[schema.id] = container = _schema_ordered(schema, container)
            for attr in schema.attributes:
                value = container.get(attr.name)
                if attr.type == "complex" and isinstance(value, list):
                    container[attr.name] = [_sub_ordered(attr, item) for item in value]
                elif attr.type == "complex" and isinstance(value, dict):
                    container[attr.name] = _sub_ordered(attr, value)
        return {key: candidate[key] for key in _USER_KEY_ORDER if key in candidate}

    @staticmethod
    def _one_shared_phone(phones: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``phones`` with at most one of the types sharing a Genesys field (``other`` and
        ``microsoftteams``): when both occur, the later element wins."""
        shared = [
            index for index, item in enumerate(phones)
            if isinstance(item.get("type"), str) and item["type"].lower() in SHARED_PHONE_TYPES
        ]
        if len({phones[index]["type"].lower() for index in shared}) < 2:
            return phones
        doomed = set(shared[:-1])
        return [item for index, item in enumerate(phones) if index not in doomed]

    @staticmethod
    def _check_email(value: str, where: str) -> None:
        """Raise 400 unless ``value`` looks like an email address."""
        if not _EMAIL.match(value):
            raise _invalid_value(f"{where}: {value!r} is not an email address")

    @staticmethod
    def _check_phone(value: str, where: str) -> None:
        """Raise 400 unless ``value`` is E.164 or a tel URI."""
        if not (_E164.match(value) or _TEL_URI.match(value)):
            raise _invalid_value(
                f"{where}: {value!r} is not a valid phone number; use E.164 (+14255550100) "
                "or a tel URI (tel:+14255550100;ext=123)"
            )

    @staticmethod
    def _check_typed_list(
        items: list[dict[str, Any]],
        name: str,
        types: tuple[str, ...],
        check_value: Callable[[str, str], None],
    ) -> None:
        """Check types (canonical, unique) and values of emails/phoneNumbers."""
        seen: set[str] = set()
        for item in items:
            kind = item.get("type")
            if isinstance(kind, str):
                kind = item["type"] = kind.lower()
            if kind is None:
                raise _invalid_value(f"{name}: every element needs a type ({', '.join(types)})")
            if kind not in types:
                raise _invalid_value(
                    f"{name}: type {kind!r} is not one of {', '.join(types)}"
                )
            if kind in seen:
                raise _invalid_value(f"{name}: more than one element of type {kind!r}")
            seen.add(kind)
            value = item.get("value")
            if not value:
                raise _invalid_value(f"{name}[type eq \"{kind}\"]: a value is required")
            check_value(value, f'{name}[type eq "{kind}"]')

    def _check_deleted_names(self, candidate: dict[str, Any]) -> None:
        """Raise 409 when a new user's userName or work email belonged to a deleted user."""
        if not self.deleted_names:
            return
        user_name = candidate.get("userName")
        names = [user_name] if isinstance(user_name, str) else []
        names += [
            email["value"] for email in candidate.get("emails", [])
            if email.get("type") == "work" and isinstance(email.get("value"), str)
        ]
        for name in names:
            if name.lower() in self.deleted_names:
                what = "userName" if name is user_name else "work email"
                raise ScimFault(
                    409,
                    f"The {what} {name!r} belongs to a deleted user; Genesys Cloud keeps a "
                    "deleted user's name and email and they cannot be reused",
                    "uniqueness",
                )

    def _check_unique_user_name(self, user_name: str, uid: str) -> None:
        """Raise 409 when another user holds ``user_name`` (any case)."""
        holders = self._lookup("userName", user_name.lower())
        if any(holder != uid for holder in holders):
            raise ScimFault(
                409, f"A user with userName {user_name!r} already exists", "uniqueness"
            )

    def _lookup(self, index: str, key: str) -> list[str]:
        """The ids an index holds under ``key`` (a new list)."""
        bucket = self._index[index].get(key)
        if bucket is None:
            return []
        if isinstance(bucket, str):
            return [bucket]
        return list(bucket)

    def _index_entries(self, user: dict[str, Any]) -> set[tuple[str, str]]:
        """The (index, key) pairs a user is findable under."""
        entries = {("userName", user["userName"].lower())}
        for email in user.get("emails", []):
            if email.get("value"):
                entries.add(("email", email["value"].lower()))
        if user.get("externalId"):
            entries.add(("externalId", user["externalId"]))
        enterprise = user.get(ENTERPRISE_USER, {})
        if enterprise.get("employeeNumber"):
            entries.add(("employeeNumber", enterprise["employeeNumber"]))
        if enterprise.get("division"):
            entries.add(("division", enterprise["division"].lower()))
        if enterprise.get("manager"):
            entries.add(("manager", enterprise["manager"]["value"]))
        for entry in user.get(GENESYS_USER, {}).get("externalIds", []):
            entries.add(("externalIds", f"{entry['authority']}\n{entry['value']}"))
        return entries

    def _reindex(self, uid: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Move a user's index entries and listing membership from ``old`` to ``new``."""
        before = self._index_entries(old) if old else set()
        after = self._index_entries(new) if new else set()
        for name, key in before - after:
            index = self._index[name]
            bucket = index.get(key)
            if bucket == uid:
                del index[key]
            elif isinstance(bucket, set):
                bucket.discard(uid)
                if len(bucket) == 1:
                    index[key] = next(iter(bucket))
        for name, key in after - before:
            index = self._index[name]
            bucket = index.get(key)
            if bucket is None:
                index[key] = uid
            elif isinstance(bucket, set):
                bucket.add(uid)
            elif bucket != uid:
                index[key] = {bucket, uid}
        seq = self._seq[uid]
        if new is None:
            self._active.discard(seq)
            self._inactive.discard(seq)
        elif new.get("active", True):
            self._inactive.discard(seq)
            self._active.add(seq)
        else:
            self._active.discard(seq)
            self._inactive.add(seq)

    def _store_new_user(self, candidate: dict[str, Any], uid: str | None) -> dict[str, Any]:
        """Finalize, number, store and index a new user."""
        uid = uid or self._new_id()
        stored = self._finalize_user(uid, candidate, None)
        self._check_deleted_names(stored)
        self._seq[uid] = len(self._seq_ids)
        self._seq_ids.append(uid)
        self._versions[uid] = 1
        self.users[uid] = stored
        self._reindex(uid, None, stored)
        return stored

    def _update_user(self, uid: str, candidate: dict[str, Any]) -> dict[str, Any]:
        """Finalize and store a new state of an existing user."""
        previous = self.users[uid]
        stored = self._finalize_user(uid, candidate, previous)
        self._versions[uid] += 1
        self.users[uid] = stored
        self._reindex(uid, previous, stored)
        if stored["displayName"] != previous["displayName"]:
            for ref in stored.get("groups", []):
                group = self.groups[ref["value"]]
                for member in group.get("members", []):
                    if member["value"] == uid:
                        member["display"] = stored["displayName"]
        return stored

    def _patch_user(self, uid: str, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a PatchOp body to a copy of the user, then store it."""
        operations = self._operations(body)
        work = copy.deepcopy(self.users[uid])
        for operation in operations:
            _USER_PATCHER.apply(work, operation)
        return self._update_user(uid, work)

    @staticmethod
    def _operations(body: dict[str, Any]) -> list[Any]:
        """The ``Operations`` of a PatchOp body, else 400 ``invalidSyntax``."""
        schemas = body.get("schemas")
        if not isinstance(schemas, list) or PATCH_SCHEMA not in schemas:
            raise _invalid_syntax(f"A PATCH body must list the schema {PATCH_SCHEMA}")
        key = _lookup_key(body, "Operations")
        operations = body.get(key) if key else None
        if not isinstance(operations, list) or not operations:
            raise _invalid_syntax("A PATCH body needs a non-empty 'Operations' list")
        return operations

    def _delete_user(self, uid: str) -> None:
        """Delete a user: out of groups, cleared as a manager, hidden."""
        user = self.users[uid]
        self._reindex(uid, user, None)
        for ref in user.get("groups", []):
            group = self.groups[ref["value"]]
            members = [m for m in group.get("members", []) if m["value"] != uid]
            self._replace_group_members(ref["value"], group, members)
        for report_id in self._lookup("manager", uid):
            report = copy.deepcopy(self.users[report_id])
            report[ENTERPRISE_USER].pop("manager", None)
            self._update_user(report_id, report)
        del self.users[uid]
        self._member_of.pop(uid, None)
        self.deleted_users[uid] = user
        self.deleted_names.add(user["userName"].lower())
        self.deleted_names.update(
            email["value"].lower() for email in user.get("emails", []) if email.get("value")
        )

    # ----------------------------------------------------------------- groups

    def _list_groups(self, request: Request) -> Response:
        """``GET /Groups`` (list or filter)."""
        start, count = self._paging(request, GROUP_SCHEMA, ())
        filter_text = request.param("filter")
        with self._lock:
            ids = self._group_order if not filter_text else self._filter_groups(filter_text)
            total = len(ids)
            page = [] if count == 0 else ids[start - 1 : start - 1 + count]
            resources = [self._render_group(request, self.groups[gid]) for gid in page]
            return self._list_response(total, start, resources)

    def _filter_groups(self, text: str) -> list[str]:
        """The groups a (supported) filter selects."""
        node = parse_filter(text)
        if isinstance(node, Compare) and node.op == "eq" and isinstance(node.value, str):
            schema, rest = split_urn(node.path, (GROUP_SCHEMA,))
            name = (rest if schema is not None else node.path).lower()
            if name == "id":
                return [node.value] if node.value in self.groups else []
            if name == "displayname":
                found = self._group_names.get(node.value.lower())
                return [found] if found else []
        raise bad_request(
            f"Unsupported filter {text!r}; supported group filters: id eq, displayName eq",
            "invalidFilter",
        )

    def _group(self, request: Request, gid: str) -> Response:
        """``GET``, ``PUT`` and ``PATCH /Groups/{id}``."""
        with self._lock:
            group = self.groups.get(gid)
            if group is None:
                raise ScimFault(404, f"Group {gid} not found")
            if request.method == "GET":
                cached = self._not_modified(request, group)
                if cached is not None:
                    return cached
                return self._resource_response(200, self._render_group(request, group))
            self._check_if_match(request, group)
            body = self._json_object(request)
            if request.method == "PUT":
                candidate: dict[str, Any] = {"meta": group["meta"]}
                for key, value in body.items():
                    if key.lower() in ("schemas", "id", "meta") or value is None:
                        continue
                    attr = GROUP_SCHEMA.attr(key)
                    if attr is None:
                        raise _invalid_syntax(f"Unknown attribute '{key}'")
                    candidate[attr.name] = _coerce(attr, value, attr.name)
            else:
                candidate = copy.deepcopy(group)
                for operation in self._operations(body):
                    _GROUP_PATCHER.apply(candidate, operation)
            self._commit_group(gid, candidate, group)
            stored = self.groups[gid]
            if request.method == "PATCH" and not self.patch_returns_body:
                return Response(204, b"", {"ETag": stored["meta"]["version"]})
            return self._resource_response(200, self._render_group(request, stored))

    def _commit_group(
        self, gid: str, candidate: dict[str, Any], previous: dict[str, Any] | None
    ) -> None:
        """Validate a group, store it, and update its members' ``groups`` attributes."""
        name = candidate.get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise _invalid_value("displayName is required")
        holder = self._group_names.get(name.lower())
        if holder is not None and holder != gid:
            raise ScimFault(409, f"A group named {name!r} already exists", "uniqueness")
        members: list[dict[str, Any]] = []
        seen: set[str] = set()
        for member in candidate.get("members", []):
            member_id = member.get("value")
            if not isinstance(member_id, str) or member_id not in self.users:
                raise _invalid_value(f"Group member {member_id!r} is not an existing user")
            if member_id in seen:
                continue
            seen.add(member_id)
            members.append({
                "value": member_id,
                "$ref": self._location("Users", member_id),
                "display": self.users[member_id]["displayName"],
            })
        if previous is not None:
            del self._group_names[previous["displayName"].lower()]
        self._group_names[name.lower()] = gid
        group: dict[str, Any] = {"schemas": [CORE_GROUP], "id": gid, "displayName": name}
        if candidate.get("externalId"):
            group["externalId"] = candidate["externalId"]
        group["members"] = members
        version = self._versions.get(gid, 0) + 1
        self._versions[gid] = version
        group["meta"] = {
            "resourceType": "Group",
            "created": candidate["meta"]["created"],
            "lastModified": _now(),
            "location": self._location("Groups", gid),
            "version": _version(version),
        }
        old_ids = {m["value"] for m in previous.get("members", [])} if previous else set()
        self.groups[gid] = group
        renamed = previous is not None and previous["displayName"] != name
        for member_id in seen - old_ids:
            self._member_of.setdefault(member_id, set()).add(gid)
        for member_id in old_ids - seen:
            self._member_of.get(member_id, set()).discard(gid)
        for member_id in (seen | old_ids) if renamed else (seen ^ old_ids):
            self._refresh_user_groups(member_id)

    def _replace_group_members(
        self, gid: str, group: dict[str, Any], members: list[dict[str, Any]]
    ) -> None:
        """Store ``group`` with ``members`` as its member list."""
        candidate = dict(group)
        candidate["members"] = members
        self._commit_group(gid, candidate, group)

    def _refresh_user_groups(self, uid: str) -> None:
        """Rewrite a user's read-only ``groups`` attribute from its memberships."""
        user = self.users.get(uid)
        if user is None:
            return
        group_ids = sorted(self._member_of.get(uid, ()), key=lambda g: self._group_seq.get(g, -1))
        refs = [
            {"value": gid, "$ref": self._location("Groups", gid),
             "display": self.groups[gid]["displayName"], "type": "direct"}
            for gid in group_ids
        ]
        updated = {key: value for key, value in user.items() if key != "groups"}
        if refs:
            updated["groups"] = refs
        self.users[uid] = {key: updated[key] for key in _USER_KEY_ORDER if key in updated}

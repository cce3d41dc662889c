"""SCIM 2.0 building blocks for the Genesys emulator (RFC 7643 / RFC 7644).

* :class:`ScimFault` — an error answer (RFC 7644 §3.12 body);
* :class:`Attr` / :class:`Schema` — the schemas the emulator serves at ``/Schemas`` and
  validates against (Genesys' subset of core User, the enterprise extension, the Genesys
  extension, core Group);
* :func:`parse_filter` — the RFC 7644 §3.4.2.2 filter grammar (``eq``, ``ne``, ``co``, ``sw``,
  ``ew``, ``gt``, ``ge``, ``lt``, ``le``, ``pr``, ``and``, ``or``, ``not``, ``( )``, ``[ ]``);
  string values are JSON strings, so ``\\"`` and ``\\\\`` escapes decode exactly;
* :func:`parse_path` — the PATCH ``path`` grammar (RFC 7644 §3.5.2, figure 1).

The emulator decides which of the parsed filters it supports; the parser itself is general.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GENESYS_USER = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"

SCIM_CONTENT_TYPE = "application/scim+json; charset=utf-8"


class ScimFault(Exception):
    """An error the emulator answers with (RFC 7644 §3.12)."""

    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """``scim_type`` is set only where RFC 7644 defines one (400s and 409 uniqueness)."""
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The error document: schemas, status (a string), scimType (when any), detail."""
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type is not None:
            body["scimType"] = self.scim_type
        body["detail"] = self.detail
        return body


def bad_request(detail: str, scim_type: str) -> ScimFault:
    """A 400 with ``scim_type``."""
    return ScimFault(400, detail, scim_type)


# --------------------------------------------------------------------------- schemas


@dataclass(frozen=True)
class Attr:
    """One attribute definition (RFC 7643 §7)."""

    name: str
    type: str = "string"
    multi: bool = False
    required: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    case_exact: bool = False
    canonical: tuple[str, ...] = ()
    sub: tuple[Attr, ...] = ()
    description: str = ""
    reference_types: tuple[str, ...] = ()

    def sub_attr(self, name: str) -> Attr | None:
        """The sub-attribute called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        for candidate in self.sub:
            if candidate.name.lower() == lowered:
                return candidate
        return None

    def to_json(self) -> dict[str, Any]:
        """The RFC 7643 §7 representation."""
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi,
            "description": self.description or self.name,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.canonical:
            data["canonicalValues"] = list(self.canonical)
        if self.reference_types:
            data["referenceTypes"] = list(self.reference_types)
        if self.sub:
            data["subAttributes"] = [s.to_json() for s in self.sub]
        return data


@dataclass(frozen=True)
class Schema:
    """A schema: its URN, name and attributes."""

    id: str
    name: str
    description: str
    attributes: tuple[Attr, ...]

    def attr(self, name: str) -> Attr | None:
        """The attribute called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        for candidate in self.attributes:
            if candidate.name.lower() == lowered:
                return candidate
        return None

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The ``/Schemas/{id}`` resource."""
        return {
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_json() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{self.id}"},
        }


PHONE_TYPES = ("work", "work2", "work3", "work4", "home", "mobile", "other", "microsoftteams")
EMAIL_TYPES = ("work", "home", "other")


def _proficiency_list(name: str, description: str) -> Attr:
    """A routingSkills-style attribute: [{name, proficiency}]."""
    return Attr(
        name,
        "complex",
        multi=True,
        description=description,
        sub=(
            Attr("name", case_exact=True, required=True, description="The name (case-sensitive)."),
            Attr("proficiency", "decimal", description="Proficiency, 0.0 to 5.0."),
        ),
    )


USER_SCHEMA = Schema(
    CORE_USER,
    "User",
    "Genesys Cloud user (the subset of the RFC 7643 core User schema Genesys implements).",
    (
        Attr(
            "userName",
            required=True,
            uniqueness="server",
            description="The user's Genesys Cloud email address; unique, case-insensitive.",
        ),
        Attr("displayName", required=True, description="The display name of the user."),
        Attr("active", "boolean", description="Whether the user is active."),
        Attr("title", description="The user's title."),
        Attr(
            "externalId",
            case_exact=True,
            description="An identifier for the user as defined by the provisioning client.",
        ),
        Attr(
            "password",
            mutability="writeOnly",
            returned="never",
            description="The new password for the Genesys Cloud user (random when omitted).",
        ),
        Attr(
            "emails",
            "complex",
            multi=True,
            description="Email addresses; the 'other' address mirrors userName and is read-only.",
            sub=(
                Attr("value", description="The email address."),
                Attr("type", canonical=EMAIL_TYPES, description="The type of email address."),
                Attr("primary", "boolean", description="Whether this is the primary address."),
            ),
        ),
        Attr(
            "phoneNumbers",
            "complex",
            multi=True,
            description="Phone numbers, E.164 or a tel URI (tel:+nnnnnnnn;ext=xxxxx).",
            sub=(
                Attr("value", description="The phone number, E.164 or tel URI."),
                Attr("type", canonical=PHONE_TYPES, description="The type of phone number."),
                Attr("primary", "boolean", description="Whether this is the primary number."),
            ),
        ),
        Attr(
            "roles",
            "complex",
            multi=True,
            description="Roles of the user (role names).",
            sub=(Attr("value", description="The role name."),),
        ),
        Attr(
            "groups",
            "complex",
            multi=True,
            mutability="readOnly",
            description="Groups the user is a member of; change membership through /Groups.",
            sub=(
                Attr("value", mutability="readOnly", description="The group id."),
                Attr(
                    "$ref",
                    "reference",
                    mutability="readOnly",
                    reference_types=("Group",),
                    description="The group URI.",
                ),
                Attr("display", mutability="readOnly", description="The group's display name."),
                Attr("type", mutability="readOnly", canonical=("direct",), description="direct"),
            ),
        ),
    ),
)

ENTERPRISE_SCHEMA = Schema(
    ENTERPRISE_USER,
    "EnterpriseUser",
    "Enterprise user extension (Genesys subset, plus division and dateHire).",
    (
        Attr("employeeNumber", description="The user's employee number."),
        Attr("department", description="The user's department."),
        Attr("division", description="The name of the user's Genesys Cloud division."),
        Attr("dateHire", description="Hire date, YYYY-MM-DD."),
        Attr(
            "manager",
            "complex",
            description="The user's manager (a Genesys user id).",
            sub=(
                Attr("value", description="The id of the manager."),
                Attr(
                    "$ref",
                    "reference",
                    mutability="readOnly",
                    reference_types=("User",),
                    description="The manager's URI.",
                ),
            ),
        ),
    ),
)

GENESYS_SCHEMA = Schema(
    GENESYS_USER,
    "GenesysUser",
    "Genesys Cloud user extension.",
    (
        _proficiency_list("routingSkills", "Routing skills (at most 50; names must exist)."),
        _proficiency_list("routingLanguages", "Routing languages (at most 50; names must exist)."),
        Attr(
            "externalIds",
            "complex",
            multi=True,
            description="External identifiers; the x-pc:scimv2:v1 authority is immutable.",
            sub=(
                Attr("authority", case_exact=True, required=True, description="The authority."),
                Attr("value", case_exact=True, required=True, description="The identifier."),
            ),
        ),
    ),
)

GROUP_SCHEMA = Schema(
    CORE_GROUP,
    "Group",
    "Genesys Cloud group (cannot be created or deleted over SCIM).",
    (
        Attr("displayName", required=True, uniqueness="server", description="The group name."),
        Attr("externalId", case_exact=True, description="The provisioning client's identifier."),
        Attr(
            "members",
            "complex",
            multi=True,
            description="The members of the group (users).",
            sub=(
                Attr("value", mutability="immutable", description="The member's id."),
                Attr(
                    "$ref",
                    "reference",
                    mutability="immutable",
                    reference_types=("User",),
                    description="The member's URI.",
                ),
                Attr("display", mutability="readOnly", description="The member's display name."),
                Attr("type", mutability="immutable", canonical=("User",), description="User"),
            ),
        ),
    ),
)

ALL_SCHEMAS = (USER_SCHEMA, ENTERPRISE_SCHEMA, GENESYS_SCHEMA, GROUP_SCHEMA)

#: RFC 7643 core User attributes Genesys does not implement: accepted and dropped.
IGNORED_CORE_USER_ATTRIBUTES = frozenset(
    name.lower()
    for name in (
        "name",
        "nickName",
        "profileUrl",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "addresses",
        "ims",
        "photos",
        "entitlements",
        "x509Certificates",
    )
)


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Compare:
    """``attrPath op value``."""

    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class Present:
    """``attrPath pr``."""

    path: str


@dataclass(frozen=True)
class Logical:
    """``left and right`` / ``left or right``."""

    op: str
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    """``not (inner)``."""

    inner: Filter


@dataclass(frozen=True)
class ValuePath:
    """``attrPath[inner]``."""

    path: str
    inner: Filter


Filter = Compare | Present | Logical | Not | ValuePath

_COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<punct>[()\[\]])
      | (?P<word>[^\s()\[\]"]+)
      | (?P<bad>")
    )""",
    re.VERBOSE,
)


def _invalid_filter(detail: str) -> ScimFault:
    """A 400 ``invalidFilter``."""
    return bad_request(detail, "invalidFilter")


def _tokenize(text: str) -> list[tuple[str, str]]:
    """Split a filter into (kind, text) tokens."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None or match.lastgroup == "bad":
            raise _invalid_filter(f"Unterminated string or bad character at position {pos}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _FilterParser:
    """Recursive-descent parser over the token list."""

    def __init__(self, text: str) -> None:
        """Tokenize ``text``."""
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def _peek(self) -> tuple[str, str] | None:
        """The next token, or None at the end."""
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> tuple[str, str]:
        """Consume and return the next token."""
        token = self._peek()
        if token is None:
            raise _invalid_filter(f"Unexpected end of filter: {self.text!r}")
        self.pos += 1
        return token

    def _keyword(self, word: str) -> bool:
        """Consume the keyword ``word`` (any case) if it comes next."""
        token = self._peek()
        if token is not None and token[0] == "word" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def _expect(self, punct: str) -> None:
        """Consume the punctuation ``punct`` or fail."""
        kind, value = self._next()
        if kind != "punct" or value != punct:
            raise _invalid_filter(f"Expected {punct!r} but found {value!r} in {self.text!r}")

    def parse(self) -> Filter:
        """The whole filter."""
        if not self.tokens:
            raise _invalid_filter("Empty filter")
        result = self._or()
        extra = self._peek()
        if extra is not None:
            raise _invalid_filter(f"Unexpected {extra[1]!r} in filter {self.text!r}")
        return result

    def _or(self) -> Filter:
        """``and``-terms joined by ``or``."""
        left = self._and()
        while self._keyword("or"):
            left = Logical("or", left, self._and())
        return left

    def _and(self) -> Filter:
        """Unary terms joined by ``and``."""
        left = self._unary()
        while self._keyword("and"):
            left = Logical("and", left, self._unary())
        return left

    def _unary(self) -> Filter:
        """``not (...)``, a parenthesised filter, or an attribute expression."""
        if self._keyword("not"):
            self._expect("(")
            inner = self._or()
            self._expect(")")
            return Not(inner)
        token = self._peek()
        if token == ("punct", "("):
            self.pos += 1
            inner = self._or()
            self._expect(")")
            return inner
        return self._attr_expression()

    def _attr_expression(self) -> Filter:
        """``attr op value``, ``attr pr`` or ``attr[filter]``."""
        kind, path = self._next()
        if kind != "word":
            raise _invalid_filter(f"Expected an attribute path but found {path!r}")
        token = self._peek()
        if token == ("punct", "["):
            self.pos += 1
            inner = self._or()
            self._expect("]")
            return ValuePath(path, inner)
        kind, op = self._next()
        op = op.lower()
        if kind != "word" or (op != "pr" and op not in _COMPARE_OPS):
            raise _invalid_filter(f"Unknown operator {op!r} in filter {self.text!r}")
        if op == "pr":
            return Present(path)
        return Compare(path, op, self._value())

    def _value(self) -> Any:
        """A comparison value: JSON string, true, false, null or a number."""
        kind, raw = self._next()
        if kind == "str":
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise _invalid_filter(f"Invalid string literal {raw}: {exc}") from exc
        if kind == "word":
            lowered = raw.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            if lowered == "null":
                return None
            try:
                return json.loads(raw)
            except ValueError:
                pass
        raise _invalid_filter(f"Invalid comparison value {raw!r}; strings must be quoted")


def parse_filter(text: str) -> Filter:
    """Parse a SCIM filter; raises :class:`ScimFault` (400 ``invalidFilter``)."""
    return _FilterParser(text).parse()


def _lookup(item: dict[str, Any], name: str) -> Any:
    """``item[name]`` with a case-insensitive name, or None."""
    if name in item:
        return item[name]
    lowered = name.lower()
    for key, value in item.items():
        if key.lower() == lowered:
            return value
    return None


def _compare(actual: Any, op: str, expected: Any) -> bool:
    """Evaluate ``actual op expected`` (strings case-insensitively)."""
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if actual is None or expected is None:
        return False
    if isinstance(actual, str) and isinstance(expected, str):
        if op == "co":
            return expected in actual
        if op == "sw":
            return actual.startswith(expected)
        if op == "ew":
            return actual.endswith(expected)
    if op in ("co", "sw", "ew"):
        return False
    try:
        if op == "gt":
            return bool(actual > expected)
        if op == "ge":
            return bool(actual >= expected)
        if op == "lt":
            return bool(actual < expected)
        return bool(actual <= expected)
    except TypeError:
        return False


def matches(node: Filter, item: dict[str, Any]) -> bool:
    """Whether a multi-valued attribute's element ``item`` satisfies a value filter.

    Attribute names are sub-attribute names; strings compare case-insensitively.
    """
    if isinstance(node, Compare):
        return _compare(_lookup(item, node.path), node.op, node.value)
    if isinstance(node, Present):
        value = _lookup(item, node.path)
        return value not in (None, "", [], {})
    if isinstance(node, Logical):
        if node.op == "and":
            return matches(node.left, item) and matches(node.right, item)
        return matches(node.left, item) or matches(node.right, item)
    if isinstance(node, Not):
        return not matches(node.inner, item)
    return False


def equalities(node: Filter) -> dict[str, Any] | None:
    """The ``{subAttr: value}`` a filter made only of ``eq`` joined by ``and`` pins, else None.

    Used to create the element a ``replace`` with a value filter targets when none exists.
    """
    if isinstance(node, Compare) and node.op == "eq":
        return {node.path: node.value}
    if isinstance(node, Logical) and node.op == "and":
        left, right = equalities(node.left), equalities(node.right)
        if left is None or right is None:
            return None
        return {**left, **right}
    return None


# --------------------------------------------------------------------------- paths


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

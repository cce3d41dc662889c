"""What a valid user is: reading a POST/PUT body, then checking and completing the
result (names, emails, phones, roles, the extensions, uniqueness) into the stored form."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from genesys_prov.sandbox.genesys.coercion import (
    coerce,
    coerce_scalar,
    schema_ordered,
    sub_ordered,
)
from genesys_prov.sandbox.genesys.meta import timestamp, weak_etag
from genesys_prov.sandbox.genesys.resource_types import (
    DEFAULT_ROLE,
    USER_EXTENSIONS,
    USER_KEY_ORDER,
    USER_SCHEMAS_LIST,
)
from genesys_prov.sandbox.genesys.user_index import UserIndex
from genesys_prov.sandbox.scim import (
    EMAIL_TYPES,
    ENTERPRISE_USER,
    GENESYS_USER,
    IGNORED_CORE_USER_ATTRIBUTES,
    PHONE_TYPES,
    USER_SCHEMA,
    ScimFault,
    split_urn,
)
from genesys_prov.sandbox.scim.errors import invalid_syntax, invalid_value

XPC_AUTHORITY = "x-pc:scimv2:v1"
DEFAULT_DIVISION = "Home"
#: Phone types stored in the same Genesys field (writing one replaces the other).
SHARED_PHONE_TYPES = frozenset({"other", "microsoftteams"})

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_TEL_URI = re.compile(r"^tel:\+[1-9]\d{1,14}(;ext=\d{1,10})?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class UserRules(UserIndex):
    """Turning a client's user into a valid stored user."""

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
                    coerce_scalar(attr, value, "password")
                    continue
                result[attr.name] = coerce(attr, value, attr.name)
                continue
            if lowered in IGNORED_CORE_USER_ATTRIBUTES:
                continue
            schema, rest = split_urn(key, (USER_SCHEMA, *USER_EXTENSIONS))
            if schema in USER_EXTENSIONS and not rest:
                assert schema is not None
                if not isinstance(value, dict):
                    raise invalid_value(f"'{key}' must be an object")
                extension: dict[str, Any] = {}
                for sub_key, sub_value in value.items():
                    sub_attr = schema.attr(sub_key)
                    if sub_attr is None:
                        raise invalid_syntax(f"Unknown attribute '{schema.id}:{sub_key}'")
                    if sub_value is None:
                        continue
                    extension[sub_attr.name] = coerce(
                        sub_attr, sub_value, f"{schema.id}:{sub_attr.name}"
                    )
                if extension:
                    result[schema.id] = extension
                continue
            raise invalid_syntax(f"Unknown attribute '{key}'")
        return result

    def _finalize_user(
        self, uid: str, candidate: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Recompute the read-only parts, validate, and order the keys; returns the resource."""
        user_name = self._check_user_names(candidate)
        candidate.setdefault("active", True)
        candidate.pop("password", None)
        self._finalize_contacts(candidate, user_name)
        self._finalize_roles(candidate, previous)

        if previous is not None and previous.get("groups"):
            candidate["groups"] = previous["groups"]
        else:
            candidate.pop("groups", None)

        candidate[ENTERPRISE_USER] = self._finalized_enterprise(
            uid, candidate.get(ENTERPRISE_USER)
        )
        candidate[GENESYS_USER] = self._finalized_genesys(uid, candidate.get(GENESYS_USER))

        candidate["schemas"] = list(USER_SCHEMAS_LIST)
        candidate["id"] = uid
        version = self._versions.get(uid, 0) + 1
        now = timestamp()
        candidate["meta"] = {
            "resourceType": "User",
            "created": previous["meta"]["created"] if previous else now,
            "lastModified": now,
            "location": self._location("Users", uid),
            "version": weak_etag(version),
        }
        self._check_unique_user_name(user_name, uid)
        self._order_user_attributes(candidate)
        return {key: candidate[key] for key in USER_KEY_ORDER if key in candidate}

    @staticmethod
    def _check_user_names(candidate: dict[str, Any]) -> str:
        """Check userName (an email address) and displayName are given; returns userName."""
        user_name = candidate.get("userName")
        if not isinstance(user_name, str) or not user_name.strip():
            raise invalid_value("userName is required")
        if not _EMAIL.match(user_name):
            raise invalid_value(f"userName must be an email address, got {user_name!r}")
        display_name = candidate.get("displayName")
        if not isinstance(display_name, str) or not display_name.strip():
            raise invalid_value("displayName is required")
        return user_name

    def _finalize_contacts(self, candidate: dict[str, Any], user_name: str) -> None:
        """Check emails and phone numbers; the ``other`` email always becomes userName."""
        emails = [e for e in candidate.get("emails", []) if (e.get("type") or "") != "other"]
        self._check_typed_list(emails, "emails", EMAIL_TYPES, self._check_email)
        emails.append({"value": user_name, "type": "other"})
        candidate["emails"] = emails

        phones = self._one_shared_phone(candidate.get("phoneNumbers", []))
        self._check_typed_list(phones, "phoneNumbers", PHONE_TYPES, self._check_phone)
        candidate["phoneNumbers"] = phones
        if not phones:
            candidate.pop("phoneNumbers", None)

    def _finalize_roles(self, candidate: dict[str, Any], previous: dict[str, Any] | None) -> None:
        """Check the roles given; a new user without roles gets the default role."""
        roles = candidate.get("roles")
        if roles is None and previous is None:
            candidate["roles"] = [{"value": DEFAULT_ROLE}]
        elif roles is not None:
            for role in roles:
                if role.get("value") not in self.role_names:
                    raise invalid_value(f"Unknown role {role.get('value')!r}")
            if not roles:
                candidate.pop("roles")

    def _finalized_enterprise(self, uid: str, given: dict[str, Any] | None) -> dict[str, Any]:
        """The enterprise extension checked, with a default division and a manager $ref."""
        enterprise = dict(given or {})
        enterprise.setdefault("division", DEFAULT_DIVISION)
        if enterprise["division"] not in self.divisions:
            raise invalid_value(f"The division {enterprise['division']!r} does not exist")
        manager = enterprise.get("manager")
        if manager is not None:
            manager_id = manager.get("value")
            if not manager_id:
                enterprise.pop("manager")
            elif manager_id not in self.users or manager_id == uid:
                raise invalid_value(f"Manager {manager_id!r} is not an existing user")
            else:
                enterprise["manager"] = {
                    "value": manager_id, "$ref": self._location("Users", manager_id)
                }
        hired = enterprise.get("dateHire")
        if hired is not None and not _DATE.match(hired):
            raise invalid_value(f"dateHire must be YYYY-MM-DD, got {hired!r}")
        return enterprise

    def _finalized_genesys(self, uid: str, given: dict[str, Any] | None) -> dict[str, Any]:
        """The Genesys extension checked, its first externalId the emulator's own (the id)."""
        genesys = dict(given or {})
        self._check_routing(genesys)
        kept = [
            entry
            for entry in genesys.get("externalIds", [])
            if not str(entry.get("authority", "")).startswith(XPC_AUTHORITY)
        ]
        for entry in kept:
            if not entry.get("authority") or not entry.get("value"):
                raise invalid_value("externalIds entries need an authority and a value")
        genesys["externalIds"] = [{"authority": XPC_AUTHORITY, "value": uid}, *kept]
        return genesys

    def _check_routing(self, genesys: dict[str, Any]) -> None:
        """Check the routing skills and languages: known names, at most 50, levels 0-5."""
        for name, known in (("routingSkills", self.routing_skills),
                            ("routingLanguages", self.routing_languages)):
            entries = genesys.get(name)
            if entries is None:
                continue
            if len(entries) > 50:
                raise invalid_value(f"At most 50 {name} are allowed")
            for entry in entries:
                if entry.get("name") not in known:
                    raise invalid_value(f"Unknown {name[:-1]} {entry.get('name')!r}")
                level = entry.get("proficiency", 0)
                if not 0 <= level <= 5:
                    raise invalid_value(f"{name} proficiency must be 0.0-5.0, got {level!r}")

    @staticmethod
    def _order_user_attributes(candidate: dict[str, Any]) -> None:
        """Put each schema's attributes and sub-attributes in schema order, in place."""
        for schema in (USER_SCHEMA, *USER_EXTENSIONS):
            container = candidate if schema is USER_SCHEMA else candidate[schema.id]
            if schema is not USER_SCHEMA:
                candidate[schema.id] = container = schema_ordered(schema, container)
            for attr in schema.attributes:
                value = container.get(attr.name)
                if attr.type == "complex" and isinstance(value, list):
                    container[attr.name] = [sub_ordered(attr, item) for item in value]
                elif attr.type == "complex" and isinstance(value, dict):
                    container[attr.name] = sub_ordered(attr, value)

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
            raise invalid_value(f"{where}: {value!r} is not an email address")

    @staticmethod
    def _check_phone(value: str, where: str) -> None:
        """Raise 400 unless ``value`` is E.164 or a tel URI."""
        if not (_E164.match(value) or _TEL_URI.match(value)):
            raise invalid_value(
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
                raise invalid_value(f"{name}: every element needs a type ({', '.join(types)})")
            if kind not in types:
                raise invalid_value(
                    f"{name}: type {kind!r} is not one of {', '.join(types)}"
                )
            if kind in seen:
                raise invalid_value(f"{name}: more than one element of type {kind!r}")
            seen.add(kind)
            value = item.get("value")
            if not value:
                raise invalid_value(f"{name}[type eq \"{kind}\"]: a value is required")
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

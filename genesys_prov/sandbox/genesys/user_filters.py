"""The user filters Genesys documents (``userName eq``, ``active eq false``, the
externalIds value filter, …) answered from the indexes, in creation order."""

from __future__ import annotations

from collections.abc import Iterable

from genesys_prov.sandbox._ranked import RankedSet
from genesys_prov.sandbox.genesys.resource_types import USER_EXTENSIONS
from genesys_prov.sandbox.genesys.user_index import UserIndex
from genesys_prov.sandbox.scim import (
    ENTERPRISE_SCHEMA,
    GENESYS_SCHEMA,
    GENESYS_USER,
    USER_SCHEMA,
    Compare,
    Logical,
    ValuePath,
    bad_request,
    equalities,
    parse_filter,
    split_urn,
)


class IdSequence:
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


class UserFilters(UserIndex):
    """Selecting users by a supported filter."""

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

    def _filter_users(self, text: str) -> RankedSet | IdSequence:
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
                return IdSequence([node.value] if node.value in self.users else [])
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

    def _ordered(self, ids: Iterable[str]) -> IdSequence:
        """``ids`` in creation order."""
        return IdSequence(sorted(ids, key=self._seq.__getitem__))

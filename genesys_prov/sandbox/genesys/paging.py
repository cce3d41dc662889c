"""The page-size rules of listings: ``startIndex`` and ``count``, the trim to 25 of an
untrimmed page, ``max_results``, and the 429 for large pages of expensive attributes."""

from __future__ import annotations

from genesys_prov.sandbox._http import Request
from genesys_prov.sandbox.genesys.projection import parse_attribute_list
from genesys_prov.sandbox.genesys.resource_types import (
    EXPENSIVE_ATTRIBUTES,
)
from genesys_prov.sandbox.genesys.state import GenesysState
from genesys_prov.sandbox.scim import (
    Schema,
    ScimFault,
)
from genesys_prov.sandbox.scim.errors import invalid_value

#: Largest page served without trimming (Genesys: "internal resource limits").
UNTRIMMED_PAGE_LIMIT = 25
DEFAULT_COUNT = 25


class Paging(GenesysState):
    """Deciding the page a listing request gets."""

    @staticmethod
    def _int_param(request: Request, name: str) -> int | None:
        """An integer query parameter, or None when absent."""
        text = request.param(name)
        if text is None or text == "":
            return None
        try:
            return int(text)
        except ValueError as exc:
            raise invalid_value(f"'{name}' must be an integer, got {text!r}") from exc

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
        attributes = parse_attribute_list(request.param("attributes"), core, extensions)
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
            excluded = parse_attribute_list(
                request.param("excludedAttributes"), core, extensions
            )
            for path in excluded or ():
                if path.attr is None:
                    returned = {item for item in returned if item[0] != path.schema.id}
                elif path.sub is None:
                    returned.discard((path.schema.id, path.attr.name))
        return sorted(name for _, name in returned & wanted)

"""OData query options of ``/v1.0`` listings: which ``$`` options are allowed,
``$select``, ``$top``, ``$skiptoken`` paging and ``@odata.context``."""

from __future__ import annotations

import binascii
from typing import Any
from urllib.parse import quote, urlencode

from genesys_prov.sandbox._http import Request
from genesys_prov.sandbox.graph.answers import GraphError
from genesys_prov.sandbox.graph.encoding import b64url, b64url_decode
from genesys_prov.sandbox.graph.state import GraphState

MAX_TOP = 999
DEFAULT_TOP = 100
EXPAND_MAX_TOP = 100
_KNOWN_OPTIONS = frozenset({"$select", "$top", "$expand", "$skiptoken"})
_UNSUPPORTED_OPTIONS = frozenset(
    {"$filter", "$orderby", "$search", "$count", "$skip", "$format", "$apply", "$deltatoken"}
)


class QueryOptions(GraphState):
    """Reading the query options of a request and cutting pages."""

    def _options(self, request: Request) -> dict[str, str]:
        """The ``$`` query options, lower-cased; 400 for unknown or unsupported ones."""
        options: dict[str, str] = {}
        for name, values in request.query.items():
            lowered = name.lower()
            if not lowered.startswith("$"):
                continue
            if lowered in _UNSUPPORTED_OPTIONS:
                raise GraphError(400, "Request_UnsupportedQuery",
                                 f"The query option '{name}' is not supported by the sandbox.")
            if lowered not in _KNOWN_OPTIONS:
                raise GraphError(400, "BadRequest",
                                 f"Query option '{name}' is not allowed. Make sure that the "
                                 "query option is valid and is allowed for this resource.")
            options[lowered] = values[0]
        return options

    @staticmethod
    def _select(text: str | None, lookup: dict[str, str], type_name: str,
                default: tuple[str, ...]) -> list[str]:
        """The properties ``$select`` names (``id`` first), or the default set."""
        if text is None:
            return list(default)
        names = ["id"]
        for raw in text.split(","):
            name = raw.strip()
            if not name:
                continue
            lowered = name.lower()
            canonical = lookup.get(lowered)
            if canonical is None and lowered.startswith("extension_"):
                canonical = name
            if canonical is None:
                raise GraphError(400, "Request_BadRequest",
                                 f"Could not find a property named '{name}' on type "
                                 f"'microsoft.graph.{type_name}'.")
            if canonical not in names:
                names.append(canonical)
        return names

    @staticmethod
    def _top(options: dict[str, str]) -> int:
        """The page size (``$top``, 1..999, default 100)."""
        text = options.get("$top")
        if text is None:
            return DEFAULT_TOP
        try:
            top = int(text)
        except ValueError:
            top = 0
        if not 1 <= top <= MAX_TOP:
            raise GraphError(400, "Request_BadRequest",
                             f"Invalid page size specified: '{text}'. Must be between 1 and "
                             f"{MAX_TOP} inclusive.")
        return top

    @staticmethod
    def _offset(options: dict[str, str]) -> int:
        """The offset an opaque ``$skiptoken`` encodes (0 without one)."""
        token = options.get("$skiptoken")
        if token is None:
            return 0
        try:
            text = b64url_decode(token).decode("ascii")
            prefix, _, number = text.partition(":")
            if prefix != "sbx1":
                raise ValueError(prefix)
            return int(number)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise GraphError(400, "Directory_ExpiredPageToken",
                             "The specified page token value has expired or is invalid.") from exc

    def _page(self, request: Request, base_path: str, options: dict[str, str],
              items: list[Any], context: str) -> tuple[list[Any], dict[str, Any]]:
        """Cut one page out of ``items`` and build the envelope (without ``value``).

        As in Graph (known issue 13635), ``$expand`` on directory objects returns at most
        100 objects a page, whatever ``$top`` asks for."""
        top = self._top(options)
        if options.get("$expand"):
            top = min(top, EXPAND_MAX_TOP)
        offset = self._offset(options)
        page = items[offset : offset + top]
        envelope: dict[str, Any] = {"@odata.context": context}
        if offset + top < len(items):
            params = [
                (name, values[0])
                for name, values in request.query.items()
                if name.lower() != "$skiptoken"
            ]
            params.append(("$skiptoken", b64url(f"sbx1:{offset + top}".encode())))
            query = urlencode(params, safe="$,()=", quote_via=quote)
            envelope["@odata.nextLink"] = f"{self.graph_url}{base_path}?{query}"
        return page, envelope

    def _context(self, entity_set: str, select: list[str] | None) -> str:
        """An ``@odata.context`` URL."""
        suffix = f"({','.join(select)})" if select else ""
        return f"{self.graph_url}/v1.0/$metadata#{entity_set}{suffix}"

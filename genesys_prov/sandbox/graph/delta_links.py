"""Delta links: the ``$deltatoken`` / ``$skiptoken`` a delta page links to, and the
checks of the token a request comes back with (kind, generation, select hash)."""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import quote, urlencode

from genesys_prov.sandbox.graph.answers import GraphError
from genesys_prov.sandbox.graph.encoding import b64url, b64url_decode

DELTA_TOKEN = "sbx-delta"
DELTA_PAGE = "sbx-delta-page"

DeltaPage: TypeAlias = tuple[list[dict[str, Any]], str | None, str | None]


@dataclass(frozen=True, slots=True)
class DeltaLinks:
    """The links of one delta request (``kind`` users or groups) and the checks of the
    token it came with: a token is ``prefix:kind:generation:select hash:fields…``."""

    kind: str
    generation: str
    select_hash: str
    base: str
    select: list[tuple[str, str]]
    options: dict[str, str]

    def link(self, option: str, *fields: object) -> str:
        """A link with a ``$deltatoken`` or ``$skiptoken`` (``option``) holding ``fields``."""
        prefix = DELTA_TOKEN if option == "$deltatoken" else DELTA_PAGE
        token = b64url(":".join(
            str(f) for f in (prefix, self.kind, self.generation, self.select_hash, *fields)
        ).encode())
        query = urlencode([*self.select, (option, token)], safe="$,()=", quote_via=quote)
        return f"{self.base}?{query}"

    def page(self, values: list[dict[str, Any]], more: bool, next_fields: tuple[object, ...],
             delta_fields: tuple[object, ...]) -> DeltaPage:
        """A page's values with its nextLink (when ``more``) or else its deltaLink."""
        next_link = self.link("$skiptoken", *next_fields) if more else None
        delta_link = None if more else self.link("$deltatoken", *delta_fields)
        return values, next_link, delta_link

    def gone(self, reason: str) -> GraphError:
        """The 410 answer to a token that cannot be followed, pointing at a new round."""
        location = self.base
        if self.select:
            location += "?" + urlencode(self.select, safe="$,()=", quote_via=quote)
        return GraphError(410, "syncStateNotFound",
                          f"The delta token is {reason}; start a new round (full sync) "
                          "at the Location given.", {"Location": location})

    def decode(self, option: str, prefix: str) -> list[str]:
        """The fields after the select hash of a token of ours, else 410 (or 400)."""
        try:
            parts = b64url_decode(self.options[option]).decode("ascii").split(":")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            parts = []
        if len(parts) < 5 or parts[0] != prefix or parts[1] != self.kind:
            raise self.gone("malformed or unknown")
        if parts[2] != self.generation:
            raise self.gone("expired")
        if parts[3] != self.select_hash:
            raise GraphError(400, "Request_BadRequest",
                             "The $select of a delta link cannot be changed: follow the "
                             "link as given, or start a new round for other properties.")
        return parts[4:]

    def numbers(self, fields: list[str], count: int) -> list[int]:
        """``count`` sequence numbers / ordinals (each -1 or more), else 410."""
        try:
            parsed = [int(f) for f in fields]
        except ValueError:
            parsed = []
        if len(parsed) != count or any(n < -1 for n in parsed):
            raise self.gone("malformed or unknown")
        return parsed

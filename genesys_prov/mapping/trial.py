"""``mapping test``: evaluate one expression for a user given as options or a JSON file
(the Graph read, when asked, is the caller's). Nothing here prints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from genesys_prov.errors import ConfigError
from genesys_prov.mapping import expressions
from genesys_prov.mapping.mappings import (
    graph_property,
    read_source,
)

BOOLEAN_SOURCES = frozenset({"accountEnabled", "IsSoftDeleted", "showInAddressList",
                             "onPremisesSyncEnabled"})


def parse_attr_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` options into source attributes; a repeated name becomes a list
    (a multi-valued attribute). ``true``/``false`` for boolean properties become booleans."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--attr {pair!r}: expected NAME=VALUE")
        typed: Any = value
        if name in BOOLEAN_SOURCES and value.lower() in ("true", "false"):
            typed = value.lower() == "true"
        if name in out:
            previous = out[name]
            out[name] = [*previous, typed] if isinstance(previous, list) else [previous, typed]
        else:
            out[name] = typed
    return out


def load_user_file(path: str | Path) -> dict[str, Any]:
    """A Graph user object from a JSON file (as ``GET /users/{id}`` returns it)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--user {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"--user {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"--user {path}: expected a JSON object (one user)")
    return data


@dataclass(frozen=True)
class ExpressionResult:
    """The value of an expression for one set of source attributes."""

    value: Any
    ignored: bool
    redacted: bool

    def data(self, reveal: bool = False) -> dict[str, Any]:
        """``{"value": ...}`` (masked when redacted unless ``reveal``)."""
        value = self.value
        if self.redacted and not reveal and value is not None:
            value = "[Redact]"
        out: dict[str, Any] = {"value": value}
        if self.ignored:
            out["ignored"] = True
        return out


def try_expression(text: str, user: dict[str, Any]) -> ExpressionResult:
    """Evaluate ``text`` (an Entra expression, or a bare ``[attribute]``) against a user's
    source attributes. Entra and Graph names both resolve; an attribute given explicitly
    wins over a computed one (so ``IsSoftDeleted=True`` can be tested directly).
    ``DefaultDomain()`` reads ``user["DefaultDomain"]`` (``--attr DefaultDomain=contoso.com``
    offline): the tenant's default domain is no attribute of the user, so it is given here.

    Example::

        try_expression('Append([givenName], "!")', {"givenName": "Zoë"}).value  # 'Zoë!'
    """
    expression = expressions.parse(text)

    def lookup(name: str) -> Any:
        if name in user:
            value = user[name]
            return None if value == "" else value
        return read_source(user, name)

    value = expression.evaluate(lookup)
    ignored = value is expressions.IGNORE
    return ExpressionResult(None if ignored else value, ignored, expression.redacted)


def graph_select_for(text: str) -> list[str]:
    """The Graph ``$select`` an expression needs."""
    names = expressions.parse(text).attributes()
    props = {"id", "userPrincipalName", "accountEnabled"}
    for name in names:
        prop = graph_property(name)
        if prop is not None:
            props.add(prop.split(".", 1)[0])
    return sorted(props)


def graph_user_path(upn: str) -> str:
    """``/users/{upn}`` with the UPN escaped for a URL path."""
    return f"/users/{quote(upn, safe='@')}"

"""``mapping test``: evaluate one expression for a user given as options or a JSON file
(the Graph read, when asked, is the caller's). Nothing here prints."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from genesys_prov.errors import ConfigError
from genesys_prov.mapping import expressions
from genesys_prov.mapping.mappings import (
    graph_property,
    known_source,
    read_source,
    suggest_source,
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


def check_source_names(text: str, attr_names: Iterable[str],
                       given: Iterable[str] = ()) -> None:
    """Refuse what would silently evaluate to null: an ``--attr`` name that is a known
    attribute in the wrong case, and an attribute the expression reads that is neither
    known nor given (by ``--attr`` or ``given``, the keys of a ``--user`` file). Raises
    ConfigError naming the attribute it likely meant.

    Example::

        check_source_names("[jobTitel]", [])  # ConfigError: ... did you mean 'jobTitle'?
    """
    for name in attr_names:
        meant = suggest_source(name)
        if not known_source(name) and meant and meant.lower() == name.lower():
            raise ConfigError(f"--attr {name}: unknown source attribute {name!r}, did you "
                              f"mean {meant!r}? (names are case-sensitive)")
    provided = set(attr_names) | set(given)
    for name in sorted(expressions.parse(text).attributes()):
        if not known_source(name) and name not in provided:
            meant = suggest_source(name)
            hint = f", did you mean {meant!r}?" if meant else (
                " (give its value with --attr NAME=VALUE to test with it)")
            raise ConfigError(f"unknown source attribute {name!r}{hint}")


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

"""The library side of ``mapping test`` and ``mapping validate``: where the user's
attributes and the target's schema come from (a file, options, Microsoft Graph, the
target's ``/Schemas`` or the built-in Genesys schema)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genesys_prov.config import Config, find_config
from genesys_prov.errors import ConfigError
from genesys_prov.mapping import expressions, trial, validation
from genesys_prov.mapping.mappings_file import load_mappings
from genesys_prov.sync.connections import connect


def evaluate_expression(expression: str, attrs: Sequence[str], user_file: str | None = None,
                    upn: str | None = None,
                    config: Callable[[], Config] | None = None) -> trial.ExpressionResult:
    """Evaluate one expression for a user whose attributes come from ``user_file``, then
    Microsoft Graph (``upn``, with the configuration ``config()`` loads), then ``attrs``
    (``NAME=VALUE``; later ones win). A syntax error raises before any request.
    ``DefaultDomain()`` is ``--attr DefaultDomain=DOMAIN`` when given, else (with
    ``upn``) the tenant's, read from Graph.

    Example::

        evaluate_expression("ToLower([userPrincipalName])", ["userPrincipalName=A@B.com"])
    """
    parsed = expressions.parse(expression)
    user: dict[str, Any] = {}
    if user_file:
        user.update(trial.load_user_file(user_file))
    given = trial.parse_attr_options(attrs)
    if upn:
        if config is None:
            raise ConfigError("--from-graph needs the configuration")
        conn = connect(config())
        user.update(conn.graph.get(trial.graph_user_path(upn),
                                   {"$select": ",".join(trial.graph_select_for(expression))}))
        if parsed.uses_default_domain and expressions.DEFAULT_DOMAIN not in given:
            user[expressions.DEFAULT_DOMAIN] = conn.graph.default_domain()
    user.update(given)
    return trial.try_expression(expression, user)


@dataclass
class Validation:
    """What ``mapping validate`` checked, against what, and what it found."""

    path: Path
    schema: str
    findings: list[validation.Finding]

    @property
    def errors(self) -> list[validation.Finding]:
        """The findings that are errors (warnings aside)."""
        return [f for f in self.findings if f.level == "error"]

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"mappings": str(self.path), "schema": self.schema, "ok": not self.errors,
                "findings": [f.data() for f in self.findings]}


def _optional_config(config_path: str | None, load: Callable[[], Config],
                     offline: bool) -> Config | None:
    """The configuration when there is one; without one, validation goes offline (an
    explicit --config that cannot be read is an error unless --offline)."""
    try:
        find_config(config_path)
    except ConfigError:
        if not offline and config_path:
            raise
        return None
    return load()


def validate_mappings_file(mappings_path: str | None, offline: bool, config_path: str | None,
                           load: Callable[[], Config]) -> Validation:
    """Check a mappings file (the given one, else the configuration's, else
    ./mappings.yaml) against the target's ``/Schemas`` — or, offline or without a
    configuration, the built-in Genesys schema (a generic target: none).

    Example::

        validate_mappings_file("mappings.yaml", True, None, lambda: load_config(None)).errors
    """
    config = None
    if not offline or mappings_path is None:
        config = _optional_config(config_path, load, offline)
    path = Path(mappings_path) if mappings_path else \
        (config.mappings_path if config else Path("mappings.yaml"))
    mappings = load_mappings(path)
    flavor = config.target.flavor if config else "genesys"
    schemas: list[dict[str, Any]] | None = None
    source = "none (generic target, offline)"
    if config is not None and not offline:
        body = connect(config).scim.get("/Schemas", auth=True)
        items = body.get("Resources") if isinstance(body, dict) else body
        schemas = items if isinstance(items, list) else None
        source = f"the target's /Schemas ({len(schemas or [])} schemas)"
    elif flavor == "genesys":
        schemas = validation.builtin_genesys_schemas()
        source = "the built-in Genesys schema"
    return Validation(path, source, validation.validate_mappings(mappings, schemas, flavor))

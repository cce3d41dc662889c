"""The checks made before anything is written: output paths, and every mapped target
attribute against the target's schema."""

from __future__ import annotations

import logging
from typing import Any

from genesys_prov.config import Config
from genesys_prov.errors import (
    ConfigError,
    TargetError,
)
from genesys_prov.mapping.mappings import Mappings
from genesys_prov.mapping.validation import builtin_genesys_schemas, schema_errors
from genesys_prov.state.db import State
from genesys_prov.sync.connections import Connections

log = logging.getLogger(__name__)


SCHEMA_META = "schema_checked"


def check_target_schema(config: Config, mappings: Mappings, conn: Connections, state: State,
                        digest: str) -> None:
    """Every mapped target attribute must exist in the target's schema before anything is
    written (otherwise every user fails with HTTP 400): the built-in Genesys schema for
    ``flavor: genesys``; the target's ``/Schemas`` (plus RFC 7643's common attributes) for
    generic targets, read once per settings digest. Raises ConfigError (exit 2)."""
    if config.target.flavor == "genesys":
        schemas: list[dict[str, Any]] | None = builtin_genesys_schemas()
        where = "the built-in Genesys schema"
    elif state.get_meta(SCHEMA_META) == digest:
        return
    else:
        try:
            body = conn.scim.get("/Schemas")
        except TargetError as exc:
            if exc.status in (404, 405, 501):
                log.warning("the target does not offer /Schemas; mapped attributes are not "
                            "checked before writing")
                return
            raise
        items = body.get("Resources") if isinstance(body, dict) else body
        schemas = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else None
        where = "the target's /Schemas"
        if not schemas:
            return
    errors = schema_errors(mappings, schemas, config.target.flavor)
    if errors:
        first = "; ".join(f"{f.where}: {f.message}" for f in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ConfigError(f"{config.mappings_path.name}: {len(errors)} mapping error(s) "
                          f"against {where}: {first}{more}; nothing was written (see "
                          "`genesys-prov mapping validate`)")
    if config.target.flavor != "genesys":
        state.set_meta(SCHEMA_META, digest)

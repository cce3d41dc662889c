"""The library side of ``mapping test``, ``mapping validate`` and ``mapping import``: where
the user's attributes, the target's schema and Entra's provisioning schema come from (a file,
options, Microsoft Graph, the target's ``/Schemas`` or the built-in Genesys schema), and
writing an imported mappings file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from genesys_prov.config import Config, find_config, load_config, read_text
from genesys_prov.errors import ConfigError, MappingError
from genesys_prov.mapping import entra_import, expressions, trial, validation
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
    trial.check_source_names(expression, [a.partition("=")[0] for a in attrs], user)
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
            return load()  # the caller's loader names where the path came from
        return None
    # offline, only the mappings path and the flavor are read: no secret is needed
    return load_config(config_path, secrets=False) if offline else load()


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


@dataclass
class Imported:
    """What ``mapping import`` did: the conversion, notes on where the schema came from
    (which job was used), and the file written (None: printed)."""

    result: entra_import.ImportResult
    notes: list[str]
    out: Path | None = None

    @property
    def ok(self) -> bool:
        """True when the imported mappings load and pass validation."""
        return self.result.ok

    def data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**self.result.data(), "notes": self.notes,
                "out": str(self.out) if self.out else None}

    def raise_if_invalid(self) -> None:
        """Raise :class:`MappingError` (exit 2) when the imported mappings do not load or
        do not pass validation, naming the first error."""
        errors = [f for f in self.result.findings if f.level == "error"]
        if errors:
            where = f"{self.out}" if self.out else "the imported mappings"
            raise MappingError(f"{where} do not pass `mapping validate --offline` "
                               f"({len(errors)} error(s)): {errors[0].where}: "
                               f"{errors[0].message.splitlines()[0]}")


def import_mappings(from_file: str | None, from_entra: str | None, out: str | None = None,
                    force: bool = False, config: Callable[[], Config] | None = None,
                    today: str | None = None) -> Imported:
    """Convert Entra's provisioning schema into mappings: from a downloaded schema file,
    or from Graph (``from_entra``: a service principal id, or ``""`` for the configured
    ``source.service_principal_id``). With ``out`` the text is written there atomically,
    never over an existing file unless ``force``.

    Example::

        done = import_mappings("schema.json", None, out="mappings.yaml")
        done.result.not_converted
    """
    if (from_file is None) == (from_entra is None):
        raise ConfigError("give one of --from-entra [SP_ID] or --from-file PATH")
    out_path = Path(out) if out else None
    if out_path is not None and out_path.exists() and not force:
        raise ConfigError(f"{out} already exists: pass --force to overwrite it")
    generated = today or datetime.now(UTC).date().isoformat()
    notes: list[str] = []
    if from_file is not None:
        schema, source = read_schema_file(Path(from_file)), f"file {from_file}"
    else:
        if config is None:
            raise ConfigError("--from-entra needs the configuration")
        schema, source, notes = read_schema_from_entra(config(), from_entra or None)
    result = entra_import.convert_schema(schema, source, generated)
    if out_path is not None:
        write_new_file(out_path, result.text, force)
    return Imported(result, notes, out_path)


def read_schema_file(path: Path) -> dict[str, Any]:
    """A ``synchronizationSchema`` saved as JSON (Graph's answer or the portal's download);
    not JSON, or a Graph list instead of a schema, is a one-line :class:`MappingError`."""
    text = read_text(path, MappingError, "schema file ").lstrip("\ufeff")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MappingError(f"{path}: not JSON: {exc.msg} at line {exc.lineno}, column "
                           f"{exc.colno}") from None
    if isinstance(data, dict) and isinstance(data.get("value"), list):
        raise MappingError(f"{path}: a Graph list ({{\"value\": [...]}}), not a "
                           "synchronizationSchema: save the job's schema (GET /servicePrincipals/"
                           "{id}/synchronization/jobs/{jobId}/schema, or the portal's "
                           "Provisioning > Mappings > Advanced > Review your schema)")
    if not isinstance(data, dict) or not isinstance(data.get("synchronizationRules"), list):
        raise MappingError(f"{path}: not a synchronizationSchema (expected a JSON object with "
                           "a 'synchronizationRules' list)")
    return data


def read_schema_from_entra(config: Config, service_principal_id: str | None
                           ) -> tuple[dict[str, Any], str, list[str]]:
    """The schema of the application's provisioning job that provisions a SCIM app, where
    it came from, and which job was used when there are several."""
    sp = service_principal_id or config.source.service_principal_id
    if not sp:
        raise ConfigError("--from-entra needs the enterprise application's service principal "
                          "id: --from-entra SP_ID, or source.service_principal_id")
    graph = connect(config).graph
    jobs = graph.synchronization_jobs(sp)
    if not jobs:
        raise ConfigError(f"the application (service principal {sp}) has no provisioning job: "
                          "nothing to import")
    picked: list[tuple[str, dict[str, Any]]] = []
    skipped: list[str] = []
    for job in jobs:
        job_id = str(job.get("id"))
        schema = graph.synchronization_schema(sp, job_id)
        rule = entra_import.scim_rule(schema) \
            if isinstance(schema.get("synchronizationRules"), list) else None
        if rule is None:
            skipped.append(f"{job_id} (no rule from Entra to an application)")
        else:
            picked.append((job_id, schema))
    if not picked:
        raise ConfigError(f"no provisioning job of service principal {sp} provisions a SCIM "
                          f"app: {', '.join(skipped)}")
    job_id, schema = picked[0]
    notes = []
    if len(jobs) > 1:
        others = skipped + [f"{other} (also provisions an app; the first one is used)"
                            for other, _ in picked[1:]]
        notes.append(f"{len(jobs)} provisioning jobs: using {job_id} (its schema has a rule "
                     f"from Entra to an application); not used: {', '.join(others)}")
    return schema, f"service principal {sp}", notes


def write_new_file(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file beside it, then renamed);
    an existing file is replaced only with ``force``."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        if force:
            os.replace(tmp, path)
        else:
            path.hardlink_to(tmp)  # fails when the file appeared meanwhile: never overwrites
    except FileExistsError:
        raise ConfigError(f"{path} already exists: pass --force to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)

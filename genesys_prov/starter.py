"""A starter configuration (``genesys-prov init``): ``genesys-prov.yaml`` from the answers
given, and the default ``mappings.yaml``. Secrets are never written: the configuration
reads them from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genesys_prov.config import parse_config
from genesys_prov.errors import ConfigError
from genesys_prov.mapping.mappings_file import default_mappings_text

TEMPLATE = """\
# genesys-prov configuration, written by `genesys-prov init`. Secrets come from the
# environment: export GRAPH_CLIENT_SECRET and {secret_var} before running.
source:
  tenant_id: {tenant_id}
  client_id: {client_id}
  client_secret: ${{GRAPH_CLIENT_SECRET}}
  scope: {scope}
{sp_line}target:
  url: {target_url}
{auth_block}  flavor: {flavor}
  rate_limit_per_minute: 300
  concurrency: 4
mappings: mappings.yaml
safety:
  max_deactivations: 500
  max_source_drop: "30%"
"""


@dataclass(frozen=True)
class Answers:
    """What ``init`` asked (or was given as options)."""

    tenant_id: str
    client_id: str
    target_url: str
    scope: str = "assigned"
    flavor: str = "genesys"
    service_principal_id: str | None = None
    genesys_client_id: str | None = None   # None: a static token


@dataclass(frozen=True)
class Starter:
    """The files written, and the secrets' environment variables they read."""

    config_path: Path
    mappings_path: Path
    secrets: tuple[str, ...]


def write_starter(directory: Path, answers: Answers, force: bool = False) -> Starter:
    """Write ``genesys-prov.yaml`` and ``mappings.yaml`` into ``directory`` and validate
    what was written; refuses to overwrite without ``force`` (ConfigError, exit 2).

    Example::

        write_starter(Path("."), Answers("contoso.onmicrosoft.com", "1111…", url))
    """
    config_path = directory / "genesys-prov.yaml"
    mappings_path = directory / "mappings.yaml"
    for path in (config_path, mappings_path):
        if path.exists() and not force:
            raise ConfigError(f"init: {path} exists (use --force to overwrite)")
    if answers.genesys_client_id:
        secret_var = "GENESYS_CLIENT_SECRET"
        auth = (f"  oauth: {{client_id: {answers.genesys_client_id}, "
                f"client_secret: ${{GENESYS_CLIENT_SECRET}}}}\n")
    else:
        secret_var = "GENESYS_TOKEN"
        auth = "  token: ${GENESYS_TOKEN}\n"
    sp_line = f"  service_principal_id: {answers.service_principal_id}\n" \
        if answers.service_principal_id else ""
    text = TEMPLATE.format(
        tenant_id=answers.tenant_id, client_id=answers.client_id, scope=answers.scope,
        target_url=answers.target_url, sp_line=sp_line, auth_block=auth,
        flavor=answers.flavor, secret_var=secret_var)
    directory.mkdir(parents=True, exist_ok=True)
    config_path.write_text(text, encoding="utf-8")
    mappings_path.write_text(default_mappings_text(), encoding="utf-8")
    secrets = ("GRAPH_CLIENT_SECRET", secret_var)
    # validate what was written, whatever the environment holds
    parse_config(text, base_dir=directory, environ={v: "placeholder" for v in secrets})
    return Starter(config_path, mappings_path, secrets)

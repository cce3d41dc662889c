"""A starter configuration (``genesys-prov init``): ``genesys-prov.yaml`` from the answers
given, and the default ``mappings.yaml``. Secrets are never written: the configuration
reads them from the environment.

The Genesys Cloud regions (:data:`REGIONS`: the region's API host gives the SCIM URL and
the OAuth token URL) and Microsoft's national clouds (:data:`CLOUDS`: the Entra authority
and the Graph root) are the documented lists. Both files are validated, then written aside
and renamed only when both are ready: a failure leaves no half-written configuration.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from genesys_prov.config import parse_config
from genesys_prov.errors import ConfigError
from genesys_prov.mapping.mappings_file import default_mappings_text

#: Genesys Cloud regions: name → (API host, where). The SCIM URL is
#: ``https://api.<host>/api/v2/scim/v2`` and the token URL ``https://login.<host>/oauth/token``.
REGIONS: dict[str, tuple[str, str]] = {
    "us-east-1": ("mypurecloud.com", "Americas (US East)"),
    "us-east-2": ("use2.us-gov-pure.cloud", "Americas (US East 2, FedRAMP)"),
    "us-west-2": ("usw2.pure.cloud", "Americas (US West)"),
    "ca-central-1": ("cac1.pure.cloud", "Americas (Canada)"),
    "sa-east-1": ("sae1.pure.cloud", "Americas (São Paulo)"),
    "eu-west-1": ("mypurecloud.ie", "EMEA (Dublin)"),
    "eu-west-2": ("euw2.pure.cloud", "EMEA (London)"),
    "eu-central-1": ("mypurecloud.de", "EMEA (Frankfurt)"),
    "eu-central-2": ("euc2.pure.cloud", "EMEA (Zurich)"),
    "me-central-1": ("mec1.pure.cloud", "EMEA (UAE)"),
    "ap-south-1": ("aps1.pure.cloud", "Asia Pacific (Mumbai)"),
    "ap-northeast-1": ("mypurecloud.jp", "Asia Pacific (Tokyo)"),
    "ap-northeast-2": ("apne2.pure.cloud", "Asia Pacific (Seoul)"),
    "ap-northeast-3": ("apne3.pure.cloud", "Asia Pacific (Osaka)"),
    "ap-southeast-2": ("mypurecloud.com.au", "Asia Pacific (Sydney)"),
}

#: Microsoft clouds: name → (Entra authority host, Microsoft Graph root), as Microsoft's
#: "national cloud deployments" page lists them (GCC uses the global cloud; GCC High is
#: ``usgov``, DoD ``usgov-dod``).
CLOUDS: dict[str, tuple[str, str]] = {
    "global": ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgov": ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "usgov-dod": ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    "china": ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
}

TEMPLATE = """\
# genesys-prov configuration, written by `genesys-prov init`. Secrets come from the
# environment: export GRAPH_CLIENT_SECRET and {secret_var} before running.
source:
  tenant_id: {tenant_id}
  client_id: {client_id}
  client_secret: ${{GRAPH_CLIENT_SECRET}}
{cloud_lines}  scope: {scope}
{sp_line}target:
  url: {target_url}
{auth_block}  flavor: {flavor}
  rate_limit_per_minute: 300
  concurrency: 4
mappings: mappings.yaml
{ca_line}safety:
  max_deactivations: 500
  max_source_drop: "30%"
"""


@dataclass(frozen=True)
class Region:
    """A Genesys Cloud region and the URLs it gives."""

    name: str
    host: str
    where: str

    @property
    def scim_url(self) -> str:
        """The SCIM tenant URL of the region."""
        return f"https://api.{self.host}/api/v2/scim/v2"

    @property
    def token_url(self) -> str:
        """The OAuth token URL of the region."""
        return f"https://login.{self.host}/oauth/token"


def region(name: str) -> Region:
    """A Genesys region by name (``eu-west-1``) or API host (``mypurecloud.ie``); a
    ConfigError listing the regions otherwise.

    Example::

        region("eu-west-1").scim_url   # https://api.mypurecloud.ie/api/v2/scim/v2
    """
    wanted = name.strip().lower()
    for key, (host, where) in REGIONS.items():
        if wanted in (key, host, f"api.{host}"):
            return Region(key, host, where)
    raise ConfigError(f"init: unknown Genesys region {name!r}; one of: "
                      + ", ".join(f"{k} ({h})" for k, (h, _) in REGIONS.items()))


@dataclass(frozen=True)
class Answers:
    """What ``init`` asked (or was given as options). ``cloud`` is a :data:`CLOUDS` name;
    ``ca_bundle`` a PEM file (written as an absolute path)."""

    tenant_id: str
    client_id: str
    target_url: str
    scope: str = "assigned"
    flavor: str = "genesys"
    service_principal_id: str | None = None
    genesys_client_id: str | None = None   # None: a static token
    cloud: str = "global"
    ca_bundle: str | None = None
    token_url: str | None = None           # written when known (a region was picked)


@dataclass(frozen=True)
class Starter:
    """The files written, and the secrets' environment variables they read."""

    config_path: Path
    mappings_path: Path
    secrets: tuple[str, ...]


def starter_text(answers: Answers) -> tuple[str, tuple[str, ...]]:
    """The configuration text for ``answers`` and the secrets' variables it reads."""
    if answers.cloud not in CLOUDS:
        raise ConfigError(f"init: unknown cloud {answers.cloud!r}; one of: "
                          + ", ".join(CLOUDS))
    if answers.genesys_client_id:
        secret_var = "GENESYS_CLIENT_SECRET"
        token_url = f", token_url: {_q(answers.token_url)}" if answers.token_url else ""
        auth = (f"  oauth: {{client_id: {_q(answers.genesys_client_id)}, "
                f"client_secret: ${{GENESYS_CLIENT_SECRET}}{token_url}}}\n")
    else:
        secret_var = "GENESYS_TOKEN"
        auth = "  token: ${GENESYS_TOKEN}\n"
    authority, graph = CLOUDS[answers.cloud]
    cloud_lines = "" if answers.cloud == "global" else \
        f"  authority_host: {authority}\n  graph_url: {graph}\n"
    sp_line = f"  service_principal_id: {_q(answers.service_principal_id)}\n" \
        if answers.service_principal_id else ""
    ca_line = f"ca_bundle: {_q(str(Path(answers.ca_bundle).resolve()))}\n" \
        if answers.ca_bundle else ""
    text = TEMPLATE.format(
        tenant_id=_q(answers.tenant_id), client_id=_q(answers.client_id), scope=answers.scope,
        target_url=_q(answers.target_url), sp_line=sp_line, auth_block=auth,
        flavor=answers.flavor, secret_var=secret_var, cloud_lines=cloud_lines,
        ca_line=ca_line)
    return text, ("GRAPH_CLIENT_SECRET", secret_var)


def _q(value: str | None) -> str:
    """A value as a YAML string whatever it looks like (``1111`` stays a string)."""
    return json.dumps(value, ensure_ascii=False)


def write_starter(directory: Path, answers: Answers, force: bool = False) -> Starter:
    """Write ``genesys-prov.yaml`` and ``mappings.yaml`` into ``directory``; refuses to
    overwrite without ``force`` (ConfigError, exit 2). The configuration is validated
    before anything is written; both files are written aside and renamed only when both
    are ready, so a failure leaves neither (nor a temporary file).

    Example::

        write_starter(Path("."), Answers("contoso.onmicrosoft.com", "1111…", url))
    """
    config_path = directory / "genesys-prov.yaml"
    mappings_path = directory / "mappings.yaml"
    for path in (config_path, mappings_path):
        if path.exists() and not force:
            raise ConfigError(f"init: {path} exists (use --force to overwrite)")
    text, secrets = starter_text(answers)
    # validate what will be written, whatever the environment holds
    parse_config(text, base_dir=directory, environ={v: "placeholder" for v in secrets})
    _write_both({config_path: text, mappings_path: default_mappings_text()})
    return Starter(config_path, mappings_path, secrets)


def _write_both(files: dict[Path, str]) -> None:
    """Write every file aside (``.<name>.init-<pid>``), then rename them all; on any
    failure remove what was written aside (and a new file already renamed) and raise a
    ConfigError."""
    aside = {path: path.with_name(f".{path.name}.init-{os.getpid()}") for path in files}
    renamed: list[Path] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_aside(aside[path], text)
        for path in files:
            existed = path.exists()
            aside[path].replace(path)
            if not existed:
                renamed.append(path)
    except OSError as exc:
        for path in renamed:   # a rename failed after another succeeded: take it back
            with contextlib.suppress(OSError):
                path.unlink()
        raise ConfigError(f"init: cannot write {exc.filename or 'the files'}: "
                          f"{exc.strerror or exc}; nothing was written") from exc
    finally:
        for partial in aside.values():
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()


def _write_aside(path: Path, text: str) -> None:
    """One file, written completely under its temporary name."""
    path.write_text(text, encoding="utf-8")

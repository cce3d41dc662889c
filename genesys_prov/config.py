"""Configuration: find, read, interpolate and validate ``genesys-prov.yaml``.

Every problem is a :class:`~genesys_prov.errors.ConfigError` naming the key path
(``target.rate_limit_per_minute: expected an integer, got 'fast'``). Secrets read from
the file are registered with :mod:`genesys_prov.redact` as soon as they are known.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from genesys_prov import redact
from genesys_prov.errors import ConfigError
from genesys_prov.notify import EmailConfig, parse_notify

CONFIG_ENV = "GENESYS_PROV_CONFIG"
DEFAULT_CONFIG = "genesys-prov.yaml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# ${VAR} is swapped for a plain-scalar placeholder before YAML parsing, so that it also
# works inside flow mappings ({client_secret: ${X}}) and a value can never inject YAML.
_PLACEHOLDER = re.compile(r"__genesys_prov_env-([A-Za-z_][A-Za-z0-9_]*)-__")


@dataclass(frozen=True)
class CertificateCredential:
    """A certificate credential for Microsoft Graph: PEM private key and its thumbprint."""

    private_key_path: Path
    thumbprint: str


@dataclass(frozen=True)
class SourceConfig:
    """The ``source:`` section: how to reach Microsoft Graph."""

    tenant_id: str
    client_id: str
    client_secret: str | None = None
    certificate: CertificateCredential | None = None
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com"
    scope: str = "assigned"
    service_principal_id: str | None = None
    nested_groups: bool = False
    exclude_default_access: bool = True
    skip_out_of_scope_deletions: bool = False


@dataclass(frozen=True)
class OAuthConfig:
    """Genesys OAuth client credentials."""

    client_id: str
    client_secret: str
    token_url: str


@dataclass(frozen=True)
class TargetConfig:
    """The ``target:`` section: how to reach the SCIM server."""

    url: str
    token: str | None = None
    oauth: OAuthConfig | None = None
    flavor: str = "genesys"
    rate_limit_per_minute: int = 300
    concurrency: int = 4
    page_size: int = 100
    timeout: float = 30.0
    phone_default_region: str | None = None
    on_hard_delete: str = "delete"
    create_groups: bool = False
    member_batch_size: int = 50
    remove_unmanaged_members: bool = False


@dataclass(frozen=True)
class SafetyConfig:
    """The ``safety:`` section."""

    max_deactivations: int | None = 500       # a count, or None when a percentage is used
    max_deactivations_percent: float | None = None
    max_source_drop_percent: float = 30.0
    escrow_backoff: float = 3600.0            # seconds before the first retry of a failure
    escrow_max_backoff: float = 86400.0
    escrow_max_age: float = 28 * 86400.0
    quarantine_min_failures: int = 100
    quarantine_probe_interval: float = 3600.0


@dataclass(frozen=True)
class Config:
    """A validated configuration."""

    source: SourceConfig
    target: TargetConfig
    mappings_path: Path
    ca_bundle: str | None = None
    path: Path | None = None
    state_dir: Path = Path(".genesys-prov")
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    notify: EmailConfig | None = None

    @property
    def verify(self) -> str | bool:
        """What ``requests`` should use for TLS verification."""
        return self.ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or True


# --- schema ---------------------------------------------------------------------------------

_SCHEMA: dict[str, Any] = {
    "source": {
        "tenant_id": (str, True),
        "client_id": (str, True),
        "client_secret": (str, False),
        "certificate": ({"private_key_path": (str, True), "thumbprint": (str, True)}, False),
        "authority_host": (str, False),
        "graph_url": (str, False),
        "scope": (str, False),
        "service_principal_id": (str, False),
        "nested_groups": (bool, False),
        "exclude_default_access": (bool, False),
        "skip_out_of_scope_deletions": (bool, False),
    },
    "target": {
        "url": (str, True),
        "token": (str, False),
        "oauth": (
            {"client_id": (str, True), "client_secret": (str, True), "token_url": (str, False)},
            False,
        ),
        "flavor": (str, False),
        "rate_limit_per_minute": (int, False),
        "concurrency": (int, False),
        "page_size": (int, False),
        "timeout": (float, False),
        "phone_default_region": (str, False),
        "on_hard_delete": (str, False),
        "create_groups": (bool, False),
        "member_batch_size": (int, False),
        "remove_unmanaged_members": (bool, False),
    },
    "mappings": (str, False),
    "ca_bundle": (str, False),
    "state_dir": (str, False),
    "safety": ({"max_deactivations": ((int, str), False), "max_source_drop": (str, False),
                "escrow_backoff_minutes": (int, False),
                "escrow_max_backoff_minutes": (int, False),
                "escrow_max_age_days": (int, False),
                "quarantine_min_failures": (int, False),
                "quarantine_probe_interval_minutes": (int, False)}, False),
}
_ROOT_REQUIRED = {"source", "target"}
_SECRET_KEYS = {"client_secret", "token"}


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the configuration path: ``--config``, else ``$GENESYS_PROV_CONFIG``, else
    ``./genesys-prov.yaml``. Raises ConfigError when the file does not exist."""
    chosen = explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    path = Path(chosen)
    if not path.is_file():
        how = (
            "--config" if explicit else f"${CONFIG_ENV}" if os.environ.get(CONFIG_ENV) else
            "the default location"
        )
        raise ConfigError(f"configuration file not found: {path} (from {how})")
    return path


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Find, read and validate the configuration.

    Example::

        config = load_config("genesys-prov.yaml")
        config.target.url
    """
    cfg_path = find_config(path)
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {cfg_path}: {exc.strerror}") from exc
    return parse_config(text, base_dir=cfg_path.parent, path=cfg_path)


def parse_config(
    text: str, base_dir: Path | None = None, path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Validate configuration text (YAML) and return a :class:`Config`."""
    where = str(path) if path else "configuration"
    try:
        raw = yaml.safe_load(_VAR.sub(r"__genesys_prov_env-\1-__", text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        pos = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}: {problem}{pos}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of settings at the top level")
    env = os.environ if environ is None else environ
    data = _interpolate(raw, "", env)
    notify = parse_notify(data.pop("notify", None))
    _check(data, _SCHEMA, "")
    for key in sorted(_ROOT_REQUIRED):
        if key not in data:
            raise ConfigError(f"{key}: required section is missing")
    base = base_dir or Path.cwd()
    source = _source(data["source"])
    target = _target(data["target"])
    mappings = Path(data.get("mappings", "mappings.yaml"))
    if not mappings.is_absolute():
        mappings = base / mappings
    ca_bundle = data.get("ca_bundle")
    if ca_bundle:
        ca_path = Path(ca_bundle)
        if not ca_path.is_absolute():
            ca_path = base / ca_path
        if not ca_path.is_file():
            raise ConfigError(f"ca_bundle: file not found: {ca_path}")
        ca_bundle = str(ca_path)
    state_dir = Path(data.get("state_dir", ".genesys-prov"))
    if not state_dir.is_absolute():
        state_dir = base / state_dir
    return Config(source=source, target=target, mappings_path=mappings, ca_bundle=ca_bundle,
                  path=path, state_dir=state_dir, safety=_safety(data.get("safety") or {}),
                  notify=notify)


def _percent(keypath: str, text: str) -> float:
    value = text.strip()
    if not value.endswith("%"):
        raise ConfigError(f"{keypath}: expected a percentage like '30%', got {text!r}")
    try:
        number = float(value[:-1])
    except ValueError:
        raise ConfigError(f"{keypath}: expected a percentage like '30%', got {text!r}") \
            from None
    if not 0 <= number <= 100:
        raise ConfigError(f"{keypath}: must be between 0% and 100%")
    return number


def _safety(data: dict[str, Any]) -> SafetyConfig:
    raw = data.get("max_deactivations", 500)
    count: int | None = None
    percent: float | None = None
    if isinstance(raw, int):
        if raw < 0:
            raise ConfigError("safety.max_deactivations: must be 0 or more")
        count = raw
    else:
        percent = _percent("safety.max_deactivations", raw)
    drop = _percent("safety.max_source_drop", data.get("max_source_drop", "30%"))
    backoff = data.get("escrow_backoff_minutes", 60)
    max_backoff = data.get("escrow_max_backoff_minutes", 24 * 60)
    max_age = data.get("escrow_max_age_days", 28)
    if backoff < 1 or max_backoff < backoff or max_age < 1:
        raise ConfigError("safety.escrow_*: backoff ≥ 1 minute, max backoff ≥ backoff, "
                          "max age ≥ 1 day")
    min_failures = data.get("quarantine_min_failures", 100)
    probe = data.get("quarantine_probe_interval_minutes", 60)
    if min_failures < 1 or probe < 1:
        raise ConfigError("safety.quarantine_*: at least 1 failure and 1 minute")
    return SafetyConfig(count, percent, drop, backoff * 60.0, max_backoff * 60.0,
                        max_age * 86400.0, min_failures, probe * 60.0)


def _interpolate(value: Any, keypath: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            child = f"{keypath}.{key}" if keypath else str(key)
            out[key] = _interpolate(item, child, env)
            if key in _SECRET_KEYS and isinstance(out[key], str):
                redact.register(out[key])
        return out
    if isinstance(value, list):
        return [_interpolate(item, f"{keypath}[{i}]", env) for i, item in enumerate(value)]
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"{keypath}: environment variable {name} is not set")
            return env[name]

        return _PLACEHOLDER.sub(sub, value)
    return value


def _type_name(kind: Any) -> str:
    if kind == (int, str):
        return "a count or a percentage like '10%'"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        kind, "a mapping"
    )


def _check(data: Any, schema: dict[str, Any], keypath: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{keypath or 'configuration'}: expected a mapping")
    for key, value in data.items():
        child = f"{keypath}.{key}" if keypath else str(key)
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1)
            hint = f"did you mean {close[0]!r}?" if close else \
                f"expected one of: {', '.join(sorted(schema))}"
            raise ConfigError(f"{child}: unknown key ({hint})")
        spec = schema[key]
        kind = spec[0] if isinstance(spec, tuple) else spec
        if isinstance(kind, dict):
            _check(value, kind, child)
            continue
        ok = (
            isinstance(value, kind) and not isinstance(value, bool)
            if kind in (int, str, (int, str))
            else isinstance(value, int | float) and not isinstance(value, bool)
            if kind is float
            else isinstance(value, kind)
        )
        if not ok:
            raise ConfigError(
                f"{child}: expected {_type_name(kind)}, got {_show(child, value)}"
            )
    for key, spec in schema.items():
        if isinstance(spec, tuple) and spec[1] and key not in data:
            child = f"{keypath}.{key}" if keypath else key
            raise ConfigError(f"{child}: required key is missing")


def _show(keypath: str, value: Any) -> str:
    if keypath.rsplit(".", 1)[-1] in _SECRET_KEYS:
        return "[redacted]"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(keypath: str, url: str) -> str:
    """Refuse anything but https, except http to a loopback address. Returns the URL
    without a trailing slash."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{keypath}: not an http(s) URL: {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"{keypath}: credentials only travel over TLS; use https:// "
            f"(http:// is allowed only for loopback addresses)"
        )
    return url.rstrip("/")


def _source(data: dict[str, Any]) -> SourceConfig:
    cert = None
    if "certificate" in data:
        c = data["certificate"]
        cert = CertificateCredential(Path(c["private_key_path"]), c["thumbprint"])
    secret = data.get("client_secret")
    if (secret is None) == (cert is None):
        raise ConfigError("source: give exactly one of client_secret or certificate")
    scope = data.get("scope", "assigned")
    if scope not in ("all", "assigned"):
        raise ConfigError(f"source.scope: expected 'all' or 'assigned', got {scope!r}")
    if scope == "assigned" and not data.get("service_principal_id"):
        raise ConfigError(
            "source.service_principal_id: required when source.scope is 'assigned' (the "
            "default): the object id of the enterprise application; or set scope: all"
        )
    return SourceConfig(
        tenant_id=data["tenant_id"],
        client_id=data["client_id"],
        client_secret=secret,
        certificate=cert,
        authority_host=check_url("source.authority_host",
                                 data.get("authority_host", SourceConfig.authority_host)),
        graph_url=check_url("source.graph_url", data.get("graph_url", SourceConfig.graph_url)),
        scope=scope,
        service_principal_id=data.get("service_principal_id"),
        nested_groups=data.get("nested_groups", False),
        exclude_default_access=data.get("exclude_default_access", True),
        skip_out_of_scope_deletions=data.get("skip_out_of_scope_deletions", False),
    )


def derive_token_url(tenant_url: str) -> str:
    """Genesys' OAuth token URL for a SCIM tenant URL: the API host with ``api.`` replaced by
    ``login.``: ``https://api.mypurecloud.ie/...`` → ``https://login.mypurecloud.ie/oauth/token``."""
    parts = urlsplit(tenant_url)
    host = parts.netloc
    if not host.startswith("api."):
        raise ConfigError(
            "target.oauth.token_url: cannot derive the token URL from target.url "
            f"(host {parts.hostname!r} does not start with 'api.'); set it explicitly"
        )
    return f"{parts.scheme}://login.{host[4:]}/oauth/token"


def _target(data: dict[str, Any]) -> TargetConfig:
    url = check_url("target.url", data["url"])
    token = data.get("token")
    oauth = None
    if "oauth" in data:
        o = data["oauth"]
        token_url = o.get("token_url") or derive_token_url(url)
        oauth = OAuthConfig(o["client_id"], o["client_secret"],
                            check_url("target.oauth.token_url", token_url))
    if (token is None) == (oauth is None):
        raise ConfigError("target: give exactly one of token or oauth")
    flavor = data.get("flavor", "genesys")
    if flavor not in ("genesys", "generic"):
        raise ConfigError(f"target.flavor: expected 'genesys' or 'generic', got {flavor!r}")
    rate = data.get("rate_limit_per_minute", 300)
    if rate < 0:
        raise ConfigError("target.rate_limit_per_minute: must be 0 (off) or more")
    concurrency = data.get("concurrency", 4)
    if not 1 <= concurrency <= 64:
        raise ConfigError("target.concurrency: must be between 1 and 64")
    page_size = data.get("page_size", 100)
    if not 1 <= page_size <= 1000:
        raise ConfigError("target.page_size: must be between 1 and 1000")
    timeout = float(data.get("timeout", 30.0))
    if timeout <= 0:
        raise ConfigError("target.timeout: must be more than 0")
    create_groups = data.get("create_groups", flavor == "generic")
    if create_groups and flavor == "genesys":
        raise ConfigError("target.create_groups: Genesys cannot create groups over SCIM; "
                          "create them in Genesys (or use flavor: generic)")
    batch = data.get("member_batch_size", 50)
    if not 1 <= batch <= 1000:
        raise ConfigError("target.member_batch_size: must be between 1 and 1000")
    on_hard_delete = data.get("on_hard_delete", "delete")
    if on_hard_delete not in ("delete", "deactivate"):
        raise ConfigError("target.on_hard_delete: expected 'delete' or 'deactivate', got "
                          f"{on_hard_delete!r}")
    region = data.get("phone_default_region")
    if region is not None and (len(region) != 2 or not region.isalpha()):
        raise ConfigError("target.phone_default_region: expected a two-letter region code "
                          f"such as US or GB, got {region!r}")
    return TargetConfig(url=url, token=token, oauth=oauth, flavor=flavor,
                        rate_limit_per_minute=rate, concurrency=concurrency,
                        page_size=page_size, timeout=timeout,
                        phone_default_region=region.upper() if region else None,
                        on_hard_delete=on_hard_delete,
                        create_groups=create_groups, member_batch_size=batch,
                        remove_unmanaged_members=data.get("remove_unmanaged_members", False))

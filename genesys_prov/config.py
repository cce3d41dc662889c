"""Configuration: find, read, interpolate and validate ``genesys-prov.yaml``.

Every problem is a :class:`~genesys_prov.errors.ConfigError` naming the key path
(``target.rate_limit_per_minute: expected an integer, got 'fast'``). Secrets read from
the file are registered with :mod:`genesys_prov.redact` as soon as they are known.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from genesys_prov import redact
from genesys_prov.errors import ConfigError
from genesys_prov.notify import EmailConfig, parse_notify
from genesys_prov.strict_yaml import PLACEHOLDER, hide_variables, load_yaml, show_variables

CONFIG_ENV = "GENESYS_PROV_CONFIG"
DEFAULT_CONFIG = "genesys-prov.yaml"
CA_BUNDLE_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
"""Environment variables naming a CA bundle, in the order ``requests`` reads them."""
# ${VAR} is swapped for a plain-scalar placeholder before YAML parsing, so that it also
# works inside flow mappings ({client_secret: ${X}}) and a value can never inject YAML.
# $${ is a literal ${; any other ${ (${}, ${1X}, ${X) is refused where a value holds it.


@dataclass(frozen=True)
class CertificateCredential:
    """A certificate credential for Microsoft Graph: PEM private key and its thumbprint."""

    private_key_path: Path
    thumbprint: str


@dataclass(frozen=True)
class SourceConfig:
    """The ``source:`` section: how to reach Microsoft Graph."""

    tenant_id: str
    client_id: str  # "" with auth: managed_identity (the identity has its own)
    client_secret: str | None = None
    certificate: CertificateCredential | None = None
    auth: str = "secret"  # secret | certificate | managed_identity | federated
    managed_identity_client_id: str | None = None  # a user-assigned identity; None: system
    federated_token_file: Path | None = None  # auth: federated: the assertion, re-read each time
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com"
    scope: str = "assigned"
    service_principal_id: str | None = None
    nested_groups: bool = False
    exclude_default_access: bool = True
    skip_out_of_scope_deletions: bool = False
    secret_variable: str | None = None  # the ${VAR} client_secret came from, for messages


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
    secret_variable: str | None = None  # the ${VAR} the token or OAuth secret came from


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
    """A validated configuration.

    The CA bundle is resolved and checked when the configuration is loaded: the configured
    ``ca_bundle`` (an absolute path), else ``$REQUESTS_CA_BUNDLE``, else ``$CURL_CA_BUNDLE``
    (``env_ca_bundle``, used only when ``ca_bundle`` is not set); ``ca_bundle_from`` says
    which one is in use (None when none is)."""

    source: SourceConfig
    target: TargetConfig
    mappings_path: Path
    ca_bundle: str | None = None
    path: Path | None = None
    state_dir: Path = Path(".genesys-prov")
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    notify: EmailConfig | None = None
    env_ca_bundle: str | None = None
    ca_bundle_from: str | None = None
    metrics_file: Path | None = None  # `sync --metrics-file` when the option is not given

    @property
    def verify(self) -> str | bool:
        """What ``requests`` should use for TLS verification: the CA bundle in use, else
        True (the default trust store; requests still reads the variables itself for a
        Config built without :func:`parse_config`)."""
        return self.ca_bundle or self.env_ca_bundle or True


_SCHEMA: dict[str, Any] = {
    "source": {
        "tenant_id": (str, False),  # required by auth (see _auth), not by every method
        "client_id": (str, False),
        "auth": (str, False),
        "client_secret": (str, False),
        "certificate": ({"private_key_path": (str, True), "thumbprint": (str, True)}, False),
        "managed_identity_client_id": (str, False),
        "federated_token_file": (str, False),
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
    "metrics_file": (str, False),
    "safety": ({"max_deactivations": ((int, str), False), "max_source_drop": (str, False),
                "escrow_backoff_minutes": (int, False),
                "escrow_max_backoff_minutes": (int, False),
                "escrow_max_age_days": (int, False),
                "quarantine_min_failures": (int, False),
                "quarantine_probe_interval_minutes": (int, False)}, False),
}
_ROOT_REQUIRED = {"source", "target"}
_SECRET_KEYS = {"client_secret", "token"}


def find_config(explicit: str | os.PathLike[str] | None = None,
                origin: str | None = None) -> Path:
    """Return the configuration path: ``--config``, else ``$GENESYS_PROV_CONFIG``, else
    ``./genesys-prov.yaml``. ``origin`` says where ``explicit`` came from (default
    ``--config``; the CLI passes ``$GENESYS_PROV_CONFIG`` when its option was filled from
    the environment). Raises ConfigError, naming the origin and the ways to give a file,
    when the file does not exist."""
    chosen = explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    path = Path(chosen)
    if not path.is_file():
        how = (
            f"from {origin or '--config'}" if explicit else f"from ${CONFIG_ENV}"
            if os.environ.get(CONFIG_ENV) else f"the default: neither --config nor ${CONFIG_ENV}"
            " is set"
        )
        raise ConfigError(f"configuration file not found: {_show_path(path)} ({how}); create "
                          f"one with `genesys-prov init`, or name it with --config PATH or "
                          f"${CONFIG_ENV}")
    return path


def read_text(path: Path, error: type[ConfigError] = ConfigError, what: str = "") -> str:
    """Read a UTF-8 text file (``what`` names it in messages, e.g. ``"mappings file "``).
    An unreadable file or one that is not UTF-8 raises ``error`` with a one-line message."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what}{_show_path(path)}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a NUL character in the path
        raise error(f"cannot read {what}{_show_path(path)}: {exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[start:exc.start].decode("utf-8", "replace")) + 1
        raise error(f"{what}{_show_path(path)}: not UTF-8 text (byte 0x{data[exc.start]:02x} "
                    f"at line {line}, column {column}); save it as UTF-8") from None


class _WithoutSecrets(Mapping[str, str]):
    """The environment with every ``${VAR}`` defined: an unset variable reads as the
    placeholder ``<unset VAR>`` (for offline checks, which need no secret)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        return self._environ.get(name, f"<unset {name}>")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


def load_config(path: str | os.PathLike[str] | None = None,
                origin: str | None = None, secrets: bool = True) -> Config:
    """Find, read and validate the configuration (``origin``: see :func:`find_config`).
    ``secrets=False`` reads it for offline work (``mapping validate --offline``): an unset
    ``${VAR}`` is not an error then, and the value it stands for must not be used.

    Example::

        config = load_config("genesys-prov.yaml")
        config.target.url
    """
    cfg_path = find_config(path, origin)
    text = read_text(cfg_path)
    environ = None if secrets else _WithoutSecrets(os.environ)
    return parse_config(text, base_dir=cfg_path.parent, path=cfg_path, environ=environ)


def parse_config(
    text: str, base_dir: Path | None = None, path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Validate configuration text (YAML) and return a :class:`Config`.

    ``environ`` (default ``os.environ``) supplies the ``${VAR}`` values and the CA bundle
    variables (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``). Every problem raises
    :class:`ConfigError` with a one-line message naming the key path."""
    where = _show_path(path) if path else "configuration"
    raw = load_yaml(hide_variables(text), where)
    if raw is None:
        raise ConfigError(f"{where}: the file is empty; it needs the source: and target: "
                          "sections")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of settings at the top level, got "
                          f"{_kind(raw)}")
    env = os.environ if environ is None else environ
    secrets: dict[str, str] = {}
    data = _interpolate(raw, "", env, secrets)
    notify = parse_notify(data.pop("notify", None))
    _check(data, _SCHEMA, "")
    for key in sorted(_ROOT_REQUIRED):
        if key not in data:
            raise ConfigError(f"{key}: required section is missing")
    base = base_dir or Path.cwd()
    source = replace(_source(data["source"], env, base),
                     secret_variable=secrets.get("source.client_secret"))
    target = replace(_target(data["target"]), secret_variable=secrets.get(
        "target.oauth.client_secret") or secrets.get("target.token"))
    mappings = Path(data.get("mappings", "mappings.yaml"))
    if not mappings.is_absolute():
        mappings = base / mappings
    ca_bundle, ca_from = _ca_bundle(data.get("ca_bundle"), base, env)
    env_ca_bundle = ca_bundle if ca_from in CA_BUNDLE_ENV else None
    state_dir = Path(data.get("state_dir", ".genesys-prov"))
    if not state_dir.is_absolute():
        state_dir = base / state_dir
    metrics_file = base / data["metrics_file"] if data.get("metrics_file") else None
    return Config(source=source, target=target, mappings_path=mappings,
                  ca_bundle=None if env_ca_bundle else ca_bundle, path=path,
                  state_dir=state_dir, safety=_safety(data.get("safety") or {}),
                  notify=notify, env_ca_bundle=env_ca_bundle, ca_bundle_from=ca_from,
                  metrics_file=metrics_file)


def _ca_bundle(configured: str | None, base: Path,
               env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The CA bundle to use and where it came from: ``ca_bundle`` (relative to the
    configuration file), else the first non-empty variable of :data:`CA_BUNDLE_ENV`
    (``requests`` also accepts a directory of hashed certificates there)."""
    if configured is not None:
        path = Path(configured)
        if not path.is_absolute():
            path = base / path
        _check_ca_bundle(path, "ca_bundle", "fix the path (a relative one is relative to the "
                         "configuration file) or remove ca_bundle", allow_dir=False)
        return str(path), "ca_bundle"
    for name in CA_BUNDLE_ENV:
        value = env.get(name)
        if value:
            _check_ca_bundle(Path(value), name, "unset it, or point it to a PEM file of "
                             "trusted CAs", allow_dir=True)
            return value, name
    return None, None


def _check_ca_bundle(path: Path, origin: str, advice: str, allow_dir: bool) -> None:
    shown = _show_path(path)
    if allow_dir and path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            raise ConfigError(f"{origin}: cannot read the directory {shown} ({advice})")
        return
    if not path.exists():
        raise ConfigError(f"{origin}: file not found: {shown} ({advice})")
    if not path.is_file():
        raise ConfigError(f"{origin}: not a regular file: {shown} ({advice})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{origin}: cannot read {shown}: {exc.strerror or exc} ({advice})") \
            from exc
    if not re.search(rb"-----BEGIN (TRUSTED )?CERTIFICATE-----", data):
        raise ConfigError(f"{origin}: no PEM certificate (-----BEGIN CERTIFICATE-----) in "
                          f"{shown} ({advice})")


def _show_path(path: Path | str) -> str:
    text = str(path)
    return text if text.isprintable() else repr(text)


def _kind(value: Any) -> str:
    """A value's YAML kind for messages: ``a list``, ``null``, ``an integer`` …"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    for kind, name in ((dict, "a mapping"), (list, "a list"), (str, "a string"),
                       (int, "an integer"), (float, "a number")):
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"


def _key_text(key: Any) -> str:
    """A mapping key for key paths: ``null`` and ``true`` as YAML spells them, long keys
    shortened."""
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if key == "":
        return "''"
    text = key if isinstance(key, str) else str(key)
    text = text if text.isprintable() else repr(text)
    return text if len(text) <= 60 else text[:57] + "..."


def _child(keypath: str, key: Any) -> str:
    return f"{keypath}.{_key_text(key)}" if keypath else _key_text(key)


_MAX_MINUTES = 10 * 365 * 24 * 60   # ten years: anything longer is a typo
_MAX_RATE = 100_000                 # requests per minute
_MAX_TIMEOUT = 3600                 # seconds for one request


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
    for key, minutes in (("escrow_backoff_minutes", backoff),
                         ("escrow_max_backoff_minutes", max_backoff),
                         ("escrow_max_age_days", max_age * 24 * 60),
                         ("quarantine_probe_interval_minutes", probe)):
        if minutes > _MAX_MINUTES:
            raise ConfigError(f"safety.{key}: must be at most ten years")
    return SafetyConfig(count, percent, drop, backoff * 60.0, max_backoff * 60.0,
                        max_age * 86400.0, min_failures, probe * 60.0)


def _interpolate(value: Any, keypath: str, env: Mapping[str, str],
                 secrets: dict[str, str] | None = None) -> Any:
    """Replace the ``${VAR}`` placeholders in string values; keys keep what the user wrote
    (they are never interpolated). ``secrets`` collects, per secret's key path, the
    variable it came from (messages name it; the value is never shown)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str):
                key = show_variables(key)
            child = _child(keypath, key)
            out[key] = _interpolate(item, child, env, secrets)
            if key in _SECRET_KEYS and isinstance(out[key], str):
                redact.register(out[key])
                names = PLACEHOLDER.findall(item) if isinstance(item, str) else []
                if secrets is not None and names and names[0]:
                    secrets[child] = names[0]
        return out
    if isinstance(value, list):
        return [_interpolate(item, f"{keypath}[{i}]", env, secrets)
                for i, item in enumerate(value)]
    if isinstance(value, str):
        used: list[str] = []

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name:
                if name not in env:
                    raise ConfigError(f"{keypath}: environment variable {name} is not set")
                used.append(name)
                return env[name]
            if "escape" in match.group(0):
                return "${"
            raise ConfigError(f"{keypath}: '${{' must start a variable reference like "
                              "${NAME} (letters, digits and _); write $${ for a literal ${")

        result = PLACEHOLDER.sub(sub, value)
        if used and not result.strip():
            raise ConfigError(f"{keypath}: environment variable {used[0]} is empty")
        return result
    return value


def _type_name(kind: Any) -> str:
    if kind == (int, str):
        return "a count or a percentage like '10%'"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        kind, "a mapping"
    )


def _check(data: Any, schema: dict[str, Any], keypath: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{keypath or 'configuration'}: expected a mapping of settings, got "
                          f"{_kind(data)}")
    for key, value in data.items():
        child = _child(keypath, key)
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
        if isinstance(value, str):
            _check_text(child, value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{child}: expected a finite number, got {value}")
    for key, spec in schema.items():
        if isinstance(spec, tuple) and spec[1] and key not in data:
            child = f"{keypath}.{key}" if keypath else key
            raise ConfigError(f"{child}: required key is missing")


def _check_text(keypath: str, value: str) -> None:
    """Refuse empty strings and control characters (a newline in a token, a NUL in a path)."""
    if not value.strip():
        raise ConfigError(f"{keypath}: must not be empty (remove the key to use the default)")
    bad = next((ch for ch in value if ord(ch) < 32 or 127 <= ord(ch) < 160), None)
    if bad is not None:
        raise ConfigError(f"{keypath}: contains the control character U+{ord(bad):04X}; "
                          "remove it")


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


def _show_url(url: str) -> str:
    """A URL for messages: user information (``user:password@``) hidden, long ones cut."""
    text = re.sub(r"//[^/?#]*@", "//[redacted]@", url)
    text = repr(text)
    return text if len(text) <= 80 else text[:77] + "..."


def check_url(keypath: str, url: str) -> str:
    """Refuse anything but a well-formed https URL, except http to a loopback address.
    Returns the URL without a trailing slash."""
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ConfigError(f"{keypath}: a URL cannot contain spaces or control characters: "
                          f"{_show_url(url)}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        reason = str(exc)
        if "port" in reason.lower():
            reason = "the port must be a number between 1 and 65535"
        raise ConfigError(f"{keypath}: not a valid URL ({reason}): {_show_url(url)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{keypath}: not an http(s) URL: {_show_url(url)}")
    if "@" in parts.netloc:
        raise ConfigError(f"{keypath}: a URL cannot carry a user name or password "
                          f"({_show_url(url)}); remove the part before '@'")
    if port == 0:
        raise ConfigError(f"{keypath}: not a valid URL (the port must be a number between 1 "
                          f"and 65535): {_show_url(url)}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"{keypath}: credentials only travel over TLS; use https:// "
            f"(http:// is allowed only for loopback addresses)"
        )
    return url.rstrip("/")


AUTH_METHODS = ("secret", "certificate", "managed_identity", "federated")
#: The keys only one authentication method uses.
_AUTH_KEYS = {"client_secret": "secret", "certificate": "certificate",
              "managed_identity_client_id": "managed_identity",
              "federated_token_file": "federated"}
FEDERATED_ENV = {"federated_token_file": "AZURE_FEDERATED_TOKEN_FILE",
                 "client_id": "AZURE_CLIENT_ID", "tenant_id": "AZURE_TENANT_ID"}
"""The variables AKS workload identity (and CI systems) set, for ``auth: federated``; it
also sets ``AZURE_AUTHORITY_HOST``, the default of ``source.authority_host`` then."""


def _auth_method(data: dict[str, Any]) -> str:
    """``source.auth``, or the method the keys given imply (configurations written before
    ``auth`` existed name a client secret or a certificate)."""
    auth = data.get("auth")
    if auth is not None:
        if auth not in AUTH_METHODS:
            raise ConfigError(f"source.auth: expected one of {', '.join(AUTH_METHODS)}; "
                              f"got {auth!r}")
        return str(auth)
    given = [key for key in _AUTH_KEYS if key in data]
    if "client_secret" in given and "certificate" in given:
        raise ConfigError("source: give exactly one of client_secret or certificate")
    if not given:
        raise ConfigError("source: give client_secret or certificate, or set source.auth to "
                          "managed_identity or federated")
    return _AUTH_KEYS[given[0]]


def _auth(data: dict[str, Any], env: Mapping[str, str], base: Path) -> dict[str, Any]:
    """The authentication fields of :class:`SourceConfig`, each combination checked."""
    auth = _auth_method(data)
    for key, method in _AUTH_KEYS.items():
        if key in data and method != auth:
            raise ConfigError(f"source.{key}: not used with source.auth: {auth}; remove it "
                              f"(or set source.auth: {method})")
    needed = {"secret": "client_secret", "certificate": "certificate"}.get(auth)
    if needed and needed not in data:
        raise ConfigError(f"source.{needed}: required when source.auth is {auth}")
    fields: dict[str, Any] = {"auth": auth, "tenant_id": data.get("tenant_id", ""),
                              "client_id": data.get("client_id", "")}
    if auth == "managed_identity":
        if "client_id" in data:
            raise ConfigError("source.client_id: not used with source.auth: managed_identity; "
                              "a user-assigned identity's client id goes in "
                              "source.managed_identity_client_id (omit both for the "
                              "system-assigned identity)")
        fields["managed_identity_client_id"] = data.get("managed_identity_client_id")
        return fields
    if auth == "federated":
        for key, variable in FEDERATED_ENV.items():
            value = data.get(key) or env.get(variable)
            if not value:
                raise ConfigError(f"source.{key}: required when source.auth is federated "
                                  f"(or set ${variable}, as AKS workload identity does)")
            fields[key] = value
        token_file = Path(fields["federated_token_file"])
        if "federated_token_file" in data and not token_file.is_absolute():
            token_file = base / token_file
        fields["federated_token_file"] = token_file
        if "authority_host" not in data and env.get("AZURE_AUTHORITY_HOST"):
            fields["authority_host"] = env["AZURE_AUTHORITY_HOST"]  # a national cloud's
        return fields
    for key in ("tenant_id", "client_id"):
        if key not in data:
            raise ConfigError(f"source.{key}: required key is missing")
    if auth == "certificate":
        c = data["certificate"]
        fields["certificate"] = CertificateCredential(Path(c["private_key_path"]),
                                                      c["thumbprint"])
    else:
        fields["client_secret"] = data["client_secret"]
    return fields


def _source(data: dict[str, Any], env: Mapping[str, str] | None = None,
            base: Path | None = None) -> SourceConfig:
    auth = _auth(data, os.environ if env is None else env, base or Path.cwd())
    scope = data.get("scope", "assigned")
    if scope not in ("all", "assigned"):
        raise ConfigError(f"source.scope: expected 'all' or 'assigned', got {scope!r}")
    if scope == "assigned" and not data.get("service_principal_id"):
        raise ConfigError(
            "source.service_principal_id: required when source.scope is 'assigned' (the "
            "default): the object id of the enterprise application; or set scope: all"
        )
    authority = auth.pop("authority_host", None) or data.get("authority_host",
                                                             SourceConfig.authority_host)
    return SourceConfig(
        **auth,
        authority_host=check_url("source.authority_host", authority),
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
    if rate > _MAX_RATE:
        raise ConfigError(f"target.rate_limit_per_minute: must be at most {_MAX_RATE:,}")
    concurrency = data.get("concurrency", 4)
    if not 1 <= concurrency <= 64:
        raise ConfigError("target.concurrency: must be between 1 and 64")
    page_size = data.get("page_size", 100)
    if not 1 <= page_size <= 1000:
        raise ConfigError("target.page_size: must be between 1 and 1000")
    raw_timeout = data.get("timeout", 30.0)
    if raw_timeout <= 0:
        raise ConfigError("target.timeout: must be more than 0")
    if raw_timeout > _MAX_TIMEOUT:
        raise ConfigError(f"target.timeout: must be at most {_MAX_TIMEOUT} seconds")
    timeout = float(raw_timeout)
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
    if region is not None and (len(region) != 2 or not region.isascii()
                               or not region.isalpha()):
        raise ConfigError("target.phone_default_region: expected a two-letter region code "
                          f"such as US or GB, got {region!r}")
    return TargetConfig(url=url, token=token, oauth=oauth, flavor=flavor,
                        rate_limit_per_minute=rate, concurrency=concurrency,
                        page_size=page_size, timeout=timeout,
                        phone_default_region=region.upper() if region else None,
                        on_hard_delete=on_hard_delete,
                        create_groups=create_groups, member_batch_size=batch,
                        remove_unmanaged_members=data.get("remove_unmanaged_members", False))

"""The ``notify:`` section of ``genesys-prov.yaml``: :class:`EmailConfig`, checked key by
key with one-line errors."""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from genesys_prov import redact
from genesys_prov.errors import ConfigError

SUBJECT_PREFIX = "genesys-prov"
"""Every subject starts with this (``"genesys-prov: ..."`` unless the caller's subject
already starts with it), so that mail rules can filter on it."""

DEFAULT_PORT = 587
SMTPS_PORT = 465
DEFAULT_TIMEOUT = 30.0
MAX_SECONDS = 3600.0  # an SMTP timeout longer than an hour is a mistake

_SECTION_KEYS = ("email",)
_EMAIL_KEYS = (
    "to", "from", "smtp_host", "smtp_port", "starttls", "username", "password", "timeout",
)
_ADDRESS = re.compile(r"[^@\s<>,;\"()\[\]]+@[^@\s<>,;\"()\[\]]+")


@dataclass(frozen=True)
class EmailConfig:
    """Validated email settings (see :func:`parse_notify`)."""

    to: tuple[str, ...]
    sender: str
    smtp_host: str
    smtp_port: int = DEFAULT_PORT
    starttls: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT


def parse_notify(raw: Any, keypath: str = "notify") -> EmailConfig | None:
    """Validate the ``notify:`` section (already YAML-parsed and interpolated).

    Returns ``None`` when notifications are not configured (``raw`` or its ``email``
    entry is missing, null or empty). Raises :class:`ConfigError` with a one-line message
    naming the key path for unknown keys, wrong types, missing ``to``/``from``/
    ``smtp_host``, a port outside 1..65535, malformed addresses, a username without a
    password (or the reverse), and credentials that would travel unencrypted to a host
    that is not the local machine. The password is registered with :mod:`redact`.
    """
    if raw is None or raw == {}:
        return None
    section = _mapping(raw, keypath)
    _unknown_keys(section, _SECTION_KEYS, keypath)
    email = section.get("email")
    where = f"{keypath}.email"
    if email is None or email == {}:
        return None
    email = _mapping(email, where)
    # Register first, so that no later message can leak it.
    if isinstance(email.get("password"), str):
        redact.register(email["password"])
    _unknown_keys(email, _EMAIL_KEYS, where)
    for key in ("to", "from", "smtp_host"):
        if email.get(key) is None:
            raise ConfigError(f"{where}.{key}: required key is missing")

    to = _recipients(email["to"], f"{where}.to")
    sender = _address(email["from"], f"{where}.from")
    host = _string(email["smtp_host"], f"{where}.smtp_host")
    if any(ch.isspace() for ch in host) or "/" in host:
        raise ConfigError(f"{where}.smtp_host: expected a host name or IP address, "
                          f"got {_show(host)}")
    port = DEFAULT_PORT
    if email.get("smtp_port") is not None:
        port = _integer(email["smtp_port"], f"{where}.smtp_port")
        if not 1 <= port <= 65535:
            raise ConfigError(f"{where}.smtp_port: expected a port between 1 and 65535, "
                              f"got {port}")
    starttls = True
    if email.get("starttls") is not None:
        starttls = _boolean(email["starttls"], f"{where}.starttls")
    timeout = DEFAULT_TIMEOUT
    if email.get("timeout") is not None:
        timeout = _number(email["timeout"], f"{where}.timeout")
        if timeout <= 0:
            raise ConfigError(f"{where}.timeout: expected a positive number of seconds, "
                              f"got {_show(email['timeout'])}")
    username = (None if email.get("username") is None
                else _string(email["username"], f"{where}.username"))
    password = (None if email.get("password") is None
                else _string(email["password"], f"{where}.password", secret=True))
    if (username is None) != (password is None):
        given, missing = ("username", "password") if password is None else ("password",
                                                                           "username")
        raise ConfigError(f"{where}.{missing}: required when {given} is set "
                          f"(give both or neither)")
    if username is not None and not starttls and port != SMTPS_PORT \
            and not _is_loopback(host):
        raise ConfigError(f"{where}.starttls: refusing to send the SMTP password "
                          f"unencrypted to {host} (set starttls: true)")
    return EmailConfig(to=to, sender=sender, smtp_host=host, smtp_port=port,
                       starttls=starttls, username=username, password=password,
                       timeout=timeout)


def _mapping(value: Any, keypath: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{keypath}: expected a mapping of settings, got {_show(value)}")
    return value


def _unknown_keys(data: Mapping[Any, Any], known: Sequence[str], keypath: str) -> None:
    for key in data:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), list(known), n=1)
        hint = (f"did you mean {close[0]!r}?" if close
                else f"expected one of: {', '.join(sorted(known))}")
        raise ConfigError(redact.scrub(f"{keypath}.{_show(key)}: unknown key ({hint})"
                                       if not isinstance(key, str) or not key.isprintable()
                                       else f"{keypath}.{key}: unknown key ({hint})"))


def _string(value: Any, keypath: str, secret: bool = False) -> str:
    if not isinstance(value, str):
        shown = redact.REDACTED if secret else _show(value)
        raise ConfigError(f"{keypath}: expected a string, got {shown}")
    if not value.strip():
        raise ConfigError(f"{keypath}: must not be empty")
    if not secret and not value.isprintable():
        raise ConfigError(f"{keypath}: contains control characters: {_show(value)}")
    return value if secret else value.strip()


def _integer(value: Any, keypath: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{keypath}: expected an integer, got {_show(value)}")
    return value


def _number(value: Any, keypath: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{keypath}: expected a number, got {_show(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number > MAX_SECONDS:
        raise ConfigError(f"{keypath}: expected a number of seconds up to {MAX_SECONDS:g}, "
                          f"got {_show(value)}")
    return number


def _boolean(value: Any, keypath: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{keypath}: expected true or false, got {_show(value)}")
    return value


def _address(value: Any, keypath: str) -> str:
    text = _string(value, keypath)
    if not _ADDRESS.fullmatch(text):
        raise ConfigError(f"{keypath}: {_show(text)} does not look like an email address "
                          f"(expected name@domain)")
    return text


def _recipients(value: Any, keypath: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (_address(value, keypath),)
    if not isinstance(value, list):
        raise ConfigError(f"{keypath}: expected an address or a list of addresses, "
                          f"got {_show(value)}")
    if not value:
        raise ConfigError(f"{keypath}: expected at least one address")
    out: list[str] = []
    for i, item in enumerate(value):
        address = _address(item, f"{keypath}[{i}]")
        if address not in out:
            out.append(address)
    return tuple(out)


def _show(value: Any) -> str:
    text = redact.scrub(repr(value))
    return text if len(text) <= 40 else text[:37] + "..."


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

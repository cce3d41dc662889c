"""Email notifications: one email when an incident opens, optionally one when it closes.

Configured by the ``notify:`` section of ``genesys-prov.yaml``::

    notify:
      email:
        to: [ops@contoso.com, oncall@contoso.com]   # or a single string
        from: genesys-prov@contoso.com
        smtp_host: smtp.contoso.com
        smtp_port: 587          # default 587; 465 means implicit TLS (SMTPS)
        starttls: true          # default true; false = plain SMTP (loopback or trusted relay)
        username: ...           # optional, both or neither with password
        password: ${SMTP_PASSWORD}
        timeout: 30             # seconds per network operation, default 30

Sending never raises: :func:`send_email` returns ``None`` or a one-line, scrubbed error
message, because a broken mail server must never fail a sync. :class:`Notifier` turns the
incidents a run found into at most one email per incident (not one per run), remembering
which incidents are open through the caller's ``load_open`` / ``save_open`` callables.

Only the standard library is used (``smtplib``, ``email.message``, ``ssl``).
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from . import redact
from .errors import ConfigError

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
_MAX_ERROR_LEN = 500


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


# --------------------------------------------------------------------------- parsing


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


# --------------------------------------------------------------------------- sending


class _Refused(Exception):
    """A precondition the server did not meet (internal; becomes an error message)."""


def send_email(config: EmailConfig, subject: str, body: str) -> str | None:
    """Send one plain-text UTF-8 email to every address in ``config.to``.

    Returns ``None`` on success, otherwise a one-line error message with secrets scrubbed.
    Never raises: connection refused, timeouts, TLS failures, STARTTLS or AUTH not offered,
    rejected credentials, refused recipients and anything unexpected all become a message.
    When only some recipients are refused, the others got the email and the message names
    the refused ones.

    ``starttls: true`` upgrades the connection with STARTTLS and verifies the server
    certificate against the system trust store; on port 465 it uses implicit TLS (SMTPS)
    instead. ``starttls: false`` speaks plain SMTP.
    """
    where = f"{config.smtp_host}:{config.smtp_port}"
    try:
        message = _build_message(config, subject, body)
        refused = _deliver(config, message)
    except Exception as exc:  # never raise: a mail failure must not fail a sync
        return _one_line(f"cannot send email via {where}: {_describe(exc, config)}")
    if refused:
        names = "; ".join(f"{addr} ({_reply(code, text)})"
                          for addr, (code, text) in sorted(refused.items()))
        return _one_line(f"email via {where} not delivered to some recipients: {names}")
    return None


def _build_message(config: EmailConfig, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = _subject(subject)
    message["From"] = config.sender
    message["To"] = ", ".join(config.to)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message.set_content(body if body.endswith("\n") else body + "\n", charset="utf-8")
    return message


def _deliver(config: EmailConfig, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
    implicit_tls = config.starttls and config.smtp_port == SMTPS_PORT
    smtp: smtplib.SMTP
    if implicit_tls:
        smtp = smtplib.SMTP_SSL(config.smtp_host, config.smtp_port, timeout=config.timeout,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout)
    ok = False
    try:
        smtp.ehlo_or_helo_if_needed()
        if config.starttls and not implicit_tls:
            if not smtp.has_extn("starttls"):
                raise _Refused("the server does not offer STARTTLS "
                               "(starttls: false is only for a loopback or trusted relay)")
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if config.username is not None and config.password is not None:
            if not smtp.has_extn("auth"):
                raise _Refused("the server does not offer AUTH, but a username is set")
            smtp.login(config.username, config.password)
        refused = smtp.send_message(message, from_addr=config.sender,
                                    to_addrs=list(config.to))
        ok = True
        return refused
    finally:
        if ok:
            try:
                smtp.quit()
            except Exception:  # the email is sent; a messy goodbye does not matter
                smtp.close()
        else:
            smtp.close()


def _describe(exc: BaseException, config: EmailConfig) -> str:
    if isinstance(exc, _Refused):
        return str(exc)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        reply = _reply(exc.smtp_code, exc.smtp_error)
        return f"authentication failed for {config.username} ({reply})"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        names = "; ".join(f"{addr} ({_reply(code, text)})"
                          for addr, (code, text) in sorted(exc.recipients.items()))
        return f"all recipients refused: {names}"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"sender {exc.sender} refused ({_reply(exc.smtp_code, exc.smtp_error)})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the server answered {_reply(exc.smtp_code, exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib turns a read timeout or reset into this; name the real cause.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError) and not isinstance(cause, smtplib.SMTPException):
            return _describe(cause, config)
        return "the server closed the connection"
    if isinstance(exc, smtplib.SMTPException):
        return str(exc) or type(exc).__name__
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed ({exc.verify_message or exc})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"timed out after {config.timeout:g} s"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {config.smtp_host} ({exc.strerror or exc})"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()


def _one_line(text: str) -> str:
    text = " ".join(redact.scrub(text).split())
    return text if len(text) <= _MAX_ERROR_LEN else text[: _MAX_ERROR_LEN - 3] + "..."


def _subject(subject: str) -> str:
    """One line, starting with ``genesys-prov``."""
    subject = " ".join(subject.split())
    if not subject.startswith(SUBJECT_PREFIX):
        subject = f"{SUBJECT_PREFIX}: {subject}" if subject else SUBJECT_PREFIX
    return subject


# --------------------------------------------------------------------------- incidents


@dataclass(frozen=True)
class Incident:
    """Something a run found that deserves one email while it lasts."""

    key: str
    """Stable identity across runs, e.g. ``"failures"``, ``"held"``, ``"quarantine"``."""
    subject: str
    body: str


class Notifier:
    """One email per incident, not one per run.

    An incident *opens* the first run it appears in (one email), stays open silently while
    later runs keep reporting it, and *closes* the first run it is absent from: silently,
    or with a "resolved" email when its key is in ``resolved_subjects``.

    Decisions:

    * An incident is marked open even when its email failed, and the failure is returned
      for the caller to log. A broken mail server therefore costs one lost email per
      incident, never a storm of retries once it comes back. Likewise a failed "resolved"
      email is not retried.
    * With ``config`` ``None`` nothing is sent but open incidents are still tracked, so
      turning email on later does not announce incidents that were already open.
    * The open set maps key -> the subject that was sent when the incident opened; a
      "resolved" email quotes it.
    * ``save_open`` is called once per :meth:`update`, after sending. Exceptions from
      ``load_open``/``save_open`` propagate (they are the caller's storage); exceptions
      from ``sender`` do not (they become a returned message).
    """

    def __init__(
        self,
        config: EmailConfig | None,
        load_open: Callable[[], dict[str, str]],
        save_open: Callable[[dict[str, str]], None],
        sender: Callable[[EmailConfig, str, str], str | None] = send_email,
    ) -> None:
        """``load_open``/``save_open`` read and persist the open incidents (key ->
        subject); ``sender`` is :func:`send_email` unless a test replaces it."""
        self._config = config
        self._load_open = load_open
        self._save_open = save_open
        self._sender = sender

    def update(
        self, current: Sequence[Incident], resolved_subjects: Mapping[str, str] | None = None
    ) -> list[str]:
        """Email the incidents of ``current`` that just opened and, for closed incidents
        whose key is in ``resolved_subjects``, a "resolved" email with that subject.
        Persist the new open set and return one human-readable line per email attempted
        (``"sent: <subject>"`` or ``"email failed: <subject>: <error>"``)."""
        previous = self._load_open() or {}
        resolved_subjects = resolved_subjects or {}
        results: list[str] = []
        now_open: dict[str, str] = {}
        for incident in current:
            if incident.key in now_open:
                continue  # the same incident twice in one run: one email
            if incident.key in previous:
                now_open[incident.key] = previous[incident.key]
                continue
            subject = _subject(incident.subject)
            now_open[incident.key] = subject
            self._send(subject, incident.body, results)
        for key, opened_subject in previous.items():
            if key in now_open or key not in resolved_subjects:
                continue
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            body = (f"Resolved: {opened_subject}\n\n"
                    f"genesys-prov no longer reports this incident (as of {stamp}).\n")
            self._send(_subject(resolved_subjects[key]), body, results)
        self._save_open(now_open)
        return results

    def _send(self, subject: str, body: str, results: list[str]) -> None:
        if self._config is None:
            return
        try:
            error = self._sender(self._config, subject, body)
        except Exception as exc:  # a custom sender broke its contract; still never raise
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            results.append(_one_line(f"sent: {subject}"))
        else:
            results.append(_one_line(f"email failed: {subject}: {error}"))

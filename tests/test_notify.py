"""Email notifications: real SMTP delivery against aiosmtpd on 127.0.0.1, failure modes
that must never raise, Notifier open/close semantics, and notify: validation."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from genesys_prov import redact
from genesys_prov.errors import ConfigError
from genesys_prov.notify import (
    EmailConfig,
    Incident,
    Notifier,
    parse_notify,
    send_email,
)

PASSWORD = "Pa55-w0rd-for-tests"
USER = "svc-genesys"


def free_port() -> int:
    """A port nothing listens on right now (bind to 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    """One message as the server saw it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Collector:
    """aiosmtpd handler: keeps every message; refuses recipients starting with nobody@."""

    messages: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos),
                                      parsed))
        return "250 OK"


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
          and auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(**kwargs: Any) -> Iterator[tuple[Collector, int]]:
    """A real aiosmtpd server on 127.0.0.1 and a free port."""
    handler = Collector()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def config(port: int, **overrides: Any) -> EmailConfig:
    values: dict[str, Any] = {
        "to": ("ops@contoso.com", "oncall@contoso.com"), "sender": "genesys-prov@contoso.com",
        "smtp_host": "127.0.0.1", "smtp_port": port, "starttls": False, "timeout": 5.0,
    }
    values.update(overrides)
    return EmailConfig(**values)


# --------------------------------------------------------------------------- send_email


def test_plain_smtp_delivers_utf8_email() -> None:
    with smtp_server() as (handler, port):
        body = "3 changes failed:\n  Zoë Ångström — HTTP 409\n"
        assert send_email(config(port), "genesys-prov: 3 changes failed ✗", body) is None
    [got] = handler.messages
    assert got.mail_from == "genesys-prov@contoso.com"
    assert got.rcpt_tos == ["ops@contoso.com", "oncall@contoso.com"]
    msg = got.message
    assert msg["From"] == "genesys-prov@contoso.com"
    assert msg["To"] == "ops@contoso.com, oncall@contoso.com"
    assert msg["Subject"] == "genesys-prov: 3 changes failed ✗"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"] and msg["Message-ID"]
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content().replace("\r\n", "\n") == body


def test_subject_is_one_line_with_prefix_and_no_header_injection() -> None:
    with smtp_server() as (handler, port):
        assert send_email(config(port), "held\r\nBcc: evil@example.com", "x") is None
    msg = handler.messages[0].message
    assert msg["Subject"] == "genesys-prov: held Bcc: evil@example.com"
    assert msg["Bcc"] is None
    assert handler.messages[0].rcpt_tos == ["ops@contoso.com", "oncall@contoso.com"]


def test_auth_success() -> None:
    with smtp_server(authenticator=authenticator, auth_require_tls=False) as (handler, port):
        cfg = config(port, username=USER, password=PASSWORD)
        assert send_email(cfg, "genesys-prov: hello", "body") is None
    assert len(handler.messages) == 1


def test_auth_wrong_password_returns_scrubbed_error() -> None:
    wrong = "Wr0ng-secret-value"
    redact.register(wrong)
    with smtp_server(authenticator=authenticator, auth_require_tls=False) as (handler, port):
        error = send_email(config(port, username=USER, password=wrong), "s", "b")
    assert error is not None
    assert "authentication failed" in error and "535" in error
    assert wrong not in error and "\n" not in error
    assert handler.messages == []


def test_auth_not_offered_returns_error() -> None:
    with smtp_server() as (_, port):
        error = send_email(config(port, username=USER, password=PASSWORD), "s", "b")
    assert error is not None and "does not offer AUTH" in error


def test_starttls_not_offered_returns_error() -> None:
    with smtp_server() as (handler, port):
        error = send_email(config(port, starttls=True), "s", "b")
    assert error is not None and "does not offer STARTTLS" in error
    assert handler.messages == []


def test_starttls_with_verified_certificate_and_auth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # the client's system trust store
    with smtp_server(tls_context=server_ctx, require_starttls=True,
                     authenticator=authenticator) as (handler, port):
        cfg = config(port, starttls=True, username=USER, password=PASSWORD)
        assert send_email(cfg, "genesys-prov: tls", "over TLS") is None
    assert handler.messages[0].message.get_content().strip() == "over TLS"


def test_starttls_untrusted_certificate_returns_error() -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(server_ctx)
    with smtp_server(tls_context=server_ctx) as (handler, port):
        error = send_email(config(port, starttls=True), "s", "b")
    assert error is not None and "certificate verification failed" in error
    assert handler.messages == []


def test_connection_refused_returns_error() -> None:
    error = send_email(config(free_port()), "s", "b")
    assert error is not None
    assert "connection refused" in error and "127.0.0.1" in error


def test_timeout_returns_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the TCP connection but never says hello
        error = send_email(config(silent.getsockname()[1], timeout=0.3), "s", "b")
    assert error is not None and "timed out after 0.3 s" in error


def test_some_recipients_refused_reports_them() -> None:
    with smtp_server() as (handler, port):
        error = send_email(config(port, to=("ops@contoso.com", "nobody@contoso.com")),
                           "s", "b")
    assert error is not None and "nobody@contoso.com" in error and "550" in error
    assert handler.messages[0].rcpt_tos == ["ops@contoso.com"]


def test_all_recipients_refused_returns_error() -> None:
    with smtp_server() as (handler, port):
        error = send_email(config(port, to=("nobody@contoso.com",)), "s", "b")
    assert error is not None and "all recipients refused" in error
    assert handler.messages == []


def test_password_not_in_repr() -> None:
    assert PASSWORD not in repr(config(25, username=USER, password=PASSWORD))


# --------------------------------------------------------------------------- Notifier


@dataclass
class Harness:
    """A Notifier with an in-memory open set and a recording sender."""

    store: dict[str, str] = field(default_factory=dict)
    sent: list[tuple[str, str]] = field(default_factory=list)
    fail_with: str | None = None
    enabled: bool = True

    def sender(self, cfg: EmailConfig, subject: str, body: str) -> str | None:
        if self.fail_with is not None:
            return self.fail_with
        self.sent.append((subject, body))
        return None

    def save(self, value: dict[str, str]) -> None:
        self.store = dict(value)

    def notifier(self) -> Notifier:
        cfg = config(25) if self.enabled else None
        return Notifier(cfg, lambda: dict(self.store), self.save, self.sender)

    def run(self, *incidents: Incident, resolved: dict[str, str] | None = None) -> list[str]:
        return self.notifier().update(list(incidents), resolved)


FAILURES = Incident("failures", "genesys-prov: 3 changes failed", "details")
QUARANTINE = Incident("quarantine", "genesys-prov: entered quarantine", "why")
LEFT = {"quarantine": "genesys-prov left quarantine"}


def test_incident_opens_once_then_closes_silently() -> None:
    h = Harness()
    assert h.run(FAILURES) == ["sent: genesys-prov: 3 changes failed"]
    assert h.sent == [("genesys-prov: 3 changes failed", "details")]
    assert h.store == {"failures": "genesys-prov: 3 changes failed"}
    # Still failing (even with a different count): no second email.
    assert h.run(Incident("failures", "genesys-prov: 5 changes failed", "x")) == []
    assert len(h.sent) == 1
    # Gone: closed silently.
    assert h.run(resolved=LEFT) == []
    assert len(h.sent) == 1 and h.store == {}
    # Back again: a new incident, a new email.
    h.run(FAILURES)
    assert len(h.sent) == 2


def test_quarantine_enter_and_leave_sends_two_emails() -> None:
    h = Harness()
    h.run(QUARANTINE, resolved=LEFT)
    h.run(QUARANTINE, resolved=LEFT)
    results = h.run(resolved=LEFT)
    assert results == ["sent: genesys-prov left quarantine"]
    assert [s for s, _ in h.sent] == ["genesys-prov: entered quarantine",
                                      "genesys-prov left quarantine"]
    assert "Resolved: genesys-prov: entered quarantine" in h.sent[1][1]
    assert h.store == {}


def test_failing_sender_still_marks_open_and_reports_scrubbed_error() -> None:
    h = Harness(fail_with=f"cannot send email: 535 bad password {PASSWORD}")
    redact.register(PASSWORD)
    results = h.run(FAILURES)
    assert len(results) == 1
    assert results[0].startswith("email failed: genesys-prov: 3 changes failed: ")
    assert PASSWORD not in results[0]
    assert h.store == {"failures": "genesys-prov: 3 changes failed"}
    h.fail_with = None
    assert h.run(FAILURES) == [] and h.sent == []  # no retry storm


def test_raising_sender_never_raises() -> None:
    def boom(cfg: EmailConfig, subject: str, body: str) -> str | None:
        raise RuntimeError("kaput")

    store: dict[str, str] = {}
    notifier = Notifier(config(25), dict, store.update, boom)
    assert notifier.update([FAILURES]) == [
        "email failed: genesys-prov: 3 changes failed: RuntimeError: kaput"]
    assert store == {"failures": "genesys-prov: 3 changes failed"}


def test_without_config_tracks_but_does_not_send() -> None:
    h = Harness(enabled=False)
    assert h.run(FAILURES, QUARANTINE) == []
    assert h.sent == [] and set(h.store) == {"failures", "quarantine"}
    assert h.run(resolved=LEFT) == [] and h.store == {}


def test_subject_prefix_added_and_duplicates_collapsed() -> None:
    h = Harness()
    h.run(Incident("held", "2 deletions held", "b"), Incident("held", "again", "b"))
    assert [s for s, _ in h.sent] == ["genesys-prov: 2 deletions held"]


def test_notifier_with_real_server() -> None:
    store: dict[str, str] = {}

    def save(value: dict[str, str]) -> None:
        store.clear()
        store.update(value)

    with smtp_server() as (handler, port):
        notifier = Notifier(config(port), lambda: dict(store), save)
        assert notifier.update([QUARANTINE], LEFT) == ["sent: genesys-prov: entered quarantine"]
        assert notifier.update([QUARANTINE], LEFT) == []
        assert notifier.update([], LEFT) == ["sent: genesys-prov left quarantine"]
    assert [r.message["Subject"] for r in handler.messages] == [
        "genesys-prov: entered quarantine", "genesys-prov left quarantine"]


# --------------------------------------------------------------------------- parse_notify


def raw(**email_overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "to": ["ops@contoso.com", "oncall@contoso.com"],
        "from": "genesys-prov@contoso.com",
        "smtp_host": "smtp.contoso.com",
    }
    for key, value in email_overrides.items():
        if value is ...:
            section.pop(key, None)
        else:
            section[key] = value
    return {"email": section}


def test_parse_defaults_and_single_recipient() -> None:
    cfg = parse_notify(raw(to="ops@contoso.com"))
    assert cfg == EmailConfig(to=("ops@contoso.com",), sender="genesys-prov@contoso.com",
                              smtp_host="smtp.contoso.com")
    assert cfg.smtp_port == 587 and cfg.starttls and cfg.timeout == 30.0


def test_parse_full_and_registers_password() -> None:
    secret = "smtp-Secret-1234"
    cfg = parse_notify(raw(smtp_port=25, starttls=True, username="u", password=secret,
                           timeout=10))
    assert cfg is not None and cfg.password == secret and cfg.timeout == 10.0
    assert redact.scrub(f"x {secret} y") == "x [redacted] y"


@pytest.mark.parametrize("value", [None, {}, {"email": None}, {"email": {}}])
def test_parse_not_configured(value: Any) -> None:
    assert parse_notify(value) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (raw(smtp_prot=25),
         "notify.email.smtp_prot: unknown key (did you mean 'smtp_port'?)"),
        ({"emial": {}}, "notify.emial: unknown key (did you mean 'email'?)"),
        ({"slack": {}}, "notify.slack: unknown key (expected one of: email)"),
        ("yes", "notify: expected a mapping of settings, got 'yes'"),
        (raw(to=...), "notify.email.to: required key is missing"),
        (raw(**{"from": ...}), "notify.email.from: required key is missing"),
        (raw(smtp_host=...), "notify.email.smtp_host: required key is missing"),
        (raw(to=[]), "notify.email.to: expected at least one address"),
        (raw(to=["ops@contoso.com", "oncall"]),
         "notify.email.to[1]: 'oncall' does not look like an email address "
         "(expected name@domain)"),
        (raw(to="a@b.com, c@d.com"),
         "notify.email.to: 'a@b.com, c@d.com' does not look like an email address "
         "(expected name@domain)"),
        (raw(smtp_port=0), "notify.email.smtp_port: expected a port between 1 and 65535, got 0"),
        (raw(smtp_port=70000),
         "notify.email.smtp_port: expected a port between 1 and 65535, got 70000"),
        (raw(smtp_port="587"), "notify.email.smtp_port: expected an integer, got '587'"),
        (raw(smtp_port=True), "notify.email.smtp_port: expected an integer, got True"),
        (raw(starttls="no"), "notify.email.starttls: expected true or false, got 'no'"),
        (raw(timeout=0), "notify.email.timeout: expected a positive number of seconds, got 0"),
        (raw(username="svc"),
         "notify.email.password: required when username is set (give both or neither)"),
        (raw(password="s3cr3t-pw"),
         "notify.email.username: required when password is set (give both or neither)"),
        (raw(password=1234), "notify.email.password: expected a string, got [redacted]"),
        (raw(starttls=False, username="u", password="pw-pw-pw"),
         "notify.email.starttls: refusing to send the SMTP password unencrypted to "
         "smtp.contoso.com (set starttls: true)"),
    ],
)
def test_parse_errors_are_one_line(value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_notify(value)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_parse_keypath_and_plain_auth_on_loopback() -> None:
    with pytest.raises(ConfigError, match=r"^cfg\.notify\.email\.smtp_prot: "):
        parse_notify(raw(smtp_prot=1), keypath="cfg.notify")
    cfg = parse_notify(raw(smtp_host="localhost", starttls=False, username="u",
                           password="pw-pw-pw"))
    assert cfg is not None and not cfg.starttls

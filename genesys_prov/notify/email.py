"""Sending one email over SMTP (STARTTLS, SMTPS or plain on loopback); never raises: a
broken mail server must never fail a sync."""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from genesys_prov import redact
from genesys_prov.notify.settings import (
    SMTPS_PORT,
    SUBJECT_PREFIX,
    EmailConfig,
)

_MAX_ERROR_LEN = 500


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
        return one_line(f"cannot send email via {where}: {_describe(exc, config)}")
    if refused:
        names = "; ".join(f"{addr} ({_reply(code, text)})"
                          for addr, (code, text) in sorted(refused.items()))
        return one_line(f"email via {where} not delivered to some recipients: {names}")
    return None


def _build_message(config: EmailConfig, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject_line(subject)
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


def one_line(text: str) -> str:
    text = " ".join(redact.scrub(text).split())
    return text if len(text) <= _MAX_ERROR_LEN else text[: _MAX_ERROR_LEN - 3] + "..."


def subject_line(subject: str) -> str:
    """One line, starting with ``genesys-prov``."""
    subject = " ".join(subject.split())
    if not subject.startswith(SUBJECT_PREFIX):
        subject = f"{SUBJECT_PREFIX}: {subject}" if subject else SUBJECT_PREFIX
    return subject

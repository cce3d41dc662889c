"""Secret redaction. Every secret the tool learns (client secrets, static tokens, access
tokens) is registered here, and every message that leaves the library passes through
:func:`scrub`. A logging filter applies the same to log records."""

from __future__ import annotations

import logging
import re
import threading

REDACTED = "[redacted]"
_MIN_LEN = 4
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_BEARER = re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")


def register(secret: str | None) -> None:
    """Remember a secret so that :func:`scrub` removes it from any text."""
    global _pattern
    if not secret or len(secret) < _MIN_LEN:
        return
    with _lock:
        if secret in _secrets:
            return
        _secrets.add(secret)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def scrub(text: str) -> str:
    """Return ``text`` with every registered secret and every bearer/basic credential
    replaced by ``[redacted]``."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs secrets from the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message with its scrubbed rendering."""
        message = record.getMessage()
        record.msg = scrub(message)
        record.args = None
        return True

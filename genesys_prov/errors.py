"""Domain exceptions. Every expected failure is one of these; the CLI turns them into
a one-line ``Error: ...`` and the exit code carried by the class.

Exit codes (documented in the README):

=====  ==========================================================
0      success
1      some changes failed (the run itself completed)
2      usage or configuration error (config, YAML, mappings, expressions)
3      blocked by a safety guard
4      cannot connect, authenticate, or read a valid answer
5      another run holds the lock
70     internal error: a bug (one line; the traceback is logged at -vv)
=====  ==========================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHANGES_FAILED = 1
EXIT_USAGE = 2
EXIT_SAFETY = 3
EXIT_CONNECT = 4
EXIT_LOCKED = 5
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE


class GenesysProvError(Exception):
    """Base class of every expected failure; ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_CHANGES_FAILED


class ConfigError(GenesysProvError):
    """The configuration file or its values are invalid."""

    exit_code = EXIT_USAGE


class MappingError(ConfigError):
    """The mappings file is invalid."""


class ExpressionError(MappingError):
    """An expression cannot be parsed; the message carries line, column and a caret."""

    def __init__(self, message: str, expression: str = "", position: int = 0) -> None:
        self.expression = expression
        self.position = position
        self.reason = message
        super().__init__(self._render(message, expression, position))

    @staticmethod
    def _render(message: str, expression: str, position: int) -> str:
        if not expression:
            return message
        before = expression[:position]
        line = before.count("\n") + 1
        line_start = before.rfind("\n") + 1
        column = position - line_start + 1
        line_end = expression.find("\n", position)
        text = expression[line_start : line_end if line_end != -1 else len(expression)]
        caret = " " * (column - 1) + "^"
        return f"{message} at line {line}, column {column}\n  {text}\n  {caret}"


class EvaluationError(GenesysProvError):
    """An expression failed at run time for one object (that object's change fails)."""


class SafetyError(GenesysProvError):
    """A safety guard refused to go on."""

    exit_code = EXIT_SAFETY


class ConnectError(GenesysProvError):
    """A side cannot be reached, refuses our credentials, or answers with garbage."""

    exit_code = EXIT_CONNECT


class AuthError(ConnectError):
    """Authentication or authorisation failed."""


class SourceError(ConnectError):
    """Microsoft Graph could not be read (nothing is written when this happens).
    ``status`` is Graph's HTTP status when it answered; ``transient`` is False when trying
    again cannot help (a TLS failure)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.transient = True


class DeltaExpired(SourceError):
    """Graph no longer knows a stored delta token (410 Gone, SyncStateNotFound in any case,
    or another 4xx on the stored link): a full sync is needed."""


class TargetError(ConnectError):
    """The SCIM target could not be read (nothing is written when this happens)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class QuarantineError(ConnectError):
    """The job is quarantined: runs only probe the connection until a probe succeeds."""


class LockError(GenesysProvError):
    """Another run holds the lock."""

    exit_code = EXIT_LOCKED


class ScimError(GenesysProvError):
    """A SCIM request failed; carries the HTTP status, scimType and detail."""

    def __init__(
        self, status: int, detail: str, scim_type: str | None = None, method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.scim_type = scim_type
        self.detail = detail
        self.method = method
        self.path = path
        where = f"{method} {path}: " if method else ""
        kind = f" ({scim_type})" if scim_type else ""
        super().__init__(f"{where}HTTP {status}{kind}: {detail}")

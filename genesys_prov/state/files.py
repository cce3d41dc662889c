"""Private files: the state directory, the database and the log files are readable by
their owner only (they hold directory data and sit next to secrets)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def tighten(path: Path, mode: int) -> None:
    """Make an existing file or directory of ours private (one left by an older version)."""
    try:
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(mode)
    except OSError:
        pass


def private_directory(path: Path) -> None:
    """Create ``path`` (and its parents) readable by its owner only; tighten it when it
    already exists and is ours. The state holds directory data and secrets' neighbours."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    tighten(path, 0o700)
    for child in path.iterdir():
        if child.is_file():
            tighten(child, 0o600)


def private_append(path: Path) -> Any:
    """Open ``path`` for appending, created readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8")

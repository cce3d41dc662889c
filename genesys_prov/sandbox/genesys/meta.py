"""The ``meta`` of stored resources: timestamps, versions (weak ETags) and comparing
entity tags."""

from __future__ import annotations

from datetime import UTC, datetime


def timestamp() -> str:
    """The current UTC time as SCIM writes it (ISO 8601, milliseconds, Z)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def weak_etag(number: int) -> str:
    """The weak ETag of version ``number``."""
    return f'W/"{number}"'


def etag_value(tag: str) -> str:
    """An entity tag without its weak prefix and quotes, for comparisons."""
    tag = tag.strip()
    if tag.startswith(("W/", "w/")):
        tag = tag[2:]
    return tag.strip('"')

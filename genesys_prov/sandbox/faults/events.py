"""The proxy's log: one :class:`Event` per request received, and the :class:`EventLog`
a proxy keeps them in (logged as each outcome is decided, before the client sees it)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from genesys_prov.sandbox.faults.rules import Fault


@dataclass(frozen=True)
class Event:
    """One request the proxy received, and what became of it."""

    method: str
    #: The request target (path and query) as the client sent it.
    path: str
    fault: Fault
    #: Whether the request was sent to the upstream (it may have applied it).
    forwarded: bool
    #: The status the client was sent (None when its connection was reset instead).
    status: int | None
    #: The status the upstream answered (None when not forwarded or it did not answer).
    upstream_status: int | None = None
    #: Position (among the current rules) of the rule that decided; None if none matched.
    rule: int | None = None
    #: Why the proxy answered 502 itself, or why the answer could not be delivered.
    error: str = ""


class EventLog:
    """The log part of a :class:`~genesys_prov.sandbox.faults.FaultProxy` (under the
    proxy's lock)."""

    _lock: threading.RLock
    _events: list[Event]

    def _record(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    @property
    def log(self) -> list[Event]:
        """A snapshot of every request received, logged as its outcome is decided (before
        the client sees it)."""
        with self._lock:
            return list(self._events)

    def clear_log(self) -> None:
        """Forget the logged events."""
        with self._lock:
            self._events.clear()

    def forwarded(self, method: str | None = None) -> list[Event]:
        """The logged requests that reached the upstream (optionally only ``method``)."""
        wanted = method.upper() if method is not None else None
        return [event for event in self.log
                if event.forwarded and (wanted is None or event.method == wanted)]

    def injected(self) -> list[Event]:
        """The logged requests that got a fault (anything but PASS)."""
        return [event for event in self.log if event.fault is not Fault.PASS]

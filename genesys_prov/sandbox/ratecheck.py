"""The rate limiter measured for real: a first sync of N synthetic users against a sandbox
whose Genesys emulator enforces the same per-minute limit (a sliding 60-s window), with
every SCIM request's arrival time recorded on the server's side.

:func:`rate_limited_run` returns the figures (the benchmark may call it): how many requests
arrived, the most in any 60-s window, the wall time against the floor (N requests at L a
minute take N/L minutes, plus the pauses), and how many requests the client started inside
a pause. Two 429s with ``Retry-After`` are injected on the way (``pauses``), so the pause
handling is measured too.

Run: ``python -m genesys_prov.sandbox.ratecheck --users 500 --per-minute 1200``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

from genesys_prov.config import load_config
from genesys_prov.http import RateLimiter, Slot
from genesys_prov.sandbox import Sandbox
from genesys_prov.sandbox.demo import write_sandbox_config
from genesys_prov.sandbox.scim import ScimFault
from genesys_prov.sync.run import run_sync


class _ClientLog:
    """What the client's limiters did: each request's start (when ``acquire`` returned)
    and each pause (from its call to its end), on the monotonic clock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.starts: list[float] = []
        self.pauses: list[tuple[float, float]] = []

    def limiter_class(self) -> type[RateLimiter]:
        """A :class:`RateLimiter` that records into this log when it limits (per_minute > 0
        or a pause); the limiter decides, the record is taken outside its decision."""
        log = self

        class RecordingLimiter(RateLimiter):
            def acquire(self) -> Slot:
                slot = super().acquire()
                if self.per_minute > 0:
                    with log.lock:
                        log.starts.append(time.monotonic())
                return slot

            def pause(self, seconds: float) -> None:
                now = time.monotonic()
                super().pause(seconds)
                with log.lock:
                    log.pauses.append((now, now + seconds))

        return RecordingLimiter


class _ServerLog:
    """Server-side arrival times of the rate-limited SCIM requests (as the emulator's own
    window sees them), the injected 429s, and the 429s of the emulator's rate limit."""

    def __init__(self, check: Callable[[], None], clock: Callable[[], float],
                 inject_at: set[int], retry_after: int) -> None:
        self._check = check
        self._clock = clock
        self._inject_at = inject_at
        self._retry_after = retry_after
        self.lock = threading.Lock()
        self.arrivals: list[float] = []
        self.injected = 0
        self.over_limit = 0

    def __call__(self) -> None:
        """The emulator's throttle check, recorded (and a 429 injected on cue)."""
        with self.lock:
            self.arrivals.append(self._clock())
            number = len(self.arrivals)
            if number in self._inject_at:
                self.injected += 1
                raise ScimFault(429, "Rate limit exceeded (injected by the rate check)",
                                headers={"Retry-After": str(self._retry_after)})
        try:
            self._check()
        except ScimFault as fault:
            if fault.status == 429:
                with self.lock:
                    self.over_limit += 1
            raise


def max_in_window(times: list[float], window: float = 60.0) -> int:
    """The most of ``times`` in any window of ``window`` seconds (a sliding window ending
    at each time, counting those less than ``window`` before it, as the emulator does)."""
    ordered = sorted(times)
    worst = low = 0
    for high, moment in enumerate(ordered):
        while ordered[low] <= moment - window:
            low += 1
        worst = max(worst, high - low + 1)
    return worst


def _config(sandbox: Sandbox, directory: Path, per_minute: int, concurrency: int) -> Path:
    """The sandbox's configuration with the target's rate limit and concurrency set."""
    path = write_sandbox_config(sandbox, directory)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["target"].update({"rate_limit_per_minute": per_minute, "concurrency": concurrency})
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def rate_limited_run(users: int = 500, per_minute: int = 1200, pauses: int = 2,
                     pause_seconds: int = 2, concurrency: int = 4) -> dict[str, Any]:
    """A first sync of ``users`` synthetic users at ``per_minute`` against an emulator
    enforcing the same limit; ``pauses`` 429s with ``Retry-After: pause_seconds`` are
    injected, evenly through the expected requests.

    Returns ``requests`` (SCIM requests that reached the rate-limited routes, the injected
    429s included), ``max_in_any_60s_window`` (server side), ``seconds`` (the sync's wall
    time), ``floor_seconds`` (the client's limited requests at ``per_minute``, plus the
    pauses), ``ratio``, ``sent_while_paused`` (requests the client started inside a
    pause), ``over_limit_429s`` (the emulator's own rate-limit refusals: should be 0),
    ``max_in_any_1s_window`` and ``client_requests`` (token requests included)."""
    inject_at = {round((k + 1) * users / (pauses + 1)) for k in range(pauses)}
    client = _ClientLog()
    with tempfile.TemporaryDirectory(prefix="genesys-prov-ratecheck-") as tmp, \
            Sandbox(users=users, genesys_rate_limit_per_minute=per_minute,
                    workdir=Path(tmp)) as sb:
        sb.graph.record_requests = False
        sb.genesys.record_requests = False
        server = _ServerLog(sb.genesys._check_throttle, sb.genesys.clock, inject_at,
                            pause_seconds)
        sb.genesys._check_throttle = server  # type: ignore[method-assign]
        config = load_config(_config(sb, Path(tmp), per_minute, concurrency))
        with mock.patch("genesys_prov.sync.connections.RateLimiter", client.limiter_class()):
            started = time.monotonic()
            result = run_sync(config)
            seconds = time.monotonic() - started
    floor = len(client.starts) * 60 / per_minute + sum(e - b for b, e in client.pauses)
    inside = [s for s in client.starts for b, e in client.pauses if b < s < e]
    return {
        "users": users, "per_minute": per_minute, "requests": len(server.arrivals),
        "client_requests": len(client.starts),
        "max_in_any_60s_window": max_in_window(server.arrivals),
        "max_in_any_1s_window": max_in_window(server.arrivals, 1.0),
        "seconds": round(seconds, 2), "floor_seconds": round(floor, 2),
        "ratio": round(seconds / floor, 3) if floor else None,
        "pauses": len(client.pauses), "sent_while_paused": len(inside),
        "injected_429s": server.injected, "over_limit_429s": server.over_limit,
        "changes": {k: v for k, v in result.plan.counts().items() if v},
    }


def main(argv: list[str] | None = None) -> None:
    """Run :func:`rate_limited_run` and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--per-minute", type=int, default=1200)
    parser.add_argument("--pauses", type=int, default=2)
    parser.add_argument("--pause-seconds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    print(json.dumps(rate_limited_run(args.users, args.per_minute, args.pauses,
                                      args.pause_seconds, args.concurrency), indent=2))


if __name__ == "__main__":
    main()

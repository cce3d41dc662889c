"""Request limits: the injected throttle (:meth:`GenesysEmulator.throttle_next`) and the
per-minute rate limit, both answered with 429 and ``Retry-After``."""

from __future__ import annotations

import math

from genesys_prov.sandbox.genesys.state import GenesysState
from genesys_prov.sandbox.scim import (
    ScimFault,
)


class RateLimits(GenesysState):
    """Refusing requests over the limits."""

    def _check_throttle(self) -> None:
        """Raise 429 for an injected throttle or when over the per-minute limit."""
        with self._limit_lock:
            if self._throttle_remaining > 0:
                self._throttle_remaining -= 1
                raise ScimFault(
                    429,
                    "Rate limit exceeded: too many requests",
                    headers={"Retry-After": str(self._throttle_retry_after)},
                )
            limit = self.rate_limit_per_minute
            if not limit:
                return
            now = self.clock()
            window = self._window
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= limit:
                wait = max(1, math.ceil(window[0] + 60 - now))
                raise ScimFault(
                    429,
                    f"Rate limit exceeded: {limit} requests per minute",
                    headers={"Retry-After": str(wait)},
                )
            window.append(now)

"""The emulated Genesys org's state: users (active, inactive, deleted), groups, their
indexes and versions, tokens, throttling and the knobs tests turn; new ids and
resource locations."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from genesys_prov.sandbox._http import RequestLog
from genesys_prov.sandbox._ranked import RankedSet
from genesys_prov.sandbox.genesys.resource_types import DEFAULT_ROLE
from genesys_prov.sandbox.genesys.routes import (
    BASE_PATH,
)


class GenesysState(RequestLog):
    """The state the Genesys emulator's parts share."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        static_token: str,
        rate_limit_per_minute: int | None = None,
        seed: int = 42,
    ) -> None:
        """An empty org; ``base_url`` is set by the Sandbox once the server is bound."""
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.static_token = static_token
        self.rate_limit_per_minute: int | None = rate_limit_per_minute
        #: False → PATCH answers 204 No Content (clients must accept both).
        self.patch_returns_body: bool = True
        #: Page size ceiling for trimmed listings (ServiceProviderConfig filter.maxResults).
        self.max_results: int = 100
        #: When set, a listing page larger than this that returns an expensive attribute
        #: (``EXPENSIVE_ATTRIBUTES``) is refused with 429 "internal resource limits".
        self.expensive_page_limit: int | None = None
        #: Lifetime (s) of tokens from /oauth/token.
        self.token_lifetime: int = 86400
        #: Permissions the OAuth client lacks: requests needing one get 403.
        self.denied_permissions: set[str] = set()
        #: Role names that exist in the org (``roles[].value`` must be one of them).
        self.role_names: set[str] = {
            DEFAULT_ROLE, "admin", "Master Admin", "Supervisor", "User", "Communicate - User",
        }
        #: Division names that exist (an unknown ``division`` is refused with 400).
        self.divisions: set[str] = {"Home", "Sales", "Support", "Operations"}
        #: Routing skills / languages that exist (names are case-sensitive).
        self.routing_skills: set[str] = {"Sales", "Support", "Billing", "Escalations"}
        self.routing_languages: set[str] = {"English", "French", "German", "Spanish", "Japanese"}
        #: Monotonic clock used for rate limits and token expiry (tests may replace it).
        self.clock: Callable[[], float] = time.monotonic
        self.base_url = ""

        self.users: dict[str, dict[str, Any]] = {}
        self.deleted_users: dict[str, dict[str, Any]] = {}
        #: userNames and emails (lower case) of deleted users: creating a user with one → 409.
        #: Tests may clear it to allow reuse.
        self.deleted_names: set[str] = set()
        self.groups: dict[str, dict[str, Any]] = {}

        self._lock = threading.RLock()
        self._rng = random.Random(f"genesys-{seed}")
        self._versions: dict[str, int] = {}
        self._seq: dict[str, int] = {}
        self._seq_ids: list[str] = []
        self._active = RankedSet()
        self._inactive = RankedSet()
        #: index name → key → the id (one holder) or a set of ids (several holders)
        self._index: dict[str, dict[str, str | set[str]]] = {
            name: {}
            for name in (
                "userName", "email", "externalId", "employeeNumber", "division", "manager",
                "externalIds",
            )
        }
        self._group_order: list[str] = []
        self._group_seq: dict[str, int] = {}
        self._group_names: dict[str, str] = {}
        self._member_of: dict[str, set[str]] = {}
        self._tokens: dict[str, float] = {}
        self._throttle_remaining = 0
        self._throttle_retry_after = 0
        self._window: deque[float] = deque()
        self._limit_lock = threading.Lock()

    def _new_id(self) -> str:
        """A fresh resource id (deterministic for a given seed and request order)."""
        while True:
            candidate = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            if candidate not in self.users and candidate not in self.groups and (
                candidate not in self.deleted_users
            ):
                return candidate

    def _location(self, kind: str, rid: str) -> str:
        """The absolute URL of a resource."""
        return f"{self.base_url}{BASE_PATH}/{kind}/{rid}"

"""Authentication to the SCIM target: the bearer token the client sends, either a static
``target.token`` or a Genesys OAuth token obtained with the client-credentials grant and
renewed before it expires."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from genesys_prov import redact
from genesys_prov.config import TargetConfig
from genesys_prov.errors import AuthError, TargetError
from genesys_prov.http import HttpClient, TransportError
from genesys_prov.target.responses import scim_error

TOKEN_ATTEMPTS = 3


def token_refused(response: requests.Response, config: TargetConfig) -> str:
    """The message for a token request the endpoint refused: what it said (its error code
    only: descriptions may echo credentials) and which settings to check."""
    code = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            code = str(body.get("error") or "")
    except ValueError:
        pass
    code = code if code.replace("_", "").isalnum() else ""
    return (f"Genesys OAuth refused the client credentials (HTTP {response.status_code}"
            f"{', ' + code if code else ''}): check target.oauth.client_id and the secret in "
            f"target.oauth.client_secret{secret_hint(config)}, and that the OAuth client uses "
            "the client-credentials grant")


def secret_hint(config: TargetConfig) -> str:
    """Where the secret was read from, for messages: `` (read from ${VAR})`` or nothing."""
    variable = config.secret_variable
    return f" (read from ${{{variable}}})" if variable else ""


@dataclass
class _Token:
    """An OAuth access token and when to stop using it (``time.monotonic()`` seconds)."""

    value: str
    expires_at: float


class TokenSource:
    """The bearer token for one SCIM target: ``target.token`` as is, or an OAuth token
    fetched on first use and again when it is about to expire (or when asked to, after
    the target refused it). Safe to share between threads.

    Example::

        tokens = TokenSource(config.target, http)
        headers = {"Authorization": f"Bearer {tokens.bearer()}"}
    """

    def __init__(self, config: TargetConfig, http: HttpClient) -> None:
        self.config = config
        self.http = http
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        if config.token:
            redact.register(config.token)

    def bearer(self, force: bool = False) -> str:
        """The token to send; ``force`` fetches a new OAuth token even when the current
        one has not expired yet."""
        if self.config.token:
            return self.config.token
        with self._token_lock:
            now = time.monotonic()
            if force or self._token is None or now >= self._token.expires_at:
                self._token = self._fetch_token()
            return self._token.value

    def _fetch_token(self) -> _Token:
        oauth = self.config.oauth
        assert oauth is not None
        for attempt in range(1, TOKEN_ATTEMPTS + 1):
            try:
                response = self.http.request(
                    "POST", oauth.token_url, data={"grant_type": "client_credentials"},
                    auth=(oauth.client_id, oauth.client_secret), idempotent=True,
                    count_as="token",
                )
            except TransportError as exc:
                raise TargetError(f"Genesys OAuth: {exc}") from exc
            if response.status_code in (400, 401, 403):
                raise AuthError(token_refused(response, self.config))
            if response.status_code != 200:
                err = scim_error(response, "POST", urlsplit(oauth.token_url).path)
                raise TargetError(f"Genesys OAuth: the token endpoint answered HTTP "
                                  f"{err.status}: {err.detail}", status=err.status)
            try:
                body = response.json()
                token = str(body["access_token"])
                lifetime = float(body.get("expires_in", 3600))
                break
            except (ValueError, KeyError, TypeError) as exc:
                if attempt == TOKEN_ATTEMPTS:  # garbled every time: not a hiccup
                    raise TargetError("Genesys OAuth: the token endpoint's answer has no "
                                      "access_token (a proxy or the wrong URL in "
                                      "target.oauth.token_url?)") from exc
        redact.register(token)
        # Refresh a minute early (or at 90 % of a short lifetime).
        margin = min(60.0, lifetime * 0.1)
        return _Token(token, time.monotonic() + lifetime - margin)

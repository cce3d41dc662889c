"""Authentication: the ``/oauth/token`` endpoint (client credentials, HTTP Basic) and
the bearer token check (issued or static tokens)."""

from __future__ import annotations

import base64
import binascii
import secrets

from genesys_prov.sandbox._http import Request, Response, same_secret
from genesys_prov.sandbox.genesys.state import GenesysState
from genesys_prov.sandbox.scim import (
    ScimFault,
)


class Auth(GenesysState):
    """Issuing and checking tokens."""

    def _check_token(self, request: Request) -> None:
        """Raise 401 unless the request carries a valid bearer token."""
        header = request.header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ScimFault(
                401, "Authentication failed: a bearer token is required",
                headers={"WWW-Authenticate": 'Bearer realm="Genesys Cloud"'},
            )
        if same_secret(token, self.static_token):
            return
        with self._lock:
            expires = self._tokens.get(token)
        if expires is None or expires <= self.clock():
            raise ScimFault(
                401, "Authentication failed: the token is invalid or expired",
                headers={"WWW-Authenticate": 'Bearer realm="Genesys Cloud", error="invalid_token"'},
            )

    def _token(self, request: Request) -> Response:
        """``POST /oauth/token``: client credentials with HTTP Basic client authentication."""
        if request.method != "POST":
            return Response.json(405, {"error": "method_not_allowed"}, headers={"Allow": "POST"})
        header = request.header("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        client_id = client_secret = ""
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            client_id, _, client_secret = decoded.partition(":")
        if not (
            same_secret(client_id, self.client_id)
            and same_secret(client_secret, self.client_secret)
        ):
            return Response.json(
                401,
                {"error": "invalid_client",
                 "error_description": "Client authentication failed (HTTP Basic client_id:secret)"},
                headers={"WWW-Authenticate": 'Basic realm="Genesys Cloud"'},
            )
        try:
            form = request.form()
        except UnicodeDecodeError:
            form = {}
        if form.get("grant_type") != "client_credentials":
            return Response.json(
                400,
                {"error": "unsupported_grant_type",
                 "error_description": "grant_type must be client_credentials"},
            )
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = self.clock() + self.token_lifetime
        return Response.json(
            200,
            {"access_token": token, "token_type": "bearer", "expires_in": self.token_lifetime},
            headers={"Cache-Control": "no-store"},
        )

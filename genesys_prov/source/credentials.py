"""How the tool proves who it is to Microsoft Entra (``source.auth``): a client secret, a
certificate, a managed identity (MSAL's ``ManagedIdentityClient``), or workload identity
federation (a client assertion read from a token file, re-read for every token request
because the platform rotates it). :class:`GraphCredential` hides which one from the reader.
"""

from __future__ import annotations

import os
from typing import Any

import msal
import requests

from genesys_prov import redact
from genesys_prov.config import SourceConfig
from genesys_prov.errors import AuthError, ConfigError

#: Where MSAL asks for a managed identity's token off App Service / Functions / Container
#: Apps (which set ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``): the VM's IMDS (MSAL takes
#: its host from ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` when set; the sandbox uses that).
IMDS_HOST = "http://169.254.169.254"
IMDS_PATH = "/metadata/identity/oauth2/token"


def describe_auth(config: SourceConfig) -> str:
    """The authentication method in words, for `check` and messages."""
    if config.auth == "managed_identity":
        if config.managed_identity_client_id:
            return (f"managed identity (user-assigned, client id "
                    f"{config.managed_identity_client_id})")
        return "managed identity (system-assigned)"
    if config.auth == "federated":
        return f"workload identity federation (token file {config.federated_token_file})"
    if config.auth == "certificate" and config.certificate is not None:
        return f"certificate (thumbprint {config.certificate.thumbprint})"
    return "client secret"


def token_endpoint(config: SourceConfig) -> str:
    """Where tokens come from: the managed identity endpoint MSAL will use, else the
    authority."""
    if config.auth == "managed_identity":
        imds = os.environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST") or IMDS_HOST  # as MSAL
        return os.environ.get("IDENTITY_ENDPOINT") or imds.strip("/") + IMDS_PATH
    return config.authority_host


class FederatedAssertion:
    """The client assertion of workload identity federation: the token file's content,
    read afresh each time MSAL sends a token request (Kubernetes rotates the file)."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.path = path

    def __call__(self) -> str:
        """The assertion; raises AuthError (one line) when the file is missing or empty."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                assertion = handle.read().strip()
        except OSError as exc:
            raise AuthError(f"Microsoft Entra: cannot read the federated token file "
                            f"{self.path}: {exc.strerror or exc} (source.federated_token_file "
                            f"or $AZURE_FEDERATED_TOKEN_FILE)") from exc
        except UnicodeDecodeError as exc:
            raise AuthError(f"Microsoft Entra: the federated token file {self.path} is not "
                            "text (a JWT is expected)") from exc
        if not assertion:
            raise AuthError(f"Microsoft Entra: the federated token file {self.path} is empty")
        redact.register(assertion)
        return assertion


def _client_credential(config: SourceConfig) -> Any:
    """What ConfidentialClientApplication takes as ``client_credential``."""
    if config.auth == "federated":
        assert config.federated_token_file is not None
        return {"client_assertion": FederatedAssertion(config.federated_token_file)}
    if config.client_secret is not None:
        redact.register(config.client_secret)
        return config.client_secret
    cert = config.certificate
    assert cert is not None
    try:
        key = cert.private_key_path.read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigError(f"source.certificate.private_key_path: cannot read "
                          f"{cert.private_key_path}: {exc.strerror}") from exc
    redact.register(key)
    return {"private_key": key, "thumbprint": cert.thumbprint}


class _TimedSession:
    """The session with a timeout on every request (MSAL's managed identity client sends
    none of its own; an unreachable IMDS would otherwise hang)."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        self.session = session
        self.timeout = timeout

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        """GET with the timeout."""
        kwargs.setdefault("timeout", self.timeout)
        return self.session.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        """POST with the timeout."""
        kwargs.setdefault("timeout", self.timeout)
        return self.session.post(url, **kwargs)

    def close(self) -> None:
        """Nothing to close: the session belongs to the reader."""


class GraphCredential:
    """One MSAL client for the configured method: :meth:`acquire` a Graph token (cached by
    MSAL), :meth:`forget` the cached ones.

    Example::

        credential = GraphCredential(config.source, http.session, http.timeout)
        result = credential.acquire("https://graph.microsoft.com/.default")
    """

    def __init__(self, config: SourceConfig, session: requests.Session,
                 timeout: float) -> None:
        self.config = config
        self.cache = msal.TokenCache()
        self.managed = config.auth == "managed_identity"
        if self.managed:
            redact.register(os.environ.get("IDENTITY_HEADER") or "")
            identity: Any = (
                msal.UserAssignedManagedIdentity(client_id=config.managed_identity_client_id)
                if config.managed_identity_client_id else msal.SystemAssignedManagedIdentity())
            self.app: Any = msal.ManagedIdentityClient(
                identity, http_client=_TimedSession(session, timeout), token_cache=self.cache)
            return
        self.app = msal.ConfidentialClientApplication(
            config.client_id,
            client_credential=_client_credential(config),
            authority=f"{config.authority_host.rstrip('/')}/{config.tenant_id}",
            http_client=session,
            instance_discovery=False,
            timeout=timeout,
            token_cache=self.cache,
        )

    def acquire(self, scope: str) -> Any:
        """MSAL's answer for a token with ``scope`` (``<resource>/.default``); a managed
        identity is asked for the resource itself."""
        if self.managed:
            return self.app.acquire_token_for_client(resource=scope.removesuffix("/.default"))
        return self.app.acquire_token_for_client(scopes=[scope])

    def forget(self) -> None:
        """Drop every cached access token (Graph refused one: expired or revoked)."""
        for entry in list(self.cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
            self.cache.remove_at(entry)

    def refusal(self, result: Any) -> str:
        """The one-line message for an answer without a token: who refused, what they
        said, and the keys to check (not yet scrubbed of secrets)."""
        err = result.get("error", "error") if isinstance(result, dict) else "error"
        desc = result.get("error_description", "") if isinstance(result, dict) else ""
        first = str(desc).splitlines()[0] if desc else ""
        if self.managed:  # MSAL labels every refusal of the endpoint "invalid_scope"
            return (f"the managed identity endpoint {token_endpoint(self.config)} refused the "
                    f"token request ({first or err}); {self._hint()}")
        return f"Microsoft Entra refused the credentials: {err}: {first}".rstrip(": ") + \
            f"; {self._hint()}"

    def _hint(self) -> str:
        """What to check when Entra (or the identity endpoint) refuses: the keys in play."""
        config = self.config
        if config.auth == "managed_identity":
            which = (f"source.managed_identity_client_id ({config.managed_identity_client_id})"
                     if config.managed_identity_client_id else
                     "that the host has a system-assigned identity")
            return (f"check {which}, and IDENTITY_ENDPOINT / IDENTITY_HEADER if the platform "
                    "sets them")
        if config.auth == "federated":
            return ("check source.client_id, source.tenant_id and the app's federated "
                    "credential (issuer, subject, audience api://AzureADTokenExchange)")
        what = "source.client_secret" if config.client_secret is not None else \
            "source.certificate"
        hint = f" (read from ${{{config.secret_variable}}})" if config.secret_variable else ""
        return f"check source.client_id and {what}{hint}"

"""The sandbox: faithful local emulators of Microsoft Graph (with its Entra token endpoint)
and of the Genesys Cloud SCIM API, served over HTTPS on 127.0.0.1 with a throw-away CA.

Example::

    with Sandbox() as sb:                 # the demo directory
        config = sb.config()              # a genesys-prov.yaml dict pointing at it
        ...
        assert sb.genesys.writes() == []

Three servers run in daemon threads: the Entra authority (``authority_host``), Graph
(``graph_url``) and Genesys (API and ``/oauth/token`` on one host).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import shutil
import ssl
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme

from genesys_prov.sandbox._http import EmulatorServer, RecordedRequest, server_context
from genesys_prov.sandbox.directory import demo_directory, generate_directory, service_principal
from genesys_prov.sandbox.entra import (
    SCHEMA_KINDS,
    EntraJobReport,
    e164_directory,
    load_schema,
    run_entra_job,
)
from genesys_prov.sandbox.genesys import (
    BASE_PATH,
    TOKEN_PATH,
    GenesysEmulator,
    scim_error_response,
)
from genesys_prov.sandbox.graph import GraphEmulator, graph_error_response
from genesys_prov.sandbox.graph.login import MI_PATH, FederatedCredential
from genesys_prov.sandbox.graph.synchronization import execution

__all__ = [
    "GenesysEmulator",
    "GraphEmulator",
    "RecordedRequest",
    "Sandbox",
    "demo_directory",
    "generate_directory",
]

_log = logging.getLogger(__name__)

TENANT_ID = "8a3f5c2e-4b1d-4e6f-9a7c-2d5e8f1b3c4a"
GRAPH_CLIENT_ID = "5d9e1c7a-3f2b-4a8d-b6e0-9c4f2a7d1e83"
GRAPH_CLIENT_SECRET = "Sbx8Q~sandbox-graph-client-secret.NotASecret"
GENESYS_CLIENT_ID = "e7a2c9f4-6b1d-4f3e-8a5c-2d9b7e1f4a06"
GENESYS_CLIENT_SECRET = "sandbox-genesys-client-secret-NotASecret"
GENESYS_STATIC_TOKEN = "sandbox-genesys-static-token-NotASecret"
#: The client ids of the sandbox host's managed identities (system- and user-assigned).
SYSTEM_IDENTITY_CLIENT_ID = "0b6f3d1e-7c2a-4e59-9d84-3a1f6c8e2b57"
USER_IDENTITY_CLIENT_ID = "c4e81a2f-5d3b-4f7e-a690-1b2d8c7e9f34"
#: The federated credential the sandbox app trusts: an AKS cluster's OIDC issuer and the
#: Kubernetes service account the tool runs as.
OIDC_ISSUER = f"https://sandbox.oic.prod-aks.azure.com/{TENANT_ID}/genesys-prov/"
SERVICE_ACCOUNT = "system:serviceaccount:genesys-prov:genesys-prov"


class Sandbox:
    """Starts both emulators on 127.0.0.1 (ephemeral ports, HTTPS with a trustme CA) in
    background threads.

    ``users=None`` serves the built-in demo directory (= ``examples/demo-directory.json``);
    ``users=N`` serves N synthetic users generated from ``seed``; ``directory`` serves an
    explicit directory dict (same shape). The connection facts (URLs, credentials,
    ``ca_bundle``) are valid after :meth:`start`.

    ``entra_job="gallery" | "customised"``: the sandbox Graph serves Entra's provisioning
    job for the app with that schema (``sandbox/entra/<kind>_schema.json``), and
    :meth:`start` pre-populates Genesys as one cycle of that job would have left it
    (:attr:`entra_report` says what it created, updated, skipped and what failed; the
    Genesys request log starts empty after it). The demo and synthetic directories are
    then served with E.164 phone numbers (a tenant whose Entra job runs cleanly: see
    :mod:`genesys_prov.sandbox.entra.directory`); an explicit ``directory`` is served as
    given.
    """

    def __init__(
        self,
        users: int | None = None,
        seed: int = 42,
        directory: dict[str, Any] | None = None,
        genesys_rate_limit_per_minute: int | None = None,
        workdir: Path | None = None,
        entra_job: str | None = None,
    ) -> None:
        """Build the emulators' state; nothing listens until :meth:`start`."""
        if entra_job is not None and entra_job not in SCHEMA_KINDS:
            raise ValueError(f"entra_job must be one of {SCHEMA_KINDS} or None")
        if directory is None:
            directory = demo_directory() if users is None else generate_directory(users, seed)
            if entra_job is not None:
                directory = e164_directory(directory)
        else:
            directory = copy.deepcopy(directory)
        self.directory = directory
        self.tenant_id = TENANT_ID
        self.client_id = GRAPH_CLIENT_ID
        self.client_secret = GRAPH_CLIENT_SECRET
        sp = directory.get("service_principal") or service_principal()
        self.service_principal_id: str = sp["id"]
        self.genesys_client_id = GENESYS_CLIENT_ID
        self.genesys_client_secret = GENESYS_CLIENT_SECRET
        self.genesys_static_token = GENESYS_STATIC_TOKEN
        self.graph = GraphEmulator(
            directory, TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, sp
        )
        self.graph.system_identity = SYSTEM_IDENTITY_CLIENT_ID
        self.graph.user_identities.add(USER_IDENTITY_CLIENT_ID)
        self.graph.federated_credentials.append(FederatedCredential(OIDC_ISSUER, SERVICE_ACCOUNT))
        self._genesys_args = (genesys_rate_limit_per_minute, seed)
        self.genesys = self._new_genesys()
        self.entra_job = entra_job
        #: What the emulated Entra job did at :meth:`start` (None without ``entra_job``).
        self.entra_report: EntraJobReport | None = None
        if entra_job is not None:
            self.graph.serve_synchronization_job(load_schema(entra_job))
        self.authority_host = ""
        self.graph_url = ""
        self.genesys_url = ""
        self.genesys_token_url = ""
        self._workdir_arg = workdir
        self._own_workdir: Path | None = None
        self.workdir: Path | None = workdir
        self.ca_bundle = Path()
        self._ca: Any = None
        self._servers: list[EmulatorServer] = []
        self._genesys_server: EmulatorServer | None = None
        self._started = False

    def start(self) -> Sandbox:
        """Create the CA, bind the three servers, seed Genesys; returns self."""
        if self._started:
            return self
        if self._workdir_arg is None:
            self._own_workdir = Path(tempfile.mkdtemp(prefix="genesys-prov-sandbox-"))
            self.workdir = self._own_workdir
        else:
            self.workdir = self._workdir_arg
            self.workdir.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="genesys-prov sandbox")
        self._ca = ca
        self.ca_bundle = self.workdir / "sandbox-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        context: ssl.SSLContext = server_context(ca.issue_cert("127.0.0.1", "localhost"))

        login = EmulatorServer(self.graph.login_app, context, "entra")
        graph = EmulatorServer(self.graph.graph_app, context, "graph", graph_error_response)
        genesys = EmulatorServer(self.genesys, context, "genesys", scim_error_response)
        self._servers = [login, graph, genesys]
        self._genesys_server = genesys
        try:
            self.authority_host = login.start()
            self.graph_url = graph.start()
            genesys_host = genesys.start()
            self.graph.authority_host = self.authority_host
            self.graph.graph_url = self.graph_url
            self.genesys.base_url = genesys_host
            self.genesys_url = f"{genesys_host}{BASE_PATH}"
            self.genesys_token_url = f"{genesys_host}{TOKEN_PATH}"
            self.genesys.load(self.directory.get("genesys", {}))
            self._run_entra_job(self.genesys)
        except BaseException:
            self.stop()
            raise
        self._started = True
        _log.debug("sandbox started: graph %s, genesys %s", self.graph_url, self.genesys_url)
        return self

    def _new_genesys(self) -> GenesysEmulator:
        """An empty Genesys org with the sandbox's credentials, rate limit and seed."""
        rate_limit, seed = self._genesys_args
        return GenesysEmulator(GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET, GENESYS_STATIC_TOKEN,
                               rate_limit_per_minute=rate_limit, seed=seed)

    def reset_genesys(self) -> GenesysEmulator:
        """Replace the Genesys org with a fresh one seeded as at :meth:`start` (its users
        and groups only: what was created since, tokens, knobs and the request log are
        gone), served at the same address, so a configuration pointing at the sandbox stays
        valid. Returns the new emulator (also ``self.genesys``). The benchmark loads the
        same users twice into an empty org with it (the bare client, then the tool)."""
        if not self._started or self._genesys_server is None:
            raise RuntimeError("start the sandbox first")
        fresh = self._new_genesys()
        fresh.base_url = self.genesys.base_url
        fresh.record_requests = self.genesys.record_requests
        fresh.load(self.directory.get("genesys", {}))
        self._run_entra_job(fresh)
        self._genesys_server.serve(fresh)
        self.genesys = fresh
        return fresh

    def _run_entra_job(self, genesys: GenesysEmulator) -> None:
        """With ``entra_job``: one cycle of the emulated Entra job into ``genesys`` (its
        rate limit off meanwhile, its request log emptied after), recorded as the job's
        last cycle."""
        job = self.graph.synchronization_job
        if self.entra_job is None or job is None:
            return
        limit = genesys.rate_limit_per_minute
        genesys.rate_limit_per_minute = None
        try:
            report = run_entra_job(self.graph, genesys, job.schema)
        finally:
            genesys.rate_limit_per_minute = limit
        genesys.reset_log()
        self.graph.record_synchronization_cycle(execution(
            entitled=report.entitled, exported=report.writes,
            imported=len(self.graph.users) + len(self.graph.groups),
            state=report.execution_state()))
        self.entra_report = report

    def stop(self) -> None:
        """Stop the servers (and remove the temporary workdir if the sandbox made one)."""
        stoppers = [threading.Thread(target=server.stop) for server in self._servers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        self._servers = []
        self._genesys_server = None
        self._started = False
        if self._own_workdir is not None:
            shutil.rmtree(self._own_workdir, ignore_errors=True)
            self._own_workdir = None

    def __enter__(self) -> Sandbox:
        """Start and return the sandbox."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the sandbox."""
        self.stop()

    def config(self, mappings: str = "mappings.yaml", oauth: bool = True,
               scope: str = "assigned", auth: str = "secret") -> dict[str, Any]:
        """A ``genesys-prov.yaml`` dict pointing at this sandbox (``scope``: the users
        assigned to the sandbox's enterprise app, as Entra does by default, or ``all``;
        ``auth``: ``secret``, ``managed_identity`` (the system-assigned identity: set
        :meth:`managed_identity_env` in the environment) or ``federated`` (the token file
        :meth:`write_federated_token` writes))."""
        target: dict[str, Any] = {"url": self.genesys_url}
        if oauth:
            target["oauth"] = {
                "client_id": self.genesys_client_id,
                "client_secret": self.genesys_client_secret,
                "token_url": self.genesys_token_url,
            }
        else:
            target["token"] = self.genesys_static_token
        target.update({"flavor": "genesys", "rate_limit_per_minute": 0, "concurrency": 4})
        return {
            "source": self._source_config(scope, auth),
            "target": target,
            "mappings": mappings,
            "ca_bundle": str(self.ca_bundle),
        }

    def _source_config(self, scope: str, auth: str) -> dict[str, Any]:
        """The ``source:`` section for ``auth`` (see :meth:`config`)."""
        if auth not in ("secret", "managed_identity", "federated"):
            raise ValueError("auth must be secret, managed_identity or federated")
        source: dict[str, Any] = {
            "tenant_id": self.tenant_id, "client_id": self.client_id,
            "client_secret": self.client_secret, "authority_host": self.authority_host,
            "graph_url": self.graph_url, "scope": scope,
            "service_principal_id": self.service_principal_id,
        }
        if auth == "secret":
            return source
        del source["client_secret"]
        source["auth"] = auth
        if auth == "managed_identity":
            del source["client_id"], source["tenant_id"]
        else:
            source["federated_token_file"] = str(self.federated_token_path())
        return source

    def managed_identity_env(self, host: str = "app_service") -> dict[str, str]:
        """The variables that send MSAL's ``ManagedIdentityClient`` to this sandbox.

        ``host="app_service"``: what an App Service-style host sets (``IDENTITY_ENDPOINT``,
        ``IDENTITY_HEADER``). ``host="vm"``: an Azure VM sets nothing and MSAL asks the
        instance metadata service at 169.254.169.254; ``AZURE_POD_IDENTITY_AUTHORITY_HOST``
        (MSAL's override of that address) points it here instead."""
        if not self.authority_host:
            raise RuntimeError("start the sandbox first")
        if host == "vm":
            return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": self.authority_host}
        if host != "app_service":
            raise ValueError("host must be app_service or vm")
        return {"IDENTITY_ENDPOINT": f"{self.authority_host}{MI_PATH}",
                "IDENTITY_HEADER": self.graph.identity_header}

    def federated_token_path(self) -> Path:
        """Where :meth:`write_federated_token` writes (in the workdir)."""
        if self.workdir is None:
            raise RuntimeError("start the sandbox first")
        return self.workdir / "azure-identity-token"

    def write_federated_token(self, lifetime: int = 3600, **claims: str) -> Path:
        """Write a federated assertion the sandbox app trusts (as Kubernetes projects the
        service account token) to :meth:`federated_token_path` and return the path.
        ``claims`` (``issuer``, ``subject``, ``audience``) override the trusted ones; a
        negative ``lifetime`` writes an expired assertion."""
        path = self.federated_token_path()
        path.write_text(self.graph.mint_federated_token(lifetime=lifetime, **claims) + "\n",
                        encoding="utf-8")
        return path

    def federated_env(self) -> dict[str, str]:
        """The variables AKS workload identity sets (``AZURE_FEDERATED_TOKEN_FILE``,
        ``AZURE_CLIENT_ID``, ``AZURE_TENANT_ID``, ``AZURE_AUTHORITY_HOST``) for this
        sandbox."""
        return {"AZURE_FEDERATED_TOKEN_FILE": str(self.federated_token_path()),
                "AZURE_CLIENT_ID": self.client_id, "AZURE_TENANT_ID": self.tenant_id,
                "AZURE_AUTHORITY_HOST": self.authority_host}

    def issue_client_certificate(self) -> tuple[Path, str]:
        """A client certificate for Graph certificate credentials.

        Writes ``sandbox-client.pem`` (private key + certificate) into the workdir, registers
        its thumbprint with the Graph emulator (which then accepts only registered
        thumbprints) and returns (path, SHA-1 thumbprint in upper-case hex).
        """
        if self._ca is None or self.workdir is None:
            raise RuntimeError("start the sandbox first")
        leaf = self._ca.issue_cert("genesys-prov-client", key_type=trustme.KeyType.RSA)
        cert_pem: bytes = leaf.cert_chain_pems[0].bytes()
        key_pem: bytes = leaf.private_key_pem.bytes()
        path = self.workdir / "sandbox-client.pem"
        path.write_bytes(key_pem + cert_pem)
        thumbprint = hashlib.sha1(
            ssl.PEM_cert_to_DER_cert(cert_pem.decode("ascii")), usedforsecurity=False
        ).hexdigest().upper()
        self.graph.certificate_thumbprints.add(thumbprint)
        return path, thumbprint

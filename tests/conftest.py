"""Shared fixtures: the project's sandbox, and scim2-server (python-scim's RFC 7644 server)
run in-process on 127.0.0.1 as a SCIM target this project did not write."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import yaml
from click.testing import CliRunner, Result

from genesys_prov.cli import cli
from genesys_prov.mapping.mappings_file import default_mappings_text
from genesys_prov.sandbox import Sandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """The built-in demo sandbox, started fresh for one test."""
    with Sandbox(workdir=tmp_path) as sb:
        yield sb


def write_config(directory: Path, config: dict[str, Any], mappings: str | None = None) -> Path:
    """Write genesys-prov.yaml (+ mappings.yaml) into ``directory``."""
    (directory / "mappings.yaml").write_text(mappings or default_mappings_text(),
                                             encoding="utf-8")
    path = directory / "genesys-prov.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def sales_agent_not_in_target(sb: Sandbox) -> dict[str, Any]:
    """An enabled member of the sandbox's "Sales Agents" group whom Genesys does not hold
    yet (a user `provision` would create, with a group to add them to)."""
    held = {u["userName"].lower() for u in sb.genesys.users.values()}
    sales = next(g for g in sb.graph.groups if g["displayName"] == "Sales Agents")
    by_id = {u["id"]: u for u in sb.graph.users}
    return next(by_id[m] for m in sales["members"] if m in by_id
                and by_id[m].get("accountEnabled", True)
                and by_id[m]["userPrincipalName"].lower() not in held)


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Invoke the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@dataclass
class Recorded:
    """One request seen by the scim2-server wrapper."""

    method: str
    path: str
    query: str
    body: bytes


@dataclass
class Scim2Server:
    """A running scim2-server with a log of every request it received."""

    url: str
    token: str
    storage: Any
    requests: list[Recorded] = field(default_factory=list)

    def writes(self) -> list[Recorded]:
        """Requests that are not reads."""
        return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    def users(self) -> list[dict[str, Any]]:
        """Every user the server holds, as SCIM JSON."""
        out = []
        for resource in self.storage.resources:
            data = resource.model_dump()
            if "userName" in data:
                out.append(data)
        return out


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def scim2_server() -> Iterator[Scim2Server]:
    """scim2-server's in-memory SCIM server, on an ephemeral loopback port."""
    from scim2_server.memory import InMemoryStorage
    from scim2_server.service import ScimService
    from scim2_server.testserver.application import BearerTokenApplication
    from scim2_server.testserver.cli import ThreadingWSGIServer
    from scim2_server.utils import load_default_provider

    provider = load_default_provider()
    storage = InMemoryStorage()
    token = "scim2-server-test-token"
    app = BearerTokenApplication(storage, provider, service=ScimService(provider, secret="t"),
                                 bearer_tokens=[token])
    log: list[Recorded] = []

    def recording_app(environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        import io

        environ["wsgi.input"] = io.BytesIO(body)
        log.append(Recorded(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                            environ.get("QUERY_STRING", ""), body))
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, recording_app, server_class=ThreadingWSGIServer,
                         handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Scim2Server(f"http://127.0.0.1:{server.server_port}", token, storage, log)
    finally:
        server.shutdown()
        server.server_close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault matrix's figures (recorded by tests/test_faults.py), one line per case."""
    rows = [(r.nodeid.split("::", 1)[1], dict(r.user_properties))
            for r in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get(
                "failed", []) if r.when == "call" and dict(r.user_properties).get(
                "faults_injected") is not None]
    if not rows:
        return
    terminalreporter.section("fault matrix")
    terminalreporter.write_line("faults | target requests | exit | users created | adopted | "
                                "tried twice | failed | case")
    for name, p in sorted(rows):
        terminalreporter.write_line(
            f"{p['faults_injected']:>6} | {p['requests_to_target']:>15} | {p['exit_code']:>4} "
            f"| {p['users_created']:>13} | {p['creates_adopted']:>7} | "
            f"{p['changes_tried_twice']:>11} | {p['failed']:>6} | {name}")

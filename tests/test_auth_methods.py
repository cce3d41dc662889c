"""source.auth: a client secret, a certificate, a managed identity (system- or user-assigned,
through the App Service-style endpoint MSAL calls) and workload identity federation (a token
file re-read for every token request), each validated in the configuration and run end to
end against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genesys_prov.config import load_config, parse_config
from genesys_prov.errors import EXIT_CONNECT, AuthError
from genesys_prov.sandbox import (
    SERVICE_ACCOUNT,
    SYSTEM_IDENTITY_CLIENT_ID,
    USER_IDENTITY_CLIENT_ID,
    Sandbox,
)
from genesys_prov.sandbox.graph.login import IMDS_API_VERSION, IMDS_PATH, MI_API_VERSION, MI_PATH
from genesys_prov.sync.connections import connect
from tests.conftest import run_cli, write_config

TARGET = "target: {url: https://api.mypurecloud.com/api/v2/scim/v2, token: t}\n"
_MSAL_ENV = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT",
             "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "AZURE_FEDERATED_TOKEN_FILE",
             "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST",
             "AZURE_POD_IDENTITY_AUTHORITY_HOST")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No managed identity or workload identity variable leaks in from the machine."""
    for name in _MSAL_ENV:
        monkeypatch.delenv(name, raising=False)


def source(body: str, environ: dict[str, str] | None = None, base: Path | None = None) -> Any:
    text = "source:\n  scope: all\n" + body + TARGET
    return parse_config(text, base_dir=base, environ=environ or {}).source


def test_existing_configs_keep_their_method() -> None:
    secret = source("  tenant_id: t\n  client_id: c\n  client_secret: s\n")
    assert (secret.auth, secret.client_secret) == ("secret", "s")
    cert = source("  tenant_id: t\n  client_id: c\n"
                  "  certificate: {private_key_path: k.pem, thumbprint: AB}\n")
    assert cert.auth == "certificate" and cert.certificate is not None


def test_managed_identity_needs_no_app_registration() -> None:
    system = source("  auth: managed_identity\n")
    assert (system.auth, system.managed_identity_client_id, system.client_id) == \
        ("managed_identity", None, "")
    user = source("  managed_identity_client_id: abc\n")  # the method is inferred
    assert (user.auth, user.managed_identity_client_id) == ("managed_identity", "abc")


def test_federated_takes_the_workload_identity_variables(tmp_path: Path) -> None:
    env = {"AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
           "AZURE_CLIENT_ID": "cid", "AZURE_TENANT_ID": "tid"}
    fed = source("  auth: federated\n", env)
    assert (fed.auth, fed.client_id, fed.tenant_id) == ("federated", "cid", "tid")
    assert fed.federated_token_file == Path(env["AZURE_FEDERATED_TOKEN_FILE"])
    given = source("  tenant_id: t\n  client_id: c\n  federated_token_file: tok\n", env,
                   tmp_path)
    assert (given.auth, given.client_id, given.federated_token_file) == \
        ("federated", "c", tmp_path / "tok")  # the file's keys win; relative to the config
    assert fed.authority_host == "https://login.microsoftonline.com"


def test_federated_takes_the_authority_host_workload_identity_sets() -> None:
    """AKS workload identity sets ``AZURE_AUTHORITY_HOST`` (a national cloud's authority);
    ``source.authority_host`` still wins, and other methods ignore the variable."""
    env = {"AZURE_FEDERATED_TOKEN_FILE": "/t", "AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t",
           "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us/"}
    assert source("  auth: federated\n", env).authority_host == \
        "https://login.microsoftonline.us"
    given = source("  auth: federated\n  authority_host: https://login.partner.microsoftonline.cn\n",
                   env)
    assert given.authority_host == "https://login.partner.microsoftonline.cn"
    secret = source("  tenant_id: t\n  client_id: c\n  client_secret: s\n", env)
    assert secret.authority_host == "https://login.microsoftonline.com"


@pytest.mark.parametrize(("body", "message"), [
    ("  auth: password\n  client_secret: s\n",
     "source.auth: expected one of secret, certificate, managed_identity, federated; got "
     "'password'"),
    ("  tenant_id: t\n  client_id: c\n",
     "source: give client_secret or certificate, or set source.auth to managed_identity or "
     "federated"),
    ("  tenant_id: t\n  client_id: c\n  client_secret: s\n"
     "  certificate: {private_key_path: k, thumbprint: A}\n",
     "source: give exactly one of client_secret or certificate"),
    ("  auth: managed_identity\n  client_secret: s\n",
     "source.client_secret: not used with source.auth: managed_identity; remove it (or set "
     "source.auth: secret)"),
    ("  auth: managed_identity\n  client_id: c\n",
     "source.client_id: not used with source.auth: managed_identity"),
    ("  auth: secret\n  tenant_id: t\n  client_id: c\n  client_secret: s\n"
     "  federated_token_file: f\n",
     "source.federated_token_file: not used with source.auth: secret"),
    ("  auth: federated\n  tenant_id: t\n  client_id: c\n  federated_token_file: f\n"
     "  managed_identity_client_id: m\n",
     "source.managed_identity_client_id: not used with source.auth: federated"),
    ("  auth: federated\n  tenant_id: t\n  client_id: c\n",
     "source.federated_token_file: required when source.auth is federated (or set "
     "$AZURE_FEDERATED_TOKEN_FILE"),
    ("  auth: federated\n  tenant_id: t\n  federated_token_file: f\n",
     "source.client_id: required when source.auth is federated (or set $AZURE_CLIENT_ID"),
    ("  auth: certificate\n  tenant_id: t\n  client_id: c\n",
     "source.certificate: required when source.auth is certificate"),
    ("  auth: managed_identity\n  managed_identity_client_id: ''\n",
     "source.managed_identity_client_id: must not be empty"),  # never system by mistake
    ("  auth: secret\n  client_id: c\n  client_secret: s\n",
     "source.tenant_id: required key is missing"),
])
def test_each_inconsistent_combination_is_one_line(body: str, message: str) -> None:
    from genesys_prov.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        source(body)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def _sync(cfg: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("--config", cfg, "sync", "--output", "json", *extra)
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def _config(sb: Sandbox, tmp_path: Path, auth: str, **source: Any) -> str:
    config = sb.config(scope="all", auth=auth)
    config["source"].update(source)
    return str(write_config(tmp_path, config))


def _graph_reads(sb: Sandbox) -> list[int]:
    return [r.status for r in sb.graph.requests if r.path.startswith("/v1.0")]


def _assert_synced_with(sb: Sandbox, cfg: str, origin: str) -> None:
    """A real sync creates the directory's users in Genesys, and every Graph token the
    sandbox issued (the only ones Graph accepts) came from ``origin``."""
    code, out = _sync(cfg)
    assert code == 0, out
    created = out["plan"]["counts"]["create"]
    assert created > 0 and len(sb.genesys.users) >= created
    assert set(sb.graph.token_origins.values()) == {origin}
    assert _graph_reads(sb) and set(_graph_reads(sb)) == {200}


def _on_identity_host(sb: Sandbox, monkeypatch: pytest.MonkeyPatch,
                      host: str = "app_service") -> None:
    """Run as on a host with a managed identity (its variables point MSAL at ``sb``)."""
    for name, value in sb.managed_identity_env(host=host).items():
        monkeypatch.setenv(name, value)


def _identity_requests(sb: Sandbox, path: str) -> list[Any]:
    """The token requests MSAL sent to a managed identity endpoint: GETs, all answered."""
    asked = [r for r in sb.graph.requests if r.path == path]
    assert asked and all(r.method == "GET" and r.status == 200 for r in asked)
    return asked


def test_system_assigned_managed_identity_syncs(sandbox: Sandbox, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _on_identity_host(sandbox, monkeypatch)
    cfg = _config(sandbox, tmp_path, "managed_identity")
    _assert_synced_with(sandbox, cfg, f"managed_identity:{SYSTEM_IDENTITY_CLIENT_ID}")
    asked = _identity_requests(sandbox, MI_PATH)
    assert asked[0].query == {"api-version": [MI_API_VERSION],
                              "resource": [sandbox.graph_url]}  # no client_id: system
    assert asked[0].headers["X-IDENTITY-HEADER"] == "[redacted]"  # kept out of the log
    assert not any(r.path.endswith("/oauth2/v2.0/token") for r in sandbox.graph.requests)


def test_user_assigned_managed_identity_sends_its_client_id(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _on_identity_host(sandbox, monkeypatch)
    cfg = _config(sandbox, tmp_path, "managed_identity",
                  managed_identity_client_id=USER_IDENTITY_CLIENT_ID)
    code, out = _sync(cfg, "--dry-run")
    assert code == 0 and out["plan"]["counts"]["create"] > 0
    assert set(sandbox.graph.token_origins.values()) == \
        {f"managed_identity:{USER_IDENTITY_CLIENT_ID}"}
    asked = [r for r in sandbox.graph.requests if r.path == MI_PATH]
    assert asked[0].query["client_id"] == [USER_IDENTITY_CLIENT_ID]


def test_managed_identity_on_a_vm_asks_the_instance_metadata_service(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``IDENTITY_ENDPOINT``: MSAL asks IMDS (``Metadata: true``, api-version
    2018-02-01), for the system-assigned identity and for a user-assigned one."""
    _on_identity_host(sandbox, monkeypatch, "vm")
    cfg = _config(sandbox, tmp_path, "managed_identity")
    _assert_synced_with(sandbox, cfg, f"managed_identity:{SYSTEM_IDENTITY_CLIENT_ID}")
    asked = _identity_requests(sandbox, IMDS_PATH)
    assert asked[0].query == {"api-version": [IMDS_API_VERSION],
                              "resource": [sandbox.graph_url]}
    assert asked[0].headers["Metadata"] == "true"
    assert not any(r.path == MI_PATH or r.path.endswith("/oauth2/v2.0/token")
                   for r in sandbox.graph.requests)
    user = _config(sandbox, tmp_path, "managed_identity",
                   managed_identity_client_id=USER_IDENTITY_CLIENT_ID)
    code, out = _sync(user, "--dry-run")
    assert code == 0, out
    assert [r.query.get("client_id") for r in sandbox.graph.requests
            if r.path == IMDS_PATH][-1] == [USER_IDENTITY_CLIENT_ID]
    result = run_cli("--config", cfg, "check", "--output", "json")
    detail = json.loads(result.stdout)["steps"][0]["detail"]
    assert detail.endswith(f"from {sandbox.authority_host}{IMDS_PATH}")


def test_the_instance_metadata_service_refuses_as_imds_does(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IMDS' own refusals (no ``Metadata`` header, an identity not on the VM) in its
    ``error`` / ``error_description`` shape; through genesys-prov, one line, exit 4."""
    import requests

    url = f"{sandbox.authority_host}{IMDS_PATH}"
    params = {"api-version": IMDS_API_VERSION, "resource": sandbox.graph_url}
    bare = requests.get(url, params=params, verify=str(sandbox.ca_bundle), timeout=10)
    assert bare.status_code == 400 and bare.json() == {
        "error": "invalid_request", "error_description": "Required metadata header not specified"}
    _on_identity_host(sandbox, monkeypatch, "vm")
    cfg = _config(sandbox, tmp_path, "managed_identity", managed_identity_client_id="nobody")
    sandbox.graph.requests.clear()
    _assert_auth_failure(sandbox, cfg, "Identity not found", "managed_identity_client_id (nobody)",
                         IMDS_PATH)


def test_check_names_the_method(sandbox: Sandbox, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    env = sandbox.managed_identity_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cfg = _config(sandbox, tmp_path, "managed_identity")
    result = run_cli("--config", cfg, "check", "--output", "json")
    assert result.exit_code == 0, result.stdout
    detail = json.loads(result.stdout)["steps"][0]["detail"]
    assert detail == (f"token acquired with managed identity (system-assigned) from "
                      f"{env['IDENTITY_ENDPOINT']}")
    sandbox.write_federated_token()
    fed = _config(sandbox, tmp_path, "federated")
    result = run_cli("--config", fed, "check", "--output", "json")
    detail = json.loads(result.stdout)["steps"][0]["detail"]
    assert detail.startswith("token acquired with workload identity federation (token file ")
    assert detail.endswith(f"from {sandbox.authority_host}")


def _assert_auth_failure(sb: Sandbox, cfg: str, *expected: str) -> str:
    """The sync exits with the authentication code, one line, nothing read or written."""
    result = run_cli("--config", cfg, "sync", "--dry-run")
    assert result.exit_code == EXIT_CONNECT
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for text in expected:
        assert text in lines[0]
    assert "Traceback" not in result.stderr
    assert 200 not in _graph_reads(sb) and sb.genesys.writes() == []
    assert sb.graph.token_origins == {}
    return lines[0]


def test_managed_identity_wrong_header_fails_in_one_line(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", sandbox.managed_identity_env()["IDENTITY_ENDPOINT"])
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-identity-header")
    cfg = _config(sandbox, tmp_path, "managed_identity")
    line = _assert_auth_failure(sandbox, cfg, "401", "X-IDENTITY-HEADER",
                                "that the host has a system-assigned identity")
    assert line.startswith("Error: the managed identity endpoint https://127.0.0.1:")
    assert "not-the-identity-header" not in line
    assert next(r.status for r in sandbox.graph.requests if r.path == MI_PATH) == 401


def test_unknown_user_assigned_identity_is_refused(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _on_identity_host(sandbox, monkeypatch)
    cfg = _config(sandbox, tmp_path, "managed_identity", managed_identity_client_id="nobody")
    _assert_auth_failure(sandbox, cfg, "No User Assigned", "managed_identity_client_id (nobody)")


def test_federated_assertion_syncs(sandbox: Sandbox, tmp_path: Path) -> None:
    token_file = sandbox.write_federated_token()
    cfg = _config(sandbox, tmp_path, "federated")
    _assert_synced_with(sandbox, cfg, "federated")
    posts = [r for r in sandbox.graph.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert posts and posts[0].body["client_assertion_type"] == \
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert posts[0].body["client_assertion"] == "[redacted]"
    assert "client_secret" not in posts[0].body
    assert not any(r.path == MI_PATH for r in sandbox.graph.requests)
    assertion = token_file.read_text().strip()
    result = run_cli("--config", cfg, "-vvv", "sync", "--dry-run")
    assert assertion not in result.stdout + result.stderr


def test_federated_variables_alone_are_enough(sandbox: Sandbox, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.write_federated_token()
    for name, value in sandbox.federated_env().items():
        monkeypatch.setenv(name, value)
    config = sandbox.config(scope="all", auth="federated")
    for key in ("tenant_id", "client_id", "federated_token_file", "authority_host"):
        del config["source"][key]
    cfg = str(write_config(tmp_path, config))
    loaded = load_config(cfg).source
    assert (loaded.client_id, loaded.authority_host) == (sandbox.client_id,
                                                         sandbox.authority_host)
    code, out = _sync(cfg, "--dry-run")
    assert code == 0 and out["plan"]["counts"]["create"] > 0
    assert set(sandbox.graph.token_origins.values()) == {"federated"}


def test_the_token_file_is_read_again_for_each_token(sandbox: Sandbox, tmp_path: Path) -> None:
    token_file = sandbox.write_federated_token()
    reader = connect(load_config(_config(sandbox, tmp_path, "federated"))).graph
    first = reader.token()
    token_file.write_text("rotated-but-garbage")
    assert reader.token() == first  # cached by MSAL: no request, the file is not read
    with pytest.raises(AuthError, match="AADSTS50027"):
        reader.token(fresh=True)  # a new request reads the file as it is now
    sandbox.write_federated_token()  # the platform rotates it
    second = reader.token(fresh=True)
    assert second != first
    assert sandbox.graph.token_origins[second] == "federated"


def test_missing_token_file_fails_in_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = _config(sandbox, tmp_path, "federated")  # the file was never written
    _assert_auth_failure(sandbox, cfg, "cannot read the federated token file",
                         str(sandbox.federated_token_path()))


@pytest.mark.parametrize(("write", "code"), [
    (lambda sb: sb.write_federated_token(lifetime=-60), "AADSTS700024"),  # expired
    (lambda sb: sb.federated_token_path().write_text("not a jwt"), "AADSTS50027"),
    # well-formed, the right claims, but never issued by the trusted issuer (forged)
    (lambda sb: sb.federated_token_path().write_text(
        _forge(sb.write_federated_token().read_text())), "AADSTS50013"),
    (lambda sb: sb.write_federated_token(subject="system:serviceaccount:other:sa"),
     "AADSTS70021"),
    (lambda sb: sb.write_federated_token(audience="api://somewhere-else"), "AADSTS70021"),
])
def test_bad_assertions_fail_in_one_line(sandbox: Sandbox, tmp_path: Path, write: Any,
                                         code: str) -> None:
    write(sandbox)
    cfg = _config(sandbox, tmp_path, "federated")
    line = _assert_auth_failure(sandbox, cfg, code, "Microsoft Entra refused the credentials",
                                "federated credential")
    assert SERVICE_ACCOUNT not in line or code == "AADSTS70021"


def _forge(assertion: str) -> str:
    """The same header and claims with another signature."""
    header, claims, _ = assertion.strip().split(".")
    return f"{header}.{claims}.Zm9yZ2Vk"

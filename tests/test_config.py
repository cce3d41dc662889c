"""Configuration: discovery, ${VAR}, validation with key paths, TLS rule, no secrets shown."""

from pathlib import Path

import pytest

from genesys_prov.config import derive_token_url, find_config, parse_config
from genesys_prov.errors import ConfigError

GOOD = """
source:
  tenant_id: contoso.onmicrosoft.com
  client_id: 11111111-2222-3333-4444-555555555555
  client_secret: ${GRAPH_CLIENT_SECRET}
  service_principal_id: 4b7e2f9c-1d3a-4e8b-a6c5-0f2d7b9e3a18
target:
  url: https://api.mypurecloud.ie/api/v2/scim/v2
  oauth: {client_id: abc, client_secret: ${GENESYS_CLIENT_SECRET}}
  rate_limit_per_minute: 120
"""
ENV = {"GRAPH_CLIENT_SECRET": "graph-s3cret", "GENESYS_CLIENT_SECRET": "genesys-s3cret"}


def test_good_config_with_defaults():
    cfg = parse_config(GOOD, base_dir=Path("/etc/gp"), environ=ENV)
    assert cfg.source.client_secret == "graph-s3cret"
    assert cfg.source.graph_url == "https://graph.microsoft.com"
    assert cfg.target.oauth is not None
    assert cfg.target.oauth.token_url == "https://login.mypurecloud.ie/oauth/token"
    assert cfg.target.rate_limit_per_minute == 120
    assert cfg.target.concurrency == 4
    assert cfg.target.flavor == "genesys"
    assert cfg.mappings_path == Path("/etc/gp/mappings.yaml")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.replace("rate_limit_per_minute: 120", "rate_limit_per_minut: 120"),
         "target.rate_limit_per_minut: unknown key"),
        (lambda t: t.replace("rate_limit_per_minute: 120", "rate_limit_per_minute: fast"),
         "target.rate_limit_per_minute: expected an integer, got 'fast'"),
        (lambda t: t.replace("  tenant_id: contoso.onmicrosoft.com\n", ""),
         "source.tenant_id: required key is missing"),
        (lambda t: t.replace("https://api.mypurecloud.ie", "http://api.mypurecloud.ie"),
         "target.url: credentials only travel over TLS"),
        (lambda t: t.replace("flavor", "x") + "  flavor: okta\n",
         "target.flavor: expected 'genesys' or 'generic'"),
        (lambda t: t + "extra: 1\n", "extra: unknown key"),
        (lambda t: t.replace("${GRAPH_CLIENT_SECRET}", "${NOPE}"),
         "source.client_secret: environment variable NOPE is not set"),
        (lambda t: "source: [\n", "configuration: "),
    ],
)
def test_errors_name_the_key(mutate, message):
    with pytest.raises(ConfigError) as info:
        parse_config(mutate(GOOD), environ=ENV)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_wrong_type_of_secret_is_not_echoed():
    text = GOOD.replace("client_secret: ${GRAPH_CLIENT_SECRET}", "client_secret: 12345678")
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ=ENV)
    assert "12345678" not in str(info.value)
    assert "[redacted]" in str(info.value)


def test_http_allowed_for_loopback():
    text = GOOD.replace("https://api.mypurecloud.ie/api/v2/scim/v2", "http://127.0.0.1:8080/scim")
    text = text.replace("oauth: {client_id: abc, client_secret: ${GENESYS_CLIENT_SECRET}}",
                        "token: abcdef")
    cfg = parse_config(text, environ=ENV)
    assert cfg.target.url == "http://127.0.0.1:8080/scim"
    assert cfg.target.token == "abcdef"


def test_token_url_derivation():
    assert derive_token_url("https://api.usw2.pure.cloud/api/v2/scim/v2") == \
        "https://login.usw2.pure.cloud/oauth/token"
    with pytest.raises(ConfigError, match="set it explicitly"):
        derive_token_url("https://scim.example.com/v2")


def test_find_config_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENESYS_PROV_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="not found"):
        find_config()
    (tmp_path / "genesys-prov.yaml").write_text("x: 1")
    assert find_config() == Path("genesys-prov.yaml")
    other = tmp_path / "other.yaml"
    other.write_text("x: 1")
    monkeypatch.setenv("GENESYS_PROV_CONFIG", str(other))
    assert find_config() == other
    assert find_config(str(tmp_path / "genesys-prov.yaml")) == tmp_path / "genesys-prov.yaml"


def test_two_variables_in_one_value_and_flow_style():
    text = GOOD.replace("client_id: abc", "client_id: ${A}${B_}")
    cfg = parse_config(text, environ={**ENV, "A": "x", "B_": "y"})
    assert cfg.target.oauth is not None and cfg.target.oauth.client_id == "xy"


def test_scope_and_group_settings():
    cfg = parse_config(GOOD, environ=ENV)
    assert cfg.source.scope == "assigned" and cfg.source.nested_groups is False
    assert cfg.source.exclude_default_access is True
    assert cfg.target.create_groups is False and cfg.target.member_batch_size == 50
    text = GOOD.replace("  service_principal_id: 4b7e2f9c-1d3a-4e8b-a6c5-0f2d7b9e3a18\n", "")
    with pytest.raises(ConfigError, match=r"source\.service_principal_id: required"):
        parse_config(text, environ=ENV)
    with pytest.raises(ConfigError, match="Genesys cannot create groups"):
        parse_config(GOOD + "  create_groups: true\n", environ=ENV)
    with pytest.raises(ConfigError, match=r"source\.nested_groups: expected true or false"):
        parse_config(GOOD.replace("  service_principal_id:", "  nested_groups: 1\n"
                                  "  service_principal_id:"), environ=ENV)
    generic = parse_config(GOOD.replace("rate_limit_per_minute: 120",
                                        "rate_limit_per_minute: 120\n  flavor: generic"),
                           environ=ENV)
    assert generic.target.create_groups is True

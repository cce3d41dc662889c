"""Configuration: discovery, ${VAR}, validation with key paths, TLS rule, no secrets shown."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from genesys_prov.config import derive_token_url, find_config, load_config, parse_config
from genesys_prov.errors import ConfigError
from genesys_prov.http import make_session

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


def test_good_config_with_defaults() -> None:
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
def test_errors_name_the_key(mutate: Callable[[str], str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(mutate(GOOD), environ=ENV)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_wrong_type_of_secret_is_not_echoed() -> None:
    text = GOOD.replace("client_secret: ${GRAPH_CLIENT_SECRET}", "client_secret: 12345678")
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ=ENV)
    assert "12345678" not in str(info.value)
    assert "[redacted]" in str(info.value)


def test_http_allowed_for_loopback() -> None:
    text = GOOD.replace("https://api.mypurecloud.ie/api/v2/scim/v2", "http://127.0.0.1:8080/scim")
    text = text.replace("oauth: {client_id: abc, client_secret: ${GENESYS_CLIENT_SECRET}}",
                        "token: abcdef")
    cfg = parse_config(text, environ=ENV)
    assert cfg.target.url == "http://127.0.0.1:8080/scim"
    assert cfg.target.token == "abcdef"


def test_token_url_derivation() -> None:
    assert derive_token_url("https://api.usw2.pure.cloud/api/v2/scim/v2") == \
        "https://login.usw2.pure.cloud/oauth/token"
    with pytest.raises(ConfigError, match="set it explicitly"):
        derive_token_url("https://scim.example.com/v2")


def test_find_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_two_variables_in_one_value_and_flow_style() -> None:
    text = GOOD.replace("client_id: abc", "client_id: ${A}${B_}")
    cfg = parse_config(text, environ={**ENV, "A": "x", "B_": "y"})
    assert cfg.target.oauth is not None and cfg.target.oauth.client_id == "xy"


def test_scope_and_group_settings() -> None:
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


# --- bad input: one line, a key path, a ConfigError (never a traceback) ------------------------

TOKEN_GOOD = GOOD.replace("oauth: {client_id: abc, client_secret: ${GENESYS_CLIENT_SECRET}}",
                          "token: abcdef")
PEM = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n"


def config_error(text: str, environ: dict[str, str] | None = None, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ=ENV if environ is None else environ, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "__genesys_prov_" not in message, message
    return message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source: &a [*a]\n", "configuration: source[0]: recursive alias *a: it refers to a "
         "value that contains it at line 1, column 13; write the value out instead"),
        ("a: &x {b: *x}\n", "configuration: a.b: recursive alias *x"),
        ("a: &x {<<: *x}\n", "configuration: a.<<: recursive alias *x"),
        (GOOD.replace("tenant_id: contoso.onmicrosoft.com", "tenant_id: &t [*t]"),
         "configuration: source.tenant_id[0]: recursive alias *t"),
    ],
)
def test_recursive_aliases_are_refused_with_the_key_path(text: str, message: str) -> None:
    assert message in config_error(text)


def test_an_alias_bomb_and_deep_nesting_are_refused() -> None:
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
    assert "a4: more than 100,000 values once aliases are expanded" in config_error(bomb)
    deep = "source: " + "[" * 5000 + "]" * 5000 + "\n"
    assert "nested more than 50 levels deep at line 1" in config_error(deep)
    chained = ("d0: &d0 " + "[" * 40 + "x" + "]" * 40 + "\n" +
               "d1: " + "[" * 20 + "*d0" + "]" * 20 + "\n")
    assert "nested more than 50 levels deep once aliases are expanded" in config_error(chained)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://[::1/v2", "target.url: not a valid URL (Invalid IPv6 URL): 'https://[::1/v2'"),
        ("https://host:99999/", "target.url: not a valid URL (the port must be a number "
         "between 1 and 65535): 'https://host:99999/'"),
        ("https://host:0/", "target.url: not a valid URL (the port must be a number between 1"),
        ("https://host:http/", "target.url: not a valid URL (the port must be a number"),
        ("https://:443/", "target.url: not an http(s) URL"),
        ("https://a b/", "target.url: a URL cannot contain spaces or control characters"),
        ("https://user:pw@api.example.com/", "target.url: a URL cannot carry a user name or "
         "password ('https://[redacted]@api.example.com/')"),
    ],
)
def test_malformed_urls(url: str, message: str) -> None:
    text = TOKEN_GOOD.replace("https://api.mypurecloud.ie/api/v2/scim/v2", f"'{url}'")
    assert message in config_error(text)


def test_a_malformed_source_url_names_its_key() -> None:
    text = GOOD.replace("  client_id: 1111", "  authority_host: https://login.example.com:1234567"
                        "\n  client_id: 1111")
    assert config_error(text).startswith(
        "source.authority_host: not a valid URL (the port must be a number between 1 and 65535)")


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text(PEM, encoding="utf-8")
    return path


def test_a_missing_ca_bundle_from_the_environment_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    message = config_error(GOOD, {**ENV, "REQUESTS_CA_BUNDLE": str(missing)})
    assert message == (f"REQUESTS_CA_BUNDLE: file not found: {missing} (unset it, or point it "
                       "to a PEM file of trusted CAs)")
    message = config_error(GOOD, {**ENV, "CURL_CA_BUNDLE": str(missing)})
    assert message.startswith(f"CURL_CA_BUNDLE: file not found: {missing} (unset it")


def test_ca_bundle_resolution_order(tmp_path: Path, pem: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_text(PEM, encoding="utf-8")
    env = {**ENV, "REQUESTS_CA_BUNDLE": str(pem), "CURL_CA_BUNDLE": str(other)}
    cfg = parse_config(GOOD, environ=env)
    assert (cfg.env_ca_bundle, cfg.ca_bundle_from, cfg.verify) == \
        (str(pem), "REQUESTS_CA_BUNDLE", str(pem))
    assert cfg.ca_bundle is None   # ca_bundle stays what the file says
    cfg = parse_config(GOOD, environ={**env, "REQUESTS_CA_BUNDLE": ""})   # empty = unset
    assert (cfg.verify, cfg.ca_bundle_from) == (str(other), "CURL_CA_BUNDLE")
    # the configured bundle wins, and then the variables are not even looked at
    cfg = parse_config(GOOD + "ca_bundle: other.pem\n", base_dir=tmp_path,
                       environ={**ENV, "REQUESTS_CA_BUNDLE": str(tmp_path / "gone.pem")})
    assert (cfg.verify, cfg.ca_bundle, cfg.ca_bundle_from) == (str(other), str(other),
                                                               "ca_bundle")
    assert cfg.env_ca_bundle is None
    cfg = parse_config(GOOD, environ=ENV)
    assert (cfg.ca_bundle, cfg.env_ca_bundle, cfg.ca_bundle_from, cfg.verify) == \
        (None, None, None, True)
    # requests also takes a directory of hashed certificates from the variables
    assert parse_config(GOOD, environ={**ENV, "CURL_CA_BUNDLE": str(tmp_path)}).verify == \
        str(tmp_path)


def test_bad_ca_bundles(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"\x00\x01 not a certificate")
    assert config_error(GOOD, {**ENV, "REQUESTS_CA_BUNDLE": str(junk)}) == (
        f"REQUESTS_CA_BUNDLE: no PEM certificate (-----BEGIN CERTIFICATE-----) in {junk} "
        "(unset it, or point it to a PEM file of trusted CAs)")
    assert config_error(GOOD + "ca_bundle: missing.pem\n", base_dir=tmp_path) == (
        f"ca_bundle: file not found: {tmp_path / 'missing.pem'} (fix the path (a relative one "
        "is relative to the configuration file) or remove ca_bundle)")
    assert config_error(GOOD + f"ca_bundle: {tmp_path}\n").startswith(
        f"ca_bundle: not a regular file: {tmp_path}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_ca_bundle(pem: Path) -> None:
    pem.chmod(0)
    try:
        assert config_error(GOOD, {**ENV, "REQUESTS_CA_BUNDLE": str(pem)}).startswith(
            f"REQUESTS_CA_BUNDLE: cannot read {pem}: Permission denied (unset it")
    finally:
        pem.chmod(0o600)


def test_the_configured_bundle_still_wins_over_the_variables_in_requests(
        tmp_path: Path, pem: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other.pem"
    other.write_text(PEM, encoding="utf-8")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    cfg = parse_config(GOOD + "ca_bundle: ca.pem\n", base_dir=tmp_path)
    session = make_session(cfg.verify)
    settings = session.merge_environment_settings("https://api.example.com/", {}, None, None,
                                                  None)
    assert settings["verify"] == str(pem)
    # without ca_bundle the environment's bundle is resolved (and checked) at load time
    assert parse_config(GOOD).verify == str(other)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "configuration: the file is empty; it needs the source: and target: sections"),
        ("# only a comment\n", "configuration: the file is empty"),
        ("- a\n- b\n", "configuration: expected a mapping of settings at the top level, got "
         "a list"),
        ("!!python/object:os.system {}\n", "configuration: could not determine a constructor "
         "for the tag 'tag:yaml.org,2002:python/object:os.system' at line 1, column 1"),
        (GOOD + "source: {}\n", "configuration: source: duplicate key (also on line 2) at line "
         "11, column 1; keep only one"),
        (GOOD + "1: x\n", "1: unknown key (expected one of: ca_bundle"),
        (GOOD + "null: x\n", "null: unknown key"),
        (GOOD + "'': x\n", "'': unknown key"),
        (GOOD + "? [a]\n: b\n", "configuration: found unhashable key at line 11, column 3"),
        (GOOD + "${X}: 1\n", "${X}: unknown key"),
        ("a: b\x00\n", "configuration: the character U+0000 is not allowed in YAML (special "
         "characters are not allowed) at line 1, column 5"),
        ("a: &x 1\nb: &x 2\n", "configuration: found duplicate anchor 'x'; first occurrence at "
         "line 1, column 4; second occurrence at line 2, column 4"),
        ("a: 1\n---\nb: 2\n", "expected a single document in the stream but found another "
         "document at line 2, column 1"),
        ("a: !!int x\n", "configuration: a: not a valid int value at line 1, column 4"),
        ("a: !!int\n", "configuration: a: not a valid int value at line 1, column 4"),
        ("a: !!timestamp x\n", "configuration: a: not a valid timestamp value"),
        ("a: 2020-13-45\n", "configuration: a: not a valid timestamp value (month must be in "
         "1..12)"),
        (GOOD + "  concurrency: " + "9" * 5000 + "\n",
         "configuration: target.concurrency: not a valid int value (too many digits)"),
        ("a: ${X} ${Y}: b\n", "configuration: mapping values are not allowed here at line 1, "
         "column 13"),   # columns count what was written, not the placeholders
    ],
)
def test_bad_yaml(text: str, message: str) -> None:
    assert message in config_error(text)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("rate_limit_per_minute: 120", "timeout: .nan",
         "target.timeout: expected a finite number, got nan"),
        ("rate_limit_per_minute: 120", "timeout: -.inf",
         "target.timeout: expected a finite number, got -inf"),
        ("rate_limit_per_minute: 120", "timeout: " + "9" * 400,
         "target.timeout: must be at most 3600 seconds"),
        ("rate_limit_per_minute: 120", "rate_limit_per_minute: " + "9" * 400,
         "target.rate_limit_per_minute: must be at most 100,000"),
        ("rate_limit_per_minute: 120", "concurrency: 1.5",
         "target.concurrency: expected an integer, got 1.5"),
        ("rate_limit_per_minute: 120", "page_size: null",
         "target.page_size: expected an integer, got None"),
        ("rate_limit_per_minute: 120", "phone_default_region: 'ÄÖ'",
         "target.phone_default_region: expected a two-letter region code"),
        ("rate_limit_per_minute: 120", "phone_default_region: ''",
         "target.phone_default_region: must not be empty (remove the key to use the default)"),
        ("oauth: {client_id: abc, client_secret: ${GENESYS_CLIENT_SECRET}}", "oauth: [1]",
         "target.oauth: expected a mapping of settings, got a list"),
        ("  tenant_id: contoso.onmicrosoft.com", "  tenant_id: \"contoso\\n.com\"",
         "source.tenant_id: contains the control character U+000A; remove it"),
        ("  tenant_id: contoso.onmicrosoft.com", "  tenant_id: {a: [1, {b: null}]}",
         "source.tenant_id: expected a string, got {'a': [1, {'b': None}]}"),
        ("${GRAPH_CLIENT_SECRET}", "${}",
         "source.client_secret: '${' must start a variable reference like ${NAME}"),
        ("${GRAPH_CLIENT_SECRET}", "${1X}", "source.client_secret: '${' must start"),
        ("${GRAPH_CLIENT_SECRET}", "${EMPTY}",
         "source.client_secret: environment variable EMPTY is empty"),
        ("source:", "safety: {escrow_max_age_days: " + "9" * 40 + "}\nsource:",
         "safety.escrow_max_age_days: must be at most ten years"),
        ("source:", "safety: {max_deactivations: [1]}\nsource:",
         "safety.max_deactivations: expected a count or a percentage like '10%', got [1]"),
        ("source:", "mappings: ''\nsource:",
         "mappings: must not be empty (remove the key to use the default)"),
        ("source:", "state_dir: \"a\\0b\"\nsource:",
         "state_dir: contains the control character U+0000; remove it"),
        ("source:", "notify: [1]\nsource:", "notify: expected a mapping of settings, got [1]"),
    ],
)
def test_bad_values(old: str, new: str, message: str) -> None:
    assert old in GOOD
    assert message in config_error(GOOD.replace(old, new), {**ENV, "EMPTY": ""})


def test_dollar_dollar_brace_is_a_literal() -> None:
    cfg = parse_config(GOOD.replace("${GRAPH_CLIENT_SECRET}", "a$${B}c"), environ=ENV)
    assert cfg.source.client_secret == "a${B}c"
    # ${ in a comment is never looked at
    parse_config(GOOD + "# see ${} and ${UNSET}\n", environ=ENV)


def test_load_config_refuses_text_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "genesys-prov.yaml"
    path.write_bytes(b"source:\n  t\xe9nant: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (f"{path}: not UTF-8 text (byte 0xe9 at line 2, column 4); save "
                               "it as UTF-8")
    path.write_bytes(b"\xff\xfe\x00\x00binary junk")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(path)
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"genesys-prov\.yaml: the file is empty"):
        load_config(path)


NOTIFY = "notify: {email: {to: ops@contoso.com, from: gp@contoso.com, smtp_host: smtp.x%s}}\n"


def test_notify_timeout_out_of_range() -> None:
    assert "notify.email.timeout" in config_error(GOOD + NOTIFY % (", timeout: " + "9" * 400))


def test_notify_unknown_key_with_a_newline_is_one_line() -> None:
    message = config_error(GOOD + NOTIFY % ', "a\\nb": 1')
    assert message.isprintable() and "unknown key" in message

"""Fuzzing (hypothesis) of the configuration and mappings loaders.

The contract: whatever the text, ``parse_config`` returns a :class:`Config` or raises
:class:`ConfigError`, and ``parse_mappings`` returns :class:`Mappings` or raises
:class:`MappingError` — never any other exception (no traceback reaches the user) — and the
message is one line (a mappings message may end with an expression and a caret under it).

Two kinds of input for each: (a) a valid file, parsed to a dict, mutated (keys dropped,
renamed or added, values replaced by garbage of any type, nested deeply) and dumped with
``yaml.safe_dump``; (b) raw YAML-ish text: anchors and aliases, tags, tabs, odd unicode,
``${...}``, spliced into a valid file or on its own. Everything is derandomized and without
an example database, so CI sees the same examples on every run.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesys_prov import redact
from genesys_prov.config import Config, parse_config
from genesys_prov.errors import ConfigError, MappingError
from genesys_prov.mapping.mappings import Mappings
from genesys_prov.mapping.mappings_file import default_mappings_text, parse_mappings
from tests.test_config import GOOD

COMMON: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                              HealthCheck.filter_too_much],
}
PEM = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A directory with a PEM bundle, a file that is not PEM, and the paths to use."""
    base = tmp_path_factory.mktemp("fuzz")
    (base / "ca.pem").write_text(PEM, encoding="utf-8")
    (base / "junk.pem").write_bytes(b"\x00\xffnot a certificate")
    return {"base": str(base), "pem": str(base / "ca.pem"), "junk": str(base / "junk.pem"),
            "missing": str(base / "missing.pem")}


@pytest.fixture(scope="module", autouse=True)
def quiet_redact() -> Iterator[None]:
    """Fuzzed secrets must not pile up in the process-wide redaction list (later tests
    would see random words redacted, and every register() recompiles a pattern)."""
    original = redact.register
    seen: list[Any] = []

    def record(secret: Any) -> None:
        assert secret is None or isinstance(secret, str)
        seen.append(secret)

    redact.register = record
    try:
        yield
    finally:
        redact.register = original


def environ(kind: str, files: dict[str, str]) -> dict[str, str]:
    env = {"GRAPH_CLIENT_SECRET": "graph-s3cret", "GENESYS_CLIENT_SECRET": "genesys-s3cret",
           "GENESYS_TOKEN": "static-token", "X": "x-value", "EMPTY": ""}
    extra = {
        "plain": {},
        "ca-ok": {"REQUESTS_CA_BUNDLE": files["pem"]},
        "ca-missing": {"REQUESTS_CA_BUNDLE": files["missing"]},
        "ca-dir": {"CURL_CA_BUNDLE": files["base"]},
        "ca-junk": {"CURL_CA_BUNDLE": files["junk"]},
        "ca-empty": {"REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": files["pem"]},
    }[kind]
    return {**env, **extra}


ENVIRONS = st.sampled_from(["plain", "ca-ok", "ca-missing", "ca-dir", "ca-junk", "ca-empty"])


# --- garbage -----------------------------------------------------------------------------------

WEIRD_TEXT = [
    "", " ", "\t", "x", "-1", "0", "30%", "150%", "nan%", "-5%", "1e999", "all", "assigned",
    "generic", "genesys", "deactivate", "delete", "US", "ÄÖ", "a\x00b", "line\nbreak",
    "https://[::1/v2", "https://host:99999/", "https://host:0/", "https://:443/",
    "http://example.com/scim", "http://127.0.0.1:8080/scim", "https://u:p@api.x/",
    "https://api.example.com/api/v2/scim/v2", "ftp://x", "https://a b/", "//x", "https://[zz]/",
    "${GRAPH_CLIENT_SECRET}", "${UNSET}", "${}", "$${X}", "${EMPTY}", "${X}${X}", "${1A}",
    "${X", "__genesys_prov_env-X-__", "&a", "*a", "!!python/object:os.system", "~", "null",
    "/nonexistent/ca.pem", ".", "..", "ops@contoso.com", "\u202e", "\ufeff", "é" * 50,
]
WEIRD_INTS = [0, 1, -1, 64, 65, 1000, 1001, 65535, 65536, 2**63, -(2**63), 10**400, -(10**400)]
KEYS = st.one_of(
    st.text(max_size=8), st.integers(-3, 3), st.none(), st.booleans(),
    st.sampled_from(["source", "target", "url", "token", "oauth", "notify", "email", "safety",
                     "client_secret", "tenant_id", "ca_bundle", "mappings", "<<", "${X}"]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.sampled_from(WEIRD_INTS),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(WEIRD_TEXT),
)
GARBAGE = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)


def containers(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every (path to a dict or list) in ``value``, the root included."""
    if isinstance(value, dict | list):
        yield path
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            yield from containers(item, (*path, key))


def at(root: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        root = root[key]
    return root


def nest(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"k": value}
    return value


@st.composite
def mutated(draw: st.DrawFn, bases: list[dict[str, Any]]) -> Any:
    """A valid document with 0–4 random mutations."""
    doc: Any = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(0, 4))):
        paths = list(containers(doc))
        if not paths:
            return draw(GARBAGE)
        path = draw(st.sampled_from(paths))
        box = at(doc, path)
        keys = list(box) if isinstance(box, dict) else list(range(len(box)))
        op = draw(st.sampled_from(["drop", "replace", "rename", "insert", "nest", "retype",
                                   "root"]))
        if op == "root":
            doc = draw(GARBAGE)
            continue
        if op == "insert" or not keys:
            if isinstance(box, dict):
                box[draw(KEYS)] = draw(GARBAGE)
            else:
                box.append(draw(GARBAGE))
            continue
        key = draw(st.sampled_from(keys))
        if op == "drop":
            del box[key]
        elif op == "replace":
            box[key] = draw(GARBAGE)
        elif op == "rename" and isinstance(box, dict):
            box[draw(KEYS)] = box.pop(key)
        elif op == "nest":
            box[key] = nest(box[key], draw(st.integers(1, 70)), draw(st.booleans()))
        else:  # retype: the same value as another type
            value = box[key]
            box[key] = draw(st.sampled_from([str(value), [value], {"value": value}, None,
                                             len(str(value)), float(len(str(value)))]))
    return doc


def dump(data: st.DataObject, doc: Any) -> str:
    """YAML for ``doc`` (libyaml's emitter when available: it is much faster)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(doc, Dumper=dumper, sort_keys=False, allow_unicode=data.draw(st.booleans()),
                     default_flow_style=data.draw(st.sampled_from([False, True, None])))


def splice(base: str, at_index: int, text: str) -> str:
    at_index = min(at_index, len(base))
    return base[:at_index] + text + base[at_index:]


YAML_TOKENS = [
    "source:", "target:", "url:", "token:", "oauth:", "notify:", "email:", "safety:",
    "user:", "group:", "user_scope:", "target: userName", "source: mail", "match: 1",
    "expression:", "constant:", "default:", "apply:", "&a ", "*a", "&b ", "*b", "<<: *a",
    "!!python/object:os.system ", "!!int ", "!!float ", "!!bool ", "!!binary ", "!!set ",
    "!!str ", "!!timestamp ", "!!omap ", "!!null ", "!!map ", "!!seq ", "!foo ", "!<x> ",
    "? ", "- ", "-", "[", "]", "{", "}", ",", ":", ": ", " ", "  ", "\n", "\n  ", "\t", "#",
    "'", '"', "\\", "|", ">", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! x\n", "null", "~",
    "true", "1e999", "0x1F", "0o7", "2020-13-45", "2020-01-01", "9" * 60, "9" * 4400, ".nan",
    "${X}", "${}", "$${X}", "${UNSET}", "${EMPTY}", "${", "}", "$", "\x00", "\x07", "\ufeff",
    "é", "\u2028", "\x85", "\ud7ff", "\U0001f600", "\r\n", "\r",
    "Append([mail], \"x\")", "[mail]", "Switch(", ")", "emails[type eq \"work\"].value",
]
RAW = st.lists(st.one_of(st.sampled_from(YAML_TOKENS), st.text(max_size=4)),
               max_size=30).map("".join)


# --- configuration -----------------------------------------------------------------------------

CONFIG_TEXT = GOOD  # the valid configuration of tests/test_config.py
CONFIG_BASES: list[dict[str, Any]] = [
    yaml.safe_load(CONFIG_TEXT.replace("${GENESYS_CLIENT_SECRET}", "'${GENESYS_CLIENT_SECRET}'")),
    {
        "source": {"tenant_id": "t", "client_id": "c", "scope": "all", "nested_groups": True,
                   "certificate": {"private_key_path": "graph.pem", "thumbprint": "AB12"},
                   "authority_host": "https://login.microsoftonline.us",
                   "graph_url": "https://graph.microsoft.us"},
        "target": {"url": "http://127.0.0.1:8080/scim", "token": "${GENESYS_TOKEN}",
                   "flavor": "generic", "concurrency": 8, "page_size": 50, "timeout": 12.5,
                   "phone_default_region": "GB", "on_hard_delete": "deactivate",
                   "create_groups": True, "member_batch_size": 10,
                   "remove_unmanaged_members": True},
        "mappings": "maps/mappings.yaml",
        "state_dir": "/var/lib/genesys-prov",
        "ca_bundle": "ca.pem",
        "safety": {"max_deactivations": "10%", "max_source_drop": "20%",
                   "escrow_backoff_minutes": 5, "escrow_max_backoff_minutes": 60,
                   "escrow_max_age_days": 7, "quarantine_min_failures": 3,
                   "quarantine_probe_interval_minutes": 15},
        "notify": {"email": {"to": ["ops@contoso.com"], "from": "gp@contoso.com",
                             "smtp_host": "smtp.contoso.com", "smtp_port": 587,
                             "starttls": True, "username": "gp", "password": "${X}",
                             "timeout": 10}},
    },
]


def check_config(text: str, env_kind: str, files: dict[str, str]) -> None:
    try:
        result = parse_config(text, base_dir=Path(files["base"]), environ=environ(env_kind, files))
    except ConfigError as exc:
        message = str(exc)
        assert message.strip(), message
        assert message.isprintable(), message   # one line, no control characters
        assert "__genesys_prov_" not in message, message
    else:
        assert isinstance(result, Config)


def test_the_bases_are_valid(files: dict[str, str]) -> None:
    for base in CONFIG_BASES:
        parse_config(yaml.safe_dump(base), base_dir=Path(files["base"]),
                     environ=environ("ca-ok", files))


@settings(max_examples=1000, **COMMON)
@given(data=st.data(), env_kind=ENVIRONS)
def test_mutated_configurations(files: dict[str, str], data: st.DataObject,
                                env_kind: str) -> None:
    doc = data.draw(mutated(CONFIG_BASES))
    check_config(dump(data, doc), env_kind, files)


@settings(max_examples=500, **COMMON)
@given(text=RAW, env_kind=ENVIRONS)
def test_raw_configuration_text(files: dict[str, str], text: str, env_kind: str) -> None:
    check_config(text, env_kind, files)


@settings(max_examples=500, **COMMON)
@given(where=st.integers(0, len(CONFIG_TEXT)), text=RAW, env_kind=ENVIRONS)
def test_garbage_spliced_into_a_valid_configuration(files: dict[str, str], where: int,
                                                     text: str, env_kind: str) -> None:
    check_config(splice(CONFIG_TEXT, where, text), env_kind, files)


# --- mappings ----------------------------------------------------------------------------------

MAPPINGS_TEXT = default_mappings_text() + """
user_scope:
  - - {attribute: department, operator: EQUALS, value: Sales}
    - {attribute: extensionAttribute1, operator: IS_NOT_NULL}
"""
MAPPINGS_BASES: list[dict[str, Any]] = [
    yaml.safe_load(MAPPINGS_TEXT),
    {"user": [{"target": "userName", "source": "userPrincipalName", "match": 1},
              {"target": "title", "source": "jobTitle", "default": "Agent",
               "apply": "on_create"},
              {"target": "nickName", "expression": "SelectUniqueValue([mail], [givenName])",
               "apply": "on_create"},
              {"target": "active", "constant": True}]},
]


def check_mappings(text: str) -> None:
    try:
        result = parse_mappings(text)
    except MappingError as exc:
        first, *rest = str(exc).split("\n")
        assert first.strip() and first.isprintable(), str(exc)
        # an expression error shows the expression and a caret, indented, under the line
        assert not rest or (len(rest) == 2 and all(r.startswith("  ") for r in rest)), \
            str(exc)
    else:
        assert isinstance(result, Mappings)


def test_the_mapping_bases_are_valid() -> None:
    for base in MAPPINGS_BASES:
        parse_mappings(yaml.safe_dump(base))


@settings(max_examples=300, **COMMON)
@given(data=st.data())
def test_mutated_mappings(data: st.DataObject) -> None:
    check_mappings(dump(data, data.draw(mutated(MAPPINGS_BASES))))


@settings(max_examples=100, **COMMON)
@given(text=RAW)
def test_raw_mappings_text(text: str) -> None:
    check_mappings(text)


@settings(max_examples=100, **COMMON)
@given(where=st.integers(0, len(MAPPINGS_TEXT)), text=RAW)
def test_garbage_spliced_into_valid_mappings(where: int, text: str) -> None:
    check_mappings(splice(MAPPINGS_TEXT, where, text))

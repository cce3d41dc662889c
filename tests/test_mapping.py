"""Mappings: loading, validation errors, source names, and evaluation rules."""

from pathlib import Path

import pytest

from genesys_prov.errors import MappingError
from genesys_prov.mapping.desired import desired_user
from genesys_prov.mapping.mappings import read_source
from genesys_prov.mapping.mappings_file import default_mappings_text, load_mappings, parse_mappings

ROOT = Path(__file__).resolve().parent.parent


def test_packaged_default_mappings_equal_the_repository_file() -> None:
    assert default_mappings_text() == (ROOT / "mappings.yaml").read_text(encoding="utf-8")


def test_default_mappings_load_and_select_exactly_what_is_needed() -> None:
    mappings = parse_mappings(default_mappings_text())
    assert [m.target for m in mappings.user_match] == ["userName"]
    assert mappings.graph_select() == [
        "accountEnabled", "businessPhones", "department", "displayName", "id", "jobTitle",
        "mail", "mobilePhone", "userPrincipalName"]
    assert "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" in \
        mappings.target_attributes()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user:\n  - {target: userName, source: upn, match: 1}\n",
         "unknown source attribute 'upn'"),
        ("user:\n  - {target: userName, source: mail, constant: x, match: 1}\n",
         "needs exactly one of source, constant, expression"),
        ("user:\n  - {target: userName, source: mail}\n", "no user mapping is marked"),
        ("user:\n  - {target: userName, source: mail, match: 1, aply: always}\n",
         "unknown key 'aply'"),
        ("user:\n  - {target: userName, source: mail, match: 1, apply: sometimes}\n",
         "apply must be 'always' or 'on_create'"),
        ("user:\n  - {target: 'emails[type eq work]', source: mail, match: 1}\n",
         "expected a filter path"),
        ("user:\n  - {target: userName, expression: 'Append([mail]', match: 1}\n",
         "mapping 'userName'"),
        ("user: [\n", "mappings: "),
        ("groups: []\n", "unknown section 'groups'"),
    ],
)
def test_bad_mappings(text: str, message: str) -> None:
    with pytest.raises(MappingError) as info:
        parse_mappings(text)
    assert message in str(info.value)


def test_bad_expression_error_has_a_caret() -> None:
    text = "user:\n  - {target: userName, expression: 'ToLower([mail]', match: 1}\n"
    with pytest.raises(MappingError) as info:
        parse_mappings(text)
    assert "^" in str(info.value)
    assert "line 1, column" in str(info.value)


def test_entra_and_graph_names_both_work() -> None:
    user = {"id": "x", "mobilePhone": "+1", "businessPhones": ["+2", "+3"], "faxNumber": "+4",
            "onPremisesExtensionAttributes": {"extensionAttribute3": "E3"},
            "accountEnabled": False}
    assert read_source(user, "mobile") == read_source(user, "mobilePhone") == "+1"
    assert read_source(user, "telephoneNumber") == "+2"
    assert read_source(user, "businessPhones") == ["+2", "+3"]
    assert read_source(user, "objectId") == "x"
    assert read_source(user, "extensionAttribute3") == "E3"
    assert read_source(user, "IsSoftDeleted") is True


def test_defaults_are_used_only_on_create_and_constants_flow() -> None:
    mappings = parse_mappings("""
user:
  - {target: userName, source: userPrincipalName, match: 1}
  - {target: title, source: jobTitle, default: Agent}
  - {target: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division', constant: Home}
""")
    d = desired_user({"id": "1", "userPrincipalName": "a@b", "accountEnabled": True}, mappings)
    assert d.values == {"userName": "a@b",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division":
                        "Home"}
    assert d.create_only == {"title": "Agent"}
    assert d.active is True


def test_expression_failure_marks_only_that_user() -> None:
    mappings = parse_mappings("""
user:
  - {target: userName, source: userPrincipalName, match: 1}
  - {target: active, source: jobTitle}
""")
    d = desired_user({"id": "1", "userPrincipalName": "a@b", "jobTitle": "Boss"}, mappings)
    assert d.error is not None and "active" in d.error


# --- bad input: a MappingError with a clear message, never a traceback ------------------------

U = "user:\n  - {target: userName, source: userPrincipalName, match: 1}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user: &a [*a]\n", "mappings: user[0]: recursive alias *a: it refers to a value that "
         "contains it at line 1, column 11; write the value out instead"),
        (U + "  - {target: title, constant: &c [*c]}\n",
         "mappings: user[1].constant[0]: recursive alias *c"),
        ("", "mappings: the file is empty; it needs a 'user:' list of mappings"),
        ("# nothing\n", "mappings: the file is empty"),
        (U + "user: []\n", "mappings: user: duplicate key (also on line 1) at line 3, column 1; "
         "keep only one"),
        ("user:\n  - {target: userName, source: mail, source: upn, match: 1}\n",
         "mappings: user[0].source: duplicate key"),
        ("user: " + "[" * 3000 + "]" * 3000 + "\n", "nested more than 50 levels deep"),
        (U + "1: x\n", "mappings: unknown section 1 (expected user"),
        (U + "null: x\n", "mappings: unknown section null"),
        ("user:\n  - {target: userName, source: mail, match: 1, 1: x, a: b}\n",
         "mappings: user[0]: unknown key 1"),   # mixed key types: was a TypeError
        ("user:\n  - {target: 7, source: mail, match: 1}\n",
         "mappings: user[0]: 'target' must be a SCIM attribute name, got 7"),
        ("user:\n  - {target: userName, source: null, match: 1}\n",
         "mappings: user mapping 'userName': source must be an attribute name"),
        (U + "  - {target: title, constant: 2020-01-01}\n",
         "mappings: user mapping 'title': constant must be text, a number, true/false, a list "
         "or a mapping, got a date datetime.date(2020, 1, 1) (quote it in YAML)"),
        (U + "  - {target: title, source: jobTitle, default: !!binary aGk=}\n",
         "mappings: user mapping 'title': default must be text"),
        (U + "  - {target: active, source: accountEnabled, default: [1]}\n",
         "mappings: user mapping 'active': default: active is a boolean; got [1]"),
        (U + "  - {target: title, expression: [1]}\n",
         "mappings: user mapping 'title': expression must be a string"),
        ("user: !!python/name:os.system\n", "mappings: could not determine a constructor"),
        ("user: [\x00]\n", "mappings: the character U+0000 is not allowed in YAML"),
        ("user: !!int\n", "mappings: user: not a valid int value at line 1, column 7"),
    ],
)
def test_garbage_mappings(text: str, message: str) -> None:
    with pytest.raises(MappingError) as info:
        parse_mappings(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_load_mappings_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "mappings.yaml"
    path.write_bytes(b"user:\n  - {target: \xff}\n")
    with pytest.raises(MappingError) as info:
        load_mappings(path)
    assert str(info.value) == (f"mappings file {path}: not UTF-8 text (byte 0xff at line 2, "
                               "column 14); save it as UTF-8")
    with pytest.raises(MappingError, match="cannot read mappings file"):
        load_mappings(tmp_path / "a\x00b.yaml")
    with pytest.raises(MappingError, match="cannot read mappings file"):
        load_mappings(tmp_path)


def test_scope_value_with_too_many_digits() -> None:
    text = U + ("user_scope: [[{attribute: department, operator: GREATER_THAN, value: '"
                + "9" * 5000 + "'}]]\n")
    with pytest.raises(MappingError):
        parse_mappings(text)

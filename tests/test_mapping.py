"""Mappings: loading, validation errors, source names, and evaluation rules."""

from pathlib import Path

import pytest

from genesys_prov.errors import MappingError
from genesys_prov.mapping import default_mappings_text, desired_user, parse_mappings, read_source

ROOT = Path(__file__).resolve().parent.parent


def test_packaged_default_mappings_equal_the_repository_file():
    assert default_mappings_text() == (ROOT / "mappings.yaml").read_text(encoding="utf-8")


def test_default_mappings_load_and_select_exactly_what_is_needed():
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
def test_bad_mappings(text, message):
    with pytest.raises(MappingError) as info:
        parse_mappings(text)
    assert message in str(info.value)


def test_bad_expression_error_has_a_caret():
    text = "user:\n  - {target: userName, expression: 'ToLower([mail]', match: 1}\n"
    with pytest.raises(MappingError) as info:
        parse_mappings(text)
    assert "^" in str(info.value)
    assert "line 1, column" in str(info.value)


def test_entra_and_graph_names_both_work():
    user = {"id": "x", "mobilePhone": "+1", "businessPhones": ["+2", "+3"], "faxNumber": "+4",
            "onPremisesExtensionAttributes": {"extensionAttribute3": "E3"},
            "accountEnabled": False}
    assert read_source(user, "mobile") == read_source(user, "mobilePhone") == "+1"
    assert read_source(user, "telephoneNumber") == "+2"
    assert read_source(user, "businessPhones") == ["+2", "+3"]
    assert read_source(user, "objectId") == "x"
    assert read_source(user, "extensionAttribute3") == "E3"
    assert read_source(user, "IsSoftDeleted") is True


def test_defaults_are_used_only_on_create_and_constants_flow():
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


def test_expression_failure_marks_only_that_user():
    mappings = parse_mappings("""
user:
  - {target: userName, source: userPrincipalName, match: 1}
  - {target: active, source: jobTitle}
""")
    d = desired_user({"id": "1", "userPrincipalName": "a@b", "jobTitle": "Boss"}, mappings)
    assert d.error is not None and "active" in d.error

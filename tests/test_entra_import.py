"""The converter behind `mapping import`: Entra's synchronizationSchema -> mappings.yaml."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from genesys_prov.errors import MappingError
from genesys_prov.mapping.entra_import import convert_schema, rebuild_expression
from genesys_prov.mapping.mappings import read_source
from genesys_prov.mapping.mappings_file import parse_mappings

DATA = Path(__file__).parent / "data" / "entra"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
DAY = "2026-12-04"


def schema(name: str) -> dict[str, Any]:
    data = json.loads((DATA / f"{name}_schema.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def user_mappings(s: dict[str, Any]) -> list[dict[str, Any]]:
    maps = s["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"]
    assert isinstance(maps, list)
    return maps


def attribute(target: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"defaultValue": None, "flowType": "Always", "matchingPriority": 0,
            "targetAttributeName": target,
            "source": {"expression": f"[{name}]", "name": name, "parameters": [],
                       "type": "Attribute"}, **extra}


def body(text: str) -> str:
    """The text without its header comments (everything before the first section)."""
    return text[text.index("\nuser:") + 1:]


GALLERY_BODY = f"""\
user:
  # Entra: rule 'USER_OUTBOUND_USER', object mapping 'Provision Azure Active Directory Users'
  - {{target: userName, source: userPrincipalName, match: 1}}
  - {{target: active, expression: 'Switch([IsSoftDeleted], , "False", "True", "True", "False")'}}
  - {{target: displayName, source: displayName}}
  - {{target: 'emails[type eq "work"].value', source: mail}}
  - {{target: title, source: jobTitle}}
  - {{target: 'phoneNumbers[type eq "mobile"].value', source: mobile}}
  - {{target: 'phoneNumbers[type eq "work"].value', source: telephoneNumber}}
  - {{target: '{ENT}:department', source: department}}
  - {{target: '{ENT}:manager', source: manager}}
group:
  # Entra: rule 'USER_OUTBOUND_USER', object mapping 'Provision Azure Active Directory Groups'
  - {{target: displayName, source: displayName, match: 1}}
  - {{target: externalId, source: objectId}}
  - {{target: members, source: members}}
"""

CUSTOMISED_BODY = f"""\
user:
  # Entra: rule 'USER_OUTBOUND_USER', object mapping 'Provision Azure Active Directory Users'
  - {{target: userName, source: userPrincipalName, match: 1}}
  - {{target: active, expression: 'Switch([IsSoftDeleted], , "False", "True", "True", "False")'}}
  - {{target: displayName, expression: 'Join(" ", [givenName], [surname])'}}
  - {{target: 'emails[type eq "work"].value', source: mail, match: 2}}
  - {{target: title, source: jobTitle, default: Agent}}
  - {{target: 'phoneNumbers[type eq "mobile"].value', source: mobile}}
  - {{target: 'phoneNumbers[type eq "work"].value', source: telephoneNumber}}
  - {{target: '{ENT}:department', source: department}}
  - {{target: '{ENT}:manager', source: manager}}
  - {{target: '{ENT}:employeeNumber', source: employeeId, apply: on_create}}
user_scope:
  # Entra: the scoping filter of 'Provision Azure Active Directory Users'
  - - {{attribute: department, operator: EQUALS, value: Sales}}
    - {{attribute: accountEnabled, operator: IS TRUE}}
  - - {{attribute: jobTitle, operator: REGEX MATCH, value: ^Support}}
    - {{attribute: employeeId, operator: IS NOT NULL}}
group:
  # Entra: rule 'USER_OUTBOUND_USER', object mapping 'Provision Azure Active Directory Groups'
  - {{target: displayName, source: displayName, match: 1}}
  - {{target: externalId, source: objectId}}
  - {{target: members, source: members}}
"""


def test_the_gallery_schema_converts_exactly() -> None:
    result = convert_schema(schema("gallery"), "file gallery_schema.json", DAY)
    assert body(result.text) == GALLERY_BODY
    assert result.not_converted == () and result.findings == () and result.ok
    assert len(result.converted) == 12
    header = result.text.splitlines()[:4]
    assert header[0] == ("# Imported from Entra's provisioning job by `genesys-prov mapping "
                         "import` on 2026-12-04.")
    assert header[1] == ("# Source: file gallery_schema.json; job PureCloudByGenesys."
                         "0123456789abcdef0123456789abcdef.fedcba9876543210fedcba9876543210; "
                         "schema version date:2026-11-20T09:15:00.0000000Z.")
    assert header[2] == "# Rule: USER_OUTBOUND_USER (Azure Active Directory → customappsso)."
    first = result.converted[0]
    assert first.origin.data() == {"rule": "USER_OUTBOUND_USER",
                                   "object_mapping": "Provision Azure Active Directory Users",
                                   "target": "userName"}
    assert [c.section for c in result.converted].count("group") == 3


def test_the_gallery_result_loads_as_the_gallery_mappings() -> None:
    mappings = parse_mappings(convert_schema(schema("gallery"), "f", DAY).text)
    assert [(m.target, m.kind, m.match) for m in mappings.user_match] == [
        ("userName", "direct", 1)]
    active = mappings.active_mapping
    assert active is not None and active.expression is not None
    assert active.expression.evaluate(lambda name: False) == "True"
    assert active.expression.evaluate(lambda name: True) == "False"
    assert mappings.manager_mapping is not None and mappings.members_mapping is not None
    assert [m.target for m in mappings.group_match] == ["displayName"]
    assert not mappings.user_scope and not mappings.group_scope


def test_the_customised_schema_converts_exactly() -> None:
    result = convert_schema(schema("customised"), "file customised_schema.json", DAY)
    assert body(result.text) == CUSTOMISED_BODY
    assert result.not_converted == () and result.ok
    scope = [c for c in result.converted if c.section == "user_scope"]
    assert len(scope) == 1 and scope[0].origin.target == "scope"


def test_the_customised_mappings_behave_as_entra_configured_them() -> None:
    mappings = parse_mappings(convert_schema(schema("customised"), "f", DAY).text)
    by_target = {m.target: m for m in mappings.user}
    assert [m.target for m in mappings.user_match] == ["userName",
                                                      'emails[type eq "work"].value']
    assert by_target["title"].default == "Agent"
    assert by_target[f"{ENT}:employeeNumber"].apply == "on_create"
    join = by_target["displayName"].expression
    assert join is not None
    assert join.evaluate({"givenName": "Ada", "surname": "Lovelace"}.get) == "Ada Lovelace"
    users = {
        "sales": {"department": "Sales", "accountEnabled": True},
        "sales, disabled": {"department": "Sales", "accountEnabled": False},
        "support": {"jobTitle": "Support Lead", "employeeId": "42"},
        "support, no id": {"jobTitle": "Support Lead"},
        "other": {"department": "Finance", "jobTitle": "Analyst", "employeeId": "7"},
    }
    assert {name for name, user in users.items()
            if mappings.user_scope.matches(lambda attr, u=user: read_source(u, attr))} == {
        "sales", "support"}


def test_a_function_without_expression_text_is_rebuilt_from_its_parameters() -> None:
    s = schema("gallery")
    active = user_mappings(s)[1]["source"]
    del active["expression"]
    result = convert_schema(s, "f", DAY)
    assert ("  # expression rebuilt from the function's parameters\n"
            "  - {target: active, expression: 'Switch([IsSoftDeleted], , \"False\", \"True\", "
            "\"True\", \"False\")'}\n") in result.text
    assert result.converted[1].note == "expression rebuilt from the function's parameters"
    assert result.ok


def test_rebuild_nests_functions_and_escapes_constants() -> None:
    source = {"type": "Function", "name": "ToLower", "parameters": [
        {"key": "source", "value": {"type": "Function", "name": "Join", "parameters": [
            {"key": "separator", "value": {"type": "Constant", "name": 'a"b\\c'}},
            {"key": "source1", "value": {"type": "Attribute", "name": "givenName"}},
        ]}},
        {"key": "culture", "value": None},
    ]}
    assert rebuild_expression(source) == 'ToLower(Join("a\\"b\\\\c", [givenName]), )'


def test_a_function_that_cannot_be_rebuilt_is_not_converted() -> None:
    s = schema("gallery")
    user_mappings(s)[1]["source"] = {"type": "Function", "name": "Not",
                                     "parameters": [{"key": "source", "value": {"type": "X"}}]}
    result = convert_schema(s, "f", DAY)
    assert [n.reason for n in result.not_converted] == [
        "cannot rebuild an expression from a source of type 'X'"]
    assert "# NOT CONVERTED (cannot rebuild an expression from a source of type 'X'): - " \
           "{target: active, expression: Not}" in result.text


def not_converted_after(change: Any) -> tuple[Any, str]:
    """Convert the gallery schema after ``change(schema)``; the one element not converted
    and the text."""
    s = schema("gallery")
    change(s)
    result = convert_schema(s, "f", DAY)
    assert len(result.not_converted) == 1, result.not_converted
    assert result.ok, result.findings  # what is left still validates
    return result.not_converted[0], result.text


@pytest.mark.parametrize("flow", ["MultiValueAddOnly", "ValueAddOnly", "AttributeAddOnly"])
def test_add_only_flow_types_are_not_converted(flow: str) -> None:
    item, text = not_converted_after(lambda s: user_mappings(s)[4].update(flowType=flow))
    assert item.reason.startswith(f"flowType {flow} ")
    assert item.origin.target == "title"
    assert f"  # NOT CONVERTED ({item.reason}): - {{target: title, source: jobTitle}}\n" in text
    assert "\n  - {target: title" not in text


def test_an_unknown_function_is_not_converted() -> None:
    def change(s: dict[str, Any]) -> None:
        user_mappings(s)[2]["source"] = {"type": "Function", "name": "Frobnicate",
                                         "expression": "Frobnicate([displayName])",
                                         "parameters": []}

    item, text = not_converted_after(change)
    assert item.reason == ("unknown function 'Frobnicate': not in genesys-prov's expression "
                           "language")
    assert ("  # NOT CONVERTED (unknown function 'Frobnicate': not in genesys-prov's "
            "expression language): - {target: displayName, expression: "
            "'Frobnicate([displayName])'}\n") in text


def test_an_unknown_target_attribute_is_not_converted() -> None:
    item, text = not_converted_after(
        lambda s: user_mappings(s).append(attribute("nickName", "mailNickname")))
    assert item.reason == "the Genesys schema: the target's schema has no attribute 'nickName'"
    assert "# NOT CONVERTED (" in text and "{target: nickName, source: mailNickname}" in text


def test_an_unknown_source_attribute_is_not_converted() -> None:
    item, _ = not_converted_after(
        lambda s: user_mappings(s).append(attribute("title", "favouriteColour")))
    assert item.reason == "unknown source attribute 'favouriteColour'"


def test_an_unknown_source_attribute_inside_an_expression_is_not_converted() -> None:
    def change(s: dict[str, Any]) -> None:
        user_mappings(s)[4]["source"] = {"type": "Function", "name": "ToUpper",
                                         "expression": "ToUpper([jobTitel])"}

    item, _ = not_converted_after(change)
    assert item.reason == "unknown source attribute 'jobTitel'"


def test_a_disabled_object_mapping_is_not_converted_and_listed_whole() -> None:
    item, text = not_converted_after(
        lambda s: s["synchronizationRules"][0]["objectMappings"][1].update(enabled=False))
    assert item.reason == ("object mapping 'Provision Azure Active Directory Groups' is "
                           "disabled in Entra: Entra provisions no groups")
    assert "\ngroup:" not in text
    assert text.endswith(f"# NOT CONVERTED ({item.reason}): group:\n"
                         "#     - {target: displayName, source: displayName, match: 1}\n"
                         "#     - {target: externalId, source: objectId}\n"
                         "#     - {target: members, source: members}\n")
    assert parse_mappings(text).group == ()


def test_an_object_mapping_other_than_users_and_groups_is_not_converted() -> None:
    def change(s: dict[str, Any]) -> None:
        extra = copy.deepcopy(s["synchronizationRules"][0]["objectMappings"][1])
        extra.update(name="Provision Devices", sourceObjectName="Device",
                     targetObjectName="Device")
        s["synchronizationRules"][0]["objectMappings"].append(extra)

    item, _ = not_converted_after(change)
    assert item.reason == ("object mapping 'Provision Devices' (Device → Device) is not users "
                           "or groups")


def test_a_scope_with_an_unknown_operator_is_not_converted_whole() -> None:
    def change(s: dict[str, Any]) -> None:
        s["synchronizationRules"][0]["objectMappings"][0]["scope"] = {"groups": [{"clauses": [
            {"operatorName": "SOUNDS LIKE", "sourceOperandName": "surname",
             "targetOperand": {"values": ["Smith"]}}]}]}

    item, text = not_converted_after(change)
    assert item.section == "user_scope"
    assert item.reason.startswith("clause {attribute: surname, operator: SOUNDS LIKE, value: "
                                  "Smith}: unknown operator 'SOUNDS LIKE'")
    assert "\nuser_scope:" not in text
    assert text.endswith(f"# NOT CONVERTED ({item.reason}): user_scope:\n"
                         "#     - - {attribute: surname, operator: SOUNDS LIKE, value: Smith}\n"
                         "group:\n" + GALLERY_BODY.split("group:\n")[1])


def test_input_filter_groups_are_not_converted() -> None:
    def change(s: dict[str, Any]) -> None:
        s["synchronizationRules"][0]["objectMappings"][0]["scope"] = {
            "groups": [], "inputFilterGroups": [{"clauses": []}]}

    item, _ = not_converted_after(change)
    assert item.reason == ("inputFilterGroups has no equivalent; without this filter the "
                           "scope is wider than Entra's")


def test_a_mapping_type_none_with_a_default_becomes_a_constant_on_create() -> None:
    s = schema("gallery")
    user_mappings(s).append({**attribute(f"{ENT}:division", "x"), "source": None,
                             "defaultValue": "Home"})
    result = convert_schema(s, "f", DAY)
    assert f"  - {{target: '{ENT}:division', constant: Home, apply: on_create}}\n" in result.text
    assert result.ok and result.not_converted == ()


def test_scoping_operators_in_entra_spellings_and_group_scope() -> None:
    s = schema("gallery")
    groups = s["synchronizationRules"][0]["objectMappings"][1]
    groups["scope"] = {"groups": [{"clauses": [
        {"operatorName": "REGEX MATCH", "sourceOperandName": "displayName",
         "targetOperand": {"values": ["^GC "]}}]}]}
    user_mappings(s)  # unchanged
    s["synchronizationRules"][0]["objectMappings"][0]["scope"] = {"groups": [
        {"clauses": [{"operatorName": "Greater_Than", "sourceOperandName": "extensionAttribute1",
                      "targetOperand": {"values": ["10"]}},
                     {"operatorName": "NOT EQUALS", "sourceOperandName": "country",
                      "targetOperand": {"values": ["FR"]}},
                     {"operatorName": "IS FALSE", "sourceOperandName": "accountEnabled",
                      "targetOperand": {"values": ["false"]}}]},
        {"clauses": [{"operatorName": "ENDS_WITH", "sourceOperandName": "mail",
                      "targetOperand": {"values": ["@contoso.com"]}}]}]}
    result = convert_schema(s, "f", DAY)
    assert result.ok and result.not_converted == ()
    mappings = parse_mappings(result.text)
    assert [[c.describe() for c in g] for g in mappings.user_scope.groups] == [
        ["extensionAttribute1 GREATER_THAN 10", 'country NOT EQUALS "FR"',
         "accountEnabled IS FALSE"],
        ['mail ENDS_WITH "@contoso.com"']]
    assert [[c.describe() for c in g] for g in mappings.group_scope.groups] == [
        ['displayName REGEX MATCH "^GC "']]


def test_a_result_that_does_not_validate_says_why() -> None:
    s = schema("gallery")
    user_mappings(s)[0]["matchingPriority"] = 0
    result = convert_schema(s, "f", DAY)
    assert not result.ok
    assert [f.data() for f in result.findings] == [{
        "level": "error", "where": "imported mappings",
        "message": "no user mapping is marked for matching (add match: 1 to one, usually "
                   "userName)"}]


def test_the_rule_that_provisions_the_app_is_the_one_converted() -> None:
    s = schema("gallery")
    inbound = copy.deepcopy(s["synchronizationRules"][0])
    inbound.update(name="INBOUND", sourceDirectoryName="customappsso",
                   targetDirectoryName="Azure Active Directory", objectMappings=[])
    s["synchronizationRules"].insert(0, inbound)
    s["synchronizationRules"][1]["sourceDirectoryName"] = "Microsoft Entra ID"
    result = convert_schema(s, "f", DAY)
    assert result.rule == "USER_OUTBOUND_USER" and len(result.converted) == 12


@pytest.mark.parametrize(("data", "message"), [
    ([], "f: expected a JSON object"),
    ({"id": "x"}, "f: not a synchronizationSchema (it has no 'synchronizationRules' list)"),
    ({"synchronizationRules": []}, "f: no synchronization rule from Microsoft Entra ID to an "
                                   "application"),
    ({"synchronizationRules": [{"sourceDirectoryName": "Azure Active Directory",
                                "targetDirectoryName": "customappsso",
                                "objectMappings": ["x"]}]},
     "f: synchronizationRules[0].objectMappings[0]: expected a JSON object"),
])
def test_a_schema_of_the_wrong_shape_is_one_line(data: Any, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        convert_schema(data, "f", DAY)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


GENESYS = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"


def test_todays_gallery_attributes_convert() -> None:
    """The tutorial's newer targets, written as the tutorial writes them (single quotes in
    filters), convert and validate; mapping both microsoftteams and other is reported by the
    validation (Genesys keeps them in one field)."""
    s = schema("gallery")
    user_mappings(s).extend([
        attribute('phoneNumbers[type eq "work2"].value', "extensionAttribute4"),
        attribute("phoneNumbers[type eq 'microsoftteams'].value", "extensionAttribute6"),
        attribute(f"{ENT}:division", "extensionAttribute2"),
        attribute("roles", "appRoleAssignments"),
        attribute(f"{GENESYS}:externalIds[authority eq 'microsoftteams'].value", "objectId"),
    ])
    result = convert_schema(s, "f", DAY)
    assert result.not_converted == () and result.ok, (result.not_converted, result.findings)
    assert ("  - {target: \"phoneNumbers[type eq 'microsoftteams'].value\", source: "
            "extensionAttribute6}\n") in result.text
    assert len(parse_mappings(result.text).user) == 14
    user_mappings(s).append(attribute('phoneNumbers[type eq "other"].value', "otherMails"))
    both = convert_schema(s, "f", DAY)
    assert not both.ok
    assert "microsoftteams and other phone numbers in one field" in both.findings[0].message


@pytest.mark.parametrize("text", ["a \"b\" 'c' # d: e", "it's", "x\\y", "Zoë: {1}", "- [x]",
                                  "True", "12", "null", " padded "])
def test_values_round_trip_through_the_yaml(text: str) -> None:
    s = schema("gallery")
    user_mappings(s)[4]["defaultValue"] = text
    user_mappings(s)[5]["source"] = {"type": "Constant", "name": text}
    mappings = parse_mappings(convert_schema(s, "f", DAY).text)
    assert mappings.user[4].default == text
    assert mappings.user[5].constant == text


def test_the_newest_functions_convert_and_an_undocumented_one_says_why() -> None:
    """Issue 13: a schema using AppRoleAssignmentsComplex, Len and DefaultDomain converts;
    NormalizeDiacriticsByCulture (named by Entra, undocumented) is listed with the reason."""
    def function(target: str, expression: str) -> dict[str, Any]:
        return {"targetAttributeName": target, "flowType": "Always", "matchingPriority": 0,
                "source": {"expression": expression, "name": "F", "type": "Function",
                           "parameters": []}}

    schema = {"id": "job", "version": "v1", "synchronizationRules": [{
        "id": "r", "name": "USER", "sourceDirectoryName": "Azure Active Directory",
        "targetDirectoryName": "customappsso", "objectMappings": [{
            "enabled": True, "name": "Users", "sourceObjectName": "User",
            "targetObjectName": "User", "scope": None, "attributeMappings": [
                {"targetAttributeName": "userName", "flowType": "Always",
                 "matchingPriority": 1, "source": {"expression": "[userPrincipalName]",
                                                   "name": "userPrincipalName",
                                                   "type": "Attribute", "parameters": []}},
                function("roles", "AppRoleAssignmentsComplex([appRoleAssignments])"),
                function("title", 'Join("@", [mailNickname], DefaultDomain())'),
                function("displayName", 'IIF(Len([displayName])>3, [displayName], "?")'),
                function(f"{ENT}:department",
                         'NormalizeDiacriticsByCulture([department], "de-DE")'),
            ]}]}]}
    result = convert_schema(schema, "test", "2026-12-04")
    converted = parse_mappings(result.text)
    assert [m.target for m in converted.user] == ["userName", "roles", "title", "displayName"]
    (skipped,) = result.not_converted
    assert "NormalizeDiacriticsByCulture" in skipped.reason
    assert "does not document" in skipped.reason

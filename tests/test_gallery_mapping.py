"""Issue 13, the pure side of the gallery-app attributes: filter paths in any quotes, set
attributes (roles, routing skills and languages), appRoleAssignments from the app's
assignments, and what `mapping validate` says about them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from genesys_prov.config import SourceConfig
from genesys_prov.errors import ConfigError, MappingError
from genesys_prov.mapping.desired import desired_user
from genesys_prov.mapping.mappings import graph_property, known_source
from genesys_prov.mapping.mappings_file import default_mappings_text, parse_mappings
from genesys_prov.mapping.scimpath import (
    GENESYS_USER,
    coerce,
    get_value,
    parse_path,
    patch_operation,
    same_value,
)
from genesys_prov.mapping.validation import builtin_genesys_schemas, validate_mappings
from genesys_prov.plan.build import build_plan
from genesys_prov.source.scope import read_assignments, read_directory, role_names

ROLES = parse_path("roles")
SKILLS = parse_path(f"{GENESYS_USER}:routingSkills")
LANGUAGES = parse_path(f"{GENESYS_USER}:routingLanguages")
TEAMS = f'{GENESYS_USER}:externalIds[authority eq "microsoftteams"].value'


@pytest.mark.parametrize("written", [
    f"{GENESYS_USER}:externalIds[authority eq 'microsoftteams'].value",
    f"{GENESYS_USER}:externalIds[authority eq \u2018microsoftteams\u2019].value",
    f"{GENESYS_USER}:externalIds[authority eq \u201cmicrosoftteams\u201d].value",
    f"{GENESYS_USER}:externalIds[ authority  eq  'microsoftteams' ].value",
])
def test_filter_paths_in_any_quotes_parse_to_the_double_quoted_path(written: str) -> None:
    assert parse_path(written) == parse_path(TEAMS)
    assert parse_path(written).text == TEAMS


def test_single_quoted_filter_values_unescape_and_text_is_requoted() -> None:
    path = parse_path(r"phoneNumbers[type eq 'it\'s']")
    assert path.filter_value == "it's"
    assert path.text == "phoneNumbers[type eq \"it's\"]"
    assert parse_path("phoneNumbers[type eq 'work']").text == "phoneNumbers[type eq \"work\"]"
    for bad in ("phoneNumbers[type eq 'work\"]", "phoneNumbers[type eq work]",
                "phoneNumbers[type eq \u2018work\"]"):
        with pytest.raises(MappingError):
            parse_path(bad)


def test_the_same_filter_in_two_quotings_is_mapped_twice() -> None:
    text = ("user:\n  - {target: userName, source: userPrincipalName, match: 1}\n"
            "  - {target: 'phoneNumbers[type eq \"work\"].value', source: mobile}\n"
            "  - {target: \"phoneNumbers[type eq 'work'].value\", source: telephoneNumber}\n")
    with pytest.raises(MappingError, match="mapped twice"):
        parse_mappings(text)


def test_roles_from_names_or_complex_values_are_one_canonical_set() -> None:
    complex_roles = [
        {"primary": True, "type": "WindowsAzureActiveDirectoryRole", "display": "Sup",
         "value": "Supervisor"},
        {"primary": False, "type": "WindowsAzureActiveDirectoryRole", "display": "U",
         "value": "User"},
    ]
    want = [{"value": "Supervisor"}, {"value": "User"}]
    assert coerce(ROLES, ["User", "Supervisor", "User"]) == want
    assert coerce(ROLES, complex_roles) == want
    assert coerce(ROLES, "User") == [{"value": "User"}]
    assert coerce(ROLES, []) is None and coerce(ROLES, [" "]) is None
    with pytest.raises(ValueError, match="roles"):
        coerce(ROLES, [["nested"]])


def test_roles_compare_as_a_set_of_values() -> None:
    held = {"roles": [{"value": "User", "display": "User", "primary": True},
                      {"value": "Supervisor"}]}
    assert get_value(held, ROLES) == [{"value": "Supervisor"}, {"value": "User"}]
    assert same_value(ROLES, held["roles"], coerce(ROLES, ["Supervisor", "User"]))
    assert not same_value(ROLES, held["roles"], coerce(ROLES, ["User"]))
    assert not same_value(ROLES, held["roles"], coerce(ROLES, ["user", "Supervisor"]))
    assert patch_operation(ROLES, [{"value": "User"}]) == {
        "op": "replace", "path": "roles", "value": [{"value": "User"}]}


def test_routing_values_from_names_and_proficiencies() -> None:
    assert coerce(SKILLS, ["Sales:4", "Support", "Sales:1", "Ops: Tier:2.5"]) == [
        {"name": "Ops: Tier", "proficiency": 2.5}, {"name": "Sales", "proficiency": 4.0},
        {"name": "Support", "proficiency": 0.0}]
    assert coerce(LANGUAGES, [{"name": "English", "proficiency": 5}]) == [
        {"name": "English", "proficiency": 5.0}]
    assert coerce(SKILLS, "a:b") == [{"name": "a:b", "proficiency": 0.0}]
    with pytest.raises(ValueError, match="between 0 and 5"):
        coerce(SKILLS, ["Sales:7"])
    held = {GENESYS_USER: {"routingSkills": [{"name": "Support", "proficiency": 0},
                                             {"name": "Sales", "proficiency": 4}]}}
    assert same_value(SKILLS, get_value(held, SKILLS), coerce(SKILLS, ["Sales:4", "Support"]))
    assert not same_value(SKILLS, get_value(held, SKILLS), coerce(SKILLS, ["Sales:3", "Support"]))


MAPPINGS = parse_mappings(f"""
user:
  - {{target: userName, source: userPrincipalName, match: 1}}
  - {{target: roles, source: appRoleAssignments}}
  - {{target: "{GENESYS_USER}:routingSkills", expression: 'Split([extensionAttribute3], ";")'}}
""")


def graph_user(**extra: Any) -> dict[str, Any]:
    return {"id": "u1", "userPrincipalName": "ann@contoso.com", "accountEnabled": True,
            **extra}


def test_app_role_assignments_is_a_known_source_read_from_the_assignments() -> None:
    assert known_source("appRoleAssignments") and graph_property("appRoleAssignments") is None
    assert "appRoleAssignments" not in MAPPINGS.graph_select()
    assert MAPPINGS.uses_app_roles
    assert not parse_mappings(default_mappings_text()).uses_app_roles


@pytest.mark.parametrize("roles", [
    ["User", "Supervisor"],
    [{"primary": False, "type": "t", "display": "User", "value": "User"},
     {"primary": True, "type": "t", "display": "Supervisor", "value": "Supervisor"}],
])
def test_desired_roles_and_a_plan_with_no_perpetual_diff(roles: list[Any]) -> None:
    source = graph_user(appRoleAssignments=roles,
                        onPremisesExtensionAttributes={"extensionAttribute3": "Sales:4;Support"})
    desired = desired_user(source, MAPPINGS)
    assert desired.values["roles"] == [{"value": "Supervisor"}, {"value": "User"}]
    target = {"id": "t1", "userName": "ann@contoso.com", "active": True,
              "roles": [{"value": "User"}, {"value": "Supervisor", "display": "x"}],
              GENESYS_USER: {"routingSkills": [{"name": "Support", "proficiency": 0},
                                               {"name": "Sales", "proficiency": 4.0}]}}
    assert build_plan([desired], [target], MAPPINGS).changes == ()
    target["roles"] = [{"value": "User"}, {"value": "employee"}]
    (change,) = build_plan([desired], [target], MAPPINGS).changes
    (item,) = change.attributes
    assert (item.attribute, item.old, item.new, item.op) == (
        "roles", [{"value": "User"}, {"value": "employee"}],
        [{"value": "Supervisor"}, {"value": "User"}], "replace")


def test_no_role_leaves_the_target_alone() -> None:
    desired = desired_user(graph_user(appRoleAssignments=[]), MAPPINGS)
    assert "roles" not in desired.values
    target = {"id": "t1", "userName": "ann@contoso.com", "active": True,
              "roles": [{"value": "employee"}]}
    assert build_plan([desired], [target], MAPPINGS).changes == ()


class FakeGraph:
    def __init__(self, assignments: list[dict[str, str]], app_roles: list[dict[str, Any]]):
        self.assignments, self.roles, self.role_reads = assignments, app_roles, 0

    def iter_assignments(self, sp: str) -> Any:
        return iter(self.assignments)

    def app_roles(self, sp: str) -> list[dict[str, Any]]:
        self.role_reads += 1
        return self.roles


DEFAULT = "00000000-0000-0000-0000-000000000000"
APP_ROLES = [{"id": "R1", "displayName": "User", "value": "user"},
             {"id": "r2", "displayName": "", "value": "Supervisor"},
             {"id": "r3", "displayName": None, "value": None}]
ASSIGNED = [
    {"principalType": "User", "principalId": "U1", "appRoleId": "r1"},
    {"principalType": "User", "principalId": "u2", "appRoleId": DEFAULT},
    {"principalType": "Group", "principalId": "g1", "appRoleId": "r2"},
    {"principalType": "Group", "principalId": "g2", "appRoleId": DEFAULT},
    {"principalType": "User", "principalId": "u3", "appRoleId": "r3"},
]


def test_user_roles_from_direct_and_group_assignments() -> None:
    assert role_names(APP_ROLES) == {"r1": "User", "r2": "Supervisor"}
    config = SourceConfig(tenant_id="t", client_id="c", client_secret="s",
                          service_principal_id="sp")
    graph = FakeGraph(ASSIGNED, APP_ROLES)
    assigned = read_assignments(graph, config, app_roles=True)  # type: ignore[arg-type]
    assert assigned.user_roles("u1") == ["User"]
    assert assigned.user_roles("u1", ["g1", "g2"]) == ["Supervisor", "User"]
    assert assigned.user_roles("u2") == [] and assigned.user_roles("u2", ["g2"]) == []
    assert assigned.user_roles("u3") == []  # a role the app does not name
    plain = read_assignments(FakeGraph(ASSIGNED, APP_ROLES), config)  # type: ignore[arg-type]
    assert plain.role_names is None
    renamed = [dict(APP_ROLES[0], displayName="Agent"), *APP_ROLES[1:]]
    again = read_assignments(FakeGraph(ASSIGNED, renamed), config,  # type: ignore[arg-type]
                             app_roles=True)
    assert again.digest != assigned.digest  # a renamed role makes the next run read all
    assert read_assignments(FakeGraph(ASSIGNED, APP_ROLES), config,  # type: ignore[arg-type]
                            app_roles=True).digest == assigned.digest


def _findings(text: str) -> list[tuple[str, str]]:
    found = validate_mappings(parse_mappings(text), builtin_genesys_schemas())
    return [(f.level, f.message) for f in found]


HEAD = "user:\n  - {target: userName, source: userPrincipalName, match: 1}\n"


def test_validate_microsoftteams_and_other_together_is_an_error_either_way() -> None:
    for teams in ('"microsoftteams"', "'microsoftteams'", "\u201cmicrosoftteams\u201d"):
        text = yaml.safe_dump({"user": [
            {"target": "userName", "source": "userPrincipalName", "match": 1},
            {"target": 'phoneNumbers[type eq "other"].value', "source": "mobile"},
            {"target": f"phoneNumbers[type eq {teams}].value", "source": "telephoneNumber"},
        ]}, allow_unicode=True)
        errors = [m for level, m in _findings(text) if level == "error"]
        assert errors == ["Genesys keeps microsoftteams and other phone numbers in one field; "
                          "map one or the other (with both, each run overwrites one with the "
                          "other)"]


def test_validate_refuses_genesys_own_external_id_and_the_whole_list() -> None:
    own = HEAD + (f"  - {{target: '{GENESYS_USER}:externalIds[authority eq \"x-pc:scimv2:v1\"]"
                  ".value', source: objectId}\n")
    assert ("error", "the x-pc:scimv2:v1 entry is Genesys' own and immutable") in _findings(own)
    whole = HEAD + f"  - {{target: '{GENESYS_USER}:externalIds', source: objectId}}\n"
    assert any(level == "error" and "one authority at a time" in m
               for level, m in _findings(whole))


def test_the_documented_gallery_mappings_validate_against_the_builtin_schema() -> None:
    text = default_mappings_text()
    lines = text.splitlines()
    group = lines.index("group:")
    documented = [line.replace("  # - {", "  - {", 1) for line in lines[:group]
                  if line.startswith("  # - {")]
    assert len(documented) >= 11
    enabled = "\n".join([*lines[:group], *documented, *lines[group:]]) + "\n"
    mappings = parse_mappings(enabled)
    assert mappings.uses_app_roles
    assert [f for f in _findings(enabled) if f[0] == "error"] == []
    targets = {m.path.text for m in mappings.user}
    for kind in ("work2", "home", "microsoftteams"):
        assert f'phoneNumbers[type eq "{kind}"].value' in targets
    for authority in ("microsoftteams", "ringcentral", "zoomphone"):
        assert f'{GENESYS_USER}:externalIds[authority eq "{authority}"].value' in targets


def test_the_packaged_and_repository_mappings_stay_identical() -> None:
    root = Path(__file__).resolve().parent.parent
    assert (root / "mappings.yaml").read_text(encoding="utf-8") == default_mappings_text()


def test_app_roles_without_a_service_principal_are_a_configuration_error() -> None:
    config = SourceConfig(tenant_id="t", client_id="c", client_secret="s", scope="all")
    with pytest.raises(ConfigError, match="service_principal_id: required when a mapping "
                                          "reads appRoleAssignments"):
        read_directory(None, config, MAPPINGS)  # type: ignore[arg-type]

"""Issue 13: today's gallery-app attributes (every phone type, employeeNumber, division,
roles from the app's role assignments, the Genesys extension's externalIds, routingSkills and
routingLanguages) round-trip against the Genesys emulator: what the target holds, no
perpetual diff, and one PATCH per directory change."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from genesys_prov.mapping.genesys_rules import normalize_phone
from genesys_prov.sandbox import Sandbox
from genesys_prov.sandbox.directory.tenant import SUPERVISOR_ROLE
from tests.conftest import Scim2Server, run_cli, write_config

pytestmark = pytest.mark.e2e
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GENESYS = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"

# The filter paths are written three ways on purpose: double, single (Microsoft's
# tutorials) and typographic quotes (pasted from a web page).
MAPPINGS = f"""
user:
  - {{target: userName, source: userPrincipalName, match: 1}}
  - {{target: active, expression: "Not([IsSoftDeleted])"}}
  - {{target: displayName, source: displayName}}
  - {{target: 'emails[type eq "work"].value', source: mail}}
  - {{target: title, source: jobTitle}}
  - {{target: "phoneNumbers[type eq 'mobile'].value", source: mobile}}
  - {{target: 'phoneNumbers[type eq “work”].value', source: telephoneNumber}}
  - {{target: 'phoneNumbers[type eq "work2"].value', source: extensionAttribute4}}
  - {{target: 'phoneNumbers[type eq "work3"].value', source: extensionAttribute5}}
  - {{target: 'phoneNumbers[type eq "work4"].value', source: extensionAttribute6}}
  - {{target: 'phoneNumbers[type eq "home"].value', source: extensionAttribute7}}
  - {{target: 'phoneNumbers[type eq "microsoftteams"].value', source: extensionAttribute8}}
  - {{target: "{ENTERPRISE}:employeeNumber", source: employeeId}}
  - {{target: "{ENTERPRISE}:division", source: extensionAttribute9}}
  - {{target: "{ENTERPRISE}:department", source: department}}
  - {{target: roles, source: appRoleAssignments}}
  - {{target: '{GENESYS}:externalIds[authority eq "microsoftteams"].value', source: objectId}}
  - {{target: "{GENESYS}:externalIds[authority eq 'ringcentral'].value",
      source: extensionAttribute10}}
  - {{target: '{GENESYS}:externalIds[authority eq ‘zoomphone’].value',
      source: extensionAttribute11}}
  - {{target: "{GENESYS}:routingSkills", expression: 'Split([extensionAttribute3], ";")'}}
  - {{target: "{GENESYS}:routingLanguages", expression: 'Split([extensionAttribute12], ";")'}}
"""

ADELE = "adele.vance@contoso.com"        # Sales Agents (role User)
LIDIA = "lidia.holloway@contoso.com"     # Supervisors (role Supervisor)
CHRISTIE = "christie.cline@contoso.com"  # assigned directly (User) and in Nested Team (User)
SALES_AGENTS = "Sales Agents"
SUPERVISORS = "Supervisors"


def graph_user(sb: Sandbox, upn: str) -> dict[str, Any]:
    return next(u for u in sb.graph.users if u["userPrincipalName"] == upn)


def set_extensions(sb: Sandbox, upn: str, **values: str | None) -> None:
    user = graph_user(sb, upn)
    merged = {**(user.get("onPremisesExtensionAttributes") or {}), **values}
    sb.graph.set_user(user["id"], onPremisesExtensionAttributes=merged)


def held(sb: Sandbox, upn: str) -> dict[str, Any]:
    return next(u for u in sb.genesys.users.values() if u["userName"].lower() == upn)


def phones(user: dict[str, Any]) -> dict[str, str]:
    return {p["type"]: p["value"] for p in user.get("phoneNumbers") or []}


def external_ids(user: dict[str, Any]) -> dict[str, str]:
    return {e["authority"]: e["value"] for e in user[GENESYS]["externalIds"]}


def sync(cfg: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("--config", cfg, "sync", "--output", "json", *extra)
    return result.exit_code, json.loads(result.stdout)


def patches(sb: Sandbox) -> list[Any]:
    writes = sb.genesys.writes()
    assert all(w.method == "PATCH" for w in writes), [(w.method, w.path) for w in writes]
    return writes


def group_id(sb: Sandbox, name: str) -> str:
    return next(g["id"] for g in sb.graph.groups if g["displayName"] == name)


@pytest.fixture
def gallery(sandbox: Sandbox, tmp_path: Path) -> str:
    """The sandbox with Adele and Lidia carrying every attribute, and a configuration
    (scope: assigned) using the mappings above."""
    set_extensions(sandbox, ADELE, extensionAttribute3="Sales:4;Support",
                   extensionAttribute4="+1 425 555 0102", extensionAttribute5="+14255550103",
                   extensionAttribute6="+14255550104", extensionAttribute7="+14255550107",
                   extensionAttribute8="+14255550106", extensionAttribute9="Sales",
                   extensionAttribute10="rc-adele", extensionAttribute11="zoom-adele",
                   extensionAttribute12="English:5;French:2.5")
    set_extensions(sandbox, LIDIA, extensionAttribute3="Escalations:5",
                   extensionAttribute9="Support", extensionAttribute12="German")
    return str(write_config(tmp_path, sandbox.config(), MAPPINGS))


def test_gallery_attributes_round_trip(sandbox: Sandbox, gallery: str) -> None:
    code, out = sync(gallery)
    assert code == 0, (out["plan"]["failures"], out["result"])

    adele = held(sandbox, ADELE)
    source = graph_user(sandbox, ADELE)
    assert phones(adele) == {"mobile": normalize_phone(source["mobilePhone"], "US"),
                             "work": normalize_phone(source["businessPhones"][0], "US"),
                             "work2": "+14255550102", "work3": "+14255550103",
                             "work4": "+14255550104", "home": "+14255550107",
                             "microsoftteams": "+14255550106"}
    assert adele[ENTERPRISE]["employeeNumber"] == graph_user(sandbox, ADELE)["employeeId"]
    assert adele[ENTERPRISE]["division"] == "Sales"
    assert adele["roles"] == [{"value": "User"}]
    ids = external_ids(adele)
    assert ids["x-pc:scimv2:v1"] == adele["id"]  # Genesys' own entry, untouched
    assert ids["microsoftteams"] == graph_user(sandbox, ADELE)["id"]
    assert ids["ringcentral"] == "rc-adele" and ids["zoomphone"] == "zoom-adele"
    assert sorted(adele[GENESYS]["routingSkills"], key=lambda s: s["name"]) == [
        {"name": "Sales", "proficiency": 4.0}, {"name": "Support", "proficiency": 0.0}]
    assert sorted(adele[GENESYS]["routingLanguages"], key=lambda s: s["name"]) == [
        {"name": "English", "proficiency": 5.0}, {"name": "French", "proficiency": 2.5}]

    lidia = held(sandbox, LIDIA)
    assert lidia["roles"] == [{"value": "Supervisor"}]
    assert lidia[ENTERPRISE]["division"] == "Support"
    assert lidia[GENESYS]["routingSkills"] == [{"name": "Escalations", "proficiency": 5.0}]
    assert held(sandbox, CHRISTIE)["roles"] == [{"value": "User"}]

    sandbox.genesys.requests.clear()
    code, out = sync(gallery, "--full", "--dry-run")
    assert code == 0 and out["mode"] == "full"
    assert out["plan"]["changes"] == []  # no perpetual diff
    assert sandbox.genesys.writes() == []

    # one directory change, one PATCH with one operation (routing skills compared as a set)
    set_extensions(sandbox, ADELE, extensionAttribute3="Support;Sales:4;Billing:1")
    sandbox.genesys.requests.clear()
    code, out = sync(gallery)
    assert code == 0 and out["mode"] == "incremental", out["mode_reason"]
    (patch,) = patches(sandbox)
    assert patch.path.endswith("/Users/" + adele["id"])
    assert patch.body["Operations"] == [{"op": "replace", "path": f"{GENESYS}:routingSkills",
                                         "value": [{"name": "Billing", "proficiency": 1.0},
                                                   {"name": "Sales", "proficiency": 4.0},
                                                   {"name": "Support", "proficiency": 0.0}]}]

    # an external id: replaced in place, Genesys' own entry kept
    set_extensions(sandbox, ADELE, extensionAttribute10="rc-adele-2")
    sandbox.genesys.requests.clear()
    code, out = sync(gallery)
    assert code == 0
    (patch,) = patches(sandbox)
    assert patch.body["Operations"] == [{
        "op": "replace", "path": f'{GENESYS}:externalIds[authority eq "ringcentral"].value',
        "value": "rc-adele-2"}]
    ids = external_ids(held(sandbox, ADELE))
    assert ids["ringcentral"] == "rc-adele-2" and ids["x-pc:scimv2:v1"] == adele["id"]
    assert ids["microsoftteams"] == graph_user(sandbox, ADELE)["id"]

    # an authority the user did not have yet: added to the list, the others kept
    lidia = held(sandbox, LIDIA)
    set_extensions(sandbox, LIDIA, extensionAttribute11="zoom-lidia")
    sandbox.genesys.requests.clear()
    assert sync(gallery)[0] == 0
    (patch,) = patches(sandbox)
    assert patch.body["Operations"] == [{
        "op": "add", "path": f"{GENESYS}:externalIds",
        "value": [{"authority": "zoomphone", "value": "zoom-lidia"}]}]
    assert external_ids(held(sandbox, LIDIA)) == {
        "x-pc:scimv2:v1": lidia["id"], "microsoftteams": graph_user(sandbox, LIDIA)["id"],
        "zoomphone": "zoom-lidia"}

    sandbox.genesys.requests.clear()
    code, out = sync(gallery, "--full", "--dry-run")
    assert code == 0 and out["plan"]["changes"] == []


def test_roles_follow_group_membership_through_the_incremental_path(
        sandbox: Sandbox, gallery: str) -> None:
    assert sync(gallery)[0] == 0
    adele = graph_user(sandbox, ADELE)
    sandbox.graph.add_group_member(group_id(sandbox, SUPERVISORS), adele["id"])
    sandbox.genesys.requests.clear()
    code, out = sync(gallery)
    assert code == 0
    # the snapshot holds last run's roles: a membership change makes the run read the
    # directory (the assignments themselves did not change)
    assert "memberships changed and a mapping reads appRoleAssignments" in out["mode_reason"]
    (patch,) = patches(sandbox)
    assert patch.body["Operations"] == [{"op": "replace", "path": "roles", "value": [
        {"value": "Supervisor"}, {"value": "User"}]}]
    assert sorted(r["value"] for r in held(sandbox, ADELE)["roles"]) == ["Supervisor", "User"]

    sandbox.graph.remove_group_member(group_id(sandbox, SUPERVISORS), adele["id"])
    sandbox.genesys.requests.clear()
    assert sync(gallery)[0] == 0
    (patch,) = patches(sandbox)
    assert held(sandbox, ADELE)["roles"] == [{"value": "User"}]
    sandbox.genesys.requests.clear()
    code, out = sync(gallery)
    assert code == 0 and out["plan"]["changes"] == [] and sandbox.genesys.writes() == []


def test_a_new_assignment_forces_a_full_read_and_patches_the_roles(
        sandbox: Sandbox, gallery: str) -> None:
    assert sync(gallery)[0] == 0
    adele = graph_user(sandbox, ADELE)
    sandbox.graph.app_role_assignments.append(
        {"principalId": adele["id"], "principalType": "User", "appRoleId": SUPERVISOR_ROLE})
    sandbox.genesys.requests.clear()
    code, out = sync(gallery)
    assert code == 0
    assert out["mode"] == "full" and "assignments" in out["mode_reason"]
    (patch,) = patches(sandbox)
    assert patch.body["Operations"] == [{"op": "replace", "path": "roles", "value": [
        {"value": "Supervisor"}, {"value": "User"}]}]


def test_renaming_an_app_role_changes_the_digest(sandbox: Sandbox, gallery: str) -> None:
    assert sync(gallery)[0] == 0
    sandbox.genesys.role_names.add("Team Lead")
    for role in sandbox.graph.service_principal["appRoles"]:
        if role["id"] == SUPERVISOR_ROLE:
            role["displayName"] = "Team Lead"
    sandbox.genesys.requests.clear()
    code, out = sync(gallery)
    assert code == 0 and out["mode"] == "full"
    assert held(sandbox, LIDIA)["roles"] == [{"value": "Team Lead"}]


def test_unknown_division_fails_that_user_with_genesys_reason_and_the_run_goes_on(
        sandbox: Sandbox, gallery: str) -> None:
    set_extensions(sandbox, LIDIA, extensionAttribute9="Atlantis")
    report = Path(gallery).parent / "report.csv"
    result = run_cli("--config", gallery, "sync", "--output", "json", "--report", str(report))
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    failed = [o for o in out["result"]["outcomes"] if o["status"] == "failure"]
    assert [f["identity"] for f in failed] == [LIDIA]
    assert "The division 'Atlantis' does not exist" in failed[0]["error"]
    rows = [row for row in csv.DictReader(report.open(encoding="utf-8"))
            if row["identity"] == LIDIA]
    assert rows and all(r["status"] == "failure" for r in rows)
    assert "The division 'Atlantis' does not exist" in rows[0]["reason"]
    assert held(sandbox, ADELE)[ENTERPRISE]["division"] == "Sales"  # the others went on
    assert not any(u["userName"].lower() == LIDIA for u in sandbox.genesys.users.values())


ENTERPRISE_MAPPINGS = f"""
user:
  - {{target: userName, source: userPrincipalName, match: 1}}
  - {{target: active, expression: "Not([IsSoftDeleted])"}}
  - {{target: displayName, source: displayName}}
  - {{target: "phoneNumbers[type eq 'mobile'].value", source: mobile}}
  - {{target: 'phoneNumbers[type eq “work”].value', source: telephoneNumber}}
  - {{target: 'phoneNumbers[type eq "home"].value', source: extensionAttribute7}}
  - {{target: 'phoneNumbers[type eq "other"].value', source: extensionAttribute8}}
  - {{target: "{ENTERPRISE}:employeeNumber", source: employeeId}}
  - {{target: "{ENTERPRISE}:division", source: extensionAttribute9}}
  - {{target: roles, source: appRoleAssignments}}
"""


def test_core_and_enterprise_gallery_attributes_round_trip_on_scim2_server(
        sandbox: Sandbox, scim2_server: Scim2Server, tmp_path: Path) -> None:
    set_extensions(sandbox, ADELE, extensionAttribute7="+1 425 555 0107",
                   extensionAttribute8="+1 425 555 0108", extensionAttribute9="Sales")
    config = sandbox.config()  # scope: assigned
    config["target"] = {"url": scim2_server.url, "token": scim2_server.token,
                        "flavor": "generic", "rate_limit_per_minute": 0, "concurrency": 4}
    cfg = str(write_config(tmp_path, config, ENTERPRISE_MAPPINGS))
    code, out = sync(cfg)
    assert code == 0, (out["plan"]["failures"], out["result"])
    users = {u["userName"].lower(): u for u in scim2_server.users()}
    adele, source = users[ADELE], graph_user(sandbox, ADELE)
    assert {p["type"]: p["value"] for p in adele["phoneNumbers"]} == {
        "mobile": source["mobilePhone"], "work": source["businessPhones"][0],
        "home": "+1 425 555 0107", "other": "+1 425 555 0108"}  # generic: sent as written
    assert adele[ENTERPRISE]["employeeNumber"] == source["employeeId"]
    assert adele[ENTERPRISE]["division"] == "Sales"
    assert [r["value"] for r in adele["roles"]] == ["User"]
    assert [r["value"] for r in users[LIDIA]["roles"]] == ["Supervisor"]

    scim2_server.requests.clear()
    code, out = sync(cfg, "--full", "--dry-run")
    assert code == 0 and out["plan"]["changes"] == [] and scim2_server.writes() == []

    sandbox.graph.add_group_member(group_id(sandbox, SUPERVISORS), source["id"])
    set_extensions(sandbox, LIDIA, extensionAttribute9="Support")
    scim2_server.requests.clear()
    code, out = sync(cfg)
    assert code == 0
    writes = scim2_server.writes()
    assert sorted(json.loads(w.body)["Operations"][0]["path"] for w in writes) == [
        "roles", f"{ENTERPRISE}:division"]
    assert all(w.method == "PATCH" and len(json.loads(w.body)["Operations"]) == 1
               for w in writes)
    users = {u["userName"].lower(): u for u in scim2_server.users()}
    assert sorted(r["value"] for r in users[ADELE]["roles"]) == ["Supervisor", "User"]
    assert users[LIDIA][ENTERPRISE]["division"] == "Support"
    scim2_server.requests.clear()
    code, out = sync(cfg, "--full", "--dry-run")
    assert code == 0 and out["plan"]["changes"] == []


def test_explain_and_provision_read_the_users_app_roles(sandbox: Sandbox, gallery: str) -> None:
    result = run_cli("--config", gallery, "explain", LIDIA, "--output", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    roles = next(m for m in out["mappings"] if m["target"] == "roles")
    assert roles["value"] == ["Supervisor"]
    assert sandbox.genesys.writes() == []
    result = run_cli("--config", gallery, "provision", LIDIA, "--output", "json")
    assert result.exit_code == 0, result.output
    assert held(sandbox, LIDIA)["roles"] == [{"value": "Supervisor"}]


def test_roles_with_scope_all_read_the_assignments_and_follow_their_changes(
        sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, sandbox.config(scope="all"), MAPPINGS))
    assert sync(cfg)[0] == 0
    assert held(sandbox, LIDIA)["roles"] == [{"value": "Supervisor"}]
    assert held(sandbox, "alex.wilber@contoso.com")["roles"] == [{"value": "employee"}]  # none
    code, out = sync(cfg)
    assert out["mode"] == "incremental" and out["mode_reason"] == "no directory changes"

    adele = graph_user(sandbox, ADELE)
    sandbox.graph.add_group_member(group_id(sandbox, SUPERVISORS), adele["id"])
    sandbox.genesys.requests.clear()
    code, out = sync(cfg)
    assert code == 0 and "mapping reads appRoleAssignments" in out["mode_reason"]
    (patch,) = patches(sandbox)
    assert patch.body["Operations"][0]["path"] == "roles"

    alex = graph_user(sandbox, "alex.wilber@contoso.com")
    sandbox.graph.app_role_assignments.append(
        {"principalId": alex["id"], "principalType": "User", "appRoleId": SUPERVISOR_ROLE})
    sandbox.genesys.requests.clear()
    code, out = sync(cfg)
    assert code == 0 and out["mode"] == "full"
    (patch,) = patches(sandbox)
    assert patch.body["Operations"] == [
        {"op": "replace", "path": "roles", "value": [{"value": "Supervisor"}]}]


def test_app_role_assignments_complex_sends_every_role_and_converges(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """Entra's way to send several roles (``AppRoleAssignmentsComplex``): the role objects
    it builds (primary, type, display, value) reach Genesys as role names, a user with two
    roles gets both, and the next full dry run plans nothing (no perpetual diff on the
    extra keys)."""
    mappings = MAPPINGS.replace(
        "{target: roles, source: appRoleAssignments}",
        "{target: roles, expression: 'AppRoleAssignmentsComplex([appRoleAssignments])'}")
    assert "AppRoleAssignmentsComplex" in mappings
    adele = graph_user(sandbox, ADELE)
    sandbox.graph.app_role_assignments.append(
        {"principalId": adele["id"], "principalType": "User", "appRoleId": SUPERVISOR_ROLE})
    cfg = str(write_config(tmp_path, sandbox.config(), mappings))
    code, out = sync(cfg)
    assert code == 0, out["plan"]["failures"]
    assert sorted(r["value"] for r in held(sandbox, ADELE)["roles"]) == ["Supervisor", "User"]
    assert held(sandbox, LIDIA)["roles"] == [{"value": "Supervisor"}]
    sent = []
    for write in sandbox.genesys.writes():
        if write.method == "POST" and "roles" in write.body:
            sent.append(write.body["roles"])
        sent += [op["value"] for op in write.body.get("Operations", [])
                 if write.method == "PATCH" and op.get("path") == "roles"]
    assert [{"value": "Supervisor"}, {"value": "User"}] in sent  # names only, sorted
    sandbox.genesys.requests.clear()
    code, out = sync(cfg, "--full", "--dry-run")
    assert code == 0 and out["plan"]["changes"] == []
    assert sandbox.genesys.writes() == []

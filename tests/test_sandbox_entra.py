"""The sandbox's Entra provisioning job (issue 13): the synchronization routes of the
sandbox Graph, the two schema files, the emulated initial cycle that pre-populates the
Genesys emulator, and the proof — after Entra's job, genesys-prov's default mappings plan
zero changes."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from genesys_prov.cli import _sandbox_banner, cli, console
from genesys_prov.sandbox import Sandbox
from genesys_prov.sandbox.directory import demo_directory
from genesys_prov.sandbox.entra import e164_directory, load_schema, read_schema
from genesys_prov.sandbox.entra.schema import source_expression
from genesys_prov.sandbox.graph.synchronization import execution
from tests.conftest import run_cli, write_config

pytestmark = pytest.mark.e2e

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
DATA = Path(__file__).resolve().parent / "data"
GALLERY_USER = [
    ("userName", "[userPrincipalName]", 1),
    ("active", 'Switch([IsSoftDeleted], , "False", "True", "True", "False")', 0),
    ("displayName", "[displayName]", 0),
    ('emails[type eq "work"].value', "[mail]", 0),
    ("title", "[jobTitle]", 0),
    ('phoneNumbers[type eq "mobile"].value', "[mobile]", 0),
    ('phoneNumbers[type eq "work"].value', "[telephoneNumber]", 0),
    (f"{ENTERPRISE}:department", "[department]", 0),
    (f"{ENTERPRISE}:manager", "[manager]", 0),
]
GALLERY_GROUP = [("displayName", "[displayName]", 1), ("externalId", "[objectId]", 0),
                 ("members", "[members]", 0)]
#: Who the demo directory entitles (assigned directly or via an assigned group, direct
#: members only, Default Access excluded): megan (Default Access only), nestor and alex
#: (in no assigned group) are not; debra and diego are disabled.
ENTITLED_ENABLED = {
    "lidia", "patti", "adele", "lee", "zoe", "grady", "johanna", "joni", "isaiah", "miriam",
    "pradeep", "lynne", "henrietta", "christie", "enrico", "allan", "irvin", "aoife", "ben",
    "kenji"}


def upn(key: str) -> str:
    """The demo user's userPrincipalName for a first-name key."""
    return next(u["userPrincipalName"] for u in demo_directory()["users"]
                if u["userPrincipalName"].split(".")[0] == key)


@pytest.fixture
def gallery(tmp_path: Path) -> Iterator[Sandbox]:
    """The demo sandbox after Entra's job with the gallery schema."""
    with Sandbox(workdir=tmp_path, entra_job="gallery") as sb:
        yield sb


def graph_get(sb: Sandbox, path: str, **params: str) -> requests.Response:
    """One Graph GET with a fresh token (carrying the permissions granted now)."""
    http = requests.Session()
    http.verify = str(sb.ca_bundle)
    http.trust_env = False
    token = http.post(
        f"{sb.authority_host}/{sb.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": sb.client_id,
              "client_secret": sb.client_secret, "scope": f"{sb.graph_url}/.default"},
    ).json()["access_token"]
    return http.get(f"{sb.graph_url}/v1.0{path}", params=params or None,
                    headers={"Authorization": f"Bearer {token}"})


def jobs_path(sb: Sandbox) -> str:
    """The job list of the sandbox's enterprise app."""
    return f"/servicePrincipals/{sb.service_principal_id}/synchronization/jobs"


def genesys_user(sb: Sandbox, user_name: str) -> dict[str, Any]:
    """The Genesys emulator's user with this userName (exactly one)."""
    found = [u for u in sb.genesys.users.values() if u["userName"] == user_name]
    assert len(found) == 1, (user_name, len(found))
    return found[0]


def group_members(sb: Sandbox, name: str) -> set[str]:
    """userNames of a Genesys group's members."""
    group = next(g for g in sb.genesys.groups.values() if g["displayName"] == name)
    return {sb.genesys.users[m["value"]]["userName"] for m in group.get("members", [])}


def mapping_rows(object_mapping: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(target, expression, matchingPriority) of an objectMapping's attribute mappings."""
    return [(m["targetAttributeName"], m["source"]["expression"], m["matchingPriority"])
            for m in object_mapping["attributeMappings"]]


def dry_run(sb: Sandbox, directory: Path, mappings: str | None = None) -> dict[str, Any]:
    """``sync --dry-run --full --output json`` against the sandbox; the parsed output."""
    path = write_config(directory, sb.config(), mappings)
    result = run_cli("--config", str(path), "sync", "--dry-run", "--full", "--output", "json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def changes(plan: dict[str, Any]) -> dict[str, int]:
    """The plan's counts of changes (everything that would be written)."""
    names = ("create", "update", "reactivate", "deactivate", "delete", "group create",
             "group update", "members added", "members removed")
    return {name: plan["counts"][name] for name in names}


NO_CHANGES = {name: 0 for name in ("create", "update", "reactivate", "deactivate", "delete",
                                   "group create", "group update", "members added",
                                   "members removed")}


def test_the_schema_files_hold_the_gallery_default_and_the_customisation() -> None:
    gallery, custom = load_schema("gallery"), load_schema("customised")
    for schema in (gallery, custom):
        (rule,) = schema["synchronizationRules"]
        assert (rule["sourceDirectoryName"], rule["targetDirectoryName"]) == (
            "Azure Active Directory", "customappsso")
        assert [m["name"] for m in rule["objectMappings"]] == [
            "Provision Azure Active Directory Users", "Provision Azure Active Directory Groups"]
        assert mapping_rows(rule["objectMappings"][1]) == GALLERY_GROUP
    users, _ = gallery["synchronizationRules"][0]["objectMappings"]
    assert mapping_rows(users) == GALLERY_USER and users["scope"] is None
    assert {m["flowType"] for m in users["attributeMappings"]} == {"Always"}
    users, _ = custom["synchronizationRules"][0]["objectMappings"]
    by_target = {m["targetAttributeName"]: m for m in users["attributeMappings"]}
    assert by_target["displayName"]["source"]["expression"] == 'Join(" ", [givenName], [surname])'
    assert by_target["title"]["defaultValue"] == "Contact Centre Agent"
    assert by_target[f"{ENTERPRISE}:employeeNumber"]["flowType"] == "ObjectAddOnly"
    assert by_target['emails[type eq "work"].value']["matchingPriority"] == 2
    groups = [[(c["sourceOperandName"], c["operatorName"], c["targetOperand"]["values"])
               for c in g["clauses"]] for g in users["scope"]["groups"]]
    assert groups == [
        [("department", "EQUALS", ["Sales"]), ("accountEnabled", "IS TRUE", [])],
        [("department", "REGEX MATCH", ["^(Support|Workforce Management)$"]),
         ("employeeId", "IS NOT NULL", [])]]
    with pytest.raises(ValueError, match="schema kind"):
        load_schema("default")


def test_a_function_without_its_expression_is_rebuilt_from_its_parameters() -> None:
    schema = load_schema("gallery")
    mapping = schema["synchronizationRules"][0]["objectMappings"][0]["attributeMappings"][1]
    source = copy.deepcopy(mapping["source"])

    def strip(node: dict[str, Any]) -> None:
        node.pop("expression", None)
        for parameter in node.get("parameters", []):
            strip(parameter["value"])

    strip(source)
    assert source_expression(source) == mapping["source"]["expression"]
    assert source_expression({"type": "Constant", "name": 'a "b" \\'}) == '"a \\"b\\" \\\\"'
    flows = read_schema(schema).users
    assert flows is not None
    active = next(f for f in flows.flows if f.target == "active")
    assert active.value({"accountEnabled": True}) is True
    assert active.value({"accountEnabled": False}) is False


def test_the_job_list_the_job_and_its_schema(gallery: Sandbox) -> None:
    listing = graph_get(gallery, jobs_path(gallery))
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert body["@odata.context"].endswith("/synchronization/jobs")
    (job,) = body["value"]
    assert re.fullmatch(r"PureCloudByGenesys\.[0-9a-f]{32}\.[0-9a-f]{32}", job["id"])
    assert job["templateId"] == "PureCloudByGenesys"
    assert job["schedule"] == {"expiration": None, "interval": "PT40M", "state": "Active"}
    status = job["status"]
    assert status["code"] == "Active" and status["quarantine"] is None
    last = status["lastExecution"]
    # one cycle ran: 20 users entitled and in scope (+ 2 disabled), one group failed (405)
    assert (last["countEntitled"], last["state"]) == (22, "Warning")
    assert last["countExported"] == gallery.entra_report.writes  # type: ignore[union-attr]
    single = graph_get(gallery, f"{jobs_path(gallery)}/{job['id']}")
    assert single.status_code == 200 and single.json()["id"] == job["id"]
    schema = graph_get(gallery, f"{jobs_path(gallery)}/{job['id']}/schema")
    assert schema.status_code == 200
    served = schema.json()
    assert served.pop("@odata.context").endswith("/schema/$entity")
    assert served == {**load_schema("gallery"), "id": job["id"]}


def test_without_entra_job_the_app_has_no_job(tmp_path: Path) -> None:
    with Sandbox(workdir=tmp_path) as sb:
        assert sb.entra_report is None
        assert graph_get(sb, jobs_path(sb)).json()["value"] == []
        missing = graph_get(sb, f"{jobs_path(sb)}/PureCloudByGenesys.{'0' * 32}.{'0' * 32}")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "ResourceNotFound"
    with pytest.raises(ValueError, match="entra_job"):
        Sandbox(entra_job="default")


def test_unknown_ids_and_query_options_are_refused(gallery: Sandbox) -> None:
    job_id = gallery.graph.synchronization_job.id  # type: ignore[union-attr]
    assert graph_get(gallery, f"{jobs_path(gallery)}/Other.{'1' * 32}").status_code == 404
    other_sp = graph_get(gallery, f"/servicePrincipals/{'1' * 8}-1111-1111-1111-{'1' * 12}"
                                  "/synchronization/jobs")
    assert other_sp.status_code == 404
    refused = graph_get(gallery, f"{jobs_path(gallery)}/{job_id}/schema", **{"$select": "id"})
    assert refused.status_code == 400


def test_reading_the_job_needs_synchronization_read_all(gallery: Sandbox) -> None:
    job_id = gallery.graph.synchronization_job.id  # type: ignore[union-attr]
    paths = [jobs_path(gallery), f"{jobs_path(gallery)}/{job_id}",
             f"{jobs_path(gallery)}/{job_id}/schema"]
    gallery.graph.granted_permissions.discard("Synchronization.Read.All")
    for path in paths:
        denied = graph_get(gallery, path)
        assert denied.status_code == 403, path
        assert denied.json()["error"]["code"] == "Authorization_RequestDenied"
    # the users can still be read: only the job needs the permission
    assert graph_get(gallery, "/users").status_code == 200
    gallery.graph.granted_permissions.add("Synchronization.ReadWrite.All")
    assert [graph_get(gallery, p).status_code for p in paths] == [200, 200, 200]


def test_a_test_sets_the_job_state(gallery: Sandbox) -> None:
    graph = gallery.graph
    graph.set_synchronization_state("Paused")
    job = graph_get(gallery, jobs_path(gallery)).json()["value"][0]
    assert (job["status"]["code"], job["schedule"]["state"]) == ("Paused", "Disabled")
    graph.set_synchronization_state(
        "Quarantine", reason="EncounteredEscrowProportionThreshold",
        error=("SystemForCrossDomainIdentityManagementServiceIncompatible", "HTTP 401"),
        last_execution=execution(entitled=20, exported=0, imported=29, state="Failed"))
    status = graph_get(gallery, jobs_path(gallery)).json()["value"][0]["status"]
    assert status["code"] == "Quarantine"
    assert status["quarantine"]["reason"] == "EncounteredEscrowProportionThreshold"
    assert status["quarantine"]["error"]["message"] == "HTTP 401"
    assert (status["lastExecution"]["state"], status["lastExecution"]["countExported"]) == (
        "Failed", 0)
    # a failed cycle is not a successful one: the first cycle stays the last success
    assert status["lastSuccessfulExecution"]["state"] == "Warning"
    graph.set_synchronization_state("Active")
    assert graph_get(gallery, jobs_path(gallery)).json()["value"][0]["status"][
        "quarantine"] is None
    with pytest.raises(ValueError, match="job state"):
        graph.set_synchronization_state("Running")
    with pytest.raises(ValueError, match="quarantine reason"):
        graph.set_synchronization_state("Quarantine", reason="Because")


def test_entra_job_creates_updates_and_skips_like_entra(gallery: Sandbox) -> None:
    report = gallery.entra_report
    assert report is not None
    assert gallery.genesys.requests == []   # the job's own requests are not in the log
    assert set(report.updated) == {upn("adele"), upn("lee")}   # matched by userName
    assert set(report.created) == {upn(k) for k in ENTITLED_ENABLED} - set(report.updated)
    assert dict(report.skipped) == {
        upn("megan"): "invalid permission: only the Default Access role",
        upn("debra"): "disabled in the directory, not in Genesys",
        upn("diego"): "disabled in the directory, not in Genesys"}
    names = {u["userName"] for u in gallery.genesys.users.values()}
    assert names == {upn(k) for k in ENTITLED_ENABLED} | {"frontdesk.kiosk@contoso.com"}
    adele, lee = genesys_user(gallery, upn("adele")), genesys_user(gallery, upn("lee"))
    assert adele["title"] == "Senior Sales Representative"      # the outdated title fixed
    assert lee["active"] is True                                  # reactivated
    kenji = genesys_user(gallery, upn("kenji"))
    assert {p["type"]: p["value"] for p in kenji["phoneNumbers"]} == {
        "mobile": "+819012345678", "work": "+81312345678"}
    assert kenji["title"] == "Support Agent" and kenji[ENTERPRISE]["department"] == "Support"
    assert kenji["displayName"] == "Kenji Tanaka" and kenji["active"] is True
    assert {"type": "work", "value": upn("kenji")} in kenji["emails"]
    # nulls are never sent: no mail, no mobile
    assert not [e for e in genesys_user(gallery, upn("pradeep"))["emails"]
                if e["type"] == "work"]
    assert {p["type"] for p in genesys_user(gallery, upn("johanna"))["phoneNumbers"]} == {
        "work"}


def test_entra_job_sets_managers_and_memberships(gallery: Sandbox) -> None:
    report = gallery.entra_report
    assert report is not None
    kenji, ben = genesys_user(gallery, upn("kenji")), genesys_user(gallery, upn("ben"))
    assert kenji[ENTERPRISE]["manager"]["value"] == ben["id"]
    assert report.managers[upn("kenji")] == upn("ben")
    # a manager who is not provisioned is left unset (megan: Default Access only)
    assert "manager" not in genesys_user(gallery, upn("allan"))[ENTERPRISE]
    assert upn("allan") not in report.managers
    assert group_members(gallery, "Sales Agents") == {
        upn(k) for k in ("adele", "lee", "zoe", "grady", "johanna", "irvin")}
    assert group_members(gallery, "Support Agents") == {
        upn(k) for k in ("joni", "isaiah", "miriam", "pradeep", "lynne", "henrietta",
                         "enrico", "aoife", "kenji")}
    assert group_members(gallery, "Supervisors") == {upn(k) for k in ("lidia", "patti", "ben")}
    assert upn("adele") not in report.members["Sales Agents"]  # already a member
    directory_groups = {g["displayName"]: g["id"] for g in gallery.graph.groups}
    for group in gallery.genesys.groups.values():
        assert group["externalId"] == directory_groups[group["displayName"]]
    (failure,) = report.failures
    assert (failure.kind, failure.identity, failure.status) == ("group", "Nested Team", 405)
    assert "cannot be created" in failure.reason


def test_a_value_genesys_refuses_fails_that_user_only(tmp_path: Path) -> None:
    directory = e164_directory(demo_directory())
    kenji = next(u for u in directory["users"] if u["userPrincipalName"] == upn("kenji"))
    kenji["mobilePhone"] = "+81 90-1234-5678"   # as written in the directory, not E.164
    with Sandbox(workdir=tmp_path, directory=directory, entra_job="gallery") as sb:
        report = sb.entra_report
        assert report is not None
        (failure,) = [f for f in report.failures if f.kind == "user"]
        assert (failure.identity, failure.status) == (upn("kenji"), 400)
        assert failure.code == "SystemForCrossDomainIdentityManagementBadRequest"
        assert "+81 90-1234-5678" in failure.reason
        assert failure.sent is not None and failure.sent["userName"] == upn("kenji")
        assert upn("kenji") not in {u["userName"] for u in sb.genesys.users.values()}
        assert upn("kenji") not in group_members(sb, "Support Agents")
        assert graph_get(sb, jobs_path(sb)).json()["value"][0]["status"]["lastExecution"][
            "state"] == "Warning"
        # genesys-prov writes the number in E.164: the one thing left to do is Kenji
        plan = dry_run(sb, tmp_path)["plan"]
        assert changes(plan) == {**NO_CHANGES, "create": 1, "group update": 1,
                                 "members added": 1}
        (group_change,) = plan["group_changes"]
        assert group_change["identity"] == "Support Agents"
        (create,) = plan["changes"]
        assert create["identity"] == upn("kenji")
        new = {a["attribute"]: a["new"] for a in create["attributes"]}
        assert new['phoneNumbers[type eq "mobile"].value'] == "+819012345678"
        assert sb.genesys.writes() == []


def test_customised_schema_scope_defaults_add_only_and_second_match(tmp_path: Path) -> None:
    directory = e164_directory(demo_directory())
    # a Genesys user Entra finds only by the second matching attribute (the work email)
    directory["genesys"]["users"].append({
        "userName": "g.archie@contoso.com", "displayName": "G Archie", "active": True,
        "emails": [{"type": "work", "value": upn("grady")}]})
    with Sandbox(workdir=tmp_path, directory=directory, entra_job="customised") as sb:
        report = sb.entra_report
        assert report is not None
        assert dict(report.skipped) == {
            upn("megan"): "invalid permission: only the Default Access role",
            upn("debra"): "out of the scoping filter",       # Sales, but disabled
            upn("allan"): "out of the scoping filter",       # IT
            upn("diego"): "disabled in the directory, not in Genesys"}
        assert upn("grady") in report.updated and upn("grady") not in report.created
        grady = genesys_user(sb, upn("grady"))
        assert grady["displayName"] == "Grady Archie"            # Join([givenName], [surname])
        assert "employeeNumber" not in grady[ENTERPRISE]         # add-only: not on update
        christie = genesys_user(sb, upn("christie"))
        assert christie["title"] == "Contact Centre Agent"       # defaultValue (no jobTitle)
        assert christie[ENTERPRISE]["employeeNumber"] == "E1019"  # add-only: on create
        assert "employeeNumber" not in genesys_user(sb, upn("adele"))[ENTERPRISE]


def test_the_proof_default_mappings_plan_nothing_after_the_gallery_job(
        gallery: Sandbox, tmp_path: Path) -> None:
    """After Entra's job with the gallery schema, genesys-prov's default mappings.yaml
    (the gallery default, with Not([IsSoftDeleted]) for Entra's Switch) plans zero changes:
    every user is matched by userName and holds what genesys-prov would send."""
    data = dry_run(gallery, tmp_path)
    plan = data["plan"]
    assert changes(plan) == NO_CHANGES
    assert plan["changes"] == [] and plan["group_changes"] == [] and plan["failures"] == []
    assert plan["counts"]["unchanged"] == len(ENTITLED_ENABLED)
    # what neither engine provisions, each says why
    skipped = {(s["kind"], s["identity"]) for s in plan["skipped"]}
    assert {("user", upn("megan")), ("user", upn("debra")), ("user", upn("diego")),
            ("group", "Nested Team")} <= skipped
    assert [u["userName"] for u in plan["unmanaged"]] == ["frontdesk.kiosk@contoso.com"]
    assert gallery.genesys.writes() == []


def test_the_customised_job_matches_the_same_mappings_written_by_hand(tmp_path: Path) -> None:
    """The customised schema written by hand as mappings.yaml plans nothing after the
    customised job: the emulated job and genesys-prov agree on scope, expressions,
    defaults, add-only values and matching."""
    with Sandbox(workdir=tmp_path, entra_job="customised") as sb:
        mappings = (DATA / "entra_customised_mappings.yaml").read_text(encoding="utf-8")
        plan = dry_run(sb, tmp_path, mappings)["plan"]
        assert changes(plan) == NO_CHANGES
        assert plan["counts"]["out_of_scope"] >= 2
        assert sb.genesys.writes() == []


def test_reset_genesys_runs_the_job_again(gallery: Sandbox) -> None:
    before = {u["userName"] for u in gallery.genesys.users.values()}
    gallery.genesys.users.clear()
    fresh = gallery.reset_genesys()
    assert {u["userName"] for u in fresh.users.values()} == before
    assert fresh.requests == []


def test_the_sandbox_command_takes_entra_job(gallery: Sandbox, tmp_path: Path) -> None:
    help_text = run_cli("sandbox", "--help").stdout
    assert "--entra-job [gallery|customised]" in help_text
    wrong = run_cli("sandbox", "--entra-job", "default", "--dir", str(tmp_path))
    assert wrong.exit_code == 2
    path = write_config(tmp_path, gallery.config())
    with console.capture() as captured:
        _sandbox_banner(gallery, path)
    text = captured.get()
    job_id = gallery.graph.synchronization_job.id  # type: ignore[union-attr]
    assert f"Entra job:        gallery schema, job {job_id}" in text
    assert f"/v1.0/servicePrincipals/{gallery.service_principal_id}/synchronization/jobs" in text
    assert "Genesys as its first cycle left it: 18 created, 2 updated, 1 failed" in text
    assert cli.commands["sandbox"] is not None

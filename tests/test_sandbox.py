"""The sandbox emulators, exercised over real HTTPS (requests + the sandbox CA, and MSAL)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msal
import pytest
import requests

from genesys_prov.sandbox import Sandbox, generate_directory
from genesys_prov.sandbox._ranked import RankedSet
from genesys_prov.sandbox.directory import demo_directory
from genesys_prov.sandbox.scim import ERROR_SCHEMA, PATCH_SCHEMA, parse_filter

pytestmark = pytest.mark.e2e

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "demo-directory.json"


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Sandbox]:
    """A fresh demo sandbox per test (starting one takes a few milliseconds)."""
    with Sandbox(workdir=tmp_path) as sandbox:
        yield sandbox


def session(sandbox: Sandbox) -> requests.Session:
    """A session trusting only the sandbox CA (and ignoring REQUESTS_CA_BUNDLE & co.)."""
    http = requests.Session()
    http.verify = str(sandbox.ca_bundle)
    http.trust_env = False
    return http


def graph_token(sandbox: Sandbox) -> str:
    """An access token from the emulated Entra token endpoint (plain OAuth, no MSAL)."""
    reply = session(sandbox).post(
        f"{sandbox.authority_host}/{sandbox.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": sandbox.client_id,
              "client_secret": sandbox.client_secret, "scope": f"{sandbox.graph_url}/.default"},
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


class Graph:
    """A tiny authenticated Graph client for the tests."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = session(sandbox)
        self.http.headers["Authorization"] = f"Bearer {graph_token(sandbox)}"

    def get(self, path: str, **params: str) -> requests.Response:
        url = path if path.startswith("https://") else f"{self.sandbox.graph_url}/v1.0{path}"
        return self.http.get(url, params=params or None)


class Scim:
    """A tiny authenticated SCIM client for the tests (static token)."""

    def __init__(self, sandbox: Sandbox, token: str | None = None) -> None:
        self.base = sandbox.genesys_url
        self.http = session(sandbox)
        self.http.headers["Authorization"] = f"Bearer {token or sandbox.genesys_static_token}"

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.http.request(method, self.base + path, json=body, **kwargs)

    def find(self, user_name: str) -> list[dict[str, Any]]:
        query = {"filter": f"userName eq {json.dumps(user_name)}"}
        reply = self.request("GET", "/Users", params=query)
        assert reply.status_code == 200, reply.text
        resources: list[dict[str, Any]] = reply.json()["Resources"]
        return resources

    def create(self, user_name: str, **extra: Any) -> dict[str, Any]:
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": user_name, "displayName": extra.pop("displayName", "Test User"),
                **extra}
        reply = self.request("POST", "/Users", body)
        assert reply.status_code == 201, reply.text
        created: dict[str, Any] = reply.json()
        return created

    def patch(self, user_id: str, *operations: dict[str, Any], **kwargs: Any) -> Any:
        return self.request("PATCH", f"/Users/{user_id}",
                            {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}, **kwargs)


def assert_scim_error(reply: requests.Response, status: int, scim_type: str | None) -> str:
    """Check the RFC 7644 error body; returns the detail."""
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/scim+json")
    body = reply.json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    detail: str = body["detail"]
    return detail


# --------------------------------------------------------------------------- Graph


def test_msal_acquires_a_token_and_a_wrong_secret_fails(sb: Sandbox) -> None:
    authority = f"{sb.authority_host}/{sb.tenant_id}"
    app = msal.ConfidentialClientApplication(
        sb.client_id, client_credential=sb.client_secret, authority=authority,
        instance_discovery=False, http_client=session(sb),
    )
    result = app.acquire_token_for_client(scopes=[f"{sb.graph_url}/.default"])
    assert result["token_type"] == "Bearer"
    reply = session(sb).get(f"{sb.graph_url}/v1.0/users",
                            headers={"Authorization": f"Bearer {result['access_token']}"})
    assert reply.status_code == 200

    wrong = msal.ConfidentialClientApplication(
        sb.client_id, client_credential="not-the-secret", authority=authority,
        instance_discovery=False, http_client=session(sb),
    )
    failed = wrong.acquire_token_for_client(scopes=[f"{sb.graph_url}/.default"])
    assert failed["error"] == "invalid_client"
    assert failed["error_description"].startswith("AADSTS7000215: Invalid client secret")
    token_posts = [r for r in sb.graph.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert token_posts[-1].status == 401
    assert token_posts[-1].body["client_secret"] == "[redacted]"


def test_msal_certificate_credential(sb: Sandbox) -> None:
    pem_path, thumbprint = sb.issue_client_certificate()
    app = msal.ConfidentialClientApplication(
        sb.client_id,
        client_credential={"private_key": pem_path.read_text(), "thumbprint": thumbprint},
        authority=f"{sb.authority_host}/{sb.tenant_id}", instance_discovery=False,
        http_client=session(sb),
    )
    result = app.acquire_token_for_client(scopes=[f"{sb.graph_url}/.default"])
    assert "access_token" in result, result
    sb.graph.certificate_thumbprints = {"0" * 40}
    app.token_cache = msal.TokenCache()
    other = msal.ConfidentialClientApplication(
        sb.client_id,
        client_credential={"private_key": pem_path.read_text(), "thumbprint": thumbprint},
        authority=f"{sb.authority_host}/{sb.tenant_id}", instance_discovery=False,
        http_client=session(sb),
    )
    assert other.acquire_token_for_client(scopes=[f"{sb.graph_url}/.default"])["error"] == (
        "invalid_client"
    )


def test_graph_paging_with_top_and_select(sb: Sandbox) -> None:
    graph = Graph(sb)
    seen: list[dict[str, Any]] = []
    reply = graph.get("/users", **{"$select": "id,userPrincipalName,accountEnabled",
                                    "$top": "10"})
    pages = 0
    while True:
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["@odata.context"].endswith("#users(id,userPrincipalName,accountEnabled)")
        seen.extend(body["value"])
        pages += 1
        if "@odata.nextLink" not in body:
            break
        assert "$skiptoken=" in body["@odata.nextLink"]
        reply = graph.get(body["@odata.nextLink"])
    assert pages == 3
    assert [u["id"] for u in seen] == [u["id"] for u in sb.graph.users]
    assert all(set(u) == {"id", "userPrincipalName", "accountEnabled"} for u in seen)

    default = graph.get("/users", **{"$top": "1"}).json()["value"][0]
    assert set(default) == {"businessPhones", "displayName", "givenName", "jobTitle", "mail",
                            "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                            "userPrincipalName", "id"}
    assert graph.get("/users", **{"$select": "displayName"}).json()["value"][0].keys() == {
        "id", "displayName"}
    for bad in ({"$top": "1000"}, {"$top": "0"}, {"$select": "id,shoeSize"},
                {"$select": "manager"}, {"$filter": "accountEnabled eq true"}):
        failed = graph.get("/users", **bad)
        assert failed.status_code == 400, bad
        assert set(failed.json()["error"]) == {"code", "message", "innerError"}


def test_graph_manager_expand_members_and_assignments(sb: Sandbox) -> None:
    graph = Graph(sb)
    directory = {u["id"]: u for u in sb.graph.users}
    users = graph.get("/users", **{"$select": "id", "$expand": "manager($select=id)"}).json()
    for user in users["value"]:
        expected = directory[user["id"]]["manager"]
        if expected is None:
            assert "manager" not in user
        else:
            assert user["manager"] == {"@odata.type": "#microsoft.graph.user", "id": expected}
    adele = next(u for u in sb.graph.users if u["userPrincipalName"].startswith("adele."))
    manager = graph.get(f"/users/{adele['id']}/manager", **{"$select": "id"}).json()
    assert manager["id"] == adele["manager"]
    ceo = next(u for u in sb.graph.users if u["manager"] is None)
    assert graph.get(f"/users/{ceo['id']}/manager").status_code == 404
    assert graph.get(f"/users/{adele['userPrincipalName'].upper()}").json()["id"] == adele["id"]

    nested = next(g for g in sb.graph.groups if g["displayName"] == "Nested Team")
    direct = graph.get(f"/groups/{nested['id']}/members", **{"$select": "id"}).json()["value"]
    assert [m["@odata.type"] for m in direct] == [
        "#microsoft.graph.user", "#microsoft.graph.user", "#microsoft.graph.group"]
    transitive = graph.get(f"/groups/{nested['id']}/transitiveMembers",
                           **{"$select": "id,displayName"}).json()["value"]
    assert len(transitive) == 3 + 3  # 2 users + Supervisors + its 3 members
    assignments = graph.get(
        f"/servicePrincipals/{sb.service_principal_id}/appRoleAssignedTo").json()["value"]
    assert {a["principalType"] for a in assignments} == {"User", "Group"}
    assert all(a["resourceId"] == sb.service_principal_id for a in assignments)


def test_graph_requires_a_token(sb: Sandbox) -> None:
    reply = session(sb).get(f"{sb.graph_url}/v1.0/users")
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "InvalidAuthenticationToken"
    reply = session(sb).get(f"{sb.graph_url}/v1.0/users",
                            headers={"Authorization": "Bearer forged"})
    assert reply.status_code == 401
    graph = Graph(sb)
    sb.graph.expire_tokens()
    assert graph.get("/users").status_code == 401


def test_graph_throttle_injection(sb: Sandbox) -> None:
    graph = Graph(sb)
    sb.graph.throttle_next(2, retry_after=3, status=503)
    first, second, third = (graph.get("/users") for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.headers["Retry-After"] == "3"
    sb.graph.throttle_next(1)
    throttled = graph.get("/groups")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert sb.graph.counts["status 429"] == 1


# --------------------------------------------------------------------------- Genesys: auth


def test_genesys_oauth_and_static_token(sb: Sandbox) -> None:
    http = session(sb)
    good = http.post(sb.genesys_token_url, auth=(sb.genesys_client_id, sb.genesys_client_secret),
                     data={"grant_type": "client_credentials"})
    assert good.status_code == 200
    assert good.json()["token_type"] == "bearer"
    assert good.json()["expires_in"] == 86400
    bad = http.post(sb.genesys_token_url, auth=(sb.genesys_client_id, "wrong"),
                    data={"grant_type": "client_credentials"})
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"

    assert Scim(sb, good.json()["access_token"]).request("GET", "/Users").status_code == 200
    assert Scim(sb).request("GET", "/Users").status_code == 200
    detail = assert_scim_error(http.get(f"{sb.genesys_url}/Users"), 401, None)
    assert "token" in detail
    assert_scim_error(Scim(sb, "forged").request("GET", "/Users"), 401, None)
    for public in ("/Schemas", "/ResourceTypes", "/ServiceProviderConfig"):
        assert http.get(sb.genesys_url + public).status_code == 200
    sb.genesys.expire_tokens()
    assert Scim(sb, good.json()["access_token"]).request("GET", "/Users").status_code == 401
    assert sb.genesys.writes() == []


def test_genesys_discovery_documents(sb: Sandbox) -> None:
    http = session(sb)
    schemas = http.get(sb.genesys_url + "/Schemas").json()["Resources"]
    by_id = {s["id"]: s for s in schemas}
    assert set(by_id) == {
        "urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE,
        "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
    }
    for schema in schemas:
        for attribute in schema["attributes"]:
            assert {"name", "type", "multiValued", "mutability"} <= set(attribute)
    spc = http.get(sb.genesys_url + "/ServiceProviderConfig").json()
    assert spc["patch"]["supported"] and spc["etag"]["supported"]
    assert not spc["bulk"]["supported"]
    assert spc["filter"] == {"supported": True, "maxResults": 100}
    user_type = http.get(sb.genesys_url + "/ResourceTypes/User").json()
    assert user_type["endpoint"] == "/Users"


# --------------------------------------------------------------------------- Genesys: listing


def test_unfiltered_list_hides_inactive_users(sb: Sandbox) -> None:
    scim = Scim(sb)
    listed = scim.request("GET", "/Users").json()
    names = {u["userName"] for u in listed["Resources"]}
    assert names == {"adele.vance@contoso.com", "frontdesk.kiosk@contoso.com"}
    assert listed["totalResults"] == 2
    inactive = scim.request("GET", "/Users", params={"filter": "active eq false"}).json()
    assert [u["userName"] for u in inactive["Resources"]] == ["lee.gu@contoso.com"]
    found = scim.find("Lee.Gu@Contoso.com")  # filtered look-ups see inactive users too
    assert [u["active"] for u in found] == [False]
    assert_scim_error(scim.request("GET", "/Users", params={"filter": "active eq true"}),
                      400, "invalidFilter")


def test_page_size_over_25_is_cut_unless_trimmed(sb: Sandbox) -> None:
    scim = Scim(sb)
    for number in range(30):
        scim.create(f"agent{number:02d}@contoso.com")
    cut = scim.request("GET", "/Users", params={"count": "26"})
    assert cut.status_code == 200, cut.text
    assert (cut.json()["totalResults"], cut.json()["startIndex"], cut.json()["itemsPerPage"],
            len(cut.json()["Resources"])) == (32, 1, 25, 25)
    tail = scim.request("GET", "/Users", params={"count": "100", "startIndex": "26"}).json()
    assert (tail["totalResults"], tail["startIndex"], tail["itemsPerPage"]) == (32, 26, 7)
    groups = scim.request("GET", "/Groups", params={"count": "1000"})
    assert groups.status_code == 200 and groups.json()["itemsPerPage"] == 3
    trimmed = scim.request("GET", "/Users",
                           params={"count": "26", "attributes": "userName"}).json()
    assert trimmed["itemsPerPage"] == 26
    excluded = scim.request("GET", "/Users", params={
        "count": "50", "excludedAttributes": "groups,roles", "startIndex": "26"}).json()
    assert excluded["totalResults"] == 32
    assert excluded["startIndex"] == 26
    assert excluded["itemsPerPage"] == 7
    assert default_page(scim)["itemsPerPage"] == 25
    only_total = scim.request("GET", "/Users", params={"count": "0"}).json()
    assert only_total["totalResults"] == 32
    assert only_total["Resources"] == []


def test_expensive_attributes_page_limit(sb: Sandbox) -> None:
    scim = Scim(sb)
    for number in range(12):
        scim.create(f"agent{number:02d}@contoso.com")
    assert scim.request("GET", "/Users", params={"count": "20"}).status_code == 200  # off
    sb.genesys.expensive_page_limit = 10
    genesys_ext = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"
    for params in ({"count": "20"},  # untrimmed: every attribute, expensive ones included
                   {"count": "11", "attributes": "userName,roles"},
                   {"count": "20", "attributes": f"userName,{ENTERPRISE}:manager"},
                   {"count": "20", "attributes": genesys_ext},
                   {"count": "20", "attributes": "externalId", "filter": 'userName eq "x@y.z"'},
                   {"count": "20", "excludedAttributes": "roles,externalId"}):
        refused = scim.request("GET", "/Users", params=params)
        detail = assert_scim_error(refused, 429, None)
        assert "internal resource limits" in detail, params
        assert "Retry-After" not in refused.headers
    for params in ({"count": "10"},
                   {"count": "20", "attributes": f"userName,emails,{ENTERPRISE}:department"},
                   {"count": "20", "excludedAttributes":
                    f"roles,externalId,{ENTERPRISE}:manager,{genesys_ext}"}):
        reply = scim.request("GET", "/Users", params=params)
        assert reply.status_code == 200, (params, reply.text)
    assert reply.json()["itemsPerPage"] == 14  # 2 demo users + 12
    assert_scim_error(scim.request("GET", "/Groups", params={"count": "11"}), 429, None)
    assert scim.request("GET", "/Groups", params={
        "count": "11", "attributes": "displayName"}).status_code == 200


def test_attribute_list_accepts_meta_sub_attributes(sb: Sandbox) -> None:
    scim = Scim(sb)
    listed = scim.request("GET", "/Users", params={"attributes": "userName,meta.version"})
    assert listed.status_code == 200, listed.text
    for user in listed.json()["Resources"]:
        assert set(user) == {"schemas", "id", "userName", "active", "meta"}
        assert user["meta"]["version"].startswith('W/"')
    group = scim.request("GET", "/Groups", params={"attributes": "displayName,meta.version"})
    assert group.status_code == 200 and "version" in group.json()["Resources"][0]["meta"]


def default_page(scim: Scim) -> dict[str, Any]:
    """GET /Users with no paging parameters."""
    page: dict[str, Any] = scim.request("GET", "/Users").json()
    return page


def test_attributes_and_excluded_attributes(sb: Sandbox) -> None:
    scim = Scim(sb)
    user = scim.request("GET", "/Users", params={
        "filter": 'userName eq "adele.vance@contoso.com"',
        "attributes": f"title,emails.value,{ENTERPRISE}:department"}).json()["Resources"][0]
    assert set(user) == {"schemas", "id", "userName", "active", "meta", "title", "emails",
                         ENTERPRISE}
    assert user[ENTERPRISE] == {"department": "Sales"}
    assert all(set(e) == {"value"} for e in user["emails"])
    slim = scim.request("GET", f"/Users/{user['id']}",
                        params={"excludedAttributes": "groups,roles,emails,id"}).json()
    assert "groups" not in slim and "roles" not in slim and "emails" not in slim
    assert slim["id"] == user["id"]


def test_filter_escaping_round_trip(sb: Sandbox) -> None:
    scim = Scim(sb)
    tricky = 'o"brien\\ops@contoso.com'
    created = scim.create(tricky)
    assert created["userName"] == tricky
    assert [u["id"] for u in scim.find(tricky)] == [created["id"]]
    raw = scim.request("GET", "/Users", params={"filter": f'userName eq "{tricky}"'})
    assert_scim_error(raw, 400, "invalidFilter")
    assert parse_filter('userName eq "a\\"b\\\\c"').value == 'a"b\\c'  # type: ignore[union-attr]
    for unsupported in ('title eq "x"', 'userName co "a"', 'userName eq "a" or id eq "b"',
                        "userName eq unquoted"):
        assert_scim_error(scim.request("GET", "/Users", params={"filter": unsupported}),
                          400, "invalidFilter")


def test_other_documented_filters(sb: Sandbox) -> None:
    scim = Scim(sb)
    boss = scim.create("boss@contoso.com", externalId="ext-1", emails=[
        {"type": "work", "value": "boss.work@contoso.com"}],
        **{ENTERPRISE: {"employeeNumber": "E42", "division": "Home"}})
    report = scim.create("report@contoso.com", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    genesys_ext = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"
    for text, expected in (
        (f'id eq "{boss["id"]}"', [boss["id"]]),
        ('email eq "BOSS.WORK@contoso.com"', [boss["id"]]),
        ('externalId eq "ext-1"', [boss["id"]]),
        ('employeeNumber eq "E42"', [boss["id"]]),
        (f'manager eq "{boss["id"]}"', [report["id"]]),
        (f'{genesys_ext}:externalIds[authority eq "x-pc:scimv2:v1" and value eq "{boss["id"]}"]',
         [boss["id"]]),
    ):
        reply = scim.request("GET", "/Users", params={"filter": text})
        assert reply.status_code == 200, (text, reply.text)
        assert [u["id"] for u in reply.json()["Resources"]] == expected, text
    division = scim.request("GET", "/Users", params={"filter": 'division eq "Home"'}).json()
    assert division["totalResults"] == 5


# --------------------------------------------------------------------------- Genesys: writes


def test_create_rules(sb: Sandbox) -> None:
    scim = Scim(sb)
    created = scim.create("new.agent@contoso.com", emails=[
        {"type": "other", "value": "ignored@contoso.com"},
        {"type": "work", "value": "new.agent@contoso.com"}],
        phoneNumbers=[{"type": "work", "value": "tel:+14255550100;ext=123"}])
    assert created["active"] is True
    assert {"type": "other", "value": "new.agent@contoso.com"} in created["emails"]
    assert all(e["value"] != "ignored@contoso.com" for e in created["emails"])
    genesys_ext = created["urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"]
    assert genesys_ext["externalIds"] == [{"authority": "x-pc:scimv2:v1", "value": created["id"]}]
    assert created["meta"]["version"] == 'W/"1"'
    assert created["meta"]["location"].endswith(f"/Users/{created['id']}")

    for user_name in ("NEW.AGENT@contoso.com", "lee.gu@contoso.com"):  # case, and inactive
        duplicate = scim.request("POST", "/Users", {"userName": user_name, "displayName": "D"})
        assert_scim_error(duplicate, 409, "uniqueness")
    phone = scim.request("POST", "/Users", {
        "userName": "phone@contoso.com", "displayName": "P",
        "phoneNumbers": [{"type": "mobile", "value": "+1 (425) 555-0100"}]})
    assert "E.164" in assert_scim_error(phone, 400, "invalidValue")
    missing = scim.request("POST", "/Users", {"userName": "x@contoso.com"})
    assert_scim_error(missing, 400, "invalidValue")
    unknown = scim.request("POST", "/Users", {"userName": "y@contoso.com", "displayName": "Y",
                                              "shoeSize": 44})
    assert_scim_error(unknown, 400, "invalidSyntax")
    writes = sb.genesys.writes()
    assert [w.status for w in writes] == [201, 409, 409, 400, 400, 400]


def test_patch_paths_and_no_content_mode(sb: Sandbox) -> None:
    scim = Scim(sb)
    manager = scim.create("manager@contoso.com")
    user = scim.create("patched@contoso.com", emails=[{"type": "work", "value": "old@contoso.com"}])
    reply = scim.patch(
        user["id"],
        {"op": "Replace", "path": "title", "value": "Agent"},
        {"op": "replace", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+14255550111"},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@contoso.com"},
        {"op": "add", "path": f"{ENTERPRISE}:department", "value": "Support"},
        {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": manager["id"]}},
        {"op": "replace", "path": "name.givenName", "value": "ignored (not a Genesys field)"},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["title"] == "Agent"
    assert body["phoneNumbers"] == [{"value": "+14255550111", "type": "mobile"}]
    assert {"value": "new@contoso.com", "type": "work"} in body["emails"]
    assert body[ENTERPRISE]["department"] == "Support"
    assert body[ENTERPRISE]["manager"]["value"] == manager["id"]
    assert "name" not in body
    assert body["meta"]["version"] == 'W/"2"'

    sb.genesys.patch_returns_body = False
    silent = scim.patch(
        user["id"],
        {"op": "add", "path": "phoneNumbers", "value": [{"type": "mobile", "value": "+14255550112"},
                                                        {"type": "work", "value": "+14255550113"}]},
        {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": manager["id"]},
        {"op": "replace", "value": {"active": "False", "displayName": "Renamed"}},
    )
    assert silent.status_code == 204 and silent.content == b""
    stored = sb.genesys.users[user["id"]]
    assert stored["phoneNumbers"] == [{"value": "+14255550112", "type": "mobile"},
                                      {"value": "+14255550113", "type": "work"}]
    assert stored["active"] is False and stored["displayName"] == "Renamed"
    assert silent.headers["ETag"] == stored["meta"]["version"] == 'W/"3"'
    bad = scim.patch(user["id"], {"op": "replace", "path": 'phoneNumbers[type eq "work"].value',
                                  "value": "425-555-0100"})
    assert_scim_error(bad, 400, "invalidValue")
    assert_scim_error(scim.patch(user["id"], {"op": "replace", "path": "groups", "value": []}),
                      400, "mutability")
    assert_scim_error(scim.patch(user["id"], {"op": "replace", "path": "shoeSize", "value": 1}),
                      400, "invalidPath")
    removed = scim.patch(user["id"], {"op": "remove", "path": 'phoneNumbers[type eq "work"]'},
                         {"op": "remove", "path": f"{ENTERPRISE}:manager"})
    assert removed.status_code == 204
    assert [p["type"] for p in sb.genesys.users[user["id"]]["phoneNumbers"]] == ["mobile"]
    assert "manager" not in sb.genesys.users[user["id"]][ENTERPRISE]


def test_if_match_and_if_none_match(sb: Sandbox) -> None:
    scim = Scim(sb)
    user = scim.create("versioned@contoso.com")
    stale = user["meta"]["version"]
    assert scim.patch(user["id"], {"op": "replace", "path": "title", "value": "A"},
                      headers={"If-Match": stale}).status_code == 200
    refused = scim.patch(user["id"], {"op": "replace", "path": "title", "value": "B"},
                         headers={"If-Match": stale})
    assert_scim_error(refused, 400, "invalidVers")
    current = scim.request("GET", f"/Users/{user['id']}")
    assert current.headers["ETag"] == 'W/"2"'
    cached = scim.request("GET", f"/Users/{user['id']}",
                          headers={"If-None-Match": current.headers["ETag"]})
    assert cached.status_code == 304 and cached.content == b""
    assert scim.request("GET", f"/Users/{user['id']}",
                        headers={"If-None-Match": stale}).status_code == 200


def test_microsoftteams_and_other_share_one_field(sb: Sandbox) -> None:
    scim = Scim(sb)
    user = scim.create("teams@contoso.com", phoneNumbers=[
        {"type": "other", "value": "+14255550101"}, {"type": "work", "value": "+14255550102"},
        {"type": "microsoftteams", "value": "+14255550103"}])
    assert user["phoneNumbers"] == [{"value": "+14255550102", "type": "work"},
                                    {"value": "+14255550103", "type": "microsoftteams"}]
    path = 'phoneNumbers[type eq "other"].value'
    assert scim.patch(user["id"], {"op": "replace", "path": path,
                                   "value": "+14255550104"}).status_code == 200
    read = scim.request("GET", f"/Users/{user['id']}").json()
    assert read["phoneNumbers"] == [{"value": "+14255550102", "type": "work"},
                                    {"value": "+14255550104", "type": "other"}]
    assert scim.patch(user["id"], {"op": "add", "path": "phoneNumbers", "value": [
        {"type": "MicrosoftTeams", "value": "+14255550105"}]}).status_code == 200
    types = [p["type"] for p in sb.genesys.users[user["id"]]["phoneNumbers"]]
    assert types == ["work", "microsoftteams"]
    put = scim.request("PUT", f"/Users/{user['id']}", {
        "userName": "teams@contoso.com", "displayName": "T", "phoneNumbers": [
            {"type": "microsoftteams", "value": "+14255550106"},
            {"type": "other", "value": "+14255550107"}]})
    assert put.json()["phoneNumbers"] == [{"value": "+14255550107", "type": "other"}]


def test_deleted_user_names_cannot_be_reused(sb: Sandbox) -> None:
    scim = Scim(sb)
    gone = scim.create("gone@contoso.com", emails=[{"type": "work", "value": "g.work@contoso.com"}])
    assert scim.request("DELETE", f"/Users/{gone['id']}").status_code == 204
    assert {"gone@contoso.com", "g.work@contoso.com"} <= sb.genesys.deleted_names
    assert scim.find("gone@contoso.com") == []
    again = scim.request("POST", "/Users", {"userName": "Gone@Contoso.com", "displayName": "G"})
    detail = assert_scim_error(again, 409, "uniqueness")
    assert "deleted user" in detail and "userName" in detail
    same_email = scim.request("POST", "/Users", {
        "userName": "other@contoso.com", "displayName": "O",
        "emails": [{"type": "work", "value": "G.WORK@contoso.com"}]})
    assert "deleted user" in assert_scim_error(same_email, 409, "uniqueness")
    assert scim.find("gone@contoso.com") == [] and scim.find("other@contoso.com") == []
    sb.genesys.deleted_names.clear()  # tests may allow reuse
    assert scim.create("gone@contoso.com")["id"] != gone["id"]


def test_put_and_delete(sb: Sandbox) -> None:
    scim = Scim(sb)
    user = scim.create("replace.me@contoso.com", title="Old", externalId="x1")
    replaced = scim.request("PUT", f"/Users/{user['id']}", {
        "userName": "replace.me@contoso.com", "displayName": "Replaced"})
    assert replaced.status_code == 200
    body = replaced.json()
    assert body["id"] == user["id"] and body["meta"]["created"] == user["meta"]["created"]
    assert "title" not in body and "externalId" not in body
    sales = next(g for g in sb.genesys.groups.values() if g["displayName"] == "Sales Agents")
    adele = scim.find("adele.vance@contoso.com")[0]
    assert scim.request("DELETE", f"/Users/{adele['id']}").status_code == 204
    assert_scim_error(scim.request("GET", f"/Users/{adele['id']}"), 404, None)
    assert scim.find("adele.vance@contoso.com") == []
    assert adele["id"] in sb.genesys.deleted_users and adele["id"] not in sb.genesys.users
    assert sb.genesys.groups[sales["id"]]["members"] == []
    assert_scim_error(scim.request("DELETE", f"/Users/{adele['id']}"), 404, None)


# --------------------------------------------------------------------------- Genesys: groups


def test_groups_cannot_be_created_or_deleted(sb: Sandbox) -> None:
    scim = Scim(sb)
    refused = scim.request("POST", "/Groups", {"displayName": "Nested Team"})
    assert "cannot be created" in assert_scim_error(refused, 405, None)
    assert refused.headers["Allow"] == "GET"
    group_id = next(iter(sb.genesys.groups))
    assert_scim_error(scim.request("DELETE", f"/Groups/{group_id}"), 405, None)
    assert len(sb.genesys.groups) == 3


def test_group_member_patch(sb: Sandbox) -> None:
    scim = Scim(sb)
    found = scim.request("GET", "/Groups", params={
        "filter": 'displayName eq "support agents"', "excludedAttributes": "members"}).json()
    group = found["Resources"][0]
    assert "members" not in group
    one, two = scim.create("one@contoso.com"), scim.create("two@contoso.com")
    path = f"/Groups/{group['id']}"
    added = scim.request("PATCH", path, {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": one["id"]}, {"value": two["id"]}]}]})
    assert added.status_code == 200, added.text
    assert [m["value"] for m in added.json()["members"]] == [one["id"], two["id"]]
    assert added.json()["members"][0]["display"] == "Test User"
    assert sb.genesys.users[one["id"]]["groups"][0]["value"] == group["id"]
    removed = scim.request("PATCH", path, {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "remove", "path": f'members[value eq "{one["id"]}"]'}]})
    assert [m["value"] for m in removed.json()["members"]] == [two["id"]]
    assert "groups" not in sb.genesys.users[one["id"]]
    unknown = scim.request("PATCH", path, {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}]})
    assert_scim_error(unknown, 400, "invalidValue")
    no_schema = scim.request("PATCH", path, {"Operations": [{"op": "add", "path": "members",
                                                             "value": []}]})
    assert_scim_error(no_schema, 400, "invalidSyntax")


# --------------------------------------------------------------------------- Genesys: limits


def test_rate_limit_and_throttle_injection(tmp_path: Path) -> None:
    with Sandbox(genesys_rate_limit_per_minute=3, workdir=tmp_path) as sandbox:
        scim = Scim(sandbox)
        statuses = [scim.request("GET", "/Users").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = scim.request("GET", "/Users")
        assert_scim_error(limited, 429, None)
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        now = time.monotonic()
        sandbox.genesys.clock = lambda: now + 61  # the window slides
        assert scim.request("GET", "/Users").status_code == 200

        sandbox.genesys.rate_limit_per_minute = None
        sandbox.genesys.throttle_next(2, retry_after=7)
        injected = [scim.request("GET", "/Users") for _ in range(3)]
        assert [r.status_code for r in injected] == [429, 429, 200]
        assert injected[0].headers["Retry-After"] == "7"
        assert sandbox.genesys.counts["status 429"] == 4
        assert sandbox.genesys.counts["GET /Users"] == 9


def test_request_log_redacts_and_can_be_turned_off(sb: Sandbox) -> None:
    scim = Scim(sb)
    scim.create("logged@contoso.com", password="hunter2")
    entry = sb.genesys.writes()[-1]
    assert entry.headers["Authorization"] == "[redacted]"
    assert entry.body["password"] == "[redacted]"
    assert entry.status == 201 and entry.query == {}
    sb.genesys.reset_log()
    sb.genesys.record_requests = False
    scim.create("unlogged@contoso.com")
    assert sb.genesys.requests == [] and sb.genesys.counts["POST /Users"] == 1


def test_config_points_at_the_sandbox(sb: Sandbox) -> None:
    config = sb.config()
    assert config["target"]["oauth"]["token_url"] == sb.genesys_token_url
    assert config["source"]["authority_host"] == sb.authority_host
    assert Path(config["ca_bundle"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert sb.config(oauth=False)["target"]["token"] == sb.genesys_static_token


# --------------------------------------------------------------------------- data


def test_generation_is_deterministic_and_the_demo_file_is_current() -> None:
    assert generate_directory(300, seed=7) == generate_directory(300, seed=7)
    assert generate_directory(300, seed=7) != generate_directory(300, seed=8)
    assert json.loads(EXAMPLE.read_text(encoding="utf-8")) == demo_directory()
    demo = demo_directory()
    assert len(demo["users"]) == 25 and len(demo["groups"]) == 4
    assert sum(not u["accountEnabled"] for u in demo["users"]) == 2


def test_100k_users_generate() -> None:
    # no wall-clock assertion (flaky on a loaded machine): `make bench` reports the time
    directory = generate_directory(100_000)
    assert len(directory["users"]) == 100_000
    assert len({u["userPrincipalName"] for u in directory["users"]}) == 100_000


def test_ranked_set() -> None:
    ranked = RankedSet(capacity=2)
    for number in range(0, 5000, 3):
        ranked.add(number)
    for number in range(0, 5000, 9):
        ranked.discard(number)
    expected = [n for n in range(0, 5000, 3) if n % 9]
    assert len(ranked) == len(expected)
    assert ranked.page(10, 5) == expected[10:15]
    assert ranked.page(len(expected) - 2, 10) == expected[-2:]


def test_graph_expand_pages_are_capped_at_100(tmp_path: Path) -> None:
    """Graph's known issue: $expand on directory objects returns at most 100 a page."""
    with Sandbox(users=150, workdir=tmp_path) as box:
        body = session(box).get(
            f"{box.graph_url}/v1.0/users",
            params={"$top": "999", "$select": "id", "$expand": "manager($select=id)"},
            headers={"Authorization": f"Bearer {graph_token(box)}"}).json()
        assert len(body["value"]) == 100 and "@odata.nextLink" in body

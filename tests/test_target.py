"""The SCIM client against `responses`: paging, the inactive listing, auth, writes, errors."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from genesys_prov.config import OAuthConfig, TargetConfig
from genesys_prov.errors import AuthError, ScimError, TargetError
from genesys_prov.http import HttpClient, RateLimiter, make_session
from genesys_prov.plan.model import Action, AttributeChange, Change
from genesys_prov.target.scim import ScimClient, build_create, build_patch

BASE = "https://api.example.test/api/v2/scim/v2"
TOKEN_URL = "https://login.example.test/oauth/token"


def make(flavor="genesys", page_size=100, oauth=False, concurrency=4) -> ScimClient:
    cfg = TargetConfig(
        url=BASE, token=None if oauth else "static-token-123",
        oauth=OAuthConfig("cid", "csecret", TOKEN_URL) if oauth else None,
        flavor=flavor, page_size=page_size, concurrency=concurrency,
    )
    http = HttpClient(make_session(), RateLimiter(0), timeout=5, sleep=lambda s: None)
    return ScimClient(cfg, http)


def page(resources, total, start=1):
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": total, "startIndex": start, "itemsPerPage": len(resources),
            "Resources": resources}


def users(prefix, n, active=True):
    return [{"id": f"{prefix}{i}", "userName": f"{prefix}{i}@x", "active": active}
            for i in range(n)]


def query(call):
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


@responses.activate
def test_genesys_listing_pages_and_reads_inactive_users():
    act = users("a", 5)
    responses.get(f"{BASE}/Users", json=page(act[:2], 5))
    responses.get(f"{BASE}/Users", json=page(act[2:4], 5, 3))
    responses.get(f"{BASE}/Users", json=page(act[4:], 5, 5))
    responses.get(f"{BASE}/Users", json=page(users("i", 1, active=False), 1))
    got = list(make(page_size=2, concurrency=1).list_users(["userName", "title"]))
    assert [u["id"] for u in got] == ["a0", "a1", "a2", "a3", "a4", "i0"]
    qs = [query(c) for c in responses.calls]
    assert [q["startIndex"] for q in qs] == ["1", "3", "5", "1"]
    assert all(q["count"] == "2" and q["attributes"] == "userName,title" for q in qs)
    assert "filter" not in qs[0] and qs[3]["filter"] == "active eq false"
    assert responses.calls[0].request.headers["Authorization"] == "Bearer static-token-123"


@responses.activate
def test_untrimmed_genesys_pages_are_at_most_25():
    responses.get(f"{BASE}/Users", json=page([], 0))
    responses.get(f"{BASE}/Users", json=page([], 0))
    list(make(page_size=500).list_users([]))
    assert query(responses.calls[0])["count"] == "25"


@responses.activate
def test_generic_listing_has_no_inactive_pass():
    responses.get(f"{BASE}/Users", json=page(users("a", 1), 1))
    assert len(list(make(flavor="generic").list_users(["userName"]))) == 1
    assert len(responses.calls) == 1


@responses.activate
def test_truncated_listing_is_an_error_not_a_short_list():
    responses.get(f"{BASE}/Users", json=page(users("a", 2), 5))
    responses.get(f"{BASE}/Users", json=page([], 5, 3))
    with pytest.raises(TargetError, match="ended early: 2 of 5"):
        list(make(page_size=2).list_users(["userName"]))


@pytest.mark.parametrize("body", ["<html>oops</html>", json.dumps({"Resources": []})])
@responses.activate
def test_malformed_listing(body):
    responses.get(f"{BASE}/Users", body=body, status=200)
    with pytest.raises(TargetError):
        list(make().list_users(["userName"]))


@responses.activate
def test_filter_value_is_escaped():
    responses.get(f"{BASE}/Users", json=page([], 0))
    make().find_users("userName", 'evil" or userName pr "')
    assert query(responses.calls[0])["filter"] == r'userName eq "evil\" or userName pr \""'


@responses.activate
def test_oauth_token_fetched_once_and_refreshed_on_401():
    responses.post(TOKEN_URL, json={"access_token": "tok1", "expires_in": 3600})
    responses.post(TOKEN_URL, json={"access_token": "tok2", "expires_in": 3600})
    responses.get(f"{BASE}/Users", json=page([], 0))
    responses.get(f"{BASE}/Users", status=401, json={"detail": "expired"})
    responses.get(f"{BASE}/Users", json=page([], 0))
    client = make(oauth=True, flavor="generic")
    list(client.list_users(["userName"]))
    list(client.list_users(["userName"]))
    auths = [c.request.headers.get("Authorization") for c in responses.calls
             if c.request.url.startswith(BASE)]
    assert auths == ["Bearer tok1", "Bearer tok1", "Bearer tok2"]
    token_call = responses.calls[0].request
    assert token_call.headers["Authorization"].startswith("Basic ")
    assert token_call.body == "grant_type=client_credentials"


@responses.activate
def test_oauth_refusal_is_auth_error():
    responses.post(TOKEN_URL, status=401, json={"error": "invalid_client"})
    with pytest.raises(AuthError,
                       match=r"refused the client credentials \(HTTP 401, invalid_client\)"):
        list(make(oauth=True).list_users(["userName"]))


@responses.activate
def test_403_names_the_missing_permission():
    responses.post(f"{BASE}/Users", status=403, json={"detail": "Forbidden"})
    with pytest.raises(AuthError, match="directory:user:add"):
        make().create_user({"userName": "a"})


@responses.activate
def test_scim_error_body_becomes_a_readable_message():
    responses.post(f"{BASE}/Users", status=409, json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "409",
        "scimType": "uniqueness", "detail": "userName is taken"})
    with pytest.raises(ScimError) as info:
        make().create_user({"userName": "a"})
    assert str(info.value) == "POST /Users: HTTP 409 (uniqueness): userName is taken"


@responses.activate
def test_patch_accepts_200_and_204_and_sends_if_match():
    responses.patch(f"{BASE}/Users/u1", json={"id": "u1"})
    responses.patch(f"{BASE}/Users/u1", status=204)
    client = make()
    assert client.patch_user("u1", {"Operations": []}, version='W/"3"') == {"id": "u1"}
    assert client.patch_user("u1", {"Operations": []}) is None
    assert responses.calls[0].request.headers["If-Match"] == 'W/"3"'
    assert responses.calls[0].request.headers["Content-Type"] == "application/scim+json"


def test_payload_builders():
    change = Change(Action.UPDATE, "ada", "s1", "t1", (
        AttributeChange("title", "A", "B"),
        AttributeChange('phoneNumbers[type eq "work"].value', None, "+1", op="add"),
    ))
    assert build_patch(change)["Operations"] == [
        {"op": "replace", "path": "title", "value": "B"},
        {"op": "add", "path": "phoneNumbers", "value": [{"type": "work", "value": "+1"}]},
    ]
    create = Change(Action.CREATE, "ada", "s1", None, (
        AttributeChange("active", None, True), AttributeChange("userName", None, "a@b"),
        AttributeChange('emails[type eq "work"].value', None, "a@b")))
    assert build_create(create) == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "active": True,
        "userName": "a@b", "emails": [{"type": "work", "value": "a@b"}]}


@responses.activate
def test_a_page_refused_for_resource_limits_is_asked_again_at_half_the_size():
    client = make(flavor="generic", page_size=100)
    refused = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "429",
               "detail": "The request exceeds internal resource limits"}
    responses.get(f"{BASE}/Users", status=429, json=refused)
    responses.get(f"{BASE}/Users", json=page(users("u", 50), 60))
    responses.get(f"{BASE}/Users", json=page(users("v", 10), 60, start=51))
    listed = list(client.list_users(["userName", "title"]))
    assert len(listed) == 60
    sent = [query(c) for c in responses.calls]
    assert [q["count"] for q in sent] == ["100", "50", "50"]
    assert sent[-1]["startIndex"] == "51"
    assert sent[0]["attributes"] == "userName,title,meta.version"  # generic: ask for versions


@responses.activate
def test_a_listing_page_that_is_not_json_is_asked_again():
    client = make()
    responses.get(f"{BASE}/Users", body="<html>bad gateway</html>")
    responses.get(f"{BASE}/Users", json=page(users("u", 2), 2))
    responses.get(f"{BASE}/Users", json=page([], 0))
    assert len(list(client.list_users(["userName"]))) == 2


def serve_listing(resources, cut=None, refuse_above=None):
    """A ``responses`` callback that serves a listing by ``startIndex`` and ``count`` (so
    pages fetched at the same time each get their own), recording what was asked.
    ``cut`` shortens the page starting there by one resource (a server that moved);
    ``refuse_above`` answers 429 "resource limits" to pages larger than that."""
    asked = []

    def callback(request):
        q = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        start, count = int(q["startIndex"]), int(q["count"])
        asked.append((start, count))
        if refuse_above is not None and count > refuse_above:
            return 429, {}, json.dumps({"status": "429", "detail": "internal resource limits"})
        chunk = resources[start - 1:start - 1 + count]
        if cut == start:
            chunk = chunk[:-1]
        return 200, {}, json.dumps(page(chunk, len(resources), start))

    responses.add_callback(responses.GET, f"{BASE}/Users", callback=callback)
    return asked


@responses.activate
def test_pages_after_the_first_are_fetched_at_the_same_time_and_yielded_in_order():
    """Once the first page shows the page size is honoured, the rest follow from
    ``totalResults``: every page asked exactly once, results in the listing's order."""
    every = users("u", 95)
    asked = serve_listing(every)
    client = make(flavor="generic", page_size=10, concurrency=4)
    assert [u["id"] for u in client.list_users(["userName"])] == [u["id"] for u in every]
    assert asked[0] == (1, 10)
    assert sorted(asked) == [(s, 10) for s in range(1, 96, 10)]


@responses.activate
def test_a_short_page_while_fetching_ahead_goes_back_to_one_page_at_a_time():
    """A page shorter than asked before the end (the listing moved): nothing is skipped,
    the listing goes on one page at a time from the resource after it."""
    every = users("u", 50)
    asked = serve_listing(every, cut=21)
    client = make(flavor="generic", page_size=10, concurrency=3)
    got = [u["id"] for u in client.list_users(["userName"])]
    assert got == [u["id"] for u in every]
    assert (30, 10) in asked  # asked again from the first resource not yet seen
    assert len(got) == len(set(got))


@responses.activate
def test_one_worker_lists_one_page_at_a_time():
    every = users("u", 30)
    asked = serve_listing(every)
    client = make(flavor="generic", page_size=10, concurrency=1)
    assert len(list(client.list_users(["userName"]))) == 30
    assert asked == [(1, 10), (11, 10), (21, 10)]

"""The Graph reader against `responses`: $select, paging by nextLink, errors."""

import pytest
import requests
import responses

from genesys_prov.config import SourceConfig
from genesys_prov.errors import AuthError, SourceError
from genesys_prov.http import HttpClient, RateLimiter, make_session
from genesys_prov.source.graph import GraphReader

GRAPH = "https://graph.example.test"


def reader() -> GraphReader:
    cfg = SourceConfig(tenant_id="t", client_id="c", client_secret="graph-secret-1",
                       graph_url=GRAPH)
    r = GraphReader(cfg, HttpClient(make_session(), RateLimiter(0), timeout=5,
                                    sleep=lambda s: None))
    r.token = lambda: "graph-token"  # type: ignore[method-assign]
    return r


@responses.activate
def test_pages_follow_next_link_with_select_and_top():
    nxt = f"{GRAPH}/v1.0/users?$skiptoken=abc"
    responses.get(f"{GRAPH}/v1.0/users", json={"value": [{"id": "1"}], "@odata.nextLink": nxt})
    responses.get(nxt, json={"value": [{"id": "2"}]})
    users = list(reader().iter_users(["id", "mail"]))
    assert [u["id"] for u in users] == ["1", "2"]
    first = responses.calls[0].request
    assert "%24select=id%2Cmail" in first.url and "%24top=999" in first.url
    assert first.headers["Authorization"] == "Bearer graph-token"
    assert responses.calls[1].request.url == nxt


@responses.activate
def test_throttling_is_retried():
    responses.get(f"{GRAPH}/v1.0/users", status=429, headers={"Retry-After": "1"})
    responses.get(f"{GRAPH}/v1.0/users", status=503)
    responses.get(f"{GRAPH}/v1.0/users", json={"value": []})
    assert list(reader().iter_users(["id"])) == []
    assert len(responses.calls) == 3


@responses.activate
def test_next_link_to_another_host_is_refused():
    responses.get(f"{GRAPH}/v1.0/users",
                  json={"value": [], "@odata.nextLink": "https://evil.example/steal"})
    with pytest.raises(SourceError, match="another host"):
        list(reader().iter_users(["id"]))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"status": 403, "json": {"error": {"code": "Authorization_RequestDenied",
                                            "message": "Insufficient privileges"}}},
         AuthError, "Insufficient privileges"),
        ({"status": 400, "json": {"error": {"code": "Request_BadRequest",
                                            "message": "Could not find a property"}}},
         SourceError, "HTTP 400: Request_BadRequest: Could not find a property"),
        ({"status": 200, "body": "<html>"}, SourceError, "not JSON"),
        ({"status": 200, "json": {"values": []}}, SourceError, "no 'value' list"),
        ({"status": 200, "json": {"value": [{"displayName": "no id"}]}}, SourceError,
         "without an id"),
        ({"body": requests.ConnectionError("refused")}, SourceError,
         "graph.example.test was reset or closed"),
    ],
)
@responses.activate
def test_bad_answers_are_clear_errors(kwargs, error, message):
    for _ in range(6):
        responses.get(f"{GRAPH}/v1.0/users", **kwargs)
    with pytest.raises(error, match=message):
        list(reader().iter_users(["id"]))


@responses.activate
def test_graph_failing_part_way_is_a_safety_stop_not_a_short_directory(tmp_path):
    """A directory read that fails after some pages must never look like a smaller
    directory: it stops the run with the source-health guard (exit 3)."""
    from types import SimpleNamespace

    from genesys_prov.config import Config, TargetConfig
    from genesys_prov.errors import SafetyError
    from genesys_prov.mapping.mappings_file import default_mappings_text, parse_mappings
    from genesys_prov.sync.inputs import read_and_plan

    nxt = f"{GRAPH}/v1.0/users/delta?$skiptoken=p2"  # the manager is read by a delta round
    responses.get(f"{GRAPH}/v1.0/users/delta",
                  json={"value": [{"id": "1"}], "@odata.nextLink": nxt})
    for _ in range(6):
        responses.get(nxt, status=500, json={"error": {"code": "InternalServerError"}})
    graph = reader()
    config = Config(source=SourceConfig(tenant_id="t", client_id="c", client_secret="s" * 8,
                                        graph_url=GRAPH, scope="all"),
                    target=TargetConfig(url="https://api.example.test/api/v2/scim/v2",
                                        token="tok-12345"),
                    mappings_path=tmp_path / "m.yaml")
    mappings = parse_mappings(default_mappings_text().split("group:")[0])
    conn = SimpleNamespace(graph=graph, scim=None)
    with pytest.raises(SafetyError, match="failed part-way after 1 page"):
        read_and_plan(config, mappings, conn)  # type: ignore[arg-type]


@responses.activate
def test_many_gone_users_cost_one_listing_of_the_deleted_users():
    listing = f"{GRAPH}/v1.0/directory/deletedItems/microsoft.graph.user"
    responses.get(listing, json={"value": [{"id": "A"}],
                                 "@odata.nextLink": f"{listing}?$skiptoken=2"})
    responses.get(f"{listing}?$skiptoken=2", json={"value": [{"id": "c"}]})
    answers = reader().soft_deleted(["a", "b", "c", "d"])
    assert answers == {"a": True, "b": False, "c": True, "d": False}
    assert len(responses.calls) == 2 and "%24select=id" in responses.calls[0].request.url


@responses.activate
def test_few_gone_users_are_looked_up_one_by_one_and_refusal_means_unknown():
    base = f"{GRAPH}/v1.0/directory/deletedItems"
    responses.get(f"{base}/a", json={"id": "a"})
    responses.get(f"{base}/b", status=404, json={"error": {"code": "Request_ResourceNotFound"}})
    assert reader().soft_deleted(["a", "b"]) == {"a": True, "b": False}
    responses.get(f"{base}/microsoft.graph.user", status=403,
                  json={"error": {"code": "Authorization_RequestDenied", "message": "no"}})
    assert reader().soft_deleted(["a", "b", "c", "d"]) == dict.fromkeys("abcd")


@responses.activate
def test_a_graph_401_mid_read_gets_one_fresh_token():
    """A token revoked or expired during a long read: one fresh token and one retry, as on
    the SCIM side — not an authentication failure (which would quarantine the job)."""
    r = reader()
    asked: list[bool] = []

    def token(fresh: bool = False) -> str:
        asked.append(fresh)
        return "new-token" if fresh else "old-token"

    r.token = token  # type: ignore[method-assign]
    nxt = f"{GRAPH}/v1.0/users?$skiptoken=p2"
    responses.get(f"{GRAPH}/v1.0/users", json={"value": [{"id": "1"}], "@odata.nextLink": nxt})
    responses.get(nxt, status=401, json={"error": {"code": "InvalidAuthenticationToken",
                                                   "message": "Lifetime validation failed"}})
    responses.get(nxt, json={"value": [{"id": "2"}]})
    assert [u["id"] for u in r.iter_users(["id"])] == ["1", "2"]
    assert asked == [False, False, True]
    assert responses.calls[1].request.headers["Authorization"] == "Bearer old-token"
    assert responses.calls[2].request.headers["Authorization"] == "Bearer new-token"


@responses.activate
def test_a_graph_401_that_persists_is_an_auth_error():
    for _ in range(2):
        responses.get(f"{GRAPH}/v1.0/users", status=401,
                      json={"error": {"code": "InvalidAuthenticationToken", "message": "no"}})
    r = reader()
    r.token = lambda fresh=False: "t"  # type: ignore[method-assign]
    with pytest.raises(AuthError, match="HTTP 401"):
        list(r.iter_users(["id"]))
    assert len(responses.calls) == 2


LINK = f"{GRAPH}/v1.0/users/delta?$deltatoken=stored"


@pytest.mark.parametrize(("status", "body"), [
    (410, {"error": {"code": "Gone", "message": "expired"}}),
    (400, {"error": {"code": "SyncStateNotFound", "message": "sync state not found"}}),
    (400, {"error": {"code": "syncStateNotFound", "message": "x"}}),
    (400, {"error": {"code": "resyncRequired", "message": "x"}}),
    (404, {"error": {"code": "ResourceNotFound", "message": "x"}}),
    (400, {"error": {"code": "BadRequest", "message": "token is malformed"}}),
])
@responses.activate
def test_a_dead_delta_link_means_a_full_sync(status, body):
    """Real Graph spells SyncStateNotFound with a capital S; any 4xx but 401/403/429 on a
    stored delta link means: start over (a full sync), never the same dead link again."""
    from genesys_prov.errors import DeltaExpired

    responses.get(LINK, status=status, json=body)
    with pytest.raises(DeltaExpired):
        reader().delta_changes(LINK)


@responses.activate
def test_a_forbidden_delta_link_is_not_a_full_sync():
    from genesys_prov.errors import DeltaExpired

    responses.get(LINK, status=403, json={"error": {"code": "Authorization_RequestDenied",
                                                    "message": "no"}})
    with pytest.raises(AuthError) as info:
        reader().delta_changes(LINK)
    assert not isinstance(info.value, DeltaExpired)


@responses.activate
def test_a_page_that_is_not_json_is_asked_again():
    responses.get(f"{GRAPH}/v1.0/users", body="<html>proxy error</html>")
    responses.get(f"{GRAPH}/v1.0/users", json={"value": [{"id": "1"}]})
    assert [u["id"] for u in reader().iter_users(["id"])] == ["1"]


@responses.activate
def test_users_with_their_manager_come_from_one_delta_round_at_200_a_page():
    """``$expand=manager`` caps Graph's pages at 100 users; a delta round selecting the
    manager gives 200 a page, the manager in the listing's shape, and the link the next
    incremental run follows. Removed objects are not users; a user whose manager is
    removed has none."""
    nxt = f"{GRAPH}/v1.0/users/delta?$skiptoken=p2"
    link = f"{GRAPH}/v1.0/users/delta?$deltatoken=d1"
    responses.get(f"{GRAPH}/v1.0/users/delta", json={"value": [
        {"id": "1", "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": "2"}]},
        {"id": "gone", "@removed": {"reason": "changed"}},
    ], "@odata.nextLink": nxt})
    responses.get(nxt, json={"value": [
        {"id": "2", "manager@delta": [{"id": "9", "@removed": {"reason": "deleted"}}]},
        {"id": "3"}], "@odata.deltaLink": link})
    links: list[str] = []
    users = list(reader().iter_users(["id", "displayName"], expand_manager=True,
                                     delta_link=links.append))
    assert users == [{"id": "1", "manager": {"@odata.type": "#microsoft.graph.user", "id": "2"}},
                     {"id": "2"}, {"id": "3"}]
    assert links == [link]
    first = responses.calls[0].request
    assert "%24select=id%2CdisplayName%2Cmanager" in first.url and "expand" not in first.url
    assert all(c.request.headers["Prefer"] == "odata.maxpagesize=200" for c in responses.calls)


@responses.activate
def test_without_the_manager_users_are_listed_999_a_page():
    """No manager mapping: ``/users`` at ``$top=999`` is cheaper than a delta round."""
    responses.get(f"{GRAPH}/v1.0/users", json={"value": [{"id": "1"}]})
    assert [u["id"] for u in reader().iter_users(["id"])] == ["1"]
    assert "%24top=999" in responses.calls[0].request.url
    assert "Prefer" not in responses.calls[0].request.headers

"""Delta query on the Graph emulator (``/users/delta``, ``/groups/delta``), over real HTTPS."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from genesys_prov.sandbox import Sandbox

pytestmark = pytest.mark.e2e

REMOVED_DELETED = {"reason": "deleted"}
REMOVED_CHANGED = {"reason": "changed"}
USER = "#microsoft.graph.user"
GROUP = "#microsoft.graph.group"


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Sandbox]:
    """A fresh demo sandbox per test."""
    with Sandbox(workdir=tmp_path) as sandbox:
        yield sandbox


class Graph:
    """A tiny authenticated Graph client (trusting only the sandbox CA)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = requests.Session()
        self.http.verify = str(sandbox.ca_bundle)
        self.http.trust_env = False
        reply = self.http.post(
            f"{sandbox.authority_host}/{sandbox.tenant_id}/oauth2/v2.0/token",
            data={"grant_type": "client_credentials", "client_id": sandbox.client_id,
                  "client_secret": sandbox.client_secret,
                  "scope": f"{sandbox.graph_url}/.default"},
        )
        assert reply.status_code == 200, reply.text
        self.http.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"

    def get(self, path: str, params: dict[str, str] | None = None, *,
            page_size: int | None = None) -> requests.Response:
        url = path if path.startswith("https://") else f"{self.sandbox.graph_url}/v1.0{path}"
        headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else None
        return self.http.get(url, params=params, headers=headers)

    def round(self, path: str, params: dict[str, str] | None = None, *,
              page_size: int | None = None) -> (
        tuple[list[dict[str, Any]], str]
    ):
        """Follow nextLinks to the deltaLink: (the pages' bodies, the deltaLink)."""
        pages: list[dict[str, Any]] = []
        reply = self.get(path, params, page_size=page_size)
        while True:
            assert reply.status_code == 200, reply.text
            body = reply.json()
            pages.append(body)
            if "@odata.deltaLink" in body:
                assert "@odata.nextLink" not in body
                link: str = body["@odata.deltaLink"]
                return pages, link
            assert "@odata.nextLink" in body, body
            reply = self.get(body["@odata.nextLink"], page_size=page_size)

    def changes(self, link: str, page_size: int | None = None) -> (
        tuple[list[dict[str, Any]], str]
    ):
        """Follow a deltaLink to the next one: (every object reported, the new deltaLink)."""
        pages, new_link = self.round(link, page_size=page_size)
        return [obj for page in pages for obj in page["value"]], new_link


def values(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [obj for page in pages for obj in page["value"]]


def merge(changes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Merge reported objects by id in order (later properties win)."""
    merged: dict[str, dict[str, Any]] = {}
    for obj in changes:
        merged.setdefault(obj["id"], {}).update(obj)
    return merged


def enabled_user(sb: Sandbox) -> dict[str, Any]:
    return next(u for u in sb.graph.users if u.get("accountEnabled", True))


# --------------------------------------------------------------------------- rounds


def test_initial_round_pages_to_a_delta_link_with_select_and_page_size(sb: Sandbox) -> None:
    graph = Graph(sb)
    first = graph.get("/users/delta", {"$select": "displayName,jobTitle"}, page_size=10)
    assert first.status_code == 200, first.text
    assert first.headers["Preference-Applied"] == "odata.maxpagesize=10"
    assert first.json()["@odata.context"].endswith("#users(id,displayName,jobTitle)")

    pages, link = graph.round("/users/delta", {"$select": "displayName,jobTitle"},
                              page_size=10)
    assert [len(p["value"]) for p in pages] == [10, 10, 5]
    assert all("@odata.deltaLink" not in p for p in pages[:-1])
    assert "$deltatoken=" in link and link.startswith(f"{sb.graph_url}/v1.0/users/delta?")
    seen = values(pages)
    assert [u["id"] for u in seen] == [u["id"] for u in sb.graph.users]
    assert all(set(u) == {"id", "displayName", "jobTitle"} for u in seen)
    assert seen[0]["displayName"] == sb.graph.users[0]["displayName"]

    default = graph.round("/users/delta")[0]
    assert len(default) == 1  # 25 users fit the default page of 100
    assert set(default[0]["value"][0]) == {
        "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
        "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}
    assert sb.graph.counts["GET /v1.0/users/delta"] >= 5


def test_default_page_size_is_100(tmp_path: Path) -> None:
    with Sandbox(users=230, workdir=tmp_path) as sandbox:
        graph = Graph(sandbox)
        pages, _ = graph.round("/users/delta", {"$select": "id"})
        assert [len(p["value"]) for p in pages] == [100, 100, 30]
        ids = [u["id"] for u in values(pages)]
        assert len(set(ids)) == 230


def test_no_change_round_is_one_response(sb: Sandbox) -> None:
    graph = Graph(sb)
    _, link = graph.round("/users/delta", {"$select": "displayName"}, page_size=7)
    reply = graph.get(link, page_size=7)
    assert reply.status_code == 200
    body = reply.json()
    assert body["value"] == []
    assert "@odata.nextLink" not in body
    assert body["@odata.deltaLink"].startswith(f"{sb.graph_url}/v1.0/users/delta?")
    again = graph.get(body["@odata.deltaLink"]).json()
    assert again["value"] == [] and "@odata.deltaLink" in again


def test_set_user_reports_only_changed_selected_properties(sb: Sandbox) -> None:
    graph = Graph(sb)
    _, link = graph.round("/users/delta", {"$select": "displayName,jobTitle,mobilePhone"})
    user, other = sb.graph.users[3], sb.graph.users[4]
    sb.graph.set_user(user["id"], jobTitle="Chief Listener", department="Audio",
                      mobilePhone=user.get("mobilePhone"))
    sb.graph.set_user(other["id"], department="Only an unselected property")
    changes, link = graph.changes(link)
    assert changes == [{"id": user["id"], "jobTitle": "Chief Listener"}]

    sb.graph.set_user(user["id"], jobTitle="Chief Listener")  # same value: no change
    assert graph.changes(link)[0] == []


def test_add_user_is_reported_in_full(sb: Sandbox) -> None:
    graph = Graph(sb)
    _, link = graph.round("/users/delta", {"$select": "displayName,userPrincipalName,mail"})
    new = copy.deepcopy(sb.graph.users[0])
    new.update(id="0b5f3c1e-0000-4000-8000-00000000a11c", displayName="Alice New",
               userPrincipalName="alice.new@contoso.com", mail=None, manager=None)
    sb.graph.add_user(new)
    changes, _ = graph.changes(link)
    assert changes == [{"id": new["id"], "displayName": "Alice New",
                        "userPrincipalName": "alice.new@contoso.com", "mail": None}]


def test_soft_delete_and_restore(sb: Sandbox) -> None:
    graph = Graph(sb)
    _, link = graph.round("/users/delta", {"$select": "displayName"})
    user = enabled_user(sb)
    sb.graph.set_user(user["id"], displayName="About to go")
    sb.graph.soft_delete_user(user["id"])
    changes, link = graph.changes(link)
    assert changes == [{"id": user["id"], "@removed": REMOVED_CHANGED}]

    listed = graph.get("/users", {"$select": "id", "$top": "999"}).json()["value"]
    assert user["id"] not in {u["id"] for u in listed}
    assert graph.get(f"/users/{user['id']}").status_code == 404
    assert user["id"] not in {u["id"] for u in sb.graph.users}

    sb.graph.restore_user(user["id"])
    changes, link = graph.changes(link)
    assert changes == [{"id": user["id"], "displayName": "About to go"}]
    listed = graph.get("/users", {"$select": "id", "$top": "999"}).json()["value"]
    assert user["id"] in {u["id"] for u in listed}
    with pytest.raises(KeyError):
        sb.graph.restore_user(user["id"])


def test_hard_delete_reports_removed_deleted(sb: Sandbox) -> None:
    graph = Graph(sb)
    _, link = graph.round("/users/delta", {"$select": "displayName"})
    first, second = sb.graph.users[5]["id"], sb.graph.users[6]["id"]
    sb.graph.remove_user(first)
    sb.graph.soft_delete_user(second)
    sb.graph.remove_user(second)  # purging a soft-deleted user
    changes, _ = graph.changes(link)
    assert changes == [{"id": first, "@removed": REMOVED_DELETED},
                       {"id": second, "@removed": REMOVED_DELETED}]


def test_manager_delta(sb: Sandbox) -> None:
    graph = Graph(sb)
    pages, link = graph.round("/users/delta", {"$select": "displayName,manager"})
    by_id = {u["id"]: u for u in values(pages)}
    managed = next(u for u in sb.graph.users if u.get("manager"))
    assert by_id[managed["id"]]["manager@delta"] == [{"@odata.type": USER,
                                                      "id": managed["manager"]}]
    ceo = next(u for u in sb.graph.users if not u.get("manager"))
    assert "manager@delta" not in by_id[ceo["id"]]

    old_manager = managed["manager"]
    sb.graph.set_user(managed["id"], manager=None)
    changes, link = graph.changes(link)
    assert changes == [{"id": managed["id"], "manager@delta": [
        {"@odata.type": USER, "id": old_manager, "@removed": REMOVED_DELETED}]}]
    sb.graph.set_user(managed["id"], manager=ceo["id"])
    changes, _ = graph.changes(link)
    assert changes == [{"id": managed["id"],
                        "manager@delta": [{"@odata.type": USER, "id": ceo["id"]}]}]


def test_group_delta_with_members(sb: Sandbox) -> None:
    graph = Graph(sb)
    pages, link = graph.round("/groups/delta", {"$select": "displayName,members"})
    groups = {g["id"]: g for g in values(pages)}
    assert set(groups) == {g["id"] for g in sb.graph.groups}
    nested = next(g for g in sb.graph.groups if g["displayName"] == "Nested Team")
    assert [m["@odata.type"] for m in groups[nested["id"]]["members@delta"]] == [USER, USER,
                                                                                 GROUP]
    assert [m["id"] for m in groups[nested["id"]]["members@delta"]] == nested["members"]

    sales = next(g for g in sb.graph.groups if g["displayName"] == "Sales Agents")
    outsider = next(u["id"] for u in sb.graph.users if u["id"] not in sales["members"])
    leaver = sales["members"][0]
    sb.graph.add_group_member(sales["id"], outsider)
    sb.graph.add_group_member(sales["id"], outsider)  # already a member: no change
    sb.graph.remove_group_member(sales["id"], leaver)
    sb.graph.set_group(nested["id"], displayName="Nested Team (renamed)")
    changes, link = graph.changes(link)
    assert changes == [
        {"id": sales["id"], "members@delta": [
            {"@odata.type": USER, "id": outsider},
            {"@odata.type": USER, "id": leaver, "@removed": REMOVED_DELETED}]},
        {"id": nested["id"], "displayName": "Nested Team (renamed)"},
    ]
    members = graph.get(f"/groups/{sales['id']}/members", {"$select": "id"}).json()["value"]
    assert outsider in {m["id"] for m in members} and leaver not in {m["id"] for m in members}

    # Soft-deleting a member removes it from the group; restoring brings it back.
    sb.graph.soft_delete_user(outsider)
    changes, link = graph.changes(link)
    assert changes == [{"id": sales["id"], "members@delta": [
        {"@odata.type": USER, "id": outsider, "@removed": REMOVED_DELETED}]}]
    sb.graph.restore_user(outsider)
    changes, link = graph.changes(link)
    assert changes == [{"id": sales["id"], "members@delta": [{"@odata.type": USER,
                                                              "id": outsider}]}]

    # Without members in $select, membership changes are not reported.
    _, plain = graph.round("/groups/delta", {"$select": "displayName"})
    sb.graph.remove_group_member(sales["id"], outsider)
    assert graph.changes(plain)[0] == []
    assert graph.changes(link)[0] == [{"id": sales["id"], "members@delta": [
        {"@odata.type": USER, "id": outsider, "@removed": REMOVED_DELETED}]}]


def test_delta_token_latest_starts_from_now(sb: Sandbox) -> None:
    graph = Graph(sb)
    reply = graph.get("/users/delta", {"$select": "jobTitle", "$deltatoken": "latest"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["value"] == [] and "@odata.nextLink" not in body
    user = enabled_user(sb)
    sb.graph.set_user(user["id"], jobTitle="Fresh start")
    changes, _ = graph.changes(body["@odata.deltaLink"])
    assert changes == [{"id": user["id"], "jobTitle": "Fresh start"}]


def test_expired_and_malformed_tokens_are_410_with_location(sb: Sandbox) -> None:
    graph = Graph(sb)
    _, link = graph.round("/users/delta", {"$select": "displayName"})
    pending = graph.get("/users/delta", {"$select": "displayName"}, page_size=10).json()
    sb.graph.expire_delta_tokens()
    for url in (link, pending["@odata.nextLink"]):
        reply = graph.get(url, page_size=10)
        assert reply.status_code == 410, reply.text
        assert reply.json()["error"]["code"] == "syncStateNotFound"
        assert set(reply.json()["error"]) == {"code", "message", "innerError"}
        location = reply.headers["Location"]
        assert location.startswith(f"{sb.graph_url}/v1.0/users/delta")
        assert "token" not in location
        fresh = graph.get(location)
        assert fresh.status_code == 200 and len(fresh.json()["value"]) == len(sb.graph.users)
    for bad in ("bm9wZQ", "!!!", "c2J4LWRlbHRhOnVzZXI6eDp5OjE6MQ"):
        reply = graph.get("/groups/delta", {"$deltatoken": bad})
        assert reply.status_code == 410, bad
        assert reply.headers["Location"] == f"{sb.graph_url}/v1.0/groups/delta"
    # A users token is no groups token.
    _, users_link = graph.round("/users/delta")
    token = users_link.split("$deltatoken=")[1]
    assert graph.get("/groups/delta", {"$deltatoken": token}).status_code == 410


def test_trimmed_change_log_expires_old_tokens(sb: Sandbox) -> None:
    graph = Graph(sb)
    sb.graph.delta_log_limit = 4
    _, link = graph.round("/users/delta", {"$select": "jobTitle"})
    user = enabled_user(sb)
    for n in range(6):
        sb.graph.set_user(user["id"], jobTitle=f"Title {n}")
    assert len(sb.graph._changes["user"]) <= 4
    reply = graph.get(link)
    assert reply.status_code == 410
    _, fresh = graph.round(reply.headers["Location"])
    sb.graph.set_user(user["id"], jobTitle="Kept")
    assert graph.changes(fresh)[0] == [{"id": user["id"], "jobTitle": "Kept"}]


def test_unsupported_options_and_changed_select(sb: Sandbox) -> None:
    graph = Graph(sb)
    for bad in ({"$expand": "manager"}, {"$top": "5"}, {"$orderby": "displayName"},
                {"$select": "shoeSize"}, {"$count": "true"}):
        reply = graph.get("/users/delta", bad)
        assert reply.status_code == 400, bad
        assert set(reply.json()["error"]) == {"code", "message", "innerError"}
    assert graph.get("/groups/delta", {"$expand": "members"}).status_code == 400
    assert graph.get("/users/delta", {"$select": "members"}).status_code == 400
    assert graph.get("/groups/delta", {"$select": "manager"}).status_code == 400

    _, link = graph.round("/users/delta", {"$select": "displayName"})
    token = link.split("$deltatoken=")[1]
    other = graph.get("/users/delta", {"$select": "displayName,jobTitle",
                                         "$deltatoken": token})
    assert other.status_code == 400
    same = graph.get("/users/delta", {"$select": "id,displayName", "$deltatoken": token})
    assert same.status_code == 200
    assert graph.get("/users/delta()", {"$select": "displayName"}).status_code == 200


def test_incremental_rounds_page_and_replay(sb: Sandbox) -> None:
    graph = Graph(sb)
    _, link = graph.round("/users/delta", {"$select": "jobTitle"})
    changed = [u["id"] for u in sb.graph.users[:12]]
    for n, user_id in enumerate(changed):
        sb.graph.set_user(user_id, jobTitle=f"Round one {n}")
    sb.graph.set_user(changed[0], jobTitle="Changed twice")
    pages, link = graph.round(link, page_size=5)
    # Pages cut the change log by position: an object changed again later shows up again
    # (as on Graph), and merging in order gives the final state.
    assert [len(p["value"]) for p in pages] == [5, 5, 3]
    merged = merge(values(pages))
    assert list(merged) == changed
    assert merged[changed[0]] == {"id": changed[0], "jobTitle": "Changed twice"}

    sb.graph.replay_next_delta()
    last = sb.graph.users[20]["id"]
    sb.graph.set_user(last, jobTitle="Round two")
    replayed, link = graph.changes(link, page_size=5)
    assert list(merge(replayed)) == [*changed, last]  # round one again, then the new change
    assert graph.changes(link)[0] == []  # the replay happens once


def test_initial_round_survives_changes_while_paging(sb: Sandbox) -> None:
    graph = Graph(sb)
    ids = [u["id"] for u in sb.graph.users]
    first = graph.get("/users/delta", {"$select": "displayName"}, page_size=10).json()
    sb.graph.remove_user(ids[2])  # already delivered: must not shift later pages
    sb.graph.set_user(ids[15], displayName="Renamed while paging")
    pages, link = graph.round(first["@odata.nextLink"], page_size=10)
    seen = [u["id"] for u in first["value"]] + [u["id"] for u in values(pages)]
    assert seen == ids
    changes, _ = graph.changes(link)
    assert changes == [{"id": ids[2], "@removed": REMOVED_DELETED},
                       {"id": ids[15], "displayName": "Renamed while paging"}]


def test_mutators_reject_unknown_objects(sb: Sandbox) -> None:
    group_id = sb.graph.groups[0]["id"]
    calls: list[Callable[[], None]] = [
        lambda: sb.graph.soft_delete_user("nobody"),
        lambda: sb.graph.restore_user("nobody"),
        lambda: sb.graph.set_group("nothing", displayName="x"),
        lambda: sb.graph.add_group_member(group_id, "nobody"),
        lambda: sb.graph.remove_group_member("nothing", "nobody"),
    ]
    for call in calls:
        with pytest.raises(KeyError):
            call()

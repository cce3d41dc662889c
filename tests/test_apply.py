"""Applying: failures are per change, auth failures stop the run, POST is never re-sent
blindly, and concurrency is bounded."""

import json

import requests
import responses

from genesys_prov.config import TargetConfig
from genesys_prov.http import HttpClient, RateLimiter, make_session
from genesys_prov.plan.model import Action, AttributeChange, Change, Plan
from genesys_prov.target.apply import apply_plan
from genesys_prov.target.scim import ScimClient

BASE = "https://api.example.test/api/v2/scim/v2"


def client() -> ScimClient:
    http = HttpClient(make_session(), RateLimiter(0), timeout=5, sleep=lambda s: None)
    return ScimClient(TargetConfig(url=BASE, token="tok-123456"), http)


def create(name: str) -> Change:
    return Change(Action.CREATE, name, f"s-{name}", None, (
        AttributeChange("displayName", None, name.title()),
        AttributeChange("userName", None, name)))


def update(tid: str) -> Change:
    return Change(Action.UPDATE, tid, f"s-{tid}", tid, (AttributeChange("title", "a", "b"),))


@responses.activate
def test_one_failure_does_not_stop_the_others():
    responses.post(f"{BASE}/Users", status=400, json={"scimType": "invalidValue",
                                                      "detail": "bad phone"})
    responses.patch(f"{BASE}/Users/t1", json={"id": "t1"})
    result = apply_plan(Plan(changes=(create("a@x"), update("t1"))), client(), ["userName"], 2)
    assert result.counts() == {"success": 1, "failure": 1, "skipped": 0}
    (failed,) = result.failed
    assert failed.code == "HTTP400" and "bad phone" in (failed.error or "")


@responses.activate
def test_ambiguous_post_is_looked_up_not_resent():
    responses.post(f"{BASE}/Users", body=requests.ConnectionError("reset by peer"))
    responses.get(f"{BASE}/Users", json={"totalResults": 1, "Resources": [
        {"id": "t9", "userName": "a@x", "displayName": "A@X"}]})
    result = apply_plan(Plan(changes=(create("a@x"),)), client(), ["userName"], 1)
    (outcome,) = result.outcomes
    assert outcome.status == "adopted" and outcome.target_id == "t9"
    methods = [c.request.method for c in responses.calls]
    assert methods == ["POST", "GET"]  # one POST only; nothing differs, so no PATCH
    assert "filter=userName%20eq%20%22a%40x%22" in responses.calls[1].request.url


@responses.activate
def test_conflict_adopts_and_patches_only_the_difference():
    responses.post(f"{BASE}/Users", status=409, json={"scimType": "uniqueness",
                                                      "detail": "taken"})
    responses.get(f"{BASE}/Users", json={"totalResults": 1, "Resources": [
        {"id": "t9", "userName": "a@x", "displayName": "Old"}]})
    responses.patch(f"{BASE}/Users/t9", status=204)
    result = apply_plan(Plan(changes=(create("a@x"),)), client(), ["userName"], 1)
    assert result.outcomes[0].status == "adopted"
    body = json.loads(responses.calls[2].request.body)
    assert body["Operations"] == [{"op": "replace", "path": "displayName", "value": "A@X"}]


@responses.activate
def test_auth_failure_stops_the_run():
    responses.patch(f"{BASE}/Users/t1", status=401, json={"detail": "expired"})
    changes = tuple(update(f"t{i}") for i in range(1, 6))
    result = apply_plan(Plan(changes=changes), client(), ["userName"], 1)
    assert result.aborted is not None
    assert result.counts()["failure"] == 5
    assert len(responses.calls) == 1
    assert [o.code for o in result.outcomes][1:] == ["Aborted"] * 4


@responses.activate
def test_outcomes_are_in_plan_order_whatever_the_completion_order():
    for i in range(20):
        responses.patch(f"{BASE}/Users/t{i:02d}", status=204)
    changes = tuple(sorted((update(f"t{i:02d}") for i in range(20)), key=lambda c: c.sort_key))
    result = apply_plan(Plan(changes=changes), client(), ["userName"], 4)
    assert [o.change for o in result.outcomes] == list(changes)


# --- writes whose fate is unknown ---------------------------------------------------------------

NO_WAIT = {"sleep": lambda seconds: None}
FOUND = {"Resources": [{"id": "t-new", "userName": "a@x", "displayName": "A@X"}],
         "totalResults": 1}
NONE_FOUND = {"Resources": [], "totalResults": 0}


def posts() -> int:
    return sum(1 for c in responses.calls if c.request.method == "POST")


@responses.activate
def test_a_create_answered_503_is_looked_up_then_sent_again():
    responses.post(f"{BASE}/Users", status=503, json={"detail": "busy"})
    responses.post(f"{BASE}/Users", status=201, json={"id": "t-new"})
    responses.get(f"{BASE}/Users", json=NONE_FOUND)
    result = apply_plan(Plan(changes=(create("a@x"),)), client(), ["userName"], 1, **NO_WAIT)
    assert [o.status for o in result.outcomes] == ["success"]
    assert posts() == 2  # sent again only after the lookup found nothing


@responses.activate
def test_a_create_that_landed_but_lost_its_answer_is_adopted_not_sent_again():
    responses.post(f"{BASE}/Users", body=requests.ConnectionError("reset by peer"))
    responses.get(f"{BASE}/Users", json=FOUND)
    result = apply_plan(Plan(changes=(create("a@x"),)), client(), ["userName"], 1, **NO_WAIT)
    assert [(o.status, o.target_id) for o in result.outcomes] == [("adopted", "t-new")]
    assert posts() == 1


@responses.activate
def test_a_create_answered_201_with_garbage_is_found_not_sent_again():
    responses.post(f"{BASE}/Users", status=201, body="<html>gateway</html>")
    responses.get(f"{BASE}/Users", json=FOUND)
    result = apply_plan(Plan(changes=(create("a@x"),)), client(), ["userName"], 1, **NO_WAIT)
    assert [o.status for o in result.outcomes] == ["adopted"] and posts() == 1


@responses.activate
def test_an_add_patch_whose_fate_is_unknown_is_checked_before_it_is_sent_again():
    change = Change(Action.UPDATE, "u", "s-u", "t1", (
        AttributeChange('phoneNumbers[type eq "mobile"].value', None, "+14255550100", "add"),))
    responses.patch(f"{BASE}/Users/t1", body=requests.ConnectionError("reset by peer"))
    responses.get(f"{BASE}/Users/t1", json={"id": "t1", "phoneNumbers": [
        {"type": "mobile", "value": "+14255550100"}]})
    result = apply_plan(Plan(changes=(change,)), client(), ["userName"], 1, **NO_WAIT)
    assert [o.status for o in result.outcomes] == ["success"]
    assert sum(1 for c in responses.calls if c.request.method == "PATCH") == 1


@responses.activate
def test_transient_failures_get_one_more_pass_and_are_reported_once():
    for _ in range(6):  # every retry of the first attempt
        responses.patch(f"{BASE}/Users/t1", status=503, json={"detail": "busy"})
    responses.patch(f"{BASE}/Users/t1", json={"id": "t1"})
    seen: list[str] = []
    slept: list[float] = []
    result = apply_plan(Plan(changes=(update("t1"),)), client(), ["userName"], 1,
                        on_outcome=lambda o: seen.append(o.status), sleep=slept.append)
    assert seen == ["success"] and result.retried == 1
    assert slept == [10.0]  # RETRY_PASS_DELAY


@responses.activate
def test_a_reviewed_change_without_a_version_is_compared_first():
    from genesys_prov.target.apply import Applier

    responses.get(f"{BASE}/Users/t1", json={"id": "t1", "title": "edited by hand"})
    outcome = Applier(client(), ["userName"], strict=True).apply_one(update("t1"))
    assert (outcome.status, outcome.code) == ("skipped", "ChangedSincePlan")
    assert "'edited by hand' in the target, the plan expected 'a'" in (outcome.error or "")
    assert not [c for c in responses.calls if c.request.method == "PATCH"]
    responses.replace(responses.GET, f"{BASE}/Users/t1",
                      json={"id": "t1", "title": "a", "meta": {"version": 'W/"7"'}})
    responses.patch(f"{BASE}/Users/t1", json={"id": "t1"})
    outcome = Applier(client(), ["userName"], strict=True).apply_one(update("t1"))
    assert outcome.status == "success"
    assert responses.calls[-1].request.headers["If-Match"] == 'W/"7"'


@responses.activate
def test_a_reviewed_change_whose_own_first_attempt_landed_is_not_called_stale():
    """The PATCH landed but its answer was lost; the retry's If-Match no longer matches
    (our own write moved the version): the user holds the new value, so it is a success,
    not ChangedSincePlan."""
    from dataclasses import replace

    from genesys_prov.target.apply import Applier

    responses.patch(f"{BASE}/Users/t1", body=requests.ConnectionError("reset by peer"))
    responses.patch(f"{BASE}/Users/t1", status=412, json={"detail": "version mismatch"})
    responses.get(f"{BASE}/Users/t1", json={"id": "t1", "title": "b"})
    change = replace(update("t1"), version='W/"1"')
    outcome = Applier(client(), ["userName"], strict=True).apply_one(change)
    assert outcome.status == "success"


@responses.activate
def test_the_retry_pass_looks_for_a_create_that_may_have_landed_before_sending_it_again():
    """Three POSTs lost their answers and three lookups found nothing (a lagging search):
    the end-of-phase retry pass looks once more before it sends anything, and finds it (a
    group's name need not be unique, so a blind POST there could make a duplicate)."""
    for _ in range(3):
        responses.post(f"{BASE}/Users", body=requests.ConnectionError("reset by peer"))
        responses.get(f"{BASE}/Users", json=NONE_FOUND)
    responses.post(f"{BASE}/Users", status=201, json={"id": "t-duplicate"})
    responses.get(f"{BASE}/Users", json=FOUND)
    result = apply_plan(Plan(changes=(create("a@x"),)), client(), ["userName"], 1, **NO_WAIT)
    assert [(o.status, o.target_id) for o in result.outcomes] == [("adopted", "t-new")]
    assert posts() == 3 and result.retried == 1


def test_results_come_as_they_finish_with_few_changes_in_flight():
    """A slow change holds back neither the others nor their recording; at most
    ``IN_FLIGHT_PER_WORKER × workers`` changes are submitted at a time."""
    import threading

    from genesys_prov.target.apply import IN_FLIGHT_PER_WORKER, _bounded_map

    release = threading.Event()
    pulled: list[int] = []
    seen: list[int] = []

    def items():
        for i in range(40):
            pulled.append(i)
            yield i

    def slow_first(i):
        if i == 0:
            assert release.wait(30)
        return i

    for result in _bounded_map(slow_first, items(), 2):
        assert len(pulled) - len(seen) <= 2 * IN_FLIGHT_PER_WORKER + 1
        seen.append(result)
        if len(seen) == 5:
            release.set()
    assert seen[0] != 0 and sorted(seen) == list(range(40))

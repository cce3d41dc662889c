"""Incremental runs planned from the snapshot — pure units, no HTTP, no sandbox.

The fixture directory has two linked users: Ann (``s1`` ↔ ``t1``) whose manager is Bob, and
Bob (``s2`` ↔ ``t2``). The repository's ``mappings.yaml`` (the Genesys defaults, manager
included) is the mapping under test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genesys_prov import apply as applying
from genesys_prov.directory import scoped_user
from genesys_prov.incremental import (
    SNAPSHOT_META,
    Delta,
    QuickPlan,
    after_change,
    applied_rows,
    merge_user,
    plan_from_snapshot,
    stored_user,
    target_from_json,
    target_json,
)
from genesys_prov.mapping import Mappings, load_mappings
from genesys_prov.plan import (
    Action,
    AttributeChange,
    Change,
    GroupAction,
    GroupChange,
    MemberRef,
    Plan,
    PlanOptions,
    TargetUser,
    build_plan,
    snapshot,
)
from genesys_prov.scimpath import ENTERPRISE_USER
from genesys_prov.state import State

ROOT = Path(__file__).resolve().parent.parent
MAPPINGS: Mappings = load_mappings(ROOT / "mappings.yaml")
WIDTH = len(MAPPINGS.user_paths())
POSITION = {name: i for i, (name, _) in enumerate(MAPPINGS.user_paths())}
assert MAPPINGS.manager_mapping is not None
MANAGER = MAPPINGS.manager_mapping.target
TITLE = "title"
MOBILE = 'phoneNumbers[type eq "mobile"].value'
DEPARTMENT = f"{ENTERPRISE_USER}:department"
DIGEST = "settings-digest-1"
RUN = "run-1"
USER_TYPE = "#microsoft.graph.user"
REMOVED = {"reason": "deleted"}
NOT_ASSIGNED = "not assigned to the application"


# --- helpers --------------------------------------------------------------------------------

def graph_user(sid: str, name: str, manager: str | None = None, **props: Any) -> dict[str, Any]:
    """A Graph user object as a full directory read returns it."""
    user: dict[str, Any] = {
        "@odata.type": USER_TYPE, "id": sid, "userPrincipalName": f"{name}@contoso.com",
        "displayName": name.title(), "mail": f"{name}@contoso.com", "jobTitle": "Agent",
        "department": "Sales", "accountEnabled": True, "mobilePhone": None,
        "businessPhones": [],
    }
    if manager is not None:
        user["manager"] = {"@odata.type": USER_TYPE, "id": manager}
    user.update(props)
    return user


def scim_user(tid: str, source: dict[str, Any], manager: str | None = None,
              active: bool | None = None) -> dict[str, Any]:
    """The SCIM resource that holds ``source`` in the target (in sync with it)."""
    enterprise: dict[str, Any] = {"department": source["department"]}
    if manager is not None:
        enterprise["manager"] = {"value": manager}
    return {
        "id": tid, "userName": source["userPrincipalName"],
        "active": source["accountEnabled"] if active is None else active,
        "displayName": source["displayName"], "title": source["jobTitle"],
        "emails": [{"type": "work", "value": source["mail"]}],
        ENTERPRISE_USER: enterprise, "meta": {"version": 'W/"1"'},
    }


def target_of(tid: str, source: dict[str, Any], manager: str | None = None,
              active: bool | None = None) -> TargetUser:
    """The :class:`TargetUser` a target read would give for ``scim_user(...)``."""
    return snapshot(scim_user(tid, source, manager, active), MAPPINGS)


def value(user: TargetUser, name: str) -> Any:
    return user.values[POSITION[name]]


def update(*attributes: AttributeChange, sid: str = "s1", tid: str | None = "t1",
           action: Action = Action.UPDATE) -> Change:
    return Change(action, f"{sid}@contoso.com", sid, tid, attributes)


def store(state: State, user: dict[str, Any], linked: TargetUser | None = None,
          reason: str | None = None, applied: bool = True) -> None:
    """Put one directory user in the snapshot; link it to ``linked`` (and record what the
    target holds, unless ``applied`` is false)."""
    sid = str(user["id"])
    state.put_source_users(RUN, [(sid, stored_user(user), reason is None, reason)])
    if linked is not None:
        state.link("user", sid, linked.id)
        if applied:
            state.set_applied([(sid, target_json(linked))])


def quick(state: State, *users: dict[str, Any], groups: tuple[dict[str, Any], ...] = (),
          digest: str = DIGEST) -> QuickPlan | str:
    """Plan the delta round ``users`` (partial objects) from the snapshot."""
    delta = Delta(changes={"users": list(users), "groups": list(groups)})
    return plan_from_snapshot(state, delta, MAPPINGS, digest,
                              PlanOptions(links=state.links("user")), None)


def planned(result: QuickPlan | str) -> QuickPlan:
    assert isinstance(result, QuickPlan), f"fell back: {result}"
    return result


def triples(change: Change) -> list[tuple[str, Any, Any]]:
    return [(a.attribute, a.old, a.new) for a in change.attributes]


ANN = graph_user("s1", "ann", manager="s2")
BOB = graph_user("s2", "bob", jobTitle="Lead")
CAROL = graph_user("s3", "carol", jobTitle="Director")
T_ANN = target_of("t1", ANN, manager="t2")
T_BOB = target_of("t2", BOB)
T_CAROL = target_of("t3", CAROL)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[State]:
    with State.open(tmp_path / "state") as opened:
        yield opened


@pytest.fixture
def seeded(state: State) -> State:
    """A finished run's snapshot: Ann (managed by Bob), Bob and Carol, all linked."""
    store(state, ANN, T_ANN)
    store(state, BOB, T_BOB)
    store(state, CAROL, T_CAROL)
    state.set_meta(SNAPSHOT_META, DIGEST)
    return state


def test_fixture_directory_and_target_are_in_sync() -> None:
    """Guards the fixtures: a full plan of the same data changes nothing."""
    desired = [scoped_user(u, MAPPINGS, None) for u in (ANN, BOB, CAROL)]
    plan = build_plan(desired, [T_ANN, T_BOB, T_CAROL], MAPPINGS,
                      options=PlanOptions(links={"s1": "t1", "s2": "t2", "s3": "t3"}))
    assert plan.changes == () and plan.failures == () and plan.unchanged == 3


# --- Delta ----------------------------------------------------------------------------------

def test_delta_counts_changes_and_collects_changed_user_ids() -> None:
    delta = Delta(changes={
        "users": [{"id": "s1", "jobTitle": "x"}, {"id": "s2", "@removed": REMOVED}],
        "groups": [{"id": "g1", "members@delta": [
            {"@odata.type": USER_TYPE, "id": "s3"},
            {"@odata.type": USER_TYPE, "id": "s4", "@removed": REMOVED}]}],
    })
    assert delta.count == 3
    assert delta.changed_user_ids() == {"s1", "s2", "s3", "s4"}


# --- merge_user -----------------------------------------------------------------------------

def test_merge_replaces_only_the_properties_the_partial_carries() -> None:
    merged = merge_user(ANN, {"id": "s1", "jobTitle": "Lead", "mobilePhone": "+14255550100"})
    assert merged == {**ANN, "jobTitle": "Lead", "mobilePhone": "+14255550100"}


def test_merge_does_not_modify_the_stored_user() -> None:
    stored = dict(ANN)
    merge_user(stored, {"id": "s1", "jobTitle": "Lead"})
    assert stored == ANN


def test_merge_can_set_a_property_to_null() -> None:
    assert merge_user(ANN, {"id": "s1", "jobTitle": None})["jobTitle"] is None


def test_manager_delta_with_an_id_sets_the_manager() -> None:
    merged = merge_user(ANN, {"id": "s1",
                              "manager@delta": [{"@odata.type": USER_TYPE, "id": "s3"}]})
    assert merged["manager"] == {"id": "s3"}
    assert "manager@delta" not in merged


def test_manager_delta_sets_a_manager_on_a_user_without_one() -> None:
    merged = merge_user(BOB, {"id": "s2", "manager@delta": [{"id": "s3"}]})
    assert merged["manager"] == {"id": "s3"}


def test_manager_delta_removed_clears_the_manager() -> None:
    merged = merge_user(ANN, {"id": "s1", "manager@delta": [
        {"@odata.type": USER_TYPE, "id": "s2", "@removed": REMOVED}]})
    assert merged["manager"] is None


def test_manager_delta_with_a_removal_and_an_addition_keeps_the_new_manager() -> None:
    for entries in ([{"id": "s2", "@removed": REMOVED}, {"id": "s3"}],
                    [{"id": "s3"}, {"id": "s2", "@removed": REMOVED}]):
        assert merge_user(ANN, {"id": "s1", "manager@delta": entries})["manager"] == \
            {"id": "s3"}


def test_merge_skips_annotations_and_the_id() -> None:
    merged = merge_user(ANN, {"id": "S1-OTHER", "@odata.type": USER_TYPE,
                              "@odata.context": "https://graph/x", "jobTitle@odata.type": "x",
                              "jobTitle": "Lead"})
    assert merged == {**ANN, "jobTitle": "Lead"}


PARTIALS = [
    {"id": "s1", "jobTitle": "Lead", "department": None},
    {"id": "s1", "manager@delta": [{"@odata.type": USER_TYPE, "id": "s3"}]},
    {"id": "s1", "manager@delta": [{"@odata.type": USER_TYPE, "id": "s2",
                                    "@removed": REMOVED}]},
    {"id": "s1", "@odata.type": USER_TYPE, "accountEnabled": False},
]


@pytest.mark.parametrize("partial", PARTIALS)
def test_merging_the_same_partial_twice_equals_merging_once(partial: dict[str, Any]) -> None:
    once = merge_user(ANN, partial)
    assert merge_user(once, partial) == once


# --- stored_user ----------------------------------------------------------------------------

def test_stored_user_drops_annotations() -> None:
    data = json.loads(stored_user({**ANN, "@odata.etag": "W/1", "@removed": REMOVED}))
    assert "@odata.type" not in data and "@odata.etag" not in data and "@removed" not in data
    assert data == {k: v for k, v in ANN.items() if not k.startswith("@")}


def test_stored_user_is_stable_json() -> None:
    reordered = dict(reversed(list(ANN.items())))
    text = stored_user(ANN)
    assert stored_user(reordered) == text
    assert stored_user(json.loads(text)) == text  # storing what was stored changes nothing
    assert ", " not in text and ": " not in text  # compact
    assert list(json.loads(text)) == sorted(json.loads(text))


# --- target_json / target_from_json ---------------------------------------------------------

@pytest.mark.parametrize("user", [
    T_ANN,
    target_of("t9", graph_user("s9", "zed", accountEnabled=False, mobilePhone="+1425")),
])
def test_target_json_round_trip(user: TargetUser) -> None:
    assert user.version == 'W/"1"'
    back = target_from_json(target_json(user), WIDTH)
    assert back == TargetUser(user.id, user.user_name, user.active, None, user.values,
                              user.present, user.manager)


def test_target_from_json_keeps_a_missing_manager_and_inactive_state() -> None:
    user = TargetUser("t5", "x@contoso.com", False, "v", (None,) * WIDTH, (False,) * WIDTH)
    back = target_from_json(target_json(user), WIDTH)
    assert back is not None and back.manager is None and back.active is False


@pytest.mark.parametrize("width", [WIDTH - 1, WIDTH + 1, 0])
def test_target_from_json_none_when_the_width_differs(width: int) -> None:
    assert target_from_json(target_json(T_ANN), width) is None


def test_target_from_json_none_when_values_and_present_disagree() -> None:
    data = json.loads(target_json(T_ANN))
    data["present"] = data["present"][:-1]
    assert target_from_json(json.dumps(data), WIDTH) is None
    data = json.loads(target_json(T_ANN))
    data["values"] = None
    assert target_from_json(json.dumps(data), WIDTH) is None


# --- after_change ---------------------------------------------------------------------------

def after(before: TargetUser | None, change: Change, target_id: str = "t1",
          links: dict[str, str] | None = None) -> TargetUser:
    return after_change(before, change, target_id, MAPPINGS, links or {})


def test_update_changes_only_the_named_attributes() -> None:
    now = after(T_ANN, update(AttributeChange(TITLE, "Agent", "Lead"),
                              AttributeChange(MOBILE, None, "+14255550100", op="add")))
    assert value(now, TITLE) == "Lead" and value(now, MOBILE) == "+14255550100"
    assert now.present[POSITION[MOBILE]] is True
    assert not T_ANN.present[POSITION[MOBILE]]
    others = [i for i in range(WIDTH) if i not in (POSITION[TITLE], POSITION[MOBILE])]
    assert [now.values[i] for i in others] == [T_ANN.values[i] for i in others]
    assert [now.present[i] for i in others] == [T_ANN.present[i] for i in others]
    assert (now.id, now.user_name, now.active, now.manager, now.version) == \
        ("t1", T_ANN.user_name, True, "t2", None)


def test_update_of_username_renames() -> None:
    now = after(T_ANN, update(AttributeChange("userName", T_ANN.user_name, "ann2@contoso.com")))
    assert now.user_name == "ann2@contoso.com" == value(now, "userName")


def test_manager_ref_with_a_target_id_sets_the_manager() -> None:
    ref = MemberRef("t3", "s3", "carol@contoso.com")
    now = after(T_ANN, update(AttributeChange(MANAGER, MemberRef("t2", None, "bob"), ref)))
    assert now.manager == "t3"
    assert now.values == T_ANN.values


def test_manager_ref_with_only_a_source_id_resolves_through_links() -> None:
    ref = MemberRef(None, "s7", "new@contoso.com")
    change = update(AttributeChange(MANAGER, None, ref))
    assert after(T_BOB, change, "t2", links={"s7": "t7"}).manager == "t7"
    assert after(T_BOB, change, "t2", links={}).manager is None  # the manager was not created


def test_manager_removed_clears_the_manager() -> None:
    now = after(T_ANN, update(AttributeChange(MANAGER, MemberRef("t2", None, "bob"), None,
                                              op="remove")))
    assert now.manager is None


def test_deactivate_makes_the_user_inactive() -> None:
    now = after(T_ANN, update(AttributeChange("active", True, False),
                              action=Action.DEACTIVATE))
    assert now.active is False and value(now, "active") is False
    bare = after(T_ANN, update(action=Action.DEACTIVATE))
    assert bare.active is False


def test_reactivate_makes_the_user_active() -> None:
    inactive = target_of("t1", ANN, manager="t2", active=False)
    now = after(inactive, update(AttributeChange("active", False, True),
                                 action=Action.REACTIVATE))
    assert now.active is True and value(now, "active") is True


def test_create_without_prior_builds_values_from_the_attributes() -> None:
    change = update(AttributeChange("userName", None, "new@contoso.com"),
                    AttributeChange("displayName", None, "New"),
                    AttributeChange(TITLE, None, "Agent"),
                    AttributeChange("active", None, True),
                    AttributeChange(MANAGER, None, MemberRef(None, "s2", "bob")),
                    sid="s8", tid=None, action=Action.CREATE)
    now = after(None, change, "t8", links={"s2": "t2"})
    assert (now.id, now.user_name, now.active, now.manager, now.version) == \
        ("t8", "new@contoso.com", True, "t2", None)
    expected: list[Any] = [None] * WIDTH
    for name, new in (("userName", "new@contoso.com"), ("displayName", "New"),
                      (TITLE, "Agent"), ("active", True)):
        expected[POSITION[name]] = new
    assert list(now.values) == expected
    assert list(now.present) == [v is not None for v in expected]


def test_created_user_snapshot_plans_no_change_for_the_same_desired_user() -> None:
    """What after_change records for a create is what the planner compares with next time."""
    user = graph_user("s8", "new")
    create = build_plan([scoped_user(user, MAPPINGS, None)], [], MAPPINGS).changes[0]
    assert create.action is Action.CREATE
    now = after(None, create, "t8")
    again = build_plan([scoped_user(user, MAPPINGS, None)], [now], MAPPINGS,
                       options=PlanOptions(links={"s8": "t8"}))
    assert again.changes == () and again.unchanged == 1


# --- applied_rows ---------------------------------------------------------------------------

def rows(plan: Plan, outcomes: list[applying.Outcome], before: dict[str, TargetUser],
         links: dict[str, str] | None = None) -> dict[str, TargetUser | None]:
    out = applied_rows(plan, before, outcomes, MAPPINGS, links or {})
    assert len(out) == len({sid for sid, _ in out})
    return {sid: target_from_json(text, WIDTH) if text is not None else None
            for sid, text in out}


def without_version(user: TargetUser) -> TargetUser:
    return TargetUser(user.id, user.user_name, user.active, None, user.values, user.present,
                      user.manager)


BEFORE = {"t1": T_ANN, "t2": T_BOB}
MATCHED = Plan(matched=(("s1", "t1"), ("s2", "t2")))
TITLE_CHANGE = update(AttributeChange(TITLE, "Agent", "Lead"))


def test_matched_users_keep_their_before_snapshot() -> None:
    assert rows(MATCHED, [], BEFORE) == {"s1": without_version(T_ANN),
                                         "s2": without_version(T_BOB)}


def test_success_gives_the_after_change_snapshot() -> None:
    plan = Plan(changes=(TITLE_CHANGE,), matched=MATCHED.matched)
    got = rows(plan, [applying.Outcome(TITLE_CHANGE, applying.SUCCESS, "t1")], BEFORE)
    assert got["s1"] == after(T_ANN, TITLE_CHANGE)
    assert got["s1"] is not None and value(got["s1"], TITLE) == "Lead"
    assert got["s2"] == without_version(T_BOB)


@pytest.mark.parametrize("status", [applying.FAILURE, applying.SKIPPED])
def test_failed_or_skipped_change_makes_the_target_unknown(status: str) -> None:
    plan = Plan(changes=(TITLE_CHANGE,), matched=MATCHED.matched)
    got = rows(plan, [applying.Outcome(TITLE_CHANGE, status, "t1", "boom", "Error")], BEFORE)
    assert got == {"s1": None, "s2": without_version(T_BOB)}


def test_success_without_a_target_id_makes_the_target_unknown() -> None:
    plan = Plan(changes=(TITLE_CHANGE,), matched=MATCHED.matched)
    got = rows(plan, [applying.Outcome(TITLE_CHANGE, applying.SUCCESS, None)], BEFORE)
    assert got["s1"] is None


def test_adopted_create_makes_the_target_unknown() -> None:
    create = update(AttributeChange("userName", None, "new@contoso.com"), sid="s8", tid=None,
                    action=Action.CREATE)
    got = rows(Plan(changes=(create,)), [applying.Outcome(create, applying.ADOPTED, "t8")], {})
    assert got == {"s8": None}


def test_create_success_is_recorded_under_the_new_target_id() -> None:
    create = update(AttributeChange("userName", None, "new@contoso.com"),
                    AttributeChange("active", None, True), sid="s8", tid=None,
                    action=Action.CREATE)
    got = rows(Plan(changes=(create,)), [applying.Outcome(create, applying.SUCCESS, "t8")], {})
    assert got["s8"] is not None
    assert (got["s8"].id, got["s8"].user_name, got["s8"].active) == \
        ("t8", "new@contoso.com", True)


def test_late_manager_update_builds_on_the_created_user() -> None:
    create = update(AttributeChange("userName", None, "new@contoso.com"), sid="s8", tid=None,
                    action=Action.CREATE)
    late = update(AttributeChange(MANAGER, None, MemberRef(None, "s9", "nine")), sid="s8",
                  tid=None)
    got = rows(Plan(changes=(create, late)),
               [applying.Outcome(create, applying.SUCCESS, "t8"),
                applying.Outcome(late, applying.SUCCESS, "t8")], {}, links={"s9": "t9"})
    assert got["s8"] is not None
    assert (got["s8"].user_name, got["s8"].manager) == ("new@contoso.com", "t9")


def test_unmatched_user_deactivation_builds_on_the_before_snapshot() -> None:
    gone = update(AttributeChange("active", True, False), sid="s2", tid="t2",
                  action=Action.DEACTIVATE)
    got = rows(Plan(changes=(gone,)), [applying.Outcome(gone, applying.SUCCESS, "t2")], BEFORE)
    assert got["s2"] is not None and got["s2"].active is False
    assert got["s2"].values[POSITION[TITLE]] == "Lead"


def test_delete_changes_are_left_out() -> None:
    delete = update(sid="s2", tid="t2", action=Action.DELETE)
    plan = Plan(changes=(delete,), matched=(("s1", "t1"),))
    for status in (applying.SUCCESS, applying.FAILURE):
        got = rows(plan, [applying.Outcome(delete, status, "t2")], BEFORE)
        assert got == {"s1": without_version(T_ANN)}


def test_group_outcomes_are_left_out() -> None:
    group = GroupChange(GroupAction.UPDATE, "Sales", "g1", "tg1",
                        add=(MemberRef("t1", "s1", "ann"),))
    got = rows(Plan(group_changes=(group,)), [applying.Outcome(group, applying.SUCCESS, "tg1")],
               BEFORE)
    assert got == {}


# --- plan_from_snapshot: when it must fall back -----------------------------------------------

@pytest.mark.parametrize("stored_digest", [None, "an-older-digest"])
def test_falls_back_without_a_snapshot_of_these_settings(state: State,
                                                          stored_digest: str | None) -> None:
    store(state, ANN, T_ANN)
    store(state, BOB, T_BOB)
    if stored_digest is not None:
        state.set_meta(SNAPSHOT_META, stored_digest)
    result = quick(state, {"id": "s1", "jobTitle": "Lead"})
    assert result == "no complete snapshot from the last run"


def test_falls_back_when_groups_changed(seeded: State) -> None:
    group = {"id": "g1", "members@delta": [{"@odata.type": USER_TYPE, "id": "s1"}]}
    assert quick(seeded, {"id": "s1", "jobTitle": "Lead"}, groups=(group,)) == "groups changed"


@pytest.mark.parametrize("removed", [{"reason": "deleted"}, {"reason": "changed"}])
def test_falls_back_when_a_user_was_removed(seeded: State, removed: dict[str, str]) -> None:
    result = quick(seeded, {"id": "s1", "jobTitle": "Lead"}, {"id": "s2", "@removed": removed})
    assert result == "a user was deleted"


def test_falls_back_for_a_user_the_snapshot_does_not_know(seeded: State) -> None:
    new = graph_user("s9", "newcomer")
    assert quick(seeded, {"id": "s1", "jobTitle": "Lead"}, new) == \
        "a user the snapshot does not know"


def test_falls_back_for_a_partial_without_an_id(seeded: State) -> None:
    assert quick(seeded, {"jobTitle": "Lead"}) == "a user the snapshot does not know"


SCOPE_CHANGED = "a user entered or left scope, or was enabled or disabled"


def test_falls_back_when_a_user_is_disabled(seeded: State) -> None:
    assert quick(seeded, {"id": "s1", "accountEnabled": False}) == SCOPE_CHANGED


def test_falls_back_when_a_user_is_enabled(state: State) -> None:
    disabled = graph_user("s4", "dan", accountEnabled=False)
    store(state, disabled, target_of("t4", disabled))
    state.set_meta(SNAPSHOT_META, DIGEST)
    assert quick(state, {"id": "s4", "accountEnabled": True}) == SCOPE_CHANGED


def test_falls_back_when_a_linked_user_has_no_stored_target_state(seeded: State) -> None:
    dan = graph_user("s4", "dan")
    store(seeded, dan, target_of("t4", dan), applied=False)
    assert quick(seeded, {"id": "s4", "jobTitle": "Lead"}) == \
        "a changed user has no stored target state"


def test_falls_back_when_the_link_was_rewritten_since(seeded: State) -> None:
    seeded.link("user", "s1", "t1")  # a change was written: what the target holds is unknown
    assert quick(seeded, {"id": "s1", "jobTitle": "Lead"}) == \
        "a changed user has no stored target state"


def test_falls_back_when_the_stored_target_state_has_another_width(seeded: State) -> None:
    narrow = TargetUser("t1", "ann@contoso.com", True, None, ("x",), (True,))
    seeded.set_applied([("s1", target_json(narrow))])
    assert quick(seeded, {"id": "s1", "jobTitle": "Lead"}) == \
        "a changed user has no stored target state"


def test_falls_back_for_an_in_scope_user_who_is_not_linked(seeded: State) -> None:
    store(seeded, graph_user("s4", "dan"))  # known to the directory, never matched
    assert quick(seeded, {"id": "s4", "jobTitle": "Lead"}) == \
        "a changed user in scope is not linked"


# --- plan_from_snapshot: planning -------------------------------------------------------------

def test_a_title_change_is_one_update_from_the_snapshot(seeded: State) -> None:
    result = planned(quick(seeded, {"@odata.type": USER_TYPE, "id": "s1", "jobTitle": "Lead"}))
    (change,) = result.plan.changes
    assert (change.action, change.source_id, change.target_id) == (Action.UPDATE, "s1", "t1")
    assert triples(change) == [(TITLE, "Agent", "Lead")]  # the unchanged manager is not sent
    assert result.plan.failures == () and result.plan.group_changes == ()
    assert result.plan.matched == (("s1", "t1"),)
    assert result.before == {"t1": without_version(T_ANN)}
    ((sid, text, member_scope, reason),) = result.source_rows
    assert (sid, member_scope, reason) == ("s1", True, None)
    assert json.loads(text) == {**json.loads(stored_user(ANN)), "jobTitle": "Lead"}
    assert text == stored_user(merge_user(ANN, {"jobTitle": "Lead"}))


def test_quick_plan_equals_a_full_plan_of_the_merged_directory(seeded: State) -> None:
    partials = [{"id": "s1", "jobTitle": "Lead", "department": "Support"},
                {"id": "s2", "mobilePhone": "+14255550100"}]
    result = planned(quick(seeded, *partials))
    directory = [merge_user(ANN, partials[0]), merge_user(BOB, partials[1]), CAROL]
    full = build_plan([scoped_user(u, MAPPINGS, None) for u in directory],
                      [T_ANN, T_BOB, T_CAROL], MAPPINGS,
                      options=PlanOptions(links=seeded.links("user")))
    assert [(c.action, c.source_id, triples(c)) for c in result.plan.changes] == \
        [(c.action, c.source_id, triples(c)) for c in full.changes]
    assert len(result.plan.changes) == 2


def test_a_new_manager_is_resolved_through_the_links(seeded: State) -> None:
    result = planned(quick(seeded, {"id": "s1", "manager@delta": [
        {"@odata.type": USER_TYPE, "id": "s3"}]}))
    (change,) = result.plan.changes
    (item,) = change.attributes
    assert item.attribute == MANAGER
    assert isinstance(item.old, MemberRef) and item.old.target_id == "t2"
    # (its display is the target id: the quick plan holds no target user for Bob)
    assert item.new == MemberRef("t3", "s3", "carol@contoso.com")
    assert json.loads(result.source_rows[0][1])["manager"] == {"id": "s3"}


def test_a_manager_change_shows_the_same_as_a_full_plan(seeded: State) -> None:
    partial = {"id": "s1", "manager@delta": [{"@odata.type": USER_TYPE, "id": "s3"}]}
    result = planned(quick(seeded, partial))
    directory = [merge_user(ANN, partial), BOB, CAROL]
    full = build_plan([scoped_user(u, MAPPINGS, None) for u in directory],
                      [T_ANN, T_BOB, T_CAROL], MAPPINGS,
                      options=PlanOptions(links=seeded.links("user")))
    assert [a.data() for a in result.plan.changes[0].attributes] == \
        [a.data() for a in full.changes[0].attributes]


def test_a_removed_manager_is_removed(seeded: State) -> None:
    result = planned(quick(seeded, {"id": "s1", "manager@delta": [
        {"@odata.type": USER_TYPE, "id": "s2", "@removed": REMOVED}]}))
    (change,) = result.plan.changes
    assert [(a.attribute, a.new, a.op) for a in change.attributes] == [(MANAGER, None, "remove")]


def test_a_change_of_an_unmapped_property_plans_nothing(seeded: State) -> None:
    result = planned(quick(seeded, {"id": "s1", "officeLocation": "B2"}))
    assert result.plan.changes == () and result.plan.unchanged == 1
    assert json.loads(result.source_rows[0][1])["officeLocation"] == "B2"


def test_a_user_changed_twice_in_one_round_is_planned_once(seeded: State) -> None:
    result = planned(quick(seeded, {"id": "s1", "jobTitle": "Lead"},
                           {"id": "s1", "department": "Support"},
                           {"id": "s1", "jobTitle": "Lead"}))
    (change,) = result.plan.changes
    assert triples(change) == [(TITLE, "Agent", "Lead"), (DEPARTMENT, "Sales", "Support")]
    assert len(result.source_rows) == 1


def test_a_user_out_of_scope_before_and_after_produces_no_change(state: State) -> None:
    outsider = graph_user("s5", "eve")
    store(state, outsider, reason=NOT_ASSIGNED)  # never provisioned: no link, no target state
    state.set_meta(SNAPSHOT_META, DIGEST)
    result = planned(quick(state, {"id": "s5", "jobTitle": "Lead"}))
    assert result.plan.changes == () and result.plan.failures == ()
    assert result.before == {}
    ((sid, text, member_scope, reason),) = result.source_rows
    assert (sid, member_scope, reason) == ("s5", False, NOT_ASSIGNED)
    assert json.loads(text)["jobTitle"] == "Lead"


def test_a_disabled_user_still_disabled_produces_no_change(state: State) -> None:
    disabled = graph_user("s4", "dan", accountEnabled=False)
    store(state, disabled, target_of("t4", disabled))
    state.set_meta(SNAPSHOT_META, DIGEST)
    result = planned(quick(state, {"id": "s4", "jobTitle": "Lead"}))
    assert result.plan.changes == ()


def test_the_in_scope_count_is_the_last_runs(seeded: State) -> None:
    run_id = seeded.start_run(False)
    seeded.finish_run(run_id, "success", 42, {})
    assert planned(quick(seeded, {"id": "s1", "jobTitle": "Lead"})).plan.in_scope == 42


def test_planning_writes_nothing(seeded: State) -> None:
    planned(quick(seeded, {"id": "s1", "jobTitle": "Lead"}))
    ((text, _, _),) = seeded.source_users(["s1"]).values()
    assert json.loads(text)["jobTitle"] == "Agent"
    assert seeded.applied(["s1"]) == {"s1": target_json(T_ANN)}


def test_a_disabled_user_whose_target_is_still_active_is_deactivated(state: State) -> None:
    disabled = graph_user("s4", "dan", accountEnabled=False)
    still_active = target_of("t4", disabled, active=True)
    store(state, disabled, still_active)
    state.set_meta(SNAPSHOT_META, DIGEST)
    merged = merge_user(disabled, {"jobTitle": "Lead"})
    full = build_plan([scoped_user(merged, MAPPINGS, None)], [still_active], MAPPINGS,
                      options=PlanOptions(links={"s4": "t4"}))
    assert [c.action for c in full.changes] == [Action.DEACTIVATE]
    result = quick(state, {"id": "s4", "jobTitle": "Lead"})
    # either plan the deactivation, or fall back to a plan that reads the target
    assert isinstance(result, str) or \
        [c.action for c in result.plan.changes] == [Action.DEACTIVATE]


def test_a_new_state_directory_is_private_to_its_owner(tmp_path: Path) -> None:
    with State.open(tmp_path / "fresh") as state:
        assert state.directory.stat().st_mode & 0o077 == 0
        assert (state.directory / "logs").stat().st_mode & 0o077 == 0

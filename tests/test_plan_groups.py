"""Planning managers, scope and groups — pure, no HTTP."""

from genesys_prov.mapping.desired import DesiredGroup, desired_user
from genesys_prov.mapping.mappings_file import parse_mappings
from genesys_prov.plan.build import build_plan
from genesys_prov.plan.model import LATE_WAVE, Action, GroupAction, MemberRef, PlanOptions
from genesys_prov.target.scim import build_create, build_group_create, build_group_patches

EXT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MAPPINGS = parse_mappings(f"""
user:
  - {{target: userName, source: userPrincipalName, match: 1}}
  - {{target: active, expression: "Not([IsSoftDeleted])"}}
  - {{target: displayName, source: displayName}}
  - {{target: "{EXT}:manager", source: manager}}
group:
  - {{target: displayName, source: displayName, match: 1}}
  - {{target: members, source: members}}
""")


def src(name, manager=None, **kw):
    user = {"id": name, "userPrincipalName": f"{name}@x", "displayName": name.title(),
            "accountEnabled": True}
    if manager:
        user["manager"] = {"id": manager}
    user.update(kw)
    return user


def tgt(name, manager=None, active=True):
    user = {"id": f"t-{name}", "userName": f"{name}@x", "displayName": name.title(),
            "active": active}
    if manager:
        user[EXT] = {"manager": {"value": f"t-{manager}"}}
    return user


def desired(*users, scope=None):
    return [desired_user(u, MAPPINGS, in_scope=scope is None or u["id"] in scope,
                         scope_reason=None if scope is None or u["id"] in scope
                         else "not assigned to the application") for u in users]


def manager_of(change):
    return next((a for a in change.attributes if a.attribute.endswith(":manager")), None)


def test_creates_are_ordered_managers_first_and_carry_the_reference():
    plan = build_plan(desired(src("c", "b"), src("b", "a"), src("a")), [], MAPPINGS)
    creates = [c for c in plan.changes if c.action is Action.CREATE]
    assert [(c.source_id, c.wave) for c in creates] == [("a", 0), ("b", 1), ("c", 2)]
    ref = manager_of(creates[2]).new
    assert ref == MemberRef(None, "b", "b@x")
    body = build_create(creates[2], lambda r: {"b": "t-b"}.get(r.source_id or ""))
    assert body[EXT]["manager"] == {"value": "t-b"}
    assert manager_of(creates[0]) is None


def test_existing_manager_is_referenced_by_target_id():
    plan = build_plan(desired(src("a"), src("b", "a")), [tgt("a")], MAPPINGS)
    (create,) = [c for c in plan.changes if c.action is Action.CREATE]
    assert manager_of(create).new == MemberRef("t-a", "a", "a@x")
    assert build_create(create)[EXT]["manager"] == {"value": "t-a"}


def test_manager_cycle_is_cut_and_fixed_after_the_creates():
    plan = build_plan(desired(src("a", "b"), src("b", "a")), [], MAPPINGS)
    late = [c for c in plan.changes if c.wave == LATE_WAVE]
    assert len(late) == 1 and late[0].action is Action.UPDATE and late[0].target_id is None
    creates = [c for c in plan.changes if c.action is Action.CREATE]
    assert sum(manager_of(c) is not None for c in creates) == 1


def test_manager_not_in_scope_is_a_warning_and_left_alone():
    plan = build_plan(desired(src("a"), src("b", "a"), scope={"b"}), [], MAPPINGS)
    (create,) = plan.changes
    assert manager_of(create) is None
    (warning,) = [s for s in plan.skipped if s.kind == "manager"]
    assert "a@x is not provisioned" in warning.reason


def test_changed_and_removed_manager():
    targets = [tgt("a"), tgt("c"), tgt("b", manager="a")]
    plan = build_plan(desired(src("a"), src("c"), src("b", "c")), targets, MAPPINGS)
    (update,) = plan.changes
    item = manager_of(update)
    assert (item.old.display, item.new.target_id, item.op) == ("a@x", "t-c", "replace")
    plan = build_plan(desired(src("a"), src("b")), [tgt("a"), tgt("b", manager="a")], MAPPINGS)
    (update,) = plan.changes
    assert manager_of(update).op == "remove"
    from genesys_prov.target.scim import build_patch

    assert build_patch(update)["Operations"] == [{"op": "remove", "path": f"{EXT}:manager"}]


def test_unchanged_manager_plans_nothing():
    plan = build_plan(desired(src("a"), src("b", "a")), [tgt("a"), tgt("b", manager="a")],
                      MAPPINGS)
    assert plan.changes == () and plan.unchanged == 2


def test_out_of_scope_user_in_target_is_deactivated_or_kept():
    users = desired(src("a"), scope=set())
    plan = build_plan(users, [tgt("a")], MAPPINGS)
    (change,) = plan.changes
    assert change.action is Action.DEACTIVATE
    assert change.reason == "out of scope: not assigned to the application"
    plan = build_plan(users, [tgt("a")], MAPPINGS,
                      options=PlanOptions(skip_out_of_scope_deletions=True))
    assert plan.changes == () and "skip_out_of_scope_deletions" in plan.skipped[0].reason
    plan = build_plan(users, [], MAPPINGS)
    assert plan.changes == () and plan.out_of_scope == 1 and plan.skipped == ()


def group(name, *members):
    return DesiredGroup(name, name, {"displayName": name}, [("displayName", name)], members)


def tgroup(name, *member_ids):
    return {"id": f"g-{name}", "displayName": name,
            "members": [{"value": m} for m in member_ids]}


def test_group_members_added_removed_and_unmanaged_left_alone():
    users = desired(src("a"), src("b"), src("new"))
    targets = [tgt("a"), tgt("b")]
    groups = [group("Sales", "a", "new")]
    tgroups = [tgroup("Sales", "t-b", "t-handmade")]
    plan = build_plan(users, targets, MAPPINGS, groups, tgroups)
    (change,) = plan.group_changes
    assert change.action is GroupAction.UPDATE
    assert [(m.target_id, m.source_id) for m in change.add] == [("t-a", "a"), (None, "new")]
    assert [m.target_id for m in change.remove] == ["t-b"]  # not t-handmade: unmanaged
    plan = build_plan(users, targets, MAPPINGS, groups, tgroups,
                      PlanOptions(remove_unmanaged_members=True))
    assert sorted(m.target_id for m in plan.group_changes[0].remove) == ["t-b", "t-handmade"]


def test_disabled_member_is_not_a_desired_member():
    users = desired(src("a", accountEnabled=False), src("b"))
    plan = build_plan(users, [tgt("a"), tgt("b")], MAPPINGS, [group("G", "a", "b")],
                      [tgroup("G", "t-a", "t-b")])
    (change,) = plan.group_changes
    assert [m.target_id for m in change.remove] == ["t-a"] and change.add == ()


def test_missing_group_genesys_skipped_generic_created():
    users = desired(src("a"))
    plan = build_plan(users, [tgt("a")], MAPPINGS, [group("Ops", "a")], [])
    assert plan.group_changes == ()
    (skip,) = [s for s in plan.skipped if s.kind == "group"]
    assert "create it in Genesys" in skip.reason
    plan = build_plan(users, [tgt("a")], MAPPINGS, [group("Ops", "a")], [],
                      PlanOptions(create_groups=True, flavor="generic"))
    (change,) = plan.group_changes
    assert change.action is GroupAction.CREATE
    assert build_group_create(change) == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops",
        "members": [{"value": "t-a"}]}


def test_group_patches_are_batched():
    users = desired(*(src(f"u{i}") for i in range(5)), src("x"))
    targets = [tgt(f"u{i}") for i in range(5)] + [tgt("x")]
    plan = build_plan(users, targets, MAPPINGS, [group("G", *(f"u{i}" for i in range(5)))],
                      [tgroup("G", "t-x")])
    bodies = build_group_patches(plan.group_changes[0], batch_size=2)
    sizes = [[len(op["value"]) if op["op"] == "add" else 1 for op in b["Operations"]]
             for b in bodies]
    assert sizes == [[2], [2], [1, 1]]
    assert bodies[-1]["Operations"][-1] == {"op": "remove", "path": 'members[value eq "t-x"]'}


def test_deep_manager_chain_has_no_recursion_limit():
    users = [src("u0")] + [src(f"u{i}", f"u{i - 1}") for i in range(1, 3000)]
    plan = build_plan(desired(*users), [], MAPPINGS)
    waves = {c.source_id: c.wave for c in plan.changes}
    assert waves["u0"] == 0 and waves["u2999"] == 2999

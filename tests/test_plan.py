"""Planning is pure: desired users + target users → a sorted, counted, serialisable plan."""

import json

import pytest

from genesys_prov.mapping.desired import desired_user
from genesys_prov.mapping.mappings_file import parse_mappings
from genesys_prov.mapping.scimpath import ENTERPRISE_USER
from genesys_prov.plan.build import build_plan
from genesys_prov.plan.model import Action

MAPPINGS = parse_mappings(f"""
user:
  - {{target: userName, source: userPrincipalName, match: 1}}
  - {{target: active, expression: "Not([IsSoftDeleted])"}}
  - {{target: displayName, source: displayName}}
  - {{target: 'emails[type eq "work"].value', source: mail}}
  - {{target: title, source: jobTitle}}
  - {{target: 'phoneNumbers[type eq "mobile"].value', source: mobile}}
  - {{target: "{ENTERPRISE_USER}:department", source: department}}
  - {{target: externalId, source: objectId, apply: on_create}}
""")


def src(i, **kw):
    base = {"id": f"s{i}", "userPrincipalName": f"user{i}@contoso.com",
            "displayName": f"User {i}", "mail": f"user{i}@contoso.com", "jobTitle": "Agent",
            "mobilePhone": None, "department": "Sales", "accountEnabled": True}
    base.update(kw)
    return base


def tgt(i, **kw):
    base = {"id": f"t{i}", "userName": f"user{i}@contoso.com", "active": True,
            "displayName": f"User {i}", "title": "Agent",
            "emails": [{"type": "work", "value": f"user{i}@contoso.com"}],
            ENTERPRISE_USER: {"department": "Sales"}, "meta": {"version": 'W/"1"'}}
    base.update(kw)
    return base


def plan_for(sources, targets):
    return build_plan([desired_user(s, MAPPINGS) for s in sources], targets, MAPPINGS)


def test_create_carries_every_mapped_non_null_value():
    plan = plan_for([src(1)], [])
    (change,) = plan.changes
    assert change.action is Action.CREATE
    assert {a.attribute: a.new for a in change.attributes} == {
        "active": True, "displayName": "User 1", 'emails[type eq "work"].value':
        "user1@contoso.com", "externalId": "s1", "title": "Agent",
        f"{ENTERPRISE_USER}:department": "Sales", "userName": "user1@contoso.com"}


def test_in_sync_user_is_unchanged():
    plan = plan_for([src(1)], [tgt(1)])
    assert plan.changes == ()
    assert plan.unchanged == 1


def test_one_changed_attribute_is_one_attribute_change():
    plan = plan_for([src(1, jobTitle="Supervisor")], [tgt(1)])
    (change,) = plan.changes
    assert change.action is Action.UPDATE
    assert [(a.attribute, a.old, a.new) for a in change.attributes] == [
        ("title", "Agent", "Supervisor")]
    assert change.version == 'W/"1"'


def test_null_source_value_leaves_target_alone():
    plan = plan_for([src(1, jobTitle=None)], [tgt(1)])
    assert plan.changes == ()


def test_on_create_mapping_not_applied_on_update():
    plan = plan_for([src(1)], [tgt(1, externalId="something-else")])
    assert plan.changes == ()


def test_missing_multivalued_element_is_an_add():
    plan = plan_for([src(1, mobilePhone="+14255550100")], [tgt(1)])
    (attr,) = plan.changes[0].attributes
    assert (attr.attribute, attr.op) == ('phoneNumbers[type eq "mobile"].value', "add")


def test_disabled_user_deactivated_or_skipped():
    plan = plan_for([src(1, accountEnabled=False), src(2, accountEnabled=False)], [tgt(1)])
    (change,) = plan.changes
    assert change.action is Action.DEACTIVATE
    assert [(a.attribute, a.old, a.new) for a in change.attributes] == [("active", True, False)]
    (skip,) = plan.skipped
    assert skip.source_id == "s2" and "not created" in skip.reason


def test_inactive_target_user_is_reactivated_not_recreated():
    plan = plan_for([src(1, jobTitle="Lead")], [tgt(1, active=False)])
    (change,) = plan.changes
    assert change.action is Action.REACTIVATE
    assert [(a.attribute, a.new) for a in change.attributes] == [("active", True),
                                                                  ("title", "Lead")]


def test_disabled_user_already_inactive_is_unchanged():
    plan = plan_for([src(1, accountEnabled=False)], [tgt(1, active=False)])
    assert plan.changes == () and plan.unchanged == 1


def test_matching_is_case_insensitive_for_username():
    plan = plan_for([src(1, userPrincipalName="USER1@Contoso.com")], [tgt(1)])
    assert plan.changes == ()


def test_duplicate_target_entries_is_a_failure_not_a_guess():
    plan = plan_for([src(1)], [tgt(1), tgt(1, id="t9")])
    assert plan.changes == ()
    (failure,) = plan.failures
    assert failure.code == "DuplicateTargetEntries"
    assert failure.target_ids == ("t1", "t9")


def test_two_sources_one_target_is_duplicate_source_entries():
    plan = plan_for([src(1), src(2, userPrincipalName="user1@contoso.com")], [tgt(1)])
    assert [f.code for f in plan.failures] == ["DuplicateSourceEntries"]


def test_no_matching_value_is_mandatory_fields_missing():
    plan = plan_for([src(1, userPrincipalName=None)], [])
    assert [f.code for f in plan.failures] == ["MandatoryFieldsMissing"]


def test_unmanaged_target_users_are_reported_and_left_alone():
    plan = plan_for([], [tgt(7)])
    assert plan.changes == ()
    assert [u.target_id for u in plan.unmanaged] == ["t7"]


def test_match_precedence_falls_through():
    mappings = parse_mappings("""
user:
  - {target: userName, source: userPrincipalName, match: 1}
  - {target: externalId, source: objectId, match: 2}
""")
    plan = build_plan([desired_user(src(1, userPrincipalName="renamed@contoso.com"), mappings)],
                      [tgt(1, externalId="s1")], mappings)
    (change,) = plan.changes
    assert change.action is Action.UPDATE
    assert change.target_id == "t1"
    assert [(a.attribute, a.old, a.new) for a in change.attributes] == [
        ("userName", "user1@contoso.com", "renamed@contoso.com")]


def test_plan_is_sorted_counted_serialisable_and_checksummed():
    sources = [src(3), src(1, jobTitle="X"), src(2, accountEnabled=False)]
    targets = [tgt(1), tgt(2), tgt(5)]
    plan = plan_for(sources, targets)
    assert [c.action for c in plan.changes] == [Action.CREATE, Action.UPDATE, Action.DEACTIVATE]
    assert plan.counts() == {"create": 1, "update": 1, "reactivate": 0, "deactivate": 1,
                             "delete": 0, "held": 0, "group create": 0, "group update": 0,
                             "members added": 0, "members removed": 0, "skipped": 0, "failed": 0,
                             "unmanaged": 1, "unchanged": 0, "out_of_scope": 0}
    data = json.loads(json.dumps(plan.data()))
    assert data["checksum"] == plan.checksum()
    assert plan_for(list(reversed(sources)), targets).checksum() == plan.checksum()


def test_redacted_values_never_shown():
    mappings = parse_mappings("""
user:
  - {target: userName, source: userPrincipalName, match: 1}
  - {target: title, expression: 'Redact([jobTitle])'}
""")
    plan = build_plan([desired_user(src(1, jobTitle="Secret Agent"), mappings)], [], mappings)
    text = json.dumps(plan.data())
    assert "Secret Agent" not in text and "[Redact]" in text
    assert plan.changes[0].attributes[0].new == "Secret Agent"  # the real value is sent


@pytest.mark.parametrize("n", [0, 1, 50])
def test_planning_scales_linearly_without_io(n):
    sources = [src(i) for i in range(n)]
    plan = plan_for(sources, [tgt(i) for i in range(n)])
    assert plan.unchanged == n

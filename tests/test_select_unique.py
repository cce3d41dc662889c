"""SelectUniqueValue: the first candidate the target does not hold, chosen at planning
time from the listing the run already read (no extra request), never twice in one run."""

import pytest

from genesys_prov.errors import MappingError
from genesys_prov.mapping.desired import desired_user
from genesys_prov.mapping.mappings_file import parse_mappings
from genesys_prov.plan.build import build_plan
from genesys_prov.plan.model import Action

EXT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MAPPINGS = parse_mappings(f"""
user:
  - {{target: userName, source: userPrincipalName, match: 1}}
  - target: "{EXT}:employeeNumber"
    apply: on_create
    expression: >-
      SelectUniqueValue(ToLower(Join(".", [givenName], [surname])),
                        ToLower(Join(".", Left([givenName], 1), [surname])),
                        ToLower(Join(".", [givenName], [surname], "2")))
""")
NAME = f"{EXT}:employeeNumber"


def src(i, given="Ada", surname="Lovelace"):
    return {"id": f"s{i}", "userPrincipalName": f"u{i}@x", "givenName": given,
            "surname": surname, "accountEnabled": True}


def tgt(i, number):
    return {"id": f"t{i}", "userName": f"t{i}@x", EXT: {"employeeNumber": number}}


def created(plan):
    return {c.source_id: dict((a.attribute, a.new) for a in c.attributes)[NAME]
            for c in plan.changes if c.action is Action.CREATE}


def test_candidates_are_tried_against_the_target_and_this_run():
    users = [desired_user(src(i), MAPPINGS) for i in (1, 2)]
    plan = build_plan(users, [tgt(9, "ada.lovelace")], MAPPINGS)
    assert created(plan) == {"s1": "a.lovelace", "s2": "ada.lovelace.2"}


def test_every_candidate_taken_is_a_failure_for_that_user_only():
    users = [desired_user(src(1), MAPPINGS), desired_user(src(2, "Bob", "Byte"), MAPPINGS)]
    targets = [tgt(7, "ada.lovelace"), tgt(8, "a.lovelace"), tgt(9, "ada.lovelace.2")]
    plan = build_plan(users, targets, MAPPINGS)
    assert created(plan) == {"s2": "bob.byte"}
    (failure,) = plan.failures
    assert failure.code == "UniqueValueUnavailable" and "ada.lovelace.2" in failure.reason


def test_existing_user_keeps_its_value():
    users = [desired_user(src(1), MAPPINGS)]
    plan = build_plan(users, [{"id": "t1", "userName": "u1@x",
                               EXT: {"employeeNumber": "ada.lovelace"}}], MAPPINGS)
    assert plan.changes == ()


def test_select_unique_value_must_be_on_create_and_not_matching():
    with pytest.raises(MappingError, match="apply: on_create"):
        parse_mappings("""
user:
  - {target: userName, expression: 'SelectUniqueValue([mail], [userPrincipalName])', match: 1}
""")

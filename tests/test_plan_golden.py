"""The plan is a value that must not change when planning gets faster (issue 12): plans
of synthetic directories — creates in manager waves, a manager cycle, updates,
reactivations, deactivations, hard deletes, duplicates, out-of-scope users, phone
warnings, SelectUniqueValue, groups with members — hashed and compared with the hashes the
planner gave before its speed-ups (recorded from commit 59dccfa)."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest

from genesys_prov.mapping.desired import DesiredUser
from genesys_prov.mapping.genesys_rules import apply_genesys_rules
from genesys_prov.mapping.mappings import Mappings
from genesys_prov.mapping.mappings_file import default_mappings_text, parse_mappings
from genesys_prov.plan.build import build_plan
from genesys_prov.plan.file import _change_data, _group_data, checksum
from genesys_prov.plan.model import Plan, PlanOptions
from genesys_prov.sandbox.directory import generate_directory
from genesys_prov.source.scope import NOT_ASSIGNED, scoped_user

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
UNIQUE = default_mappings_text() + (
    '  - {target: "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:'
    'externalIds", expression: "SelectUniqueValue(Append([mailNickname], \\"-1\\"), '
    'Append([mailNickname], \\"-2\\"))", apply: on_create}\n')


def plan_digest(plan: Plan) -> str:
    """sha256 over everything the plan holds (its data, matches and counts) and the plan
    file's checksum of its changes."""
    document = {"data": plan.data(), "matched": plan.matched,
                "matched_groups": plan.matched_groups, "in_scope": plan.in_scope,
                "unchanged": plan.unchanged, "out_of_scope": plan.out_of_scope,
                "file_checksum": checksum([_change_data(c) for c in plan.changes],
                                          [_group_data(g) for g in plan.group_changes])}
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _directory(users: int, rng: random.Random) -> dict[str, Any]:
    directory = generate_directory(users, seed=7)
    people = directory["users"]
    for user in people:
        if user["manager"]:
            user["manager"] = {"id": user["manager"]}
    # a manager cycle among users this plan creates
    people[-1]["manager"] = {"id": people[-2]["id"]}
    people[-2]["manager"] = {"id": people[-1]["id"]}
    # numbers libphonenumber reads differently (a warning) or cannot take at all (a failure)
    for user in rng.sample(people, 40):
        user["mobilePhone"] = "+55 90 95214-5623"
    for user in rng.sample(people, 5):
        user["businessPhones"] = ["call me"]
    for user in rng.sample(people, 5):
        user["userPrincipalName"] = None
        user["displayName"] = None
    return directory


def _desired(directory: dict[str, Any], mappings: Mappings,
             rng: random.Random) -> list[DesiredUser]:
    out_of_scope = {u["id"] for u in rng.sample(directory["users"], 60)}
    return [apply_genesys_rules(scoped_user(u, mappings, NOT_ASSIGNED if u["id"] in
                                            out_of_scope else None), None)
            for u in directory["users"]]


def _scim_user(user: dict[str, Any], rng: random.Random, index: int) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "id": f"t-{index:05d}", "userName": user["userPrincipalName"],
        "active": rng.random() > 0.1, "displayName": user["displayName"],
        "title": user["jobTitle"] if rng.random() > 0.3 else "Old Title",
        "meta": {"version": f'W/"{index}"'},
    }
    if rng.random() > 0.5:
        resource["emails"] = [{"type": "work", "value": (user["mail"] or "x").upper()}]
    if rng.random() > 0.5:
        resource[ENTERPRISE] = {"department": user["department"],
                                "manager": {"value": f"t-{rng.randrange(index + 1):05d}"}}
    return resource


def _target(directory: dict[str, Any], rng: random.Random) -> tuple[list[dict[str, Any]],
                                                                   dict[str, str]]:
    """Target users for about half the directory (some twice: duplicates), a few
    strangers, and links for some (one to a user gone from the directory)."""
    target, links = [], {}
    for index, user in enumerate(directory["users"]):
        if user["userPrincipalName"] and rng.random() < 0.5:
            target.append(_scim_user(user, rng, index))
            if rng.random() < 0.3:
                links[user["id"]] = target[-1]["id"]
            if rng.random() < 0.01:
                target.append({**target[-1], "id": f"dup-{index}"})
    for n in range(20):
        target.append({"id": f"stranger-{n}", "userName": f"stranger{n}@elsewhere.example",
                       "active": n % 2 == 0})
        links[f"gone-{n}"] = f"stranger-{n}"
    return target, links


def _groups(directory: dict[str, Any], mappings: Mappings) -> tuple[list[Any], list[Any]]:
    from genesys_prov.mapping.desired import desired_group

    groups = [desired_group(g, mappings, tuple(m for m in g["members"]))
              for g in directory["groups"]]
    target_groups = [{"id": f"g-{i}", "displayName": g["displayName"],
                      "members": [{"value": f"t-{j:05d}"} for j in range(i, 60, 7)]}
                     for i, g in enumerate(directory["groups"][:6])]
    return groups, target_groups


def _empty_target_plan(users: int) -> Plan:
    rng = random.Random(1)
    mappings = parse_mappings(default_mappings_text())
    directory = _directory(users, rng)
    groups, target_groups = _groups(directory, mappings)
    return build_plan(_desired(directory, mappings, rng), [], mappings, groups, target_groups)


def _busy_target_plan(users: int, text: str, hard_delete: str) -> Plan:
    rng = random.Random(2)
    mappings = parse_mappings(text)
    directory = _directory(users, rng)
    target, links = _target(directory, rng)
    groups, target_groups = _groups(directory, mappings)
    options = PlanOptions(links=links, on_hard_delete=hard_delete, create_groups=True,
                          hard_deleted=frozenset(f"gone-{n}" for n in range(0, 20, 3)))
    return build_plan(_desired(directory, mappings, rng), target, mappings, groups,
                      target_groups, options)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda: _empty_target_plan(1500),
     "6288b8e574198ee1974967d75f93fe77a05e4e97b1e7f069cce6b3b172953c68"),
    (lambda: _busy_target_plan(1500, default_mappings_text(), "delete"),
     "5ec61fad79f2c54f469738a946c5ad233478579f791286f11606eb80eddfb15d"),
    (lambda: _busy_target_plan(800, UNIQUE, "deactivate"),
     "6a64d5c9f5f8ef70a30be404fd1ffafddeaf04aac083bb72f69fd0db4918a638"),
])
def test_plans_are_what_they_were_before_the_speed_ups(make, expected):
    plan = make()
    assert plan.changes and plan.skipped and plan.failures and plan.warnings
    assert plan_digest(plan) == expected

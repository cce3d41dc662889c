"""Deterministic synthetic directories of any size (for the benchmark and the scale tests):
users drawn from name, department and location tables, a manager tree, groups of about a
hundred with some nesting, and their app role assignments."""

from __future__ import annotations

import random
import uuid
from typing import Any

from genesys_prov.sandbox.directory.tenant import (
    DEFAULT_ACCESS_ROLE,
    DOMAIN,
    USER_ROLE,
    extension_attributes,
    guid,
    service_principal,
)


def _words(text: str) -> tuple[str, ...]:
    """The whitespace-separated words of ``text``."""
    return tuple(text.split())


_GIVEN = _words(
    "Aaliyah Aarav Abigail Adam Adrian Aiden Alejandro Alexander Alice Amara Amelia Ana "
    "Andrea Andrew Anna Anthony Aria Arjun Aurora Ava Benjamin Bianca Camila Carlos Caroline "
    "Charlotte Chen Chloe Christopher Claire Daniel David Diana Dmitri Elena Eli Elijah "
    "Elizabeth Ella Emily Emma Ethan Evelyn Fatima Felix Finn Gabriel Grace Hannah Harper "
    "Hiroshi Hugo Ibrahim Isabella Isla Ivan Jack Jacob James Javier Jayden Jin Jonas Jose "
    "Joseph Julia Kai Kenji Laila Layla Leah Leo Liam Lily Lucas Lucia Luis Luna Maria Mateo "
    "Maya Mia Michael Mila Mohammed Naomi Nina Noah Nora Oliver Olivia Omar Priya Rafael Riya "
    "Samuel Sara Sebastian Sofia Sophie Thomas Valentina Victoria William Yuki Zara"
)
_SURNAMES = _words(
    "Adams Ahmed Alvarez Anderson Bailey Baker Bennett Brooks Brown Campbell Carter Castillo "
    "Chen Clark Collins Cooper Cruz Davies Davis Diaz Edwards Evans Fischer Flores Garcia "
    "Gomez Gonzalez Gray Green Gupta Hall Harris Hernandez Hill Hughes Ito Jackson James "
    "Jensen Johnson Jones Kaur Kelly Khan Kim King Kowalski Kumar Lee Lewis Lopez Martin "
    "Martinez Meyer Miller Mitchell Moore Morgan Morris Murphy Nakamura Nelson Nguyen Novak "
    "Okafor Olsen Ortiz Patel Perez Peterson Phillips Ramirez Reed Reyes Richardson Rivera "
    "Roberts Robinson Rodriguez Rossi Sanchez Santos Schmidt Scott Silva Singh Smith Suzuki "
    "Tanaka Taylor Thomas Thompson Torres Turner Walker Wang Watson White Williams Wilson "
    "Wong Wright Young Zhang"
)
_DEPARTMENTS = (
    ("Sales", ("Sales Representative", "Account Executive", "Sales Supervisor")),
    ("Support", ("Support Agent", "Senior Support Agent", "Support Supervisor")),
    ("Billing", ("Billing Specialist", "Billing Supervisor")),
    ("Retention", ("Retention Specialist", "Retention Supervisor")),
    ("Workforce Management", ("Workforce Analyst", "Scheduler")),
)
# (country, usageLocation, city, E.164 prefix, digits after the prefix)
_LOCATIONS = (
    ("United States", "US", "Redmond", "+1425555", 4),
    ("United States", "US", "Austin", "+1512555", 4),
    ("United Kingdom", "GB", "London", "+44207946", 4),
    ("Germany", "DE", "Munich", "+49891234", 4),
    ("France", "FR", "Paris", "+331426", 5),
    ("Ireland", "IE", "Dublin", "+35312345", 3),
    ("Japan", "JP", "Tokyo", "+81312345", 4),
    ("Brazil", "BR", "São Paulo", "+55113456", 4),
)


def generate_directory(users: int, seed: int = 42) -> dict[str, Any]:
    """A synthetic directory of ``users`` users, identical for identical (users, seed).

    Phone numbers are E.164; about 2 % of users are disabled; every user but the first has
    a manager created before them (a tree); about users/100 groups, every tenth nesting the
    previous one; all groups are assigned to the app, plus every 50th user directly.
    The Genesys side starts empty except for groups named like the first few directory
    groups.
    """
    if users < 0:
        raise ValueError("users must be >= 0")
    rng = random.Random(f"genesys-prov-synthetic-{seed}")
    user_list, ids = _synthetic_users(rng, users)
    groups, genesys_groups = _synthetic_groups(rng, ids)
    assignments: list[dict[str, Any]] = [
        {"principalId": g["id"], "principalType": "Group", "appRoleId": USER_ROLE}
        for g in groups
    ]
    assignments.extend(
        {"principalId": ids[index], "principalType": "User",
         "appRoleId": DEFAULT_ACCESS_ROLE if index % 200 == 0 else USER_ROLE}
        for index in range(0, users, 50)
    )
    return {
        "users": user_list,
        "groups": groups,
        "app_role_assignments": assignments,
        "service_principal": service_principal(),
        "genesys": {"users": [], "groups": genesys_groups},
    }


def _synthetic_users(rng: random.Random, users: int) -> tuple[list[dict[str, Any]], list[str]]:
    """``users`` synthetic Graph users drawn from ``rng``, and their ids in the same order."""
    getrandbits = rng.getrandbits
    rand = rng.random
    choice = rng.choice
    randrange = rng.randrange
    taken: dict[str, int] = {}
    user_list: list[dict[str, Any]] = []
    ids: list[str] = []
    for index in range(users):
        given = choice(_GIVEN)
        surname = choice(_SURNAMES)
        local = f"{given}.{surname}".lower()
        seen = taken.get(local, 0)
        taken[local] = seen + 1
        if seen:
            local = f"{local}{seen + 1}"
        upn = f"{local}@{DOMAIN}"
        department, titles = _DEPARTMENTS[index % len(_DEPARTMENTS)]
        country, usage, city, prefix, digits = _LOCATIONS[randrange(len(_LOCATIONS))]
        user_id = str(uuid.UUID(int=getrandbits(128), version=4))
        ids.append(user_id)
        mobile = None if rand() < 0.1 else f"{prefix}{randrange(10**digits):0{digits}d}"
        office_phone = f"{prefix}{randrange(10**digits):0{digits}d}"
        manager = None if index == 0 else ids[randrange(max(1, index // 4))]
        user_list.append({
            "id": user_id,
            "userPrincipalName": upn,
            "displayName": f"{given} {surname}",
            "givenName": given,
            "surname": surname,
            "mail": None if rand() < 0.01 else upn,
            "mailNickname": local,
            "jobTitle": None if rand() < 0.02 else titles[randrange(len(titles))],
            "department": department,
            "mobilePhone": mobile,
            "businessPhones": [office_phone],
            "accountEnabled": rand() >= 0.02,
            "employeeId": f"E{100000 + index}",
            "employeeType": "Employee",
            "officeLocation": f"{city} {randrange(1, 12)}/{randrange(100, 999)}",
            "companyName": "Contoso",
            "city": city,
            "country": country,
            "usageLocation": usage,
            "preferredLanguage": "en-US",
            "userType": "Member",
            "onPremisesExtensionAttributes": extension_attributes(
                extensionAttribute1=f"CC-{4000 + (index % 50) * 10}",
                extensionAttribute2=department,
            ),
            "manager": manager,
        })
    return user_list, ids


def _synthetic_groups(rng: random.Random, ids: list[str]) -> (
    tuple[list[dict[str, Any]], list[dict[str, Any]]]
):
    """The synthetic groups holding the users ``ids``, and the Genesys groups named like
    the first five (ids drawn from ``rng``)."""
    group_count = max(1, len(ids) // 100) if ids else 0
    groups: list[dict[str, Any]] = []
    for number in range(group_count):
        department = _DEPARTMENTS[number % len(_DEPARTMENTS)][0]
        groups.append({
            "id": guid(rng),
            "displayName": f"{department} Team {number + 1:04d}",
            "description": f"{department} agents, team {number + 1}",
            "mailNickname": f"{department.lower().replace(' ', '-')}-team-{number + 1:04d}",
            "securityEnabled": True,
            "members": [],
        })
    for index, user_id in enumerate(ids):
        groups[index % group_count]["members"].append(user_id)
    for number in range(9, group_count, 10):
        groups[number]["members"].append(groups[number - 1]["id"])
    genesys_groups = [
        {"id": guid(rng), "displayName": g["displayName"], "members": []}
        for g in groups[:5]
    ]
    return groups, genesys_groups

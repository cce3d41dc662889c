"""Directories the sandbox serves: the fixed demo directory and deterministic synthetic ones.

A directory is a JSON-able dict::

    {"users": [Graph user + "manager": <id or null>],
     "groups": [{id, displayName, description, mailNickname, securityEnabled,
                 "members": [<user or group id>]}],
     "app_role_assignments": [{principalId, principalType, appRoleId}],
     "service_principal": {id, appId, displayName, appRoles},
     "genesys": {"users": [SCIM users that already exist in Genesys],
                 "groups": [{id, displayName, members: [<userName or id>]}]}}

``python -m genesys_prov.sandbox.data > examples/demo-directory.json`` writes the demo
directory (see :mod:`genesys_prov.sandbox.data`).
"""

from __future__ import annotations

import random
import uuid
from typing import Any

DEFAULT_ACCESS_ROLE = "00000000-0000-0000-0000-000000000000"
USER_ROLE = "2a9c5e4b-7d1f-4c3e-8b6a-5f0d9e2c1a47"
SUPERVISOR_ROLE = "6e1b8d3a-0c4f-4a9e-b7d2-3f5c8a1e9b60"
SERVICE_PRINCIPAL_ID = "4b7e2f9c-1d3a-4e8b-a6c5-0f2d7b9e3a18"
SERVICE_PRINCIPAL_APP_ID = "c3f1a8e6-5b2d-4f7a-9e0c-8d4b6a2f1e35"
DOMAIN = "contoso.com"


def service_principal() -> dict[str, Any]:
    """The enterprise application ("Genesys Cloud for Azure") users are assigned to."""
    return {
        "id": SERVICE_PRINCIPAL_ID,
        "appId": SERVICE_PRINCIPAL_APP_ID,
        "displayName": "Genesys Cloud for Azure",
        "appRoles": [
            {"id": USER_ROLE, "displayName": "User", "value": "User",
             "allowedMemberTypes": ["User"], "isEnabled": True,
             "description": "Genesys Cloud user"},
            {"id": SUPERVISOR_ROLE, "displayName": "Supervisor", "value": "Supervisor",
             "allowedMemberTypes": ["User"], "isEnabled": True,
             "description": "Genesys Cloud supervisor"},
        ],
    }


def _extension_attributes(**values: str) -> dict[str, str | None]:
    """onPremisesExtensionAttributes with 1..15 null except ``values``."""
    attributes: dict[str, str | None] = {f"extensionAttribute{n}": None for n in range(1, 16)}
    attributes.update(values)
    return attributes


def _guid(rng: random.Random) -> str:
    """A version-4-shaped GUID drawn from ``rng`` (deterministic)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# --------------------------------------------------------------------------- the demo

# key, given, surname, UPN local part, jobTitle, department, mobile, business phone,
# manager key, enabled, officeLocation, city, country, usageLocation, cost centre
_DEMO_PEOPLE: tuple[tuple[Any, ...], ...] = (
    ("megan", "Megan", "Bowen", "megan.bowen", "Chief Executive Officer", "Executive",
     "+1 (425) 555-0100", "+1 (425) 555-0199", None, True, "Redmond 1/1001", "Redmond",
     "United States", "US", "CC-1000"),
    ("alex", "Alex", "Wilber", "alex.wilber", "VP Sales", "Sales",
     "+1 (425) 555-0101", "+1 425-555-0111", "megan", True, "Redmond 2/2101", "Redmond",
     "United States", "US", "CC-4100"),
    ("nestor", "Nestor", "Wilke", "nestor.wilke", "VP Customer Support", "Support",
     "+1 (425) 555-0102", "+1 425-555-0112", "megan", True, "Redmond 3/3101", "Redmond",
     "United States", "US", "CC-5100"),
    ("lidia", "Lidia", "Holloway", "lidia.holloway", "Sales Supervisor", "Sales",
     "+1 (425) 555-0103", "+1 425 555 0113", "alex", True, "Redmond 2/2102", "Redmond",
     "United States", "US", "CC-4100"),
    ("patti", "Patti", "Fernandez", "patti.fernandez", "Support Supervisor", "Support",
     "+1 (425) 555-0104", "+1 425 555 0114", "nestor", True, "Redmond 3/3102", "Redmond",
     "United States", "US", "CC-5100"),
    ("adele", "Adele", "Vance", "adele.vance", "Senior Sales Representative", "Sales",
     "+1 (425) 555-0105", "+1 425 555 0115", "lidia", True, "Redmond 2/2201", "Redmond",
     "United States", "US", "CC-4110"),
    ("lee", "Lee", "Gu", "lee.gu", "Sales Representative", "Sales",
     "+1 (425) 555-0106", "+1 425 555 0116", "lidia", True, "Redmond 2/2202", "Redmond",
     "United States", "US", "CC-4110"),
    ("zoe", "Zoë", "Lefèvre", "zoe.lefevre", "Sales Representative", "Sales",
     "+33 6 12 34 56 78", "+33 1 42 68 53 00", "lidia", True, "Paris 4/401", "Paris",
     "France", "FR", "CC-4120"),
    ("grady", "Grady", "Archie", "grady.archie", "Sales Representative", "Sales",
     "+1 (206) 555-0107", "+1 (206) 555-0117", "lidia", True, "Seattle 1/110", "Seattle",
     "United States", "US", "CC-4110"),
    ("johanna", "Johanna", "Lorenz", "johanna.lorenz", "Sales Representative", "Sales",
     None, "+49 89 1234 5670", "lidia", True, "Munich 2/210", "Munich", "Germany", "DE",
     "CC-4130"),
    ("joni", "Joni", "Sherman", "joni.sherman", "Support Agent", "Support",
     "+1 (425) 555-0108", "+1 425-555-0118", "patti", True, "Redmond 3/3201", "Redmond",
     "United States", "US", "CC-5110"),
    ("isaiah", "Isaiah", "Langer", "isaiah.langer", "Support Agent", "Support",
     "+1 (425) 555-0109", "+1 425-555-0119", "patti", True, "Redmond 3/3202", "Redmond",
     "United States", "US", "CC-5110"),
    ("miriam", "Miriam", "Graham", "miriam.graham", "Support Agent", "Support",
     "+44 7700 900123", "+44 20 7946 0958", "patti", True, "London 5/512", "London",
     "United Kingdom", "GB", "CC-5120"),
    ("pradeep", "Pradeep", "Gupta", "pradeep.gupta", "Support Agent", "Support",
     "+1 (425) 555-0120", "+1 425-555-0130", "patti", True, "Redmond 3/3203", "Redmond",
     "United States", "US", "CC-5110"),
    ("lynne", "Lynne", "Robbins", "lynne.robbins", "Support Agent", "Support",
     "+1 (425) 555-0121", "+1 425-555-0131", "patti", True, "Redmond 3/3204", "Redmond",
     "United States", "US", "CC-5110"),
    ("diego", "Diego", "Siciliani", "diego.siciliani", "Support Agent", "Support",
     "+1 (425) 555-0122", "+1 425-555-0132", "patti", False, "Redmond 3/3205", "Redmond",
     "United States", "US", "CC-5110"),
    ("henrietta", "Henrietta", "Mueller", "henrietta.mueller", "Support Agent", "Support",
     "+49 151 2345 6789", "+49 30 1234 5678", "patti", True, "Berlin 1/104", "Berlin",
     "Germany", "DE", "CC-5130"),
    ("debra", "Debra", "Berger", "debra.berger", "Sales Representative", "Sales",
     "+1 (425) 555-0123", "+1 425-555-0133", "lidia", False, "Redmond 2/2203", "Redmond",
     "United States", "US", "CC-4110"),
    ("christie", "Christie", "Cline", "christie.cline", None, "Workforce Management",
     "+1 (425) 555-0124", "+1 425-555-0134", "nestor", True, "Redmond 3/3301", "Redmond",
     "United States", "US", "CC-5200"),
    ("enrico", "Enrico", "Cattaneo", "enrico.cattaneo", "Support Agent", "Support",
     "+39 347 123 4567", "+39 02 1234 5678", "patti", True, "Milan 1/120", "Milan", "Italy",
     "IT", "CC-5140"),
    ("allan", "Allan", "Deyoung", "allan.deyoung", "IT Administrator", "IT",
     None, "+1 425-555-0135", "megan", True, "Redmond 1/1101", "Redmond", "United States",
     "US", "CC-2000"),
    ("irvin", "Irvin", "Sayers", "irvin.sayers", "Sales Representative", "Sales",
     "+1 (425) 555-0126", None, "lidia", True, "Redmond 2/2204", "Redmond", "United States",
     "US", "CC-4110"),
    ("aoife", "Aoife", "O'Neill", "aoife.oneill", "Support Agent", "Support",
     "+353 87 123 4567", "+353 1 234 5678", "ben", True, "Dublin 2/220", "Dublin", "Ireland",
     "IE", "CC-5150"),
    ("ben", "Ben", "Walters", "ben.walters", "Support Supervisor", "Support",
     "+1 (425) 555-0127", "+1 425-555-0137", "nestor", True, "Redmond 3/3103", "Redmond",
     "United States", "US", "CC-5100"),
    ("kenji", "Kenji", "Tanaka", "kenji.tanaka", "Support Agent", "Support",
     "+81 90-1234-5678", "+81 3-1234-5678", "ben", True, "Tokyo 7/701", "Tokyo", "Japan", "JP",
     "CC-5160"),
)
#: Users without a ``mail`` (their UPN is still an address).
_DEMO_NO_MAIL = frozenset({"pradeep"})


def demo_directory() -> dict[str, Any]:
    """The fixed demo directory (25 users, 4 groups, some pre-existing Genesys state)."""
    rng = random.Random("genesys-prov-demo")
    ids = {person[0]: _guid(rng) for person in _DEMO_PEOPLE}
    users = []
    for number, person in enumerate(_DEMO_PEOPLE, start=1):
        (key, given, surname, local, title, department, mobile, phone, manager, enabled,
         office, city, country, usage, cost_centre) = person
        upn = f"{local}@{DOMAIN}"
        users.append({
            "id": ids[key],
            "userPrincipalName": upn,
            "displayName": f"{given} {surname}",
            "givenName": given,
            "surname": surname,
            "mail": None if key in _DEMO_NO_MAIL else upn,
            "mailNickname": local,
            "jobTitle": title,
            "department": department,
            "mobilePhone": mobile,
            "businessPhones": [phone] if phone else [],
            "accountEnabled": enabled,
            "employeeId": f"E{1000 + number}",
            "employeeType": "Employee",
            "officeLocation": office,
            "companyName": "Contoso",
            "city": city,
            "country": country,
            "usageLocation": usage,
            "preferredLanguage": {"FR": "fr-FR", "DE": "de-DE", "IT": "it-IT",
                                  "JP": "ja-JP"}.get(usage, "en-US"),
            "userType": "Member",
            "onPremisesExtensionAttributes": _extension_attributes(
                extensionAttribute1=cost_centre,
                extensionAttribute2=department,
            ),
            "manager": ids[manager] if manager else None,
        })
    group_ids = {name: _guid(rng) for name in ("sales", "support", "supervisors", "nested")}

    def members(*keys: str) -> list[str]:
        """The ids of the demo users called ``keys``."""
        return [ids[k] for k in keys]

    groups = [
        {"id": group_ids["sales"], "displayName": "Sales Agents",
         "description": "Inbound and outbound sales agents", "mailNickname": "sales-agents",
         "securityEnabled": True,
         "members": members("adele", "lee", "zoe", "grady", "johanna", "debra", "irvin")},
        {"id": group_ids["support"], "displayName": "Support Agents",
         "description": "Customer support agents", "mailNickname": "support-agents",
         "securityEnabled": True,
         "members": members("joni", "isaiah", "miriam", "pradeep", "lynne", "diego",
                            "henrietta", "enrico", "aoife", "kenji")},
        {"id": group_ids["supervisors"], "displayName": "Supervisors",
         "description": "Contact-centre supervisors", "mailNickname": "supervisors",
         "securityEnabled": True, "members": members("lidia", "patti", "ben")},
        {"id": group_ids["nested"], "displayName": "Nested Team",
         "description": "Workforce team; contains the Supervisors group",
         "mailNickname": "nested-team", "securityEnabled": True,
         "members": [*members("christie", "allan"), group_ids["supervisors"]]},
    ]
    assignments = [
        {"principalId": group_ids["sales"], "principalType": "Group", "appRoleId": USER_ROLE},
        {"principalId": group_ids["support"], "principalType": "Group", "appRoleId": USER_ROLE},
        {"principalId": group_ids["supervisors"], "principalType": "Group",
         "appRoleId": SUPERVISOR_ROLE},
        {"principalId": group_ids["nested"], "principalType": "Group", "appRoleId": USER_ROLE},
        {"principalId": ids["christie"], "principalType": "User", "appRoleId": USER_ROLE},
        {"principalId": ids["megan"], "principalType": "User",
         "appRoleId": DEFAULT_ACCESS_ROLE},
    ]
    genesys_users = [
        {   # matches adele.vance@ by userName; title outdated
            "id": _guid(rng),
            "userName": "adele.vance@contoso.com",
            "displayName": "Adele Vance",
            "active": True,
            "title": "Sales Associate",
            "emails": [{"type": "work", "value": "adele.vance@contoso.com"}],
            "phoneNumbers": [{"type": "mobile", "value": "+14255550105"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Sales",
            },
        },
        {   # matches lee.gu@ by userName; deactivated in Genesys
            "id": _guid(rng),
            "userName": "lee.gu@contoso.com",
            "displayName": "Lee Gu",
            "active": False,
            "title": "Sales Representative",
            "emails": [{"type": "work", "value": "lee.gu@contoso.com"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Sales",
            },
        },
        {   # not in the directory: created by hand in Genesys, never touched by the tool
            "id": _guid(rng),
            "userName": "frontdesk.kiosk@contoso.com",
            "displayName": "Front Desk Kiosk",
            "active": True,
            "title": "Shared kiosk account",
        },
    ]
    genesys_groups = [
        {"id": _guid(rng), "displayName": "Sales Agents",
         "members": ["adele.vance@contoso.com"]},
        {"id": _guid(rng), "displayName": "Support Agents", "members": []},
        {"id": _guid(rng), "displayName": "Supervisors", "members": []},
    ]
    return {
        "users": users,
        "groups": groups,
        "app_role_assignments": assignments,
        "service_principal": service_principal(),
        "genesys": {"users": genesys_users, "groups": genesys_groups},
    }


# --------------------------------------------------------------------------- synthetic


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
            "onPremisesExtensionAttributes": _extension_attributes(
                extensionAttribute1=f"CC-{4000 + (index % 50) * 10}",
                extensionAttribute2=department,
            ),
            "manager": manager,
        })
    group_count = max(1, users // 100) if users else 0
    groups: list[dict[str, Any]] = []
    for number in range(group_count):
        department = _DEPARTMENTS[number % len(_DEPARTMENTS)][0]
        groups.append({
            "id": str(uuid.UUID(int=getrandbits(128), version=4)),
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
    assignments: list[dict[str, Any]] = [
        {"principalId": g["id"], "principalType": "Group", "appRoleId": USER_ROLE}
        for g in groups
    ]
    assignments.extend(
        {"principalId": ids[index], "principalType": "User",
         "appRoleId": DEFAULT_ACCESS_ROLE if index % 200 == 0 else USER_ROLE}
        for index in range(0, users, 50)
    )
    genesys_groups = [
        {"id": str(uuid.UUID(int=getrandbits(128), version=4)),
         "displayName": g["displayName"], "members": []}
        for g in groups[:5]
    ]
    return {
        "users": user_list,
        "groups": groups,
        "app_role_assignments": assignments,
        "service_principal": service_principal(),
        "genesys": {"users": [], "groups": genesys_groups},
    }

"""The fixed demo directory: 25 named users of Contoso (a manager tree, two disabled, one
without mail), four groups (one nesting another), their app role assignments, and the
Genesys users and groups that exist before the first sync."""

from __future__ import annotations

import random
from typing import Any

from genesys_prov.sandbox.directory.tenant import (
    DEFAULT_ACCESS_ROLE,
    DOMAIN,
    SUPERVISOR_ROLE,
    USER_ROLE,
    extension_attributes,
    guid,
    service_principal,
)

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
    ids = {person[0]: guid(rng) for person in _DEMO_PEOPLE}
    users = [_demo_user(number, person, ids)
             for number, person in enumerate(_DEMO_PEOPLE, start=1)]
    group_ids = {name: guid(rng) for name in ("sales", "support", "supervisors", "nested")}
    groups = _demo_groups(ids, group_ids)
    assignments = _demo_assignments(ids, group_ids)
    genesys_users = _demo_genesys_users(rng)
    genesys_groups = _demo_genesys_groups(rng)
    return {
        "users": users,
        "groups": groups,
        "app_role_assignments": assignments,
        "service_principal": service_principal(),
        "genesys": {"users": genesys_users, "groups": genesys_groups},
    }


def _demo_user(number: int, person: tuple[Any, ...], ids: dict[str, str]) -> dict[str, Any]:
    """The Graph user for one row of ``_DEMO_PEOPLE`` (``number`` counts from 1)."""
    (key, given, surname, local, title, department, mobile, phone, manager, enabled,
     office, city, country, usage, cost_centre) = person
    upn = f"{local}@{DOMAIN}"
    return {
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
        "onPremisesExtensionAttributes": extension_attributes(
            extensionAttribute1=cost_centre,
            extensionAttribute2=department,
        ),
        "manager": ids[manager] if manager else None,
    }


def _demo_groups(ids: dict[str, str], group_ids: dict[str, str]) -> list[dict[str, Any]]:
    """The demo's four Entra groups (one nests the Supervisors group)."""

    def members(*keys: str) -> list[str]:
        """The ids of the demo users called ``keys``."""
        return [ids[k] for k in keys]

    return [
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


def _demo_assignments(ids: dict[str, str], group_ids: dict[str, str]) -> list[dict[str, Any]]:
    """The demo's app role assignments: the four groups plus two users directly."""
    return [
        {"principalId": group_ids["sales"], "principalType": "Group", "appRoleId": USER_ROLE},
        {"principalId": group_ids["support"], "principalType": "Group", "appRoleId": USER_ROLE},
        {"principalId": group_ids["supervisors"], "principalType": "Group",
         "appRoleId": SUPERVISOR_ROLE},
        {"principalId": group_ids["nested"], "principalType": "Group", "appRoleId": USER_ROLE},
        {"principalId": ids["christie"], "principalType": "User", "appRoleId": USER_ROLE},
        {"principalId": ids["megan"], "principalType": "User",
         "appRoleId": DEFAULT_ACCESS_ROLE},
    ]


def _demo_genesys_users(rng: random.Random) -> list[dict[str, Any]]:
    """The SCIM users that already exist in the demo's Genesys (ids drawn from ``rng``)."""
    return [
        {   # matches adele.vance@ by userName; title outdated
            "id": guid(rng),
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
            "id": guid(rng),
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
            "id": guid(rng),
            "userName": "frontdesk.kiosk@contoso.com",
            "displayName": "Front Desk Kiosk",
            "active": True,
            "title": "Shared kiosk account",
        },
    ]


def _demo_genesys_groups(rng: random.Random) -> list[dict[str, Any]]:
    """The groups that already exist in the demo's Genesys (ids drawn from ``rng``)."""
    return [
        {"id": guid(rng), "displayName": "Sales Agents",
         "members": ["adele.vance@contoso.com"]},
        {"id": guid(rng), "displayName": "Support Agents", "members": []},
        {"id": guid(rng), "displayName": "Supervisors", "members": []},
    ]

"""Scope resolution without HTTP: a fake Graph reader feeds read_directory."""

from typing import Any

from genesys_prov.config import SourceConfig
from genesys_prov.mapping.mappings_file import default_mappings_text, parse_mappings
from genesys_prov.source.scope import DEFAULT_ACCESS, DEFAULT_ACCESS_REASON, read_directory

ROLE = "2a9c5e4b-7d1f-4c3e-8b6a-5f0d9e2c1a47"
USER = "#microsoft.graph.user"
GROUP = "#microsoft.graph.group"


class FakeGraph:
    def __init__(self) -> None:
        self.users = [{"id": i, "userPrincipalName": f"{i}@x", "displayName": i,
                       "accountEnabled": True, "department": "Sales" if i != "u5" else "Ops"}
                      for i in ("u1", "u2", "u3", "u4", "u5")]
        self.groups = [{"id": "g1", "displayName": "G1"}, {"id": "g2", "displayName": "G2"},
                       {"id": "g3", "displayName": "Unassigned"}]
        self.members = {"g1": [("u2", USER), ("g2", GROUP)], "g2": [("u3", USER)],
                        "g3": [("u5", USER)]}
        self.assignments = [
            {"principalId": "u1", "principalType": "User", "appRoleId": ROLE},
            {"principalId": "u4", "principalType": "User", "appRoleId": DEFAULT_ACCESS},
            {"principalId": "g1", "principalType": "Group", "appRoleId": ROLE},
        ]
        self.calls: list[str] = []

    def iter_assignments(self, sp: str) -> Any:
        self.calls.append("assignments")
        return iter(self.assignments)

    def iter_groups(self, select: Any) -> Any:
        self.calls.append("groups")
        return iter(self.groups)

    def iter_members(self, gid: str, transitive: bool = False) -> Any:
        self.calls.append(f"members {gid} {transitive}")
        out = []
        for mid, kind in self.members[gid]:
            out.append({"id": mid, "@odata.type": kind})
            if transitive and kind == GROUP:
                out += [{"id": m, "@odata.type": k} for m, k in self.members[mid]]
        return iter(out)

    def iter_users(self, select: Any, expand_manager: bool = False,
                   delta_link: Any = None) -> Any:
        self.calls.append(f"users expand={expand_manager}")
        return iter(self.users)


def config(**kw: Any) -> SourceConfig:
    return SourceConfig(tenant_id="t", client_id="c", client_secret="s",
                        service_principal_id="sp", **kw)


def scoped(directory: Any) -> dict[str, str | None]:
    return {u.source_id: (None if u.in_scope else u.scope_reason) for u in directory.users}


def test_assigned_users_and_direct_group_members_default_access_excluded():
    graph = FakeGraph()
    d = read_directory(graph, config(), parse_mappings(default_mappings_text()))  # type: ignore[arg-type]
    assert scoped(d) == {"u1": None, "u2": None, "u3": "not assigned to the application",
                         "u4": DEFAULT_ACCESS_REASON, "u5": "not assigned to the application"}
    assert [(g.identity, g.members) for g in d.groups] == [("G1", ("u2",))]
    assert "members g1 False" in graph.calls and "users expand=True" in graph.calls


def test_nested_groups_follow_transitive_members():
    d = read_directory(FakeGraph(), config(nested_groups=True),  # type: ignore[arg-type]
                       parse_mappings(default_mappings_text()))
    assert scoped(d)["u3"] is None
    assert d.groups[0].members == ("u2", "u3")


def test_default_access_can_be_allowed():
    d = read_directory(FakeGraph(), config(exclude_default_access=False),  # type: ignore[arg-type]
                       parse_mappings(default_mappings_text()))
    assert scoped(d)["u4"] is None


def test_scope_all_with_filters():
    mappings = parse_mappings(default_mappings_text() + """
user_scope:
  - - {attribute: department, operator: EQUALS, value: Sales}
group_scope:
  - - {attribute: displayName, operator: REGEX MATCH, value: "^G"}
""")
    graph = FakeGraph()
    d = read_directory(graph, config(scope="all"), mappings)  # type: ignore[arg-type]
    assert scoped(d)["u5"] == "filtered out by user_scope"
    assert all(v is None for k, v in scoped(d).items() if k != "u5")
    assert [g.identity for g in d.groups] == ["G1", "G2"]
    assert "assignments" not in graph.calls

"""Issue 13's expression functions: AppRoleAssignmentsComplex, Len and DefaultDomain — the
examples of Microsoft's reference ("Reference for writing expressions for attribute mappings
in Microsoft Entra ID", and the "Provisioning a role to a SCIM app" tutorial it links to for
AppRoleAssignmentsComplex), then the edges (null, empty, multi-valued, wrong types)."""

from __future__ import annotations

import pickle
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genesys_prov.errors import EvaluationError, ExpressionError
from genesys_prov.mapping.expressions import (
    APP_ROLE_TYPE,
    DEFAULT_DOMAIN,
    function_names,
    parse,
)


def run(text: str, **attributes: Any) -> Any:
    """Parse ``text`` and evaluate it against keyword attributes (missing ones are null)."""
    return parse(text).evaluate(attributes.get)


def role(name: str) -> dict[str, Any]:
    """One role object as the reference's example POST sends it."""
    return {"primary": False, "type": "WindowsAzureActiveDirectoryRole", "display": name,
            "value": name}


# The tutorial's example: a user assigned the app roles "Admin" and "User".
APP_ROLES = "AppRoleAssignmentsComplex([appRoleAssignments])"


class TestAppRoleAssignmentsComplex:
    def test_reference_example_two_roles(self) -> None:
        assert run(APP_ROLES, appRoleAssignments=["Admin", "User"]) == [role("Admin"),
                                                                         role("User")]

    def test_every_role_is_sent_with_primary_false(self) -> None:
        roles = run(APP_ROLES, appRoleAssignments=["Admin", "User", "Agent"])
        assert [r["primary"] for r in roles] == [False, False, False]
        assert {r["type"] for r in roles} == {APP_ROLE_TYPE}

    def test_one_role_given_as_a_single_value(self) -> None:
        assert run(APP_ROLES, appRoleAssignments="Agent") == [role("Agent")]

    def test_no_roles_is_null_not_an_empty_list(self) -> None:
        assert run(APP_ROLES) is None
        assert run(APP_ROLES, appRoleAssignments=[]) is None
        assert run(APP_ROLES, appRoleAssignments="") is None
        assert run(APP_ROLES, appRoleAssignments=["", None]) is None

    def test_duplicates_and_empty_names_dropped_order_kept(self) -> None:
        assert run(APP_ROLES, appRoleAssignments=["User", "", "Admin", "User", None]) == [
            role("User"), role("Admin")]

    def test_names_are_case_sensitive(self) -> None:
        assert [r["value"] for r in run(APP_ROLES, appRoleAssignments=["Agent", "agent"])] == [
            "Agent", "agent"]

    def test_each_call_returns_fresh_objects(self) -> None:
        expression = parse(APP_ROLES)
        first = expression.evaluate({"appRoleAssignments": ["Admin"]}.get)
        first[0]["value"] = "changed"
        assert expression.evaluate({"appRoleAssignments": ["Admin"]}.get) == [role("Admin")]

    def test_a_role_that_is_not_text_is_an_error(self) -> None:
        with pytest.raises(EvaluationError, match="AppRoleAssignmentsComplex"):
            run(APP_ROLES, appRoleAssignments=[{"id": "x"}])

    def test_arity(self) -> None:
        for text in ("AppRoleAssignmentsComplex()", "AppRoleAssignmentsComplex([a], [b])"):
            with pytest.raises(ExpressionError, match="expects 1 argument, got"):
                parse(text)

    def test_the_list_flows_through_ignore_and_coalesce(self) -> None:
        assert run(f"IgnoreFlowIfNullOrEmpty({APP_ROLES})", appRoleAssignments=["A"]) == [
            role("A")]
        assert run(f'Coalesce({APP_ROLES}, "none")') == "none"
        assert run(f"Count({APP_ROLES})", appRoleAssignments=["A", "B", "A"]) == 2

    @given(st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=8))
    def test_property_one_object_per_distinct_non_empty_name(self, names: list[Any]) -> None:
        result = run(APP_ROLES, appRoleAssignments=names)
        expected = list(dict.fromkeys(n for n in names if n))
        if not expected:
            assert result is None
        else:
            assert result == [role(n) for n in expected]


class TestLen:
    @pytest.mark.parametrize(("text", "expected"), [
        ('Len("John Doe")', 8),      # the reference's Example 1
        ("Len(42568)", 5),
        ('Len("42568.75")', 8),      # the reference writes Len(42568.75): see below
    ])
    def test_reference_examples(self, text: str, expected: int) -> None:
        assert run(text) == expected

    def test_decimal_literals_are_not_in_the_language(self) -> None:
        # The reference's Len(42568.75) needs a decimal literal; the language here has
        # whole numbers only, so that example is a syntax error (the string form works).
        with pytest.raises(ExpressionError, match=r"unexpected character '\.'"):
            parse("Len(42568.75)")

    # The reference's Example 2: an alias of at most 10 characters, written as it prints it
    # (spaces before "(", newlines inside IIF).
    ALIAS = (
        'IIF(Len([LastName]) <= 5,  \n\n'
        '  Left(Join ("",[LastName],[FirstName]),10),  \n'
        '  Join("", Mid([LastName],1,9), Mid([FirstName],1,1)) \n\n'
        ')'
    )

    @pytest.mark.parametrize(("first", "last", "expected"), [
        ("John", "Smith", "SmithJohn"),
        ("John", "Parker", "ParkerJ"),
    ])
    def test_reference_alias_example(self, first: str, last: str, expected: str) -> None:
        assert run(self.ALIAS, FirstName=first, LastName=last) == expected

    def test_alias_is_cut_at_ten_characters(self) -> None:
        assert run(self.ALIAS, FirstName="Alexandra", LastName="Li") == "LiAlexandr"
        assert run(self.ALIAS, FirstName="Ada", LastName="Wolfeschlegel") == "WolfeschlA"

    def test_null_and_empty_are_zero(self) -> None:
        assert run("Len([a])") == 0
        assert run("Len([a])", a="") == 0
        assert run("Len(IgnoreFlowIfNullOrEmpty([a]))", a="x") == 1

    def test_numbers_booleans_and_text(self) -> None:
        assert run("Len([a])", a=-42) == 3
        assert run("Len([a])", a=True) == 4          # "True"
        assert run("Len(&HFF)") == 3                  # 255
        assert run('Len("Zoë")') == 3
        assert run('Len(" padded ")') == 8

    def test_multi_valued_is_an_error(self) -> None:
        with pytest.raises(EvaluationError, match="Len: string is multi-valued"):
            run("Len([proxyAddresses])", proxyAddresses=["a", "b"])

    def test_len_agrees_with_mid(self) -> None:
        assert run("Mid([a], 1, Len([a]))", a="Łukasz Ślęzak") == "Łukasz Ślęzak"

    @given(st.text(max_size=30))
    def test_property_len_is_the_character_count(self, text: str) -> None:
        assert run("Len([a])", a=text) == len(text)
        assert run('IIF(Len([a]) = 0, "empty", "full")', a=text) == (
            "empty" if not text else "full")


class TestDefaultDomain:
    def test_reference_example(self) -> None:
        # Join("@", [mailNickname], DefaultDomain()): a UPN on the tenant's default domain.
        values = {"mailNickname": "ada.lovelace", DEFAULT_DOMAIN: "contoso.onmicrosoft.com"}
        assert parse('Join("@", [mailNickname], DefaultDomain())').evaluate(values.get) == (
            "ada.lovelace@contoso.onmicrosoft.com")

    def test_it_asks_the_lookup_for_the_reserved_name_only(self) -> None:
        asked: list[str] = []

        def lookup(name: str) -> Any:
            asked.append(name)
            return "contoso.com"

        assert parse("DefaultDomain()").evaluate(lookup) == "contoso.com"
        assert asked == [DEFAULT_DOMAIN]

    def test_no_default_domain_is_an_error_as_in_entra(self) -> None:
        with pytest.raises(EvaluationError, match="default verified domain is not known"):
            run("DefaultDomain()")
        with pytest.raises(EvaluationError, match="not known"):
            parse("DefaultDomain()").evaluate({DEFAULT_DOMAIN: ""}.get)

    def test_a_non_text_domain_is_an_error(self) -> None:
        with pytest.raises(EvaluationError, match="expected a domain name"):
            parse("DefaultDomain()").evaluate({DEFAULT_DOMAIN: ["a.com", "b.com"]}.get)

    def test_takes_no_arguments(self) -> None:
        with pytest.raises(ExpressionError, match="DefaultDomain expects 0 arguments, got 1"):
            parse('DefaultDomain("contoso.com")')

    def test_is_not_an_attribute(self) -> None:
        expression = parse('Join("@", [mailNickname], DefaultDomain())')
        assert expression.attributes() == frozenset({"mailNickname"})
        assert expression.uses_default_domain
        assert expression.functions() == frozenset({"Join", "DefaultDomain"})
        assert not parse("Join(\"@\", [mailNickname], \"contoso.com\")").uses_default_domain

    def test_lazy_branches_do_not_ask(self) -> None:
        # In IIF's untaken branch the domain is never needed (so never an error).
        assert run('IIF([a] = "x", DefaultDomain(), "other")', a="y") == "other"
        assert run('Coalesce([upn], DefaultDomain())', upn="u@x.com") == "u@x.com"

    def test_survives_pickle(self) -> None:
        expression = pickle.loads(pickle.dumps(parse("ToUpper(DefaultDomain())")))
        assert expression.uses_default_domain
        assert expression.evaluate({DEFAULT_DOMAIN: "contoso.com"}.get) == "CONTOSO.COM"


class TestCatalog:
    @pytest.mark.parametrize("name", ["AppRoleAssignmentsComplex", "Len", "DefaultDomain"])
    def test_listed(self, name: str) -> None:
        assert name in function_names()

    @pytest.mark.parametrize(("text", "hint"), [
        ("len([a])", "Len"),
        ("defaultDomain()", "DefaultDomain"),
        ("AppRoleAssignmentComplex([a])", "AppRoleAssignmentsComplex"),
    ])
    def test_unknown_function_suggests_the_new_names(self, text: str, hint: str) -> None:
        with pytest.raises(ExpressionError, match=f"did you mean {hint}\\?"):
            parse(text)

    def test_not_yet_supported_names_are_unknown(self) -> None:
        # Documented by Microsoft elsewhere but not implemented here (see docs/status.md).
        with pytest.raises(ExpressionError, match="unknown function"):
            parse("AssertiveAppRoleAssignmentsComplex([a])")

    def test_an_undocumented_function_is_refused_with_its_reason(self) -> None:
        # Entra's function list names it; its reference gives no behaviour: never guessed.
        with pytest.raises(ExpressionError, match="'NormalizeDiacriticsByCulture' is not "
                           "supported: Microsoft's expression reference does not document"):
            parse('NormalizeDiacriticsByCulture([a], "de-DE")')


class TestMappingsCarryTheDomain:
    """The evaluation context: Mappings.with_default_domain() feeds every evaluation."""

    TEXT = (
        "user:\n"
        "  - {target: userName, source: userPrincipalName, match: 1}\n"
        "  - {target: title, expression: 'Join(\"@\", [mailNickname], DefaultDomain())'}\n"
        "  - {target: nickName, expression: 'SelectUniqueValue(Join(\"@\", [givenName], "
        "DefaultDomain()))', apply: on_create}\n"
        "group:\n"
        "  - {target: displayName, expression: 'Join(\" / \", [displayName], DefaultDomain())',"
        " match: 1}\n"
    )
    USER: ClassVar[dict[str, Any]] = {"id": "1", "userPrincipalName": "ada@x.com",
                                      "mailNickname": "ada",
                                      "givenName": "Ada", "accountEnabled": True}

    def mappings(self) -> Any:
        from genesys_prov.mapping.mappings_file import parse_mappings
        return parse_mappings(self.TEXT, where="test")

    def test_uses_default_domain(self) -> None:
        from genesys_prov.mapping.mappings_file import default_mappings_text, parse_mappings
        assert self.mappings().uses_default_domain
        assert not parse_mappings(default_mappings_text(), where="d").uses_default_domain

    def test_every_evaluation_sees_it(self) -> None:
        from genesys_prov.mapping.desired import desired_group, desired_user, evaluate
        bound = self.mappings().with_default_domain("contoso.com")
        desired = desired_user(self.USER, bound)
        assert desired.error is None
        assert desired.values["title"] == "ada@contoso.com"
        assert desired.unique["nickName"] == ["Ada@contoso.com"]
        out_of_scope = desired_user(self.USER, bound, in_scope=False)
        assert out_of_scope.values["title"] == "ada@contoso.com"
        group = desired_group({"id": "g", "displayName": "Sales"}, bound)
        assert group.values["displayName"] == "Sales / contoso.com"
        title = next(m for m in bound.user if m.target == "title")
        assert evaluate(title, self.USER, True, bound.default_domain) == "ada@contoso.com"

    def test_unbound_mappings_fail_the_user_with_the_reason(self) -> None:
        from genesys_prov.mapping.desired import desired_user
        desired = desired_user(self.USER, self.mappings())
        assert desired.error is not None
        assert "DefaultDomain: the tenant's default verified domain is not known" in (
            desired.error)

    def test_binding_is_a_new_value_and_the_file_is_unchanged(self) -> None:
        mappings = self.mappings()
        bound = mappings.with_default_domain("contoso.com")
        assert mappings.default_domain is None and bound.default_domain == "contoso.com"
        assert bound.digest == mappings.digest  # the settings digest ignores the tenant

    def test_a_directory_attribute_cannot_pose_as_the_domain(self) -> None:
        from genesys_prov.mapping.desired import desired_user
        user = {**self.USER, DEFAULT_DOMAIN: "evil.example"}
        bound = self.mappings().with_default_domain("contoso.com")
        assert desired_user(user, bound).values["title"] == "ada@contoso.com"

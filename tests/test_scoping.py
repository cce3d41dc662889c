"""Scoping filters: Entra's operators and their null/case rules, OR of ANDs, explanations,
and a precise error for every kind of mistake."""

import pickle
import re
from typing import Any

import pytest

from genesys_prov.errors import MappingError
from genesys_prov.mapping.filters import OPERATORS, Clause, ScopeFilter, parse_scope

WHERE = "mappings.yaml: user_scope"
NOBODY: dict[str, Any] = {}


def one(attribute: str, operator: str, value: Any = None, **extra: Any) -> ScopeFilter:
    clause: dict[str, Any] = {"attribute": attribute, "operator": operator, **extra}
    if value is not None:
        clause["value"] = value
    return parse_scope([[clause]], WHERE)


def check(operator: str, value: Any, attribute_value: Any) -> bool:
    return one("a", operator, value).matches({"a": attribute_value}.get)


def error(raw: Any) -> str:
    with pytest.raises(MappingError) as info:
        parse_scope(raw, WHERE)
    return str(info.value)


# --- operator spellings ------------------------------------------------------------------

def test_operators_are_the_canonical_names() -> None:
    assert frozenset({
        "EQUALS", "NOT EQUALS", "IS TRUE", "IS FALSE", "IS NULL", "IS NOT NULL",
        "REGEX MATCH", "NOT REGEX MATCH", "INCLUDES", "ENDS_WITH", "GREATER_THAN",
        "GREATER_THAN_OR_EQUALS", "&", "!&",
    }) == OPERATORS


@pytest.mark.parametrize(("spelling", "canonical"), [
    ("EQUALS", "EQUALS"), ("equals", "EQUALS"), ("NOT EQUALS", "NOT EQUALS"),
    ("not_equals", "NOT EQUALS"), ("Is True", "IS TRUE"), ("IS_FALSE", "IS FALSE"),
    ("is null", "IS NULL"), ("IS_NOT_NULL", "IS NOT NULL"), ("regex match", "REGEX MATCH"),
    ("Not_Regex_Match", "NOT REGEX MATCH"), ("Includes", "INCLUDES"),
    ("ENDS_WITH", "ENDS_WITH"), ("ends with", "ENDS_WITH"), ("Greater_Than", "GREATER_THAN"),
    ("greater than", "GREATER_THAN"), ("Greater_Than_OR_EQUALS", "GREATER_THAN_OR_EQUALS"),
    ("  greater  than or_equals ", "GREATER_THAN_OR_EQUALS"), ("&", "&"), ("!&", "!&"),
])
def test_spellings_are_normalised(spelling: str, canonical: str) -> None:
    value = None if canonical.startswith("IS ") else "1"
    clause = one("a", spelling, value).groups[0][0]
    assert clause.operator == canonical
    assert clause.operator in OPERATORS


def test_clause_can_be_built_directly_and_is_normalised() -> None:
    clause = Clause("employeeId", "greater than", "10")
    assert clause == Clause("employeeId", "GREATER_THAN", 10)
    assert clause.value == 10
    assert clause.test({"employeeId": "11"}.get)
    assert Clause("accountEnabled", "is true").test({"accountEnabled": True}.get)


# --- EQUALS / NOT EQUALS ---------------------------------------------------------------------

def test_equals_is_case_sensitive() -> None:
    assert check("EQUALS", "Sales", "Sales")
    assert not check("EQUALS", "sales", "Sales")
    assert not check("EQUALS", "Sales", "Sales ")


def test_equals_compares_as_strings() -> None:
    assert check("EQUALS", "5", 5)
    assert check("EQUALS", 5, "5")
    assert check("EQUALS", 5, 5)
    assert check("EQUALS", "True", True)
    assert check("EQUALS", True, True)  # YAML `value: true`
    assert not check("EQUALS", "true", True)
    assert check("EQUALS", "False", False)
    assert one("a", "EQUALS", 5).groups[0][0].value == "5"


def test_equals_null_is_false() -> None:
    assert not check("EQUALS", "Sales", None)
    assert not check("EQUALS", "Sales", "")
    assert not one("a", "EQUALS", "x").matches(NOBODY.get)


def test_not_equals() -> None:
    assert check("NOT EQUALS", "Sales", "Marketing")
    assert not check("NOT EQUALS", "Sales", "Sales")
    assert check("NOT EQUALS", "sales", "Sales")  # case-sensitive
    assert not check("NOT EQUALS", "5", 5)


def test_not_equals_null_is_false() -> None:
    assert not check("NOT EQUALS", "Sales", None)
    assert not check("NOT EQUALS", "Sales", "")


# --- IS TRUE / IS FALSE ----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "is_true", "is_false"), [
    (True, True, False),
    (False, False, True),
    ("True", True, False),
    ("true", True, False),
    ("TRUE", True, False),
    ("False", False, True),
    ("false", False, True),
    (None, False, False),
    ("", False, False),
    (1, False, False),
    (0, False, False),
    ("yes", False, False),
    ([True], False, False),
])
def test_is_true_and_is_false(value: Any, is_true: bool, is_false: bool) -> None:
    assert check("IS TRUE", None, value) is is_true
    assert check("IS FALSE", None, value) is is_false


# --- IS NULL / IS NOT NULL -------------------------------------------------------------------

@pytest.mark.parametrize(("value", "is_null", "is_not_null"), [
    (None, True, False),
    ("", True, False),
    (" ", False, True),
    ("x", False, True),
    (0, False, True),
    (False, False, True),
    ([], False, False),
    (["x"], False, False),
])
def test_is_null_and_is_not_null(value: Any, is_null: bool, is_not_null: bool) -> None:
    assert check("IS NULL", None, value) is is_null
    assert check("IS NOT NULL", None, value) is is_not_null


def test_missing_attribute_is_null() -> None:
    assert one("nope", "IS NULL").matches(NOBODY.get)
    assert not one("nope", "IS NOT NULL").matches(NOBODY.get)


# --- REGEX MATCH / NOT REGEX MATCH -----------------------------------------------------------

def test_regex_match_is_an_unanchored_search() -> None:
    assert check("REGEX MATCH", "^Agent", "Agent Tier 1")
    assert not check("REGEX MATCH", "^Agent", "Senior Agent")
    assert check("REGEX MATCH", "Agent", "Senior Agent")
    assert check("REGEX MATCH", r"\d{3}$", "ext-123")


def test_regex_match_is_case_sensitive_unless_asked() -> None:
    assert not check("REGEX MATCH", "^agent", "Agent")
    assert check("REGEX MATCH", "(?i)^agent", "Agent")


def test_regex_match_on_non_strings_uses_their_text() -> None:
    assert check("REGEX MATCH", "^4[0-9]$", 42)
    assert check("REGEX MATCH", "^True$", True)


def test_regex_match_null_is_false() -> None:
    assert not check("REGEX MATCH", ".*", None)
    assert not check("REGEX MATCH", ".*", "")


def test_not_regex_match() -> None:
    assert check("NOT REGEX MATCH", "^Agent", "Manager")
    assert not check("NOT REGEX MATCH", "^Agent", "Agent 7")
    assert check("NOT REGEX MATCH", "^agent", "Agent 7")  # case-sensitive


def test_not_regex_match_null_is_false() -> None:
    assert not check("NOT REGEX MATCH", "^Agent", None)
    assert not check("NOT REGEX MATCH", "^Agent", "")


def test_regex_is_compiled_once_at_parse_time(monkeypatch: pytest.MonkeyPatch) -> None:
    scope = one("a", "REGEX MATCH", "^A")

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compiled at evaluation time")
    monkeypatch.setattr(re, "compile", boom)
    monkeypatch.setattr(re, "search", boom)
    assert all(scope.matches({"a": f"A{i}"}.get) for i in range(100))


# --- Includes / ENDS_WITH --------------------------------------------------------------------

def test_includes_is_a_case_sensitive_substring() -> None:
    assert check("Includes", "ale", "Sales")
    assert check("Includes", "Sales", "Sales")
    assert not check("Includes", "ALE", "Sales")
    assert not check("Includes", "Salesforce", "Sales")
    assert check("Includes", 23, "a123b")


def test_includes_null_is_false() -> None:
    assert not check("Includes", "x", None)
    assert not check("Includes", "x", "")


def test_ends_with_is_a_case_sensitive_suffix() -> None:
    assert check("ENDS_WITH", "@contoso.com", "ann@contoso.com")
    assert not check("ENDS_WITH", "@Contoso.com", "ann@contoso.com")
    assert not check("ENDS_WITH", "@contoso.com", "ann@contoso.com.evil")
    assert check("ENDS_WITH", "0", 10)


def test_ends_with_null_is_false() -> None:
    assert not check("ENDS_WITH", "x", None)
    assert not check("ENDS_WITH", "x", "")


# --- Greater_Than / Greater_Than_OR_EQUALS ---------------------------------------------------

@pytest.mark.parametrize(("attribute_value", "gt", "ge"), [
    (11, True, True),
    (10, False, True),
    (9, False, False),
    ("11", True, True),
    (" 10 ", False, True),
    ("+12", True, True),
    ("-3", False, False),
    ("10.5", False, False),
    ("ten", False, False),
    ("0x20", False, False),
    (True, False, False),
    (10.0, False, False),
    (None, False, False),
    ("", False, False),
    ([11], False, False),
])
def test_greater_than(attribute_value: Any, gt: bool, ge: bool) -> None:
    assert check("Greater_Than", 10, attribute_value) is gt
    assert check("Greater_Than_OR_EQUALS", 10, attribute_value) is ge


def test_greater_than_accepts_a_digit_string_and_signs() -> None:
    assert one("a", "Greater_Than", "10").groups[0][0].value == 10
    assert one("a", "Greater_Than", " -5 ").groups[0][0].value == -5
    assert check("Greater_Than", "-5", -4)
    assert not check("Greater_Than", "-5", -5)


def test_greater_than_compares_numbers_not_text() -> None:
    assert check("Greater_Than", 9, "10")  # "10" < "9" as text


# --- & / !& ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("attribute_value", "all_set", "none_set"), [
    (0b0110, True, False),   # both bits of 6 set
    (0b1110, True, False),
    (0b0100, False, False),  # only one of them
    (0b0010, False, False),
    (0b1001, False, True),   # neither
    (0, False, True),
    ("6", True, False),
    ("9", False, True),
    ("0x6", False, False),   # attribute values are decimal only
    ("abc", False, False),
    (True, False, False),
    (None, False, False),
    ("", False, False),
    ([6], False, False),
])
def test_bit_operators(attribute_value: Any, all_set: bool, none_set: bool) -> None:
    assert check("&", 6, attribute_value) is all_set
    assert check("!&", 6, attribute_value) is none_set


def test_bit_mask_may_be_hex_or_decimal_text() -> None:
    assert one("uac", "&", "0x2").groups[0][0].value == 2
    assert one("uac", "!&", "0X10").groups[0][0].value == 16
    assert one("uac", "&", "514").groups[0][0].value == 514
    assert one("uac", "&", 2).matches({"uac": 514}.get)
    assert one("uac", "!&", "0x2").matches({"uac": 512}.get)


# --- multi-valued attributes -----------------------------------------------------------------

@pytest.mark.parametrize(("operator", "value"), [
    ("EQUALS", "a"), ("NOT EQUALS", "z"), ("REGEX MATCH", "a"), ("NOT REGEX MATCH", "z"),
    ("Includes", "a"), ("ENDS_WITH", "a"), ("Greater_Than", 0),
    ("Greater_Than_OR_EQUALS", 0), ("&", 1), ("!&", 2), ("IS TRUE", None),
    ("IS FALSE", None), ("IS NULL", None), ("IS NOT NULL", None),
])
def test_multi_valued_attributes_make_every_clause_false(operator: str, value: Any) -> None:
    assert not check(operator, value, ["a"] if value != 1 else [1])
    assert not check(operator, value, {"a": 1})


# --- groups: OR of ANDs ----------------------------------------------------------------------

RAW = [
    [{"attribute": "department", "operator": "EQUALS", "value": "Sales"},
     {"attribute": "accountEnabled", "operator": "IS TRUE"}],
    [{"attribute": "jobTitle", "operator": "REGEX MATCH", "value": "^Agent"}],
]


def test_clauses_are_anded_and_groups_ored() -> None:
    scope = parse_scope(RAW, WHERE)
    assert scope.matches({"department": "Sales", "accountEnabled": True}.get)
    assert not scope.matches({"department": "Sales", "accountEnabled": False}.get)
    assert scope.matches({"department": "IT", "jobTitle": "Agent 1"}.get)
    assert scope.matches({"accountEnabled": False, "jobTitle": "Agent 1"}.get)
    assert not scope.matches({"department": "IT", "jobTitle": "Manager"}.get)
    assert not scope.matches(NOBODY.get)


@pytest.mark.parametrize("raw", [None, []])
def test_empty_scope_matches_everything_and_is_falsy(raw: Any) -> None:
    scope = parse_scope(raw, WHERE)
    assert scope == ScopeFilter(())
    assert not scope
    assert scope.matches(NOBODY.get)
    assert scope.attributes() == frozenset()
    assert scope.explain(NOBODY.get) == []


def test_non_empty_scope_is_truthy() -> None:
    assert parse_scope(RAW, WHERE)


def test_attributes() -> None:
    assert parse_scope(RAW, WHERE).attributes() == frozenset(
        {"department", "accountEnabled", "jobTitle"})


def test_explain_lists_every_clause_without_short_circuit() -> None:
    scope = parse_scope(RAW, WHERE)
    assert scope.explain({"department": "IT", "accountEnabled": True,
                          "jobTitle": "Agent"}.get) == [
        ('group 0: department EQUALS "Sales"', False),
        ("group 0: accountEnabled IS TRUE", True),
        ('group 1: jobTitle REGEX MATCH "^Agent"', True),
    ]


def test_describe() -> None:
    assert Clause("department", "equals", "Sales").describe() == 'department EQUALS "Sales"'
    assert Clause("t", "Includes", 'a"b').describe() == r't INCLUDES "a\"b"'
    assert Clause("n", "greater_than", "7").describe() == "n GREATER_THAN 7"
    assert Clause("uac", "&", "0x2").describe() == "uac & 2"
    assert Clause("x", "is not null").describe() == "x IS NOT NULL"


def test_matches_with_read_source_style_lookup() -> None:
    user: dict[str, Any] = {"department": "Sales", "accountEnabled": True,
            "onPremisesExtensionAttributes": {"extensionAttribute1": "Genesys"}}

    def lookup(name: str) -> Any:
        if name == "extensionAttribute1":
            return user["onPremisesExtensionAttributes"]["extensionAttribute1"]
        return user.get(name)

    scope = parse_scope([[{"attribute": "extensionAttribute1", "operator": "EQUALS",
                           "value": "Genesys"},
                          {"attribute": "department", "operator": "EQUALS",
                           "value": "Sales"}]], WHERE)
    assert scope.matches(lookup)


def test_filters_are_hashable_and_picklable() -> None:
    scope = parse_scope(RAW, WHERE)
    assert hash(scope) == hash(parse_scope(RAW, WHERE))
    copy = pickle.loads(pickle.dumps(scope))
    assert copy == scope
    assert copy.matches({"jobTitle": "Agent"}.get)


def test_many_users_stay_cheap() -> None:
    scope = parse_scope([*RAW, [{"attribute": "n", "operator": "&", "value": "0x2"}]], WHERE)
    users = [{"department": "IT", "jobTitle": f"Clerk {i}", "n": str(i)} for i in range(20000)]
    assert sum(scope.matches(u.get) for u in users) == 10000


# --- errors ----------------------------------------------------------------------------------

def test_unknown_operator_suggests_the_closest() -> None:
    message = error([[{"attribute": "a", "operator": "EQUAL", "value": "x"}]])
    assert message == (f"{WHERE}[0][0]: unknown operator 'EQUAL' (did you mean 'EQUALS'?)")


def test_unknown_operator_location_counts_groups_and_clauses() -> None:
    message = error([
        [{"attribute": "a", "operator": "IS NULL"}],
        [{"attribute": "a", "operator": "IS NULL"},
         {"attribute": "b", "operator": "Greater_Then", "value": 1}],
    ])
    assert message.startswith(f"{WHERE}[1][1]: unknown operator 'Greater_Then'")
    assert "did you mean 'GREATER_THAN'?" in message


def test_unknown_operator_hints() -> None:
    assert "did you mean 'INCLUDES'?" in error(
        [[{"attribute": "a", "operator": "contains", "value": "x"}]])
    assert "'REGEX MATCH' with a '^' anchor" in error(
        [[{"attribute": "a", "operator": "STARTS_WITH", "value": "x"}]])
    assert "expected one of:" in error(
        [[{"attribute": "a", "operator": "zzzz", "value": "x"}]])


def test_operator_must_be_a_string() -> None:
    assert error([[{"attribute": "a", "operator": 5}]]) == (
        f"{WHERE}[0][0]: operator must be a string, got an integer")


def test_bad_regex_carries_re_message() -> None:
    message = error([[{"attribute": "a", "operator": "REGEX MATCH", "value": "(Agent"}]])
    assert message.startswith(f"{WHERE}[0][0]: invalid regular expression '(Agent': ")
    assert "missing )" in message


@pytest.mark.parametrize("operator", [
    "EQUALS", "NOT EQUALS", "REGEX MATCH", "NOT REGEX MATCH", "Includes", "ENDS_WITH",
    "Greater_Than", "Greater_Than_OR_EQUALS", "&", "!&",
])
def test_missing_value(operator: str) -> None:
    canonical = Clause("a", operator, "1").operator
    assert error([[{"attribute": "a", "operator": operator}]]) == (
        f"{WHERE}[0][0]: {canonical} needs a value")
    assert "needs a value" in error([[{"attribute": "a", "operator": operator, "value": ""}]])
    assert "needs a value" in error(
        [[{"attribute": "a", "operator": operator, "value": None}]])


@pytest.mark.parametrize("operator", ["IS TRUE", "IS FALSE", "IS NULL", "IS NOT NULL"])
def test_value_given_to_an_is_operator(operator: str) -> None:
    assert error([[{"attribute": "a", "operator": operator, "value": "yes"}]]) == (
        f"{WHERE}[0][0]: {operator} takes no value, got 'yes'")
    # an explicit null is the same as no value
    assert parse_scope([[{"attribute": "a", "operator": operator, "value": None}]], WHERE)


@pytest.mark.parametrize("value", ["ten", "1.5", 1.5, True, "0x2", "", [1]])
def test_greater_than_needs_an_integer(value: Any) -> None:
    message = error([[{"attribute": "a", "operator": "Greater_Than", "value": value}]])
    assert message.startswith(f"{WHERE}[0][0]: GREATER_THAN needs ")


@pytest.mark.parametrize("value", ["ten", "0xZZ", 1.5, True, 0, -2, "-0x2", [2]])
@pytest.mark.parametrize("operator", ["&", "!&"])
def test_bit_operators_need_a_positive_integer_mask(operator: str, value: Any) -> None:
    message = error([[{"attribute": "a", "operator": operator, "value": value}]])
    assert message.startswith(f"{WHERE}[0][0]: {operator} needs a positive integer bit mask")


@pytest.mark.parametrize("value", [1.5, [1], {"a": 1}])
def test_text_operators_need_a_string(value: Any) -> None:
    message = error([[{"attribute": "a", "operator": "EQUALS", "value": value}]])
    assert message.startswith(f"{WHERE}[0][0]: EQUALS needs a string value")


def test_unknown_key_suggests_the_closest() -> None:
    assert error([[{"attribute": "a", "operator": "EQUALS", "valeu": "x"}]]) == (
        f"{WHERE}[0][0]: unknown key 'valeu' (did you mean 'value'?)")
    assert "expected attribute, operator, value" in error(
        [[{"attribute": "a", "operator": "IS NULL", "zzz": 1}]])


@pytest.mark.parametrize("key", ["attribute", "operator"])
def test_missing_attribute_or_operator(key: str) -> None:
    clause = {"attribute": "a", "operator": "IS NULL"}
    del clause[key]
    assert error([[clause]]) == f"{WHERE}[0][0]: missing {key!r}"


@pytest.mark.parametrize("attribute", ["", "  ", 5, None])
def test_attribute_must_be_a_non_empty_string(attribute: Any) -> None:
    message = error([[{"attribute": attribute, "operator": "IS NULL"}]])
    assert message.startswith(f"{WHERE}[0][0]: attribute must be a non-empty string")


def test_scope_must_be_a_list() -> None:
    assert error({"attribute": "a"}) == (
        f"{WHERE}: expected a list of filter groups (each a list of clauses), got a mapping")
    assert "got a string" in error("department EQUALS Sales")


def test_group_must_be_a_list_of_clauses() -> None:
    message = error([{"attribute": "a", "operator": "IS NULL"}])
    assert message.startswith(
        f"{WHERE}[0]: a filter group must be a list of clauses, got a mapping")
    assert "'- - '" in message
    assert error([[{"attribute": "a", "operator": "IS NULL"}], "x"]).startswith(
        f"{WHERE}[1]: a filter group must be a list of clauses, got a string")


def test_empty_group_is_rejected() -> None:
    assert error([[]]) == f"{WHERE}[0]: a filter group needs at least one clause"


def test_clause_must_be_a_mapping() -> None:
    assert error([["department EQUALS Sales"]]) == (
        f"{WHERE}[0][0]: a clause must be a mapping with attribute, operator and value, "
        "got a string")
    assert "got a list" in error([[["a", "EQUALS", "b"]]])


def test_errors_are_mapping_errors_with_usage_exit_code() -> None:
    with pytest.raises(MappingError) as info:
        parse_scope("x", WHERE)
    assert info.value.exit_code == 2

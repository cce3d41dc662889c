"""Tests for the Entra ID attribute-mapping expression language
(genesys_prov.mapping.expressions)."""

from __future__ import annotations

import copy
import pickle
import re
import string
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from genesys_prov.errors import EvaluationError, ExpressionError
from genesys_prov.mapping import expressions
from genesys_prov.mapping.expressions import IGNORE, Expression, function_names, parse


def run(text: str, **attributes: Any) -> Any:
    """Parse ``text`` and evaluate it against keyword attributes (missing ones are null)."""
    return parse(text).evaluate(attributes.get)


def nothing(name: str) -> Any:
    """A lookup for an object without attributes."""
    return None


def parse_error(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    return info.value


# --------------------------------------------------------------------------------------------
# The worked examples from the spec / Entra documentation
# --------------------------------------------------------------------------------------------

WORKED_EXAMPLES = [
    (
        'Append([userPrincipalName], ".test")',
        {"userPrincipalName": "John.Doe@contoso.com"},
        "John.Doe@contoso.com.test",
    ),
    (
        "Coalesce([mail],[userPrincipalName])",
        {"mail": None, "userPrincipalName": "John.Doe@contoso.com"},
        "John.Doe@contoso.com",
    ),
    ('ConvertToBase64("Hello world!")', {}, "SABlAGwAbABvACAAdwBvAHIAbABkACEA"),
    ('ConvertToUTF8Hex("Hello world!")', {}, "48656C6C6F20776F726C6421"),
    ('InStr("The quick brown fox","quick")', {}, 5),
    ('InStr("repEated","e",3,vbBinaryCompare)', {}, 7),
    ('Left("John Doe", 3)', {}, "Joh"),
    (
        "Append(Mid([givenName],1,3), Mid([surname],1,5))",
        {"givenName": "John", "surname": "Doe"},
        "JohDoe",
    ),
    ("NormalizeDiacritics([givenName])", {"givenName": "Zoë"}, "Zoe"),
    ("PCase([givenName])", {"givenName": "PABLO GONSALVES (SECOND)"}, "Pablo Gonsalves (Second)"),
    ('PCase([surname]," \'-")', {"surname": "PINTO-DE'SILVA"}, "Pinto-De'Silva"),
    (
        'Replace([userPrincipalName], , "(?<Suffix>@(.)*)", "Suffix", "", , )',
        {"userPrincipalName": "jsmith@contoso.com"},
        "jsmith",
    ),
    # The docs print "19998887777"; the regex [()\s-]+ plainly keeps the "+", so do we.
    ('Replace([mobile], , "[()\\\\s-]+", , "", , )', {"mobile": "+1 (999) 888-7777"},
     "+19998887777"),
    (
        'Replace([mail], "@contoso.com", , ,"", ,)',
        {"mail": "john.doe@contoso.com"},
        "john.doe",
    ),
    (
        'Switch([state], "Australia/Sydney", "NSW","Australia/Sydney","QLD",'
        '"Australia/Brisbane","SA","Australia/Adelaide")',
        {"state": "QLD"},
        "Australia/Brisbane",
    ),
    (
        'ToLower(Join("@", NormalizeDiacritics(StripSpaces(Join(".", [givenName], [surname]))),'
        ' "contoso.com"))',
        {"givenName": "John", "surname": "Smith"},
        "john.smith@contoso.com",
    ),
    ('Word("The quick brown fox",3," ")', {}, "brown"),
    ('Word("This,string!has&many separators",3,",!&#")', {}, "has"),
    ('Join(", ", "", [surname], [givenName])', {"surname": "Doe", "givenName": "John"},
     "Doe, John"),
    (
        'FormatDateTime([extensionAttribute1], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")',
        {"extensionAttribute1": "20150123105347.1Z"},
        "2015-01-23",
    ),
    ("BitAnd(&HF, &HF7)", {}, 7),
]


@pytest.mark.parametrize(("text", "attributes", "expected"), WORKED_EXAMPLES)
def test_worked_examples(text: str, attributes: dict[str, Any], expected: Any) -> None:
    assert parse(text).evaluate(attributes.get) == expected


def test_mobile_example_doc_slip_keeps_the_plus() -> None:
    """Decision: the documented output drops the "+", but the pattern cannot remove it."""
    result = run('Replace([mobile], , "[()\\\\s-]+", , "", , )', mobile="+1 (999) 888-7777")
    assert result == "+19998887777"
    # Removing the "+" needs it in the class.
    assert run('Replace([mobile], , "[+()\\\\s-]+", , "", , )', mobile="+1 (999) 888-7777") == (
        "19998887777"
    )


DEFAULT_USER_MAPPING = "Not([IsSoftDeleted])"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(False, True), (True, False), ("False", True), ("true", False), (None, None)],
)
def test_default_active_mapping(value: Any, expected: bool | None) -> None:
    assert run(DEFAULT_USER_MAPPING, IsSoftDeleted=value) is expected


# --------------------------------------------------------------------------------------------
# Syntax
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "extension_abc123_costCenter",
        "onPremisesExtensionAttributes.extensionAttribute1",
        "my-attr",
        "a1",
        "_x",
    ],
)
def test_attribute_names(name: str) -> None:
    expression = parse(f"[{name}]")
    assert expression.attributes() == frozenset({name})
    assert expression.evaluate({name: "v"}.get) == "v"


def test_bare_attribute_passes_any_value_through() -> None:
    expression = parse("[proxyAddresses]")
    assert expression.evaluate({"proxyAddresses": ["a", "b"]}.get) == ["a", "b"]
    assert expression.evaluate(nothing) is None
    assert expression.evaluate({"proxyAddresses": True}.get) is True


def test_whitespace_and_newlines_between_tokens() -> None:
    text = 'Append(\n    [givenName] ,\n\t".x"\n)\n'
    assert run(text, givenName="a") == "a.x"


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        (r'"Company name: \"Contoso\""', 'Company name: "Contoso"'),
        (r'"a\\b"', "a\\b"),
        (r'"\d+"', "\\d+"),  # a backslash before any other character is kept
        (r'"[()\\s-]+"', "[()\\s-]+"),  # the documented regex: \\ is one backslash
        (r'"\\\""', '\\"'),
        ('""', ""),
        ('"line1\nline2"', "line1\nline2"),
        ('"Zoë ünïcode"', "Zoë ünïcode"),
    ],
)
def test_string_escapes(literal: str, expected: str) -> None:
    assert run(f"CStr({literal})") == expected


def test_both_backslash_spellings_give_the_same_regex() -> None:
    one = run(r'Replace([x], , "\d", , "#", , )', x="a1b22")
    two = run(r'Replace([x], , "\\d", , "#", , )', x="a1b22")
    assert one == two == "a#b##"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BitAnd(&HF, 255)", 15),
        ("BitAnd(&hff, &H0F)", 15),
        ("BitAnd(&HFFFF, &HF0F0)", 0xF0F0),
        ("CStr(&H10)", "16"),
        ("CStr(-5)", "-5"),
        ("CStr(007)", "7"),
    ],
)
def test_numbers(text: str, expected: Any) -> None:
    assert run(text) == expected


def test_literal_types() -> None:
    assert run('"text"') == "text"
    assert run("42") == 42
    assert run("&HF7") == 247


def test_empty_arguments_are_null() -> None:
    assert run("Coalesce(, , \"d\")") == "d"
    assert run('Coalesce([a], )') is None
    assert run('Join(",", , "a", , "b")') == "a,b"


def test_zero_arguments() -> None:
    assert isinstance(run("Guid( )"), str)


def test_function_names_are_case_sensitive() -> None:
    error = parse_error("tolower([a])")
    assert error.reason == "unknown function 'tolower' (did you mean ToLower?)"


def test_vb_constants() -> None:
    assert run('InStr("repEated","e",3,vbTextCompare)') == 4
    assert run('InStr("repEated","e",3,vbBinaryCompare)') == 7
    assert run('InStr("repEated","e",3,"vbTextCompare")') == 4
    error = parse_error("Append(vbTextCompare, [a])")
    assert error.reason == "vbTextCompare is only allowed as the compareType argument of InStr"
    assert error.position == 7


def test_max_length() -> None:
    text = '"' + "a" * (expressions.MAX_LENGTH - 2) + '"'
    assert len(run(text)) == expressions.MAX_LENGTH - 2
    error = parse_error(text + " ")
    assert "10,001 characters" in str(error)
    assert "maximum is 10,000" in str(error)


# --------------------------------------------------------------------------------------------
# Syntax errors: message, line, column, caret
# --------------------------------------------------------------------------------------------


def test_error_renders_line_column_and_caret() -> None:
    error = parse_error('Append([a], Foo("x"))')
    assert str(error) == (
        "unknown function 'Foo' at line 1, column 13\n"
        '  Append([a], Foo("x"))\n'
        "              ^"
    )
    assert error.position == 12
    assert error.expression == 'Append([a], Foo("x"))'


def test_error_on_a_later_line() -> None:
    text = 'Append(\n  [a],\n  Mid([b], 1))'
    error = parse_error(text)
    assert str(error) == (
        "Mid expects 3 arguments, got 2 at line 3, column 3\n"
        "    Mid([b], 1))\n"
        "    ^"
    )


SYNTAX_ERRORS = [
    # (text, reason, column)
    ('Apend([a], "x")', "unknown function 'Apend' (did you mean Append?)", 1),
    ('Append([a], Frobnicate("x"))', "unknown function 'Frobnicate'", 13),
    ('Append([a], "x", "y")', "Append expects 2 arguments, got 3", 1),
    ("Not([a], [b])", "Not expects 1 argument, got 2", 1),
    ("Now(1)", "Now expects 0 arguments, got 1", 1),
    ("InStr([a])", "InStr expects 2 to 4 arguments, got 1", 1),
    ("Join()", "Join expects at least 2 arguments, got 0", 1),
    ('Replace([a], "x", , , "")', "Replace expects 7 arguments, got 5", 1),
    ('Switch([a], "d", "k")', "Switch expects at least 4 arguments, got 3", 1),
    (
        'Switch([a], "d", "k", "v", "k2")',
        "Switch expects source, defaultValue and key/value pairs (an even number of "
        "arguments), got 5",
        1,
    ),
    ('Append([a], "x"', "unbalanced parenthesis: this '(' is never closed", 7),
    ('Append([a], Left("x", 1)', "unbalanced parenthesis: this '(' is never closed", 7),
    ('Append([a], "x"))', "unbalanced parenthesis: unexpected ')'", 17),
    (")", "unbalanced parenthesis: unexpected ')'", 1),
    ('Append([a], "x)', "unterminated string constant", 13),
    ('Append([a], "x\\")', "unterminated string constant", 13),
    ('Not([a]) [b]', "unexpected attribute [b] after the end of the expression", 10),
    ('Not([a]) Not([b])', "unexpected 'Not' after the end of the expression", 10),
    ('Append([a] "x")', "expected ',' or ')' but found a string constant", 12),
    ("Append([a], , ,", "unbalanced parenthesis: this '(' is never closed", 7),
    ("Append(,", "unbalanced parenthesis: this '(' is never closed", 7),
    ("   ", "the expression is empty", 1),
    ('Replace([a], , "(", , "", , )', "invalid regular expression in Replace: missing ), "
     "unterminated subpattern", 16),
    ('Replace([a], , "[a-", , "", , )', "invalid regular expression in Replace: unterminated "
     "character set", 16),
    (
        'Replace([a], , "(?<x>a)", "y", "", , )',
        "the regular expression has no group named 'y'",
        27,
    ),
    ('Replace([a], , , , "", , )', "Replace needs an oldValue or a regexPattern", 1),
    (
        'Replace([a], "x", "y", , "", , )',
        "Replace takes either oldValue or regexPattern, not both",
        19,
    ),
    ('Replace([a], "x", , , , , )', "Replace with oldValue needs a replacementValue or a "
     "template", 1),
    ('Replace([a], , "x", , , , )', "Replace with regexPattern needs a replacementValue or a "
     "replacementAttributeName", 1),
    ('Append([a b], "x")', "invalid character ' ' in attribute name (letters, digits, '_', "
     "'.' and '-' are allowed)", 10),
    ('Append([a, "x")', "unterminated attribute name: missing ']'", 8),
    ('Append([], "x")', "empty attribute name", 8),
    ("Append('x', [a])", "unexpected character \"'\" (string constants use double quotes)", 8),
    ('Append(“x”, [a])', "unexpected character '“' (use straight double quotes (\"))", 8),
    ('Append([a], "x") + "y"', "unexpected character '+'", 18),
    ("BitAnd(&HZ, 1)", "invalid hex number (expected &H followed by hex digits)", 8),
    ("Left([a], True)", "unknown name 'True' (string constants need double quotes)", 11),
    ('InStr([a], "b", 1, vbTextCompar)', "unknown name 'vbTextCompar' (did you mean "
     "vbTextCompare?)", 20),
    ("Not", "expected '(' after Not", 4),
    ("Append[a]", "expected '(' after Append", 7),
    ('Append([a]="x", "y")', "unexpected '=': comparisons are only allowed as the condition "
     "of IIF or the argument of CBool", 11),
    ('[a]="x"', "unexpected '=': comparisons are only allowed as the condition of IIF or the "
     "argument of CBool", 4),
    ('IIF([a]=, "y", "n")', "expected a value after '=' but found ','", 9),
    ('IIF([a]="x"="y", "y", "n")', "unexpected '=': only one comparison is allowed here", 12),
    ('IIF([a]!="x", "y", "n")', "unexpected '!=' (use <> for not equal)", 8),
    ('Join(",", SelectUniqueValue([a]))', "SelectUniqueValue must be the outermost function of "
     "the expression", 11),
    ('DateAdd("q", 1, [d])', "unknown DateAdd interval 'q'; expected one of yyyy, m, d, ww, "
     "h, n, s", 9),
    ('DateDiff("days", [a], [b])', "unknown DateDiff interval 'days'; expected one of yyyy, m, "
     "d, ww, h, n, s", 10),
    ('FormatDateTime([a], , "yyyy\'", "d")', "invalid date-time format: unterminated quote at "
     "position 5 of the format", 23),
    ('FormatDateTime([a], , "yyyy", "q")', "invalid date-time format: 'q' is not a standard "
     "date-time format", 31),
    ('FormatDateTime([a], "Sideways", "yyyy", "d")', "unknown DateTimeStyles value "
     "'Sideways'; expected one of AdjustToUniversal, AllowInnerWhite, AllowLeadingWhite, "
     "AllowTrailingWhite, AllowWhiteSpaces, AssumeLocal, AssumeUniversal, "
     "NoCurrentDateDefault, None, RoundtripKind", 21),
    ("RandomString(300, 1, 1, 1, 1)", "RandomString length must be 1 to 256, got 300", 14),
]


@pytest.mark.parametrize(("text", "reason", "column"), SYNTAX_ERRORS)
def test_syntax_errors(text: str, reason: str, column: int) -> None:
    error = parse_error(text)
    assert error.reason == reason
    assert f"at line 1, column {column}\n" in str(error)
    caret_line = str(error).splitlines()[-1]
    assert caret_line == "  " + " " * (column - 1) + "^"


def test_empty_expression() -> None:
    assert str(parse_error("")) == "the expression is empty"


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    text = "Not(" * 150 + "[a]" + ")" * 150
    error = parse_error(text)
    assert error.reason == "functions are nested more than 100 deep"


def test_expression_error_is_a_mapping_error_with_usage_exit_code() -> None:
    error = parse_error("Nope()")
    assert error.exit_code == 2


# --------------------------------------------------------------------------------------------
# Public interface details
# --------------------------------------------------------------------------------------------


SPEC_FUNCTIONS = [
    "Append", "AppRoleAssignmentsComplex", "BitAnd", "CBool", "CDate", "CStr", "Coalesce",
    "ConvertToBase64", "ConvertToUTF8Hex", "Count", "DateAdd", "DateDiff", "DateFromNum",
    "DefaultDomain", "FormatDateTime", "Guid",
    "IIF", "IgnoreFlowIfNullOrEmpty", "InStr", "IsNull", "IsNullOrEmpty", "IsPresent",
    "IsString", "Item", "Join", "Left", "Len", "Mid", "NormalizeDiacritics", "Not", "Now",
    "NumFromDate", "PCase", "RandomString", "Redact", "RemoveDuplicates", "Replace",
    "SelectUniqueValue", "SingleAppRoleAssignment", "Split", "StripSpaces", "Switch",
    "ToLower", "ToUpper", "Word",
]


def test_function_names_cover_the_spec_table_and_are_sorted() -> None:
    names = function_names()
    assert names == sorted(names)
    assert names == sorted(SPEC_FUNCTIONS)


def test_text_and_repr() -> None:
    text = 'Append([a], "x")'
    expression = parse(text)
    assert expression.text == text
    assert repr(expression) == "Expression('Append([a], \"x\")')"
    assert isinstance(expression, Expression)


def test_attributes_lists_every_reference_as_written() -> None:
    expression = parse(
        'IIF([country]="USA", Coalesce([mail], [userPrincipalName]), '
        'Replace([x], , "(?<n>a)", "n", , [Other.Attr-1], ))'
    )
    assert expression.attributes() == frozenset(
        {"country", "mail", "userPrincipalName", "x", "Other.Attr-1"}
    )
    assert parse('Guid()').attributes() == frozenset()
    assert parse("Append([Mail], [mail])").attributes() == frozenset({"Mail", "mail"})


def test_redacted_flag() -> None:
    assert parse("Redact([password])").redacted is True
    assert parse('Append("x", Redact([password]))').redacted is True
    assert parse("Append([a], [b])").redacted is False
    assert run("Redact([password])", password="s3cret") == "s3cret"


def test_redacted_expression_hides_values_in_errors() -> None:
    expression = parse("Not(Redact([secret]))")
    with pytest.raises(EvaluationError) as info:
        expression.evaluate({"secret": "hunter2"}.get)
    assert "hunter2" not in str(info.value)
    assert "Redact" in str(info.value)
    assert info.value.__cause__ is None
    plain = parse("Not([secret])")
    with pytest.raises(EvaluationError, match="hunter2"):
        plain.evaluate({"secret": "hunter2"}.get)


def test_ignore_sentinel() -> None:
    expression = parse("IgnoreFlowIfNullOrEmpty([department])")
    assert expression.evaluate(nothing) is IGNORE
    assert expression.evaluate({"department": ""}.get) is IGNORE
    assert expression.evaluate({"department": []}.get) is IGNORE
    assert expression.evaluate({"department": "Sales"}.get) == "Sales"
    assert expression.evaluate({"department": False}.get) is False
    assert expression.evaluate({"department": 0}.get) == 0
    assert repr(IGNORE) == "IGNORE"
    assert copy.copy(IGNORE) is IGNORE
    assert copy.deepcopy(IGNORE) is IGNORE
    assert pickle.loads(pickle.dumps(IGNORE)) is IGNORE
    assert type(IGNORE)() is IGNORE


def test_ignore_inside_another_function_is_a_clear_error() -> None:
    with pytest.raises(EvaluationError, match="must enclose the whole expression"):
        run("ToLower(IgnoreFlowIfNullOrEmpty([a]))")
    assert run('IIF([x]="y", IgnoreFlowIfNullOrEmpty([a]), "n")', x="y") is IGNORE


def test_ignore_flows_through_nesting() -> None:
    assert run('IgnoreFlowIfNullOrEmpty(Join(",", [a], [b]))') is IGNORE
    assert run('IgnoreFlowIfNullOrEmpty(ToLower([a]))', a="X") == "x"


def test_expression_equality_hash_and_pickle() -> None:
    one, two = parse("ToLower([a])"), parse("ToLower([a])")
    assert one == two
    assert hash(one) == hash(two)
    assert one != parse("ToUpper([a])")
    clone = pickle.loads(pickle.dumps(one))
    assert clone.evaluate({"a": "X"}.get) == "x"


def test_lookup_is_called_with_names_as_written() -> None:
    seen: list[str] = []

    def lookup(name: str) -> Any:
        seen.append(name)
        return name

    parse("Append([givenName], [extension_abc_costCenter])").evaluate(lookup)
    assert seen == ["givenName", "extension_abc_costCenter"]


def test_no_regex_compilation_per_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    expression = parse('Replace([mobile], , "[()\\\\s-]+", , "", , )')
    dynamic = parse('Replace([mobile], , [pattern], , "", , )')
    dynamic.evaluate({"mobile": "1 2", "pattern": " "}.get)  # warms the cache

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("re.compile called during evaluation")

    monkeypatch.setattr(re, "compile", forbidden)
    for _ in range(3):
        assert expression.evaluate({"mobile": "(1) 2-3"}.get) == "123"
        assert dynamic.evaluate({"mobile": "1 2", "pattern": " "}.get) == "12"


# --------------------------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------------------------


class TestAppend:
    def test_concatenates(self) -> None:
        assert run('Append([a], "x")', a="b") == "bx"

    def test_null_side_is_empty_string(self) -> None:
        assert run('Append([a], "x")') == "x"
        assert run('Append("x", [a])') == "x"

    def test_both_null_is_null(self) -> None:
        assert run("Append([a], [b])") is None

    def test_bool_and_int_as_text(self) -> None:
        assert run('Append("x", [a])', a=True) == "xTrue"
        assert run('Append("x", 5)') == "x5"

    def test_list_is_an_error(self) -> None:
        with pytest.raises(EvaluationError, match=r"Append: source is multi-valued \(2 values\)"):
            run('Append([a], "x")', a=["1", "2"])


class TestCoalesce:
    def test_first_non_null(self) -> None:
        assert run("Coalesce([a], [b], [c])", b="B", c="C") == "B"

    def test_skips_empty_strings_and_lists(self) -> None:
        assert run("Coalesce([a], [b], [c])", a="", b=[], c="C") == "C"

    def test_last_argument_when_nothing_has_a_value(self) -> None:
        assert run('Coalesce([a], [b], "default")') == "default"
        assert run("Coalesce([a], [b])", b="") == ""
        assert run("Coalesce([a], [b])") is None

    def test_single_argument(self) -> None:
        assert run("Coalesce([a])", a="x") == "x"

    def test_false_and_zero_are_values(self) -> None:
        assert run('Coalesce([a], "d")', a=False) is False
        assert run('Coalesce([a], "d")', a=0) == 0

    def test_lazy(self) -> None:
        calls: list[str] = []

        def lookup(name: str) -> Any:
            calls.append(name)
            return "v"

        parse("Coalesce([a], [b])").evaluate(lookup)
        assert calls == ["a"]


class TestJoin:
    def test_expands_lists_and_skips_empty(self) -> None:
        assert run('Join("; ", [a], [b], [c], "z")', a=["x", None, "", "y"], b=None, c="") == (
            "x; y; z"
        )

    def test_nothing_left_is_empty_string(self) -> None:
        assert run('Join(",", [a], [b])') == ""

    def test_null_separator(self) -> None:
        assert run("Join(, [a], [b])", a="x", b="y") == "xy"

    def test_values_as_text(self) -> None:
        assert run('Join("-", [a], [b])', a=True, b=[1, 2]) == "True-1-2"

    def test_nested_list_is_an_error(self) -> None:
        with pytest.raises(EvaluationError, match="Join"):
            run('Join(",", [a])', a=[["x"]])


class TestCase:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ('ToLower("ÀBC Def")', "àbc def"),
            ('ToUpper("àbc Def")', "ÀBC DEF"),
            ('ToLower("Istanbul", "tr-TR")', "ıstanbul"),
            ('ToUpper("istanbul", "tr-TR")', "İSTANBUL"),
            ('ToLower("Istanbul", "en-US")', "istanbul"),
            ('ToUpper("istanbul", )', "ISTANBUL"),
            ("ToUpper(IsNull([a]))", "TRUE"),
        ],
    )
    def test_conversion(self, text: str, expected: str) -> None:
        assert run(text) == expected

    def test_null(self) -> None:
        assert run("ToLower([a])") is None
        assert run("ToUpper([a])") is None

    def test_bad_culture(self) -> None:
        with pytest.raises(EvaluationError, match="not a culture name"):
            run('ToLower("x", "!!")')


class TestSwitch:
    EXPR = (
        'Switch([state], "Australia/Sydney", "NSW","Australia/Sydney","QLD",'
        '"Australia/Brisbane","SA","Australia/Adelaide")'
    )

    @pytest.mark.parametrize(
        ("state", "expected"),
        [
            ("NSW", "Australia/Sydney"),
            ("QLD", "Australia/Brisbane"),
            ("SA", "Australia/Adelaide"),
            ("qld", "Australia/Sydney"),  # case-sensitive: no match → default
            ("WA", "Australia/Sydney"),
            (None, "Australia/Sydney"),
            ("", "Australia/Sydney"),
        ],
    )
    def test_lookup(self, state: str | None, expected: str) -> None:
        assert run(self.EXPR, state=state) == expected

    def test_matching_value_is_never_replaced_by_null(self) -> None:
        assert run('Switch([a], [missing], "x", "X")', a="x") == "X"

    def test_first_matching_key_wins(self) -> None:
        assert run('Switch([a], "d", "k", "first", "k", "second")', a="k") == "first"

    def test_bool_and_int_sources_compare_as_text(self) -> None:
        assert run('Switch([a], "d", "True", "yes", "False", "no")', a=True) == "yes"
        assert run('Switch([a], "d", 1, "one", 2, "two")', a=2) == "two"
        assert run('Switch([a], "d", "1", "one")', a=1) == "one"

    def test_dynamic_keys(self) -> None:
        text = 'Switch([a], "d", [k1], "one", [k2], "two")'
        assert run(text, a="y", k1="x", k2="y") == "two"
        assert run(text, a="y", k1=None, k2=None) == "d"

    def test_lazy_values(self) -> None:
        calls: list[str] = []

        def lookup(name: str) -> Any:
            calls.append(name)
            return "k" if name == "a" else name

        assert parse('Switch([a], [d], "k", [v1], "z", [v2])').evaluate(lookup) == "v1"
        assert calls == ["a", "v1"]

    def test_multi_valued_source_is_an_error(self) -> None:
        with pytest.raises(EvaluationError, match="Switch: source is multi-valued"):
            run(self.EXPR, state=["NSW"])


class TestIIF:
    EXPR = 'IIF([country]="USA", [country], [department])'

    def test_true_and_false_branches(self) -> None:
        assert run(self.EXPR, country="USA", department="Sales") == "USA"
        assert run(self.EXPR, country="FR", department="Sales") == "Sales"

    def test_null_condition_attribute_takes_the_else_branch(self) -> None:
        """Entra fails the object here; we treat null as "not equal"."""
        assert run(self.EXPR, department="Sales") == "Sales"
        assert run('IIF([country]<>"USA", "other", "usa")') == "other"
        assert run('IIF([n]>1, "big", "small")') == "small"
        assert run('IIF([n]<1, "small", "big")') == "big"
        assert run('IIF([a]=[b], "same", "different")') == "different"

    @pytest.mark.parametrize(
        ("condition", "values", "expected"),
        [
            ('[a]="x"', {"a": "x"}, True),
            ('[a]="x"', {"a": "X"}, False),
            ('[a]<>"x"', {"a": "y"}, True),
            ("[a]>9", {"a": "10"}, True),  # numeric when both sides are whole numbers
            ('[a]>"9"', {"a": "10"}, True),
            ('[a]>"b"', {"a": "a"}, False),  # ordinal text order otherwise
            ('[a]<"b"', {"a": "a"}, True),
            ("[a]>=5", {"a": 5}, True),
            ("[a]<=4", {"a": 5}, False),
            ("[a]=5", {"a": "5"}, True),
            ("[a]=&H10", {"a": 16}, True),
            ('[a]="True"', {"a": True}, True),
            ('[a]="true"', {"a": True}, True),
            ('[a]="False"', {"a": True}, False),
            ('[a]<>"False"', {"a": True}, True),
            ("[a]=[b]", {"a": "x", "b": "x"}, True),
            ('Left([a], 2)="ab"', {"a": "abc"}, True),
            ('"ab"=Left([a], 2)', {"a": "abc"}, True),
        ],
    )
    def test_comparisons(self, condition: str, values: dict[str, Any], expected: bool) -> None:
        assert run(f'IIF({condition}, "yes", "no")', **values) == ("yes" if expected else "no")

    def test_boolean_conditions(self) -> None:
        assert run('IIF([enabled], "on", "off")', enabled=True) == "on"
        assert run('IIF([enabled], "on", "off")', enabled="FALSE") == "off"
        assert run('IIF(IsPresent([mail]), [mail], "none")', mail="m") == "m"
        assert run('IIF(IsPresent([mail]), [mail], "none")') == "none"

    def test_non_boolean_condition_is_an_error(self) -> None:
        with pytest.raises(EvaluationError, match="IIF: condition must be True or False"):
            run('IIF([a], "y", "n")', a="maybe")

    def test_whitespace_around_operators(self) -> None:
        assert run('IIF( [a] <> "x" , "y", "n")', a="z") == "y"

    def test_only_the_chosen_branch_is_evaluated(self) -> None:
        assert run('IIF([a]="x", "ok", Not("boom"))', a="x") == "ok"

    def test_multi_valued_operand_is_an_error(self) -> None:
        with pytest.raises(EvaluationError, match="cannot compare a multi-valued attribute"):
            run('IIF([a]="x", "y", "n")', a=["x"])


class TestNot:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [(True, False), (False, True), ("True", False), ("false", True), (" TRUE ", False),
         (None, None)],
    )
    def test_flip(self, value: Any, expected: bool | None) -> None:
        assert run("Not([a])", a=value) is expected

    @pytest.mark.parametrize("value", ["yes", 1, 0, ["True"]])
    def test_non_boolean_is_an_error(self, value: Any) -> None:
        with pytest.raises(EvaluationError, match="Not"):
            run("Not([a])", a=value)

    def test_nested(self) -> None:
        assert run("Not(Not([a]))", a="True") is True
        assert run("Not(IsNull([a]))") is False


class TestReplace:
    def test_old_value(self) -> None:
        assert run('Replace([a], "o", , , "0", , )', a="foo boo") == "f00 b00"

    def test_old_value_is_not_a_regex(self) -> None:
        assert run('Replace([a], ".", , , "!", , )', a="a.b") == "a!b"

    def test_old_value_case_sensitive(self) -> None:
        assert run('Replace([a], "O", , , "0", , )', a="foo") == "foo"

    def test_old_value_with_template(self) -> None:
        assert run('Replace([a], "%name%", , , , , "Hi %name%!")', a="Ann") == "Hi Ann!"

    def test_regex_with_dollar_groups(self) -> None:
        text = 'Replace([a], , "(\\\\w+)@(?<domain>.+)", , "${domain}/$1 $$ $& $9", , )'
        assert run(text, a="jo@x.com") == "x.com/jo $ jo@x.com $9"

    def test_backslashes_in_replacement_are_literal(self) -> None:
        assert run('Replace([a], , "-", , "\\\\", , )', a="a-b") == "a\\b"
        assert run('Replace([a], , "-", , "\\n", , )', a="a-b") == "a\\nb"
        assert run('Replace([a], , "-", , [r], , )', a="a-b", r="\\1") == "a\\1b"

    def test_dynamic_replacement_value(self) -> None:
        assert run('Replace([a], , "(x)", , [r], , )', a="axb", r="[$1]") == "a[x]b"
        assert run('Replace([a], , "x", , [r], , )', a="axb") == "ab"

    def test_regex_numbered_and_named_group_names(self) -> None:
        assert run('Replace([a], , "(a)(b)", "2", "X", , )', a="abab") == "aXaX"

    def test_group_that_did_not_take_part_is_left_alone(self) -> None:
        assert run('Replace([a], , "x(?<g>y)?", "g", "Z", , )', a="xy x") == "xZ x"

    def test_replacement_attribute(self) -> None:
        text = 'Replace([mail], , "(?<user>[^@]+)@", "user", , [userPrincipalName], )'
        assert run(text, mail="m@x.com", userPrincipalName="u@y.com") == "m@x.com"
        assert run(text, userPrincipalName="u@y.com") == "u"
        assert run(text, mail="", userPrincipalName="u@y.com") == "u"
        assert run(text, userPrincipalName="no-at-sign") is None
        assert run(text) is None

    def test_net_regex_syntax(self) -> None:
        assert run('Replace([a], , "(?\'w\'o)\\\\k<w>", , "0", , )', a="foo") == "f0"
        assert run('Replace([a], , "o\\\\z", , "!", , )', a="foo") == "fo!"
        assert run('Replace([a], , "(?<=f)o", , "0", , )', a="foo") == "f0o"
        assert run('Replace([a], , "[(?<x>]", , "_", , )', a="(?<x>") == "_____"

    def test_null_source(self) -> None:
        assert run('Replace([a], "x", , , "y", , )') is None
        assert run('Replace([a], , "x", , "y", , )') is None

    def test_dynamic_pattern(self) -> None:
        assert run('Replace([a], , [p], , "-", , )', a="a1b2", p="\\d") == "a-b-"
        with pytest.raises(EvaluationError, match="invalid regular expression"):
            run('Replace([a], , [p], , "-", , )', a="a", p="(")
        with pytest.raises(EvaluationError, match="regexPattern is null"):
            run('Replace([a], , [p], , "-", , )', a="a")

    def test_dynamic_group_name_missing(self) -> None:
        with pytest.raises(EvaluationError, match="no group named 'nope'"):
            run('Replace([a], , "(?<x>a)", [g], "-", , )', a="a", g="nope")

    def test_regex_compiled_at_parse_time(self) -> None:
        with pytest.raises(ExpressionError) as info:
            parse('Replace([a], , "(?<x>a", , "", , )')
        assert "invalid regular expression" in str(info.value)


class TestPCase:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ('PCase("hello wORLD")', "Hello World"),
            ('PCase("o\'NEIL-SMITH")', "O'neil-Smith"),
            ('PCase("1ST place")', "1st Place"),
            ('PCase("émile zola")', "Émile Zola"),
            ('PCase("a_b c", "_")', "A_B c"),
            ('PCase("a b", "")', "A b"),
        ],
    )
    def test_cases(self, text: str, expected: str) -> None:
        assert run(text) == expected

    def test_null(self) -> None:
        assert run("PCase([a])") is None


class TestStringFunctions:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ('Left("John Doe", 0)', ""),
            ('Left("John Doe", -1)', "John Doe"),
            ('Left("John", 10)', "John"),
            ("Left([missing], 3)", ""),
            ('Mid("John Doe", 6, 10)', "Doe"),
            ('Mid("John", 9, 2)', ""),
            ('Mid("John", 2, 0)', ""),
            ("Mid([missing], 1, 2)", None),
            ('StripSpaces(" a b  c ")', "abc"),
            ('StripSpaces("a\tb")', "a\tb"),
            ("StripSpaces([missing])", None),
            ('Word("The quick brown fox", 4, " ")', "fox"),
            ('Word("The quick brown fox", 5, " ")', ""),
            ('Word("The quick brown fox", 0, " ")', ""),
            ('Word("a,,b", 2, ",")', "b"),
            ('Word("a b", 1, "")', "a b"),
            ("Word([missing], 1, \" \")", None),
            ('InStr("abc", "x")', 0),
            ('InStr("abc", "")', 1),
            ('InStr("abc", "c", 4)', 0),
            ('InStr("abc", "c", 9)', 0),
            ('InStr("aBc", "b", , vbTextCompare)', 2),
            ('InStr("aBc", "b", , 1)', 2),
            ('InStr("aBc", "b", , vbBinaryCompare)', 0),
            ("InStr([missing], \"b\")", None),
            ('ConvertToUTF8Hex("é")', "C3A9"),
            ("ConvertToUTF8Hex([missing])", None),
            ("ConvertToBase64([missing])", None),
            ('ConvertToBase64("")', ""),
        ],
    )
    def test_cases(self, text: str, expected: Any) -> None:
        assert run(text) == expected

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ('Mid("John", 0, 2)', "Mid: start is 1-based, got 0"),
            ('Mid("John", 1, -2)', "Mid: length must not be negative, got -2"),
            ('Left("John", "x")', "Left: numChars must be a whole number, got 'x'"),
            ('Left("John", [n])', "Left: numChars is null"),
            ('InStr("abc", "b", 0)', "InStr: start must be 1 or more, got 0"),
            ('InStr("abc", "b", 1, "sideways")', "InStr: compareType must be vbTextCompare or "
             "vbBinaryCompare, got 'sideways'"),
        ],
    )
    def test_errors(self, text: str, message: str) -> None:
        with pytest.raises(EvaluationError) as info:
            run(text)
        assert str(info.value) == message

    def test_numeric_strings_are_accepted_as_numbers(self) -> None:
        assert run("Left([a], [n])", a="abcdef", n="2") == "ab"


class TestNormalizeDiacritics:
    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            ("Zoë", "Zoe"),
            ("Ångström", "Angstrom"),
            ("Straße", "Strasse"),
            ("Æsir", "AEsir"),
            ("Søren Kierkegaard", "Soeren Kierkegaard"),
            ("Œuvre", "OEuvre"),
            ("Łódź", "Lodz"),
            ("Þór", "THor"),
            ("François-Noël", "Francois-Noel"),
            ("plain", "plain"),
            ("한국", "한국"),
        ],
    )
    def test_cases(self, source: str, expected: str) -> None:
        assert run("NormalizeDiacritics([a])", a=source) == expected

    def test_null(self) -> None:
        assert run("NormalizeDiacritics([a])") is None


class TestConversions:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [(1, True), (0, False), (-3, True), ("7", True), ("0", False), ("True", True),
         ("false", False), (True, True), (None, None)],
    )
    def test_cbool(self, value: Any, expected: bool | None) -> None:
        assert run("CBool([a])", a=value) is expected

    def test_cbool_comparison(self) -> None:
        assert run("CBool([a]=[b])", a="x", b="x") is True
        assert run("CBool([a]=[b])", a="x") is False

    def test_cbool_error(self) -> None:
        with pytest.raises(EvaluationError, match="CBool"):
            run("CBool([a])", a="yes")

    @pytest.mark.parametrize(
        ("value", "expected"), [(True, "True"), (False, "False"), (12, "12"), ("s", "s"),
                                (None, None)]
    )
    def test_cstr(self, value: Any, expected: str | None) -> None:
        assert run("CStr([a])", a=value) == expected

    def test_bitand(self) -> None:
        assert run("BitAnd([a], 4)", a="6") == 4
        assert run("BitAnd([a], 4)") is None
        with pytest.raises(EvaluationError, match="BitAnd: value1 must be a whole number"):
            run("BitAnd([a], 4)", a="six")
        assert run("BitAnd([a], 1)", a="&H3") == 1


class TestPredicates:
    @pytest.mark.parametrize(
        ("value", "is_null", "null_or_empty", "present", "is_string"),
        [
            (None, True, True, False, False),
            ("", False, True, False, True),
            ("x", False, False, True, True),
            ([], False, True, False, False),
            (["x"], False, False, True, False),
            (0, False, False, True, False),
            (False, False, False, True, False),
        ],
    )
    def test_predicates(
        self, value: Any, is_null: bool, null_or_empty: bool, present: bool, is_string: bool
    ) -> None:
        assert run("IsNull([a])", a=value) is is_null
        assert run("IsNullOrEmpty([a])", a=value) is null_or_empty
        assert run("IsPresent([a])", a=value) is present
        assert run("IsString([a])", a=value) is is_string


class TestMultiValued:
    def test_count(self) -> None:
        assert run("Count([a])", a=["x", "y", None]) == 2
        assert run("Count([a])", a=[]) == 0
        assert run("Count([a])") == 0
        assert run("Count([a])", a="x") == 1

    def test_item(self) -> None:
        assert run("Item([a], 1)", a=["x", "y"]) == "x"
        assert run("Item([a], 2)", a=["x", "y"]) == "y"
        assert run("Item([a], 3)", a=["x", "y"]) is None
        assert run("Item([a], 1)", a="solo") == "solo"
        assert run("Item([a], 1)") is None
        with pytest.raises(EvaluationError, match="Item: index is 1-based, got 0"):
            run("Item([a], 0)", a=["x"])

    def test_remove_duplicates(self) -> None:
        assert run("RemoveDuplicates([a])", a=["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
        assert run("RemoveDuplicates([a])", a=[1, "1", True, 1]) == [1, "1", True]
        assert run("RemoveDuplicates([a])") is None
        assert run("RemoveDuplicates([a])", a="x") == "x"

    def test_split(self) -> None:
        assert run('Split([a], ",")', a="a,b,,c") == ["a", "b", "", "c"]
        assert run('Split([a], ", ")', a="a, b") == ["a", "b"]
        assert run('Split([a], ",")', a="") == []
        assert run('Split([a], ",")') is None
        assert run("Split([a], )", a="a,b") == ["a,b"]

    def test_split_then_join_and_item(self) -> None:
        assert run('Join("|", Split([a], ","))', a="x,y") == "x|y"
        assert run('Item(Split([a], ","), 2)', a="x,y") == "y"
        assert run('Count(Split([a], ","))', a="x,y,z") == 3

    def test_single_app_role_assignment(self) -> None:
        expression = "SingleAppRoleAssignment([appRoleAssignments])"
        assert run(expression, appRoleAssignments=["Agent"]) == "Agent"
        assert run(expression, appRoleAssignments=["Agent", "Agent"]) == "Agent"
        assert run(expression, appRoleAssignments="Agent") == "Agent"
        assert run(expression, appRoleAssignments=[]) is None
        assert run(expression) is None
        with pytest.raises(EvaluationError, match="has 2 app roles, expected one"):
            run(expression, appRoleAssignments=["Agent", "Supervisor"])


class TestSelectUniqueValue:
    EXPR = (
        'SelectUniqueValue(Join("@", NormalizeDiacritics([givenName]), "contoso.com"), '
        'Join("@", Append(Left([givenName], 1), [surname]), "contoso.com"), '
        'Join("@", Append([givenName], [surname]), "contoso.com"))'
    )
    USER: ClassVar[dict[str, str]] = {"givenName": "Zoë", "surname": "Ray"}

    def test_first_free_candidate_wins(self) -> None:
        taken = {"Zoe@contoso.com"}
        result = parse(self.EXPR).evaluate(self.USER.get, is_taken=taken.__contains__)
        assert result == "ZRay@contoso.com"

    def test_without_is_taken_the_first_candidate(self) -> None:
        assert parse(self.EXPR).evaluate(self.USER.get) == "Zoe@contoso.com"

    def test_all_taken_is_an_error(self) -> None:
        with pytest.raises(EvaluationError, match="every candidate is already taken"):
            parse(self.EXPR).evaluate(self.USER.get, is_taken=lambda value: True)

    def test_candidates_are_generated_lazily_and_empty_ones_skipped(self) -> None:
        checked: list[Any] = []

        def is_taken(value: Any) -> bool:
            checked.append(value)
            return bool(value == "b")

        expression = parse("SelectUniqueValue([a], [b], [c], [d])")
        lookup = {"a": None, "b": "b", "c": "c", "d": "d"}.get
        assert expression.evaluate(lookup, is_taken=is_taken) == "c"
        assert checked == ["b", "c"]
        assert expression.evaluate(nothing, is_taken=is_taken) is None
        assert expression.evaluate({"b": "", "c": "c"}.get) == "c"


class TestDates:
    def test_cdate(self) -> None:
        assert run('CDate("2020-03-16-07:00")') == "3/16/2020 7:00:00 AM"
        assert run('CDate("2020-03-16T19:05:09Z")') == "3/16/2020 7:05:09 PM"
        assert run('CDate("2020-03-16T00:30:00+02:00")') == "3/15/2020 10:30:00 PM"
        assert run('CDate("2020-03-16")') == "3/16/2020 12:00:00 AM"
        assert run('CDate("20150123105347.1Z")') == "1/23/2015 10:53:47 AM"
        assert run('CDate("3/16/2020 7:00:00 PM")') == "3/16/2020 7:00:00 PM"
        assert run("CDate([d])") is None

    @pytest.mark.parametrize("value", ["yesterday", "2020-13-01", "2020-02-30T00:00:00Z"])
    def test_cdate_errors(self, value: str) -> None:
        with pytest.raises(EvaluationError, match="CDate"):
            run("CDate([d])", d=value)

    @pytest.mark.parametrize(
        ("interval", "amount", "expected"),
        [
            ("d", 7, "3/23/2012 7:00:00 AM"),
            ("d", -16, "2/29/2012 7:00:00 AM"),
            ("ww", 2, "3/30/2012 7:00:00 AM"),
            ("m", 11, "2/16/2013 7:00:00 AM"),
            ("yyyy", 1, "3/16/2013 7:00:00 AM"),
            ("h", 6, "3/16/2012 1:00:00 PM"),
            ("n", 90, "3/16/2012 8:30:00 AM"),
            ("s", -1, "3/16/2012 6:59:59 AM"),
        ],
    )
    def test_dateadd(self, interval: str, amount: int, expected: str) -> None:
        text = f'DateAdd("{interval}", {amount}, CDate("2012-03-16-07:00"))'
        assert run(text) == expected

    def test_dateadd_clamps_month_end(self) -> None:
        assert run('DateAdd("m", 1, "2021-01-31T00:00:00Z")') == "2/28/2021 12:00:00 AM"
        assert run('DateAdd("yyyy", 1, "2020-02-29T00:00:00Z")') == "2/28/2021 12:00:00 AM"

    def test_dateadd_null_and_errors(self) -> None:
        assert run('DateAdd("d", 1, [d])') is None
        with pytest.raises(EvaluationError, match="DateAdd: unknown interval 'q'"):
            run('DateAdd([i], 1, "2020-01-01")', i="q")
        with pytest.raises(EvaluationError, match="out of range"):
            run('DateAdd("yyyy", 9000, "2020-01-01")')

    @pytest.mark.parametrize(
        ("interval", "date1", "date2", "expected"),
        [
            ("d", "2020-01-01T00:00:00Z", "2020-01-11T12:00:00Z", 10),
            ("d", "2020-01-11T12:00:00Z", "2020-01-01T00:00:00Z", -10),
            ("h", "2020-01-01T00:00:00Z", "2020-01-01T05:59:59Z", 5),
            ("n", "2020-01-01T00:00:00Z", "2020-01-01T00:01:00Z", 1),
            ("s", "2020-01-01T00:00:00Z", "2020-01-01T00:01:00Z", 60),
            ("ww", "2020-01-01", "2020-01-15", 2),
            ("m", "2020-01-31", "2020-02-29", 1),
            ("m", "2020-01-15", "2020-03-14", 1),
            ("m", "2020-03-14", "2020-01-15", -1),
            ("yyyy", "2020-06-01", "2023-05-31", 2),
            ("yyyy", "2023-06-01", "2020-06-01", -3),
        ],
    )
    def test_datediff(self, interval: str, date1: str, date2: str, expected: int) -> None:
        assert run(f'DateDiff("{interval}", "{date1}", "{date2}")') == expected

    def test_datediff_null(self) -> None:
        assert run('DateDiff("d", [a], "2020-01-01")') is None

    def test_datediff_with_now_is_positive_for_future_dates(self) -> None:
        future = (datetime.now(UTC) + timedelta(days=3, hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert run('DateDiff("d", Now(), [hire])', hire=future) == 3

    def test_filetime_round_trip(self) -> None:
        assert run("DateFromNum(129699324000000000)") == "1/1/2012 11:00:00 PM"
        assert run('DateFromNum("116444736000000000")') == "1/1/1970 12:00:00 AM"
        assert run('NumFromDate("1970-01-01T00:00:00Z")') == 116444736000000000
        assert run("NumFromDate(DateFromNum(129699324000000000))") == 129699324000000000
        assert run("DateFromNum([a])") is None
        assert run("NumFromDate([a])") is None

    def test_numfromdate_documented_example(self) -> None:
        text = (
            'NumFromDate(Join("", FormatDateTime([employeeEndDate], , '
            '"yyyy-MM-ddTHH:mm:ss.fffZ", "yyyy-MM-dd"), "T23:59:59-08:00"))'
        )
        # 2022-08-31T23:59:59-08:00 = 2022-09-01T07:59:59Z = unix 1662019199
        expected = (1662019199 + 11644473600) * 10_000_000
        assert run(text, employeeEndDate="2022-08-31T10:00:00.000Z") == expected

    def test_datefromnum_errors(self) -> None:
        with pytest.raises(EvaluationError, match="beyond year 9999"):
            run("DateFromNum(9223372036854775807)")
        with pytest.raises(EvaluationError, match="negative"):
            run("DateFromNum(-1)")

    def test_now(self) -> None:
        value = run("Now()")
        assert re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2} [AP]M", value)
        parsed = datetime.strptime(value, "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=UTC)
        assert abs(parsed - datetime.now(UTC)) < timedelta(minutes=1)


class TestFormatDateTime:
    @pytest.mark.parametrize(
        ("source", "styles", "input_format", "output_format", "expected"),
        [
            ("20150123105347.1Z", "", "yyyyMMddHHmmss.fZ", "yyyy-MM-dd", "2015-01-23"),
            ("20150123105347.1Z", "", "yyyyMMddHHmmss.fZ", "M/d/yy h:mm tt", "1/23/15 10:53 AM"),
            ("2022-08-31T10:00:00.000Z", "", "yyyy-MM-ddTHH:mm:ss.fffZ", "yyyy-MM-dd",
             "2022-08-31"),
            ("2022-08-31", "", "yyyy-MM-dd", "dddd, d MMMM yyyy", "Wednesday, 31 August 2022"),
            ("31 Aug 2022", "", "dd MMM yyyy", "ddd dd/MM/yyyy", "Wed 31/08/2022"),
            ("31 AUGUST 22", "", "d MMMM yy", "yyyy-MM-dd", "2022-08-31"),
            ("1/2/99", "", "M/d/yy", "yyyy", "1999"),
            ("07:05 PM", "NoCurrentDateDefault", "hh:mm tt", "HH:mm", "19:05"),
            ("12:00 AM", "", "h:mm tt", "HH:mm", "00:00"),
            ("2022-08-31T23:00:00-08:00", "", "yyyy-MM-ddTHH:mm:sszzz", "yyyy-MM-dd HH:mm",
             "2022-09-01 07:00"),
            ("2022-08-31T23:00:00Z", "", "yyyy-MM-ddTHH:mm:ssK", "o",
             "2022-08-31T23:00:00.0000000Z"),
            ("2022-08-31 23:00", "", "yyyy-MM-dd HH:mm", "yyyy-MM-ddTHH:mm:ssK",
             "2022-08-31T23:00:00"),
            ("2022-08-31 23:00", "AssumeUniversal", "yyyy-MM-dd HH:mm", "yyyy-MM-ddTHH:mm:ssK",
             "2022-08-31T23:00:00Z"),
            ("2022-08-31 23:00:00.5", "", "yyyy-MM-dd HH:mm:ss.F", "HH:mm:ss.FFF", "23:00:00.5"),
            ("2022-08-31 23:00:00", "", "yyyy-MM-dd HH:mm:ss", "HH:mm:ss.FFF", "23:00:00"),
            ("2022-08-31 23:00:00", "", "yyyy-MM-dd HH:mm:ss", "HH:mm:ss.fff", "23:00:00.000"),
            ("2022-08-31", "", "yyyy-MM-dd", "'Day' d \\o\\f MMMM", "Day 31 of August"),
            ("2022-08-31", "", "yyyy-MM-dd", "%d", "31"),
            ("2022-08-31", "", "yyyy-MM-dd", "d", "8/31/2022"),
            ("2022-08-31", "", "yyyy-MM-dd", "u", "2022-08-31 00:00:00Z"),
            ("2022-08-31", "", "yyyy-MM-dd", "s", "2022-08-31T00:00:00"),
            ("  2022-08-31 ", "AllowWhiteSpaces", "yyyy-MM-dd", "yyyyMMdd", "20220831"),
            ("2022-08-31T10:00:00Z", "AdjustToUniversal, AssumeUniversal",
             "yyyy-MM-ddTHH:mm:ssZ", "HH 'h'", "10 h"),
            ("2022-08-31 10:00", "", "yyyy-MM-dd HH:mm", "zzz z", "+00:00 +0"),
        ],
    )
    def test_formats(
        self, source: str, styles: str, input_format: str, output_format: str, expected: str
    ) -> None:
        text = "FormatDateTime([s], [st], [inf], [outf])"
        values = {"s": source, "st": styles or None, "inf": input_format, "outf": output_format}
        assert parse(text).evaluate(values.get) == expected

    def test_three_argument_form(self) -> None:
        assert run('FormatDateTime([d], "yyyyMMdd", "yyyy-MM-dd")', d="20240229") == "2024-02-29"

    def test_null_source(self) -> None:
        assert run('FormatDateTime([d], , "yyyyMMdd", "yyyy-MM-dd")') is None

    def test_only_time_defaults_to_today(self) -> None:
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        assert run('FormatDateTime("10:00", , "HH:mm", "yyyy-MM-dd")') == today

    @pytest.mark.parametrize(
        ("source", "input_format", "message"),
        [
            ("2015-01-23", "yyyyMMdd", "does not match the format 'yyyyMMdd'"),
            ("20150230", "yyyyMMdd", "day is out of range for month"),
            ("x", "", "the format is empty"),
        ],
    )
    def test_errors(self, source: str, input_format: str, message: str) -> None:
        values = {"s": source, "f": input_format}
        with pytest.raises(EvaluationError) as info:
            parse('FormatDateTime([s], , [f], "yyyy")').evaluate(values.get)
        assert str(info.value).startswith("FormatDateTime: ")
        assert message in str(info.value)


class TestRandomAndGuid:
    def test_guid(self) -> None:
        first, second = run("Guid()"), run("Guid()")
        assert str(uuid.UUID(first)) == first
        assert first != second

    def test_random_string_shape(self) -> None:
        for _ in range(20):
            value = run("RandomString(12, 2, 1, 3, 4)")
            assert len(value) == 12
            assert sum(c in string.digits for c in value) >= 2
            assert sum(c in string.punctuation for c in value) >= 1
            assert sum(c in string.ascii_uppercase for c in value) >= 3
            assert sum(c in string.ascii_lowercase for c in value) >= 4

    def test_random_string_avoids_characters(self) -> None:
        avoid = "0O1lI" + string.punctuation
        for _ in range(20):
            value = run("RandomString(20, 2, 0, 2, 2, [avoid])", avoid=avoid)
            assert not set(value) & set(avoid)
            assert len(value) == 20

    def test_random_string_is_random(self) -> None:
        assert len({run("RandomString(16, 0, 0, 0, 0)") for _ in range(10)}) == 10

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("RandomString([n], 0, 0, 0, 0)", "length must be 1 to 256, got 257"),
            ("RandomString(4, 2, 2, 2, 0)", "add up to more than length 4"),
            ("RandomString(4, -1, 0, 0, 0)", "must not be negative"),
            ('RandomString(4, 1, 0, 0, 0, "0123456789")', "removes every digits character"),
        ],
    )
    def test_random_string_errors(self, text: str, message: str) -> None:
        with pytest.raises(EvaluationError, match=message):
            parse(text).evaluate({"n": 257}.get)


# --------------------------------------------------------------------------------------------
# Realistic mappings and run-time error behaviour
# --------------------------------------------------------------------------------------------


def test_realistic_user_principal_name_mapping() -> None:
    text = (
        'IgnoreFlowIfNullOrEmpty(ToLower(Replace(Coalesce([mail], [userPrincipalName]), , '
        '"(?<local>[^@]+)@(?<domain>.+)", , "${local}@genesys.${domain}", , )))'
    )
    assert run(text, userPrincipalName="Ann.Lee@Contoso.com") == "ann.lee@genesys.contoso.com"
    assert run(text) is IGNORE


def test_unsupported_value_type_from_lookup() -> None:
    with pytest.raises(EvaluationError, match="unsupported type dict"):
        run("ToLower([a])", a={"x": 1})


def test_evaluation_errors_are_domain_errors() -> None:
    with pytest.raises(EvaluationError) as info:
        run("Not([a])", a="perhaps")
    assert str(info.value) == "Not: source must be True or False, got 'perhaps'"
    assert info.value.exit_code == 1


def test_many_evaluations_share_one_parse() -> None:
    expression = parse('Join(" ", PCase([givenName]), ToUpper([surname]))')
    users = [{"givenName": f"name{i}", "surname": f"sur{i}"} for i in range(1000)]
    results = [expression.evaluate(user.get) for user in users]
    assert results[0] == "Name0 SUR0"
    assert results[-1] == "Name999 SUR999"

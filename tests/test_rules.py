"""Genesys data rules: phone numbers to E.164 / tel URI."""

import pytest

from genesys_prov.mapping.desired import DesiredUser
from genesys_prov.mapping.genesys_rules import (
    apply_genesys_rules,
    normalize_phone,
    normalize_phone_checked,
)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 (425) 555-0100", None, "+14255550100"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("(425) 555-0100", "US", "+14255550100"),
        ("+1 425 555 0100 ext. 42", None, "tel:+14255550100;ext=42"),
        ("+14255550100", None, "+14255550100"),
    ],
)
def test_normalize(raw, region, expected):
    assert normalize_phone(raw, region) == expected


def test_unreadable_number_fails_that_user_with_a_reason():
    user = DesiredUser("s1", "ada", False, True,
                       values={'phoneNumbers[type eq "work"].value': "call me maybe"})
    apply_genesys_rules(user, "US")
    assert user.error is not None and "call me maybe" in user.error


def test_number_without_country_code_and_no_region_explains():
    with pytest.raises(ValueError, match="phone_default_region is not set"):
        normalize_phone("425 555 0100", None)


@pytest.mark.parametrize("raw", ["+55 90 95214-5623", "+5590952145623", "+55\u00a090.95214/5623"])
def test_brazilian_carrier_like_digits_are_kept_with_a_warning(raw):
    # libphonenumber strips "90" as a Brazilian carrier code (+55952145623): a wrong number
    normalized, warning = normalize_phone_checked(raw, "BR")
    assert normalized == "+5590952145623"
    assert warning is not None
    assert f"phone number {raw!r} is not valid for libphonenumber" in warning
    assert "+55952145623" in warning
    assert warning.endswith("sent as written: +5590952145623")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 (425) 555-0100", "+14255550100"),
        ("+1\u00a0425.555.0100", "+14255550100"),
        ("+14255550100", "+14255550100"),
        ("+1 425 555 0100 ext. 42", "tel:+14255550100;ext=42"),
        ("+1 425 555 0100 ext 42", "tel:+14255550100;ext=42"),
        ("+1 425 555 0100 EXT.42", "tel:+14255550100;ext=42"),
        ("+1 425 555 0100 x42", "tel:+14255550100;ext=42"),
        ("+1 425 555 0100 #042", "tel:+14255550100;ext=042"),
        ("+1 425 555 0100;ext=42", "tel:+14255550100;ext=42"),
        ("tel:+14255550100", "+14255550100"),
        ("tel:+1-425-555-0100;ext=12345", "tel:+14255550100;ext=12345"),
        (" TEL:+1(425)555-0100 ", "+14255550100"),
    ],
)
def test_valid_international_numbers_need_no_warning(raw, expected):
    assert normalize_phone_checked(raw, None) == (expected, None)


def test_trunk_prefix_marker_after_the_country_code_is_dropped():
    # the one deliberate exception to "keep the digits": (0) is the trunk-prefix marker
    assert normalize_phone_checked("+44 (0)20 7946 0000", None) == ("+442079460000", None)
    assert normalize_phone("+44(0)2079460000 x7", None) == "tel:+442079460000;ext=7"
    # …but in Italy the 0 is dialled from abroad too
    assert normalize_phone_checked("+39 (0)6 6982 0000", None)[0] == "+390669820000"
    # a 0 anywhere else is a digit
    assert normalize_phone_checked("+44 20 (0)7946 000", None)[0] == "+442007946000"


def test_unreadable_international_number_is_sent_as_written_with_a_warning():
    normalized, warning = normalize_phone_checked("+999 123 456", None)
    assert normalized == "+999123456"
    assert warning is not None and "cannot read it" in warning


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("+0 425 555 0100", "country code starting with 0"),
        ("+1 425 555 0100 1234 56", "17 digits"),
        ("+", "no digits"),
        ("+1", "too short"),
        ("+1 425 CALL NOW", "neither a digit nor formatting"),
        ("tel:+14255550100;isub=1", "neither a digit nor formatting"),
    ],
)
def test_number_that_cannot_be_e164_fails(raw, reason):
    with pytest.raises(ValueError, match=reason):
        normalize_phone_checked(raw, "US")


def test_national_numbers_keep_libphonenumber_behaviour():
    assert normalize_phone_checked("(425) 555-0100 ext. 9", "US") == (
        "tel:+14255550100;ext=9", None)
    assert normalize_phone_checked("020 7946 0958", "GB") == ("+442079460958", None)


def test_apply_rules_records_phone_warnings_and_keeps_going():
    target = 'phoneNumbers[type eq "mobile"].value'
    user = DesiredUser("s1", "ada", False, True, values={target: "+55 90 95214-5623"},
                       create_only={'phoneNumbers[type eq "work"].value': "+1 425 555 0100"})
    apply_genesys_rules(user, None)
    assert user.error is None
    assert user.values[target] == "+5590952145623"
    assert user.create_only['phoneNumbers[type eq "work"].value'] == "+14255550100"
    assert len(user.warnings) == 1
    assert user.warnings[0].startswith(f"mapping {target!r}: phone number '+55 90 95214-5623'")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2021-03-01T00:00:00Z", "2021-03-01"), ("2021-03-01", "2021-03-01"),
     ("2021-03-01T08:00:00+02:00", "2021-03-01")],
)
def test_hire_date_normalised(raw, expected):
    target = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:dateHire"
    user = DesiredUser("s1", "ada", False, True, values={target: raw})
    apply_genesys_rules(user, None)
    assert user.error is None and user.values[target] == expected


def test_bad_hire_date_and_oversized_user_fail_with_reason():
    target = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:dateHire"
    user = DesiredUser("s1", "ada", False, True, values={target: "2021-02-30"})
    apply_genesys_rules(user, None)
    assert user.error is not None and "2021-02-30" in user.error
    big = DesiredUser("s2", "bob", False, True, values={"title": "x" * 600_000})
    apply_genesys_rules(big, None)
    assert big.error is not None and "512,000" in big.error

"""Genesys data rules: phone numbers to E.164 / tel URI."""

import pytest

from genesys_prov.mapping import DesiredUser
from genesys_prov.rules import apply_genesys_rules, normalize_phone


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

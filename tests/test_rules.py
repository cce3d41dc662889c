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

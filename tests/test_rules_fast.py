"""The phone fast path (issue 12): a value already in E.164 that libphonenumber reads as
written is returned without ``phonenumbers.parse``. It must give exactly what the full path
gives, for every input: the synthetic bench directory's numbers, every calling code at every
length, and the tricky ones (carrier codes, extensions, spaces, national formats, +1, short
numbers)."""

from __future__ import annotations

import phonenumbers
import pytest

from genesys_prov.mapping import genesys_rules
from genesys_prov.mapping.desired import DesiredUser, desired_user
from genesys_prov.mapping.genesys_rules import normalize_phone, normalize_phone_checked
from genesys_prov.mapping.mappings_file import default_mappings_text, parse_mappings
from genesys_prov.sandbox.directory import generate_directory

REGIONS = (None, "US", "BR", "GB", "DE", "IT")

TRICKY = (
    # Brazil: libphonenumber strips 90 / 0xx as carrier codes (the defect this project had)
    "+5590952145623", "+55 90 95214-5623", "+55\u00a090.95214/5623", "+55015112345678",
    "+550211234567", "+5511987654321", "+551134561234", "+5590", "+559095",
    # national prefixes written after the country code
    "+440207946000", "+4402079460000", "+490891234567", "+330142612345", "+3906698200",
    "+390669820000", "+39 (0)6 6982 0000", "+44 (0)20 7946 0000", "+78123456789",
    "+79123456789", "+7812345678", "+61412345678", "+610412345678",
    # +1 (NANPA): a leading 1 is the national prefix
    "+14255550100", "+114255550100", "+1425555010", "+142555501000", "+12125550100",
    "+18005550100", "+1 425 555 0100", "+1(425)555-0100", "+1",
    # extensions, tel URIs, spaces, invisible marks, full-width digits
    "+14255550100 x42", "+14255550100;ext=7", "tel:+14255550100", "TEL:+14255550100",
    " +14255550100", "+14255550100 ", "+1\u200e4255550100", "+\uff11\uff14\uff12\uff15"
    "5550100", "+14255550100#9", "+14255550100ext.12",
    # short and long numbers, unknown and non-geographic calling codes
    "+12", "+123", "+1234", "+12345", "+999123456", "+80012345678", "+8001234567",
    "+882123456789", "+87012345678", "+3761234", "+2901234", "+29012345",
    "+123456789012345", "+1234567890123456", "+0123456789",
    # national formats (read in the region)
    "(425) 555-0100", "425 555 0100", "020 7946 0958", "089 1234567", "(11) 3456-1234",
    "0 90 11 3456 1234", "06 6982 0000", "5550100", "911", "112",
    # not numbers at all
    "", "+", "call me maybe", "+1 425 CALL NOW", "tel:+14255550100;isub=1",
)


def _outcome(normalize, value: str, region: str | None) -> tuple[str, object]:
    """What ``normalize(value, region)`` gives: ("ok", result) or ("error", message)."""
    try:
        return "ok", normalize(value, region)
    except ValueError as exc:
        return "error", str(exc)


def _assert_same(values, regions=REGIONS) -> None:
    for value in values:
        for region in regions:
            assert _outcome(normalize_phone_checked, value, region) == \
                _outcome(genesys_rules._normalize_phone_full, value, region), (value, region)


def _bench_phones(users: int) -> list[str]:
    directory = generate_directory(users)
    phones = [u["mobilePhone"] for u in directory["users"] if u["mobilePhone"]]
    phones += [p for u in directory["users"] for p in u["businessPhones"]]
    return phones


def test_fast_path_matches_the_full_path_on_the_bench_directory():
    phones = _bench_phones(3000)
    assert len(set(phones)) > 5000
    _assert_same(sorted(set(phones)), regions=(None, "US"))


def test_the_bench_directory_takes_the_fast_path():
    # every synthetic number is plain E.164 libphonenumber agrees with: none should parse
    phones = _bench_phones(2000)
    assert all(genesys_rules._already_e164(p) for p in phones)


@pytest.mark.parametrize("value", TRICKY)
def test_fast_path_matches_the_full_path_on_tricky_inputs(value):
    _assert_same([value])


def test_carrier_codes_never_take_the_fast_path():
    for value in ("+5590952145623", "+55015112345678", "+114255550100", "+440207946000",
                  "+3906698200"):
        assert not genesys_rules._already_e164(value), value
    assert normalize_phone_checked("+5590952145623", None)[0] == "+5590952145623"
    assert normalize_phone_checked("+5590952145623", None)[1] is not None


def test_fast_path_matches_the_full_path_for_every_calling_code_and_length():
    # every known calling code, national numbers of every length, starting with each digit
    values = []
    for code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        for size in range(1, 16 - len(str(code))):
            for first in "0123456789":
                values.append(f"+{code}{first}{'4725836190' * 2}"[:len(str(code)) + 1 + size])
    assert len(values) > 25_000
    _assert_same(values, regions=(None,))


def test_fast_path_results_are_not_parsed(monkeypatch):
    calls = []
    original = phonenumbers.parse

    def counting(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(phonenumbers, "parse", counting)
    genesys_rules._normalize_phone_cached.cache_clear()
    assert normalize_phone("+14255550177", None) == "+14255550177"
    assert calls == []
    assert normalize_phone("+1 425 555 0177", None) == "+14255550177"
    assert calls == ["+14255550177"]


def test_slow_path_results_are_cached_per_value_and_region(monkeypatch):
    genesys_rules._normalize_phone_cached.cache_clear()
    calls = []
    original = genesys_rules._normalize_phone_full

    def counting(value, region):
        calls.append((value, region))
        return original(value, region)

    monkeypatch.setattr(genesys_rules, "_normalize_phone_full", counting)
    for _ in range(3):
        normalize_phone("(425) 555-0100", "US")
        normalize_phone("(425) 555-0100", "CA")
    assert calls == [("(425) 555-0100", "US"), ("(425) 555-0100", "CA")]
    assert genesys_rules._normalize_phone_cached.cache_info().maxsize is not None


def rules_as_before(user: DesiredUser, phone_region: str | None) -> DesiredUser:
    """apply_genesys_rules before issue 12 (every string value through _normalize), the
    reference the faster loop must match."""
    if user.error:
        return user
    size = 0
    for values in (user.values, user.create_only):
        for target, value in list(values.items()):
            if isinstance(value, str):
                try:
                    value, warning = genesys_rules._normalize(target, value, phone_region)
                except ValueError as exc:
                    user.error = f"mapping {target!r}: {exc}"
                    return user
                values[target] = value
                note = f"mapping {target!r}: {warning}" if warning else None
                if note is not None and note not in user.warnings:
                    user.warnings.append(note)
                size += len(value.encode()) + len(target) + 8
    if size > genesys_rules.MAX_BODY_BYTES:
        user.error = (f"the mapped attributes need about {size:,} bytes; Genesys accepts "
                      f"at most {genesys_rules.MAX_BODY_BYTES:,} per request")
    return user


def _rule_users() -> list[DesiredUser]:
    mappings = parse_mappings(default_mappings_text())
    users = [desired_user(u, mappings) for u in generate_directory(500)["users"]]
    mobile, work = 'phoneNumbers[type eq "mobile"].value', 'phoneNumbers[type eq "work"].value'
    odd = [
        {mobile: "+55 90 95214-5623", work: "+5590952145623", "title": "Zoë"},
        {mobile: "call me", "title": "x"},
        {"dateHire": "2021-03-01T00:00:00Z", "title": "ü" * 300_000},
        {"dateHire": "not a date"},
        {"urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:dateHire": "2021-3-1"},
        {mobile: 4255550100, "title": None, "displayName": "日本語"},
        {work: "(425) 555-0100", "title": "a" * 600_000},
        {mobile: "+1 425 555 0100 x7", work: "+1 425 555 0100 x7"},
    ]
    for n, values in enumerate(odd):
        users.append(DesiredUser(f"odd{n}", f"odd{n}", False, True, values=dict(values),
                                 create_only={"title": "é" * n, mobile: "+442079460000"}))
    users.append(DesiredUser("failed", "failed", False, True, values={mobile: "x"},
                             error="already failed"))
    return users


@pytest.mark.parametrize("region", [None, "US"])
def test_rules_give_what_they_gave_before(region):
    for before, after in zip(_rule_users(), _rule_users(), strict=True):
        assert genesys_rules.apply_genesys_rules(after, region) == \
            rules_as_before(before, region), before.source_id

"""Property-based test (hypothesis) for phone-number normalisation in
genesys_prov.mapping.genesys_rules.

The contract: a number written with a country code (``+…`` or ``tel:+…``), whatever its
formatting and extension marker, either fails with ValueError or comes out as E.164 / a tel
URI with exactly the digits that were written (extension digits included); it fails only
when its digits cannot form E.164 (``+`` then 2-15 digits, the first not 0). The ``(0)``
trunk-prefix marker, the one documented exception, is left out of the generated inputs.

Runs derandomized and without an example database, so CI sees the same examples every run.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from genesys_prov.mapping.genesys_rules import normalize_phone

#: What may stand between two digits ("" most often).
SEPARATORS = ("", "", "", " ", " ", "-", ".", "/", "(", ")", "\u00a0", "\u2009", "  ", " - ",
              "\u2011", "\u200e")
EXTENSION_MARKERS = (" ext. ", " ext ", "ext", " EXT.", " x", " x ", "x", " #", "#", ";ext=")
PREFIXES = ("+", "+", " +", "tel:+", "TEL:+", "+ ")
NORMALIZED = re.compile(r"^(?:\+[1-9]\d{1,14}|tel:\+[1-9]\d{1,14};ext=\d+)$")
TRUNK_MARKER = re.compile(r"\(\s*0\s*\)")


@st.composite
def international_numbers(draw: st.DrawFn) -> tuple[str, int]:
    """A number written with a country code, and how many digits its main part has."""
    digits = [draw(st.sampled_from("123456789"))]
    digits += draw(st.lists(st.sampled_from("0123456789"), max_size=17))
    parts = [draw(st.sampled_from(PREFIXES)), digits[0]]
    for digit in digits[1:]:
        parts += [draw(st.sampled_from(SEPARATORS)), digit]
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(EXTENSION_MARKERS)))
        parts.append(draw(st.from_regex(r"[0-9]{1,6}", fullmatch=True)))
    return "".join(parts), len(digits)


def digits_of(text: str) -> str:
    """The ASCII digits of ``text``, in order."""
    return "".join(ch for ch in text if "0" <= ch <= "9")


def assert_digits_kept(normalize: Callable[[str, str | None], str], text: str,
                       main_digits: int) -> None:
    """The property, for any ``normalize(value, region) -> str``."""
    assume(not TRUNK_MARKER.search(text))
    try:
        normalized = normalize(text, None)
    except ValueError:
        assert not 2 <= main_digits <= 15, f"{text!r} is E.164-shaped but was refused"
        return
    assert NORMALIZED.match(normalized), (text, normalized)
    assert digits_of(normalized) == digits_of(text), (text, normalized)


@settings(max_examples=600, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(international_numbers())
@example(("+55 90 95214-5623", 12))  # libphonenumber drops "90" as a Brazilian carrier code
@example(("tel:+5590952145623;ext=12", 12))
def test_international_numbers_keep_their_digits(number: tuple[str, int]) -> None:
    text, main_digits = number
    assert_digits_kept(normalize_phone, text, main_digits)

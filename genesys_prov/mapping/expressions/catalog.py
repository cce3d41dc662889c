"""The function catalog: every supported function by name, with its arity, implementation
and check, plus where comparisons and ``vb...`` constants may appear."""

from __future__ import annotations

from typing import Final

from genesys_prov.mapping.expressions.builders import (
    _build_coalesce,
    _build_default_domain,
    _build_iif,
    _build_select_unique,
    _build_switch,
)
from genesys_prov.mapping.expressions.checks import (
    _check_formatdatetime,
    _check_interval,
    _check_randomstring,
    _check_replace,
    _check_switch,
)
from genesys_prov.mapping.expressions.functions import (
    _fn_append,
    _fn_approles_complex,
    _fn_base64,
    _fn_bitand,
    _fn_cbool,
    _fn_cdate,
    _fn_count,
    _fn_cstr,
    _fn_dateadd,
    _fn_datediff,
    _fn_datefromnum,
    _fn_formatdatetime,
    _fn_guid,
    _fn_ignore,
    _fn_instr,
    _fn_isnull,
    _fn_isnullorempty,
    _fn_ispresent,
    _fn_isstring,
    _fn_item,
    _fn_join,
    _fn_left,
    _fn_len,
    _fn_mid,
    _fn_normalize,
    _fn_not,
    _fn_now,
    _fn_numfromdate,
    _fn_pcase,
    _fn_randomstring,
    _fn_redact,
    _fn_removeduplicates,
    _fn_singleapprole,
    _fn_split,
    _fn_stripspaces,
    _fn_tolower,
    _fn_toupper,
    _fn_utf8hex,
    _fn_word,
)
from genesys_prov.mapping.expressions.replace import _build_replace
from genesys_prov.mapping.expressions.syntax import _Function

_FUNCTIONS: Final[dict[str, _Function]] = {
    "Append": _Function(2, 2, _fn_append),
    "AppRoleAssignmentsComplex": _Function(1, 1, _fn_approles_complex),
    "BitAnd": _Function(2, 2, _fn_bitand),
    "CBool": _Function(1, 1, _fn_cbool),
    "CDate": _Function(1, 1, _fn_cdate),
    "Coalesce": _Function(1, None, build=_build_coalesce),
    "ConvertToBase64": _Function(1, 1, _fn_base64),
    "ConvertToUTF8Hex": _Function(1, 1, _fn_utf8hex),
    "Count": _Function(1, 1, _fn_count),
    "CStr": _Function(1, 1, _fn_cstr),
    "DateAdd": _Function(3, 3, _fn_dateadd, check=_check_interval),
    "DateDiff": _Function(3, 3, _fn_datediff, check=_check_interval),
    "DateFromNum": _Function(1, 1, _fn_datefromnum),
    "DefaultDomain": _Function(0, 0, build=_build_default_domain),
    "FormatDateTime": _Function(3, 4, _fn_formatdatetime, check=_check_formatdatetime),
    "Guid": _Function(0, 0, _fn_guid),
    "IgnoreFlowIfNullOrEmpty": _Function(1, 1, _fn_ignore),
    "IIF": _Function(3, 3, build=_build_iif),
    "InStr": _Function(2, 4, _fn_instr),
    "IsNull": _Function(1, 1, _fn_isnull),
    "IsNullOrEmpty": _Function(1, 1, _fn_isnullorempty),
    "IsPresent": _Function(1, 1, _fn_ispresent),
    "IsString": _Function(1, 1, _fn_isstring),
    "Item": _Function(2, 2, _fn_item),
    "Join": _Function(2, None, _fn_join),
    "Left": _Function(2, 2, _fn_left),
    "Len": _Function(1, 1, _fn_len),
    "Mid": _Function(3, 3, _fn_mid),
    "NormalizeDiacritics": _Function(1, 1, _fn_normalize),
    "Not": _Function(1, 1, _fn_not),
    "Now": _Function(0, 0, _fn_now),
    "NumFromDate": _Function(1, 1, _fn_numfromdate),
    "PCase": _Function(1, 2, _fn_pcase),
    "RandomString": _Function(5, 6, _fn_randomstring, check=_check_randomstring),
    "Redact": _Function(1, 1, _fn_redact),
    "RemoveDuplicates": _Function(1, 1, _fn_removeduplicates),
    "Replace": _Function(7, 7, build=_build_replace, check=_check_replace),
    "SelectUniqueValue": _Function(1, None, build=_build_select_unique),
    "SingleAppRoleAssignment": _Function(1, 1, _fn_singleapprole),
    "Split": _Function(2, 2, _fn_split),
    "StripSpaces": _Function(1, 1, _fn_stripspaces),
    "Switch": _Function(4, None, build=_build_switch, check=_check_switch),
    "ToLower": _Function(1, 2, _fn_tolower),
    "ToUpper": _Function(1, 2, _fn_toupper),
    "Word": _Function(3, 3, _fn_word),
}

# Names Entra's function list carries whose behaviour Microsoft's expression reference does not
# document: refused with the reason (and what to use instead), never guessed at.
UNDOCUMENTED: Final[dict[str, str]] = {
    "NormalizeDiacriticsByCulture": (
        "Microsoft's expression reference does not document what it does for each culture, "
        "so genesys-prov does not guess; use NormalizeDiacritics, or Replace for "
        "culture-specific letters (ä -> ae)"),
}

# Where a comparison may appear: (function, argument index).
_COMPARISON_SLOTS: Final = frozenset({("IIF", 0), ("CBool", 0)})
_VB_CONSTANTS: Final = frozenset({"vbTextCompare", "vbBinaryCompare"})
_VB_SLOT: Final = ("InStr", 3)


def function_names() -> list[str]:
    """The names of every supported function, sorted."""
    return sorted(_FUNCTIONS)

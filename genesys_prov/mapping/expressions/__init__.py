"""Entra ID attribute-mapping expressions: parse once, evaluate for every user.

The language is the one Microsoft Entra's provisioning service uses in "Expression" mappings
(``Function(arg, ...)``, ``[attribute]``, ``"string"``, integers, ``&H`` hex numbers, empty
arguments, ``vbTextCompare`` / ``vbBinaryCompare`` and comparisons inside ``IIF`` / ``CBool``).
:func:`parse` turns the text into a tree of small closures; :meth:`Expression.evaluate` runs
it against one object's attributes. Literal regular expressions and date formats are compiled
at parse time (or cached), never per evaluation.

Values are Python values: ``None`` (null), ``str``, ``int``, ``bool`` and ``list`` for
multi-valued attributes. A ``bool`` used as text is ``"True"`` / ``"False"``; a function that
takes a boolean accepts a ``bool`` or the strings ``"True"`` / ``"False"`` (any case).

Null handling (Entra's documentation is silent or ambiguous on most of these; the choices aim
at "a null source leaves the target alone", since provisioning never sends nulls):

* most functions return null for a null source (``ToLower``, ``Mid``, ``Replace``, ``Not``,
  ``CStr``, ``CBool``, the date functions, ...);
* ``Append`` treats one null side as ``""`` and is null only when both sides are null;
* ``Left`` of null is ``""`` (documented by Entra); ``Count`` and ``Len`` of null are ``0``
  (``Len``'s is documented);
* ``AppRoleAssignmentsComplex`` of no roles is null (not an empty list);
* ``Join`` skips null / empty sources and returns ``""`` when nothing is left;
* ``Coalesce`` skips null, ``""`` and empty lists and otherwise returns the last argument;
* ``Switch`` returns the default for a null source;
* comparisons never fail on null: ``=`` and ordering give ``False``, ``<>`` gives ``True``
  (Entra fails the whole object instead).

``DefaultDomain()`` is the one function that reads the evaluation context: it asks the
lookup for :data:`DEFAULT_DOMAIN`, which the caller fills with the tenant's default verified
domain (:meth:`Expression.functions` tells whether an expression needs it). Without one it
is an error, as in Entra.

Date-time values travel as text in Entra's display form ``M/d/yyyy h:mm:ss tt`` (UTC), which
every date function also reads back, together with ISO-8601 and generalized time
(``yyyyMMddHHmmss[.f]Z``).

The package holds one module per part: :mod:`.base` (shared constants and types),
:mod:`.values` (value helpers), :mod:`.dotnet_regex` (.NET regexes and substitutions),
:mod:`.dates` (date-times and .NET formats), :mod:`.functions` (the eager functions),
:mod:`.syntax` (the syntax tree), :mod:`.builders` (evaluation closures and the lazy functions),
:mod:`.replace` (Replace), :mod:`.checks` (parse-time checks), :mod:`.catalog` (the function
table), :mod:`.compare` (comparisons), :mod:`.lexer`, :mod:`.parser`, :mod:`.compiler` and
:mod:`.expression` (:func:`parse` and :class:`Expression`). Every name is re-exported here.
"""

from __future__ import annotations

from genesys_prov.errors import EvaluationError as EvaluationError
from genesys_prov.errors import ExpressionError as ExpressionError
from genesys_prov.mapping.expressions.base import _MAX_DEPTH as _MAX_DEPTH
from genesys_prov.mapping.expressions.base import _MAX_HEX_DIGITS as _MAX_HEX_DIGITS
from genesys_prov.mapping.expressions.base import _MAX_INT_DIGITS as _MAX_INT_DIGITS
from genesys_prov.mapping.expressions.base import _RUNTIME_ERRORS as _RUNTIME_ERRORS
from genesys_prov.mapping.expressions.base import _SHOW_LIMIT as _SHOW_LIMIT
from genesys_prov.mapping.expressions.base import DEFAULT_DOMAIN as DEFAULT_DOMAIN
from genesys_prov.mapping.expressions.base import IGNORE as IGNORE
from genesys_prov.mapping.expressions.base import MAX_LENGTH as MAX_LENGTH
from genesys_prov.mapping.expressions.base import Lookup as Lookup
from genesys_prov.mapping.expressions.base import _Eval as _Eval
from genesys_prov.mapping.expressions.base import _IgnoreType as _IgnoreType
from genesys_prov.mapping.expressions.builders import _attr as _attr
from genesys_prov.mapping.expressions.builders import _build_coalesce as _build_coalesce
from genesys_prov.mapping.expressions.builders import (
    _build_default_domain as _build_default_domain,
)
from genesys_prov.mapping.expressions.builders import _build_iif as _build_iif
from genesys_prov.mapping.expressions.builders import _build_select_unique as _build_select_unique
from genesys_prov.mapping.expressions.builders import _build_switch as _build_switch
from genesys_prov.mapping.expressions.builders import _const as _const
from genesys_prov.mapping.expressions.builders import _eager as _eager
from genesys_prov.mapping.expressions.builders import _runtime_failure as _runtime_failure
from genesys_prov.mapping.expressions.catalog import _COMPARISON_SLOTS as _COMPARISON_SLOTS
from genesys_prov.mapping.expressions.catalog import _FUNCTIONS as _FUNCTIONS
from genesys_prov.mapping.expressions.catalog import _VB_CONSTANTS as _VB_CONSTANTS
from genesys_prov.mapping.expressions.catalog import _VB_SLOT as _VB_SLOT
from genesys_prov.mapping.expressions.catalog import function_names as function_names
from genesys_prov.mapping.expressions.checks import _check_formatdatetime as _check_formatdatetime
from genesys_prov.mapping.expressions.checks import _check_interval as _check_interval
from genesys_prov.mapping.expressions.checks import _check_randomstring as _check_randomstring
from genesys_prov.mapping.expressions.checks import _check_replace as _check_replace
from genesys_prov.mapping.expressions.checks import _check_switch as _check_switch
from genesys_prov.mapping.expressions.compare import _as_number as _as_number
from genesys_prov.mapping.expressions.compare import _bool_or_none as _bool_or_none
from genesys_prov.mapping.expressions.compare import _comparable as _comparable
from genesys_prov.mapping.expressions.compare import _compare as _compare
from genesys_prov.mapping.expressions.compiler import _compile as _compile
from genesys_prov.mapping.expressions.dates import _DATETIME_STYLES as _DATETIME_STYLES
from genesys_prov.mapping.expressions.dates import _DAYS as _DAYS
from genesys_prov.mapping.expressions.dates import _DAYS_ABBR as _DAYS_ABBR
from genesys_prov.mapping.expressions.dates import _FIELD_PATTERNS as _FIELD_PATTERNS
from genesys_prov.mapping.expressions.dates import _FILETIME_EPOCH as _FILETIME_EPOCH
from genesys_prov.mapping.expressions.dates import _GENERALIZED_RE as _GENERALIZED_RE
from genesys_prov.mapping.expressions.dates import _INTERVAL_NAMES as _INTERVAL_NAMES
from genesys_prov.mapping.expressions.dates import _INTERVALS as _INTERVALS
from genesys_prov.mapping.expressions.dates import _ISO_RE as _ISO_RE
from genesys_prov.mapping.expressions.dates import _MONTHS as _MONTHS
from genesys_prov.mapping.expressions.dates import _MONTHS_ABBR as _MONTHS_ABBR
from genesys_prov.mapping.expressions.dates import _SPECIFIERS as _SPECIFIERS
from genesys_prov.mapping.expressions.dates import _STANDARD_FORMATS as _STANDARD_FORMATS
from genesys_prov.mapping.expressions.dates import _US_RE as _US_RE
from genesys_prov.mapping.expressions.dates import _add_months as _add_months
from genesys_prov.mapping.expressions.dates import _display as _display
from genesys_prov.mapping.expressions.dates import _field_pattern as _field_pattern
from genesys_prov.mapping.expressions.dates import _filetime as _filetime
from genesys_prov.mapping.expressions.dates import _FmtToken as _FmtToken
from genesys_prov.mapping.expressions.dates import _format_datetime as _format_datetime
from genesys_prov.mapping.expressions.dates import _format_reader as _format_reader
from genesys_prov.mapping.expressions.dates import _format_tokens as _format_tokens
from genesys_prov.mapping.expressions.dates import _interval as _interval
from genesys_prov.mapping.expressions.dates import _micro as _micro
from genesys_prov.mapping.expressions.dates import _offset as _offset
from genesys_prov.mapping.expressions.dates import _parse_exact as _parse_exact
from genesys_prov.mapping.expressions.dates import _read_datetime as _read_datetime
from genesys_prov.mapping.expressions.dates import _styles as _styles
from genesys_prov.mapping.expressions.dotnet_regex import _dynamic_regex as _dynamic_regex
from genesys_prov.mapping.expressions.dotnet_regex import _group_ref as _group_ref
from genesys_prov.mapping.expressions.dotnet_regex import (
    _net_regex_to_python as _net_regex_to_python,
)
from genesys_prov.mapping.expressions.dotnet_regex import _Part as _Part
from genesys_prov.mapping.expressions.dotnet_regex import _regex as _regex
from genesys_prov.mapping.expressions.dotnet_regex import _substitution as _substitution
from genesys_prov.mapping.expressions.expression import Expression as Expression
from genesys_prov.mapping.expressions.expression import parse as parse
from genesys_prov.mapping.expressions.functions import _APOSTROPHES as _APOSTROPHES
from genesys_prov.mapping.expressions.functions import _CULTURE_RE as _CULTURE_RE
from genesys_prov.mapping.expressions.functions import _DIACRITIC_SPECIALS as _DIACRITIC_SPECIALS
from genesys_prov.mapping.expressions.functions import _DIACRITICS as _DIACRITICS
from genesys_prov.mapping.expressions.functions import _SPECIAL_CHARS as _SPECIAL_CHARS
from genesys_prov.mapping.expressions.functions import APP_ROLE_TYPE as APP_ROLE_TYPE
from genesys_prov.mapping.expressions.functions import _caseless as _caseless
from genesys_prov.mapping.expressions.functions import _compare_mode as _compare_mode
from genesys_prov.mapping.expressions.functions import _DiacriticTable as _DiacriticTable
from genesys_prov.mapping.expressions.functions import _fn_append as _fn_append
from genesys_prov.mapping.expressions.functions import (
    _fn_approles_complex as _fn_approles_complex,
)
from genesys_prov.mapping.expressions.functions import _fn_base64 as _fn_base64
from genesys_prov.mapping.expressions.functions import _fn_bitand as _fn_bitand
from genesys_prov.mapping.expressions.functions import _fn_cbool as _fn_cbool
from genesys_prov.mapping.expressions.functions import _fn_cdate as _fn_cdate
from genesys_prov.mapping.expressions.functions import _fn_count as _fn_count
from genesys_prov.mapping.expressions.functions import _fn_cstr as _fn_cstr
from genesys_prov.mapping.expressions.functions import _fn_dateadd as _fn_dateadd
from genesys_prov.mapping.expressions.functions import _fn_datediff as _fn_datediff
from genesys_prov.mapping.expressions.functions import _fn_datefromnum as _fn_datefromnum
from genesys_prov.mapping.expressions.functions import _fn_formatdatetime as _fn_formatdatetime
from genesys_prov.mapping.expressions.functions import _fn_guid as _fn_guid
from genesys_prov.mapping.expressions.functions import _fn_ignore as _fn_ignore
from genesys_prov.mapping.expressions.functions import _fn_instr as _fn_instr
from genesys_prov.mapping.expressions.functions import _fn_isnull as _fn_isnull
from genesys_prov.mapping.expressions.functions import _fn_isnullorempty as _fn_isnullorempty
from genesys_prov.mapping.expressions.functions import _fn_ispresent as _fn_ispresent
from genesys_prov.mapping.expressions.functions import _fn_isstring as _fn_isstring
from genesys_prov.mapping.expressions.functions import _fn_item as _fn_item
from genesys_prov.mapping.expressions.functions import _fn_join as _fn_join
from genesys_prov.mapping.expressions.functions import _fn_left as _fn_left
from genesys_prov.mapping.expressions.functions import _fn_len as _fn_len
from genesys_prov.mapping.expressions.functions import _fn_mid as _fn_mid
from genesys_prov.mapping.expressions.functions import _fn_normalize as _fn_normalize
from genesys_prov.mapping.expressions.functions import _fn_not as _fn_not
from genesys_prov.mapping.expressions.functions import _fn_now as _fn_now
from genesys_prov.mapping.expressions.functions import _fn_numfromdate as _fn_numfromdate
from genesys_prov.mapping.expressions.functions import _fn_pcase as _fn_pcase
from genesys_prov.mapping.expressions.functions import _fn_randomstring as _fn_randomstring
from genesys_prov.mapping.expressions.functions import _fn_redact as _fn_redact
from genesys_prov.mapping.expressions.functions import _fn_removeduplicates as _fn_removeduplicates
from genesys_prov.mapping.expressions.functions import _fn_singleapprole as _fn_singleapprole
from genesys_prov.mapping.expressions.functions import _fn_split as _fn_split
from genesys_prov.mapping.expressions.functions import _fn_stripspaces as _fn_stripspaces
from genesys_prov.mapping.expressions.functions import _fn_tolower as _fn_tolower
from genesys_prov.mapping.expressions.functions import _fn_toupper as _fn_toupper
from genesys_prov.mapping.expressions.functions import _fn_utf8hex as _fn_utf8hex
from genesys_prov.mapping.expressions.functions import _fn_word as _fn_word
from genesys_prov.mapping.expressions.functions import _format_date_time as _format_date_time
from genesys_prov.mapping.expressions.functions import _turkic as _turkic
from genesys_prov.mapping.expressions.functions import _word_splitter as _word_splitter
from genesys_prov.mapping.expressions.lexer import _ATTR_CHARS as _ATTR_CHARS
from genesys_prov.mapping.expressions.lexer import _HEX_DIGITS as _HEX_DIGITS
from genesys_prov.mapping.expressions.lexer import _NAME_CHARS as _NAME_CHARS
from genesys_prov.mapping.expressions.lexer import _NAME_START as _NAME_START
from genesys_prov.mapping.expressions.lexer import _WRONG_QUOTES as _WRONG_QUOTES
from genesys_prov.mapping.expressions.lexer import _Lexer as _Lexer
from genesys_prov.mapping.expressions.lexer import _Token as _Token
from genesys_prov.mapping.expressions.parser import _DESCRIBE as _DESCRIBE
from genesys_prov.mapping.expressions.parser import _arity as _arity
from genesys_prov.mapping.expressions.parser import _describe as _describe
from genesys_prov.mapping.expressions.parser import _Parser as _Parser
from genesys_prov.mapping.expressions.replace import _build_replace as _build_replace
from genesys_prov.mapping.expressions.replace import (
    _replace_by_fixed_regex as _replace_by_fixed_regex,
)
from genesys_prov.mapping.expressions.replace import _replace_by_regex as _replace_by_regex
from genesys_prov.mapping.expressions.replace import _replace_by_template as _replace_by_template
from genesys_prov.mapping.expressions.replace import _replace_by_value as _replace_by_value
from genesys_prov.mapping.expressions.replace import (
    _replace_from_attribute as _replace_from_attribute,
)
from genesys_prov.mapping.expressions.replace import _replace_group_ref as _replace_group_ref
from genesys_prov.mapping.expressions.replace import _replace_in_group as _replace_in_group
from genesys_prov.mapping.expressions.replace import _replace_regex as _replace_regex
from genesys_prov.mapping.expressions.syntax import _Attr as _Attr
from genesys_prov.mapping.expressions.syntax import _Builder as _Builder
from genesys_prov.mapping.expressions.syntax import _Call as _Call
from genesys_prov.mapping.expressions.syntax import _Check as _Check
from genesys_prov.mapping.expressions.syntax import _Compare as _Compare
from genesys_prov.mapping.expressions.syntax import _Empty as _Empty
from genesys_prov.mapping.expressions.syntax import _Function as _Function
from genesys_prov.mapping.expressions.syntax import _Literal as _Literal
from genesys_prov.mapping.expressions.syntax import _literal_text as _literal_text
from genesys_prov.mapping.expressions.syntax import _Node as _Node
from genesys_prov.mapping.expressions.syntax import _VbConst as _VbConst
from genesys_prov.mapping.expressions.values import _HEX_RE as _HEX_RE
from genesys_prov.mapping.expressions.values import _INT_RE as _INT_RE
from genesys_prov.mapping.expressions.values import _bool as _bool
from genesys_prov.mapping.expressions.values import _int as _int
from genesys_prov.mapping.expressions.values import _is_empty as _is_empty
from genesys_prov.mapping.expressions.values import _req_int as _req_int
from genesys_prov.mapping.expressions.values import _req_text as _req_text
from genesys_prov.mapping.expressions.values import _show as _show
from genesys_prov.mapping.expressions.values import _text as _text

__all__ = ["APP_ROLE_TYPE", "DEFAULT_DOMAIN", "IGNORE", "MAX_LENGTH", "Expression",
           "function_names", "parse"]

"""The plan file writer (issue 12): ``write_plan`` writes, a change at a time, exactly the
bytes ``json.dump(document, indent=1, ensure_ascii=False, default=str)`` wrote, and its
streamed checksum is :func:`checksum`'s."""

from __future__ import annotations

import datetime
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesys_prov.mapping.mappings_file import default_mappings_text
from genesys_prov.plan import file as plan_file
from genesys_prov.plan.file import _change_data, _group_data, checksum, read_plan, write_plan
from genesys_prov.plan.model import Action, AttributeChange, Change, MemberRef

from .test_plan_golden import UNIQUE, _busy_target_plan

SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
           | st.sampled_from([datetime.date(2024, 2, 29), Decimal("1.5"), frozenset({1})]))
KEYS = st.text(max_size=6) | st.integers() | st.booleans() | st.none() | st.floats()


def _values(depth: int = 4) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda inner: (st.lists(inner, max_size=4)
                       | st.lists(inner, max_size=3).map(tuple)
                       | st.dictionaries(st.text(max_size=6), inner, max_size=4)
                       | st.dictionaries(KEYS, inner, max_size=3)),
        max_leaves=25)


def _dumped(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False, default=str)


def _written(document: dict[str, Any]) -> str:
    out = io.StringIO()
    streamed = {k: (plan_file._indented(item, 2) for item in v) if isinstance(v, list) else v
                for k, v in document.items()}
    plan_file._write_document(streamed, out)
    return out.getvalue()


@settings(max_examples=400, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=8), _values(), max_size=6))
def test_written_document_is_what_json_dump_writes(document):
    assert _written(document) == _dumped(document)


@settings(max_examples=200, derandomize=True, database=None)
@given(_values())
def test_indented_value_is_what_json_dumps_writes_at_any_depth(value):
    text = json.dumps(value, indent=1, ensure_ascii=False, default=str)
    for level in (0, 1, 2, 5):
        assert plan_file._indented(value, level) == text.replace("\n", "\n" + " " * level)


def test_edge_documents():
    for document in ({}, {"a": []}, {"a": {}}, {"a": [[]], "b": [{}]},
                     {"a": {1: {True: [None]}}, "b": (1, (2,))},
                     {"changes": [{"x": {"id": None, "display": "Zoë \"Z\"\n"}}], "n": 1.0}):
        assert _written(document) == _dumped(document)


@settings(max_examples=200, derandomize=True, database=None)
@given(st.lists(st.dictionaries(st.text(max_size=5), _values(), max_size=4), max_size=5),
       st.lists(st.dictionaries(st.text(max_size=5), _values(), max_size=4), max_size=3))
def test_streamed_checksum_is_the_checksum(changes, groups):
    def outcome(compute):
        try:
            return compute()
        except TypeError as exc:  # keys of mixed types cannot be sorted: both refuse
            return type(exc)

    def streamed():
        return plan_file._stream_checksum(map(plan_file._COMPACT, changes),
                                          map(plan_file._COMPACT, groups))

    assert outcome(streamed) == outcome(lambda: checksum(changes, groups))


def test_plan_file_is_byte_for_byte_the_json_dump_of_the_plan(tmp_path):
    plan = _busy_target_plan(400, default_mappings_text(), "delete")
    assert plan.changes and plan.group_changes
    path = tmp_path / "plan.json"
    digest = write_plan(path, plan, "settings")
    written = json.loads(path.read_text(encoding="utf-8"))
    changes = [_change_data(c) for c in plan.changes]
    groups = [_group_data(g) for g in plan.group_changes]
    assert digest == checksum(changes, groups)
    document = {"schema": plan_file.PLAN_SCHEMA, "created": written["created"],
                "created_epoch": written["created_epoch"], "settings_digest": "settings",
                "in_scope": plan.in_scope, "counts": plan.counts(), "checksum": digest,
                "changes": changes, "group_changes": groups}
    assert path.read_text(encoding="utf-8") == _dumped(document)
    again = read_plan(path, "settings", max_age=3600)
    assert again.changes == plan.changes and again.group_changes == plan.group_changes


ODD_VALUES = (None, "", "Zoë \"Z\"\n\t\u2028", 0, -7, 2**80, 1.5, float("nan"), True, False,
              ["a", None, 2], ("t",), {"id": "x", "n": [1, {"deep": None}]}, {},
              [], MemberRef("t1", "s1", "Ada"), MemberRef(None, None, ""),
              datetime.date(2024, 1, 2), Decimal("2.50"))


@pytest.mark.parametrize("old", ODD_VALUES)
def test_a_change_is_written_as_its_dict_would_be(old):
    for new in ODD_VALUES:
        for attributes in ((), (AttributeChange("title", old, new, "add", True),
                                AttributeChange("active", None, True))):
            change = Change(Action.UPDATE, "Zoë", "s1", None if new else "t1", attributes,
                            reason="r", version=None if old else 'W/"1"', wave=3)
            assert plan_file._change_json(change) == \
                plan_file._indented(_change_data(change), 2), (old, new)
            assert plan_file._change_compact(change) == \
                plan_file._COMPACT(_change_data(change)), (old, new)


def test_the_changes_of_real_plans_are_written_as_their_dicts_would_be():
    for plan in (_busy_target_plan(300, default_mappings_text(), "delete"),
                 _busy_target_plan(300, UNIQUE, "deactivate")):
        assert any(isinstance(a.new, MemberRef) for c in plan.changes for a in c.attributes)
        for change in plan.changes:
            assert plan_file._change_json(change) == \
                plan_file._indented(_change_data(change), 2)
            assert plan_file._change_compact(change) == \
                plan_file._COMPACT(_change_data(change))


@pytest.mark.parametrize("odd", [["a", 1], {"k": [None]}, 7, None, 2.5, True, ("t",)])
def test_fields_of_unexpected_types_are_written_as_their_dicts_would_be(odd):
    # the model says str / bool; the file must still be exactly json.dump's
    attribute = AttributeChange(odd, odd, odd, odd, odd)
    change = Change(Action.CREATE, odd, odd, odd, (attribute, attribute), odd, odd,
                    odd)
    assert plan_file._change_json(change) == plan_file._indented(_change_data(change), 2)
    assert plan_file._change_compact(change) == plan_file._COMPACT(_change_data(change))

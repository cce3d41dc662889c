"""SCIM paths: parsing, reading, writing payloads, and the PATCH op for each shape."""

import pytest

from genesys_prov.errors import MappingError
from genesys_prov.mapping import scimpath
from genesys_prov.mapping.scimpath import ENTERPRISE_USER, parse_path

USER = {
    "id": "u1",
    "userName": "Ada@Contoso.com",
    "active": True,
    "name": {"givenName": "Ada"},
    "emails": [{"type": "other", "value": "ada@contoso.com"}, {"type": "work", "value": "w@x"}],
    "phoneNumbers": [{"type": "mobile", "value": "+14255550100"}],
    ENTERPRISE_USER: {"department": "Sales", "manager": {"value": "m1"}},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title", (None, "title", None, None, None)),
        ("name.givenName", (None, "name", None, None, "givenName")),
        ('emails[type eq "work"].value', (None, "emails", "type", "work", "value")),
        ('phoneNumbers[type eq "mobile"]', (None, "phoneNumbers", "type", "mobile", "value")),
        (f"{ENTERPRISE_USER}:department", (ENTERPRISE_USER, "department", None, None, None)),
    ],
)
def test_parse(text, expected):
    p = parse_path(text)
    assert (p.schema, p.attr, p.filter_attr, p.filter_value, p.sub) == expected


@pytest.mark.parametrize("bad", ["", "emails[type ne \"x\"].value", "a b", "emails[type eq work]"])
def test_parse_rejects(bad):
    with pytest.raises(MappingError):
        parse_path(bad)


def test_get_value_shapes():
    assert scimpath.get_value(USER, parse_path("username")) == "Ada@Contoso.com"
    assert scimpath.get_value(USER, parse_path('emails[type eq "work"].value')) == "w@x"
    assert scimpath.get_value(USER, parse_path('phoneNumbers[type eq "work"].value')) is None
    assert scimpath.get_value(USER, parse_path(f"{ENTERPRISE_USER}:department")) == "Sales"
    assert scimpath.get_value(USER, parse_path(f"{ENTERPRISE_USER}:manager")) == "m1"
    assert scimpath.get_value(USER, parse_path("name.givenName")) == "Ada"


def test_set_value_builds_payload():
    payload: dict = {"schemas": [scimpath.CORE_USER]}
    scimpath.set_value(payload, parse_path('emails[type eq "work"].value'), "a@b")
    scimpath.set_value(payload, parse_path('phoneNumbers[type eq "mobile"].value'), "+1")
    scimpath.set_value(payload, parse_path('phoneNumbers[type eq "work"].value'), "+2")
    scimpath.set_value(payload, parse_path(f"{ENTERPRISE_USER}:department"), "Ops")
    assert payload == {
        "schemas": [scimpath.CORE_USER, ENTERPRISE_USER],
        "emails": [{"type": "work", "value": "a@b"}],
        "phoneNumbers": [{"type": "mobile", "value": "+1"}, {"type": "work", "value": "+2"}],
        ENTERPRISE_USER: {"department": "Ops"},
    }


def test_patch_operation_replace_and_add():
    work = parse_path('phoneNumbers[type eq "work"].value')
    assert scimpath.patch_operation(work, "+1", element_exists=True) == {
        "op": "replace", "path": 'phoneNumbers[type eq "work"].value', "value": "+1"}
    assert scimpath.patch_operation(work, "+1", element_exists=False) == {
        "op": "add", "path": "phoneNumbers", "value": [{"type": "work", "value": "+1"}]}
    assert scimpath.patch_operation(parse_path("title"), "Boss") == {
        "op": "replace", "path": "title", "value": "Boss"}


def test_coerce_and_compare():
    active = parse_path("active")
    assert scimpath.coerce(active, "False") is False
    assert scimpath.coerce(active, True) is True
    with pytest.raises(ValueError):
        scimpath.coerce(active, "maybe")
    assert scimpath.coerce(parse_path("title"), 7) == "7"
    assert scimpath.same_value(parse_path("userName"), "A@B", "a@b")
    assert not scimpath.same_value(parse_path("title"), "A", "a")


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ('a"b', r'"a\"b"'),
        ("back\\slash", r'"back\\slash"'),
        ('x" or "1" eq "1', r'"x\" or \"1\" eq \"1"'),
    ],
)
def test_filter_values_are_escaped(value, quoted):
    assert scimpath.escape_filter_value(value) == quoted

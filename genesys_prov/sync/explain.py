"""``genesys-prov explain USER``: why one user is (or would be) the way they are in the
target — without writing anything. The user is read and planned by
:func:`~genesys_prov.sync.inputs.read_one_user`, as a sync would.

The answer is data (a dict): the source values read, the scope decision with every
assignment and scoping clause, each mapping's value as mapped and as it will be sent (after
the target's data rules: Genesys' phone numbers and dateHire), the matching attempts in
precedence order and what they found, the planned change with old → new, and ``names``:
the display name of each directory object an answer names by id (the manager, the groups).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from genesys_prov.config import Config
from genesys_prov.errors import ConnectError
from genesys_prov.mapping import expressions
from genesys_prov.mapping.desired import desired_user, evaluate
from genesys_prov.mapping.genesys_rules import user_rule
from genesys_prov.mapping.mappings import ENTRA_ALIASES, Mappings
from genesys_prov.mapping.mappings_file import load_mappings
from genesys_prov.plan.model import REDACT_MARK, Plan
from genesys_prov.state.db import State
from genesys_prov.sync.connections import Connections, connect, tenant_mappings
from genesys_prov.sync.inputs import read_one_user


def _show(value: Any, redacted: bool) -> Any:
    if value is expressions.IGNORE:
        return "(IgnoreFlowIfNullOrEmpty: not sent)"
    return REDACT_MARK if redacted and value is not None else value


def explain_user(config: Config, who: str) -> dict[str, Any]:
    """Explain one user (UPN or object id) end to end; reads both sides, writes nothing.
    The user is planned alone: a manager who is created in the same run of a real sync
    shows here as "not provisioned".

    Example::

        explain_user(load_config("genesys-prov.yaml"), "ada@contoso.com")["plan"]
    """
    return investigate(config, who).data


@dataclass
class Investigation:
    """What ``explain`` found, with the objects ``provision`` goes on with."""

    data: dict[str, Any]
    conn: Connections
    plan: Plan
    member_of: list[str] = field(default_factory=list)  # assigned groups holding the user


def investigate(config: Config, who: str) -> Investigation:
    """Read one user from both sides and plan it alone (no write)."""
    mappings = load_mappings(config.mappings_path)
    conn = connect(config)
    mappings = tenant_mappings(mappings, conn)
    with State.open(config.state_dir) as state:
        links = state.links("user")
    reading = read_one_user(config, mappings, conn, who, links)
    seen = reading.subject
    assert seen is not None
    plan = reading.plan
    hidden = {ENTRA_ALIASES.get(n, n).split(".", 1)[0]
              for m in mappings.user if m.redacted for n in m.source_names()}
    source = {k: (REDACT_MARK if k in hidden and v is not None else v)
              for k, v in seen.user.items() if not k.startswith("@")}
    desired = desired_user(seen.user, mappings, in_scope=seen.scope["in_scope"])
    rule = user_rule(config.target)
    desired = rule(desired) if rule else desired
    data = {
        "user": {"id": seen.user["id"], "userPrincipalName": seen.user.get("userPrincipalName"),
                 "source": source},
        "scope": seen.scope,
        "mappings": _mapped_values(mappings, seen.user, seen.scope["in_scope"],
                                   {**desired.create_only, **desired.values}),
        "matching": seen.attempts,
        "plan": {"changes": [c.data() for c in plan.changes],
                 "skipped": [s.data() for s in plan.skipped],
                 "failures": [f.data() for f in plan.failures],
                 "unchanged": plan.unchanged == 1},
    }
    data["names"] = _names(conn, data, seen.member_of)
    return Investigation(data, conn, plan, seen.member_of)


def named(text: str, names: dict[str, str]) -> str:
    """``text`` with each object id that ``names`` knows shown as ``name (id)``."""
    if not names:
        return text
    lowered = {k.lower(): v for k, v in names.items()}

    def replace(match: re.Match[str]) -> str:
        name = lowered.get(match.group(0).lower())
        return f"{name} ({match.group(0)})" if name else match.group(0)

    return OBJECT_ID.sub(replace, text)


OBJECT_ID = re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b")


def _names(conn: Connections, data: dict[str, Any], member_of: list[str]) -> dict[str, str]:
    """The display name of each directory object the answer names by id besides the user
    (the manager, the groups of the scope decision): ``{id: "name"}``, read from Graph (one
    small read each; an object Graph cannot show is left out)."""
    text = repr([data["scope"], data["mappings"], data["plan"]["skipped"],
                 data["plan"]["failures"]])
    ids = {i.lower() for i in [*OBJECT_ID.findall(text), *member_of]} - \
        {str(data["user"]["id"]).lower()}
    groups = {g.lower() for g in member_of}
    names: dict[str, str] = {}
    for object_id in sorted(ids):
        names.update(_name(conn, object_id, object_id in groups))
    return names


def _name(conn: Connections, object_id: str, group_first: bool) -> dict[str, str]:
    """``{id: name}`` for one directory object (a user: "displayName <UPN>"; a group: its
    displayName); empty when it is neither (e.g. a target id)."""
    kinds = [("users", "id,displayName,userPrincipalName"), ("groups", "id,displayName")]
    for kind, fields in (kinds[::-1] if group_first else kinds):
        try:
            found = conn.graph.get(f"/{kind}/{object_id}", {"$select": fields})
        except ConnectError:  # not found, or not readable with these permissions
            continue
        name = str(found.get("displayName") or "")
        upn = found.get("userPrincipalName")
        return {object_id: f"{name} <{upn}>" if upn and name else str(upn or name)}
    return {}


def _mapped_values(mappings: Mappings, user: dict[str, Any], in_scope: bool,
                   sent: dict[str, Any]) -> list[dict[str, Any]]:
    """Each mapping's value for the user as the mappings compute it (``value``) and as it
    will be sent after the target's data rules (``sent``, when a value is sent), redacted
    where the mapping says so."""
    values = []
    for m in mappings.user:
        entry: dict[str, Any] = {"target": m.target, "kind": m.kind, "apply": m.apply}
        if m.expression is not None:
            entry["expression"] = m.expression.text
        elif m.source is not None:
            entry["source"] = m.source
        if m.is_reference:
            entry["value"] = (user.get("manager") or {}).get("id") \
                if isinstance(user.get("manager"), dict) else None
            entry["note"] = "a reference: resolved to the target id of that user"
        else:
            try:
                entry["value"] = _show(evaluate(m, user, in_scope, mappings.default_domain),
                                       m.redacted)
            except Exception as exc:
                entry["error"] = str(exc)
            if m.target in sent:
                entry["sent"] = _show(sent[m.target], m.redacted)
        values.append(entry)
    return values

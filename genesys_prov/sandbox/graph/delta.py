"""Delta query (``/users/delta``, ``/groups/delta``): initial rounds paged by object,
incremental rounds read off the change log after a ``$deltatoken``, each object's
changes folded into its net effect."""

from __future__ import annotations

import bisect
import hashlib
from typing import Any

from genesys_prov.sandbox._http import Request
from genesys_prov.sandbox.graph.answers import GraphError, Payload
from genesys_prov.sandbox.graph.changes import NetChange
from genesys_prov.sandbox.graph.delta_links import DELTA_PAGE, DELTA_TOKEN, DeltaLinks, DeltaPage
from genesys_prov.sandbox.graph.properties import (
    GROUP_DEFAULT_SELECT,
    GROUP_LOOKUP,
    GROUP_TYPE,
    INTERNAL,
    USER_DEFAULT_SELECT,
    USER_LOOKUP,
    USER_TYPE,
)
from genesys_prov.sandbox.graph.query import DEFAULT_TOP
from genesys_prov.sandbox.graph.shaping import Shaping

DELTA_MAX_PAGE = 200  # Graph caps a delta page at 200 objects, whatever Prefer asks
_DELTA_OPTIONS = frozenset({"$select", "$deltatoken", "$skiptoken"})
_DELTA_UNSUPPORTED = frozenset(
    {"$expand", "$top", "$orderby", "$filter", "$search", "$count", "$skip", "$format",
     "$apply"}
)
_USER_DELTA_LOOKUP = {**USER_LOOKUP, "manager": "manager"}
_GROUP_DELTA_LOOKUP = {**GROUP_LOOKUP, "members": "members"}
_REMOVED_DELETED = {"reason": "deleted"}
_REMOVED_CHANGED = {"reason": "changed"}


class DeltaQuery(Shaping):
    """The handlers of the delta routes."""

    def _users_delta(self, request: Request) -> dict[str, Any]:
        """``GET /v1.0/users/delta``."""
        return self._delta(request, "user")

    def _groups_delta(self, request: Request) -> dict[str, Any]:
        """``GET /v1.0/groups/delta``."""
        return self._delta(request, "group")

    def _delta(self, request: Request, kind: str) -> dict[str, Any]:
        """One page of a delta round: initial (no token), following a ``$deltatoken``
        (the changes since) or a ``$skiptoken`` (the next page of either)."""
        entity_set = f"{kind}s"
        options = self._delta_options(request, entity_set)
        select_text = options.get("$select")
        lookup, default = (
            (_USER_DELTA_LOOKUP, USER_DEFAULT_SELECT) if kind == "user"
            else (_GROUP_DELTA_LOOKUP, GROUP_DEFAULT_SELECT)
        )
        names = self._select(select_text, lookup, kind, default)
        select_hash = hashlib.sha256(
            ",".join(sorted(n.lower() for n in names)).encode()
        ).hexdigest()[:16]
        size, applied = self._max_page_size(request)
        envelope: dict[str, Any] = {
            "@odata.context": self._context(entity_set, names if select_text else None)
        }
        links = DeltaLinks(
            kind, self._delta_generation, select_hash, f"{self.graph_url}/v1.0/{entity_set}/delta",
            [("$select", select_text)] if select_text is not None else [], options,
        )
        deltatoken = options.get("$deltatoken")
        if deltatoken is not None and "$skiptoken" in options:
            raise GraphError(400, "Request_BadRequest",
                             "$deltatoken and $skiptoken cannot be combined.")
        if deltatoken is not None and deltatoken.lower() == "latest":
            values: list[dict[str, Any]] = []
            next_link: str | None = None
            delta_link: str | None = links.link("$deltatoken", self._seq, self._seq)
        elif deltatoken is not None:
            values, next_link, delta_link = self._delta_follow(links, names, size)
        elif "$skiptoken" in options:
            values, next_link, delta_link = self._delta_skip(links, names, size)
        else:
            values, next_link, delta_link = self._delta_initial_page(
                links, names, self._seq, -1, size
            )
        envelope["value"] = values
        if next_link is not None:
            envelope["@odata.nextLink"] = next_link
        if delta_link is not None:
            envelope["@odata.deltaLink"] = delta_link
        return Payload(envelope, applied)

    @staticmethod
    def _delta_options(request: Request, entity_set: str) -> dict[str, str]:
        """The ``$`` query options of a delta request (lower-cased names), else 400."""
        options: dict[str, str] = {}
        for name, given in request.query.items():
            lowered = name.lower()
            if not lowered.startswith("$"):
                continue
            if lowered in _DELTA_UNSUPPORTED:
                raise GraphError(400, "Request_UnsupportedQuery",
                                 f"The query option '{name}' is not supported with delta "
                                 f"query on {entity_set}.")
            if lowered not in _DELTA_OPTIONS:
                raise GraphError(400, "BadRequest",
                                 f"Query option '{name}' is not allowed. Make sure that the "
                                 "query option is valid and is allowed for this resource.")
            options[lowered] = given[0]
        return options

    def _delta_follow(self, links: DeltaLinks, names: list[str], size: int) -> DeltaPage:
        """The first page of an incremental round: the changes since the ``$deltatoken``."""
        floor = self._floor[links.kind]
        seq, previous = links.numbers(links.decode("$deltatoken", DELTA_TOKEN), 2)
        if not 0 <= previous <= seq <= self._seq:
            raise links.gone("malformed or unknown")
        if seq < floor:
            raise links.gone("expired")
        after = seq
        if self._replay_pending:
            self._replay_pending = False
            after = max(previous, floor)
        return self._delta_changes_page(links, names, after, self._seq, seq, size)

    def _delta_skip(self, links: DeltaLinks, names: list[str], size: int) -> DeltaPage:
        """The page a ``$skiptoken`` points at: of an initial (``i``) or incremental (``c``)
        round."""
        fields = links.decode("$skiptoken", DELTA_PAGE)
        mode, rest = fields[0], fields[1:]
        if mode == "i":
            start, after_ordinal = links.numbers(rest, 2)
            if not 0 <= start <= self._seq:
                raise links.gone("malformed or unknown")
            return self._delta_initial_page(links, names, start, after_ordinal, size)
        if mode == "c":
            after, to, base = links.numbers(rest, 3)
            if not (0 <= after <= to <= self._seq and 0 <= base <= to):
                raise links.gone("malformed or unknown")
            if after < self._floor[links.kind]:
                raise links.gone("expired")
            return self._delta_changes_page(links, names, after, to, base, size)
        raise links.gone("malformed or unknown")

    def _delta_initial_page(self, links: DeltaLinks, names: list[str], start: int,
                            after_ordinal: int, size: int) -> DeltaPage:
        """A page of an initial round begun at sequence number ``start``."""
        values, last, more = self._delta_initial(links.kind, names, after_ordinal, size)
        return links.page(values, more, ("i", start, last), (start, start))

    def _delta_changes_page(self, links: DeltaLinks, names: list[str], after: int, to: int,
                            base: int, size: int) -> DeltaPage:
        """A page of the changes after ``after`` up to ``to`` of a round that followed the
        deltaLink of sequence number ``base``."""
        values, last, more = self._delta_changes(links.kind, names, after, to, size)
        return links.page(values, more, ("c", last, to, base), (to, base))

    @staticmethod
    def _max_page_size(request: Request) -> tuple[int, dict[str, str]]:
        """The page size a ``Prefer: odata.maxpagesize=N`` header asks for, capped at 200
        as Graph caps delta pages, else the default, and the ``Preference-Applied`` header
        to answer with."""
        for preference in (request.header("Prefer") or "").split(","):
            name, _, value = preference.strip().partition("=")
            if name.strip().lower() != "odata.maxpagesize":
                continue
            try:
                size = int(value.strip().strip('"'))
            except ValueError:
                continue
            if size >= 1:
                size = min(size, DELTA_MAX_PAGE)
                return size, {"Preference-Applied": f"odata.maxpagesize={size}"}
        return DEFAULT_TOP, {}

    def _delta_initial(self, kind: str, names: list[str], after_ordinal: int, size: int) -> (
        tuple[list[dict[str, Any]], int, bool]
    ):
        """A page of every current object after ``after_ordinal`` (keyset paging, so
        objects added or removed meanwhile do not shift the pages): (values, the last
        ordinal delivered, whether more follow)."""
        items = self.users if kind == "user" else self.groups
        ordinals = self._ordinals[kind]

        def ordinal(obj: dict[str, Any]) -> int:
            return ordinals.get(obj["id"].lower(), -1)

        index = bisect.bisect_right(items, after_ordinal, key=ordinal)
        page = items[index : index + size]
        values = [self._delta_full(kind, obj, names) for obj in page]
        last = ordinal(page[-1]) if page else after_ordinal
        return values, last, index + size < len(items)

    def _delta_changes(self, kind: str, names: list[str], after: int, to: int, size: int) -> (
        tuple[list[dict[str, Any]], int, bool]
    ):
        """A page of the changes in (``after``, ``to``]: the log entries from ``after`` on
        for at most ``size`` objects, each folded into its net effect. Returns (values,
        the last sequence number consumed, whether more follow). Entries that change
        nothing selected are skipped, so they neither fill pages nor show up."""
        log = self._changes[kind]
        selected = frozenset(names)
        index = bisect.bisect_right(log, after, key=lambda change: change.seq)
        nets: dict[str, NetChange] = {}
        last = after
        more = False
        while index < len(log) and log[index].seq <= to:
            change = log[index]
            if (change.op == "update" and selected.isdisjoint(change.props)) or (
                change.op in ("member+", "member-") and "members" not in selected
            ):
                last = change.seq
                index += 1
                continue
            key = change.object_id.lower()
            net = nets.get(key)
            if net is None:
                if len(nets) >= size:
                    more = True
                    break
                net = nets[key] = NetChange(change.object_id)
            net.apply(change)
            last = change.seq
            index += 1
        values = []
        for key, net in nets.items():
            rendered = self._delta_net(kind, key, net, names)
            if rendered is not None:
                values.append(rendered)
        return values, last, more

    def _delta_net(self, kind: str, key: str, net: NetChange, names: list[str]) -> (
        dict[str, Any] | None
    ):
        """An object's net change as delta reports it (None: nothing selected changed)."""
        if net.state == "hard":
            return {"id": net.object_id, "@removed": dict(_REMOVED_DELETED)}
        if net.state == "soft":
            return {"id": net.object_id, "@removed": dict(_REMOVED_CHANGED)}
        if kind == "user":
            obj = self._user_by_id.get(key) or self.deleted_users.get(key)
        else:
            obj = self._group_by_id.get(key)
        if obj is None:  # gone since the window's end; a later round reports that
            return None
        if net.full:
            return self._delta_full(kind, obj, names)
        changed = [n for n in names if n in net.props and n not in INTERNAL]
        data: dict[str, Any] = {"id": obj["id"]}
        if changed:
            shaped = (self._user_json(obj, changed) if kind == "user"
                      else self._group_json(obj, changed))
            data.update(shaped)
        if "manager" in names and net.manager_touched:
            manager = obj.get("manager")
            if manager and self._exists(manager):
                data["manager@delta"] = [{"@odata.type": USER_TYPE, "id": manager}]
            elif manager or net.old_manager:  # cleared, or in the recycle bin
                data["manager@delta"] = [{"@odata.type": USER_TYPE,
                                          "id": manager or net.old_manager,
                                          "@removed": dict(_REMOVED_DELETED)}]
        if "members" in names and net.members:
            data["members@delta"] = [
                {"@odata.type": member_type, "id": member_id,
                 **({} if added else {"@removed": dict(_REMOVED_DELETED)})}
                for member_id, member_type, added in net.members.values()
            ]
        return data if len(data) > 1 else None

    def _delta_full(self, kind: str, obj: dict[str, Any], names: list[str]) -> dict[str, Any]:
        """An object in full (as the initial round and a creation report it)."""
        if kind == "user":
            data = self._user_json(obj, names)
            manager = obj.get("manager")
            if "manager" in names and manager and self._exists(manager):
                data["manager@delta"] = [{"@odata.type": USER_TYPE, "id": manager}]
            return data
        data = self._group_json(obj, names)
        if "members" in names:
            members = []
            for member_id in obj.get("members", []):
                lowered = member_id.lower()
                if lowered in self._user_by_id:
                    members.append({"@odata.type": USER_TYPE, "id": member_id})
                elif lowered in self._group_by_id:
                    members.append({"@odata.type": GROUP_TYPE, "id": member_id})
            data["members@delta"] = members
        return data

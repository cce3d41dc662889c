"""``genesys-prov sandbox --directory FILE``: serve your own directory JSON (the shape of
``examples/demo-directory.json``) and watch the file while the sandbox runs: each time it
is saved, the differences are applied to the Graph emulator as directory changes (what
Graph's delta query then reports), so an incremental run can be tried by editing a user.

Users are added, changed (any property, ``manager`` included), soft-deleted when they
leave the file and restored when they come back; groups' properties and direct members
change. New or removed groups and changed app role assignments are reported as not applied
(restart the sandbox for those).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genesys_prov.errors import ConfigError
from genesys_prov.sandbox.graph import GraphEmulator

#: Seconds between two looks at the file.
POLL_SECONDS = 0.5


def load_directory_file(path: Path) -> dict[str, Any]:
    """A directory JSON file, checked for the shape the sandbox serves: an object with a
    ``users`` list of objects that each have an ``id`` and a ``userPrincipalName`` (and
    optionally ``groups``, ``app_role_assignments``, ``service_principal``, ``genesys``).
    Anything else is a one-line ConfigError (exit 2)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--directory {path}: cannot read it ({exc.strerror})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--directory {path}: not valid JSON ({_one_line(exc)})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("users"), list):
        raise ConfigError(f"--directory {path}: expected an object with a \"users\" list "
                          "(the shape of examples/demo-directory.json)")
    for kind, needed in (("users", ("id", "userPrincipalName")), ("groups", ("id",))):
        items = data.get(kind, [])
        if not isinstance(items, list):
            raise ConfigError(f"--directory {path}: \"{kind}\" must be a list")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or any(not item.get(k) for k in needed):
                raise ConfigError(f"--directory {path}: {kind}[{i}] needs "
                                  + " and ".join(f'"{k}"' for k in needed))
    return data


def _one_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def apply_directory(graph: GraphEmulator, directory: dict[str, Any]) -> list[str]:
    """Make the Graph emulator hold ``directory``'s users and groups, recording each
    difference as a directory change (delta query reports it); returns one line per change
    (and per difference it does not apply)."""
    said = _apply_users(graph, directory.get("users", []))
    said += _apply_groups(graph, directory.get("groups", []))
    if directory.get("app_role_assignments", graph.app_role_assignments) != \
            graph.app_role_assignments:
        said.append("app role assignments changed: not applied (restart the sandbox)")
    return said


def _apply_users(graph: GraphEmulator, users: list[dict[str, Any]]) -> list[str]:
    said: list[str] = []
    current = {u["id"].lower(): u for u in graph.users}
    wanted = {u["id"].lower(): u for u in users}
    for key, user in wanted.items():
        upn = user["userPrincipalName"]
        if key in current:
            changed = {k: v for k, v in user.items()
                       if k != "id" and current[key].get(k) != v}
            if changed:
                graph.set_user(current[key]["id"], **changed)
                said.append(f"changed {upn}: {', '.join(sorted(changed))}")
        elif key in graph.deleted_users:
            graph.restore_user(key)
            graph.set_user(user["id"], **{k: v for k, v in user.items() if k != "id"})
            said.append(f"restored {upn}")
        else:
            graph.add_user(dict(user))
            said.append(f"added {upn}")
    for key, user in current.items():
        if key not in wanted:
            graph.soft_delete_user(user["id"])
            said.append(f"deleted {user['userPrincipalName']} (soft: restorable)")
    return said


def _apply_groups(graph: GraphEmulator, groups: list[dict[str, Any]]) -> list[str]:
    said: list[str] = []
    current = {g["id"].lower(): g for g in graph.groups}
    wanted = {g["id"].lower(): g for g in groups}
    for key, group in wanted.items():
        name = group.get("displayName") or group["id"]
        if key not in current:
            said.append(f"group {name}: new groups are not applied (restart the sandbox)")
            continue
        changed = {k: v for k, v in group.items()
                   if k != "id" and current[key].get(k) != v}
        if changed:
            graph.set_group(current[key]["id"], **changed)
            said.append(f"changed group {name}: {', '.join(sorted(changed))}")
    for key, group in current.items():
        if key not in wanted:
            said.append(f"group {group.get('displayName')}: removing groups is not applied "
                        "(restart the sandbox)")
    return said


class DirectoryWatcher:
    """Watches a directory JSON file in a daemon thread and applies each saved version to
    the Graph emulator (:func:`apply_directory`); ``report`` gets one line per change, or
    the reason a saved version was not applied (the last good one stays served)."""

    def __init__(self, path: Path, graph: GraphEmulator,
                 report: Callable[[str], None], poll: float = POLL_SECONDS) -> None:
        """Remember what to watch; nothing happens until :meth:`start`."""
        self.path = path
        self.graph = graph
        self.report = report
        self.poll = poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="directory-watcher",
                                        daemon=True)
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def start(self) -> DirectoryWatcher:
        """Start watching; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (waits for the thread)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def check(self) -> None:
        """Apply the file if it changed since the last look."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return
        self._seen = stamp
        try:
            lines = apply_directory(self.graph, load_directory_file(self.path))
        except ConfigError as exc:
            self.report(f"{exc}; not applied (the last good version is still served)")
            return
        for line in lines or ["saved, no change"]:
            self.report(f"{self.path.name}: {line}")

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self.check()

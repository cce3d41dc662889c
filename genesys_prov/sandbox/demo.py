"""The sandbox's configuration writer, and the demo's story: a real sync against the
emulators — dry run, sync, sync again, one change — told as scenes the command line
renders."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genesys_prov.config import load_config
from genesys_prov.mapping.mappings_file import default_mappings_text
from genesys_prov.sandbox import Sandbox
from genesys_prov.sync.result import SyncResult
from genesys_prov.sync.run import run_sync


def write_sandbox_config(sandbox: Any, directory: Path) -> Path:
    """Write ``genesys-prov.yaml`` (pointing at a running sandbox) and ``mappings.yaml``
    into ``directory``; the configuration is written aside then renamed, so whoever waits
    for it never reads half of it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mappings.yaml").write_text(default_mappings_text(), encoding="utf-8")
    path = directory / "genesys-prov.yaml"
    text = yaml.safe_dump(sandbox.config(mappings="mappings.yaml"), sort_keys=False)
    partial = path.with_suffix(".yaml.partial")
    partial.write_text("# Points at a genesys-prov sandbox; valid while it runs.\n" + text,
                       encoding="utf-8")
    partial.replace(path)
    return path


@dataclass
class Scene:
    """One step of the demo: a title, the run's result (if any), how to show it
    (``digest``: the counts and a few example rows; ``summary``: one line; ``changes``: the
    changes table; ``none``), and lines to say after it."""

    title: str
    result: SyncResult | None = None
    show: str = "digest"
    notes: list[str] = field(default_factory=list)

    def data(self) -> dict[str, Any]:
        """JSON-ready form: the whole result (as ``sync --output json`` prints it)."""
        return {"title": self.title, "result": self.result.data() if self.result else None,
                "notes": [note.strip() for note in self.notes]}


JSON_POINTER = ("Every change, with old → new: genesys-prov demo --output json "
                "(each step's whole plan and result, as `sync --output json` prints them).")


def demo_story() -> Iterator[Scene]:
    """Run the demo against an in-process sandbox, one scene at a time."""
    with tempfile.TemporaryDirectory(prefix="genesys-prov-demo-") as tmp, \
            Sandbox(workdir=Path(tmp)) as sb:
        config = load_config(write_sandbox_config(sb, Path(tmp)))
        yield Scene("genesys-prov demo", show="none", notes=[
            f"Directory: {len(sb.graph.users)} users in the Graph emulator; Genesys emulator "
            f"holds {len(sb.genesys.users)} users."])
        result = run_sync(config, dry_run=True)
        yield Scene("1. sync --dry-run", result, notes=[
            f"Genesys emulator received {len(sb.genesys.writes())} write(s).", JSON_POINTER])
        result = run_sync(config)
        yield Scene("2. sync", result, "summary", [
            f"Genesys emulator now holds {len(sb.genesys.users)} users."])
        sb.genesys.reset_log()
        result = run_sync(config)
        yield Scene("3. sync again", result, "summary", [
            f"Genesys emulator received {len(sb.genesys.writes())} write(s)."])
        provisioned = {u["userName"].lower() for u in sb.genesys.users.values() if u["active"]}
        user = next(u for u in sb.graph.users
                    if u["userPrincipalName"].lower() in provisioned and u.get("jobTitle"))
        sb.graph.set_user(user["id"], jobTitle="Head of Customer Happiness")
        sb.genesys.reset_log()
        result = run_sync(config)
        yield Scene(f"4. {user['userPrincipalName']} gets a new job title in the directory",
                    result, "changes",
                    [f"Genesys emulator received: {w.method} {w.path} "
                     f"{json.dumps(w.body.get('Operations'))}" for w in sb.genesys.writes()])

"""The benchmark behind ``make bench``: against N synthetic users in the sandbox, with the
rate limit off — a first full sync, a no-change incremental run, a no-change full re-sync,
an incremental run after one user's job title changed in the directory, and one after a
new hire joined an assigned group.

The sandbox runs in a child process (driven through a pipe, so the bench can change a
user), and each sync in its own process, so each peak memory figure is the sync's own.
Run: ``python -m genesys_prov.sandbox.bench --users 10000``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from genesys_prov.config import load_config
from genesys_prov.sync.result import SyncResult
from genesys_prov.sync.run import run_sync


def _serve(users: int, directory: Path, commands: Connection) -> None:
    """The sandbox child: serve N users until told to stop (it first answers ``ready`` with
    the seconds the synthetic directory took to generate); ``retitle`` changes the job
    title of one provisioned user in the directory, ``join`` adds a new hire to the
    directory and to an assigned group; each answers with the user's id."""
    from genesys_prov.sandbox import Sandbox, generate_directory
    from genesys_prov.sandbox.demo import write_sandbox_config

    started = time.monotonic()
    generated = generate_directory(users)
    generation_seconds = time.monotonic() - started
    with Sandbox(directory=generated, workdir=directory) as sb:
        del generated
        sb.graph.record_requests = False
        sb.genesys.record_requests = False
        write_sandbox_config(sb, directory)
        commands.send(("ready", generation_seconds))
        while (message := commands.recv()) != "stop":
            if message == "retitle":
                held = {u["userName"].lower() for u in sb.genesys.users.values()
                        if u.get("active")}
                user = next(u for u in sb.graph.users
                            if u["userPrincipalName"].lower() in held)
                sb.graph.set_user(user["id"], jobTitle="Benchmark Title")
                commands.send(user["id"])
            elif message == "join":  # a new hire is added to an assigned group
                user = {"id": "0b5e4c1a-0000-4000-8000-00000000b001",
                        "userPrincipalName": "new.hire@bench.example",
                        "displayName": "New Hire", "accountEnabled": True,
                        "jobTitle": "Agent", "manager": sb.graph.users[0]["id"]}
                sb.graph.add_user(user)
                group = next(a["principalId"] for a in sb.graph.app_role_assignments
                             if a["principalType"] == "Group")
                sb.graph.add_group_member(group, user["id"])
                commands.send(user["id"])


def _start_sandbox(users: int, directory: Path) -> tuple[BaseProcess, Connection, Path, float]:
    """Start the sandbox child; returns it, its pipe, the config path and the seconds the
    directory took to generate."""
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(users, directory, child), daemon=True)
    proc.start()
    message = parent.recv() if parent.poll(600) else None
    if not (isinstance(message, tuple) and message[0] == "ready"):
        proc.kill()
        raise SystemExit("sandbox did not start within 600 s")
    return proc, parent, directory / "genesys-prov.yaml", float(message[1])


def _row(label: str, result: SyncResult, seconds: float, users: int) -> dict[str, Any]:
    counts = result.plan.counts()
    failed = result.applied.counts()["failure"] if result.applied else 0
    return {
        "run": label, "seconds": round(seconds, 2),
        "users_per_second": round(users / seconds, 1) if seconds else None,
        "graph_requests": result.requests.get("graph", {}),
        "target_requests": result.requests.get("target", {}),
        "changes": {k: v for k, v in counts.items() if v},
        "failed": failed + counts["failed"],
        "timings": {k: round(v, 2) for k, v in result.timings.items()},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run_one(config_path: str, label: str, users: int, full: bool = False) -> None:
    """One sync in this process; prints its figures as one JSON line (own peak memory)."""
    config = load_config(config_path)
    started = time.monotonic()
    result = run_sync(config, full=full)
    print(json.dumps(_row(label, result, time.monotonic() - started, users)))


def _fmt(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items()))


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--one", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="sync", help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one, args.label, args.users, args.full)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="genesys-prov-bench-") as tmp:
        started = time.monotonic()
        proc, commands, config_path, generation = _start_sandbox(args.users, Path(tmp))
        print(f"sandbox with {args.users} users ready in {time.monotonic() - started:.1f}s "
              f"(directory generated in {generation:.2f}s)", flush=True)
        try:
            text = config_path.read_text(encoding="utf-8")
            text = text.replace("concurrency: 4", f"concurrency: {args.concurrency}")
            config_path.write_text(text, encoding="utf-8")
            runs: tuple[tuple[str, list[str], str], ...] = (
                ("first full sync", [], ""), ("no-change incremental run", [], ""),
                ("no-change full re-sync (--full)", ["--full"], ""),
                ("one changed user, incremental", [], "retitle"),
                ("a new hire joins an assigned group, incremental", [], "join"))
            for label, extra, change in runs:
                if change:
                    commands.send(change)
                    commands.recv()
                # each run in its own process, so each peak memory figure is its own
                out = subprocess.run(
                    [sys.executable, "-m", "genesys_prov.sandbox.bench", "--one", str(config_path),
                     "--label", label, "--users", str(args.users), *extra],
                    check=True, capture_output=True, text=True)
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        finally:
            commands.send("stop")
            proc.join(timeout=30)
    print(f"\nconcurrency {args.concurrency}, rate limit off, sandbox in its own process; "
          f"synthetic directory of {args.users} users generated in {generation:.2f}s\n")
    print("| run | users | seconds | users/s | Graph requests | target requests | changes | "
          "failed | peak RSS |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        changes = ", ".join(f"{k} {v}" for k, v in r["changes"].items())
        print(f"| {r['run']} | {args.users} | {r['seconds']} | {r['users_per_second']} | "
              f"{_fmt(r['graph_requests'])} | {_fmt(r['target_requests'])} | {changes} | "
              f"{r['failed']} | {r['peak_rss_mib']} MiB |")
    for r in rows:
        print(f"{r['run']}: phases (s) {r['timings']}")
    for r in rows:
        total = sum(r["target_requests"].values())
        print(f"{r['run']}: {total} target requests = at least {total / 300:.1f} min at "
              "Genesys' 300 requests/minute")


if __name__ == "__main__":
    main()

"""The benchmark behind ``make bench``: against N synthetic users in the sandbox, with the
rate limit off — a dry run against the empty target, a first full sync (compared with a
bare client that only POSTs the same users, see :mod:`~genesys_prov.sandbox.raw`), a
no-change incremental run, a no-change full re-sync, an incremental run after one user's
job title changed in the directory, and one after a new hire joined an assigned group.

The sandbox runs in a child process (driven through a pipe, so the bench can change a user
or empty the Genesys org), and each run in its own process, so each figure of CPU time and
peak memory is the run's own (the child's rusage). For each concurrency asked for, the org
is emptied, the bare client loads the users, the org is emptied again and the tool's first
full sync loads them: the same users, the same server, the same number of workers.

Run: ``python -m genesys_prov.sandbox.bench --users 10000 [--concurrency 4,8,16]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import yaml

from genesys_prov.config import load_config
from genesys_prov.sync.result import SyncResult
from genesys_prov.sync.run import run_sync

#: Genesys' common rate limit, for the floor: the least time the target requests take.
FLOOR_PER_MINUTE = 300
FIRST_SYNC = "first full sync"
DRY_RUN = "dry run (empty target)"
#: The runs after the first full sync: label, extra sync options, what changes before it.
LATER_RUNS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("no-change incremental run", (), ""),
    ("no-change full re-sync (--full)", ("--full",), ""),
    ("one changed user, incremental", (), "retitle"),
    ("a new hire joins an assigned group, incremental", (), "join"),
)


def _serve(users: int, directory: Path, commands: Connection) -> None:
    """The sandbox child: serve N users until told to stop (it first answers ``ready`` with
    the seconds the synthetic directory took to generate); ``retitle`` changes the job
    title of one provisioned user in the directory, ``join`` adds a new hire to the
    directory and to an assigned group (each answers with the user's id); ``reset`` empties
    the Genesys org (seeded as at the start) at the same address; ``cpu`` answers the CPU
    seconds the sandbox process used so far."""
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
            if message == "reset":
                sb.reset_genesys()
                commands.send("reset")
            elif message == "cpu":  # the emulators' CPU seconds so far
                commands.send(time.process_time())
            elif message == "retitle":
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
    import multiprocessing

    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(users, directory, child), daemon=True)
    proc.start()
    message = parent.recv() if parent.poll(600) else None
    if not (isinstance(message, tuple) and message[0] == "ready"):
        proc.kill()
        raise SystemExit("sandbox did not start within 600 s")
    return proc, parent, directory / "genesys-prov.yaml", float(message[1])


def _row(label: str, result: SyncResult, seconds: float, concurrency: int) -> dict[str, Any]:
    """One run's figures (the parent adds its process CPU time and peak memory)."""
    counts = result.plan.counts()
    failed = result.applied.counts()["failure"] if result.applied else 0
    return {
        "run": label, "concurrency": concurrency, "seconds": round(seconds, 2),
        "graph_requests": result.requests.get("graph", {}),
        "target_requests": result.requests.get("target", {}),
        "changes": {k: v for k, v in counts.items() if v},
        "failed": failed + counts["failed"],
        "timings": {k: round(v, 2) for k, v in result.timings.items()},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run_one(config_path: str, label: str, full: bool = False, dry_run: bool = False) -> None:
    """One sync in this process; prints its figures as one JSON line, with the CPU seconds
    of this process from the end of planning to the end of the run (the apply phase and
    what the run keeps after it)."""
    config = load_config(config_path)
    planned: list[float] = []

    def progress(stage: str, done: int) -> None:
        if stage == "plan" and not planned:
            planned.append(time.process_time())

    started = time.monotonic()
    result = run_sync(config, full=full, dry_run=dry_run, progress=progress)
    row = _row(label, result, time.monotonic() - started, config.target.concurrency)
    if planned and result.applied is not None:
        row["apply_cpu_seconds"] = round(time.process_time() - planned[0], 2)
    print(json.dumps(row))


def run_child(module_args: Sequence[str]) -> dict[str, Any]:
    """Run ``python -m <module_args>`` in its own process and return the JSON of its last
    line of output, with the process's own CPU seconds (user + system) and peak memory
    from its rusage."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen([sys.executable, "-m", *module_args], stdout=subprocess.PIPE,
                                stderr=errors, text=True)
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            errors.seek(0)
            raise SystemExit(f"{' '.join(module_args[:1])} failed (exit {proc.returncode}):\n"
                             + errors.read().decode("utf-8", "replace")[-4000:])
    row: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    row["process_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
    row["process_peak_rss_mib"] = round(usage.ru_maxrss / 1024)
    return row


@dataclass
class Bench:
    """The parent's side of one benchmark: the sandbox's pipe, its base configuration and
    the directory each run's configuration (and state) is written into."""

    users: int
    directory: Path
    commands: Connection
    base_config: dict[str, Any]

    def tell(self, message: str) -> Any:
        """Send the sandbox child a command and wait for its answer."""
        self.commands.send(message)
        return self.commands.recv()

    def config(self, name: str, concurrency: int) -> str:
        """A configuration of its own (own state directory) at ``concurrency``."""
        where = self.directory / name
        where.mkdir(exist_ok=True)
        data = json.loads(json.dumps(self.base_config))
        data["target"]["concurrency"] = concurrency
        data["mappings"] = str(self.directory / "mappings.yaml")
        path = where / "genesys-prov.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return str(path)

    def sync(self, config: str, label: str, *extra: str) -> dict[str, Any]:
        """One sync in its own process."""
        return run_child(["genesys_prov.sandbox.bench", "--one", config, "--label", label,
                          *extra])

    def compare(self, concurrency: int) -> list[dict[str, Any]]:
        """The bare client, then the tool's first full sync, each into an emptied org at
        ``concurrency``; the tool's row carries the bare client's seconds."""
        self.tell("reset")
        server = self.tell("cpu")
        raw = run_child(["genesys_prov.sandbox.raw", "--config",
                         self.config(f"raw-{concurrency}", concurrency),
                         "--concurrency", str(concurrency)])
        raw_row = {"run": "bare client (POSTs only)", "concurrency": concurrency,
                   "seconds": round(raw["seconds"], 2), "process_cpu_seconds": raw["cpu_seconds"],
                   "graph_requests": {}, "target_requests": {"POST": raw["posts"], "token": 1},
                   "changes": {"create": raw["posts"] - raw["failed"]},
                   "failed": raw["failed"], "timings": {}, "process_peak_rss_mib": None,
                   "server_cpu_seconds": round(self.tell("cpu") - server, 2)}
        self.tell("reset")
        server = self.tell("cpu")
        tool = self.sync(self.config(f"sync-{concurrency}", concurrency), FIRST_SYNC)
        tool["server_cpu_seconds"] = round(self.tell("cpu") - server, 2)
        tool["raw_seconds"], tool["raw_cpu_seconds"] = raw["seconds"], raw["cpu_seconds"]
        tool["raw_server_cpu_seconds"] = raw_row["server_cpu_seconds"]
        return [raw_row, tool]


def _fmt(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "—"


def _floor_minutes(row: dict[str, Any]) -> float:
    """The target requests at Genesys' 300 requests a minute, in minutes."""
    return float(sum(row["target_requests"].values())) / FLOOR_PER_MINUTE


def _versus_raw(row: dict[str, Any]) -> str:
    """apply seconds ÷ the bare client's seconds (how many times longer the tool took)."""
    raw, apply = row.get("raw_seconds"), row["timings"].get("apply")
    return f"{apply / raw:.2f}×" if raw and apply else ""


TABLE_HEAD = ("| run | concurrency | seconds | CPU s | peak RSS | Graph requests | "
              "target requests | floor (min) | changes | failed | apply ÷ raw |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|")


def table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The markdown table of the runs (one line per run), then the comparisons with the
    bare client and each run's phases."""
    lines = [TABLE_HEAD]
    for r in rows:
        rss = r.get("process_peak_rss_mib")
        changes = ", ".join(f"{k} {v}" for k, v in r["changes"].items()) or "none"
        lines.append(
            f"| {r['run']} | {r['concurrency']} | {r['seconds']} | "
            f"{r['process_cpu_seconds']} | {f'{rss} MiB' if rss is not None else '—'} | "
            f"{_fmt(r['graph_requests'])} | {_fmt(r['target_requests'])} | "
            f"{_floor_minutes(r):.1f} | {changes} | {r['failed']} | {_versus_raw(r)} |")
    lines.append("")
    lines += [_comparison(r) for r in rows if r.get("raw_seconds") and r["timings"].get("apply")]
    lines += [f"{r['run']} (concurrency {r['concurrency']}): phases (s) {r['timings']}"
              for r in rows if r["timings"]]
    return lines


def _comparison(row: dict[str, Any]) -> str:
    """The first full sync against the bare client: wall time, and CPU time (the client's
    and the sandbox's), which the load of a shared machine disturbs less."""
    raw, apply = row["raw_seconds"], row["timings"]["apply"]
    text = (f"concurrency {row['concurrency']}: bare client {raw:.2f}s, the tool's apply phase "
            f"{apply:.2f}s = {apply / raw:.2f}× (throughput {raw / apply:.2f} of the bare "
            f"client's); the whole first sync {row['seconds']:.2f}s = {row['seconds'] / raw:.2f}×")
    if row.get("apply_cpu_seconds") is not None and row.get("raw_cpu_seconds"):
        text += (f"; client CPU: the tool's apply {row['apply_cpu_seconds']:.2f}s, the bare "
                 f"client's {row['raw_cpu_seconds']:.2f}s = "
                 f"{row['apply_cpu_seconds'] / row['raw_cpu_seconds']:.2f}×")
    if row.get("server_cpu_seconds") is not None:
        text += (f"; sandbox CPU (each with one directory read): {row['server_cpu_seconds']:.2f}s"
                 f" for the tool, {row['raw_server_cpu_seconds']:.2f}s for the bare client")
    return text


def rate_limited(users: int, per_minute: int) -> list[str]:
    """The rate-limited run of :mod:`genesys_prov.sandbox.ratecheck` (when it is there)."""
    try:
        ratecheck = importlib.import_module("genesys_prov.sandbox.ratecheck")
    except ModuleNotFoundError as exc:
        if exc.name != "genesys_prov.sandbox.ratecheck":
            raise
        return ["rate-limited run: genesys_prov.sandbox.ratecheck is missing (not merged "
                "yet); skipped"]
    out = ratecheck.rate_limited_run(users, per_minute)
    return [f"rate-limited run ({users} users, {per_minute} requests/minute): "
            + ", ".join(f"{k} {v}" for k, v in out.items())]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--concurrency", default="4",
                        help="workers; several (e.g. 4,8,16) compare the first full sync "
                             "with the bare client at each (later runs use the last)")
    parser.add_argument("--dry-run-only", action="store_true",
                        help="only the dry run against the empty target (CPU, memory)")
    parser.add_argument("--compare-only", action="store_true",
                        help="only the dry run and the first full syncs with the bare client")
    parser.add_argument("--rate-limited", type=int, nargs="?", const=FLOOR_PER_MINUTE,
                        metavar="PER_MINUTE",
                        help="also a rate-limited run (genesys_prov.sandbox.ratecheck)")
    parser.add_argument("--rate-limited-users", type=int, default=500)
    parser.add_argument("--one", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--label", default="sync", help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dry-run", action="store_true", help=argparse.SUPPRESS)
    return parser


def run_bench(users: int, concurrencies: Sequence[int], dry_run_only: bool = False,
              compare_only: bool = False) -> tuple[list[dict[str, Any]], float]:
    """Start the sandbox and run the benchmark's runs; returns their rows and the seconds
    the synthetic directory took to generate."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="genesys-prov-bench-") as tmp:
        started = time.monotonic()
        proc, commands, config_path, generation = _start_sandbox(users, Path(tmp))
        print(f"sandbox with {users} users ready in {time.monotonic() - started:.1f}s "
              f"(directory generated in {generation:.2f}s)", flush=True)
        try:
            bench = Bench(users, Path(tmp), commands,
                          yaml.safe_load(config_path.read_text(encoding="utf-8")))
            rows.append(bench.sync(bench.config("dry", concurrencies[-1]), DRY_RUN,
                                   "--dry-run"))
            for concurrency in [] if dry_run_only else concurrencies:
                rows += bench.compare(concurrency)
                print(f"concurrency {concurrency} done", flush=True)
            last = bench.config(f"sync-{concurrencies[-1]}", concurrencies[-1])
            for label, extra, change in () if dry_run_only or compare_only else LATER_RUNS:
                if change:
                    bench.tell(change)
                rows.append(bench.sync(last, label, *extra))
        finally:
            commands.send("stop")
            proc.join(timeout=30)
    return rows, generation


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures (markdown)."""
    args = _parser().parse_args(argv)
    if args.one:
        run_one(args.one, args.label, args.full, args.dry_run)
        return
    concurrencies = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    rows, generation = run_bench(args.users, concurrencies, args.dry_run_only,
                                 args.compare_only)
    print(f"\n{args.users} users, rate limit off, sandbox in its own process, each run in "
          f"its own; synthetic directory generated in {generation:.2f}s; CPU s: the run "
          f"process's user + system time (the bare client's: its POSTs only); floor: the "
          f"target requests at {FLOOR_PER_MINUTE} requests/minute\n")
    print("\n".join(table(rows)))
    if args.rate_limited:
        print("\n".join(rate_limited(args.rate_limited_users, args.rate_limited)))


if __name__ == "__main__":
    main()

"""The planning benchmark (issue 12): ``sync --dry-run --plan-out`` against N synthetic users
and an empty target (a first run: a full read), the sync in its own process, reporting that
process's CPU time (user + system), its peak RSS and the plan's checksum (the same
directory gives the same checksum: the plan must not change when planning gets faster).

Run: ``python -m genesys_prov.sandbox.planbench --users 100000`` (``--runs 3`` repeats the
dry run against the same sandbox, ``--profile out.prof`` runs the sync under cProfile;
``--serve DIR`` only serves, writing its configuration into DIR, until interrupted, and
``--config DIR/genesys-prov.yaml`` only runs dry runs against such a sandbox).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from genesys_prov.sandbox.bench import _start_sandbox


def dry_run(config: Path, plan_out: bool, profile: str | None = None) -> dict[str, Any]:
    """One ``sync --dry-run`` (``--plan-out`` too when ``plan_out``) in a child process: its
    CPU seconds, peak RSS (MiB), wall seconds, exit status and the plan's checksum."""
    plan = config.parent / "planbench-plan.json"
    plan.unlink(missing_ok=True)
    command = [sys.executable]
    if profile:
        command += ["-m", "cProfile", "-o", profile]
    command += ["-m", "genesys_prov", "--config", str(config), "sync", "--dry-run", "-q"]
    if plan_out:
        command += ["--plan-out", str(plan)]
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # the child's own rusage
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        output, errors = out.read().decode(), err.read().decode()
    return {"plan_out": plan_out, "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024),
            "wall_seconds": round(time.monotonic() - started, 2), "exit": child.returncode,
            "summary": output.strip().splitlines()[-1:], "stderr": errors[-2000:],
            "checksum": _checksum(plan) if plan.exists() else None}


def _checksum(plan: Path) -> str | None:
    """The checksum a plan file records (read from its head: loading the whole file would
    grow this process, and the peak RSS of the next child forked from it)."""
    with plan.open(encoding="utf-8") as text:
        match = re.search(r'"checksum": "([0-9a-f]{64})"', text.read(4096))
    return match.group(1) if match else None


def _runs(config: Path, args: argparse.Namespace) -> None:
    """The dry runs asked for, one JSON line each: without ``--plan-out`` (the planning
    figure), then with it (the checksum), unless ``--only`` picks one."""
    modes = {"plan": (False,), "plan-out": (True,)}.get(args.only, (False, True))
    for _ in range(args.runs):
        for plan_out in modes:
            print(json.dumps({"users": args.users, **dry_run(config, plan_out, args.profile)}),
                  flush=True)


def main(argv: list[str] | None = None) -> None:
    """Serve N synthetic users and print one JSON line per dry run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--profile", metavar="FILE")
    parser.add_argument("--serve", metavar="DIR")
    parser.add_argument("--config", metavar="PATH")
    parser.add_argument("--only", choices=["plan", "plan-out"])
    args = parser.parse_args(argv)
    if args.config:
        _runs(Path(args.config), args)
        return
    with tempfile.TemporaryDirectory(prefix="genesys-prov-planbench-") as tmp:
        directory = Path(args.serve) if args.serve else Path(tmp)
        proc, commands, config, generation = _start_sandbox(args.users, directory)
        print(json.dumps({"users": args.users, "generated_seconds": round(generation, 1),
                          "config": str(config)}), flush=True)
        try:
            if args.serve:
                while True:
                    time.sleep(3600)
            _runs(config, args)
        finally:
            commands.send("stop")
            proc.join(timeout=30)


if __name__ == "__main__":
    main()

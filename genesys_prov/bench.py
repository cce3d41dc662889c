"""The benchmark behind ``make bench``: a first full sync and a no-change re-sync of N
synthetic users against the sandbox, with the rate limit off.

The sandbox runs in a child process (``genesys-prov sandbox``), so the peak memory
reported is the sync's own. Run: ``python -m genesys_prov.bench --users 10000``.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from genesys_prov.config import load_config
from genesys_prov.sync import SyncResult, run_sync


def _start_sandbox(users: int, directory: Path) -> tuple[subprocess.Popen[bytes], Path]:
    cmd = [sys.executable, "-m", "genesys_prov", "sandbox", "--users", str(users),
           "--dir", str(directory), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    config = directory / "genesys-prov.yaml"
    deadline = time.monotonic() + 600
    while not config.exists():
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"sandbox failed to start: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("sandbox did not start within 600 s")
        time.sleep(0.2)
    time.sleep(0.2)
    return proc, config


def _line(label: str, result: SyncResult, seconds: float, users: int) -> dict[str, Any]:
    target = result.requests.get("target", {})
    graph = result.requests.get("graph", {})
    counts = result.plan.counts()
    row = {"run": label, "seconds": round(seconds, 2),
           "users_per_second": round(users / seconds, 1) if seconds else None,
           "graph_requests": dict(graph), "target_requests": dict(target),
           "changes": {k: v for k, v in counts.items() if v}}
    failed = result.applied.counts()["failure"] if result.applied else 0
    row["failed"] = failed + counts["failed"]
    return row


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="genesys-prov-bench-") as tmp:
        started = time.monotonic()
        proc, config_path = _start_sandbox(args.users, Path(tmp))
        print(f"sandbox with {args.users} users ready in {time.monotonic() - started:.1f}s")
        try:
            text = config_path.read_text(encoding="utf-8")
            text = text.replace("concurrency: 4", f"concurrency: {args.concurrency}")
            config_path.write_text(text, encoding="utf-8")
            config = load_config(config_path)
            rows = []
            for label in ("first full sync", "no-change re-sync"):
                t0 = time.monotonic()
                result = run_sync(config)
                rows.append(_line(label, result, time.monotonic() - t0, args.users))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\n| run | users | seconds | users/s | Graph requests | target requests | "
          "changes | failed |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        graph = ", ".join(f"{k} {v}" for k, v in sorted(r["graph_requests"].items()))
        target = ", ".join(f"{k} {v}" for k, v in sorted(r["target_requests"].items()))
        changes = ", ".join(f"{k} {v}" for k, v in r["changes"].items())
        print(f"| {r['run']} | {args.users} | {r['seconds']} | {r['users_per_second']} | "
              f"{graph} | {target} | {changes} | {r['failed']} |")
    print(f"\npeak memory of the sync process (max RSS): {peak_mib:.0f} MiB")
    first = rows[0]["target_requests"]
    total = sum(first.values())
    print(f"at Genesys' 300 requests/minute the first sync's {total} target requests "
          f"take at least {total / 300:.0f} min; the re-sync's "
          f"{sum(rows[1]['target_requests'].values())} take "
          f"{sum(rows[1]['target_requests'].values()) / 300:.1f} min")


if __name__ == "__main__":
    main()

"""The migration proof measured at scale: Entra's provisioning job (emulated,
:mod:`genesys_prov.sandbox.entra`) provisions N synthetic users into the Genesys emulator
with the gallery or the customised schema; ``mapping import --from-entra`` converts that
job's schema read from the sandbox Graph; a full dry run with the imported mappings must
plan nothing.

:func:`migration_check` returns the figures (the benchmark may call it).

Run: ``python -m genesys_prov.sandbox.migrationcheck --users 10000 --schema customised``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from genesys_prov.config import load_config
from genesys_prov.sandbox import Sandbox
from genesys_prov.sandbox.demo import write_sandbox_config
from genesys_prov.sync.mappings import import_mappings
from genesys_prov.sync.run import run_sync

#: What a dry run would write: every count but ``unchanged``, ``skipped`` and the like.
WRITES = ("create", "update", "reactivate", "deactivate", "delete", "group create",
          "group update", "members added", "members removed")


def migration_check(users: int, schema: str, workdir: Path) -> dict[str, Any]:
    """Entra's job, the import and the dry run for ``users`` synthetic users; the figures
    (``planned`` is what the dry run would write: all zero when the import is exact)."""
    started = time.perf_counter()
    with Sandbox(users=users, workdir=workdir, entra_job=schema) as sb:
        provisioned = time.perf_counter()
        report = sb.entra_report
        assert report is not None
        config_path = write_sandbox_config(sb, workdir)
        imported = import_mappings(None, "", out=str(workdir / "mappings.yaml"), force=True,
                                   config=lambda: load_config(config_path))
        converted = time.perf_counter()
        sb.genesys.requests.clear()
        result = run_sync(load_config(config_path), dry_run=True, full=True)
        planned_at = time.perf_counter()
        counts = result.plan.counts()
        return {
            "users": users, "schema": schema,
            "entra_job": {"entitled": report.entitled, "created": len(report.created),
                          "updated": len(report.updated), "skipped": len(report.skipped),
                          "failures": sorted({f"{f.kind} {f.status}" for f in report.failures}),
                          "seconds": round(provisioned - started, 2)},
            "import": {"converted": len(imported.result.converted),
                       "not_converted": len(imported.result.not_converted),
                       "valid": imported.ok, "seconds": round(converted - provisioned, 2)},
            "dry_run": {"planned": {name: counts[name] for name in WRITES},
                        "unchanged": counts["unchanged"],
                        "target_writes": len(sb.genesys.writes()),
                        "seconds": round(planned_at - converted, 2)},
        }


def main() -> None:
    """Command line: print the figures as JSON; exit 1 when the dry run plans anything."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--schema", choices=("gallery", "customised"), default="customised")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genesys-prov-migration-") as tmp:
        figures = migration_check(args.users, args.schema, Path(tmp))
    print(json.dumps(figures, indent=2))
    planned = figures["dry_run"]["planned"]
    raise SystemExit(1 if any(planned.values()) else 0)


if __name__ == "__main__":
    main()

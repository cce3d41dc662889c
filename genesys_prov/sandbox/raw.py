"""The benchmark's baseline: a bare client that only POSTs the users of an initial load.

It sends the same ``POST /Users`` bodies the tool sends (built by the tool's own
:func:`~genesys_prov.target.scim.build_create` from the plan of a dry run, which is not
timed), to the same server, with the same number of workers and a connection pool of that
size — and nothing else: no retries, no lookups, no state, no log. Managers are created
before their reports, wave by wave, as the tool does, so each body carries its manager's
id. What it takes is the time the server needs; the tool's apply phase is compared with it.

Run: ``python -m genesys_prov.sandbox.raw --config genesys-prov.yaml --concurrency 8``
(prints one JSON line: ``posts``, ``failed``, ``waves``, ``seconds``, ``cpu_seconds``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from genesys_prov.config import Config, TargetConfig, load_config
from genesys_prov.plan.model import Action, Change, MemberRef
from genesys_prov.sync.run import run_sync
from genesys_prov.target.scim import SCIM_JSON, build_create


def planned_creates(config: Config) -> list[list[Change]]:
    """The creates an initial load makes, wave by wave (managers first), from a dry run
    of ``config`` against its (empty) target."""
    plan = run_sync(config, dry_run=True).plan
    waves: dict[int, list[Change]] = {}
    for change in plan.changes:
        if change.action is Action.CREATE:
            waves.setdefault(change.wave, []).append(change)
    return [waves[wave] for wave in sorted(waves)]


def bare_session(verify: str | bool, workers: int) -> requests.Session:
    """A plain :class:`requests.Session` whose connection pool holds ``workers``
    connections (no retries)."""
    session = requests.Session()
    session.verify = verify
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(workers, 1), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def bearer_token(session: requests.Session, target: TargetConfig) -> str:
    """The target's static token, or one OAuth client-credentials token."""
    if target.token:
        return target.token
    assert target.oauth is not None
    response = session.post(target.oauth.token_url, data={"grant_type": "client_credentials"},
                            auth=(target.oauth.client_id, target.oauth.client_secret),
                            timeout=30, verify=session.verify)
    response.raise_for_status()
    return str(response.json()["access_token"])


def post_waves(session: requests.Session, url: str, token: str,
               waves: Sequence[Sequence[Change]], workers: int) -> tuple[int, int]:
    """POST every create to ``url`` with ``workers`` threads, wave by wave (a wave's bodies
    carry the ids its managers got in an earlier wave). Returns (sent, failed)."""
    headers = {"Accept": SCIM_JSON, "Content-Type": SCIM_JSON,
               "Authorization": f"Bearer {token}"}
    created: dict[str, str] = {}

    def resolve(ref: MemberRef) -> str | None:
        return ref.target_id or created.get(ref.source_id or "")

    def post(body: dict[str, Any]) -> str | None:
        # verify given per request, so REQUESTS_CA_BUNDLE cannot override it
        response = session.post(url, json=body, headers=headers, timeout=30,
                                verify=session.verify)
        if response.status_code != 201:
            return None
        return str(response.json()["id"])

    sent = failed = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="raw") as pool:
        for wave in waves:
            bodies = [build_create(change, resolve) for change in wave]
            for change, target_id in zip(wave, pool.map(post, bodies), strict=True):
                sent += 1
                if target_id is None:
                    failed += 1
                else:
                    created[change.source_id] = target_id
    return sent, failed


def raw_load(config_path: str, workers: int) -> dict[str, Any]:
    """Plan the initial load of ``config_path`` (dry run, not timed), then POST its users
    with the bare client; returns the POSTs sent and failed, the waves, and the wall and
    CPU seconds of the POSTs alone."""
    config = load_config(config_path)
    waves = planned_creates(config)
    session = bare_session(config.verify, workers)
    token = bearer_token(session, config.target)
    url = config.target.url.rstrip("/") + "/Users"
    cpu, started = time.process_time(), time.perf_counter()
    sent, failed = post_waves(session, url, token, waves, workers)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    session.close()
    return {"posts": sent, "failed": failed, "waves": len(waves), "concurrency": workers,
            "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3)}


def main(argv: list[str] | None = None) -> None:
    """Run the bare client once and print its figures as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    print(json.dumps(raw_load(args.config, args.concurrency)))


if __name__ == "__main__":
    main()

"""Incidents of the job: quarantine (entering, probing, leaving), escrow (what waits, what
is released) and the notifications they raise, one per incident."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from genesys_prov.config import Config
from genesys_prov.errors import (
    AuthError,
    QuarantineError,
    TargetError,
)
from genesys_prov.notify import Incident, Notifier
from genesys_prov.state.db import LogRecord, State
from genesys_prov.sync.check import run_check
from genesys_prov.sync.digests import config_fingerprint
from genesys_prov.sync.result import SyncResult
from genesys_prov.target import apply as applying

log = logging.getLogger(__name__)


QUARANTINE = "quarantine"


FAILURE_RATE = 0.40


QUARANTINE_FIRST_PROBE = 300.0     # probes back off from 5 minutes to the configured interval


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def quarantine_cause(exc: BaseException) -> str | None:
    """Why an error puts the job in quarantine (None: it does not)."""
    if isinstance(exc, AuthError):
        return f"authentication failed: {exc}"
    if isinstance(exc, TargetError) and exc.status == 404:
        return "the target answers 404 on its SCIM endpoints (wrong tenant URL?)"
    return None


def failure_rate_cause(applied: applying.ApplyResult | None, minimum: int) -> str | None:
    """Too many failures: more than 40 % of the attempted changes, once enough were tried."""
    if applied is None:
        return None
    attempted = len(applied.outcomes) + len(applied.group_outcomes)
    failed = len(applied.failed)
    if attempted >= minimum and failed > FAILURE_RATE * attempted:
        return f"{failed} of {attempted} changes failed (over {FAILURE_RATE:.0%})"
    return None


def enter_quarantine(state: State, run_id: str, reason: str, now: float,
                      config: Config) -> None:
    state.set_meta(QUARANTINE, json.dumps({"since": _iso(now), "reason": reason,
                                           "last_probe": now, "probes": 0,
                                           "fingerprint": config_fingerprint(config)}))
    state.log([LogRecord(run_id, "job", None, None, "Other", "Failure", "Quarantined", reason)])


def next_probe(info: dict[str, Any], config: Config) -> float:
    """When a quarantined job probes next: 5 minutes after entering, then doubling up to
    ``safety.quarantine_probe_interval_minutes``."""
    cap = config.safety.quarantine_probe_interval
    gap = min(cap, QUARANTINE_FIRST_PROBE * float(2 ** min(int(info.get("probes", 0)), 30)))
    return float(info["last_probe"]) + gap


def quarantine_gate(config: Config, state: State, run_id: str, now: float) -> bool:
    """While quarantined, a run only probes the connection: 5 minutes after entering, then
    at growing gaps; at once when the configuration or a secret changed, or after a
    passing ``check``. Returns True when the job just left quarantine; raises
    QuarantineError otherwise."""
    info = json.loads(state.get_meta(QUARANTINE) or "null")
    if not info:
        return False
    when = next_probe(info, config)
    where = (f"quarantined since {info['since']} ({info['reason']}); `genesys-prov state "
             "reset` clears it")
    changed = info.get("fingerprint") != config_fingerprint(config)
    if now < when and not changed and not info.get("probe_now"):
        raise QuarantineError(f"{where}; next connection probe at {_iso(when)} (or at once "
                              "after a passing `genesys-prov check` or a configuration change)")
    check = run_check(config)
    if not check.ok:
        info.update(last_probe=now, probes=int(info.get("probes", 0)) + 1, probe_now=False,
                    fingerprint=config_fingerprint(config))
        state.set_meta(QUARANTINE, json.dumps(info))
        failed = next(s for s in check.steps if not s.ok)
        raise QuarantineError(f"{where}; the probe failed at {failed.name}: {failed.detail}; "
                              f"next probe at {_iso(next_probe(info, config))}")
    state.delete_meta(QUARANTINE)
    state.log([LogRecord(run_id, "job", None, None, "Other", "Success", "QuarantineLeft",
                         f"left quarantine ({info['reason']}): the connection probe passed")])
    return True


def incidents_of(result: SyncResult | None, quarantined: str | None) -> list[Incident]:
    """What a run found that deserves an email (one per incident, not one per run)."""
    out = []
    if result is not None and result.failed:
        failures = len(result.plan.failures) + len(result.applied.failed if result.applied
                                                   else [])
        lines = [f"{f.identity}: {f.code}: {f.reason}" for f in result.plan.failures[:20]]
        if result.applied:
            lines += [f"{o.change.identity}: {o.code}: {o.error}"
                      for o in result.applied.failed[:20]]
        out.append(Incident("failures", f"genesys-prov: {failures} change(s) failed",
                            "These changes failed (more in `genesys-prov logs --status "
                            "failure`):\n\n" + "\n".join(lines)))
    if result is not None and result.plan.held:
        out.append(Incident("held", f"genesys-prov: {len(result.plan.held)} deactivation(s) "
                            "held by the safety guard", result.plan.held_reason + "\n\n" +
                            "\n".join(c.identity for c in result.plan.held[:50])))
    if quarantined:
        out.append(Incident("quarantine", "genesys-prov entered quarantine",
                            f"{quarantined}\n\nLater runs only probe the connection until it "
                            "works; `genesys-prov state reset` clears the quarantine."))
    return out


def send_notifications(config: Config, state: State, incidents: list[Incident]) -> None:
    def load() -> dict[str, str]:
        data = json.loads(state.get_meta("notify_open") or "{}")
        return data if isinstance(data, dict) else {}

    def save(value: dict[str, str]) -> None:
        state.set_meta("notify_open", json.dumps(value))

    notifier = Notifier(config.notify, load, save)
    for line in notifier.update(incidents, {"quarantine": "genesys-prov left quarantine"}):
        log.info("notification: %s", line)


def note_check_passed(config: Config) -> bool:
    """A passing ``check`` lets a quarantined job probe at its next run instead of waiting.
    Returns True when the job is quarantined (and will now probe at once). Creates no state
    where there is none."""
    if not (config.state_dir / "state.sqlite3").exists():
        return False
    with State.open(config.state_dir) as state:
        info = json.loads(state.get_meta(QUARANTINE) or "null")
        if not info:
            return False
        info["probe_now"] = True
        state.set_meta(QUARANTINE, json.dumps(info))
        return True


def escrow_info(state: State) -> dict[str, Any] | None:
    """What waits in escrow: count, oldest failure and next retry (ISO times), or None."""
    summary = state.escrow_summary()
    if summary is None:
        return None
    return {"count": summary["count"], "oldest": _iso(summary["oldest"]),
            "next_retry": _iso(summary["next_retry"])}


def escrow_waiting(state: State, run_id: str, digest: str, dry_run: bool, retry_now: bool,
                    now: float) -> dict[str, dict[str, Any]]:
    """The escrowed users whose changes this run holds back (not due yet). A change of the
    mappings or settings releases escrow: those users are planned afresh (a dry run only
    plans them; a real run also forgets the entries)."""
    stored = state.get_meta("settings_digest")
    if stored is not None and stored != digest:
        if not dry_run:
            released = state.escrow_release()
            if released:
                state.log([LogRecord(run_id, str(e["identity"]), str(e["source_id"]), None,
                                     "Other", "Success", "EscrowReleased",
                                     "the mappings or settings changed: planned afresh")
                           for e in released])
        return {}
    if retry_now:
        return {}
    return {sid: e for sid, e in state.escrowed("user").items() if e["next_retry"] > now}

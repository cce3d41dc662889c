"""The benchmark end to end at a tiny size (the table's columns and rows, the bare client's
comparison), and the sandbox's reset it relies on. No wall-clock assertion."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import requests

from genesys_prov.sandbox import Sandbox, bench


def test_the_bench_prints_every_run_with_its_columns(capsys: pytest.CaptureFixture[str]) -> None:
    bench.main(["--users", "50", "--concurrency", "2,4"])
    out = capsys.readouterr().out
    head = next(line for line in out.splitlines() if line.startswith("| run |"))
    assert [c.strip() for c in head.strip("|").split("|")] == [
        "run", "concurrency", "seconds", "CPU s", "peak RSS", "Graph requests",
        "target requests", "floor (min)", "changes", "failed", "apply ÷ raw"]
    rows = [line for line in out.splitlines() if line.startswith("| ")
            and not line.startswith(("| run |", "|---"))]
    runs = [(r.split("|")[1].strip(), r.split("|")[2].strip()) for r in rows]
    assert runs == [
        ("dry run (empty target)", "4"),
        ("bare client (POSTs only)", "2"), ("first full sync", "2"),
        ("bare client (POSTs only)", "4"), ("first full sync", "4"),
        ("no-change incremental run", "4"), ("no-change full re-sync (--full)", "4"),
        ("one changed user, incremental", "4"),
        ("a new hire joins an assigned group, incremental", "4")]
    cells = {(r.split("|")[1].strip(), r.split("|")[2].strip()): r.split("|")[1:-1]
             for r in rows}
    raw, tool = cells[("bare client (POSTs only)", "4")], cells[("first full sync", "4")]
    posts = raw[6].strip()
    assert posts.startswith("POST ") and f"{posts.split(',')[0]}," in tool[6]  # same POSTs
    assert raw[9].strip() == tool[9].strip() == "0"  # nothing failed
    assert tool[10].strip().endswith("×") and float(tool[3]) > 0 and "MiB" in tool[4]
    assert "create" in cells[("dry run (empty target)", "4")][8]
    assert "concurrency 2: bare client" in out and "concurrency 4: bare client" in out


def test_the_rate_limited_run_is_called_when_its_module_is_there(
        monkeypatch: pytest.MonkeyPatch) -> None:
    name = "genesys_prov.sandbox.ratecheck"
    monkeypatch.setitem(sys.modules, name, None)  # not there: said, not raised
    assert bench.rate_limited(20, 60) == [
        "rate-limited run: genesys_prov.sandbox.ratecheck is missing (not merged yet); "
        "skipped"]
    fake = types.ModuleType(name)
    calls = []

    def rate_limited_run(users: int, per_minute: int) -> dict[str, object]:
        calls.append((users, per_minute))
        return {"requests": 21, "max_in_any_60s_window": 60, "ratio": 1.02}

    fake.rate_limited_run = rate_limited_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, fake)
    (line,) = bench.rate_limited(20, 60)
    assert calls == [(20, 60)]
    assert line == ("rate-limited run (20 users, 60 requests/minute): requests 21, "
                    "max_in_any_60s_window 60, ratio 1.02")


def test_reset_genesys_empties_the_org_at_the_same_address(tmp_path: Path) -> None:
    with Sandbox(users=20, workdir=tmp_path) as sb:
        url, groups = sb.genesys_url, set(sb.genesys.groups)
        headers = {"Authorization": f"Bearer {sb.genesys_static_token}"}
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "reset.me@contoso.com", "displayName": "Reset Me"}
        made = requests.post(f"{url}/Users", json=body, headers=headers,
                             verify=str(sb.ca_bundle), timeout=10)
        assert made.status_code == 201, made.text
        assert len(sb.genesys.users) == 1
        fresh = sb.reset_genesys()
        assert fresh is sb.genesys and sb.genesys_url == url
        assert sb.genesys.users == {} and set(sb.genesys.groups) == groups
        again = requests.post(f"{url}/Users", json=body, headers=headers,
                              verify=str(sb.ca_bundle), timeout=10)
        assert again.status_code == 201  # the name is free again: a new org

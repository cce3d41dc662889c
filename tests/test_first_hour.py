"""Issue 14, "the first hour": the frictions a new admin hit in the command line, each
with a test — global options after the command, verbatim help examples, where a missing
configuration came from, unknown source attributes in `mapping test`, one `--output`,
`state show` with quarantine and escrow, `logs --limit / --output csv`, the confirmation of
`state reset --forget-links`, and the report files `sync --report` wrote."""

from __future__ import annotations

import csv
import inspect
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from genesys_prov import cli as cli_module
from genesys_prov.cli import cli
from genesys_prov.console import verbatim_examples
from genesys_prov.sandbox import Sandbox
from genesys_prov.state.db import State
from tests.conftest import run_cli, write_config

pytestmark = pytest.mark.e2e

QUARANTINE_SINCE = 1_800_000_000.0   # 2027-01-15T08:00:00+00:00
ESCROW_FAILED = 1_800_003_600.0      # one hour later


def configure(sb: Sandbox, tmp_path: Path) -> str:
    return str(write_config(tmp_path, sb.config(scope="all")))


def sync(cfg: str, *extra: str) -> dict[str, Any]:
    result = run_cli("--config", cfg, "sync", "--output", "json", *extra)
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


# 1. global options after the command's name

def test_global_options_after_the_command(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    log = tmp_path / "run.log"
    result = run_cli("sync", "--dry-run", "--output", "json", "--config", cfg, "-v",
                     "--log-file", str(log))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["dry_run"] is True
    assert " INFO genesys_prov" in result.stderr  # -v after the command: INFO on stderr
    assert " INFO genesys_prov" in log.read_text(encoding="utf-8")

    # before and after both work; the later one wins (also over the environment)
    missing = str(tmp_path / "missing.yaml")
    assert run_cli("--config", missing, "state", "show", "--config", cfg).exit_code == 0
    assert run_cli("state", "show", "--config", cfg,
                   env={"GENESYS_PROV_CONFIG": missing}).exit_code == 0
    assert run_cli("state", "--config", cfg, "show").exit_code == 0  # on a group too
    result = run_cli("--config", cfg, "state", "show", "--config", missing)
    assert result.exit_code == 2 and f"{missing} (from --config)" in result.stderr


def test_verbosity_after_the_command_replaces_the_one_before(sandbox: Sandbox,
                                                             tmp_path: Path) -> None:
    """In a process of its own: logging is set up once per process, as in real use."""
    cfg = configure(sandbox, tmp_path)

    def stderr(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "genesys_prov", "--config", cfg, *args],
                              capture_output=True, text=True, check=True)
        return done.stderr

    assert " DEBUG " in stderr("-vvv", "sync", "--dry-run", "--quiet")
    assert " DEBUG " in stderr("sync", "--dry-run", "--quiet", "-vvv")
    quieter = stderr("-vvv", "sync", "--dry-run", "--quiet", "-v")
    assert " INFO " in quieter and " DEBUG " not in quieter


def test_every_command_accepts_the_global_options() -> None:
    def walk(group: click.Group, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        for name, command in group.commands.items():
            yield (*prefix, name)
            if isinstance(command, click.Group):
                yield from walk(command, (*prefix, name))

    for path in walk(cli, ()):
        command: click.Command = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        names = {p.name for p in command.params}
        assert {"config_path", "verbose", "log_file"} <= names, path


# 2. --help examples verbatim

def example_lines(command: click.Command) -> list[str]:
    """The lines of a command's Example block, as written in its docstring."""
    callback = command.callback
    while hasattr(callback, "__wrapped__"):
        callback = callback.__wrapped__
    doc = inspect.cleandoc(callback.__doc__ or "")
    block = doc.split("Example:", 1)[1].split("\n\n")
    lines = []
    for paragraph in block:
        if paragraph.strip() and not paragraph.startswith((" ", "\n", "\b")):
            break  # e.g. "Exit codes:" after the examples
        lines += [line.strip() for line in paragraph.splitlines()
                  if line.strip() and line.strip() != "\b"]
    return lines


def every_command() -> Iterator[str]:
    yield ""
    for name, command in sorted(cli.commands.items()):
        yield name
        if isinstance(command, click.Group):
            yield from (f"{name} {sub}" for sub in sorted(command.commands))


@pytest.mark.parametrize("name", list(every_command()))
def test_help_examples_are_printed_verbatim(name: str) -> None:
    path = name.split()
    command: click.Command = cli
    for part in path:
        assert isinstance(command, click.Group)
        command = command.commands[part]
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="genesys-prov")
    assert result.exit_code == 0
    shown = {line.strip() for line in result.output.splitlines()}
    lines = example_lines(command)
    assert lines, path
    for line in lines:
        assert line in shown, (path, line)


def test_the_example_check_can_fail() -> None:
    """Without the verbatim marker click re-wraps a long example into two lines."""
    doc = """Do it.

    Example:

        genesys-prov mapping test 'ToLower([userPrincipalName])' --attr userPrincipalName=A@B.com
    """
    line = doc.splitlines()[-2].strip()

    def render(help_text: str | None) -> set[str]:
        command = click.Command("x", help=help_text)
        with click.Context(command) as ctx:
            return {out.strip() for out in command.get_help(ctx).splitlines()}

    assert line not in render(doc)
    assert line in render(verbatim_examples(doc))
    assert verbatim_examples(verbatim_examples(doc)) == verbatim_examples(doc)


# 3. where a missing configuration came from

HINT = ("create one with `genesys-prov init`, or name it with --config PATH or "
        "$GENESYS_PROV_CONFIG")


def test_missing_configuration_names_its_origin(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENESYS_PROV_CONFIG", raising=False)
    result = run_cli("check", "--config", "a.yaml")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: configuration file not found: a.yaml (from --config); "
                             f"{HINT}\n")
    result = run_cli("check", env={"GENESYS_PROV_CONFIG": "b.yaml"})
    assert result.exit_code == 2
    assert result.stderr == (f"Error: configuration file not found: b.yaml (from "
                             f"$GENESYS_PROV_CONFIG); {HINT}\n")
    result = run_cli("logs")
    assert result.stderr == ("Error: configuration file not found: genesys-prov.yaml (the "
                             "default: neither --config nor $GENESYS_PROV_CONFIG is set); "
                             f"{HINT}\n")
    result = run_cli("mapping", "validate", env={"GENESYS_PROV_CONFIG": "c.yaml"})
    assert result.exit_code == 2 and "c.yaml (from $GENESYS_PROV_CONFIG)" in result.stderr


# 4. mapping test: unknown source attributes

def test_mapping_test_refuses_an_unknown_source_attribute() -> None:
    result = run_cli("mapping", "test", "[jobTitel]")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("Error: unknown source attribute 'jobTitel', did you mean "
                             "'jobTitle'?\n")
    result = run_cli("mapping", "test", 'Join(" ", [givenName], [surname])',
                     "--attr", "givenname=Zoë", "--attr", "surname=Lefèvre")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("Error: --attr givenname: unknown source attribute 'givenname', "
                             "did you mean 'givenName'? (names are case-sensitive)\n")
    result = run_cli("mapping", "test", "[nothingLikeIt]")
    assert result.exit_code == 2 and "unknown source attribute 'nothingLikeIt' (give its " \
        "value with --attr NAME=VALUE" in result.stderr
    # known names, and names given a value, still work
    assert run_cli("mapping", "test", "[jobTitle]", "--attr", "jobTitle=Agent").stdout == \
        "Agent\n"
    assert run_cli("mapping", "test", "[x]", "--attr", "x=1").stdout == "1\n"


def test_mapping_test_unknown_attribute_reads_nothing_from_graph(sandbox: Sandbox,
                                                                 tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    upn = sandbox.graph.users[0]["userPrincipalName"]
    sandbox.graph.requests.clear()
    result = run_cli("--config", cfg, "mapping", "test", "[Department]", "--from-graph", upn)
    assert result.exit_code == 2 and "did you mean 'department'?" in result.stderr
    assert sandbox.graph.requests == []


# 5. one way to ask for JSON

def test_state_retry_prints_json(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    with State.open(tmp_path / ".genesys-prov") as state:
        state.escrow_failure("user", "u1", "ada@contoso.com", "500", ESCROW_FAILED, 60, 3600)
    result = run_cli("--config", cfg, "state", "retry", "--output", "json")
    assert (result.exit_code, json.loads(result.stdout)) == (0, {"due_now": 1})
    with State.open(tmp_path / ".genesys-prov") as state:
        assert state.escrowed()["u1"]["next_retry"] == 0


# 6. state show: quarantine and escrow, ISO 8601 in JSON, local times in the table

@pytest.fixture
def kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local time zone is UTC+05:30 for one test."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def cells(table: str) -> str:
    """The value column of a two-column table, folded lines joined, spaces collapsed."""
    return " ".join(" ".join(line.split("│")[2] for line in table.splitlines()
                             if line.count("│") == 3).split())


def test_state_show_quarantine_and_escrow(sandbox: Sandbox, tmp_path: Path,
                                          kolkata: None) -> None:
    cfg = configure(sandbox, tmp_path)
    with State.open(tmp_path / ".genesys-prov") as state:
        state.escrow_failure("user", "u1", "ada@contoso.com", "HTTP 500 from the target",
                             ESCROW_FAILED, 600, 3600)
        state.set_meta("quarantine", json.dumps({
            "since": "2027-01-15T08:00:00+00:00", "reason": "authentication failed",
            "last_probe": QUARANTINE_SINCE + 300, "probes": 1}))
    shown = json.loads(run_cli("--config", cfg, "state", "show", "--output", "json").stdout)
    assert shown["escrow"] == [{"source_id": "u1", "identity": "ada@contoso.com",
                                "attempts": 1, "first_failed": "2027-01-15T09:00:00+00:00",
                                "next_retry": "2027-01-15T09:10:00+00:00",
                                "last_error": "HTTP 500 from the target"}]
    assert shown["quarantine"]["last_probe"] == "2027-01-15T08:05:00+00:00"
    assert shown["quarantine"]["since"] == "2027-01-15T08:00:00+00:00"

    table = cells(run_cli("--config", cfg, "state", "show").stdout)
    assert "QUARANTINED since 2027-01-15 13:30:00 IST: authentication failed" in table
    assert "last at 2027-01-15 13:35:00 IST" in table
    assert "1 change(s) waiting" in table
    assert ("ada@contoso.com: 1 attempt(s) since 2027-01-15 14:30:00 IST, next retry "
            "2027-01-15 14:40:00 IST — HTTP 500 from the target") in table


def test_state_show_without_quarantine_or_escrow(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    shown = json.loads(run_cli("--config", cfg, "state", "show", "--output", "json").stdout)
    assert shown["escrow"] == [] and shown["quarantine"] is None
    table = run_cli("--config", cfg, "state", "show").stdout
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in table.splitlines() if line.count("│") == 3}
    assert rows["quarantine"] == "no" and rows["escrow"] == "empty"


# 7. logs: --limit, --output csv, the run id

def test_logs_limit_csv_and_run_id(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    run_id = sync(cfg)["run_id"]
    every = [json.loads(line) for line in
             run_cli("--config", cfg, "logs", "--output", "json").stdout.splitlines()]
    assert len(every) > 3
    newest = [json.loads(line) for line in
              run_cli("--config", cfg, "logs", "--limit", "3", "--output", "json")
              .stdout.splitlines()]
    assert newest == every[-3:]

    text = run_cli("--config", cfg, "logs", "--output", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["time", "run_id", "action", "status", "identity", "source_id",
                             "target_id", "code", "reason", "properties"]
    assert len(rows) == len(every) and {r["run_id"] for r in rows} == {run_id}
    assert [r["identity"] for r in rows] == [r["identity"] for r in every]
    assert [json.loads(r["properties"]) for r in rows] == [r["properties"] for r in every]

    table = run_cli("--config", cfg, "logs", "--limit", "1").stdout
    assert "(1 records)" in table and run_id in table and "run" in table.splitlines()[2]
    assert run_cli("--config", cfg, "logs", "--limit", "0").exit_code == 2


# 8. state reset --forget-links asks

def links(tmp_path: Path) -> dict[str, str]:
    with State.open(tmp_path / ".genesys-prov") as state:
        return state.links("user")


def test_forget_links_asks_on_a_terminal(sandbox: Sandbox, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = configure(sandbox, tmp_path)
    sync(cfg)
    assert links(tmp_path)
    result = run_cli("--config", cfg, "state", "reset", "--forget-links")
    assert result.exit_code == 2 and "pass --yes" in result.stderr and links(tmp_path)

    monkeypatch.setattr(cli_module, "_interactive", lambda: True)
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", cfg, "state", "reset", "--forget-links"],
                           input="n\n")
    assert result.exit_code == 2 and "Forget every link" in result.stderr
    assert "not confirmed" in result.stderr and links(tmp_path)
    result = runner.invoke(cli, ["--config", cfg, "state", "reset", "--forget-links"],
                           input="y\n")
    assert result.exit_code == 0 and result.stdout == "State reset (links forgotten).\n"
    assert links(tmp_path) == {}


def test_forget_links_with_yes_and_plain_reset_do_not_ask(sandbox: Sandbox,
                                                           tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    sync(cfg)
    assert run_cli("--config", cfg, "state", "reset").exit_code == 0
    assert links(tmp_path)
    result = run_cli("--config", cfg, "state", "reset", "--forget-links", "--yes")
    assert result.exit_code == 0 and links(tmp_path) == {}


# 9. sync --report names what it wrote

def test_sync_report_names_the_files(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = configure(sandbox, tmp_path)
    md, page = tmp_path / "plan.md", tmp_path / "plan.html"
    result = run_cli("--config", cfg, "sync", "--dry-run", "--output", "json",
                     "--report", str(md), "--report", str(page))
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-2:] == [f"Wrote {md}", f"Wrote {page}"]
    assert md.is_file() and page.is_file()
    json.loads(result.stdout)  # stdout stays clean JSON
    md.unlink()
    result = run_cli("--config", cfg, "sync", "--dry-run", "--quiet", "--report", str(md))
    assert result.exit_code == 0 and md.is_file() and "Wrote" not in result.stderr


def test_mapping_validate_offline_needs_no_secret(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after `init`, before any secret is exported, `mapping validate --offline` works
    (it reads only the mappings path and the flavor); online it still names the variable."""
    monkeypatch.delenv("GRAPH_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("GENESYS_TOKEN", raising=False)
    made = run_cli("init", "--dir", str(tmp_path), "--tenant-id", "contoso.onmicrosoft.com",
                   "--client-id", "11111111-2222-3333-4444-555555555555", "--target-url",
                   "https://api.mypurecloud.ie/api/v2/scim/v2", "--scope", "all", "--no-check")
    assert made.exit_code == 0, made.stderr
    config = str(tmp_path / "genesys-prov.yaml")
    offline = run_cli("--config", config, "mapping", "validate", "--offline")
    assert offline.exit_code == 0, offline.stderr
    assert "0 error(s)" in offline.stdout
    online = run_cli("--config", config, "mapping", "validate")
    assert online.exit_code == 2
    assert "GRAPH_CLIENT_SECRET is not set" in online.stderr


def test_json_output_is_streamed_and_identical_to_one_string() -> None:
    """`--output json` is written as it is encoded (a 100,000-user plan is never held as
    one string): the pieces join to exactly what encoding it at once gives."""
    import datetime as dt

    from genesys_prov.report import iter_json, to_json

    data = {"plan": {"changes": [{"identity": "zoë@contoso.com", "old": None, "new": [1, 2]}
                                 for _ in range(3)], "empty": [], "nested": {}},
            "when": dt.date(2026, 12, 4), "ok": True}
    pieces = list(iter_json(data))
    assert len(pieces) > 10
    assert "".join(pieces) == to_json(data)
    assert json.loads("".join(pieces))["when"] == "2026-12-04"

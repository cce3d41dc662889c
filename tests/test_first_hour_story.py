"""Issue 14, "the first hour" (second part): the demo's story on one screen (and its plans
as JSON), `init`'s region picker, national clouds, CA bundle, authentication question and
all-or-nothing files, `explain` showing what is sent with names beside ids, `provision`
one line per step, and `sandbox --directory FILE` with a user changed while it runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from genesys_prov import cli as cli_module
from genesys_prov import starter
from genesys_prov.cli import cli
from genesys_prov.config import load_config
from genesys_prov.sandbox import Sandbox
from genesys_prov.sandbox.watch import DirectoryWatcher, load_directory_file
from tests.conftest import run_cli, write_config

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"GRAPH_CLIENT_SECRET": "x" * 12, "GENESYS_CLIENT_SECRET": "y" * 12,
           "GENESYS_TOKEN": "z" * 12}


# 1. the demo: one screen, the whole plans in JSON

def test_demo_story_fits_one_screen() -> None:
    result = run_cli("demo")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) <= 50, "\n".join(lines)
    out = result.stdout
    # counts by action, one example per kind, and where the whole plan is
    assert "Plan: 18 create, 1 update, 1 reactivate, 3 group update (+17 members)" in out
    assert sum(line.lstrip().startswith("create ") for line in lines) == 1
    assert "genesys-prov demo --output json" in out
    assert out.count("Dry run: would apply") == 1 and out.count("Applied 18 create") == 1
    # the story is still there: nothing written by the dry run, a silent second sync, and
    # the one PATCH of the changed job title
    assert "Genesys emulator received 0 write(s)." in out
    assert "Incremental: no directory changes since the last run" in out
    assert out.rstrip().endswith(
        '[{"op": "replace", "path": "title", "value": "Head of Customer Happiness"}]')


def test_demo_json_has_every_plan() -> None:
    result = run_cli("demo", "--output", "json")
    assert result.exit_code == 0, result.stderr
    scenes = json.loads(result.stdout)["scenes"]
    titles = [s["title"] for s in scenes]
    assert titles[1:4] == ["1. sync --dry-run", "2. sync", "3. sync again"]
    dry = scenes[1]["result"]
    assert dry["dry_run"] is True
    actions = [c["action"] for c in dry["plan"]["changes"]]
    assert actions.count("create") == 18 and len(actions) == 20   # every change, not examples
    assert all(c["attributes"] for c in dry["plan"]["changes"])
    assert len(dry["plan"]["group_changes"]) == 3
    applied = scenes[2]["result"]
    assert applied["dry_run"] is False and applied["result"]["counts"]["success"] == 23
    (change,) = scenes[4]["result"]["plan"]["changes"]
    (title,) = change["attributes"]
    assert (title["attribute"], title["new"]) == ("title", "Head of Customer Happiness")


# 2. init

def init(tmp_path: Path, *args: str, name: str = "cfg") -> Any:
    return run_cli("init", "--dir", str(tmp_path / name), "--tenant-id", "contoso.com",
                   "--client-id", "11111111-2222-3333-4444-555555555555", "--scope", "all",
                   "--no-check", *args)


def loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "cfg") -> Any:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    return load_config(tmp_path / name / "genesys-prov.yaml")


def test_the_region_list_is_genesys_documented_one() -> None:
    hosts = {host for host, _ in starter.REGIONS.values()}
    assert hosts == {
        "mypurecloud.com", "use2.us-gov-pure.cloud", "usw2.pure.cloud", "cac1.pure.cloud",
        "mypurecloud.ie", "euw2.pure.cloud", "mypurecloud.de", "aps1.pure.cloud",
        "apne2.pure.cloud", "mypurecloud.com.au", "mypurecloud.jp", "sae1.pure.cloud",
        "mec1.pure.cloud", "euc2.pure.cloud", "apne3.pure.cloud"}
    picked = starter.region("mypurecloud.com.au")
    assert picked.name == "ap-southeast-2"
    assert picked.scim_url == "https://api.mypurecloud.com.au/api/v2/scim/v2"
    assert picked.token_url == "https://login.mypurecloud.com.au/oauth/token"


@pytest.mark.parametrize(("region", "host"), [("eu-west-1", "mypurecloud.ie"),
                                              ("usw2.pure.cloud", "usw2.pure.cloud"),
                                              ("US-EAST-2", "use2.us-gov-pure.cloud")])
def test_init_region_gives_the_scim_and_token_urls(tmp_path: Path, region: str, host: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    result = init(tmp_path, "--region", region, "--genesys-client-id", "abc")
    assert result.exit_code == 0, result.stderr
    config = loaded(tmp_path, monkeypatch)
    assert config.target.url == f"https://api.{host}/api/v2/scim/v2"
    assert config.target.oauth is not None
    assert config.target.oauth.token_url == f"https://login.{host}/oauth/token"


def test_init_refuses_an_unknown_region_or_two_targets(tmp_path: Path) -> None:
    result = init(tmp_path, "--region", "mars-1")
    assert result.exit_code == 2
    assert "unknown Genesys region 'mars-1'" in result.stderr and "eu-west-1" in result.stderr
    both = init(tmp_path, "--region", "eu-west-1", "--target-url",
                "https://api.mypurecloud.ie/api/v2/scim/v2")
    assert both.exit_code == 2 and "not both" in both.stderr
    nothing = init(tmp_path)   # no terminal: the region cannot be asked
    assert nothing.exit_code == 2 and "--region" in nothing.stderr
    assert not (tmp_path / "cfg").exists()


@pytest.mark.parametrize(("cloud", "authority", "graph"), [
    ("global", "https://login.microsoftonline.com", "https://graph.microsoft.com"),
    ("usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"),
    ("usgov-dod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    ("china", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn")])
def test_init_national_clouds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cloud: str,
                              authority: str, graph: str) -> None:
    result = init(tmp_path, "--region", "us-east-2", "--cloud", cloud)
    assert result.exit_code == 0, result.stderr
    config = loaded(tmp_path, monkeypatch)
    assert (config.source.authority_host, config.source.graph_url) == (authority, graph)
    assert config.target.token == SECRETS["GENESYS_TOKEN"]   # no terminal: a static token


def test_init_ca_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Sandbox(workdir=tmp_path / "sb") as sb:   # its test CA is a real PEM bundle
        pem = tmp_path / "corp-ca.pem"
        pem.write_bytes(sb.ca_bundle.read_bytes())
    monkeypatch.chdir(tmp_path)
    result = init(tmp_path, "--region", "eu-west-1", "--ca-bundle", "corp-ca.pem")
    assert result.exit_code == 0, result.stderr
    assert loaded(tmp_path, monkeypatch).ca_bundle == str(pem.resolve())
    missing = init(tmp_path, "--region", "eu-west-1", "--ca-bundle", "nope.pem", name="x")
    assert missing.exit_code == 2 and not (tmp_path / "x").exists()


def test_init_asks_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "_interactive", lambda: True)
    answers = "contoso.com\n1111\neu-west-2\noauth\n2222\n3333\n"
    result = CliRunner().invoke(cli, ["init", "--dir", str(tmp_path / "cfg"), "--no-check"],
                                input=answers, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "euw2.pure.cloud" in result.output   # the list of regions was shown
    assert "Genesys authentication" in result.output
    config = loaded(tmp_path, monkeypatch)
    assert config.target.url == "https://api.euw2.pure.cloud/api/v2/scim/v2"
    assert config.target.oauth is not None and config.target.oauth.client_id == "2222"
    assert config.source.service_principal_id == "3333"

    token = CliRunner().invoke(cli, ["init", "--dir", str(tmp_path / "tok"), "--no-check",
                                     "--tenant-id", "t", "--client-id", "c", "--scope", "all",
                                     "--region", "eu-west-1"],
                               input="token\n", catch_exceptions=False)
    assert token.exit_code == 0, token.output
    assert loaded(tmp_path, monkeypatch, "tok").target.token == SECRETS["GENESYS_TOKEN"]


def test_init_writes_both_files_or_neither(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[Path] = []
    real = starter._write_aside

    def second_fails(path: Path, text: str) -> None:
        if written:
            raise OSError(28, "No space left on device", str(path))
        written.append(path)
        real(path, text)

    monkeypatch.setattr(starter, "_write_aside", second_fails)
    result = init(tmp_path, "--region", "eu-west-1")
    assert result.exit_code == 2
    assert "nothing was written" in result.stderr
    assert written and list((tmp_path / "cfg").iterdir()) == []   # not even the aside file

    # the second rename fails after the first succeeded: the first is taken back
    monkeypatch.setattr(starter, "_write_aside", real)
    renames: list[Path] = []
    real_replace = Path.replace

    def second_rename_fails(self: Path, target: Any) -> Path:
        if renames:
            raise OSError(13, "Permission denied", str(target))
        renames.append(Path(target))
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", second_rename_fails)
    again = init(tmp_path, "--region", "eu-west-1", name="cfg2")
    assert again.exit_code == 2 and renames
    assert list((tmp_path / "cfg2").iterdir()) == []


def test_readme_init_row_lists_every_flag() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (row,) = [line for line in readme.splitlines() if line.startswith("| `genesys-prov init")]
    command = cli.commands["init"]
    flags = [opt for p in command.params for opt in p.opts
             if opt.startswith("--") and p.name not in ("config_path", "verbose", "log_file")]
    assert flags and [f for f in flags if f not in row and f != "--help"] == []


# 3. explain: what is sent, names beside ids

def test_explain_shows_what_is_sent_and_names(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, sandbox.config()))
    by_id = {u["id"]: u for u in sandbox.graph.users}
    user = next(u for u in sandbox.graph.users if u["userPrincipalName"].startswith("aoife"))
    manager = by_id[user["manager"]]
    group = next(g for g in sandbox.graph.groups if user["id"] in g.get("members", []))
    result = run_cli("--config", cfg, "explain", user["userPrincipalName"], "--output", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    mobile = next(m for m in data["mappings"] if "mobile" in m["target"])
    assert mobile["value"] == user["mobilePhone"] == "+353 87 123 4567"
    assert mobile["sent"] == "+353871234567"
    assert data["names"][manager["id"]] == \
        f"{manager['displayName']} <{manager['userPrincipalName']}>"
    assert data["names"][group["id"]] == group["displayName"]

    table = run_cli("--config", cfg, "explain", user["userPrincipalName"]).stdout
    flat = re.sub(r"\s+", " ", re.sub(r"[│┃]", " ", table))
    assert "+353871234567 (mapped: +353 87 123 4567" in flat
    assert f"{manager['displayName']} <{manager['userPrincipalName']}> ({manager['id']})" \
        in flat
    assert f"group {group['displayName']} ({group['id']})" in flat
    assert sandbox.genesys.writes() == []


# 4. provision: one line per step

def test_provision_prints_one_line_per_step(sandbox: Sandbox, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, sandbox.config()))
    user = next(u for u in sandbox.graph.users if u["userPrincipalName"].startswith("aoife"))
    assert user["userPrincipalName"] not in {u["userName"] for u in sandbox.genesys.users.values()}
    result = run_cli("--config", cfg, "provision", user["userPrincipalName"])
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    steps = ["test connection", "import", "scope", "match", "action", "groups"]
    assert [line.split(" — ")[0] for line in lines] == [f"✓ {s}" for s in steps]
    assert re.search(r"✓ test connection — Graph and the target answered \(\d+ checks "
                     r"passed\)$", lines[0])
    data = json.loads(run_cli("--config", cfg, "provision", user["userPrincipalName"],
                              "--dry-run", "--output", "json").stdout)
    checks = data["steps"][0]["checks"]
    assert len(checks) >= 5 and all(c["ok"] for c in checks)   # the details are in the JSON


def test_provision_names_the_failing_check(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox.config(oauth=False)
    config["target"]["token"] = "wrong-token-wrong-token"
    cfg = str(write_config(tmp_path, config))
    result = run_cli("--config", cfg, "provision", sandbox.graph.users[0]["userPrincipalName"])
    assert result.exit_code == 4
    (line,) = result.stdout.strip().splitlines()
    assert line.startswith("✗ test connection — target") and "FAILED" in line
    assert "graph" not in line.split("FAILED")[0].lower()   # only the failed check is named


# 5. sandbox --directory FILE

def directory_file(tmp_path: Path) -> Path:
    from genesys_prov.sandbox.directory import demo_directory

    path = tmp_path / "my-directory.json"
    path.write_text(json.dumps(demo_directory(), indent=1), encoding="utf-8")
    return path


def edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")   # a different size too


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON (Expecting property name"),
    ("[1, 2]", 'expected an object with a "users" list'),
    ('{"users": [{"id": "1"}]}', 'users[0] needs "id" and "userPrincipalName"')])
def test_sandbox_directory_bad_file_is_one_line_exit_2(tmp_path: Path, text: str,
                                                       message: str) -> None:
    path = tmp_path / "dir.json"
    path.write_text(text, encoding="utf-8")
    result = run_cli("sandbox", "--directory", str(path), "--dir", str(tmp_path / "sb"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: --directory {path}: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "sb" / "genesys-prov.yaml").exists()


def test_sandbox_serves_the_file_and_its_changes(tmp_path: Path) -> None:
    path = directory_file(tmp_path)

    def rename_first(data: dict[str, Any]) -> None:
        data["users"][0]["displayName"] = "Megan B."

    edit(path, rename_first)
    served = load_directory_file(path)
    said: list[str] = []
    with Sandbox(directory=served, workdir=tmp_path / "sb") as sb:
        cfg = str(write_config(tmp_path, sb.config(scope="all")))
        watcher = DirectoryWatcher(path, sb.graph, said.append)
        assert sb.graph.users[0]["displayName"] == "Megan B."   # the file, not the demo
        assert run_cli("--config", cfg, "sync").exit_code == 0
        sb.genesys.reset_log()
        aoife = next(u for u in served["users"] if u["userPrincipalName"].startswith("aoife"))

        def new_title(data: dict[str, Any]) -> None:
            next(u for u in data["users"] if u["id"] == aoife["id"])["jobTitle"] = "Team Lead"

        edit(path, new_title)
        watcher.check()   # what the watcher thread does every half second
        assert said == ["my-directory.json: changed aoife.oneill@contoso.com: jobTitle"]
        result = run_cli("--config", cfg, "sync", "--output", "json")
        assert result.exit_code == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["mode"] == "incremental"
        (write,) = sb.genesys.writes()
        assert write.method == "PATCH" and write.body["Operations"] == [
            {"op": "replace", "path": "title", "value": "Team Lead"}]

        edit(path, lambda d: d["users"].remove(
            next(u for u in d["users"] if u["id"] == aoife["id"])))
        watcher.check()
        assert said[-1].endswith("deleted aoife.oneill@contoso.com (soft: restorable)")
        sb.genesys.reset_log()
        assert run_cli("--config", cfg, "sync").exit_code == 0
        (write,) = [w for w in sb.genesys.writes() if "/Users/" in w.path]
        assert write.body["Operations"] == [{"op": "replace", "path": "active", "value": False}]

        path.write_text("{oops", encoding="utf-8")
        watcher.check()
        assert "not valid JSON" in said[-1] and "last good version" in said[-1]
        assert aoife["id"] in sb.graph.deleted_users or aoife["id"].lower() in \
            sb.graph.deleted_users


def test_sandbox_banner_says_how_to_change_a_user(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt   # Ctrl-C at once

    monkeypatch.setattr(cli_module, "_wait_forever", interrupt)
    path = directory_file(tmp_path)
    result = run_cli("sandbox", "--directory", str(path), "--dir", str(tmp_path / "sb"))
    assert result.exit_code == 0, result.stderr
    assert f"Directory:        {path} (watched): edit a user and save" in result.stdout
    plain = run_cli("sandbox", "--users", "3", "--dir", str(tmp_path / "sb2"))
    assert "sandbox --directory my-directory.json" in plain.stdout
    assert plain.stdout.rstrip().endswith("stopped")

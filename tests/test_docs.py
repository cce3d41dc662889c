"""Every command documents itself with an example; the README lists every command and the
exit codes; the example configurations are valid."""

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from genesys_prov.cli import cli
from genesys_prov.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = sorted(cli.commands)
SUBCOMMANDS = sorted(
    f"{name} {sub}" for name, command in cli.commands.items()
    if isinstance(command, click.Group) for sub in command.commands)


@pytest.mark.parametrize("name", COMMANDS + SUBCOMMANDS)
def test_command_help_has_an_example(name):
    result = CliRunner().invoke(cli, [*name.split(), "--help"], prog_name="genesys-prov")
    assert result.exit_code == 0
    assert f"Usage: genesys-prov {name}" in result.output
    example = result.output.split("Example:", 1)[1]
    assert "genesys-prov" in example and name.split()[-1] in example


def test_readme_documents_commands_and_exit_codes():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in COMMANDS + SUBCOMMANDS:
        assert f"genesys-prov {name}" in readme
    for code in range(6):
        assert f"| {code} |" in readme
    assert readme.index("make demo") < 400 and readme.index("make test") < 400


@pytest.mark.parametrize("name", ["genesys-prov.yaml", "generic-scim.yaml"])
def test_example_configs_are_valid(name):
    env = {"GRAPH_CLIENT_SECRET": "x" * 8, "GENESYS_CLIENT_SECRET": "y" * 8,
           "SCIM_TOKEN": "z" * 8}
    parse_config((ROOT / "examples" / name).read_text(), base_dir=ROOT, environ=env)


def test_group_help_lists_exit_codes():
    result = CliRunner().invoke(cli, ["--help"])
    assert "Exit codes" in result.output
    assert isinstance(cli, click.Group)

"""The design rules of docs/architecture.md, held by tests: one-way imports between the
rooms, a pure planning core, short functions and command bodies, one exception tree, no
section banners, and each decision made in one place.

Each rule reads the source (``ast``), so breaking a rule fails here with the place named.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from genesys_prov.cli import cli
from genesys_prov.errors import GenesysProvError

PACKAGE = Path(__file__).resolve().parent.parent / "genesys_prov"
MODULES = sorted(PACKAGE.rglob("*.py"))
LIBRARY = [p for p in MODULES if "sandbox" not in p.relative_to(PACKAGE).parts
           and p.name != "__main__.py"]

# Which rooms each room may import (its own modules always). The order of the pipeline:
# cli -> console -> sync -> {source, target, state, report} -> plan -> mapping ->
# {config, http, ...}; only the command line imports the command line or the sandbox.
FOUNDATION = {"errors", "redact", "notify", "config", "strict_yaml"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "redact": set(),
    "notify": {"errors", "redact"},
    "strict_yaml": {"errors"},
    "config": {"errors", "redact", "notify", "strict_yaml"},
    "http": {"errors", "redact"},
    "mapping": FOUNDATION,
    "plan": FOUNDATION | {"mapping"},
    "source": FOUNDATION | {"http", "mapping", "plan"},
    "target": FOUNDATION | {"http", "mapping", "plan"},
    "state": FOUNDATION | {"mapping", "plan"},
    "report": FOUNDATION | {"mapping", "plan", "target"},
    "metrics": FOUNDATION | {"mapping", "plan", "target", "state", "report"},
    "starter": FOUNDATION | {"mapping"},
    "sync": FOUNDATION | {"http", "mapping", "plan", "source", "target", "state", "report"},
    "console": FOUNDATION | {"mapping", "plan", "source", "target", "state", "report", "sync"},
    "sandbox": FOUNDATION | {"http", "mapping", "plan", "source", "target", "state", "report",
                             "sync"},
    "cli": FOUNDATION | {"http", "mapping", "plan", "source", "target", "state", "report",
                         "metrics", "sync", "console", "starter", "sandbox"},
    "__main__": {"cli"},
    "__init__": set(),
}


def room(path: Path) -> str:
    """The room a module lives in: its sub-package, or its own name at the top."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def module_name(path: Path) -> str:
    """The dotted name of a module file."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_rooms(path: Path) -> list[tuple[int, str]]:
    """(line, room) of every genesys_prov import in a module, wherever it is written."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base
                                                                           else []))
            if base == "genesys_prov":  # from genesys_prov import x: x is the room
                names = [f"genesys_prov.{a.name}" for a in node.names]
            else:
                names = [base]
        for name in names:
            parts = name.split(".")
            if parts[0] == "genesys_prov" and len(parts) > 1 and parts[1] != "__version__":
                out.append((node.lineno, parts[1]))
    return out


def import_violations(paths: list[Path]) -> list[str]:
    """Every import that goes against :data:`ALLOWED`."""
    bad = []
    for path in paths:
        mine = room(path)
        allowed = ALLOWED[mine] | {mine}
        for line, other in imported_rooms(path):
            if other not in allowed:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {mine} imports {other}")
    return bad


def test_every_module_is_in_a_known_room() -> None:
    assert sorted({room(p) for p in MODULES} - set(ALLOWED)) == []


def test_imports_go_one_way() -> None:
    assert import_violations(MODULES) == []


def test_the_import_rule_catches_a_wrong_import(tmp_path: Path) -> None:
    """The rule can fail: a planning module that imports the SCIM client is reported."""
    bad = PACKAGE / "plan" / "_rule_probe.py"
    bad.write_text("from genesys_prov.target.scim import ScimClient\n", encoding="utf-8")
    try:
        assert import_violations([bad]) == [
            "genesys_prov/plan/_rule_probe.py:1: plan imports target"]
    finally:
        bad.unlink()


def test_planning_loads_no_network_and_no_database() -> None:
    """The planning core (plan/ and mapping/) is pure: importing all of it loads neither
    HTTP nor SQLite."""
    names = [module_name(p) for p in MODULES if room(p) in ("plan", "mapping")]
    code = ("import sys\n" + "".join(f"import {n}\n" for n in names) +
            "print(sorted(m for m in ('requests', 'msal', 'urllib3', 'sqlite3') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# functions: length and nesting

MAX_LINES = 80
MAX_DEPTH = 4
BLOCKS = (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.AsyncFor, ast.AsyncWith, ast.Match)
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def depth(node: ast.AST, level: int = 0) -> int:
    """How deep blocks nest in a function (an ``elif`` is not deeper; nested functions
    are measured on their own)."""
    deepest = level
    for name, value in ast.iter_fields(node):
        children = value if isinstance(value, list) else [value]
        for child in children:
            if not isinstance(child, ast.AST) or isinstance(child, SCOPES):
                continue
            is_elif = (isinstance(node, ast.If) and name == "orelse" and len(children) == 1
                       and isinstance(child, ast.If))
            deeper = isinstance(child, BLOCKS) and not is_elif
            deepest = max(deepest, depth(child, level + 1 if deeper else level))
    return deepest


def long_or_deep(paths: list[Path]) -> list[str]:
    """Functions longer than :data:`MAX_LINES` or nesting deeper than :data:`MAX_DEPTH`."""
    bad = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                nesting = depth(node)
                if lines > MAX_LINES or nesting > MAX_DEPTH:
                    bad.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                               f"{node.name}: {lines} lines, depth {nesting}")
    return bad


def test_functions_are_short_and_shallow() -> None:
    assert long_or_deep(MODULES) == []


def test_the_length_rule_catches_a_long_function(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    nested = "def g(a):\n" + "".join("    " * (i + 1) + "if a:\n" for i in range(5)) + \
        "    " * 6 + "return 1\n"
    probe.write_text(f"def f():\n{body}\n{nested}", encoding="utf-8")
    found = [line.split(" ", 1)[1] for line in long_or_deep_at(probe)]
    assert found == [f"f: {MAX_LINES + 1} lines, depth 0", "g: 7 lines, depth 5"]


def long_or_deep_at(path: Path) -> list[str]:
    """:func:`long_or_deep` for a file outside the package."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > MAX_LINES or depth(node) > MAX_DEPTH:
                bad.append(f"{path.name}:{node.lineno} {node.name}: {lines} lines, "
                           f"depth {depth(node)}")
    return bad


# the command line

MAX_COMMAND_BODY = 15


def commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    """Every command of the CLI, with its full name."""
    out = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            out += commands(command, full + " ")
        else:
            out.append((full, command))
    return out


def body_lines(function: ast.FunctionDef) -> int:
    """Lines of a function's body after its docstring."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return (body[-1].end_lineno or 0) - body[0].lineno + 1 if body else 0


def test_command_bodies_are_options_call_render_exit() -> None:
    """A command body is at most 15 lines: options → one library call → render → exit."""
    tree = ast.parse((PACKAGE / "cli.py").read_text(encoding="utf-8"))
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    long = []
    for name, command in commands(cli):
        callback = command.callback
        while hasattr(callback, "__wrapped__"):
            callback = callback.__wrapped__
        assert callback is not None
        lines = body_lines(functions[callback.__name__])
        if lines > MAX_COMMAND_BODY:
            long.append(f"{name}: {lines} lines")
    assert long == []


def test_no_http_templates_or_file_formats_in_the_cli() -> None:
    text = (PACKAGE / "cli.py").read_text(encoding="utf-8")
    for banned in ("import requests", "import yaml", "import csv", "TEMPLATE", ".get(\"/",
                   "conn.", "connect("):
        assert banned not in text, banned


def test_every_command_that_prints_data_has_the_one_output_option() -> None:
    printing = {"check", "sync", "apply", "explain", "provision", "logs", "state show",
                "state retry", "mapping test", "mapping validate"}
    for name, command in commands(cli):
        options = {o.name: o for o in command.params if isinstance(o, click.Option)}
        if name in printing:
            output = options.get("output")
            assert output is not None, name
            assert isinstance(output.type, click.Choice), name
            assert list(output.type.choices)[:2] == ["table", "json"], name
            json_flag = options.get("as_json")
            assert json_flag is None or json_flag.hidden, name


def test_the_cli_branches_on_enums_not_prose() -> None:
    """No comparison in cli.py involves a sentence (a string with a space)."""
    tree = ast.parse((PACKAGE / "cli.py").read_text(encoding="utf-8"))
    prose = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Compare)
             for c in ast.walk(node) if isinstance(c, ast.Constant)
             and isinstance(c.value, str) and " " in c.value]
    assert prose == []


# exceptions, banners

def test_every_exception_a_caller_can_catch_is_a_genesys_prov_error() -> None:
    import importlib

    strays = []
    for path in LIBRARY:
        module = importlib.import_module(module_name(path))
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, BaseException) and \
                    value.__module__ == module.__name__ and not name.startswith("_") and \
                    not issubclass(value, GenesysProvError):
                strays.append(f"{module.__name__}.{name}")
    assert strays == []


BANNER = re.compile(r"^\s*# ?-{3,}|^\s*#.*-{3,}\s*$")


def test_no_module_is_divided_by_section_banners() -> None:
    """One module, one noun: a ``# --- section ---`` banner means the module should be
    split."""
    found = [f"{p.relative_to(PACKAGE.parent)}:{i}" for p in MODULES
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if BANNER.match(line)]
    assert found == []


# one place for each decision

def callers(name: str) -> set[str]:
    """Modules (relative paths) that call ``name(...)`` or ``x.name(...)``."""
    out = set()
    for path in LIBRARY:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else \
                    func.id if isinstance(func, ast.Name) else None
                if called == name:
                    out.add(str(path.relative_to(PACKAGE)))
    return out


def users_of(name: str) -> set[str]:
    """Modules that mention a name at all (other than defining it)."""
    return {str(p.relative_to(PACKAGE)) for p in MODULES
            if re.search(rf"\b{name}\b", p.read_text(encoding="utf-8"))}


@pytest.mark.parametrize(("what", "found", "allowed"), [
    ("every plan comes from build_plan, gathered in sync/inputs",
     lambda: callers("build_plan"), {"sync/inputs.py", "sync/snapshot_planner.py"}),
    ("the scope reason is decided once",
     lambda: users_of("NOT_ASSIGNED") | users_of("DEFAULT_ACCESS_REASON"),
     {"source/scope.py"}),
    ("the Genesys data rules are applied in one place",
     lambda: callers("apply_genesys_rules"), {"mapping/genesys_rules.py"}),
    ("outcomes are recorded by the one Bookkeeper",
     lambda: callers("outcome_records") | callers("escrow_failure") | callers("link"),
     {"sync/bookkeeping.py"}),
    ("the run skeleton exists once",
     lambda: callers("start_run") | callers("finish_run"), {"sync/context.py"}),
    ("the Graph reader is built in one place",
     lambda: callers("GraphReader") | callers("ScimClient"), {"sync/connections.py"}),
])
def test_one_place_for_each_decision(what: str, found: object, allowed: set[str]) -> None:
    assert callable(found)
    assert found() <= allowed, what

"""The command line: parse options, call one library function, render the result.

Every expected failure is a :class:`~genesys_prov.errors.GenesysProvError`; it becomes a
one-line ``Error: ...`` on stderr and the documented exit code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml
from rich.console import Console
from rich.text import Text

from genesys_prov import __version__, redact, report
from genesys_prov.config import Config, load_config, parse_config
from genesys_prov.errors import (
    EXIT_CHANGES_FAILED,
    EXIT_CONNECT,
    EXIT_INTERNAL,
    EXIT_SAFETY,
    EXIT_USAGE,
    ConfigError,
    GenesysProvError,
)
from genesys_prov.mapping import expressions
from genesys_prov.mapping.mappings import default_mappings_text, load_mappings
from genesys_prov.sync.check import run_check
from genesys_prov.sync.incidents import note_check_passed
from genesys_prov.sync.result import SyncResult
from genesys_prov.sync.run import run_sync

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
if not console.is_terminal and "COLUMNS" not in os.environ:
    # Pipes and cron logs: tables wide enough that values are not folded.
    console = Console(highlight=False, width=140)


def fail(exc: GenesysProvError) -> NoReturn:
    """Print ``Error: <one line>`` and exit with the error's code."""
    message = redact.scrub(str(exc))
    click.echo(f"Error: {message}", err=True)  # never wrapped: one line stays one line
    sys.exit(exc.exit_code)


@contextlib.contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn domain exceptions into ``Error: ...`` and their exit code."""
    try:
        yield
    except GenesysProvError as exc:
        fail(exc)


def _setup_logging(verbose: int, log_file: str | None = None) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.addFilter(redact.RedactingFilter())
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(min(level, logging.INFO) if log_file else level)
    handlers[0].setLevel(level)
    if verbose < 3:  # urllib3 and msal are chatty below that
        logging.getLogger("urllib3").setLevel(max(level, logging.INFO))
        logging.getLogger("msal").setLevel(max(level, logging.INFO))


class Context:
    """Options shared by every command."""

    def __init__(self, config_path: str | None, verbose: int) -> None:
        self.config_path = config_path
        self.verbose = verbose

    def config(self) -> Config:
        """Load the configuration or exit 2."""
        with errors_to_exit():
            return load_config(self.config_path)
        raise AssertionError("unreachable")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", envvar="GENESYS_PROV_CONFIG",
              help="Configuration file (default: $GENESYS_PROV_CONFIG, else ./genesys-prov.yaml).")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (repeatable).")
@click.option("--log-file", metavar="PATH",
              help="Also append log lines (INFO and up, secrets redacted) to this file.")
@click.version_option(__version__, prog_name="genesys-prov")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int,
        log_file: str | None) -> None:
    """Provision Microsoft Entra ID users into Genesys Cloud over SCIM 2.0.

    Reads users and groups from Microsoft Graph, applies the attribute mappings, compares
    the result with the SCIM target, and creates, updates, deactivates, reactivates and
    deletes users, and keeps group memberships and managers in sync.

    Example:

        genesys-prov check

        genesys-prov sync --dry-run

    Exit codes: 0 success, 1 some changes failed, 2 usage or configuration error,
    3 blocked by a safety guard, 4 cannot connect or authenticate (or quarantined),
    5 another run holds the lock, 70 internal error (a bug).
    """
    _setup_logging(verbose, log_file)
    ctx.obj = Context(config_path, verbose)


@cli.command()
@click.option("--output", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="How to print the result.")
@click.pass_obj
def check(obj: Context, output: str) -> None:
    """Test both connections without writing anything.

    Gets a Graph token and reads one user; authenticates to the target and filters for a
    random userName (expecting an empty list); reads /ServiceProviderConfig and /Schemas
    when the target offers them. Exits 4 if a side is unreachable or refuses. When the job
    is quarantined, a passing check lets its next run probe at once.

    Example:

        genesys-prov --config genesys-prov.yaml check
    """
    config = obj.config()
    with errors_to_exit():
        result = run_check(config)
        quarantined = result.ok and note_check_passed(config)
    if output == "json":
        click.echo(report.to_json({**result.data(), "quarantine_probe_next_run": quarantined}))
    else:
        console.print(report.check_table(result))
        if quarantined:
            console.print("The job is quarantined: its next run probes the connection at once "
                          "and, when that passes, leaves quarantine with a full sync.")
    if not result.ok:
        sys.exit(EXIT_CONNECT)


_LABELS = {"source": "reading the directory", "groups": "reading group members",
           "target": "reading the target", "apply": "applying changes"}


def _progress(rate_per_minute: int) -> tuple[Callable[[str, int], None], Callable[[], None]]:
    """Progress for a run: rich progress bars (count, rate, time left) on a terminal;
    periodic INFO log lines otherwise (cron: they go to --log-file, or stderr with -v).
    Before applying, what the writes cost at the rate limit is said up front."""
    log = logging.getLogger("genesys_prov.progress")
    totals: dict[str, int] = {}
    if not err_console.is_terminal:
        last: dict[str, int] = {}
        seen: dict[str, int] = {}
        current: list[str] = []

        def finish_stage() -> None:
            if current and seen.get(current[0], -1) != last.get(current[0], -1):
                log.info("%s: %d done", _LABELS.get(current[0], current[0]), seen[current[0]])
                last[current[0]] = seen[current[0]]

        def log_update(stage: str, n: int) -> None:
            if not current or current[0] != stage:
                finish_stage()
                current[:] = [stage]
            if stage == "plan":
                totals["apply"] = n
                line = report.estimate_line(n, rate_per_minute)
                if line:
                    log.info("%s", line)
                return
            seen[stage] = n
            step = max(1000, totals.get(stage, 0) // 10)
            if n - last.get(stage, 0) >= step or n == totals.get(stage):
                last[stage] = n
                of = f" of {totals[stage]}" if stage in totals else ""
                log.info("%s: %d%s", _LABELS.get(stage, stage), n, of)

        return log_update, finish_stage

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    bars = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeRemainingColumn(), console=err_console,
                    transient=True)
    tasks: dict[str, Any] = {}
    bars.start()

    def update(stage: str, n: int) -> None:
        if stage == "plan":
            totals["apply"] = n
            line = report.estimate_line(n, rate_per_minute)
            if line:
                bars.console.print(line)
            return
        if stage not in tasks:
            tasks[stage] = bars.add_task(_LABELS.get(stage, stage), total=totals.get(stage))
        bars.update(tasks[stage], completed=n)

    return update, bars.stop


def _render_sync(result: SyncResult, output: str, max_rows: int) -> None:
    if output == "json":
        click.echo(report.to_json(result.data()))
        return
    for renderable in report.plan_renderables(result.plan, max_rows):
        console.print(renderable)
    if result.applied is not None and result.applied.failed:
        console.print(report.failures_table(result.applied.outcomes, max_rows))
    console.print(report.summary_line(result))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Plan and print; send no writes.")
@click.option("--allow-deletions", is_flag=True,
              help="Apply deactivations and deletions beyond safety.max_deactivations, and "
                   "accept a drop in users in scope beyond safety.max_source_drop.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="How to print the plan and the result.")
@click.option("--max-rows", type=click.IntRange(min=0), default=200, show_default=True,
              help="Changes shown in the table output (JSON always has all).")
@click.option("-q", "--quiet", is_flag=True,
              help="For cron: print only errors and a one-line summary.")
@click.option("--full", is_flag=True,
              help="Read both sides completely even when the directory did not change.")
@click.option("--report", "reports", multiple=True, metavar="PATH",
              help="Also write the plan (and outcomes) to a file: .json, .csv, .md or .html "
                   "by extension. Repeatable.")
@click.option("--plan-out", metavar="PATH",
              help="With --dry-run: write the plan for `genesys-prov apply` (checksummed).")
@click.option("--retry-now", is_flag=True,
              help="Send the changes waiting in escrow now instead of at their next retry.")
@click.pass_obj
def sync(obj: Context, dry_run: bool, allow_deletions: bool, output: str,
         max_rows: int, quiet: bool, full: bool, reports: tuple[str, ...],
         plan_out: str | None, retry_now: bool) -> None:
    """Read the directory and the target, plan, and apply the plan.

    With --dry-run the plan is printed and nothing is written. Exits 1 when some changes
    failed (the others are applied), 3 when a safety guard held deactivations or stopped
    the run, 5 when another run holds the state's lock.

    Example:

        genesys-prov sync --dry-run

        genesys-prov sync --output json > result.json

        genesys-prov sync --dry-run --report plan.md --report plan.csv

        genesys-prov sync --dry-run --plan-out plan.json

        genesys-prov sync --retry-now
    """
    config = obj.config()
    if plan_out and not dry_run:
        fail(ConfigError("--plan-out needs --dry-run: a plan is made to be reviewed, then "
                         "applied with `genesys-prov apply`"))
    with errors_to_exit():
        report.check_report_paths(reports)
    update: Callable[[str, int], None]
    stop: Callable[[], None]
    if quiet and err_console.is_terminal:  # no bars; without a terminal, log lines go on
        update, stop = (lambda stage, n: None), (lambda: None)
    else:
        update, stop = _progress(config.target.rate_limit_per_minute)
    try:
        with errors_to_exit():
            result = run_sync(config, dry_run=dry_run, allow_deletions=allow_deletions,
                              full=full, progress=update, plan_out=plan_out,
                              retry_now=retry_now)
    finally:
        stop()
    _finish(result, output, max_rows, quiet, reports)


def _finish(result: SyncResult, output: str, max_rows: int, quiet: bool,
            reports: tuple[str, ...]) -> None:
    """Print a sync or apply result, write its reports, exit with its code."""
    if quiet and output == "table":
        click.echo(report.summary_line(result))
    elif output == "table" and result.mode == "full" and result.mode_reason and \
            result.mode_reason != "no delta links yet (first run, or after state reset)":
        console.print(f"Full sync: {result.mode_reason}.", markup=False)
        _render_sync(result, output, max_rows)
    else:
        _render_sync(result, output, max_rows)
    logging.getLogger("genesys_prov.sync.run").info("%s", report.summary_line(result))
    with errors_to_exit():
        report.write_reports(reports, result)
    if result.applied is not None and result.applied.aborted:
        click.echo(f"Error: the run stopped: {redact.scrub(result.applied.aborted)}", err=True)
        sys.exit(EXIT_CONNECT)
    if result.quarantined:
        click.echo(f"Error: the job is now quarantined ({result.quarantined}); later runs only "
                   "probe the connection until it works", err=True)
        sys.exit(EXIT_CONNECT)
    if result.plan.held:
        click.echo(f"Error: {result.plan.held_reason}", err=True)
        sys.exit(EXIT_SAFETY)
    if result.failed:
        sys.exit(EXIT_CHANGES_FAILED)


@cli.group()
def mapping() -> None:
    """Test expressions and validate mappings files.

    Example:

        genesys-prov mapping test 'ToLower([userPrincipalName])' --attr userPrincipalName=A@B.com

        genesys-prov mapping validate
    """


@mapping.command("test")
@click.argument("expression")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE",
              help="A source attribute (Entra or Graph name); repeat a name for a "
                   "multi-valued attribute.")
@click.option("--user", "user_file", type=click.Path(dir_okay=False), metavar="FILE.json",
              help="Source attributes from a Graph user object in a JSON file.")
@click.option("--from-graph", "upn", metavar="UPN",
              help="Read the user from Microsoft Graph (needs the configuration).")
@click.option("--json", "as_json", is_flag=True, help='Print {"value": ...} as JSON.')
@click.option("--reveal", is_flag=True, help="Show values an expression marks with Redact.")
@click.pass_obj
def mapping_test(obj: Context, expression: str, attrs: tuple[str, ...], user_file: str | None,
                 upn: str | None, as_json: bool, reveal: bool) -> None:
    """Evaluate one Entra expression and print its value alone.

    Attributes come from --user, then --from-graph, then --attr (later ones win). A null
    value prints nothing (or {"value": null} with --json); a list prints one value a line.
    Exits 2 on a syntax error, with a caret under the column.

    Example:

    \b
        genesys-prov mapping test 'Join(".", [givenName], [surname])' \\
            --attr givenName=Zoë --attr surname=Lefèvre

        genesys-prov mapping test 'ToUpper([department])' --from-graph ada@contoso.com --json
    """
    from genesys_prov.mapping import tools as mt

    with errors_to_exit():
        expressions.parse(expression)  # syntax errors first, before any request
        user: dict[str, Any] = {}
        if user_file:
            user.update(mt.load_user_file(user_file))
        if upn:
            from genesys_prov.sync.connections import connect

            conn = connect(obj.config())
            user.update(conn.graph.get(mt.graph_user_path(upn),
                                       {"$select": ",".join(mt.graph_select_for(expression))}))
        user.update(mt.parse_attr_options(attrs))
        result = mt.try_expression(expression, user)
    data = result.data(reveal)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    value = data["value"]
    if value is None:
        return
    for item in value if isinstance(value, list) else [value]:
        click.echo(item if isinstance(item, str) else json.dumps(item)
                   if not isinstance(item, bool) else str(item))


@mapping.command("validate")
@click.option("--mappings", "mappings_path", type=click.Path(dir_okay=False),
              help="The mappings file (default: the one the configuration names, else "
                   "./mappings.yaml).")
@click.option("--offline", is_flag=True,
              help="Check against the built-in Genesys schema instead of the target's /Schemas.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="How to print the findings.")
@click.pass_obj
def mapping_validate(obj: Context, mappings_path: str | None, offline: bool,
                     output: str) -> None:
    """Check a mappings file: every expression parses, every source attribute is known,
    every target attribute exists in the target's schema, and warn about mappings that can
    never produce a value or match on an attribute the target cannot filter on.

    Without a configuration (or with --offline) target attributes are checked against
    the built-in Genesys schema. Exits 2 when there is an error, 0 otherwise (warnings
    included).

    Example:

        genesys-prov mapping validate

        genesys-prov mapping validate --mappings mappings.yaml --offline
    """
    from genesys_prov.config import find_config
    from genesys_prov.mapping import tools as mt

    with errors_to_exit():
        config = None
        if not offline or mappings_path is None:
            try:
                find_config(obj.config_path)
                config = obj.config()
            except ConfigError:
                if not offline and obj.config_path:
                    raise
        path = Path(mappings_path) if mappings_path else \
            (config.mappings_path if config else Path("mappings.yaml"))
        mappings = load_mappings(path)
        flavor = config.target.flavor if config else "genesys"
        schemas: list[dict[str, Any]] | None = None
        source = "none (generic target, offline)"
        if config is not None and not offline:
            from genesys_prov.sync.connections import connect

            body = connect(config).scim.get("/Schemas", auth=True)
            items = body.get("Resources") if isinstance(body, dict) else body
            schemas = items if isinstance(items, list) else None
            source = f"the target's /Schemas ({len(schemas or [])} schemas)"
        elif flavor == "genesys":
            schemas = mt.builtin_genesys_schemas()
            source = "the built-in Genesys schema"
        findings = mt.validate_mappings(mappings, schemas, flavor)
    errors = [f for f in findings if f.level == "error"]
    if output == "json":
        click.echo(report.to_json({"mappings": str(path), "schema": source, "ok": not errors,
                                   "findings": [f.data() for f in findings]}))
    else:
        console.print(f"Mappings {path}: checked against {source}.", markup=False)
        for f in findings:
            style = "red" if f.level == "error" else "yellow"
            console.print(f"[{style}]{f.level}[/{style}]: ", end="")
            console.print(f"{f.where}: {f.message}", markup=False)
        console.print(f"{len(errors)} error(s), {len(findings) - len(errors)} warning(s)")
    if errors:
        sys.exit(EXIT_USAGE)


@cli.command()
@click.option("--since", metavar="WHEN", help="Only records since 30m, 2h, 7d or a date.")
@click.option("--status", type=click.Choice(["success", "failure", "skipped", "warning"],
                                            case_sensitive=False), help="Only this status.")
@click.option("--action", help="Only this action (Create, Update, Disable, Enable, Delete, "
                               "AddMembers, RemoveMembers, Skip, Other).")
@click.option("--user", help="Only this user (UPN / display identity or source object id).")
@click.option("--run", "run_id", metavar="ID", help="Only this run.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def logs(obj: Context, since: str | None, status: str | None, action: str | None,
         user: str | None, run_id: str | None, as_json: bool) -> None:
    """Show the provisioning log: one record per attempted change, skip and failure.

    Example:

        genesys-prov logs --since 2h --status failure

        genesys-prov logs --user ada@contoso.com --json
    """
    from genesys_prov.state.db import State, parse_since

    config = obj.config()
    with errors_to_exit(), State.open(config.state_dir) as state:
        records = state.query_log(parse_since(since) if since else None, status, action,
                                  user, run_id)
    if as_json:
        for record in records:
            click.echo(json.dumps(record, ensure_ascii=False, default=str))
        return
    console.print(report.log_table(records))


@cli.group()
def state() -> None:
    """Inspect or reset the state database (links, watermark, runs, log).

    Example:

        genesys-prov state show

        genesys-prov state reset --forget-links
    """


@state.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def state_show(obj: Context, as_json: bool) -> None:
    """Show the state: links, delta links, the last run, the size of the log.

    Example:

        genesys-prov state show
    """
    from genesys_prov.state.db import State

    config = obj.config()
    with errors_to_exit(), State.open(config.state_dir) as db:
        summary = db.summary()
    if as_json:
        click.echo(report.to_json(summary))
        return
    console.print(report.state_table(summary))


@state.command("reset")
@click.option("--forget-links", is_flag=True,
              help="Also forget which directory object is which target object.")
@click.pass_obj
def state_reset(obj: Context, forget_links: bool) -> None:
    """Entra's "restart": clear the watermark and settings digests (the next run is a full
    sync). --forget-links also forgets the links, so users are matched again.

    Example:

        genesys-prov state reset
    """
    from genesys_prov.state.db import RunLock, State

    config = obj.config()
    with errors_to_exit(), RunLock(config.state_dir), State.open(config.state_dir) as db:
        db.reset(forget_links)
    click.echo("State reset" + (" (links forgotten)." if forget_links else "."))


@state.command("retry")
@click.argument("user", required=False)
@click.pass_obj
def state_retry(obj: Context, user: str | None) -> None:
    """Make changes waiting in escrow due now: all of them, or one user's (UPN / display
    identity or source object id). The next `sync` sends them.

    Example:

        genesys-prov state retry

        genesys-prov state retry ada@contoso.com
    """
    from genesys_prov.state.db import State

    config = obj.config()
    with errors_to_exit(), State.open(config.state_dir) as db:
        changed = db.escrow_due_now(user)
    if user and not changed:
        fail(ConfigError(f"state retry: {user} has no change waiting in escrow"))
    click.echo(f"{changed} escrowed change(s) are due now; the next `sync` sends them.")


@cli.command()
@click.argument("user")
@click.option("--output", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="How to print the explanation.")
@click.pass_obj
def explain(obj: Context, user: str, output: str) -> None:
    """Explain one user without writing anything: the source values read, the scope
    decision (assignments and every scoping clause), each mapping's value, the matching
    attempts in precedence order, and the planned change with old → new.

    Example:

        genesys-prov explain ada@contoso.com

        genesys-prov explain 8f1c0d2e-0000-4000-8000-000000000000 --output json
    """
    from genesys_prov.sync.explain import explain_user

    config = obj.config()
    with errors_to_exit():
        data = explain_user(config, user)
    if output == "json":
        click.echo(report.to_json(data))
        return
    for renderable in report.explain_renderables(data):
        console.print(renderable)


@cli.command()
@click.argument("user")
@click.option("--dry-run", is_flag=True, help="Run the steps but write nothing.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="How to print the steps.")
@click.pass_obj
def provision(obj: Context, user: str, dry_run: bool, output: str) -> None:
    """Provision one user now (Entra's "provision on demand"): test connection, import,
    scope, match, action — each step with its outcome — then add the user to their groups.
    Logged in the provisioning log like any run.

    Example:

        genesys-prov provision ada@contoso.com --dry-run

        genesys-prov provision ada@contoso.com
    """
    from genesys_prov.sync.provision import provision_user

    config = obj.config()
    with errors_to_exit():
        data = provision_user(config, user, dry_run=dry_run)
    if output == "json":
        click.echo(report.to_json(data))
    else:
        for step in data["steps"]:
            mark = Text("✓ " if step["ok"] else "✗ ", style="green" if step["ok"] else "red")
            console.print(Text.assemble(mark, (step["step"], "bold"), " — ", step["detail"]))
        if dry_run:
            console.print("Dry run: nothing was written.")
    if not all(step["ok"] for step in data["steps"]):
        sys.exit(EXIT_CONNECT if not data["steps"][0]["ok"] else EXIT_CHANGES_FAILED)


INIT_TEMPLATE = """\
# genesys-prov configuration, written by `genesys-prov init`. Secrets come from the
# environment: export GRAPH_CLIENT_SECRET and {secret_var} before running.
source:
  tenant_id: {tenant_id}
  client_id: {client_id}
  client_secret: ${{GRAPH_CLIENT_SECRET}}
  scope: {scope}
{sp_line}target:
  url: {target_url}
{auth_block}  flavor: {flavor}
  rate_limit_per_minute: 300
  concurrency: 4
mappings: mappings.yaml
safety:
  max_deactivations: 500
  max_source_drop: "30%"
"""


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Where to write the files.")
@click.option("--tenant-id", help="Entra tenant (domain or id).")
@click.option("--client-id", help="App registration (client) id for Microsoft Graph.")
@click.option("--target-url", help="SCIM tenant URL, e.g. "
              "https://api.mypurecloud.ie/api/v2/scim/v2.")
@click.option("--genesys-client-id", help="Genesys OAuth client id (else a static token).")
@click.option("--flavor", type=click.Choice(["genesys", "generic"]), default="genesys",
              show_default=True)
@click.option("--scope", type=click.Choice(["assigned", "all"]), default="assigned",
              show_default=True)
@click.option("--service-principal-id", help="Enterprise app object id (scope: assigned).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--no-check", is_flag=True, help="Do not run `check` afterwards.")
def init(directory: Path, tenant_id: str | None, client_id: str | None,
         target_url: str | None, genesys_client_id: str | None, flavor: str, scope: str,
         service_principal_id: str | None, force: bool, no_check: bool) -> None:
    """Write a starter genesys-prov.yaml and mappings.yaml, then run `check`.

    Asks for what the options do not give when run on a terminal. Secrets are never
    written: the configuration reads them from GRAPH_CLIENT_SECRET and
    GENESYS_CLIENT_SECRET (or GENESYS_TOKEN).

    Example:

        genesys-prov init --tenant-id contoso.onmicrosoft.com --client-id 1111... \\
            --target-url https://api.mypurecloud.ie/api/v2/scim/v2 --scope all
    """
    def ask(value: str | None, prompt: str) -> str:
        if value:
            return value
        if not sys.stdin.isatty():
            fail(ConfigError(f"init: --{prompt.lower().replace(' ', '-')} is required when "
                             "not run on a terminal"))
        return str(click.prompt(prompt))

    tenant_id = ask(tenant_id, "Tenant id")
    client_id = ask(client_id, "Client id")
    target_url = ask(target_url, "Target url")
    if scope == "assigned":
        service_principal_id = ask(service_principal_id, "Service principal id")
    config_path = directory / "genesys-prov.yaml"
    mappings_path = directory / "mappings.yaml"
    for path in (config_path, mappings_path):
        if path.exists() and not force:
            fail(ConfigError(f"init: {path} exists (use --force to overwrite)"))
    if genesys_client_id:
        secret_var = "GENESYS_CLIENT_SECRET"
        auth = (f"  oauth: {{client_id: {genesys_client_id}, "
                f"client_secret: ${{GENESYS_CLIENT_SECRET}}}}\n")
    else:
        secret_var = "GENESYS_TOKEN"
        auth = "  token: ${GENESYS_TOKEN}\n"
    text = INIT_TEMPLATE.format(
        tenant_id=tenant_id, client_id=client_id, scope=scope, target_url=target_url,
        sp_line=f"  service_principal_id: {service_principal_id}\n"
        if service_principal_id else "", auth_block=auth, flavor=flavor, secret_var=secret_var)
    directory.mkdir(parents=True, exist_ok=True)
    config_path.write_text(text, encoding="utf-8")
    mappings_path.write_text(default_mappings_text(), encoding="utf-8")
    click.echo(f"Wrote {config_path} and {mappings_path}.")
    needed = ["GRAPH_CLIENT_SECRET", secret_var]
    with errors_to_exit():  # validate what was written, whatever the environment holds
        parse_config(text, base_dir=directory, environ={v: "placeholder" for v in needed})
    missing = [v for v in needed if v not in os.environ]
    if no_check or missing:
        if missing:
            click.echo(f"Next: export {' and '.join(missing)}, then run "
                       f"`genesys-prov --config {config_path} check`.")
        return
    with errors_to_exit():
        config = load_config(config_path)
    result = None
    try:
        result = run_check(config)
    except GenesysProvError as exc:
        click.echo(f"check: {redact.scrub(str(exc))}", err=True)
    if result is not None:
        console.print(report.check_table(result))
        if not result.ok:
            sys.exit(EXIT_CONNECT)


@cli.command("apply")
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--max-age", default="24h", show_default=True,
              help="Refuse plans older than this (e.g. 90m, 24h, 2d).")
@click.option("--allow-deletions", is_flag=True,
              help="Apply deactivations and deletions beyond safety.max_deactivations.")
@click.option("--output", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="How to print the result.")
@click.option("--report", "reports", multiple=True, metavar="PATH",
              help="Also write the outcome to a file (.json, .csv, .md, .html).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and a summary line.")
@click.pass_obj
def apply_command(obj: Context, plan_path: str, max_age: str, allow_deletions: bool,
                  output: str, reports: tuple[str, ...], quiet: bool) -> None:
    """Apply a reviewed plan exactly, as made by `sync --dry-run --plan-out`.

    Refuses a plan whose checksum does not match, whose configuration or mappings changed,
    or that is older than --max-age. Each change is sent with If-Match and the version the
    object had when the plan was made: whatever changed in the target since is skipped and
    reported, never overwritten.

    Example:

        genesys-prov sync --dry-run --plan-out plan.json --report plan.html

        genesys-prov apply plan.json
    """
    from genesys_prov.plan.file import parse_age
    from genesys_prov.sync.run import apply_plan_file

    config = obj.config()
    with errors_to_exit():
        report.check_report_paths(reports)
        result = apply_plan_file(config, plan_path, max_age=parse_age(max_age),
                                 allow_deletions=allow_deletions)
    _finish(result, output, 200, quiet, reports)


def _write_sandbox_config(sandbox: Any, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mappings.yaml").write_text(default_mappings_text(), encoding="utf-8")
    path = directory / "genesys-prov.yaml"
    text = yaml.safe_dump(sandbox.config(mappings="mappings.yaml"), sort_keys=False)
    partial = path.with_suffix(".yaml.partial")
    partial.write_text("# Points at a genesys-prov sandbox; valid while it runs.\n" + text,
                       encoding="utf-8")
    partial.replace(path)  # atomic: whoever waits for the file never reads half of it
    return path


@cli.command()
@click.option("--users", type=click.IntRange(min=1), default=None,
              help="Serve N synthetic users instead of the demo directory.")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Seed of the synthetic directory.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("sandbox"), show_default=True,
              help="Where to write genesys-prov.yaml, mappings.yaml and the test CA.")
@click.option("--quiet", is_flag=True, help="Print nothing (for scripts and the benchmark).")
def sandbox(users: int | None, seed: int, directory: Path, quiet: bool) -> None:
    """Serve the Graph and Genesys emulators on 127.0.0.1 until Ctrl-C.

    Writes a configuration pointing at them (credentials are the sandbox's own, not
    secrets), so any other command can be tried against it.

    Example:

        genesys-prov sandbox --users 1000

        genesys-prov --config sandbox/genesys-prov.yaml sync --dry-run
    """
    from genesys_prov.sandbox import Sandbox

    directory = directory.resolve()
    with errors_to_exit(), Sandbox(users=users, seed=seed, workdir=directory) as sb:
        # A long-running server keeps counters, not a log of every request.
        sb.graph.record_requests = False
        sb.genesys.record_requests = False
        path = _write_sandbox_config(sb, directory)
        if not quiet:
            console.print(f"Graph emulator:   {sb.graph_url}  (authority {sb.authority_host})")
            console.print(f"Genesys emulator: {sb.genesys_url}")
            console.print(f"Configuration:    {path}\n")
            console.print(path.read_text(encoding="utf-8"), markup=False)
            console.print(f"Try: genesys-prov --config {path} sync --dry-run")
            console.print("Serving until Ctrl-C…")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            if not quiet:
                console.print("stopped")


@cli.command()
@click.option("--max-rows", type=click.IntRange(min=0), default=40, show_default=True,
              help="Changes shown per table.")
def demo(max_rows: int) -> None:
    """Run a real sync against the built-in sandbox: dry-run, sync, sync again, and a change.

    Starts the Graph and Genesys emulators in-process, shows the plan of a dry-run (and
    that it wrote nothing), applies it, syncs again to show that nothing is left to do
    (an incremental run: no target request at all), then changes one user's job title in
    the directory and shows the one minimal PATCH it costs.

    Example:

        genesys-prov demo
    """
    from genesys_prov.sandbox import Sandbox

    with errors_to_exit(), tempfile.TemporaryDirectory(prefix="genesys-prov-demo-") as tmp, \
            Sandbox(workdir=Path(tmp)) as sb:
        config = load_config(_write_sandbox_config(sb, Path(tmp)))
        console.rule("genesys-prov demo")
        console.print(f"Directory: {len(sb.graph.users)} users in the Graph emulator; "
                      f"Genesys emulator holds {len(sb.genesys.users)} users.\n")
        console.rule("1. sync --dry-run")
        result = run_sync(config, dry_run=True)
        _render_sync(result, "table", max_rows)
        console.print(f"Genesys emulator received {len(sb.genesys.writes())} write(s).\n")
        console.rule("2. sync")
        result = run_sync(config)
        _render_sync(result, "table", max_rows)
        console.rule("3. sync again")
        sb.genesys.reset_log()
        result = run_sync(config)
        console.print(report.summary_line(result))
        console.print(f"Genesys emulator received {len(sb.genesys.writes())} write(s).\n")
        provisioned = {u["userName"].lower() for u in sb.genesys.users.values() if u["active"]}
        user = next(u for u in sb.graph.users
                    if u["userPrincipalName"].lower() in provisioned and u.get("jobTitle"))
        console.rule(f"4. {user['userPrincipalName']} gets a new job title in the directory")
        sb.graph.set_user(user["id"], jobTitle="Head of Customer Happiness")
        sb.genesys.reset_log()
        result = run_sync(config)
        console.print(report.changes_table(result.plan, max_rows))
        console.print(report.summary_line(result))
        for write in sb.genesys.writes():
            console.print(f"Genesys emulator received: {write.method} {write.path} "
                          f"{json.dumps(write.body.get('Operations'))}", markup=False,
                          soft_wrap=True)


def main() -> None:
    """Console-script entry point. Expected failures are handled by each command; anything
    else is a bug, reported on one line (the traceback goes to the log at -vv) with its own
    exit code, never as a traceback that could be mistaken for "some changes failed"."""
    try:
        cli(prog_name="genesys-prov", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("Error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the last line of defence: never a traceback
        logging.getLogger("genesys_prov").debug("unexpected error", exc_info=True)
        detail = redact.scrub(f"{type(exc).__name__}: {exc}").splitlines()[0][:300]
        click.echo(f"Error: internal error ({detail}); this is a bug in genesys-prov — run "
                   "again with -vv to log where it happened, and please report it", err=True)
        sys.exit(EXIT_INTERNAL)


__all__ = ["EXIT_USAGE", "cli", "main"]

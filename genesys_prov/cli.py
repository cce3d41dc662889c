"""The command line: parse options, call one library function, render the result, exit.

Every expected failure is a :class:`~genesys_prov.errors.GenesysProvError`; it becomes a
one-line ``Error: ...`` on stderr and the documented exit code. Rendering lives in
:mod:`genesys_prov.console`, everything else in the library.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from click.core import ParameterSource

from genesys_prov import __version__, redact
from genesys_prov.config import Config, load_config
from genesys_prov.console import console, verbatim_examples
from genesys_prov.errors import (
    EXIT_CHANGES_FAILED,
    EXIT_CONNECT,
    EXIT_INTERNAL,
    EXIT_SAFETY,
    EXIT_USAGE,
    ConfigError,
    GenesysProvError,
)
from genesys_prov.sync.result import FullReason, RunEnd, SyncResult

if TYPE_CHECKING:
    from genesys_prov.metrics import MetricsFile

F = Callable[..., Any]
EXIT_CODES = {RunEnd.ABORTED: EXIT_CONNECT, RunEnd.QUARANTINED: EXIT_CONNECT,
              RunEnd.HELD: EXIT_SAFETY, RunEnd.FAILED: EXIT_CHANGES_FAILED}


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
    """Options shared by every command (given before or after the command's name)."""

    def __init__(self, config_path: str | None, verbose: int, log_file: str | None = None,
                 config_origin: str | None = None) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self.log_file = log_file
        self.config_origin = config_origin  # "--config", "$GENESYS_PROV_CONFIG" or None

    def config(self) -> Config:
        """Load the configuration or exit 2."""
        with errors_to_exit():
            return load_config(self.config_path, self.config_origin)
        raise AssertionError("unreachable")


GLOBAL_OPTIONS = ("config_path", "verbose", "log_file")
CONFIG_HELP = "Configuration file (default: $GENESYS_PROV_CONFIG, else ./genesys-prov.yaml)."
VERBOSE_HELP = "More logging on stderr (repeatable)."
LOG_FILE_HELP = "Also append log lines (INFO and up, secrets redacted) to this file."


def _global_options() -> list[click.Parameter]:
    """The root's --config, -v and --log-file as a command's own options. No envvar and no
    default: given after the command's name, they replace what came before it."""
    return [click.Option(["--config", "config_path"], metavar="PATH", help=CONFIG_HELP),
            click.Option(["-v", "--verbose"], count=True, help=VERBOSE_HELP),
            click.Option(["--log-file"], metavar="PATH", help=LOG_FILE_HELP)]


class _Globals:
    """What every command of genesys-prov shares: the global options are accepted after
    its name too (the later one wins), and its help's Example block is kept verbatim."""

    params: list[click.Parameter]
    help: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = verbatim_examples(self.help)
        self._own_globals = not any(p.name == "config_path" for p in self.params)
        if self._own_globals:
            self.params.extend(_global_options())

    def invoke(self, ctx: click.Context) -> Any:
        """Apply the global options given after the name, then run the command (a leaf
        command sets up logging first, once every option is known)."""
        obj = ctx.find_object(Context)
        if self._own_globals and obj is not None:
            for name in GLOBAL_OPTIONS:
                value = ctx.params.pop(name, None)
                if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
                    setattr(obj, name, value)
                    if name == "config_path":
                        obj.config_origin = "--config"
        if obj is not None and not isinstance(self, click.Group):
            _setup_logging(obj.verbose, obj.log_file)
        return super().invoke(ctx)  # type: ignore[misc]


class GenesysCommand(_Globals, click.Command):
    """A genesys-prov command (see :class:`_Globals`)."""


class GenesysGroup(_Globals, click.Group):
    """A genesys-prov command group: its commands and sub-groups are of these classes."""

    command_class = GenesysCommand
    group_class = type


def output_option(what: str = "the result", json_alias: bool = False,
                  extra: tuple[str, ...] = ()) -> Callable[[F], F]:
    """The one ``--output table|json`` option of every command that prints data (``extra``
    formats after those two, e.g. ``csv``); with ``json_alias`` the older ``--json`` flag
    still works (hidden)."""
    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, output: str = "table", as_json: bool = False,
                    **kwargs: Any) -> Any:
            return command(*args, output="json" if as_json else output, **kwargs)

        wrapped: F = click.option("--output", type=click.Choice(["table", "json", *extra]),
                                  default="table", show_default=True,
                                  help=f"How to print {what}.")(wrapper)
        if json_alias:
            wrapped = click.option("--json", "as_json", is_flag=True, hidden=True,
                                   help="The same as --output json.")(wrapped)
        return wrapped

    return decorate


def print_json(data: Any) -> None:
    """Stable, indented JSON on stdout, written as it is encoded (a 100,000-user plan is
    never held as one string)."""
    from genesys_prov.report import iter_json

    out, pending, size = sys.stdout, [], 0
    for chunk in iter_json(data):
        pending.append(chunk)
        size += len(chunk)
        if size >= 1 << 16:  # a write per 64 KiB, not per token
            out.write("".join(pending))
            pending, size = [], 0
    out.write("".join(pending) + "\n")
    out.flush()


def show(renderables: list[Any]) -> None:
    """Print rich renderables."""
    for renderable in renderables:
        console.print(renderable)


@click.group(cls=GenesysGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", envvar="GENESYS_PROV_CONFIG",
              help=CONFIG_HELP)
@click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)
@click.option("--log-file", metavar="PATH", help=LOG_FILE_HELP)
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

    --config, -v and --log-file may also follow the command's name (the later one wins).
    """
    source = ctx.get_parameter_source("config_path")
    origin = "$GENESYS_PROV_CONFIG" if source is ParameterSource.ENVIRONMENT else \
        "--config" if config_path else None
    ctx.obj = Context(config_path, verbose, log_file, origin)



@cli.command()
@click.pass_obj
@output_option()
def check(obj: Context, output: str) -> None:
    """Test both connections without writing anything.

    Gets a Graph token and reads one user; authenticates to the target and filters for a
    random userName (expecting an empty list); reads /ServiceProviderConfig and /Schemas
    when the target offers them. Exits 4 if a side is unreachable or refuses. When the job
    is quarantined, a passing check lets its next run probe at once. Last, it shows the
    state of Entra's own provisioning job for the app, with a warning while it runs (needs
    Synchronization.Read.All; without it, says so and still passes).

    Example:

        genesys-prov --config genesys-prov.yaml check
    """
    from genesys_prov.console import check_table
    from genesys_prov.sync.check import run_check
    from genesys_prov.sync.incidents import note_check_passed

    config = obj.config()
    with errors_to_exit():
        result = run_check(config)
        quarantined = result.ok and note_check_passed(config)
    if output == "json":
        print_json({**result.data(), "quarantine_probe_next_run": quarantined})
    else:
        show([check_table(result)] + ([QUARANTINE_PROBE] if quarantined else []))
    if not result.ok:
        sys.exit(EXIT_CONNECT)


QUARANTINE_PROBE = ("The job is quarantined: its next run probes the connection at once and, "
                    "when that passes, leaves quarantine with a full sync.")


METRICS_HELP = ("After the run, however it ends, write Prometheus metrics to this file "
                "(node_exporter's textfile collector: name it *.prom). Default: metrics_file "
                "in the configuration.")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Plan and print; send no writes.")
@click.option("--allow-deletions", is_flag=True,
              help="Apply deactivations and deletions beyond safety.max_deactivations, and "
                   "accept a drop in users in scope beyond safety.max_source_drop.")
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
@click.option("--metrics-file", metavar="PATH", help=METRICS_HELP)
@click.pass_obj
@output_option("the plan and the result")
def sync(obj: Context, dry_run: bool, allow_deletions: bool, output: str,
         max_rows: int, quiet: bool, full: bool, reports: tuple[str, ...],
         plan_out: str | None, retry_now: bool, metrics_file: str | None) -> None:
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

        genesys-prov sync --quiet --metrics-file genesys_prov.prom
    """
    from genesys_prov.console import quiet_progress
    from genesys_prov.sync.run import run_sync
    config = obj.config()
    metrics = _metrics_file(config, metrics_file)
    with errors_to_exit():
        _check_outputs(reports, plan_out, dry_run, metrics)
    update, stop = quiet_progress(config.target.rate_limit_per_minute, quiet)
    try:
        with errors_to_exit(), metrics.measure():
            result = run_sync(config, dry_run=dry_run, allow_deletions=allow_deletions,
                              full=full, progress=update, plan_out=plan_out,
                              retry_now=retry_now)
    finally:
        stop()
    _finish(result, output, max_rows, quiet, reports, metrics)


def _metrics_file(config: Config, option: str | None) -> MetricsFile:
    """The run's metrics file: --metrics-file, else metrics_file in the configuration."""
    from genesys_prov.metrics import MetricsFile

    if option or config.metrics_file is None:
        return MetricsFile(option, config.state_dir)
    return MetricsFile(str(config.metrics_file), config.state_dir, "metrics_file")


def _check_outputs(reports: tuple[str, ...], plan_out: str | None = None,
                   dry_run: bool = True, metrics: MetricsFile | None = None) -> None:
    """Refuse report paths, a --plan-out and a metrics file that cannot be honoured, before
    anything."""
    from genesys_prov.report import check_report_paths

    if plan_out and not dry_run:
        raise ConfigError("--plan-out needs --dry-run: a plan is made to be reviewed, then "
                          "applied with `genesys-prov apply`")
    check_report_paths(reports)
    if metrics is not None:
        metrics.check()


def _finish(result: SyncResult, output: str, max_rows: int, quiet: bool,
            reports: tuple[str, ...], metrics: MetricsFile | None = None) -> None:
    """Print a sync or apply result, write its reports and metrics, exit with its code."""
    from genesys_prov.console import sync_renderables
    from genesys_prov.report import write_reports

    if quiet and output == "table":
        click.echo(result.summary())
    elif output == "json":
        print_json(result.data())
    else:
        if result.full_reason not in (None, FullReason.FIRST_RUN):
            console.print(f"Full sync: {result.mode_reason}.", markup=False)
        show(sync_renderables(result, max_rows))
    logging.getLogger("genesys_prov.sync").info("%s", result.summary())
    with errors_to_exit():
        write_reports(reports, result)
        if metrics is not None:
            metrics.write(result)
    for path in [] if quiet else reports:
        click.echo(f"Wrote {path}", err=True)
    end = result.end
    if end is RunEnd.ABORTED and result.applied is not None:
        stopped = redact.scrub(result.applied.aborted or "")
        click.echo(f"Error: the run stopped: {stopped}", err=True)
    elif end is RunEnd.QUARANTINED:
        click.echo(f"Error: the job is now quarantined ({result.quarantined}); later runs only "
                   "probe the connection until it works", err=True)
    elif end is RunEnd.HELD:
        click.echo(f"Error: {result.plan.held_reason}", err=True)
    if end in EXIT_CODES:
        sys.exit(EXIT_CODES[end])


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
@click.option("--reveal", is_flag=True, help="Show values an expression marks with Redact.")
@click.pass_obj
@output_option('the value (json: {"value": ...})', json_alias=True)
def mapping_test(obj: Context, expression: str, attrs: tuple[str, ...], user_file: str | None,
                 upn: str | None, output: str, reveal: bool) -> None:
    """Evaluate one Entra expression and print its value alone.

    Attributes come from --user, then --from-graph, then --attr (later ones win). A null
    value prints nothing (or {"value": null} with --output json); a list prints one value a
    line. Exits 2 on a syntax error, with a caret under the column, and on a source
    attribute it does not know (or an --attr name in the wrong case), naming the one meant.

    Example:

    \b
        genesys-prov mapping test 'Join(".", [givenName], [surname])' \\
            --attr givenName=Zoë --attr surname=Lefèvre

        genesys-prov mapping test 'ToUpper([department])' --from-graph ada@contoso.com --output json
    """
    from genesys_prov.sync.mappings import evaluate_expression

    with errors_to_exit():
        data = evaluate_expression(expression, attrs, user_file, upn, obj.config).data(reveal)
    if output == "json":
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    value = data["value"]
    for item in [] if value is None else value if isinstance(value, list) else [value]:
        click.echo(item if isinstance(item, str) else json.dumps(item)
                   if not isinstance(item, bool) else str(item))


@mapping.command("validate")
@click.option("--mappings", "mappings_path", type=click.Path(dir_okay=False),
              help="The mappings file (default: the one the configuration names, else "
                   "./mappings.yaml).")
@click.option("--offline", is_flag=True,
              help="Check against the built-in Genesys schema instead of the target's /Schemas.")
@click.pass_obj
@output_option("the findings")
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
    from genesys_prov.console import validation_lines
    from genesys_prov.sync.mappings import validate_mappings_file

    with errors_to_exit():
        found = validate_mappings_file(mappings_path, offline, obj.config_path, obj.config)
    if output == "json":
        print_json(found.data())
    else:
        show(validation_lines(str(found.path), found.schema, found.findings))
    if found.errors:
        sys.exit(EXIT_USAGE)


@mapping.command("import")
@click.option("--from-entra", "from_entra", is_flag=False, flag_value="", default=None,
              metavar="[SP_ID]",
              help="Read the provisioning job's schema from Microsoft Graph: this service "
                   "principal (the enterprise application), else source.service_principal_id. "
                   "Needs the permission Synchronization.Read.All.")
@click.option("--from-file", "from_file", type=click.Path(dir_okay=False), metavar="PATH",
              help="A synchronizationSchema saved as JSON (Graph's answer, or the portal's "
                   "Provisioning > Mappings > Advanced > Review your schema).")
@click.option("--out", type=click.Path(dir_okay=False), metavar="PATH",
              help="Write the mappings to this file (atomically) instead of printing them.")
@click.option("--force", is_flag=True, help="With --out: overwrite an existing file.")
# text, not table: the default output is the mappings file itself.
@click.option("--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True,
              help="text: the mappings on stdout (or --out), the report on stderr; json: "
                   "both as one JSON object on stdout.")
@click.pass_obj
def mapping_import(obj: Context, from_entra: str | None, from_file: str | None,
                   out: str | None, force: bool, output: str) -> None:
    """Convert Entra's provisioning job into a mappings file: the user and group attribute
    mappings and scoping filters of the rule that provisions the SCIM app.

    What cannot be converted exactly (an unknown function, the flow types
    MultiValueAddOnly / ValueAddOnly / AttributeAddOnly, a disabled object mapping, a target
    attribute Genesys lacks, an unknown source attribute) is listed with its reason and
    written as a "# NOT CONVERTED (reason): ..." comment where it would have been. The
    result is checked as `mapping validate --offline` does: exit 2 when it does not pass
    (the file is still written, to be fixed by hand). --out never overwrites a file
    without --force.

    Moving from Entra's job: import, validate, `sync --dry-run` shows 0 changes, pause
    Entra's job, schedule genesys-prov.

    Example:

    \b
        genesys-prov mapping import --from-file schema.json --out mappings.yaml
        genesys-prov mapping import --from-entra --out mappings.yaml --force
        genesys-prov mapping import --from-entra 33333333-4444-5555-6666-777777777777 > m.yaml
        genesys-prov mapping import --from-file schema.json --output json
    """
    from genesys_prov.console import import_report_lines
    from genesys_prov.sync.mappings import import_mappings

    with errors_to_exit():
        done = import_mappings(from_file, from_entra, out, force, obj.config)
    if output == "json":
        print_json(done.data())
    elif done.out is None:
        click.echo(done.result.text, nl=False)
    for line in import_report_lines(done) if output == "text" else []:
        click.echo(line, err=True)
    with errors_to_exit():
        done.raise_if_invalid()


@cli.command()
@click.option("--since", metavar="WHEN", help="Only records since 30m, 2h, 7d or a date.")
@click.option("--status", type=click.Choice(["success", "failure", "skipped", "warning"],
                                            case_sensitive=False), help="Only this status.")
@click.option("--action", help="Only this action (Create, Update, Disable, Enable, Delete, "
                               "AddMembers, RemoveMembers, Skip, Other).")
@click.option("--user", help="Only this user (UPN / display identity or source object id).")
@click.option("--run", "run_id", metavar="ID", help="Only this run.")
@click.option("--limit", type=click.IntRange(min=1), default=10_000, show_default=True,
              metavar="N", help="Only the newest N records.")
@click.pass_obj
@output_option("the records (json: one object per line; csv: a header row)", json_alias=True,
               extra=("csv",))
def logs(obj: Context, since: str | None, status: str | None, action: str | None,
         user: str | None, run_id: str | None, limit: int, output: str) -> None:
    """Show the provisioning log: one record per attempted change, skip and failure, oldest
    first, with the run that made it.

    Example:

        genesys-prov logs --since 2h --status failure

        genesys-prov logs --user ada@contoso.com --output json

        genesys-prov logs --limit 500 --output csv > log.csv
    """
    from genesys_prov.console import log_csv, log_table
    from genesys_prov.state.db import State, parse_since

    config = obj.config()
    with errors_to_exit(), State.open(config.state_dir) as state:
        records = state.query_log(parse_since(since) if since else None, status, action,
                                  user, run_id, limit)
    if output == "json":
        for record in records:
            click.echo(json.dumps(record, ensure_ascii=False, default=str))
    elif output == "csv":
        click.echo(log_csv(records), nl=False)
    else:
        console.print(log_table(records))


@cli.group()
def state() -> None:
    """Inspect or reset the state database (links, watermark, runs, log).

    Example:

        genesys-prov state show

        genesys-prov state reset --forget-links
    """


@state.command("show")
@click.pass_obj
@output_option(json_alias=True)
def state_show(obj: Context, output: str) -> None:
    """Show the state: links, delta links, the last run, the size of the log, the
    quarantine and what waits in escrow (local times; ISO 8601 UTC with --output json).

    Example:

        genesys-prov state show
    """
    from genesys_prov.console import state_table
    from genesys_prov.state.db import State

    config = obj.config()
    with errors_to_exit(), State.open(config.state_dir) as db:
        summary = db.summary()
    if output == "json":
        print_json(summary)
        return
    console.print(state_table(summary))


@state.command("reset")
@click.option("--forget-links", is_flag=True,
              help="Also forget which directory object is which target object (asks first "
                   "on a terminal).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask (for scripts).")
@click.pass_obj
def state_reset(obj: Context, forget_links: bool, yes: bool) -> None:
    """Entra's "restart": clear the watermark and settings digests (the next run is a full
    sync). --forget-links also forgets the links, so users are matched again; it asks
    first on a terminal, and without one it needs --yes.

    Example:

        genesys-prov state reset

        genesys-prov state reset --forget-links --yes
    """
    from genesys_prov.state.db import RunLock, State

    config = obj.config()
    if forget_links and not yes:
        _confirm_forget_links(config.state_dir)
    with errors_to_exit(), RunLock(config.state_dir), State.open(config.state_dir) as db:
        db.reset(forget_links)
    click.echo("State reset" + (" (links forgotten)." if forget_links else "."))


def _interactive() -> bool:
    """True when a person can answer a question (stdin is a terminal)."""
    return sys.stdin.isatty()


def _confirm_forget_links(state_dir: Path) -> None:
    """Ask before forgetting the links; without a terminal refuse (exit 2): pass --yes."""
    if not _interactive():
        fail(ConfigError("state reset --forget-links: not asked on a terminal; pass --yes "
                         "to forget the links"))
    if not click.confirm(f"Forget every link in {state_dir}? The next run matches every "
                         "user again", default=False, err=True):
        fail(ConfigError("state reset: not confirmed; nothing was changed"))


@state.command("retry")
@click.argument("user", required=False)
@click.pass_obj
@output_option('the count (json: {"due_now": N})')
def state_retry(obj: Context, user: str | None, output: str) -> None:
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
    if output == "json":
        print_json({"due_now": changed})
    else:
        click.echo(f"{changed} escrowed change(s) are due now; the next `sync` sends them.")


@cli.command()
@click.argument("user")
@click.pass_obj
@output_option("the explanation")
def explain(obj: Context, user: str, output: str) -> None:
    """Explain one user without writing anything: the source values read, the scope
    decision (assignments and every scoping clause), each mapping's value, the matching
    attempts in precedence order, and the planned change with old → new.

    Example:

        genesys-prov explain ada@contoso.com

        genesys-prov explain 8f1c0d2e-0000-4000-8000-000000000000 --output json
    """
    from genesys_prov.console import explain_renderables
    from genesys_prov.sync.explain import explain_user

    config = obj.config()
    with errors_to_exit():
        data = explain_user(config, user)
    if output == "json":
        print_json(data)
        return
    show(explain_renderables(data))


@cli.command()
@click.argument("user")
@click.option("--dry-run", is_flag=True, help="Run the steps but write nothing.")
@click.pass_obj
@output_option("the steps")
def provision(obj: Context, user: str, dry_run: bool, output: str) -> None:
    """Provision one user now (Entra's "provision on demand"): test connection, import,
    scope, match, action — each step with its outcome — then add the user to their groups.
    Logged in the provisioning log like any run.

    Example:

        genesys-prov provision ada@contoso.com --dry-run

        genesys-prov provision ada@contoso.com
    """
    from genesys_prov.console import provision_lines
    from genesys_prov.sync.provision import provision_user

    config = obj.config()
    with errors_to_exit():
        data = provision_user(config, user, dry_run=dry_run)
    if output == "json":
        print_json(data)
    else:
        show(provision_lines(data))
    if not all(step["ok"] for step in data["steps"]):
        sys.exit(EXIT_CONNECT if not data["steps"][0]["ok"] else EXIT_CHANGES_FAILED)


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Where to write the files.")
@click.option("--tenant-id", help="Entra tenant (domain or id).")
@click.option("--client-id", help="App registration (client) id for Microsoft Graph.")
@click.option("--cloud", type=click.Choice(["global", "usgov", "usgov-dod", "china"]),
              default="global", show_default=True,
              help="Microsoft cloud: sets source.authority_host and source.graph_url "
                   "(usgov: GCC High; GCC is global).")
@click.option("--region", help="Genesys Cloud region, by name (eu-west-1) or API host "
              "(mypurecloud.ie): gives the SCIM URL and the token URL. Asked on a terminal.")
@click.option("--target-url", help="SCIM tenant URL instead of --region, e.g. "
              "https://api.mypurecloud.ie/api/v2/scim/v2 (any SCIM server).")
@click.option("--genesys-auth", type=click.Choice(["oauth", "token"]), default=None,
              help="Genesys OAuth client (client credentials) or a static token. Asked on "
                   "a terminal; without one: token, unless --genesys-client-id is given.")
@click.option("--genesys-client-id", help="Genesys OAuth client id (implies oauth).")
@click.option("--ca-bundle", type=click.Path(dir_okay=False, exists=True),
              help="PEM file of trusted CAs (a TLS-inspecting proxy): written as ca_bundle.")
@click.option("--flavor", type=click.Choice(["genesys", "generic"]), default="genesys",
              show_default=True)
@click.option("--scope", type=click.Choice(["assigned", "all"]), default="assigned",
              show_default=True)
@click.option("--service-principal-id", help="Enterprise app object id (scope: assigned).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--no-check", is_flag=True, help="Do not run `check` afterwards.")
def init(directory: Path, force: bool, no_check: bool, **options: Any) -> None:
    """Write a starter genesys-prov.yaml and mappings.yaml, then run `check`.

    Asks for what the options do not give when run on a terminal (the Genesys region from
    a list, OAuth client or static token). Secrets are never written: the configuration
    reads them from GRAPH_CLIENT_SECRET and GENESYS_CLIENT_SECRET (or GENESYS_TOKEN). Both
    files are checked first and written together: a failure leaves neither.

    Example:

        genesys-prov init --tenant-id contoso.onmicrosoft.com --client-id 1111... \\
            --region eu-west-1 --genesys-client-id 2222... --scope all

        genesys-prov init --cloud usgov --region us-east-2 --ca-bundle corp-ca.pem
    """
    from genesys_prov.starter import write_starter

    with errors_to_exit():
        files = write_starter(directory, _init_answers(**options), force)
    click.echo(f"Wrote {files.config_path} and {files.mappings_path}.")
    missing = [v for v in files.secrets if v not in os.environ]
    if missing:
        click.echo(f"Next: export {' and '.join(missing)}, then run "
                   f"`genesys-prov --config {files.config_path} check`.")
    elif not no_check:
        _check_after_init(files.config_path)


def _init_answers(tenant_id: str | None, client_id: str | None, cloud: str,
                  region: str | None, target_url: str | None, genesys_auth: str | None,
                  genesys_client_id: str | None, ca_bundle: str | None, flavor: str,
                  scope: str, service_principal_id: str | None) -> Any:
    """``init``'s answers: the options, and on a terminal what they do not give."""
    from genesys_prov.starter import Answers

    tenant, client = _ask(tenant_id, "Tenant id"), _ask(client_id, "Client id")
    url, token_url = _init_target(region, target_url, flavor)
    if not genesys_client_id and genesys_auth is None and _interactive():
        genesys_auth = click.prompt("Genesys authentication: oauth (an OAuth client, "
                                    "client credentials) or token (a static token)",
                                    type=click.Choice(["oauth", "token"]), default="oauth",
                                    show_choices=False)
    if not genesys_client_id and genesys_auth == "oauth":
        genesys_client_id = _ask(None, "Genesys client id")
    sp_id = _ask(service_principal_id, "Service principal id") if scope == "assigned" \
        else service_principal_id
    return Answers(tenant, client, url, scope, flavor, sp_id, genesys_client_id, cloud,
                   ca_bundle, token_url)


def _init_target(region: str | None, target_url: str | None,
                 flavor: str) -> tuple[str, str | None]:
    """The SCIM URL (and the token URL when a region gives it): --target-url, --region,
    else the region picked from the list on a terminal."""
    from genesys_prov.starter import REGIONS
    from genesys_prov.starter import region as find_region

    if region and target_url:
        fail(ConfigError("init: give --region or --target-url, not both"))
    if target_url or (flavor == "generic" and not region):
        return _ask(target_url, "Target url"), None
    if not region and not _interactive():
        fail(ConfigError("init: --region (or --target-url) is required when not run on a "
                         "terminal"))
    if not region:
        for name, (host, where) in REGIONS.items():
            click.echo(f"  {name:<15} {host:<24} {where}")
        region = str(click.prompt("Genesys Cloud region", type=click.Choice(list(REGIONS)),
                                  show_choices=False))
    with errors_to_exit():
        picked = find_region(region)
    return picked.scim_url, picked.token_url


def _ask(value: str | None, prompt: str) -> str:
    """An option's value, else asked on a terminal (exit 2 without one)."""
    if value:
        return value
    if not _interactive():
        fail(ConfigError(f"init: --{prompt.lower().replace(' ', '-')} is required when "
                         "not run on a terminal"))
    return str(click.prompt(prompt))


def _check_after_init(config_path: Path) -> None:
    """``check`` on what ``init`` wrote; a failing check exits 4, an error is one line."""
    from genesys_prov.console import check_table
    from genesys_prov.sync.check import run_check

    with errors_to_exit():
        config = load_config(config_path)
    try:
        result = run_check(config)
    except GenesysProvError as exc:
        click.echo(f"check: {redact.scrub(str(exc))}", err=True)
        return
    console.print(check_table(result))
    if not result.ok:
        sys.exit(EXIT_CONNECT)


@cli.command("apply")
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--max-age", default="24h", show_default=True,
              help="Refuse plans older than this (e.g. 90m, 24h, 2d).")
@click.option("--allow-deletions", is_flag=True,
              help="Apply deactivations and deletions beyond safety.max_deactivations.")
@click.option("--report", "reports", multiple=True, metavar="PATH",
              help="Also write the outcome to a file (.json, .csv, .md, .html).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and a summary line.")
@click.option("--metrics-file", metavar="PATH", help=METRICS_HELP)
@click.pass_obj
@output_option()
def apply_command(obj: Context, plan_path: str, max_age: str, allow_deletions: bool,
                  output: str, reports: tuple[str, ...], quiet: bool,
                  metrics_file: str | None) -> None:
    """Apply a reviewed plan exactly, as made by `sync --dry-run --plan-out`.

    Refuses a plan whose checksum does not match, whose configuration or mappings changed,
    or that is older than --max-age. Each change is sent with If-Match and the version the
    object had when the plan was made: whatever changed in the target since is skipped and
    reported, never overwritten.

    Example:

        genesys-prov sync --dry-run --plan-out plan.json --report plan.html

        genesys-prov apply plan.json

        genesys-prov apply plan.json --metrics-file genesys_prov.prom
    """
    from genesys_prov.plan.file import parse_age
    from genesys_prov.sync.run import apply_plan_file

    config = obj.config()
    metrics = _metrics_file(config, metrics_file)
    with errors_to_exit():
        _check_outputs(reports, metrics=metrics)
    with errors_to_exit(), metrics.measure():
        result = apply_plan_file(config, plan_path, max_age=parse_age(max_age),
                                 allow_deletions=allow_deletions)
    _finish(result, output, 200, quiet, reports, metrics)


@cli.command()
@click.option("--users", type=click.IntRange(min=1), default=None,
              help="Serve N synthetic users instead of the demo directory.")
@click.option("--seed", type=int, default=42, show_default=True,
              help="Seed of the synthetic directory.")
@click.option("--directory", "directory_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Serve this directory JSON (the shape of "
              "examples/demo-directory.json) and apply each saved change to it as a "
              "directory change, while the sandbox runs.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("sandbox"), show_default=True,
              help="Where to write genesys-prov.yaml, mappings.yaml and the test CA.")
@click.option("--quiet", is_flag=True, help="Print nothing (for scripts and the benchmark).")
@click.option("--entra-job", type=click.Choice(["gallery", "customised"]), default=None,
              help="Serve Entra's provisioning job for the app with this schema, and start "
                   "Genesys as one cycle of that job left it.")
def sandbox(users: int | None, seed: int, directory_file: Path | None, directory: Path,
            quiet: bool, entra_job: str | None) -> None:
    """Serve the Graph and Genesys emulators on 127.0.0.1 until Ctrl-C.

    Writes a configuration pointing at them (credentials are the sandbox's own, not
    secrets), so any other command can be tried against it. With --directory FILE it
    serves your own directory JSON and watches the file: edit a user and save, and the
    next `sync` is an incremental run that sends just that change. With --entra-job,
    Graph also serves Entra's provisioning job for the Genesys gallery app (the gallery
    default schema, or a customised one) and Genesys starts as that job left it: a
    migration to try (import the job's mappings, then a dry run that should plan nothing).

    Example:

        genesys-prov sandbox --users 1000

        python -m genesys_prov.sandbox.data > my-directory.json
        genesys-prov sandbox --directory my-directory.json

        genesys-prov sandbox --entra-job gallery

        genesys-prov --config sandbox/genesys-prov.yaml sync --dry-run
    """
    from genesys_prov.sandbox import Sandbox
    from genesys_prov.sandbox.watch import load_directory_file

    with errors_to_exit():
        served = load_directory_file(directory_file) if directory_file else None
        with Sandbox(users=users, seed=seed, workdir=directory.resolve(), directory=served,
                     entra_job=entra_job) as sb:
            _serve(sb, directory.resolve(), directory_file, quiet)


def _serve(sb: Any, workdir: Path, directory_file: Path | None, quiet: bool) -> None:
    """Write the sandbox's configuration, say where it listens, and serve until Ctrl-C
    (watching --directory's file when given)."""
    from genesys_prov.sandbox.demo import write_sandbox_config
    from genesys_prov.sandbox.watch import DirectoryWatcher

    # A long-running server keeps counters, not a log of every request.
    sb.graph.record_requests = sb.genesys.record_requests = False
    path = write_sandbox_config(sb, workdir)
    if not quiet:
        _sandbox_banner(sb, path, directory_file)
    watcher = DirectoryWatcher(directory_file, sb.graph, _say if not quiet else _silent) \
        if directory_file else None
    if watcher is not None:
        watcher.start()
    with contextlib.suppress(KeyboardInterrupt):
        _wait_forever()
    if watcher is not None:
        watcher.stop()
    if not quiet:
        console.print("stopped")


def _wait_forever() -> None:
    """Sleep until Ctrl-C (KeyboardInterrupt)."""
    while True:
        time.sleep(3600)


def _say(line: str) -> None:
    """One line from the running sandbox (not markup)."""
    console.print(line, markup=False, soft_wrap=True)


def _silent(line: str) -> None:
    """Nothing (--quiet)."""


def _sandbox_banner(sb: Any, path: Path, directory_file: Path | None = None) -> None:
    """Where the emulators listen, the configuration that points at them, and how to change
    a user while it runs."""
    console.print(f"Graph emulator:   {sb.graph_url}  (authority {sb.authority_host})")
    console.print(f"Genesys emulator: {sb.genesys_url}")
    report = sb.entra_report
    if report is not None:
        job = sb.graph.synchronization_job
        console.print(f"Entra job:        {sb.entra_job} schema, job {job.id}", markup=False)
        console.print(f"                  GET /v1.0/servicePrincipals/{sb.service_principal_id}"
                      "/synchronization/jobs", markup=False, soft_wrap=True)
        console.print(f"                  Genesys as its first cycle left it: "
                      f"{len(report.created)} created, {len(report.updated)} updated, "
                      f"{len(report.failures)} failed", markup=False)
    console.print(f"Configuration:    {path}\n")
    console.print(path.read_text(encoding="utf-8"), markup=False)
    console.print(f"Try: genesys-prov --config {path} sync --dry-run", markup=False)
    if directory_file is not None:
        console.print(f"Directory:        {directory_file} (watched): edit a user and save; "
                      "the next sync is an incremental run that sends just that change.",
                      markup=False, soft_wrap=True)
    else:
        console.print("To change a user while it runs: serve your own directory — "
                      "python -m genesys_prov.sandbox.data > my-directory.json, then "
                      "genesys-prov sandbox --directory my-directory.json — and edit it.",
                      markup=False, soft_wrap=True)
    console.print("Serving until Ctrl-C…")


@cli.command()
@click.option("--max-rows", type=click.IntRange(min=0), default=6, show_default=True,
              help="Example rows shown per step (--output json has every change).")
@output_option("the story (json: each step's whole plan and result)")
def demo(max_rows: int, output: str) -> None:
    """Run a real sync against the built-in sandbox: dry-run, sync, sync again, and a change.

    Starts the Graph and Genesys emulators in-process, shows the plan of a dry-run (its
    counts and a few example rows, and that it wrote nothing), applies it, syncs again to
    show that nothing is left to do (an incremental run: no target request at all), then
    changes one user's job title in the directory and shows the one minimal PATCH it costs.
    --output json prints every step's whole plan and result instead.

    Example:

        genesys-prov demo

        genesys-prov demo --output json > demo.json
    """
    from genesys_prov.sandbox.demo import demo_story

    with errors_to_exit():
        if output == "json":
            print_json({"scenes": [scene.data() for scene in demo_story()]})
            return
        for scene in demo_story():
            _tell(scene, max_rows)


def _tell(scene: Any, max_rows: int) -> None:
    """One step of the demo, in a few lines."""
    from genesys_prov.console import changes_table, plan_digest

    console.rule(scene.title)
    if scene.result is not None and scene.show == "digest":
        show(plan_digest(scene.result, max_rows))
    elif scene.result is not None:
        show(([changes_table(scene.result.plan, max_rows)]
              if scene.show == "changes" else []) + [scene.result.summary()])
    for note in scene.notes:
        console.print(note, markup=False, soft_wrap=True)


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

"""The `lineage-tools` command: parses options, calls the library, picks a renderer, sets the
exit code (0 ok, 1 findings, 2 bad input). Data goes to stdout, logs to stderr.

Each subcommand is a thin function: all work happens in the library modules.
"""

from __future__ import annotations

import logging
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import click
import typer
import typer.core
import typer.main

from . import __version__
from .deadline import DEFAULT_TIME_BUDGET
from .errors import UserError

log = logging.getLogger("lineage_tools")

app = typer.Typer(
    name="lineage-tools",
    help="Column-level lineage and row provenance for a dbt project.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: no `<bool>` after flags, and `[...]` in a help text is not eaten as markup
    rich_markup_mode=None,
)


class _Command(typer.core.TyperCommand):
    """Help as click writes it: arguments by their metavar alone (not `{column}` or `<str>`)."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [p.replace("{", "").replace("}", "") for p in super().collect_usage_pieces(ctx)]

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            rv = param.get_help_record(ctx)
            if rv is None:
                continue
            if param.param_type_name == "argument":
                args.append((rv[0].split(" <", 1)[0], rv[1]))
            else:
                opts.append(rv)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _command(name: str, **kwargs):
    return app.command(name, cls=_Command, **kwargs)


EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2
# typer >= 0.29 raises its own copy of click's errors; older typer (pyproject allows >= 0.12) has none
_TYPER_ERRORS: tuple[type[Exception], ...] = (typer.TyperException,) if hasattr(typer, "TyperException") else ()

# Options shared by the commands that read a dbt project. They follow dbt's own names.
ProjectDir = Annotated[
    Path, typer.Option("--project-dir", metavar="DIR", help="dbt project folder (holds dbt_project.yml).")
]
ProfilesDir = Annotated[
    Optional[Path],
    typer.Option(
        "--profiles-dir",
        envvar="DBT_PROFILES_DIR",
        metavar="DIR",
        help="Folder holding profiles.yml; default: the project folder if it has one, else ~/.dbt.",
    ),
]
Target = Annotated[Optional[str], typer.Option("--target", "-t", metavar="NAME", help="dbt target to use.")]
Vars = Annotated[
    Optional[str],
    typer.Option("--vars", metavar="YAML", help="dbt vars, as `dbt --vars`: used when this tool compiles or "
                 "rebuilds; default: those the warehouse was last built with."),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
OutputFile = Annotated[
    Optional[Path], typer.Option("--output", "-o", metavar="FILE", help="Write to this file instead of stdout (- for stdout).")
]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"lineage-tools {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail to stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Column-level lineage and row provenance for a dbt project."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(message)s" if verbose else "%(message)s",
        stream=sys.stderr,
    )


def write_output(text: str, output: Path | None) -> None:
    """Write rendered data to stdout (no path, or ``-``) or to `output` (see `output.write_text`:
    atomic for a regular file, direct for a device or FIFO, a folder refused)."""
    from .output import write_text

    write_text(text, output, newline=True)


class ExportFormat(str, Enum):
    openlineage = "openlineage"
    json = "json"


class TraceFormat(str, Enum):
    text = "text"
    json = "json"


TimeBudget = Annotated[
    float,
    typer.Option("--time-budget", metavar="SECONDS", min=0,
                 help="Seconds of analysis per model (or statement) before it is cut short: PARTIAL, reason "
                      "time_budget_exceeded, the rest unaffected. Enforced even inside the SQL parser for "
                      "statements of 16 KB or more. 0: no limit."),
]


def _budget(seconds: float) -> float | None:
    """The --time-budget value as the library takes it (None: no limit)."""
    return seconds or None


@_command("sql", epilog='Example: echo "select a, sum(b) as s from t group by a" | lineage-tools sql -')
def sql_command(
    file: Annotated[str, typer.Argument(metavar="FILE", help="SQL file (one statement, or several run in order); - reads stdin.")],
    dialect: Annotated[str, typer.Option("--dialect", "-d", metavar="NAME", help="sqlglot dialect of the SQL.")] = "duckdb",
    schema: Annotated[
        Optional[Path],
        typer.Option("--schema", metavar="FILE",
                     help="JSON file mapping table names to a list of columns, or to an object of column: type."),
    ] = None,
    fmt: Annotated[TraceFormat, typer.Option("--format", "-f", help="Output format.")] = TraceFormat.text,
    output: OutputFile = None,
    time_budget: TimeBudget = DEFAULT_TIME_BUDGET,
) -> None:
    """Column lineage of a plain SQL statement (SELECT, CREATE TABLE/VIEW AS, INSERT ... SELECT)."""
    from .render.edges import render
    from .standalone import analyze_file

    result = analyze_file(file, dialect=dialect, schema_path=schema, time_budget=_budget(time_budget))
    write_output(render(result, fmt.value), output)


def _config(project_dir: Path, profiles_dir: Path | None, target: str | None, vars: str | None = None):
    """The dbt project a command works on (`ProjectError` when there is no dbt_project.yml)."""
    from .dbt.config import load_config

    return load_config(project_dir, profiles_dir, target, vars)


def _project_graph(cfg, time_budget: float | None = None, upstream_of=None, select=None, quiet: bool = False):
    """Load the dbt project's lineage graph through the one loader (compiling when the manifest
    is missing or stale); with `select` or `upstream_of` (nodes -> unique_ids), only those
    models and their upstream ones are analysed."""
    from . import progress
    from .project import load_graph

    with progress.spinner("Lineage", quiet=quiet) as advance:
        options = {"upstream_of": upstream_of} if upstream_of is not None else {}
        return load_graph(cfg, select, time_budget=time_budget,
                          progress=lambda n: advance(description=f"Lineage: {n.name}"), **options)


@_command("export", epilog="Example: lineage-tools export --format openlineage -o target/lineage/events.jsonl")
def export_command(
    fmt: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", help="openlineage: JSON Lines of RunEvents; json: the whole lineage graph."),
    ] = ExportFormat.json,
    output: OutputFile = None,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    namespace: Annotated[
        Optional[str], typer.Option("--namespace", metavar="NS",
                                    help="OpenLineage namespace; default: <adapter>://<project>.")
    ] = None,
    event_time: Annotated[
        Optional[str],
        typer.Option("--event-time", metavar="ISO", help="OpenLineage eventTime (ISO 8601); default: "
                     "1970-01-01T00:00:00Z, so that exports diff cleanly."),
    ] = None,
    time_budget: TimeBudget = DEFAULT_TIME_BUDGET,
    vars: Vars = None,
) -> None:
    """Export the column lineage of every model: OpenLineage events or one JSON graph."""
    if event_time is not None:
        from datetime import datetime

        try:
            datetime.fromisoformat(event_time)
        except ValueError:
            raise UserError(f"--event-time {event_time!r} is not an ISO 8601 date-time") from None
        if "t" not in event_time.lower():
            raise UserError(f"--event-time {event_time!r} has no time of day (e.g. 2026-01-01T00:00:00Z)")
    graph = _project_graph(_config(project_dir, profiles_dir, target, vars), _budget(time_budget))
    if fmt == ExportFormat.openlineage:
        from .render.openlineage import render as render_ol

        text = render_ol(graph, namespace=namespace, event_time=event_time)
    else:
        from .render.json_graph import render as render_json

        text = render_json(graph)
    write_output(text, output)


@_command("trace", epilog="Example: lineage-tools trace training_examples.is_job_seeker")
def trace_command(
    column: Annotated[str, typer.Argument(metavar="MODEL.COLUMN", help="A column: MODEL is a model name, a unique_id or "
                                 "source_name.table.")],
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Trace to the last consumers instead of the roots.")
    ] = False,
    fmt: Annotated[TraceFormat, typer.Option("--format", "-f", help="Output format.")] = TraceFormat.text,
    direct_only: Annotated[
        bool, typer.Option("--direct-only", help="The DIRECT tree alone, without the INDIRECT summary.")
    ] = False,
    all_edges: Annotated[
        bool, typer.Option("--all", help="Follow every edge, INDIRECT ones too (joins, filters, group by), "
                           "in one full tree.")
    ] = False,
    depth: Annotated[Optional[int], typer.Option("--depth", metavar="N", help="Stop after this many hops.")] = None,
    select: Annotated[
        Optional[list[str]],
        typer.Option("--select", "-s", metavar="SELECTOR", help="Walk only through these nodes (dbt selection "
                     "syntax, e.g. +fct_x; `-s a b` or `-s a -s b`)."),
    ] = None,
    output: OutputFile = None,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    time_budget: TimeBudget = DEFAULT_TIME_BUDGET,
    vars: Vars = None,
) -> None:
    """The lineage tree of one column, down to its roots (or up to its last consumers)."""
    from .records import EdgeType
    from .render import trace as render_trace

    upstream_of = None
    if not downstream and not select and "." in column:  # the tree needs only upstream models
        from .graph import node_ids_named

        upstream_of = lambda nodes: node_ids_named(nodes, column.rsplit(".", 1)[0])  # noqa: E731
    graph = _project_graph(_config(project_dir, profiles_dir, target, vars), _budget(time_budget), upstream_of)
    col = graph.column(column)
    tree = graph.trace(col, downstream=downstream, kinds=None if all_edges else {EdgeType.DIRECT},
                       max_depth=depth)
    summary = not (all_edges or direct_only)  # the INDIRECT inputs, one line per model
    within = None
    if select:
        from .selection import prune_trace, select as select_nodes

        within = select_nodes(graph.project.nodes, " ".join(select))
        tree = prune_trace(tree, within)
    if fmt == TraceFormat.json:
        text = render_trace.render_json(graph, tree, downstream=downstream, summary=summary, within=within)
    else:
        text = render_trace.render_text(graph, tree, downstream=downstream, summary=summary, within=within)
    write_output(text, output)


class RowCounting(str, Enum):
    none = "none"
    quarantined = "quarantined"
    all = "all"


@_command("report", epilog="Example: lineage-tools report -o target/lineage")
def report_command(
    output_dir: Annotated[
        Optional[Path],
        typer.Option("--output-dir", "-o", metavar="DIR", help="Folder for lineage.html, lineage.md and "
                     "lineage.json (created; nothing is written outside it); default: <target-path>/lineage."),
    ] = None,
    rows: Annotated[
        RowCounting,
        typer.Option("--rows", help="Count tainted rows in the warehouse for these sources' impact (one query per "
                     "source; needs a built warehouse)."),
    ] = RowCounting.quarantined,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    time_budget: TimeBudget = DEFAULT_TIME_BUDGET,
    quiet: Quiet = False,
    vars: Vars = None,
) -> None:
    """Write the lineage report: one offline HTML page, a Markdown summary and the JSON graph."""
    from . import progress
    from .report import ReportOptions, build_report, registry_size, render_all, safe_output_dir, write_files

    progress.set_quiet(quiet)
    out_dir = safe_output_dir(output_dir) if output_dir is not None else None  # a bad -o first
    env = _config(project_dir, profiles_dir, target, vars)
    out_dir = out_dir or safe_output_dir(env.target_path / "lineage")
    graph = _project_graph(env, _budget(time_budget), quiet=quiet)
    with progress.bar("Impact of sources", registry_size(graph, env), quiet=quiet) as advance:
        doc = build_report(graph, env, ReportOptions(count_rows=rows.value), advance=advance)
    for path in write_files(out_dir, render_all(doc)):
        typer.echo(str(path))


class DiffFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


class FailOn(str, Enum):
    never = "never"
    new_findings = "new-findings"
    any_change = "any-change"


@_command("diff", epilog="Example: lineage-tools diff --base ../base/target -f markdown "
             "(the base: a checkout of the main branch after `dbt compile`)")
def diff_command(
    base: Annotated[Path, typer.Option("--base", metavar="PATH", help="The base version's dbt target/ folder, or its "
                                                   "manifest.json (compiled: `dbt compile` in the base checkout).")],
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="Output format.")] = DiffFormat.text,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 on new provenance findings, or on any lineage change.")
    ] = FailOn.never,
    output: OutputFile = None,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    time_budget: TimeBudget = DEFAULT_TIME_BUDGET,
    quiet: Quiet = False,
    vars: Vars = None,
) -> int:
    """What a change does to lineage, edge by edge: the project (head) against a base manifest."""
    from . import progress
    from .diff import diff_lineage, load_base
    from .graph import build_graph
    from .project import load_project
    from .provenance import check
    from .render.diff import render

    progress.set_quiet(quiet)
    with progress.spinner("Lineage of the base", quiet=quiet) as advance:
        base_project = load_base(base, project_dir, progress=lambda n: advance(description=f"Base: {n.name}"))
    with progress.spinner("Lineage of the head", quiet=quiet) as advance:
        head_project = load_project(_config(project_dir, profiles_dir, target, vars), time_budget=_budget(time_budget),
                                    incremental_branches=False,
                                    progress=lambda n: advance(description=f"Head: {n.name}"))
    base_findings = check(build_graph(base_project)).findings
    head_findings = check(build_graph(head_project)).findings
    d = diff_lineage(base_project, head_project, base_findings, head_findings)
    write_output(render(d, fmt.value), output)
    if fail_on == FailOn.new_findings and d.findings_added:
        return EXIT_FINDINGS
    if fail_on == FailOn.any_change and not d.is_empty:
        return EXIT_FINDINGS
    return EXIT_OK


class CheckFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"


class ImpactFormat(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


SourceIds = Annotated[list[str], typer.Argument(metavar="SOURCE_ID",
                                                help="Source ids of the registry (seeds/data_sources.csv).")]


@_command("check", epilog="Example: lineage-tools check --select int_users_merged training_examples")
def check_command(
    select: Annotated[
        Optional[list[str]], typer.Option("--select", "-s", metavar="SELECTOR",
                                          help="Check only these models (dbt selection syntax; `-s a b` or `-s a -s b`).")
    ] = None,
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")] = CheckFormat.text,
    output: OutputFile = None,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    vars: Vars = None,
    time_budget: TimeBudget = DEFAULT_TIME_BUDGET,
) -> int:
    """Check the provenance contract (rules 3, 4 and 5) on every model, from lineage alone."""
    from .provenance import check
    from .render import provenance as render

    from .selection import select_models

    # with --select, only the selected models and what they read are analysed (or read from the cache)
    graph = _project_graph(_config(project_dir, profiles_dir, target, vars), _budget(time_budget), select=select)

    chosen = select_models(graph.project.nodes, " ".join(select) if select else None)
    result = check(graph, chosen)
    text = {"json": render.check_json, "github": render.check_github}.get(fmt.value, render.check_text)(result)
    write_output(text, output)
    return EXIT_FINDINGS if result.errors else EXIT_OK


@_command("impact", epilog="Example: lineage-tools impact labels_vendor_quickmark")
def impact_command(
    source_ids: SourceIds,
    fmt: Annotated[ImpactFormat, typer.Option("--format", "-f", help="Output format.")] = ImpactFormat.text,
    no_rows: Annotated[bool, typer.Option("--no-rows", help="Do not count rows in the warehouse.")] = False,
    emit_sql: Annotated[
        bool, typer.Option("--emit-sql", help="Print, per `filter` model, a query returning its clean rows.")
    ] = False,
    output: OutputFile = None,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    vars: Vars = None,
    time_budget: TimeBudget = DEFAULT_TIME_BUDGET,
) -> int:
    """Every model the sources reach, its affected columns, and filter or rebuild."""
    from .provenance import impact
    from .render import provenance as render

    from . import progress

    env = _config(project_dir, profiles_dir, target, vars)
    graph = _project_graph(env, _budget(time_budget))
    with progress.spinner("Counting rows in the warehouse", quiet=no_rows):
        imp = impact(graph, env, source_ids, count=not no_rows)
    fn = {"json": render.impact_json, "markdown": render.impact_markdown}.get(fmt.value, render.impact_text)
    write_output(fn(imp, emit_sql, _quarantined_ids(graph, env, imp.source_ids)), output)
    return EXIT_OK


def _quarantined_ids(graph, env, source_ids) -> tuple[str, ...]:
    """Which of these sources the registry already says are quarantined (for the render)."""
    from .provenance import read_project_registry

    status = {s.source_id: s.status for s in read_project_registry(graph.project, env.project_dir).sources}
    return tuple(s for s in source_ids if status.get(s) == "quarantined")


def _set_sources(source_ids: list[str], quarantine: bool, reason: str, dry_run: bool, fmt: str,
                 project_dir: Path, profiles_dir: Path | None, target: str | None, vars: str | None = None,
                 time_budget: float = DEFAULT_TIME_BUDGET) -> int:
    from .project import load_graph
    from .quarantine import RebuildError, set_sources
    from .render import provenance as render

    env = _config(project_dir, profiles_dir, target, vars)
    graph = load_graph(env, time_budget=_budget(time_budget))
    try:
        res = set_sources(graph, env, source_ids, quarantine=quarantine, reason=reason, dry_run=dry_run)
    except RebuildError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FINDINGS
    write_output(render.quarantine_json(res) if fmt == "json" else render.quarantine_text(res), None)
    return EXIT_OK


@_command("quarantine", epilog='Example: lineage-tools quarantine labels_vendor_quickmark --reason "garbage batch"')
def quarantine_command(
    source_ids: SourceIds,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (recorded in the registry).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; change nothing.")] = False,
    fmt: Annotated[TraceFormat, typer.Option("--format", "-f", help="Output format.")] = TraceFormat.text,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    vars: Vars = None,
    time_budget: TimeBudget = DEFAULT_TIME_BUDGET,
) -> int:
    """Quarantine sources: registry status, rebuild of the affected models, proof no row is left."""
    return _set_sources(source_ids, True, reason, dry_run, fmt.value, project_dir, profiles_dir, target, vars,
                        time_budget)


@_command("release", epilog="Example: lineage-tools release labels_vendor_quickmark")
def release_command(
    source_ids: SourceIds,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (recorded in the registry).")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; change nothing.")] = False,
    fmt: Annotated[TraceFormat, typer.Option("--format", "-f", help="Output format.")] = TraceFormat.text,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    vars: Vars = None,
    time_budget: TimeBudget = DEFAULT_TIME_BUDGET,
) -> int:
    """Release quarantined sources: registry status back to active, rebuild the affected models."""
    return _set_sources(source_ids, False, reason, dry_run, fmt.value, project_dir, profiles_dir, target, vars,
                        time_budget)


@_command("verify", epilog="Example: lineage-tools verify --select int_user_activity --generated")
def verify_command(
    select: Annotated[
        Optional[list[str]], typer.Option("--select", "-s", metavar="SELECTOR",
                                          help="Verify only these models (dbt selection syntax; `-s a b` or `-s a -s b`).")
    ] = None,
    rows: Annotated[int, typer.Option("--rows", metavar="N", help="At most this many sample rows per input relation.")] = 500,
    warehouse: Annotated[
        Optional[Path],
        typer.Option("--warehouse", metavar="FILE", help="Built DuckDB file to sample inputs from (opened "
                     "read-only); default: the dbt target's path, when built."),
    ] = None,
    generated: Annotated[
        bool, typer.Option("--generated", help="Do not read the warehouse: seeds from their files, sources "
                           "generated from their declared types, models run in the scratch database.")
    ] = False,
    fmt: Annotated[ImpactFormat, typer.Option("--format", "-f", help="Output format.")] = ImpactFormat.text,
    output: OutputFile = None,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    quiet: Quiet = False,
    vars: Vars = None,
    time_budget: TimeBudget = DEFAULT_TIME_BUDGET,
) -> int:
    """Check lineage by execution: run each model on samples in a scratch in-memory DuckDB, perturb one
    input column at a time, compare what changes with static lineage. Exit 1 on any false negative."""
    from . import progress
    from .project import load_graph
    from .render.verify import render
    from .selection import select_models
    from .verify import default_warehouse, verify_project

    progress.set_quiet(quiet)
    cfg = _config(project_dir, profiles_dir, target, vars)
    if generated and warehouse is not None:
        raise UserError("--warehouse and --generated exclude each other")
    if warehouse is not None and not warehouse.is_file():
        raise UserError(f"--warehouse {warehouse}: no such file")
    graph = load_graph(cfg, time_budget=_budget(time_budget))
    chosen = select_models(graph.project.nodes, " ".join(select) if select else None)
    wh = None if generated else (warehouse or default_warehouse(cfg))
    with progress.spinner("Verify", quiet=quiet) as advance:
        result = verify_project(graph.project, cfg.project_dir, select=chosen, rows=rows, warehouse=wh,
                                progress=lambda n: advance(description=f"Verify: {n.name}"))
    write_output(render(result, fmt.value), output)
    return EXIT_FINDINGS if result.false_negatives else EXIT_OK


@_command("lsp", epilog="Example (an editor starts it): lineage-tools lsp --project-dir .")
def lsp_command(
    project_dir: Annotated[
        Optional[Path], typer.Option("--project-dir", metavar="DIR", help="dbt project folder; default: the editor's "
                                     "workspace folder, else the current folder.")
    ] = None,
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    debounce_ms: Annotated[
        int, typer.Option("--debounce-ms", metavar="MS", help="Analyse an edit once its text has been still this long.")
    ] = 250,
    no_watch: Annotated[
        bool, typer.Option("--no-watch", help="Do not watch files on disk (rely on the editor's file events).")
    ] = False,
    log_file: Annotated[
        Optional[Path], typer.Option("--log-file", metavar="FILE", help="Also write the server's log to this file.")
    ] = None,
) -> None:
    """Language server (LSP over stdio) for the models of a dbt project: check's findings as
    diagnostics while you type, lineage and provenance on hover, go to definition, find references."""
    from .lsp.server import serve

    if log_file is not None:
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.getLogger().addHandler(handler)
    serve(project_dir.resolve() if project_dir else None, profiles_dir, target, debounce_ms / 1000, not no_watch)


@_command("watch", epilog="Example: lineage-tools watch")
def watch_command(
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
) -> int:
    """Re-check on every save: print the findings and what changed in lineage (Ctrl-C stops)."""
    from .lsp.watch import run

    run(project_dir.resolve(), profiles_dir, target)
    return EXIT_OK


_MULTI = ("--select", "-s")  # options that take several values after one flag, as in dbt


def spread_multi_values(argv: list[str], flags: frozenset[str] = frozenset(), positionals: int = 0) -> list[str]:
    """`--select a b` as dbt reads it: `--select a --select b` (click takes one value per flag).

    Values run until the next option. `flags` are the command's options that take no value (so
    the word after one is a positional); when the command's `positionals` would otherwise be
    missing, the last value goes back to them (`trace --select a x.col` traces x.col).

    >>> spread_multi_values(["check", "--select", "a", "b", "-f", "json"])
    ['check', '--select', 'a', '--select', 'b', '-f', 'json']
    >>> spread_multi_values(["trace", "-s", "+fct", "fct.col"], positionals=1)
    ['trace', '-s', '+fct', 'fct.col']
    >>> spread_multi_values(["trace", "fct.col", "--downstream", "-s", "a", "b"], frozenset({"--downstream"}), 1)
    ['trace', 'fct.col', '--downstream', '-s', 'a', '-s', 'b']
    """
    out: list[str] = []
    last_run: tuple[int, int] | None = None  # (index in out of the last run's last value, how many)
    seen, i, command = 0, 0, None
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            seen += len(argv) - i - 1
            out += argv[i:]
            break
        if arg in _MULTI:
            i += 1
            values = []
            while i < len(argv) and not argv[i].startswith("-"):
                values.append(argv[i])
                i += 1
            for v in values:
                out += [arg, v]
            if not values:
                out.append(arg)
            last_run = (len(out) - 1, len(values)) if values else last_run
            continue
        out.append(arg)
        i += 1
        if arg.startswith("-"):
            if arg not in flags and "=" not in arg and i < len(argv) and command is not None:
                out.append(argv[i])  # the option's value
                i += 1
        elif command is None:
            command = arg
        else:
            seen += 1
    if seen < positionals and last_run and last_run[1] > 1:
        at = last_run[0]
        value = out[at]
        del out[at - 1:at + 1]
        out.append(value)
    return out


def _spread(argv: list[str]) -> list[str]:
    """`spread_multi_values` with the flags and positional arguments of the command in `argv`."""
    if not any(a in _MULTI for a in argv):
        return argv
    group = typer.main.get_command(app)
    name = next((a for a in argv if not a.startswith("-")), None)
    cmd = getattr(group, "commands", {}).get(name) if name else None
    if cmd is None:
        return argv
    # typer's parameters are its own classes (not click.Option / click.Argument): by duck type
    flags = frozenset(o for p in cmd.params if p.param_type_name == "option"
                      and (getattr(p, "is_flag", False) or getattr(p, "count", False))
                      for o in (*p.opts, *p.secondary_opts)) | {"--help", "-v", "--verbose", "--version"}
    positionals = sum(1 for p in cmd.params if p.param_type_name == "argument" and p.required)
    return spread_multi_values(argv, flags, positionals)


def main() -> None:
    """Entry point: run the app, turning user errors into one line on stderr and exit 2."""
    try:
        rv = app(args=_spread(sys.argv[1:]), standalone_mode=False)
    except click.exceptions.UsageError as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except _TYPER_ERRORS as exc:  # typer >= 0.29 raises its own copy of click's errors
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        sys.exit(getattr(exc, "exit_code", EXIT_BAD_INPUT))
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()

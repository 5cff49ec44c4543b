"""The `lineage-tools` command: parses options, calls the library, picks a renderer, sets the
exit code (0 ok, 1 findings, 2 bad input). Data goes to stdout, logs to stderr.

Each subcommand is a thin function: all work happens in the library modules.
"""

from __future__ import annotations

import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from . import __version__
from .errors import UserError

log = logging.getLogger("lineage_tools")

app = typer.Typer(
    name="lineage-tools",
    help="Column-level lineage and row provenance for a dbt project.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2
# typer >= 0.29 raises its own copy of click's errors; older typer (pyproject allows >= 0.12) has none
_TYPER_ERRORS: tuple[type[Exception], ...] = (typer.TyperException,) if hasattr(typer, "TyperException") else ()

# Options shared by the commands that read a dbt project. They follow dbt's own names.
ProjectDir = Annotated[
    Path, typer.Option("--project-dir", help="dbt project folder (holds dbt_project.yml).")
]
ProfilesDir = Annotated[
    Optional[Path],
    typer.Option(
        "--profiles-dir",
        envvar="DBT_PROFILES_DIR",
        help="Folder holding profiles.yml [env: DBT_PROFILES_DIR]; default: the project folder "
        "if it has one, else ~/.dbt.",
    ),
]
Target = Annotated[Optional[str], typer.Option("--target", "-t", help="dbt target to use.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
OutputFile = Annotated[
    Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of stdout.")
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
    """Write rendered data to stdout or to `output`, atomically (no half-written file)."""
    if output is None:
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)


class ExportFormat(str, Enum):
    openlineage = "openlineage"
    json = "json"


class TraceFormat(str, Enum):
    text = "text"
    json = "json"


@app.command("sql")
def sql_command(
    file: Annotated[str, typer.Argument(help="SQL file (one statement, or several run in order); - reads stdin.")],
    dialect: Annotated[str, typer.Option("--dialect", "-d", help="sqlglot dialect of the SQL.")] = "duckdb",
    schema: Annotated[
        Optional[Path],
        typer.Option("--schema", help="JSON file mapping table names to a list of columns or to {column: type}."),
    ] = None,
    fmt: Annotated[TraceFormat, typer.Option("--format", "-f", help="Output format.")] = TraceFormat.text,
    output: OutputFile = None,
) -> None:
    """Column lineage of a plain SQL statement (SELECT, CREATE TABLE/VIEW AS, INSERT ... SELECT)."""
    from .render.edges import render
    from .standalone import analyze_file

    result = analyze_file(file, dialect=dialect, schema_path=schema)
    write_output(render(result, fmt.value), output)


TimeBudget = Annotated[
    Optional[float],
    typer.Option("--time-budget", help="Seconds of analysis per model before it is cut short (PARTIAL)."),
]


def _project_graph(project_dir: Path, profiles_dir: Path | None, target: str | None, time_budget: float | None,
                   upstream_of=None):
    """Load the dbt project's lineage (compiling when the manifest is missing or stale); with
    `upstream_of` (nodes -> unique_ids), only those models and their upstream ones."""
    from . import progress
    from .graph import build_graph
    from .project import load_project

    with progress.spinner("Lineage") as advance:
        project = load_project(project_dir, profiles_dir, target, time_budget=time_budget,
                               progress=lambda n: advance(description=f"Lineage: {n.name}"),
                               upstream_of=upstream_of)
    return build_graph(project)


@app.command("export")
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
        Optional[str], typer.Option("--namespace", help="OpenLineage namespace [default: <adapter>://<project>].")
    ] = None,
    event_time: Annotated[
        Optional[str],
        typer.Option("--event-time", help="OpenLineage eventTime (ISO 8601) [default: 1970-01-01T00:00:00Z, "
                     "so exports diff cleanly]."),
    ] = None,
    time_budget: TimeBudget = None,
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
    graph = _project_graph(project_dir, profiles_dir, target, time_budget)
    if fmt == ExportFormat.openlineage:
        from .render.openlineage import render as render_ol

        text = render_ol(graph, namespace=namespace, event_time=event_time)
    else:
        from .render.json_graph import render as render_json

        text = render_json(graph)
    write_output(text, output)


@app.command("trace")
def trace_command(
    column: Annotated[str, typer.Argument(help="MODEL.COLUMN (model name, unique_id or source_name.table).")],
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Trace to the last consumers instead of the roots.")
    ] = False,
    fmt: Annotated[TraceFormat, typer.Option("--format", "-f", help="Output format.")] = TraceFormat.text,
    direct_only: Annotated[
        bool, typer.Option("--direct-only", help="Follow DIRECT edges only (where values flow).")
    ] = False,
    depth: Annotated[Optional[int], typer.Option("--depth", help="Stop after this many hops.")] = None,
    select: Annotated[
        Optional[list[str]],
        typer.Option("--select", "-s", help="Walk only through these nodes (dbt selection syntax, e.g. +fct_x)."),
    ] = None,
    output: OutputFile = None,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    time_budget: TimeBudget = None,
) -> None:
    """The lineage tree of one column, down to its roots (or up to its last consumers)."""
    from .records import EdgeType
    from .render import trace as render_trace

    upstream_of = None
    if not downstream and not select and "." in column:  # the tree needs only upstream models
        from .graph import node_ids_named

        upstream_of = lambda nodes: node_ids_named(nodes, column.rsplit(".", 1)[0])  # noqa: E731
    graph = _project_graph(project_dir, profiles_dir, target, time_budget, upstream_of)
    col = graph.column(column)
    tree = graph.trace(col, downstream=downstream, kinds={EdgeType.DIRECT} if direct_only else None,
                       max_depth=depth)
    if select:
        from .selection import prune_trace, select as select_nodes

        tree = prune_trace(tree, select_nodes(graph.project.nodes, " ".join(select)))
    if fmt == TraceFormat.json:
        text = render_trace.render_json(graph, tree, downstream=downstream)
    else:
        text = render_trace.render_text(graph, tree, downstream=downstream)
    write_output(text, output)


class RowCounting(str, Enum):
    none = "none"
    quarantined = "quarantined"
    all = "all"


@app.command("report")
def report_command(
    output_dir: Annotated[
        Optional[Path],
        typer.Option("--output-dir", "-o", help="Folder for lineage.html, lineage.md and lineage.json (created; "
                     "nothing is written outside it) [default: <target-path>/lineage]."),
    ] = None,
    rows: Annotated[
        RowCounting,
        typer.Option("--rows", help="Count tainted rows in the warehouse for these sources' impact (one query per "
                     "source; needs a built warehouse)."),
    ] = RowCounting.quarantined,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    time_budget: TimeBudget = None,
    quiet: Quiet = False,
) -> None:
    """Write the lineage report: one offline HTML page, a Markdown summary and the JSON graph."""
    from . import progress
    from .graph import build_graph
    from .project import load_project, project_config
    from .provenance import Env
    from .report import ReportOptions, build_report, registry_size, render_all, safe_output_dir, write_files

    progress.set_quiet(quiet)
    out_dir = safe_output_dir(output_dir or project_config(project_dir, profiles_dir, target).target_path / "lineage")
    with progress.spinner("Lineage", quiet=quiet) as advance:
        project = load_project(project_dir, profiles_dir, target, time_budget=time_budget,
                               progress=lambda n: advance(description=f"Lineage: {n.name}"))
    graph = build_graph(project)
    env = Env(Path(project_dir), profiles_dir, target)
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


@app.command("diff")
def diff_command(
    base: Annotated[Path, typer.Option("--base", help="The base version's dbt target/ folder, or its manifest.json.")],
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="Output format.")] = DiffFormat.text,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 on new provenance findings, or on any lineage change.")
    ] = FailOn.never,
    output: OutputFile = None,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    time_budget: TimeBudget = None,
    quiet: Quiet = False,
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
        head_project = load_project(project_dir, profiles_dir, target, time_budget=time_budget,
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


SourceIds = Annotated[list[str], typer.Argument(help="Source ids of the registry (seeds/data_sources.csv).")]


@app.command("check")
def check_command(
    select: Annotated[
        Optional[list[str]], typer.Option("--select", "-s", help="Check only these models (dbt selection syntax).")
    ] = None,
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="Output format.")] = CheckFormat.text,
    output: OutputFile = None,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
) -> int:
    """Check the provenance contract (rules 3, 4 and 5) on every model, from lineage alone."""
    from .provenance import Env, check, load_graph
    from .render import provenance as render

    from .selection import select_models

    env = Env(Path(project_dir).resolve(), profiles_dir, target)
    if select:  # analyse (or read from the cache) only the selected models and what they read
        from .graph import build_graph
        from .project import load_project

        graph = build_graph(load_project(env.project_dir, env.profiles_dir, env.target,
                                         upstream_of=lambda nodes: select_models(nodes, " ".join(select))))
    else:  # a usable manifest is read once; else load_graph compiles it (dbt in a child process)
        from .errors import ManifestError
        from .graph import build_graph
        from .project import load_project

        try:
            graph = build_graph(load_project(env.project_dir, env.profiles_dir, env.target, compile=False))
        except ManifestError:
            graph = load_graph(env)

    chosen = select_models(graph.project.nodes, " ".join(select) if select else None)
    result = check(graph, chosen)
    text = {"json": render.check_json, "github": render.check_github}.get(fmt.value, render.check_text)(result)
    write_output(text, output)
    return EXIT_FINDINGS if result.errors else EXIT_OK


@app.command("impact")
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
) -> int:
    """Every model the sources reach, its affected columns, and filter or rebuild."""
    from .provenance import Env, impact, load_graph
    from .render import provenance as render

    env = Env(Path(project_dir).resolve(), profiles_dir, target)
    graph = load_graph(env)
    imp = impact(graph, env, source_ids, count=not no_rows)
    fn = {"json": render.impact_json, "markdown": render.impact_markdown}.get(fmt.value, render.impact_text)
    write_output(fn(imp, emit_sql), output)
    return EXIT_OK


def _set_sources(source_ids: list[str], quarantine: bool, reason: str, dry_run: bool, fmt: str,
                 project_dir: Path, profiles_dir: Path | None, target: str | None) -> int:
    from .provenance import Env, RebuildError, load_graph, set_sources
    from .render import provenance as render

    env = Env(Path(project_dir).resolve(), profiles_dir, target)
    graph = load_graph(env)
    try:
        res = set_sources(graph, env, source_ids, quarantine=quarantine, reason=reason, dry_run=dry_run)
    except RebuildError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FINDINGS
    write_output(render.quarantine_json(res) if fmt == "json" else render.quarantine_text(res), None)
    return EXIT_OK


@app.command("quarantine")
def quarantine_command(
    source_ids: SourceIds,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the registry).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; change nothing.")] = False,
    fmt: Annotated[TraceFormat, typer.Option("--format", "-f", help="Output format.")] = TraceFormat.text,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
) -> int:
    """Quarantine sources: registry status, rebuild of the affected models, proof no row is left."""
    return _set_sources(source_ids, True, reason, dry_run, fmt.value, project_dir, profiles_dir, target)


@app.command("release")
def release_command(
    source_ids: SourceIds,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the registry).")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; change nothing.")] = False,
    fmt: Annotated[TraceFormat, typer.Option("--format", "-f", help="Output format.")] = TraceFormat.text,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
) -> int:
    """Release quarantined sources: registry status back to active, rebuild the affected models."""
    return _set_sources(source_ids, False, reason, dry_run, fmt.value, project_dir, profiles_dir, target)


@app.command("verify")
def verify_command(
    select: Annotated[
        Optional[list[str]], typer.Option("--select", "-s", help="Verify only these models (dbt selection syntax).")
    ] = None,
    rows: Annotated[int, typer.Option("--rows", help="At most this many sample rows per input relation.")] = 500,
    warehouse: Annotated[
        Optional[Path],
        typer.Option("--warehouse", help="Built DuckDB file to sample inputs from (opened read-only) "
                     "[default: the dbt target's path, when built]."),
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
) -> int:
    """Check lineage by execution: run each model on samples in a scratch in-memory DuckDB, perturb one
    input column at a time, compare what changes with static lineage. Exit 1 on any false negative."""
    from . import progress
    from .project import project_config
    from .provenance import Env, load_graph
    from .render.verify import render
    from .selection import select_models
    from .verify import default_warehouse, verify_project

    progress.set_quiet(quiet)
    env = Env(Path(project_dir).resolve(), profiles_dir, target)
    cfg = project_config(env.project_dir, profiles_dir, target)
    if generated and warehouse is not None:
        raise UserError("--warehouse and --generated exclude each other")
    if warehouse is not None and not warehouse.is_file():
        raise UserError(f"--warehouse {warehouse}: no such file")
    graph = load_graph(env)
    chosen = select_models(graph.project.nodes, " ".join(select) if select else None)
    wh = None if generated else (warehouse or default_warehouse(cfg.project_dir, cfg.profiles_dir, target))
    with progress.spinner("Verify", quiet=quiet) as advance:
        result = verify_project(graph.project, cfg.project_dir, select=chosen, rows=rows, warehouse=wh,
                                progress=lambda n: advance(description=f"Verify: {n.name}"))
    write_output(render(result, fmt.value), output)
    return EXIT_FINDINGS if result.false_negatives else EXIT_OK


def main() -> None:
    """Entry point: run the app, turning user errors into one line on stderr and exit 2."""
    try:
        rv = app(standalone_mode=False)
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

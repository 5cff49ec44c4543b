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
        typer.Option("--schema", help="JSON file: table name -> [columns] or {column: type}."),
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


def _project_graph(project_dir: Path, profiles_dir: Path | None, target: str | None, time_budget: float | None):
    """Load the dbt project's lineage (compiling when the manifest is missing or stale)."""
    from .graph import build_graph
    from .project import load_project

    return build_graph(load_project(project_dir, profiles_dir, target, time_budget=time_budget))


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
    output: OutputFile = None,
    project_dir: ProjectDir = Path("."),
    profiles_dir: ProfilesDir = None,
    target: Target = None,
    time_budget: TimeBudget = None,
) -> None:
    """The lineage tree of one column, down to its roots (or up to its last consumers)."""
    from .records import EdgeType
    from .render import trace as render_trace

    graph = _project_graph(project_dir, profiles_dir, target, time_budget)
    col = graph.column(column)
    tree = graph.trace(col, downstream=downstream, kinds={EdgeType.DIRECT} if direct_only else None,
                       max_depth=depth)
    if fmt == TraceFormat.json:
        text = render_trace.render_json(graph, tree, downstream=downstream)
    else:
        text = render_trace.render_text(graph, tree, downstream=downstream)
    write_output(text, output)


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
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()

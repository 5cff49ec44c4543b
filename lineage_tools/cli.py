"""The `lineage-tools` command: parses options, calls the library, picks a renderer, sets the
exit code (0 ok, 1 findings, 2 bad input). Data goes to stdout, logs to stderr.

Each subcommand is a thin function: all work happens in the library modules.
"""

from __future__ import annotations

import logging
import os
import sys
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


@app.command("sql")
def sql_command(
    file: Annotated[str, typer.Argument(help="SQL file (one statement, or several run in order); - reads stdin.")],
    dialect: Annotated[str, typer.Option("--dialect", "-d", help="sqlglot dialect of the SQL.")] = "duckdb",
    schema: Annotated[
        Optional[Path],
        typer.Option("--schema", help="JSON file: table name -> [columns] or {column: type}."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", click_type=click.Choice(["text", "json"]), help="Output format.")
    ] = "text",
    output: OutputFile = None,
) -> None:
    """Column lineage of a plain SQL statement (SELECT, CREATE TABLE/VIEW AS, INSERT ... SELECT)."""
    from .render.edges import render
    from .standalone import analyze_file

    result = analyze_file(file, dialect=dialect, schema_path=schema)
    write_output(render(result, fmt), output)


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

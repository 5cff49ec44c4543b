"""Typed errors. Every user mistake is a `UserError`: the CLI prints its message on one line
and exits 2, with no stack trace. Anything else is a bug and keeps its traceback."""

from __future__ import annotations


class LineageToolsError(Exception):
    """Base class of every error this package raises on purpose."""


class UserError(LineageToolsError):
    """Bad input from the user: a path, a name, an option value. Exit code 2."""

    exit_code = 2


class ManifestError(UserError):
    """The dbt manifest is missing, unreadable, of another schema version, or cannot be compiled."""


class ProjectError(UserError):
    """The dbt project itself is unusable (no dbt_project.yml, bad profile, failed compile)."""


class DialectError(UserError):
    """An SQL dialect sqlglot does not know."""


class UnknownNodeError(UserError):
    """A model, column or source named by the user does not exist. Carries close matches."""

    def __init__(self, message: str, suggestions: tuple[str, ...] = ()):
        if suggestions:
            message = f"{message} (did you mean: {', '.join(suggestions)}?)"
        super().__init__(message)
        self.suggestions = suggestions


class SqlError(LineageToolsError):
    """SQL that cannot be parsed or analysed. Carries the 1-based line when known."""

    def __init__(self, message: str, line: int | None = None, col: int | None = None):
        super().__init__(message)
        self.line = line
        self.col = col


class WarehouseError(UserError):
    """The warehouse cannot be reached: file locked, not built, adapter missing."""

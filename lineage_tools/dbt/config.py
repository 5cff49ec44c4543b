"""A dbt project's configuration, read once and as dbt reads it.

`DbtConfig` holds what a command was given (project folder, profiles folder, target, ``--vars``)
and derives, lazily and once, what dbt would derive from ``dbt_project.yml`` and
``profiles.yml``: the project's name and folders, the profile and target (``--target``, else
``DBT_TARGET``, else the profile's default), the target's adapter type and, for DuckDB, its
file; and the value of a var for the project's own nodes (``--vars`` over package-scoped
``vars: {<project>: {...}}`` over global ``vars:``, dbt's order).

Nothing here imports dbt; profiles are read with PyYAML and their ``{{ env_var(...) }}`` /
``{{ var(...) }}`` rendered with Jinja only when a value holds Jinja.

>>> parse_vars("{excluded_sources: [a, b]}")
{'excluded_sources': ['a', 'b']}
>>> parse_vars(None)
{}
>>> vars_for("p", {"x": 1, "y": 1, "p": {"y": 2}}, {"x": 3})["x"], vars_for("p", {"y": 1, "p": {"y": 2}}, {})["y"]
(3, 2)
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ProjectError, UserError

log = logging.getLogger(__name__)

#: dbt_project.yml keys whose files change compiled SQL, with dbt's defaults.
SOURCE_PATH_KEYS: Mapping[str, tuple[str, ...]] = {
    "model-paths": ("models",),
    "seed-paths": ("seeds",),
    "macro-paths": ("macros",),
    "snapshot-paths": ("snapshots",),
}

_ENV_VAR = re.compile(r"""^\s*\{\{\s*env_var\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)\s*\}\}\s*$""")


def one_line(exc: BaseException | str, limit: int = 400) -> str:
    """An error message on one line, cut at `limit` characters."""
    text = " ".join(str(exc).split())
    return text[:limit] + ("..." if len(text) > limit else "")


def yaml_load(path: Path) -> Any:
    """A YAML file (libyaml's safe loader when present, as dbt reads YAML); `ProjectError`
    naming the file when it cannot be read."""
    import yaml  # dbt's own dependency; cheap to import

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ProjectError(f"{path}: cannot read YAML ({one_line(exc)})") from exc


def parse_vars(value: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """dbt's ``--vars`` value (a YAML or JSON mapping) as a dict; `UserError` when it is not one."""
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    import yaml

    try:
        data = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise UserError(f"--vars {value!r}: not YAML ({one_line(exc, 120)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"--vars {value!r}: not a mapping (e.g. '{{excluded_sources: [a, b]}}')")
    return data


def vars_for(package: str, project_vars: Mapping[str, Any], cli_vars: Mapping[str, Any]) -> dict[str, Any]:
    """The vars a node of `package` sees, as dbt merges them: global project vars, then the
    package-scoped block ``vars: {<package>: {...}}``, then ``--vars`` on top."""
    merged = {k: v for k, v in project_vars.items() if not (k == package and isinstance(v, dict))}
    scoped = project_vars.get(package)
    if isinstance(scoped, dict):
        merged.update(scoped)
    merged.update(cli_vars)
    return merged


def resolve_profiles_dir(project_dir: Path, profiles_dir: Path | str | None = None) -> Path:
    """dbt's rule: `--profiles-dir`, else `DBT_PROFILES_DIR`, else the project folder if it has a
    profiles.yml, else ``~/.dbt``."""
    if profiles_dir:
        return Path(profiles_dir).expanduser().resolve()
    env = os.environ.get("DBT_PROFILES_DIR")
    if env:
        return Path(env).expanduser().resolve()
    if (project_dir / "profiles.yml").is_file():
        return project_dir
    return Path.home() / ".dbt"


def _plain(value: Any) -> str | None:
    """A YAML value usable as a path: a string without Jinja."""
    return value if isinstance(value, str) and "{{" not in value else None


@dataclass(frozen=True)
class Target:
    """The target dbt would use: its name, adapter type and where its relations live (as far as
    the profile says; None where it does not)."""

    name: str
    adapter_type: str | None
    database: str | None = None
    schema: str | None = None
    duckdb_path: Path | None = None  # DuckDB targets on a local file

    def describe(self) -> str:
        return f"target {self.name} ({self.adapter_type or 'unknown adapter'})"


@dataclass(frozen=True)
class DbtConfig:
    """One dbt project as a command was given it: the folder, the profiles folder, the target and
    the ``--vars``; everything else is read from the project's files on first use.

    The same object goes to every layer (loading, counting, rebuilding); it replaces the
    project / environment / target triple the layers used to build each for themselves.
    """

    project_dir: Path
    profiles_dir: Path | None = None
    target: str | None = None
    vars: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "project_dir", Path(self.project_dir).expanduser().resolve())
        if self.profiles_dir is not None:
            object.__setattr__(self, "profiles_dir", Path(self.profiles_dir))
        if self.vars is not None and not isinstance(self.vars, dict):
            object.__setattr__(self, "vars", parse_vars(self.vars))  # type: ignore[arg-type]

    def with_vars(self, vars: Mapping[str, Any] | None) -> DbtConfig:
        return replace(self, vars=dict(vars) if vars is not None else None)

    @property
    def dbt(self) -> DbtConfig:
        """Itself (callers written against the old `Env.dbt` target object)."""
        return self

    # ---- dbt_project.yml ----------------------------------------------------------------------

    @functools.cached_property
    def project(self) -> Mapping[str, Any]:
        """``dbt_project.yml`` as a mapping; `ProjectError` when there is none or it is not one."""
        yml = self.project_dir / "dbt_project.yml"
        if not yml.is_file():
            raise ProjectError(f"{yml}: no dbt_project.yml here (use --project-dir)")
        data = yaml_load(yml)
        if not isinstance(data, dict):
            raise ProjectError(f"{yml}: not a YAML mapping")
        return data

    @property
    def name(self) -> str:
        return str(self.project.get("name") or self.project_dir.name)

    @functools.cached_property
    def target_path(self) -> Path:
        rel = os.environ.get("DBT_TARGET_PATH") or _plain(self.project.get("target-path")) or "target"
        return (self.project_dir / str(rel)).resolve()

    @functools.cached_property
    def source_dirs(self) -> tuple[Path, ...]:
        """The folders whose files change compiled SQL (models, seeds, macros, snapshots)."""
        dirs: list[Path] = []
        for key, default in SOURCE_PATH_KEYS.items():
            for rel in self.project.get(key) or default:
                if _plain(rel):
                    dirs.append(self.project_dir / str(rel))
        return tuple(dirs)

    @property
    def manifest_path(self) -> Path:
        return self.target_path / "manifest.json"

    @property
    def catalog_path(self) -> Path:
        return self.target_path / "catalog.json"

    @property
    def run_results_path(self) -> Path:
        return self.target_path / "run_results.json"

    @property
    def cache_dir(self) -> Path:
        """This tool's own scratch folder inside dbt's target folder."""
        return self.target_path / "lineage_tools"

    @functools.cached_property
    def project_vars(self) -> Mapping[str, Any]:
        """The ``vars:`` block of dbt_project.yml as written (dbt renders var values on use)."""
        value = self.project.get("vars") or {}
        return value if isinstance(value, dict) else {}

    def node_vars(self, cli_vars: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every var a node of this project sees (`cli_vars`, default: this config's ``--vars``)."""
        return vars_for(self.name, self.project_vars, (self.vars or {}) if cli_vars is None else cli_vars)

    def var(self, name: str, default: Any = None, *, cli_vars: Mapping[str, Any] | None = None) -> Any:
        """The value of var `name` for this project's models, as dbt resolves it."""
        return self.node_vars(cli_vars).get(name, default)

    # ---- profiles.yml -------------------------------------------------------------------------

    @functools.cached_property
    def profiles_path(self) -> Path:
        """The folder holding profiles.yml, by dbt's rule (see `resolve_profiles_dir`)."""
        return resolve_profiles_dir(self.project_dir, self.profiles_dir)

    @functools.cached_property
    def profile_name(self) -> str:
        return str(os.environ.get("DBT_PROFILE") or self._render(self.project.get("profile")) or self.name)

    @functools.cached_property
    def _profile(self) -> Mapping[str, Any]:
        path = self.profiles_path / "profiles.yml"
        if not path.is_file():
            raise ProjectError(f"{path}: no profiles.yml (use --profiles-dir, or DBT_PROFILES_DIR)")
        data = yaml_load(path)
        prof = data.get(self.profile_name) if isinstance(data, dict) else None
        if not isinstance(prof, dict):
            raise ProjectError(f"{path}: no profile {self.profile_name!r} (named by dbt_project.yml)")
        return prof

    @functools.cached_property
    def target_name(self) -> str:
        """The target dbt would use: --target, else DBT_TARGET, else the profile's default."""
        return str(self.target or os.environ.get("DBT_TARGET") or self.default_target)

    @functools.cached_property
    def default_target(self) -> str:
        """The profile's default target (what dbt uses without --target or DBT_TARGET)."""
        return str(self._render(self._profile.get("target")) or "default")

    @functools.cached_property
    def output(self) -> Mapping[str, Any]:
        """The target's entry under ``outputs:`` (values not rendered; see `render`)."""
        outputs = self._profile.get("outputs") or {}
        out = outputs.get(self.target_name) if isinstance(outputs, dict) else None
        if not isinstance(out, dict):
            names = ", ".join(sorted(outputs)) if isinstance(outputs, dict) else ""
            raise ProjectError(f"{self.profiles_path / 'profiles.yml'}: profile {self.profile_name!r} has no "
                               f"target {self.target_name!r}" + (f" (it has: {names})" if names else ""))
        return out

    @functools.cached_property
    def target_info(self) -> Target:
        """The target as far as profiles.yml tells (`ProjectError` when it cannot be read)."""
        out = self.output
        adapter = self._render(out.get("type"))
        adapter = str(adapter).lower() if adapter else None
        database = self._render(out.get("database") or out.get("dbname") or out.get("catalog"))
        schema = self._render(out.get("schema") or out.get("dataset"))
        path = None
        if adapter == "duckdb":
            raw = str(self._render(out.get("path")) or ":memory:")
            if raw != ":memory:" and not raw.startswith("md:") and not raw.startswith("motherduck:"):
                p = Path(raw).expanduser()
                path = p if p.is_absolute() else (self.project_dir / p)
                database = database or path.stem  # dbt-duckdb names the database after the file
            schema = schema or "main"
        return Target(self.target_name, adapter, str(database) if database else None,
                      str(schema) if schema else None, path)

    @property
    def adapter_type(self) -> str | None:
        """The target's adapter type, or None when the profile cannot be read."""
        try:
            return self.target_info.adapter_type
        except UserError as exc:
            log.debug("profile unreadable: %s", exc)
            return None

    @property
    def duckdb_path(self) -> Path | None:
        """The DuckDB file of a local DuckDB target (built or not), else None."""
        try:
            return self.target_info.duckdb_path
        except UserError:
            return None

    def _render(self, value: Any) -> Any:
        """A profile or project value rendered as dbt renders it: ``env_var`` and ``var`` (CLI
        vars) in Jinja. Plain values come back as they are."""
        if not isinstance(value, str) or "{" not in value:
            return value
        m = _ENV_VAR.match(value)
        if m:
            if m.group(1) in os.environ:
                return os.environ[m.group(1)]
            if m.group(2) is not None:
                return m.group(2)
        import jinja2  # only for profiles that hold more than a plain env_var

        def env_var(name: str, default: Any = None) -> Any:
            if name in os.environ:
                return os.environ[name]
            if default is None:
                raise ProjectError(f"{self.profiles_path / 'profiles.yml'}: env var {name} is not set")
            return default

        def var(name: str, default: Any = None) -> Any:
            return (self.vars or {}).get(name, default)

        env = jinja2.Environment(undefined=jinja2.StrictUndefined)
        for f in ("as_bool", "as_number", "as_text", "as_native"):
            env.filters[f] = lambda x: x
        try:
            return env.from_string(value).render(env_var=env_var, var=var, target={})
        except ProjectError:
            raise
        except jinja2.TemplateError as exc:
            raise ProjectError(f"{self.profiles_path / 'profiles.yml'}: cannot render {value!r} ({one_line(exc)})") from None

    # ---- for dbt's command line ---------------------------------------------------------------

    def flags(self, *, vars: Mapping[str, Any] | None = None) -> list[str]:
        """`--project-dir`, `--profiles-dir`, `--target` and (when any) `--vars` for a dbt run."""
        out = ["--project-dir", str(self.project_dir), "--profiles-dir", str(self.profiles_path)]
        if self.target:
            out += ["--target", self.target]
        chosen = self.vars if vars is None else vars
        if chosen:
            out += ["--vars", json.dumps(chosen, sort_keys=True)]
        return out


def load_config(project_dir: Path | str = ".", profiles_dir: Path | str | None = None, target: str | None = None,
                vars: str | Mapping[str, Any] | None = None) -> DbtConfig:
    """A `DbtConfig` whose dbt_project.yml was found and read (`ProjectError` otherwise)."""
    cfg = DbtConfig(Path(project_dir), Path(profiles_dir) if profiles_dir else None, target,
                    parse_vars(vars) if vars is not None else None)
    cfg.project  # noqa: B018 - read now: a missing project is the first error a user should see
    return cfg

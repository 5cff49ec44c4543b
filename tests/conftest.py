"""Shared pytest fixtures: real dbt runs on real DuckDB, each in its own copy of the project.

Tests never touch the working copy's `target/`: `copy_project` lays the dbt project into a
temporary folder, and `run_dbt` runs the real `dbt` executable of this environment there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = PROJECT_ROOT.parent / "shared"
BIN_DIR = Path(sys.executable).parent
DBT = str(BIN_DIR / "dbt")
LINEAGE_TOOLS = str(BIN_DIR / "lineage-tools")

# What a dbt project needs; Python tests, docs and benchmarks stay behind.
PROJECT_ENTRIES = (
    "dbt_project.yml",
    "profiles.yml",
    "models",
    "seeds",
    "macros",
    "snapshots",
    "analyses",
    "tests/dbt",
)


def dbt_env(project_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a dbt subprocess: no tracking, profiles from the project folder."""
    env = dict(os.environ)
    env.update(
        DO_NOT_TRACK="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_PROFILES_DIR=str(project_dir),
        PYTHONUNBUFFERED="1",
    )
    env.pop("PIPELINE_DUCKDB_PATH", None)
    env.update(extra)
    return env


def copy_project(dest: Path) -> Path:
    """Copy the dbt project (not the Python side) into `dest` and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in PROJECT_ENTRIES:
        src = PROJECT_ROOT / entry
        if src.is_dir():
            shutil.copytree(src, dest / entry, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            (dest / entry).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / entry)
    return dest


@dataclass(frozen=True)
class DbtResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_dbt(
    project_dir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> DbtResult:
    """Run the real `dbt` CLI in `project_dir`; fail the test with dbt's output on error."""
    proc = subprocess.run(
        [DBT, *args, "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)],
        cwd=project_dir,
        env=env or dbt_env(project_dir),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    result = DbtResult(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        pytest.fail(f"dbt {' '.join(args)} failed ({proc.returncode}):\n{result.output[-6000:]}")
    return result


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `lineage-tools` command as a user would."""
    return subprocess.run(
        [LINEAGE_TOOLS, *args],
        cwd=cwd,
        env=env or dbt_env(cwd or PROJECT_ROOT),
        capture_output=True,
        text=True,
        timeout=1800,
        input=input,
    )


@pytest.fixture(autouse=True, scope="session")
def _hermetic_dbt_env() -> None:
    """Tests choose their own project and profiles: a caller's dbt settings must not leak in."""
    for name in ("DBT_PROFILES_DIR", "DBT_PROJECT_DIR", "DBT_TARGET", "PIPELINE_DUCKDB_PATH"):
        os.environ.pop(name, None)
    os.environ["DO_NOT_TRACK"] = "1"


@pytest.fixture(scope="session")
def built_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pipeline built once per test session by a real `dbt build` (read-only for tests)."""
    project = copy_project(tmp_path_factory.mktemp("built") / "pipeline")
    run_dbt(project, "build")
    return project


@pytest.fixture(scope="session")
def compiled_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pipeline after `dbt compile` alone: manifest with compiled SQL, no tables built."""
    project = copy_project(tmp_path_factory.mktemp("compiled") / "pipeline")
    run_dbt(project, "compile")
    return project


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A fresh, unbuilt copy of the dbt project that a test may change freely."""
    return copy_project(tmp_path / "pipeline")


# The small fixture project of tests/fixtures/mini_project: seeds, a source, an ephemeral, an
# incremental, a python and an unparseable model, and a snapshot.
MINI_PROJECT = PROJECT_ROOT / "tests" / "fixtures" / "mini_project"


def copy_mini_project(dest: Path) -> Path:
    """Copy the mini fixture project (without any target/ it may have) into `dest`."""
    shutil.copytree(MINI_PROJECT, dest, ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
    return dest


@pytest.fixture(scope="session")
def compiled_mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini project after `dbt compile` alone (read-only for tests)."""
    project = copy_mini_project(tmp_path_factory.mktemp("mini-compiled") / "mini")
    run_dbt(project, "compile")
    return project


@pytest.fixture
def mini_copy(tmp_path: Path) -> Path:
    """A fresh, uncompiled copy of the mini project that a test may change freely."""
    return copy_mini_project(tmp_path / "mini")


# ---- editing models in tests ------------------------------------------------------------------

def drop_select_line(lines: list[str], i: int) -> str:
    """Remove select item `i` of `lines` (in place); a comma left dangling is removed. Returns it."""
    dropped = lines.pop(i)
    if not dropped.rstrip().endswith(","):  # it was the last item: the one before loses its comma
        j = i - 1
        while not lines[j].strip():
            j -= 1
        lines[j] = lines[j].rstrip().rstrip(",")
    return dropped


def drop_provenance_of(text: str, alias: str, prefix: str = "") -> tuple[str, str]:
    """`text` (a model in the jaffle-shop layout) without the provenance column it takes from
    the import CTE `alias` (`alias.label_source_mask`, `alias.source_ids`, ...), and without every
    later select item that reads that column (a mart decodes its masks in `final`): the join then
    keeps the other sides' provenance only; `prefix` picks one (`merge_`). Returns (new text, the
    first line dropped)."""
    lines = text.splitlines()
    pattern = re.compile(rf"\b{re.escape(alias)}\.({re.escape(prefix)}\w*source_(?:ids?|mask))\b")
    i = next(i for i, ln in enumerate(lines) if pattern.search(ln) and not ln.lstrip().startswith("--"))
    column = pattern.search(lines[i]).group(1)
    first = drop_select_line(lines, i)
    reader = re.compile(rf"\.{column}\b")
    while (k := next((k for k in range(i, len(lines)) if reader.search(lines[k])), None)) is not None:
        drop_select_line(lines, k)
    return "\n".join(lines) + "\n", first


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests run last: pytest-playwright's sync API keeps an asyncio loop running in
    this thread until the session ends, and the language server's tests (asyncio) cannot start
    one while it runs."""
    items.sort(key=lambda item: item.path.name == "test_browser.py")

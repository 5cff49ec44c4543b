"""`lineage-tools impact`: which models a source reaches, and whether filtering is exact.

The differential test runs, for every source of the pipeline, the rebuild command `impact`
prints (a real `dbt build` without the source, in a copy of the built warehouse) and compares:
for each `filter` model the clean rows (the `--emit-sql` query on the original warehouse) must
equal the rebuilt table; each `rebuild` model must differ for at least one source (or be
explained below).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from conftest import copy_project, run_cli, run_dbt

from lineage_tools.provenance import FILTER, REBUILD, Env, clean_rows_sql, impact, load_graph
from lineage_tools.registry import read_registry

# rebuild models that no single source of the demo data changes beyond what a filter keeps,
# with why `rebuild` is still the right answer (filled from the differential run).
REBUILD_EXPLAINED: dict[str, str] = {}


def _copy_built(built: Path, dest: Path) -> Path:
    shutil.copytree(built, dest, ignore=shutil.ignore_patterns("logs", "*.tmp"))
    return dest


def _diff_rows(con: duckdb.DuckDBPyConnection, left: str, right: str) -> int:
    """Rows in one query and not the other (multiset symmetric difference)."""
    sql = f"select count(*) from (({left}) except all ({right})) union all select count(*) from (({right}) except all ({left}))"
    return sum(r[0] for r in con.execute(sql).fetchall())


@dataclass(frozen=True)
class Outcome:
    source_id: str
    model: str
    mode: str
    differs: int


@pytest.fixture(scope="module")
def differential(built_pipeline: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Outcome]:
    env = Env(built_pipeline)
    graph = load_graph(env)
    registry = read_registry(built_pipeline / "seeds" / "data_sources.csv")
    db = built_pipeline / "target" / "pipeline.duckdb"
    outcomes: list[Outcome] = []
    for sid in registry.ids:
        imp = impact(graph, env, [sid], count=False)
        if not imp.models:
            continue
        copy = _copy_built(built_pipeline, tmp_path_factory.mktemp(f"rebuilt_{sid}") / "pipeline")
        run_dbt(copy, *imp.rebuild_argv[1:])
        con = duckdb.connect()
        try:
            con.execute(f"attach '{db}' as pipeline (read_only)")
            con.execute(f"attach '{copy / 'target' / 'pipeline.duckdb'}' as rebuilt (read_only)")
            for m in imp.models:
                if m.materialized == "ephemeral":
                    continue
                clean = clean_rows_sql(imp, m, any_mode=True)
                schema, table = m.relation.split(".")[-2:]
                rebuilt = f'select * from "rebuilt"."{schema}"."{table}"'
                outcomes.append(Outcome(sid, m.model, m.mode, _diff_rows(con, clean, rebuilt)))
        finally:
            con.close()
    return outcomes


@pytest.mark.dbt
def test_filter_models_clean_rows_equal_a_rebuild(differential: list[Outcome]) -> None:
    filters = [o for o in differential if o.mode == FILTER]
    assert filters, "no filter model at all: the differential test proves nothing"
    wrong = [o for o in filters if o.differs]
    assert not wrong, "filter is not exact for: " + ", ".join(f"{o.model} ({o.source_id}: {o.differs} rows)" for o in wrong)


@pytest.mark.dbt
def test_every_rebuild_model_differs_for_some_source(differential: list[Outcome]) -> None:
    rebuild_models = {o.model for o in differential if o.mode == REBUILD}
    assert rebuild_models
    differing = {o.model for o in differential if o.mode == REBUILD and o.differs}
    unexplained = rebuild_models - differing - set(REBUILD_EXPLAINED)
    assert not unexplained, f"rebuild models that never differ from a filter: {sorted(unexplained)}"


@pytest.mark.dbt
def test_differential_covers_every_source_with_rows(differential: list[Outcome], built_pipeline: Path) -> None:
    registry = read_registry(built_pipeline / "seeds" / "data_sources.csv")
    covered = {o.source_id for o in differential}
    assert len(covered) >= len(registry.ids) - 1

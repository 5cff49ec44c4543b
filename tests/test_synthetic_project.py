"""The synthetic dbt project generator of the benchmarks: deterministic, deep, wide enough, the
construct mix of the engine, provenance carried, and valid SQL that real dbt builds on DuckDB."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT, run_dbt

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import synthetic_project  # noqa: E402

from lineage_tools import project  # noqa: E402


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "synthetic_meta.json":
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_project_other_seed_other_project(tmp_path: Path) -> None:
    a = synthetic_project.generate(60, tmp_path / "a", seed=11, compile=False)
    b = synthetic_project.generate(60, tmp_path / "b", seed=11, compile=False)
    c = synthetic_project.generate(60, tmp_path / "c", seed=12, compile=False)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "c")
    assert a["kinds"] == b["kinds"]


def test_shape_depth_width_and_construct_mix(tmp_path: Path) -> None:
    meta = synthetic_project.generate(400, tmp_path / "p", seed=5, compile=False)
    assert meta["models"] == 400
    assert meta["incremental"] >= 0.05 * 400 and meta["sources_without_columns"] >= 1
    assert meta["dag_depth"] >= 10
    assert 10 <= meta["columns_min"] and meta["columns_max"] <= 60
    assert set(meta["kinds"]) == {"staging", *synthetic_project.KINDS}
    sql = "\n".join(p.read_text() for p in (tmp_path / "p" / "models").rglob("*.sql")).lower()
    for construct in (" exclude (", " replace (", " using (user_id)", "union all", "group by",
                      " over (partition by", " exists (", " in (\n", "case when", "having",
                      "collect_sources(", "merge_sources(", "synth_utils.safe_divide(", "is_incremental()",
                      "{{ this }}", "{{ source('raw', "):
        assert construct in sql, construct
    schema = json.loads((tmp_path / "p" / "synthetic_schema.json").read_text())
    for relation, cols in schema.items():
        names = [c for c, _ in cols]
        assert any(n == "source_id" or n.endswith("source_id") or n.endswith("source_ids") for n in names), relation
        assert len(names) == len(set(names)), relation


def test_column_names_are_unique_in_every_relation_of_a_large_project() -> None:
    for seed in (7, 8):
        gen = synthetic_project.Generator(5000, seed)
        gen.generate()
        for rel in gen.rels.values():
            names = [c.name for c in rel.cols]
            assert len(names) == len(set(names)), (seed, rel.name, rel.kind)
            assert 10 <= len(names) <= 60, (seed, rel.name, rel.kind)


def test_too_few_models_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 12"):
        synthetic_project.generate(5, tmp_path / "p", compile=False)


@pytest.mark.dbt
def test_dbt_builds_it_and_lineage_finds_the_generated_columns(tmp_path: Path) -> None:
    root = tmp_path / "synth"
    meta = synthetic_project.generate(40, root, seed=3)
    assert meta["compile_seconds"] > 0
    manifest = json.loads((root / "target" / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(models) == 40 and all(n.get("compiled_code") for n in models)
    run_dbt(root, "build")  # every generated model is valid DuckDB SQL and runs on the seeds
    pl = project.load_project(root, compile=False)
    schema = json.loads((root / "synthetic_schema.json").read_text())
    over_sources = {f"model.synthetic.{n['name']}" for n in manifest["nodes"].values()
                    if any(d.startswith("source.") for d in (n.get("depends_on") or {}).get("nodes") or ())}
    assert over_sources and meta["incremental"] >= 2
    for m in pl.models:
        expected = schema.get(m.node.relation)
        if expected is not None:
            assert list(m.lineage.columns) == [c for c, _ in expected], m.node.name
        if m.node.unique_id in over_sources:  # the source declares no columns: not in the catalog
            assert {r.code.value for r in m.lineage.reasons} == {"unknown_table"}, m.lineage.reasons
        else:
            assert m.status.value == "FULL", (m.node.name, m.lineage.reasons)
        if m.node.materialized == "incremental":
            assert any(e.incremental_only and e.source.relation == m.node.unique_id for e in m.lineage.edges)

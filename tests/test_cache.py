"""The per-model lineage cache: used on a warm run, invalidated by exactly what changes a model's
lineage (its SQL, the columns it reads, the tool's version), robust to corrupt entries and
concurrent writers. Real dbt compiles, real sqlglot; no timing assertions."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT, run_cli, run_dbt

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import synthetic_project  # noqa: E402

import lineage_tools  # noqa: E402
from lineage_tools import project  # noqa: E402
from lineage_tools.cache import (  # noqa: E402
    CACHE_DIRNAME,
    DIGEST_NAME,
    FORMAT,
    LineageCache,
    codec_is_complete,
    lineage_from_json,
    lineage_to_json,
    node_codec_is_complete,
    nodes_from_json,
    nodes_to_json,
)
from lineage_tools.records import (  # noqa: E402
    ColumnEdge,
    ColumnRef,
    Reason,
    ReasonCode,
    RowEffect,
    RowInfluence,
    StatementLineage,
    Status,
    Subtype,
)

N_MODELS = 24


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic project, compiled once by real dbt (tests copy it before changing it)."""
    root = tmp_path_factory.mktemp("cache") / "synth"
    synthetic_project.generate(N_MODELS, root, seed=4)
    return root


@pytest.fixture
def synth_copy(synthetic: Path, tmp_path: Path) -> Path:
    """A private copy, recompiled in place so the manifest points at the copy's files."""
    root = tmp_path / "synth"
    shutil.copytree(synthetic, root, ignore=shutil.ignore_patterns("lineage_cache", "*.duckdb"))
    run_dbt(root, "compile", "--quiet")
    return root


def run(root: Path, cache: LineageCache | None = None):
    """Lineage of the whole project through the cache of its target folder; (project, stats)."""
    cache = cache or LineageCache.for_target(root / "target")
    pl = project.load_project(root, compile=False, analyze=cache.wrap(project.analyze_node), cache=False)
    return pl, cache.stats


def names(pl, uids) -> set[str]:
    by_id = {m.node.unique_id: m.node.name for m in pl.models}
    return {by_id[u] for u in uids}


def children_of(root: Path) -> dict[str, list[str]]:
    manifest = json.loads((root / "target" / "manifest.json").read_text())
    return {k.split(".")[-1]: [c.split(".")[-1] for c in v] for k, v in manifest["child_map"].items()}


def descendants(children: dict[str, list[str]], name: str) -> set[str]:
    out, todo = set(), [name]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def model_file(root: Path, name: str) -> Path:
    return next((root / "models").rglob(f"{name}.sql"))


def model_with_consumers(children: dict[str, list[str]]) -> str:
    """A mid-DAG model read by two or more others: the one the edit tests change."""
    return next(n for n in sorted(children) if n.startswith("int_") and len(children[n]) >= 2)


# --------------------------------------------------------------------------------------------
# codec


def test_codec_round_trips_every_field() -> None:
    sl = StatementLineage(
        columns=("a", "b"),
        edges=(
            ColumnEdge("a", ColumnRef("db.main.t", "x"), Subtype.IDENTITY),
            ColumnEdge("b", ColumnRef("db.main.t", "y"), Subtype.AGGREGATION, masking=True),
            ColumnEdge(None, ColumnRef("model.p.u", "k"), Subtype.JOIN, incremental_only=True),
        ),
        row_influences=(RowInfluence("model.p.u", RowEffect.SEMI_JOIN),),
        status=Status.PARTIAL,
        reasons=(Reason(ReasonCode.UNKNOWN_COLUMN, "no column z", 3, "z"), Reason(ReasonCode.UNSUPPORTED, "m")),
        target="db.main.out",
        column_lines=(("a", 2), ("b", 5)),
    )
    text = json.dumps(lineage_to_json(sl))
    assert lineage_from_json(json.loads(text)) == sl


def test_codec_knows_every_field_of_the_records() -> None:
    # Fails when records.py gains a field: update lineage_tools/cache.py's codec (and FORMAT).
    assert codec_is_complete()


# --------------------------------------------------------------------------------------------
# used, and invalidated right (real dbt, real sqlglot)


@pytest.mark.dbt
def test_warm_run_analyses_no_model_and_gives_the_same_lineage(synth_copy: Path) -> None:
    cold, stats = run(synth_copy)
    assert stats.analysed == len(cold.models) == N_MODELS and stats.hits == 0
    assert stats.written == N_MODELS
    assert len(list((synth_copy / "target" / CACHE_DIRNAME / f"v{FORMAT}").glob("*.json"))) == N_MODELS
    warm, stats = run(synth_copy)
    assert stats.analysed == 0 and stats.hits == N_MODELS
    assert [m.lineage for m in warm.models] == [m.lineage for m in cold.models]
    assert [m.node for m in warm.models] == [m.node for m in cold.models]


@pytest.mark.dbt
def test_editing_a_model_recomputes_it_and_only_the_models_its_change_reaches(synth_copy: Path) -> None:
    run(synth_copy)
    children = children_of(synth_copy)
    name = model_with_consumers(children)
    path = model_file(synth_copy, name)

    # An edit that changes the SQL but not the columns: only the model itself is analysed again.
    path.write_text(path.read_text().replace("select * from final", "select * from final -- edited"))
    run_dbt(synth_copy, "compile", "--quiet", "--select", name)
    pl, stats = run(synth_copy)
    assert names(pl, stats.analysed_ids) == {name}

    # A new column: the model and the models that read it are analysed again, nothing else.
    path.write_text(path.read_text().replace("select * from final -- edited",
                                             "select *, 1 as added_column from final"))
    run_dbt(synth_copy, "compile", "--quiet", "--select", name)
    pl, stats = run(synth_copy)
    analysed = names(pl, stats.analysed_ids)
    assert name in analysed and set(children[name]) <= analysed
    assert analysed <= {name} | descendants(children, name)
    assert "added_column" in next(m for m in pl.models if m.node.name == name).lineage.columns


@pytest.mark.dbt
def test_a_changed_upstream_column_recomputes_its_readers(synth_copy: Path) -> None:
    run(synth_copy)
    seed = sorted((synth_copy / "seeds").glob("raw_*.csv"))[0]
    lines = seed.read_text().splitlines()
    header = lines[0].split(",")
    header[-1] = header[-1] + "_renamed"  # the staging model reads it by name: now unknown
    seed.write_text("\n".join([",".join(header), *lines[1:]]) + "\n")
    run_dbt(synth_copy, "compile", "--quiet")
    pl, stats = run(synth_copy)
    readers = {c for c in children_of(synth_copy)[seed.stem]}
    assert readers and readers <= names(pl, stats.analysed_ids)
    assert len(stats.analysed_ids) < N_MODELS


@pytest.mark.dbt
def test_a_new_tool_version_recomputes_everything(synth_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(synth_copy)
    monkeypatch.setattr(lineage_tools, "__version__", lineage_tools.__version__ + ".post1")
    _, stats = run(synth_copy)
    assert stats.analysed == N_MODELS and stats.hits == 0


@pytest.mark.dbt
def test_a_corrupt_entry_is_ignored_and_rewritten(synth_copy: Path) -> None:
    run(synth_copy)
    entries = sorted((synth_copy / "target" / CACHE_DIRNAME / f"v{FORMAT}").glob("*.json"))
    entries[0].write_text('{"format": 1, "key": "trunc')
    entries[1].write_text(json.dumps({"format": FORMAT, "key": entries[1].stem, "lineage": {"edges": 3}}))
    _, stats = run(synth_copy)
    assert stats.analysed == 2 and stats.corrupt == 2
    _, stats = run(synth_copy)
    assert stats.analysed == 0 and stats.corrupt == 0
    assert json.loads(entries[0].read_text())["key"] == entries[0].stem


@pytest.mark.dbt
def test_turned_off_by_the_environment(synth_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGE_TOOLS_NO_CACHE", "1")
    run(synth_copy)
    _, stats = run(synth_copy)
    assert stats.analysed == N_MODELS and stats.written == 0
    assert not (synth_copy / "target" / CACHE_DIRNAME).exists()


@pytest.mark.dbt
def test_a_warm_run_imports_no_dbt_and_parses_no_sql(synth_copy: Path) -> None:
    run(synth_copy)
    script = textwrap.dedent(f"""
        import sys
        import sqlglot
        parsed = []
        real_parse = sqlglot.parse
        sqlglot.parse = lambda *a, **k: parsed.append(1) or real_parse(*a, **k)
        from lineage_tools import project
        from lineage_tools.cache import LineageCache
        cache = LineageCache.for_target({str(synth_copy / 'target')!r})
        pl = project.load_project({str(synth_copy)!r}, analyze=cache.wrap(project.analyze_node), cache=False)
        print(len(pl.models), cache.stats.analysed, len(parsed), any(m == 'dbt' or m.startswith('dbt.') for m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env=dict(os.environ, DO_NOT_TRACK="1"))
    assert out.stdout.split() == [str(N_MODELS), "0", "0", "False"], out.stderr


@pytest.mark.dbt
def test_the_cli_says_a_second_export_analysed_nothing(synth_copy: Path) -> None:
    first = run_cli("export", "--project-dir", str(synth_copy), cwd=synth_copy)
    second = run_cli("export", "--project-dir", str(synth_copy), cwd=synth_copy)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert f"0 model(s) from cache, {N_MODELS} analysed" in first.stderr
    assert f"{N_MODELS} model(s) from cache, 0 analysed" in second.stderr
    assert first.stdout == second.stdout


# --------------------------------------------------------------------------------------------
# concurrent writers


def _writer(directory: str, rounds: int) -> None:
    cache = LineageCache(directory)
    for i in range(rounds):
        sl = StatementLineage(columns=("a",), edges=(ColumnEdge("a", ColumnRef("t", "x"), Subtype.IDENTITY),))
        cache.put(f"{i % 5:064x}", sl)


def test_concurrent_writers_leave_only_whole_entries(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 200)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = LineageCache(tmp_path)
    files = sorted(p.name for p in (tmp_path / f"v{FORMAT}").iterdir())
    assert files == [f"{i:064x}.json" for i in range(5)]  # no temporary file left behind
    assert all(cache.get(f"{i:064x}") is not None for i in range(5))


# --------------------------------------------------------------------------------------------
# compiled SQL after `dbt compile --select`


@pytest.mark.dbt
def test_compile_select_leaves_a_usable_manifest_until_a_macro_changes(synth_copy: Path) -> None:
    from lineage_tools.errors import ManifestError

    run(synth_copy)
    name = sorted(p.stem for p in (synth_copy / "models" / "intermediate").glob("*.sql"))[0]
    path = model_file(synth_copy, name)
    path.write_text(path.read_text() + "\n-- edited\n")
    run_dbt(synth_copy, "compile", "--quiet", "--select", name)
    manifest = json.loads((synth_copy / "target" / "manifest.json").read_text())
    compiled = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n.get("compiled_code")]
    assert len(compiled) == 1  # what dbt writes: only the selected model is compiled
    pl, stats = run(synth_copy)  # the others' SQL comes from target/compiled, no dbt run
    assert names(pl, stats.analysed_ids) == {name}
    macro = synth_copy / "macros" / "provenance.sql"
    macro.write_text(macro.read_text() + "\n")
    os.utime(synth_copy / "target" / "manifest.json")  # the manifest itself looks fresh
    with pytest.raises(ManifestError, match="no compiled SQL"):
        run(synth_copy)


# --------------------------------------------------------------------------------------------
# the manifest digest: a warm run does not read the manifest again, until something changed


def load(root: Path, **kwargs):
    """`load_project` as the CLI runs it (lineage cache and manifest digest on)."""
    return project.load_project(root, compile=False, **kwargs)


def reads_of_manifest(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Counts the manifest reads of `project` (the real function still runs)."""
    calls: list[Path] = []
    real = project.read_manifest
    monkeypatch.setattr(project, "read_manifest", lambda path: calls.append(path) or real(path))
    return calls


def assert_same_as_without_cache(root: Path) -> None:
    """The cached load (digest and entries) gives what a load from scratch gives."""
    warm = load(root)
    fresh = load(root, cache=False)
    assert warm.nodes == fresh.nodes
    assert [repr(n) for n in warm.nodes] == [repr(n) for n in fresh.nodes]  # the cache key hashes repr
    assert [m.lineage for m in warm.models] == [m.lineage for m in fresh.models]
    assert (warm.dialect, warm.adapter_type, warm.project_name) == (fresh.dialect, fresh.adapter_type,
                                                                    fresh.project_name)


@pytest.mark.dbt
def test_node_codec_round_trips_the_nodes_of_a_real_manifest(synthetic: Path) -> None:
    nodes = project.load_project(synthetic, compile=False, cache=False).nodes
    assert nodes_from_json(json.loads(json.dumps(nodes_to_json(nodes)))) == nodes
    assert node_codec_is_complete()


@pytest.mark.dbt
def test_a_warm_run_takes_the_nodes_from_the_digest(synth_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = reads_of_manifest(monkeypatch)
    cold = load(synth_copy)
    assert len(reads) == 1 and (synth_copy / "target" / CACHE_DIRNAME / DIGEST_NAME).is_file()
    warm = load(synth_copy)
    assert len(reads) == 1  # not read again
    assert warm.nodes == cold.nodes and [m.lineage for m in warm.models] == [m.lineage for m in cold.models]


@pytest.mark.dbt
def test_a_recompiled_manifest_is_never_served_from_a_stale_digest(synth_copy: Path) -> None:
    load(synth_copy)
    children = children_of(synth_copy)
    name = model_with_consumers(children)
    path = model_file(synth_copy, name)
    path.write_text(path.read_text().replace("select * from final", "select *, 1 as added_column from final"))
    from lineage_tools.errors import ManifestError

    with pytest.raises(ManifestError, match="newer than"):  # the digest does not hide a stale manifest
        load(synth_copy)
    run_dbt(synth_copy, "compile", "--quiet", "--select", name)
    pl = load(synth_copy)
    assert "added_column" in next(m for m in pl.models if m.node.name == name).lineage.columns
    assert "added_column" in next(n for n in pl.nodes if n.name == name).compiled_sql
    assert_same_as_without_cache(synth_copy)
    # a full compile after `compile --select`: the restored SQL now comes from the manifest
    run_dbt(synth_copy, "compile", "--quiet")
    assert_same_as_without_cache(synth_copy)


@pytest.mark.dbt
def test_the_digest_is_read_again_when_an_ingredient_changes(synth_copy: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    reads = reads_of_manifest(monkeypatch)
    load(synth_copy)
    load(synth_copy)
    assert len(reads) == 1
    manifest = synth_copy / "target" / "manifest.json"

    manifest.write_text(manifest.read_text())  # rewritten (same content, new mtime)
    load(synth_copy)
    assert len(reads) == 2

    monkeypatch.setattr(lineage_tools, "__version__", lineage_tools.__version__ + ".post1")  # an upgrade
    load(synth_copy)
    assert len(reads) == 3
    load(synth_copy)
    assert len(reads) == 3

    (synth_copy / "target" / "catalog.json").write_text(json.dumps({"nodes": {}, "sources": {}}))
    load(synth_copy)
    assert len(reads) == 4

    macro = synth_copy / "macros" / "provenance.sql"  # a source file changed: stale, recompiled
    macro.write_text(macro.read_text() + "\n")
    run_dbt(synth_copy, "compile", "--quiet")
    load(synth_copy)
    assert len(reads) == 5

    digest = synth_copy / "target" / CACHE_DIRNAME / DIGEST_NAME
    digest.write_text(digest.read_text()[:1000])  # corrupt: a miss, rewritten
    load(synth_copy)
    load(synth_copy)
    assert len(reads) == 6
    assert_same_as_without_cache(synth_copy)


@pytest.mark.dbt
def test_compiled_sql_changed_behind_the_manifest_is_seen(synth_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `dbt compile --select` leaves the other models' SQL in target/compiled; the digest keeps
    # what was restored from there, and notices when one of those files is written again.
    name = sorted(p.stem for p in (synth_copy / "models" / "intermediate").glob("*.sql"))[0]
    path = model_file(synth_copy, name)
    path.write_text(path.read_text() + "\n-- edited\n")
    run_dbt(synth_copy, "compile", "--quiet", "--select", name)
    reads = reads_of_manifest(monkeypatch)
    load(synth_copy)
    other = next(p for p in (synth_copy / "target" / "compiled").rglob("*.sql")
                 if p.stem.startswith("int_") and p.stem != name)
    other.write_text(other.read_text().replace("select * from final", "select *, 2 as behind from final"))
    pl = load(synth_copy)
    assert len(reads) == 2
    assert "behind" in next(m for m in pl.models if m.node.name == other.stem).lineage.columns
    assert_same_as_without_cache(synth_copy)


@pytest.mark.dbt
def test_a_warm_subset_run_imports_neither_dbt_nor_sqlglot(synth_copy: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from lineage_tools import project
        from lineage_tools.graph import node_ids_named
        pl = project.load_project({str(synth_copy)!r}, upstream_of=lambda nodes: node_ids_named(nodes, "int_1"))
        print(len(pl.models), "sqlglot" in sys.modules, any(m == "dbt" or m.startswith("dbt.") for m in sys.modules))
    """)
    env = dict(os.environ, DO_NOT_TRACK="1")
    names_ = {p.stem for p in (synth_copy / "models").rglob("int_*.sql")}
    script = script.replace('"int_1"', repr(sorted(names_)[-1]))
    cold = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    warm = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    n = cold.stdout.split()[0]
    assert int(n) > 1
    assert cold.stdout.split() == [n, "True", "False"], cold.stderr  # the first run analyses: sqlglot
    assert warm.stdout.split() == [n, "False", "False"], warm.stderr

"""Full typed lineage of a synthetic dbt project against sqlglot's own ways, side by side.

    .venv/bin/python benchmarks/bench_lineage.py --models 100,1000,5000 [--workdir /tmp/lineage-bench]
        [--seed 7] [--repeat 1] [--json results.json]

For each size, on the same generated and compiled project (see `synthetic_project.py`), in one
process and one after the other:

* ``tool``: what `lineage-tools export` computes: `project.load_project` (manifest, nodes, catalog,
  the engine over every model in DAG order; the cache turned off), then `graph.build_graph` and
  the JSON rendering, each timed on its own;
* ``parse+qualify``: sqlglot parse + qualify of every model against the full catalog (the floor:
  no lineage at all), with the same sqlglot build the tool uses (sqlglotc when installed);
* ``sqlglot lineage(None)``: sqlglot's all-columns lineage per model, default (trim_selects=True)
  and trim_selects=False;
  (above --sample models, trim_selects=True runs on an evenly spread sample and is scaled up
  by column count: it takes minutes per thousand models);
* ``sqlglot lineage(col)``: one call per output column, run at the smallest size only and
  extrapolated to the others from its cost per column.

Times are wall and CPU seconds (the machine is shared: CPU time is the steadier one); ratios are
to the floor. With --repeat R each contender runs R times and the best time is kept.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic_project  # noqa: E402

os.environ["LINEAGE_TOOLS_NO_CACHE"] = "1"  # cold, every model analysed

import sqlglot  # noqa: E402
import sqlglot.lineage  # noqa: E402
from sqlglot.optimizer.qualify import qualify  # noqa: E402

from lineage_tools import graph as graph_mod  # noqa: E402
from lineage_tools import project  # noqa: E402
from lineage_tools.records import ProjectLineage  # noqa: E402
from lineage_tools.render import json_graph  # noqa: E402
from lineage_tools.sql import Catalog  # noqa: E402


@dataclass
class Timing:
    wall: float
    cpu: float
    note: str = ""

    @staticmethod
    def of(fn: Callable[[], object], repeat: int = 1) -> tuple["Timing", object]:
        best: Timing | None = None
        result = None
        for _ in range(repeat):
            gc.collect()
            w0, c0 = time.perf_counter(), time.process_time()
            result = fn()
            t = Timing(time.perf_counter() - w0, time.process_time() - c0)
            if best is None or t.cpu < best.cpu:
                best = t
        assert best is not None
        return best, result


def compiled_models(pl: ProjectLineage) -> list[tuple[str, str]]:
    """(name, compiled SQL) of every model, in DAG order."""
    return [(m.node.name, m.node.compiled_sql) for m in pl.models if m.node.compiled_sql]


def full_catalog(pl: ProjectLineage) -> Catalog:
    """Every relation with the columns the tool found: the schema the sqlglot contenders get."""
    cat = Catalog(pl.dialect)
    for n in pl.nodes:
        if n.is_root_candidate and n.columns:
            cat.add(n.relation, n.columns)
    for m in pl.models:
        if m.node.materialized != "ephemeral":
            cat.add(m.node.relation, [(c, None) for c in m.lineage.columns])
    return cat


def run_floor(models: list[tuple[str, str]], schema, dialect: str) -> int:
    for _, sql in models:
        qualify(sqlglot.parse_one(sql, read=dialect), dialect=dialect, schema=schema,
                validate_qualify_columns=False, allow_partial_qualification=True, identify=False)
    return len(models)


def run_sqlglot_all(models: list[tuple[str, str]], schema, dialect: str, trim: bool) -> int:
    failed = 0
    for _, sql in models:
        try:
            sqlglot.lineage.lineage(None, sql, schema, dialect=dialect, trim_selects=trim)
        except Exception:  # noqa: BLE001 - counted, reported
            failed += 1
    return failed


def run_sqlglot_per_column(models: list[tuple[str, str]], columns: dict[str, tuple[str, ...]],
                           schema, dialect: str) -> tuple[int, int]:
    calls = failed = 0
    for name, sql in models:
        for col in columns[name]:
            calls += 1
            try:
                sqlglot.lineage.lineage(col, sql, schema, dialect=dialect)
            except Exception:  # noqa: BLE001
                failed += 1
    return calls, failed


def bench_size(n: int, workdir: Path, seed: int, repeat: int, per_column_rate: dict,
               sample: int = 200) -> list[dict]:
    root, meta = synthetic_project.ensure_project(n, workdir, seed)
    rows: list[dict] = []

    def row(name: str, t: Timing, note: str = "") -> None:
        rows.append({"models": n, "contender": name, "wall": t.wall, "cpu": t.cpu, "note": note})

    t_load, pl = Timing.of(lambda: project.load_project(root, compile=False), repeat)
    t_graph, graph = Timing.of(lambda: graph_mod.build_graph(pl), repeat)
    t_json, text = Timing.of(lambda: json_graph.render(graph), repeat)
    tool = Timing(t_load.wall + t_graph.wall + t_json.wall, t_load.cpu + t_graph.cpu + t_json.cpu)
    statuses = {}
    for m in pl.models:
        statuses[m.status.value] = statuses.get(m.status.value, 0) + 1
    n_edges = sum(len(m.lineage.edges) for m in pl.models)
    row("tool: export (load + graph + json)", tool,
        f"{len(pl.models)} models, {n_edges} edges, {statuses}, json {len(text) / 1e6:.1f} MB")
    row("  tool: load_project (engine)", t_load)
    row("  tool: build_graph", t_graph)
    row("  tool: render json", t_json)

    models = compiled_models(pl)
    cat = full_catalog(pl)
    schema, dialect = cat.schema, pl.dialect
    t_floor, _ = Timing.of(lambda: run_floor(models, schema, dialect), repeat)
    row("parse+qualify (floor)", t_floor)
    columns = {m.node.name: m.lineage.columns for m in pl.models}
    n_cols = sum(len(columns[name]) for name, _ in models)
    if len(models) <= sample:
        t_trim, failed = Timing.of(lambda: run_sqlglot_all(models, schema, dialect, True), repeat)
        row("sqlglot lineage(None), trim_selects=True", t_trim, f"{failed} failed")
    else:  # minutes per thousand models: an evenly spread sample, scaled by column count
        picked = models[:: max(1, len(models) // sample)][:sample]
        s_cols = sum(len(columns[name]) for name, _ in picked)
        t_s, failed = Timing.of(lambda: run_sqlglot_all(picked, schema, dialect, True), 1)
        scale = n_cols / s_cols
        row("sqlglot lineage(None), trim_selects=True", Timing(t_s.wall * scale, t_s.cpu * scale),
            f"estimated from {len(picked)} models ({failed} failed) x {scale:.1f} by columns")
    t_notrim, failed = Timing.of(lambda: run_sqlglot_all(models, schema, dialect, False), repeat)
    row("sqlglot lineage(None), trim_selects=False", t_notrim, f"{failed} failed")
    if not per_column_rate:
        t_col, (calls, failed) = Timing.of(
            lambda: run_sqlglot_per_column(models, columns, schema, dialect), 1)
        per_column_rate.update(wall=t_col.wall / calls, cpu=t_col.cpu / calls, at=n)
        row("sqlglot lineage(col) per column", t_col, f"{calls} calls, {failed} failed")
    else:
        est = Timing(per_column_rate["wall"] * n_cols, per_column_rate["cpu"] * n_cols)
        row("sqlglot lineage(col) per column", est,
            f"estimated: {n_cols} columns x cost per column at {per_column_rate['at']} models")
    floor = t_floor
    for r in rows:
        r["x_floor_wall"] = r["wall"] / floor.wall
        r["x_floor_cpu"] = r["cpu"] / floor.cpu
        r["dag_depth"] = meta.get("dag_depth")
    del pl, graph, text, cat
    gc.collect()
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"| models | contender | wall s | CPU s | x floor (wall) | x floor (CPU) | note |"
    lines = [head, "|---:|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['models']} | {r['contender']} | {r['wall']:.2f} | {r['cpu']:.2f} | "
                     f"{r['x_floor_wall']:.2f} | {r['x_floor_cpu']:.2f} | {r['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="100,1000,5000")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lineage-bench"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--sample", type=int, default=200,
                    help="above this many models, time trim_selects=True on a sample and scale up")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sizes = sorted(int(s) for s in args.models.split(","))
    per_column: dict = {}
    rows: list[dict] = []
    for n in sizes:
        print(f"== {n} models ==", file=sys.stderr, flush=True)
        rows += bench_size(n, args.workdir, args.seed, args.repeat, per_column, args.sample)
        print(format_table([r for r in rows if r["models"] == n]), file=sys.stderr, flush=True)
    print(f"sqlglot {sqlglot.__version__}, compiled: {_compiled()}; python {sys.version.split()[0]}")
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def _compiled() -> bool:
    import sqlglot.optimizer.qualify as q

    return not q.__file__.endswith(".py")


if __name__ == "__main__":
    main()

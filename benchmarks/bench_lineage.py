"""Full typed lineage of a synthetic dbt project against sqlglot's own ways, side by side.

    .venv/bin/python benchmarks/bench_lineage.py --models 100,1000,5000 [--workdir /tmp/lineage-bench]
        [--seed 7] [--repeat 1] [--json results.json]

For each size, on the same generated and compiled project (see `synthetic_project.py`), in one
process and one after the other:

* ``tool: export, fully cold`` / ``every branch rendered by dbt`` / ``renders on disk`` /
  ``warm``: `lineage-tools export`'s work (`project.load_project`, `graph.build_graph`, the JSON
  rendering) in a fresh Python process, imports included: fully cold = no lineage cache, no
  manifest digest and no incremental renders on disk (each incremental model's other branch is
  derived from dbt's compiled SQL where provable, dbt renders the rest in one in-process
  session: the number of dbt invocations is in the note); every branch rendered by dbt = the
  same with no branch derived (dbt's import and set-up in the figure); renders on disk = the
  same without rendering; warm = a second run (lineage cache and digest);
* ``tool``: the same in this process, the lineage cache off and the incremental renders on
  disk (`project.load_project`, `graph.build_graph`, the JSON rendering, each timed on its own);
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
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic_project  # noqa: E402

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
    def of(fn: Callable[[], object], repeat: int = 1,
           setup: Callable[[], object] | None = None) -> tuple["Timing", object]:
        best: Timing | None = None
        result = None
        for _ in range(repeat):
            if setup is not None:
                setup()
            gc.collect()
            w0, c0 = time.perf_counter(), time.process_time()
            result = fn()
            t = Timing(time.perf_counter() - w0, time.process_time() - c0)
            if best is None or t.cpu < best.cpu:
                best = t
        assert best is not None
        return best, result


CHILD = """
import json, sys, time
w0, c0 = time.perf_counter(), time.process_time()
if sys.argv[2] == "dbt":  # every branch rendered by dbt: none derived from the compiled SQL
    import lineage_tools.dbt.branches
    lineage_tools.dbt.branches.derive_branches = lambda *args: None
from lineage_tools import graph, project
from lineage_tools.dbt import runner
from lineage_tools.render import json_graph
text = json_graph.render(graph.build_graph(project.load_project(sys.argv[1], compile=False)))
print(json.dumps({"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0,
                  "invocations": [i.how for i in runner.invocations()], "bytes": len(text)}))
"""


def export_in_child(root: Path, fresh: bool, renders: bool = False, all_by_dbt: bool = False) -> tuple[Timing, dict]:
    """`export`'s work in a fresh process (imports included). `fresh`: no lineage cache, digest
    or incremental renders on disk first; `renders`: keep the renders (fully cold otherwise);
    `all_by_dbt`: dbt renders every incremental branch (none derived from the compiled SQL)."""
    if fresh:
        shutil.rmtree(root / "target" / "lineage_cache", ignore_errors=True)
        tool_dir = root / "target" / "lineage_tools"
        for p in (tool_dir.iterdir() if tool_dir.is_dir() else ()):
            if not (renders and p.name == "incremental"):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    env = dict(os.environ, DO_NOT_TRACK="1")
    env.pop("LINEAGE_TOOLS_NO_CACHE", None)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root), "dbt" if all_by_dbt else "-"], env=env,
                          capture_output=True, text=True, cwd=root)
    if proc.returncode != 0:
        raise SystemExit(f"export in a child process failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return Timing(out["wall"], out["cpu"]), out


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


def run_floor(models: list[tuple[str, str]], schema, dialect: str, quote: bool = True,
              gc_paused: bool = False) -> int:
    """Parse + qualify every model. With `gc_paused`, the cyclic garbage collector is paused
    per statement and its youngest generation collected after it, as the tool's engine does
    (`lineage.analyze`): the floor with the same memory handling."""
    failed = 0
    for _, sql in models:
        if gc_paused:
            gc.disable()
        try:
            qualify(sqlglot.parse_one(sql, read=dialect), dialect=dialect, schema=schema,
                    validate_qualify_columns=False, allow_partial_qualification=True, identify=False,
                    quote_identifiers=quote)
        except Exception:  # noqa: BLE001 - counted, reported
            failed += 1
        finally:
            if gc_paused:
                gc.enable()
                gc.collect(0)
    return failed


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
               sample: int = 200, quick: bool = False) -> list[dict]:
    root, meta = synthetic_project.ensure_project(n, workdir, seed)
    rows: list[dict] = []

    def row(name: str, t: Timing, note: str = "") -> None:
        rows.append({"models": n, "contender": name, "wall": t.wall, "cpu": t.cpu, "note": note})

    cold = [export_in_child(root, fresh=True) for _ in range(repeat)]
    t_cold, info = min(cold, key=lambda c: c[0].cpu)
    by_dbt = [export_in_child(root, fresh=True, all_by_dbt=True) for _ in range(repeat)]
    t_by_dbt, info_dbt = min(by_dbt, key=lambda c: c[0].cpu)
    on_disk = [export_in_child(root, fresh=True, renders=True) for _ in range(repeat)]
    t_disk, _ = min(on_disk, key=lambda c: c[0].cpu)
    warm = [export_in_child(root, fresh=False) for _ in range(repeat)]
    t_warm, _ = min(warm, key=lambda c: c[0].cpu)
    row("tool: export, fully cold (fresh process)", t_cold,
        f"{meta.get('incremental', 0)} incremental models; dbt invocations: {len(info['invocations'])} "
        f"({', '.join(info['invocations']) or 'none'})")
    row("tool: export, fully cold, every branch rendered by dbt (fresh process)", t_by_dbt,
        f"dbt invocations: {len(info_dbt['invocations'])} ({', '.join(info_dbt['invocations']) or 'none'})")
    row("tool: export, incremental renders on disk (fresh process)", t_disk)
    row("tool: export, warm: lineage cache + digest (fresh process)", t_warm)
    t_load, pl = Timing.of(lambda: project.load_project(root, compile=False, cache=False), repeat)
    t_graph, graph = Timing.of(lambda: graph_mod.build_graph(pl), repeat)
    # the graph memoises roots: forget them before each round, or a repeat would be free
    t_json, text = Timing.of(lambda: json_graph.render(graph), repeat, setup=graph._roots.clear)
    tool = Timing(t_load.wall + t_graph.wall + t_json.wall, t_load.cpu + t_graph.cpu + t_json.cpu)
    statuses = {}
    for m in pl.models:
        statuses[m.status.value] = statuses.get(m.status.value, 0) + 1
    n_edges = sum(len(m.lineage.edges) for m in pl.models)
    row("tool: export in this process (load + graph + json)", tool,
        f"{len(pl.models)} models, {n_edges} edges, {statuses}, json {len(text) / 1e6:.1f} MB")
    row("  tool: load_project (engine)", t_load)
    row("  tool: build_graph", t_graph)
    row("  tool: render json", t_json)

    models = compiled_models(pl)
    cat = full_catalog(pl)
    schema, dialect = cat.schema, pl.dialect
    t_floor, failed = Timing.of(lambda: run_floor(models, schema, dialect), repeat)
    row("parse+qualify (floor)", t_floor, f"{failed} failed")
    t_floor_nq, failed = Timing.of(lambda: run_floor(models, schema, dialect, quote=False), repeat)
    row("parse+qualify, quote_identifiers=False (the tool's options)", t_floor_nq, f"{failed} failed")
    t_floor_gc, failed = Timing.of(
        lambda: run_floor(models, schema, dialect, quote=False, gc_paused=True), repeat)
    row("parse+qualify, tool's options, GC paused per statement (as the tool)", t_floor_gc,
        f"{failed} failed")
    columns = {m.node.name: m.lineage.columns for m in pl.models}
    n_cols = sum(len(columns[name]) for name, _ in models)
    if quick:
        pass
    elif len(models) <= sample:
        t_trim, failed = Timing.of(lambda: run_sqlglot_all(models, schema, dialect, True), repeat)
        row("sqlglot lineage(None), trim_selects=True", t_trim, f"{failed} failed")
    else:  # minutes per thousand models: an evenly spread sample, scaled by column count
        picked = models[:: max(1, len(models) // sample)][:sample]
        s_cols = sum(len(columns[name]) for name, _ in picked)
        t_s, failed = Timing.of(lambda: run_sqlglot_all(picked, schema, dialect, True), 1)
        scale = n_cols / s_cols
        row("sqlglot lineage(None), trim_selects=True", Timing(t_s.wall * scale, t_s.cpu * scale),
            f"estimated from {len(picked)} models ({failed} failed) x {scale:.1f} by columns")
    if not quick:
        t_notrim, failed = Timing.of(lambda: run_sqlglot_all(models, schema, dialect, False), repeat)
        row("sqlglot lineage(None), trim_selects=False", t_notrim, f"{failed} failed")
    if quick:
        pass
    elif not per_column_rate:
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
        r["x_floor_nq_cpu"] = r["cpu"] / t_floor_nq.cpu
        r["x_floor_nq_gc_cpu"] = r["cpu"] / t_floor_gc.cpu
        r["dag_depth"] = meta.get("dag_depth")
    del pl, graph, text, cat
    gc.collect()
    return rows


class Split:
    """CPU seconds spent inside chosen functions (patched in place for one run; nested ones are
    counted in their own bucket and inside their callers; a bucket counts only its outermost
    call, so recursion and several functions sharing a bucket are not counted twice)."""

    TARGETS = (
        ("engine: lineage.analyze (all)", "lineage_tools.lineage", "analyze"),
        ("  engine: sql.parse_statement", "lineage_tools.lineage", "parse_statement"),
        ("  engine: sql.qualify_statement", "lineage_tools.lineage", "qualify_statement"),
        ("  engine: scope.build_scope", "lineage_tools.lineage", "build_scope"),
        ("  engine: scope walk (_Walker)", "lineage_tools.lineage", "_Walker.warm"),
        ("  engine: scope walk (_Walker)", "lineage_tools.lineage", "_Walker.lineage"),
        ("  engine: column lines", "lineage_tools.lineage", "_column_lines"),
        ("project: sql.Catalog.add", "lineage_tools.sql", "Catalog.add"),
        ("project: _map_lines (file lines)", "lineage_tools.project", "_map_lines"),
        ("dbt layer: manifest_nodes (nodes in DAG order)", "lineage_tools.project", "manifest_nodes"),
        ("dbt layer: read_manifest", "lineage_tools.project", "read_manifest"),
        ("dbt layer: manifest_problem", "lineage_tools.project", "manifest_problem"),
        ("dbt layer: incremental branches (renders on disk)", "lineage_tools.project",
         "_with_incremental_branches"),
    )

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._depth: dict[str, int] = {}
        self._undo: list[tuple[object, str, object]] = []

    def __enter__(self) -> "Split":
        import importlib

        for label, module, name in self.TARGETS:
            owner = importlib.import_module(module)
            attr = name
            if "." in name:
                cls, attr = name.split(".")
                owner = getattr(owner, cls)
            orig = getattr(owner, attr)
            self._undo.append((owner, attr, orig))
            setattr(owner, attr, self._timed(label, orig))
        return self

    def _timed(self, label: str, fn):
        totals = self.totals
        depth = self._depth

        def wrapper(*args, **kwargs):
            if depth.get(label):
                return fn(*args, **kwargs)
            depth[label] = 1
            c0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[label] = 0
                totals[label] = totals.get(label, 0.0) + time.process_time() - c0

        return wrapper

    def __exit__(self, *exc: object) -> None:
        for owner, attr, orig in reversed(self._undo):
            setattr(owner, attr, orig)


def split_run(n: int, workdir: Path, seed: int) -> str:
    """Where the CPU time of one cold export goes (engine / project layer / graph / JSON)."""
    root, _ = synthetic_project.ensure_project(n, workdir, seed)
    gc.collect()
    with Split() as split:
        c0 = time.process_time()
        pl = project.load_project(root, compile=False, cache=False)
        c1 = time.process_time()
        graph = graph_mod.build_graph(pl)
        c2 = time.process_time()
        json_graph.render(graph)
        c3 = time.process_time()
    total = c3 - c0
    rows = [("export, total", total), ("load_project", c1 - c0)]
    labels = list(dict.fromkeys(label for label, _, _ in Split.TARGETS))
    rows += [(label, split.totals.get(label, 0.0)) for label in labels]
    engine = split.totals.get(Split.TARGETS[0][0], 0.0)
    rows += [("project layer (load_project - engine)", c1 - c0 - engine),
             ("graph.build_graph", c2 - c1), ("render json", c3 - c2)]
    lines = [f"CPU split of one cold export, {n} models", "| part | CPU s | share |", "|---|---:|---:|"]
    lines += [f"| {label} | {sec:.2f} | {sec / total:.0%} |" for label, sec in rows]
    return "\n".join(lines)


def format_table(rows: list[dict]) -> str:
    """Ratios to three floors: sqlglot's default qualify (wall and CPU), with the tool's qualify
    options (`quote_identifiers=False`, CPU) and with those options and the GC paused per
    statement as the tool's engine does (CPU)."""
    head = ("| models | contender | wall s | CPU s | x floor (wall) | x floor (CPU) "
            "| x floor, tool's options (CPU) | x floor, tool's options + GC paused (CPU) | note |")
    lines = [head, "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['models']} | {r['contender']} | {r['wall']:.2f} | {r['cpu']:.2f} | "
                     f"{r['x_floor_wall']:.2f} | {r['x_floor_cpu']:.2f} | "
                     f"{r['x_floor_nq_cpu']:.2f} | {r['x_floor_nq_gc_cpu']:.2f} | {r['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="100,1000,5000")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lineage-bench"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--sample", type=int, default=200,
                    help="above this many models, time trim_selects=True on a sample and scale up")
    ap.add_argument("--split", type=int, metavar="N",
                    help="only: CPU split of one cold export of N models (engine/project/graph/json)")
    ap.add_argument("--quick", action="store_true",
                    help="only the tool and the two parse+qualify floors (no sqlglot lineage)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.split:
        print(split_run(args.split, args.workdir, args.seed))
        return
    sizes = sorted(int(s) for s in args.models.split(","))
    per_column: dict = {}
    rows: list[dict] = []
    for n in sizes:
        print(f"== {n} models ==", file=sys.stderr, flush=True)
        rows += bench_size(n, args.workdir, args.seed, args.repeat, per_column, args.sample,
                           args.quick)
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

"""What row counting costs `lineage-tools impact` on a large build.

Times `lineage-tools impact SOURCE... --format json` with and without `--no-rows` on a built
project (by default the 10M-user build that `bench_provenance_cost.py` leaves behind), in
alternating order, and reports the row-count part (the difference) next to what was counted.

    .venv/bin/python benchmarks/bench_provenance_cost.py --users 10000000   # the build
    .venv/bin/python benchmarks/bench_impact_rows.py --repeats 3

The first call warms the lineage cache (not timed), so both timed variants read the lineage
from the cache and differ only by the counting (one dbt child process that counts total and
tainted rows of every reached relation).

The target of issue 16 compares the counting with "one scan of the tables it reaches": after
the impact runs, a child process opens the DuckDB file read-only and runs ONE query that reads
every counted relation once (`count(*)` and `count(<column>)` of each provenance column the
answer names, the roots' Parquet files included): the floor any row count pays. The report
gives `counting rows` against `2 x --no-rows + one scan`. Pass `--project .../lists` (and its
`--db`) to measure the list representation's build the same way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bench_impact_rows")

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / ".venv" / "bin" / "lineage-tools"
DEFAULT_PROJECT = Path("/tmp/provenance_bench/work/users_10000000/with")
# A labelling source and a user feed (both reach the marts; the feed reaches every user model).
DEFAULT_SOURCES = "labels_vendor_quickmark,users_partner_feed"


@dataclass(frozen=True)
class Run:
    rows: bool
    wall_s: float
    cpu_s: float
    answer: dict


def run_impact(project: Path, db: Path, sources: list[str], rows: bool) -> Run:
    """One `lineage-tools impact` process; wall time and CPU of it and its children."""
    env = {**os.environ, "DO_NOT_TRACK": "1", "PIPELINE_DUCKDB_PATH": str(db)}
    cmd = [str(CLI), "impact", *sources, "--format", "json", "--project-dir", str(project),
           "--profiles-dir", str(project), *([] if rows else ["--no-rows"])]
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = os.times()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    answer = json.loads(proc.stdout)
    log.info("impact %-10s %7.1f s wall %7.1f s CPU", "rows" if rows else "--no-rows", wall, cpu)
    return Run(rows, wall, cpu, answer)


SCAN = """
import json, os, sys, time
import duckdb
req = json.load(sys.stdin)
con = duckdb.connect(req["db"], read_only=True)
t0 = time.perf_counter()
rows = con.execute(req["sql"]).fetchall()
print(json.dumps({"wall": time.perf_counter() - t0, "rows": len(rows)}))
"""


def scan_once(project: Path, db: Path, answer: dict) -> tuple[float, float]:
    """Wall and CPU of one query reading every counted relation's provenance columns once."""
    results = json.loads((project / "target" / "run_results.json").read_text())
    raw_dir = ((results.get("args") or {}).get("vars") or {}).get("raw_data_dir")
    parts = []
    for m in answer["models"]:
        if m.get("total_rows") is None:
            continue
        counts = "".join(f', count("{c}")' for c in m.get("provenance_columns") or ())
        parts.append(f'select count(*){counts} from main."{m["model"]}"')
    for root in answer["roots"]:
        name = root.split(".")[-1]
        source = f"read_parquet('{raw_dir}/{name}.parquet')" if raw_dir else f'main."{name}"'
        parts.append(f"select count(*), count(source_id) from {source}")
    width = max(p.count("count(") for p in parts)
    sql = "\nunion all\n".join(p.replace(" from ", ", null" * (width - p.count("count(")) + " from ", 1)
                                for p in parts)
    before = os.times()
    proc = subprocess.run([sys.executable, "-c", SCAN], input=json.dumps({"db": str(db), "sql": sql}),
                          capture_output=True, text=True, check=False)
    after = os.times()
    if proc.returncode:
        raise SystemExit(f"the scan failed:\n{proc.stderr}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    wall = json.loads(proc.stdout)["wall"]
    log.info("one scan   %7.1f s wall %7.1f s CPU (process)", wall, cpu)
    return wall, cpu


def report(runs: list[Run], sources: list[str], project: Path, scans: list[tuple[float, float]]) -> str:
    counted = [r for r in runs if r.rows]
    static = [r for r in runs if not r.rows]
    med = lambda xs: statistics.median(xs)  # noqa: E731
    w_rows, w_static = med([r.wall_s for r in counted]), med([r.wall_s for r in static])
    c_rows, c_static = med([r.cpu_s for r in counted]), med([r.cpu_s for r in static])
    answer = counted[-1].answer
    if not answer.get("rows_counted"):
        raise SystemExit(f"rows were not counted: {answer.get('note')}")
    w_scan, c_scan = med([s[0] for s in scans]), med([s[1] for s in scans])
    models = answer["models"]
    total = sum(m.get("total_rows") or 0 for m in models)
    lines = [
        f"`lineage-tools impact {' '.join(sources)} --format json` on {project}",
        f"({len(counted)} + {len(static)} runs, medians, order alternating):",
        "",
        "| variant | wall | CPU (process + children) |",
        "|---|---|---|",
        f"| counting rows | {w_rows:.1f} s | {c_rows:.1f} s |",
        f"| `--no-rows` | {w_static:.1f} s | {c_static:.1f} s |",
        f"| row-count part | {w_rows - w_static:.1f} s | {c_rows - c_static:.1f} s |",
        f"| one scan of the counted relations (DuckDB alone, wall of the query) | {w_scan:.1f} s | {c_scan:.1f} s (process) |",
        f"| target: 2 x `--no-rows` + one scan | {2 * w_static + w_scan:.1f} s | {2 * c_static + c_scan:.1f} s |",
        f"| counting rows / target | {w_rows / (2 * w_static + w_scan):.2f}x | {c_rows / (2 * c_static + c_scan):.2f}x |",
        "",
        f"Counted: the {len(answer['roots'])} root relations that may hold the sources "
        f"({', '.join(answer['roots'])}) and the {len(models)} reached models "
        f"({total:,} model rows in all):",
        "",
        "| model | mode | tainted rows | total rows |",
        "|---|---|---|---|",
    ]
    for m in models:
        t, n = m.get("tainted_rows"), m.get("total_rows")
        lines.append(f"| {m['model']} | {m['mode']} | {t if t is None else f'{t:,}'} "
                     f"| {n if n is None else f'{n:,}'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=DEFAULT_PROJECT,
                        help="a built copy of the project (default: bench_provenance_cost's 10M build)")
    parser.add_argument("--db", type=Path, default=None,
                        help="its DuckDB file (default: PROJECT/../with.duckdb)")
    parser.add_argument("--sources", default=DEFAULT_SOURCES, help="comma-separated source ids")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each variant")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    project = args.project.resolve()
    db = (args.db or project.parent / "with.duckdb").resolve()
    if not (project / "target" / "manifest.json").is_file() or not db.is_file():
        raise SystemExit(f"{project}: not a built project (run bench_provenance_cost.py first)")
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    run_impact(project, db, sources, rows=False)  # warm the lineage cache
    runs = []
    for i in range(args.repeats):
        for rows in ((True, False) if i % 2 == 0 else (False, True)):
            runs.append(run_impact(project, db, sources, rows))
    answer = next(r.answer for r in reversed(runs) if r.rows)
    scans = [scan_once(project, db, answer) for _ in range(args.repeats)]
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print(report(runs, sources, project, scans))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time budgets: how long a pathological statement runs under `--time-budget`, and what the
default budget costs a project whose statements are ordinary.

    .venv/bin/python benchmarks/bench_time_budget.py [--project DIR] [--repeat 3]

1. Pathological statements through the installed `lineage-tools sql` (a fresh process, imports
   included), each under a budget: a 1.4 MB WHERE clause (3.7 s only to parse), sums of 6,000
   and 20,000 terms (sqlglot's qualify() alone took 11 s for 6,000). Wall time of the command,
   and the status it answered.
2. With `--project` (a compiled dbt project, e.g. the synthetic project of 1,000 models made by
   `synthetic_project.py`): `load_project` in this process, lineage cache off, with no budget
   and with the default one, alternated pair by pair; how many models are long enough
   (`lineage.ISOLATE_CHARS`) to be analysed in a child process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "where_1_4mb": lambda: "select a, b\nfrom t\nwhere " + " or ".join(
        f"(a = {i} and b like 'x{i}%')" for i in range(40_000)) + "\n",
    "sum_6000": lambda: "select " + " + ".join(f"c{i % 50}" for i in range(6_000)) + " as s from t\n",
    "sum_20000": lambda: "select " + " + ".join(f"c{i % 50}" for i in range(20_000)) + " as s from t\n",
}


def _tool() -> str:
    return shutil.which("lineage-tools", path=str(Path(sys.executable).parent)) or "lineage-tools"


def statements(budgets: list[float]) -> None:
    print("| statement | size | --time-budget | wall s | status | stopped by |")
    print("|---|---:|---:|---:|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in CASES.items():
            path = Path(tmp) / f"{name}.sql"
            path.write_text(make(), encoding="utf-8")
            for budget in budgets:
                started = time.monotonic()
                proc = subprocess.run([_tool(), "sql", str(path), "--time-budget", f"{budget:g}", "--format", "json"],
                                      capture_output=True, text=True)
                wall = time.monotonic() - started
                doc = json.loads(proc.stdout) if proc.returncode == 0 else {}
                reasons = [r["message"] for st in doc.get("statements", []) for r in st["reasons"]]
                how = ("hard deadline" if any("stopped" in m for m in reasons)
                       else "walk checkpoint" if reasons else "-")
                print(f"| {name} | {path.stat().st_size:,} B | {budget:g} | {wall:.2f} | "
                      f"{doc.get('status', f'exit {proc.returncode}')} | {how} |")


def project_cost(root: Path, repeat: int) -> None:
    import resource

    from lineage_tools import project
    from lineage_tools.deadline import DEFAULT_TIME_BUDGET
    from lineage_tools.lineage import ISOLATE_CHARS

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    timings: dict[str, list[tuple[float, float]]] = {"no budget": [], f"default ({DEFAULT_TIME_BUDGET:g} s)": []}
    pl = None
    for _ in range(repeat):
        for label, budget in (("no budget", None), (f"default ({DEFAULT_TIME_BUDGET:g} s)", DEFAULT_TIME_BUDGET)):
            w, c = time.monotonic(), cpu()
            pl = project.load_project(root, compile=False, cache=False, time_budget=budget)
            timings[label].append((time.monotonic() - w, cpu() - c))
    assert pl is not None
    long = sum(1 for m in pl.models if len(m.node.compiled_sql or "") >= ISOLATE_CHARS)
    print(f"\n{len(pl.models)} models, {long} of {ISOLATE_CHARS:,} characters or more (analysed in a child)")
    print("| load_project, cache off | best wall s | best CPU s (this process) |")
    print("|---|---:|---:|")
    for label, ts in timings.items():
        print(f"| {label} | {min(t[0] for t in ts):.2f} | {min(t[1] for t in ts):.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, help="a compiled dbt project (target/manifest.json)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--budgets", default="2,5", help="comma-separated budgets for the statements")
    args = ap.parse_args()
    statements([float(b) for b in args.budgets.split(",")])
    if args.project:
        project_cost(args.project, args.repeat)


if __name__ == "__main__":
    main()

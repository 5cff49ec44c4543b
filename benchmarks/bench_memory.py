"""Peak memory (RSS) of the full lineage of a synthetic project: what `lineage-tools export`
holds at once (the manifest, every model's lineage, the graph, the JSON text).

    .venv/bin/python benchmarks/bench_memory.py [--models 5000] [--workdir /tmp/lineage-bench]
        [--seed 7]

Each measurement runs in a fresh child process; the child reports its high-water mark (VmHWM)
after each phase: imports, `project.load_project` (cold: cache off; warm: from the cache),
`graph.build_graph`, the JSON rendering. Target: under 1 GiB at 5,000 models.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic_project  # noqa: E402

CHILD = textwrap.dedent("""
    import json, sys, time

    def hwm():
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # MiB

    out = {}
    t0 = time.perf_counter()
    from lineage_tools import project, graph
    from lineage_tools.render import json_graph
    out["imports"] = hwm()
    pl = project.load_project(sys.argv[1], compile=False, cache=sys.argv[2] == "warm")
    out["load_project"] = hwm()
    g = graph.build_graph(pl)
    out["build_graph"] = hwm()
    text = json_graph.render(g)
    out["render_json"] = hwm()
    out["seconds"] = time.perf_counter() - t0
    out["models"] = len(pl.models)
    out["json_mb"] = len(text) / 1e6
    print(json.dumps(out))
""")


def measure(root: Path, mode: str) -> dict:
    env = dict(os.environ, DO_NOT_TRACK="1")
    if mode == "cold":
        env["LINEAGE_TOOLS_NO_CACHE"] = "1"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root), mode], capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="5000")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lineage-bench"))
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    print("| models | run | peak RSS after imports | + load_project | + build_graph | + render json "
          "| vs 1 GiB | wall s | JSON MB |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in sorted(int(s) for s in args.models.split(",")):
        root, _ = synthetic_project.ensure_project(n, args.workdir, args.seed)
        measure(root, "warm")  # fills the cache (its own time is not the point here)
        for mode in ("cold", "warm"):
            r = measure(root, mode)
            print(f"| {r['models']} | {mode} | {r['imports']:.0f} MiB | {r['load_project']:.0f} MiB | "
                  f"{r['build_graph']:.0f} MiB | {r['render_json']:.0f} MiB | "
                  f"{r['render_json'] / 1024:.2f} | {r['seconds']:.1f} | {r['json_mb']:.1f} |", flush=True)


if __name__ == "__main__":
    main()

"""The cost of provenance in `dbt build`: the pipeline against the same models with it stripped.

For each size (`--users 1000000,10000000`) the raw data is generated once as Parquet under
`--data-root` (reused when present), then copies of the dbt project are built one after the
other in the same run, rotating which goes first, with the same threads and the same DuckDB:

* **with**: the project as committed: a row's sources are a source mask (a BIGINT, one bit per
  registered source) in the intermediate models, decoded to sorted lists in the marts;
* **lists** (the old representation): the project as it was at `--lists-ref` (default
  `e060d95`, before source masks): sorted lists of source ids in every model, collected with
  `list(distinct ...)`, unioned with `flatten`, taken once per user with `any_value`;
* **without**: the committed models, the same rows, joins and filters, but no provenance
  computed: the provenance macros (`collect_sources`, `collect_source_masks`, `merge_sources`,
  `encode_source`, `empty_source_mask`, `source_list`, the list helpers) are
  overridden through dbt's dispatch search order by a small local package that returns a
  constant NULL, so nothing is encoded, collected, decoded or exploded; `source_inventory` (the
  provenance report) is not built, and the data tests on provenance columns are not run. The
  scalar `source_id` of the raw rows stays (the staging filter `keep_active_sources` needs it
  to keep the same rows).

Unit tests (fixed cost, independent of data size) are left out of every build. Each build's
wall and CPU time and its peak resident memory (the dbt process, where DuckDB runs) are
reported.

    .venv/bin/python benchmarks/bench_provenance_cost.py --users 1000000,10000000 --replicate-base 1000000

Sizes above `--replicate-base` (default: none) are built from the base size's generated data
copied k times with every id, e-mail and IP address made unique per copy (see `replicate`):
the pure-Python generator needs about 100 CPU-seconds per million people.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bench_provenance_cost")

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
RAW_TABLES = (
    "raw_users_web", "raw_users_mobile", "raw_users_partner", "raw_spam_accounts",
    "raw_spam_ips", "raw_spam_scores", "raw_id_merge_pairs", "raw_job_search_labels",
    "raw_user_events",
)
# Columns whose values identify a person's record, link, event or IP: made unique per copy.
COPY_KEYS = {
    "raw_users_web": ("account_id", "email", "signup_ip"),
    "raw_users_mobile": ("account_id", "email", "signup_ip"),
    "raw_users_partner": ("partner_user_ref", "email_address"),
    "raw_spam_accounts": ("account_id",),
    "raw_spam_ips": ("ip_address",),
    "raw_spam_scores": ("score_id", "account_id"),
    "raw_id_merge_pairs": ("pair_id", "account_id_a", "account_id_b"),
    "raw_job_search_labels": ("label_id", "account_id"),
    "raw_user_events": ("event_id", "account_id"),
}
PROJECT_ITEMS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests")
PROVENANCE_MART = "source_inventory"
VARIANTS = ("with", "lists", "without")
LISTS_REF = "e060d95"  # the last commit with provenance lists in every model


# --------------------------------------------------------------------------------- raw data

def data_dir(root: Path, users: int) -> Path:
    return root / f"users_{users}"


def has_data(folder: Path) -> bool:
    return all((folder / f"{t}.parquet").is_file() for t in RAW_TABLES)


def generate(users: int, folder: Path) -> None:
    """Run scripts/generate_data.py into a temp folder, then rename it into place."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [str(VENV_BIN / "python"), str(ROOT / "scripts" / "generate_data.py"),
           "--users", str(users), "--format", "parquet", "--out", str(tmp)]
    log.info("generating %d users: %s", users, " ".join(cmd))
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    log.info("generated %d users in %.0f s", users, time.perf_counter() - t0)
    tmp.rename(folder)


def replicate(base: Path, folder: Path, copies: int) -> None:
    """Write `copies` copies of the raw data in `base`; copy k > 0 suffixes its ids with `~k`.

    Every key that ties records together (account ids, e-mails, sign-up and blacklisted IPs,
    row ids) gets the same suffix within a copy, so copies never join with each other: the
    result is `copies` independent populations with the generator's distributions. Labeller
    ids and source ids are shared, as they would be in one larger population.
    """
    import duckdb

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    t0 = time.perf_counter()
    for table in RAW_TABLES:
        src = (base / f"{table}.parquet").as_posix()
        columns = [r[0] for r in con.execute(f"describe select * from '{src}'").fetchall()]
        keys = COPY_KEYS[table]
        select = ", ".join(
            f"case when copy_k = 0 then {c} else {c} || '~' || copy_k end as {c}" if c in keys
            else c
            for c in columns
        )
        con.execute(
            f"copy (select {select} from range({copies}) as copies(copy_k), '{src}') "
            f"to '{(tmp / f'{table}.parquet').as_posix()}' (format parquet)"
        )
        log.info("replicated %s x%d (%.0f s)", table, copies, time.perf_counter() - t0)
    con.close()
    (tmp / "REPLICATED").write_text(f"{copies} copies of {base}\n")
    tmp.rename(folder)


def ensure_data(root: Path, users: int, replicate_base: int | None) -> Path:
    folder = data_dir(root, users)
    if has_data(folder):
        log.info("reusing %s", folder)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    if replicate_base and users > replicate_base and users % replicate_base == 0:
        base = ensure_data(root, replicate_base, None)
        replicate(base, folder, users // replicate_base)
    else:
        generate(users, folder)
    return folder


# ------------------------------------------------------------------------- project copies

NO_PROVENANCE_PROJECT = """\
name: no_provenance
version: "1.0.0"
config-version: 2
macro-paths: ["macros"]
"""

NO_PROVENANCE_MACROS = """\
{# The provenance macros of provenance_pipeline, computing nothing (bench_provenance_cost). #}
{% macro duckdb__collect_sources(column) -%} cast(null as bigint) {%- endmacro %}
{% macro duckdb__collect_source_masks(mask_column) -%} cast(null as bigint) {%- endmacro %}
{% macro duckdb__encode_source(column) -%} cast(null as bigint) {%- endmacro %}
{% macro duckdb__merge_sources(scalars, masks) -%} cast(null as bigint) {%- endmacro %}
{% macro duckdb__empty_source_mask() -%} cast(null as bigint) {%- endmacro %}
{% macro duckdb__source_list(mask) -%} cast(null as varchar[]) {%- endmacro %}
{% macro duckdb__empty_source_list() -%} cast(null as varchar[]) {%- endmacro %}
{% macro duckdb__merge_source_lists(scalars, lists) -%} cast(null as varchar[]) {%- endmacro %}
{% macro duckdb__explode_source_list(list_expression) -%} unnest(cast(null as varchar[])) {%- endmacro %}
"""

DISPATCH = """
# bench_provenance_cost: the provenance list macros come from the local package no_provenance.
dispatch:
  - macro_namespace: provenance_pipeline
    search_order: ['no_provenance', 'provenance_pipeline']
"""


def copy_project(dest: Path, variant: str, memory_limit: str, lists_ref: str = "") -> Path:
    """A fresh copy of the dbt project in `dest` for a variant (`with`, `lists`, `without`).

    `lists` is the project as committed at `lists_ref` (`git archive`), the others the
    working tree's."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    if variant == "lists":
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", lists_ref, *PROJECT_ITEMS],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        for stale in dest.joinpath("tests").glob("*.py"):
            stale.unlink()
        shutil.rmtree(dest / "tests" / "fixtures", ignore_errors=True)
    else:
        for item in PROJECT_ITEMS:
            src = ROOT / item
            if src.is_dir():
                shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "*.py", "fixtures"))
            else:
                shutil.copy2(src, dest / item)
    if memory_limit:
        profiles = (dest / "profiles.yml").read_text()
        marker = "      threads: 2\n"
        if marker not in profiles:
            raise SystemExit("profiles.yml: cannot find the duckdb output's `threads: 2` line")
        profiles = profiles.replace(
            marker, marker + f"      settings:\n        memory_limit: '{memory_limit}'\n", 1)
        (dest / "profiles.yml").write_text(profiles)
    if variant == "without":
        pkg = dest / "no_provenance"
        (pkg / "macros").mkdir(parents=True)
        (pkg / "dbt_project.yml").write_text(NO_PROVENANCE_PROJECT)
        (pkg / "macros" / "no_provenance.sql").write_text(NO_PROVENANCE_MACROS)
        (dest / "packages.yml").write_text("packages:\n  - local: no_provenance\n")
        with open(dest / "dbt_project.yml", "a", encoding="utf-8") as handle:
            handle.write(DISPATCH)
    return dest


def dbt(project: Path, *args: str, db: Path, capture: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_PROFILES_DIR": str(project),
           "PIPELINE_DUCKDB_PATH": str(db)}
    cmd = [str(VENV_BIN / "dbt"), *args, "--project-dir", str(project)]
    return subprocess.run(cmd, cwd=project, env=env, check=False, text=True,
                          capture_output=capture)


def provenance_tests(project: Path, raw: Path, db: Path) -> list[str]:
    """Names of the data tests that check provenance: on `*source_ids` list columns and
    `*source_mask` columns, the generic test `no_excluded_sources`, on the registry's
    `source_bit`, or on the provenance mart."""
    res = dbt(project, "ls", "--resource-type", "test", "--output", "json", "--output-keys",
              "name", "column_name", "test_metadata", "depends_on", "--vars",
              json.dumps({"raw_data_dir": str(raw)}), "--quiet", db=db, capture=True)
    if res.returncode:
        raise SystemExit(f"dbt ls failed:\n{res.stdout}\n{res.stderr}")
    names = []
    for line in res.stdout.splitlines():
        if not line.startswith("{"):
            continue
        node = json.loads(line)
        column = node.get("column_name") or ""
        test = (node.get("test_metadata") or {}).get("name", "")
        parents = (node.get("depends_on") or {}).get("nodes", [])
        if (column.endswith(("source_ids", "source_mask", "source_bit")) or test == "no_excluded_sources"
                or node["name"] == "assert_source_bits_are_dense"
                or any(p.endswith("." + PROVENANCE_MART) for p in parents)):
            names.append(node["name"])
    return names


@dataclass(frozen=True)
class Build:
    size: int
    variant: str
    order: int
    wall_s: float
    cpu_s: float
    status: str
    nodes: dict[str, float]
    peak_rss_mib: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)  # load average before the build


def run_build(size: int, variant: str, order: int, project: Path, raw: Path, db: Path,
              exclude: list[str]) -> Build:
    """One `dbt build` of a fresh DuckDB file; wall, CPU and peak RSS of the dbt process."""
    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(db.with_name(db.name + ".tmp"), ignore_errors=True)
    args = ["build", "--vars", json.dumps({"raw_data_dir": str(raw)}),
            "--exclude", "resource_type:unit_test", *exclude]
    env = {**os.environ, "DO_NOT_TRACK": "1", "DBT_PROFILES_DIR": str(project),
           "PIPELINE_DUCKDB_PATH": str(db)}
    load = os.getloadavg()
    log_path = project / "build.log"
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([str(VENV_BIN / "dbt"), *args, "--project-dir", str(project)],
                                cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU and peak RSS
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    cpu = usage.ru_utime + usage.ru_stime
    rss = usage.ru_maxrss / 1024  # KiB on Linux
    results = json.loads((project / "target" / "run_results.json").read_text())
    nodes = {r["unique_id"]: float(r["execution_time"]) for r in results["results"]}
    failed = [r["unique_id"] for r in results["results"] if r["status"] not in ("success", "pass")]
    status_text = "ok" if proc.returncode == 0 and not failed else f"FAILED ({', '.join(failed[:5])})"
    log.info("%s %-7s %8.1f s wall %8.1f s CPU %7.0f MiB peak RSS  load %.1f  %s", f"{size:>10,}", variant,
             wall, cpu, rss, load[0], status_text)
    return Build(size, variant, order, wall, cpu, status_text, nodes, rss, load)


def model_seconds(build: Build) -> dict[str, float]:
    return {uid.split(".")[-1]: t for uid, t in build.nodes.items() if uid.startswith("model.")}


def tests_seconds(build: Build) -> float:
    return sum(t for uid, t in build.nodes.items() if uid.startswith("test."))


# ------------------------------------------------------------------------------- report

def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def report(builds: list[Build]) -> str:
    """Markdown: per size and variant, wall / CPU / peak RSS and the ratios to `without`; per model."""
    lines = ["| users | variant | builds | load avg (1 min) | wall | CPU | peak RSS | wall / without | CPU / without "
             "| model time / without (no source_inventory) |", "|---|---|---|---|---|---|---|---|---|---|"]
    details = []
    for size in sorted({b.size for b in builds}):
        variants = [v for v in VARIANTS if any(b.size == size and b.variant == v for b in builds)]
        runs = {v: [b for b in builds if b.size == size and b.variant == v] for v in variants}
        models = {v: [model_seconds(b) for b in runs[v]] for v in variants}
        names = sorted(set().union(*(m for v in variants for m in models[v])))
        avg = {v: {n: _mean([m.get(n, 0.0) for m in models[v]]) for n in names} for v in variants}
        model_sum = {v: sum(t for n, t in avg[v].items() if n != PROVENANCE_MART) for v in variants}
        base = "without" if "without" in runs else None
        for v in variants:
            wall, cpu = _mean([b.wall_s for b in runs[v]]), _mean([b.cpu_s for b in runs[v]])
            rss = max(b.peak_rss_mib for b in runs[v])
            load = ", ".join(f"{b.load[0]:.1f}" for b in runs[v])
            if base:
                bw, bc = _mean([b.wall_s for b in runs[base]]), _mean([b.cpu_s for b in runs[base]])
                ratios = f"{wall / bw:.2f}x | {cpu / bc:.2f}x | {model_sum[v] / max(model_sum[base], 1e-9):.2f}x"
            else:
                ratios = " | | "
            lines.append(f"| {size:,} | {v} | {len(runs[v])} | {load} | {wall:.0f} s | {cpu:.0f} s | "
                         f"{rss:.0f} MiB | {ratios} |")
        details.append(f"\nPer model, {size:,} users (seconds, dbt's execution_time, mean per variant):\n")
        details.append("| model | " + " | ".join(variants) + " |")
        details.append("|---|" + "---|" * len(variants))
        first, last = variants[0], variants[-1]
        for n in sorted(names, key=lambda n: -(avg[first][n] - avg[last][n])):
            details.append(f"| {n} | " + " | ".join(f"{avg[v][n]:.1f}" for v in variants) + " |")
        details.append("| (all data tests) | " + " | ".join(
            f"{_mean([tests_seconds(b) for b in runs[v]]):.1f}" for v in variants) + " |")
    status = [f"{b.size:,} {b.variant} (#{b.order}): {b.status}" for b in builds if b.status != "ok"]
    return "\n".join(lines + details + (["", "Failed builds:", *status] if status else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="1000000,10000000",
                        help="comma-separated sizes (default 1000000,10000000)")
    parser.add_argument("--data-root", type=Path, default=Path("/tmp/provenance_bench"),
                        help="where the Parquet data of each size lives (reused when present)")
    parser.add_argument("--work", type=Path, default=None,
                        help="project copies and DuckDB files (default DATA_ROOT/work)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="pairs of builds per size; the first variant alternates")
    parser.add_argument("--replicate-base", type=int, default=0,
                        help="build sizes above this (multiples of it) by copying its data")
    parser.add_argument("--memory-limit", default="10GB",
                        help="DuckDB memory_limit for both variants ('' for DuckDB's default)")
    parser.add_argument("--variants", default="with,lists,without",
                        help="with (source masks), lists (the list representation at --lists-ref), without; comma-separated")
    parser.add_argument("--lists-ref", default=LISTS_REF,
                        help=f"git commit of the `lists` variant's project (default {LISTS_REF})")
    parser.add_argument("--json", type=Path, default=None, help="also write the builds here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    sizes = [int(s.replace("_", "")) for s in args.users.split(",") if s.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if "with" not in variants or not set(variants) <= set(VARIANTS):
        parser.error("--variants: `with` and any of `lists`, `without`")
    work = args.work or args.data_root / "work"
    builds: list[Build] = []
    order = 0
    for size in sizes:
        raw = ensure_data(args.data_root, size, args.replicate_base or None)
        projects = {v: copy_project(work / f"users_{size}" / v, v, args.memory_limit, args.lists_ref)
                    for v in variants}
        dbs = {v: work / f"users_{size}" / f"{v}.duckdb" for v in projects}
        exclude = {v: [] for v in variants}
        for v in variants:
            if v != "without":
                continue
            res = dbt(projects[v], "deps", "--quiet", db=dbs[v], capture=True)
            if res.returncode:
                raise SystemExit(f"dbt deps failed:\n{res.stdout}\n{res.stderr}")
        if "without" in variants:
            excluded = provenance_tests(projects["without"], raw, dbs["without"])
            log.info("without: %d provenance tests and %s left out", len(excluded), PROVENANCE_MART)
            exclude["without"] = [PROVENANCE_MART, *excluded]
        for r in range(args.rounds):
            shift = (r + sizes.index(size)) % len(variants)
            for v in variants[shift:] + variants[:shift]:
                order += 1
                builds.append(run_build(size, v, order, projects[v], raw, dbs[v], exclude[v]))
                if args.json:
                    args.json.write_text(json.dumps([b.__dict__ for b in builds], indent=1))
        print(report([b for b in builds if b.size == size]), flush=True)
    print("\n" + report(builds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

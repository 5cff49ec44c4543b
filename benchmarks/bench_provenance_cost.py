"""The cost of provenance in `dbt build`: the pipeline against the same models with it stripped.

For each size (`--users 1000000,10000000`) the raw data is generated once as Parquet under
`--data-root` (reused when present), then two copies of the dbt project are built side by side
in the same run, alternating which goes first, with the same threads and the same DuckDB:

* **with**: the project as committed (provenance lists computed in every aggregation, the
  `source_inventory` mart, the tests on provenance columns);
* **without**: the same models, the same rows, joins and filters, but no provenance computed:
  the list macros (`collect_sources`, `collect_source_lists`, `merge_sources`,
  `explode_sources`, `empty_source_list`) are overridden through dbt's dispatch search order by a
  small local package that returns a constant NULL list, so nothing is collected, merged,
  sorted or de-duplicated; `source_inventory` (the provenance report) is not built, and the
  data tests on provenance list columns are not run. The scalar `source_id` of the raw rows
  stays (the staging filter `keep_active_sources` needs it to keep the same rows).

Unit tests (fixed cost, independent of data size) are left out of both builds.

    .venv/bin/python benchmarks/bench_provenance_cost.py --users 1000000,10000000

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
{# The provenance list macros of provenance_pipeline, computing nothing (bench_provenance_cost). #}
{% macro duckdb__collect_sources(column) -%} cast(null as varchar[]) {%- endmacro %}
{% macro duckdb__collect_source_lists(list_column) -%} cast(null as varchar[]) {%- endmacro %}
{% macro duckdb__shared_source_list(list_column) -%} cast(null as varchar[]) {%- endmacro %}
{% macro duckdb__merge_sources(scalars, lists) -%} cast(null as varchar[]) {%- endmacro %}
{% macro duckdb__explode_sources(list_expression) -%} unnest(cast(null as varchar[])) {%- endmacro %}
{% macro duckdb__empty_source_list() -%} cast(null as varchar[]) {%- endmacro %}
"""

MASK_MACROS = """\
{#
  Provenance aggregates as a bitmask inside the aggregation, a readable sorted list outside
  (bench_provenance_cost, variant `mask`). Each registered source id gets a bit (its rank in
  the sorted registry, read when the model runs); `bit_or` collects a group's bits; 14 CASEs
  per group turn the mask back into the sorted list of ids. A source id not in the registry
  fails the cast to the ENUM loudly (it is never dropped). Without the registry (parse time)
  or beyond 64 sources: the list aggregates of provenance_pipeline.
#}
{% macro registry_ids() -%}
  {%- set registry = ref('provenance_pipeline', 'data_sources') -%}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set ids = run_query('select distinct source_id from ' ~ registry).columns[0].values() | list | sort -%}
  {{ return(ids if ids | length <= 64 else []) }}
{%- endmacro %}

{% macro source_enum(ids) -%}
  enum({% for id in ids %}'{{ id }}'{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro decode_mask(mask, ids) -%}
  flatten([{% for id in ids %}case when ({{ mask }} >> {{ loop.index0 }}) & 1 = 1 then ['{{ id }}'] else cast([] as varchar[]) end{{ ', ' if not loop.last }}{% endfor %}])
{%- endmacro %}

{% macro duckdb__collect_sources(column) -%}
  {%- set ids = no_provenance.registry_ids() -%}
  {%- if ids -%}
  {{ no_provenance.decode_mask('coalesce(bit_or(cast(1 as ubigint) << enum_code(cast(' ~ column ~ ' as ' ~ no_provenance.source_enum(ids) ~ '))), 0)', ids) }}
  {%- else -%}
  {{ provenance_pipeline.duckdb__collect_sources(column) }}
  {%- endif -%}
{%- endmacro %}

{% macro duckdb__collect_source_lists(list_column) -%}
  {%- set ids = no_provenance.registry_ids() -%}
  {%- if ids -%}
  {{ no_provenance.decode_mask("coalesce(bit_or(list_aggregate(list_transform(" ~ list_column ~ ", lambda x: cast(1 as ubigint) << enum_code(cast(x as " ~ no_provenance.source_enum(ids) ~ "))), 'bit_or')), 0)", ids) }}
  {%- else -%}
  {{ provenance_pipeline.duckdb__collect_source_lists(list_column) }}
  {%- endif -%}
{%- endmacro %}
"""

DISPATCH = """
# bench_provenance_cost: the provenance list macros come from the local package no_provenance.
dispatch:
  - macro_namespace: provenance_pipeline
    search_order: ['no_provenance', 'provenance_pipeline']
"""


def copy_project(dest: Path, variant: str, memory_limit: str) -> Path:
    """A fresh copy of the dbt project in `dest` for a variant (`with`, `without`, `mask`)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for item in PROJECT_ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
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
    if variant != "with":
        pkg = dest / "no_provenance"
        (pkg / "macros").mkdir(parents=True)
        (pkg / "dbt_project.yml").write_text(NO_PROVENANCE_PROJECT)
        macros = NO_PROVENANCE_MACROS if variant == "without" else MASK_MACROS
        (pkg / "macros" / "no_provenance.sql").write_text(macros)
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
    """Names of the data tests that check provenance: on `*source_ids` list columns, the
    generic test `no_excluded_sources`, or on the provenance mart."""
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
        if (column.endswith("source_ids") or test == "no_excluded_sources"
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


def run_build(size: int, variant: str, order: int, project: Path, raw: Path, db: Path,
              exclude: list[str]) -> Build:
    """One `dbt build` of a fresh DuckDB file; wall and CPU time of the dbt process."""
    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(db.with_name(db.name + ".tmp"), ignore_errors=True)
    args = ["build", "--vars", json.dumps({"raw_data_dir": str(raw)}),
            "--exclude", "resource_type:unit_test", *exclude]
    before = os.times()
    t0 = time.perf_counter()
    res = dbt(project, *args, db=db, capture=True)
    wall = time.perf_counter() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    (project / "build.log").write_text(res.stdout + res.stderr)
    results = json.loads((project / "target" / "run_results.json").read_text())
    nodes = {r["unique_id"]: float(r["execution_time"]) for r in results["results"]}
    failed = [r["unique_id"] for r in results["results"] if r["status"] not in ("success", "pass")]
    status = "ok" if res.returncode == 0 and not failed else f"FAILED ({', '.join(failed[:5])})"
    log.info("%s %-7s %8.1f s wall %8.1f s CPU  %s", f"{size:>10,}", variant, wall, cpu, status)
    return Build(size, variant, order, wall, cpu, status, nodes)


def model_seconds(build: Build) -> dict[str, float]:
    return {uid.split(".")[-1]: t for uid, t in build.nodes.items() if uid.startswith("model.")}


def tests_seconds(build: Build) -> float:
    return sum(t for uid, t in build.nodes.items() if uid.startswith("test."))


# ------------------------------------------------------------------------------- report

def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def report(builds: list[Build]) -> str:
    """Markdown: per size and variant, wall / CPU and the ratios to `without`; per model."""
    lines = ["| users | variant | builds | wall | CPU | wall / without | CPU / without "
             "| model time / without (no source_inventory) |", "|---|---|---|---|---|---|---|---|"]
    details = []
    for size in sorted({b.size for b in builds}):
        variants = [v for v in ("with", "mask", "without") if any(b.size == size and b.variant == v for b in builds)]
        runs = {v: [b for b in builds if b.size == size and b.variant == v] for v in variants}
        models = {v: [model_seconds(b) for b in runs[v]] for v in variants}
        names = sorted(set().union(*(m for v in variants for m in models[v])))
        avg = {v: {n: _mean([m.get(n, 0.0) for m in models[v]]) for n in names} for v in variants}
        model_sum = {v: sum(t for n, t in avg[v].items() if n != PROVENANCE_MART) for v in variants}
        base = "without" if "without" in runs else None
        for v in variants:
            wall, cpu = _mean([b.wall_s for b in runs[v]]), _mean([b.cpu_s for b in runs[v]])
            if base:
                bw, bc = _mean([b.wall_s for b in runs[base]]), _mean([b.cpu_s for b in runs[base]])
                ratios = f"{wall / bw:.2f}x | {cpu / bc:.2f}x | {model_sum[v] / max(model_sum[base], 1e-9):.2f}x"
            else:
                ratios = " | | "
            lines.append(f"| {size:,} | {v} | {len(runs[v])} | {wall:.0f} s | {cpu:.0f} s | {ratios} |")
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
    parser.add_argument("--variants", default="with,without",
                        help="with, without, mask (bitmask aggregates, see MASK_MACROS), comma-separated")
    parser.add_argument("--json", type=Path, default=None, help="also write the builds here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    sizes = [int(s.replace("_", "")) for s in args.users.split(",") if s.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if "with" not in variants or not set(variants) <= {"with", "without", "mask"}:
        parser.error("--variants: `with` and any of `without`, `mask`")
    work = args.work or args.data_root / "work"
    builds: list[Build] = []
    order = 0
    for size in sizes:
        raw = ensure_data(args.data_root, size, args.replicate_base or None)
        projects = {v: copy_project(work / f"users_{size}" / v, v, args.memory_limit)
                    for v in variants}
        dbs = {v: work / f"users_{size}" / f"{v}.duckdb" for v in projects}
        exclude = {v: [] for v in variants}
        for v in variants:
            if v == "with":
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

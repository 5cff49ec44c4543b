"""The provenance pipeline (dbt on DuckDB), end to end with real `dbt build` runs.

What a user relies on:
- the committed demo seeds are what `scripts/generate_data.py --users 1000` writes;
- every model exposes provenance columns and no row carries a quarantined source;
- building with `excluded_sources` removes every trace of those sources and leaves the rows
  that never touched them exactly as they were;
- a bad `excluded_sources` value or a raw row without a registered source stops the build with
  a message naming the value or the relation;
- reading the raw data from Parquet (the scale path) builds the same tables as the seeds.
"""

from __future__ import annotations

import csv
import filecmp
import importlib.util
import math
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pytest

from conftest import PROJECT_ROOT, copy_project, run_dbt

SEEDS = PROJECT_ROOT / "seeds"
KINDS = {"in_house", "crowdsourced", "outsourced", "purchased", "model_output"}
EXCLUDED = ("labels_crowd_acme", "users_mobile_app")  # a labelling source and a user feed
QUARANTINED = "spam_model_v1"  # quarantined in the committed registry


def load_generator():
    """Import scripts/generate_data.py as a module (it is a script, not a package)."""
    path = PROJECT_ROOT / "scripts" / "generate_data.py"
    spec = importlib.util.spec_from_file_location("generate_data", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def registry_rows() -> list[dict[str, str]]:
    with open(SEEDS / "data_sources.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- the data generator -------------------------------------------------------------------


def test_generator_rewrites_the_committed_seeds_byte_for_byte(tmp_path: Path) -> None:
    generator = load_generator()
    generator.generate(1000, tmp_path)
    written = sorted(p.name for p in tmp_path.glob("*.csv"))
    assert written == sorted(f"{name}.csv" for name in generator.SCHEMAS)
    for name in written:
        assert filecmp.cmp(tmp_path / name, SEEDS / name, shallow=False), (
            f"seeds/{name} differs from `generate_data.py --users 1000 --out seeds`"
        )


def test_generator_is_deterministic_and_scales(tmp_path: Path) -> None:
    generator = load_generator()
    rows_a = generator.generate(50, tmp_path / "a")
    generator.generate(50, tmp_path / "b")
    rows_big = generator.generate(3000, tmp_path / "c")
    for name in generator.SCHEMAS:
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (
            tmp_path / "b" / f"{name}.csv"
        ).read_bytes()
    assert rows_big["raw_users_web"] > 20 * rows_a["raw_users_web"]


def test_registry_covers_every_generated_source_and_all_kinds() -> None:
    generator = load_generator()
    registry = registry_rows()
    ids = [row["source_id"] for row in registry]
    assert len(ids) == len(set(ids)) >= 8
    assert set(generator.SOURCE_IDS) <= set(ids)
    assert {row["kind"] for row in registry} == KINDS
    for row in registry:
        quarantined = row["status"] == "quarantined"
        assert row["status"] in {"active", "quarantined"}
        assert bool(row["status_reason"]) == quarantined, row["source_id"]
        assert bool(row["status_changed_on"]) == quarantined, row["source_id"]
    # Every raw seed row names a registered source.
    for name in generator.SCHEMAS:
        with open(SEEDS / f"{name}.csv", newline="", encoding="utf-8") as handle:
            used = {row["source_id"] for row in csv.DictReader(handle)}
        assert used and used <= set(ids), name


# --- helpers over a built DuckDB file -----------------------------------------------------


def is_provenance_column(name: str) -> bool:
    """The contract's naming: source_id, <role>_source_id, source_ids, <role>_source_ids and the
    source masks source_mask, <role>_source_mask."""
    return name in ("source_id", "source_ids", "source_mask") or name.endswith(
        ("_source_id", "_source_ids", "_source_mask"))


def source_bits() -> dict[int, str]:
    """The registry's bits: source_bit -> source_id."""
    return {int(row["source_bit"]): row["source_id"] for row in registry_rows()}


def decode_mask(mask: int) -> tuple[str, ...]:
    """The source ids of a source mask, sorted (what `source_list` gives in SQL)."""
    bits = source_bits()
    return tuple(sorted(bits[b] for b in range(63) if mask >> b & 1))


def connect(project: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(project / "target" / "pipeline.duckdb"), read_only=True)


def model_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = 'main' "
        "and table_name <> 'data_sources' and table_name not like 'raw\\_%' escape '\\' "
        "order by table_name"
    ).fetchall()
    return [name for (name,) in rows]


def columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = 'main' "
        "and table_name = ? order by ordinal_position",
        [table],
    ).fetchall()
    return [name for (name,) in rows]


def freeze(value: object) -> object:
    """Make a DuckDB value hashable and comparable across builds."""
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    if isinstance(value, float) and not math.isnan(value):
        return round(value, 9)
    return value


def read_rows(con: duckdb.DuckDBPyConnection, table: str) -> tuple[list[str], list[tuple]]:
    names = columns(con, table)
    data = con.execute(f'select * from main."{table}"').fetchall()
    return names, [tuple(freeze(v) for v in row) for row in data]


def row_sources(names: list[str], row: tuple) -> set[str]:
    """Every source id in the provenance columns of one row."""
    found: set[str] = set()
    for name, value in zip(names, row):
        if not is_provenance_column(name) or value is None:
            continue
        if name.endswith("source_mask"):
            found.update(decode_mask(value))
        else:
            found.update(value if isinstance(value, tuple) else (value,))
    return found


def carries(names: list[str], row: tuple, sources: Iterable[str]) -> bool:
    return bool(row_sources(names, row) & set(sources))


# --- the plain build -----------------------------------------------------------------------


@pytest.mark.dbt
def test_every_model_exposes_provenance_and_drops_quarantined_sources(
    built_pipeline: Path,
) -> None:
    with connect(built_pipeline) as con:
        models = model_names(con)
        assert {"training_examples", "label_quality", "source_inventory", "int_users_merged",
                "int_user_activity", "int_labels_resolved", "int_user_accounts"} <= set(models)
        assert "int_spam_blocklist" not in models  # ephemeral: inlined, never built
        for model in models:
            names, rows = read_rows(con, model)
            assert any(is_provenance_column(n) for n in names), f"{model} has no provenance"
            assert rows, f"{model} is empty in the demo build"
            tainted = [r for r in rows if QUARANTINED in row_sources(names, r)]
            assert not tainted, f"{model} still holds rows of quarantined {QUARANTINED}"
        # The quarantined source has rows in its raw seed: staging is what drops them.
        (raw_v1,) = con.execute(
            "select count(*) from main.raw_spam_scores where source_id = ?", [QUARANTINED]
        ).fetchone()
        assert raw_v1 > 0


@pytest.mark.dbt
def test_training_examples_split_is_deterministic_and_labels_resolved(
    built_pipeline: Path,
) -> None:
    with connect(built_pipeline) as con:
        (n_users, n_test, n_unlabelled) = con.execute(
            "select count(*), count(*) filter (where split = 'test'), "
            "count(*) filter (where is_job_seeker is null) from main.training_examples"
        ).fetchone()
        (n_resolved,) = con.execute("select count(*) from main.int_labels_resolved").fetchone()
        # The worst vendor agrees least with the consensus.
        worst = con.execute(
            "select source_id from main.label_quality order by agreement_rate limit 1"
        ).fetchone()[0]
    assert n_users == n_resolved > 100
    assert n_unlabelled == 0
    assert 0.1 < n_test / n_users < 0.3
    assert worst == "labels_vendor_quickmark"


@pytest.mark.dbt
def test_compile_needs_no_warehouse(compiled_pipeline: Path) -> None:
    compiled = compiled_pipeline / "target" / "compiled" / "provenance_pipeline" / "models"
    staging = (compiled / "staging" / "stg_job_search_labels.sql").read_text()
    assert "data_sources" in staging and "'active'" in staging
    # The ephemeral blocklist is inlined into its consumer.
    despammed = (compiled / "intermediate" / "int_users_despammed.sql").read_text()
    assert "__dbt__cte__int_spam_blocklist" in despammed


# --- building with excluded sources ---------------------------------------------------------


@pytest.fixture(scope="module")
def excluded_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("excluded") / "pipeline")
    listed = ", ".join(EXCLUDED)
    run_dbt(project, "build", "--vars", f"{{excluded_sources: [{listed}]}}")
    return project


@pytest.mark.dbt
def test_excluded_sources_leave_no_trace_in_any_model(
    built_pipeline: Path, excluded_build: Path
) -> None:
    with connect(built_pipeline) as plain, connect(excluded_build) as excluded:
        models = model_names(plain)
        assert model_names(excluded) == models
        touched = 0
        for model in models:
            names, before = read_rows(plain, model)
            _, after = read_rows(excluded, model)
            left = [r for r in after if carries(names, r, EXCLUDED)]
            assert not left, f"{model}: {len(left)} rows still carry {EXCLUDED}: {left[:2]}"
            touched += any(carries(names, r, EXCLUDED) for r in before)
        # The check is not vacuous: in the plain build most models hold such rows.
        assert touched >= 8


@pytest.mark.dbt
def test_rows_of_other_sources_are_unchanged(built_pipeline: Path, excluded_build: Path) -> None:
    """Row-preserving models keep exactly the other sources' rows; every model (but the
    inventory, which counts rows) keeps each row whose provenance names no excluded source."""
    row_preserving = {
        "stg_users_web", "stg_users_mobile", "stg_users_partner", "stg_spam_accounts",
        "stg_spam_ips", "stg_spam_scores", "stg_id_merge_pairs", "stg_job_search_labels",
        "stg_user_events", "int_users_unioned", "int_users_despammed",
    }
    with connect(built_pipeline) as plain, connect(excluded_build) as excluded:
        models = model_names(plain)
        assert row_preserving <= set(models)
        for model in models:
            if model == "source_inventory":
                continue
            names, before = read_rows(plain, model)
            _, after = read_rows(excluded, model)
            clean_before = sorted(r for r in before if not carries(names, r, EXCLUDED))
            if model in row_preserving:
                assert sorted(after) == clean_before, f"{model}: rows of other sources changed"
            else:
                missing = set(clean_before) - set(after)
                assert not missing, f"{model}: {len(missing)} untouched rows changed or vanished"


@pytest.mark.dbt
def test_source_inventory_counts_contributions(
    built_pipeline: Path, excluded_build: Path
) -> None:
    query = (
        "select source_id, n_rows from main.source_inventory where model_name = ? "
        "order by source_id"
    )
    with connect(built_pipeline) as plain, connect(excluded_build) as excluded:
        staged = dict(plain.execute(query, ["stg_job_search_labels"]).fetchall())
        (raw_crowd,) = plain.execute(
            "select count(*) from main.raw_job_search_labels where source_id = ?",
            ["labels_crowd_acme"],
        ).fetchone()
        after = dict(excluded.execute(query, ["training_examples"]).fetchall())
    assert staged["labels_crowd_acme"] == raw_crowd
    assert "labels_crowd_acme" not in after and "users_mobile_app" not in after
    assert after["labels_inhouse"] > 0


# Per-user models take a user's record and merge provenance from the user's accounts (the union
# of equal masks, or the anchor account's): it must equal the union over all the user's accounts.
USER_GRAIN_PROVENANCE = {
    "int_user_activity": {"user_source_mask": "user_source_mask", "merge_source_mask": "merge_source_mask"},
    "int_labels_resolved": {"user_source_mask": "user_source_mask", "merge_source_mask": "merge_source_mask"},
    "int_users_merged": {"source_mask": "user_source_mask", "merge_source_mask": "merge_source_mask"},
}


@pytest.mark.dbt
@pytest.mark.parametrize("model", sorted(USER_GRAIN_PROVENANCE))
def test_user_provenance_is_the_union_over_the_users_accounts(built_pipeline: Path, model: str) -> None:
    recollected = """
        select user_id, bit_or({col}) as expected
        from main.int_user_accounts
        group by user_id
    """
    with connect(built_pipeline) as con:
        for column, account_column in USER_GRAIN_PROVENANCE[model].items():
            rows = con.execute(f"""
                select m.user_id, m.{column}, a.expected
                from main.{model} as m
                left join ({recollected.format(col=account_column)}) as a using (user_id)
                where a.expected is null or m.{column} <> a.expected
            """).fetchall()
            (n,) = con.execute(f"select count(*) from main.{model}").fetchone()
            assert n > 0
            assert rows == [], f"{model}.{column} differs from its accounts' union: {rows[:3]}"


@pytest.mark.dbt
def test_source_inventory_equals_a_row_by_row_count(built_pipeline: Path) -> None:
    """The inventory counts distinct provenance combinations; a naive count per row must agree."""
    with connect(built_pipeline) as con:
        got = set(con.execute("select model_name, source_id, n_rows from main.source_inventory").fetchall())
        inventoried = sorted({model for model, _, _ in got})
        assert len(inventoried) == 15, inventoried
        want: set[tuple] = set()
        for table in inventoried:
            names, rows = read_rows(con, table)
            counts: dict[str, int] = {}
            for row in rows:
                for source in row_sources(names, row):
                    counts[source] = counts.get(source, 0) + 1
            want |= {(table, source, n) for source, n in counts.items()}
    assert got == want


@pytest.mark.dbt
def test_no_excluded_sources_test_fails_on_tables_built_before_the_exclusion(
    built_pipeline: Path, tmp_path: Path
) -> None:
    """The generic test catches rows still carrying a source that is now excluded, in scalar
    (`source_id`), source mask (`label_source_mask`) and list (`label_source_ids`) columns, and
    passes where none is left."""
    project = copy_project(tmp_path / "pipeline")
    (project / "target").mkdir()
    shutil.copy2(built_pipeline / "target" / "pipeline.duckdb", project / "target")
    result = run_dbt(
        project, "test", "--select", "test_name:no_excluded_sources",
        "--vars", "{excluded_sources: [labels_crowd_acme]}", check=False,
    )
    with connect(built_pipeline) as con:
        (n_labels,) = con.execute(
            "select count(*) from main.stg_job_search_labels where source_id = 'labels_crowd_acme'"
        ).fetchone()
        (n_examples,) = con.execute(
            "select count(*) from main.training_examples "
            "where list_contains(label_source_ids, 'labels_crowd_acme')"
        ).fetchone()
        (n_resolved,) = con.execute(
            "select count(*) from main.int_labels_resolved "
            f"where label_source_mask & {1 << {v: k for k, v in source_bits().items()}['labels_crowd_acme']} <> 0"
        ).fetchone()
    assert result.returncode == 1
    output = result.output
    assert f"FAIL {n_labels} no_excluded_sources_stg_job_search_labels_source_id" in output
    assert f"FAIL {n_examples} no_excluded_sources_training_examples " in output
    assert f"FAIL {n_resolved} no_excluded_sources_int_labels_resolved " in output
    assert "PASS no_excluded_sources_stg_users_web_source_id" in output
    assert "PASS no_excluded_sources_int_user_activity " in output


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.dbt
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("labels_nope", 'unknown source id "labels_nope"'),
        ("x'; drop table data_sources; --", "\"x'; drop table data_sources; --\" is not a valid"),
        ("Users_Web_Signup", '"Users_Web_Signup" is not a valid source id'),
    ],
)
def test_bad_excluded_sources_stop_the_build(
    project_copy: Path, value: str, expected: str
) -> None:
    quoted = value.replace("'", "''")
    result = run_dbt(
        project_copy, "build", "--select", "data_sources", "raw_users_web", "stg_users_web",
        "--vars", f"{{excluded_sources: ['{quoted}']}}", check=False,
    )
    assert result.returncode != 0
    assert expected in result.output
    database = project_copy / "target" / "pipeline.duckdb"
    if database.exists():  # the registry the value tried to drop is still there
        with duckdb.connect(str(database), read_only=True) as con:
            tables = {t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()}
        assert "stg_users_web" not in tables


@pytest.mark.dbt
def test_unregistered_or_missing_source_id_fails_a_test_naming_the_relation(
    project_copy: Path,
) -> None:
    def edit_first_row(seed: str, source_id: str) -> None:
        path = project_copy / "seeds" / f"{seed}.csv"
        lines = path.read_text(encoding="utf-8").split("\n")
        header = lines[0].split(",")
        cells = lines[1].split(",")
        cells[header.index("source_id")] = source_id
        lines[1] = ",".join(cells)
        path.write_text("\n".join(lines), encoding="utf-8")

    edit_first_row("raw_user_events", "events_unregistered")
    edit_first_row("raw_spam_ips", "")
    result = run_dbt(
        project_copy, "build", "--select", "data_sources", "raw_user_events", "raw_spam_ips",
        check=False,
    )
    assert result.returncode != 0
    output = result.output
    assert "FAIL 1 relationships_raw_user_events_source_id" in output
    assert "FAIL 1 not_null_raw_spam_ips_source_id" in output


UNREGISTERED_MODEL = """\
-- a model outside staging that collects a source id the registry does not know
select
    account_id,
    {{ collect_sources('unchecked.source_id') }} as source_mask
from (select 'acc_1' as account_id, 'labels_nobody' as source_id) as unchecked
group by account_id
"""


@pytest.mark.dbt
def test_an_unregistered_source_id_stops_the_build_where_it_is_encoded(project_copy: Path) -> None:
    """Staging drops rows of unregistered sources (and a test names the raw relation), but a
    model that encodes an id the registry does not know fails loudly: the id is never dropped."""
    (project_copy / "models" / "marts" / "unregistered_mask.sql").write_text(UNREGISTERED_MODEL)
    result = run_dbt(project_copy, "build", "--select", "data_sources", "unregistered_mask", check=False)
    assert result.returncode != 0
    assert 'source id "labels_nobody" is not in the registry data_sources' in result.output
    with duckdb.connect(str(project_copy / "target" / "pipeline.duckdb"), read_only=True) as con:
        tables = {t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()}
    assert "unregistered_mask" not in tables


@pytest.mark.dbt
def test_an_unqualified_column_in_the_encode_macro_is_a_compile_error(project_copy: Path) -> None:
    """Inside the registry subquery an unqualified `source_id` would be the registry's own
    column (every row would match): the macro refuses it when the model compiles."""
    (project_copy / "models" / "marts" / "unqualified_mask.sql").write_text(
        "select account_id, {{ collect_sources('source_id') }} as source_mask\n"
        "from {{ ref('stg_user_events') }}\ngroup by account_id\n")
    result = run_dbt(project_copy, "compile", "--select", "unqualified_mask", check=False)
    assert result.returncode != 0
    assert 'encode_source("source_id"): qualify the column' in result.output


@pytest.mark.dbt
def test_adding_a_source_to_the_registry_needs_no_model_edit(project_copy: Path) -> None:
    """A new tracker: one registry row (the next source bit) and raw rows carrying it; the
    models are the committed ones, and its id shows in the marts' lists and the inventory."""
    new_source = "events_smart_tv"
    registry = project_copy / "seeds" / "data_sources.csv"
    text = registry.read_text(encoding="utf-8")
    next_bit = max(int(row["source_bit"]) for row in registry_rows()) + 1
    registry.write_text(text.rstrip("\n") + f"\n{new_source},{next_bit},in_house,internal,0.00,10,2026-08-01,"
                        "active,,,Events from the smart TV app\n", encoding="utf-8")
    events = project_copy / "seeds" / "raw_user_events.csv"
    lines = events.read_text(encoding="utf-8").split("\n")
    moved = 0
    for i in range(1, len(lines)):
        if lines[i].endswith(",events_web_clickstream") and i % 3 == 0:
            lines[i] = lines[i].rsplit(",", 1)[0] + "," + new_source
            moved += 1
    assert moved > 100
    events.write_text("\n".join(lines), encoding="utf-8")
    run_dbt(project_copy, "build")
    for folder in ("models", "macros"):
        for path in (PROJECT_ROOT / folder).rglob("*"):
            if path.is_file():
                assert (project_copy / folder / path.relative_to(PROJECT_ROOT / folder)).read_bytes() == path.read_bytes()
    with connect(project_copy) as con:
        (with_new,) = con.execute(
            "select count(*) from main.training_examples where list_contains(event_source_ids, ?)", [new_source]
        ).fetchone()
        inventory = dict(con.execute(
            "select model_name, n_rows from main.source_inventory where source_id = ?", [new_source]).fetchall())
        (raw,) = con.execute("select count(*) from main.raw_user_events where source_id = ?", [new_source]).fetchone()
    assert with_new > 0
    assert inventory["stg_user_events"] == raw == moved
    assert inventory["training_examples"] == with_new


# --- the scale path: raw relations as dbt sources over Parquet --------------------------------


@pytest.mark.dbt
def test_parquet_sources_build_the_same_tables_as_the_seeds(
    built_pipeline: Path, tmp_path: Path
) -> None:
    generator = load_generator()
    raw_dir = tmp_path / "raw"
    generator.generate(1000, tmp_path / "csv")
    generator.to_parquet(tmp_path / "csv", raw_dir)
    project = copy_project(tmp_path / "pipeline")
    result = run_dbt(project, "build", "--vars", f"{{raw_data_dir: '{raw_dir.as_posix()}'}}")
    assert "9 sources" in result.output
    with connect(built_pipeline) as seeds, connect(project) as parquet:
        for model in ("training_examples", "int_user_accounts", "label_quality"):
            names, expected = read_rows(seeds, model)
            _, actual = read_rows(parquet, model)
            assert sorted(actual) == sorted(expected), model
        raw_tables = [
            t for (t,) in parquet.execute(
                "select table_name from information_schema.tables where table_name like 'raw%'"
            ).fetchall()
        ]
    assert raw_tables == []  # the demo seeds were not loaded: the Parquet files are the roots

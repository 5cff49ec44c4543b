"""`lineage-tools impact`: which models a source reaches, and whether filtering is exact.

The differential test runs, for every source of the pipeline, the rebuild command `impact`
prints (a real `dbt build` without the source, in a copy of the built warehouse) and compares:
for each `filter` model the clean rows (the `--emit-sql` query on the original warehouse) must
equal the rebuilt table; each `rebuild` model must differ for at least one source (or be
explained below).
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from conftest import run_cli, run_dbt

from lineage_tools.provenance import FILTER, REBUILD, Env, clean_rows_sql, impact, load_graph
from lineage_tools.registry import read_registry
from lineage_tools.render import mdtext

# rebuild models that no single source of the demo data changes beyond what a filter keeps,
# with why `rebuild` is still the right answer (filled from the differential run).
REBUILD_EXPLAINED: dict[str, str] = {}


def _copy_built(built: Path, dest: Path) -> Path:
    shutil.copytree(built, dest, ignore=shutil.ignore_patterns("logs", "*.tmp"))
    return dest


def _diff_rows(con: duckdb.DuckDBPyConnection, left: str, right: str) -> int:
    """Rows in one query and not the other (multiset symmetric difference)."""
    sql = f"select count(*) from (({left}) except all ({right})) union all select count(*) from (({right}) except all ({left}))"
    return sum(r[0] for r in con.execute(sql).fetchall())


@dataclass(frozen=True)
class Outcome:
    source_id: str
    model: str
    mode: str
    differs: int


@pytest.fixture(scope="module")
def differential(built_pipeline: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Outcome]:
    env = Env(built_pipeline)
    graph = load_graph(env)
    registry = read_registry(built_pipeline / "seeds" / "data_sources.csv")
    db = built_pipeline / "target" / "pipeline.duckdb"
    outcomes: list[Outcome] = []
    plans = []
    for sid in registry.ids:
        imp = impact(graph, env, [sid], count=False)
        if imp.models:
            copy = _copy_built(built_pipeline, tmp_path_factory.mktemp(f"rebuilt_{sid}") / "pipeline")
            plans.append((sid, imp, copy))
    # the rebuilds are independent (one copy each): two at a time
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda plan: run_dbt(plan[2], *plan[1].rebuild_argv[1:]), plans))
    for sid, imp, copy in plans:
        con = duckdb.connect()
        try:
            con.execute(f"attach '{db}' as pipeline (read_only)")
            con.execute(f"attach '{copy / 'target' / 'pipeline.duckdb'}' as rebuilt (read_only)")
            for m in imp.models:
                if m.materialized == "ephemeral":
                    continue
                clean = clean_rows_sql(imp, m, any_mode=True)
                schema, table = m.relation.split(".")[-2:]
                rebuilt = f'select * from "rebuilt"."{schema}"."{table}"'
                outcomes.append(Outcome(sid, m.model, m.mode, _diff_rows(con, clean, rebuilt)))
        finally:
            con.close()
    return outcomes


@pytest.mark.dbt
def test_filter_models_clean_rows_equal_a_rebuild(differential: list[Outcome]) -> None:
    filters = [o for o in differential if o.mode == FILTER]
    assert filters, "no filter model at all: the differential test proves nothing"
    wrong = [o for o in filters if o.differs]
    assert not wrong, "filter is not exact for: " + ", ".join(f"{o.model} ({o.source_id}: {o.differs} rows)" for o in wrong)


@pytest.mark.dbt
def test_every_rebuild_model_differs_for_some_source(differential: list[Outcome]) -> None:
    rebuild_models = {o.model for o in differential if o.mode == REBUILD}
    assert rebuild_models
    differing = {o.model for o in differential if o.mode == REBUILD and o.differs}
    unexplained = rebuild_models - differing - set(REBUILD_EXPLAINED)
    assert not unexplained, f"rebuild models that never differ from a filter: {sorted(unexplained)}"


@pytest.mark.dbt
def test_differential_covers_every_source_with_rows(differential: list[Outcome], built_pipeline: Path) -> None:
    registry = read_registry(built_pipeline / "seeds" / "data_sources.csv")
    covered = {o.source_id for o in differential}
    assert len(covered) >= len(registry.ids) - 1


# ---- the command, as a user runs it --------------------------------------------------------

def _impact(project: Path, *args: str):
    return run_cli("impact", *args, "--project-dir", str(project), cwd=project)


@pytest.mark.dbt
def test_labelling_source_json(built_pipeline: Path) -> None:
    proc = _impact(built_pipeline, "labels_vendor_quickmark", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"source_ids", "models", "rebuild_command"} <= set(data)
    assert data["source_ids"] == ["labels_vendor_quickmark"]
    assert data["rows_counted"] is True
    modes = {m["model"]: m["mode"] for m in data["models"]}
    assert modes["stg_job_search_labels"] == "filter"
    assert modes["int_labels_resolved"] == "rebuild"  # labels are voted per account: an aggregate
    assert "int_users_unioned" not in modes  # not reached: not listed
    for m in data["models"]:
        assert {"model", "mode", "columns", "tainted_rows", "total_rows", "reason"} <= set(m)
        assert m["reason"]
        if m["total_rows"] is not None:
            assert 0 <= m["tainted_rows"] <= m["total_rows"]
    stg = next(m for m in data["models"] if m["model"] == "stg_job_search_labels")
    assert stg["tainted_rows"] > 0
    assert "source_id" in stg["columns"]
    cmd = data["rebuild_command"]
    assert cmd.startswith("dbt build --select stg_job_search_labels ")
    assert """--vars '{"excluded_sources": ["labels_vendor_quickmark"]}'""" in cmd


@pytest.mark.dbt
def test_user_feed_text_and_emit_sql(built_pipeline: Path) -> None:
    proc = _impact(built_pipeline, "users_partner_feed", "--emit-sql")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "rows held in: raw_users_partner" in out
    assert "dbt build --select stg_users_partner int_users_unioned" in out
    clean = [line.strip() for line in out.splitlines() if line.strip().startswith("clean rows:")]
    # one clean-rows query per filter model, none for rebuild models
    data = json.loads(_impact(built_pipeline, "users_partner_feed", "--format", "json", "--emit-sql",
                              "--no-rows").stdout)
    filters = [m for m in data["models"] if m["mode"] == "filter"]
    assert len(clean) == len([m for m in filters if m["provenance_columns"]])
    assert all(m["clean_sql"] is None for m in data["models"] if m["mode"] == "rebuild")
    assert any("users_partner_feed" in line for line in clean)


@pytest.mark.dbt
def test_markdown(built_pipeline: Path) -> None:
    proc = _impact(built_pipeline, "labels_inhouse", "--format", "markdown", "--no-rows")
    assert proc.returncode == 0, proc.stderr
    assert "| model | mode |" in proc.stdout
    assert "```sh\ndbt build --select" in proc.stdout
    # a reason several models share is one line above the table, not a sentence on every row
    data = json.loads(_impact(built_pipeline, "users_partner_feed", "--format", "json", "--no-rows").stdout)
    filter_why = next(m["reason"] for m in data["models"] if m["mode"] == "filter")
    assert sum(m["reason"] == filter_why for m in data["models"]) >= 2
    md = _impact(built_pipeline, "users_partner_feed", "--format", "markdown", "--no-rows").stdout
    assert md.count(mdtext.text(filter_why)) == 1
    text = _impact(built_pipeline, "users_partner_feed", "--no-rows").stdout
    assert text.count(filter_why) == 1


@pytest.mark.dbt
def test_a_quarantined_source_says_so_and_what_remains(built_pipeline: Path) -> None:
    """spam_model_v1 is quarantined in the committed registry and staging drops its rows: none
    remain, so impact says that, where its raw rows stay, and gives no rebuild to run."""
    proc = _impact(built_pipeline, "spam_model_v1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    data = json.loads(_impact(built_pipeline, "spam_model_v1", "--format", "json").stdout)
    n = len(data["models"])
    assert lines[1] == f"spam_model_v1 is quarantined: 0 rows remain in the {n} models it reaches; nothing to do"
    assert lines[2].startswith("raw rows kept in: raw_spam_scores (") and "dbt build" not in proc.stdout
    assert data["quarantined"] == ["spam_model_v1"] and data["rows_left"] == 0
    md = _impact(built_pipeline, "spam_model_v1", "--format", "markdown").stdout
    assert "Quarantined, nothing left to do: 0 rows remain" in md and "```sh" not in md
    # not counted: it says it does not know, and keeps the models and the rebuild command
    static = _impact(built_pipeline, "spam_model_v1", "--no-rows").stdout
    assert "spam_model_v1 is quarantined, but rows left in the models it reaches were not counted" in static
    assert "dbt build --select" in static
    # an active source is not called quarantined
    assert "quarantined" not in _impact(built_pipeline, "labels_inhouse", "--no-rows").stdout


@pytest.mark.dbt
def test_no_rows_gives_the_static_answer(built_pipeline: Path) -> None:
    counted = json.loads(_impact(built_pipeline, "labels_inhouse", "--format", "json").stdout)
    static = json.loads(_impact(built_pipeline, "labels_inhouse", "--format", "json", "--no-rows").stdout)
    assert static["rows_counted"] is False and "not counted" in static["note"]
    assert all(m["tainted_rows"] is None and m["total_rows"] is None for m in static["models"])
    strip = lambda d: [(m["model"], m["mode"], m["columns"]) for m in d["models"]]  # noqa: E731
    assert strip(static) == strip(counted)
    assert static["rebuild_command"] == counted["rebuild_command"]


@pytest.mark.dbt
def test_without_a_warehouse_says_rows_were_not_counted(compiled_pipeline: Path) -> None:
    proc = _impact(compiled_pipeline, "labels_inhouse", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["rows_counted"] is False
    assert "not counted" in data["note"]
    assert data["models"] and data["rebuild_command"]


@pytest.mark.dbt
def test_unknown_source_exits_2_and_lists_registered(compiled_pipeline: Path) -> None:
    proc = _impact(compiled_pipeline, "labels_nobody", "--no-rows")
    assert proc.returncode == 2
    assert "labels_nobody" in proc.stderr and "labels_inhouse" in proc.stderr and "users_web_signup" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.dbt
def test_malformed_source_id_never_reaches_sql(compiled_pipeline: Path) -> None:
    proc = _impact(compiled_pipeline, "x'); drop table raw_users_web; --", "--no-rows")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


@pytest.mark.dbt
def test_registered_source_without_rows_has_nothing_to_do(project_copy: Path) -> None:
    reg = project_copy / "seeds" / "data_sources.csv"
    text = reg.read_text()
    reg.write_text(text + "labels_future_vendor,outsourced,Nobody Yet,0.00,0,2026-11-01,active,,,"
                   "Signed, no batch delivered yet\n".replace("Signed, no", "Signed no"))
    proc = _impact(project_copy, "labels_future_vendor", "--format", "json", "--no-rows")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["models"] == [] and data["rebuild_command"] is None
    text_out = _impact(project_copy, "labels_future_vendor", "--no-rows").stdout
    assert "nothing to do" in text_out


# ---- the mode rule on hand-made lineage (no dbt) ------------------------------------------

from lineage_tools.graph import LineageGraph  # noqa: E402
from lineage_tools.records import (  # noqa: E402
    ColumnEdge, ColumnRef, ModelLineage, Node, ProjectLineage, RowEffect, RowInfluence,
    StatementLineage, Subtype,
)

I, T, A = Subtype.IDENTITY, Subtype.TRANSFORMATION, Subtype.AGGREGATION


def _node(kind: str, name: str, cols=(), deps=(), meta=()) -> Node:
    uid = f"{kind}.p.{name}"
    path = f"seeds/{name}.csv" if kind == "seed" else f"models/{name}.sql"
    return Node(uid, name, kind, f"db.main.{name}", "db", "main", name, original_file_path=path,
                materialized="table" if kind == "model" else None,
                depends_on=tuple(deps), columns=tuple((c, None) for c in cols), meta=tuple(meta))


def _model(name, deps, edges, influences=()) -> ModelLineage:
    cols = tuple(dict.fromkeys(t for t, *_ in edges if t))
    lin = StatementLineage(
        cols,
        tuple(ColumnEdge(t, ColumnRef(f"seed.p.{s}" if s.startswith("raw") else f"model.p.{s}", c), st, m)
              for t, s, c, st, m in edges),
        tuple(RowInfluence(f"model.p.{r}" if not r.startswith("raw") else f"seed.p.{r}", e) for r, e in influences),
    )
    return ModelLineage(_node("model", name, deps=[f"seed.p.{d}" if d.startswith("raw") else f"model.p.{d}" for d in deps]), lin)


@pytest.fixture
def toy(tmp_path: Path):
    """raw_users and raw_labels (two sources each) -> inner join -> vote (aggregate) / left join."""
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "data_sources.csv").write_text(
        "source_id,status,status_reason,status_changed_on\n"
        "web,active,,\nmobile,active,,\nvendor_a,active,,\nvendor_b,active,,\nempty_one,active,,\n")
    (tmp_path / "seeds" / "raw_users.csv").write_text("id,email,source_id\n1,a,web\n2,b,mobile\n")
    (tmp_path / "seeds" / "raw_labels.csv").write_text("id,label,source_id\n1,t,vendor_a\n2,f,vendor_b\n")
    seeds = [
        _node("seed", "data_sources", ["source_id", "status"], meta=[("provenance", "registry")]),
        _node("seed", "raw_users", ["id", "email", "source_id"]),
        _node("seed", "raw_labels", ["id", "label", "source_id"]),
    ]
    joined = _model("joined", ["raw_users", "raw_labels"], [
        ("id", "raw_users", "id", I, False), ("email", "raw_users", "email", I, False),
        ("label", "raw_labels", "label", I, False), ("source_id", "raw_users", "source_id", I, False),
        ("label_source_id", "raw_labels", "source_id", I, False),
    ])
    voted = _model("voted", ["joined"], [
        ("id", "joined", "id", I, False), ("label", "joined", "label", A, False),
        ("source_ids", "joined", "source_id", A, False), ("label_source_ids", "joined", "label_source_id", A, False),
    ], [("joined", RowEffect.AGGREGATE)])
    users_opt = _model("users_opt", ["raw_users", "joined"], [
        ("id", "raw_users", "id", I, False), ("source_id", "raw_users", "source_id", I, False),
        ("label", "joined", "label", I, False), ("label_source_id", "joined", "label_source_id", I, False),
    ], [("joined", RowEffect.OUTER_JOIN_OPTIONAL)])
    hashed = _model("hashed", ["raw_users"], [
        ("id", "raw_users", "id", I, False), ("source_id", "raw_users", "source_id", T, True),
    ])
    models = (joined, voted, users_opt, hashed)
    project = ProjectLineage("p", "duckdb", "duckdb", tuple(seeds) + tuple(m.node for m in models), models,
                             registry="seed.p.data_sources")
    return LineageGraph(project), Env(tmp_path)


def test_inner_join_is_filter_aggregate_and_optional_side_are_rebuild(toy) -> None:
    graph, env = toy
    imp = impact(graph, env, ["vendor_a"], count=False)
    modes = {m.model: m.mode for m in imp.models}
    assert modes == {"joined": "filter", "voted": "rebuild", "users_opt": "rebuild"}
    assert "hashed" not in modes  # raw_users holds no vendor_a rows... and hashed reads raw_users only
    assert imp.model("joined").columns == ("label", "label_source_id")
    assert "aggregates joined" in imp.model("voted").reason
    assert "optional side" in imp.model("users_opt").reason
    assert imp.roots == ("raw_labels",)
    assert not imp.rows_counted and "not counted" in imp.note


def test_a_model_without_the_provenance_is_rebuild(toy) -> None:
    graph, env = toy
    imp = impact(graph, env, ["web"], count=False)
    modes = {m.model: m.mode for m in imp.models}
    assert modes["hashed"] == "rebuild"
    assert "does not carry the provenance of raw_users" in imp.model("hashed").reason
    assert modes["joined"] == "filter"
    # the optional side of users_opt is joined; raw_users reaches it on the preserved side too,
    # but also through joined (optional side): rebuild
    assert modes["users_opt"] == "rebuild"


def test_clean_rows_sql_quotes_validated_ids(toy) -> None:
    graph, env = toy
    imp = impact(graph, env, ["vendor_a", "vendor_b"], count=False)
    sql = clean_rows_sql(imp, imp.model("joined"))
    assert sql == ('select * from "db"."main"."joined" where not (coalesce(cast("source_id" as varchar) in '
                   "('vendor_a', 'vendor_b'), false) or coalesce(cast(\"label_source_id\" as varchar) in "
                   "('vendor_a', 'vendor_b'), false))")
    assert clean_rows_sql(imp, imp.model("voted")) is None


def test_registered_source_without_rows_reaches_nothing(toy) -> None:
    graph, env = toy
    imp = impact(graph, env, ["empty_one"], count=False)
    assert imp.models == () and imp.rebuild_command is None


def test_unknown_and_malformed_ids_are_user_errors(toy) -> None:
    from lineage_tools.errors import UnknownNodeError, UserError

    graph, env = toy
    with pytest.raises(UnknownNodeError, match="registered: web, mobile, vendor_a"):
        impact(graph, env, ["vendor_c"], count=False)
    with pytest.raises(UserError):
        impact(graph, env, ["Vendor_A; drop"], count=False)


def test_rebuild_command_is_exact_and_quoted(toy) -> None:
    graph, env = toy
    imp = impact(graph, env, ["vendor_a"], count=False)
    assert imp.rebuild_argv == ("dbt", "build", "--select", "joined", "voted", "users_opt",
                                "--vars", '{"excluded_sources": ["vendor_a"]}')
    assert imp.rebuild_command == ("dbt build --select joined voted users_opt "
                                   "--vars '{\"excluded_sources\": [\"vendor_a\"]}'")


def test_check_on_hand_made_lineage(toy) -> None:
    from lineage_tools.provenance import check

    graph, _ = toy
    result = check(graph)
    assert result.models_checked == 4
    assert [(f.model, f.column, f.rule, f.root) for f in result.findings] == [
        ("hashed", "source_id", "4", "raw_users")]

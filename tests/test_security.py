"""Security review, as tests (docs/trust.md): no shell strings, names quoted or validated before
they reach SQL, names escaped in HTML and Markdown, output files only where asked.

A source id, a model name and a column name crafted to break out of SQL, HTML and Markdown are
fed through the real commands on a real dbt build.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from conftest import PROJECT_ROOT, copy_mini_project, run_cli, run_dbt
from lineage_tools.errors import UserError
from lineage_tools.records import ColumnEdge, ColumnRef, Subtype
from lineage_tools.render.verify import render_markdown, render_text
from lineage_tools.verify import MissingEdge, ModelCheck, Scratch, VerifyResult, observe, quote_ident, quote_relation
from lineage_tools.warehouse import contains_any

PACKAGE = PROJECT_ROOT / "lineage_tools"

EVIL_COLUMN = "x\"'; drop table raw_users; --<script>alert(1)</script>|`*"
EVIL_MODEL = "evil<svg>|*[x](y)"  # dbt refuses spaces and dbt-duckdb cannot build names with a double quote
EVIL_SOURCE_ID = "x'); drop table raw_users; --"
# What GitHub would turn into a notification or a link in a pull-request comment.
LIVE_COLUMN = "ping @team on #12 and GH-3, see https://x.example or www.x.example, mail a@b.co_source_id"
LIVE_TRIGGERS = re.compile(r"@\w|#\d|\bGH-\d|://|\bwww\.", re.I)


# ---- no shell strings ------------------------------------------------------------------------


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return f"{_name(func.value)}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


def test_no_shell_strings_anywhere_in_the_package() -> None:
    """No `shell=True`, no os.system / os.popen, and every subprocess gets an argv list."""
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in _calls(tree):
            name = _name(call.func)
            where = f"{path.relative_to(PROJECT_ROOT)}:{call.lineno}"
            if name in ("os.system", "os.popen", "os.execl", "os.execlp", "os.spawnl"):
                offences.append(f"{where}: {name}")
            for kw in call.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    offences.append(f"{where}: shell={ast.unparse(kw.value)}")
            if name.startswith("subprocess.") and call.args and isinstance(call.args[0], (ast.Constant, ast.JoinedStr)):
                offences.append(f"{where}: {name} with a command string")
    assert offences == []
    assert any("subprocess" in p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))  # the scan sees them


# ---- names reaching SQL ----------------------------------------------------------------------


def test_source_ids_are_validated_before_sql() -> None:
    with pytest.raises(UserError, match="not a valid source id"):
        contains_any("duckdb", "source_id", False, [EVIL_SOURCE_ID])
    # well-formed ids are quoted as string literals
    assert "'good_id'" in contains_any("duckdb", "source_id", True, ["good_id"])


def test_crafted_source_id_exits_2_without_touching_the_warehouse(compiled_pipeline: Path) -> None:
    """(also test_impact.py::test_malformed_source_id_never_reaches_sql)"""
    for command in (["impact", EVIL_SOURCE_ID], ["quarantine", EVIL_SOURCE_ID, "--reason", "x", "--dry-run"]):
        proc = run_cli(*command, "--project-dir", str(compiled_pipeline), cwd=compiled_pipeline)
        assert proc.returncode == 2, proc.stderr
        assert "not a valid source id" in proc.stderr or "unknown source id" in proc.stderr


def test_verify_scratch_quotes_every_name() -> None:
    """Relation and column names with quotes, semicolons and comments stay names in the scratch DB."""
    parts = ('d"b', "s'c;h", "t\"; drop table memory.main.sentinel; --")
    cols = [(EVIL_COLUMN, "VARCHAR"), ("k", "INTEGER")]
    with Scratch() as s:
        s.conn.execute("create table memory.main.sentinel as select 1 as x")
        s.add_rows("evil", parts, cols, [("a", 1), ("b", 2), ("c", 3)])
        sql = f"select upper({quote_ident(EVIL_COLUMN)}) as u, k from {quote_relation(parts)}"
        assert "sentinel; --\"" in sql and EVIL_COLUMN.replace('"', '""') in sql
        observed = observe(s, sql, ["evil"])
        assert observed.error is None
        assert {(o.target, o.source.column) for o in observed.observations} >= {("u", EVIL_COLUMN), ("k", "k")}
        assert s.conn.execute("select x from memory.main.sentinel").fetchall() == [(1,)]


def test_verify_renderers_escape_names() -> None:
    edge = ColumnEdge(EVIL_COLUMN, ColumnRef("model.p." + EVIL_MODEL, EVIL_COLUMN), Subtype.IDENTITY)
    check = ModelCheck("model.p." + EVIL_MODEL, EVIL_MODEL, "verified", message="<b>note|x</b>",
                       unexercised=(edge,), missing=(MissingEdge(EVIL_COLUMN, edge.source, ("replace",)),))
    md = render_markdown(VerifyResult((check,), "generated", 10))
    # names are inline code (shown literally, HTML too) or escaped text; nothing else holds markup
    outside_code = re.sub(r"(`+) .*? \1|(`+)[^`]*?\2", "", md)
    assert "<" not in outside_code and EVIL_MODEL not in outside_code
    assert "&lt;b&gt;note" in md
    table_row = next(line for line in md.splitlines() if line.startswith("| ") and "verified" in line)
    assert table_row.count(" | ") == 6  # a `|` in a name does not add a cell
    assert EVIL_COLUMN in render_text(VerifyResult((check,), "generated", 10))  # text prints names as they are


# ---- a crafted model and column name through the commands ---------------------------------------


@pytest.fixture(scope="module")
def evil_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_mini_project(tmp_path_factory.mktemp("evil") / "mini")
    quoted = EVIL_COLUMN.replace('"', '""')
    (project / "models" / "marts" / f"{EVIL_MODEL}.sql").write_text(
        f'select\n    user_id,\n    email as "{quoted}",\n    source_id\nfrom {{{{ ref(\'stg_users\') }}}}\n',
        encoding="utf-8")
    (project / "models" / "marts" / "live_names.sql").write_text(
        f"select\n    user_id,\n    'x' as \"{LIVE_COLUMN}\",\n    source_id\nfrom {{{{ ref('stg_users') }}}}\n",
        encoding="utf-8")
    run_dbt(project, "build", "--exclude", "broken_report")
    return project


def _outside_code(md: str) -> str:
    """Markdown with its code spans and fenced blocks (where GitHub links and pings nothing) cut out."""
    md = re.sub(r"^```.*?^```", "", md, flags=re.S | re.M)
    return re.sub(r"(`+) .*? \1|(`+)[^`]*?\2", "", md)


def _raw_users(project: Path) -> int:
    con = duckdb.connect(str(project / "target" / "mini.duckdb"), read_only=True)
    try:
        return con.execute('select count(*) from "mini"."main"."raw_users"').fetchone()[0]
    finally:
        con.close()


@pytest.mark.dbt
def test_crafted_names_are_verified_as_names(evil_project: Path) -> None:
    rows = _raw_users(evil_project)
    proc = run_cli("verify", "--project-dir", str(evil_project), "--format", "json", "--quiet", cwd=evil_project)
    assert proc.returncode == 0, proc.stderr
    models = {m["name"]: m for m in json.loads(proc.stdout)["models"]}
    evil = models[EVIL_MODEL]
    assert evil["outcome"] == "verified" and not evil["false_negatives"]
    assert {"target": EVIL_COLUMN, "source_column": "email"}.items() <= next(
        e for e in evil["confirmed"] if e["target"] == EVIL_COLUMN).items()
    assert _raw_users(evil_project) == rows  # nothing was dropped


@pytest.mark.dbt
def test_crafted_names_are_text_in_the_report(evil_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("report", "--project-dir", str(evil_project), "-o", str(out), "--rows", "none", "--quiet",
                   cwd=evil_project)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["lineage.html", "lineage.json", "lineage.md"]
    html = (out / "lineage.html").read_text(encoding="utf-8")
    assert "alert(1)</script>" not in html and "<svg>" not in html
    assert EVIL_MODEL in json.dumps(json.loads((out / "lineage.json").read_text(encoding="utf-8")), ensure_ascii=False)
    md = (out / "lineage.md").read_text(encoding="utf-8")
    assert "<svg>" not in md and "<script>" not in md


@pytest.mark.dbt
def test_names_in_markdown_ping_and_link_nothing_on_github(evil_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("report", "--project-dir", str(evil_project), "-o", str(out), "--rows", "none", "--quiet",
                   cwd=evil_project)
    assert proc.returncode == 0, proc.stderr
    md = (out / "lineage.md").read_text(encoding="utf-8")
    assert "ping @" in md  # the finding on the crafted column is in the summary...
    live = LIVE_TRIGGERS.findall(_outside_code(md))
    assert not live, f"would fire on GitHub: {live}"  # ...and nothing in it would fire
    # the text reads the same once rendered: the breaks are empty HTML comments
    assert "ping @<!-- -->team on #<!-- -->12" in md


@pytest.mark.dbt
def test_output_goes_only_where_asked(evil_project: Path, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "verify.md"
    before = {p for p in evil_project.rglob("*") if "lineage" not in str(p)}
    proc = run_cli("verify", "--project-dir", str(evil_project), "--generated", "--format", "markdown",
                   "-o", str(target), "--quiet", cwd=evil_project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and [p.name for p in target.parent.iterdir()] == ["verify.md"]
    after = {p for p in evil_project.rglob("*") if "lineage" not in str(p)}
    assert after == before  # nothing new in the project (its lineage cache aside)


@pytest.mark.dbt
def test_model_name_with_a_quote_is_not_a_crash(tmp_path: Path) -> None:
    project = copy_mini_project(tmp_path / "mini")
    shutil.copy2(project / "models" / "marts" / "user_activity.sql", project / "models" / "marts" / "it's.sql")
    run_dbt(project, "compile")
    proc = run_cli("export", "--project-dir", str(project), cwd=project)
    assert "Traceback" not in proc.stderr and proc.returncode == 0, proc.stderr[-2000:]
    assert "it's" in proc.stdout  # the model is exported under its own name

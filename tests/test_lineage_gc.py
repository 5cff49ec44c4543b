"""The engine pauses Python's cyclic garbage collector while it works (see `lineage.analyze`,
`graph.paused_gc`); a caller's own collector setting must survive every call."""

from __future__ import annotations

import gc

import pytest

from lineage_tools.graph import build_graph, paused_gc
from lineage_tools.lineage import analyze
from lineage_tools.records import ModelLineage, Node, ProjectLineage
from lineage_tools.render import json_graph
from lineage_tools.sql import Catalog


@pytest.fixture(params=[True, False], ids=["gc-on", "gc-off"])
def collector(request):
    was = gc.isenabled()
    if request.param:
        gc.enable()
    else:
        gc.disable()
    yield request.param
    if was:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("sql", [
    "select id, upper(name) as name from main.users where country = 'NL'",
    "select from where",  # a parse error: FAILED, no exception
])
def test_analyze_leaves_the_collector_as_it_found_it(collector: bool, sql: str):
    catalog = Catalog("duckdb", {"main.users": ["id", "name", "country"]})
    analyze(sql, dialect="duckdb", catalog=catalog)
    assert gc.isenabled() is collector


def test_an_error_inside_still_restores_the_collector(collector: bool):
    with pytest.raises(ValueError):
        with paused_gc():
            assert not gc.isenabled()
            raise ValueError("boom")
    assert gc.isenabled() is collector


def test_graph_and_json_leave_the_collector_as_they_found_it(collector: bool):
    seed = Node("seed.p.raw", "raw", "seed", "db.main.raw", "db", "main", "raw",
                columns=(("id", None),))
    model = Node("model.p.m", "m", "model", "db.main.m", "db", "main", "m")
    lineage = analyze("select id from db.main.raw", dialect="duckdb",
                      catalog=Catalog("duckdb", {"db.main.raw": ["id"]}))
    project = ProjectLineage("p", "duckdb", "duckdb", (seed, model), (ModelLineage(model, lineage),))
    text = json_graph.render(build_graph(project))
    assert '"direct_roots":[{"node":"db.main.raw","column":"id"}]' in text
    assert gc.isenabled() is collector

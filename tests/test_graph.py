"""The cross-model graph over the mini fixture project's real lineage."""

from __future__ import annotations

from pathlib import Path

import pytest

from lineage_tools.errors import UnknownNodeError
from lineage_tools.graph import LineageGraph, build_graph
from lineage_tools.project import load_project
from lineage_tools.records import ColumnRef, EdgeType, Subtype

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def graph(compiled_mini: Path) -> LineageGraph:
    return build_graph(load_project(compiled_mini))


def refs(cols) -> set[str]:
    return {c.qualified for c in cols}


def test_column_lookup_by_name_unique_id_and_source(graph: LineageGraph):
    assert graph.column("stg_users.email") == ColumnRef("model.mini.stg_users", "email")
    assert graph.column("model.mini.stg_users.EMAIL") == ColumnRef("model.mini.stg_users", "email")
    assert graph.column("raw.events.source_id") == ColumnRef("source.mini.raw.events", "source_id")
    assert graph.column("source.mini.raw.events.user_id") == ColumnRef("source.mini.raw.events", "user_id")
    assert graph.column("raw_users.signup_date") == ColumnRef("seed.mini.raw_users", "signup_date")


def test_unknown_column_or_model_names_the_closest(graph: LineageGraph):
    with pytest.raises(UnknownNodeError) as info:
        graph.column("stg_users.emial")
    assert "stg_users.email" in info.value.suggestions
    with pytest.raises(UnknownNodeError) as info:
        graph.column("stg_user.email")
    assert "stg_users.email" in info.value.suggestions
    with pytest.raises(UnknownNodeError):
        graph.column("nodot")


def test_direct_roots_reach_seeds_and_sources_through_ephemeral_and_incremental(graph: LineageGraph):
    assert refs(graph.roots(graph.column("user_activity.source_ids"))) == {"source.mini.raw.events.source_id"}
    assert refs(graph.roots(graph.column("int_user_events.user_source_id"))) == {"seed.mini.raw_users.source_id"}
    assert refs(graph.roots(graph.column("users_snapshot.dbt_scd_id"))) == {"seed.mini.raw_users.user_id"}
    # a root column is its own root; a python model reaches nothing (its lineage is unknown)
    assert refs(graph.roots(graph.column("raw_users.email"))) == {"seed.mini.raw_users.email"}
    assert graph.roots(graph.column("user_scores.score")) == frozenset()


def test_roots_with_indirect_edges_include_filters_and_joins(graph: LineageGraph):
    everything = refs(graph.roots(graph.column("int_user_events.email"), kinds={EdgeType.DIRECT, EdgeType.INDIRECT}))
    assert {"seed.mini.raw_users.email", "seed.mini.data_sources.status", "source.mini.raw.events.user_id",
            "seed.mini.raw_users.user_id"} <= everything
    assert refs(graph.roots(graph.column("int_user_events.email"))) == {"seed.mini.raw_users.email"}
    only_filters = graph.roots(graph.column("stg_users.email"), kinds={Subtype.FILTER})
    assert refs(only_filters) == {"seed.mini.data_sources.status", "seed.mini.data_sources.source_id",
                                  "seed.mini.raw_users.source_id"}


def test_roots_are_memoised(graph: LineageGraph):
    col = graph.column("user_activity.last_seen_at")
    first = graph.roots(col)
    assert graph.roots(col) is first


def test_dataset_wide_edges_apply_to_every_column_when_queried(graph: LineageGraph):
    status = graph.column("data_sources.status")
    down = graph.downstream_edges(status)
    assert {e.target.column for e in down} == {"user_id", "email", "signup_date", "source_id"}
    assert all(e.subtype == Subtype.FILTER for e in down)
    # stored once per model, not once per column
    stored = [e for e in graph.edges if e.source == status]
    assert len(stored) == 1 and stored[0].target == ColumnRef("model.mini.stg_users", "")
    up = graph.upstream_edges(graph.column("stg_users.signup_date"))
    assert ("seed.mini.data_sources.status", "FILTER") in {(e.source.qualified, e.subtype.value) for e in up}


def test_upstream_and_downstream_are_transitive(graph: LineageGraph):
    up = refs(graph.upstream(graph.column("user_activity.source_ids"), kinds={EdgeType.DIRECT}))
    assert up == {"model.mini.int_user_events.source_id", "model.mini.stg_events.source_id",
                  "source.mini.raw.events.source_id"}
    down = refs(graph.downstream(graph.column("raw.events.source_id"), kinds={EdgeType.DIRECT}))
    assert down == {"model.mini.stg_events.source_id", "model.mini.int_user_events.source_id",
                    "model.mini.user_activity.source_ids"}
    # the incremental model's filter on itself is not a cycle to walk
    assert "model.mini.int_user_events.occurred_at" not in refs(graph.upstream(graph.column("int_user_events.occurred_at")))


def test_incremental_only_edges_can_be_left_out(graph: LineageGraph):
    col = graph.column("int_user_events.event_type")
    with_incr = {e.source.qualified for e in graph.upstream_edges(col)}
    without = {e.source.qualified for e in graph.upstream_edges(col, incremental=False)}
    assert with_incr - without == {"model.mini.stg_events.occurred_at"}


def test_trace_tree_marks_repeats_and_roots(graph: LineageGraph):
    tree = graph.trace(graph.column("user_activity.source_ids"), kinds={EdgeType.DIRECT})
    chain = []
    node = tree
    while node.steps:
        (step,) = node.steps
        chain.append((step.edges[0].subtype.value, graph.label(step.node.column)))
        node = step.node
    assert chain == [("AGGREGATION", "int_user_events.source_id"), ("IDENTITY", "stg_events.source_id"),
                     ("IDENTITY", "raw.events.source_id")]
    assert node.is_root

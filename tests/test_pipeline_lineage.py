"""The pipeline's lineage, model by model, written by hand from the SQL and checked against
`lineage-tools export --format json` after `dbt compile` alone (no warehouse tables).

Spec lines read `output <- node.column SUBTYPE [SUBTYPE...]`; `*` is a dataset-wide INDIRECT
input (WHERE, JOIN ON, GROUP BY of any CTE feeding the result); `!` marks a masking edge
(a count or a hash). `rows:` lists how input rows can change output rows they do not carry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.dbt

PKG = "provenance_pipeline"
KEEP_ACTIVE = """
    * <- data_sources.source_id FILTER
    * <- data_sources.status FILTER
    * <- {raw}.source_id FILTER
    rows: data_sources semi_join
"""

# Staging: renames and casts of one raw seed, filtered by keep_active_sources (a semi-join on the
# registry: its columns only filter).
STAGING = {
    "stg_users_web": ("raw_users_web", """
        account_id <- account_id IDENTITY
        email <- email TRANSFORMATION
        ip_address <- signup_ip IDENTITY
        country_code <- country TRANSFORMATION
        created_at <- created_at TRANSFORMATION
        source_id <- source_id IDENTITY"""),
    "stg_users_mobile": ("raw_users_mobile", """
        account_id <- account_id IDENTITY
        email <- email TRANSFORMATION
        ip_address <- signup_ip IDENTITY
        country_code <- country TRANSFORMATION
        device_os <- device_os TRANSFORMATION
        created_at <- created_at TRANSFORMATION
        source_id <- source_id IDENTITY"""),
    # case lower(trim(country_name)) when 'germany' then 'DE' ...: the values are literals, the
    # country name only decides which one
    "stg_users_partner": ("raw_users_partner", """
        account_id <- partner_user_ref IDENTITY
        email <- email_address TRANSFORMATION
        country_code <- country_name CONDITIONAL
        created_at <- registered_on TRANSFORMATION
        source_id <- source_id IDENTITY"""),
    "stg_spam_accounts": ("raw_spam_accounts", """
        account_id <- account_id IDENTITY
        reported_on <- reported_on TRANSFORMATION
        report_reason <- reason IDENTITY
        source_id <- source_id IDENTITY"""),
    "stg_spam_ips": ("raw_spam_ips", """
        ip_address <- ip_address TRANSFORMATION
        listed_on <- listed_on TRANSFORMATION
        source_id <- source_id IDENTITY"""),
    "stg_spam_scores": ("raw_spam_scores", """
        score_id <- score_id IDENTITY
        account_id <- account_id IDENTITY
        spam_score <- spam_score TRANSFORMATION
        scored_at <- scored_at TRANSFORMATION
        source_id <- source_id IDENTITY"""),
    "stg_id_merge_pairs": ("raw_id_merge_pairs", """
        pair_id <- pair_id IDENTITY
        account_id_a <- account_id_a IDENTITY
        account_id_b <- account_id_b IDENTITY
        match_score <- match_score TRANSFORMATION
        source_id <- source_id IDENTITY"""),
    "stg_job_search_labels": ("raw_job_search_labels", """
        label_id <- label_id IDENTITY
        account_id <- account_id IDENTITY
        labeller_id <- labeller_id IDENTITY
        is_job_seeker <- is_job_seeker TRANSFORMATION
        confidence <- confidence TRANSFORMATION
        labelled_at <- labelled_at TRANSFORMATION
        source_id <- source_id IDENTITY"""),
    "stg_user_events": ("raw_user_events", """
        event_id <- event_id IDENTITY
        account_id <- account_id IDENTITY
        event_type <- event_type IDENTITY
        event_at <- event_at TRANSFORMATION
        source_id <- source_id IDENTITY"""),
}

MODELS = {
    # ephemeral: three blocked kinds unioned; only the spam-score threshold filters
    "int_spam_blocklist": """
        blocked_value <- stg_spam_accounts.account_id IDENTITY
        blocked_value <- stg_spam_ips.ip_address IDENTITY
        blocked_value <- stg_spam_scores.account_id IDENTITY
        block_reason <- stg_spam_accounts.report_reason IDENTITY
        source_id <- stg_spam_accounts.source_id IDENTITY
        source_id <- stg_spam_ips.source_id IDENTITY
        source_id <- stg_spam_scores.source_id IDENTITY
        * <- stg_spam_scores.spam_score FILTER
    """,
    # union all of three feeds; null literals add no edges
    "int_users_unioned": """
        account_id <- stg_users_web.account_id IDENTITY
        account_id <- stg_users_mobile.account_id IDENTITY
        account_id <- stg_users_partner.account_id IDENTITY
        email <- stg_users_web.email IDENTITY
        email <- stg_users_mobile.email IDENTITY
        email <- stg_users_partner.email IDENTITY
        ip_address <- stg_users_web.ip_address IDENTITY
        ip_address <- stg_users_mobile.ip_address IDENTITY
        country_code <- stg_users_web.country_code IDENTITY
        country_code <- stg_users_mobile.country_code IDENTITY
        country_code <- stg_users_partner.country_code IDENTITY
        device_os <- stg_users_mobile.device_os IDENTITY
        created_at <- stg_users_web.created_at IDENTITY
        created_at <- stg_users_mobile.created_at IDENTITY
        created_at <- stg_users_partner.created_at IDENTITY
        source_id <- stg_users_web.source_id IDENTITY
        source_id <- stg_users_mobile.source_id IDENTITY
        source_id <- stg_users_partner.source_id IDENTITY
    """,
    # two correlated NOT EXISTS on the (ephemeral) blocklist: an anti-join, filter only
    "int_users_despammed": """
        account_id <- int_users_unioned.account_id IDENTITY
        email <- int_users_unioned.email IDENTITY
        ip_address <- int_users_unioned.ip_address IDENTITY
        country_code <- int_users_unioned.country_code IDENTITY
        device_os <- int_users_unioned.device_os IDENTITY
        created_at <- int_users_unioned.created_at IDENTITY
        source_id <- int_users_unioned.source_id IDENTITY
        * <- int_spam_blocklist.blocked_kind FILTER
        * <- int_spam_blocklist.blocked_value FILTER
        * <- int_users_unioned.account_id FILTER
        * <- int_users_unioned.ip_address FILTER
        rows: int_spam_blocklist anti_join
    """,
    # the group id is the least account id passed along the links (a min over the account and
    # its linked accounts per hop, grouped by account, so the link ends are GROUP_BY keys);
    # collect_sources is coalesce(bit_or(case when id is null then 0 else 1 << coalesce((select
    # source_bit from <registry> where source_id = id), error('... ' || id)) end), 0): the bit is
    # the registry's (AGGREGATION + CONDITIONAL), the id picks it (FILTER), is tested for NULL and
    # named in the error (AGGREGATION + CONDITIONAL); collect_source_masks, bit_or of masks:
    # AGGREGATION + CONDITIONAL
    "int_user_accounts": """
        account_id <- int_users_despammed.account_id IDENTITY
        user_id <- int_users_despammed.account_id AGGREGATION
        source_id <- int_users_despammed.source_id IDENTITY
        user_source_mask <- int_users_despammed.source_id AGGREGATION CONDITIONAL FILTER
        user_source_mask <- data_sources.source_bit AGGREGATION CONDITIONAL
        user_source_mask <- data_sources.source_id FILTER
        merge_source_mask <- stg_id_merge_pairs.source_id AGGREGATION CONDITIONAL FILTER
        merge_source_mask <- data_sources.source_bit AGGREGATION CONDITIONAL
        merge_source_mask <- data_sources.source_id FILTER
        * <- int_users_despammed.account_id FILTER GROUP_BY JOIN
        * <- stg_id_merge_pairs.account_id_a FILTER GROUP_BY JOIN
        * <- stg_id_merge_pairs.account_id_b FILTER GROUP_BY JOIN
        * <- stg_id_merge_pairs.match_score FILTER
        rows: int_users_despammed aggregate outer_join_optional semi_join
        rows: stg_id_merge_pairs aggregate outer_join_optional
        rows: data_sources scalar_subquery
    """,
    # votes: latest label per labeller (row_number = 1 filters on its window keys), majority
    # with the most confident label breaking ties (rank = 1 in the join condition); the user's
    # lists are read from its anchor account (account_id = user_id: a filter)
    "int_labels_resolved": """
        user_id <- int_user_accounts.user_id IDENTITY
        is_job_seeker <- stg_job_search_labels.is_job_seeker TRANSFORMATION CONDITIONAL
        n_votes_yes <- stg_job_search_labels.is_job_seeker CONDITIONAL
        vote_agreement <- stg_job_search_labels.is_job_seeker CONDITIONAL
        label_source_mask <- stg_job_search_labels.source_id AGGREGATION CONDITIONAL FILTER
        label_source_mask <- data_sources.source_bit AGGREGATION CONDITIONAL
        label_source_mask <- data_sources.source_id FILTER
        user_source_mask <- int_user_accounts.user_source_mask IDENTITY
        merge_source_mask <- int_user_accounts.merge_source_mask IDENTITY
        * <- int_user_accounts.account_id FILTER JOIN
        * <- int_user_accounts.user_id FILTER GROUP_BY JOIN
        * <- stg_job_search_labels.account_id JOIN
        * <- stg_job_search_labels.confidence JOIN
        * <- stg_job_search_labels.label_id FILTER JOIN
        * <- stg_job_search_labels.labelled_at FILTER JOIN
        * <- stg_job_search_labels.labeller_id FILTER
        * <- stg_job_search_labels.source_id FILTER
        rows: int_user_accounts aggregate window
        rows: stg_job_search_labels aggregate window
        rows: data_sources scalar_subquery
    """,
    # counts per account then per user: event_type only decides which events count
    "int_user_activity": """
        user_id <- int_user_accounts.user_id IDENTITY
        n_job_searches <- stg_user_events.event_type CONDITIONAL
        n_job_views <- stg_user_events.event_type CONDITIONAL
        n_apply_clicks <- stg_user_events.event_type CONDITIONAL
        n_profile_updates <- stg_user_events.event_type CONDITIONAL
        n_messages_sent <- stg_user_events.event_type CONDITIONAL
        first_event_at <- stg_user_events.event_at AGGREGATION
        last_event_at <- stg_user_events.event_at AGGREGATION
        active_span_days <- stg_user_events.event_at AGGREGATION
        event_source_mask <- stg_user_events.source_id AGGREGATION CONDITIONAL FILTER
        event_source_mask <- data_sources.source_bit AGGREGATION CONDITIONAL
        event_source_mask <- data_sources.source_id FILTER
        user_source_mask <- int_user_accounts.user_source_mask AGGREGATION CONDITIONAL
        merge_source_mask <- int_user_accounts.merge_source_mask AGGREGATION CONDITIONAL
        * <- int_user_accounts.account_id JOIN
        * <- int_user_accounts.user_id GROUP_BY
        * <- stg_user_events.account_id GROUP_BY JOIN
        * <- stg_user_events.source_id GROUP_BY
        rows: int_user_accounts aggregate
        rows: stg_user_events aggregate
        rows: data_sources scalar_subquery
    """,
    # one row per user: its first account (row_number over created_at, account_id) + roll-ups
    "int_users_merged": """
        user_id <- int_user_accounts.user_id IDENTITY
        primary_account_id <- int_users_despammed.account_id IDENTITY
        email <- int_users_despammed.email IDENTITY
        country_code <- int_users_despammed.country_code IDENTITY
        first_seen_at <- int_users_despammed.created_at AGGREGATION
        source_mask <- int_users_despammed.source_id AGGREGATION CONDITIONAL FILTER
        source_mask <- data_sources.source_bit AGGREGATION CONDITIONAL
        source_mask <- data_sources.source_id FILTER
        merge_source_mask <- int_user_accounts.merge_source_mask AGGREGATION CONDITIONAL
        * <- int_user_accounts.account_id JOIN
        * <- int_user_accounts.user_id FILTER GROUP_BY JOIN
        * <- int_users_despammed.account_id FILTER JOIN
        * <- int_users_despammed.created_at FILTER
        rows: int_user_accounts aggregate window
        rows: int_users_despammed aggregate window
        rows: data_sources scalar_subquery
    """,
    # features + label per user; coalesce(x, 0) both passes and decides; source_list(mask) lists
    # the registry's ids whose bit the mask has (a scalar subquery correlated with the mask): the
    # ids are the registry's values, the mask filters them (`check` reads it as provenance)
    "training_examples": """
        user_id <- int_users_merged.user_id IDENTITY
        country_code <- int_users_merged.country_code IDENTITY
        n_accounts <- int_users_merged.n_accounts IDENTITY
        tenure_days <- int_users_merged.first_seen_at TRANSFORMATION
        n_events <- int_user_activity.n_events TRANSFORMATION CONDITIONAL
        n_job_searches <- int_user_activity.n_job_searches TRANSFORMATION CONDITIONAL
        n_job_views <- int_user_activity.n_job_views TRANSFORMATION CONDITIONAL
        n_apply_clicks <- int_user_activity.n_apply_clicks TRANSFORMATION CONDITIONAL
        n_profile_updates <- int_user_activity.n_profile_updates TRANSFORMATION CONDITIONAL
        n_messages_sent <- int_user_activity.n_messages_sent TRANSFORMATION CONDITIONAL
        active_span_days <- int_user_activity.active_span_days TRANSFORMATION CONDITIONAL
        is_job_seeker <- int_labels_resolved.is_job_seeker IDENTITY
        label_agreement <- int_labels_resolved.vote_agreement IDENTITY
        split <- int_users_merged.user_id CONDITIONAL !
        source_ids <- int_users_merged.source_mask FILTER
        merge_source_ids <- int_users_merged.merge_source_mask FILTER
        event_source_ids <- int_user_activity.event_source_mask FILTER
        label_source_ids <- int_labels_resolved.label_source_mask FILTER
        source_ids <- data_sources.source_id AGGREGATION SORT CONDITIONAL
        source_ids <- data_sources.source_bit FILTER
        merge_source_ids <- data_sources.source_id AGGREGATION SORT CONDITIONAL
        merge_source_ids <- data_sources.source_bit FILTER
        event_source_ids <- data_sources.source_id AGGREGATION SORT CONDITIONAL
        event_source_ids <- data_sources.source_bit FILTER
        label_source_ids <- data_sources.source_id AGGREGATION SORT CONDITIONAL
        label_source_ids <- data_sources.source_bit FILTER
        * <- int_users_merged.user_id JOIN
        * <- int_labels_resolved.user_id JOIN
        * <- int_user_activity.user_id JOIN
        rows: int_user_activity outer_join_optional
        rows: data_sources scalar_subquery
    """,
    # per label source: agreement with the consensus, plus the registry's cost (left join); the
    # union of the labels' masks (bit_or), decoded (source_list, as in training_examples)
    "label_quality": """
        source_id <- stg_job_search_labels.source_id IDENTITY
        kind <- data_sources.kind IDENTITY
        vendor <- data_sources.vendor IDENTITY
        n_labellers <- stg_job_search_labels.labeller_id AGGREGATION !
        n_labels_compared <- stg_job_search_labels.is_job_seeker CONDITIONAL !
        n_labels_compared <- int_labels_resolved.is_job_seeker CONDITIONAL !
        n_labels_compared <- int_labels_resolved.user_id CONDITIONAL !
        agreement_rate <- stg_job_search_labels.is_job_seeker CONDITIONAL
        agreement_rate <- int_labels_resolved.is_job_seeker CONDITIONAL
        agreement_rate <- int_labels_resolved.user_id CONDITIONAL
        cost_usd <- data_sources.cost_usd TRANSFORMATION
        hours_to_acquire <- data_sources.hours_to_acquire IDENTITY
        cost_per_label <- data_sources.cost_usd TRANSFORMATION
        consensus_source_ids <- int_labels_resolved.label_source_mask FILTER
        user_source_ids <- int_labels_resolved.user_source_mask FILTER
        merge_source_ids <- int_labels_resolved.merge_source_mask FILTER
        consensus_source_ids <- data_sources.source_id AGGREGATION SORT CONDITIONAL
        consensus_source_ids <- data_sources.source_bit FILTER
        user_source_ids <- data_sources.source_id AGGREGATION SORT CONDITIONAL
        user_source_ids <- data_sources.source_bit FILTER
        merge_source_ids <- data_sources.source_id AGGREGATION SORT CONDITIONAL
        merge_source_ids <- data_sources.source_bit FILTER
        * <- stg_job_search_labels.account_id JOIN
        * <- stg_job_search_labels.source_id GROUP_BY JOIN
        * <- int_user_accounts.account_id JOIN
        * <- int_user_accounts.user_id JOIN
        * <- int_labels_resolved.user_id JOIN
        * <- data_sources.source_id JOIN
        rows: stg_job_search_labels aggregate
        rows: int_user_accounts aggregate outer_join_optional
        rows: int_labels_resolved aggregate outer_join_optional
        rows: data_sources outer_join_optional scalar_subquery
    """,
}

# source_inventory: rows per (model, source id) over a union of 15 models; the lists are
# exploded (unnest of a coalesce: TRANSFORMATION + CONDITIONAL), the masks decoded then exploded
# (the ids are the registry's, the mask filters them).
INVENTORY_SCALARS = ["stg_users_web", "stg_users_mobile", "stg_users_partner", "stg_spam_accounts",
                     "stg_spam_ips", "stg_spam_scores", "stg_id_merge_pairs", "stg_job_search_labels",
                     "stg_user_events", "int_users_despammed"]
INVENTORY_LISTS = {
    "int_users_merged": ["source_mask", "merge_source_mask"],
    "int_user_activity": ["event_source_mask", "user_source_mask", "merge_source_mask"],
    "int_labels_resolved": ["label_source_mask", "user_source_mask", "merge_source_mask"],
    "training_examples": ["source_ids", "merge_source_ids", "event_source_ids", "label_source_ids"],
    "label_quality": ["source_id", "consensus_source_ids", "user_source_ids", "merge_source_ids"],
}


def _inventory_spec() -> str:
    lines = ["""
        kind <- data_sources.kind IDENTITY
        vendor <- data_sources.vendor IDENTITY
        cost_usd <- data_sources.cost_usd TRANSFORMATION
        hours_to_acquire <- data_sources.hours_to_acquire IDENTITY
        acquired_on <- data_sources.acquired_on IDENTITY
        cost_per_row <- data_sources.cost_usd TRANSFORMATION
        source_id <- data_sources.source_id AGGREGATION SORT CONDITIONAL
        source_id <- data_sources.source_bit FILTER
        * <- data_sources.source_id JOIN GROUP_BY
        * <- data_sources.source_bit JOIN GROUP_BY
        rows: data_sources outer_join_optional scalar_subquery"""]
    for model in INVENTORY_SCALARS:
        lines += [f"source_id <- {model}.source_id IDENTITY", f"* <- {model}.source_id GROUP_BY JOIN",
                  f"rows: {model} aggregate"]
    for model, columns in INVENTORY_LISTS.items():
        for col in columns:
            kind = "FILTER" if col.endswith("_mask") else "TRANSFORMATION CONDITIONAL"
            lines += [f"source_id <- {model}.{col} {kind}", f"* <- {model}.{col} GROUP_BY JOIN"]
        lines.append(f"rows: {model} aggregate")
    return "\n".join(lines)


def _uid(name: str) -> str:
    kind = "seed" if name.startswith("raw_") or name == "data_sources" else "model"
    return f"{kind}.{PKG}.{name}"


def parse_spec(spec: str) -> tuple[set[tuple], set[tuple]]:
    """Spec text -> ({(target, source uid, source col, subtype, masking)}, {(uid, effect)})."""
    edges, rows = set(), set()
    for line in spec.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("rows:"):
            node, *effects = line[5:].split()
            rows |= {(_uid(node), e) for e in effects}
            continue
        target, rest = (p.strip() for p in line.split("<-"))
        source, *subtypes = rest.split()
        masking = "!" in subtypes
        node, col = source.rsplit(".", 1)
        for sub in (s for s in subtypes if s != "!"):
            edges.add((None if target == "*" else target, _uid(node), col, sub, masking))
    return edges, rows


def expected_lineage() -> dict[str, tuple[set[tuple], set[tuple]]]:
    out = {}
    for model, (raw, body) in STAGING.items():
        spec = "\n".join(f"{line.split('<-')[0].strip()} <- {raw}.{line.split('<-')[1].strip()}"
                         for line in body.strip().splitlines())
        out[model] = parse_spec(spec + KEEP_ACTIVE.format(raw=raw))
    for model, spec in MODELS.items():
        out[model] = parse_spec(spec)
    out["source_inventory"] = parse_spec(_inventory_spec())
    return out


def actual_lineage(doc: dict) -> dict[str, tuple[set[tuple], set[tuple]]]:
    names = {n["id"]: n["name"] for n in doc["nodes"]}
    out: dict[str, tuple[set, set]] = {}
    for n in doc["nodes"]:
        if n["type"] == "model":
            out[n["name"]] = (set(), {(r["node"], r["effect"]) for r in n["row_influences"]})
    for e in doc["edges"]:
        model = names[e["target"]["node"]]
        out[model][0].add((e["target"]["column"], e["source"]["node"], e["source"]["column"], e["subtype"], e["masking"]))
    return out


@pytest.fixture(scope="module")
def compiled_doc(compiled_pipeline: Path) -> dict:
    res = run_cli("export", "--format", "json", "--project-dir", str(compiled_pipeline), cwd=compiled_pipeline)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_every_pipeline_model_has_a_hand_written_expectation(compiled_doc: dict):
    models = {n["name"] for n in compiled_doc["nodes"] if n["type"] == "model"}
    assert models == set(expected_lineage())


@pytest.mark.parametrize("model", sorted(expected_lineage()))
def test_model_lineage_matches_the_sql(compiled_doc: dict, model: str):
    want_edges, want_rows = expected_lineage()[model]
    got_edges, got_rows = actual_lineage(compiled_doc)[model]
    assert sorted(got_edges - want_edges, key=str) == [], "unexpected edges"
    assert sorted(want_edges - got_edges, key=str) == [], "missing edges"
    assert got_rows == want_rows


def test_every_model_is_full_and_columns_have_file_lines(compiled_doc: dict):
    for n in compiled_doc["nodes"]:
        if n["type"] == "model":
            assert n["status"] == "FULL", (n["name"], n["reasons"])
            assert all(c["line"] for c in n["columns"]), (n["name"], n["columns"])
    assert compiled_doc["project"]["registry"] == f"seed.{PKG}.data_sources"
    blocklist = next(n for n in compiled_doc["nodes"] if n["name"] == "int_spam_blocklist")
    assert blocklist["materialized"] == "ephemeral"


def test_provenance_columns_reach_root_source_ids(compiled_doc: dict, compiled_pipeline: Path):
    """The marts' lists take their ids from the registry (DIRECT), filtered by a source mask: by
    lineage alone their values come from the registry; as provenance (`check`, `impact`) they
    carry the raw seeds' source_id, through the masks of the intermediate models."""
    from lineage_tools.graph import build_graph
    from lineage_tools.project import load_project
    from lineage_tools.provenance import Provenance
    from lineage_tools.records import ColumnRef

    node = next(n for n in compiled_doc["nodes"] if n["name"] == "training_examples")
    roots = {c["name"]: {(r["node"], r["column"]) for r in c["direct_roots"]} for c in node["columns"]}
    registry = {(f"seed.{PKG}.data_sources", "source_id")}
    for column in ("label_source_ids", "event_source_ids", "merge_source_ids", "source_ids"):
        assert roots[column] == registry, column
    assert roots["split"] == set()  # a hash decides it: no value flows

    prov = Provenance(build_graph(load_project(compiled_pipeline)))
    uid = f"model.{PKG}.training_examples"
    carried = {c: prov.provenance_roots(ColumnRef(uid, c)) for c in ("label_source_ids", "event_source_ids",
                                                                      "merge_source_ids", "source_ids")}
    assert carried["label_source_ids"] == {f"seed.{PKG}.raw_job_search_labels"}
    assert carried["event_source_ids"] == {f"seed.{PKG}.raw_user_events"}
    assert carried["merge_source_ids"] == {f"seed.{PKG}.raw_id_merge_pairs"}
    assert carried["source_ids"] == {f"seed.{PKG}.raw_users_{f}" for f in ("web", "mobile", "partner")}
    assert prov.provenance_columns(uid) == ("source_ids", "merge_source_ids", "event_source_ids", "label_source_ids")


def test_compile_alone_equals_build(compiled_doc: dict, built_pipeline: Path):
    res = run_cli("export", "--format", "json", "--project-dir", str(built_pipeline), cwd=built_pipeline)
    assert res.returncode == 0, res.stderr
    built = json.loads(res.stdout)
    compiled_doc = dict(compiled_doc, project=dict(compiled_doc["project"], manifest=None))
    built = dict(built, project=dict(built["project"], manifest=None))
    assert built == compiled_doc


def test_trace_on_the_pipeline(compiled_pipeline: Path):
    res = run_cli("trace", "training_examples.label_source_ids", "--direct-only", "--project-dir",
                  str(compiled_pipeline), cwd=compiled_pipeline)
    assert res.returncode == 0, res.stderr
    # the list is decoded from the labels' source mask by a subquery on the registry: the engine
    # reports what the SQL does (the registry's ids are the values, the mask filters them); the
    # provenance commands read the decode as the mask's ids (docs/provenance.md, "Source masks")
    assert res.stdout.splitlines() == [
        f"training_examples.label_source_ids  [model.{PKG}.training_examples]",
        "└── DIRECT AGGREGATION  data_sources.source_id  (root)",
    ]
    res = run_cli("trace", "training_examples.label_source_ids", "--all", "--project-dir",
                  str(compiled_pipeline), cwd=compiled_pipeline)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "├── INDIRECT FILTER  int_labels_resolved.label_source_mask" in lines
    assert any(ln.endswith("DIRECT IDENTITY  raw_job_search_labels.source_id  (root)") for ln in lines)

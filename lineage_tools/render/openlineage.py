"""OpenLineage RunEvents, one per model (`lineage-tools export --format openlineage`).

JSON Lines: each line a COMPLETE RunEvent (spec 2-0-2) whose output dataset is named like the
model's relation (``database.schema.identifier``) and carries a ``columnLineage`` facet (1-2-0):
per output field ``inputFields`` (DIRECT edges and field-level INDIRECT ones such as CONDITIONAL
and WINDOW, several transformations per input field when an input both flows and decides) and a
dataset-wide ``dataset`` list (FILTER, JOIN, GROUP_BY, SORT). Inputs carry a ``schema`` facet.

Deterministic: run ids are uuid5 of (namespace, unique_id), the event time is fixed by the
caller (default: the manifest's generation time), keys and lists are sorted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from .. import __version__
from ..graph import DATASET, LineageGraph
from ..records import GraphEdge, ModelLineage, Node
from ..sql import plain_name

PRODUCER = f"https://github.com/lineage-tools/lineage-tools/tree/{__version__}"
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
COLUMN_LINEAGE_SCHEMA = "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet"
SCHEMA_FACET = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
JOB_TYPE_FACET = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
SQL_FACET = "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet"
# Our own run facet (custom facets are named with a prefix and point at their own schema).
STATUS_FACET = "https://github.com/lineage-tools/lineage-tools/blob/main/docs/cli.md#lineagetools_status"
DEFAULT_EVENT_TIME = "1970-01-01T00:00:00Z"


def default_namespace(graph: LineageGraph) -> str:
    """`<adapter>://<project>`: stable across machines (the DuckDB file path is not)."""
    return f"{graph.project.adapter_type}://{graph.project.project_name}"


def _facet(schema: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema, **fields}


def _transformation(e: GraphEdge) -> dict[str, Any]:
    t: dict[str, Any] = {"type": e.type.value, "subtype": e.subtype.value, "masking": e.masking}
    if e.incremental_only:
        t["description"] = "only when the model runs incrementally (is_incremental())"
    return t


def _input_fields(graph: LineageGraph, namespace: str, edges: Iterable[GraphEdge]) -> list[dict[str, Any]]:
    grouped: dict[tuple[str, str], list[GraphEdge]] = {}
    for e in edges:
        grouped.setdefault((e.source.relation, e.source.column), []).append(e)
    out = []
    for (uid, column), es in sorted(grouped.items(), key=lambda kv: (_dataset_name(graph, kv[0][0]), kv[0][1])):
        transformations = sorted({json.dumps(_transformation(e), sort_keys=True) for e in es})
        out.append({
            "namespace": namespace,
            "name": _dataset_name(graph, uid),
            "field": column,
            "transformations": [json.loads(t) for t in transformations],
        })
    return out


def _dataset_name(graph: LineageGraph, uid: str) -> str:
    """The dataset's plain dotted name (`db.schema.table`, no SQL quoting)."""
    n = graph.nodes.get(uid)
    return plain_name(n.relation, graph.project.dialect) if n else uid


def _schema(graph: LineageGraph, n: Node) -> dict[str, Any]:
    types = {c.lower(): t for c, t in n.columns}
    fields = []
    for i, c in enumerate(graph.columns(n.unique_id), 1):
        f: dict[str, Any] = {"name": c, "ordinal_position": i}
        if types.get(c.lower()):
            f["type"] = types[c.lower()]
        fields.append(f)
    return _facet(SCHEMA_FACET, fields=fields)


def event(graph: LineageGraph, ml: ModelLineage, *, namespace: str, event_time: str) -> dict[str, Any]:
    """One COMPLETE RunEvent for a model, with its column lineage facet."""
    n = ml.node
    uid = n.unique_id
    edges = list(graph.model_edges(uid))
    fields = {}
    for c in graph.columns(uid):
        own = [e for e in edges if e.target.column == c]
        fields[c] = {"inputFields": _input_fields(graph, namespace, own)}
    dataset_wide = _input_fields(graph, namespace, [e for e in edges if e.target.column == DATASET])
    inputs = sorted({e.source.relation for e in edges} | {d for d in n.depends_on if d in graph.nodes})
    inputs = [u for u in inputs if u != uid]
    job_facets: dict[str, Any] = {
        "jobType": _facet(JOB_TYPE_FACET, processingType="BATCH", integration="DBT",
                          jobType=n.resource_type.upper()),
    }
    if n.compiled_sql:
        job_facets["sql"] = _facet(SQL_FACET, query=n.compiled_sql)
    return {
        "eventType": "COMPLETE",
        "eventTime": event_time,
        "producer": PRODUCER,
        "schemaURL": SPEC,
        "run": {
            "runId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{uid}")),
            "facets": {
                "lineagetools_status": _facet(
                    STATUS_FACET,
                    status=ml.status.value,
                    reasons=[{"code": r.code.value, "message": r.message, "line": r.line} for r in ml.lineage.reasons],
                ),
            },
        },
        "job": {"namespace": namespace, "name": f"{n.package_name or graph.project.project_name}.{n.name}",
                "facets": job_facets},
        "inputs": [
            {"namespace": namespace, "name": _dataset_name(graph, u), "facets": {"schema": _schema(graph, graph.nodes[u])}}
            for u in inputs if u in graph.nodes
        ],
        "outputs": [{
            "namespace": namespace,
            "name": _dataset_name(graph, uid),
            "facets": {
                "schema": _schema(graph, n),
                "columnLineage": _facet(COLUMN_LINEAGE_SCHEMA, fields=fields, dataset=dataset_wide),
            },
        }],
    }


def events(graph: LineageGraph, *, namespace: str | None = None, event_time: str | None = None) -> list[dict[str, Any]]:
    """One RunEvent per model and snapshot, in DAG order."""
    ns = namespace or default_namespace(graph)
    t = event_time or DEFAULT_EVENT_TIME
    return [event(graph, ml, namespace=ns, event_time=t) for ml in graph.project.models]


def render(graph: LineageGraph, *, namespace: str | None = None, event_time: str | None = None) -> str:
    """JSON Lines: one RunEvent per line."""
    return "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n"
                   for e in events(graph, namespace=namespace, event_time=event_time))

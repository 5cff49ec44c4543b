"""A JSON Schema for the OpenLineage RunEvents `export --format openlineage` writes.

No package on the registry ships OpenLineage's published JSON schemas (checked: openlineage-python
1.54, openlineage-integration-common, openlineage-dbt, openlineage-sql: they carry generated
Python classes, not OpenLineage.json / ColumnLineageDatasetFacet.json), and files fetched from
public repositories may not be committed here. So this schema is written by hand from the
client's generated classes (openlineage.client.event_v2 and openlineage.client.generated.*,
spec 2-0-2, facets ColumnLineageDatasetFacet 1-2-0, SchemaDatasetFacet 1-2-0,
JobTypeJobFacet 2-0-4, SQLJobFacet 1-1-0): required attributes are the ones without defaults,
types and enums as documented there; facets require `_producer` and `_schemaURL` (BaseFacet).
"""

from __future__ import annotations

_URI = {"type": "string", "format": "uri", "minLength": 1}

BASE_FACET = {
    "type": "object",
    "required": ["_producer", "_schemaURL"],
    "properties": {"_producer": _URI, "_schemaURL": _URI},
}

TRANSFORMATION = {
    "type": "object",
    "required": ["type"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": ["DIRECT", "INDIRECT"]},
        "subtype": {"enum": ["IDENTITY", "TRANSFORMATION", "AGGREGATION", "JOIN", "GROUP_BY", "FILTER", "SORT",
                             "WINDOW", "CONDITIONAL"]},
        "description": {"type": "string"},
        "masking": {"type": "boolean"},
    },
}

INPUT_FIELD = {
    "type": "object",
    "required": ["namespace", "name", "field"],
    "additionalProperties": False,
    "properties": {
        "namespace": {"type": "string"},
        "name": {"type": "string"},
        "field": {"type": "string"},
        "transformations": {"type": "array", "items": TRANSFORMATION},
    },
}

COLUMN_LINEAGE = {
    "allOf": [BASE_FACET, {
        "type": "object",
        "required": ["fields"],
        "properties": {
            "fields": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["inputFields"],
                    "additionalProperties": False,
                    "properties": {
                        "inputFields": {"type": "array", "items": INPUT_FIELD},
                        "transformationDescription": {"type": "string"},
                        "transformationType": {"type": "string"},
                    },
                },
            },
            "dataset": {"type": "array", "items": INPUT_FIELD},
        },
    }],
}

SCHEMA_FIELD = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "type": {"type": "string"},
        "description": {"type": "string"},
        "ordinal_position": {"type": "integer"},
        "fields": {"type": "array"},
    },
}

SCHEMA_FACET = {"allOf": [BASE_FACET, {"type": "object",
                                       "properties": {"fields": {"type": "array", "items": SCHEMA_FIELD}}}]}

JOB_TYPE_FACET = {"allOf": [BASE_FACET, {
    "type": "object",
    "required": ["processingType", "integration"],
    "properties": {"processingType": {"enum": ["BATCH", "STREAMING"]}, "integration": {"type": "string"},
                   "jobType": {"type": "string"}},
}]}

SQL_FACET = {"allOf": [BASE_FACET, {"type": "object", "required": ["query"],
                                    "properties": {"query": {"type": "string"}}}]}

DATASET = {
    "type": "object",
    "required": ["namespace", "name"],
    "properties": {
        "namespace": {"type": "string"},
        "name": {"type": "string"},
        "facets": {
            "type": "object",
            "properties": {"schema": SCHEMA_FACET, "columnLineage": COLUMN_LINEAGE},
            "additionalProperties": BASE_FACET,
        },
        "inputFacets": {"type": "object", "additionalProperties": BASE_FACET},
        "outputFacets": {"type": "object", "additionalProperties": BASE_FACET},
    },
}

RUN_EVENT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time", "pattern": "[Tt]"},
        "producer": _URI,
        "schemaURL": _URI,
        "run": {
            "type": "object",
            "required": ["runId"],
            "properties": {
                "runId": {"type": "string", "format": "uuid",
                          "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
                "facets": {"type": "object", "additionalProperties": BASE_FACET},
            },
        },
        "job": {
            "type": "object",
            "required": ["namespace", "name"],
            "properties": {
                "namespace": {"type": "string"},
                "name": {"type": "string"},
                "facets": {
                    "type": "object",
                    "properties": {"jobType": JOB_TYPE_FACET, "sql": SQL_FACET},
                    "additionalProperties": BASE_FACET,
                },
            },
        },
        "inputs": {"type": "array", "items": DATASET},
        "outputs": {"type": "array", "items": DATASET},
    },
}

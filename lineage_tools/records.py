"""Records shared by every layer: frozen dataclasses and enums, no behaviour.

Data flows one way (manifest -> SQL -> lineage -> graph -> checks -> reports -> CLI) and these
records are what flows. The vocabulary of edge types is OpenLineage's column lineage facet:
DIRECT (IDENTITY, TRANSFORMATION, AGGREGATION) and INDIRECT (JOIN, GROUP_BY, FILTER, SORT,
WINDOW, CONDITIONAL).

>>> Subtype.WINDOW.type
<EdgeType.INDIRECT: 'INDIRECT'>
>>> ColumnRef("main.users", "id").qualified
'main.users.id'
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class EdgeType(str, Enum):
    """OpenLineage transformation type: does the input's value flow, or only influence?"""

    DIRECT = "DIRECT"
    INDIRECT = "INDIRECT"


class Subtype(str, Enum):
    """OpenLineage transformation subtype; `.type` gives the matching EdgeType."""

    IDENTITY = "IDENTITY"
    TRANSFORMATION = "TRANSFORMATION"
    AGGREGATION = "AGGREGATION"
    JOIN = "JOIN"
    GROUP_BY = "GROUP_BY"
    FILTER = "FILTER"
    SORT = "SORT"
    WINDOW = "WINDOW"
    CONDITIONAL = "CONDITIONAL"

    @property
    def type(self) -> EdgeType:
        if self in (Subtype.IDENTITY, Subtype.TRANSFORMATION, Subtype.AGGREGATION):
            return EdgeType.DIRECT
        return EdgeType.INDIRECT


class Status(str, Enum):
    """How complete a model's lineage is. Nothing is dropped silently."""

    FULL = "FULL"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"


class ReasonCode(str, Enum):
    """Why a model's lineage is not FULL (or a notable fact about it)."""

    PARSE_ERROR = "parse_error"
    UNKNOWN_COLUMN = "unknown_column"  # not in a partial column list: traced as written
    UNRESOLVED_COLUMN = "unresolved_column"  # resolves to no column of any relation: no edge
    UNKNOWN_TABLE = "unknown_table"
    UNEXPANDED_STAR = "unexpanded_star"
    PYTHON_MODEL = "python_model"
    TIME_BUDGET = "time_budget_exceeded"
    UNSUPPORTED = "unsupported_construct"
    NO_COMPILED_SQL = "no_compiled_sql"
    DUPLICATE_COLUMN = "duplicate_column"
    INCREMENTAL_ONLY = "incremental_only_lineage"
    NOT_RENDERED = "incremental_branch_not_rendered"  # dbt could not render is_incremental() true
    INTROSPECTIVE = "introspective_macro"  # a macro read the warehouse at compile time and found nothing
    EXEMPT = "exempt"  # the project exempts the model: `meta: {lineage: {exempt: "why"}}`


class RowEffect(str, Enum):
    """Ways a row of an input relation can change or remove an output row that does not carry it.

    `impact` uses these to decide between filtering tainted rows and rebuilding a model.
    """

    AGGREGATE = "aggregate"  # the input's rows are grouped / aggregated
    WINDOW = "window"  # a window function or ranking runs over the input's rows
    DISTINCT = "distinct"  # DISTINCT, DISTINCT ON, UNION (distinct)
    SET_DIFFERENCE = "set_difference"  # right side of EXCEPT, either side of INTERSECT
    SEMI_JOIN = "semi_join"  # IN (subquery), EXISTS, semi join
    ANTI_JOIN = "anti_join"  # NOT IN, NOT EXISTS, anti join
    OUTER_JOIN_OPTIONAL = "outer_join_optional"  # the optional side of an outer join
    SCALAR_SUBQUERY = "scalar_subquery"  # a scalar subquery reads the input
    LIMIT = "limit"  # ORDER BY ... LIMIT (or LIMIT alone) over the input's rows


@dataclass(frozen=True, order=True)
class ColumnRef:
    """A column of a relation. `relation` is a normalized dotted name or a dbt unique_id."""

    relation: str
    column: str

    @property
    def qualified(self) -> str:
        return f"{self.relation}.{self.column}"


@dataclass(frozen=True, order=True)
class ColumnEdge:
    """One input column feeding one output column of a statement (or the whole output).

    `target` is the output column name, or None for a dataset-wide INDIRECT input (a WHERE,
    JOIN ON, GROUP BY or ORDER BY column that influences every row), which OpenLineage
    puts in the facet's `dataset` list.
    """

    target: str | None
    source: ColumnRef
    subtype: Subtype
    masking: bool = False
    incremental_only: bool = False

    @property
    def type(self) -> EdgeType:
        return self.subtype.type


@dataclass(frozen=True, order=True)
class RowInfluence:
    """Rows of `relation` reach the output through `effect` (see RowEffect)."""

    relation: str
    effect: RowEffect


@dataclass(frozen=True)
class Reason:
    """Why lineage is incomplete, with where it happened when known (1-based line)."""

    code: ReasonCode
    message: str
    line: int | None = None
    column: str | None = None


@dataclass(frozen=True)
class StatementLineage:
    """The lineage of one SQL statement (one model): the engine's single result.

    Relations in `edges` and `row_influences` are normalized dotted names as they appear
    in the SQL (see `sql.normalize_relation`); the project layer maps them to dbt nodes.
    """

    columns: tuple[str, ...]
    edges: tuple[ColumnEdge, ...]
    row_influences: tuple[RowInfluence, ...] = ()
    status: Status = Status.FULL
    reasons: tuple[Reason, ...] = ()
    target: str | None = None  # written table for CREATE/INSERT statements, when known
    column_lines: tuple[tuple[str, int], ...] = ()  # output column -> 1-based line of its expression

    def edges_of(self, column: str) -> tuple[ColumnEdge, ...]:
        return tuple(e for e in self.edges if e.target == column)

    @property
    def dataset_edges(self) -> tuple[ColumnEdge, ...]:
        return tuple(e for e in self.edges if e.target is None)


@dataclass(frozen=True)
class Node:
    """A dbt node as lineage needs it: models, seeds, sources, snapshots."""

    unique_id: str
    name: str
    resource_type: str  # model | seed | source | snapshot
    relation: str  # normalized dotted relation name, e.g. "pipeline.main.stg_users"
    database: str | None
    schema: str | None
    identifier: str
    original_file_path: str | None = None
    materialized: str | None = None
    language: str = "sql"
    compiled_sql: str | None = None
    raw_sql: str | None = None
    depends_on: tuple[str, ...] = ()
    columns: tuple[tuple[str, str | None], ...] = ()  # declared (name, type) in order
    meta: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = ()
    package_name: str | None = None
    source_name: str | None = None  # sources: the `sources:` entry name (lookup as source_name.table)
    config: tuple[tuple[str, str], ...] = ()  # config values lineage needs (snapshot strategy, keys)
    incremental_sql: str | None = None  # incremental models: SQL compiled with is_incremental() true
    relation_name: str | None = None  # the relation as dbt writes it in SQL (manifest `relation_name`)

    @property
    def is_root_candidate(self) -> bool:
        return self.resource_type in ("seed", "source")

    def meta_value(self, key: str) -> str | None:
        return dict(self.meta).get(key)


@dataclass(frozen=True)
class ModelLineage:
    """A dbt node's lineage: its statement lineage with inputs mapped to node unique_ids."""

    node: Node
    lineage: StatementLineage

    @property
    def status(self) -> Status:
        return self.lineage.status


@dataclass(frozen=True)
class GraphEdge:
    """An edge across models: `source` column feeds `target` column (None: whole dataset)."""

    source: ColumnRef  # relation = unique_id of the upstream node
    target: ColumnRef  # relation = unique_id of the downstream node; column "" = whole dataset
    subtype: Subtype
    masking: bool = False
    incremental_only: bool = False

    @property
    def type(self) -> EdgeType:
        return self.subtype.type


@dataclass(frozen=True)
class Finding:
    """A provenance contract violation (or warning) found by `check`."""

    model: str
    column: str | None
    rule: str
    message: str
    severity: str = "error"  # error | warning
    root: str | None = None
    path: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class ProjectLineage:
    """Every node of a project with its lineage, in DAG order."""

    project_name: str
    adapter_type: str
    dialect: str
    nodes: tuple[Node, ...]
    models: tuple[ModelLineage, ...]
    registry: str | None = None  # unique_id of the node with meta provenance: registry
    manifest_path: str | None = None

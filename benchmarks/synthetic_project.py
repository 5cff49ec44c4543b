"""Generate a synthetic dbt project on DuckDB for the lineage benchmarks.

    python benchmarks/synthetic_project.py --models 1000 --out /tmp/synth/p1000 [--seed 7]
        [--threads 2] [--no-compile]

The project has N models (staging / intermediate / marts) over seeds whose rows carry a
`source_id`, in layers with realistic fan-in and a DAG depth of 10 or more, 10 to 60 columns per
relation, and the construct mix the lineage engine handles: import CTEs, joins with ON and USING,
UNION ALL, aggregates (with HAVING), windows, `*` with EXCLUDE / REPLACE, IN / EXISTS / scalar
subqueries, CASE, casts. Provenance follows the pipeline's contract: row-preserving models carry
`source_id`, joins keep both sides' provenance (merged into `source_ids` by a macro when there are
too many), aggregations and unions collect `source_ids` through macros.

Like real projects (e.g. one of 1,058 models with 15 incremental models and 58 staging models
over undeclared sources), it also has incremental models (6% of all models, chosen among the
intermediate and mart tables, each with an `is_incremental()` branch that reads `{{ this }}`), raw relations declared
as dbt sources without columns (loaded from CSV files by an `on-run-start` hook; their staging
models name the columns they read), and a package-style macro (`synth_utils.safe_divide`, a
dispatched macro of a local package under `dbt_packages/`).

The output is deterministic for a given (models, seed). Besides the dbt project it writes
`synthetic_schema.json` (every relation's columns and types, the ground truth of the generator)
and `synthetic_meta.json` (counts, DAG depth, construct mix). Unless `--no-compile`, it runs
`dbt compile` (DuckDB, `DO_NOT_TRACK=1`, the project's own profiles.yml) and records the time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PROJECT_NAME = "synthetic"
DATABASE = "synthetic"  # dbt-duckdb names the database after the file: target/synthetic.duckdb
SCHEMA = "main"
N_INTERMEDIATE_LAYERS = 9  # staging (1) + 9 intermediate + marts (1) + seeds (0): depth 11

TYPES = ("integer", "double", "varchar", "boolean", "date", "timestamp")
TYPE_WEIGHTS = (2, 4, 4, 1, 1, 1)
WORDS = {
    "integer": ("clicks", "views", "age", "sessions", "applications", "logins", "tenure", "visits"),
    "double": ("score", "amount", "rating", "spend", "confidence", "latency", "ratio", "weight"),
    "varchar": ("country", "city", "channel", "device", "plan", "vendor", "status", "title"),
    "boolean": ("is_active", "is_verified", "is_paid", "is_mobile", "is_flagged"),
    "date": ("signup_date", "last_seen_date", "birth_date", "label_date"),
    "timestamp": ("created_at", "updated_at", "scored_at", "event_at"),
}
NOUNS = ("users", "events", "labels", "scores", "sessions", "profiles", "jobs", "clicks",
         "accounts", "devices", "pairs", "transcripts", "payments", "searches")
KINDS = ("star", "transform", "join_on", "join_using", "multi_join", "union", "aggregate",
         "window", "semi_filter", "scalar_filter")
KIND_WEIGHTS = (12, 18, 14, 9, 5, 7, 12, 9, 8, 6)
GENERATOR_VERSION = 5  # bump when the output changes: ensure_project regenerates
MAX_PROVENANCE = 3  # more provenance columns than this are merged into one `source_ids`
INCREMENTAL_SHARE = 0.06  # of all models, chosen among the intermediate and mart tables
SOURCE_SHARE = 0.25  # of the raw relations: dbt sources without declared columns instead of seeds
PACKAGE = "synth_utils"


@dataclass(frozen=True)
class Col:
    name: str
    type: str
    prov: str | None = None  # None | "scalar" (a source_id) | "list" (source_ids)


@dataclass
class Rel:
    name: str
    layer: int
    cols: list[Col]
    kind: str = "seed"  # seed | source | staging | a model kind
    folder: str = ""
    materialized: str = "table"
    parents: list[str] = field(default_factory=list)

    @property
    def prov(self) -> list[Col]:
        return [c for c in self.cols if c.prov]

    @property
    def values(self) -> list[Col]:
        return [c for c in self.cols if not c.prov and c.name != "user_id"]

    def of_type(self, *types: str) -> list[Col]:
        return [c for c in self.values if c.type in types]


class Names:
    """Fresh column names inside one relation: `score_3`, `country_7`, ..."""

    def __init__(self, rng: random.Random, taken: set[str] | None = None):
        self.rng = rng
        self.taken = set(taken or ())
        self.n = 0

    def fresh(self, type_: str) -> str:
        word = self.rng.choice(WORDS.get(type_) or WORDS["integer"])
        while True:
            self.n += 1
            name = f"{word}_{self.n}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def keep_or_rename(self, name: str, type_: str) -> str:
        if name not in self.taken:
            self.taken.add(name)
            return name
        return self.fresh(type_)


# --- expressions by type ----------------------------------------------------------------------

def transform_expr(rng: random.Random, col: str, type_: str, rel: Rel) -> tuple[str, str]:
    """An expression over `col` and its result type (kept valid DuckDB)."""
    nums = [c.name for c in rel.of_type("double", "integer") if c.name != col]
    if type_ in ("bigint", "hugeint"):
        type_ = "integer"
    if type_ == "double":
        choices = [(f"round({col} * 1.1, 2)", "double"), (f"coalesce({col}, 0)", "double"),
                   (f"abs({col})", "double")]
        if nums:
            other = rng.choice(nums)
            choices.append((f"{col} + coalesce({other}, 0)", "double"))
        return rng.choice(choices)
    if type_ == "integer":
        return rng.choice([(f"cast({col} as integer) + 1", "integer"),
                           (f"cast({col} as double) / 2", "double"),
                           (f"coalesce(cast({col} as integer), 0)", "integer")])
    if type_ == "varchar":
        return rng.choice([(f"lower({col})", "varchar"), (f"trim({col})", "varchar"),
                           (f"coalesce({col}, 'unknown')", "varchar"),
                           (f"concat({col}, '_v2')", "varchar"), (f"length({col})", "bigint")])
    if type_ == "boolean":
        return rng.choice([(f"not {col}", "boolean"), (f"coalesce({col}, false)", "boolean")])
    if type_ == "date":
        return rng.choice([(f"coalesce({col}, date '2020-01-01')", "date"),
                           (f"extract(year from {col})", "bigint")])
    return rng.choice([(f"date_trunc('day', {col})", "timestamp"), (f"cast({col} as date)", "date")])


def case_expr(rng: random.Random, rel: Rel, prefix: str = "") -> tuple[str, str] | None:
    """A CASE over columns of `rel` (with an optional `alias.` prefix) and its type."""
    nums = rel.of_type("double", "integer")
    bools = rel.of_type("boolean")
    texts = rel.of_type("varchar")
    options = []
    if nums:
        n = rng.choice(nums).name
        options.append((f"case when {prefix}{n} > 100 then 'high' when {prefix}{n} > 0 then 'mid' "
                        f"else 'low' end", "varchar"))
    if bools and nums:
        b, n = rng.choice(bools).name, rng.choice(nums).name
        options.append((f"case when {prefix}{b} then {prefix}{n} else 0 end", "double"))
    if texts and nums:
        t, n = rng.choice(texts).name, rng.choice(nums).name
        options.append((f"case {prefix}{t} when 'a' then {prefix}{n} when 'b' then -{prefix}{n} "
                        f"else null end", "double"))
    return rng.choice(options) if options else None


def prov_macro(scalars: list[str], lists: list[str]) -> str:
    return f"{{{{ merge_sources({scalars!r}, {lists!r}) }}}}"


def collect_macro(scalars: list[str], lists: list[str]) -> str:
    return f"{{{{ collect_sources({scalars!r}, {lists!r}) }}}}"


def sql_list(items: list[str], indent: str = "        ") -> str:
    return (",\n" + indent).join(items)


# --- the generator ----------------------------------------------------------------------------

class Generator:
    def __init__(self, n_models: int, seed: int):
        if n_models < 12:
            raise ValueError("--models must be at least 12 (depth 10 needs layers)")
        self.rng = random.Random(seed)
        self.n_models = n_models
        self.rels: dict[str, Rel] = {}
        self.layers: list[list[str]] = []
        self.sql: dict[str, str] = {}
        self.kinds: Counter[str] = Counter()

    # seeds and staging ----------------------------------------------------------------------
    def make_seeds(self, n_seeds: int) -> None:
        names = []
        for i in range(n_seeds):
            rng = self.rng
            name = f"raw_{rng.choice(NOUNS)}_{i + 1}"
            namer = Names(rng, {"user_id", "source_id"})
            cols = [Col("user_id", "integer"), Col("source_id", "varchar", "scalar")]
            for _ in range(rng.randint(8, 38)):
                t = rng.choices(TYPES, TYPE_WEIGHTS)[0]
                cols.append(Col(namer.fresh(t), t))
            self.rels[name] = Rel(name, 0, cols)
            names.append(name)
        n_sources = max(1, int(len(names) * SOURCE_SHARE))
        for name in self.rng.sample(names, n_sources):
            self.rels[name].kind = "source"
        self.layers.append(names)

    def make_staging(self) -> None:
        names = []
        for seed in self.layers[0]:
            src = self.rels[seed]
            name = "stg_" + seed.removeprefix("raw_")
            items, cols = ["user_id", "source_id"], [Col("user_id", "integer"), src.cols[1]]
            for c in src.values:
                if self.rng.random() < 0.3:
                    expr, t = transform_expr(self.rng, c.name, c.type, src)
                    items.append(f"{expr} as {c.name}")
                    cols.append(Col(c.name, t))
                else:
                    items.append(c.name)
                    cols.append(c)
            if src.kind == "source":  # columns undeclared: the import CTE names what it reads
                read = (f"    select\n        {sql_list([c.name for c in src.cols])}\n"
                        f"    from {{{{ source('raw', '{seed}') }}}}")
            else:
                read = f"    select * from {{{{ ref('{seed}') }}}}"
            sql = (
                f"with source as (\n\n{read}\n\n),\n\n"
                f"renamed as (\n\n    select\n        {sql_list(items)}\n    from source\n"
                f"    where {{{{ not_excluded('source_id') }}}}\n\n)\n\nselect * from renamed\n"
            )
            self.add(Rel(name, 1, cols, "staging", "staging", "view", [seed]), sql)
            names.append(name)
        self.layers.append(names)

    def add(self, rel: Rel, sql: str) -> None:
        self.rels[rel.name] = rel
        self.sql[rel.name] = sql
        self.kinds[rel.kind] += 1

    # picking parents ------------------------------------------------------------------------
    def pick_parents(self, layer: int, k: int) -> list[Rel]:
        first = self.rng.choice(self.layers[layer - 1])
        chosen = [first]
        pool = [n for lay in self.layers[max(1, layer - 4):layer] for n in lay]
        while len(chosen) < k and len(chosen) < len(pool):
            cand = self.rng.choice(pool)
            if cand not in chosen:
                chosen.append(cand)
        return [self.rels[c] for c in chosen]

    def target_width(self) -> int:
        return self.rng.randint(10, 60)

    # model kinds ----------------------------------------------------------------------------
    def model(self, name: str, layer: int, folder: str) -> None:
        kind = self.rng.choices(KINDS, KIND_WEIGHTS)[0]
        fan_in = {"join_on": 2, "join_using": 2, "multi_join": self.rng.randint(3, 4),
                  "union": self.rng.randint(2, 3), "semi_filter": 2, "scalar_filter": 2}.get(kind, 1)
        parents = self.pick_parents(layer, fan_in)
        if len(parents) < fan_in or (kind == "union" and len(parents[0].values) < 8):
            kind, parents = "transform", parents[:1]
        build = getattr(self, f"kind_{kind}")
        cols, body = build(parents)
        materialized = "view" if folder == "staging" else "table"
        if folder == "intermediate" and self.rng.random() < 0.02:
            materialized = "ephemeral"
        rel = Rel(name, layer, cols, kind, folder, materialized, [p.name for p in parents])
        imports = ",\n\n".join(
            f"{p.name} as (\n\n    select * from {{{{ ref('{p.name}') }}}}\n\n)" for p in parents
        )
        self.add(rel, f"with {imports},\n\n{body}\n\nselect * from final\n")

    def kind_star(self, parents: list[Rel]) -> tuple[list[Col], str]:
        p = parents[0]
        vals = p.values
        n_ex = max(0, min(len(vals) - 8, self.rng.randint(0, 3)))
        excluded = self.rng.sample(vals, n_ex)
        replaceable = [c for c in vals if c not in excluded and c.type in ("double", "varchar")]
        replaced = self.rng.sample(replaceable, min(len(replaceable), self.rng.randint(0, 2)))
        star = "*"
        if excluded:
            star += f" exclude ({', '.join(c.name for c in excluded)})"
        repl = {}
        for c in replaced:
            expr, t = transform_expr(self.rng, c.name, c.type, p)
            if t == c.type:
                repl[c.name] = expr
        if repl:
            star += f" replace ({', '.join(f'{e} as {n}' for n, e in repl.items())})"
        cols = [c for c in p.cols if c not in excluded]
        body = (f"final as (\n\n    select {star}\n    from {p.name}\n"
                f"    where user_id is not null\n\n)")
        return cols, body

    def kind_transform(self, parents: list[Rel]) -> tuple[list[Col], str]:
        p = parents[0]
        width = self.target_width()
        namer = Names(self.rng, {c.name for c in p.cols})
        items = ["user_id"] + [c.name for c in p.prov]
        cols = [Col("user_id", "integer")] + p.prov
        vals = p.values[:]
        self.rng.shuffle(vals)
        for c in vals:
            if len(cols) >= width:
                break
            if self.rng.random() < 0.4:
                expr, t = transform_expr(self.rng, c.name, c.type, p)
                out = namer.fresh(t) if self.rng.random() < 0.5 else c.name
                items.append(f"{expr} as {out}")
                cols.append(Col(out, t))
            else:
                items.append(c.name)
                cols.append(c)
        while len(cols) < 10:  # narrow parent: derive more columns
            c = self.rng.choice(p.values)
            expr, t = transform_expr(self.rng, c.name, c.type, p)
            out = namer.fresh(t)
            items.append(f"{expr} as {out}")
            cols.append(Col(out, t))
        for _ in range(self.rng.randint(1, 3)):
            ce = case_expr(self.rng, p)
            if ce:
                out = namer.fresh("varchar" if ce[1] == "varchar" else "double")
                items.append(f"{ce[0]} as {out}")
                cols.append(Col(out, ce[1]))
        nums = p.of_type("double", "integer")
        if len(nums) >= 2 and self.rng.random() < 0.5:  # the package-style macro
            a, b = self.rng.sample(nums, 2)
            out = namer.fresh("double")
            items.append(f"{{{{ {PACKAGE}.safe_divide('{a.name}', '{b.name}') }}}} as {out}")
            cols.append(Col(out, "double"))
        body = (f"enriched as (\n\n    select\n        {sql_list(items)}\n    from {p.name}\n\n),\n\n"
                f"final as (\n\n    select * from enriched\n\n)")
        return cols, body

    def _join_columns(self, parents: list[Rel], aliases: list[str], using: bool
                      ) -> tuple[list[str], list[Col]]:
        """Select list of a join: left's columns, some of the others', everyone's provenance."""
        width = self.target_width()
        left = parents[0]
        key = "user_id" if using else f"{aliases[0]}.user_id"
        items, cols = [key], [Col("user_id", "integer")]
        namer = Names(self.rng, {"user_id"} | {c.name for c in left.cols})
        per_side = max(2, (width - 1) // len(parents))
        for alias, p in zip(aliases, parents):
            vals = p.values[:per_side] if p is left else self.rng.sample(
                p.values, min(len(p.values), max(2, per_side // 2)))
            for c in vals:
                out = c.name if p is left else namer.keep_or_rename(c.name, c.type)
                items.append(f"{alias}.{c.name}" + ("" if out == c.name else f" as {out}"))
                cols.append(Col(out, c.type))
        ce = case_expr(self.rng, parents[1], aliases[1] + ".")
        if ce:
            out = namer.fresh("varchar" if ce[1] == "varchar" else "double")
            items.append(f"{ce[0]} as {out}")
            cols.append(Col(out, ce[1]))
        prov = [(a, c) for a, p in zip(aliases, parents) for c in p.prov]
        rest = left.values[per_side:]
        while len(cols) + (len(prov) if len(prov) <= MAX_PROVENANCE else 1) < 10 and rest:
            c, rest = rest[0], rest[1:]
            items.append(f"{aliases[0]}.{c.name}")
            cols.append(Col(c.name, c.type))
        if len(prov) <= MAX_PROVENANCE:
            taken = set()
            for i, (a, c) in enumerate(prov):
                out, k = c.name, 1
                while out in taken:
                    out, k = f"{a}{k if k > 1 else ''}_{c.name}", k + 1
                taken.add(out)
                items.append(f"{a}.{c.name}" + ("" if out == c.name else f" as {out}"))
                cols.append(Col(out, c.type, c.prov))
        else:
            scalars = [f"{a}.{c.name}" for a, c in prov if c.prov == "scalar"]
            lists = [f"{a}.{c.name}" for a, c in prov if c.prov == "list"]
            items.append(f"{prov_macro(scalars, lists)} as source_ids")
            cols.append(Col("source_ids", "varchar[]", "list"))
        return items, cols

    def kind_join_on(self, parents: list[Rel]) -> tuple[list[Col], str]:
        a, b = parents
        how = self.rng.choice(["left join", "inner join", "left join"])
        items, cols = self._join_columns(parents, ["a", "b"], using=False)
        cond = "a.user_id = b.user_id"
        bools = b.of_type("boolean")
        if bools and self.rng.random() < 0.3:
            cond += f" and b.{bools[0].name}"
        body = (f"joined as (\n\n    select\n        {sql_list(items)}\n    from {a.name} as a\n"
                f"    {how} {b.name} as b\n        on {cond}\n\n),\n\n"
                f"final as (\n\n    select * from joined\n\n)")
        return cols, body

    def kind_join_using(self, parents: list[Rel]) -> tuple[list[Col], str]:
        a, b = parents
        items, cols = self._join_columns(parents, ["a", "b"], using=True)
        body = (f"joined as (\n\n    select\n        {sql_list(items)}\n    from {a.name} as a\n"
                f"    inner join {b.name} as b using (user_id)\n\n),\n\n"
                f"final as (\n\n    select * from joined\n\n)")
        return cols, body

    def kind_multi_join(self, parents: list[Rel]) -> tuple[list[Col], str]:
        aliases = [f"t{i}" for i in range(len(parents))]
        items, cols = self._join_columns(parents, aliases, using=False)
        joins = "\n".join(
            f"    left join {p.name} as {al}\n        on t0.user_id = {al}.user_id"
            for al, p in zip(aliases[1:], parents[1:])
        )
        body = (f"joined as (\n\n    select\n        {sql_list(items)}\n"
                f"    from {parents[0].name} as t0\n{joins}\n\n),\n\n"
                f"final as (\n\n    select * from joined\n\n)")
        return cols, body

    def kind_union(self, parents: list[Rel]) -> tuple[list[Col], str]:
        first = parents[0]
        width = min(self.target_width(), len(first.values) + 2)
        target = first.values[: max(8, width - 2)]
        branches = []
        for p in parents:
            used: set[str] = set()
            items = ["user_id"]
            for c in target:
                same = [x for x in p.values if x.type == c.type and x.name not in used]
                if same:
                    used.add(same[0].name)
                    items.append(f"cast({same[0].name} as {c.type}) as {c.name}")
                else:
                    items.append(f"cast(null as {c.type}) as {c.name}")
            scalars = [c.name for c in p.prov if c.prov == "scalar"]
            lists = [c.name for c in p.prov if c.prov == "list"]
            items.append(f"{prov_macro(scalars, lists)} as source_ids")
            branches.append(f"    select\n        {sql_list(items)}\n    from {p.name}")
        cols = [Col("user_id", "integer"), *target, Col("source_ids", "varchar[]", "list")]
        body = "unioned as (\n\n" + "\n\n    union all\n\n".join(branches) + (
            "\n\n),\n\nfinal as (\n\n    select * from unioned\n\n)")
        return cols, body

    def kind_aggregate(self, parents: list[Rel]) -> tuple[list[Col], str]:
        p = parents[0]
        width = self.target_width()
        namer = Names(self.rng, {"user_id", "source_ids", "n_rows"})
        keys = ["user_id"]
        cols = [Col("user_id", "integer")]
        texts = p.of_type("varchar")
        if texts and self.rng.random() < 0.4:
            keys.append(texts[0].name)
            cols.append(texts[0])
            namer.taken.add(texts[0].name)
        items = list(keys) + ["count(*) as n_rows"]
        cols.append(Col("n_rows", "bigint"))
        for c in p.values:
            if len(cols) >= width - 1 or c.name in keys:
                continue
            if c.type in ("double", "integer"):
                fn = self.rng.choice(["sum", "avg", "min", "max"])
                t = "double" if fn == "avg" or c.type == "double" else "hugeint" if fn == "sum" else c.type
            elif c.type == "varchar":
                fn = self.rng.choice(["max", "count(distinct"])
                t = "varchar" if fn == "max" else "bigint"
            elif c.type == "boolean":
                fn, t = "bool_or", "boolean"
            else:
                fn, t = self.rng.choice(["min", "max"]), c.type
            out = namer.fresh(t)
            expr = f"count(distinct {c.name})" if fn == "count(distinct" else f"{fn}({c.name})"
            items.append(f"{expr} as {out}")
            cols.append(Col(out, t))
        scalars = [c.name for c in p.prov if c.prov == "scalar"]
        lists = [c.name for c in p.prov if c.prov == "list"]
        items.append(f"{collect_macro(scalars, lists)} as source_ids")
        cols.append(Col("source_ids", "varchar[]", "list"))
        having = "\n    having count(*) > 0" if self.rng.random() < 0.3 else ""
        body = (f"aggregated as (\n\n    select\n        {sql_list(items)}\n    from {p.name}\n"
                f"    group by {', '.join(keys)}{having}\n\n),\n\n"
                f"final as (\n\n    select * from aggregated\n\n)")
        return cols, body

    def kind_window(self, parents: list[Rel]) -> tuple[list[Col], str]:
        p = parents[0]
        nums = p.of_type("double", "integer")
        order = nums[0].name if nums else "user_id"
        namer = Names(self.rng, {c.name for c in p.cols} | {"rn"})
        extra = []
        cols = list(p.cols)
        if nums:
            out = namer.fresh("double")
            extra.append(f"sum({order}) over (partition by user_id) as {out}")
            cols.append(Col(out, "double"))
            out = namer.fresh("double")
            extra.append(f"lag({order}) over (partition by user_id order by {order}) as {out}")
            cols.append(Col(out, nums[0].type))
        dedupe = self.rng.random() < 0.6
        rank = f"row_number() over (partition by user_id order by {order} desc) as rn"
        where = "    where rn = 1\n" if dedupe else ""
        body = (f"ranked as (\n\n    select\n        *,\n        {sql_list(extra + [rank])}\n"
                f"    from {p.name}\n\n),\n\n"
                f"final as (\n\n    select * exclude (rn)\n    from ranked\n{where}\n)")
        return cols, body

    def kind_semi_filter(self, parents: list[Rel]) -> tuple[list[Col], str]:
        p, other = parents
        neg = self.rng.random() < 0.3
        if self.rng.random() < 0.5:
            cond = (f"user_id {'not ' if neg else ''}in (\n            select user_id from {other.name}"
                    f" where user_id is not null\n        )")
        else:
            cond = (f"{'not ' if neg else ''}exists (\n            select 1 from {other.name} as o"
                    f" where o.user_id = p.user_id\n        )")
        cols, items = [Col("user_id", "integer")], ["p.user_id"]
        for c in p.cols[1:]:
            items.append(f"p.{c.name}")
            cols.append(c)
        ce = case_expr(self.rng, p, "p.")
        if ce:
            out = Names(self.rng, {c.name for c in cols}).fresh(
                "varchar" if ce[1] == "varchar" else "double")
            items.append(f"{ce[0]} as {out}")
            cols.append(Col(out, ce[1]))
        body = (f"filtered as (\n\n    select\n        {sql_list(items)}\n    from {p.name} as p\n"
                f"    where {cond}\n\n),\n\nfinal as (\n\n    select * from filtered\n\n)")
        return cols, body

    def kind_scalar_filter(self, parents: list[Rel]) -> tuple[list[Col], str]:
        p, other = parents
        pn, on = p.of_type("double", "integer"), other.of_type("double", "integer")
        if pn and on:
            cond = f"{pn[0].name} >= (select avg({on[0].name}) from {other.name})"
        else:
            cond = f"user_id <= (select max(user_id) from {other.name})"
        body = (f"final as (\n\n    select *\n    from {p.name}\n    where {cond}\n\n)")
        return list(p.cols), body

    # the whole project ----------------------------------------------------------------------
    def generate(self) -> None:
        n_seeds = max(2, min(200, round(self.n_models / 25)))
        self.make_seeds(n_seeds)
        self.make_staging()
        rest = self.n_models - n_seeds
        n_layers = N_INTERMEDIATE_LAYERS + 1
        per_layer = [rest // n_layers + (1 if i < rest % n_layers else 0) for i in range(n_layers)]
        counter = 0
        for i, count in enumerate(per_layer):
            layer = 2 + i
            marts = i == n_layers - 1
            names = []
            for _ in range(count):
                counter += 1
                a, b = self.rng.choice(NOUNS), self.rng.choice(NOUNS)
                name = f"{'fct' if marts else 'int'}_{a}_{b}_{counter}"
                self.model(name, layer, "marts" if marts else "intermediate")
                names.append(name)
            self.layers.append(names)
        eligible = [n for lay in self.layers[2:] for n in lay if self.rels[n].materialized == "table"]
        for name in self.rng.sample(eligible, min(len(eligible), max(1, round(INCREMENTAL_SHARE * self.n_models)))):
            self.rels[name].materialized = "incremental"
            self.sql[name] = self.sql[name].replace("\nselect * from final\n", INCREMENTAL_TAIL)


# --- writing the project ----------------------------------------------------------------------

INCREMENTAL_TAIL = """
select * from final
{% if is_incremental() %}
where user_id > (select max(user_id) from {{ this }})
{% endif %}
"""

PACKAGE_PROJECT = f"""\
name: {PACKAGE}
version: "1.0.0"
config-version: 2
macro-paths: ["macros"]
"""

PACKAGE_MACROS = """\
{# A package-style macro, dispatched like dbt_utils' (adapter.dispatch(name, package)). #}

{% macro safe_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('safe_divide', 'synth_utils')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__safe_divide(numerator, denominator) -%}
    (cast({{ numerator }} as double) / nullif(cast({{ denominator }} as double), 0))
{%- endmacro %}
"""

SOURCES_MACRO = """\
{# The raw relations declared as dbt sources (no columns): tables loaded from data/*.csv. #}
{% macro create_raw_sources() %}
    {% set tables = %TABLES% %}
    {% if execute and tables %}
        create schema if not exists raw;
        {% for name, columns in tables %}
        create or replace table raw.{{ name }} as
            select * from read_csv('data/{{ name }}.csv', header = true, columns = {{ columns }});
        {% endfor %}
    {% endif %}
{% endmacro %}
"""

MACROS = """\
{# Provenance macros of the synthetic project: the same calls as the pipeline's. #}

{% macro not_excluded(column) -%}
    {%- set excluded = var('excluded_sources', []) -%}
    {%- if excluded -%}
        {{ column }} not in ({% for s in excluded %}'{{ s }}'{% if not loop.last %}, {% endif %}{% endfor %})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{% macro merge_sources(scalars, lists) -%}
    {{ return(adapter.dispatch('merge_sources')(scalars, lists)) }}
{%- endmacro %}

{% macro default__merge_sources(scalars, lists) -%}
    {%- set parts = [] -%}
    {%- if scalars -%}{%- do parts.append('[' ~ scalars | join(', ') ~ ']') -%}{%- endif -%}
    {%- for l in lists -%}{%- do parts.append(l) -%}{%- endfor -%}
    {%- set ns = namespace(expr=parts[0]) -%}
    {%- for p in parts[1:] -%}{%- set ns.expr = 'list_concat(' ~ ns.expr ~ ', ' ~ p ~ ')' -%}{%- endfor -%}
    list_sort(list_distinct({{ ns.expr }}))
{%- endmacro %}

{% macro collect_sources(scalars, lists) -%}
    {{ return(adapter.dispatch('collect_sources')(scalars, lists)) }}
{%- endmacro %}

{% macro default__collect_sources(scalars, lists) -%}
    {%- if scalars | length == 1 and not lists -%}
    list_sort(list_distinct(list({{ scalars[0] }})))
    {%- else -%}
    list_sort(list_distinct(flatten(list({{ default__merge_sources(scalars, lists) }}))))
    {%- endif -%}
{%- endmacro %}
"""


def seed_value(type_: str, row: int, col: int, seed_idx: int) -> str:
    if type_ == "integer":
        return str(row * 10 + col)
    if type_ == "double":
        return f"{row * 1.5 + col:.2f}"
    if type_ == "varchar":
        return "ab"[row % 2] if col % 3 == 0 else f"v{row}_{col}"
    if type_ == "boolean":
        return "true" if (row + col) % 2 else "false"
    if type_ == "date":
        return f"2024-0{1 + row % 9}-1{col % 10}"
    return f"2024-0{1 + row % 9}-1{col % 10} 10:0{row % 10}:00"


def write_project(gen: Generator, out: Path, threads: int) -> None:
    if out.exists():
        shutil.rmtree(out)
    for d in ("models/staging", "models/intermediate", "models/marts", "seeds", "macros", "data",
              f"dbt_packages/{PACKAGE}/macros"):
        (out / d).mkdir(parents=True, exist_ok=True)
    (out / "dbt_project.yml").write_text(
        f"name: {PROJECT_NAME}\nversion: \"1.0.0\"\nconfig-version: 2\nprofile: {PROJECT_NAME}\n\n"
        "model-paths: [\"models\"]\nseed-paths: [\"seeds\"]\nmacro-paths: [\"macros\"]\n"
        "test-paths: [\"tests\"]\ntarget-path: target\n\n"
        "vars:\n  excluded_sources: []\n\n"
        "on-run-start:\n  - \"{{ create_raw_sources() }}\"\n\n"
        f"models:\n  {PROJECT_NAME}:\n    staging:\n      +materialized: view\n"
        "    intermediate:\n      +materialized: table\n    marts:\n      +materialized: table\n"
    )
    (out / "profiles.yml").write_text(
        f"{PROJECT_NAME}:\n  target: duckdb\n  outputs:\n    duckdb:\n      type: duckdb\n"
        f"      path: target/{DATABASE}.duckdb\n      threads: {threads}\n"
    )
    (out / "macros" / "provenance.sql").write_text(MACROS)
    (out / "dbt_packages" / PACKAGE / "dbt_project.yml").write_text(PACKAGE_PROJECT)
    (out / "dbt_packages" / PACKAGE / "macros" / "safe_divide.sql").write_text(PACKAGE_MACROS)
    (out / "packages.yml").write_text(f"packages:\n  - local: dbt_packages/{PACKAGE}\n")
    seed_yml = ["version: 2", "", "seeds:"]
    sources = []
    for s_idx, name in enumerate(gen.layers[0]):
        rel = gen.rels[name]
        rows = [",".join(c.name for c in rel.cols)]
        for r in range(3):
            vals = [str(r + 1), f"src_{s_idx + 1}_{'ab'[r % 2]}"]
            vals += [seed_value(c.type, r, j, s_idx) for j, c in enumerate(rel.cols[2:])]
            rows.append(",".join(vals))
        if rel.kind == "source":
            (out / "data" / f"{name}.csv").write_text("\n".join(rows) + "\n")
            sources.append((name, {c.name: c.type.upper() for c in rel.cols}))
            continue
        (out / "seeds" / f"{name}.csv").write_text("\n".join(rows) + "\n")
        seed_yml += [f"  - name: {name}", "    config:", "      column_types:"]
        seed_yml += [f"        {c.name}: {c.type}" for c in rel.cols]
        seed_yml += ["    columns:", "      - name: source_id",
                     "        description: Registered source of the row (provenance root)."]
    (out / "seeds" / "_seeds.yml").write_text("\n".join(seed_yml) + "\n")
    (out / "macros" / "raw_sources.sql").write_text(SOURCES_MACRO.replace("%TABLES%", json.dumps(sources)))
    src_yml = ["version: 2", "", "sources:", "  - name: raw", "    schema: raw",
               "    description: Raw relations loaded from data/ (columns not declared).", "    tables:"]
    src_yml += [f"      - name: {name}" for name, _ in sources] or ["      []"]
    if sources:
        (out / "models" / "staging" / "_sources.yml").write_text("\n".join(src_yml) + "\n")
    for name, sql in gen.sql.items():
        rel = gen.rels[name]
        cfg = "" if rel.materialized == "table" or rel.folder == "staging" else (
            f"{{{{ config(materialized='{rel.materialized}') }}}}\n\n")
        (out / "models" / rel.folder / f"{name}.sql").write_text(cfg + sql)
    schema = {f"{DATABASE}.{'raw' if r.kind == 'source' else SCHEMA}.{r.name}": [[c.name, c.type] for c in r.cols]
              for r in gen.rels.values() if r.materialized != "ephemeral"}
    (out / "synthetic_schema.json").write_text(json.dumps(schema, indent=1))


def dag_depth(gen: Generator) -> int:
    depth: dict[str, int] = {}
    for layer in gen.layers:
        for n in layer:
            rel = gen.rels[n]
            depth[n] = 1 + max((depth[p] for p in rel.parents), default=-1)
    return max(depth.values())


LAST_COMPILE_CPU = [0.0]


def compile_project(out: Path, threads: int) -> float:
    """Run `dbt compile` in `out` with its own profiles.yml; return the wall time in seconds."""
    dbt = Path(sys.executable).with_name("dbt")
    env = dict(os.environ, DO_NOT_TRACK="1", DBT_SEND_ANONYMOUS_USAGE_STATS="false",
               DBT_PROFILES_DIR=str(out))
    # incremental models ask the warehouse whether their table exists (is_incremental()): no
    # --no-introspect; the DuckDB file is created empty
    cmd = [str(dbt), "--quiet", "--no-version-check", "compile", "--threads", str(threads),
           "--no-populate-cache",
           "--project-dir", str(out), "--profiles-dir", str(out)]
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_COMPILE_CPU[0] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"dbt compile failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return elapsed


def generate(n_models: int, out: Path, seed: int = 7, threads: int = 2,
             compile: bool = True) -> dict:
    """Write the project to `out` (replacing it), compile it unless told not to; return meta."""
    t0 = time.perf_counter()
    gen = Generator(n_models, seed)
    gen.generate()
    write_project(gen, out, threads)
    widths = [len(r.cols) for r in gen.rels.values()]
    meta = {
        "models": len(gen.sql),
        "seeds": len(gen.layers[0]),
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "dag_depth": dag_depth(gen),
        "columns_min": min(widths),
        "columns_max": max(widths),
        "columns_mean": round(sum(widths) / len(widths), 1),
        "kinds": dict(sorted(gen.kinds.items())),
        "ephemeral": sum(1 for r in gen.rels.values() if r.materialized == "ephemeral"),
        "incremental": sum(1 for r in gen.rels.values() if r.materialized == "incremental"),
        "sources_without_columns": sum(1 for r in gen.rels.values() if r.kind == "source"),
        "generate_seconds": round(time.perf_counter() - t0, 2),
    }
    if compile:
        meta["compile_seconds"] = round(compile_project(out, threads), 1)
        meta["compile_cpu_seconds"] = round(LAST_COMPILE_CPU[0], 1)
        meta["compile_threads"] = threads
    (out / "synthetic_meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args(argv)
    meta = generate(args.models, args.out, args.seed, args.threads, not args.no_compile)
    json.dump(meta, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()


def ensure_project(n_models: int, workdir: Path, seed: int = 7, threads: int = 2) -> tuple[Path, dict]:
    """The compiled synthetic project of `n_models` under `workdir`, generated only when missing
    (or generated with other parameters); returns its folder and meta."""
    out = Path(workdir) / f"p{n_models}_s{seed}"
    meta_path = out / "synthetic_meta.json"
    if meta_path.exists() and (out / "target" / "manifest.json").exists():
        meta = json.loads(meta_path.read_text())
        if (meta.get("models"), meta.get("seed"), meta.get("generator_version")) == (
                n_models, seed, GENERATOR_VERSION):
            return out, meta
    return out, generate(n_models, out, seed, threads)

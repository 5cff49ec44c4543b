"""dbt's artifacts checked at the door: the fields this tool reads have the types it reads them as.

A manifest, catalog or run results can be valid JSON of the wrong shape (hand-edited, written by
another tool, truncated by a merge). Each field the tool reads is described here once, as a small
shape; a value of another type stops the read with one line naming the file and the field, never
an AttributeError deep inside. Fields the tool does not read are not checked.

>>> check(ARTIFACT_MANIFEST, {"metadata": {}, "nodes": {"model.p.a": {"resource_type": "model",
...       "unique_id": "model.p.a", "name": "a", "depends_on": "garbage"}}})
'nodes["model.p.a"].depends_on: expected an object, found a string (\\'garbage\\')'
>>> check(ARTIFACT_CATALOG, {"nodes": {"model.p.a": {"columns": [1, 2]}}})
'nodes["model.p.a"].columns: expected an object, found a list ([1, 2])'
>>> check(ARTIFACT_MANIFEST, {"metadata": {"adapter_type": "duckdb"}, "nodes": {}}) is None
True
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Checker = Callable[[Any, str], "str | None"]

_KIND = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "a number",
         float: "a number", type(None): "null"}


def _found(value: Any) -> str:
    shown = repr(value)
    return f"{_KIND.get(type(value), type(value).__name__)} ({shown[:40]}{'...' if len(shown) > 40 else ''})"


def _where(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def scalar(kind: type, name: str, *, null: bool = False) -> Checker:
    """A scalar of Python type `kind` (bool is not a number), or null when `null`."""

    def run(value: Any, path: str) -> str | None:
        if value is None and null:
            return None
        if isinstance(value, kind) and not (kind is not bool and isinstance(value, bool)):
            return None
        return f"{path}: expected {name}{' or null' if null else ''}, found {_found(value)}"

    return run


STR = scalar(str, "a string")
OPT_STR = scalar(str, "a string", null=True)
OPT_BOOL = scalar(bool, "true or false", null=True)
OPT_INT = scalar(int, "a number", null=True)


def anything(value: Any, path: str) -> str | None:
    return None


def list_of(item: Checker, *, null: bool = True) -> Checker:
    def run(value: Any, path: str) -> str | None:
        if value is None and null:
            return None
        if not isinstance(value, list):
            return f"{path}: expected a list, found {_found(value)}"
        for i, v in enumerate(value):
            bad = item(v, f"{path}[{i}]")
            if bad:
                return bad
        return None

    return run


def map_of(item: Checker, *, null: bool = True) -> Checker:
    """An object whose every value is `item`."""

    def run(value: Any, path: str) -> str | None:
        if value is None and null:
            return None
        if not isinstance(value, dict):
            return f"{path}: expected an object, found {_found(value)}"
        for k, v in value.items():
            bad = item(v, _where(path, k))
            if bad:
                return bad
        return None

    return run


def obj(fields: Mapping[str, Checker], *, required: tuple[str, ...] = (), null: bool = True,
        when: Callable[[Mapping[str, Any]], bool] | None = None) -> Checker:
    """An object: `required` keys present, listed keys (when present) of their shape. With
    `when`, an object for which it is false is only checked to be an object."""

    def run(value: Any, path: str) -> str | None:
        if value is None and null:
            return None
        if not isinstance(value, dict):
            return f"{path}: expected an object, found {_found(value)}"
        for key in required:
            if key not in value:
                return f"{_where(path, key)}: missing"
        if when is not None and not when(value):
            return None
        for key, check_field in fields.items():
            if key in value:
                bad = check_field(value[key], _where(path, key))
                if bad:
                    return bad
        return None

    return run


# ---- the fields read, artifact by artifact ---------------------------------------------------

_COLUMN = obj({"name": OPT_STR, "data_type": OPT_STR})
_CONFIG = obj({
    "enabled": OPT_BOOL, "materialized": OPT_STR, "meta": map_of(anything), "delimiter": OPT_STR,
    "column_types": map_of(OPT_STR), "quote_columns": OPT_BOOL, "strategy": OPT_STR,
    "incremental_strategy": OPT_STR, "updated_at": OPT_STR, "alias": OPT_STR, "schema": OPT_STR,
})
_READ_TYPES = frozenset(("model", "seed", "snapshot", "source"))
_NODE = obj(
    {
        "unique_id": STR, "resource_type": STR, "name": STR, "package_name": OPT_STR,
        "original_file_path": OPT_STR, "root_path": OPT_STR, "database": OPT_STR, "schema": OPT_STR,
        "alias": OPT_STR, "identifier": OPT_STR, "relation_name": OPT_STR, "language": OPT_STR,
        "raw_code": OPT_STR, "compiled_code": OPT_STR, "source_name": OPT_STR,
        "tags": list_of(STR), "meta": map_of(anything),
        "depends_on": obj({"nodes": list_of(STR), "macros": list_of(STR)}),
        "columns": map_of(_COLUMN), "config": _CONFIG,
    },
    required=("resource_type",),
    null=False,
    when=lambda n: n.get("resource_type") in _READ_TYPES,
)
_MACRO = obj({"package_name": OPT_STR, "original_file_path": OPT_STR}, null=False)

ARTIFACT_MANIFEST = obj(
    {
        "metadata": obj({"dbt_schema_version": OPT_STR, "adapter_type": OPT_STR, "project_name": OPT_STR,
                         "generated_at": OPT_STR, "invocation_id": OPT_STR}, null=False),
        "nodes": map_of(_NODE, null=False),
        "sources": map_of(_NODE),
        "macros": map_of(_MACRO),
        "parent_map": map_of(list_of(STR)),
        "child_map": map_of(list_of(STR)),
    },
    required=("metadata", "nodes"),
    null=False,
)

_CATALOG_COLUMN = obj({"name": STR, "type": OPT_STR, "index": OPT_INT}, required=("name",), null=False)
_CATALOG_ENTRY = obj({"columns": map_of(_CATALOG_COLUMN)}, null=False)
ARTIFACT_CATALOG = obj({"nodes": map_of(_CATALOG_ENTRY), "sources": map_of(_CATALOG_ENTRY),
                        "metadata": obj({"dbt_schema_version": OPT_STR})}, null=False)

ARTIFACT_RUN_RESULTS = obj(
    {
        "metadata": obj({"dbt_schema_version": OPT_STR, "generated_at": OPT_STR, "invocation_id": OPT_STR}),
        "args": obj({"vars": anything, "target": OPT_STR, "which": OPT_STR, "full_refresh": OPT_BOOL}),
        "results": list_of(obj({"unique_id": OPT_STR, "status": OPT_STR}, null=False)),
    },
    null=False,
)


def check(shape: Checker, data: Any) -> str | None:
    """What is wrong with `data` for `shape` (the first field at fault), or None."""
    return shape(data, "")


@dataclass(frozen=True)
class Problem:
    """Why an artifact file cannot be used: one line naming the file and the field at fault."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def load(path: Path, shape: Checker, what: str) -> tuple[Any, Problem | None]:
    """Read and check one artifact file: ``(data, None)``, or ``(None, problem)`` when it cannot
    be read as UTF-8 JSON of `shape` (the caller decides whether that stops the command)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, Problem(path, f"no {what} here")
    except OSError as exc:
        return None, Problem(path, f"cannot read the {what} ({exc.strerror or exc})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Problem(path, f"the {what} is not UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 2]!r})")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, Problem(path, f"the {what} is not JSON or truncated ({exc.msg} at line {exc.lineno})")
    except RecursionError:
        return None, Problem(path, f"the {what} nests too deeply to be a dbt artifact")
    bad = check(shape, data)
    if bad:
        return None, Problem(path, f"not a dbt {what} this tool can read: field {bad}")
    return data, None

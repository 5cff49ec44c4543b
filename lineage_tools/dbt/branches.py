"""An incremental model's other branch from dbt's own compiled SQL, when that is provably safe.

dbt compiled each incremental model one way (`is_incremental()` true or false, whatever the
warehouse held). The other way differs only where the model's code tests `is_incremental()`.
`derive_branches` renders the model's Jinja with Jinja itself (dbt's template engine) in a
context where only what cannot differ between the branches is known: `ref`, `source` and `this`
(relation names from the manifest), `config` (nothing), `is_incremental` (forced); every other
expression (a macro call, a var) is a *hole*. It then

1. renders the branch dbt compiled, holes as markers, and matches that text against dbt's
   compiled SQL: the literal text must be dbt's exactly, and each hole's value is what dbt put
   there (the match must be unique: the first fit and the last fit of every literal agree);
2. renders the other branch with the same holes and fills them with those values.

Anything it cannot vouch for gives None, and dbt renders the model (`runner.DbtProject`): a
macro whose macros reach `is_incremental()`, a hole only the other branch has (but vars, whose
value is the project's), unknown names, control
flow on a hole, a match that is not unique. Ephemeral inputs are inlined as dbt inlined them.
So the result is what dbt renders.

>>> idx = ManifestIndex({"nodes": {}, "sources": {}, "macros": {"macro.p.keep": {
...     "name": "keep", "package_name": "p", "depends_on": {"macros": []}}}})
>>> raw = {"unique_id": "model.p.m", "package_name": "p", "relation_name": '"db"."main"."m"',
...        "database": "db", "schema": "main", "alias": "m", "depends_on": {"nodes": []},
...        "raw_code": "select * from t where {{ keep('a') }}{% if is_incremental() %} and x > "
...                    "(select max(x) from {{ this }}){% endif %}",
...        "compiled_code": "select * from t where a is not null"}
>>> derive_branches(raw, idx, {})[1]
'select * from t where a is not null and x > (select max(x) from "db"."main"."m")'
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

#: Macros whose output depends on the branch: dbt's own, and every macro reaching one of them.
BRANCH_MACROS = frozenset({"macro.dbt.is_incremental", "macro.dbt.should_full_refresh"})
_MARK = re.compile("\x00(\\d+)\x00")
_MAX_HOLES = 64


class Unsafe(Exception):
    """The branch cannot be derived without dbt (the message says why, for the debug log)."""


class ManifestIndex:
    """What deriving needs from a manifest: nodes by name, macros by package and name, and which
    macros reach a branch-dependent macro."""

    def __init__(self, manifest: Mapping[str, Any]):
        self.nodes: Mapping[str, Mapping[str, Any]] = manifest.get("nodes") or {}
        self.sources: Mapping[str, Mapping[str, Any]] = manifest.get("sources") or {}
        self.macros: Mapping[str, Mapping[str, Any]] = manifest.get("macros") or {}
        self.by_package: dict[str, dict[str, str]] = {}
        for uid, m in self.macros.items():
            self.by_package.setdefault(str(m.get("package_name")), {})[str(m.get("name"))] = uid
        self.adapter = str((manifest.get("metadata") or {}).get("adapter_type") or "")

    @functools.lru_cache(maxsize=None)  # noqa: B019 - one index per manifest, kept as long as it
    def reaches_branch(self, uid: str) -> bool:
        """Does macro `uid` call, directly or not, a macro whose output depends on the branch?"""
        seen: set[str] = set()
        stack = [uid]
        while stack:
            m = stack.pop()
            if m in BRANCH_MACROS:
                return True
            if m in seen:
                continue
            seen.add(m)
            stack.extend((self.macros.get(m, {}).get("depends_on") or {}).get("macros") or ())
        return False

    def macro(self, package: str, name: str) -> str | None:
        return self.by_package.get(package, {}).get(name)

    def lookup(self, local: str, name: str) -> str | None:
        """A bare macro name as dbt resolves it for a node of package `local`: that package,
        then dbt's own and the adapter's."""
        for package in (local, "dbt", f"dbt_{self.adapter}"):
            uid = self.macro(package, name)
            if uid is not None:
                return uid
        return None


EPHEMERAL_PREFIX = "__dbt__cte__"


class Rel(str):
    """A relation as Jinja sees it: renders as its name, with dbt's usual attributes (an
    ephemeral model as the CTE dbt inlines it as)."""

    database: str | None
    schema: str | None
    identifier: str | None

    def __new__(cls, node: Mapping[str, Any]) -> Rel:
        identifier = node.get("alias") or node.get("identifier") or node.get("name")
        if (node.get("config") or {}).get("materialized") == "ephemeral":
            self = super().__new__(cls, f"{EPHEMERAL_PREFIX}{identifier}")
            self.database = self.schema = None
        else:
            name = node.get("relation_name")
            if not name:
                raise Unsafe(f"{node.get('unique_id')} has no relation")
            self = super().__new__(cls, name)
            self.database, self.schema = node.get("database"), node.get("schema")
        self.identifier = identifier
        return self

    @property
    def name(self) -> str | None:
        return self.identifier

    table = name

    def render(self) -> str:
        return str(self)


class Hole:
    """The value of an expression the branch does not change: a marker in the text."""

    __slots__ = ("key", "number", "fallback")

    def __init__(self, key: tuple[Any, ...], number: int, fallback: Any = None):
        self.key, self.number, self.fallback = key, number, fallback

    def __str__(self) -> str:
        return f"\x00{self.number}\x00"

    __html__ = __str__

    def _unsafe(self, *_: Any, **__: Any) -> Any:
        raise Unsafe(f"control flow on {self.key[:2]}")

    __bool__ = __iter__ = __len__ = __eq__ = __ne__ = __lt__ = __gt__ = __le__ = __ge__ = __contains__ = _unsafe
    __getattr__ = __getitem__ = __call__ = __add__ = __radd__ = __int__ = __float__ = _unsafe
    __hash__ = object.__hash__


class _Holes:
    def __init__(self) -> None:
        self.by_key: dict[tuple[Any, ...], Hole] = {}

    def get(self, key: tuple[Any, ...], fallback: Any = None) -> Hole:
        if key not in self.by_key:
            if len(self.by_key) >= _MAX_HOLES:
                raise Unsafe("too many holes")
            self.by_key[key] = Hole(key, len(self.by_key), fallback)
        return self.by_key[key]


def _frozen(value: Any) -> Any:
    """A call argument as part of a hole's key (literals and relations only)."""
    if isinstance(value, Rel):
        return ("rel", str(value))
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    raise Unsafe(f"argument {type(value).__name__}")


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    """Jinja as dbt configures it for model SQL (sandboxed, `do` and loop controls)."""
    from jinja2.sandbox import SandboxedEnvironment

    from jinja2 import StrictUndefined

    env = SandboxedEnvironment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"], undefined=StrictUndefined)
    for name in ("as_text", "as_bool", "as_native", "as_number"):
        env.filters[name] = lambda value: value
    return env


class _Namespace:
    """`pkg.macro(...)` for an installed package."""

    def __init__(self, call: Any, package: str):
        self._call, self._package = call, package

    def __getattr__(self, name: str) -> Any:
        return self._call(self._package, name)


_NAME = re.compile(r"[A-Za-z_]\w*")


def _context(raw: Mapping[str, Any], idx: ManifestIndex, vars_: Mapping[str, Any], branch: bool,
             holes: _Holes, names: frozenset[str]) -> dict[str, Any]:
    """The template's names (`names`: every word of its code; others cannot be reached)."""
    package = str(raw.get("package_name"))
    deps = [(idx.nodes.get(d) or idx.sources.get(d) or {}) for d in (raw.get("depends_on") or {}).get("nodes") or ()]

    def ref(*args: Any, **kwargs: Any) -> Rel:
        if kwargs or not 1 <= len(args) <= 2:
            raise Unsafe("ref with a version or package keyword")
        name = args[-1]
        pkg = args[0] if len(args) == 2 else None
        found = [d for d in deps if d.get("resource_type") != "source" and d.get("name") == name
                 and (pkg is None or d.get("package_name") == pkg)]
        if len(found) != 1:
            raise Unsafe(f"ref({name!r}) is not one of the model's inputs")
        return Rel(found[0])

    def source(source_name: str, table: str) -> Rel:
        found = [d for d in deps if d.get("resource_type") == "source" and d.get("source_name") == source_name
                 and d.get("name") == table]
        if len(found) != 1:
            raise Unsafe(f"source({source_name!r}, {table!r}) is not one of the model's inputs")
        return Rel(found[0])

    missing = object()

    def var(name: str, default: Any = missing) -> Hole:
        value = vars_.get(name, default)
        if value is missing:
            raise Unsafe(f"var {name!r} has no value")
        return holes.get(("var", name, _frozen(default) if default is not missing else None), value)

    def call(pkg: str | None, name: str) -> Any:
        uid = idx.macro(pkg, name) if pkg is not None else idx.lookup(package, name)
        if uid is None:
            raise Unsafe(f"unknown name {name!r}")
        if idx.reaches_branch(uid):
            raise Unsafe(f"{uid} depends on is_incremental()")

        def macro(*args: Any, **kwargs: Any) -> Hole:
            return holes.get(("call", uid, _frozen(list(args)), _frozen(kwargs)))

        return macro

    ctx: dict[str, Any] = {
        "ref": ref, "source": source, "var": var, "this": Rel(raw), "config": lambda *a, **k: "",
        "is_incremental": lambda: branch,
    }
    # macros reachable by their bare name, then packages by name
    for name in names:
        if name in ctx:
            continue
        if any(name in idx.by_package.get(pkg, {}) for pkg in (package, "dbt", f"dbt_{idx.adapter}")):
            ctx[name] = _lazy(call, None, name)
        elif name in idx.by_package:
            ctx[name] = _Namespace(call, name)
    return ctx


def _lazy(call: Any, pkg: str | None, name: str) -> Any:
    def macro(*args: Any, **kwargs: Any) -> Any:
        return call(pkg, name)(*args, **kwargs)

    return macro


def _literals(text: str) -> tuple[list[str], list[int]]:
    """Split rendered text into literals and the hole numbers between them."""
    parts = _MARK.split(text)
    return parts[0::2], [int(n) for n in parts[1::2]]


def _fit(lits: list[str], nums: list[int], sql: str, *, from_end: bool) -> dict[int, str] | None:
    """Hole values placing every literal as early (or as late) as possible; None when the
    literals do not fit or a hole gets two values."""
    n = len(nums)
    if not sql.startswith(lits[0]) or not sql.endswith(lits[-1]) or len(lits[0]) + len(lits[-1]) > len(sql):
        return None
    starts = [0] * (n + 1)  # where each literal starts in `sql`
    starts[0], starts[n] = 0, len(sql) - len(lits[-1])
    if from_end:
        end = starts[n]
        for i in range(n - 1, 0, -1):
            pos = sql.rfind(lits[i], len(lits[0]), end)
            if pos < 0:
                return None
            starts[i], end = pos, pos
    else:
        pos = len(lits[0])
        for i in range(1, n):
            found = sql.find(lits[i], pos, starts[n])
            if found < 0:
                return None
            starts[i], pos = found, found + len(lits[i])
    values: dict[int, str] = {}
    for i, num in enumerate(nums):
        value = sql[starts[i] + len(lits[i]):starts[i + 1]]
        if starts[i] + len(lits[i]) > starts[i + 1] or values.setdefault(num, value) != value:
            return None
    return values


def match(template_text: str, sql: str) -> dict[int, str] | None:
    """The values of the holes in `template_text` that make it `sql`, when there is exactly one
    way (every literal between two holes non-empty; first and last fit agree)."""
    lits, nums = _literals(template_text)
    if not nums:
        return {} if template_text == sql else None
    if any(not lit for lit in lits[1:-1]):
        return None  # two holes side by side: where one ends is unknown
    first = _fit(lits, nums, sql, from_end=False)
    last = _fit(lits, nums, sql, from_end=True)
    return first if first is not None and first == last else None


_WITH_BEFORE = re.compile(r"\bwith\s*$", re.I)


def _uninject(raw: Mapping[str, Any], compiled: str) -> tuple[str, Any]:
    """dbt's compiled SQL before it inlined ephemeral inputs as CTEs, and the function that
    inlines them the same way into the other branch (see dbt's `inject_ctes_into_sql`: after
    the first WITH and the blanks after it, followed by ", "; or a WITH of their own before the
    first token)."""
    ctes = raw.get("extra_ctes") or []
    if not ctes:
        return compiled, lambda sql: sql
    joined = ", ".join(str(c.get("sql") or "") for c in ctes)
    at = compiled.find(joined)
    if at < 0 or compiled.find(joined, at + 1) >= 0:
        raise Unsafe("the inlined ephemeral CTEs are not found once")
    after = at + len(joined)
    before = _WITH_BEFORE.search(compiled, 0, at)
    if before is None:
        raise Unsafe("the inlined ephemeral CTEs do not follow a WITH")
    if compiled.startswith(", ", after):  # the model had a WITH: the CTEs come after it
        text = joined + ", "
    elif compiled.startswith(" ", after) and before.end() == at and not compiled[:before.start()].strip():
        at, text = before.start(), compiled[before.start():after + 1]  # a WITH of their own
    else:
        raise Unsafe("the inlined ephemeral CTEs are not where dbt puts them")
    bare = compiled[:at] + compiled[at + len(text):]

    def inline(sql: str) -> str:
        if sql[:at] != bare[:at]:
            raise Unsafe("the branches differ before the inlined CTEs")
        return sql[:at] + text + sql[at:]

    return bare, inline


def derive_branches(raw: Mapping[str, Any], idx: ManifestIndex, vars_: Mapping[str, Any]) -> tuple[str, str] | None:
    """(full-refresh SQL, incremental SQL) of an incremental model from dbt's compiled SQL, or
    None when only dbt can tell (see the module docstring)."""
    compiled, code = raw.get("compiled_code"), raw.get("raw_code")
    if not compiled or not code:
        return None
    try:
        compiled, inline = _uninject(raw, compiled)
        template = _environment().from_string(code)
        holes = _Holes()
        names = frozenset(_NAME.findall(code))
        for branch in (False, True):
            text = template.render(_context(raw, idx, vars_, branch, holes, names))
            values = match(text, compiled)
            if values is None:
                continue
            other = template.render(_context(raw, idx, vars_, not branch, holes, names))
            by_number = {h.number: h for h in holes.by_key.values()}

            def fill(m: re.Match[str]) -> str:
                num = int(m.group(1))
                if num in values:
                    return values[num]
                hole = by_number[num]
                if hole.key[0] != "var":
                    raise Unsafe(f"{hole.key[:2]} appears only when is_incremental() is {not branch}")
                return str(hole.fallback)

            derived, compiled = inline(_MARK.sub(fill, other)), inline(compiled)
            return (compiled, derived) if not branch else (derived, compiled)
    except Unsafe as exc:
        log.debug("%s: branches left to dbt: %s", raw.get("unique_id"), exc)
        return None
    except Exception as exc:  # noqa: BLE001 - any Jinja failure: dbt renders it instead
        log.debug("%s: branches left to dbt: %s: %s", raw.get("unique_id"), type(exc).__name__, exc)
        return None
    log.debug("%s: branches left to dbt: its compiled SQL does not match its code", raw.get("unique_id"))
    return None

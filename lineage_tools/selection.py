"""dbt's node selection syntax, the common subset, over the nodes of a manifest (no dbt run).

A spec is a space-separated union of terms; a term is a comma-separated intersection of
atoms; an atom is ``[@][N]+?method:value[+[N]]``. Methods: a bare name (``stg_users``,
globs allowed, a path when it has a ``/``), ``tag:``, ``path:``, ``resource_type:``,
``source:``, ``package:``. ``+x`` adds x's ancestors, ``x+`` its descendants, ``2+x`` two
generations up, ``@x`` x's descendants and all their ancestors.

>>> from lineage_tools.records import Node
>>> def n(name, deps=(), tags=(), path=None):
...     return Node(f"model.p.{name}", name, "model", f"db.main.{name}", "db", "main", name,
...                 original_file_path=path, depends_on=tuple(f"model.p.{d}" for d in deps),
...                 tags=tags, package_name="p")
>>> nodes = [n("a", path="models/staging/a.sql", tags=("raw",)), n("b", ["a"]), n("c", ["b"])]
>>> sorted(select(nodes, "b+"))
['model.p.b', 'model.p.c']
>>> sorted(select(nodes, "+b"))
['model.p.a', 'model.p.b']
>>> sorted(select(nodes, "path:models/staging tag:nope c"))
['model.p.a', 'model.p.c']
>>> sorted(select(nodes, "a+,+c"))
['model.p.a', 'model.p.b', 'model.p.c']
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import UnknownNodeError, UserError
from .records import Node

if TYPE_CHECKING:  # pragma: no cover
    from .graph import TraceNode

log = logging.getLogger(__name__)

METHODS = ("name", "tag", "path", "resource_type", "source", "package", "fqn")
RESOURCE_TYPES = ("model", "seed", "source", "snapshot")

_ATOM = re.compile(r"^(?P<at>@)?(?P<up>\d*\+)?(?P<body>[^+@]+)(?P<down>\+\d*)?$")


class SelectorError(UserError):
    """A --select spec that cannot be read or names a method this tool does not know."""


@dataclass(frozen=True)
class Atom:
    """One selector: method and value, with graph operators."""

    method: str
    value: str
    parents: int | None = None  # None: no parents; -1: all ancestors; N: N generations
    children: int | None = None
    at: bool = False


def parse_atom(text: str) -> Atom:
    """Parse one atom such as ``2+tag:nightly+`` into an Atom.

    >>> parse_atom("2+tag:nightly+")
    Atom(method='tag', value='nightly', parents=2, children=-1, at=False)
    >>> parse_atom("stg_users")
    Atom(method='name', value='stg_users', parents=None, children=None, at=False)
    """
    m = _ATOM.match(text)
    if not m:
        raise SelectorError(f"cannot read selector {text!r}")
    body = m.group("body")
    if ":" in body:
        method, value = body.split(":", 1)
        method = method.strip()
        if method.startswith("config."):
            raise SelectorError(f"selector method {method!r} is not supported (use one of: {', '.join(METHODS)})")
    else:
        method, value = ("path" if "/" in body or body.endswith(".sql") else "name"), body
    if method not in METHODS:
        raise SelectorError(f"unknown selector method {method!r} in {text!r} (use one of: {', '.join(METHODS)})")
    if not value:
        raise SelectorError(f"selector {text!r} has no value")
    if method == "resource_type" and value not in RESOURCE_TYPES:
        raise SelectorError(f"unknown resource_type {value!r} (use one of: {', '.join(RESOURCE_TYPES)})")

    def depth(group: str) -> int | None:
        g = m.group(group)
        if g is None:
            return None
        digits = g.strip("+")
        return int(digits) if digits else -1

    up, down = depth("up"), depth("down")
    if m.group("at") and (up is not None or down is not None):
        raise SelectorError(f"selector {text!r}: '@' cannot be combined with '+'")
    return Atom(method, value, up, down, bool(m.group("at")))


def _fqn(node: Node) -> tuple[str, ...]:
    """dbt's fully qualified name, rebuilt from the package, the file's folders and the name."""
    parts: list[str] = [node.package_name or ""]
    path = (node.original_file_path or "").replace("\\", "/")
    folders = path.split("/")[1:-1] if "/" in path else []
    if node.resource_type == "source":
        source_name = node.unique_id.split(".")[-2]
        return (*parts, source_name, node.name)
    return (*parts, *folders, node.name)


def _matches(atom: Atom, node: Node) -> bool:
    v = atom.value
    if atom.method == "name":
        if node.resource_type == "source":
            return fnmatch.fnmatchcase(node.name, v) or fnmatch.fnmatchcase(_source_key(node), v)
        return fnmatch.fnmatchcase(node.name, v) or _fqn_matches(node, v)
    if atom.method == "fqn":
        return _fqn_matches(node, v)
    if atom.method == "tag":
        return any(fnmatch.fnmatchcase(t, v) for t in node.tags)
    if atom.method == "resource_type":
        return node.resource_type == v
    if atom.method == "package":
        return fnmatch.fnmatchcase(node.package_name or "", v)
    if atom.method == "source":
        return node.resource_type == "source" and (
            fnmatch.fnmatchcase(_source_key(node), v) or fnmatch.fnmatchcase(_source_key(node).split(".")[0], v)
        )
    if atom.method == "path":
        path = (node.original_file_path or "").replace("\\", "/")
        want = v.replace("\\", "/").rstrip("/").removeprefix("./")
        return bool(path) and (fnmatch.fnmatchcase(path, want) or path == want or path.startswith(want + "/"))
    raise SelectorError(f"unknown selector method {atom.method!r}")  # pragma: no cover


def _source_key(node: Node) -> str:
    if node.source_name:
        return f"{node.source_name}.{node.name}"
    parts = node.unique_id.split(".")
    return ".".join(parts[-2:])


def _fqn_matches(node: Node, value: str) -> bool:
    """A dotted value matches a run of the fqn from its start, skipping the package if absent."""
    fqn = _fqn(node)
    want = tuple(value.split("."))
    for start in (0, 1):
        run = fqn[start : start + len(want)]
        if len(run) == len(want) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(run, want)):
            # a package or folder name selects what is under it; a full name the node itself
            return True
    return False


def _walk(start: Iterable[str], edges: Mapping[str, Sequence[str]], depth: int) -> set[str]:
    seen: set[str] = set()
    frontier = set(start)
    level = 0
    while frontier and (depth < 0 or level < depth):
        nxt = {m for n in frontier for m in edges.get(n, ()) if m not in seen}
        seen |= nxt
        frontier = nxt
        level += 1
    return seen


def _graph(nodes: Sequence[Node]) -> tuple[dict[str, tuple[str, ...]], dict[str, list[str]]]:
    ids = {n.unique_id for n in nodes}
    parents = {n.unique_id: tuple(d for d in n.depends_on if d in ids) for n in nodes}
    children: dict[str, list[str]] = {i: [] for i in ids}
    for child, ps in parents.items():
        for p in ps:
            children[p].append(child)
    return parents, children


def select_atom(atom: Atom, nodes: Sequence[Node]) -> set[str]:
    """The unique_ids one atom selects, graph operators applied."""
    parents, children = _graph(nodes)
    base = {n.unique_id for n in nodes if _matches(atom, n)}
    out = set(base)
    if atom.at:
        down = base | _walk(base, children, -1)
        return down | _walk(down, parents, -1)
    if atom.parents is not None:
        out |= _walk(base, parents, atom.parents)
    if atom.children is not None:
        out |= _walk(base, children, atom.children)
    return out


def select(nodes: Sequence[Node], spec: str) -> frozenset[str]:
    """The unique_ids of the nodes `spec` selects; a spec that selects nothing is an error."""
    terms = spec.split()
    if not terms:
        raise SelectorError("empty --select")
    chosen: set[str] = set()
    for term in terms:
        atoms = [parse_atom(a) for a in term.split(",") if a]
        if not atoms:
            raise SelectorError(f"cannot read selector {term!r}")
        sets = [select_atom(a, nodes) for a in atoms]
        hit = set.intersection(*sets)
        if not hit and len(terms) > 1:
            log.warning("--select %s matches no node", term)
        chosen |= hit
    if not chosen:
        names = sorted({n.name for n in nodes})
        close = tuple(difflib.get_close_matches(terms[0].strip("+@").split(":")[-1], names, n=3))
        raise UnknownNodeError(f"--select {spec!r} matches no node", close)
    return frozenset(chosen)


def select_models(nodes: Sequence[Node], spec: str | None) -> frozenset[str] | None:
    """Like `select`, restricted to models; None (no filter) when `spec` is None."""
    if spec is None:
        return None
    by_id = {n.unique_id: n for n in nodes}
    return frozenset(i for i in select(nodes, spec) if by_id[i].resource_type in ("model", "snapshot"))


def prune_trace(tree: "TraceNode", keep: frozenset[str]) -> "TraceNode":
    """A trace tree that only walks through the selected nodes: a step into a node outside
    `keep` is kept as a leaf (so the edge still shows) but not followed further."""
    def walk(node: "TraceNode", top: bool) -> "TraceNode":
        if not top and node.column.relation not in keep:
            return replace(node, steps=())
        return replace(node, steps=tuple(replace(s, node=walk(s.node, False)) for s in node.steps))

    return walk(tree, True)


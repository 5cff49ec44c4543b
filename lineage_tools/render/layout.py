"""A layered (Sugiyama) layout of the model graph for the report page, computed at report time
with grandalf: ranks (the page's columns, left to right), the order inside each rank (crossings
reduced by grandalf's median heuristic) and a vertical position (Brandes-Koepf alignment), so that
the page draws a compact graph with few crossings without laying it out in the browser.

The page draws collapsed nodes where this layout puts them; when it shows more of a node (the
columns on a selected path) it keeps the ranks and the order and only pushes nodes apart.

>>> nodes = [{"id": "a", "label": "a", "depends_on": []}, {"id": "b", "label": "b", "depends_on": ["a"]},
...          {"id": "c", "label": "c", "depends_on": ["a", "b"]}]
>>> lay = layout(nodes)
>>> [(p["rank"], p["order"]) for p in (lay.nodes["a"], lay.nodes["b"], lay.nodes["c"])]
[(0, 0), (1, 0), (2, 0)]
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

NODE_H = 24  # a collapsed node: its header only (the page's HEAD_H)
GAP_Y = 10  # between two nodes of one rank
CHAR_W = 7.0  # average width of a 12 px system-ui character, for the rank widths grandalf spaces
PAD_W = 34  # status dot, padding and findings badge around the name


@dataclass(frozen=True)
class Layout:
    """`nodes[id]` = {rank, order, y}; `ranks` = how many; `height` of the tallest rank."""

    nodes: Mapping[str, dict[str, Any]]
    ranks: int
    height: float

    def to_dict(self) -> dict[str, Any]:
        return {"engine": "grandalf", "direction": "LR", "ranks": self.ranks, "height": round(self.height, 1),
                "node_height": NODE_H, "gap": GAP_Y}


class _View:
    """What grandalf reads off a vertex: its size (w across the rank, h along the flow)."""

    __slots__ = ("w", "h", "xy")

    def __init__(self, w: float, h: float):
        self.w, self.h, self.xy = w, h, (0.0, 0.0)


def _components(ids: Sequence[str], links: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Weakly connected components, each in the input order (union-find)."""
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra
    groups: dict[str, list[str]] = {}
    for i in ids:
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _core(vertices: list[Any], edges: list[Any]) -> Any:
    """A grandalf graph_core for one connected component, built in linear time.

    grandalf's `Graph` finds components and `graph_core` checks connectivity by comparing sets
    once per vertex, which is quadratic (21 s at 5,000 nodes); the component is known to be
    connected here, so it is built directly."""
    from grandalf.graphs import graph_core
    from grandalf.utils.poset import Poset

    core = graph_core.__new__(graph_core)
    core.directed = True
    core.sV = Poset(vertices)
    core.sE = Poset([])
    core.degenerated_edges = set()
    for e in edges:
        e = core.sE.add(e)
        e.attach()
    for v in vertices:
        v.c = core
    return core


def layout(nodes: Sequence[Mapping[str, Any]], *, iterations: int = 2) -> Layout:
    """Ranks, order and vertical position of every node (``id``, ``label``, ``depends_on``).

    Components are laid out one under the other, the biggest first.
    """
    from grandalf.graphs import Edge, Vertex
    from grandalf.layouts import SugiyamaLayout

    ids = [str(n["id"]) for n in nodes]
    known = set(ids)
    label = {str(n["id"]): str(n.get("label") or n.get("name") or n["id"]) for n in nodes}
    links = list(dict.fromkeys((str(p), str(n["id"])) for n in nodes for p in n.get("depends_on") or ()
                               if str(p) in known and str(p) != str(n["id"])))
    out: dict[str, dict[str, Any]] = {}
    ranks, top = 0, 0.0
    limit = sys.getrecursionlimit()
    # grandalf places blocks recursively, as deep as the widest rank
    sys.setrecursionlimit(max(limit, 4 * len(ids) + 1000))
    try:
        comps = sorted(_components(ids, links), key=len, reverse=True)
        by_comp = {i: k for k, comp in enumerate(comps) for i in comp}
        comp_links: dict[int, list[tuple[str, str]]] = {}
        for a, b in links:
            comp_links.setdefault(by_comp[a], []).append((a, b))
        for k, comp in enumerate(comps):
            placed = _layout_component(comp, comp_links.get(k, []), label, iterations, Vertex, Edge, SugiyamaLayout)
            low = min(y for _, _, y in placed.values())
            high = max(y for _, _, y in placed.values())
            for uid, (rank, order, y) in placed.items():
                out[uid] = {"rank": rank, "order": order, "y": round(top + y - low, 1)}
            ranks = max(ranks, 1 + max(r for r, _, _ in placed.values()))
            top += high - low + NODE_H + 3 * GAP_Y
    finally:
        sys.setrecursionlimit(limit)
    log.debug("layout: %d nodes, %d ranks, %d components", len(ids), ranks, len(comps) if ids else 0)
    return Layout(out, ranks, max(0.0, top - 3 * GAP_Y))


def _sugiyama(base: Any) -> Any:
    """grandalf's SugiyamaLayout with its alignment conflicts in a set: it looks each candidate
    pair up in them, a list, which made coordinates quadratic (2.3 of 3.8 s at 1,000 models)."""

    class Sugiyama(base):  # type: ignore[misc, valid-type]
        def _detect_alignment_conflicts(self) -> None:
            super()._detect_alignment_conflicts()
            self.conflicts = set(self.conflicts)

    return Sugiyama


def _layout_component(comp: list[str], links: list[tuple[str, str]], label: Mapping[str, str],
                      iterations: int, Vertex: Any, Edge: Any, SugiyamaLayout: Any) -> dict[str, tuple[int, int, float]]:
    """{id: (rank, order in rank, y of the node's top)} for one connected component."""
    if len(comp) == 1:
        return {comp[0]: (0, 0, 0.0)}
    vs = {}
    for uid in comp:
        v = Vertex(uid)
        # grandalf lays layers top to bottom: w is the size across a layer (our height), h along
        v.view = _View(NODE_H, PAD_W + CHAR_W * len(label[uid]))
        vs[uid] = v
    es = [Edge(vs[a], vs[b]) for a, b in links]
    sug = _sugiyama(SugiyamaLayout)(_core(list(vs.values()), es))
    sug.xspace = GAP_Y
    sug.yspace = 40
    sug.init_all()
    sug.draw(iterations)
    placed = {}
    for rank, layer in enumerate(sug.layers):
        real = [v for v in layer if not getattr(v, "dummy", False) and isinstance(v.data, str)]
        for order, v in enumerate(sorted(real, key=lambda v: v.view.xy[0])):
            placed[v.data] = (rank, order, float(v.view.xy[0]) - NODE_H / 2)
    return placed

"""The report page's layout (grandalf at report time): ranks follow the DAG, nodes of a rank do
not overlap, components do not overlap, crossings are reduced, and big graphs stay fast."""

from __future__ import annotations

from lineage_tools.render.layout import GAP_Y, NODE_H, layout


def _nodes(edges: list[tuple[str, str]], extra: tuple[str, ...] = ()) -> list[dict]:
    ids = list(dict.fromkeys([*extra, *(x for e in edges for x in e)]))
    return [{"id": i, "label": i, "depends_on": [a for a, b in edges if b == i]} for i in ids]


def _crossings(lay, edges) -> int:
    pos = {k: (v["rank"], v["y"]) for k, v in lay.nodes.items()}
    n = 0
    for i, (a, b) in enumerate(edges):
        for c, d in edges[i + 1:]:
            if pos[a][0] == pos[c][0] and pos[b][0] == pos[d][0] and len({a, b, c, d}) == 4:
                n += (pos[a][1] - pos[c][1]) * (pos[b][1] - pos[d][1]) < 0
    return n


def test_ranks_follow_edges_and_nodes_do_not_overlap():
    # seeds named so that alphabetical order would cross every edge into the next rank
    edges = [("s_a", "m_z"), ("s_b", "m_y"), ("s_c", "m_x"), ("m_x", "f"), ("m_y", "f"), ("m_z", "f"),
             ("s_a", "f")]
    lay = layout(_nodes(edges))
    for a, b in edges:
        assert lay.nodes[a]["rank"] < lay.nodes[b]["rank"]
    assert lay.ranks == 3
    for r in range(lay.ranks):
        ys = sorted(v["y"] for v in lay.nodes.values() if v["rank"] == r)
        assert all(y2 - y1 >= NODE_H + GAP_Y - 0.01 for y1, y2 in zip(ys, ys[1:]))
        orders = sorted(v["order"] for v in lay.nodes.values() if v["rank"] == r)
        assert orders == list(range(len(orders)))
    assert _crossings(lay, [e for e in edges if lay.nodes[e[1]]["rank"] - lay.nodes[e[0]]["rank"] == 1]) == 0


def test_components_are_stacked_apart():
    lay = layout(_nodes([("a", "b"), ("c", "d"), ("c", "e")], extra=("lonely",)))
    boxes = sorted((v["y"], k) for k, v in lay.nodes.items() if v["rank"] == 0)
    assert [k for _, k in boxes][0] == "c"  # the biggest component first
    assert all(y2 - y1 >= NODE_H for (y1, _), (y2, _) in zip(boxes, boxes[1:]))
    assert lay.nodes["lonely"]["rank"] == 0 and lay.height > 0


def test_a_wide_graph_in_one_component():
    """3,000 nodes, one component, ranks of 1,500 (grandalf places blocks recursively, as deep
    as a rank is wide: the layout raises the recursion limit for it). Times: bench_page.py."""
    edges = [(f"s{i}", f"m{i}") for i in range(1500)] + [(f"m{i}", f"m{i + 1}") for i in range(0, 1499, 2)] \
        + [(f"m{i}", "hub") for i in range(0, 1500, 7)]
    lay = layout(_nodes(edges))
    assert len(lay.nodes) == 3001 and lay.nodes["hub"]["rank"] > lay.nodes["m0"]["rank"]

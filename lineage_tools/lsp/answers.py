"""What the editor is told, from one `Snapshot`: diagnostics, hovers, definitions, references.

Pure functions of a snapshot and a model's text (no LSP types: `server.py` converts), so the
watch loop and the tests use them too. Positions are 0-based (line, character), as in LSP.

Diagnostics are `check`'s findings (`provenance.check_model`: rule, root, message, line), one
each; a finding that lineage is incomplete is shown as the lineage reasons it lists, each at
its own line (a parse error, an unknown column with the closest names, an unexpanded star);
a text dbt cannot render is one diagnostic at the line dbt names.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..graph import DATASET, LineageGraph
from ..provenance import RULE_LINEAGE, roots_reaching
from ..records import ColumnRef, EdgeType, GraphEdge, ReasonCode
from .state import Snapshot

SOURCE = "lineage-tools"
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_IMPORT_CTE = re.compile(
    r"\b(\w+)\s+as\s*\(\s*select\s+\*\s+from\s+\{\{\s*(ref|source)\s*\(([^)]*)\)\s*\}\}\s*\)", re.I | re.S)
_REF_CALL = re.compile(r"\{\{\s*(ref|source)\s*\(([^)]*)\)\s*\}\}")


@dataclass(frozen=True)
class Problem:
    """One diagnostic: 0-based line and character range on that line."""

    line: int
    start: int
    end: int
    severity: str  # error | warning | information
    code: str
    message: str


@dataclass(frozen=True)
class Location:
    path: str  # project-relative file
    line: int  # 0-based
    start: int = 0
    end: int = 0


# --------------------------------------------------------------------------------------------
# Diagnostics


def _span(lines: Sequence[str], line0: int, word: str | None) -> tuple[int, int]:
    """The range of `word` on the line (its last whole-word occurrence: `... as word`), else
    the line without its indentation."""
    if not 0 <= line0 < len(lines):
        return 0, 0
    text = lines[line0]
    if word:
        hits = [m for m in re.finditer(rf"(?<![\w.]){re.escape(word)}\b", text, re.I)]
        if hits:
            return hits[-1].start(), hits[-1].end()
    stripped = len(text) - len(text.lstrip())
    return stripped, len(text.rstrip())


def _close_names(graph: LineageGraph, uid: str, column: str | None) -> list[str]:
    if not column:
        return []
    node = graph.nodes.get(uid)
    names = {c for d in (node.depends_on if node else ()) for c in graph.columns(d)
             if c.lower() != column.lower()}
    return difflib.get_close_matches(column.lower(), sorted(names, key=str.lower), n=3, cutoff=0.6)


def problems(snap: Snapshot, uid: str, text: str | None = None) -> list[Problem]:
    """The diagnostics of one model file: `text` is the editor's text (lines are counted in it;
    default: the text the snapshot analysed)."""
    text = snap.texts.get(uid, "") if text is None else text
    lines = text.splitlines()
    rp = snap.render_problems.get(uid)
    if rp is not None:
        line0 = max((rp.line or 1) - 1, 0)
        start, end = _span(lines, line0, None)
        return [Problem(line0, start, end, "error", "dbt", rp.message)]
    out: list[Problem] = []
    ml = snap.graph.models.get(uid)
    for f in snap.findings.get(uid, ()):
        if f.rule == RULE_LINEAGE and ml is not None and ml.lineage.reasons:
            for r in ml.lineage.reasons:
                if r.code == ReasonCode.INCREMENTAL_ONLY:
                    continue
                msg = r.message
                if r.code == ReasonCode.PARSE_ERROR:
                    msg = f"the SQL does not parse: {msg}"
                if r.code == ReasonCode.UNKNOWN_COLUMN:
                    close = _close_names(snap.graph, uid, r.column)
                    if close:
                        msg += f" (did you mean {', '.join(close)}?)"
                line0 = max((r.line or f.line or 1) - 1, 0)
                start, end = _span(lines, line0, r.column)
                out.append(Problem(line0, start, end, f.severity, f"lineage/{r.code.value}",
                                   f"{msg}: {'lineage failed' if 'failed' in f.message else 'lineage is partial'}, "
                                   "the provenance contract cannot be checked here"))
            continue
        line0 = max((f.line or 1) - 1, 0)
        start, end = _span(lines, line0, f.column)
        code = f"rule {f.rule}" if f.rule.isdigit() else f.rule
        out.append(Problem(line0, start, end, f.severity, code, f.message))
    return out


# --------------------------------------------------------------------------------------------
# What is under the cursor


@dataclass(frozen=True)
class Target:
    """What the cursor is on: a column (`col`), or a model / source (`node`, column None)."""

    node: str
    column: str | None
    own: bool  # a column of the model being edited (else an input's column, or a model name)


def _word_at(text: str, line: int, char: int) -> tuple[str, str | None, str] | None:
    """(word, qualifier before a dot, the line) at a position."""
    lines = text.splitlines()
    if not 0 <= line < len(lines):
        return None
    src = lines[line]
    for m in _WORD.finditer(src):
        if m.start() <= char <= m.end():
            qual = None
            if m.start() > 0 and src[m.start() - 1] == ".":
                q = re.search(r"([A-Za-z_][\w$]*)\.$", src[: m.start()])
                qual = q.group(1) if q else None
            return m.group(0), qual, src
    return None


def _ref_args(args: str) -> list[str]:
    return re.findall(r"['\"]([^'\"]+)['\"]", args)


def _resolve_ref(graph: LineageGraph, kind: str, args: str) -> str | None:
    names = _ref_args(args)
    if not names:
        return None
    spec = ".".join(names[-2:]) if kind == "source" else names[-1]
    try:
        return graph.node(spec).unique_id
    except Exception:
        return None


def _aliases(graph: LineageGraph, text: str) -> dict[str, str]:
    """Import CTEs (`name as (select * from {{ ref('x') }})`) -> the node they read."""
    out = {}
    for m in _IMPORT_CTE.finditer(text):
        uid = _resolve_ref(graph, m.group(2), m.group(3))
        if uid:
            out[m.group(1).lower()] = uid
    return out


def target_at(snap: Snapshot, uid: str, text: str, line: int, char: int) -> Target | None:
    """The column or model at a position of model `uid`'s text."""
    graph = snap.graph
    found = _word_at(text, line, char)
    if found is None:
        return None
    word, qual, src = found
    for m in _REF_CALL.finditer(src):
        if m.start() <= char <= m.end():
            ref = _resolve_ref(graph, m.group(1), m.group(2))
            return Target(ref, None, False) if ref else None
    low = word.lower()
    node = graph.nodes.get(uid)
    if node is not None and low == node.name.lower():
        return Target(uid, None, True)
    own = {c.lower(): c for c in graph.columns(uid)}
    ml = graph.models.get(uid)
    on_its_line = ml is not None and any(c.lower() == low and ln == line + 1 for c, ln in ml.lineage.column_lines)
    aliases = _aliases(graph, text)
    if low in own and (on_its_line or qual is None and not _input_has(graph, uid, low)):
        return Target(uid, own[low], True)
    if qual is not None and qual.lower() in aliases:
        up = aliases[qual.lower()]
        for c in graph.columns(up):
            if c.lower() == low:
                return Target(up, c, False)
    inputs = [d for d in (node.depends_on if node else ()) if any(c.lower() == low for c in graph.columns(d))]
    if len(inputs) == 1:
        col = next(c for c in graph.columns(inputs[0]) if c.lower() == low)
        return Target(inputs[0], col, False)
    if low in own:
        return Target(uid, own[low], True)
    if low in aliases:
        return Target(aliases[low], None, False)
    if low not in _node_names(snap):
        return None  # a keyword, a CTE or an alias: nothing of the project's
    try:
        hit = graph.node(word)
        return Target(hit.unique_id, None, False)
    except Exception:
        return None


def _node_names(snap: Snapshot) -> frozenset[str]:
    """Every name a node answers to (lower case), once per snapshot."""
    names = snap.memo.get("names")
    if names is None:
        g = snap.graph
        names = snap.memo["names"] = frozenset(
            x.lower() for uid, n in g.nodes.items() for x in (uid, n.name, g.display_name(uid), n.relation))
    return names


def _input_has(graph: LineageGraph, uid: str, low: str) -> bool:
    node = graph.nodes.get(uid)
    return any(c.lower() == low for d in (node.depends_on if node else ()) for c in graph.columns(d))


# --------------------------------------------------------------------------------------------
# Hover


def _edge_words(edges: Sequence[GraphEdge]) -> str:
    kinds = sorted({f"{e.type.value} {e.subtype.value}" + (" (masking)" if e.masking else "") for e in edges})
    return ", ".join(kinds)


def hover(snap: Snapshot, uid: str, text: str, line: int, char: int) -> str | None:
    """Markdown for what is under the cursor: a column's typed inputs, the filters/joins/groupings
    shaping its rows, its roots with the provenance columns carrying them, how many downstream
    columns read it; a model's (or a `source_id` column's) roots, filter or rebuild for each."""
    t = target_at(snap, uid, text, line, char)
    if t is None:
        return None
    graph = snap.graph
    if t.column is None:
        return _hover_model(snap, t.node)
    text_out = _hover_column(snap, ColumnRef(t.node, t.column))
    if t.column.lower() == "source_id" and t.node in graph.models:
        text_out += "\n\n" + _hover_model(snap, t.node, sources_only=True)
    return text_out


def _hover_column(snap: Snapshot, col: ColumnRef) -> str:
    graph = snap.graph
    prov = snap.prov
    node = graph.nodes[col.relation]
    out = [f"**{graph.label(col)}** ({node.resource_type}" + (f", {node.materialized}" if node.materialized else "") + ")"]
    if graph.is_root(col.relation):
        out.append("")
        out.append("A root column: its values come from the raw relation itself.")
    else:
        edges = graph.upstream_edges(col)
        direct: dict[ColumnRef, list[GraphEdge]] = {}
        shaping: dict[ColumnRef, list[GraphEdge]] = {}
        for e in edges:
            (direct if e.type == EdgeType.DIRECT else shaping).setdefault(e.source, []).append(e)
        out.append("")
        out.append("**Made of** (DIRECT inputs):" if direct else "**Made of**: no column (a literal or a count)")
        for src, es in sorted(direct.items(), key=lambda kv: graph.label(kv[0])):
            out.append(f"- `{graph.label(src)}`: {_edge_words(es)}")
        if shaping:
            out.append("")
            out.append("**Rows shaped by** (INDIRECT):")
            for src, es in sorted(shaping.items(), key=lambda kv: graph.label(kv[0])):
                out.append(f"- `{graph.label(src)}`: {_edge_words(es)}")
        roots = sorted(graph.roots(col), key=graph.label)
        prov_cols = prov.provenance_columns(col.relation)
        out.append("")
        if not roots:
            out.append("**Roots**: none (no root column flows into it)")
        else:
            out.append("**Roots** and the provenance columns carrying them:")
            for r in roots:
                carriers = [c for c in prov_cols if r.relation in prov.provenance_roots(ColumnRef(col.relation, c))]
                if r.relation not in prov.roots:
                    where = "not a registered root (no source_id)"
                elif carriers:
                    where = "carried by " + ", ".join(f"`{c}`" for c in carriers)
                else:
                    where = f"**lost**: no provenance column of {graph.display_name(col.relation)} reaches its source_id"
                out.append(f"- `{graph.label(r)}`: {where}")
        if prov.is_provenance(col):
            out.append("")
            out.append("A provenance column of " + ", ".join(
                f"`{graph.display_name(r)}`" for r in sorted(prov.provenance_roots(col))) + ".")
    down = graph.downstream(col)
    models = {c.relation for c in down}
    direct_readers = {e.target for e in graph.downstream_edges(col)}
    out.append("")
    out.append(f"**Read by** {len(down)} downstream column(s) in {len(models)} model(s) "
               f"({len(direct_readers)} directly).")
    return "\n".join(out)


def _hover_model(snap: Snapshot, uid: str, sources_only: bool = False) -> str:
    graph = snap.graph
    node = graph.nodes[uid]
    out: list[str] = []
    if not sources_only:
        out.append(f"**{graph.display_name(uid)}** ({node.resource_type}"
                   + (f", {node.materialized}" if node.materialized else "") + ")")
        ml = graph.models.get(uid)
        if ml is not None:
            out.append(f"Lineage {ml.status.value}; {len(ml.lineage.columns)} column(s).")
        if uid not in graph.models:
            return "\n".join(out)
        out.append("")
    reach = snap.memo.get(("roots_reaching", uid))
    if reach is None:
        reach = snap.memo[("roots_reaching", uid)] = roots_reaching(snap.prov, uid)
    if not reach:
        out.append("No registered source reaches it.")
        return "\n".join(out)
    out.append("**Sources reaching it** (to drop one: filter its rows, or rebuild):")
    for rr in reach:
        ids = _source_ids(snap, rr.root)
        shown = ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "") if ids else "ids not known statically"
        carried = ", ".join(f"`{c}`" for c in rr.carried_by) or "**no provenance column**"
        out.append(f"- `{graph.display_name(rr.root)}` ({shown}): **{rr.mode}**, carried by {carried}. {rr.reason}")
    return "\n".join(out)


def _source_ids(snap: Snapshot, root: str) -> list[str]:
    """The source ids a root seed's rows carry (its CSV's source_id values)."""
    node = snap.graph.nodes.get(root)
    if node is None or node.resource_type != "seed" or not node.original_file_path:
        return []
    try:
        with open(snap.project_dir / node.original_file_path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            key = next((f for f in reader.fieldnames or () if f.strip().lower() == "source_id"), None)
            if key is None:
                return []
            return sorted({(row.get(key) or "").strip() for row in reader} - {""})
    except OSError:
        return []


# --------------------------------------------------------------------------------------------
# Definition and references


def _column_line(snap: Snapshot, col: ColumnRef) -> Location | None:
    """Where a column is defined: its line in the model file, the seed's header, the source's
    YAML entry."""
    graph = snap.graph
    node = graph.nodes.get(col.relation)
    if node is None or not node.original_file_path:
        return None
    path = node.original_file_path
    ml = graph.models.get(col.relation)
    if ml is not None:
        text = snap.texts.get(col.relation, "")
        line = dict(ml.lineage.column_lines).get(col.column)
        if line is None:
            return Location(path, 0)
        start, end = _span(text.splitlines(), line - 1, col.column)
        return Location(path, line - 1, start, end)
    file_lines = _read_lines(snap.project_dir / path)
    if node.resource_type == "seed":
        header = file_lines[0] if file_lines else ""
        m = re.search(rf"(?<![\w]){re.escape(col.column)}(?![\w])", header, re.I)
        return Location(path, 0, m.start() if m else 0, m.end() if m else 0)
    if node.resource_type == "source":
        table_at = next((i for i, ln in enumerate(file_lines)
                         if re.match(rf"\s*-\s*name:\s*['\"]?{re.escape(node.name)}['\"]?\s*$", ln)), 0)
        for i in range(table_at, len(file_lines)):
            m = re.match(rf"(\s*-\s*name:\s*['\"]?)({re.escape(col.column)})['\"]?\s*$", file_lines[i], re.I)
            if m:
                return Location(path, i, m.start(2), m.end(2))
        return Location(path, table_at)
    return Location(path, 0)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except OSError:
        return []


def definition(snap: Snapshot, uid: str, text: str, line: int, char: int) -> list[Location]:
    """Where what is under the cursor is defined: for an input's column, its line upstream; for
    a model's own column, the lines of its DIRECT inputs upstream; for a model or source name,
    its file."""
    t = target_at(snap, uid, text, line, char)
    if t is None:
        return []
    graph = snap.graph
    if t.column is None:
        node = graph.nodes.get(t.node)
        return [Location(node.original_file_path, 0)] if node and node.original_file_path else []
    if not t.own:
        loc = _column_line(snap, ColumnRef(t.node, t.column))
        return [loc] if loc else []
    out = []
    for e in graph.upstream_edges(ColumnRef(t.node, t.column), {EdgeType.DIRECT}):
        loc = _column_line(snap, e.source)
        if loc and loc not in out:
            out.append(loc)
    return out


def references(snap: Snapshot, uid: str, text: str, line: int, char: int,
               include_declaration: bool = True) -> list[Location]:
    """The downstream models and lines that read the column under the cursor (its consumers'
    columns made from it, and the lines of the filters, joins and groupings that use it)."""
    t = target_at(snap, uid, text, line, char)
    if t is None or t.column is None:
        return []
    graph = snap.graph
    col = ColumnRef(t.node, t.column)
    out: list[Location] = []
    if include_declaration:
        own = _column_line(snap, col)
        if own:
            out.append(own)
    seen_wide: set[str] = set()
    for e in graph.downstream_edges(col):
        target = e.target
        if e.type == EdgeType.INDIRECT and target.column != DATASET and not _feeds_column(graph, col, target, e):
            if target.relation in seen_wide:
                continue
            seen_wide.add(target.relation)
            loc = _mention(snap, target.relation, col.column)
        else:
            loc = _column_line(snap, target)
        if loc and loc not in out:
            out.append(loc)
    return out


def _feeds_column(graph: LineageGraph, src: ColumnRef, target: ColumnRef, e: GraphEdge) -> bool:
    """Is this edge stored against the target column itself (not a dataset-wide edge)?"""
    return any(x.subtype == e.subtype for x in graph.upstream_edges(target) if x.source == src
               and x.target.column == target.column)


def _mention(snap: Snapshot, uid: str, column: str) -> Location | None:
    node = snap.graph.nodes.get(uid)
    if node is None or not node.original_file_path:
        return None
    lines = snap.texts.get(uid, "").splitlines()
    for i, ln in enumerate(lines):
        if re.search(r"\b(on|using|where|group by|partition by|order by|and|or|having|in)\b", ln, re.I) and \
                re.search(rf"(?<![\w]){re.escape(column)}\b", ln, re.I):
            start, end = _span(lines, i, column)
            return Location(node.original_file_path, i, start, end)
    for i, ln in enumerate(lines):
        if re.search(rf"(?<![\w]){re.escape(column)}\b", ln, re.I):
            start, end = _span(lines, i, column)
            return Location(node.original_file_path, i, start, end)
    return Location(node.original_file_path, 0)

"""Renderers for `check`, `impact`, `quarantine` and `release`: the same records as text, JSON,
GitHub Actions annotations (check) or Markdown (impact).

>>> github_escape_data("50% done\\nnext")
'50%25 done%0Anext'
>>> github_escape_property("a,b:c")
'a%2Cb%3Ac'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..provenance import CheckResult, Impact, clean_rows_sql
from ..quarantine import QuarantineResult
from . import mdtext as md


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# ---- check ---------------------------------------------------------------------------------

def check_json(result: CheckResult) -> str:
    return _dump({
        "models_checked": result.models_checked,
        "findings": [
            {"model": f.model, "column": f.column, "rule": f.rule, "root": f.root,
             "message": f.message, "severity": f.severity, "path": f.path, "line": f.line}
            for f in result.findings
        ],
    })


def check_text(result: CheckResult) -> str:
    lines = []
    for f in result.findings:
        where = f.path or f.model
        if f.line:
            where += f":{f.line}"
        rule = f"rule {f.rule}" if f.rule.isdigit() else f.rule
        lines.append(f"{where}: {f.severity} [{rule}] {f.message}")
    n_err = sum(f.severity == "error" for f in result.findings)
    n_warn = len(result.findings) - n_err
    summary = f"{md.plural(result.models_checked, 'model')} checked: "
    summary += "no findings" if not result.findings else f"{md.plural(n_err, 'error')}, {md.plural(n_warn, 'warning')}"
    lines.append(summary)
    return "\n".join(lines) + "\n"


def github_escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_escape_property(s: str) -> str:
    return github_escape_data(s).replace(":", "%3A").replace(",", "%2C")


def check_github(result: CheckResult) -> str:
    """One GitHub Actions workflow command per finding (`::error file=...,line=...::msg`)."""
    lines = []
    for f in result.findings:
        props = []
        if f.path:
            props.append(f"file={github_escape_property(f.path)}")
        if f.line:
            props.append(f"line={f.line}")
        rule = f"rule {f.rule}" if f.rule.isdigit() else f.rule
        props.append(f"title={github_escape_property(f'provenance {rule}: {f.model}' + (f'.{f.column}' if f.column else ''))}")
        kind = "error" if f.severity == "error" else "warning"
        lines.append(f"::{kind} {','.join(props)}::{github_escape_data(f.message)}")
    n_err = sum(f.severity == "error" for f in result.findings)
    lines.append(f"provenance check: {md.plural(result.models_checked, 'model')} checked, "
                 f"{md.plural(n_err, 'error')}, {md.plural(len(result.findings) - n_err, 'warning')}")
    return "\n".join(lines) + "\n"


# ---- impact --------------------------------------------------------------------------------

def rows_left(imp: Impact) -> int | None:
    """Rows of the sources still in the models they reach (None: not counted)."""
    if not imp.rows_counted:
        return None
    counted = [m.tainted_rows for m in imp.models if m.tainted_rows is not None]
    return sum(counted) if counted or not imp.models else None


def shared_reasons(imp: Impact) -> dict[str, list[str]]:
    """Reasons several models give word for word (the `filter` sentence): said once, above them."""
    by_reason: dict[str, list[str]] = {}
    for m in imp.models:
        by_reason.setdefault(m.reason, []).append(m.model)
    return {why: names for why, names in by_reason.items() if why and len(names) > 1}


def impact_dict(imp: Impact, emit_sql: bool = False, quarantined: Sequence[str] = ()) -> dict[str, Any]:
    models = []
    for m in imp.models:
        row: dict[str, Any] = {
            "model": m.model, "mode": m.mode, "columns": list(m.columns),
            "tainted_rows": m.tainted_rows, "total_rows": m.total_rows, "reason": m.reason,
            "provenance_columns": [c for c, _ in m.provenance_columns],
        }
        if emit_sql:
            row["clean_sql"] = clean_rows_sql(imp, m)
        models.append(row)
    return {
        "source_ids": list(imp.source_ids),
        "quarantined": [s for s in imp.source_ids if s in quarantined],
        "roots": list(imp.roots),
        "rows_counted": imp.rows_counted,
        "rows_left": rows_left(imp),
        "note": imp.note,
        "models": models,
        "rebuild_command": imp.rebuild_command,
    }


def impact_json(imp: Impact, emit_sql: bool = False, quarantined: Sequence[str] = ()) -> str:
    return _dump(impact_dict(imp, emit_sql, quarantined))


def _rows(m) -> str:
    if m.total_rows is None:
        return "ephemeral (no table)" if m.materialized == "ephemeral" else "not counted"
    tainted = "?" if m.tainted_rows is None else str(m.tainted_rows)
    return f"{tainted} of {m.total_rows} rows tainted"


def _held(imp: Impact, q=lambda s: s) -> str:
    return ", ".join(f"{q(r)} ({md.plural(n, 'row')})" for r, n in imp.root_rows) if imp.root_rows else \
        ", ".join(q(r) for r in imp.roots)


def _settled(imp: Impact, quarantined: Sequence[str]) -> tuple[bool, int | None]:
    """(every source quarantined already, rows of them left in the models they reach)."""
    every = bool(imp.source_ids) and all(s in quarantined for s in imp.source_ids)
    return every, rows_left(imp)


def impact_text(imp: Impact, emit_sql: bool = False, quarantined: Sequence[str] = ()) -> str:
    """What the sources reach; for sources already quarantined, what remains of them."""
    ids = ", ".join(imp.source_ids)
    out = [f"impact of {ids}"]
    if not imp.models:
        out.append(f"nothing to do: no rows of {ids} in any root relation")
        if imp.note:
            out.append(f"note: {imp.note}")
        return "\n".join(out) + "\n"
    every, left = _settled(imp, quarantined)
    verb = "is" if len(imp.source_ids) == 1 else "are"
    if every and left == 0:
        out.append(f"{ids} {verb} quarantined: 0 rows remain in the {md.plural(len(imp.models), 'model')} "
                   "it reaches; nothing to do")
        out.append(f"raw rows kept in: {_held(imp)}")
        out.append(f"models reached, all clean: {', '.join(m.model for m in imp.models)}")
        if imp.note:
            out.append(f"note: {imp.note}")
        return "\n".join(out) + "\n"
    if every:
        out.append(f"{ids} {verb} quarantined, but rows left in the models it reaches were not counted"
                   if left is None else
                   f"{ids} {verb} quarantined, but {md.plural(left, 'row')} remain in the models it reaches: rebuild them")
    else:
        already = [s for s in imp.source_ids if s in quarantined]
        if already:
            out.append(f"already quarantined: {', '.join(already)}")
    out.append(f"rows held in: {_held(imp)}")
    if imp.note:
        out.append(f"note: {imp.note}")
    n_filter = sum(m.mode == "filter" for m in imp.models)
    out.append(f"{md.plural(len(imp.models), 'model')} reached: {n_filter} filter, {len(imp.models) - n_filter} rebuild")
    shared = shared_reasons(imp)
    for why, names in shared.items():
        mode = next(m.mode for m in imp.models if m.reason == why)
        out.append(f"  {mode} ({md.plural(len(names), 'model')}): {why}")
    out.append("")
    width = max(len(m.model) for m in imp.models)
    for m in imp.models:
        out.append(f"  {m.model:<{width}}  {m.mode:<7}  {_rows(m)}")
        if m.columns:
            out.append(f"  {'':<{width}}  columns: {', '.join(m.columns)}")
        if m.reason not in shared:
            out.append(f"  {'':<{width}}  why: {m.reason}")
        if emit_sql:
            sql = clean_rows_sql(imp, m)
            if sql:
                out.append(f"  {'':<{width}}  clean rows: {sql};")
    out.append("")
    out.append("rebuild without the sources:")
    out.append(f"  {imp.rebuild_command}")
    return "\n".join(out) + "\n"


def impact_markdown(imp: Impact, emit_sql: bool = False, quarantined: Sequence[str] = ()) -> str:
    ids = ", ".join(md.code(s) for s in imp.source_ids)
    out = [f"## Impact of {ids}", ""]
    if not imp.models:
        out.append("Nothing to do: no rows of these sources in any root relation.")
        if imp.note:
            out += ["", f"_Note: {md.text(imp.note)}_"]
        return "\n".join(out) + "\n"
    every, left = _settled(imp, quarantined)
    if every and left == 0:
        out.append(f"Quarantined, nothing left to do: 0 rows remain in the {md.plural(len(imp.models), 'model')} "
                   f"it reaches; raw rows kept in {_held(imp, md.code)}.")
        if imp.note:
            out += ["", f"_Note: {md.text(imp.note)}_"]
        return "\n".join(out) + "\n"
    if every:
        out += ["Quarantined, but rows left in the models it reaches were not counted." if left is None else
                f"Quarantined, but **{md.plural(left, 'row')} remain** in the models it reaches: rebuild them.", ""]
    out.append(f"Rows held in: {_held(imp, md.code)}.")
    if imp.note:
        out += ["", f"_Note: {md.text(imp.note)}_"]
    shared = shared_reasons(imp)
    if shared:
        out.append("")
        for why, names in shared.items():
            mode = next(m.mode for m in imp.models if m.reason == why)
            out.append(f"- **{mode}** ({md.plural(len(names), 'model')}): {md.text(why)}")
    out += ["", "| model | mode | tainted rows | total rows | columns | why |", "|---|---|---:|---:|---|---|"]
    for m in imp.models:
        tainted = "" if m.tainted_rows is None else str(m.tainted_rows)
        total = "" if m.total_rows is None else str(m.total_rows)
        cols = ", ".join(md.code(c, in_table=True) for c in m.columns)
        why = f"as above ({m.mode})" if m.reason in shared else md.text(m.reason).replace('|', '&#124;')
        out.append(f"| {md.code(m.model, in_table=True)} | **{m.mode}** | {tainted} | {total} | {cols} | {why} |")
    out += ["", "Rebuild without the sources:", "", "```sh", imp.rebuild_command or "", "```"]
    if emit_sql:
        for m in imp.models:
            sql = clean_rows_sql(imp, m)
            if sql:
                out += ["", f"Clean rows of {md.code(m.model)}:", "", "```sql", sql + ";", "```"]
    return "\n".join(out) + "\n"


# ---- quarantine / release ------------------------------------------------------------------

def quarantine_dict(res: QuarantineResult) -> dict[str, Any]:
    data: dict[str, Any] = {
        "action": res.action,
        "source_ids": list(res.source_ids),
        "dry_run": res.dry_run,
        "nothing_to_do": res.nothing_to_do,
        "registry_changed": list(res.registry_changed),
        "commands": list(res.commands),
        "models": [{"model": m.model, "rows_before": m.rows_before, "rows_after": m.rows_after} for m in res.models],
    }
    key = "remaining_tainted_rows" if res.action == "quarantine" else "tainted_rows"
    data[key] = res.remaining_tainted_rows
    data["note"] = res.note
    return data


def quarantine_json(res: QuarantineResult) -> str:
    return _dump(quarantine_dict(res))


def quarantine_text(res: QuarantineResult) -> str:
    ids = ", ".join(res.source_ids)
    verb = "quarantine" if res.action == "quarantine" else "release"
    out = []
    if res.nothing_to_do:
        out.append(res.note or f"nothing to do: {ids}")
        return "\n".join(out) + "\n"
    if res.dry_run:
        out.append(f"dry run: {verb} {ids}")
        state = "quarantined" if res.action == "quarantine" else "active"
        out.append(f"  registry: {', '.join(res.registry_changed)} would be set to {state}"
                   if res.registry_changed else f"  registry: already {state}")
        for c in res.commands:
            out.append(f"  would run: {c}")
        out.append(f"  models to rebuild: {', '.join(m.model for m in res.models) or '(none)'}")
    else:
        done = "quarantined" if res.action == "quarantine" else "released"
        out.append(f"{done} {ids}" + ("" if res.registry_changed else " (the registry already said so)"))
        if res.models:
            width = max(len(m.model) for m in res.models)
            for m in res.models:
                b = "-" if m.rows_before is None else str(m.rows_before)
                a = "-" if m.rows_after is None else str(m.rows_after)
                out.append(f"  {m.model:<{width}}  rows {b} -> {a}")
        if res.action == "quarantine":
            out.append(f"rows still carrying {ids}: {res.remaining_tainted_rows}")
        else:
            out.append(f"rows carrying {ids} again: {res.remaining_tainted_rows}")
    if res.note:
        out.append(f"note: {res.note}")
    return "\n".join(out) + "\n"

"""The analyst's loop in an editor: `lineage-tools lsp` on a synthetic project, driven by a real
LSP client over stdio (pygls), as an editor drives it.

    .venv/bin/python benchmarks/bench_lsp.py [--models 1000] [--workdir /tmp/lineage-bench]
        [--seed 7] [--edits 10] [--hovers 50] [--json out.json]
    .venv/bin/python benchmarks/bench_lsp.py --models 5000 --memory-only

On a private copy of the generated (and compiled) project (see `synthetic_project.py`):

1. start: from launching the server to its first diagnostics (the project loaded, every model
   checked), then to "dbt ready" (dbt imported and the project parsed in-process);
2. for --edits models spread over the DAG (staging to marts), each opened in the editor:
   a. a comment edit (refs and lineage unchanged): ``didChange`` then ``didSave`` at once;
   b. a new column (refs unchanged, columns change: consumers are analysed again after the
      edited file is answered): ``didChange`` then ``didSave``;
   c. a ``ref`` added (a scalar subquery over an upstream staging model the model did not read);
   d. the same comment edit as ``didChange`` alone, with the server's default debounce;
   each timed from the notification sent to the ``publishDiagnostics`` of that document
   version; the server is let go idle (its `lineageTools/status`) before the next;
3. --hovers hovers on output columns and column references of the edited models, timed from
   request to answer;
4. the server's resident memory (VmRSS) and peak (VmHWM) after loading and at the end;
5. side by side, without a server (--baseline models): the new-column edit saved, then
   `lineage-tools check --select MODEL` in a fresh process (dbt compiles the stale project).

Medians (and max) are printed with the targets: diagnostics after an edit whose refs did not
change < 1 s, after an edit adding a ref < 3 s; hover < 100 ms; memory < 1 GiB at 5,000 models.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types as T
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic_project  # noqa: E402

BIN = Path(sys.executable).parent
LINEAGE_TOOLS = str(BIN / "lineage-tools")


class Client(LanguageClient):
    def __init__(self) -> None:
        super().__init__("bench-lsp", "1")
        self.published: list[tuple[float, T.PublishDiagnosticsParams]] = []
        self.logs: list[str] = []


def make_client() -> Client:
    c = Client()

    @c.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def _pub(params: T.PublishDiagnosticsParams) -> None:
        c.published.append((time.perf_counter(), params))

    @c.feature(T.WINDOW_LOG_MESSAGE)
    def _log(params: T.LogMessageParams) -> None:
        c.logs.append(params.message)

    @c.feature(T.WINDOW_SHOW_MESSAGE)
    def _show(params: T.ShowMessageParams) -> None:
        c.logs.append(params.message)

    return c


def rss(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) / 1024
    return out.get("VmRSS", 0.0), out.get("VmHWM", 0.0)


async def wait_for(c: Client, uri: str, version: int | None, since: int, timeout: float = 600) -> float:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        for t, p in c.published[since:]:
            if p.uri == uri and (version is None or p.version == version):
                return t
        await asyncio.sleep(0.002)
    raise SystemExit(f"no diagnostics for {uri} v{version} in {timeout} s; server said: {c.logs[-3:]}")


async def idle(c: Client, timeout: float = 900) -> None:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        st = await c.protocol.send_request_async("lineageTools/status", {})
        get = st.get if isinstance(st, dict) else (lambda k, s=st: getattr(s, k, None))
        if get("ready") and not get("pending") and not get("busy") and not get("debouncing"):
            return
        await asyncio.sleep(0.05)
    raise SystemExit("server never went idle")


def pick_models(project: Path, n: int) -> list[str]:
    """`n` model files: a fifth staging (the most downstream work), the rest spread over the
    intermediate layers and marts (evenly over sorted names)."""
    def files(folder: str) -> list[str]:
        found = sorted(str(p.relative_to(project)) for p in (project / "models" / folder).rglob("*.sql"))
        return [f for f in found if _LAST_SELECT.search((project / f).read_text())]

    def spread(items: list[str], k: int) -> list[str]:
        return [items[i * len(items) // k] for i in range(k)] if items and k else []

    n_staging, n_marts = max(1, n // 5), max(1, n // 5)
    return (spread(files("staging"), n_staging) + spread(files("intermediate"), n - n_staging - n_marts)
            + spread(files("marts"), n_marts))


_LAST_SELECT = re.compile(r"^select \* from (\w+)\s*$", re.M)


def with_column(text: str, expr: str) -> str:
    """`text` whose last `select * from x` also selects `expr`."""
    m = list(_LAST_SELECT.finditer(text))[-1]
    return text[:m.start()] + f"select *, {expr} from {m.group(1)}" + text[m.end():]


def add_ref(text: str, staging: list[str], name: str) -> str | None:
    """`text` with a column read from a staging model it does not ref yet (a new ref)."""
    for s in staging:
        if s == name or f"ref('{s}')" in text:
            continue
        return with_column(text, f"(select count(*) from {{{{ ref('{s}') }}}}) as bench_ref_rows")
    return None


async def run(project: Path, edits: int, hovers: int, memory_only: bool, baseline: int = 0) -> dict:
    c = make_client()
    t0 = time.perf_counter()
    await c.start_io(LINEAGE_TOOLS, "lsp", "--project-dir", str(project), "--no-watch",
                     env=dict(os.environ, DO_NOT_TRACK="1", DBT_PROFILES_DIR=str(project)), cwd=str(project))
    pid = c._server.pid
    await c.initialize_async(T.InitializeParams(capabilities=T.ClientCapabilities(),
                                                root_uri=from_fs_path(str(project))))
    c.initialized(T.InitializedParams())
    while not any("models loaded" in m for m in c.logs):
        await asyncio.sleep(0.05)
    loaded = time.perf_counter() - t0
    while not any("dbt ready" in m for m in c.logs):
        await asyncio.sleep(0.05)
    ready = time.perf_counter() - t0
    await idle(c)
    mem_loaded = rss(pid)
    res: dict = {"loaded_s": round(loaded, 2), "ready_s": round(ready, 2),
                 "rss_loaded_mib": round(mem_loaded[0]), "hwm_loaded_mib": round(mem_loaded[1])}
    print(f"loaded (diagnostics of every model) in {loaded:.1f} s; dbt ready in {ready:.1f} s; "
          f"RSS {mem_loaded[0]:.0f} MiB (peak {mem_loaded[1]:.0f} MiB)", flush=True)
    if memory_only:
        await c.shutdown_async(None)
        c.exit(None)
        await c.stop()
        return res
    staging = sorted(p.stem for p in (project / "models" / "staging").glob("*.sql"))
    times: dict[str, list[float]] = {"comment": [], "new_column": [], "add_ref": [], "change_debounced": [],
                                     "new_column_settled": []}
    hover_ms: list[float] = []
    version: dict[str, int] = {}

    async def send(rel: str, text: str, save: bool, settled: list[float] | None = None) -> float:
        uri = from_fs_path(str(project / rel))
        version[rel] += 1
        v = version[rel]
        since = len(c.published)
        if save:
            (project / rel).write_text(text, encoding="utf-8")
        t = time.perf_counter()
        c.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(version=v, uri=uri), [T.TextDocumentContentChangeWholeDocument(text=text)]))
        if save:
            c.text_document_did_save(T.DidSaveTextDocumentParams(T.TextDocumentIdentifier(uri=uri)))
        got = await wait_for(c, uri, v, since)
        await idle(c)
        if settled is not None:  # until every downstream model is analysed and checked again
            settled.append(time.perf_counter() - t)
        return got - t

    for rel in pick_models(project, edits):
        uri = from_fs_path(str(project / rel))
        original = (project / rel).read_text(encoding="utf-8")
        version[rel] = 1
        since = len(c.published)
        c.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "sql", 1, original)))
        await wait_for(c, uri, 1, since)
        await idle(c)
        name = Path(rel).stem
        times["comment"].append(await send(rel, original + "\n-- an analyst's note\n", True))
        times["new_column"].append(await send(rel, with_column(original, "1 as bench_new_col"), True,
                                              times["new_column_settled"]))
        with_ref = add_ref(original, staging, name)
        if with_ref is not None:
            times["add_ref"].append(await send(rel, with_ref, True))
        times["change_debounced"].append(await send(rel, original + "\n-- typing\n", False))
        await send(rel, original, True)  # back as it was
        lines = original.splitlines()
        spots = [(i, m.start() + 1) for i, ln in enumerate(lines) for m in re.finditer(r"\b[a-z_][a-z0-9_]*\b", ln)
                 if not ln.lstrip().startswith("--") and m.group(0) not in ("select", "from", "as", "with", "on")]
        for i, ch in spots[:: max(1, len(spots) // max(1, hovers // edits))][: max(1, hovers // edits)]:
            t = time.perf_counter()
            await c.text_document_hover_async(T.HoverParams(T.TextDocumentIdentifier(uri), T.Position(i, ch)))
            hover_ms.append((time.perf_counter() - t) * 1000)
        print(f"  {rel}: comment {times['comment'][-1]:.3f} s, new column {times['new_column'][-1]:.3f} s "
              f"(downstream settled {times['new_column_settled'][-1]:.2f} s)"
              + (f", add ref {times['add_ref'][-1]:.3f} s" if with_ref is not None else "")
              + f", didChange (debounced) {times['change_debounced'][-1]:.3f} s", flush=True)
    mem_end = rss(pid)
    await c.shutdown_async(None)
    c.exit(None)
    await c.stop()
    for k, v in times.items():
        if v:
            res[k] = {"median_s": round(statistics.median(v), 3), "max_s": round(max(v), 3), "n": len(v)}
    res["hover"] = {"median_ms": round(statistics.median(hover_ms), 1), "max_ms": round(max(hover_ms), 1),
                    "n": len(hover_ms)}
    res["rss_end_mib"], res["hwm_end_mib"] = round(mem_end[0]), round(mem_end[1])
    if baseline:
        res["cli_check_select_after_save"] = cli_baseline(project, pick_models(project, edits)[:baseline])
    return res


def cli_baseline(project: Path, rels: list[str]) -> dict:
    """The loop without a server, side by side: the same new-column edit saved, then
    `lineage-tools check --select MODEL` (a fresh process: it sees the manifest stale and has
    dbt compile the project before it checks)."""
    import subprocess

    env = dict(os.environ, DO_NOT_TRACK="1", DBT_PROFILES_DIR=str(project))
    walls = []
    for rel in rels:
        original = (project / rel).read_text(encoding="utf-8")
        (project / rel).write_text(with_column(original, "1 as bench_new_col"), encoding="utf-8")
        t = time.perf_counter()
        subprocess.run([LINEAGE_TOOLS, "check", "--select", Path(rel).stem, "--project-dir", str(project)],
                       cwd=project, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - t)
        (project / rel).write_text(original, encoding="utf-8")
        print(f"  baseline: {rel}: check --select after the save {walls[-1]:.1f} s", flush=True)
    return {"median_s": round(statistics.median(walls), 2), "max_s": round(max(walls), 2), "n": len(walls)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lineage-bench"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--hovers", type=int, default=50)
    ap.add_argument("--memory-only", action="store_true")
    ap.add_argument("--baseline", type=int, default=2,
                    help="also time `check --select` after a save for this many of the edited models")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    source, meta = synthetic_project.ensure_project(args.models, args.workdir, args.seed)
    project = args.workdir / f"lsp-p{args.models}_s{args.seed}"
    if project.exists():
        shutil.rmtree(project)
    shutil.copytree(source, project, ignore=shutil.ignore_patterns("*.duckdb", "*.wal", "lineage_cache"))
    print(f"project: {project} ({meta['models']} models); load average {os.getloadavg()[0]:.1f}", flush=True)
    res = asyncio.run(run(project, args.edits, args.hovers, args.memory_only, args.baseline))
    res.update(models=meta["models"], load_average_end=round(os.getloadavg()[0], 1))
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()

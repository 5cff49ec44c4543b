"""`lineage-tools lsp` end to end: a real LSP client (pytest-lsp) talks to the installed
`lineage-tools lsp` over stdio, on a copy of the pipeline compiled by a real `dbt compile`.

The server renders each edit in-process with dbt and answers from its in-memory graph; these
tests say what an analyst sees: a diagnostic at the right line when a join drops one side's
provenance, and cleared when fixed; typed inputs on hover; definition and references across
files; one diagnostic (and a live server) for a syntax error; the last edit of a burst wins;
new, renamed and deleted model files and an edited dbt_project.yml.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types as T
from pygls.uris import from_fs_path
from pytest_lsp import LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features
from pygls.protocol import default_converter

from conftest import LINEAGE_TOOLS, dbt_env, drop_provenance_of

pytestmark = [pytest.mark.dbt, pytest.mark.asyncio(loop_scope="module")]

WAIT = 180.0  # seconds: a loaded CI machine starts dbt slowly

MART = "models/marts/training_examples.sql"
MERGED = "models/intermediate/int_users_merged.sql"
LABELS = "models/intermediate/int_labels_resolved.sql"


# --------------------------------------------------------------------------------------------
# A client that keeps every publishDiagnostics (uri, version, diagnostics) in order


class Client(LanguageClient):
    published: list[T.PublishDiagnosticsParams]
    root: Path
    versions: dict[str, int]

    def uri(self, rel: str) -> str:
        return from_fs_path(str(self.root / rel))

    def last(self, rel: str) -> T.PublishDiagnosticsParams | None:
        uri = self.uri(rel)
        return next((p for p in reversed(self.published) if p.uri == uri), None)

    async def diagnostics_for(self, rel: str, version: int | None = None, *, since: int = 0,
                              timeout: float = WAIT) -> list[T.Diagnostic]:
        """The diagnostics of `rel` published after message `since` (for `version` if given)."""
        uri = self.uri(rel)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            hits = [p for p in self.published[since:] if p.uri == uri and (version is None or p.version == version)]
            if hits:
                return list(hits[-1].diagnostics)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no diagnostics for {rel} (version {version}) within {timeout} s; "
                             f"got {[(p.uri.rsplit('/', 1)[-1], p.version) for p in self.published[since:]]}")

    def open(self, rel: str) -> str:
        text = (self.root / rel).read_text(encoding="utf-8")
        self.versions[rel] = 1
        self.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(self.uri(rel), "sql", 1, text)))
        return text

    def change(self, rel: str, text: str) -> int:
        self.versions[rel] += 1
        v = self.versions[rel]
        self.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(version=v, uri=self.uri(rel)),
            [T.TextDocumentContentChangeWholeDocument(text=text)]))
        return v


def _on_publish(client: Client, params: T.PublishDiagnosticsParams) -> None:
    client.published.append(params)
    client.diagnostics[params.uri] = params.diagnostics


async def start(root: Path) -> Client:
    client = Client(converter_factory=default_converter)
    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: _on_publish})
    client.published, client.root, client.versions = [], root, {}
    await client.start_io(LINEAGE_TOOLS, "lsp", "--project-dir", str(root), "--debounce-ms", "100",
                          env=dbt_env(root), cwd=str(root))
    await client.initialize_session(T.InitializeParams(
        capabilities=T.ClientCapabilities(), root_uri=from_fs_path(str(root)),
        workspace_folders=[T.WorkspaceFolder(uri=from_fs_path(str(root)), name="pipeline")]))
    loop = asyncio.get_running_loop()
    end = loop.time() + WAIT
    while not any("dbt ready" in m.message for m in client.log_messages):
        if loop.time() > end:
            raise AssertionError(f"server not ready in {WAIT} s: {[m.message for m in client.log_messages]}")
        await asyncio.sleep(0.1)
    return client


@pytest.fixture(scope="module")
def lsp_project(compiled_pipeline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private, writable copy of the compiled pipeline (target/ included, mtimes kept)."""
    dest = tmp_path_factory.mktemp("lsp") / "pipeline"
    shutil.copytree(compiled_pipeline, dest, ignore=shutil.ignore_patterns("*.duckdb", "*.wal"))
    return dest


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(lsp_project: Path) -> AsyncIterator[Client]:
    c = await start(lsp_project)
    yield c
    await c.shutdown_session()
    await c.stop()


# --------------------------------------------------------------------------------------------
# Edits of one model


def line_of(text: str, pattern: str, start: int = 0) -> int:
    return next(i for i, ln in enumerate(text.splitlines()) if i >= start and re.search(pattern, ln))


async def test_dropped_provenance_is_diagnosed_at_its_line_and_cleared_when_fixed(client: Client) -> None:
    original = client.open(MART)
    assert await client.diagnostics_for(MART) == [] or all(
        d.code != "rule 3" for d in client.diagnostics.get(client.uri(MART), []))
    broken, dropped = drop_provenance_of(original, "labels")
    since = len(client.published)
    v = client.change(MART, broken)
    diags = await client.diagnostics_for(MART, v, since=since)
    rule3 = [d for d in diags if d.code == "rule 3"]
    assert len(rule3) == 1, diags
    d = rule3[0]
    assert d.severity == T.DiagnosticSeverity.Error
    assert "origin of" in d.message and "lost" in d.message
    # the first column of the final select that takes values from labels (is_job_seeker, through
    # the joined CTE), where check puts it
    first_label_value = line_of(broken, r"^\s*is_job_seeker,", line_of(broken, r"^\s*final as \("))
    assert d.range.start.line == first_label_value, (d.range, broken.splitlines()[d.range.start.line])
    assert broken.splitlines()[d.range.start.line][d.range.start.character:d.range.end.character]
    since = len(client.published)
    v = client.change(MART, original)
    assert [d for d in await client.diagnostics_for(MART, v, since=since) if d.code == "rule 3"] == []


async def test_hover_shows_typed_inputs_and_roots(client: Client) -> None:
    text = (client.root / MART).read_text(encoding="utf-8")
    if MART not in client.versions:
        client.open(MART)
    line = line_of(text, r"\bas label_agreement\b")
    hover = await client.text_document_hover_async(T.HoverParams(
        T.TextDocumentIdentifier(client.uri(MART)), T.Position(line, text.splitlines()[line].index("label_agreement") + 2)))
    assert hover is not None
    md = hover.contents.value
    assert "training_examples.label_agreement" in md
    assert "`int_labels_resolved.vote_agreement`: DIRECT IDENTITY" in md
    assert "Read by" in md
    # a label: its root, and the provenance column that carries it
    line = line_of(text, r"^\s*is_job_seeker,", line_of(text, r"^\s*final as \("))
    hover = await client.text_document_hover_async(T.HoverParams(
        T.TextDocumentIdentifier(client.uri(MART)), T.Position(line, text.splitlines()[line].index("is_job_seeker") + 2)))
    md = hover.contents.value
    assert "training_examples.is_job_seeker" in md
    assert re.search(r"`raw_job_search_labels\.is_job_seeker`: carried by `\w+`", md), md
    # a computed column: its inputs come with their transformation type
    line = line_of(text, r"\bas tenure_days\b")
    hover = await client.text_document_hover_async(T.HoverParams(
        T.TextDocumentIdentifier(client.uri(MART)), T.Position(line, text.splitlines()[line].index("tenure_days") + 1)))
    assert "`int_users_merged.first_seen_at`: DIRECT TRANSFORMATION" in hover.contents.value
    # a model name: the sources reaching it, filter or rebuild for each
    line = line_of(text, r"ref\('int_labels_resolved'\)")
    hover = await client.text_document_hover_async(T.HoverParams(
        T.TextDocumentIdentifier(client.uri(MART)), T.Position(line, text.splitlines()[line].index("int_labels_resolved") + 3)))
    md = hover.contents.value
    assert "int_labels_resolved" in md and "raw_job_search_labels" in md
    assert re.search(r"\*\*(filter|rebuild)\*\*", md)


async def test_definition_jumps_to_the_upstream_file_and_line(client: Client) -> None:
    text = (client.root / MART).read_text(encoding="utf-8")
    if MART not in client.versions:
        client.open(MART)
    line = line_of(text, r"^\s*labels\.is_job_seeker")
    found = await client.text_document_definition_async(T.DefinitionParams(
        T.TextDocumentIdentifier(client.uri(MART)), T.Position(line, text.splitlines()[line].index("is_job_seeker") + 1)))
    assert found and len(found) == 1, found
    loc = found[0]
    assert loc.uri == client.uri(LABELS)
    upstream = (client.root / LABELS).read_text(encoding="utf-8").splitlines()
    assert "is_job_seeker" in upstream[loc.range.start.line]
    # the line where the model's final select defines it (not an earlier CTE)
    assert loc.range.start.line >= line_of("\n".join(upstream), r"^\s*final as \(")


async def test_references_list_downstream_models_and_lines(client: Client) -> None:
    text = client.open(MERGED)
    line = line_of(text, r"^\s*primary_record\.country_code")
    found = await client.text_document_references_async(T.ReferenceParams(
        text_document=T.TextDocumentIdentifier(client.uri(MERGED)),
        position=T.Position(line, text.splitlines()[line].index("country_code") + 1),
        context=T.ReferenceContext(include_declaration=False)))
    mart = (client.root / MART).read_text(encoding="utf-8").splitlines()
    in_mart = [loc for loc in found if loc.uri == client.uri(MART)]
    assert in_mart, found
    assert all("country_code" in mart[loc.range.start.line] for loc in in_mart)


async def test_a_syntax_error_gives_one_diagnostic_and_the_server_stays_up(client: Client) -> None:
    original = client.open(MERGED) if MERGED not in client.versions else (client.root / MERGED).read_text()
    lines = original.splitlines()
    bad = line_of(original, r"count\(\*\) as n_accounts")
    lines[bad] = lines[bad].replace("count(*) as n_accounts", "count(* as n_accounts")
    broken = "\n".join(lines) + "\n"
    since = len(client.published)
    v = client.change(MERGED, broken)
    diags = await client.diagnostics_for(MERGED, v, since=since)
    assert len(diags) == 1, diags
    assert diags[0].code == "lineage/parse_error"
    assert diags[0].range.start.line == bad, (diags[0].range, bad)
    assert "does not parse" in diags[0].message
    # a Jinja error: dbt cannot render it; one diagnostic at the line dbt names
    jinja = original.replace("{{ ref('int_user_accounts') }}", "{{ ref('int_user_accounts' }}")
    since = len(client.published)
    v = client.change(MERGED, jinja)
    diags = await client.diagnostics_for(MERGED, v, since=since)
    assert len(diags) == 1 and diags[0].code == "dbt", diags
    # still answering, and the fix clears it
    mart = (client.root / MART).read_text(encoding="utf-8")
    line = line_of(mart, r"as tenure_days")
    hover = await client.text_document_hover_async(T.HoverParams(
        T.TextDocumentIdentifier(client.uri(MART)), T.Position(line, mart.splitlines()[line].index("tenure_days"))))
    assert hover is not None and "tenure_days" in hover.contents.value
    since = len(client.published)
    v = client.change(MERGED, original)
    assert await client.diagnostics_for(MERGED, v, since=since) == []


async def test_a_ref_added_in_the_editor_is_analysed_without_saving(client: Client) -> None:
    original = (client.root / MART).read_text(encoding="utf-8")
    if MART not in client.versions:
        client.open(MART)
    # join a new input and take a value from it, without its provenance
    edited = original.replace(
        "labels as (",
        "scores as (\n\n    select * from {{ ref('stg_spam_scores') }}\n\n),\n\nlabels as (", 1)
    edited = re.sub(r"(\n\s*left join activity\n)", "\n    left join scores\n        on scores.account_id = users.primary_account_id\\1", edited, 1)
    edited = re.sub(r"(\n(\s*)users\.n_accounts,)", r"\1\n\2scores.spam_score,", edited, 1)
    edited = re.sub(r"(\n(\s*)n_accounts,)", r"\1\n\2spam_score,", edited, 1)  # the final select
    assert edited.count("stg_spam_scores") == 1 and "scores.spam_score" in edited
    since = len(client.published)
    v = client.change(MART, edited)
    diags = await client.diagnostics_for(MART, v, since=since)
    rule3 = [d for d in diags if d.code == "rule 3"]
    assert len(rule3) == 1 and "raw_spam_scores" in rule3[0].message, diags
    assert edited.splitlines()[rule3[0].range.start.line].strip() == "spam_score,"  # its output column
    since = len(client.published)
    v = client.change(MART, original)
    assert [d for d in await client.diagnostics_for(MART, v, since=since) if d.code == "rule 3"] == []


async def test_a_burst_of_edits_ends_with_the_diagnostics_of_the_last(client: Client) -> None:
    original = (client.root / MART).read_text(encoding="utf-8")
    if MART not in client.versions:
        client.open(MART)
    broken, _ = drop_provenance_of(original, "labels")
    since = len(client.published)
    last = 0
    for i in range(12):
        last = client.change(MART, broken if i % 2 else original)  # the last one (i = 11) is broken
        await asyncio.sleep(0.02)
    diags = await client.diagnostics_for(MART, last, since=since)
    assert [d.code for d in diags if d.code == "rule 3"] == ["rule 3"]
    await asyncio.sleep(1.0)  # nothing older may follow
    mine = [p for p in client.published[since:] if p.uri == client.uri(MART)]
    assert mine[-1].version == last
    assert [p.version for p in mine] == sorted(p.version for p in mine)
    assert len(mine) < 12  # debounced: not one analysis per keystroke
    since = len(client.published)
    v = client.change(MART, original)
    assert [d for d in await client.diagnostics_for(MART, v, since=since) if d.code == "rule 3"] == []


# --------------------------------------------------------------------------------------------
# Files created, renamed, deleted; dbt_project.yml edited (a server of its own)


NEW_MODEL = """\
-- a mart over training examples that keeps a label but drops its provenance

with

examples as (

    select * from {{ ref('training_examples') }}

),

final as (

    select
        user_id,
        is_job_seeker
    from examples

)

select * from final
"""


@pytest.fixture(scope="module")
def structure_project(compiled_pipeline: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("lsp-structure") / "pipeline"
    shutil.copytree(compiled_pipeline, dest, ignore=shutil.ignore_patterns("*.duckdb", "*.wal"))
    return dest


def watched(client: Client, *events: tuple[str, T.FileChangeType]) -> None:
    """What an editor sends when files change on disk."""
    client.workspace_did_change_watched_files(T.DidChangeWatchedFilesParams(
        changes=[T.FileEvent(uri=client.uri(rel), type=kind) for rel, kind in events]))


async def test_new_renamed_deleted_models_and_dbt_project_yml(structure_project: Path) -> None:
    client = await start(structure_project)
    try:
        root = structure_project
        new = "models/marts/label_export.sql"
        since = len(client.published)
        (root / new).write_text(NEW_MODEL, encoding="utf-8")
        watched(client, (new, T.FileChangeType.Created))
        diags = await client.diagnostics_for(new, since=since)
        assert diags and {d.code for d in diags} == {"rule 3"}, diags
        label = [d for d in diags if "raw_job_search_labels" in d.message]
        assert len(label) == 1 and "is_job_seeker" in NEW_MODEL.splitlines()[label[0].range.start.line]

        renamed = "models/marts/label_export_v2.sql"
        since = len(client.published)
        (root / new).rename(root / renamed)
        watched(client, (new, T.FileChangeType.Deleted), (renamed, T.FileChangeType.Created))
        assert len(await client.diagnostics_for(renamed, since=since)) == len(diags)
        assert await client.diagnostics_for(new, since=since) == []  # the old file's are cleared

        # dbt_project.yml: the new model is disabled there; its findings go away
        yml = (root / "dbt_project.yml").read_text(encoding="utf-8")
        since = len(client.published)
        (root / "dbt_project.yml").write_text(_disable("label_export_v2", yml), encoding="utf-8")
        watched(client, ("dbt_project.yml", T.FileChangeType.Changed))
        assert await client.diagnostics_for(renamed, since=since) == []
        (root / "dbt_project.yml").write_text(yml, encoding="utf-8")
        since = len(client.published)
        watched(client, ("dbt_project.yml", T.FileChangeType.Changed))
        assert len(await client.diagnostics_for(renamed, since=since)) == len(diags)

        since = len(client.published)
        (root / renamed).unlink()
        watched(client, (renamed, T.FileChangeType.Deleted))
        assert await client.diagnostics_for(renamed, since=since) == []
        # and the server still answers about the rest of the project
        text = (root / MART).read_text(encoding="utf-8")
        client.open(MART)
        line = line_of(text, r"\bas label_agreement\b")
        hover = await client.text_document_hover_async(T.HoverParams(
            T.TextDocumentIdentifier(client.uri(MART)), T.Position(line, text.splitlines()[line].index("label_agreement") + 1)))
        assert hover is not None and "vote_agreement" in hover.contents.value
    finally:
        await client.shutdown_session()
        await client.stop()


def _disable(model: str, yml: str) -> str:
    """dbt_project.yml with `model` (a mart) disabled under the project's `marts:` config."""
    m = re.search(r"^(\s*)marts:\s*$", yml, re.M)
    assert m, "dbt_project.yml has no marts: config"
    indent = m.group(1)
    return yml[:m.end()] + f"\n{indent}  {model}:\n{indent}    +enabled: false" + yml[m.end():]

"""The analyst's loop: `lineage-tools lsp` (a language server) and `lineage-tools watch`.

* `state`: one dbt project held in memory and changed one edit at a time (`Workspace`);
* `answers`: diagnostics, hovers, definitions and references from one `state.Snapshot`;
* `server`: the language server (pygls) over stdio;
* `watch`: the same loop in a terminal (watchfiles).
"""

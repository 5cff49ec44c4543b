"""Every command block of README.md and docs/*.md runs as written on the pipeline.

A block is a fenced ```bash / sh / shell``` block (each line a command) or a ```console``` block
(or a plain one) whose commands start with `$ `; there, every output line shown (but `...`) must
be in what the command prints. Commands run in order, file by file (README first), in one copy
of the built pipeline (`built_pipeline`: what `make demo` builds) that is also a git repository
on a change's branch (`main` is the base), with `.venv` pointing at this environment, so `.venv/bin/...` and the bare
`lineage-tools` both work. A command written twice (e.g. `impact` in the README and in
docs/provenance-commands.md) runs once. What does not run here is named in SKIPS, with why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import BIN_DIR, PROJECT_ROOT, dbt_env

pytestmark = pytest.mark.dbt

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
SHELL = {"bash", "sh", "shell"}
SKIPS = (
    (re.compile(r"^make (demo|test)\b"), "`make demo` is what the built_pipeline fixture builds; `make test` is this suite"),
    (re.compile(r"spark"), "the Spark target: tests/test_spark.py (marker `spark`, needs Java and the spark extra)"),
    (re.compile(r"--users 1000000|raw_data_dir: /tmp/raw"), "a 1M-user build takes minutes: benchmarks/README.md"),
    (re.compile(r"lineage-tools (watch|lsp)\b"), "runs until stopped: tests/test_lsp.py drives the server, "
     "tests/test_lsp_state.py::test_watch_prints_the_finding_of_a_saved_model the watcher"),
)


@dataclass
class Command:
    file: str
    line: int
    text: str
    expected: list[str] = field(default_factory=list)  # output lines a console block shows


def commands(path: Path) -> list[Command]:
    """The commands of a Markdown file's command blocks, with the output console blocks show."""
    text = path.read_text(encoding="utf-8")
    out: list[Command] = []
    for m in FENCE.finditer(text):
        lang, body = m.group(1), m.group(2)
        first = text.count("\n", 0, m.start(2)) + 1
        lines = body.splitlines()
        if lang in SHELL:
            pending = ""
            for i, line in enumerate(lines):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                if line.rstrip().endswith("\\"):
                    pending += line.rstrip()[:-1] + " "
                    continue
                out.append(Command(path.name, first + i, pending + line))
                pending = ""
        elif lang in ("console", "") and any(line.startswith("$ ") for line in lines):
            for i, line in enumerate(lines):
                if line.startswith("$ "):
                    out.append(Command(path.name, first + i, line[2:]))
                elif out and out[-1].file == path.name and line.strip() and "..." not in line:
                    out[-1].expected.append(line)
    return out


def _key(cmd: str) -> str:
    """The same command however it is spelled: no comment, no `.venv/bin/`, one space."""
    cmd = re.sub(r"\s+#.*$", "", cmd).replace(".venv/bin/", "")
    return " ".join(cmd.split())


def _skip_reason(cmd: str) -> str | None:
    return next((why for pattern, why in SKIPS if pattern.search(cmd)), None)


def test_docs_have_command_blocks():
    found = {c.file for p in DOCS for c in commands(p)}
    assert {"README.md", "cli.md", "provenance-commands.md"} <= found


def test_every_documented_command_runs(built_pipeline: Path, tmp_path: Path):
    work = tmp_path / "pipeline"
    shutil.copytree(built_pipeline, work, ignore=shutil.ignore_patterns("logs"), symlinks=True)
    (work / ".venv").symlink_to(Path(sys.prefix))  # this environment: `.venv/bin/lineage-tools` as written
    env = dbt_env(work, PATH=f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("DBT_PROFILES_DIR")  # the docs say the tools find profiles.yml in the project folder
    env.update(GIT_AUTHOR_NAME="docs", GIT_AUTHOR_EMAIL="docs@example.invalid",
               GIT_COMMITTER_NAME="docs", GIT_COMMITTER_EMAIL="docs@example.invalid")
    # a clone on a change's branch, `main` being the base (what README's `diff` recipe expects)
    for git in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "base"],
                ["git", "checkout", "-q", "-b", "change"]):
        subprocess.run(git, cwd=work, env=env, check=True, capture_output=True)
    # .venv is a link to this environment: keep it out of the base checkout's way
    (work / ".git" / "info" / "exclude").write_text(".venv\n", encoding="utf-8")

    exports: list[str] = []
    ran: dict[str, Command] = {}
    skipped: dict[str, list[str]] = {}
    failures: list[str] = []
    for cmd in (c for p in DOCS for c in commands(p)):
        where = f"{cmd.file}:{cmd.line}: {cmd.text.strip()}"
        why = _skip_reason(cmd.text)
        if why:
            skipped.setdefault(why, []).append(where)
            continue
        if cmd.text.startswith("export "):
            exports.append(cmd.text)
            continue
        key = _key(cmd.text)
        if key in ran and not cmd.expected:
            continue  # written in an earlier file: run there, as written
        ran[key] = cmd
        script = "\n".join([*exports, cmd.text])
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=work, env=env,
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            failures.append(f"{where}\n  exit {proc.returncode}: {proc.stderr.strip()[-1500:]}")
            continue
        missing = [line for line in cmd.expected if line.rstrip() not in proc.stdout.splitlines()]
        if missing:
            failures.append(f"{where}\n  the docs show lines it does not print: {missing}\n  it prints:\n{proc.stdout}")
    print("\n".join(f"skipped ({why}):\n  " + "\n  ".join(w) for why, w in skipped.items()))
    assert failures == [], "documented commands that fail as written:\n" + "\n".join(failures)
    assert len(ran) >= 12, sorted(ran)
    # every skip still skips something (a stale one would hide nothing, and mean a doc changed)
    assert set(skipped) == {why for _, why in SKIPS}, skipped

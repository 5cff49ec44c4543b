"""`lineage-tools --help` and each command's help read cleanly: no `<bool>` after a flag, no
stray space before punctuation, arguments by name (not `{column}`), one example per command."""

from __future__ import annotations

import re

import pytest

from conftest import run_cli

COMMANDS = ("sql", "export", "trace", "report", "diff", "check", "impact", "quarantine", "release", "verify")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_reads_cleanly_with_one_example(command: str):
    res = run_cli(command, "--help")
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "<bool>" not in text and "<str>" not in text and "list[str]" not in text
    assert "{" not in text and "}" not in text, text
    assert not re.search(r"\w \s*[;.,](\s|$)", text.replace("...", "")), text  # "profiles.yml ;", "namespace ."
    examples = [line.strip() for line in text.splitlines() if line.strip().startswith("Example:")]
    assert len(examples) == 1 and f"lineage-tools {command}" in examples[0], text


def test_trace_help_names_its_argument():
    text = run_cli("trace", "--help").stdout
    assert "Usage: lineage-tools trace [OPTIONS] MODEL.COLUMN" in text
    assert "--downstream  " in text and "--all  " in text


def test_main_help_lists_commands_without_types():
    text = run_cli("--help").stdout
    assert "<bool>" not in text and all(c in text for c in COMMANDS)

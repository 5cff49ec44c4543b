"""`-o`: what a user asks to be written is written, and nothing else is touched or left behind.

A regular file is replaced atomically; a device, FIFO or `-` is written as it is (a root CI
container must never turn /dev/null into a regular file); a folder is refused with exit 2.
Devices are made with mknod in the test's own folder (root only), never the machine's.
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import run_cli

SQL = "select a, sum(b) as s from t group by a"


def _sql_to(tmp_path: Path, dest: str) -> subprocess.CompletedProcess[str]:
    src = tmp_path / "q.sql"
    src.write_text(SQL, encoding="utf-8")
    return run_cli("sql", str(src), "--format", "json", "-o", dest, cwd=tmp_path)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_dash_writes_stdout_and_no_file(tmp_path: Path) -> None:
    proc = _sql_to(tmp_path, "-")
    assert proc.returncode == 0, proc.stderr
    assert '"columns"' in proc.stdout or '"edges"' in proc.stdout
    assert not (tmp_path / "-").exists()


def test_folder_is_refused_with_exit_2_and_nothing_left(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = _sql_to(tmp_path, str(out))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: "), proc.stderr
    assert str(out) in proc.stderr and "folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(out.iterdir()) == [] and _leftovers(tmp_path) == []


def test_fifo_is_written_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    proc = _sql_to(tmp_path, str(fifo))
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced by a regular file"
    assert got and b'"edges"' in got[0]
    assert _leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a device node needs root")
def test_devices_are_written_not_replaced(tmp_path: Path) -> None:
    null = tmp_path / "null"
    full = tmp_path / "full"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    proc = _sql_to(tmp_path, str(null))
    assert proc.returncode == 0, proc.stderr
    proc = _sql_to(tmp_path, str(full))
    assert proc.returncode == 2, proc.stderr
    assert "No space left on device" in proc.stderr and str(full) in proc.stderr
    assert "Traceback" not in proc.stderr
    for dev in (null, full):
        assert stat.S_ISCHR(os.stat(dev).st_mode), f"{dev.name} was replaced by a regular file"
    assert _leftovers(tmp_path) == []


def test_regular_file_replaced_keeping_its_mode_and_links_followed(tmp_path: Path) -> None:
    out = tmp_path / "lineage.json"
    out.write_text("old", encoding="utf-8")
    out.chmod(0o640)
    link = tmp_path / "latest.json"
    link.symlink_to(out.name)
    proc = _sql_to(tmp_path, str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink(), "the link was replaced instead of written through"
    assert '"edges"' in out.read_text(encoding="utf-8")
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert _leftovers(tmp_path) == []


def test_missing_folders_are_created_but_a_file_in_the_way_is_exit_2(tmp_path: Path) -> None:
    proc = _sql_to(tmp_path, str(tmp_path / "new" / "x.json"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "new" / "x.json").is_file()
    (tmp_path / "afile").write_text("", encoding="utf-8")
    proc = _sql_to(tmp_path, str(tmp_path / "afile" / "x.json"))
    assert proc.returncode == 2, proc.stderr
    assert "afile" in proc.stderr and "Traceback" not in proc.stderr

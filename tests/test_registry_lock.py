"""One writer at a time on the source registry: concurrent writers never undo each other's
change, a writer that waits too long fails naming the holder, and a BOM is read past and kept.

Real processes race on a real file; the lock is the filelock library's.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lineage_tools.errors import UserError
from lineage_tools.registry import RegistryBusyError, locked, read_registry, set_status

REGISTRY = (
    "source_id,kind,status,status_reason,status_changed_on\r\n"
    "vendor_a,outsourced,active,,\r\n"
    "vendor_b,outsourced,active,,\r\n"
)

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from lineage_tools.registry import read_registry, set_status

    path, sid, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    lost = 0
    for i in range(n):
        status = "quarantined" if i % 2 == 0 else "active"
        set_status(path, [sid], status, f"{sid}-{i}")
        # the other writer may write meanwhile, but never with an older value of this row
        got = read_registry(path).get(sid)
        if got.status != status:
            lost += 1
    print(lost)
""")


def test_two_processes_writing_never_lose_an_update(tmp_path: Path) -> None:
    path = tmp_path / "data_sources.csv"
    path.write_bytes(REGISTRY.encode())
    n = 301
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), sid, str(n)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for sid in ("vendor_a", "vendor_b")]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    lost = [int(o[0].strip()) for o in outs]
    assert lost == [0, 0], f"writes overwritten by the other process: {lost}"
    final = read_registry(path)
    last = "quarantined" if (n - 1) % 2 == 0 else "active"
    assert {s.source_id: (s.status, s.status_reason) for s in final.sources} == {
        "vendor_a": (last, f"vendor_a-{n - 1}"),
        "vendor_b": (last, f"vendor_b-{n - 1}"),
    }
    assert not list(tmp_path.glob(".*.tmp"))


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from lineage_tools.registry import locked

    with locked(Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(60)
""")


def test_a_writer_that_waits_too_long_fails_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "data_sources.csv"
    path.write_bytes(REGISTRY.encode())
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(RegistryBusyError) as err:
            with locked(path, wait=1.0):
                pass
        assert time.monotonic() - started < 30
        message = str(err.value)
        assert f"pid {proc.pid}" in message and "data_sources.csv" in message, message
        assert isinstance(err.value, UserError) and err.value.exit_code == 2
    finally:
        proc.kill()
        proc.wait()
    # the holder is gone (killed): the lock is free again, and nothing was written meanwhile
    assert path.read_bytes() == REGISTRY.encode()
    assert set_status(path, ["vendor_a"], "quarantined", "x") == ("vendor_a",)


def test_a_byte_order_mark_is_read_past_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data_sources.csv"
    path.write_bytes(("\ufeff" + REGISTRY).encode())
    assert read_registry(path).ids == ("vendor_a", "vendor_b")
    assert set_status(path, ["vendor_b"], "quarantined", "bad") == ("vendor_b",)
    data = path.read_bytes()
    assert data.startswith("\ufeff".encode()) and data.count("\ufeff".encode()) == 1
    assert read_registry(path).get("vendor_b").status == "quarantined"

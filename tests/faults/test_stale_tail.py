"""A killed writer's log, shortened afterwards: the tail marker turns a silent rollback into an error.

Between two checkpoints only the tail segment knows the newest batches. These
tests kill a writer (SIGKILL) after acknowledged writes, then cut or replace
its tail segment, and check that the open raises instead of serving the older
state, that ``repair`` says how many batches are gone, and that what a crash
really leaves (a torn, unacknowledged write; a power cut on another boot)
still opens.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import memstrata._tail as tail_module
from memstrata import CorruptDataError, MemoryStore
from memstrata._tail import TAIL_NAME, read_tail

CFG = {"migration_interval_seconds": None}


def _killed_writer(path: Path, *, durability: str = "normal") -> Path:
    """Write ``a`` (checkpointed), copy the tail segment aside, write ``b``, rewrite ``a``, then SIGKILL."""
    code = textwrap.dedent(
        f"""
        import os, shutil, signal
        from memstrata import MemoryStore
        s = MemoryStore({str(path)!r}, {{**{CFG!r}, "durability": {durability!r}}})
        s.store("a", "first")
        s.compact()  # a checkpoint: the log is complete up to here
        shutil.copy(os.path.join({str(path)!r}, "log", sorted(os.listdir(os.path.join({str(path)!r}, "log")))[-1]),
                    {str(path.parent / "older")!r})
        s.store("b", "acknowledged")
        s.store("a", "second")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return _tail_segment(path)


def _tail_segment(path: Path) -> Path:
    return max((path / "log").glob("seg-*.log"))


def test_killed_writer_reopens_with_every_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "s"
    _killed_writer(path)
    with MemoryStore(path, CFG) as store:
        assert store.retrieve("a") == "second" and store.retrieve("b") == "acknowledged"


def test_stale_tail_segment_of_unclosed_store_raises_naming_repair(tmp_path: Path) -> None:
    path = tmp_path / "s"
    segment = _killed_writer(path)
    shutil.copyfile(tmp_path / "older", segment)
    with pytest.raises(CorruptDataError, match=r"ends at batch .* was committed .*memstrata repair"):
        MemoryStore(path, CFG)
    with pytest.raises(CorruptDataError):  # the damaged files are left as they were: a second open says the same
        MemoryStore(path, CFG)
    report = MemoryStore.repair(path)
    assert report["batches_missing"] == 2 and report["verify_ok"]
    with MemoryStore(path, CFG) as store:
        assert store.retrieve("a") == "first" and "b" not in store


@pytest.mark.parametrize("cut", ["record boundary", "inside a record"])
def test_truncated_tail_segment_of_unclosed_store_raises(tmp_path: Path, cut: str) -> None:
    path = tmp_path / "s"
    segment = _killed_writer(path)
    older = (tmp_path / "older").stat().st_size
    size = older if cut == "record boundary" else segment.stat().st_size - 3
    os.truncate(segment, size)
    with pytest.raises(CorruptDataError, match="cut short, removed or replaced"):
        MemoryStore(path, CFG)
    assert segment.stat().st_size == size  # nothing was cut away before the error


def test_torn_unacknowledged_write_is_still_dropped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s"
    segment = _killed_writer(path)
    with open(segment, "ab") as f:  # a write the kill interrupted: its batch was never acknowledged
        f.write(b"MS\x00\x07partial")
    with caplog.at_level(logging.WARNING, logger="memstrata.store"), MemoryStore(path, CFG) as store:
        assert store.retrieve("a") == "second"
    assert "torn final write" in caplog.text


def test_after_a_restart_only_synced_batches_are_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A power cut may lose unsynced batches: on another boot the marker asks only for what was fsynced."""
    path = tmp_path / "s"
    segment = _killed_writer(path)
    shutil.copyfile(tmp_path / "older", segment)  # what a power cut may leave under durability="normal"
    monkeypatch.setattr(tail_module, "_BOOT_ID", bytes(range(16)))
    with MemoryStore(path, CFG) as store:
        assert store.retrieve("a") == "first"


def test_after_a_restart_a_synced_batch_missing_still_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s"
    segment = _killed_writer(path, durability="full")  # every batch fsynced before it was acknowledged
    shutil.copyfile(tmp_path / "older", segment)
    monkeypatch.setattr(tail_module, "_BOOT_ID", bytes(range(16)))
    with pytest.raises(CorruptDataError, match="was committed"):
        MemoryStore(path, CFG)


def test_damaged_tail_marker_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s"
    _killed_writer(path)
    marker = path / "log" / TAIL_NAME
    marker.write_bytes(b"\xff" * marker.stat().st_size)
    with caplog.at_level(logging.WARNING, logger="memstrata.store"), MemoryStore(path, CFG) as store:
        assert store.retrieve("a") == "second"
    assert "tail marker" in caplog.text
    tail = read_tail(path / "log")  # the writer wrote it afresh
    assert tail is not None and tail.synced == tail.written


def test_one_torn_marker_slot_leaves_the_other(tmp_path: Path) -> None:
    path = tmp_path / "s"
    segment = _killed_writer(path)
    marker = path / "log" / TAIL_NAME
    newest = read_tail(path / "log")
    assert newest is not None
    data = bytearray(marker.read_bytes())
    slot = 0 if tail_module._decode(bytes(data[:40])) == newest else 64
    data[slot + 5] ^= 0xFF  # the newest slot torn: the previous one (one batch older) still holds
    marker.write_bytes(bytes(data))
    older = read_tail(path / "log")
    assert older is not None and older.written == newest.written - 1
    shutil.copyfile(tmp_path / "older", segment)
    with pytest.raises(CorruptDataError, match="was committed"):
        MemoryStore(path, CFG)

"""Damaged Bloom filter files and VectorMemory files: every load answers exactly as saved or raises.

A seeded sample of ``faults.file_campaign`` (320 injections per artefact kind,
every kind of damage in turn); ``benchmarks/fault_campaign.py`` runs the
long campaign. Any wrong answer, silent loss or foreign exception fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from faults.file_campaign import ARTEFACTS, campaign

import memstrata._tail as tail_module
from memstrata import CorruptDataError, VectorMemory

N_INJECTIONS = 320


@pytest.mark.parametrize("artefact", sorted(ARTEFACTS))
def test_damaged_files_never_answer_wrong(tmp_path: Path, artefact: str) -> None:
    outcomes, defects = campaign(tmp_path, artefact, N_INJECTIONS, seed=20261129)
    assert not defects, "\n".join(defects[:10])
    assert sum(outcomes.values()) == N_INJECTIONS
    assert outcomes["detected"] > N_INJECTIONS // 2, outcomes


def _closed_memory(path: Path) -> None:
    x = np.random.default_rng(1).standard_normal((40, 8)).astype(np.float32)
    memory = VectorMemory.open(path, dim=8)
    memory.add(x[:20], ids=np.arange(20))
    memory.close()
    memory = VectorMemory.open(path)
    memory.add(x[20:], ids=np.arange(20, 40))
    memory.delete([3])
    memory.close()


def test_vector_directory_without_current_raises_instead_of_starting_empty(tmp_path: Path) -> None:
    _closed_memory(tmp_path / "v")
    (tmp_path / "v" / "CURRENT").unlink()
    for read_only in (False, True):
        with pytest.raises(CorruptDataError, match=r"CURRENT: missing, but log-0.mslog, state-0.msvm"):
            VectorMemory.open(tmp_path / "v", dim=8, read_only=read_only)


@pytest.mark.parametrize("cut", ["one record", "to the header"])
def test_vector_log_cut_short_after_close_is_detected(tmp_path: Path, cut: str) -> None:
    """A closed memory's log ends where CURRENT says: a shorter log is damage, not a torn tail."""
    _closed_memory(tmp_path / "v")
    log = tmp_path / "v" / "log-0.mslog"
    data = log.read_bytes()
    log.write_bytes(data[:20] if cut == "to the header" else data[: len(data) - 10])
    if cut == "one record":  # a torn last record that was acknowledged before close
        with pytest.raises(CorruptDataError, match="CURRENT records"):
            VectorMemory.open(tmp_path / "v")
    else:
        with pytest.raises(CorruptDataError, match="ends at sequence number 0, but CURRENT records"):
            VectorMemory.open(tmp_path / "v")


def _crash_after_one_add(path: Path) -> Path:
    """Reopen the closed memory at ``path``, add id 99, die without close; the log file."""
    crash = (
        "import os, sys, numpy as np\n"
        "from memstrata import VectorMemory\n"
        "m = VectorMemory.open(sys.argv[1])\n"
        "m.add(np.ones((1, 8), np.float32), ids=[99])\n"
        "os._exit(0)  # dies without close: CURRENT keeps the floor of the last close\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(path)], check=True)
    return path / "log-0.mslog"


def test_a_crash_before_close_still_drops_only_the_torn_tail(tmp_path: Path) -> None:
    """A write the crash cut short is dropped; every acknowledged record before it opens."""
    _closed_memory(tmp_path / "v")
    log = _crash_after_one_add(tmp_path / "v")
    with open(log, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x05")  # the first bytes of a record whose write the kill interrupted
    reopened = VectorMemory.open(tmp_path / "v")
    assert 99 in reopened.ids().tolist() and len(reopened) == 40
    reopened.close()


def test_an_acknowledged_record_cut_after_a_crash_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the same boot the tail marker proves the cut record was written; after a restart it may be a power cut."""
    _closed_memory(tmp_path / "v")
    log = _crash_after_one_add(tmp_path / "v")
    os.truncate(log, log.stat().st_size - 5)
    with pytest.raises(CorruptDataError, match="was committed .*tail marker"):
        VectorMemory.open(tmp_path / "v")
    monkeypatch.setattr(tail_module, "_BOOT_ID", bytes(range(16)))  # another boot: the record was never fsynced
    reopened = VectorMemory.open(tmp_path / "v")
    assert 99 not in reopened.ids().tolist() and len(reopened) == 39
    reopened.close()

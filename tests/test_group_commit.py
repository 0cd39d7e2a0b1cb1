"""Group commit under ``durability="full"``: concurrent writers share fdatasyncs, and each returns only once synced."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from _threads import run_in_threads

import memstrata.tiers._log as log_module
from memstrata import MemoryStore
from memstrata.tiers._log import LogBackend

CFG = {"durability": "full", "migration_interval_seconds": None}


def _counting_fdatasync(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count fdatasync calls of the log and slow each down, as a disk does, so writers pile up behind one."""
    calls: list[int] = []
    real = os.fdatasync

    class _Os:
        def __getattr__(self, name: str):  # everything else is the real module
            return getattr(os, name)

        @staticmethod
        def fdatasync(fd: int) -> None:
            calls.append(fd)
            threading.Event().wait(0.002)
            real(fd)

    monkeypatch.setattr(log_module, "os", _Os())
    return calls


def test_concurrent_full_durability_writers_share_fdatasyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting_fdatasync(monkeypatch)
    store = MemoryStore(tmp_path / "s", CFG)
    n_threads, n_writes = 6, 40

    def writer(t: int) -> None:
        for i in range(n_writes):
            store.store(f"t{t}-{i}", {"t": t, "i": i}, tier="warm")
            if i % 10 == 9:
                store.delete(f"t{t}-{i - 1}")

    run_in_threads(writer, n_threads)
    batches = n_threads * (n_writes + n_writes // 10)
    assert len(calls) < batches * 0.8, (len(calls), batches)  # one fdatasync covered several writers' batches
    store.close()
    with MemoryStore(tmp_path / "s", CFG) as store:
        for t in range(n_threads):
            for i in range(n_writes):
                gone = i % 10 == 8
                assert (f"t{t}-{i}" in store) is not gone
                if not gone:
                    assert store.retrieve(f"t{t}-{i}") == {"t": t, "i": i}


def test_a_write_returns_only_after_its_batch_is_synced(tmp_path: Path) -> None:
    backend = LogBackend(tmp_path / "log", "full")
    seq = backend.apply({b"k": b"v"}, wait=False)
    assert backend._synced_seq < seq  # written, not yet synced
    backend.sync_through(seq)
    assert backend._synced_seq >= seq
    backend.sync_through(seq)  # already covered: returns at once
    backend.close()


def test_sync_through_is_a_no_op_below_full_durability(tmp_path: Path) -> None:
    backend = LogBackend(tmp_path / "log", "normal")
    backend.sync_through(backend.apply({b"k": b"v"}, wait=False))
    assert backend.get(b"k") == b"v"
    backend.close()

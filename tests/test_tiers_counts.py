"""Counters saved in the log: an open uses them only while they are current, and they equal a recount."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memstrata import MemoryStore
from memstrata.tiers._counts import COUNTS_KEY, load_counts

NO_THREAD = {"migration_interval_seconds": None}


def _counts(store: MemoryStore) -> tuple:
    t = store.tiers
    return (t._n_keys, t._n_tombstones, t._logical, list(t._items), list(t._stored), t._unique, t._n_blobs, t._n_garbage)


def _recounted(store: MemoryStore) -> tuple:
    saved = _counts(store)
    store.tiers._recount()
    fresh = _counts(store)
    assert fresh == saved, "the counters kept in RAM drifted from a recount"
    return fresh


def _workload(store: MemoryStore) -> None:
    rng = np.random.default_rng(7)
    for i in range(300):
        store.store(f"k{i}", {"i": i % 40, "text": "x" * (i % 7)}, tier=["hot", "warm", "cold"][i % 3])
    for i in range(0, 300, 11):
        store.delete(f"k{i}")
    store.store_many({f"v{i}": rng.standard_normal(16).astype(np.float32) for i in range(50)}, tier="warm")
    store.migrate("k1", "cold")
    store.migrate("k2", "warm")


def test_reopen_uses_saved_counts_that_equal_a_recount(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        _workload(store)
        expected = _recounted(store)
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        assert load_counts(store.tiers)
        assert _counts(store) == expected
        assert _recounted(store) == expected
        store.compact()
        expected = _recounted(store)
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:  # compaction copied the record with its batch number
        assert load_counts(store.tiers)
        assert _counts(store) == expected


def test_writes_after_the_saved_counts_force_a_recount(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "s", NO_THREAD)
    _workload(store)
    store.flush()  # saves the counters
    store.store("late", [1, 2, 3], tier="warm")
    store.delete("k5")
    expected = _recounted(store)
    backend = store.tiers.backend
    backend.flush()
    # reopen without close (as after a crash): the saved record is older than the log's last batch
    store._closed = True
    store.tiers._closed = True
    backend.close()
    store._release_lock()
    with MemoryStore(tmp_path / "s", NO_THREAD) as again:
        assert not load_counts(again.tiers)
        assert _counts(again) == expected
        assert again.retrieve("late") == [1, 2, 3]


def test_repair_drops_the_saved_counts(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", NO_THREAD) as store:
        _workload(store)
        expected = _recounted(store)
    MemoryStore.repair(tmp_path / "s")
    with MemoryStore(tmp_path / "s", NO_THREAD, read_only=True) as store:
        assert store.tiers.backend.get(COUNTS_KEY) is None or load_counts(store.tiers)
        assert _counts(store) == expected

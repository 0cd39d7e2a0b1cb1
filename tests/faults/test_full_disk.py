"""A store on a file system that is really full (ENOSPC, not a ``max_disk_bytes`` cap).

Writes fail with ``StorageFullError`` and change nothing; every acknowledged
value still reads; deletes and ``close()`` work (a delete gives up the log's
reserved space when it must), so a full store can always be emptied; after a
reopen the deletes hold and the reserve is back once there is room.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from faults.mounts import tmpfs

from memstrata import MemoryStore
from memstrata.tiers import StorageFullError

CFG = {"migration_interval_seconds": None, "hot_max_bytes": 4096, "train_after": 0}


def test_deletes_and_close_work_on_a_really_full_disk(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "3m") as root:
        path = root / "s"
        stored: dict[str, bytes] = {}
        store = MemoryStore(path, CFG)
        assert (path / "log" / ".reserve").exists()
        with pytest.raises(StorageFullError):
            for i in range(10_000):  # incompressible values until the file system has no room
                value = os.urandom(2000)
                store.store(f"k{i}", value, tier="warm")
                stored[f"k{i}"] = value
        assert len(stored) > 100
        with pytest.raises(StorageFullError):  # still full: a write changes nothing
            store.store("one-more", os.urandom(4000), tier="warm")
        assert "one-more" not in store
        assert all(store.retrieve(k) == v for k, v in stored.items())
        gone = sorted(stored)[:200]  # more tombstones than the free bytes tmpfs leaves, fewer than the reserve holds
        for k in gone:  # the reserve makes room for the tombstones
            store.delete(k)
        store.close()
        with MemoryStore(path, CFG) as store:
            assert all(k not in store for k in gone)
            assert all(store.retrieve(k) == v for k, v in stored.items() if k not in gone)
            assert store.verify()["ok"]

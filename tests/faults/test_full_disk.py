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


def test_compaction_on_a_full_disk_is_undone_and_works_once_there_is_room(tmp_path: Path) -> None:
    """Compaction copies the live records before it drops the old segments, so it needs room for them.

    On a full disk it raises ``StorageFullError`` saying so, and leaves the log as
    it was: every value reads, writes and deletes go on, a reopen needs no
    repair. Once the disk has room it compacts and the log shrinks.
    """
    with tmpfs(tmp_path / "small", "6m") as root:
        ballast = root / "ballast"
        ballast.write_bytes(os.urandom(3 << 20))  # someone else's file, removed later to make room
        path = root / "s"
        stored: dict[str, bytes] = {}
        store = MemoryStore(path, CFG)
        with pytest.raises(StorageFullError):
            for i in range(10_000):
                value = os.urandom(2000)
                store.store(f"k{i}", value, tier="warm")
                stored[f"k{i}"] = value
        for k in sorted(stored)[:200]:  # within what the reserve holds, as above
            store.delete(k)
            del stored[k]
        log_dir = path / "log"
        files_before = sorted(p.name for p in log_dir.iterdir())
        with pytest.raises(StorageFullError, match="compacting .* needs free space .* nothing was changed"):
            store.compact()
        assert sorted(p.name for p in log_dir.iterdir()) == files_before
        assert all(store.retrieve(k) == v for k, v in stored.items())
        store.delete(next(iter(stored)))  # the log still takes records where it left off
        stored.pop(next(iter(stored)))
        store.close()
        segments = sum(p.stat().st_size for p in log_dir.glob("seg-*.log"))
        with MemoryStore(path, CFG) as store:  # no repair needed
            assert all(store.retrieve(k) == v for k, v in stored.items())
            ballast.unlink()
            store.compact()
            assert all(store.retrieve(k) == v for k, v in stored.items())
            assert store.verify()["ok"]
        compacted = sum(p.stat().st_size for p in log_dir.glob("seg-*.log"))
        assert compacted < segments - 200 * 2000, (segments, compacted)  # the deleted values are gone


def test_new_content_in_place_of_owned_content_on_a_really_full_disk(tmp_path: Path) -> None:
    """The one-call batch of a key superseding its own content (``LogBackend.supersede``) meets ENOSPC.

    The failed ``write`` is undone and raises ``StorageFullError``: the key
    keeps its acknowledged value, the counters match the records, a reopen
    reads every value.
    """
    with tmpfs(tmp_path / "small", "3m") as root:
        path = root / "s"
        stored: dict[str, bytes] = {}
        store = MemoryStore(path, CFG)
        supersede = store.tiers.backend.supersede
        calls: list[int] = []
        taken: list[int] = []

        def counted(*args: object, **kwargs: object) -> tuple[int | None, bytes | None, bytes | None]:
            calls.append(1)
            done = supersede(*args, **kwargs)
            taken.append(done[0] is not None)
            return done

        store.tiers.backend.supersede = counted
        for i in range(20):
            stored[f"k{i}"] = os.urandom(2000)
            store.store(f"k{i}", stored[f"k{i}"], tier="warm")
        with pytest.raises(StorageFullError):
            for i in range(10_000):  # the same keys, new incompressible values, until the file system has no room
                value = os.urandom(2000)
                store.store(f"k{i % 20}", value, tier="warm")
                stored[f"k{i % 20}"] = value
        assert sum(taken) > 100 and len(calls) == len(taken) + 1  # the one-call path wrote until its write failed
        assert all(store.retrieve(k) == v for k, v in stored.items())
        stats = store.get_statistics()["tiered_storage"]
        store.tiers._recount()
        assert store.get_statistics()["tiered_storage"] == stats
        store.close()
        with MemoryStore(path, CFG) as store:
            assert all(store.retrieve(k) == v for k, v in stored.items())
            assert store.verify()["ok"]

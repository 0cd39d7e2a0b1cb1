"""Read-only media: a store and a vector directory on a file system mounted read-only.

``read_only=True`` reads everything (a cold read's promotion to a faster tier,
which is a write, is skipped, never raised); opening for writing raises
``PermissionError`` naming ``read_only=True``. Mounting needs root with
CAP_SYS_ADMIN (CI runs as root); elsewhere the tests skip and say so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from faults.mounts import remount_read_only, tmpfs

from memstrata import MemoryStore, VectorMemory

CFG = {"migration_interval_seconds": None, "hot_max_bytes": 2048}


def _value(i: int) -> dict[str, object]:
    return {"i": i, "text": f"observation {i} " * 4}


@pytest.fixture
def media(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "media", "32m") as root:
        yield root


def test_store_on_read_only_media_reads_everything(media: Path) -> None:
    with MemoryStore(media / "s", CFG) as store:
        for i in range(60):
            store.store(f"k{i}", _value(i), tier=("hot", "warm", "cold")[i % 3])
        store.delete("k5")
    remount_read_only(media)
    with MemoryStore(media / "s", read_only=True) as store:
        for _ in range(2):  # the second read of a cold key is where a promotion would write
            assert all(store.retrieve(f"k{i}") == _value(i) for i in range(60) if i != 5)
        assert store.retrieve("k5", None) is None
        assert store.verify()["ok"]
    with pytest.raises(PermissionError, match="read_only=True"):
        MemoryStore(media / "s", CFG)


def test_vector_directory_on_read_only_media(media: Path) -> None:
    x = np.random.default_rng(0).standard_normal((30, 8)).astype(np.float32)
    with VectorMemory.open(media / "v", dim=8) as memory:
        memory.add(x, ids=np.arange(30))
    remount_read_only(media)
    with VectorMemory.open(media / "v", read_only=True) as memory:
        assert memory.ids().tolist() == list(range(30))
        assert memory.search(x[3], k=1)[1][0, 0] == 3
    with pytest.raises(PermissionError, match="read_only=True"):
        VectorMemory.open(media / "v")

"""add_many past one write chunk: duplicates across chunks, all-or-nothing checks, RAM handed back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memstrata import StorageFullError
from memstrata.agent import AgentConfig, AgentMemory
from memstrata.agent.write import CHUNK_ROWS


def rows(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, 32)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_duplicates_across_chunks_merge_and_link_as_within_one(tmp_path: Path) -> None:
    n = 2 * CHUNK_ROWS + 10
    x = rows(n)
    texts = [f"memory number {i}" for i in range(n)]
    metas: list[dict[str, int] | None] = [None] * n
    late = CHUNK_ROWS + 5  # written by the second chunk
    texts[late] = "MEMORY  number 3"  # an exact duplicate of row 3 (first chunk), with new metadata
    metas[late] = {"seen": 2}
    x[late] = x[3]
    near = 2 * CHUNK_ROWS + 1  # third chunk: a near duplicate of row 7
    x[near] = x[7] + 0.001 * x[8]
    x[near] /= np.linalg.norm(x[near])
    with AgentMemory(tmp_path / "m") as m:
        out = m.add_many(texts, metadata=metas, vectors=x)
        assert len(out) == n
        assert out[late].duplicate_of == out[3].id and out[late].metadata == {"seen": 2}
        assert out[near].links == [out[7].id] and m.get(out[7].id).links == [out[near].id]  # type: ignore[union-attr]
        assert len(m) == n - 1
        ids = [r.id for r in out if r.duplicate_of is None]
        assert ids == sorted(ids) and len(set(ids)) == n - 1
        assert m.verify()["ok"]
    with AgentMemory(tmp_path / "m") as m:  # the first chunk's record, rewritten by the second, kept its vector
        assert m.get(out[3].id).metadata == {"seen": 2}  # type: ignore[union-attr]
        assert m.search(x[3], mode="vector", limit=1)[0].id == out[3].id
        assert m.get(out[7].id).links == [out[near].id]  # type: ignore[union-attr]
        assert m.verify()["ok"] and len(m) == n - 1


def test_a_bad_row_in_a_late_chunk_writes_nothing() -> None:
    n = CHUNK_ROWS + 20
    texts = [f"text {i}" for i in range(n)]
    x = rows(n)
    x[n - 1] = np.nan
    with AgentMemory() as m:
        with pytest.raises(ValueError, match="finite"):
            m.add_many(texts, vectors=x)
        texts[n - 1] = "   "
        with pytest.raises(ValueError, match=rf"contents\[{n - 1}\]"):
            m.add_many(texts, vectors=rows(n))
        assert len(m) == 0 and m.get_metrics()["total_memories"] == 0 and m.search("text", mode="keyword") == []


def test_a_full_disk_part_way_leaves_ram_holding_what_the_store_holds(tmp_path: Path) -> None:
    n = 4 * CHUNK_ROWS
    texts = [f"note {i}: " + "words that take room on disk " * 8 + str(i * 7919) for i in range(n)]
    cfg = AgentConfig(store_config={"max_disk_bytes": 300_000})
    m = AgentMemory(tmp_path / "m", config=cfg)
    with pytest.raises(StorageFullError):
        m.add_many(texts, vectors=rows(n))
    stored = sum(1 for k in m.store.keys() if isinstance(k, str) and k.startswith("m/"))
    assert 0 < stored < n and len(m) == stored  # the first transactions went in, the failed one is not in RAM
    assert m.verify()["ok"]
    kept = [r.id for r in m.get_all(limit=None)]
    assert [h.id for h in m.search(rows(n)[0], mode="vector", limit=1)] == [kept[0]]
    try:  # closing writes the counters, which may not fit: the files are closed either way (reopening takes the lock)
        m.close()
    except StorageFullError:
        pass
    with AgentMemory(tmp_path / "m", config=AgentConfig(store_config={"max_disk_bytes": 10_000_000})) as again:
        assert [r.id for r in again.get_all(limit=None)] == kept and again.verify()["ok"]

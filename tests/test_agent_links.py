"""Near-duplicate links: held on both sides in RAM, stored on the newer side only, the same after reopen."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memstrata.agent import AgentConfig, AgentMemory
from memstrata.store import MemoryStore


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, np.float32)
    return v / np.linalg.norm(v)


def links(m: AgentMemory) -> dict[int, list[int]]:
    return {r.id: list(r.links) for r in m.get_all(limit=None, include_expired=True)}


def test_a_link_costs_one_record_write_and_reopens_on_both_sides(tmp_path: Path) -> None:
    with AgentMemory(tmp_path / "m") as m:
        a = m.add("the sky is blue", vector=unit(1, 0, 0))
        b = m.add("the sky is blue today", vector=unit(1, 0.01, 0))
        c = m.add("the sky looks blue", vector=unit(1, 0, 0.01))
        assert links(m) == {a.id: [b.id, c.id], b.id: [a.id], c.id: [a.id]}
        before = links(m)
    store = MemoryStore(tmp_path / "m", {"train_after": 0})
    try:  # the older memory's record was written once, when it was added: it names no link
        assert "links" not in store.retrieve(f"m/{a.id}")
        assert store.retrieve(f"m/{b.id}")["links"] == [a.id]
    finally:
        store.close()
    with AgentMemory(tmp_path / "m") as m:
        assert links(m) == before
        assert m.verify()["ok"]
        m.forget(a.id)  # the newer records named it: both are rewritten without it
        assert links(m) == {b.id: [], c.id: []}
    with AgentMemory(tmp_path / "m") as m:
        assert links(m) == {b.id: [], c.id: []} and m.verify()["ok"]


def test_pruning_merge_moves_links_to_the_kept_memory_on_both_sides(tmp_path: Path) -> None:
    cfg = AgentConfig(near_duplicate_threshold=0.99)
    with AgentMemory(tmp_path / "m", config=cfg) as m:
        keep = m.add("swap ETH to USDC", vector=unit(1, 0, 0), metadata={"x": 1})
        drop = m.add("swapped ETH into USDC", vector=unit(1, 0.001, 0))  # linked to keep
        other = m.add("ETH to USDC, swapped", vector=unit(1, 0.1, 0.1))  # below 0.99 to keep: no link to it
        m.update(other.id, metadata={"note": "x"})
        # link other to drop only: a record naming drop, so the merge must hand the link to keep
        m._records.set_links(other.id, [drop.id])
        m._records.set_links(drop.id, sorted([*m._records[drop.id].links, other.id]))
        m._persist([m._records[other.id]])
        from memstrata.agent.pruning import _merge

        _merge(m, drop.id, keep.id)
        assert links(m) == {keep.id: [other.id], other.id: [keep.id]}
        assert m.verify()["ok"]
        ram = links(m)
    with AgentMemory(tmp_path / "m", config=cfg) as m:
        assert links(m) == ram and m.verify()["ok"]


def test_links_of_a_format_2_store_read_as_stored_on_both_sides(tmp_path: Path) -> None:
    with AgentMemory(tmp_path / "m") as m:
        a = m.add("one", vector=unit(1, 0))
        b = m.add("one again", vector=unit(1, 0.001))
        m._persist([m._records[a.id]])  # as format 2 wrote it: the back-link stored as well
    with AgentMemory(tmp_path / "m") as m:
        assert links(m) == {a.id: [b.id], b.id: [a.id]}

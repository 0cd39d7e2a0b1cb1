"""The demo's agent figures: an AgentMemory fed the same texts and embeddings, timed as an agent calls it.

All but the last ``timed`` texts go in with ``add_many``; the last ones are
added one at a time (exact- and near-duplicate checks on) and timed; then
``timed`` vector searches for 10 memories. Bytes on disk are counted after
``compact()``. The memory lives in a temporary directory of its own.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["agent_figures", "agent_line"]


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def agent_figures(texts: list[dict[str, Any]], emb: np.ndarray, timed: int = 200) -> dict[str, Any]:
    """Add/search latency (p50, µs), duplicates merged and bytes on disk per memory."""
    from memstrata.agent import AgentMemory

    n = len(texts)
    timed = min(timed, n)
    bulk = n - timed
    with tempfile.TemporaryDirectory(prefix="memstrata-demo-agent-") as tmp:
        path = Path(tmp) / "agent"
        with AgentMemory(path) as memory:
            if bulk:
                memory.add_many([t["text"] for t in texts[:bulk]], vectors=emb[:bulk])
            adds = []
            for i in range(bulk, n):
                t0 = time.perf_counter()
                memory.add(texts[i]["text"], vector=emb[i])
                adds.append(time.perf_counter() - t0)
            searches = []
            for i in range(timed):
                t0 = time.perf_counter()
                memory.search(emb[i], limit=10, mode="vector")
                searches.append(time.perf_counter() - t0)
            counters = dict(memory.counters)
            memories = len(memory)
            memory.compact()
        disk = _dir_bytes(path)
    return {
        "texts": n,
        "memories": memories,
        "duplicates_merged": counters["exact_duplicates"] + counters["near_merged"],
        "near_links": counters["near_links"],
        "add_p50_us": float(np.median(adds) * 1e6) if adds else None,
        "search_p50_us": float(np.median(searches) * 1e6) if searches else None,
        "disk_bytes_per_memory": disk / max(memories, 1),
    }


def agent_line(a: dict[str, Any]) -> str:
    """One row of the demo's table."""
    add = "-" if a["add_p50_us"] is None else f"{a['add_p50_us']:,.0f} µs"
    search = "-" if a["search_p50_us"] is None else f"{a['search_p50_us']:,.0f} µs"
    return (
        f"{a['memories']:,} memories from {a['texts']:,} texts ({a['duplicates_merged']:,} duplicates merged, "
        f"{a['near_links']:,} near duplicates linked); add p50 {add} (dedup checks on), search p50 {search} "
        f"(10 of {a['memories']:,}); {a['disk_bytes_per_memory']:,.0f} B on disk per memory"
    )

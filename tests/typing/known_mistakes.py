"""Common mistakes that ``mypy --strict`` must reject (each line marked with the expected error code)."""

from __future__ import annotations

import numpy as np

from memstrata import MemoryStore, VectorMemory


def main() -> None:
    memory = VectorMemory("384")  # E: arg-type
    memory.search("hello", k=3)  # E: arg-type
    store = MemoryStore(None)
    store.store(1.5, "value")  # E: arg-type
    store.retrieve(np.zeros(3))  # E: arg-type


def tiers_and_levels() -> None:
    store = MemoryStore(None)
    store.store("k", 1, tier="ram")  # E: arg-type
    store.migrate("k", "lukewarm")  # E: arg-type


def codecs_metrics_and_trace_types() -> None:
    from memstrata import SymbolicTraceMemory

    VectorMemory(384, codec="int9")  # E: arg-type
    VectorMemory(384, metric="dot")  # E: arg-type
    with SymbolicTraceMemory({"db_path": ":memory:"}) as mem:
        mem.store_compressed_trace_sync("t", {"a": 1}, trace_type="bench")  # E: arg-type

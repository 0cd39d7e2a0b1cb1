"""README-style usage that must type-check under ``mypy --strict``."""

from __future__ import annotations

import numpy as np

from memstrata import (
    BloomFilter,
    Cache,
    ClosedError,
    CompressionEngine,
    CorruptDataError,
    DedupStore,
    MemoryStore,
    StoreLockedError,
    SymbolicTraceMemory,
    TraceType,
    VectorMemory,
    digest,
)


def main() -> None:
    with MemoryStore(None, config="moderate") as store:
        store.store("note:1", {"text": "the user prefers short answers"})
        value = store.retrieve("note:1")
        print(value, store.verify()["ok"])
    vectors = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    memory = VectorMemory(8, codec="int8", metric="cosine")
    ids = memory.add(vectors)
    scores, found = memory.search(vectors[:2], k=3)
    print(ids, scores, found)
    seen = BloomFilter(capacity=1000, fp_rate=0.01)
    seen.add_many([b"a"])
    cache: Cache = Cache(100)
    cache["k"] = b"v"
    engine = CompressionEngine()
    frame = engine.compress({"a": 1})
    print(engine.decompress(frame), digest(b"x").hex(), DedupStore(backend={}, engine=engine))
    with SymbolicTraceMemory({"db_path": ":memory:"}) as mem:
        mem.store_compressed_trace_sync("op-1", {"op": "x"}, TraceType.SYMBOLIC_OPERATION)
    errors: tuple[type[Exception], ...] = (ClosedError, CorruptDataError, StoreLockedError)
    print(errors)

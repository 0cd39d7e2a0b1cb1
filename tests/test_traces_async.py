"""SymbolicTraceMemory async and threads: the async faces give the sync results, concurrent writers lose nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from _threads import run_in_threads
from _traces_helpers import SMALL, open_memory, query, records

from memstrata.traces import SymbolicTraceMemory, TraceType

# ------------------------------------------------------------------ async --


async def _run_script(mem: SymbolicTraceMemory, recs: list[dict[str, Any]]) -> dict[str, Any]:
    for r in recs:
        await mem.store_compressed_trace(r["trace_id"], r, r["trace_type"], {"gen": r["generation"]})
    await mem.store_compressed_traces([("batch", {"b": 1}, "benchmark")])
    d = await mem.log_performance_delta("loss", 1.0, 0.5, {"k": 1})
    await mem.log_fitness_evolution(1, {"best": 0.5})
    await mem.log_benchmark_result("bench", {"ok": True})
    await mem.log_breakthrough("bt", {"ok": True})
    out = {
        "delta": d,
        "get": [await mem.get_trace(r["trace_id"]) for r in recs],
        "traces": await mem.traces(),
        "typed": await mem.traces(type=TraceType.BREAKTHROUGH),
        "history": await mem.performance_history("loss"),
        "fitness": await mem.fitness_evolution(),
        "stats": await mem.get_compression_stats(),
        "retrain": await mem.retrain_dictionaries(["perf_delta"], n_samples=50),
        "flushed": await mem.flush(),
        "retention": await mem.apply_retention(),
    }
    await mem.aclose()
    return out


def _run_script_sync(mem: SymbolicTraceMemory, recs: list[dict[str, Any]]) -> dict[str, Any]:
    for r in recs:
        mem.store_compressed_trace_sync(r["trace_id"], r, r["trace_type"], {"gen": r["generation"]})
    mem.store_compressed_traces_sync([("batch", {"b": 1}, "benchmark")])
    d = mem.log_performance_delta_sync("loss", 1.0, 0.5, {"k": 1})
    mem.log_fitness_evolution_sync(1, {"best": 0.5})
    mem.log_benchmark_result_sync("bench", {"ok": True})
    mem.log_breakthrough_sync("bt", {"ok": True})
    out = {
        "delta": d,
        "get": [mem.get_trace_sync(r["trace_id"]) for r in recs],
        "traces": mem.traces_sync(),
        "typed": mem.traces_sync(type=TraceType.BREAKTHROUGH),
        "history": mem.performance_history_sync("loss"),
        "fitness": mem.fitness_evolution_sync(),
        "stats": mem.get_compression_stats_sync(),
        "retrain": mem.retrain_dictionaries_sync(["perf_delta"], n_samples=50),
        "flushed": mem.flush_sync(),
        "retention": mem.apply_retention_sync(),
    }
    mem.close()
    return out


def test_async_and_sync_give_the_same_results(tmp_path: Path) -> None:
    recs = records(150, seed=12)
    sync_out = _run_script_sync(open_memory(tmp_path / "s.db", **SMALL), recs)
    async_out = asyncio.run(_run_script(open_memory(tmp_path / "a.db", **SMALL), recs))
    assert async_out == sync_out
    assert sync_out["get"] == recs
    with open_memory(tmp_path / "s.db") as s, open_memory(tmp_path / "a.db") as a:
        assert s.traces_sync() == a.traces_sync()


def test_async_context_manager() -> None:
    async def go() -> tuple[Any, bool]:
        async with SymbolicTraceMemory() as mem:
            await mem.store_compressed_trace("a", {"x": 1})
            got = await mem.get_trace("a")
        return got, mem.closed

    assert asyncio.run(go()) == ({"x": 1}, True)


def test_concurrent_async_writers(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    recs = records(400, seed=13)
    n_writers = 8

    async def writer(mem: SymbolicTraceMemory, k: int) -> None:
        for i, r in enumerate(recs[k::n_writers]):
            await mem.store_compressed_trace(r["trace_id"], r, r["trace_type"])
            await mem.log_performance_delta("accuracy", 0.5, 0.5 + i / 1000, {"writer": k})
            if i % 7 == 0:
                await asyncio.sleep(0)  # interleave with commits running in worker threads

    async def main() -> None:
        mem = open_memory(db, flush_every=16, **SMALL)
        await asyncio.gather(*(writer(mem, k) for k in range(n_writers)))
        await mem.aclose()

    asyncio.run(main())
    with open_memory(db, **SMALL) as mem:
        assert all(mem.get_trace_sync(r["trace_id"]) == r for r in recs)
        assert len(mem.performance_history_sync("accuracy")) == len(recs)
        assert mem.seq == 3 * len(recs) + len(mem.get_compression_stats_sync()["dictionaries"])  # delta, its trace
    seqs = [s for (s,) in query(db, "SELECT seq FROM traces UNION ALL SELECT seq FROM performance_deltas")]
    assert len(seqs) == len(set(seqs)) == 2 * len(recs) + 1  # + the perf_delta trace (one id per metric, time)


def test_concurrent_threads(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    recs = records(300, seed=14)
    mem = open_memory(db, flush_every=10, **SMALL)

    def work(k: int) -> None:
        for r in recs[k::4]:
            mem.store_compressed_trace_sync(r["trace_id"], r, r["trace_type"])
            assert mem.get_trace_sync(r["trace_id"]) == r
        mem.traces_sync(limit=5)

    try:
        run_in_threads(work, 4)
    finally:
        mem.close()
    with open_memory(db, **SMALL) as again:
        assert len(again.traces_sync()) == len(recs)

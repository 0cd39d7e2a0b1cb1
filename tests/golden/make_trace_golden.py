"""Write a golden trace database (run once per format; the files are committed).

    python tests/golden/make_trace_golden.py traces_v2

``traces_v1/traces.db`` was written by the schema-1 trace memory (version-1
blobs); ``traces_v2/traces.db`` by the memory whose blobs are compact frames
(blob version 2). ``expected.json`` holds what each must keep answering;
``test_traces_integrity.py`` and ``test_traces_blob.py`` open a copy with
today's code and check every trace, delta and dictionary still reads back
exactly. Never regenerate the files of a released version.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from memstrata.traces import SymbolicTraceMemory, TraceType

HERE = Path(__file__).resolve().parent / (sys.argv[1] if len(sys.argv) > 1 else "traces_v2")
T0 = 1_763_700_000.0


def build(path: Path) -> dict[str, object]:
    now = [T0]
    cfg = {"db_path": str(path), "train_after": 64, "type_train_after": 40, "flush_every": 50,
           "retention_days": 10, "dictionary_bytes": 1024}
    with SymbolicTraceMemory(cfg, clock=lambda: now[0]) as mem:
        for i in range(120):
            now[0] = T0 + i * 600.0
            mem.store_compressed_trace_sync(
                f"op-{i}", {"op": ["simplify", "expand", "factor"][i % 3], "arg": f"(f x{i} y)", "cost": i % 7},
                TraceType.SYMBOLIC_OPERATION, {"src": "golden", "i": i},
            )
            if i % 10 == 0:
                mem.log_fitness_evolution_sync(i // 10, {"best": 0.5 + i / 1000, "mean": 0.4})
                mem.log_performance_delta_sync("latency_ms", 100.0 + i, 95.0 + i, {"commit": f"c{i}"})
        mem.store_compressed_trace_sync("op-3", {"op": "replaced", "tags": (1, 2)}, TraceType.MUTATION_PATTERN)
        mem.log_benchmark_result_sync("gen5", {"pass_rate": 0.61, "n": 200})
        mem.log_breakthrough_sync("bt-1", {"metric": "pass_rate", "new_best": 0.61})
        mem.store_compressed_trace_sync("tiny", [1, 2, 3], TraceType.META_EVOLUTION, priority=0.2,
                                        timestamp=T0 - 30 * 86_400.0)
        mem.flush_sync()
        now[0] = T0 + 120 * 600.0
        mem.apply_retention_sync()  # removes "tiny" (a tombstone)
        ids = [t.trace_id for t in mem.traces_sync()]
        expected = {
            "traces": {tid: mem.get_trace_sync(tid) for tid in ids},
            "types": {t.trace_id: t.trace_type.value for t in mem.traces_sync()},
            "history": [[d.old_value, d.new_value, d.delta_direction, d.context, d.timestamp]
                        for d in mem.performance_history_sync("latency_ms")],
            "seq": mem.seq,
            "dictionaries": len(mem.get_compression_stats_sync()["dictionaries"]),
        }
    return expected


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    db = HERE / "traces.db"
    if db.exists():
        raise SystemExit(f"{db} exists: golden files are written once")
    exp = build(db)
    (HERE / "expected.json").write_text(json.dumps(exp, indent=1, sort_keys=True) + "\n")
    print(db, db.stat().st_size, "bytes;", len(exp["traces"]), "traces")

"""SymbolicTraceMemory: schema, config, every method, statistics, retention, close (durability, async and the state machine: test_traces_*.py)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _traces_helpers import DAY, SMALL, T0, Clock, open_memory, query, records, store_records

from memstrata import MemstrataError
from memstrata.traces import SCHEMA_VERSION, CompressedTrace, PerformanceDelta, SymbolicTraceMemory, TraceType

# ---------------------------------------------------------------- schema --



def test_schema_tables_and_indexes_are_exact(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with open_memory(db) as mem:
        assert mem.schema_version == SCHEMA_VERSION == 2
    cols = {r[1]: (r[2], r[3], r[4], r[5]) for r in query(db, "PRAGMA table_info(traces)")}
    assert {k: cols[k] for k in list(cols)[:8]} == {
        "trace_id": ("TEXT", 0, None, 1),
        "trace_type": ("TEXT", 1, None, 0),
        "compressed_data": ("BLOB", 1, None, 0),
        "compression_ratio": ("REAL", 1, None, 0),
        "original_size": ("INTEGER", 1, None, 0),
        "metadata": ("TEXT", 1, None, 0),
        "timestamp": ("REAL", 1, None, 0),
        "retention_priority": ("REAL", 0, "1.0", 0),
    }
    delta_cols = [(r[1], r[2], r[3]) for r in query(db, "PRAGMA table_info(performance_deltas)")]
    assert delta_cols[:9] == [
        ("id", "INTEGER", 0), ("metric_name", "TEXT", 1), ("old_value", "REAL", 1), ("new_value", "REAL", 1),
        ("delta_magnitude", "REAL", 1), ("delta_direction", "TEXT", 1), ("confidence", "REAL", 1),
        ("context", "TEXT", 1), ("timestamp", "REAL", 1),
    ]
    indexes = dict(query(db, "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
    assert indexes["idx_traces_type_time"] == "traces"
    assert indexes["idx_performance_metric_time"] == "performance_deltas"
    assert [r[2] for r in query(db, "PRAGMA index_info(idx_traces_type_time)")] == ["trace_type", "timestamp"]
    assert [r[2] for r in query(db, "PRAGMA index_info(idx_performance_metric_time)")] == ["metric_name", "timestamp"]
    assert "AUTOINCREMENT" in query(db, "SELECT sql FROM sqlite_master WHERE name = 'performance_deltas'")[0][0]
    assert query(db, "SELECT value FROM meta WHERE key = 'schema_version'") == [(2,)]
    assert query(db, "PRAGMA journal_mode") == [("wal",)]


def test_history_query_uses_the_index(tmp_path: Path) -> None:
    with open_memory(tmp_path / "t.db") as mem:
        plan = mem._conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM performance_deltas WHERE metric_name = ? ORDER BY timestamp, id", ("x",)
        ).fetchall()
    text = " ".join(str(r[-1]) for r in plan)
    assert "idx_performance_metric_time" in text and "TEMP B-TREE" not in text


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    open_memory(db).close()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'")
        conn.commit()
    with pytest.raises(MemstrataError, match="schema version 3; this memstrata reads version 2"):
        open_memory(db)


# ---------------------------------------------------------------- config --


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        ({"max_traces": 3}, ValueError, r"config: unknown keys \['max_traces'\]"),
        ({"max_memory_traces": 0}, ValueError, "max_memory_traces: expected an int >= 1, got 0"),
        ({"max_memory_traces": 1.5}, TypeError, "max_memory_traces: expected an int >= 1, got float"),
        ({"retention_days": -1}, ValueError, "retention_days: expected a number >= 0"),
        ({"retention_days": float("nan")}, ValueError, "retention_days: expected a finite number"),
        ({"durability": "paranoid"}, ValueError, "durability: expected one of"),
        ({"high_priority": 2}, ValueError, r"high_priority: expected a number in \[0, 1\]"),
        ({"zstd_level": 40}, ValueError, r"zstd_level: expected an int in \[-7, 22\]"),
        ({"db_path": 3}, TypeError, "db_path: expected a str or path"),
        ({"lower_is_better": "loss"}, TypeError, "lower_is_better: expected a list of metric names"),
    ],
)
def test_bad_config(config: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        SymbolicTraceMemory(config)


def test_bad_config_type_and_clock() -> None:
    with pytest.raises(TypeError, match="config: expected a dict or None, got list"):
        SymbolicTraceMemory([])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock: expected a callable"):
        SymbolicTraceMemory(clock=3.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("durability", ["none", "normal", "full"])
def test_durability_levels(tmp_path: Path, durability: str) -> None:
    with open_memory(tmp_path / "t.db", durability=durability) as mem:
        level = mem._conn.execute("PRAGMA synchronous").fetchone()[0]
        mem.store_compressed_trace_sync("a", {"x": 1})
    assert level == {"none": 0, "normal": 1, "full": 2}[durability]


# ----------------------------------------------------------- store / get --


def test_store_and_get(tmp_path: Path) -> None:
    clock = Clock()
    with open_memory(tmp_path / "t.db", clock) as mem:
        rec = records(1)[0]
        trace = mem.store_compressed_trace_sync("t1", rec, TraceType.MUTATION_PATTERN, {"run": "r1"})
        assert isinstance(trace, CompressedTrace)
        assert trace.trace_id == "t1" and trace.trace_type is TraceType.MUTATION_PATTERN
        assert trace.metadata == {"run": "r1"} and trace.timestamp == T0
        assert trace.retention_priority == 0.4
        assert trace.compression_ratio == len(trace.compressed_data) / trace.original_size < 1
        assert mem.get_trace_sync("t1") == rec
        assert mem.get_trace_sync("nope") is None
        assert mem.decompress_trace(trace) == rec
        # by value, explicit priority and timestamp; re-storing an id replaces it
        mem.store_compressed_trace_sync("t1", {"v": 2}, "collapse", priority=0.25, timestamp=5.0)
        assert mem.get_trace_sync("t1") == {"v": 2}
        [t] = mem.traces_sync()
        assert (t.trace_type, t.retention_priority, t.timestamp) == (TraceType.COLLAPSE_EVENT, 0.25, 5.0)


@pytest.mark.parametrize(
    "data",
    [
        {"tuple": (1, 2), "bytes": b"\x00\xff"},
        {1: "int key"},
        {"nan": float("nan")},
        [1, 2.5, None, "x"],
        "just a string",
        42,
        {"big": 2**80},
        {"array": np.arange(6, dtype=np.float32).reshape(2, 3)},
        {},
    ],
    ids=["tuple-bytes", "int-key", "nan", "list", "str", "int", "bigint", "ndarray", "empty"],
)
def test_values_round_trip_exactly(tmp_path: Path, data: Any) -> None:
    db = tmp_path / "t.db"
    with open_memory(db) as mem:
        mem.store_compressed_trace_sync("t", data)
    with open_memory(db) as mem:
        out = mem.get_trace_sync("t")
    if isinstance(data, dict) and "array" in data:
        np.testing.assert_array_equal(out["array"], data["array"])
        assert out["array"].dtype == np.float32
    elif isinstance(data, dict) and "nan" in data:
        assert np.isnan(out["nan"])
    else:
        assert out == data and type(out) is type(data)
        if isinstance(data, dict) and "tuple" in data:
            assert type(out["tuple"]) is tuple and type(out["bytes"]) is bytes


def test_bad_store_arguments() -> None:
    with SymbolicTraceMemory() as mem:
        with pytest.raises(TypeError, match="trace_id: expected a non-empty str"):
            mem.store_compressed_trace_sync("", {})
        with pytest.raises(ValueError, match="trace_type: expected a TraceType or one of symbolic_op"):
            mem.store_compressed_trace_sync("a", {}, "nonsense")
        with pytest.raises(TypeError, match="metadata: expected a dict or None, got list"):
            mem.store_compressed_trace_sync("a", {}, metadata=[1])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="metadata: expected a JSON-safe dict"):
            mem.store_compressed_trace_sync("a", {}, metadata={"s": {1, 2}})
        with pytest.raises(ValueError, match=r"priority: expected a number in \[0, 1\], got 1.5"):
            mem.store_compressed_trace_sync("a", {}, priority=1.5)
        with pytest.raises(TypeError, match="data: value: objects of type builtins.set are not serializable"):
            mem.store_compressed_trace_sync("a", {1, 2})
        with pytest.raises(TypeError, match="trace_id: expected a str"):
            mem.get_trace_sync(3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="trace: expected a CompressedTrace"):
            mem.decompress_trace({})  # type: ignore[arg-type]
        assert mem.traces_sync() == []


def test_store_many(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with open_memory(db) as mem:
        out = mem.store_compressed_traces_sync(
            [("a", {"x": 1}), ("b", {"x": 2}, "benchmark"), {"trace_id": "c", "data": [3], "priority": 0.95}]
        )
        assert [t.trace_id for t in out] == ["a", "b", "c"]
        # an urgent item commits the whole batch before the call returns
        assert query(db, "SELECT trace_id FROM traces ORDER BY trace_id") == [("a",), ("b",), ("c",)]
        with pytest.raises(TypeError, match=r"items\[1\]: expected a \(trace_id, data"):
            mem.store_compressed_traces_sync([("d", 1), "e"])
        with pytest.raises(ValueError, match=r"items\[0\]: expected keys trace_id, data"):
            mem.store_compressed_traces_sync([{"trace_id": "d"}])
        with pytest.raises(TypeError, match="items: expected an iterable"):
            mem.store_compressed_traces_sync("abc")
        assert mem.get_trace_sync("d") is None  # a bad batch stores nothing


# ---------------------------------------------------------- log_* methods --


def test_log_methods_and_queries(tmp_path: Path) -> None:
    clock = Clock()
    with open_memory(tmp_path / "t.db", clock) as mem:
        for gen, best in [(2, 0.7), (0, 0.5), (1, 0.6)]:
            clock.advance(1)
            t = mem.log_fitness_evolution_sync(gen, {"best_fitness": best})
            assert t.trace_id == f"fitness_evo:{gen}" and t.trace_type is TraceType.FITNESS_EVOLUTION
        evo = mem.fitness_evolution_sync()
        assert [(p["generation"], p["fitness"]["best_fitness"]) for p in evo] == [(0, 0.5), (1, 0.6), (2, 0.7)]
        assert [p["timestamp"] for p in evo] == [T0 + 2, T0 + 3, T0 + 1]
        clock.advance(1)
        b = mem.log_benchmark_result_sync("humaneval-7", {"passed": 120, "total": 164})
        assert b.trace_id == "benchmark:humaneval-7" and b.metadata == {"benchmark_id": "humaneval-7"}
        bt = mem.log_breakthrough_sync("bt1", {"metric": "accuracy"})
        assert bt.retention_priority == 1.0 and bt.trace_type is TraceType.BREAKTHROUGH
        assert mem.get_trace_sync("benchmark:humaneval-7") == {"passed": 120, "total": 164}
        with pytest.raises(TypeError, match="generation: expected an int >= 0"):
            mem.log_fitness_evolution_sync(-1.0, {})  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="fitness_data: expected a dict"):
            mem.log_fitness_evolution_sync(1, [])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="benchmark_id: expected a non-empty str"):
            mem.log_benchmark_result_sync("", {})
        with pytest.raises(TypeError, match="breakthrough_id: expected a non-empty str"):
            mem.log_breakthrough_sync(None, {})  # type: ignore[arg-type]
        # traces(): type, time window, limit, order
        assert [t.trace_id for t in mem.traces_sync(type="fitness_evo")] == [
            "fitness_evo:2", "fitness_evo:0", "fitness_evo:1",
        ]
        assert [t.trace_id for t in mem.traces_sync(since=T0 + 2, until=T0 + 3)] == ["fitness_evo:0", "fitness_evo:1"]
        assert [t.trace_id for t in mem.traces_sync(limit=2, newest_first=True)] == [
            "breakthrough:bt1", "benchmark:humaneval-7",
        ]
        assert mem.traces_sync(limit=0) == []
        with pytest.raises(ValueError, match="limit: expected an int >= 0"):
            mem.traces_sync(limit=-1)
        with pytest.raises(ValueError, match="since: expected a finite number"):
            mem.traces_sync(since=float("nan"))


def test_performance_deltas_and_history(tmp_path: Path) -> None:
    clock = Clock()
    cfg = {"lower_is_better": ["steps"], "higher_is_better": ["latency_score"]}
    with open_memory(tmp_path / "t.db", clock, **cfg) as mem:
        d = mem.log_performance_delta_sync("latency_ms", 100.0, 80.0, {"commit": "abc"}, 0.9)
        assert isinstance(d, PerformanceDelta)
        assert (d.delta_direction, d.delta_magnitude, d.improvement_ratio, d.timestamp) == (
            "improvement", 20.0, 0.8, T0,
        )
        assert mem.log_performance_delta_sync("steps", 10, 12).delta_direction == "degradation"
        assert mem.log_performance_delta_sync("latency_score", 1, 2).delta_direction == "improvement"
        assert mem.log_performance_delta_sync("accuracy", 0.5, 0.4, lower_is_better=True).delta_direction == (
            "improvement"
        )
        for i in range(5):
            clock.advance(10)
            mem.log_performance_delta_sync("latency_ms", 80.0 - i, 79.0 - i)
        hist = mem.performance_history_sync("latency_ms")
        assert [h.old_value for h in hist] == [100.0, 80.0, 79.0, 78.0, 77.0, 76.0]
        assert hist[0] == d
        assert hist[0].context == {"commit": "abc"} and hist[1].context == {}
        assert [h.old_value for h in mem.performance_history_sync("latency_ms", since=T0 + 30)] == [78.0, 77.0, 76.0]
        assert mem.performance_history_sync("unknown") == []
        with pytest.raises(ValueError, match="old_value: expected a finite number, got nan"):
            mem.log_performance_delta_sync("accuracy", float("nan"), 1.0)
        with pytest.raises(ValueError, match=r"confidence: expected a number in \[0, 1\]"):
            mem.log_performance_delta_sync("accuracy", 1.0, 1.0, confidence=-0.1)
        with pytest.raises(TypeError, match="context: expected a dict or None"):
            mem.log_performance_delta_sync("accuracy", 1.0, 1.0, context="x")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="metric_name: expected a non-empty str"):
            mem.performance_history_sync("")


# ------------------------------------------------------------ statistics --


def test_compression_stats_and_dictionaries(tmp_path: Path) -> None:
    recs = records(600, seed=2)
    with open_memory(tmp_path / "t.db", **SMALL) as mem:
        store_records(mem, recs)
        stats = mem.get_compression_stats_sync()
        traces = mem.traces_sync()
        assert stats["total_compressions"] == len(traces) == 600
        assert stats["total_original_size"] == sum(t.original_size for t in traces)
        assert stats["total_compressed_size"] == sum(len(t.compressed_data) for t in traces)
        assert stats["avg_compression_ratio"] == stats["total_compressed_size"] / stats["total_original_size"]
        for ttype, s in stats["per_type"].items():
            mine = [t for t in traces if t.trace_type.value == ttype]
            assert s["count"] == len(mine)
            assert s["compressed_size"] == sum(len(t.compressed_data) for t in mine)
            assert s["compression_ratio"] == s["compressed_size"] / s["original_size"]
        scopes = [d["scope"] for d in stats["dictionaries"]]
        assert scopes[0] == "*" and "perf_delta" in scopes and "symbolic_op" in scopes
        assert [d["version"] for d in stats["dictionaries"]] == list(range(1, len(scopes) + 1))
        # traces written before their dictionary were re-encoded with it (where that made them smaller)
        for d in stats["dictionaries"][1:]:
            n_type, n_version = mem._conn.execute(
                "SELECT COUNT(*), SUM(dictionary_version = ?) FROM traces WHERE trace_type = ?", (d["version"], d["scope"])
            ).fetchone()
            assert 0 < n_version <= n_type  # the rest were smaller with the stream dictionary
        assert stats["avg_compression_ratio"] < 0.35
        assert all(mem.get_trace_sync(r["trace_id"]) == r for r in recs)
        assert all(mem.decompress_trace(t) == r for t, r in zip(traces, recs))


def test_retrain_makes_a_new_version(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    recs = records(300, seed=4)
    with open_memory(db, **SMALL) as mem:
        store_records(mem, recs)
        before = {d["scope"]: d["version"] for d in mem.get_compression_stats_sync()["dictionaries"]}
        report = mem.retrain_dictionaries_sync(["perf_delta", TraceType.MUTATION_PATTERN], n_samples=100)
        assert set(report) == {"perf_delta", "mutation"}
        after = [d for d in mem.get_compression_stats_sync()["dictionaries"] if d["active"]]
        new = {d["scope"]: d["version"] for d in after}
        assert new["perf_delta"] > before.get("perf_delta", 0) and new["mutation"] > before.get("mutation", 0)
        with pytest.raises(ValueError, match="n_samples: expected an int >= 8"):
            mem.retrain_dictionaries_sync(n_samples=2)
    with open_memory(db, **SMALL) as mem:
        assert all(mem.get_trace_sync(r["trace_id"]) == r for r in recs)


# -------------------------------------------------------------- retention --


def test_retention_by_age(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    clock = Clock()
    with open_memory(db, clock, retention_days=30) as mem:
        mem.store_compressed_trace_sync("old-low", {"x": 1}, priority=0.2)
        mem.store_compressed_trace_sync("old-edge", {"x": 2}, priority=0.8)  # not above 0.8: expires
        mem.store_compressed_trace_sync("old-high", {"x": 3}, priority=0.81)
        mem.log_breakthrough_sync("b", {"x": 4})
        clock.advance(10 * DAY)
        mem.store_compressed_trace_sync("mid", {"x": 5}, priority=0.1)
        clock.advance(20 * DAY + 1)
        mem.store_compressed_trace_sync("new", {"x": 6}, priority=0.1)
        seq = mem.seq
        report = mem.apply_retention_sync()
        assert report["cutoff"] == clock.now - 30 * DAY
        assert (report["expired"], report["kept_high_priority"], report["evicted_from_memory"]) == (2, 2, 0)
        assert report["seq"] == seq + 2
        assert sorted(t.trace_id for t in mem.traces_sync()) == ["breakthrough:b", "mid", "new", "old-high"]
        assert mem.get_trace_sync("old-low") is None
        assert len(mem) == 4
        again = mem.apply_retention_sync()
        assert again["expired"] == 0
    assert sorted(query(db, "SELECT trace_id, seq, reason FROM tombstones")) == [
        ("old-edge", seq + 2, "retention"), ("old-low", seq + 1, "retention"),
    ]


def test_retention_by_priority_in_memory(tmp_path: Path) -> None:
    clock = Clock()
    with open_memory(tmp_path / "t.db", clock, max_memory_traces=4) as mem:
        priorities = [0.5, 0.1, 0.9, 0.5, 0.1, 0.7, 0.5]
        for i, p in enumerate(priorities):
            clock.advance(1)
            mem.store_compressed_trace_sync(f"t{i}", {"i": i}, priority=p)
        assert len(mem) <= 5  # writes keep RAM within 10 % (at least 1) of the maximum
        before = len(mem)
        report = mem.apply_retention_sync()
        assert report["in_memory"] == len(mem) == 4
        # highest priority first, then the most recent among equals
        assert sorted(mem._memory) == ["t2", "t3", "t5", "t6"]
        assert report["evicted_from_memory"] == before - 4
        assert report["expired"] == 0
        # dropped from memory, still in the database
        assert all(mem.get_trace_sync(f"t{i}") == {"i": i} for i in range(len(priorities)))


def test_memory_stays_bounded_between_retentions() -> None:
    with SymbolicTraceMemory({"max_memory_traces": 20}) as mem:
        for i in range(200):
            mem.store_compressed_trace_sync(f"t{i}", {"i": i})
            assert len(mem) <= 22
        assert mem.get_trace_sync("t0") == {"i": 0}


# ------------------------------------------------------------------ close --


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    mem = open_memory(tmp_path / "t.db")
    mem.store_compressed_trace_sync("a", {"x": 1})
    mem.close()
    mem.close()
    assert "closed" in repr(mem)
    for call in (
        lambda: mem.store_compressed_trace_sync("b", {}),
        lambda: mem.get_trace_sync("a"),
        lambda: mem.traces_sync(),
        lambda: mem.log_performance_delta_sync("x", 1, 2),
        lambda: mem.flush_sync(),
        lambda: mem.apply_retention_sync(),
    ):
        with pytest.raises(MemstrataError, match="the memory is closed"):
            call()
    with open_memory(tmp_path / "t.db") as again:
        assert again.get_trace_sync("a") == {"x": 1}


@pytest.mark.parametrize(
    "data",
    [
        {"b": b"raw"},
        {"k": {2: "int key"}},
        {"k": {None: 1}},
        {"f": float("inf")},
        {"n": None, "nan": float("nan")},
        {"t": [(1,)]},
        {"s": {1}},
        {"e": TraceType.BREAKTHROUGH},
        {"nested": [{"deep": [b"x"]}]},
    ],
    ids=["bytes", "int-key", "none-key", "inf", "nan-with-null", "tuple", "set", "str-enum", "nested-bytes"],
)
def test_json_is_used_only_when_exact(data: Any) -> None:
    from memstrata.traces._blob import ENC_MSGPACK
    from memstrata.traces._config import serialize as _serialize

    try:
        encoding, _ = _serialize(data)
    except TypeError:
        return  # not serializable at all (a set): refused, never changed
    assert encoding == ENC_MSGPACK


def test_json_is_used_for_plain_records() -> None:
    from memstrata.traces._blob import ENC_JSON
    from memstrata.traces._config import serialize as _serialize

    for r in records(50, seed=1):
        assert _serialize(r)[0] == ENC_JSON
    assert _serialize({"a": None, "b": [1.5, "x", True]})[0] == ENC_JSON

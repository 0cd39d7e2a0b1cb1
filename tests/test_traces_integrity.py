"""Trace database integrity and the documented behaviours: checksums, verify(), migration, refusals, retention."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from memstrata import CorruptDataError, MemstrataError
from memstrata.traces import SCHEMA_VERSION, SymbolicTraceMemory, TraceType, direction_rule

DAY = 86_400.0
T0 = 1_763_700_000.0
GOLDEN = Path(__file__).resolve().parent / "golden" / "traces_v1"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def open_memory(path: Path | str, clock: Clock | None = None, **config: Any) -> SymbolicTraceMemory:
    return SymbolicTraceMemory({"db_path": str(path), **config}, clock=clock or Clock())


def execute(path: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(sql, args).fetchall()
        conn.commit()
        return rows


def filled(path: Path, n: int = 40) -> None:
    with open_memory(path) as mem:
        for i in range(n):
            mem.store_compressed_trace_sync(f"t{i}", {"i": i, "text": "x" * (i % 50)}, metadata={"src": "a"})
        mem.log_performance_delta_sync("latency_ms", 100.0, 154.0)
        mem.log_breakthrough_sync("b1", {"new_best": 0.9})


# -------------------------------------------------------------- golden v1 --


def test_golden_schema_1_database_migrates_and_reads_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "traces.db"
    shutil.copy(GOLDEN / "traces.db", db)
    expected = json.loads((GOLDEN / "expected.json").read_text())
    with caplog.at_level(logging.WARNING, logger="memstrata"):
        mem = open_memory(db, train_after=64, type_train_after=40)
    assert any("migrated the trace database from schema version 1" in r.getMessage() for r in caplog.records)
    with mem:
        assert mem.schema_version == SCHEMA_VERSION
        for tid, value in expected["traces"].items():
            assert json.loads(json.dumps(mem.get_trace_sync(tid))) == value
        assert {t.trace_id: t.trace_type.value for t in mem.traces_sync()} == expected["types"]
        history = [[d.old_value, d.new_value, d.delta_direction, d.context, d.timestamp]
                   for d in mem.performance_history_sync("latency_ms")]
        assert history == expected["history"]
        assert len(mem.get_compression_stats_sync()["dictionaries"]) >= expected["dictionaries"]
        assert mem.seq >= expected["seq"]
        report = mem.verify_sync()
        assert report["ok"], report["errors"]
        mem.store_compressed_trace_sync("after", {"x": 1})
    with open_memory(db) as again:
        assert again.get_trace_sync("after") == {"x": 1}
        assert again.verify_sync()["ok"]
    assert (GOLDEN / "traces.db").read_bytes()[:16] == b"SQLite format 3\x00"  # the golden file is untouched


# ------------------------------------------------------------ row checks --


def test_swapped_blobs_raise_instead_of_returning_another_trace(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with open_memory(db) as mem:
        mem.store_compressed_trace_sync("a", {"who": "a"})
        mem.store_compressed_trace_sync("b", {"who": "b"})
    (blob_a,), (blob_b,) = execute(db, "SELECT compressed_data FROM traces ORDER BY trace_id")
    execute(db, "UPDATE traces SET compressed_data = ? WHERE trace_id = 'a'", (blob_b,))
    execute(db, "UPDATE traces SET compressed_data = ? WHERE trace_id = 'b'", (blob_a,))
    with open_memory(db) as mem:
        with pytest.raises(CorruptDataError, match="fails its checksum"):
            mem.get_trace_sync("a")
        report = mem.verify_sync()
        assert not report["ok"] and report["bad_traces"] == ["a", "b"]


@pytest.mark.parametrize(("column", "value"), [("metadata", '{"rc":"a"}'), ("retention_priority", -2.4e-185),
                                               ("timestamp", T0 + 1), ("trace_type", "mutation")])
def test_any_changed_column_is_detected(tmp_path: Path, column: str, value: Any) -> None:
    db = tmp_path / "t.db"
    filled(db)
    execute(db, f"UPDATE traces SET {column} = ? WHERE trace_id = 't5'", (value,))
    with open_memory(db) as mem:
        with pytest.raises(CorruptDataError, match=str(db)):
            mem.traces_sync()
        assert mem.verify_sync()["bad_traces"] == ["t5"]


def test_changed_delta_value_is_detected(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    filled(db)
    execute(db, "UPDATE performance_deltas SET new_value = 54.0")
    with open_memory(db) as mem:
        with pytest.raises(CorruptDataError, match="fails its checksum"):
            mem.performance_history_sync("latency_ms")
        assert len(mem.verify_sync()["bad_deltas"]) == 1


def test_deleted_row_is_named_by_verify(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    filled(db)
    (seq,) = execute(db, "SELECT seq FROM traces WHERE trace_id = 't7'")[0]
    execute(db, "DELETE FROM traces WHERE trace_id = 't7'")
    with open_memory(db) as mem:
        assert mem.get_trace_sync("t7") is None
        report = mem.verify_sync()
        assert not report["ok"] and report["missing_seqs"] == [seq]


def test_replaced_and_expired_traces_keep_the_sequence_whole(tmp_path: Path) -> None:
    clock = Clock()
    with open_memory(tmp_path / "t.db", clock, retention_days=1) as mem:
        for i in range(30):
            mem.store_compressed_trace_sync(f"t{i % 7}", {"i": i})
        mem.flush_sync()
        mem.store_compressed_trace_sync("t1", {"again": True})
        clock.now += 2 * DAY
        assert mem.apply_retention_sync()["expired"] == 7
        report = mem.verify_sync()
        assert report["ok"], report["errors"]


# ------------------------------------------------- lost WAL, stale copies --


def test_lost_wal_after_an_acknowledged_breakthrough_is_detected(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with open_memory(db) as mem:
        mem.store_compressed_trace_sync("x", {"v": 1})
    mem = open_memory(db)
    mem.log_breakthrough_sync("b1", {"new_best": 0.9})  # durable on return: it is in the WAL
    main_file = db.read_bytes()  # the main file without the WAL's pages
    mem._closed = True  # the process dies; then the WAL is lost
    mem._conn.close()
    db.write_bytes(main_file)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    with pytest.raises(CorruptDataError, match="older than its acknowledged writes"):
        open_memory(db)


def test_an_older_copy_of_the_file_is_detected(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    filled(db, 10)
    old = (tmp_path / "old.db")
    shutil.copy(db, old)
    with open_memory(db) as mem:
        mem.store_compressed_trace_sync("new", {"x": 1})
    shutil.copy(old, db)
    with pytest.raises(CorruptDataError, match="older than its acknowledged writes"):
        open_memory(db)


def test_deleted_database_with_its_mark_is_not_recreated_empty(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    filled(db, 5)
    db.unlink()
    with pytest.raises(CorruptDataError, match="missing or empty"):
        open_memory(db)


def test_crash_recovery_is_logged_and_verifies(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "t.db"
    mem = open_memory(db)
    mem.store_compressed_trace_sync("queued", {"x": 1})
    mem.log_breakthrough_sync("b1", {"new_best": 0.9})
    mem._closed = True
    mem._conn.close()
    with caplog.at_level(logging.WARNING, logger="memstrata.traces"):
        again = open_memory(db)
    assert any("recovered after a crash" in r.getMessage() for r in caplog.records)
    with again:
        assert again.get_trace_sync("breakthrough:b1") == {"new_best": 0.9}
        assert again.verify_sync()["ok"]


def test_damage_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "t.db"
    filled(db, 5)
    execute(db, "UPDATE traces SET metadata = '{}' WHERE trace_id = 't1'")
    with open_memory(db) as mem, caplog.at_level(logging.ERROR, logger="memstrata"):
        assert not mem.verify_sync()["ok"]
    assert any("verify found" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------- refusals --


def test_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    execute(db, "CREATE TABLE users (name TEXT)")
    before = db.read_bytes()
    with pytest.raises(MemstrataError, match=f"{db} is a SQLite database that memstrata did not create"):
        open_memory(db)
    assert db.read_bytes() == before
    assert execute(db, "SELECT name FROM sqlite_master") == [("users",)]


def test_non_database_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text("# not a database\n" * 200)
    with pytest.raises(CorruptDataError, match="README.md is not a SQLite database"):
        open_memory(path)


def test_directory_as_db_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match=f"db_path: {tmp_path} is a directory"):
        open_memory(tmp_path)


def test_missing_parent_directory_is_created(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "traces.db"
    with open_memory(db) as mem:
        mem.store_compressed_trace_sync("x", {"v": 1})
    assert db.exists()


# ------------------------------------------------------ documented faces --


def test_compression_ratio_never_exceeds_one(tmp_path: Path) -> None:
    with open_memory(tmp_path / "t.db", compression_threshold=1) as mem:
        for data in ({"a": 1}, "x", [1, 2, 3], {"op": "simplify", "input": "(f x y)"}, {"k": "v" * 500}):
            assert mem.store_compressed_trace_sync(f"id{len(str(data))}", data).compression_ratio <= 1.0
        small = mem.store_compressed_trace_sync("small", {"op": "simplify"})
        assert small.compression_ratio == 1.0
        assert mem.get_compression_stats_sync()["avg_compression_ratio"] <= 1.0


def test_below_threshold_is_stored_as_is(tmp_path: Path) -> None:
    with open_memory(tmp_path / "t.db", compression_threshold=1024) as mem:
        t = mem.store_compressed_trace_sync("t", {"text": "abc" * 200})
        assert t.compression_ratio == 1.0 and t.original_size < 1024


@pytest.mark.parametrize(("word", "priority"), [("low", 0.2), ("medium", 0.5), ("high", 0.8), ("critical", 1.0)])
def test_metadata_priority_words(tmp_path: Path, word: str, priority: float) -> None:
    with open_memory(tmp_path / "t.db") as mem:
        assert mem.store_compressed_trace_sync("t", {}, metadata={"priority": word}).retention_priority == priority
        assert mem.store_compressed_trace_sync("u", {}, metadata={"priority": word}, priority=0.1
                                               ).retention_priority == 0.1
    with pytest.raises(ValueError, match=r"metadata\['priority'\]: expected one of"):
        SymbolicTraceMemory().store_compressed_trace_sync("t", {}, metadata={"priority": "urgent"})


def test_performance_delta_is_also_a_trace(tmp_path: Path) -> None:
    clock = Clock()
    with open_memory(tmp_path / "t.db", clock) as mem:
        d = mem.log_performance_delta_sync("latency_ms", 100.0, 80.0, {"commit": "c1"})
        [t] = mem.traces_sync(type=TraceType.PERFORMANCE_DELTA)
        assert t.trace_id == f"perf_delta_latency_ms_{d.timestamp}"
        assert t.metadata == {"metric_name": "latency_ms", "priority": "high"}
        assert t.retention_priority == 0.8
        data = mem.decompress_trace(t)
        assert data["direction"] == "improvement" and data["improvement_ratio"] == 0.8
        assert data["context"] == {"commit": "c1"}


def test_log_collapse(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with open_memory(db) as mem:
        t = mem.log_collapse_sync("c1", {"metric": "pass_rate", "from": 0.6, "to": 0.1})
        assert t.trace_type is TraceType.COLLAPSE_EVENT and t.trace_id == "collapse:c1"
        assert execute(db, "SELECT trace_id FROM trace_log") == [("collapse:c1",)]  # durable on return
        assert mem.get_trace_sync("c1") == {"metric": "pass_rate", "from": 0.6, "to": 0.1}


def test_ids_are_found_as_the_caller_gave_them(tmp_path: Path) -> None:
    with open_memory(tmp_path / "t.db") as mem:
        mem.log_benchmark_result_sync("gen5", {"pass_rate": 0.6})
        assert mem.get_trace_sync("gen5") == {"pass_rate": 0.6}
        mem.flush_sync()
        mem._memory.clear()
        mem._buckets.clear()
        assert mem.get_trace_sync("gen5") == {"pass_rate": 0.6}
        mem.log_breakthrough_sync("gen5", {"x": 1})
        mem.flush_sync()
        mem._memory.clear()
        mem._buckets.clear()
        with pytest.raises(ValueError, match="names several traces"):
            mem.get_trace_sync("gen5")
        assert mem.get_trace_sync("benchmark:gen5") == {"pass_rate": 0.6}


@pytest.mark.parametrize(
    ("name", "lower", "rule"),
    [("tokens_used", True, "name token 'tokens'"), ("peak_bytes", True, "name token 'bytes'"),
     ("memory_usage", True, "name token 'memory'"), ("step_duration", True, "name token 'duration'"),
     ("errors", True, "name token 'errors'"), ("test_failures", True, "name token 'failures'"),
     ("tokens_per_s", False, "throughput: tokens per s"), ("accuracy", False, "default: higher is better")],
)
def test_direction_rules(name: str, lower: bool, rule: str) -> None:
    assert direction_rule(name) == (lower, rule)


def test_direction_is_recorded_and_overridable(tmp_path: Path) -> None:
    with open_memory(tmp_path / "t.db", higher_is_better=["tokens_used"]) as mem:
        d = mem.log_performance_delta_sync("tokens_used", 1000, 800)
        assert (d.delta_direction, d.direction_rule) == ("degradation", "config higher_is_better")
        e = mem.log_performance_delta_sync("tokens_in", 1000, 800)
        assert (e.delta_direction, e.direction_rule) == ("improvement", "name token 'tokens'")
        f = mem.log_performance_delta_sync("tokens_in", 1000, 800, lower_is_better=False)
        assert (f.delta_direction, f.direction_rule) == ("degradation", "argument lower_is_better")
        assert [h.direction_rule for h in mem.performance_history_sync("tokens_in")] == [
            "name token 'tokens'", "argument lower_is_better"]


def test_metadata_filter(tmp_path: Path) -> None:
    with open_memory(tmp_path / "t.db") as mem:
        for i in range(20):
            mem.store_compressed_trace_sync(f"t{i}", {"i": i}, metadata={"run": f"r{i % 3}", "n": i})
        assert [t.trace_id for t in mem.traces_sync(metadata={"run": "r1"})] == [f"t{i}" for i in range(1, 20, 3)]
        assert [t.trace_id for t in mem.traces_sync(metadata={"run": "r1"}, limit=2)] == ["t1", "t4"]
        assert [t.trace_id for t in mem.traces_sync(metadata={"run": "r0", "n": 3})] == ["t3"]
        assert mem.traces_sync(metadata={"missing": None}) == []
        with pytest.raises(TypeError, match="metadata: expected a dict"):
            mem.traces_sync(metadata=[("run", "r1")])  # type: ignore[arg-type]


def test_retention_keeps_history_and_shrinks_the_file(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    clock = Clock()
    with open_memory(db, clock, retention_days=30, flush_every=500) as mem:
        for day in range(45):
            clock.now = T0 + day * DAY
            mem.log_fitness_evolution_sync(day, {"best": day / 100})
            mem.log_benchmark_result_sync(f"day{day}", {"pass_rate": day / 100})
            for i in range(60):
                mem.store_compressed_trace_sync(f"op-{day}-{i}", {"op": "simplify", "arg": f"(f x{i} {day})" * 8})
            mem.log_performance_delta_sync("latency_ms", 100.0, 99.0)
        mem.flush_sync()
        mem._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = db.stat().st_size
        report = mem.apply_retention_sync()
        assert report["expired"] > 0 and report["reclaimed_bytes"] > 0
        assert len(mem.fitness_evolution_sync()) == 45
        assert len(mem.traces_sync(type="benchmark")) == 45
        assert mem.verify_sync()["ok"]
    assert db.stat().st_size < before


async def _async_verify(mem: SymbolicTraceMemory) -> dict[str, Any]:
    return await mem.verify()


def test_async_verify(tmp_path: Path) -> None:
    import asyncio

    with open_memory(tmp_path / "t.db") as mem:
        mem.store_compressed_trace_sync("a", {"x": 1})
        assert asyncio.run(_async_verify(mem)) == mem.verify_sync()

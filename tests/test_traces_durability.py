"""SymbolicTraceMemory durability: urgent commits, the flush rule, crash replay, reopening, corruption detected."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from _traces_helpers import SMALL, Clock, open_memory, query, records, store_records

from memstrata import CorruptDataError

# ------------------------------------------------------------ durability --


def test_urgent_traces_are_committed_before_returning(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with open_memory(db) as mem:
        mem.store_compressed_trace_sync("low", {"x": 1}, priority=0.8)  # not above 0.8: queued
        mem.log_breakthrough_sync("b1", {"metric": "accuracy", "new_best": 0.9})
        mem.store_compressed_trace_sync("high", {"x": 2}, priority=0.81)
        logged = query(db, "SELECT trace_id FROM trace_log ORDER BY seq")
        assert logged == [("breakthrough:b1",), ("high",)]
        assert query(db, "SELECT COUNT(*) FROM traces") == [(0,)]
        assert mem.flush_sync() == 3
        assert query(db, "SELECT COUNT(*) FROM trace_log") == [(0,)]
        assert query(db, "SELECT trace_id FROM traces ORDER BY seq") == [("low",), ("breakthrough:b1",), ("high",)]


def test_flush_rule_by_count_and_by_time(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    clock = Clock()
    with open_memory(db, clock, flush_every=5, flush_seconds=2.0) as mem:
        for i in range(4):
            mem.store_compressed_trace_sync(f"t{i}", {"i": i})
        assert query(db, "SELECT COUNT(*) FROM traces") == [(0,)]
        mem.log_performance_delta_sync("accuracy", 0.5, 0.6)  # the 5th queued row (and its trace): flush
        assert query(db, "SELECT COUNT(*) FROM traces") == [(5,)]
        assert query(db, "SELECT COUNT(*) FROM performance_deltas") == [(1,)]
        mem.store_compressed_trace_sync("t4", {"i": 4})
        clock.advance(1.9)
        mem.store_compressed_trace_sync("t5", {"i": 5})
        assert query(db, "SELECT COUNT(*) FROM traces") == [(5,)]
        clock.advance(0.1)  # the oldest queued row is now flush_seconds old
        mem.store_compressed_trace_sync("t6", {"i": 6})
        assert query(db, "SELECT COUNT(*) FROM traces") == [(8,)]


def test_crash_replays_the_urgent_log(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    mem = open_memory(db)
    mem.store_compressed_trace_sync("queued", {"x": 1})
    mem.log_breakthrough_sync("b1", {"new_best": 0.9})
    mem.store_compressed_trace_sync("urgent", {"x": 2}, "collapse")
    seq = mem.seq
    # a crash: the connection goes away without a flush
    mem._closed = True
    mem._conn.close()
    with open_memory(db) as again:
        assert again.get_trace_sync("breakthrough:b1") == {"new_best": 0.9}
        assert again.get_trace_sync("urgent") == {"x": 2}
        assert again.get_trace_sync("queued") is None  # the documented loss: the queue
        assert again.seq == seq
        assert query(db, "SELECT COUNT(*) FROM trace_log") == [(0,)]


def test_log_replay_keeps_the_newest_version(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with open_memory(db) as mem:
        mem.store_compressed_trace_sync("a", {"v": 1}, priority=0.9)
    with open_memory(db) as mem:
        mem.store_compressed_trace_sync("a", {"v": 2}, priority=0.2)
    with closing(sqlite3.connect(db)) as conn:  # a stale log row older than the stored one
        conn.execute(
            "INSERT INTO trace_log SELECT 1, trace_id, trace_type, compressed_data, compression_ratio, original_size,"
            " metadata, timestamp, retention_priority, dictionary_version, NULL FROM traces"
        )
        conn.execute("UPDATE trace_log SET retention_priority = 0.99")
        conn.commit()
    with open_memory(db) as mem:
        assert mem.traces_sync()[0].retention_priority == 0.2


# ------------------------------------------------------- reopen, corrupt --


def test_reopen_restores_everything(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    clock = Clock()
    recs = records(400, seed=6)
    with open_memory(db, clock, **SMALL) as mem:
        for r in recs:
            clock.advance(1)
            mem.store_compressed_trace_sync(r["trace_id"], r, r["trace_type"], {"run": r["run_id"]})
            if r["trace_type"] == "perf_delta":
                d = r["data"]
                mem.log_performance_delta_sync(d["metric_name"], d["old_value"], d["new_value"], {"id": r["trace_id"]})
        mem.log_fitness_evolution_sync(3, {"best": 0.8})
        stats, seq = mem.get_compression_stats_sync(), mem.seq
        listed = mem.traces_sync()
        history = mem.performance_history_sync("accuracy")
        evo = mem.fitness_evolution_sync()
    assert mem.closed
    with open_memory(db, clock, **SMALL) as mem:
        assert mem.seq == seq
        again = mem.get_compression_stats_sync()
        assert {k: v for k, v in again.items() if k != "in_memory"} == {
            k: v for k, v in stats.items() if k != "in_memory"
        }
        assert mem.traces_sync() == listed
        assert mem.performance_history_sync("accuracy") == history
        assert mem.fitness_evolution_sync() == evo
        assert all(mem.get_trace_sync(r["trace_id"]) == r for r in recs)
        t = mem.store_compressed_trace_sync("new", recs[0], "perf_delta")
        assert mem.seq == seq + 1
        assert t.compressed_data == listed[0].compressed_data or t.compression_ratio < 0.5


def test_corrupted_blob_is_detected_on_read(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    recs = records(200, seed=8)
    with open_memory(db, **SMALL) as mem:
        store_records(mem, recs)
    victim = recs[50]["trace_id"]
    with closing(sqlite3.connect(db)) as conn:
        (blob,) = conn.execute("SELECT compressed_data FROM traces WHERE trace_id = ?", (victim,)).fetchone()
        bad = bytearray(blob)
        bad[len(bad) // 2] ^= 0x04
        conn.execute("UPDATE traces SET compressed_data = ? WHERE trace_id = ?", (bytes(bad), victim))
        conn.commit()
    with open_memory(db, **SMALL) as mem:
        with pytest.raises(CorruptDataError, match="checksum mismatch"):
            mem.get_trace_sync(victim)
        [t] = [t for t in mem.traces_sync() if t.trace_id == victim]
        with pytest.raises(CorruptDataError):
            mem.decompress_trace(t)
        with pytest.raises(CorruptDataError):
            asyncio.run(mem.get_trace(victim))
        assert all(mem.get_trace_sync(r["trace_id"]) == r for r in recs if r["trace_id"] != victim)


def test_corrupted_dictionary_is_detected_on_read(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    recs = records(200, seed=9)
    with open_memory(db, **SMALL) as mem:
        store_records(mem, recs)
        mem.flush_sync()
        version = mem._conn.execute("SELECT dictionary_version FROM traces WHERE trace_id = ?",
                                    (recs[0]["trace_id"],)).fetchone()[0]
    assert version > 0
    with closing(sqlite3.connect(db)) as conn:
        (dictionary,) = conn.execute("SELECT dictionary FROM dictionaries WHERE version = ?", (version,)).fetchone()
        damaged = dictionary[:100] + bytes([dictionary[100] ^ 1]) + dictionary[101:]
        conn.execute("UPDATE dictionaries SET dictionary = ? WHERE version = ?", (damaged, version))
        conn.commit()
    with open_memory(db, **SMALL) as mem:
        with pytest.raises(CorruptDataError, match=f"dictionary version {version}, but its bytes do not match"):
            mem.get_trace_sync(recs[0]["trace_id"])

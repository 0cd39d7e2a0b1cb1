"""Tier backends (one conformance suite), the cold tier's packs, and TieredStorage mechanics."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest

from memstrata import CorruptDataError
from memstrata.codecs import get_codec
from memstrata.tiers import (
    Backend,
    ColdTier,
    HotTier,
    LocalLocation,
    MappingBackend,
    MemoryBackend,
    MemoryLocation,
    SQLiteBackend,
    TieredStorage,
)


@pytest.fixture(params=["memory", "sqlite-file", "sqlite-ram", "mapping"])
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "memory":
        b = MemoryBackend()
    elif request.param == "sqlite-file":
        b = SQLiteBackend(tmp_path / "kv.sqlite")
    elif request.param == "sqlite-ram":
        b = SQLiteBackend(":memory:")
    else:
        b = MappingBackend({})
    yield b
    b.close()


def test_backend_conformance(backend: Backend) -> None:
    assert isinstance(backend, Backend)
    assert backend.get(b"a") is None
    backend.put(b"a", b"1")
    backend.put(b"a\xff", b"2")
    backend.put(b"b", b"3")
    backend.put(b"\xff\xff", b"4")
    assert backend.get(b"a") == b"1"
    assert list(backend.scan(b"a")) == [(b"a", b"1"), (b"a\xff", b"2")]
    assert list(backend.scan(b"\xff")) == [(b"\xff\xff", b"4")]
    assert len(list(backend.scan())) == 4
    backend.apply({b"c": b"5", b"a": b"6"}, deletes=[b"b", b"missing"])
    assert backend.get(b"a") == b"6" and backend.get(b"b") is None and backend.get(b"c") == b"5"
    backend.delete(b"c")
    backend.delete(b"c")  # deleting an absent key is not an error
    assert backend.get(b"c") is None
    backend.flush()


def test_sqlite_batch_is_atomic(tmp_path: Path) -> None:
    b = SQLiteBackend(tmp_path / "kv.sqlite")
    b.put(b"keep", b"1")

    class Boom(dict):
        def items(self):  # fails half-way through building the batch
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        b.apply(Boom({b"x": b"y"}), deletes=[b"keep"])
    assert b.get(b"keep") == b"1" and b.get(b"x") is None
    b.close()


def test_sqlite_newer_schema_is_refused(tmp_path: Path) -> None:
    SQLiteBackend(tmp_path / "kv.sqlite").close()
    with sqlite3.connect(tmp_path / "kv.sqlite") as conn:
        conn.execute("UPDATE meta SET value='99' WHERE name='schema_version'")
    conn.close()
    with pytest.raises(CorruptDataError, match="schema version 99"):
        SQLiteBackend(tmp_path / "kv.sqlite")


def test_sqlite_garbage_file_is_corrupt(tmp_path: Path) -> None:
    (tmp_path / "kv.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(CorruptDataError, match="damaged"):
        SQLiteBackend(tmp_path / "kv.sqlite")


def test_durability_levels_set_sqlite_synchronous(tmp_path: Path) -> None:
    for level, value in (("none", 0), ("normal", 1), ("full", 2)):
        b = SQLiteBackend(tmp_path / f"{level}.sqlite", level)
        assert b._conn.execute("PRAGMA synchronous").fetchone()[0] == value
        assert b._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        b.close()
    with pytest.raises(ValueError, match="durability: expected one of"):
        SQLiteBackend(tmp_path / "x.sqlite", "paranoid")


@pytest.mark.parametrize("location", ["memory", "local"])
def test_cold_tier_packs_roll_and_detect_damage(location: str, tmp_path: Path) -> None:
    loc = MemoryLocation() if location == "memory" else LocalLocation(tmp_path / "packs")
    cold = ColdTier(loc, sync=False, pack_max_bytes=1000)
    refs = [cold.append(bytes([i]) * 16, bytes([i]) * 300) for i in range(10)]
    assert len(cold.pack_ids()) > 2
    for i, ref in enumerate(refs):
        assert cold.read(ref, bytes([i]) * 16) == bytes([i]) * 300
    with pytest.raises(CorruptDataError, match="bad record header"):
        cold.read(refs[0], b"\x09" * 16)
    with pytest.raises(CorruptDataError, match="truncated|bad record"):
        cold.read((refs[-1][0], refs[-1][1], 5000), None)
    reopened = ColdTier(loc)
    assert reopened.active_pack == max(cold.pack_ids()) + 1  # earlier packs are sealed


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def test_sealed_packs_never_change_and_compaction_reclaims(tmp_path: Path) -> None:
    zstd = get_codec("zstd")
    backend = SQLiteBackend(tmp_path / "s.sqlite")
    cold = ColdTier(LocalLocation(tmp_path / "packs"), pack_max_bytes=4096)
    ts = TieredStorage(backend, cold, compact_dead_ratio=0.3)
    for i in range(60):
        ts.write(f"k{i}", zstd.encode({"i": i, "pad": str(i) * 100}), tier="cold")
    cold.seal()
    sealed = _digests(tmp_path / "packs")
    for i in range(60, 80):
        ts.write(f"k{i}", zstd.encode({"i": i}), tier="cold")
    after = _digests(tmp_path / "packs")
    assert all(after[name] == h for name, h in sealed.items())
    for i in range(0, 60, 2):
        ts.delete(f"k{i}")
    before = cold.size_bytes()
    result = ts.compact()
    assert result["bytes_reclaimed"] > 0 and cold.size_bytes() < before
    assert all(ts.read(f"k{i}")[0]["i"] == i for i in range(1, 80, 2))
    assert all(f"k{i}" not in ts for i in range(0, 60, 2))
    assert ts.verify()["ok"]
    ts.close()


def test_migration_thread_runs_and_stops_cleanly() -> None:
    now = [0.0]
    ts = TieredStorage(hot_idle_seconds=1, migration_interval_seconds=0.01, clock=lambda: now[0])
    ts.write("a", get_codec("raw").encode(b"x"))
    now[0] = 10.0
    for _ in range(500):
        if ts.counters["hot_to_warm"]:
            break
        threading.Event().wait(0.01)
    assert ts.counters["hot_to_warm"] == 1 and ts.read("a")[1] == "warm"
    thread = ts._thread
    ts.close()
    assert thread is not None and not thread.is_alive()
    ts.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        ts.write("b", get_codec("raw").encode(b"y"))


def test_hot_evictions_are_demotions_not_losses() -> None:
    raw = get_codec("raw")
    ts = TieredStorage(hot_max_bytes=2000)
    for i in range(100):
        ts.write(f"k{i}", raw.encode(bytes([i]) * 50))
    assert ts.hot.nbytes <= 2000 and ts.counters["capacity_demotions"] > 0
    assert all(ts.read(f"k{i}")[0] == bytes([i]) * 50 for i in range(100))
    ts.close()


def test_explicit_migrate_and_sequence_numbers() -> None:
    raw = get_codec("raw")
    ts = TieredStorage(MemoryBackend(), ColdTier(MemoryLocation()))
    seqs = [ts.write("k", raw.encode(b"v1")), ts.write("k", raw.encode(b"v2")), ts.delete("k")]
    assert seqs == [1, 2, 3] and ts.seq == 3
    ts.write("k", raw.encode(b"v3"), tier="warm")
    for tier in ("cold", "warm", "hot", "cold"):
        ts.migrate("k", tier)
        assert ts.tier_of("k") == tier
    assert ts.read("k") == (b"v3", "cold")
    with pytest.raises(ValueError, match="tier: expected"):
        ts.migrate("k", "tepid")
    ts.close()


def test_hot_tier_and_storage_default_to_the_registry_policy() -> None:
    from memstrata._native.eviction import DEFAULT_POLICY

    assert HotTier(1000)._cache.policy == DEFAULT_POLICY
    assert TieredStorage().hot._cache.policy == DEFAULT_POLICY
    assert HotTier(1000, policy="wtinylfu")._cache.policy == "wtinylfu"
    with pytest.raises(ValueError, match="policy: expected one of"):
        HotTier(1000, policy="s3-fifo")


def test_hot_tier_holds_answers_as_in_through_puts_pops_and_evictions() -> None:
    hot = HotTier(2000, clock=lambda: 5.0)  # room for a few entries: later puts evict earlier ones
    for i in range(40):
        hot.put(f"k{i}", bytes(100))
        if i % 3 == 0:
            hot.pop(f"k{i // 2}")
        for j in range(i + 1):
            assert hot.holds(f"k{j}") is (f"k{j}" in hot)
    assert not hot.holds("k0") and hot.holds("k39")


def test_hot_tier_ram_grows_with_entries_and_is_reported() -> None:
    import sys
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        hot = HotTier(64 << 30, clock=lambda: 5.0)  # a 64 GiB budget: ~700 M slots, none allocated yet
        built = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # a constant, whatever the budget: the default policy's frequency sketches for their first 4,096 slots
    assert built < 128 << 10 and hot.ram_bytes() < 128 << 10
    values = {f"k{i}": bytes(100 + i % 7) for i in range(2000)}
    for key, value in values.items():
        hot.put(key, value)
    objects = sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in values.items())
    cache = hot._cache
    assert cache.allocated_slots == 2048
    assert hot.ram_bytes() == objects + cache.nbytes
    assert 2048 * 40 < cache.nbytes < 2048 * 250  # slot arrays, order, key table: per held slot
    assert hot.idle(5.0) == list(values) and hot.idle(4.0) == []
    assert hot.access_time("k3") == 5.0


def test_idle_demotion_reads_the_cache_access_times() -> None:
    now = [0.0]
    ts = TieredStorage(hot_idle_seconds=10, clock=lambda: now[0])
    ts.write("a", get_codec("raw").encode(b"1"))
    ts.write("b", get_codec("raw").encode(b"2"))
    now[0] = 8.0
    assert ts.read("b") == (b"2", "hot")  # a hot hit stamps b
    now[0] = 12.0
    assert ts.run_migrations()["hot_to_warm"] == 1
    assert "a" not in ts.hot and "b" in ts.hot
    ts.close()

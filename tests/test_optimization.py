"""The optimization layer's documented face: usage examples, config files, presets, statistics, pass-through."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memstrata import MemoryStore
from memstrata.optimization import (
    CompressionStrategy,
    EngineMapping,
    OptimizationConfig,
    OptimizationMiddleware,
    StorageTier,
    compress,
    decompress,
    get_optimization_level_preset,
)

QUICK_START = """\
# config/memory_optimization.yaml
enabled: true  # Enable optimization
optimization_level: "aggressive"  # conservative, moderate, aggressive

enable_compression: true
enable_tiered_storage: true
enable_deduplication: true
"""

FULL_EXAMPLE = """\
compression:
  enabled: true
  default_strategy: "adaptive"
  compression_level: 6
  quantization_bits: 8
  episodic_compression_target: 0.70  # 70% reduction
  semantic_compression_target: 0.80   # 80% reduction

tiered_storage:
  enabled: true
  hot_capacity_mb: 100
  warm_capacity_mb: 1024
  eviction_policy: "lru"
  hot_to_warm_idle_hours: 1.0
  warm_to_cold_idle_hours: 24.0

deduplication:
  enabled: true
  enable_bloom_filter: true
  bloom_filter_size: 1000000
"""


class MemoryEngine:
    """An application's own engine, as the documented examples wrap it."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.calls: list[tuple[str, str]] = []

    def store(self, key: str, value: Any) -> bool:
        self.calls.append(("store", key))
        self.data[key] = value
        return True

    def retrieve(self, key: str) -> Any:
        self.calls.append(("retrieve", key))
        return self.data.get(key)

    def delete(self, key: str) -> bool:
        self.calls.append(("delete", key))
        return self.data.pop(key, None) is not None


SESSION = {"user_id": "user_123", "actions": ["click", "scroll"] * 40, "timestamp": "2024-02-07T12:00:00Z"}


def _yaml(tmp_path: Path, text: str) -> Path:
    pytest.importorskip("yaml", reason="PyYAML reads the documented YAML files (memstrata[yaml])")
    path = tmp_path / "config" / "memory_optimization.yaml"
    path.parent.mkdir()
    path.write_text(text)
    return path


def test_option1_wrap_existing_engine_with_config_file(tmp_path: Path) -> None:
    memory_engine = MemoryEngine()
    config_path = _yaml(tmp_path, QUICK_START)
    optimized_memory = OptimizationMiddleware(wrapped_engine=memory_engine, config_path=config_path)
    optimized_memory.store("key", {"data": "value"})
    assert optimized_memory.retrieve("key") == {"data": "value"}
    # the engine holds memstrata's records (checksummed frames), not the plain value
    assert all(k.startswith("memstrata/") for k in memory_engine.data)
    optimized_memory.shutdown()
    reopened = OptimizationMiddleware(wrapped_engine=memory_engine, config_path=config_path)
    assert reopened.retrieve("key") == {"data": "value"}
    assert reopened.delete("key") and reopened.retrieve("key") is None
    reopened.shutdown()


def test_option2_standalone() -> None:
    optimized_memory = OptimizationMiddleware(config=get_optimization_level_preset("moderate"))
    optimized_memory.store("user_session_123", SESSION)
    assert optimized_memory.retrieve("user_session_123") == SESSION
    assert optimized_memory.delete("user_session_123")
    assert optimized_memory.retrieve("user_session_123") is None
    assert not optimized_memory.delete("user_session_123")
    optimized_memory.shutdown()


def test_option3_programmatic_config() -> None:
    config = get_optimization_level_preset("aggressive")
    assert config.enabled and config.compression.compression_level == 9
    config = OptimizationConfig()
    config.enabled = True
    config.compression.compression_level = 9
    config.tiered_storage.hot_capacity_mb = 100
    optimized_memory = OptimizationMiddleware(config=config)
    assert optimized_memory.store_backend.config.zstd_level == 9
    assert optimized_memory.store_backend.config.hot_max_bytes == 100 << 20
    optimized_memory.shutdown()


def test_context_manager_closes_the_store(tmp_path: Path) -> None:
    config = get_optimization_level_preset("conservative")
    config.storage_path = str(tmp_path / "store")
    with OptimizationMiddleware(config=config) as memory:
        memory.store("key", SESSION)
        assert memory.retrieve("key") == SESSION
    with MemoryStore(tmp_path / "store") as store:  # persisted, and the lock was released
        assert store.retrieve("key") == SESSION


def test_documented_yaml_files_load_as_written(tmp_path: Path) -> None:
    quick = OptimizationConfig.load(_yaml(tmp_path, QUICK_START))
    assert quick.enabled and quick.optimization_level == "aggressive" and quick.compression.compression_level == 9
    (tmp_path / "full").mkdir()
    full = OptimizationConfig.load(_yaml(tmp_path / "full", FULL_EXAMPLE))
    assert not full.enabled  # opt-in: the full example does not switch the layer on
    assert full.tiered_storage.eviction_policy == "lru" and full.deduplication.bloom_filter_size == 1_000_000
    store_config = full.to_store_config()
    assert store_config.hot_max_bytes == 100 << 20 and store_config.warm_max_bytes == 1024 << 20
    assert store_config.hot_idle_seconds == 3600.0 and store_config.warm_idle_seconds == 86400.0


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ValueError, match="unknown key 'tiered_storage.hot_mb'"):
        OptimizationConfig.from_dict({"tiered_storage": {"hot_mb": 1}})
    with pytest.raises(ValueError, match="unknown key 'enable_compresion'"):
        OptimizationConfig.from_dict({"enable_compresion": True})
    with pytest.raises(ValueError, match="optimization_level: expected one of"):
        OptimizationConfig.from_dict({"optimization_level": "max"})
    with pytest.raises(ValueError, match="default_strategy"):
        OptimizationConfig.from_dict({"compression": {"default_strategy": "brotli"}})


@pytest.mark.parametrize(
    ("level", "compression", "hot_mb", "interval_min", "pruning_days"),
    [("conservative", 3, 500, 10, 90), ("moderate", 6, 200, 5, 30), ("aggressive", 9, 100, 1, 7)],
)
def test_presets_match_the_documented_table(level: str, compression: int, hot_mb: int, interval_min: int, pruning_days: int) -> None:
    c = get_optimization_level_preset(level)
    assert (c.compression.compression_level, c.tiered_storage.hot_capacity_mb) == (compression, hot_mb)
    assert (c.tiered_storage.migration_interval_minutes, c.adaptive.pruning_days) == (interval_min, pruning_days)
    sc = c.to_store_config()
    assert (sc.zstd_level, sc.hot_max_bytes, sc.migration_interval_seconds) == (compression, hot_mb << 20, interval_min * 60)


def test_disabled_is_a_pure_pass_through() -> None:
    direct, spied = MemoryEngine(), MemoryEngine()
    middleware = OptimizationMiddleware(wrapped_engine=spied)  # enabled=False by default
    results = []
    for engine_call in (lambda e: e.store("a", SESSION), lambda e: e.retrieve("a"), lambda e: e.retrieve("b"),
                        lambda e: e.delete("a"), lambda e: e.delete("a")):
        results.append((engine_call(direct), engine_call(middleware)))
    assert spied.calls == direct.calls
    assert all(a == b for a, b in results)
    assert spied.data == direct.data
    assert middleware.get_statistics()["config"]["enabled"] is False


def test_disabled_over_a_mapping_and_standalone() -> None:
    backing: dict[str, Any] = {}
    m = OptimizationMiddleware(wrapped_engine=backing)
    assert m.store("k", [1, 2]) and backing == {"k": [1, 2]} and m.retrieve("k") == [1, 2]
    assert m.delete("k") and not m.delete("k")
    alone = OptimizationMiddleware()
    assert alone.store("k", "v") and alone.retrieve("k") == "v"


def test_every_documented_statistics_key_is_present() -> None:
    with OptimizationMiddleware(config=get_optimization_level_preset("moderate")) as memory:
        for i in range(20):
            memory.store(f"k{i}", {"text": "the same memory, stored twice " * 5, "n": i % 2})
        memory.retrieve("k1")
        memory.retrieve("missing")
        stats = memory.get_statistics()
    expected = {
        "middleware": {"total_reads", "total_writes", "cache_hits", "cache_misses"},
        "compression": {"total_compressions", "overall_compression_ratio", "space_saved_bytes", "strategy_usage"},
        "tiered_storage": {"hot_usage_bytes", "warm_usage_bytes", "cold_usage_bytes", "hot_usage_percent",
                           "promotions", "demotions", "evictions"},
        "deduplication": {"unique_contents", "total_references", "dedup_ratio", "space_saved_percent", "dedup_hits",
                          "bloom_filter_enabled"},
        "overall": {"memory_reduction_percent", "memory_reduction_target_percent", "target_achieved"},
    }
    for section, keys in expected.items():
        assert keys <= set(stats[section]), (section, keys - set(stats[section]))
    assert stats["config"]["enabled"] is True
    assert stats["middleware"]["total_writes"] == 20 and stats["middleware"]["total_reads"] == 2
    assert stats["deduplication"]["unique_contents"] == 2 and stats["deduplication"]["dedup_hits"] == 18
    assert stats["compression"]["space_saved_bytes"] > 0 and stats["compression"]["strategy_usage"]


def test_storage_tier_is_accepted_everywhere_a_tier_is_named() -> None:
    with MemoryStore() as store:
        store.store("k", {"v": 1}, tier=StorageTier.WARM)
        assert store.tier_of("k") == "warm"
        store.migrate("k", StorageTier.COLD)
        assert store.tier_of("k") == StorageTier.COLD
    with OptimizationMiddleware(config=get_optimization_level_preset("moderate")) as memory:
        memory.store("critical_config", {"x": 1}, tier=StorageTier.HOT)
        assert memory.tiered_storage is not None
        assert memory.tiered_storage.write("critical_config", {"x": 1}, tier=StorageTier.HOT, pin_tier=True)
        assert memory.tiered_storage.read("critical_config") == ({"x": 1}, StorageTier.HOT)
        assert memory.tiered_storage.migrate_tier("critical_config", StorageTier.COLD)
        assert memory.tiered_storage.read("critical_config")[1] is StorageTier.COLD
        assert memory.tiered_storage.read("nope") == (None, None)
        assert not memory.tiered_storage.migrate_tier("nope", StorageTier.WARM)


def test_dedup_engine_reports_hash_and_duplicate() -> None:
    with OptimizationMiddleware(config=get_optimization_level_preset("moderate")) as memory:
        assert memory.dedup_engine is not None
        hash1, dup1 = memory.dedup_engine.write("key1", SESSION)
        hash2, dup2 = memory.dedup_engine.write("key2", SESSION)
        assert hash1 == hash2 and len(hash1) == 32 and (dup1, dup2) == (False, True)
        assert memory.dedup_engine.read("key2") == SESSION


@pytest.mark.parametrize("strategy", [s for s in CompressionStrategy if s is not CompressionStrategy.GRAPH_PRUNE])
def test_compress_and_decompress_each_strategy(strategy: CompressionStrategy) -> None:
    rng = np.random.default_rng(0)
    data: Any = rng.standard_normal((64, 32)).astype(np.float32)
    if strategy in (CompressionStrategy.LZ4, CompressionStrategy.ZSTD, CompressionStrategy.ZLIB, CompressionStrategy.NONE):
        data = b"memory " * 200
    if strategy is CompressionStrategy.SPARSE_CSR:
        data = np.eye(50, dtype=np.float32)
    result = compress(data, strategy)
    assert result.compressed_size == len(result.compressed_data)
    out = decompress(result)
    assert out.success and out.checksum_valid
    if result.lossless:
        assert np.array_equal(out.data, data) if isinstance(data, np.ndarray) else out.data == data
    else:
        assert out.data.shape == data.shape


def test_decompress_of_a_damaged_result_reports_instead_of_returning_data() -> None:
    result = compress({"text": "hello " * 100}, "zstd")
    frame = bytearray(result.compressed_data)
    frame[len(frame) // 2] ^= 0x10
    out = decompress(bytes(frame))
    assert (out.success, out.checksum_valid, out.data) == (False, False, None) and out.error
    with pytest.raises(ValueError, match="strategy: expected one of"):
        compress(b"x", "brotli")


def test_engine_mapping_survives_a_crash_without_close() -> None:
    engine = MemoryEngine()
    m = EngineMapping(engine)
    for i in range(10):
        m[f"k{i}".encode()] = bytes([i])
    del m[b"k3"]
    # no close(): a crash; the journal alone names every record
    again = EngineMapping(engine)
    assert sorted(again) == sorted(f"k{i}".encode() for i in range(10) if i != 3)
    assert again[b"k7"] == b"\x07"
    again.close()
    journal = [k for k in engine.data if k.startswith("memstrata/directory/")]
    assert journal == []  # folded into the snapshot
    assert len(EngineMapping(engine)) == 9
    with pytest.raises(TypeError, match="wrapped_engine: expected an object with store/retrieve/delete"):
        EngineMapping(object())


def test_config_errors_name_the_argument(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="config: expected an OptimizationConfig or a dict"):
        OptimizationMiddleware(config="aggressive")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="config_path: cannot read"):
        OptimizationMiddleware(config_path=tmp_path / "missing.yaml")
    bad = tmp_path / "c.ini"
    bad.write_text(textwrap.dedent("[x]\n"))
    with pytest.raises(ValueError, match="config_path: expected a .toml, .yaml or .yml file"):
        OptimizationMiddleware(config_path=bad)

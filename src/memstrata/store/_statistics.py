"""``MemoryStore.get_statistics``: the counters and sizes of every layer, in sections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memstrata.store._store import MemoryStore

__all__ = ["store_statistics"]


def store_statistics(store: MemoryStore) -> dict[str, Any]:
    """The sections :meth:`MemoryStore.get_statistics` documents, read once from each layer."""
    ts = store.tiers.statistics()
    hot_info = store.tiers.hot.info()
    reads = hot_info["hits"] + hot_info["misses"]
    hits = hot_info["hits"] + store._hits
    raw = ts["logical_bytes"]
    stored = ts["warm"]["bytes"] + ts["cold"]["bytes"]
    index_ram = getattr(store._backend, "ram_bytes", None)
    # the hot tier's keys, values and cache arrays (measured), plus the log's index
    ram = store.tiers.hot.ram_bytes() + (index_ram() if index_ram is not None else 0)
    disk = store.disk_bytes()
    reduction = 100.0 * (1 - stored / raw) if raw else 0.0
    lat = store._store_seconds.summary()
    return {
        "middleware": {
            "reads": reads,
            "writes": store._writes,
            "deletes": store._deletes,
            "hits": hits,
            "misses": store._misses,
            "hot_hits": hot_info["hits"],
            "hit_rate": hits / reads if reads else 0.0,
            "store_seconds": lat,
            "seq": ts["seq"],
        },
        "compression": store.engine.get_statistics(),
        "tiered_storage": {
            "hot": ts["hot"],
            "warm": ts["warm"],
            "cold": ts["cold"],
            **{k: ts[k] for k in (
                "promotions", "demotions", "hot_to_warm", "warm_to_cold", "cold_to_warm", "warm_to_hot",
                "capacity_demotions", "migration_passes", "migration_errors", "compactions",
                "last_migration_error", "tombstones",
            )},
        },
        "deduplication": {
            "keys": ts["keys"],
            "unique_blobs": ts["unique_blobs"],
            "garbage_blobs": ts["garbage_blobs"],
            "logical_bytes": raw,
            "unique_bytes": ts["unique_bytes"],
            "dedup_ratio": raw / ts["unique_bytes"] if ts["unique_bytes"] else 1.0,
        },
        "overall": {
            "keys": ts["keys"],
            "raw_bytes": raw,
            "stored_bytes": stored,
            "ram_bytes": ram,
            "disk_bytes": disk,
            "memory_reduction_percent": reduction,
            "ram_reduction_percent": 100.0 * (1 - ram / raw) if raw else 0.0,
            "target_reduction_percent": store.config.target_reduction_percent,
            "target_met": bool(raw) and reduction >= store.config.target_reduction_percent,
        },
    }

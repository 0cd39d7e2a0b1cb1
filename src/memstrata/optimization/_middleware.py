"""``OptimizationMiddleware``: the optimization layer's documented face over :class:`memstrata.MemoryStore`.

Disabled (the documented default), it passes every call to the wrapped engine
untouched. Enabled, a :class:`~memstrata.MemoryStore` does the work: standalone
(in RAM, or in ``storage_path``) or with the wrapped engine as its durable tier
(:meth:`~memstrata.MemoryStore.wrap`), so the engine keeps working and memstrata
sits in front of it. ``tiered_storage``, ``dedup_engine`` and
``compression_engine`` are the documented component APIs, as views over the
same store.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

from memstrata._closing import ClosesOnExit
from memstrata.optimization._config import OptimizationConfig
from memstrata.optimization._engine_mapping import EngineMapping
from memstrata.optimization._strategies import DocumentedCompressionEngine, documented_stats
from memstrata.types import StorageTier

__all__ = ["DeduplicationView", "OptimizationMiddleware", "StorageTier", "TieredStorageView"]


class _PassThrough:
    """What a disabled middleware calls: the wrapped engine's own methods, or a plain dict's."""

    def __init__(self, engine: Any) -> None:
        self.engine: Any = {} if engine is None else engine
        mapping = isinstance(self.engine, MutableMapping) and not callable(getattr(self.engine, "store", None))
        self.mapping = mapping

    def store(self, key: str, data: Any) -> bool:
        if self.mapping:
            self.engine[key] = data
            return True
        result = self.engine.store(key, data)
        return True if result is None else bool(result)

    def retrieve(self, key: str) -> Any:
        return self.engine.get(key) if self.mapping else self.engine.retrieve(key)

    def delete(self, key: str) -> bool:
        if self.mapping:
            return self.engine.pop(key, _ABSENT) is not _ABSENT
        return bool(self.engine.delete(key))


_ABSENT = object()


class OptimizationMiddleware(ClosesOnExit):
    """Compression, deduplication and tiering in front of an existing engine, or standalone.

    Parameters
    ----------
    wrapped_engine : object, optional
        An engine with ``store(key, data)`` / ``retrieve(key)`` / ``delete(key)``
        methods, or a mapping. Disabled, every call goes to it untouched;
        enabled, it holds memstrata's compressed records.
    config : OptimizationConfig or dict, optional
    config_path : str or Path, optional
        A YAML or TOML file in the documented shape (used when ``config`` is None).

    Examples
    --------
    >>> from memstrata.optimization import OptimizationMiddleware, get_optimization_level_preset
    >>> with OptimizationMiddleware(config=get_optimization_level_preset("moderate")) as memory:
    ...     memory.store("user_session_123", {"user_id": "user_123", "actions": ["login"] * 50})
    ...     memory.retrieve("user_session_123")["user_id"], memory.retrieve("missing")
    True
    ('user_123', None)
    """

    def __init__(
        self,
        wrapped_engine: Any = None,
        config: OptimizationConfig | dict[str, Any] | None = None,
        config_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if config is None:
            config = OptimizationConfig.load(config_path) if config_path is not None else OptimizationConfig()
        elif isinstance(config, dict):
            config = OptimizationConfig.from_dict(config)
        elif not isinstance(config, OptimizationConfig):
            raise TypeError(f"config: expected an OptimizationConfig or a dict, got {type(config).__name__}")
        config.validate()
        self.config = config
        self.wrapped_engine = wrapped_engine
        self.enabled = bool(config.enabled)
        self._reads = self._writes = self._deletes = 0  # of the pass-through; enabled, the store counts
        self._closed = False
        self._engine_mapping: EngineMapping | None = None
        self.store_backend: Any = None  # the MemoryStore, when enabled
        self.tiered_storage: TieredStorageView | None = None
        self.dedup_engine: DeduplicationView | None = None
        if not self.enabled:
            self._passthrough = _PassThrough(wrapped_engine)
            self.compression_engine = DocumentedCompressionEngine(
                default_strategy=config.compression.default_strategy
            )
            return
        from memstrata.store import MemoryStore

        store_config = config.to_store_config()
        if wrapped_engine is None:
            store = MemoryStore(config.storage_path, store_config)
        else:
            target = wrapped_engine
            if callable(getattr(wrapped_engine, "store", None)):
                target = self._engine_mapping = EngineMapping(wrapped_engine)
            store = MemoryStore.wrap(target, store_config)
        self.store_backend = store
        self.compression_engine = DocumentedCompressionEngine(
            store.engine, default_strategy=config.compression.default_strategy
        )
        self.tiered_storage = TieredStorageView(store)
        self.dedup_engine = DeduplicationView(store)
        self._allow_loss = bool(config.compression.allow_lossy and config.enable_compression and config.compression.enabled)
        self._retrieve = store.retrieve  # bound once: the enabled read path is one call deep

    # ------------------------------------------------------------ the API --

    def store(self, key: str, data: Any, tier: StorageTier | str = StorageTier.HOT) -> bool:
        """Store ``data`` under ``key`` (compressed, deduplicated, tiered when enabled); ``True`` on success."""
        if not self.enabled:
            self._writes += 1
            return self._passthrough.store(key, data)
        self.store_backend.store(key, data, tier=tier, allow_loss=self._allow_loss)
        return True

    def retrieve(self, key: str) -> Any:
        """The value stored under ``key``, or ``None``."""
        if self.enabled:  # the store counts its own reads
            return self._retrieve(key, None)
        self._reads += 1
        return self._passthrough.retrieve(key)

    def delete(self, key: str) -> bool:
        """Delete ``key`` from every tier; ``True`` if it was there."""
        if not self.enabled:
            self._deletes += 1
            return self._passthrough.delete(key)
        try:
            self.store_backend.delete(key)
        except KeyError:
            return False
        return True

    def get_statistics(self) -> dict[str, Any]:
        """The documented sections: ``middleware``, ``compression``, ``tiered_storage``,
        ``deduplication``, ``overall`` and ``config``."""
        middleware = {
            "enabled": self.enabled,
            "total_reads": self._reads,
            "total_writes": self._writes,
            "total_deletes": self._deletes,
            "cache_hits": 0,
            "cache_misses": 0,
        }
        out: dict[str, Any] = {
            "middleware": middleware,
            "compression": self.compression_engine.get_statistics(),
            "tiered_storage": TieredStorageView.empty_statistics(),
            "deduplication": DeduplicationView.empty_statistics(self.config.deduplication.enable_bloom_filter),
            "overall": {
                "memory_reduction_percent": 0.0,
                "memory_reduction_target_percent": 100.0 * self.config.adaptive.memory_reduction_target,
                "target_achieved": False,
            },
            "config": self.config.to_dict(),
        }
        if not self.enabled:
            return out
        s = self.store_backend.get_statistics()
        m = s["middleware"]
        middleware.update(
            total_reads=m["reads"], total_writes=m["writes"], total_deletes=m["deletes"],
            cache_hits=m["hot_hits"], cache_misses=m["reads"] - m["hot_hits"],
        )
        out["compression"] = documented_stats(0, 0, 0, {}, s["compression"]) | {
            k: v for k, v in out["compression"].items() if k == "engine"
        }
        out["tiered_storage"] = TieredStorageView.from_store_statistics(s)
        out["deduplication"] = DeduplicationView.from_store_statistics(s, self.config.deduplication.enable_bloom_filter)
        overall = s["overall"]
        out["overall"].update(
            memory_reduction_percent=overall["memory_reduction_percent"],
            target_achieved=bool(overall["raw_bytes"])
            and overall["memory_reduction_percent"] >= out["overall"]["memory_reduction_target_percent"],
            raw_bytes=overall["raw_bytes"],
            stored_bytes=overall["stored_bytes"],
            ram_bytes=overall["ram_bytes"],
        )
        return out

    def shutdown(self) -> None:
        """Stop background work and persist everything (the wrapped engine itself stays open). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.store_backend is not None:
            self.store_backend.close()
        if self._engine_mapping is not None:
            self._engine_mapping.close()

    close = shutdown

    def __repr__(self) -> str:
        return f"OptimizationMiddleware(enabled={self.enabled}, level={self.config.optimization_level!r})"


class TieredStorageView:
    """The documented ``TieredStorageManager`` API over a store."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def write(self, key: str, data: Any, tier: StorageTier | str = StorageTier.HOT, pin_tier: bool = False) -> bool:
        """Write ``data`` to ``tier``; ``pin_tier`` keeps the rules from moving it."""
        self._store.store(key, data, tier=tier, pin=pin_tier)
        return True

    def read(self, key: str) -> tuple[Any, StorageTier | None]:
        """``(data, tier)``, or ``(None, None)`` when absent."""
        try:
            value, tier = self._store.retrieve_with_tier(key)
        except KeyError:
            return None, None
        return value, StorageTier(tier)

    def migrate_tier(self, key: str, target_tier: StorageTier | str) -> bool:
        """Move ``key`` to ``target_tier`` now; ``False`` if absent."""
        try:
            self._store.migrate(key, target_tier)
        except KeyError:
            return False
        return True

    def get_statistics(self) -> dict[str, Any]:
        return self.from_store_statistics(self._store.get_statistics())

    @staticmethod
    def empty_statistics() -> dict[str, Any]:
        return {
            "hot_usage_bytes": 0, "warm_usage_bytes": 0, "cold_usage_bytes": 0, "hot_usage_percent": 0.0,
            "promotions": 0, "demotions": 0, "evictions": 0,
        }

    @staticmethod
    def from_store_statistics(s: dict[str, Any]) -> dict[str, Any]:
        ts = s["tiered_storage"]
        hot_max = ts["hot"].get("max_bytes") or 0
        return {
            "hot_usage_bytes": ts["hot"]["bytes"],
            "warm_usage_bytes": ts["warm"]["bytes"],
            "cold_usage_bytes": ts["cold"]["bytes"],
            "hot_usage_percent": 100.0 * ts["hot"]["bytes"] / hot_max if hot_max else 0.0,
            "promotions": ts["promotions"],
            "demotions": ts["demotions"],
            "evictions": ts["capacity_demotions"],
            "items": {tier: ts[tier]["items"] for tier in ("hot", "warm", "cold")},
        }


class DeduplicationView:
    """The documented ``DeduplicationEngine`` API over a store (content addressed by XXH3-128)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def write(self, key: str, data: Any) -> tuple[str, bool]:
        """Store ``data`` under ``key``; ``(content hash, was_duplicate)``."""
        from memstrata import digest, serialize

        content = digest(serialize(data))
        before = self._store.get_statistics()["deduplication"]["unique_blobs"]
        self._store.store(key, data)
        after = self._store.get_statistics()["deduplication"]["unique_blobs"]
        return content.hex(), after <= before

    def read(self, key: str) -> Any:
        return self._store.retrieve(key, None)

    def get_statistics(self) -> dict[str, Any]:
        return self.from_store_statistics(self._store.get_statistics(), True)

    @staticmethod
    def empty_statistics(bloom: bool) -> dict[str, Any]:
        return {
            "unique_contents": 0, "total_references": 0, "dedup_ratio": 0.0, "space_saved_percent": 0.0,
            "dedup_hits": 0, "bloom_filter_enabled": bloom,
        }

    @staticmethod
    def from_store_statistics(s: dict[str, Any], bloom: bool) -> dict[str, Any]:
        d = s["deduplication"]
        refs, unique = d["keys"], d["unique_blobs"]
        return {
            "unique_contents": unique,
            "total_references": refs,
            # the documented ratio is the fraction of references that needed no new content
            "dedup_ratio": 1.0 - unique / refs if refs else 0.0,
            "space_saved_percent": 100.0 * (1.0 - d["unique_bytes"] / d["logical_bytes"]) if d["logical_bytes"] else 0.0,
            "dedup_hits": max(0, refs - unique),
            "bloom_filter_enabled": bloom,
        }

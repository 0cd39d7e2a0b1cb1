"""Assembling :class:`MemoryCore`'s layers: which backend serves each one, from the arguments and the configuration.

An object passed for a layer is used as it is; otherwise the configuration
picks the server backend (``database_url``, ``redis_url``) or the local one (a
:class:`memstrata.MemoryStore` directory, an in-process cache). Every layer
opened here is closed by :meth:`LayerAssembly._close_layers`, newest first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memstrata.core._audit import AuditLog
from memstrata.core._config import CoreConfig
from memstrata.core._events import EventBus
from memstrata.core._layers import HotCache, RedisCache, StoreBackend, TextEmbedder, VectorIndex
from memstrata.core._trust import TrustLedger

__all__ = ["LayerAssembly"]


class LayerAssembly:
    """The opening and closing half of :class:`memstrata.core.MemoryCore` (a mixin)."""

    path: Path | None
    clock: Any
    audit: Any
    _closing: list[Any]
    _store: Any
    _has_patterns: bool
    _one_database: bool
    _pg_tables: tuple[str, str]

    def _open_layers(
        self, cfg: CoreConfig, cache: Any, durable: Any, vector: Any, audit: Any, events: Any, trust: Any, embedder: Any
    ) -> None:
        from memstrata.core._pglog import PostgresLogStore

        key = bytes.fromhex(cfg.audit_key_hex) if cfg.audit_key_hex else None
        if isinstance(audit, AuditLog):
            self.audit = audit
        elif cfg.database_url:
            self.audit = AuditLog(
                PostgresLogStore(cfg.database_url, prefix=cfg.table_prefix + "audit_"), key=key, clock=self.clock
            )
        else:
            self.audit = AuditLog(self._local_log(cfg.durability), key=key, clock=self.clock)
        self._closing.append(self.audit)

        self.durable: Any = None
        self.pattern_store: Any = None
        if cfg.durable_enabled:
            if durable is not None and not isinstance(durable, bool):
                self.durable = durable
                self.pattern_store = getattr(durable, "patterns", durable)
            elif cfg.database_url:
                from memstrata.tiers import PostgresBackend

                self.durable = PostgresBackend(cfg.database_url, cfg.table_prefix + "values")
                self.pattern_store = PostgresBackend(cfg.database_url, cfg.table_prefix + "patterns")
                self._closing += [self.durable, self.pattern_store]
            else:
                from memstrata.store import MemoryStore

                self._store = MemoryStore(
                    None if self.path is None else self.path / "store", {"durability": cfg.durability}
                )
                self._closing.append(self._store)
                self.durable = StoreBackend(self._store, "v:")
                self.pattern_store = StoreBackend(self._store, "p:")

        self.cache: Any = None
        if cfg.cache_enabled:
            if cache is not None and not isinstance(cache, bool):
                self.cache = RedisCache(cache) if hasattr(cache, "client") else cache
            elif cfg.redis_url:
                from memstrata.tiers import RedisBackend

                self.cache = RedisCache(RedisBackend(cfg.redis_url, cfg.redis_namespace))
            else:
                self.cache = HotCache(cfg.cache_max_bytes)
            self._closing.append(self.cache)

        fan = cfg.fanout_enabled
        self.vector: Any = None
        if fan and cfg.vector_enabled:
            if vector is not None and not isinstance(vector, bool):
                self.vector = vector
            else:
                emb = embedder if embedder is not None else TextEmbedder(cfg.vector_dim)
                self.vector = VectorIndex(emb, getattr(emb, "dim", cfg.vector_dim))
            self._closing.append(self.vector)
        self.events: Any = None
        if fan and cfg.events_enabled:
            self.events = events if isinstance(events, EventBus) else EventBus(cfg.events_queue_size)
            self._closing.append(self.events)
        self.trust: Any = None
        if fan and cfg.trust_enabled:
            self.trust = (
                trust
                if isinstance(trust, TrustLedger)
                else TrustLedger(rate=cfg.trust_rate, half_life_seconds=cfg.trust_half_life_seconds, clock=self.clock)
            )
        self._has_patterns = (
            self.pattern_store is not None and next(iter(self.pattern_store.scan(b"")), None) is not None
        )
        from memstrata.tiers import PostgresBackend

        self._one_database = (
            isinstance(self.audit.store, PostgresLogStore)
            and type(self.durable) is PostgresBackend
            and type(self.pattern_store) is PostgresBackend
            and self.audit.store.url == cfg.database_url
        )
        if self._one_database:
            self._pg_tables = (self.durable.table, self.pattern_store.table)

    def _local_log(self, durability: str) -> Any:
        """The embedded log: ``audit.log`` (binary), or ``audit.sqlite`` where a directory already has one."""
        from memstrata.core._filelog import FileLogStore
        from memstrata.core._logstore import SQLiteLogStore

        if self.path is None:
            return FileLogStore(None, durability)
        legacy = self.path / "audit.sqlite"
        if legacy.exists():  # directories made before the binary log keep their SQLite log
            return SQLiteLogStore(legacy, durability)
        return FileLogStore(self.path / "audit.log", durability)

    def _close_layers(self) -> None:
        for layer in reversed(self._closing):
            try:
                layer.close()
            except Exception:
                pass
        self._closing = []

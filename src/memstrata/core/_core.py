"""MemoryCore: one write fans out to the durable store, audit log, cache, vector index, trust ledger and events."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memstrata._closing import ClosesOnExit
from memstrata._native.auditchain import sha256
from memstrata.codecs import deserialize, serialize
from memstrata.core._assembly import LayerAssembly
from memstrata.core._commit import GroupCommit
from memstrata.core._config import CoreConfig
from memstrata.core._layers import (
    PATTERN,
    TOMBSTONE,
    VALUE,
    decode_record,
    pattern_is_live,
    record_seq,
    unwrap_value,
)
from memstrata.core._recovery import Recovery
from memstrata.core._results import WriteResult, failed
from memstrata.errors import MemstrataError

__all__ = ["MemoryCore"]

BEST_EFFORT = ("cache", "vector", "trust", "events")


class MemoryCore(LayerAssembly, GroupCommit, Recovery, ClosesOnExit):
    """Many agents' shared memory: crash-consistent write fan-out with a verifiable audit chain.

    Parameters
    ----------
    path : str or Path, optional
        Directory of the embedded default (``store/`` a :class:`memstrata.MemoryStore`,
        ``audit.log`` the binary audit log; a directory made with an SQLite log,
        ``audit.sqlite``, keeps it). ``None``: everything in RAM.
    cache, durable, vector, audit, events, trust : bool or object, optional
        ``False`` turns a layer off, ``True`` forces it on; an object replaces
        it (a :class:`memstrata.tiers.RedisBackend` for ``cache``, a backend
        with ``get``/``put_newer``/``scan`` for ``durable``, an
        :class:`AuditLog`, an :class:`EventBus`, a :class:`TrustLedger`).
        Unset layers follow the configuration.
    config_file : str or Path, optional
        TOML or JSON settings (see :class:`CoreConfig`); environment variables
        ``MEMSTRATA_*`` override it, keyword ``settings`` override both.
    embedder : callable, optional
        ``list[str] -> (n, d) float32`` for the vector layer (default :class:`TextEmbedder`).

    Notes
    -----
    **Write**: the audit entry (sequence, SHA-256 of the value, and the value
    itself as the intent record) is committed first; then the durable store.
    Both are critical: if the durable store fails an ``abort`` entry is logged
    and :class:`WriteFailedError` raised. Cache, vector, trust and events are
    best-effort: failures are counted and retried (:meth:`retry`, and on open).
    On PostgreSQL (``database_url``) the entry and the durable record are
    committed together by one statement (one round trip; see
    :meth:`PostgresLogStore.append_apply`).
    **Concurrent writers** (threads of one core) commit in groups: the writes
    that queue while a batch is being committed form the next batch, which
    takes one append to the log (one ``fdatasync`` with durability ``"full"``)
    and one durable-store transaction; every layer applies them in log order.
    A thread's writes keep its order. On PostgreSQL a batch is one statement
    (:meth:`PostgresLogStore.append_apply_many`); the cache still takes one
    Redis call per write.
    Every layer keeps the log sequence with each record and keeps the newest,
    so applying a step twice, or late, changes nothing: on open, entries past
    the saved replay position are applied again to every layer.

    Examples
    --------
    >>> from memstrata.core import MemoryCore
    >>> with MemoryCore() as core:
    ...     r = core.write_sync("user:1:theme", {"theme": "dark"}, actor="agent-a")
    ...     core.read_sync("user:1:theme"), r.ok, r.layers["durable"]
    ({'theme': 'dark'}, True, 'ok')
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        cache: Any = None,
        durable: Any = None,
        vector: Any = None,
        audit: Any = None,
        events: Any = None,
        trust: Any = None,
        config_file: str | os.PathLike[str] | None = None,
        embedder: Callable[[list[str]], Any] | None = None,
        clock: Callable[[], float] = time.time,
        **settings: Any,
    ) -> None:
        flags = {"cache": cache, "durable": durable, "vector": vector, "events": events, "trust": trust}
        for name, v in flags.items():
            if isinstance(v, bool):
                settings[f"{name}_enabled"] = v
        self.config = cfg = CoreConfig.resolve(config_file, **settings)
        self.path = None if path is None else Path(path)
        self.clock = clock
        self._lock = threading.RLock()
        self._closing: list[Any] = []
        self._store: Any = None
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._open_layers(cfg, cache, durable, vector, audit, events, trust, embedder)
            self.writes_total = self.writes_failed = self.cache_hits = self.cache_misses = self.reads_total = 0
            self.failures = dict.fromkeys(("audit", "durable", *BEST_EFFORT), 0)
            self.retries = dict.fromkeys(BEST_EFFORT, 0)
            self.replayed = 0
            self._pending: dict[str, dict[int, str]] = {name: {} for name in BEST_EFFORT}
            self._since_checkpoint = 0
            self._init_commit()
            self._recover()
        except BaseException:
            self._close_layers()
            raise

    # ----------------------------------------------------------------- write --

    def _put_durable(self, kb: bytes, rec: bytes, kind: int) -> None:
        for backend, key, r in self._durable_ops(kb, rec, kind):
            backend.put_newer(key, r)

    def _apply_best_effort(
        self, key: str, rec: bytes, payload: bytes, ttl_seconds: float | None, out: dict[str, str] | None = None
    ) -> dict[str, str]:
        """Put ``rec`` into the cache and the vector index; each layer's outcome goes into ``out`` (returned)."""
        if out is None:
            out = {}
        if self.cache is not None:
            try:
                self.cache.put_newer(
                    key.encode(), rec, ttl_seconds if ttl_seconds is not None else self.config.default_ttl_seconds
                )
                out["cache"] = "ok"
            except Exception as exc:
                out["cache"] = self._best_effort_failed("cache", record_seq(rec), key, exc)
        if self.vector is not None:
            try:
                if rec[8] == TOMBSTONE:
                    self.vector.delete(key)
                else:
                    value = unwrap_value(rec[8], deserialize(payload))
                    if isinstance(value, str):
                        self.vector.put(key, value)
                    else:
                        self.vector.delete(key)
                out["vector"] = "ok"
            except Exception as exc:
                out["vector"] = self._best_effort_failed("vector", record_seq(rec), key, exc)
        return out

    def _best_effort_failed(self, layer: str, seq: int, key: str, exc: BaseException) -> str:
        self.failures[layer] += 1
        self._pending[layer][seq] = key
        return failed(exc)

    def write_sync(
        self,
        key: str,
        value: Any,
        *,
        metadata: dict[str, Any] | None = None,
        ttl_seconds: float | None = None,
        actor: str | None = None,
        trust_attestation: bool = True,
    ) -> WriteResult:
        """Write ``value`` under ``key`` through every layer; see the class notes for the semantics.

        ``metadata["is_pattern"]`` sends the value to the patterns table with
        ``metadata["pattern_type"]`` and ``metadata["confidence"]`` (see :meth:`patterns`).

        Raises
        ------
        WriteFailedError
            The audit log or the durable store failed; nothing was applied.
        """
        if type(key) is not str or not key:
            _check_key(key)
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata: expected a dict or None, got {type(metadata).__name__}")
        if ttl_seconds is not None and not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds: expected a positive number of seconds or None, got {ttl_seconds!r}")
        pattern = bool(metadata and metadata.get("is_pattern"))
        if pattern:
            assert metadata is not None
            confidence = float(metadata.get("confidence", 1.0))
            if not 0.0 <= confidence <= 1.0:
                raise ValueError(f"metadata['confidence']: expected a number in [0, 1], got {confidence!r}")
            value = {"value": value, "pattern_type": str(metadata.get("pattern_type", "")), "confidence": confidence}
        payload = serialize(value)
        if pattern:
            return self._submit(
                key, "write.pattern", PATTERN, payload, sha256(payload), actor or "", ttl_seconds, trust_attestation
            )
        return self._submit(key, "write", VALUE, payload, sha256(payload), actor or "", ttl_seconds, trust_attestation)

    def delete_sync(self, key: str, *, actor: str | None = None) -> WriteResult:
        """Delete ``key`` from every layer (logged like a write); ``result.existed`` says whether it was there."""
        _check_key(key)
        return self._submit(key, "delete", TOMBSTONE, None, b"", actor or "", None, True)

    # ------------------------------------------------------------------ read --

    def _read_record(self, kb: bytes) -> bytes | None:
        """The durable record of a key (values, then patterns), or None when absent or deleted.

        A pattern write leaves a tombstone of the same sequence number in the
        values table, so a key whose value is a tombstone is looked up in the
        patterns table even by a process that has not seen any pattern written.
        """
        rec: bytes | None = self.durable.get(kb)  # a durable layer maps bytes keys to bytes records
        if rec is not None and rec[8] != TOMBSTONE:
            return rec
        if self.pattern_store is self.durable or (rec is None and not self._has_patterns):
            return None
        pat = self.pattern_store.get(kb)
        return pat if pat is not None and pattern_is_live(pat, rec) else None

    def read_sync(self, key: str, *, actor: str | None = None, use_cache: bool = True, default: Any = None) -> Any:
        """The value of ``key``: cache, then durable store (refilling the cache), then the semantic fallback.

        Raises
        ------
        CorruptDataError
            The durable record is not the bytes written under ``key``.
        """
        _check_key(key)
        kb = key.encode()
        self.reads_total += 1
        source = "miss"
        value: Any = default
        rec = None
        if use_cache and self.cache is not None:
            rec = self.cache.get(kb)
            if rec is not None:
                try:
                    r = decode_record(kb, rec, "cache")
                except MemstrataError:
                    self.failures["cache"] += 1
                    self.cache.delete(kb)  # a damaged cache entry is dropped, never returned
                    r = None
                if r is not None and r.kind != TOMBSTONE:
                    self.cache_hits += 1
                    value, source = unwrap_value(r.kind, deserialize(r.payload)), "cache"
            if source == "miss":
                self.cache_misses += 1
        if source == "miss" and self.durable is not None:
            rec = self._read_record(kb)
            if rec is not None:
                r = decode_record(kb, rec, "durable store")
                value, source = unwrap_value(r.kind, deserialize(r.payload)), "durable"
                if use_cache and self.cache is not None:
                    try:
                        self.cache.put_newer(kb, rec, self.config.default_ttl_seconds)
                    except Exception:
                        self.failures["cache"] += 1
        if source == "miss" and self.config.semantic_fallback and self.vector is not None and self.durable is not None:
            for other, score in self.vector.search(key, 1):
                if score >= self.config.semantic_min_score and other != key:
                    found = self._read_record(other.encode())
                    if found is not None:
                        r = decode_record(other.encode(), found, "durable store")
                        value, source = unwrap_value(r.kind, deserialize(r.payload)), "vector"
        if self.config.audit_reads:
            self.audit.append("read", key, actor=actor, result=source)
        return value

    def patterns(self, pattern_type: str | None = None, min_confidence: float = 0.0) -> list[dict[str, Any]]:
        """Stored patterns (``key``, ``value``, ``pattern_type``, ``confidence``), highest confidence first."""
        if self.pattern_store is None:
            return []
        out = []
        for kb, rec in self.pattern_store.scan(b""):
            r = decode_record(kb, rec, "patterns table")
            if r.kind != PATTERN or (self.pattern_store is not self.durable and not self._live(kb, rec)):
                continue
            p = deserialize(r.payload)
            if (pattern_type is None or p["pattern_type"] == pattern_type) and p["confidence"] >= min_confidence:
                out.append({"key": kb.decode(), **p})
        out.sort(key=lambda p: -p["confidence"])
        return out

    # ------------------------------------------------------------------ async --

    async def write(self, key: str, value: Any, **kwargs: Any) -> WriteResult:
        """Async :meth:`write_sync` (runs in a worker thread)."""
        return await asyncio.to_thread(lambda: self.write_sync(key, value, **kwargs))

    async def read(self, key: str, **kwargs: Any) -> Any:
        """Async :meth:`read_sync`."""
        return await asyncio.to_thread(lambda: self.read_sync(key, **kwargs))

    async def delete(self, key: str, **kwargs: Any) -> WriteResult:
        """Async :meth:`delete_sync`."""
        return await asyncio.to_thread(lambda: self.delete_sync(key, **kwargs))

    # ------------------------------------------------------------------ stats --

    def get_stats(self) -> dict[str, Any]:
        """Counters: writes, cache hits, per-layer failures, retries and lag (steps still pending)."""
        w, h, m = self.writes_total, self.cache_hits, self.cache_misses
        return {
            "writes_total": w,
            "writes_failed": self.writes_failed,
            "write_success_rate": (w - self.writes_failed) / w if w else 1.0,
            "reads_total": self.reads_total,
            "cache_hits": h,
            "cache_misses": m,
            "cache_hit_rate": h / (h + m) if h + m else 0.0,
            "failures": dict(self.failures),
            "retries": dict(self.retries),
            "lag": {layer: len(p) for layer, p in self._pending.items()},
            "replayed": self.replayed,
            "audit_entries": len(self.audit),
            "events": None if self.events is None else self.events.stats(),
        }

    def close(self) -> None:
        """Save the replay position and close every layer."""
        if not self._closing:
            return
        try:
            with self._lock:
                self._save_state(len(self.audit), closed=True)
        finally:
            self._close_layers()


def _check_key(key: Any) -> None:
    if not isinstance(key, str):
        raise TypeError(f"key: expected a str, got {type(key).__name__}")
    if not key:
        raise ValueError("key: expected a non-empty string")

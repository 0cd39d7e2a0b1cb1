"""MemoryCore: one write fans out to the durable store, audit log, cache, vector index, trust ledger and events."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memstrata.core._audit import AuditEntry, AuditLog
from memstrata.core._config import CoreConfig
from memstrata.core._events import Event, EventBus
from memstrata.core._layers import (
    PATTERN,
    TOMBSTONE,
    VALUE,
    HotCache,
    RedisCache,
    StoreBackend,
    TextEmbedder,
    VectorIndex,
    decode_record,
    encode_record,
)
from memstrata.core._trust import TrustLedger
from memstrata.errors import MemstrataError

__all__ = ["MemoryCore", "WriteFailedError", "WriteResult"]

BEST_EFFORT = ("cache", "vector", "trust", "events")
_WRITE_OPS = ("write", "write.pattern", "delete")


class WriteFailedError(MemstrataError):
    """A critical layer (audit log or durable store) failed; nothing of the write is visible. ``result`` has the details."""

    def __init__(self, message: str, result: WriteResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class WriteResult:
    """Outcome of a write or delete: its log sequence and each layer's ``"ok"``, ``"skipped"`` or ``"failed: ..."``."""

    key: str
    seq: int
    ok: bool
    layers: dict[str, str] = field(default_factory=dict)
    digest: bytes = b""
    existed: bool | None = None

    def __bool__(self) -> bool:
        return self.ok


def _failed(exc: BaseException) -> str:
    return f"failed: {type(exc).__name__}: {exc}"


class MemoryCore:
    """Many agents' shared memory: crash-consistent write fan-out with a verifiable audit chain.

    Parameters
    ----------
    path : str or Path, optional
        Directory of the embedded default (``store/`` a :class:`memstrata.MemoryStore`,
        ``audit.sqlite`` the audit log). ``None``: everything in RAM.
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
            self._recover()
        except BaseException:
            self._close_layers()
            raise

    # ------------------------------------------------------------------ open --

    def _open_layers(self, cfg: CoreConfig, cache: Any, durable: Any, vector: Any, audit: Any, events: Any, trust: Any, embedder: Any) -> None:
        from memstrata.core._logstore import PostgresLogStore, SQLiteLogStore

        key = bytes.fromhex(cfg.audit_key_hex) if cfg.audit_key_hex else None
        if isinstance(audit, AuditLog):
            self.audit = audit
        elif cfg.database_url:
            self.audit = AuditLog(PostgresLogStore(cfg.database_url, prefix=cfg.table_prefix + "audit_"), key=key, clock=self.clock)
        else:
            where = ":memory:" if self.path is None else self.path / "audit.sqlite"
            self.audit = AuditLog(SQLiteLogStore(where, cfg.durability), key=key, clock=self.clock)
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
        self._has_patterns = self.pattern_store is not None and next(iter(self.pattern_store.scan(b"")), None) is not None

    # -------------------------------------------------------------- recovery --

    def _state_name(self) -> str:
        return f"replay:{self.config.instance}"

    def _recover(self) -> None:
        """Bring every layer up to the log: replay entries past the saved position."""
        store = self.audit.store
        raw = store.get_state(self._state_name())
        if raw:
            state = json.loads(raw)
        else:  # a new writer: only what writers still open (or killed) may not have applied
            start = min(self._open_positions(), default=len(self.audit))
            state = {"from": start, "trust_applied": len(self.audit)}
        trust_raw = store.get_state(f"trust:{self.config.instance}")
        if self.trust is not None and trust_raw:
            self.trust.load_bytes(trust_raw)
        if self.vector is not None and self.durable is not None:
            self._rebuild_vectors()
        start = int(state["from"])
        size = len(self.audit)
        if start < size:
            self._replay(self.audit.entries(start, size), int(state["trust_applied"]))
        self._save_state(size)

    def _rebuild_vectors(self) -> None:
        from memstrata.codecs import deserialize

        for ns in {id(self.durable): self.durable, id(self.pattern_store): self.pattern_store}.values():
            for kb, rec in ns.scan(b""):
                r = decode_record(kb, rec, "durable store")
                if r.kind != TOMBSTONE:
                    value = _unwrap(r.kind, deserialize(r.payload))
                    if isinstance(value, str):
                        self.vector.put(kb.decode(), value)

    def _replay(self, entries: Any, trust_applied: int) -> None:
        aborted: set[int] = set()
        ops: list[AuditEntry] = []
        for e in entries:
            if e.operation == "abort":
                aborted.add(int(e.result.split()[1]))
            elif e.operation in _WRITE_OPS:
                ops.append(e)
        last: dict[str, AuditEntry] = {}
        for e in ops:
            if e.seq not in aborted:
                last[e.key] = e
        for key, e in last.items():
            self._apply_entry(e)
            self.replayed += 1
        mine = f"intent {self.config.instance}"
        for e in ops:
            if self.trust is not None and e.seq >= trust_applied and e.result == mine and e.actor:
                self.trust.update(e.actor, success=e.seq not in aborted)
            if self.events is not None and e.seq not in aborted:
                kind = "memory.delete" if e.operation == "delete" else "memory.write"
                self.events.emit(Event(kind, e.key, e.seq, {"replayed": "ok"}, e.actor, self.clock(), replayed=True))

    def _apply_entry(self, e: AuditEntry) -> None:
        """Make every layer hold what entry ``e`` says (idempotent: newer records win)."""
        kb = e.key.encode()
        if e.operation == "delete":
            rec = encode_record(kb, e.seq, TOMBSTONE, b"")
            payload = b""
        else:
            payload_or_none = self.audit.payload(e.seq)
            if payload_or_none is None:
                return  # applied everywhere before its payload was pruned
            payload = payload_or_none
            if hashlib.sha256(payload).digest() != e.digest:
                raise MemstrataError(f"audit log: the intent payload of entry {e.seq} does not match its digest")
            rec = encode_record(kb, e.seq, PATTERN if e.operation == "write.pattern" else VALUE, payload)
        if self.durable is not None:
            self._put_durable(kb, rec, rec[8])
        self._apply_best_effort(e.key, rec, payload, None)

    # ----------------------------------------------------------------- write --

    def _put_durable(self, kb: bytes, rec: bytes, kind: int) -> None:
        if kind == PATTERN:
            self._has_patterns = True
            self.pattern_store.put_newer(kb, rec)
            if self.pattern_store is not self.durable:
                self.durable.put_newer(kb, encode_record(kb, int.from_bytes(rec[:8], "big"), TOMBSTONE, b""))
        else:
            self.durable.put_newer(kb, rec)
            if self._has_patterns and self.pattern_store is not self.durable:
                self.pattern_store.put_newer(kb, encode_record(kb, int.from_bytes(rec[:8], "big"), TOMBSTONE, b""))

    def _apply_best_effort(self, key: str, rec: bytes, payload: bytes, ttl_seconds: float | None) -> dict[str, str]:
        out: dict[str, str] = {}
        kb = key.encode()
        seq = int.from_bytes(rec[:8], "big")
        if self.cache is not None:
            try:
                self.cache.put_newer(kb, rec, ttl_seconds if ttl_seconds is not None else self.config.default_ttl_seconds)
                out["cache"] = "ok"
            except Exception as exc:
                out["cache"] = self._best_effort_failed("cache", seq, key, exc)
        if self.vector is not None:
            try:
                if rec[8] == TOMBSTONE:
                    self.vector.delete(key)
                else:
                    from memstrata.codecs import deserialize

                    value = _unwrap(rec[8], deserialize(payload))
                    if isinstance(value, str):
                        self.vector.put(key, value)
                    else:
                        self.vector.delete(key)
                out["vector"] = "ok"
            except Exception as exc:
                out["vector"] = self._best_effort_failed("vector", seq, key, exc)
        return out

    def _best_effort_failed(self, layer: str, seq: int, key: str, exc: BaseException) -> str:
        self.failures[layer] += 1
        self._pending[layer][seq] = key
        return _failed(exc)

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
        from memstrata.codecs import serialize

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
        return self._mutate(key, "write.pattern" if pattern else "write", payload, actor, ttl_seconds, trust_attestation)

    def delete_sync(self, key: str, *, actor: str | None = None) -> WriteResult:
        """Delete ``key`` from every layer (logged like a write); ``result.existed`` says whether it was there."""
        _check_key(key)
        return self._mutate(key, "delete", None, actor, None, True)

    def _mutate(self, key: str, op: str, payload: bytes | None, actor: str | None, ttl: float | None, attest: bool) -> WriteResult:
        kb = key.encode()
        digest = b"" if payload is None else hashlib.sha256(payload).digest()
        who = actor or ""
        with self._lock:
            self.writes_total += 1
            result = WriteResult(key, -1, False, {}, digest)
            existed = None
            if op == "delete" and self.durable is not None:
                existed = self._read_record(kb) is not None
            try:
                entry = self.audit.append_many([(who, op, key, digest, f"intent {self.config.instance}", payload)])[0]
            except Exception as exc:
                self.writes_failed += 1
                self.failures["audit"] += 1
                result.layers["audit"] = _failed(exc)
                raise WriteFailedError(f"write of {key!r}: the audit log failed ({exc}); nothing was applied", result) from exc
            seq = result.seq = entry.seq
            result.layers["audit"] = "ok"
            kind = TOMBSTONE if op == "delete" else PATTERN if op == "write.pattern" else VALUE
            rec = encode_record(kb, seq, kind, payload or b"")
            if self.durable is not None:
                try:
                    self._put_durable(kb, rec, kind)
                    result.layers["durable"] = "ok"
                except Exception as exc:
                    self.writes_failed += 1
                    self.failures["durable"] += 1
                    result.layers["durable"] = _failed(exc)
                    self.audit.append_many([(who, "abort", key, b"", f"abort {seq}: {type(exc).__name__}", None)])
                    self._attest(who, attest, False, seq, key, result)
                    raise WriteFailedError(f"write of {key!r}: the durable store failed ({exc}); the write was aborted", result) from exc
            result.layers.update(self._apply_best_effort(key, rec, payload or b"", ttl))
            self._attest(who, attest, True, seq, key, result)
            if self.events is not None:
                kind_name = "memory.delete" if op == "delete" else "memory.write"
                try:
                    if not self.events.emit(Event(kind_name, key, seq, dict(result.layers), who, self.clock())):
                        raise MemstrataError("the event queue is full")
                    result.layers["events"] = "ok"
                except Exception as exc:
                    result.layers["events"] = self._best_effort_failed("events", seq, key, exc)
            result.ok = True
            result.existed = existed
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.config.checkpoint_every:
                self._save_state(seq + 1)
            return result

    def _attest(self, who: str, attest: bool, success: bool, seq: int, key: str, result: WriteResult) -> None:
        if self.trust is None or not attest or not who:
            return
        try:
            self.trust.update(who, success=success)
            result.layers["trust"] = "ok"
        except Exception as exc:
            result.layers["trust"] = self._best_effort_failed("trust", seq, key, exc)

    def _open_positions(self) -> list[int]:
        """Replay positions of the writers sharing this log that did not close cleanly."""
        states = self.audit.store.states("replay:")
        return [p["from"] for p in map(json.loads, states.values()) if not p.get("closed")]

    def _save_state(self, next_seq: int, closed: bool = False) -> None:
        """Persist the replay position (the oldest entry some layer may still lack) and the trust ledger."""
        pending = [s for p in self._pending.values() for s in p]
        start = min(pending, default=next_seq)
        closed = closed and not pending
        values = {self._state_name(): json.dumps({"from": start, "trust_applied": next_seq, "closed": closed}).encode()}
        if self.trust is not None:
            values[f"trust:{self.config.instance}"] = self.trust.to_bytes()
        store = self.audit.store
        store.set_state(values)
        # a payload is needed until every writer sharing the log has passed it
        store.drop_payloads(min(self._open_positions(), default=start))
        self._since_checkpoint = 0

    def retry(self) -> dict[str, int]:
        """Re-apply best-effort steps that failed; returns how many are still pending per layer."""
        with self._lock:
            for layer, pending in self._pending.items():
                for seq, key in sorted(pending.items()):
                    self.retries[layer] += 1
                    try:
                        self._retry_one(layer, seq, key)
                    except Exception:
                        continue
                    del pending[seq]
            return {layer: len(p) for layer, p in self._pending.items()}

    def _retry_one(self, layer: str, seq: int, key: str) -> None:
        kb = key.encode()
        if layer == "events":
            e = self.audit[seq]
            kind = "memory.delete" if e.operation == "delete" else "memory.write"
            if not self.events.emit(Event(kind, key, seq, {"retried": "ok"}, e.actor, self.clock(), replayed=True)):
                raise MemstrataError("event queue full")
            return
        if layer == "trust":
            self.trust.update(self.audit[seq].actor, success=True)
            return
        rec = self._read_record(kb) if self.durable is not None else None
        if rec is None:
            rec = encode_record(kb, seq, TOMBSTONE, b"")
        r = decode_record(kb, rec, "durable store")
        if layer == "cache":
            self.cache.put_newer(kb, rec, self.config.default_ttl_seconds)
        elif layer == "vector":
            self._apply_vector(key, r.kind, r.payload)

    def _apply_vector(self, key: str, kind: int, payload: bytes) -> None:
        from memstrata.codecs import deserialize

        value = None if kind == TOMBSTONE else _unwrap(kind, deserialize(payload))
        if isinstance(value, str):
            self.vector.put(key, value)
        else:
            self.vector.delete(key)

    # ------------------------------------------------------------------ read --

    def _read_record(self, kb: bytes) -> bytes | None:
        """The durable record of a key (values, then patterns), or None when absent or deleted."""
        for ns in (self.durable, self.pattern_store) if self._has_patterns else (self.durable,):
            rec = ns.get(kb)
            if rec is not None and rec[8] != TOMBSTONE:
                return rec
        return None

    def read_sync(self, key: str, *, actor: str | None = None, use_cache: bool = True, default: Any = None) -> Any:
        """The value of ``key``: cache, then durable store (refilling the cache), then the semantic fallback.

        Raises
        ------
        CorruptDataError
            The durable record is not the bytes written under ``key``.
        """
        from memstrata.codecs import deserialize

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
                    value, source = _unwrap(r.kind, deserialize(r.payload)), "cache"
            if source == "miss":
                self.cache_misses += 1
        if source == "miss" and self.durable is not None:
            rec = self._read_record(kb)
            if rec is not None:
                r = decode_record(kb, rec, "durable store")
                value, source = _unwrap(r.kind, deserialize(r.payload)), "durable"
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
                        value, source = _unwrap(r.kind, deserialize(r.payload)), "vector"
        if self.config.audit_reads:
            self.audit.append("read", key, actor=actor, result=source)
        return value

    def patterns(self, pattern_type: str | None = None, min_confidence: float = 0.0) -> list[dict[str, Any]]:
        """Stored patterns (``key``, ``value``, ``pattern_type``, ``confidence``), highest confidence first."""
        from memstrata.codecs import deserialize

        if self.pattern_store is None:
            return []
        out = []
        for kb, rec in self.pattern_store.scan(b""):
            r = decode_record(kb, rec, "patterns table")
            if r.kind != PATTERN:
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

    def _close_layers(self) -> None:
        for layer in reversed(self._closing):
            try:
                layer.close()
            except Exception:
                pass
        self._closing = []

    def __enter__(self) -> MemoryCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unwrap(kind: int, value: Any) -> Any:
    return value["value"] if kind == PATTERN else value


def _check_key(key: Any) -> None:
    if not isinstance(key, str):
        raise TypeError(f"key: expected a str, got {type(key).__name__}")
    if not key:
        raise ValueError("key: expected a non-empty string")

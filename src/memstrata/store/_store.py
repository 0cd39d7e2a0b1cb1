"""``MemoryStore``: dedup + compression + tiered storage behind one small API."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from memstrata._locks import WriterLock
from memstrata.codecs import decode as _decode_frame
from memstrata.codecs import deserialize as _deserialize
from memstrata.errors import ClosedError, StoreLockedError
from memstrata.store._async import AsyncStoreMethods
from memstrata.store._config import StoreConfig, resolve_config
from memstrata.store._directory import StoreDirectoryMethods
from memstrata.store._layout import PACKS_DIR, check_store_path, release_lock
from memstrata.store._maintenance import StoreMaintenanceMethods
from memstrata.store._records import DictionaryRecords, RecordMaker, engine_policy, load_new_dictionaries
from memstrata.store._statistics import store_statistics
from memstrata.store._stats import StatsRegistry
from memstrata.types import TierLike

_perf_counter = time.perf_counter  # a module global: no attribute lookup on every write

__all__ = ["MemoryStore", "StoreLockedError"]

_MISSING: Any = object()


class MemoryStore(StoreMaintenanceMethods, AsyncStoreMethods, StoreDirectoryMethods):
    """Agent memory that is deduplicated, compressed and tiered, and never loses a byte.

    Parameters
    ----------
    path : str or Path, optional
        Directory of the store (created if missing): ``log/`` (segment files
        holding warm frames, index records and metadata, plus the index
        checkpoint), ``packs/`` (cold pack files) and ``LOCK``. ``None`` keeps
        everything in RAM for the life of the object. A format-1 store
        (``store.sqlite``) opens read-only; :meth:`upgrade` converts it. A
        directory holding files memstrata did not write is refused.
    config : StoreConfig, dict, preset name or path of a TOML/YAML file, optional
    clock : callable, optional
        Seconds as a float, for the idle rules (``time.time``); inject a fake
        clock in tests.
    read_only : bool
        Open an existing store without writing (another process may be writing).

    Notes
    -----
    **Durability** (``config.durability``), for every acknowledged ``store`` /
    ``delete``:

    * ``"none"``: each write is handed to the OS, nothing is fsynced. Survives a
      crash of the process (the OS still has the bytes); an OS crash or power
      loss can lose recent writes (a torn final record is dropped at open,
      damage before it is reported).
    * ``"normal"`` (default): each write is in the OS's page cache when
      acknowledged; segments are fsynced when sealed and at checkpoints, packs
      before the index refers to them. Survives a process crash with every
      acknowledged write (tested with SIGKILL); after power loss the store is
      consistent but the last writes before the loss may be missing.
    * ``"full"``: fdatasync of the segment before acknowledging: also survives
      power loss and OS crashes with every acknowledged write. Writes from
      several threads share one fdatasync (group commit); another thread may
      read a write a moment before its writer is told it is synced.

    **RAM**: the hot tier (bounded by ``hot_max_bytes``) plus the log's index:
    one 12-byte slot per record (a 32-bit key fingerprint and the record's
    location, no key bytes), the table 60-90% full (85% right after open), so
    about 14 bytes per record. A key whose value no other key holds has two
    records (its entry, which also holds the frame, and the value's blob
    record): ~28 bytes per key right after open, up to ~40 just before the
    table grows (``v2-open`` in ``benchmarks/bench_store_v2.py``: 30 bytes
    per key by tracemalloc for 10^5 keys). A value shared by several keys
    adds a data record once, and each key its entry.
    ``get_statistics()["overall"]["ram_bytes"]`` reports the hot tier and the index.

    **Threads**: every method is safe to call from many threads at once.
    **asyncio**: ``astore``, ``aretrieve``, ``adelete``, ``astore_many``,
    ``amigrate``, ``arun_migrations``, ``acompact``, ``averify``,
    ``aget_statistics``, ``aflush`` and ``aclose`` run their blocking twins off
    the event loop; ``async with MemoryStore(...)`` closes it.
    **Processes**: one process at a time may open a directory for writing
    (enforced with a lock file; a second writer gets ``StoreLockedError``);
    any number of others may open it with ``read_only=True`` and see every
    committed write. The hot tier is private to each process.

    Examples
    --------
    >>> from memstrata import MemoryStore
    >>> with MemoryStore() as store:
    ...     _ = store.store("note:1", {"text": "the user prefers metric units", "importance": 0.9})
    ...     _ = store.store("note:2", {"text": "the user prefers metric units", "importance": 0.9})
    ...     print(store.retrieve("note:1")["text"], len(store), store.retrieve("missing", None))
    ...     stats = store.get_statistics()
    the user prefers metric units 2 None
    >>> stats["deduplication"]["unique_blobs"], stats["middleware"]["hits"]
    (1, 1)
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        config: StoreConfig | dict[str, Any] | str | os.PathLike[str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        read_only: bool = False,
        _backend: Any = None,
    ) -> None:
        from memstrata.codecs import CompressionEngine
        from memstrata.tiers import ColdTier, LocalLocation, MemoryLocation, SQLiteBackend, TieredStorage

        self.config = cfg = resolve_config(config)
        self.path = None if path is None else Path(check_store_path(path))
        self.read_only = read_only
        self.format_version = 2
        self._writer_lock: WriterLock | None = None
        self.registry = StatsRegistry()
        cold: ColdTier | None
        if _backend is not None:
            backend = _backend
            cold = None
        elif self.path is None:
            if read_only:
                raise ValueError("read_only: needs a path")
            backend = SQLiteBackend(":memory:", cfg.durability, max_disk_bytes=cfg.max_disk_bytes)
            cold = ColdTier(MemoryLocation(), sync=False, pack_max_bytes=cfg.pack_max_bytes)
        else:
            from memstrata.store._layout import open_durable

            backend, self.format_version, self._writer_lock, read_only = open_durable(self.path, cfg, read_only)
            self.read_only = read_only
            packs = self.path / PACKS_DIR
            location = MemoryLocation() if read_only and not packs.is_dir() else LocalLocation(packs)
            cold = ColdTier(location, sync=cfg.durability != "none", pack_max_bytes=cfg.pack_max_bytes)
        self._backend = backend
        try:
            self.engine = CompressionEngine(
                engine_policy(cfg.zstd_level, 0 if read_only else cfg.train_after),
                dictionaries=None if read_only else DictionaryRecords(backend),
                train_in_background=True,  # a store() that makes a dictionary due does not wait for its training
            )
            self._known_dictionaries: set[bytes] = set()
            if read_only:
                self._refresh_dictionaries()
            self.tiers = TieredStorage(
                backend,
                cold,
                hot_max_bytes=cfg.hot_max_bytes,
                eviction_policy=cfg.eviction_policy,
                hot_idle_seconds=cfg.hot_idle_seconds,
                warm_idle_seconds=cfg.warm_idle_seconds,
                warm_max_bytes=cfg.warm_max_bytes,
                promote_cold_hits=cfg.promote_cold_hits,
                promote_warm_hits=cfg.promote_warm_hits,
                migration_interval_seconds=None if read_only else cfg.migration_interval_seconds,
                compact_dead_ratio=cfg.compact_dead_ratio,
                clock=clock,
                read_only=read_only,
                refresh_dictionaries=self._refresh_dictionaries if read_only else None,
            )
        except BaseException:
            backend.close()
            self._release_lock()
            raise
        self.clock = clock
        self._closed = False
        self._hot_get = self.tiers.hot.get
        self._prepare = RecordMaker(self.engine).prepare
        self._hits = self._misses = self._writes = self._deletes = 0
        self._store_seconds = self.registry.histogram("store_seconds")
        reg = self.registry
        reg.gauge("writes", lambda: self._writes)
        reg.gauge("durable_hits", lambda: self._hits)
        reg.gauge("misses", lambda: self._misses)
        reg.gauge("deletes", lambda: self._deletes)

    # ------------------------------------------------------------- guards --

    def _release_lock(self) -> None:
        release_lock(self._writer_lock)
        self._writer_lock = None

    def _refresh_dictionaries(self) -> bool:
        """Register zstd dictionaries stored since the last call (a reader follows the writer); True if any."""
        return load_new_dictionaries(self._backend, self._known_dictionaries)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"MemoryStore: {self._where()} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            if self.format_version == 1:
                raise PermissionError(
                    f"MemoryStore: {self.path} is a format-1 store, open read-only; convert it with "
                    f"MemoryStore.upgrade({str(self.path)!r}) (or `memstrata upgrade {self.path}`)"
                )
            raise PermissionError(f"MemoryStore: {self._where()} was opened with read_only=True; it cannot be written")

    def _where(self) -> str:
        return "the in-memory store" if self.path is None else str(self.path)

    # --------------------------------------------------------------- write --

    def store(
        self,
        key: str | bytes,
        value: Any,
        tier: TierLike = "hot",
        pin: bool = False,
        allow_loss: bool = False,
    ) -> int:
        """Store ``value`` under ``key``; returns the mutation's sequence number.

        Parameters
        ----------
        key : str or bytes
        value : any value :func:`memstrata.serialize` accepts (dicts, lists,
            str, numbers, bytes, numpy arrays, ...)
        tier : {"hot", "warm", "cold"}
            Where it starts; rules move it later (``hot`` also keeps a durable
            copy on warm).
        pin : bool
            Never moved by the rules (and never evicted from hot).
        allow_loss : bool
            Allow lossy codecs (int8 for float vectors); the error is bounded by
            the codec and reported in ``compression`` statistics.

        Raises
        ------
        TypeError
            ``key`` is not str/bytes, or ``value`` cannot be serialized.
        memstrata.tiers.StorageFullError
            No space left; nothing was written and the store stays readable.
        """
        t0 = _perf_counter()
        if self._closed or self.read_only:
            self._check_writable()
        _key, make, d, raw_length, hot_value = self._prepare(key, value, allow_loss)
        seq = self.tiers.write(key, make, tier, pin, content_digest=d, raw_length=raw_length, hot_value=hot_value)
        self._writes += 1
        self._store_seconds.observe(_perf_counter() - t0)
        return seq

    def store_many(
        self,
        items: Mapping[str | bytes, Any] | Iterable[tuple[str | bytes, Any]],
        tier: TierLike = "hot",
        pin: bool = False,
        allow_loss: bool = False,
        batch: int = 1000,
    ) -> int:
        """Store many values, ``batch`` per transaction; returns the last sequence number.

        The same as calling :meth:`store` for each item, with one commit per
        batch instead of one per value (much faster with durability
        ``"normal"`` or ``"full"``); an error leaves earlier batches stored.

        >>> with MemoryStore() as store:
        ...     store.store_many({"a": 1, "b": [2, 3]}, tier="warm")
        ...     store.retrieve("b")
        2
        [2, 3]
        """
        self._check_writable()
        pairs = items.items() if isinstance(items, Mapping) else items
        seq = self.tiers.seq
        chunk: list[tuple[Any, Callable[[], bytes], bytes, int, bytes | None]] = []
        for key, value in pairs:
            chunk.append(self._prepare(key, value, allow_loss))
            if len(chunk) >= batch:
                seq = self.tiers.write_many(chunk, tier, pin)
                self._writes += len(chunk)
                chunk = []
        if chunk:
            seq = self.tiers.write_many(chunk, tier, pin)
            self._writes += len(chunk)
        return seq

    def __setitem__(self, key: str | bytes, value: Any) -> None:
        self.store(key, value)

    def delete(self, key: str | bytes) -> int:
        """Delete ``key`` (a tombstone; space is reclaimed by :meth:`compact`); ``KeyError`` if absent."""
        self._check_writable()
        seq = self.tiers.delete(key)
        self._deletes += 1
        return seq

    def delete_many(self, keys: Iterable[str | bytes], *, missing_ok: bool = False) -> int:
        """Delete every key of ``keys`` in one transaction (one commit); returns the last sequence number.

        All the keys are deleted or none is: the tombstones go to the log as
        one batch, so an error or a killed process (SIGKILL, power loss with
        ``durability="full"``) leaves the store as it was before the call or
        with every key deleted, never a part. Each key gets its own sequence
        number in the order given; a key listed twice is deleted once. An
        absent key raises ``KeyError`` before anything changes, unless
        ``missing_ok`` (skipped; the current sequence number is returned when
        nothing was deleted). The batch is built in RAM (~100 bytes per key).

        >>> with MemoryStore() as store:
        ...     _ = store.store_many({"a": 1, "b": 2, "c": 3})
        ...     _ = store.delete_many(["a", "c", "zz"], missing_ok=True)
        ...     sorted(store.keys())
        ['b']
        """
        self._check_writable()
        seq, n = self.tiers.delete_many(keys, missing_ok=missing_ok)
        self._deletes += n
        return seq

    def __delitem__(self, key: str | bytes) -> None:
        self.delete(key)

    # ---------------------------------------------------------------- read --

    def retrieve(self, key: str | bytes, default: Any = _MISSING) -> Any:
        """The value stored under ``key``, verified; ``default`` (or ``KeyError``) when absent.

        Raises
        ------
        memstrata.CorruptDataError
            The stored bytes are damaged (never returned as data).
        """
        if self._closed:
            self._check_open()
        v = self._hot_get(key)  # the cache counts hits and misses (reads = both) and stamps the access time
        if v is not None:  # the hot path: one cache lookup and one msgpack decode
            if type(v) is bytes:
                return _deserialize(v)
            return _decode_frame(v)
        try:
            value, _loc = self.tiers.read_durable(key)
        except KeyError:
            self._misses += 1
            if default is _MISSING:
                raise
            return default
        except TypeError:
            self._misses += 1
            raise
        self._hits += 1
        return value

    def __getitem__(self, key: str | bytes) -> Any:
        return self.retrieve(key)

    def get(self, key: str | bytes, default: Any = None) -> Any:
        return self.retrieve(key, default)

    def retrieve_with_tier(self, key: str | bytes) -> tuple[Any, str]:
        """``(value, tier it was read from)``; ``KeyError`` when absent."""
        self._check_open()
        return self.tiers.read(key)

    def tier_of(self, key: str | bytes) -> str:
        """``"hot"``, ``"warm"`` or ``"cold"``; ``KeyError`` when absent."""
        self._check_open()
        return self.tiers.tier_of(key)

    def __contains__(self, key: object) -> bool:
        self._check_open()
        return key in self.tiers

    def __len__(self) -> int:
        self._check_open()
        return len(self.tiers)

    def __iter__(self) -> Iterator[str | bytes]:
        self._check_open()
        return self.tiers.keys()

    def keys(self) -> Iterator[str | bytes]:
        """Every key (str or bytes, as stored), in key order."""
        self._check_open()
        return self.tiers.keys()

    @property
    def seq(self) -> int:
        """Sequence number of the last mutation."""
        self._check_open()
        return self.tiers.seq

    # ---------------------------------------------------------- statistics --

    def get_statistics(self) -> dict[str, Any]:
        """Counters and sizes, in sections.

        ``middleware`` (reads, writes, deletes, hits, misses, hit_rate, store
        latency), ``compression`` (the engine's), ``tiered_storage`` (items and
        bytes per tier, promotions, demotions), ``deduplication`` (unique blobs,
        references, dedup ratio) and ``overall``: ``raw_bytes`` (serialized
        size of every live value), ``stored_bytes`` (unique frames on warm and
        cold), ``ram_bytes`` (hot tier), ``memory_reduction_percent``
        (1 - stored/raw), ``ram_reduction_percent`` (1 - RAM/raw),
        ``disk_bytes`` (files) and ``target_met``.
        """
        self._check_open()
        return store_statistics(self)

    def disk_bytes(self) -> int:
        """Bytes of the store's files (SQLite file, WAL, packs); 0 in RAM only."""
        self._check_open()
        if self.path is None:
            return 0
        size = getattr(self._backend, "size_bytes", None)
        total = size() if size is not None else 0
        if self.tiers.cold is not None:
            total += self.tiers.cold.size_bytes()
        return int(total)

    # -------------------------------------------------------------- wrap --

    @classmethod
    def wrap(
        cls,
        engine: MutableMapping[bytes, bytes] | Any,
        config: StoreConfig | dict[str, Any] | str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> MemoryStore:
        """The same pipeline (dedup, compression, hot RAM tier) in front of an existing engine.

        ``engine`` is anything mapping-like over bytes (``get``, ``[k] = v``,
        ``del``, ``keys``); it becomes the durable tier and holds the index
        (records prefixed ``k``, ``a``, ``b``, ``m``, ``d``). There is no cold tier.

        >>> engine = {}
        >>> store = MemoryStore.wrap(engine)
        >>> _ = store.store("k", [1, 2, 3]); store.close()
        >>> MemoryStore.wrap(engine).retrieve("k")
        [1, 2, 3]
        """
        from memstrata.tiers import MappingBackend

        return cls(None, config, clock=clock, _backend=MappingBackend(engine))

    # ------------------------------------------------------------- closing --

    def flush(self) -> None:
        """Persist access times and checkpoint (every acknowledged write is already committed)."""
        self._check_open()
        self.tiers.flush()

    def close(self) -> None:
        """Stop migration, persist everything, release the files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.engine.close()  # a running dictionary training still writes its record
            self.tiers.close()
        finally:
            self._release_lock()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return f"MemoryStore({where!r}, keys={len(self) if not self._closed else 'closed'})"

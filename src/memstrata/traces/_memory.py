"""SymbolicTraceMemory: the public class, each operation as an ``async`` method and a ``_sync`` twin.

The work is done by mixins, one job each: ``_ingest`` (the write path and the
flush), ``_dictionaries`` (zstd dictionary training), ``_retention``,
``_queries`` (the read path), ``_events`` (the typed ``log_*`` methods),
``_verify`` and ``_database`` (opening, migration, crash replay, error
translation).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from memstrata._closing import ClosesOnExit
from memstrata.traces._blob import BlobCodec
from memstrata.traces._config import DEFAULT_CONFIG, check_config, check_int
from memstrata.traces._database import TraceDatabase, guarded
from memstrata.traces._dictionaries import Dictionaries
from memstrata.traces._events import Events
from memstrata.traces._faces import call_faces, commit_faces
from memstrata.traces._ingest import Ingest
from memstrata.traces._queries import Queries
from memstrata.traces._retention import Retention
from memstrata.traces._schema import SCHEMA_VERSION
from memstrata.traces._types import CompressedTrace, PerformanceDelta, TraceType
from memstrata.traces._verify import Verify
from memstrata.types import TraceTypeName

__all__ = ["DEFAULT_CONFIG", "SymbolicTraceMemory"]

class SymbolicTraceMemory(Events, TraceDatabase, Ingest, Dictionaries, Retention, Queries, Verify, ClosesOnExit):
    """Typed, compressed traces of an evolving agent, kept in SQLite by priority.

    Parameters
    ----------
    config : dict, optional
        ``max_memory_traces`` (10,000): traces kept in RAM (by priority, then
        recency) besides the database; ``compression_threshold`` (32):
        serialized traces shorter than this many bytes are stored as is, with
        ``compression_ratio`` 1.0 (so are longer ones zstd would not make smaller;
        a ratio never exceeds 1.0; 32 is the largest threshold that stores
        small traces as compactly as compressing all of them, measured in
        ``bench_traces.py::test_threshold``: 64 stores 1.3 % more, 128 2.3x);
        ``retention_days`` (30); ``db_path`` (``":memory:"``; missing parent
        directories are created, a directory or another program's SQLite file
        is refused with an error naming it); ``durability`` (``"normal"``):
        SQLite ``synchronous`` level, ``"none"``, ``"normal"`` or ``"full"``
        (fsync on every commit); ``flush_every`` (1000) and ``flush_seconds``
        (1.0): the batching of non-urgent writes (below); ``high_priority``
        (0.8); ``keep_types`` (fitness evolution, benchmark results,
        breakthroughs): types age-based retention never removes; ``zstd_level``
        (1: with a trained dictionary it compresses traces as small as level 3,
        faster); ``dictionary_bytes`` (16 KiB); ``train_after`` (1000) and
        ``type_train_after`` (500): when the stream and per-type zstd
        dictionaries are trained; ``lower_is_better`` / ``higher_is_better``:
        metric names whose direction this memory fixes.
    clock : callable, optional
        Returns the time in seconds since the epoch (default ``time.time``);
        timestamps, retention and the flush interval read it, so tests never sleep.

    Notes
    -----
    **Durability.** A trace with ``retention_priority`` above ``high_priority``
    (breakthroughs and collapses by default) is committed before its call
    returns, as one append to the unindexed ``trace_log`` table; reopening the
    database replays that log into ``traces``. Other traces and every
    performance delta are queued and committed to their tables in one
    transaction (which also moves logged urgent traces into ``traces``) when the
    queue holds ``flush_every`` rows, when a write finds the oldest queued row
    ``flush_seconds`` old by the clock (there is no background thread), before
    any query that reads the database, when RAM holds 10 % more traces than
    ``max_memory_traces``, and on :meth:`flush_sync`,
    :meth:`apply_retention_sync` and :meth:`close`. A crash loses at most the
    queue; committed rows survive a process crash (``"normal"``) or also power
    loss (``"full"``).

    **Compression.** Data is serialized as JSON text when JSON carries it exactly
    (else msgpack) and compressed with zstd and a dictionary trained on this
    database's own trace stream: one for the whole stream after ``train_after``
    traces, then one per trace type after ``type_train_after`` traces of that
    type (adopted only if it beats the stream's on that type's samples).
    Training runs in the flush that finds enough samples. Dictionaries are kept,
    versioned, in the ``dictionaries`` table; when one is trained, the traces
    written before it are re-encoded with it (where that makes them smaller) in
    the same transaction; :meth:`retrain_dictionaries_sync` trains new versions
    later. Every blob is checksummed and verified on read.

    **Integrity.** Every row carries a checksum binding its id, type,
    timestamp, priority, metadata, sequence number and blob; sequence numbers
    are accounted for without gaps (deletes leave tombstones); the trace count
    and the latest sequence number are kept in the database and in the mark
    file ``<db_path>-mark``, so a lost or damaged WAL, an older copy of the
    file or a deleted row is reported instead of silently rolled back. A
    damaged row raises ``CorruptDataError`` when read; :meth:`verify_sync`
    checks everything and names what is damaged. Schema-1 databases are
    migrated on open.

    **Priorities.** ``priority=`` wins; else ``metadata["priority"]`` —
    ``"low"`` 0.2, ``"medium"`` 0.5, ``"high"`` 0.8, ``"critical"`` 1.0 — else
    the type's default (the table at
    :data:`~memstrata.traces.DEFAULT_PRIORITIES`).

    **Batches.** :meth:`store_compressed_traces_sync` stores many traces in one
    call: one lock, one commit for the batch's urgent traces, and no garbage
    collector passes over the objects it builds.

    **Sync and async.** Every operation has an ``async`` method and a ``_sync``
    twin (``store_compressed_trace`` / ``store_compressed_trace_sync``; ``close``
    / ``aclose``). Async writes compress on the event loop (microseconds) and
    run commits and queries in a worker thread. All methods are thread-safe.

    Examples
    --------
    >>> from memstrata.traces import SymbolicTraceMemory, TraceType
    >>> with SymbolicTraceMemory({"db_path": ":memory:"}, clock=lambda: 1_700_000_000.0) as mem:
    ...     _ = mem.store_compressed_trace_sync("t1", {"op": "simplify", "cost": 3}, TraceType.SYMBOLIC_OPERATION)
    ...     d = mem.log_performance_delta_sync("latency_ms", 120.0, 90.0)
    ...     mem.get_trace_sync("t1"), d.delta_direction, len(mem.performance_history_sync("latency_ms"))
    ({'op': 'simplify', 'cost': 3}, 'improvement', 1)
    """

    def __init__(self, config: dict[str, Any] | None = None, *, clock: Callable[[], float] | None = None) -> None:
        cfg = check_config(config)
        if clock is not None and not callable(clock):
            raise TypeError(f"clock: expected a callable returning seconds, got {type(clock).__name__}")
        self.config = cfg
        self._clock = clock if clock is not None else time.time
        self._high = cfg["high_priority"]
        self._flush_every = cfg["flush_every"]
        self._flush_seconds = cfg["flush_seconds"]
        self._max_memory = cfg["max_memory_traces"]
        self._trim_at = self._max_memory + max(1, self._max_memory // 10)
        self._codec = BlobCodec(cfg["zstd_level"], cfg["compression_threshold"])
        self._state_lock = threading.RLock()  # memory, queue, seq, dictionaries in use
        self._db_lock = threading.RLock()  # the connection; held from taking the queue to its commit
        # RAM-resident traces, in write order, as their table rows: tuples of
        # atomic values, which the cyclic garbage collector does not track
        self._memory: dict[str, tuple[Any, ...]] = {}
        self._buckets: dict[float, dict[str, None]] = {}  # priority -> ids in RAM, in write order
        self._pending_traces: list[tuple[Any, ...]] = []
        self._pending_deltas: list[tuple[Any, ...]] = []
        self._pending_since: float | None = None
        self._aborted: list[int] = []  # seqs given out to work that rolled back: tombstoned by the next flush
        self._trained_now: list[tuple[str, int | None, int, int]] = []  # dictionaries of the open transaction
        self._active: dict[str, int] = {}  # scope -> dictionary version in use
        self._samples: dict[str, list[bytes]] = {}  # scope -> samples, for scopes without a dictionary
        self._n_dictionaries = 0
        self._n_logged = 0  # urgent rows in trace_log since the last flush
        self._train_at: dict[str, int] = {}  # scope -> samples needed, raised after a failed training
        self._closed = False
        self._connect(str(cfg["db_path"]))
        try:
            self._load_dictionaries()
        except BaseException:
            self._disconnect()
            raise

    @property
    def schema_version(self) -> int:
        """The schema version of the database (:data:`memstrata.traces.SCHEMA_VERSION`)."""
        return SCHEMA_VERSION

    @property
    def seq(self) -> int:
        """The sequence number of the latest mutation (trace, delta, dictionary or delete)."""
        return self._seq

    # ========================================================= public API ==
    # Each operation: an ``async def`` and a ``*_sync`` twin with the same result. An operation that
    # takes arguments is written once, as a method returning what may block; ``_faces`` makes both
    # faces of it (the async one runs that part in a thread). One without is two short methods.

    def _store_one(
        self,
        trace_id: str,
        data: Any,
        trace_type: TraceType | TraceTypeName = TraceType.SYMBOLIC_OPERATION,
        metadata: dict[str, Any] | None = None,
        *,
        priority: float | None = None,
        timestamp: float | None = None,
    ) -> tuple[CompressedTrace, Callable[[], object] | None]:
        """Compress and store one trace (an existing ``trace_id`` is replaced).

        Parameters
        ----------
        trace_id : str
        data : any value :func:`memstrata.serialize` accepts
            Dicts of JSON types are stored as JSON text; other values as msgpack.
        trace_type : TraceType or its value
        metadata : dict, optional
            JSON-safe; stored uncompressed.
        priority : float, optional
            Retention priority in ``[0, 1]``; default by type
            (:data:`~memstrata.traces.DEFAULT_PRIORITIES`). Above ``high_priority``
            (0.8) the trace is committed before this returns.
        timestamp : float, optional
            Seconds since the epoch; default: the clock.

        Returns
        -------
        CompressedTrace

        Raises
        ------
        TypeError, ValueError
            A bad argument; the message names it.
        """
        trace, row, now = self._store(trace_id, data, trace_type, metadata, priority, timestamp)
        if trace.retention_priority > self._high:  # urgent: its log append blocks too
            return trace, functools.partial(self._enqueue_and_flush, trace, row, now)
        return trace, (self._flush if self._enqueue(trace, row, now) else None)

    def _enqueue_and_flush(self, trace: CompressedTrace, row: list[Any], now: float) -> None:
        if self._enqueue(trace, row, now):
            self._flush()

    store_compressed_trace_sync, store_compressed_trace = commit_faces("store_compressed_trace", _store_one)

    def _store_batch(self, items: Iterable[Any]) -> tuple[list[CompressedTrace], Callable[[], object] | None]:
        """Store many traces in one call: the batched form of :meth:`store_compressed_trace_sync`.

        Parameters
        ----------
        items : iterable
            ``(trace_id, data[, trace_type[, metadata]])`` tuples, or dicts with
            keys ``trace_id``, ``data`` and optionally ``trace_type``, ``metadata``,
            ``priority``, ``timestamp``.

        Every item is checked and compressed before any is queued, so a bad item
        stores nothing. If any item is urgent, the whole queue is committed in one
        transaction before this returns (instead of one log append per urgent
        trace); otherwise the usual batching applies.
        """
        traces, flush = self._store_many(items)
        return traces, (self._flush if flush else None)

    store_compressed_traces_sync, store_compressed_traces = commit_faces("store_compressed_traces", _store_batch)

    def get_trace_sync(self, trace_id: str) -> Any:
        """The decompressed data of a trace, or ``None`` if there is none.

        A bare id given to a ``log_*`` method finds its trace too
        (``"gen5"`` → ``"benchmark:gen5"``); if it names several, ``ValueError``
        lists them.

        Raises
        ------
        CorruptDataError
            The stored blob fails verification (never returns wrong data).
        """
        return self._get(trace_id)

    async def get_trace(self, trace_id: str) -> Any:
        """Async :meth:`get_trace_sync`."""
        with self._state_lock:
            row = self._memory.get(trace_id) if type(trace_id) is str else None
        if row is not None:
            return self._decode(row[2], row[9])
        return await asyncio.to_thread(self._get, trace_id)

    def decompress_trace(self, trace: CompressedTrace) -> Any:
        """The data of a :class:`CompressedTrace` from this memory (e.g. from :meth:`traces_sync`)."""
        if not isinstance(trace, CompressedTrace):
            raise TypeError(f"trace: expected a CompressedTrace, got {type(trace).__name__}")
        return self._decode_trace(trace)

    def _traces(
        self,
        type: TraceType | str | None = None,  # the documented keyword
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        *,
        newest_first: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> Callable[[], list[CompressedTrace]]:
        """Stored traces, still compressed, ordered by timestamp (oldest first).

        Filters by ``type`` and by ``since <= timestamp <= until`` (indexed by
        ``idx_traces_type_time``) and by ``metadata``: every key given must be in
        the trace's metadata with an equal value (``{"run": "r7"}``); ``limit``
        keeps the first ``limit`` in that order (``newest_first=True`` for the
        latest). Flushes the queue first.
        """
        return functools.partial(self._query_traces, type, since, until, limit, newest_first, metadata)

    traces_sync, traces = call_faces("traces", _traces)


    def _performance_history(
        self, metric_name: str, since: float | None = None
    ) -> Callable[[], list[PerformanceDelta]]:
        """Every delta of ``metric_name`` (from ``since`` on), oldest first.

        One indexed query (``idx_performance_metric_time``); flushes the queue first.
        """
        return functools.partial(self._history, metric_name, since)

    performance_history_sync, performance_history = call_faces("performance_history", _performance_history)

    def fitness_evolution_sync(self) -> list[dict[str, Any]]:
        """Logged fitness by generation: ``[{"generation", "timestamp", "fitness"}, ...]``, in order."""
        return self._fitness()

    async def fitness_evolution(self) -> list[dict[str, Any]]:
        """Async :meth:`fitness_evolution_sync`."""
        return await asyncio.to_thread(self._fitness)

    def get_compression_stats_sync(self) -> dict[str, Any]:
        """Compression over every stored trace.

        Returns
        -------
        dict
            ``total_compressions`` (traces stored), ``total_original_size`` and
            ``total_compressed_size`` (bytes), ``avg_compression_ratio``
            (compressed / original bytes over all traces; smaller is better),
            ``per_type`` (per trace type: ``count``, ``original_size``,
            ``compressed_size``, ``compression_ratio``), ``dictionaries``
            (``version``, ``scope``, ``size``, ``n_samples``, ``active``),
            ``performance_deltas``, ``in_memory``, ``schema_version``, ``seq``.
        """
        return self._stats()

    async def get_compression_stats(self) -> dict[str, Any]:
        """Async :meth:`get_compression_stats_sync`."""
        return await asyncio.to_thread(self._stats)

    def apply_retention_sync(self) -> dict[str, Any]:
        """Apply the retention policy now.

        Flushes the queue, deletes from the database every trace older than
        ``retention_days`` (by the clock) whose priority is not above
        ``high_priority`` and whose type is not in ``keep_types`` (a tombstone
        row records each delete), gives the freed pages back (the file
        shrinks), then keeps at
        most ``max_memory_traces`` traces in RAM, dropping the lowest priority and
        then the oldest first; a dropped trace stays in the database.

        Returns
        -------
        dict
            ``cutoff`` (timestamp), ``expired`` (deleted), ``kept_high_priority``
            (older than the cutoff but kept), ``evicted_from_memory``,
            ``in_memory``, ``persisted`` (rows the flush committed),
            ``reclaimed_bytes`` (free pages given back to the file system) and
            ``seq``.
        """
        return self._retention()

    async def apply_retention(self) -> dict[str, Any]:
        """Async :meth:`apply_retention_sync`."""
        return await asyncio.to_thread(self._retention)

    def verify_sync(self) -> dict[str, Any]:
        """Check the whole database: pages, every row's checksum and blob, sequence numbers, counts, mark file.

        Returns
        -------
        dict
            ``ok``, ``traces``, ``deltas``, ``bad_traces`` (ids), ``bad_deltas``
            (row ids), ``missing_seqs`` (deleted rows' sequence numbers) and
            ``errors`` (one line per problem, naming it).
        """
        self._check_open()
        return self._verify()

    async def verify(self) -> dict[str, Any]:
        """Async :meth:`verify_sync`."""
        self._check_open()
        return await asyncio.to_thread(self._verify)

    def flush_sync(self) -> int:
        """Commit every queued trace and delta now; returns how many rows were written."""
        self._check_open()
        return self._flush()

    async def flush(self) -> int:
        """Async :meth:`flush_sync`."""
        self._check_open()
        return await asyncio.to_thread(self._flush)

    def _retrain_dictionaries(
        self, scopes: Iterable[TraceType | str] | None = None, n_samples: int = 2000
    ) -> Callable[[], dict[str, int]]:
        """Train new dictionary versions from the latest traces and re-encode with them.

        For each scope (a trace type, or ``"*"`` for the shared stream
        dictionary; default: every type) the latest ``n_samples`` traces train a
        new version, which becomes active; that type's traces are re-encoded with
        it. Older versions stay in the database. Returns ``{scope: traces
        re-encoded}`` for the scopes trained.
        """
        self._check_open()
        check_int("n_samples", n_samples, 8)
        return functools.partial(self._retrain, None if scopes is None else [str(s) for s in scopes], n_samples)

    retrain_dictionaries_sync, retrain_dictionaries = call_faces("retrain_dictionaries", _retrain_dictionaries)

    # alike in shape only to tiers/_log.py's close (lock, return if closed, flush, release): the
    # usual idempotent close, whose two locks and release are this class's own
    @guarded
    def _close(self) -> None:
        """The body of :meth:`close` and :meth:`aclose`: flush, then release the database and the RAM."""
        with self._db_lock:
            if self._closed:
                return
            try:
                self._flush()
            finally:
                with self._state_lock:
                    self._closed = True
                    self._memory.clear()
                    self._buckets.clear()
                self._disconnect()

    def close(self) -> None:
        """Flush the queue and close the database (idempotent)."""
        self._close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        await asyncio.to_thread(self._close)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._closed

    async def __aenter__(self) -> SymbolicTraceMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __len__(self) -> int:
        """Traces in RAM (the database may hold more)."""
        return len(self._memory)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._memory)} in memory, seq {self._seq}"
        return f"SymbolicTraceMemory({self.config['db_path']!r}, {state})"

"""SymbolicTraceMemory: typed, compressed, SQLite-backed traces of an evolving agent."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

from memstrata.errors import CorruptDataError, MemstrataError
from memstrata.traces._blob import ENC_JSON, ENC_MSGPACK, BlobCodec
from memstrata.traces._schema import SCHEMA_SQL, SCHEMA_VERSION
from memstrata.traces._types import (
    DEFAULT_PRIORITIES,
    CompressedTrace,
    PerformanceDelta,
    TraceType,
    _check_number,
)

__all__ = ["DEFAULT_CONFIG", "SymbolicTraceMemory"]

DEFAULT_CONFIG: dict[str, Any] = {
    "max_memory_traces": 10_000,
    "compression_threshold": 64,
    "retention_days": 30,
    "db_path": ":memory:",
    "durability": "normal",
    "flush_every": 1000,
    "flush_seconds": 1.0,
    "high_priority": 0.8,
    "zstd_level": 1,
    "dictionary_bytes": 16 * 1024,
    "train_after": 1000,
    "type_train_after": 500,
    "lower_is_better": (),
    "higher_is_better": (),
}
_SYNCHRONOUS = {"none": "OFF", "normal": "NORMAL", "full": "FULL"}
_STREAM = "*"  # scope of the dictionary shared by every trace type
_MAX_SAMPLE_BYTES = 16 * 1024
_DAY_SECONDS = 86_400.0

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode
_new = object.__new__
_DIRECTION_NAMES = ("improvement", "degradation", "neutral")  # by the small int the history query returns

_INSERT_TRACE = (
    "INSERT OR REPLACE INTO traces (trace_id, trace_type, compressed_data, compression_ratio, original_size,"
    " metadata, timestamp, retention_priority, seq, dictionary_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_LOG = (
    "INSERT INTO trace_log (trace_id, trace_type, compressed_data, compression_ratio, original_size,"
    " metadata, timestamp, retention_priority, seq, dictionary_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_DELTA = (
    "INSERT INTO performance_deltas (metric_name, old_value, new_value, delta_magnitude, delta_direction,"
    " confidence, context, timestamp, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TRACE_COLUMNS = (
    "trace_id, trace_type, compressed_data, compression_ratio, original_size, metadata, timestamp, retention_priority"
)


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many acyclic objects.

    Rows, blobs, traces and deltas built in bulk hold no reference cycles, yet
    their allocations trigger collections that traverse every object of the
    process (in an agent with large live state, most of the time spent). Pausing
    defers that to a single collection afterwards.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _check_int(name: str, value: Any, lo: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{name}: expected an int >= {lo}, got {type(value).__name__}")
    if value < lo:
        raise ValueError(f"{name}: expected an int >= {lo}, got {value}")
    return value


def _check_config(config: dict[str, Any] | None) -> dict[str, Any]:
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise TypeError(f"config: expected a dict or None, got {type(config).__name__}")
    unknown = sorted(set(config) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"config: unknown keys {unknown}; known keys: {sorted(DEFAULT_CONFIG)}")
    cfg = {**DEFAULT_CONFIG, **config}
    for key in ("max_memory_traces", "flush_every", "train_after", "type_train_after"):
        _check_int(key, cfg[key], 1)
    _check_int("compression_threshold", cfg["compression_threshold"], 0)
    _check_int("dictionary_bytes", cfg["dictionary_bytes"], 256)
    if type(cfg["zstd_level"]) is not int or not -7 <= cfg["zstd_level"] <= 22:
        raise ValueError(f"zstd_level: expected an int in [-7, 22], got {cfg['zstd_level']!r}")
    for key in ("retention_days", "flush_seconds"):
        value = _check_number(key, cfg[key])
        if value < 0:
            raise ValueError(f"{key}: expected a number >= 0, got {value}")
        cfg[key] = value
    hp = _check_number("high_priority", cfg["high_priority"])
    if not 0.0 <= hp <= 1.0:
        raise ValueError(f"high_priority: expected a number in [0, 1], got {hp}")
    cfg["high_priority"] = hp
    if cfg["durability"] not in _SYNCHRONOUS:
        raise ValueError(f"durability: expected one of {sorted(_SYNCHRONOUS)}, got {cfg['durability']!r}")
    if not isinstance(cfg["db_path"], (str, os.PathLike)):
        raise TypeError(f"db_path: expected a str or path, got {type(cfg['db_path']).__name__}")
    for key in ("lower_is_better", "higher_is_better"):
        names = cfg[key]
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"{key}: expected a list of metric names, got {names!r}")
        cfg[key] = frozenset(names)
    return cfg


_TRACE_TYPES: dict[Any, TraceType] = {t.value: t for t in TraceType}
_TYPE_INFO: dict[str, tuple[TraceType, str, float]] = {t.value: (t, t.value, DEFAULT_PRIORITIES[t]) for t in TraceType}


def _trace_type(value: Any) -> TraceType:
    if type(value) is TraceType:
        return value
    found = _TRACE_TYPES.get(str(value)) if isinstance(value, str) else None
    if found is not None:
        return found
    try:
        return TraceType(value)
    except ValueError:
        known = ", ".join(t.value for t in TraceType)
        raise ValueError(f"trace_type: expected a TraceType or one of {known}; got {value!r}") from None


def _encode_json_object(name: str, value: Any) -> str:
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        raise TypeError(f"{name}: expected a dict or None, got {type(value).__name__}")
    if not value:
        return "{}"
    try:
        raw = _json_encode(value)
        exact = _json_decode(raw) == value
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError, msgspec.DecodeError) as exc:
        raise TypeError(f"{name}: expected a JSON-safe dict ({exc})") from None
    if not exact:  # sets, tuples, bytes, non-str keys, NaN ... would come back changed
        raise TypeError(
            f"{name}: expected a JSON-safe dict (str keys; str, int, float, bool, None, list and dict values), "
            "got one JSON would change"
        )
    return raw.decode()


def _decode_json_object(text: str) -> dict[str, Any]:
    if text == "{}":
        return {}
    try:
        return _json_decode(text)
    except msgspec.DecodeError as exc:
        raise CorruptDataError(f"traces: unreadable JSON column ({exc})") from None


_codecs: Any = None  # memstrata.codecs, imported on first use (it brings numpy)


def _serialize(data: Any) -> tuple[int, bytes]:
    """JSON when it carries ``data`` exactly (it compresses best), else msgpack."""
    global _codecs
    if _codecs is None:
        import memstrata.codecs

        _codecs = memstrata.codecs
    try:
        raw = _json_encode(data)
        if _codecs.is_plain_json(data, raw):
            return ENC_JSON, raw
    except Exception:  # noqa: BLE001 - anything JSON cannot carry goes to msgpack
        pass

    try:
        return ENC_MSGPACK, _codecs.serialize(data)
    except TypeError as exc:
        raise TypeError(f"data: {exc}") from None


class SymbolicTraceMemory:
    """Typed, compressed traces of an evolving agent, kept in SQLite by priority.

    Parameters
    ----------
    config : dict, optional
        ``max_memory_traces`` (10,000): traces kept in RAM (by priority, then
        recency) besides the database; ``compression_threshold`` (64): serialized
        traces shorter than this many bytes are stored uncompressed;
        ``retention_days`` (30); ``db_path`` (``":memory:"``); ``durability``
        (``"normal"``): SQLite ``synchronous`` level, ``"none"``, ``"normal"`` or
        ``"full"`` (fsync on every commit); ``flush_every`` (1000) and
        ``flush_seconds`` (1.0): the batching of non-urgent writes (below);
        ``high_priority`` (0.8); ``zstd_level`` (1: with a trained dictionary it
        compresses traces as small as level 3, faster); ``dictionary_bytes``
        (16 KiB); ``train_after`` (1000) and ``type_train_after`` (500): when the
        stream and per-type zstd dictionaries are trained; ``lower_is_better`` /
        ``higher_is_better``: metric names whose direction this memory fixes.
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
        cfg = _check_config(config)
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
        self._active: dict[str, int] = {}  # scope -> dictionary version in use
        self._samples: dict[str, list[bytes]] = {}  # scope -> samples, for scopes without a dictionary
        self._n_dictionaries = 0
        self._n_logged = 0  # urgent rows in trace_log since the last flush
        self._train_at: dict[str, int] = {}  # scope -> samples needed, raised after a failed training
        self._closed = False
        import sqlite3

        path = cfg["db_path"]
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._open_schema(str(path))
        except BaseException:
            self._conn.close()
            raise

    # ----------------------------------------------------------- opening --

    def _open_schema(self, path: str) -> None:
        conn = self._conn
        if path != ":memory:" and not path.startswith("file::memory:"):
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={_SYNCHRONOUS[self.config['durability']]}")
        row = None
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except Exception:  # noqa: BLE001 - no meta table yet: a new database
            row = None
        if row is not None and row[0] != SCHEMA_VERSION:
            raise MemstrataError(
                f"db_path: trace database has schema version {row[0]}; this memstrata reads version "
                f"{SCHEMA_VERSION} (upgrade memstrata, or migrate the database)"
            )
        conn.executescript("BEGIN;" + SCHEMA_SQL + "COMMIT;")
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('seq', 0)")
        # replay urgent traces a crash left in the log (a newer row of the same id wins)
        conn.executescript(
            "BEGIN IMMEDIATE;"
            "INSERT OR REPLACE INTO traces (trace_id, trace_type, compressed_data, compression_ratio, original_size,"
            " metadata, timestamp, retention_priority, seq, dictionary_version)"
            " SELECT trace_id, trace_type, compressed_data, compression_ratio, original_size, metadata, timestamp,"
            " retention_priority, seq, dictionary_version FROM trace_log AS l WHERE NOT EXISTS"
            " (SELECT 1 FROM traces AS t WHERE t.trace_id = l.trace_id AND t.seq >= l.seq) ORDER BY seq;"
            "DELETE FROM trace_log;"
            "COMMIT;"
        )
        # every mutation's row carries its sequence number; ``meta.seq`` is raised
        # only when rows leave (retention), so the latest is the largest of all
        self._seq = max(
            int(conn.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {table}").fetchone()[0])
            for table in ("traces", "performance_deltas", "dictionaries", "tombstones", "trace_log")
        )
        self._seq = max(self._seq, int(conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0]))
        for version, scope, dig, dictionary in conn.execute(
            "SELECT version, scope, digest, dictionary FROM dictionaries ORDER BY version"
        ):
            self._codec.add_dictionary(version, dictionary, dig)
            if self._codec.has_dictionary(version):
                self._active[scope] = version
            self._n_dictionaries = max(self._n_dictionaries, version)
        # reload training samples for scopes still without a dictionary
        for scope in [_STREAM, *(t.value for t in TraceType)]:
            if scope in self._active:
                continue
            if scope == _STREAM:
                limit = self.config["train_after"]
                rows = conn.execute(
                    "SELECT compressed_data FROM traces ORDER BY seq DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                limit = self.config["type_train_after"]
                rows = conn.execute(
                    "SELECT compressed_data FROM traces WHERE trace_type = ? ORDER BY seq DESC LIMIT ?", (scope, limit)
                ).fetchall()
            samples = []
            for (blob,) in rows:
                try:
                    samples.append(self._codec.decode(blob)[1])
                except CorruptDataError:
                    continue  # reported when that trace is read, not here
            self._samples[scope] = samples

    @property
    def schema_version(self) -> int:
        """The schema version of the database (:data:`memstrata.traces.SCHEMA_VERSION`)."""
        return SCHEMA_VERSION

    @property
    def seq(self) -> int:
        """The sequence number of the latest mutation (trace, delta, dictionary or delete)."""
        return self._seq

    def _check_open(self) -> None:
        if self._closed:
            raise MemstrataError("SymbolicTraceMemory: the memory is closed")

    # ------------------------------------------------------------ writing --

    def _store(
        self,
        trace_id: str,
        data: Any,
        trace_type: Any,
        metadata: dict[str, Any] | None,
        priority: float | None,
        timestamp: float | None,
    ) -> tuple[CompressedTrace, list[Any], float]:
        """Check, serialize and compress one trace: ``(trace, row, now)``; no I/O.

        This is the per-trace hot path: no locks unless training samples are
        still being collected (the zstd contexts are per thread).
        """
        if type(trace_id) is not str or not trace_id:
            raise TypeError(f"trace_id: expected a non-empty str, got {trace_id!r}")
        # keyed by plain str: hashing an Enum member runs Python code
        info = _TYPE_INFO.get(trace_type) if type(trace_type) is str else None
        if info is None:
            info = _TYPE_INFO[_trace_type(trace_type)._value_]
        ttype, tvalue, default_priority = info
        meta_text = "{}" if metadata is None else _encode_json_object("metadata", metadata)
        if priority is None:
            priority = default_priority
        else:
            priority = _check_number("priority", priority)
            if not 0.0 <= priority <= 1.0:
                raise ValueError(f"priority: expected a number in [0, 1], got {priority}")
        now = self._clock()
        ts = now if timestamp is None else _check_number("timestamp", timestamp)
        encoding, raw = _serialize(data)
        n = len(raw)
        active = self._active
        blob, version = self._codec.encode(raw, encoding, active.get(tvalue) or active.get(_STREAM, 0))
        if self._samples and n <= _MAX_SAMPLE_BYTES:
            self._sample(tvalue, raw)
        ratio = len(blob) / n if n else 1.0
        trace = _new(CompressedTrace)
        trace.__dict__ = {
            "trace_id": trace_id, "trace_type": ttype, "compressed_data": blob, "compression_ratio": ratio,
            "original_size": n, "metadata": {} if metadata is None else metadata, "timestamp": ts,
            "retention_priority": priority,
        }
        return trace, [trace_id, tvalue, blob, ratio, n, meta_text, ts, priority, 0, version], now

    def _sample(self, tvalue: str, raw: bytes) -> None:
        """Keep ``raw`` as a training sample for its type and the stream, while they lack a dictionary."""
        with self._state_lock:
            samples, active = self._samples, self._active
            if tvalue not in active:
                s = samples.get(tvalue)
                if s is None:
                    s = samples[tvalue] = []
                if len(s) < self._train_threshold(tvalue):
                    s.append(raw)
            if _STREAM not in active:
                s = samples.setdefault(_STREAM, [])
                if len(s) < self._train_threshold(_STREAM):
                    s.append(raw)

    def _enqueue(self, trace: CompressedTrace, row: list[Any], now: float, log: bool = True) -> bool:
        """Queue a prepared trace; returns whether a flush is due.

        An urgent trace (priority above ``high_priority``) is also appended to
        ``trace_log`` and committed before this returns: one append to an
        unindexed table, instead of committing the whole queue into the indexed
        ``traces`` table. The next flush moves it into ``traces``; opening the
        database replays what a crash left in the log.
        """
        priority = trace.retention_priority
        urgent = log and priority > self._high
        if urgent:
            self._db_lock.acquire()  # no flush may take the row between queueing and logging it
        try:
            with self._state_lock:
                if self._closed:
                    self._check_open()
                self._seq += 1
                row[8] = self._seq
                trace_id = row[0]
                memory = self._memory
                if trace_id in memory:
                    self._forget(trace_id)  # a re-stored id becomes the most recent
                memory[trace_id] = frozen = tuple(row)
                bucket = self._buckets.get(priority)
                if bucket is None:
                    bucket = self._buckets[priority] = {}
                bucket[trace_id] = None
                pending = self._pending_traces
                pending.append(frozen)
                since = self._pending_since
                if since is None:
                    self._pending_since = since = now
                due = (
                    len(pending) + len(self._pending_deltas) >= self._flush_every
                    or now - since >= self._flush_seconds
                    or len(memory) > self._trim_at
                )
            if urgent:
                self._conn.execute(_INSERT_LOG, row)
                self._n_logged += 1
        finally:
            if urgent:
                self._db_lock.release()
        return due

    def _due(self, now: float) -> bool:
        """Queue the write's arrival; whether the batching rule asks for a flush now."""
        since = self._pending_since
        if since is None:
            self._pending_since = since = now
        return len(self._pending_traces) + len(self._pending_deltas) >= self._flush_every or (
            now - since >= self._flush_seconds
        )

    def _delta(
        self,
        metric_name: str,
        old_value: float,
        new_value: float,
        context: dict[str, Any] | None,
        confidence: float,
        lower_is_better: bool | None,
    ) -> tuple[PerformanceDelta, bool]:
        if not isinstance(metric_name, str) or not metric_name:
            raise TypeError(f"metric_name: expected a non-empty str, got {metric_name!r}")
        if lower_is_better is None:
            if metric_name in self.config["lower_is_better"]:
                lower_is_better = True
            elif metric_name in self.config["higher_is_better"]:
                lower_is_better = False
        ctx_text = _encode_json_object("context", context)
        with self._state_lock:
            self._check_open()
            delta = PerformanceDelta.compute(
                metric_name, old_value, new_value, confidence=confidence, context=context,
                timestamp=self._clock(), lower_is_better=lower_is_better,
            )
            self._seq += 1
            self._pending_deltas.append(
                (metric_name, delta.old_value, delta.new_value, delta.delta_magnitude, delta.delta_direction,
                 delta.confidence, ctx_text, delta.timestamp, self._seq)
            )
            return delta, self._due(delta.timestamp)

    def _flush(self) -> int:
        """Commit the queue (and train due dictionaries) in one transaction; rows written."""
        with self._db_lock:
            with self._state_lock:
                if self._closed and not self._pending_traces and not self._pending_deltas:
                    return 0
                traces, deltas = self._pending_traces, self._pending_deltas
                self._pending_traces, self._pending_deltas, self._pending_since = [], [], None
                due = self._due_training()
            if not traces and not deltas and not due:
                self._trim_memory()
                return 0
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                if traces:
                    conn.executemany(_INSERT_TRACE, traces)
                if deltas:
                    conn.executemany(_INSERT_DELTA, deltas)
                if self._n_logged and traces:  # the urgent rows are in ``traces`` now
                    conn.execute("DELETE FROM trace_log WHERE seq <= ?", (traces[-1][8],))
                tried: set[str] = set()
                while due:  # the stream dictionary first, then the types it makes eligible
                    for scope in due:
                        tried.add(scope)
                        self._train(scope)
                    with self._state_lock:
                        due = [scope for scope in self._due_training() if scope not in tried]
                conn.execute("COMMIT")
                self._n_logged = 0
            except BaseException:
                conn.execute("ROLLBACK")
                with self._state_lock:  # nothing is lost: the rows go back to the front of the queue
                    self._pending_traces[:0] = traces
                    self._pending_deltas[:0] = deltas
                    if self._pending_since is None:
                        self._pending_since = self._clock()
                raise
            self._trim_memory()
            return len(traces) + len(deltas)

    # ------------------------------------------------------- dictionaries --

    def _due_training(self) -> list[str]:
        due = []
        for scope, samples in self._samples.items():
            if scope in self._active:
                continue
            if scope != _STREAM and _STREAM not in self._active:
                continue  # per-type dictionaries are measured against the stream's
            if len(samples) >= self._train_threshold(scope):
                due.append(scope)
        due.sort(key=lambda s: s != _STREAM)  # the stream dictionary first
        return due

    def _train(self, scope: str) -> None:
        """Train ``scope``'s dictionary, store it, re-encode older traces; inside a transaction.

        A per-type dictionary is adopted only if it compresses that type's samples
        smaller than the stream dictionary does; otherwise (and when zstd cannot
        train on the samples) training is retried with twice as many samples.
        """
        from memstrata.codecs import get_dictionary, train_dictionary

        with self._state_lock:
            samples = self._samples.get(scope, [])
        size = min(self.config["dictionary_bytes"], max(1024, sum(map(len, samples)) // 8))
        try:
            dictionary = get_dictionary(train_dictionary(samples, size, level=self.config["zstd_level"]))
        except ValueError:
            dictionary = None
        with self._state_lock:
            version = self._n_dictionaries + 1
            stream = self._active.get(_STREAM, 0)
        adopted = dictionary is not None
        if dictionary is not None and scope != _STREAM:
            codec = self._codec
            codec.add_dictionary(version, dictionary)
            mine = sum(len(codec.encode(x, ENC_JSON, version)[0]) for x in samples)
            adopted = mine < sum(len(codec.encode(x, ENC_JSON, stream)[0]) for x in samples)
            codec.remove_dictionary(version)
        if not adopted or dictionary is None:
            with self._state_lock:
                self._train_at[scope] = 2 * max(len(samples), 1)
            return
        with self._state_lock:
            self._samples.pop(scope, None)
            self._n_dictionaries = version
            self._seq += 1
            seq = self._seq
            dig = self._codec.add_dictionary(version, dictionary)
        self._conn.execute(
            "INSERT INTO dictionaries (version, scope, digest, dictionary, n_samples, created, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (version, scope, dig, dictionary, len(samples), self._clock(), seq),
        )
        with self._state_lock:
            self._active[scope] = version
        self._reencode(scope, version)

    def _train_threshold(self, scope: str) -> int:
        found = self._train_at.get(scope)
        if found is not None:
            return found
        return self.config["train_after"] if scope == _STREAM else self.config["type_train_after"]

    def _reencode(self, scope: str, version: int) -> int:
        """Re-encode the stored traces a new dictionary now covers; returns how many changed."""
        if scope == _STREAM:
            owned = [s for s in self._active if s != _STREAM]
            sql = "SELECT trace_id, compressed_data FROM traces WHERE dictionary_version = 0"
            if owned:
                sql += f" AND trace_type NOT IN ({', '.join('?' * len(owned))})"
            rows = self._conn.execute(sql, owned).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT trace_id, compressed_data FROM traces WHERE trace_type = ? AND dictionary_version != ?",
                (scope, version),
            ).fetchall()
        updates = []
        for trace_id, blob in rows:
            try:
                encoding, raw = self._codec.decode(blob)
            except CorruptDataError:
                continue  # leave damaged rows as they are: reads report them
            new_blob, used = self._codec.encode(raw, encoding, version)
            if used == version and len(new_blob) < len(blob):
                updates.append((new_blob, len(new_blob) / len(raw), used, trace_id))
        if updates:
            self._conn.executemany(
                "UPDATE traces SET compressed_data = ?, compression_ratio = ?, dictionary_version = ?"
                " WHERE trace_id = ?",
                updates,
            )
            with self._state_lock:
                memory = self._memory
                for new_blob, ratio, version, trace_id in updates:
                    old = memory.get(trace_id)
                    if old is not None:
                        memory[trace_id] = (*old[:2], new_blob, ratio, *old[4:9], version)
        return len(updates)

    def _retrain(self, scopes: Iterable[str] | None, n_samples: int) -> dict[str, int]:
        from memstrata.codecs import get_dictionary, train_dictionary

        self._flush()
        if scopes is None:
            scopes = [t.value for t in TraceType]
        wanted = [_trace_type(s).value if s != _STREAM else _STREAM for s in scopes]
        report: dict[str, int] = {}
        with self._db_lock:
            conn = self._conn
            for scope in wanted:
                if scope == _STREAM:
                    rows = conn.execute("SELECT compressed_data FROM traces ORDER BY seq DESC LIMIT ?", (n_samples,))
                else:
                    rows = conn.execute(
                        "SELECT compressed_data FROM traces WHERE trace_type = ? ORDER BY seq DESC LIMIT ?",
                        (scope, n_samples),
                    )
                samples = []
                for (blob,) in rows.fetchall():
                    try:
                        samples.append(self._codec.decode(blob)[1])
                    except CorruptDataError:
                        continue
                size = min(self.config["dictionary_bytes"], max(1024, sum(map(len, samples)) // 8))
                try:
                    dictionary = get_dictionary(train_dictionary(samples, size, level=self.config["zstd_level"]))
                except ValueError:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    with self._state_lock:
                        self._n_dictionaries += 1
                        version = self._n_dictionaries
                        self._seq += 1
                        seq = self._seq
                        dig = self._codec.add_dictionary(version, dictionary)
                    conn.execute(
                        "INSERT INTO dictionaries (version, scope, digest, dictionary, n_samples, created, seq)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (version, scope, dig, dictionary, len(samples), self._clock(), seq),
                    )
                    with self._state_lock:
                        previous = self._active.get(scope)
                        self._active[scope] = version
                    try:
                        report[scope] = self._reencode(scope, version)
                    except BaseException:
                        with self._state_lock:
                            if previous is None:
                                self._active.pop(scope, None)
                            else:
                                self._active[scope] = previous
                        raise
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        return report

    # ------------------------------------------------------------- memory --

    def _forget(self, trace_id: str) -> None:
        """Drop a trace from RAM (caller holds the state lock)."""
        old = self._memory.pop(trace_id, None)
        if old is not None:
            bucket = self._buckets[old[7]]
            del bucket[trace_id]
            if not bucket:
                del self._buckets[old[7]]

    def _trim_memory(self, limit: int | None = None) -> int:
        """Drop persisted traces from RAM down to ``max_memory_traces``: lowest priority, then oldest, first.

        Without ``limit`` this only runs once RAM holds 10 % more than the
        maximum, so its cost (proportional to the traces dropped) is shared by
        many writes.
        """
        with self._state_lock:
            memory = self._memory
            keep = self._max_memory if limit is None else limit
            if len(memory) <= (self._trim_at if limit is None else keep):
                return 0
            queued = {row[0] for row in self._pending_traces}  # never drop what is not yet persisted
            n_drop = len(memory) - keep
            victims: list[str] = []
            for priority in sorted(self._buckets):
                for trace_id in self._buckets[priority]:  # oldest first
                    if trace_id not in queued:
                        victims.append(trace_id)
                        if len(victims) >= n_drop:
                            break
                if len(victims) >= n_drop:
                    break
            for trace_id in victims:
                self._forget(trace_id)
            return len(victims)

    # ------------------------------------------------------------ reading --

    def _decode(self, blob: Any) -> Any:
        encoding, raw = self._codec.decode(blob)
        try:
            if encoding == ENC_JSON:
                return _json_decode(raw)
        except msgspec.DecodeError as exc:
            raise CorruptDataError(f"trace blob: verified JSON that does not parse ({exc})") from None
        from memstrata.codecs import deserialize

        return deserialize(raw)

    def _get(self, trace_id: str) -> Any:
        if type(trace_id) is not str:
            raise TypeError(f"trace_id: expected a str, got {type(trace_id).__name__}")
        with self._state_lock:
            self._check_open()
            row = self._memory.get(trace_id)
        if row is not None:
            return self._decode(row[2])
        with self._db_lock:
            self._check_open()
            row = self._conn.execute("SELECT compressed_data FROM traces WHERE trace_id = ?", (trace_id,)).fetchone()
        return None if row is None else self._decode(row[0])

    def _query_traces(
        self,
        type: Any,  # noqa: A002 - the documented keyword
        since: float | None,
        until: float | None,
        limit: int | None,
        newest_first: bool,
    ) -> list[CompressedTrace]:
        where: list[str] = []
        args: list[Any] = []
        if type is not None:
            where.append("trace_type = ?")
            args.append(_trace_type(type).value)
        if since is not None:
            where.append("timestamp >= ?")
            args.append(_check_number("since", since))
        if until is not None:
            where.append("timestamp <= ?")
            args.append(_check_number("until", until))
        sql = f"SELECT {_TRACE_COLUMNS} FROM traces"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY timestamp DESC, seq DESC" if newest_first else " ORDER BY timestamp, seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(_check_int("limit", limit, 0))
        self._flush()
        with self._db_lock:
            self._check_open()
            rows = self._conn.execute(sql, args).fetchall()
        out = []
        for trace_id, ttype, blob, ratio, n, meta, ts, priority in rows:
            trace = _new(CompressedTrace)
            trace.__dict__.update(
                trace_id=trace_id, trace_type=_trace_type(ttype), compressed_data=blob, compression_ratio=ratio,
                original_size=n, metadata=_decode_json_object(meta), timestamp=ts,
                retention_priority=1.0 if priority is None else priority,
            )
            out.append(trace)
        return out

    def _history(self, metric_name: str, since: float | None) -> list[PerformanceDelta]:
        if not isinstance(metric_name, str) or not metric_name:
            raise TypeError(f"metric_name: expected a non-empty str, got {metric_name!r}")
        # the direction comes back as a small int (no string per row) and maps to
        # the interned names; contexts are mostly small JSON objects
        sql = (
            "SELECT old_value, new_value, delta_magnitude, CASE delta_direction WHEN 'improvement' THEN 0"
            " WHEN 'degradation' THEN 1 WHEN 'neutral' THEN 2 ELSE 3 END, confidence, context, timestamp"
            " FROM performance_deltas WHERE metric_name = ?"
        )
        args: tuple[Any, ...] = (metric_name,)
        if since is not None:
            sql += " AND timestamp >= ?"
            args = (metric_name, _check_number("since", since))
        sql += " ORDER BY timestamp, id"
        self._flush()
        with self._db_lock, _no_gc():
            self._check_open()
            rows = self._conn.execute(sql, args).fetchall()
        # rows were validated when written: build the objects without re-validating
        new, cls, decode, names = _new, PerformanceDelta, _json_decode, _DIRECTION_NAMES
        out: list[PerformanceDelta] = []
        append = out.append
        try:
            with _no_gc():
                for old, newv, mag, direction, conf, ctx, ts in rows:
                    d = new(cls)
                    d.__dict__ = {
                        "metric_name": metric_name, "old_value": old, "new_value": newv, "delta_magnitude": mag,
                        "delta_direction": names[direction], "confidence": conf,
                        "context": {} if ctx == "{}" else decode(ctx), "timestamp": ts,
                    }
                    append(d)
        except (IndexError, TypeError, msgspec.DecodeError) as exc:
            raise CorruptDataError(f"performance_deltas: a row of {metric_name!r} is not readable ({exc!r})") from None
        return out

    def _fitness(self) -> list[dict[str, Any]]:
        points = []
        for trace in self._query_traces(TraceType.FITNESS_EVOLUTION, None, None, None, False):
            data = self._decode(trace.compressed_data)
            if isinstance(data, dict) and "generation" in data:
                points.append({"generation": data["generation"], "timestamp": trace.timestamp,
                               "fitness": data.get("fitness")})
        points.sort(key=lambda p: (p["generation"], p["timestamp"]))
        return points

    def _stats(self) -> dict[str, Any]:
        self._flush()
        with self._db_lock:
            self._check_open()
            rows = self._conn.execute(
                "SELECT trace_type, COUNT(*), SUM(original_size), SUM(length(compressed_data)) FROM traces"
                " GROUP BY trace_type ORDER BY trace_type"
            ).fetchall()
            dicts = self._conn.execute(
                "SELECT version, scope, length(dictionary), n_samples FROM dictionaries ORDER BY version"
            ).fetchall()
            n_deltas = self._conn.execute("SELECT COUNT(*) FROM performance_deltas").fetchone()[0]
        per_type = {
            t: {"count": c, "original_size": o, "compressed_size": z, "compression_ratio": z / o if o else 0.0}
            for t, c, o, z in rows
        }
        total_o = sum(v["original_size"] for v in per_type.values())
        total_z = sum(v["compressed_size"] for v in per_type.values())
        with self._state_lock:
            active = dict(self._active)
            n_memory = len(self._memory)
        return {
            "total_compressions": sum(v["count"] for v in per_type.values()),
            "total_original_size": total_o,
            "total_compressed_size": total_z,
            "avg_compression_ratio": total_z / total_o if total_o else 0.0,
            "per_type": per_type,
            "dictionaries": [
                {"version": v, "scope": s, "size": n, "n_samples": k, "active": active.get(s) == v}
                for v, s, n, k in dicts
            ],
            "performance_deltas": n_deltas,
            "in_memory": n_memory,
            "schema_version": SCHEMA_VERSION,
            "seq": self._seq,
        }

    def _retention(self) -> dict[str, Any]:
        persisted = self._flush()
        now = self._clock()
        cutoff = now - self.config["retention_days"] * _DAY_SECONDS
        with self._db_lock:
            self._check_open()
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                expired = [
                    r[0]
                    for r in conn.execute(
                        "SELECT trace_id FROM traces WHERE timestamp < ? AND COALESCE(retention_priority, 1.0) <= ?"
                        " ORDER BY timestamp",
                        (cutoff, self._high),
                    )
                ]
                kept = conn.execute(
                    "SELECT COUNT(*) FROM traces WHERE timestamp < ? AND COALESCE(retention_priority, 1.0) > ?",
                    (cutoff, self._high),
                ).fetchone()[0]
                with self._state_lock:
                    first = self._seq + 1
                    self._seq += len(expired)
                    seq = self._seq
                # tombstones first, in the same transaction as the delete, so a
                # backup or an audit can prove what retention removed
                conn.executemany(
                    "INSERT INTO tombstones (trace_id, seq, deleted_at, reason) VALUES (?, ?, ?, 'retention')",
                    [(tid, first + i, now) for i, tid in enumerate(expired)],
                )
                conn.executemany("DELETE FROM traces WHERE trace_id = ?", [(tid,) for tid in expired])
                conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        with self._state_lock:
            for tid in expired:
                self._forget(tid)
        evicted = self._trim_memory(self._max_memory)
        with self._state_lock:
            n_memory = len(self._memory)
        return {
            "cutoff": cutoff,
            "expired": len(expired),
            "kept_high_priority": kept,
            "evicted_from_memory": evicted,
            "in_memory": n_memory,
            "persisted": persisted,
            "seq": self._seq,
        }

    def _close(self) -> None:
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
                self._conn.close()

    # ========================================================= public API ==
    # Each operation: an ``async def`` and a ``*_sync`` twin with the same result.

    def store_compressed_trace_sync(
        self,
        trace_id: str,
        data: Any,
        trace_type: TraceType | str = TraceType.SYMBOLIC_OPERATION,
        metadata: dict[str, Any] | None = None,
        *,
        priority: float | None = None,
        timestamp: float | None = None,
    ) -> CompressedTrace:
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
        if self._enqueue(trace, row, now):
            self._flush()
        return trace

    async def store_compressed_trace(
        self,
        trace_id: str,
        data: Any,
        trace_type: TraceType | str = TraceType.SYMBOLIC_OPERATION,
        metadata: dict[str, Any] | None = None,
        *,
        priority: float | None = None,
        timestamp: float | None = None,
    ) -> CompressedTrace:
        """Async :meth:`store_compressed_trace_sync` (commits run in a worker thread)."""
        trace, row, now = self._store(trace_id, data, trace_type, metadata, priority, timestamp)
        if trace.retention_priority > self._high:
            due = await asyncio.to_thread(self._enqueue, trace, row, now)
        else:
            due = self._enqueue(trace, row, now)
        if due:
            await asyncio.to_thread(self._flush)
        return trace

    def _store_many(self, items: Iterable[Any]) -> tuple[list[CompressedTrace], bool]:
        """Prepare and queue many traces; whether a flush must follow (urgent or due)."""
        if isinstance(items, (str, bytes, dict)):
            raise TypeError(f"items: expected an iterable of (trace_id, data, ...) tuples or dicts, got {type(items).__name__}")
        with _no_gc():
            return self._store_many_items(items)

    def _store_many_items(self, items: Iterable[Any]) -> tuple[list[CompressedTrace], bool]:
        prepared = []
        for i, item in enumerate(items):
            if isinstance(item, dict):
                unknown = set(item) - {"trace_id", "data", "trace_type", "metadata", "priority", "timestamp"}
                if unknown or "trace_id" not in item or "data" not in item:
                    raise ValueError(
                        f"items[{i}]: expected keys trace_id, data and optionally trace_type, metadata, priority, "
                        f"timestamp; got {sorted(item)}"
                    )
                args = (item["trace_id"], item["data"], item.get("trace_type", TraceType.SYMBOLIC_OPERATION),
                        item.get("metadata"), item.get("priority"), item.get("timestamp"))
            elif isinstance(item, (tuple, list)) and 2 <= len(item) <= 4:
                args = (*item, *(TraceType.SYMBOLIC_OPERATION, None)[len(item) - 2:], None, None)
            else:
                raise TypeError(f"items[{i}]: expected a (trace_id, data[, trace_type[, metadata]]) tuple or a dict")
            prepared.append(self._store(*args))
        if not prepared:
            return [], False
        high = self._high
        with self._state_lock:  # one acquisition for the whole batch
            if self._closed:
                self._check_open()
            memory, buckets, pending = self._memory, self._buckets, self._pending_traces
            urgent = False
            for trace, row, _ in prepared:
                self._seq += 1
                row[8] = self._seq
                trace_id = row[0]
                if trace_id in memory:
                    self._forget(trace_id)
                memory[trace_id] = frozen = tuple(row)
                priority = row[7]
                bucket = buckets.get(priority)
                if bucket is None:
                    bucket = buckets[priority] = {}
                bucket[trace_id] = None
                pending.append(frozen)
                if priority > high:
                    urgent = True
            now = prepared[-1][2]
            if self._pending_since is None:
                self._pending_since = prepared[0][2]
            due = (
                len(pending) + len(self._pending_deltas) >= self._flush_every
                or now - self._pending_since >= self._flush_seconds
                or len(memory) > self._trim_at
            )
        return [p[0] for p in prepared], urgent or due

    def store_compressed_traces_sync(self, items: Iterable[Any]) -> list[CompressedTrace]:
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
        if flush:
            self._flush()
        return traces

    async def store_compressed_traces(self, items: Iterable[Any]) -> list[CompressedTrace]:
        """Async :meth:`store_compressed_traces_sync`."""
        traces, flush = self._store_many(items)
        if flush:
            await asyncio.to_thread(self._flush)
        return traces

    def log_performance_delta_sync(
        self,
        metric_name: str,
        old_value: float,
        new_value: float,
        context: dict[str, Any] | None = None,
        confidence: float = 1.0,
        *,
        lower_is_better: bool | None = None,
    ) -> PerformanceDelta:
        """Record a metric change in ``performance_deltas``; returns the delta.

        The direction is "improvement" when the value rose, or fell for a
        lower-is-better metric (``lower_is_better``, else the config lists, else
        :func:`~memstrata.traces.is_lower_better`). NaN or infinite values and a
        confidence outside ``[0, 1]`` raise ``ValueError``. Queued like a
        non-urgent trace.
        """
        delta, flush = self._delta(metric_name, old_value, new_value, context, confidence, lower_is_better)
        if flush:
            self._flush()
        return delta

    async def log_performance_delta(
        self,
        metric_name: str,
        old_value: float,
        new_value: float,
        context: dict[str, Any] | None = None,
        confidence: float = 1.0,
        *,
        lower_is_better: bool | None = None,
    ) -> PerformanceDelta:
        """Async :meth:`log_performance_delta_sync`."""
        delta, flush = self._delta(metric_name, old_value, new_value, context, confidence, lower_is_better)
        if flush:
            await asyncio.to_thread(self._flush)
        return delta

    @staticmethod
    def _fitness_args(generation: Any, fitness_data: Any) -> tuple[str, dict[str, Any]]:
        _check_int("generation", generation, 0)
        if not isinstance(fitness_data, dict):
            raise TypeError(f"fitness_data: expected a dict, got {type(fitness_data).__name__}")
        return f"fitness_evo:{generation}", {"generation": generation, "fitness": fitness_data}

    def log_fitness_evolution_sync(self, generation: int, fitness_data: dict[str, Any]) -> CompressedTrace:
        """Store a generation's fitness statistics as a ``fitness_evo`` trace.

        The trace id is ``"fitness_evo:<generation>"`` (logging a generation again
        replaces it); :meth:`fitness_evolution_sync` reads them back in order.
        """
        trace_id, data = self._fitness_args(generation, fitness_data)
        return self.store_compressed_trace_sync(trace_id, data, TraceType.FITNESS_EVOLUTION,
                                                {"generation": generation})

    async def log_fitness_evolution(self, generation: int, fitness_data: dict[str, Any]) -> CompressedTrace:
        """Async :meth:`log_fitness_evolution_sync`."""
        trace_id, data = self._fitness_args(generation, fitness_data)
        return await self.store_compressed_trace(trace_id, data, TraceType.FITNESS_EVOLUTION,
                                                 {"generation": generation})

    @staticmethod
    def _id(name: str, value: Any, prefix: str) -> str:
        if type(value) is not str or not value:
            raise TypeError(f"{name}: expected a non-empty str, got {value!r}")
        return f"{prefix}:{value}"

    def log_benchmark_result_sync(self, benchmark_id: str, result_data: Any) -> CompressedTrace:
        """Store a benchmark result as the ``benchmark`` trace ``"benchmark:<benchmark_id>"``."""
        return self.store_compressed_trace_sync(
            self._id("benchmark_id", benchmark_id, "benchmark"), result_data, TraceType.BENCHMARK_RESULT,
            {"benchmark_id": benchmark_id},
        )

    async def log_benchmark_result(self, benchmark_id: str, result_data: Any) -> CompressedTrace:
        """Async :meth:`log_benchmark_result_sync`."""
        return await self.store_compressed_trace(
            self._id("benchmark_id", benchmark_id, "benchmark"), result_data, TraceType.BENCHMARK_RESULT,
            {"benchmark_id": benchmark_id},
        )

    def log_breakthrough_sync(self, breakthrough_id: str, breakthrough_data: Any) -> CompressedTrace:
        """Store a breakthrough (priority 1.0: committed before this returns, never expired by age).

        The trace id is ``"breakthrough:<breakthrough_id>"``.
        """
        return self.store_compressed_trace_sync(
            self._id("breakthrough_id", breakthrough_id, "breakthrough"), breakthrough_data,
            TraceType.BREAKTHROUGH, {"breakthrough_id": breakthrough_id}, priority=1.0,
        )

    async def log_breakthrough(self, breakthrough_id: str, breakthrough_data: Any) -> CompressedTrace:
        """Async :meth:`log_breakthrough_sync`."""
        return await self.store_compressed_trace(
            self._id("breakthrough_id", breakthrough_id, "breakthrough"), breakthrough_data,
            TraceType.BREAKTHROUGH, {"breakthrough_id": breakthrough_id}, priority=1.0,
        )

    def get_trace_sync(self, trace_id: str) -> Any:
        """The decompressed data of a trace, or ``None`` if there is none.

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
            return self._decode(row[2])
        return await asyncio.to_thread(self._get, trace_id)

    def decompress_trace(self, trace: CompressedTrace) -> Any:
        """The data of a :class:`CompressedTrace` from this memory (e.g. from :meth:`traces_sync`)."""
        if not isinstance(trace, CompressedTrace):
            raise TypeError(f"trace: expected a CompressedTrace, got {type(trace).__name__}")
        return self._decode(trace.compressed_data)

    def traces_sync(
        self,
        type: TraceType | str | None = None,  # noqa: A002 - the documented keyword
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        *,
        newest_first: bool = False,
    ) -> list[CompressedTrace]:
        """Stored traces, still compressed, ordered by timestamp (oldest first).

        Filters by ``type`` and by ``since <= timestamp <= until`` (indexed by
        ``idx_traces_type_time``); ``limit`` keeps the first ``limit`` in that
        order (``newest_first=True`` for the latest). Flushes the queue first.
        """
        return self._query_traces(type, since, until, limit, newest_first)

    async def traces(
        self,
        type: TraceType | str | None = None,  # noqa: A002
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        *,
        newest_first: bool = False,
    ) -> list[CompressedTrace]:
        """Async :meth:`traces_sync`."""
        return await asyncio.to_thread(self._query_traces, type, since, until, limit, newest_first)

    def performance_history_sync(self, metric_name: str, since: float | None = None) -> list[PerformanceDelta]:
        """Every delta of ``metric_name`` (from ``since`` on), oldest first.

        One indexed query (``idx_performance_metric_time``); flushes the queue first.
        """
        return self._history(metric_name, since)

    async def performance_history(self, metric_name: str, since: float | None = None) -> list[PerformanceDelta]:
        """Async :meth:`performance_history_sync`."""
        return await asyncio.to_thread(self._history, metric_name, since)

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
        ``high_priority`` (a tombstone row records each delete), then keeps at
        most ``max_memory_traces`` traces in RAM, dropping the lowest priority and
        then the oldest first; a dropped trace stays in the database.

        Returns
        -------
        dict
            ``cutoff`` (timestamp), ``expired`` (deleted), ``kept_high_priority``
            (older than the cutoff but kept), ``evicted_from_memory``,
            ``in_memory``, ``persisted`` (rows the flush committed), ``seq``.
        """
        return self._retention()

    async def apply_retention(self) -> dict[str, Any]:
        """Async :meth:`apply_retention_sync`."""
        return await asyncio.to_thread(self._retention)

    def flush_sync(self) -> int:
        """Commit every queued trace and delta now; returns how many rows were written."""
        self._check_open()
        return self._flush()

    async def flush(self) -> int:
        """Async :meth:`flush_sync`."""
        self._check_open()
        return await asyncio.to_thread(self._flush)

    def retrain_dictionaries_sync(
        self, scopes: Iterable[TraceType | str] | None = None, n_samples: int = 2000
    ) -> dict[str, int]:
        """Train new dictionary versions from the latest traces and re-encode with them.

        For each scope (a trace type, or ``"*"`` for the shared stream
        dictionary; default: every type) the latest ``n_samples`` traces train a
        new version, which becomes active; that type's traces are re-encoded with
        it. Older versions stay in the database. Returns ``{scope: traces
        re-encoded}`` for the scopes trained.
        """
        self._check_open()
        _check_int("n_samples", n_samples, 8)
        return self._retrain(None if scopes is None else [str(s) for s in scopes], n_samples)

    async def retrain_dictionaries(
        self, scopes: Iterable[TraceType | str] | None = None, n_samples: int = 2000
    ) -> dict[str, int]:
        """Async :meth:`retrain_dictionaries_sync`."""
        self._check_open()
        _check_int("n_samples", n_samples, 8)
        return await asyncio.to_thread(self._retrain, None if scopes is None else [str(s) for s in scopes], n_samples)

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

    def __enter__(self) -> SymbolicTraceMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

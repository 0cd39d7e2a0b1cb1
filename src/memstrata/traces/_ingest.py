"""Ingest: checking and compressing traces, queueing them, and the flush that commits the queue."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from memstrata.traces._config import (
    PRIORITY_WORDS,
    STREAM,
    TYPE_INFO,
    encode_json_object,
    no_gc,
    serialize,
    trace_type,
)
from memstrata.traces._database import guarded
from memstrata.traces._integrity import delta_check, trace_check
from memstrata.traces._state import TraceState
from memstrata.traces._types import CompressedTrace, PerformanceDelta, TraceType, _check_number, direction_rule

__all__ = ["Ingest"]

_MAX_SAMPLE_BYTES = 16 * 1024
_new = object.__new__
INSERT_TRACE = (
    "INSERT OR REPLACE INTO traces (trace_id, trace_type, compressed_data, compression_ratio, original_size,"
    " metadata, timestamp, retention_priority, seq, dictionary_version, row_check)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_LOG = (
    "INSERT INTO trace_log (trace_id, trace_type, compressed_data, compression_ratio, original_size,"
    " metadata, timestamp, retention_priority, seq, dictionary_version, row_check)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_DELTA = (
    "INSERT INTO performance_deltas (metric_name, old_value, new_value, delta_magnitude, delta_direction,"
    " confidence, context, timestamp, seq, direction_rule, row_check) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TOMBSTONE_REPLACED = (
    "INSERT INTO tombstones (trace_id, seq, deleted_at, reason, old_seq)"
    " SELECT trace_id, seq, ?, 'replaced', seq FROM traces WHERE trace_id = ?"
)


class Ingest(TraceState):
    """Mixin of :class:`SymbolicTraceMemory`: the write path."""

    # ------------------------------------------------------------ one trace --

    def _store(
        self,
        trace_id: str,
        data: Any,
        trace_type_: Any,
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
        info = TYPE_INFO.get(trace_type_) if type(trace_type_) is str else None
        if info is None:
            info = TYPE_INFO[trace_type(trace_type_)._value_]
        ttype, tvalue, default_priority = info
        meta_text = "{}" if metadata is None else encode_json_object("metadata", metadata)
        if priority is None:
            word = metadata.get("priority") if metadata else None
            priority = default_priority if word is None else PRIORITY_WORDS.get(word) if type(word) is str else None
            if priority is None:
                raise ValueError(f"metadata['priority']: expected one of {sorted(PRIORITY_WORDS)}, got {word!r}")
        else:
            priority = _check_number("priority", priority)
            if not 0.0 <= priority <= 1.0:
                raise ValueError(f"priority: expected a number in [0, 1], got {priority}")
        now = self._clock()
        ts = now if timestamp is None else _check_number("timestamp", timestamp)
        encoding, raw = serialize(data)
        n = len(raw)
        active = self._active
        blob, version = self._codec.encode(raw, encoding, active.get(tvalue) or active.get(STREAM, 0))
        if self._samples and n <= _MAX_SAMPLE_BYTES:
            self._sample(tvalue, raw)
        # stored as is (below the threshold, or zstd would not shrink it): ratio 1.0, whatever the envelope
        ratio = len(blob) / n if version or self._codec.compressed(blob) else 1.0
        trace = _new(CompressedTrace)
        trace.__dict__ = {
            "trace_id": trace_id, "trace_type": ttype, "compressed_data": blob, "compression_ratio": ratio,
            "original_size": n, "metadata": {} if metadata is None else metadata, "timestamp": ts,
            "retention_priority": priority, "_dictionary_version": version,
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
            if STREAM not in active:
                s = samples.setdefault(STREAM, [])
                if len(s) < self._train_threshold(STREAM):
                    s.append(raw)

    @guarded
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
                frozen = self._remember(row, priority)
                pending = self._pending_traces
                pending.append(frozen)
                since = self._pending_since
                if since is None:
                    self._pending_since = since = now
                due = (
                    len(pending) + len(self._pending_deltas) >= self._flush_every
                    or now - since >= self._flush_seconds
                    or len(self._memory) > self._trim_at
                )
            if urgent:
                self._conn.execute(_INSERT_LOG, (*frozen, trace_check(frozen)))
                self._n_logged += 1
                self._high_seq = max(self._high_seq, frozen[8])
                self._write_mark()
        finally:
            if urgent:
                self._db_lock.release()
        return due

    def _remember(self, row: list[Any], priority: float) -> tuple[Any, ...]:
        """Keep a row in RAM as the most recent of its priority (caller holds the state lock)."""
        trace_id = row[0]
        memory = self._memory
        if trace_id in memory:
            self._forget(trace_id)  # a re-stored id becomes the most recent
        memory[trace_id] = frozen = tuple(row)
        bucket = self._buckets.get(priority)
        if bucket is None:
            bucket = self._buckets[priority] = {}
        bucket[trace_id] = None
        return frozen

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
        if lower_is_better is not None:
            rule = "argument lower_is_better"
        elif metric_name in self.config["lower_is_better"]:
            lower_is_better, rule = True, "config lower_is_better"
        elif metric_name in self.config["higher_is_better"]:
            lower_is_better, rule = False, "config higher_is_better"
        else:
            lower_is_better, rule = direction_rule(metric_name)
        ctx_text = encode_json_object("context", context)
        with self._state_lock:
            self._check_open()
            delta = PerformanceDelta.compute(
                metric_name, old_value, new_value, confidence=confidence, context=context,
                timestamp=self._clock(), lower_is_better=bool(lower_is_better),
            )
            delta.direction_rule = rule  # type: ignore[misc]
            self._seq += 1
            self._pending_deltas.append(
                (metric_name, delta.old_value, delta.new_value, delta.delta_magnitude, delta.delta_direction,
                 delta.confidence, ctx_text, delta.timestamp, self._seq, rule)
            )
            due = self._due(delta.timestamp)
        # the documented companion trace: the delta as a PERFORMANCE_DELTA trace
        trace_id = f"perf_delta_{metric_name}_{delta.timestamp}"
        data = {
            "metric": metric_name, "old_value": delta.old_value, "new_value": delta.new_value,
            "delta_magnitude": delta.delta_magnitude, "direction": delta.delta_direction,
            "improvement_ratio": delta.improvement_ratio, "confidence": delta.confidence, "context": context,
        }
        trace, row, now = self._store(trace_id, data, TraceType.PERFORMANCE_DELTA,
                                      {"metric_name": metric_name, "priority": "high"}, None, delta.timestamp)
        return delta, self._enqueue(trace, row, now) or due

    # ---------------------------------------------------------------- batch --

    def _store_many(self, items: Iterable[Any]) -> tuple[list[CompressedTrace], bool]:
        """Prepare and queue many traces; whether a flush must follow (urgent or due)."""
        if isinstance(items, (str, bytes, dict)):
            raise TypeError(f"items: expected an iterable of (trace_id, data, ...) tuples or dicts, got {type(items).__name__}")
        with no_gc():
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
            pending = self._pending_traces
            urgent = False
            for _, row, _ in prepared:
                self._seq += 1
                row[8] = self._seq
                pending.append(self._remember(row, row[7]))
                if row[7] > high:
                    urgent = True
            now = prepared[-1][2]
            if self._pending_since is None:
                self._pending_since = prepared[0][2]
            due = (
                len(pending) + len(self._pending_deltas) >= self._flush_every
                or now - self._pending_since >= self._flush_seconds
                or len(self._memory) > self._trim_at
            )
        return [p[0] for p in prepared], urgent or due

    # ---------------------------------------------------------------- flush --

    @guarded
    def _flush(self) -> int:
        """Commit the queue (and train due dictionaries) in one transaction; rows written."""
        with self._db_lock:
            with self._state_lock:
                if self._closed and not self._pending_traces and not self._pending_deltas:
                    return 0
                traces, deltas = self._pending_traces, self._pending_deltas
                self._pending_traces, self._pending_deltas, self._pending_since = [], [], None
                high = self._seq  # every seq up to here is in this batch or already committed
                aborted, self._aborted = self._aborted, []
                due = self._due_training()
            if not traces and not deltas and not due and not aborted:
                self._trim_memory()
                return 0
            conn = self._conn
            now = self._clock()
            n_traces = self._n_traces
            conn.execute("BEGIN IMMEDIATE")
            try:
                if traces:
                    latest: dict[str, tuple[Any, ...]] = {}
                    superseded = []  # an id stored twice in one batch: the earlier row never lands
                    for r in traces:
                        old = latest.get(r[0])
                        if old is not None:
                            superseded.append((r[0], old[8], now, old[8]))
                        latest[r[0]] = r
                    rows = [(*r, trace_check(r)) for r in latest.values()]
                    replaced = conn.executemany(_TOMBSTONE_REPLACED, [(now, r[0]) for r in rows]).rowcount
                    conn.executemany(INSERT_TRACE, rows)
                    if superseded:
                        conn.executemany("INSERT INTO tombstones (trace_id, seq, deleted_at, reason, old_seq)"
                                         " VALUES (?, ?, ?, 'replaced', ?)", superseded)
                    n_traces += len(rows) - max(replaced, 0)
                if deltas:
                    conn.executemany(_INSERT_DELTA, [(*d, delta_check(d)) for d in deltas])
                if aborted:
                    conn.executemany("INSERT INTO tombstones (trace_id, seq, deleted_at, reason, old_seq)"
                                     " VALUES ('', ?, ?, 'aborted', ?)", [(s, now, s) for s in aborted])
                if self._n_logged and traces:  # the urgent rows are in ``traces`` now
                    conn.execute("DELETE FROM trace_log WHERE seq <= ?", (traces[-1][8],))
                tried: set[str] = set()
                while due:  # the stream dictionary first, then the types it makes eligible
                    for scope in due:
                        tried.add(scope)
                        self._train(scope)
                    with self._state_lock:
                        due = [scope for scope in self._due_training() if scope not in tried]
                conn.executemany("UPDATE meta SET value = ? WHERE key = ?", [(high, "seq"), (n_traces, "n_traces")])
                conn.execute("COMMIT")
                self._n_logged = 0
                self._trained_now = []
            except BaseException:
                conn.execute("ROLLBACK")
                with self._state_lock:  # nothing is lost: the rows go back to the front of the queue
                    self._pending_traces[:0] = traces
                    self._pending_deltas[:0] = deltas
                    self._aborted[:0] = aborted
                    self._abort_dictionaries()
                    if self._pending_since is None:
                        self._pending_since = self._clock()
                raise
            self._n_traces, self._meta_seq = n_traces, high
            self._high_seq = max(self._high_seq, high)
            self._write_mark()
            self._trim_memory()
            return len(traces) + len(deltas)

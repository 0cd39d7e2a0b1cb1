"""The state every part of :class:`SymbolicTraceMemory` shares, declared once with its types.

Each mixin (``_database``, ``_ingest``, ``_dictionaries``, ``_retention``,
``_queries``, ``_verify``, ``_events``) derives from :class:`TraceState`, so a
type checker sees one set of attributes and the methods one mixin calls on
another; ``SymbolicTraceMemory.__init__`` assigns the attributes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from memstrata.errors import MemstrataError
from memstrata.traces._blob import BlobCodec
from memstrata.traces._integrity import Mark

__all__ = ["TraceState"]


class TraceState:
    """Attributes of a trace memory; the locks say which guards what."""

    config: dict[str, Any]
    _clock: Callable[[], float]
    _codec: BlobCodec
    # settings read on the hot path
    _high: float  # priority above which a trace is committed before its call returns
    _flush_every: int
    _flush_seconds: float
    _max_memory: int
    _trim_at: int  # RAM traces at which a write trims back to _max_memory
    # guarded by _state_lock: the RAM traces, the queue, sequence numbers, dictionaries in use
    _state_lock: threading.RLock
    _memory: dict[str, tuple[Any, ...]]  # id -> table row, in write order
    _buckets: dict[float, dict[str, None]]  # priority -> ids in RAM, in write order
    _pending_traces: list[tuple[Any, ...]]
    _pending_deltas: list[tuple[Any, ...]]
    _pending_since: float | None  # clock time of the oldest queued row
    _aborted: list[int]  # seqs given out to work that rolled back: tombstoned by the next flush
    _trained_now: list[tuple[str, int | None, int, int]]  # dictionaries of the open transaction
    _active: dict[str, int]  # scope -> dictionary version in use
    _samples: dict[str, list[bytes]]  # scope -> samples, for scopes without a dictionary
    _train_at: dict[str, int]  # scope -> samples needed, raised after a failed training
    _n_dictionaries: int
    _n_logged: int  # urgent rows in trace_log since the last flush
    _seq: int  # the latest sequence number given out (queued rows included)
    _meta_seq: int  # the latest committed by a flush (every seq up to it is a row or a tombstone)
    _high_seq: int  # the latest acknowledged (urgent traces are committed one by one)
    _n_traces: int
    _closed: bool
    # guarded by _db_lock, held from taking the queue to its commit
    _db_lock: threading.RLock
    _conn: sqlite3.Connection
    _path: str
    _mark: Mark | None

    def _check_open(self) -> None:
        if self._closed:
            raise MemstrataError("SymbolicTraceMemory: the memory is closed")

    if TYPE_CHECKING:  # each defined by the mixin that owns the job

        def _flush(self) -> int: ...  # _ingest

        def _write_mark(self) -> None: ...  # _database

        def _decode(self, blob: Any, version: int) -> Any: ...  # _queries

        def _decode_trace(self, trace: Any) -> Any: ...  # _queries

        def _forget(self, trace_id: str) -> None: ...  # _retention

        def _trim_memory(self, limit: int | None = None) -> int: ...  # _retention

        def _due_training(self) -> list[str]: ...  # _dictionaries

        def _train(self, scope: str) -> None: ...  # _dictionaries

        def _train_threshold(self, scope: str) -> int: ...  # _dictionaries

        def _abort_dictionaries(self) -> None: ...  # _dictionaries

"""Symbolic trace memory: typed, compressed, SQLite-backed traces of an evolving agent.

A self-improving agent logs every operation, metric change, fitness step,
benchmark result and breakthrough. :class:`SymbolicTraceMemory` keeps them small
(zstd with dictionaries trained on the agent's own trace stream), queryable
(SQLite tables ``traces`` and ``performance_deltas`` with time indexes) and kept by
priority (age-based retention spares high-priority traces).

* Types: :class:`TraceType`, :class:`PerformanceDelta` (direction and
  ``improvement_ratio``; metric direction by :func:`register_metric`, the
  config, or the name rules of :func:`direction_rule`, which says which rule
  decided), :class:`CompressedTrace`.
* Storage: schema version :data:`SCHEMA_VERSION` in the ``meta`` table; a
  sequence number on every row; zstd dictionaries, versioned, in the
  ``dictionaries`` table; deletes recorded in ``tombstones``; urgent traces
  committed through ``trace_log``. Each trace is a checksummed blob (layout in
  ``memstrata.traces._blob``) in a row with its own checksum, verified on every
  read; sequence numbers are accounted for without gaps and repeated in a mark
  file, so ``verify()`` names damage, deleted rows and a lost WAL.
* Measured in ``benchmarks/bench_traces.py``: compression ratio per trace type
  (``test_compression_ratio``), ingest rate against plain sqlite3 JSON
  (``test_ingest``) and ``performance_history`` against a direct indexed query
  (``test_performance_history``).

>>> from memstrata.traces import SymbolicTraceMemory, TraceType
>>> with SymbolicTraceMemory() as mem:
...     _ = mem.log_breakthrough_sync("bt-1", {"metric": "pass_rate", "new_best": 0.61})
...     [t.trace_type for t in mem.traces_sync(type=TraceType.BREAKTHROUGH)]
[<TraceType.BREAKTHROUGH: 'breakthrough'>]
"""

from __future__ import annotations

from memstrata.traces._blob import BLOB_VERSION
from memstrata.traces._config import DEFAULT_KEEP_TYPES, PRIORITY_WORDS
from memstrata.traces._memory import DEFAULT_CONFIG, SymbolicTraceMemory
from memstrata.traces._schema import SCHEMA_VERSION
from memstrata.traces._types import (
    DEFAULT_PRIORITIES,
    LOWER_IS_BETTER_TOKENS,
    CompressedTrace,
    PerformanceDelta,
    TraceType,
    direction_rule,
    is_lower_better,
    register_metric,
)

__all__ = [
    "BLOB_VERSION",
    "DEFAULT_CONFIG",
    "DEFAULT_KEEP_TYPES",
    "DEFAULT_PRIORITIES",
    "LOWER_IS_BETTER_TOKENS",
    "PRIORITY_WORDS",
    "SCHEMA_VERSION",
    "CompressedTrace",
    "PerformanceDelta",
    "SymbolicTraceMemory",
    "TraceType",
    "direction_rule",
    "is_lower_better",
    "register_metric",
]

"""Plumbing the store benchmarks share (``bench_store.py``, ``bench_store_v2.py``): the sqlite3 peer and sizes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

#: Stores in the benchmarks run without the migration thread (no background work in a timing).
NO_THREAD = {"migration_interval_seconds": None}


def sqlite_kv(db: Path, value_type: str = "TEXT") -> sqlite3.Connection:
    """The peer: a new SQLite key-value table ``kv`` (WAL) at ``db``; an autocommit connection."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"CREATE TABLE kv (k TEXT PRIMARY KEY, v {value_type})")
    return conn


def json_text(value: Any) -> str:
    """The SQLite peer's value: JSON text (arrays as lists)."""
    return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value)


def time_writes(benchmark: Any, run: Any, n_writes: int) -> None:
    """Three rounds of ``run``, recording how many writes a round makes and each round's time.

    The first round writes new keys; the next ones write the same values under
    the same keys again (what the median measures): both are in ``round_ms``.
    """
    benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["writes"] = n_writes
    if benchmark.stats is not None:
        benchmark.extra_info["round_ms"] = [round(t * 1e3, 2) for t in benchmark.stats.stats.data]


def raw_bytes(records: dict[str, Any]) -> int:
    return sum(len(msgspec.msgpack.encode(v)) for v in records.values())


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

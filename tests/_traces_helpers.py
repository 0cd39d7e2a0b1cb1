"""What the SymbolicTraceMemory tests share: a settable clock, an opener, a side-door query, sample records."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from memstrata.codecs._samples import trace_records
from memstrata.traces import SymbolicTraceMemory

DAY = 86_400.0
T0 = 1_763_700_000.0
# small training thresholds so dictionaries are trained within a few hundred traces
SMALL: dict[str, Any] = {"train_after": 64, "type_train_after": 24, "dictionary_bytes": 2048}


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def open_memory(path: Path | str, clock: Clock | None = None, **config: Any) -> SymbolicTraceMemory:
    return SymbolicTraceMemory({"db_path": str(path), **config}, clock=clock or Clock())


def query(path: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the database through a separate connection (what another process would see)."""
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, args).fetchall()


def records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    return list(trace_records(n, seed=seed))


def store_records(mem: SymbolicTraceMemory, recs: list[dict[str, Any]]) -> None:
    for r in recs:
        mem.store_compressed_trace_sync(r["trace_id"], r, r["trace_type"])

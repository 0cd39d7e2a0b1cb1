"""Retention: which traces stay in RAM, which leave the database by age, and giving the space back."""

from __future__ import annotations

from typing import Any

from memstrata._log import get_logger
from memstrata.traces._config import DAY_SECONDS
from memstrata.traces._database import guarded
from memstrata.traces._state import TraceState

__all__ = ["Retention"]

log = get_logger("traces")


class Retention(TraceState):
    """Mixin of :class:`SymbolicTraceMemory`: the RAM bound and age-based retention."""

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

    @guarded
    def _retention(self) -> dict[str, Any]:
        persisted = self._flush()
        now = self._clock()
        cutoff = now - self.config["retention_days"] * DAY_SECONDS
        keep_types = self.config["keep_types"]
        spared = f" AND trace_type NOT IN ({', '.join('?' * len(keep_types))})" if keep_types else ""
        with self._db_lock:
            self._check_open()
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            first = 0
            expired: list[tuple[str, int]] = []
            try:
                expired = conn.execute(
                    "SELECT trace_id, seq FROM traces WHERE timestamp < ? AND COALESCE(retention_priority, 1.0) <= ?"
                    + spared + " ORDER BY timestamp",
                    (cutoff, self._high, *keep_types),
                ).fetchall()
                kept = conn.execute(
                    "SELECT COUNT(*) FROM traces WHERE timestamp < ? AND NOT (COALESCE(retention_priority, 1.0) <= ?"
                    + spared + ")",
                    (cutoff, self._high, *keep_types),
                ).fetchone()[0]
                with self._state_lock:
                    first = self._seq + 1
                    self._seq += len(expired)
                # tombstones first, in the same transaction as the delete, so a
                # backup or an audit can prove what retention removed
                conn.executemany(
                    "INSERT INTO tombstones (trace_id, seq, deleted_at, reason, old_seq)"
                    " VALUES (?, ?, ?, 'retention', ?)",
                    [(tid, first + i, now, old) for i, (tid, old) in enumerate(expired)],
                )
                conn.executemany("DELETE FROM traces WHERE trace_id = ?", [(tid,) for tid, _ in expired])
                n_traces = self._n_traces - len(expired)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'n_traces'", (n_traces,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                with self._state_lock:
                    self._aborted.extend(range(first, first + len(expired)) if first else ())
                raise
            self._n_traces = n_traces
            self._high_seq = max(self._high_seq, first + len(expired) - 1)
            self._write_mark()
            reclaimed = self._reclaim() if expired else 0
        with self._state_lock:
            for tid, _ in expired:
                self._forget(tid)
        evicted = self._trim_memory(self._max_memory)
        with self._state_lock:
            n_memory = len(self._memory)
        log.info("%s: retention removed %d traces older than %d days (kept %d of high priority or kept types), "
                 "gave back %d bytes", self._path, len(expired), self.config["retention_days"], kept, reclaimed)
        return {
            "cutoff": cutoff,
            "expired": len(expired),
            "kept_high_priority": kept,
            "evicted_from_memory": evicted,
            "in_memory": n_memory,
            "persisted": persisted,
            "reclaimed_bytes": reclaimed,
            "seq": self._seq,
        }

    def _reclaim(self) -> int:
        """Give free pages back to the file system (incremental vacuum, then a WAL truncation); bytes freed."""
        conn = self._conn
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
            conn.executescript("PRAGMA incremental_vacuum;")  # to completion (one step frees one page)
        else:  # a database created without auto_vacuum: rewrite it once
            conn.execute("VACUUM")
        if self._mark is not None:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return int(page * free)

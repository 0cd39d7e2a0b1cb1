"""``verify()``: every check a trace database can make of itself, independent of what was damaged."""

from __future__ import annotations

import sqlite3
from typing import Any

from memstrata._log import get_logger
from memstrata.errors import CorruptDataError
from memstrata.traces._integrity import check_against_mark, delta_check, trace_check
from memstrata.traces._state import TraceState

__all__ = ["Verify"]

log = get_logger("traces")
_TRACE_ROW = ("trace_id, trace_type, compressed_data, compression_ratio, original_size, metadata, timestamp,"
              " retention_priority, seq, dictionary_version, row_check")


class Verify(TraceState):
    """Mixin of :class:`SymbolicTraceMemory`: the whole-database check."""

    def _verify(self) -> dict[str, Any]:
        self._flush()
        errors: list[str] = []
        bad_traces: list[str] = []
        bad_deltas: list[int] = []
        n_traces = n_deltas = 0
        with self._db_lock:
            self._check_open()
            conn = self._conn
            present: set[int] = set()
            try:
                for (line,) in conn.execute("PRAGMA integrity_check(20)"):
                    if line != "ok":
                        errors.append(f"sqlite: {line}")
                for table in ("traces", "trace_log"):
                    for row in conn.execute(f"SELECT {_TRACE_ROW} FROM {table}"):
                        present.add(row[8])
                        n_traces += table == "traces"
                        try:
                            if row[10] != trace_check(row):
                                raise CorruptDataError("row checksum mismatch")
                            self._decode(row[2], row[9])
                        except (CorruptDataError, TypeError, IndexError) as exc:
                            bad_traces.append(str(row[0]))
                            errors.append(f"{table}: trace {row[0]!r} (seq {row[8]}): {exc}")
                for row in conn.execute(
                    "SELECT metric_name, old_value, new_value, delta_magnitude, delta_direction, confidence, context,"
                    " timestamp, seq, direction_rule, row_check, id FROM performance_deltas"
                ):
                    n_deltas += 1
                    present.add(row[8])
                    if row[10] != delta_check(row[:10]):
                        bad_deltas.append(row[11])
                        errors.append(f"performance_deltas: row {row[11]} (seq {row[8]}) fails its checksum")
                for version, dig, seq in conn.execute(
                    "SELECT version, digest, seq FROM dictionaries"
                ):
                    present.add(seq)
                    if not self._codec.has_dictionary(version) or self._codec.dictionary_digest(version) != dig:
                        errors.append(f"dictionaries: version {version} is damaged")
                for seq, old in conn.execute("SELECT seq, old_seq FROM tombstones"):
                    present.add(seq)
                    if old is not None:
                        present.add(old)
                present = {s for s in present if type(s) is int}  # a damaged column may hold anything
                meta = dict(conn.execute("SELECT key, value FROM meta"))
            except sqlite3.DatabaseError as exc:
                errors.append(f"sqlite: {exc}")
                meta = {}
            try:
                seq, count, start = int(meta["seq"]), int(meta["n_traces"]), int(meta["contiguous_from"])
            except (KeyError, TypeError, ValueError):
                errors.append("meta: sequence number, trace count or contiguity start missing or damaged")
                seq = count = start = 0
            top = max(present, default=0)
            if seq > top + 1_000_000 or start > seq or start < 0 or seq < 0:  # a damaged number: never walk a huge range
                errors.append(f"meta: records seq {seq} (contiguous from {start}), far from the rows' highest {top}")
                seq = max(0, min(seq, top))
                start = max(0, min(start, seq))
            missing = [s for s in range(start + 1, seq + 1) if s not in present]
            if missing:
                errors.append(f"sequence: {len(missing)} numbers up to {seq} are neither rows nor tombstones "
                              f"(first {missing[:5]}): rows were deleted")
            if meta and count != n_traces:
                errors.append(f"meta: records {count} traces, the table holds {n_traces}")
            if meta and seq != self._meta_seq:
                errors.append(f"meta: records seq {seq}, this memory committed up to {self._meta_seq}")
            try:
                mark = self._mark.read() if self._mark is not None else None
            except CorruptDataError as exc:
                errors.append(str(exc))
                mark = None
            high = max(present, default=0)
            problem = check_against_mark(self._path, mark, seq, n_traces, high)
            if problem is not None:
                errors.append(problem)
        if errors:
            log.error("%s: verify found %d problems (first: %s)", self._path, len(errors), errors[0])
        return {
            "ok": not errors,
            "traces": n_traces,
            "deltas": n_deltas,
            "bad_traces": sorted(set(bad_traces)),
            "bad_deltas": bad_deltas,
            "missing_seqs": missing[:1000],
            "errors": errors,
        }

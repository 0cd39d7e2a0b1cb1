"""Reading: one trace by id, trace queries with filters, performance history, fitness and statistics.

Every row read from the database is checked against its ``row_check`` before
anything from it is returned; a row that fails raises ``CorruptDataError``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from memstrata.errors import CorruptDataError
from memstrata.traces._blob import ENC_JSON
from memstrata.traces._config import check_int, decode_json_object, json_decode, no_gc, trace_type
from memstrata.traces._database import guarded
from memstrata.traces._integrity import delta_check, trace_check
from memstrata.traces._schema import SCHEMA_VERSION
from memstrata.traces._state import TraceState
from memstrata.traces._types import CompressedTrace, PerformanceDelta, TraceType, _check_number

__all__ = ["Queries"]

_new = object.__new__
_DIRECTION_NAMES = ("improvement", "degradation", "neutral")  # by the small int the history query returns
_ROW = ("trace_id, trace_type, compressed_data, compression_ratio, original_size, metadata, timestamp,"
        " retention_priority, seq, dictionary_version, row_check")
#: Prefixes the ``log_*`` methods put before the caller's id; a lookup by the bare id finds them.
ID_PREFIXES = ("benchmark:", "breakthrough:", "collapse:", "fitness_evo:")


class Queries(TraceState):
    """Mixin of :class:`SymbolicTraceMemory`: the read path."""

    def _decode(self, blob: Any, version: int) -> Any:
        encoding, raw = self._codec.decode(blob, version)
        try:
            if encoding == ENC_JSON:
                return json_decode(raw)
        except msgspec.DecodeError as exc:
            raise CorruptDataError(f"trace blob: verified JSON that does not parse ({exc})") from None
        from memstrata.codecs import deserialize

        return deserialize(raw)

    def _decode_trace(self, trace: Any) -> Any:
        """The data of a :class:`CompressedTrace` (whose blob does not name its dictionary version).

        Traces this memory made carry the version of their row (a private
        attribute, not a field); for any other, each version this database
        has is tried: the blob's checksum binds its dictionary, so only the
        right one verifies.
        """
        version = trace.__dict__.get("_dictionary_version")
        if version is not None:
            return self._decode(trace.compressed_data, version)
        blob = trace.compressed_data
        versions = self._codec.versions()
        for v in versions[:-1]:
            try:
                return self._decode(blob, v)
            except CorruptDataError:
                continue
        return self._decode(blob, versions[-1])

    def _checked(self, row: Any) -> Any:
        """``row`` if its checksum holds, else ``CorruptDataError`` naming the file and the row."""
        if row[10] != trace_check(row):
            raise CorruptDataError(f"{self._path}: trace row {row[0]!r} (seq {row[8]}) fails its checksum")
        return row

    @guarded
    def _get(self, trace_id: str) -> Any:
        if type(trace_id) is not str:
            raise TypeError(f"trace_id: expected a str, got {type(trace_id).__name__}")
        with self._state_lock:
            self._check_open()
            row = self._memory.get(trace_id)
            if row is None and ":" not in trace_id:
                found = [self._memory[p + trace_id] for p in ID_PREFIXES if p + trace_id in self._memory]
                row = found[0] if len(found) == 1 else None
        if row is not None:
            return self._decode(row[2], row[9])
        ids = [trace_id] if ":" in trace_id else [trace_id, *(p + trace_id for p in ID_PREFIXES)]
        with self._db_lock:
            self._check_open()
            rows = self._conn.execute(
                f"SELECT {_ROW} FROM traces WHERE trace_id IN ({', '.join('?' * len(ids))})", ids
            ).fetchall()
        by_id = {self._checked(r)[0]: r for r in rows}
        if set(by_id) - set(ids):
            raise CorruptDataError(f"{self._path}: the lookup of {trace_id!r} found another trace (damaged index)")
        if trace_id in by_id:
            return self._decode(by_id[trace_id][2], by_id[trace_id][9])
        if len(by_id) > 1:
            raise ValueError(f"trace_id: {trace_id!r} names several traces ({sorted(by_id)}); pass the full id")
        if not by_id:
            return None
        only = next(iter(by_id.values()))
        return self._decode(only[2], only[9])

    @guarded
    def _query_traces(
        self,
        type: Any,  # the documented keyword
        since: float | None,
        until: float | None,
        limit: int | None,
        newest_first: bool,
        metadata: dict[str, Any] | None = None,
    ) -> list[CompressedTrace]:
        where: list[str] = []
        args: list[Any] = []
        tvalue = None
        if type is not None:
            tvalue = trace_type(type).value
            where.append("trace_type = ?")
            args.append(tvalue)
        lo = -float("inf") if since is None else _check_number("since", since)
        hi = float("inf") if until is None else _check_number("until", until)
        if since is not None:
            where.append("timestamp >= ?")
            args.append(lo)
        if until is not None:
            where.append("timestamp <= ?")
            args.append(hi)
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata: expected a dict of key -> value to match, got {_type_name(metadata)}")
        sql = f"SELECT {_ROW} FROM traces"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY timestamp DESC, seq DESC" if newest_first else " ORDER BY timestamp, seq"
        if limit is not None:
            check_int("limit", limit, 0)
            if not metadata:
                sql += " LIMIT ?"
                args.append(limit)
        self._flush()
        with self._db_lock:
            self._check_open()
            rows = self._conn.execute(sql, args).fetchall()
        out = []
        for row in rows:
            trace_id, ttype, blob, ratio, n, meta, ts, priority = self._checked(row)[:8]
            version = row[9]
            if (tvalue is not None and ttype != tvalue) or not lo <= ts <= hi:
                raise CorruptDataError(f"{self._path}: the query index returned trace {trace_id!r}, which does "
                                       "not match the query (damaged index)")
            meta_dict = decode_json_object(meta)
            if metadata and any(meta_dict.get(k, _MISSING) != v for k, v in metadata.items()):
                continue
            trace = _new(CompressedTrace)
            trace.__dict__.update(
                trace_id=trace_id, trace_type=trace_type(ttype), compressed_data=blob, compression_ratio=ratio,
                original_size=n, metadata=meta_dict, timestamp=ts,
                retention_priority=1.0 if priority is None else priority, _dictionary_version=version,
            )
            out.append(trace)
            if limit is not None and len(out) >= limit:
                break
        return out

    @guarded
    def _history(self, metric_name: str, since: float | None) -> list[PerformanceDelta]:
        if not isinstance(metric_name, str) or not metric_name:
            raise TypeError(f"metric_name: expected a non-empty str, got {metric_name!r}")
        sql = (
            "SELECT metric_name, old_value, new_value, delta_magnitude, delta_direction, confidence, context,"
            " timestamp, seq, direction_rule, row_check FROM performance_deltas WHERE metric_name = ?"
        )
        args: tuple[Any, ...] = (metric_name,)
        lo = -float("inf")
        if since is not None:
            lo = _check_number("since", since)
            sql += " AND timestamp >= ?"
            args = (metric_name, lo)
        sql += " ORDER BY timestamp, id"
        self._flush()
        with self._db_lock, no_gc():
            self._check_open()
            rows = self._conn.execute(sql, args).fetchall()
        # rows are verified by their checksum: build the objects without re-validating
        new, cls, decode, check = _new, PerformanceDelta, json_decode, delta_check
        out: list[PerformanceDelta] = []
        append = out.append
        try:
            with no_gc():
                for row in rows:
                    if row[10] != check(row[:10]) or row[0] != metric_name or row[7] < lo:
                        raise CorruptDataError(
                            f"{self._path}: performance_deltas row seq {row[8]} of {metric_name!r} fails its checksum"
                        )
                    _, old, newv, mag, direction, conf, ctx, ts, _, rule, _ = row
                    d = new(cls)
                    d.__dict__ = {
                        "metric_name": metric_name, "old_value": old, "new_value": newv, "delta_magnitude": mag,
                        "delta_direction": direction, "confidence": conf,
                        "context": {} if ctx == "{}" else decode(ctx), "timestamp": ts, "direction_rule": rule,
                    }
                    append(d)
        except (IndexError, TypeError, msgspec.DecodeError) as exc:
            raise CorruptDataError(f"performance_deltas: a row of {metric_name!r} is not readable ({exc!r})") from None
        return out

    def _fitness(self) -> list[dict[str, Any]]:
        points = []
        for trace in self._query_traces(TraceType.FITNESS_EVOLUTION, None, None, None, False):
            data = self._decode_trace(trace)
            if isinstance(data, dict) and "generation" in data:
                points.append({"generation": data["generation"], "timestamp": trace.timestamp,
                               "fitness": data.get("fitness")})
        points.sort(key=lambda p: (p["generation"], p["timestamp"]))
        return points

    @guarded
    def _stats(self) -> dict[str, Any]:
        self._flush()
        with self._db_lock:
            self._check_open()
            # a trace stored as is counts its data bytes (ratio 1.0): the checksum envelope is not compression
            rows = self._conn.execute(
                "SELECT trace_type, COUNT(*), SUM(original_size), SUM(CASE WHEN compression_ratio >= 1.0"
                " THEN original_size ELSE length(compressed_data) END) FROM traces"
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


_MISSING = object()


def _type_name(value: Any) -> str:
    return type(value).__name__

"""The index state of a VectorMemory: rows of ids, codes and metadata, and how a write record changes them.

Every write is a record (a dict of arrays: ``add``, ``delete`` or ``meta``);
:meth:`IndexState._apply` is the one place a record changes the state, for a
live write and for a log record replayed on open alike.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec
import numpy as np

from memstrata._growth import grown_capacity
from memstrata.errors import ClosedError
from memstrata.vectors import _search
from memstrata.vectors._args import describe, unique_sorted
from memstrata.vectors.filters import MetadataColumns, compile_filter

if TYPE_CHECKING:
    from pathlib import Path

    from memstrata._locks import WriterLock
    from memstrata.vectors._originals import Originals
    from memstrata.vectors._persist import Durable
    from memstrata.vectors._recall import Calibration
    from memstrata.vectors._shortlist import ShortlistCalibration

CODECS = ("int8", "int4", "binary", "float32")
#: a metadata filter: a dict of :mod:`memstrata.vectors.filters`, or ``filter(metadata) -> bool`` per row
FilterArg = Mapping[str, Any] | Callable[[dict[str, Any] | None], bool] | None
#: rows appended since the id index was built that lookups compare directly before it is rebuilt
_TAIL_ROWS = 1024
METRICS = ("cosine", "ip", "l2")


_F = TypeVar("_F", bound=Callable[..., Any])


def locked(method: _F) -> _F:
    """Run ``method`` under the instance's lock: one call at a time changes or reads the state."""

    @functools.wraps(method)
    def wrapper(self: IndexState, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class IndexState:
    """Rows (ids, codes, sign bits, l2 row bias, originals row, tombstone) plus metadata by id and by column."""

    dim: int
    codec: str
    metric: str
    rescore: int | Literal["auto"] | None
    shortlist: int | Literal["auto"] | None
    _lock: threading.RLock

    def _init(self, dim: Any, codec: Any, metric: Any, rescore: Any, shortlist: Any) -> None:
        """Check the settings and set up an empty state (no originals file yet)."""
        self._closed = True
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim: expected a positive integer, got {dim!r}")
        if codec not in CODECS:
            raise ValueError(f"codec: expected one of {', '.join(CODECS)}, got {codec!r}")
        if metric not in METRICS:
            raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
        for name, value in (("rescore", rescore), ("shortlist", shortlist)):
            if value == "auto":
                continue
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(f"{name}: expected a positive integer or None (or \"auto\"), got {value!r}")
        if shortlist is not None and codec != "int8":
            raise ValueError(f"shortlist: only used with codec='int8', got codec={codec!r}; pass shortlist=None")
        if codec == "binary" and metric == "l2" and rescore is None:
            raise ValueError("rescore: binary codes cannot rank by L2 alone; pass rescore=m (e.g. 10) or metric='cosine'")
        self.dim = int(dim)
        self.codec = codec
        self.metric = metric
        self.rescore = rescore if rescore in (None, "auto") else int(rescore)
        self.target_recall = 0.99
        self._calibration: Calibration | None = None  # once measured (rescore="auto")
        self._depth_override: int | None = None  # set while a calibration measures a depth
        self.shortlist = shortlist if shortlist in (None, "auto") else int(shortlist)
        self._shortlist_calibration: ShortlistCalibration | None = None  # once measured (shortlist="auto")
        self._shortlist_override: int | None = None  # set while a calibration measures (0: every row)
        self.seq = 0
        self.path: Path | None = None  # the directory of a durable memory
        self.read_only = False
        self._ids = np.empty(0, np.int64)
        self._codes = self._empty_codes()
        self._bits = np.empty((0, (self.dim + 7) // 8), np.uint8) if shortlist is not None else None
        self._row_bias = np.empty(0, np.float32) if metric == "l2" else None
        self._alive = np.empty(0, bool)
        self._n_deleted = 0
        self._pending: list[dict[str, np.ndarray]] = []  # added chunks not yet merged
        self._scales: np.ndarray | None = None
        self._offsets: np.ndarray | None = None
        self._center: np.ndarray | None = None
        self._metadata: dict[int, dict[str, Any]] = {}
        self._metadata_bytes = 0
        self._columns = MetadataColumns()
        self._next_id = 0
        # live rows ordered by id (rows below _n_sorted), and their ids, for id -> row lookups
        self._sorter: np.ndarray | None = None
        self._sorted_ids = np.empty(0, np.int64)
        self._n_sorted = 0
        self._buffers: dict[str, np.ndarray] = {}  # capacity behind the row arrays
        self._orig_rows = np.empty(0, np.int64) if rescore is not None else None
        self._originals: Originals | None = None
        self._locks: list[WriterLock] = []
        self._durable: Durable | None = None
        self._closed = False

    @property
    def _width(self) -> int:
        return {"int8": self.dim, "int4": (self.dim + 1) // 2, "binary": (self.dim + 7) // 8, "float32": self.dim}[
            self.codec
        ]

    def _empty_codes(self) -> np.ndarray:
        dtype = {"int8": np.int8, "int4": np.uint8, "binary": np.uint8, "float32": np.float32}[self.codec]
        return np.empty((0, self._width), dtype)

    def _prepare(self, name: str, vectors: Any) -> np.ndarray:
        if not isinstance(vectors, np.ndarray) or vectors.dtype.kind != "f":
            raise TypeError(f"{name}: expected float32 or float64 array of shape (n, {self.dim}), got {describe(vectors)}")
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"{name}: expected float array of shape (n, {self.dim}), got {describe(vectors)}")
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if not np.isfinite(x).all():
            raise ValueError(f"{name}: expected finite values, got NaN or inf")
        if self.metric == "cosine":
            norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)  # float64: tiny rows do not underflow
            if (norms == 0).any():
                raise ValueError(f"{name}: cosine needs non-zero vectors, got an all-zero row")
            x = (x / norms).astype(np.float32)
        return x

    def _check_metadata(self, metadata: Any, n: int) -> list[dict[str, Any] | None] | None:
        if metadata is None:
            return None
        if not isinstance(metadata, list):
            raise ValueError(f"metadata: expected a list of {n} dicts (or None), got {describe(metadata)}")
        if len(metadata) != n:
            raise ValueError(f"metadata: expected a list of {n} dicts (or None), got a list of {len(metadata)}")
        out: list[dict[str, Any] | None] = []
        for meta in metadata:
            if meta is None:
                out.append(None)
                continue
            if not isinstance(meta, Mapping):
                raise ValueError(f"metadata: expected dicts (or None), got {describe(meta)}")
            try:
                normal = msgspec.json.decode(msgspec.json.encode(dict(meta)))
                msgspec.msgpack.encode(normal)
            except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
                raise ValueError(f"metadata: expected JSON-serializable mappings, got {meta!r}") from exc
            out.append(normal)
        return out

    def _new_ids(self, ids: Any, n: int) -> np.ndarray:
        if ids is None:
            return np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
        if arr.dtype.kind not in "iu" or arr.shape != (n,):
            if not (arr.size == 0 and n == 0):
                raise ValueError(f"ids: expected {n} integers (one per vector), got {describe(arr)}")
        arr = arr.astype(np.int64)
        if unique_sorted(arr).size != n:
            raise ValueError("ids: expected unique ids, got duplicates within the batch")
        return arr

    def _add_record(self, x: np.ndarray, ids: np.ndarray, meta: list[Any] | None, *, replace: bool) -> dict[str, Any]:
        fitted = self._scales is None and self._center is None
        record: dict[str, Any] = {"op": "add", "ids": ids, "codes": self._encode(x), "meta": meta, "replace": replace}
        if self._bits is not None:
            record["bits"] = _search.sign_bits(self, x)
        if self._row_bias is not None:
            decoded = _search.decode(self, record["codes"])
            record["row_bias"] = (-np.einsum("ij,ij->i", decoded, decoded)).astype(np.float32)
        if fitted:
            record["params"] = {
                k: v for k, v in (("scales", self._scales), ("offsets", self._offsets), ("center", self._center)) if v is not None
            }
        if self._originals is not None:
            sync = self._durable is not None and self._durable.durability == "full"
            record["orig"] = list(self._originals.append(x, sync=sync))
        return record

    def _encode(self, x: np.ndarray) -> np.ndarray:
        if self.codec == "float32":
            return np.array(x, np.float32)  # a copy: the caller's array stays theirs
        if self.codec == "binary":
            return _search.sign_bits(self, x)
        from memstrata.kernels import quantize_int4, quantize_int8

        quantize = quantize_int8 if self.codec == "int8" else quantize_int4
        if self._scales is None:
            fitted = quantize(fitting_rows(x))
            self._scales, self._offsets = fitted.scales, fitted.offsets
            return fitted.codes[: x.shape[0]]
        assert self._offsets is not None
        return quantize(x, scales=self._scales, offsets=self._offsets).codes

    def _apply(self, record: dict[str, Any]) -> None:
        """Apply one record to the state in RAM (a live write, or a log record replayed on open)."""
        for name, value in record.get("params", {}).items():
            setattr(self, "_" + name, value)
        ids = record["ids"]
        if record["op"] in ("delete", "add"):
            rows = self._find_rows(ids, missing_ok=True) if record["op"] == "delete" or record["replace"] else None
            if rows is not None:
                self._tombstone(rows[rows >= 0])
        if record["op"] == "add":
            chunk = {"ids": ids, "codes": record["codes"]}
            for name in ("bits", "row_bias"):
                if name in record:
                    chunk[name] = record[name]
            if "orig" in record:
                chunk["orig_rows"] = np.arange(record["orig"][0], record["orig"][0] + record["orig"][1], dtype=np.int64)
            self._pending.append(chunk)
            meta = record["meta"] or [None] * ids.size
            self._columns.append(meta, ids)
            for i, m in zip(ids.tolist(), meta):
                self._set_metadata(i, m)
            self._next_id = max(self._next_id, int(ids.max()) + 1)
        elif record["op"] == "meta":
            rows = self._find_rows(ids)
            for row, i, m in zip(rows.tolist(), ids.tolist(), record["meta"]):
                self._columns.set(row, m)
                self._set_metadata(i, m)
        self.seq += 1
        if self._n_deleted and self._n_deleted * 4 >= self._ids.shape[0]:
            self._compact_rows()

    def _set_metadata(self, id_: int, meta: dict[str, Any] | None) -> None:
        old = self._metadata.pop(id_, None)
        if old is not None:
            self._metadata_bytes -= len(msgspec.json.encode(old))
        if meta is not None:
            self._metadata[id_] = meta
            self._metadata_bytes += len(msgspec.json.encode(meta))

    def _tombstone(self, rows: np.ndarray) -> None:
        rows = unique_sorted(rows)
        self._alive[rows] = False
        if self._sorter is not None and rows.size:
            live = self._alive[self._sorter]
            self._sorter, self._sorted_ids = self._sorter[live], self._sorted_ids[live]
        self._n_deleted += int(rows.size)
        for row, i in zip(rows.tolist(), self._ids[rows].tolist()):
            self._set_metadata(i, None)
            self._columns.set(row, None)

    def _merge(self) -> None:
        """Append the pending chunks to the row arrays, which grow by a quarter (:mod:`memstrata._growth`: one add costs O(added), not O(n))."""
        if not self._pending:
            return
        parts = self._pending
        self._pending = []
        n_old = self._ids.shape[0]
        n_new = n_old + sum(p["ids"].shape[0] for p in parts)
        parts_of = {"_alive": [np.ones(p["ids"].shape[0], bool) for p in parts]}
        for name in ("_ids", "_codes", "_alive", "_bits", "_row_bias", "_orig_rows"):
            current = getattr(self, name)
            if current is None:
                continue
            buffer = self._buffers.get(name)
            if buffer is None or current.base is not buffer or buffer.shape[0] < n_new:
                buffer = np.empty((grown_capacity(n_new, n_old),) + current.shape[1:], current.dtype)
                buffer[:n_old] = current
                self._buffers[name] = buffer
            start = n_old
            for part in parts_of.get(name) or [p[name[1:]] for p in parts]:
                buffer[start : start + part.shape[0]] = part
                start += part.shape[0]
            setattr(self, name, buffer[:n_new])

    def _compact_rows(self) -> None:
        """Drop tombstoned rows from RAM (the files keep them until :meth:`compact` or a checkpoint)."""
        self._merge()
        if not self._n_deleted:
            return
        keep = self._alive
        for name in ("_ids", "_codes", "_bits", "_row_bias", "_orig_rows"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name)[keep])
        self._columns.keep(keep)
        self._alive = np.ones(self._ids.shape[0], bool)
        self._n_deleted = 0
        self._sorter = None

    def _find_rows(self, ids: np.ndarray, missing_ok: bool = False) -> np.ndarray:
        """Rows of live ``ids`` (``-1`` for missing ones when ``missing_ok``, else ``KeyError`` naming them).

        Live rows below ``_n_sorted`` are indexed by id (``_sorter``); rows
        appended since (at most ``_TAIL_ROWS``) are compared directly, so a
        single add costs no sort.
        """
        self._merge()
        n = self._ids.shape[0]
        if self._sorter is None or n - self._n_sorted > _TAIL_ROWS or (n - self._n_sorted) * ids.size > 1 << 22:
            # live rows only: an upserted id has a dead row and a live one
            live = np.flatnonzero(self._alive)
            self._sorter = live[np.argsort(self._ids[live], kind="stable")]
            self._sorted_ids = self._ids[self._sorter]
            self._n_sorted = n
        sorted_ids = self._sorted_ids
        if sorted_ids.size:
            pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
            rows = np.where(sorted_ids[pos] == ids, self._sorter[pos], -1)
            rows = np.where((rows >= 0) & self._alive[np.maximum(rows, 0)], rows, -1)
        else:
            rows = np.full(ids.shape, -1, np.int64)
        if self._n_sorted < n:
            tail = self._ids[self._n_sorted : n]
            eq = (ids[:, None] == tail[None, :]) & self._alive[self._n_sorted : n][None, :]
            last = tail.size - 1 - np.argmax(eq[:, ::-1], axis=1)  # the newest live row of an id
            rows = np.where(eq.any(axis=1), self._n_sorted + last, rows)
        if not missing_ok and (rows < 0).any():
            missing = ids[rows < 0]
            more = f" and {missing.size - 5} more" if missing.size > 5 else ""
            raise KeyError(f"ids: not in the memory: {missing[:5].tolist()}{more}")
        return rows.astype(np.int64)

    def _check_open(self) -> None:
        if self._closed:
            where = f" ({self.path})" if self.path is not None else ""
            raise ClosedError(f"VectorMemory{where}: closed; open it again to use it")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise PermissionError(
                f"VectorMemory: {self.path} was opened with read_only=True; open it with "
                "VectorMemory.open(path) to write"
            )

    def _rescore_depth(self) -> int:
        """Candidates per result to re-rank: ``rescore``, or the calibrated depth for ``"auto"``."""
        if self.rescore == "auto":
            from memstrata.vectors._recall import current_depth

            return current_depth(self)
        assert isinstance(self.rescore, int)
        return self.rescore

    def _rows_for(self, filter: FilterArg, strict: bool, *, all_rows: bool = False) -> Any:
        """Live rows matching ``filter``: a sorted int64 array (None for "all rows, none deleted" unless ``all_rows``)."""
        self._merge()
        if filter is None:
            if self._n_deleted or all_rows:
                return np.flatnonzero(self._alive)
            return None
        if isinstance(filter, Mapping):
            mask = compile_filter(filter).mask(self._columns, strict=strict)
            return np.flatnonzero(mask & self._alive)
        if callable(filter):
            meta, ids = self._metadata, self._ids.tolist()
            return np.array([r for r in np.flatnonzero(self._alive).tolist() if filter(meta.get(ids[r]))], np.int64)
        raise TypeError(f"filter: expected a dict filter (see memstrata.vectors.filters) or a callable, got {describe(filter)}")


def fitting_rows(x: np.ndarray) -> np.ndarray:
    """The rows the per-dimension quantization ranges are fitted on: ``x``, widened when it is a small batch.

    The ranges are fitted once, on the first batch, and later values outside
    them are clamped. A batch of a few rows says little about a dimension's
    spread (one row gives every range zero width, and every later vector
    decodes to that row), so a small first batch is fitted together with two
    rows at plus and minus its largest magnitude: no range is narrower than
    that. The caller keeps only the first ``len(x)`` codes.
    """
    if x.shape[0] >= _search.SMALL_FIT_ROWS:
        return x
    peak = float(np.abs(x).max()) if x.size else 1.0
    bounds = np.full((2, x.shape[1]), peak or 1.0, np.float32)
    bounds[1] *= -1
    return np.vstack([np.asarray(x, np.float32), bounds])

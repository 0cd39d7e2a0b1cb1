"""``VectorMemory``: ids + vectors stored as int8 / int4 / binary codes (or float32)."""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from memstrata.errors import CorruptDataError

__all__ = ["CodecChoice", "VectorMemory"]

_CODECS = ("int8", "int4", "binary", "float32")
_METRICS = ("cosine", "ip", "l2")
_MAGIC = b"MSVECMEM"
_FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIII")  # magic, format version, header length, header crc32
_ALIGN = 64
# rows decoded per block when int4 / float32 memories are searched with BLAS
_BLOCK_ROWS = 8192


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} with shape {value.shape}"
    return type(value).__name__


@dataclass(frozen=True)
class CodecChoice:
    """The outcome of :meth:`VectorMemory.fit_codec`.

    ``codec``/``rescore`` is the smallest configuration (bytes held in RAM per
    vector) whose measured recall@k reached the target, or the most accurate
    one measured when none did (``met`` is then False). ``measured`` lists
    every configuration tried with its recall and size.
    """

    codec: str
    rescore: int | None
    recall: float
    bytes_per_vector: float
    met: bool
    target_recall: float
    k: int
    measured: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`VectorMemory` (``VectorMemory(dim, **choice.kwargs)``)."""
        return {"codec": self.codec, "rescore": self.rescore}


class VectorMemory:
    """Ids and vectors held as compact codes, searchable by cosine, inner product or L2.

    Parameters
    ----------
    dim : int
        Vector dimension ``d``.
    codec : {"int8", "int4", "binary", "float32"}
        How vectors are held in RAM: per-dimension int8 (d bytes per vector),
        int4 (d/2), sign bits (d/8) or plain float32 (4d). Quantization
        parameters are fitted on the first ``add`` (pass a representative first
        batch; later values outside the range are clamped).
    metric : {"cosine", "ip", "l2"}
        ``cosine`` normalizes vectors and queries; scores are similarities
        (higher first) for ``cosine``/``ip`` and squared distances (lower first)
        for ``l2``.
    rescore : int or "auto", optional
        Keep float32 originals in a memory-mapped file (``originals_path`` or a
        temporary file), search the codes for ``rescore * k`` candidates and
        re-rank them exactly. Required for ``binary`` with ``metric="l2"``.
        ``"auto"`` chooses the depth from a calibration on the stored data
        (stored vectors searched as queries against the exact float results,
        refreshed as the memory grows) so that recall@10 reaches
        ``target_recall`` with a 95 % confidence margin; :meth:`stats` reports
        the depth and the measured recall.
    shortlist : int, optional
        For ``int8``: also hold sign bits (d/8 bytes per vector) and score only
        the ``shortlist`` nearest rows by Hamming distance instead of every row.
        Faster on large memories, at some recall (measure with
        ``benchmarks/bench_vectors.py``).
    originals_path : str or Path, optional
        Where the float originals go when ``rescore`` is set.
    target_recall : float, default 0.99
        The recall@10 ``rescore="auto"`` calibrates for.

    Notes
    -----
    Every mutation gets a sequence number (``seq``). ``delete`` leaves a
    tombstone; space is reclaimed by :meth:`compact` (run automatically once a
    quarter of the rows are deleted, and by :meth:`save`).

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata import VectorMemory
    >>> rng = np.random.default_rng(0)
    >>> vectors = rng.standard_normal((1000, 64)).astype(np.float32)
    >>> memory = VectorMemory(64, codec="int8")
    >>> memory.add(vectors)
    array([  0,   1,   2, ..., 997, 998, 999])
    >>> scores, ids = memory.search(vectors[:2], k=3)
    >>> ids[:, 0]
    array([0, 1])
    >>> len(memory), memory.nbytes < 1000 * 64 * 1.05 + 8 * 1000
    (1000, True)
    """

    def __init__(
        self,
        dim: int,
        codec: str = "int8",
        metric: str = "cosine",
        rescore: int | str | None = None,
        *,
        shortlist: int | None = None,
        originals_path: str | os.PathLike[str] | None = None,
        target_recall: float = 0.99,
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim: expected a positive integer, got {dim!r}")
        if codec not in _CODECS:
            raise ValueError(f"codec: expected one of {', '.join(_CODECS)}, got {codec!r}")
        if metric not in _METRICS:
            raise ValueError(f"metric: expected one of {', '.join(_METRICS)}, got {metric!r}")
        for name, value in (("rescore", rescore), ("shortlist", shortlist)):
            if name == "rescore" and value == "auto":
                continue
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(f"{name}: expected a positive integer or None, got {value!r}")
        if isinstance(target_recall, bool) or not isinstance(target_recall, (int, float)) or not 0 < target_recall <= 1:
            raise ValueError(f"target_recall: expected a value in (0, 1], got {target_recall!r}")
        if shortlist is not None and codec != "int8":
            raise ValueError(f"shortlist: only used with codec='int8', got codec={codec!r}; pass shortlist=None")
        if codec == "binary" and metric == "l2" and rescore is None:
            raise ValueError("rescore: binary codes cannot rank by L2 alone; pass rescore=m (e.g. 10) or metric='cosine'")
        self.dim = int(dim)
        self.codec = codec
        self.metric = metric
        self.rescore: int | str | None = rescore if rescore in (None, "auto") else int(rescore)  # type: ignore[arg-type]
        self.target_recall = float(target_recall)
        self._calibration: Any = None  # vectors._calibrate.Calibration once measured (rescore="auto")
        self._depth_override: int | None = None  # set while a calibration measures a depth
        self.shortlist = None if shortlist is None else int(shortlist)
        self.seq = 0
        self._ids = np.empty(0, np.int64)
        self._codes = self._empty_codes()
        self._bits = np.empty((0, self._n_bit_bytes), np.uint8) if shortlist is not None else None
        self._row_bias = np.empty(0, np.float32) if metric == "l2" else None
        self._alive = np.empty(0, bool)
        self._n_deleted = 0
        self._pending: list[dict[str, np.ndarray]] = []  # added chunks not yet merged
        self._scales: np.ndarray | None = None
        self._offsets: np.ndarray | None = None
        self._center: np.ndarray | None = None
        self._metadata: dict[int, dict[str, Any]] = {}
        self._metadata_bytes = 0
        self._next_id = 0
        self._sorter: np.ndarray | None = None
        self._exact_bias: tuple[int, np.ndarray] | None = None  # (seq, -|x|^2 of originals) for l2 rescoring
        # float originals (rescore): an append-only float32 file, rows mapped through _orig_rows
        self._orig_rows = np.empty(0, np.int64) if rescore is not None else None
        self._orig_path: Path | None = None
        self._orig_owned = False
        self._orig_count = 0
        self._orig_map: np.memmap | None = None
        if rescore is not None:
            if originals_path is None:
                fd, name = tempfile.mkstemp(prefix="memstrata-originals-", suffix=".f32")
                os.close(fd)
                self._orig_path = Path(name)
                self._orig_owned = True
            else:
                self._orig_path = Path(originals_path)
                self._orig_path.write_bytes(b"")

    # ----------------------------------------------------------- sizes

    @property
    def _width(self) -> int:
        return {"int8": self.dim, "int4": (self.dim + 1) // 2, "binary": (self.dim + 7) // 8, "float32": self.dim}[
            self.codec
        ]

    @property
    def _n_bit_bytes(self) -> int:
        return (self.dim + 7) // 8

    def _empty_codes(self) -> np.ndarray:
        dtype = {"int8": np.int8, "int4": np.uint8, "binary": np.uint8, "float32": np.float32}[self.codec]
        return np.empty((0, self._width), dtype)

    def __len__(self) -> int:
        return int(self._ids.shape[0] + sum(c["ids"].shape[0] for c in self._pending) - self._n_deleted)

    @property
    def nbytes(self) -> int:
        """Bytes held in RAM: codes, ids, parameters, tombstone mask, metadata (as JSON); not the originals file."""
        arrays = [self._ids, self._codes, self._alive, self._bits, self._row_bias, self._orig_rows, self._sorter]
        if self._exact_bias is not None:
            arrays.append(self._exact_bias[1])
        arrays += [self._scales, self._offsets, self._center]
        total = sum(a.nbytes for a in arrays if a is not None)
        total += sum(a.nbytes for chunk in self._pending for a in chunk.values())
        return int(total + self._metadata_bytes)

    # ------------------------------------------------------------- add

    def _prepare(self, name: str, vectors: Any) -> np.ndarray:
        if not isinstance(vectors, np.ndarray) or vectors.dtype.kind != "f":
            raise TypeError(f"{name}: expected float32 or float64 array of shape (n, {self.dim}), got {_describe(vectors)}")
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"{name}: expected float array of shape (n, {self.dim}), got {_describe(vectors)}")
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if not np.isfinite(x).all():
            raise ValueError(f"{name}: expected finite values, got NaN or inf")
        if self.metric == "cosine":
            norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)  # float64: tiny rows do not underflow
            if (norms == 0).any():
                raise ValueError(f"{name}: cosine needs non-zero vectors, got an all-zero row")
            x = (x / norms).astype(np.float32)
        return x

    def add(
        self,
        vectors: np.ndarray,
        ids: Iterable[int] | np.ndarray | None = None,
        metadata: list[Mapping[str, Any] | None] | None = None,
    ) -> np.ndarray:
        """Add vectors; returns their ids (int64).

        Parameters
        ----------
        vectors : ndarray float32/float64 (n, dim)
        ids : array of int, optional
            Unique, not already present. Default: consecutive ids after the
            largest seen.
        metadata : list of dict, optional
            One JSON-serializable mapping (or None) per vector, for ``filter``.
        """
        x = self._prepare("vectors", vectors)
        n = x.shape[0]
        if ids is None:
            new_ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        else:
            new_ids = np.asarray(ids)
            if new_ids.dtype.kind not in "iu" or new_ids.shape != (n,):
                raise ValueError(f"ids: expected {n} integers (one per vector), got {_describe(new_ids)}")
            new_ids = new_ids.astype(np.int64)
            if np.unique(new_ids).size != n:
                raise ValueError("ids: expected unique ids, got duplicates within the batch")
            if self._find_rows(new_ids, missing_ok=True).max(initial=-1) >= 0:
                raise ValueError("ids: expected new ids, got some already in the memory; delete them first")
        if metadata is not None:
            if not isinstance(metadata, list) or len(metadata) != n:
                raise ValueError(f"metadata: expected a list of {n} dicts (or None), got {_describe(metadata)}")
            for i, meta in zip(new_ids.tolist(), metadata):
                if meta is not None:
                    try:
                        encoded = json.dumps(dict(meta), separators=(",", ":"))
                    except (TypeError, ValueError) as exc:
                        raise ValueError(f"metadata: expected JSON-serializable mappings, got {meta!r}") from exc
                    self._metadata[i] = json.loads(encoded)
                    self._metadata_bytes += len(encoded)
        if n == 0:
            return new_ids
        chunk: dict[str, np.ndarray] = {"ids": new_ids, "codes": self._encode(x)}
        if self._bits is not None:
            chunk["bits"] = self._binary(x)
        if self._row_bias is not None:
            chunk["row_bias"] = -np.einsum("ij,ij->i", self._decoded(chunk["codes"]), self._decoded(chunk["codes"]))
            chunk["row_bias"] = chunk["row_bias"].astype(np.float32)
        if self._orig_rows is not None:
            chunk["orig_rows"] = self._append_originals(x)
        self._pending.append(chunk)
        self._next_id = max(self._next_id, int(new_ids.max()) + 1)
        self._sorter = None
        self.seq += 1
        return new_ids

    def _encode(self, x: np.ndarray) -> np.ndarray:
        from memstrata.kernels import quantize_int4, quantize_int8

        if self.codec == "float32":
            return x.copy()
        if self.codec == "binary":
            return self._binary(x)
        quantize = quantize_int8 if self.codec == "int8" else quantize_int4
        if self._scales is None:
            fitted = quantize(x)
            self._scales, self._offsets = fitted.scales, fitted.offsets
            return fitted.codes
        assert self._offsets is not None
        return quantize(x, scales=self._scales, offsets=self._offsets).codes

    def _binary(self, x: np.ndarray) -> np.ndarray:
        from memstrata.kernels import binarize

        if self._center is None:
            # centering at the mean of the first batch spreads the bits of embeddings
            # whose dimensions are not zero-mean
            self._center = x.mean(axis=0).astype(np.float32)
        return binarize(x, self._center)

    def _decoded(self, codes: np.ndarray) -> np.ndarray:
        from memstrata.kernels import dequantize_int4, dequantize_int8

        if self.codec == "float32":
            return codes
        if self.codec == "int8":
            assert self._scales is not None and self._offsets is not None
            return dequantize_int8(codes, self._scales, self._offsets)
        if self.codec == "int4":
            assert self._scales is not None and self._offsets is not None
            return dequantize_int4(codes, self._scales, self._offsets)
        # binary: +-1 per bit, scaled to unit length
        bits = np.unpackbits(codes, axis=1, count=self.dim).astype(np.float32)
        return (2.0 * bits - 1.0) / np.float32(np.sqrt(self.dim))

    # ------------------------------------------------------- originals

    def _append_originals(self, x: np.ndarray) -> np.ndarray:
        assert self._orig_path is not None
        with open(self._orig_path, "ab") as f:
            f.write(x.tobytes())
        rows = np.arange(self._orig_count, self._orig_count + x.shape[0], dtype=np.int64)
        self._orig_count += x.shape[0]
        self._orig_map = None
        return rows

    def _originals(self) -> np.ndarray:
        if self._orig_map is None or self._orig_map.shape[0] != self._orig_count:
            assert self._orig_path is not None
            if self._orig_count == 0:
                return np.empty((0, self.dim), np.float32)
            self._orig_map = np.memmap(self._orig_path, dtype=np.float32, mode="r", shape=(self._orig_count, self.dim))
        return np.asarray(self._orig_map)

    def close(self) -> None:
        """Release the originals file (deleted if it was a temporary one)."""
        self._orig_map = None
        if self._orig_owned and self._orig_path is not None:
            self._orig_path.unlink(missing_ok=True)
            self._orig_owned = False

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    # ------------------------------------------------------ bookkeeping

    def _merge(self) -> None:
        if not self._pending:
            return
        parts = self._pending
        self._pending = []
        self._ids = np.concatenate([self._ids] + [p["ids"] for p in parts])
        self._codes = np.concatenate([self._codes] + [p["codes"] for p in parts])
        self._alive = np.concatenate([self._alive] + [np.ones(p["ids"].shape[0], bool) for p in parts])
        if self._bits is not None:
            self._bits = np.concatenate([self._bits] + [p["bits"] for p in parts])
        if self._row_bias is not None:
            self._row_bias = np.concatenate([self._row_bias] + [p["row_bias"] for p in parts])
        if self._orig_rows is not None:
            self._orig_rows = np.concatenate([self._orig_rows] + [p["orig_rows"] for p in parts])

    def _find_rows(self, ids: np.ndarray, missing_ok: bool = False) -> np.ndarray:
        """Rows of live ``ids`` (``-1`` for missing ones when ``missing_ok``)."""
        self._merge()
        if self._sorter is None:
            self._sorter = np.argsort(self._ids, kind="stable")
        sorted_ids = self._ids[self._sorter]
        pos = np.searchsorted(sorted_ids, ids)
        pos_c = np.minimum(pos, max(sorted_ids.size - 1, 0))
        found = (pos < sorted_ids.size) & (sorted_ids[pos_c] == ids) if sorted_ids.size else np.zeros(ids.shape, bool)
        rows = np.where(found, self._sorter[pos_c] if sorted_ids.size else 0, -1)
        if sorted_ids.size:
            rows = np.where(found & self._alive[np.maximum(rows, 0)], rows, -1)
        if not missing_ok and (rows < 0).any():
            missing = ids[rows < 0][:5].tolist()
            raise KeyError(f"ids: not in the memory: {missing}")
        return rows.astype(np.int64)

    def delete(self, ids: Iterable[int] | np.ndarray) -> int:
        """Delete ids (tombstones; missing ids are ignored); returns how many were deleted."""
        arr = np.atleast_1d(np.asarray(ids))
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(f"ids: expected integers, got {_describe(arr)}")
        rows = self._find_rows(arr.astype(np.int64), missing_ok=True)
        rows = np.unique(rows[rows >= 0])
        self._alive[rows] = False
        self._n_deleted += int(rows.size)
        for i in self._ids[rows].tolist():
            meta = self._metadata.pop(i, None)
            if meta is not None:
                self._metadata_bytes -= len(json.dumps(meta, separators=(",", ":")))
        self.seq += 1
        if self._n_deleted and self._n_deleted * 4 >= self._ids.shape[0]:
            self.compact()
        return int(rows.size)

    def compact(self) -> None:
        """Drop deleted rows from RAM (the originals file keeps them until the next save/load)."""
        self._merge()
        if not self._n_deleted:
            return
        keep = self._alive
        self._ids = self._ids[keep]
        self._codes = self._codes[keep]
        if self._bits is not None:
            self._bits = self._bits[keep]
        if self._row_bias is not None:
            self._row_bias = self._row_bias[keep]
        if self._orig_rows is not None:
            self._orig_rows = self._orig_rows[keep]
        self._alive = np.ones(self._ids.shape[0], bool)
        self._n_deleted = 0
        self._sorter = None
        self._exact_bias = None  # row positions changed

    def get(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Vectors of ``ids`` (float32, shape (len(ids), dim)): the originals with ``rescore``, else decoded codes.

        Cosine memories return unit-length vectors. Raises ``KeyError`` for a missing id.
        """
        arr = np.atleast_1d(np.asarray(ids))
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(f"ids: expected integers, got {_describe(arr)}")
        rows = self._find_rows(arr.astype(np.int64))
        if self._orig_rows is not None:
            return np.array(self._originals()[self._orig_rows[rows]], dtype=np.float32)
        return np.array(self._decoded(self._codes[rows]), dtype=np.float32)

    def metadata(self, id_: int) -> dict[str, Any] | None:
        """The metadata stored with ``id_`` (None if none)."""
        return self._metadata.get(int(id_))

    # ----------------------------------------------------------- search

    def _rows_for(self, filter: Any) -> np.ndarray | None:
        """Rows to search: None for all rows, else a sorted int64 array."""
        if filter is None:
            return np.flatnonzero(self._alive) if self._n_deleted else None
        if isinstance(filter, Mapping):
            wanted = dict(filter)

            def match(meta: dict[str, Any] | None) -> bool:
                return meta is not None and all(k in meta and meta[k] == v for k, v in wanted.items())

        elif callable(filter):
            match = filter
        else:
            raise TypeError(f"filter: expected a dict of metadata values or a callable, got {_describe(filter)}")
        ids = self._ids.tolist()
        alive = self._alive
        return np.array(
            [r for r, i in enumerate(ids) if alive[r] and match(self._metadata.get(i))], dtype=np.int64
        )

    def search(
        self,
        queries: np.ndarray,
        k: int = 10,
        filter: Mapping[str, Any] | Callable[[dict[str, Any] | None], bool] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest stored vectors of each query.

        Parameters
        ----------
        queries : ndarray float (n_queries, dim) or (dim,)
        k : int
        filter : dict or callable, optional
            Only rows whose metadata contains these key/values, or for which
            ``filter(metadata)`` is true (metadata is None for rows without).

        Returns
        -------
        scores : ndarray float32 (n_queries, k)
            Similarities (cosine/ip; best first) or squared distances (l2;
            smallest first); padded with -inf (inf for l2) when fewer rows exist.
        ids : ndarray int64 (n_queries, k)
            Padded with -1.
        """
        from memstrata.kernels.search import check_k

        q = self._prepare("queries", queries)
        k = check_k(k)
        self._merge()
        rows = self._rows_for(filter)
        if (self._ids.size if rows is None else rows.size) == 0:
            scores = np.full((q.shape[0], k), -np.inf, np.float32)
            found = np.full((q.shape[0], k), -1, np.int64)
        else:
            scores, found = self._search_rows(q, k, rows)
        valid = found >= 0
        if rows is not None:
            found = np.where(valid, rows[np.maximum(found, 0)] if rows.size else 0, -1)
        out_ids = np.where(valid, self._ids[np.maximum(found, 0)] if self._ids.size else -1, -1)
        if self.metric == "l2":
            qn = np.einsum("ij,ij->i", q, q).astype(np.float32)
            scores = np.where(valid, np.maximum(qn[:, None] - scores, 0), np.inf).astype(np.float32)
        return scores.astype(np.float32), out_ids.astype(np.int64)

    def _search_rows(self, q: np.ndarray, k: int, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k over ``rows`` (or all); returns scores (higher better) and positions into ``rows``."""
        from memstrata.kernels.search import float_search, hamming_search, int4_search, int8_search

        codes = self._codes if rows is None else self._codes[rows]
        bias = self._row_bias if rows is None or self._row_bias is None else self._row_bias[rows]
        factor = 2.0 if self.metric == "l2" else 1.0
        n = codes.shape[0]
        want = k if self.rescore is None else min(n, self._rescore_depth() * k) or 1
        if self.codec == "int8":
            assert self._scales is not None and self._offsets is not None
            cand = None
            if self._bits is not None and self.shortlist is not None and n > self.shortlist:
                bits = self._bits if rows is None else self._bits[rows]
                _, cand = hamming_search(self._binary(q), bits, max(self.shortlist, want))
            scores, found = int8_search(
                q, codes, self._scales, self._offsets, want, factor_scale=factor, row_bias=bias, candidates=cand
            )
        elif self.codec == "int4":
            assert self._scales is not None and self._offsets is not None
            scores, found = int4_search(q, codes, self._scales, self._offsets, want, factor_scale=factor, row_bias=bias)
        elif self.codec == "binary":
            dist, found = hamming_search(self._binary(q), codes, want)
            scores = np.where(found >= 0, 1.0 - 2.0 * dist / self.dim, -np.inf).astype(np.float32)
        else:
            scores, found = self._blas_topk(q, codes, want, factor, bias)
        if self.rescore is None:
            return scores, found
        assert self._orig_rows is not None
        orig_rows = self._orig_rows if rows is None else self._orig_rows[rows]
        exact_bias = None
        if self.metric == "l2":
            # -|x|^2 of the float originals, read from the file once per state of the memory
            if self._exact_bias is None or self._exact_bias[0] != self.seq:
                self._exact_bias = (self.seq, bias_exact(self, self._orig_rows))
            exact_bias = self._exact_bias[1] if rows is None else self._exact_bias[1][rows]
        return float_search(q, self._originals(), found, k, rows=orig_rows, factor=factor, row_bias=exact_bias)

    def _rescore_depth(self) -> int:
        """Candidates per result to re-rank: ``rescore``, or the calibrated depth for ``"auto"``."""
        if self.rescore == "auto":
            from memstrata.vectors._calibrate import current_depth

            return current_depth(self)
        assert isinstance(self.rescore, int)
        return self.rescore

    def stats(self) -> dict[str, Any]:
        """Size and search settings; with ``rescore="auto"`` the calibrated depth and measured recall.

        ``measured_recall`` is recall@10 of stored vectors used as queries
        (their own row excluded) against exact float search, at the chosen
        ``rescore_depth``; ``recall_lower_bound`` its one-sided 95 % bound,
        which the depth was chosen to bring to ``target_recall``.
        """
        self._merge()
        out: dict[str, Any] = {
            "count": len(self),
            "codec": self.codec,
            "metric": self.metric,
            "nbytes": self.nbytes,
            "rescore": self.rescore,
            "shortlist": self.shortlist,
            "target_recall": self.target_recall if self.rescore == "auto" else None,
        }
        if self.rescore == "auto":
            depth = self._rescore_depth() if len(self) else None
            cal = self._calibration
            out.update(
                rescore_depth=depth,
                measured_recall=None if cal is None else cal.recall,
                recall_lower_bound=None if cal is None else cal.lower_bound,
                calibrated_rows=None if cal is None else cal.n_rows,
                target_met=None if cal is None else cal.met,
            )
        else:
            out["rescore_depth"] = self.rescore
        return out

    def _blas_topk(
        self, q: np.ndarray, codes: np.ndarray, k: int, factor: float, bias: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over blocks with BLAS (the float32 codec); ties by lower row."""
        nq, n = q.shape[0], codes.shape[0]
        best_s = np.full((nq, 0), -np.inf, np.float32)
        best_i = np.full((nq, 0), -1, np.int64)
        for start in range(0, n, _BLOCK_ROWS):
            block = self._decoded(codes[start : start + _BLOCK_ROWS])
            s = (q @ block.T) * np.float32(factor)
            if bias is not None:
                s += bias[start : start + _BLOCK_ROWS]
            idx = np.broadcast_to(np.arange(start, start + block.shape[0], dtype=np.int64), s.shape)
            best_s, best_i = _keep_best(
                np.concatenate([best_s, s.astype(np.float32)], axis=1), np.concatenate([best_i, idx], axis=1), k
            )
        if best_s.shape[1] < k:
            pad = k - best_s.shape[1]
            best_s = np.concatenate([best_s, np.full((nq, pad), -np.inf, np.float32)], axis=1)
            best_i = np.concatenate([best_i, np.full((nq, pad), -1, np.int64)], axis=1)
        return best_s, best_i

    # --------------------------------------------------- near duplicates

    def near_duplicates(self, threshold: float = 0.95, *, return_similarity: bool = False) -> Any:
        """Pairs of ids whose cosine similarity is at least ``threshold``.

        Uses the float originals when ``rescore`` is set, else the decoded codes
        (int8 moves a similarity by about 1e-3). O(n² · d) in blocks of
        ``_BLOCK_ROWS`` rows.

        Returns
        -------
        ndarray int64 (n_pairs, 2)
            ``[id_a, id_b]`` with the row of ``id_a`` before that of ``id_b``,
            ordered by row; with ``return_similarity`` also the float32
            similarities.
        """
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold: expected a cosine similarity in [-1, 1], got {threshold!r}")
        self.compact()
        n = self._ids.shape[0]
        if self._orig_rows is not None:
            vectors = np.asarray(self._originals()[self._orig_rows], dtype=np.float32)
        else:
            vectors = np.asarray(self._decoded(self._codes), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.where(norms > 0, norms, 1.0).astype(np.float32)
        pairs_a: list[np.ndarray] = []
        pairs_b: list[np.ndarray] = []
        sims: list[np.ndarray] = []
        for start in range(0, n, _BLOCK_ROWS):
            block = unit[start : start + _BLOCK_ROWS]
            s = block @ unit[start:].T
            a, b = np.nonzero(s >= threshold)
            a_rows, b_rows = a + start, b + start
            keep = b_rows > a_rows
            pairs_a.append(a_rows[keep])
            pairs_b.append(b_rows[keep])
            sims.append(s[a[keep], b[keep]])
        a_all = np.concatenate(pairs_a) if pairs_a else np.empty(0, np.int64)
        b_all = np.concatenate(pairs_b) if pairs_b else np.empty(0, np.int64)
        order = np.lexsort((b_all, a_all))
        pairs = np.stack([self._ids[a_all[order]], self._ids[b_all[order]]], axis=1).astype(np.int64)
        if return_similarity:
            sim = np.concatenate(sims)[order] if sims else np.empty(0, np.float32)
            return pairs, sim.astype(np.float32)
        return pairs

    # ------------------------------------------------------ persistence

    def _sections(self) -> dict[str, np.ndarray]:
        self.compact()
        sections: dict[str, np.ndarray] = {"ids": self._ids, "codes": self._codes}
        for name in ("_bits", "_row_bias", "_scales", "_offsets", "_center"):
            value = getattr(self, name)
            if value is not None:
                sections[name.lstrip("_")] = value
        if self._orig_rows is not None:
            sections["originals"] = self._originals()[self._orig_rows] if self._orig_rows.size else np.empty(
                (0, self.dim), np.float32
            )
        return sections

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the memory to one file, atomically (temporary file, fsync, rename).

        Format: magic ``MSVECMEM``, format version, a JSON header (settings,
        sequence number, metadata, and per array its dtype, shape, offset and
        CRC-32), then the arrays, each aligned to 64 bytes. No pickle.
        """
        path = Path(path)
        sections = self._sections()
        layout = []
        offset = 0
        for name, arr in sections.items():
            arr = np.ascontiguousarray(arr)
            layout.append(
                {
                    "name": name,
                    "dtype": arr.dtype.str,
                    "shape": list(arr.shape),
                    "offset": offset,
                    "nbytes": int(arr.nbytes),
                    "crc32": zlib.crc32(memoryview(arr).cast("B")) if arr.nbytes else 0,
                }
            )
            offset += -(-arr.nbytes // _ALIGN) * _ALIGN
        header = {
            "format": "memstrata.VectorMemory",
            "dim": self.dim,
            "codec": self.codec,
            "metric": self.metric,
            "rescore": self.rescore,
            "shortlist": self.shortlist,
            **({"target_recall": self.target_recall} if self.rescore == "auto" else {}),
            "seq": self.seq,
            "next_id": self._next_id,
            "metadata": [[i, m] for i, m in self._metadata.items()],
            "sections": layout,
        }
        header_bytes = json.dumps(header, separators=(",", ":")).encode()
        data_start = -(-(_PREFIX.size + len(header_bytes)) // _ALIGN) * _ALIGN
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                f.write(_PREFIX.pack(_MAGIC, _FORMAT_VERSION, len(header_bytes), zlib.crc32(header_bytes)))
                f.write(header_bytes)
                f.write(b"\0" * (data_start - _PREFIX.size - len(header_bytes)))
                for entry, arr in zip(layout, sections.values()):
                    f.write(memoryview(np.ascontiguousarray(arr)).cast("B"))
                    f.write(b"\0" * (-(-entry["nbytes"] // _ALIGN) * _ALIGN - entry["nbytes"]))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, originals_path: str | os.PathLike[str] | None = None) -> VectorMemory:
        """Read a file written by :meth:`save`; every array's CRC-32 is checked.

        Raises
        ------
        memstrata.CorruptDataError
            Bad magic, version, header, sizes or checksum.
        """
        path = Path(path)
        data = path.read_bytes()
        if len(data) < _PREFIX.size:
            raise CorruptDataError(f"{path}: too short for a VectorMemory file ({len(data)} bytes)")
        magic, version, header_len, header_crc = _PREFIX.unpack_from(data)
        if magic != _MAGIC:
            raise CorruptDataError(f"{path}: not a VectorMemory file (bad magic {magic!r})")
        if version != _FORMAT_VERSION:
            raise CorruptDataError(f"{path}: unsupported VectorMemory format version {version}")
        header_bytes = data[_PREFIX.size : _PREFIX.size + header_len]
        if len(header_bytes) != header_len or zlib.crc32(header_bytes) != header_crc:
            raise CorruptDataError(f"{path}: header checksum mismatch")
        try:
            header = json.loads(header_bytes)
            memory = cls(
                header["dim"],
                header["codec"],
                header["metric"],
                header["rescore"],
                shortlist=header["shortlist"],
                originals_path=originals_path,
                target_recall=header.get("target_recall", 0.99),
            )
            data_start = -(-(_PREFIX.size + header_len) // _ALIGN) * _ALIGN
            # every byte is accounted for: header padding and section padding must be zero
            # and the file must end where the last section does, so no flipped byte goes unseen
            if data[_PREFIX.size + header_len : data_start].strip(b"\0"):
                raise CorruptDataError(f"{path}: non-zero bytes in header padding")
            expected_end = data_start
            for entry in header["sections"]:
                expected_end = data_start + int(entry["offset"]) + -(-int(entry["nbytes"]) // _ALIGN) * _ALIGN
                pad = data[data_start + int(entry["offset"]) + int(entry["nbytes"]) : expected_end]
                if pad.strip(b"\0"):
                    raise CorruptDataError(f"{path}: non-zero bytes in the padding after section {entry['name']!r}")
            if len(data) != expected_end:
                raise CorruptDataError(f"{path}: file is {len(data)} bytes, expected {expected_end}")
            arrays: dict[str, np.ndarray] = {}
            for entry in header["sections"]:
                start = data_start + int(entry["offset"])
                stop = start + int(entry["nbytes"])
                dtype = np.dtype(entry["dtype"])
                shape = tuple(int(s) for s in entry["shape"])
                if dtype.hasobject or stop > len(data) or int(np.prod(shape)) * dtype.itemsize != stop - start:
                    raise CorruptDataError(f"{path}: section {entry['name']!r} does not fit the file")
                raw = data[start:stop]
                if zlib.crc32(raw) != entry["crc32"]:
                    raise CorruptDataError(f"{path}: checksum mismatch in section {entry['name']!r}")
                arrays[entry["name"]] = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        except CorruptDataError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptDataError(f"{path}: malformed VectorMemory header ({exc})") from exc
        memory._ids = arrays["ids"]
        memory._codes = arrays["codes"]
        memory._alive = np.ones(memory._ids.shape[0], bool)
        for name in ("bits", "row_bias", "scales", "offsets", "center"):
            if name in arrays:
                setattr(memory, "_" + name, arrays[name])
        if "originals" in arrays:
            originals = arrays.pop("originals")
            memory._orig_rows = memory._append_originals(originals)
        memory.seq = int(header["seq"])
        memory._next_id = int(header["next_id"])
        for i, meta in header["metadata"]:
            memory._metadata[int(i)] = meta
            memory._metadata_bytes += len(json.dumps(meta, separators=(",", ":")))
        return memory

    # ---------------------------------------------------- codec choice

    @classmethod
    def fit_codec(
        cls,
        sample: np.ndarray,
        target_recall: float = 0.99,
        k: int = 10,
        *,
        metric: str = "cosine",
        n_queries: int = 200,
        rescore_factors: tuple[int, ...] = (2, 4, 10, 20),
    ) -> CodecChoice:
        """Measure candidate codecs on ``sample`` and pick the smallest meeting ``target_recall``.

        The first ``n_queries`` rows of ``sample`` are searched against the
        whole sample (their own row excluded) with every configuration
        (binary/int4/int8, each without and with rescoring, and float32), and
        recall@k is measured against the exact neighbours (a result counts when
        its exact similarity reaches that of the true k-th neighbour, so ties
        are not penalised). Size is bytes per vector held in RAM.

        Returns
        -------
        CodecChoice
            The choice, the recall it measured and every measurement.
        """
        if not isinstance(sample, np.ndarray) or sample.ndim != 2 or sample.dtype.kind != "f":
            raise TypeError(f"sample: expected float array of shape (n, d), got {_describe(sample)}")
        if not 0.0 < target_recall <= 1.0:
            raise ValueError(f"target_recall: expected a value in (0, 1], got {target_recall!r}")
        n, d = sample.shape
        if n < k + 2:
            raise ValueError(f"sample: expected more than k + 1 = {k + 1} rows, got {n}")
        nq = min(n_queries, n)
        probe = cls(d, "float32", metric)
        x = probe._prepare("sample", sample)
        queries = x[:nq]
        exact = queries @ x.T if metric != "l2" else 2 * queries @ x.T - np.einsum("ij,ij->i", x, x)[None, :]
        exact[np.arange(nq), np.arange(nq)] = -np.inf
        kth = -np.sort(-exact, axis=1)[:, k - 1]

        def measure(codec: str, rescore: int | None) -> float:
            memory = cls(d, codec, metric, rescore)
            try:
                memory.add(x)
                _, ids = memory.search(queries, k + 1)
            finally:
                memory.close()
            hits = 0
            for a in range(nq):
                got = [i for i in ids[a].tolist() if i != a and i >= 0][:k]
                hits += int((exact[a, got] >= kth[a] - 1e-6).sum())
            return hits / (nq * k)

        configs: list[tuple[str, int | None]] = []
        for codec in ("binary", "int4", "int8"):
            if not (codec == "binary" and metric == "l2"):
                configs.append((codec, None))
            configs.extend((codec, m) for m in rescore_factors)
        configs.append(("float32", None))
        width = {"binary": (d + 7) // 8, "int4": (d + 1) // 2, "int8": d, "float32": 4 * d}
        measured = []
        for codec, rescore in configs:
            ram = width[codec] + 8 + (8 if rescore else 0) + (4 if metric == "l2" and codec != "binary" else 0)
            measured.append(
                {"codec": codec, "rescore": rescore, "recall": measure(codec, rescore), "bytes_per_vector": ram}
            )
        measured.sort(key=lambda m: (m["bytes_per_vector"], m["rescore"] or 0))
        meeting = [m for m in measured if m["recall"] >= target_recall]
        best = meeting[0] if meeting else max(measured, key=lambda m: (m["recall"], -m["bytes_per_vector"]))
        return CodecChoice(
            codec=best["codec"],
            rescore=best["rescore"],
            recall=best["recall"],
            bytes_per_vector=best["bytes_per_vector"],
            met=bool(meeting),
            target_recall=float(target_recall),
            k=int(k),
            measured=measured,
        )


def _keep_best(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` columns per row, best first, ties to the lower id.

    ``argpartition`` finds the k-th score in linear time; only rows where ties
    at that score compete for the last places fall back to a full lexsort.
    """
    nq, m = scores.shape
    if m > k:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
        above = (scores > kth).sum(axis=1)
        at = (scores == kth).sum(axis=1)
        exact = above + at == k  # no tie straddles the cut: the partition is the answer
        sel_s = np.take_along_axis(scores, part, axis=1)
        sel_i = np.take_along_axis(ids, part, axis=1)
        for r in np.flatnonzero(~exact):
            order = np.lexsort((ids[r], -scores[r]))[:k]
            sel_s[r], sel_i[r] = scores[r, order], ids[r, order]
        scores, ids = sel_s, sel_i
    order = np.lexsort((ids, -scores), axis=1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


def bias_exact(memory: VectorMemory, orig_rows: np.ndarray) -> np.ndarray | None:
    """Row bias for exact L2 rescoring (``-|x|^2`` of the originals); None for other metrics."""
    if memory.metric != "l2":
        return None
    originals = memory._originals()
    out = np.empty(orig_rows.shape[0], np.float32)
    for start in range(0, orig_rows.shape[0], _BLOCK_ROWS):
        block = originals[orig_rows[start : start + _BLOCK_ROWS]]
        out[start : start + _BLOCK_ROWS] = -np.einsum("ij,ij->i", block, block)
    return out

"""``VectorMemory``: ids + vectors stored as int8 / int4 / binary codes (or float32), with metadata.

This module holds the public class: construction, persistence, reads and search;
the writes are in ``_writes``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from memstrata._closing import ClosesOnExit
from memstrata.types import Metric, VectorCodecName
from memstrata.vectors import _persist, _search
from memstrata.vectors._args import as_ids, check_k
from memstrata.vectors._calibrate import CodecChoice, fit_codec
from memstrata.vectors._state import FilterArg, locked
from memstrata.vectors._writes import Writes

__all__ = ["CodecChoice", "VectorMemory"]

class VectorMemory(Writes, ClosesOnExit):
    """Ids and vectors held as compact codes, with metadata, searchable by cosine, inner product or L2.

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
        Keep float32 originals on disk (mapped, one copy), search the codes for
        ``rescore * k`` candidates and re-rank them exactly. Required for
        ``binary`` with ``metric="l2"``. ``"auto"`` chooses the depth from a
        calibration on the stored data (stored vectors searched as queries
        against the exact float results, refreshed as the memory grows) so that
        recall@10 reaches ``target_recall`` with a 95 % confidence margin;
        :meth:`stats` reports the depth and the measured recall.
    target_recall : float, default 0.99
        The recall@10 ``rescore="auto"`` and ``shortlist="auto"`` calibrate for; kept in snapshots and checkpoints.
    shortlist : int or "auto", optional
        For ``int8``: also hold sign bits (d/8 bytes per vector) and score only
        the ``shortlist`` nearest rows by Hamming distance instead of every row.
        ``"auto"`` chooses the size from a calibration on the stored data (the
        smallest whose results keep ``target_recall`` of the full scan's, with
        the same margins as ``rescore="auto"``; every row below 512);
        :meth:`stats` reports it.
    originals_path : str or Path, optional
        Where the float originals go when ``rescore`` is set (default: a
        temporary file removed on close). One instance at a time may write a
        path (``StoreLockedError``); an existing file there is replaced, not
        truncated.

    Notes
    -----
    A memory made with the constructor lives in RAM (``save`` writes a
    snapshot). :meth:`open` gives a durable memory in a directory: every
    ``add`` / ``upsert`` / ``update`` / ``delete`` is in its log before it
    returns. Every mutation gets a sequence number (``seq``). ``delete``
    leaves a tombstone; :meth:`compact` rewrites without deleted rows. Missing
    ids raise ``KeyError`` naming them in ``get``, ``metadata``, ``update`` and
    ``delete`` (``delete(..., missing_ok=True)`` skips them). Filters are the
    language of :mod:`memstrata.vectors.filters` (or a callable). Threads:
    every method may be called from many threads; one at a time holds the
    memory.

    **Bytes per vector on disk** (a compacted durable memory, ``d``
    dimensions; each byte is in one file): the codes (int8 ``d``, int4
    ``d/2``, binary ``d/8``, float32 ``4d``) + 8 (id) + the metadata as
    compact JSON, plus ``4d`` with ``rescore`` (the float originals, one
    copy), ``4`` with ``metric="l2"`` (row norms) and ``d/8`` with
    ``shortlist``. For 384-d embeddings with ~35 bytes of metadata,
    ``benchmarks/bench_vectors_agent.py::test_bytes_on_disk_per_vector``
    measures 427 (int8), 235 (int4), 91 (binary), 1579 (float32) bytes, and
    1536 more with ``rescore``: within 0.2 % of that sum. The log holds each
    write once until the next checkpoint moves it into the state file.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata import VectorMemory
    >>> rng = np.random.default_rng(0)
    >>> vectors = rng.standard_normal((1000, 64)).astype(np.float32)
    >>> memory = VectorMemory(64, codec="int8")
    >>> memory.add(vectors, metadata=[{"kind": "note" if i % 2 else "task"} for i in range(1000)])
    array([  0,   1,   2, ..., 997, 998, 999])
    >>> scores, ids = memory.search(vectors[:2], k=3)
    >>> ids[:, 0]
    array([0, 1])
    >>> _, notes = memory.search(vectors[:1], k=5, filter={"kind": "note"})
    >>> memory.count({"kind": "note"}), bool((notes % 2 == 1).all())
    (500, True)
    >>> memory.close()
    """

    def __init__(
        self,
        dim: int,
        codec: VectorCodecName = "int8",
        metric: Metric = "cosine",
        rescore: int | Literal["auto"] | None = None,
        *,
        shortlist: int | Literal["auto"] | None = None,
        originals_path: str | os.PathLike[str] | None = None,
        target_recall: float = 0.99,
    ) -> None:
        self._closed = True  # until constructed: __del__ and close() of a half-built instance do nothing
        self._lock = threading.RLock()
        if isinstance(target_recall, bool) or not isinstance(target_recall, (int, float)) or not 0 < target_recall <= 1:
            raise ValueError(f"target_recall: expected a value in (0, 1], got {target_recall!r}")
        self._init(dim, codec, metric, rescore, shortlist)
        self.target_recall = float(target_recall)
        if rescore is not None:
            self._originals = _persist.private_originals(self, originals_path)

    # ------------------------------------------------------- persistence
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        dim: int | None = None,
        codec: VectorCodecName | None = None,
        metric: Metric | None = None,
        rescore: int | Literal["auto"] | None = None,
        *,
        shortlist: int | Literal["auto"] | None = None,
        read_only: bool = False,
        durability: str = "normal",
    ) -> VectorMemory:
        """Open (or create) a durable memory in the directory ``path``.

        Each ``add`` / ``upsert`` / ``update`` / ``delete`` is appended to a log
        (codes, ids, metadata; float originals to a side file) before it
        returns; the state is checkpointed (:meth:`checkpoint`, and
        automatically as the log grows) and the log replayed on open.

        Parameters
        ----------
        path : directory (created if missing)
        dim, codec, metric, rescore, shortlist
            Settings of a new memory (``dim`` required; the defaults are the
            constructor's). For an existing memory they are read from it; any
            that are passed must match.
        read_only : bool
            Open without writing: any number of readers may open a directory,
            also while a writer has it. A reader sees the state as of its open;
            mutations raise ``PermissionError``.
        durability : {"none", "normal", "full"}
            As ``MemoryStore``'s: ``"none"`` never fsyncs (survives a killed
            process, not a power loss); ``"normal"`` fsyncs at checkpoints and
            on close (survives a killed process with every acknowledged write;
            after a power loss the memory opens, the last writes may be
            missing); ``"full"`` fsyncs every write (survives power loss).

        Raises
        ------
        memstrata.StoreLockedError
            Another instance (in this or another process) has ``path`` open for writing.
        memstrata.CorruptDataError
            A file of the memory fails its checks.
        """
        return _persist.open_directory(
            cls, Path(path), {"dim": dim, "codec": codec, "metric": metric, "rescore": rescore, "shortlist": shortlist},
            read_only=read_only, durability=durability,
        )

    @locked
    def stats(self) -> dict[str, Any]:
        """Size and search settings; with ``rescore="auto"`` the calibrated depth and measured recall.

        ``measured_recall`` is recall@10 of stored vectors used as queries
        (their own row excluded) against exact float search, at the chosen
        ``rescore_depth``; ``recall_lower_bound`` its one-sided 95 % bound,
        which the depth was chosen to bring to ``target_recall``.
        """
        self._check_open()
        self._merge()
        out: dict[str, Any] = {
            "count": len(self), "codec": self.codec, "metric": self.metric, "nbytes": self.nbytes,
            "rescore": self.rescore, "shortlist": self.shortlist,
            "target_recall": self.target_recall if "auto" in (self.rescore, self.shortlist) else None,
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
        if self.shortlist == "auto":
            from memstrata.vectors._shortlist import shortlist_size

            size = shortlist_size(self) if len(self) else None
            sc = self._shortlist_calibration
            out.update(
                shortlist_size=size,
                shortlist_agreement=None if sc is None else sc.agreement,
                shortlist_calibrated_rows=None if sc is None else sc.n_rows,
            )
        else:
            out["shortlist_size"] = self.shortlist
        return out

    @locked
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a snapshot of the memory to one ``.msvm`` file, atomically (a new file renamed over ``path``)."""
        self._check_open()
        _persist.save_snapshot(self, Path(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, originals_path: str | os.PathLike[str] | None = None) -> VectorMemory:
        """Read a snapshot written by :meth:`save`; every section's CRC-32 is checked.

        The float originals (``rescore``) are mapped from the snapshot, not
        copied; rows added later go to ``originals_path`` (default: a
        temporary file). Changes stay in RAM until the next :meth:`save`.

        Raises
        ------
        memstrata.CorruptDataError
            Bad magic, version, header, sizes or checksum.
        """
        return _persist.load_snapshot(cls, Path(path), originals_path)

    @locked
    def checkpoint(self) -> None:
        """Write the state of a durable memory to a new checkpoint and start a new, empty log."""
        self._check_writable()
        if self._durable is not None:
            _persist.checkpoint(self)

    @locked
    def compact(self) -> None:
        """Rewrite without deleted rows: RAM, and every file (after it no byte of a deleted vector remains)."""
        self._check_writable()
        self._compact_rows()
        _persist.compact_files(self)

    @locked
    def close(self) -> None:
        """Release the files and the writer lock; any later call raises ``ClosedError``. Idempotent."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        try:
            _persist.close_durable(self)
            if self._originals is not None:
                self._originals.close()
        finally:
            for lock in self._locks:
                lock.release()

    def __enter__(self) -> VectorMemory:
        self._check_open()
        return self

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    # ------------------------------------------------------------- sizes

    @locked
    def __len__(self) -> int:
        self._check_open()
        return int(self._ids.shape[0] + sum(c["ids"].shape[0] for c in self._pending) - self._n_deleted)

    @property
    def nbytes(self) -> int:
        """Bytes held in RAM: codes, ids, parameters, tombstones, metadata (JSON size + columns); not the originals."""
        arrays = [self._ids, self._codes, self._alive, self._bits, self._row_bias, self._orig_rows]
        # a row array that is a view of a growth buffer holds the whole buffer
        arrays = [a.base if a is not None and a.base is self._buffers.get(n) else a for n, a in zip(
            ("_ids", "_codes", "_alive", "_bits", "_row_bias", "_orig_rows"), arrays)]
        arrays += [self._sorter, self._sorted_ids, self._scales, self._offsets, self._center]
        total = sum(a.nbytes for a in arrays if a is not None)
        total += sum(a.nbytes for chunk in self._pending for a in chunk.values())
        return int(total + self._metadata_bytes + self._columns.nbytes)

    # ------------------------------------------------------------- reads
    @locked
    def get(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Vectors of ``ids`` (float32, (len(ids), dim)): the originals with ``rescore``, else decoded codes.

        Cosine memories return unit-length vectors. Raises ``KeyError`` naming missing ids.
        """
        self._check_open()
        rows = self._find_rows(as_ids("ids", ids))
        if self._originals is not None:
            assert self._orig_rows is not None
            return self._originals.take(self._orig_rows[rows])
        return np.array(_search.decode(self, self._codes[rows]), dtype=np.float32)

    @locked
    def metadata(self, id_: int) -> dict[str, Any] | None:
        """The metadata stored with ``id_`` (None if it has none); ``KeyError`` if ``id_`` is not in the memory."""
        self._check_open()
        self._find_rows(as_ids("id_", id_))
        return self._metadata.get(int(id_))

    @locked
    def ids(self, filter: FilterArg = None, *, strict: bool = True) -> np.ndarray:
        """Ids of the live rows (matching ``filter``), in insertion order (int64)."""
        self._check_open()
        rows = self._rows_for(filter, strict, all_rows=True)  # merges pending rows first
        ids: np.ndarray = self._ids[rows]
        return ids

    def items(self, filter: FilterArg = None, *, strict: bool = True) -> Iterator[tuple[int, dict[str, Any] | None]]:
        """``(id, metadata)`` of the live rows (matching ``filter``), in insertion order."""
        for i in self.ids(filter, strict=strict).tolist():
            yield i, self._metadata.get(i)

    @locked
    def count(self, filter: FilterArg = None, *, strict: bool = True) -> int:
        """How many live rows (match ``filter``)."""
        self._check_open()
        if filter is None:
            return len(self)
        return int(self._rows_for(filter, strict, all_rows=True).size)

    @locked
    def search(
        self, queries: np.ndarray, k: int = 10, filter: FilterArg = None, *, strict: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest stored vectors of each query.

        Parameters
        ----------
        queries : ndarray float (n_queries, dim) or (dim,)
        k : int
        filter : dict or callable, optional
            A filter of :mod:`memstrata.vectors.filters` (evaluated over
            columnar metadata), or ``filter(metadata) -> bool`` called per row
            (metadata is None for rows without).
        strict : bool
            A dict filter naming a key no stored row has raises ``ValueError``
            (default); with False such a key is absent from every row.

        Returns
        -------
        scores : ndarray float32 (n_queries, k)
            Similarities (cosine/ip; best first) or squared distances (l2;
            smallest first); padded with -inf (inf for l2) when fewer rows exist.
        ids : ndarray int64 (n_queries, k)
            Padded with -1.
        """
        self._check_open()
        q = self._prepare("queries", queries)
        k = check_k(k)
        rows = self._rows_for(filter, strict)
        if (self._ids.size if rows is None else rows.size) == 0:
            scores = np.full((q.shape[0], k), -np.inf, np.float32)
            found = np.full((q.shape[0], k), -1, np.int64)
        else:
            scores, found = _search.search_rows(self, q, k, rows)
        valid = found >= 0
        if rows is not None:
            found = np.where(valid, rows[np.maximum(found, 0)] if rows.size else 0, -1)
        out_ids = np.where(valid, self._ids[np.maximum(found, 0)] if self._ids.size else -1, -1)
        if self.metric == "l2":
            qn = np.einsum("ij,ij->i", q, q).astype(np.float32)
            scores = np.where(valid, np.maximum(qn[:, None] - scores, 0), np.inf).astype(np.float32)
        return scores.astype(np.float32), out_ids.astype(np.int64)

    @locked
    def near_duplicates(self, threshold: float = 0.95, *, return_similarity: bool = False) -> Any:
        """Pairs of ids whose cosine similarity is at least ``threshold``.

        Uses the float originals when ``rescore`` is set, else the decoded codes
        (int8 moves a similarity by about 1e-3). O(n² · d) in blocks.

        Returns
        -------
        ndarray int64 (n_pairs, 2)
            ``[id_a, id_b]`` with the row of ``id_a`` before that of ``id_b``,
            ordered by row; with ``return_similarity`` also the float32
            similarities.
        """
        self._check_open()
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold: expected a cosine similarity in [-1, 1], got {threshold!r}")
        self._compact_rows()
        return _search.near_duplicates(self, float(threshold), return_similarity)

    fit_codec = classmethod(fit_codec)

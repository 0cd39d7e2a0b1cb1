"""The writes of :class:`~memstrata.vectors.VectorMemory`: add, upsert, update, delete.

Each builds one record, and :meth:`Writes._commit` makes it durable (a durable
memory's log) before applying it to the index state, so what a call returns
is what a reopened memory holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from memstrata.vectors import _persist
from memstrata.vectors._args import as_ids, describe, unique_sorted
from memstrata.vectors._state import FilterArg, IndexState, locked

__all__ = ["Writes"]


class Writes(IndexState):
    """The mutating methods of ``VectorMemory``; every one runs under the memory's lock."""

    @locked
    def add(
        self,
        vectors: np.ndarray,
        ids: Iterable[int] | np.ndarray | None = None,
        metadata: list[Mapping[str, Any] | None] | None = None,
    ) -> np.ndarray:
        """Add new vectors; returns their ids (int64).

        Parameters
        ----------
        vectors : ndarray float32/float64 (n, dim)
        ids : array of int, optional
            Unique, not already present (use :meth:`upsert` to replace).
            Default: consecutive ids after the largest seen.
        metadata : list of dict, optional
            One JSON-serializable mapping (or None) per vector, for filters.
        """
        return self._write(vectors, ids, metadata, replace=False)

    @locked
    def upsert(
        self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray, metadata: list[Mapping[str, Any] | None] | None = None
    ) -> np.ndarray:
        """Add ``ids``, replacing (vector and metadata) those already present; returns the ids."""
        return self._write(vectors, ids, metadata, replace=True)

    def _write(
        self,
        vectors: np.ndarray,
        ids: Iterable[int] | np.ndarray | None,
        metadata: list[Mapping[str, Any] | None] | None,
        *,
        replace: bool,
    ) -> np.ndarray:
        """:meth:`add` (``replace=False``: ids given must be new) or :meth:`upsert`, under the lock."""
        self._check_writable()
        x = self._prepare("vectors", vectors)
        new_ids = self._new_ids(ids, x.shape[0])
        if not replace and ids is not None:
            found = self._find_rows(new_ids, missing_ok=True)
            if (found >= 0).any():
                present = new_ids[found >= 0][:5].tolist()
                raise ValueError(
                    f"ids: expected new ids, got some already in the memory ({present}); use upsert() to replace"
                )
        meta = self._check_metadata(metadata, x.shape[0])
        if x.shape[0]:
            self._commit(self._add_record(x, new_ids, meta, replace=replace))
        return new_ids

    @locked
    def update(
        self,
        ids: Iterable[int] | np.ndarray,
        vectors: np.ndarray | None = None,
        metadata: list[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Change existing ids: new ``vectors`` (metadata kept unless given), new ``metadata`` (whole dicts), or both.

        A metadata-only update touches no vector. Raises ``KeyError`` naming
        ids that are not in the memory.
        """
        self._check_writable()
        arr = as_ids("ids", ids)
        if unique_sorted(arr).size != arr.size:
            raise ValueError("ids: expected unique ids, got duplicates within the batch")
        self._find_rows(arr)  # KeyError naming missing ids
        meta = self._check_metadata(metadata, arr.size)
        if vectors is None:
            if meta is not None and arr.size:
                self._commit({"op": "meta", "ids": arr, "meta": meta})
            return
        x = self._prepare("vectors", vectors)
        if x.shape[0] != arr.size:
            raise ValueError(f"vectors: expected {arr.size} rows (one per id), got {describe(vectors)}")
        if meta is None:
            meta = [self._metadata.get(i) for i in arr.tolist()]
        if arr.size:
            self._commit(self._add_record(x, arr, meta, replace=True))

    @locked
    def delete(
        self,
        ids: Iterable[int] | np.ndarray | None = None,
        *,
        filter: FilterArg = None,
        strict: bool = True,
        missing_ok: bool = False,
    ) -> int:
        """Delete ``ids``, or every row matching ``filter``; returns how many were deleted.

        Raises ``KeyError`` naming ids not in the memory, unless ``missing_ok``.
        """
        self._check_writable()
        if (ids is None) == (filter is None):
            raise ValueError("delete: pass either ids or filter=, not both or neither")
        if ids is not None:
            arr = unique_sorted(as_ids("ids", ids))
            rows = self._find_rows(arr, missing_ok=missing_ok)
            arr = arr[rows >= 0]
        else:
            rows = self._rows_for(filter, strict, all_rows=True)
            arr = self._ids[rows]
        if arr.size:
            self._commit({"op": "delete", "ids": arr})
        return int(arr.size)

    def _commit(self, record: dict[str, Any]) -> None:
        """Make ``record`` durable (a durable memory's log), then apply it."""
        if self._durable is not None:
            self._durable.append(self.seq + 1, record)
        self._apply(record)
        if self._durable is not None and self._durable.wants_checkpoint(self):
            _persist.checkpoint(self)

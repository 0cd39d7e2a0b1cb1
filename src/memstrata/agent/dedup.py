"""Near-duplicate matching on write: the nearest stored memory of the same scope, and earlier rows of the batch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from memstrata.agent.memory import AgentMemory

__all__ = ["NearMatcher", "find_near", "nearest_stored"]

_BLOCK = 256  # rows of the batch compared at once: a (256, n) block of cosines, not (1024, n)


class NearMatcher:
    """For each row of a batch: the id of a stored (or earlier-in-batch) memory at cosine ≥ threshold, or None.

    Stored memories are looked up through :meth:`VectorIndex.near` when a row
    is matched (so an exact duplicate, found first by its hash, costs no
    lookup): every stored row at the threshold or above, best first; the first
    of the same scope that is not hidden wins. Rows of the batch are compared
    with the rows added before them exactly.
    """

    def __init__(self, memory: AgentMemory, x: np.ndarray, scope: tuple[Any, ...],
                 sketches: np.ndarray | None = None) -> None:
        self.threshold = float(memory.config.near_duplicate_threshold)
        self._memory, self._x, self._scope, self._sketches = memory, x, scope, sketches
        self._near: list[tuple[np.ndarray, np.ndarray]] | None = None
        # earlier rows of the batch at cosine >= threshold, best first, found block by block with one matrix product
        self._earlier: dict[int, list[tuple[float, int]]] = {}
        n = x.shape[0]
        for start in range(1, n, _BLOCK):
            stop = min(start + _BLOCK, n)
            sims = x[start:stop] @ x[:stop].T
            rows, cols = np.nonzero(sims >= self.threshold)
            for r, c in zip(rows.tolist(), cols.tolist()):
                if c < start + r:
                    self._earlier.setdefault(start + r, []).append((float(sims[r, c]), c))
        for pairs in self._earlier.values():
            pairs.sort(key=lambda p: (-p[0], p[1]))
        self._row_id: dict[int, int] = {}  # batch row -> id it was stored under

    def _stored_match(self, i: int) -> tuple[int | None, float]:
        """The most similar stored memory of the scope that no read hides, at the threshold or above, and its cosine.

        The first call looks up every row of the batch at once (one read of the
        candidates' vectors); a batch whose rows are all exact duplicates makes none.
        """
        memory, vectors = self._memory, self._memory._vectors
        if vectors is None or not len(vectors):
            return None, -np.inf
        if self._near is None:
            self._near = vectors.near(self._x, self.threshold, self._sketches)
        ids, sims = self._near[i]
        return _first_visible(memory, ids, sims, self._scope)

    def match(self, i: int) -> int | None:
        """The memory row ``i`` duplicates: the more similar of the stored match and the earlier stored batch rows."""
        best, best_sim = self._stored_match(i)
        for sim, j in self._earlier.get(i, ()):
            if j in self._row_id:
                if sim > best_sim:
                    best = self._row_id[j]
                break
        return best

    def added(self, row: int, id_: int) -> None:
        self._row_id[row] = id_


def find_near(memory: AgentMemory, x: np.ndarray, scope: tuple[Any, ...],
              sketches: np.ndarray | None = None) -> NearMatcher:
    return NearMatcher(memory, x, scope, sketches)


def nearest_stored(memory: AgentMemory, x: np.ndarray, scope: tuple[Any, ...],
                   sketches: np.ndarray | None = None) -> int | None:
    """:meth:`NearMatcher.match` of a batch of one row ``x`` (1, d): the most similar stored memory of ``scope``
    that no read hides, at the threshold or above, or None."""
    vectors = memory._vectors
    if vectors is None or not len(vectors):
        return None
    ids, sims = vectors.near(x, float(memory.config.near_duplicate_threshold), sketches)[0]
    if not ids.size:  # the usual add: no stored memory that near
        return None
    return _first_visible(memory, ids, sims, scope)[0]


def _first_visible(memory: AgentMemory, ids: np.ndarray, sims: np.ndarray,
                   scope: tuple[Any, ...]) -> tuple[int | None, float]:
    """The first of ``ids`` (with its cosine from ``sims``) held, of ``scope`` and hidden from no read."""
    records = memory._records
    for id_, sim in zip(ids.tolist(), sims.tolist()):
        if id_ in records and records.scope_of(id_) == scope and not records.is_restricted(id_):
            return id_, sim
    return None, -np.inf

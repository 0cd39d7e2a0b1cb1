"""Near-duplicate matching on write: the nearest stored memory of the same scope, and earlier rows of the batch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from memstrata.agent.memory import AgentMemory

__all__ = ["NearMatcher", "find_near"]

_BLOCK = 1024
_CANDIDATES = 8  # nearest stored rows examined per new memory; the first one of the same scope wins


class NearMatcher:
    """For each row of a batch: the id of a stored (or earlier-in-batch) memory at cosine ≥ threshold, or None.

    Stored memories are searched once for the whole batch (top ``_CANDIDATES``,
    then the first of the same scope that is not hidden); rows of the batch are
    compared with the rows added before them exactly.
    """

    def __init__(self, memory: AgentMemory, x: np.ndarray, scope: tuple[Any, ...]) -> None:
        self.threshold = float(memory.config.near_duplicate_threshold)
        self._stored: list[int | None] = [None] * x.shape[0]
        self._stored_sim = np.full(x.shape[0], -np.inf, np.float32)
        vectors = memory._vectors
        if vectors is not None and len(vectors):
            records = memory._records
            all_ids, all_sims = vectors.search_many(x, _CANDIDATES)
            for i in range(x.shape[0]):
                for id_, sim in zip(all_ids[i].tolist(), all_sims[i].tolist()):
                    if sim < self.threshold:
                        break
                    rec = records.get(id_)
                    if rec is not None and (rec.user_id, rec.agent_id, rec.run_id) == scope and not memory._restricted(rec):
                        self._stored[i], self._stored_sim[i] = id_, sim
                        break
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

    def match(self, i: int) -> int | None:
        """The memory row ``i`` duplicates: the more similar of the stored match and the earlier stored batch rows."""
        best, best_sim = self._stored[i], float(self._stored_sim[i])
        for sim, j in self._earlier.get(i, ()):
            if j in self._row_id:
                if sim > best_sim:
                    best = self._row_id[j]
                break
        return best

    def added(self, row: int, id_: int) -> None:
        self._row_id[row] = id_


def find_near(memory: AgentMemory, x: np.ndarray, scope: tuple[Any, ...]) -> NearMatcher:
    return NearMatcher(memory, x, scope)

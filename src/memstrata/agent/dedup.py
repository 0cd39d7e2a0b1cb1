"""Near-duplicate matching on write: the nearest stored memory of the same scope, and earlier rows of the batch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from memstrata.agent.memory import AgentMemory

__all__ = ["NearMatcher", "find_near"]

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
            for i in range(x.shape[0]):
                ids, sims = vectors.search(x[i], _CANDIDATES)
                for id_, sim in zip(ids.tolist(), sims.tolist()):
                    if sim < self.threshold:
                        break
                    rec = records.get(id_)
                    if rec is not None and (rec.user_id, rec.agent_id, rec.run_id) == scope and not memory._restricted(rec):
                        self._stored[i], self._stored_sim[i] = id_, sim
                        break
        self._batch_ids: list[int] = []
        self._batch_rows: list[np.ndarray] = []

    def match(self, i: int, x: np.ndarray, _new_ids: list[int]) -> int | None:
        """The memory row ``i`` duplicates: the more similar of the stored match and the earlier batch rows."""
        best, best_sim = self._stored[i], float(self._stored_sim[i])
        if self._batch_rows:
            sims = np.stack(self._batch_rows) @ x[i]
            j = int(np.argmax(sims))
            if sims[j] >= self.threshold and sims[j] > best_sim:
                best = self._batch_ids[j]
        return best

    def added(self, id_: int, row: np.ndarray) -> None:
        self._batch_ids.append(id_)
        self._batch_rows.append(row)


def find_near(memory: AgentMemory, x: np.ndarray, scope: tuple[Any, ...]) -> NearMatcher:
    return NearMatcher(memory, x, scope)

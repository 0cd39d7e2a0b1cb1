"""Search: vector (cosine over the quantized index), keyword (BM25 from FTS5) and hybrid (reciprocal-rank fusion).

Filters, scopes, validity (``as_of``) and expiry become one set of allowed ids
before any ranking (:meth:`AgentMemory.mask`), and each mode draws candidates
from inside that set, so ``limit`` results come back whenever that many
allowed memories match. Candidates (``limit · POOL_FACTOR`` of them) are then
ranked by ``weight_similarity·similarity + weight_relevance·relevance +
weight_recency·recency``; every result carries its parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from memstrata.agent.records import SearchResult
from memstrata.agent.relevance import recency, relevance_factors
from memstrata.agent.vectorindex import unit_rows

if TYPE_CHECKING:
    from memstrata.agent.memory import AgentMemory

__all__ = ["MODES", "POOL_FACTOR", "RRF_K", "search"]

MODES = ("vector", "keyword", "hybrid")
#: candidates drawn per mode, as a multiple of ``limit``, before blending with relevance and recency
POOL_FACTOR = 2
#: the constant of reciprocal-rank fusion: score = Σ 1 / (RRF_K + rank)
RRF_K = 60


def _query_vector(memory: AgentMemory, query: Any) -> np.ndarray | None:
    if isinstance(query, np.ndarray):
        dim = memory._vectors.dim if memory._vectors is not None else None
        return unit_rows(query.reshape(1, -1) if query.ndim == 1 else query, "query", dim)[0]
    if memory.embedder is None:
        raise ValueError(
            "query: a text query in vector or hybrid mode needs an embedder; pass embedder= to AgentMemory "
            "(e.g. memstrata.agent.SentenceTransformerEmbedder() from memstrata[embed]), a vector query, or mode='keyword'"
        )
    return unit_rows(np.asarray(memory.embedder.embed([query])), "embedder.embed([query])", None)[0]


def _vector_hits(memory: AgentMemory, q: np.ndarray, pool: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    if memory._vectors is None:
        return []
    ids, sims = memory._vectors.search(q, pool, allowed)
    return list(zip(ids.tolist(), sims.tolist()))


def _keyword_hits(memory: AgentMemory, text: str, pool: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    out = []
    records = memory._records
    for id_, score in memory._keywords.search(text):
        if id_ not in records:
            continue
        if allowed is not None:
            pos = np.searchsorted(allowed, id_)
            if pos >= allowed.size or allowed[pos] != id_:
                continue
        out.append((id_, score))
        if len(out) >= pool:
            break
    return out


def search(
    memory: AgentMemory,
    query: str | np.ndarray,
    *,
    limit: int = 10,
    filters: Mapping[str, Any] | None = None,
    as_of: Any = None,
    mode: str = "hybrid",
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    threshold: float | None = None,
) -> list[SearchResult]:
    """The ``limit`` best memories for ``query`` (text, or a vector for ``vector``/``hybrid``), best first.

    Raises
    ------
    ValueError
        Unknown ``mode``, bad ``limit``, a malformed filter, or a text query
        in ``vector``/``hybrid`` mode without an embedder.
    TypeError
        A vector query in ``keyword`` mode.
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit: expected a positive integer, got {limit!r}")
    if not isinstance(query, (str, np.ndarray)):
        raise TypeError(f"query: expected text or a float vector, got {type(query).__name__}")
    if mode == "keyword" and not isinstance(query, str):
        raise TypeError("query: keyword search needs text, got a vector; use mode='vector'")
    allowed = memory.mask(filters, as_of=as_of, user_id=user_id, agent_id=agent_id, run_id=run_id)
    pool = int(limit) * POOL_FACTOR
    cfg = memory.config
    fused: dict[int, float] = {}
    parts: dict[int, dict[str, float]] = {}
    if mode in ("vector", "hybrid"):
        q = _query_vector(memory, query)
        assert q is not None
        for rank, (id_, sim) in enumerate(_vector_hits(memory, q, pool, allowed)):
            parts.setdefault(id_, {})["cosine"] = sim
            fused[id_] = sim if mode == "vector" else 1.0 / (RRF_K + rank + 1)
    if mode in ("keyword", "hybrid") and isinstance(query, str):
        hits = _keyword_hits(memory, query, pool, allowed)
        top = hits[0][1] if hits and hits[0][1] > 0 else 1.0
        for rank, (id_, bm25) in enumerate(hits):
            parts.setdefault(id_, {})["bm25"] = bm25
            if mode == "keyword":
                fused[id_] = bm25 / top
            else:
                fused[id_] = fused.get(id_, 0.0) + 1.0 / (RRF_K + rank + 1)
    if mode == "hybrid":
        best = 2.0 / (RRF_K + 1)  # first in both lists
        fused = {i: s / best for i, s in fused.items()}
    now = memory._now()
    results = []
    records = memory._records
    held: dict[int, Any] = {}  # records built for relevance, reused for the results
    for id_, sim in fused.items():
        rel = 0.0
        if cfg.weight_relevance:
            held[id_] = rec = records[id_]
            rel = relevance_factors(rec, cfg, now)["relevance"]
        rec_score = recency(now - records.created_at(id_), cfg) if cfg.weight_recency else 0.0
        score = cfg.weight_similarity * sim + cfg.weight_relevance * rel + cfg.weight_recency * rec_score
        if threshold is not None and score < threshold:
            continue
        p = parts[id_]
        p.update(similarity=sim, relevance=rel, recency=rec_score)
        results.append((score, id_, sim, rel, rec_score, p))
    results.sort(key=lambda r: (-r[0], r[1]))
    out = []
    for score, id_, sim, rel, rec_score, p in results[: int(limit)]:
        rec = held.get(id_) or records[id_]
        memory._touch(rec, now)
        snapshot = rec.copy()
        out.append(SearchResult(id_, snapshot.content, rec.text, float(score), float(sim), float(rel), float(rec_score),
                                snapshot.metadata, rec.category, p, snapshot))
    memory.counters["searches"] += 1
    return out

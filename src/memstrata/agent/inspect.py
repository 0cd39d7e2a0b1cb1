"""Checks and figures of an agent memory: :func:`verify` (every layer) and :func:`metrics`."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from memstrata.agent.records import content_digest

if TYPE_CHECKING:
    from memstrata.agent.memory import AgentMemory

__all__ = ["metrics", "verify"]


def verify(memory: AgentMemory) -> dict[str, Any]:
    """``ok`` and what is wrong: the store's frames (``store``), then every record against the store and the indexes."""
    store = memory.store.verify()
    errors: list[str] = list(store.get("errors", []))
    kw = memory._keywords
    n_kw = len(kw)
    for id_, rec in memory._records.items():
        raw = memory.store.retrieve(f"m/{id_}", None)
        if raw is None:
            errors.append(f"memory {id_}: in RAM but not in the store")
            continue
        if raw["text"] != rec.text:
            errors.append(f"memory {id_}: the store holds another text than the index")
        if content_digest((rec.user_id, rec.agent_id, rec.run_id), rec.text) != rec.hash:
            errors.append(f"memory {id_}: digest does not match its text")
        if ("vec" in raw) != (memory._vectors is not None and id_ in memory._vectors):
            errors.append(f"memory {id_}: vector index and store disagree on its embedding")
        for other in rec.links:  # held on both sides (MemoryState._link_back)
            if other not in memory._records or id_ not in memory._records[other].links:
                errors.append(f"memory {id_}: its link to {other} is not held on both sides")
    if n_kw != len(memory._records):
        errors.append(f"keyword index holds {n_kw} texts for {len(memory._records)} memories")
    n_stored = sum(1 for k in memory.store.keys() if isinstance(k, str) and k.startswith("m/"))
    if n_stored != len(memory._records):
        errors.append(f"store holds {n_stored} memories, RAM {len(memory._records)}")
    return {"ok": bool(store.get("ok")) and not errors, "memories": len(memory._records), "errors": errors,
            "store": store}


def metrics(memory: AgentMemory) -> dict[str, Any]:
    """Totals, tier/category distributions, bytes per memory (disk, RAM), dedup and access figures, prune counts."""
    recs = list(memory._records.values())
    n = len(recs)
    c = memory.counters
    disk = memory.store.disk_bytes() if memory.path is not None else 0
    ram = memory._records.nbytes + memory._keywords.nbytes() + memory._columns.nbytes
    if memory._vectors is not None:
        ram += memory._vectors.nbytes
    accesses = [r.access_count for r in recs]
    top = sorted(recs, key=lambda r: (-r.access_count, r.id))[:10]
    stats = memory.store.get_statistics()
    raw_bytes = sum(len(r.text.encode()) for r in recs)
    attempts = c["added"] + c["exact_duplicates"] + c["near_merged"]
    return {
        "total_memories": n,
        "tier_distribution": dict(Counter(r.tier for r in recs)),
        "category_distribution": dict(Counter(r.category for r in recs)),
        "expired": sum(r.expired for r in recs),
        "superseded": sum(r.superseded_by is not None for r in recs),
        "disk_bytes": disk,
        "disk_bytes_per_memory": disk / n if n else 0.0,
        "ram_bytes": ram,
        "ram_bytes_per_memory": ram / n if n else 0.0,
        "text_bytes": raw_bytes,
        "compression_ratio": stats.get("compression", {}).get("ratio", None),
        "dedup_ratio": (c["exact_duplicates"] + c["near_merged"]) / attempts if attempts else 0.0,
        "exact_duplicates_merged": c["exact_duplicates"],
        "near_duplicates_merged": c["near_merged"],
        "near_duplicate_links": sum(len(r.links) for r in recs) // 2,
        "top_accessed": [(r.id, r.access_count) for r in top if r.access_count],
        "total_accesses": sum(accesses),
        "mean_accesses": sum(accesses) / n if n else 0.0,
        "searches": c["searches"],
        "forgotten": c["forgotten"],
        "pruned": {"age": c["pruned_age"], "relevance": c["pruned_relevance"], "redundancy": c["pruned_redundancy"],
                   "archived": c["archived"], "demoted": c["demoted"]},
    }

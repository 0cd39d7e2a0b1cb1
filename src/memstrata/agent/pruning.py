"""Pruning as a plan: see exactly what will change, then apply exactly that.

:func:`plan_prune` looks at every visible memory once, at one instant, and
gives each at most one action, for one reason:

* ``age``: past its category's retention → ``forget``; past ``cold_hours``
  → ``archive`` (its outcome is folded into pattern summaries, then it is
  forgotten); past ``warm_hours`` / ``hot_hours`` → ``demote`` to cold / warm;
* ``relevance``: older than ``hot_hours``, relevance below
  ``min_relevance`` and fewer than ``min_accesses`` accesses → ``forget``;
* ``redundancy``: clusters of near duplicates (cosine ≥
  ``near_duplicate_threshold``, same scope, found by the vector index):
  the most valuable member (relevance, then accesses, then lowest id) is kept
  and the others are ``merge``\\ d into it (metadata and links joined, accesses summed).

Pinned memories and categories kept forever are never touched.
:meth:`PrunePlan.apply` refuses a plan made before the memory last changed,
so what it does is what the plan showed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from memstrata.agent.relevance import relevance_factors
from memstrata.errors import MemstrataError
from memstrata.types import TierName

if TYPE_CHECKING:
    from memstrata.agent.memory import AgentMemory

__all__ = ["PruneItem", "PrunePlan", "StalePlanError", "plan_prune"]

_HOUR = 3600.0
_DAY = 86400.0


class StalePlanError(MemstrataError, ValueError):
    """The memory changed after the plan was made; make a new plan."""


@dataclass(frozen=True)
class PruneItem:
    id: int
    action: str  # forget | archive | demote | merge
    reason: str  # age | relevance | redundancy
    tier: TierName | None = None  # demote: the target tier
    into: int | None = None  # merge: the memory kept


@dataclass
class PrunePlan:
    """The actions pruning would take, by id; ``counts`` by reason and by action."""

    memory: AgentMemory
    items: list[PruneItem]
    now: float
    generation: int
    applied: bool = field(default=False)

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        return {"by_reason": dict(Counter(i.reason for i in self.items)),
                "by_action": dict(Counter(i.action for i in self.items))}

    @property
    def removed(self) -> set[int]:
        """Ids that will no longer exist after :meth:`apply`."""
        return {i.id for i in self.items if i.action != "demote"}

    def __len__(self) -> int:
        return len(self.items)

    def apply(self) -> dict[str, dict[str, int]]:
        """Do exactly what the plan lists; returns :attr:`counts`."""
        from memstrata.agent.patterns import extract_patterns

        mem = self.memory
        with mem._lock:
            if self.applied or mem._generation != self.generation:
                raise StalePlanError("plan: the memory changed since this plan was made (or it was applied); plan again")
            archived = [mem._records[i.id] for i in self.items if i.action == "archive"]
            if archived:
                extract_patterns(mem)  # summaries over everything visible, archived memories included
            for item in self.items:
                if item.action == "demote":
                    mem.set_tier(item.id, item.tier or "warm")
                elif item.action == "merge":
                    _merge(mem, item.id, item.into)
            mem.forget_many([i.id for i in self.items if i.action in ("forget", "archive")])
            for item in self.items:
                key = {"demote": "demoted", "archive": "archived"}.get(item.action, f"pruned_{item.reason}")
                mem.counters[key] += 1
            self.applied = True
            mem.flush()
            return self.counts


def _merge(mem: AgentMemory, gone: int, into: int | None) -> None:
    assert into is not None
    keep, drop = mem._records[into], mem._records[gone]
    keep.metadata = {**drop.metadata, **keep.metadata}
    keep.links = sorted((set(keep.links) | set(drop.links)) - {gone, into})
    for other in keep.links:  # links are held on both sides in RAM (as MemoryState._link_back derives them on open)
        links = mem._records[other].links
        if into not in links:
            mem._records.set_links(other, sorted([*links, into]))
    keep.access_count += drop.access_count
    if drop.last_access is not None and (keep.last_access is None or drop.last_access > keep.last_access):
        keep.last_access = drop.last_access
    mem._refresh(keep, mem._restricted(keep))
    mem._persist([keep])
    mem.forget_many([gone])


def _clusters(mem: AgentMemory, candidates: set[int]) -> list[list[int]]:
    """Connected groups of near duplicates among ``candidates`` (same scope)."""
    if mem._vectors is None or len(candidates) < 2:
        return []
    pairs = mem._vectors.near_duplicates(mem.config.near_duplicate_threshold)
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x] = parent.get(parent[x], parent[x])
        return x

    recs = mem._records
    for a, b in pairs.tolist():
        if a in candidates and b in candidates:
            ra, rb = recs[a], recs[b]
            if (ra.user_id, ra.agent_id, ra.run_id) == (rb.user_id, rb.agent_id, rb.run_id):
                x, y = root(a), root(b)
                if x != y:
                    parent[max(x, y)] = min(x, y)
    groups: dict[int, list[int]] = {}
    for x in list(parent):
        groups.setdefault(root(x), []).append(x)
    for r in list(groups):
        if r not in groups[r]:
            groups[r].append(r)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def plan_prune(mem: AgentMemory) -> PrunePlan:
    """The plan for the memory as it stands at ``mem.clock()``."""
    cfg = mem.config
    table = cfg.table
    with mem._lock:
        now = mem._now()
        items: dict[int, PruneItem] = {}
        scores: dict[int, float] = {}
        free: set[int] = set()
        for rec in mem._records.values():
            cat = table[rec.category] if rec.category in table else None
            if rec.pinned or rec.expired or (cat is not None and cat.forever):
                continue
            age = now - rec.created_at
            scores[rec.id] = relevance_factors(rec, cfg, now)["relevance"]
            if cat is not None and age > cat.retention_days * _DAY:  # type: ignore[operator]
                items[rec.id] = PruneItem(rec.id, "forget", "age")
            elif age > cfg.cold_hours * _HOUR and rec.category != cfg.pattern_category:
                items[rec.id] = PruneItem(rec.id, "archive", "age")
            elif age > cfg.hot_hours * _HOUR and scores[rec.id] < cfg.min_relevance and rec.access_count < cfg.min_accesses:
                items[rec.id] = PruneItem(rec.id, "forget", "relevance")
            else:
                free.add(rec.id)
        for group in _clusters(mem, free):
            best = max(group, key=lambda i: (scores[i], mem._records[i].access_count, -i))
            for i in group:
                if i != best:
                    items[i] = PruneItem(i, "merge", "redundancy", into=best)
        for i in sorted(free - set(items)):
            rec = mem._records[i]
            age = now - rec.created_at
            want = "cold" if age > cfg.warm_hours * _HOUR else "warm" if age > cfg.hot_hours * _HOUR else rec.tier
            if _TIER_ORDER[want] > _TIER_ORDER.get(rec.tier, 0):
                items[i] = PruneItem(i, "demote", "age", tier=want)
        ordered = [items[i] for i in sorted(items)]
        return PrunePlan(mem, ordered, now, mem._generation)


_TIER_ORDER = {"hot": 0, "warm": 1, "cold": 2}


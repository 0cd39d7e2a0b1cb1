"""Pattern extraction: group memories by a feature key and summarize each group's outcomes.

For every group of at least ``config.min_occurrences`` memories (dict
content, grouped by ``config.pattern_fields``; the field ``time_of_day`` is
the 6-hour bucket of the creation time, 0-3):

* ``success_rate``: the share whose ``config.pattern_success`` field is true;
* ``mean`` and ``spread`` (population standard deviation) of the numeric
  ``config.pattern_outcome`` field (0 where missing);
* ``confidence = 0.3·min(n/10, 1) + 0.5·success_rate + 0.2/(1 + spread)``;
* a recommendation: ``repeat`` (success rate ≥ 0.6 and mean > 0), ``avoid``
  (success rate < 0.4 or mean < 0), else ``watch``.

Groups at or above ``config.pattern_threshold`` are stored as memories of
the patterns category whose content lists their ``evidence`` ids; the next
run updates the same memory (found by its ``pattern_key``) instead of adding
another. Forgetting a memory removes it from every evidence list.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from memstrata.agent.records import MemoryRecord

if TYPE_CHECKING:
    from memstrata.agent.memory import AgentMemory

__all__ = ["confidence", "extract_patterns", "summarize"]


def confidence(n: int, success_rate: float, spread: float) -> float:
    """``0.3·min(n/10, 1) + 0.5·success_rate + 0.2/(1 + spread)``."""
    return 0.3 * min(n / 10.0, 1.0) + 0.5 * success_rate + 0.2 / (1.0 + spread)


def _feature(rec: MemoryRecord, field: str) -> Any:
    if field == "time_of_day":
        return datetime.fromtimestamp(rec.created_at, timezone.utc).hour // 6
    value = rec.content.get(field) if isinstance(rec.content, dict) else None
    return value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value, sort_keys=True, default=str)


def summarize(records: list[MemoryRecord], success_field: str, outcome_field: str) -> dict[str, Any]:
    """Count, success rate, mean and spread of the outcome, confidence and recommendation of one group."""
    n = len(records)
    successes = sum(1 for r in records if r.content.get(success_field) is True)
    outcomes = []
    for r in records:
        v = r.content.get(outcome_field, 0)
        outcomes.append(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0)
    mean = sum(outcomes) / n
    spread = math.sqrt(sum((v - mean) ** 2 for v in outcomes) / n)
    rate = successes / n
    if rate >= 0.6 and mean > 0:
        advice = "repeat"
    elif rate < 0.4 or mean < 0:
        advice = "avoid"
    else:
        advice = "watch"
    return {"occurrence_count": n, "success_rate": rate, "mean_outcome": mean, "outcome_spread": spread,
            "confidence": confidence(n, rate, spread), "recommendation": advice}


def _groups(records: Iterable[MemoryRecord], fields: tuple[str, ...]) -> dict[str, list[MemoryRecord]]:
    groups: dict[str, list[MemoryRecord]] = {}
    for rec in records:
        if not isinstance(rec.content, dict) or str(rec.content.get("type", "")).endswith("pattern"):
            continue
        key = json.dumps({f: _feature(rec, f) for f in fields}, sort_keys=True)
        groups.setdefault(key, []).append(rec)
    return groups


def extract_patterns(memory: AgentMemory, records: Iterable[MemoryRecord] | None = None) -> list[MemoryRecord]:
    """Store (or update) a pattern memory for every qualifying group of ``records`` (default: every visible memory)."""
    cfg = memory.config
    pool = memory.get_all(limit=None) if records is None else list(records)
    out = []
    for key, group in sorted(_groups(pool, cfg.pattern_fields).items()):
        if len(group) < cfg.min_occurrences:
            continue
        stats = summarize(group, cfg.pattern_success, cfg.pattern_outcome)
        if stats["confidence"] < cfg.pattern_threshold:
            continue
        content = {"type": "pattern", "pattern_key": key, "conditions": json.loads(key),
                   "statistics": {k: stats[k] for k in ("occurrence_count", "success_rate", "mean_outcome", "outcome_spread")},
                   "confidence": stats["confidence"], "recommendation": stats["recommendation"],
                   "evidence": sorted(r.id for r in group)}
        existing = memory.get_all({"pattern_key": key}, limit=1)
        if existing:
            out.append(memory.update(existing[0].id, content))
        else:
            out.append(memory.add(content, category=cfg.pattern_category, metadata={"pattern_key": key}))
    return out

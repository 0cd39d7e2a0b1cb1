"""Relevance in [0, 1]: importance × outcome × access boost × recency, each factor explained.

Examples
--------
>>> from memstrata.agent.config import AgentConfig
>>> from memstrata.agent.records import MemoryRecord
>>> cfg = AgentConfig(categories="trading")
>>> rec = MemoryRecord(1, {"type": "trade", "success": True, "profit": 50.0}, "", "trades", created_at=0.0)
>>> f = relevance_factors(rec, cfg, now=0.0)
>>> f["importance"], round(f["outcome"], 6), f["access"], f["recency"], round(f["relevance"], 4)
(0.9, 1.8, 1.0, 1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memstrata.agent.config import AgentConfig
from memstrata.agent.records import MemoryRecord

__all__ = ["recency", "relevance_factors"]

_DAY = 86400.0


def recency(age_seconds: float, config: AgentConfig) -> float:
    """``max(floor, 0.5 ** (age_days / half_life_days))``; ages below zero count as zero."""
    age_days = max(age_seconds, 0.0) / _DAY
    return max(config.recency_floor, 0.5 ** (age_days / config.recency_half_life_days))


def _outcome(content: Any, config: AgentConfig) -> float:
    """Product of the outcome fields' factors: a true bool × success_boost, a positive number × (1 + min(v/scale, cap))."""
    if not isinstance(content, Mapping):
        return 1.0
    factor = 1.0
    for name in config.outcome_fields:
        value = content.get(name)
        if isinstance(value, bool):
            factor *= config.success_boost if value else 1.0
        elif isinstance(value, (int, float)) and value > 0:
            factor *= 1.0 + min(float(value) / config.outcome_scale, config.outcome_cap)
    return factor


def relevance_factors(record: MemoryRecord, config: AgentConfig, now: float) -> dict[str, float]:
    """Every factor of the relevance of ``record`` at ``now``, and their capped product ``relevance``."""
    importance = config.table[record.category].importance if record.category in config.table else 0.5
    outcome = _outcome(record.content, config)
    access = 1.0 + min(record.access_count * config.access_boost_per_hit, config.access_boost_cap)
    last = record.created_at if record.last_access is None else max(record.created_at, record.last_access)
    rec = recency(now - last, config)
    return {
        "importance": importance,
        "outcome": outcome,
        "access": access,
        "recency": rec,
        "age_days": max(now - record.created_at, 0.0) / _DAY,
        "relevance": min(importance * outcome * access * rec, 1.0),
    }

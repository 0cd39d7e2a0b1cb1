"""Settings of an :class:`~memstrata.agent.AgentMemory`, and how dict content becomes text.

Examples
--------
>>> from memstrata.agent.config import AgentConfig, format_content
>>> AgentConfig(categories="trading").categories.default
'market_observations'
>>> format_content({"type": "trade", "action": "swap", "amount": 2, "token": "ETH", "pool": "ETH/USDC",
...                 "result": "filled", "profit": 12.5})
'Trade: swap 2 ETH in pool ETH/USDC. Result: filled. Profit: 12.5.'
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from memstrata.agent.categories import CategoryTable, category_table
from memstrata.types import VectorCodecName

__all__ = ["AgentConfig", "format_content"]

_NEAR_MODES = ("link", "merge", "keep")


def _trade(c: Mapping[str, Any]) -> str:
    return (
        f"Trade: {c.get('action', 'N/A')} {c.get('amount', 'N/A')} {c.get('token', 'N/A')} "
        f"in pool {c.get('pool', 'N/A')}. Result: {c.get('result', 'pending')}. Profit: {c.get('profit', 0)}."
    )


def _observation(c: Mapping[str, Any]) -> str:
    rest = {k: v for k, v in c.items() if k not in ("type", "summary")}
    head = f"Observation: {c['summary']}. " if "summary" in c else "Observation: "
    return head + ", ".join(f"{k}={v}" for k, v in sorted(rest.items()))


def _pattern(c: Mapping[str, Any]) -> str:
    stats = c.get("statistics", {})
    return (
        f"Pattern {json.dumps(c.get('conditions', {}), sort_keys=True)}: {c.get('recommendation', '')} "
        f"(n={stats.get('occurrence_count', '?')}, success rate {stats.get('success_rate', '?')}, "
        f"confidence {c.get('confidence', '?')})"
    )


def format_content(content: Any) -> str:
    """The default formatter: text as is; dicts with ``text``/``memory`` fields use it; trade, observation
    and pattern shapes get a sentence; other dicts their sorted JSON."""
    if isinstance(content, str):
        return content
    for key in ("text", "memory", "searchable_text"):
        if isinstance(content.get(key), str):
            return str(content[key])
    kind = str(content.get("type", "")).lower()
    if kind in ("trade", "swap") or kind.endswith("trade"):
        return _trade(content)
    if "observation" in kind:
        return _observation(content)
    if kind.endswith("pattern"):
        return _pattern(content)
    return json.dumps(content, sort_keys=True, default=str)


@dataclass
class AgentConfig:
    """Everything an :class:`~memstrata.agent.AgentMemory` can be told.

    Parameters
    ----------
    categories : preset name ("generic", "trading"), CategoryTable or dict
    formatter : callable(content) -> str
        The text that is embedded and keyword-indexed for dict content.
    near_duplicate_threshold : float
        Cosine at or above which a new memory is a near duplicate of a stored one (same scope).
    near_duplicates : {"link", "merge", "keep"}
        ``link``: store it and link the two; ``merge``: return the stored one
        (access counted, metadata merged), as for an exact duplicate; ``keep``: store it, no link.
    weight_similarity, weight_relevance, weight_recency : float
        Search score = ``ws·similarity + wr·relevance + wt·recency``.
    recency_half_life_days, recency_floor : float
        Recency ``max(floor, 0.5 ** (age_days / half_life))``.
    outcome_fields : tuple of str
        Content fields read as outcomes: a bool (success, x ``success_boost``)
        or a number (x ``1 + min(value / outcome_scale, outcome_cap)`` when positive).
    access_boost_per_hit, access_boost_cap : float
        Relevance factor ``1 + min(count · per_hit, cap)``.
    hot_hours, warm_hours, cold_hours : float
        Age at which pruning demotes hot → warm, warm → cold, and archives
        past cold (into pattern summaries).
    min_relevance, min_accesses : float, int
        Pruning forgets memories below ``min_relevance`` accessed fewer than ``min_accesses`` times.
    pattern_fields, pattern_outcome, pattern_success : tuple, str, str
        Feature key of pattern extraction (content fields; ``time_of_day``
        is the 6-hour bucket of the creation time), the numeric outcome and the success flag.
    min_occurrences, pattern_threshold : int, float
        A group becomes a stored pattern when it has ``min_occurrences`` members and confidence ≥ threshold.
    vector_codec : str
        VectorMemory codec of the embeddings.
    vector_shortlist : int or None
        With the int8 codec, search scores only the ``vector_shortlist`` rows
        nearest by the Hamming distance of sign bits (48 bytes a row for
        384-d), so an index past that size reads an eighth of its codes:
        ``VectorMemory(shortlist=)``. 1024 (the default) returned the same
        top 10 as the full int8 scan for every one of 200 development queries
        at 10^4 and at 10^5 memories. ``None`` scans every row.
    vector_rows : {"ram", "file"} or None
        Where the int8 rows of the embeddings are held. ``"file"`` keeps only
        the sign bits in RAM and reads the rows a search scores from a private
        temporary file in the memory's directory (the system's temporary
        directory for a memory without a path), checked on every read
        (:class:`memstrata.agent.offheap.OffHeapIndex`;
        needs ``vector_codec="int8"`` and a ``vector_shortlist``). At 10^4
        development memories it held ~580 bytes of RSS a memory against
        ~890 with ``"ram"``, with the same recall@10, single-add latency and a
        search p50 within ~10 % (``benchmarks/bench_agent.py`` measures
        both). ``None`` (the default) is ``"file"`` when the codec and
        shortlist allow it, else ``"ram"``.
    """

    categories: CategoryTable | Mapping[str, Any] | str | None = None
    formatter: Callable[[Any], str] = format_content
    # The runs of ``name: type = default`` below have the shape of other settings dataclasses' runs (and of one
    # another): each line is a distinct public setting read by name, so the twin is deliberate, not shared logic.
    near_duplicate_threshold: float = 0.95
    near_duplicates: str = "link"
    weight_similarity: float = 1.0
    weight_relevance: float = 0.1
    weight_recency: float = 0.05
    recency_half_life_days: float = 30.0
    recency_floor: float = 0.5
    outcome_fields: tuple[str, ...] = ("success", "profit")
    success_boost: float = 1.2
    outcome_scale: float = 100.0
    outcome_cap: float = 0.5
    access_boost_per_hit: float = 0.1
    access_boost_cap: float = 0.3
    hot_hours: float = 24.0
    warm_hours: float = 168.0
    cold_hours: float = 720.0
    min_relevance: float = 0.3
    min_accesses: int = 2
    pattern_fields: tuple[str, ...] = ("type", "action")
    pattern_outcome: str = "profit"
    pattern_success: str = "success"
    min_occurrences: int = 3
    pattern_threshold: float = 0.7
    vector_codec: VectorCodecName = "int8"
    vector_shortlist: int | None = 1024
    vector_rows: str | None = None
    store_config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.categories = category_table(self.categories)
        if self.near_duplicates not in _NEAR_MODES:
            raise ValueError(f"near_duplicates: expected one of {', '.join(_NEAR_MODES)}, got {self.near_duplicates!r}")
        if not -1.0 <= float(self.near_duplicate_threshold) <= 1.0:
            raise ValueError(f"near_duplicate_threshold: expected a cosine in [-1, 1], got {self.near_duplicate_threshold!r}")
        if not callable(self.formatter):
            raise TypeError(f"formatter: expected a callable(content) -> str, got {type(self.formatter).__name__}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "float" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"{f.name}: expected a non-negative number, got {value!r}")
        if self.recency_half_life_days <= 0:
            raise ValueError(f"recency_half_life_days: expected a positive number, got {self.recency_half_life_days!r}")
        if not self.hot_hours <= self.warm_hours <= self.cold_hours:
            raise ValueError("hot_hours, warm_hours, cold_hours: expected hot ≤ warm ≤ cold")
        if self.vector_shortlist is not None and (
            isinstance(self.vector_shortlist, bool) or not isinstance(self.vector_shortlist, int) or self.vector_shortlist < 1
        ):
            raise ValueError(f"vector_shortlist: expected a positive integer or None, got {self.vector_shortlist!r}")
        if self.vector_rows is None:
            self.vector_rows = "file" if self.vector_codec == "int8" and self.vector_shortlist is not None else "ram"
        if self.vector_rows not in ("ram", "file"):
            raise ValueError(f"vector_rows: expected 'ram' or 'file', got {self.vector_rows!r}")
        if self.vector_rows == "file" and (self.vector_codec != "int8" or self.vector_shortlist is None):
            raise ValueError("vector_rows: 'file' needs vector_codec='int8' and a vector_shortlist")
        if not isinstance(self.min_occurrences, int) or self.min_occurrences < 1:
            raise ValueError(f"min_occurrences: expected a positive integer, got {self.min_occurrences!r}")

    @property
    def table(self) -> CategoryTable:
        assert isinstance(self.categories, CategoryTable)
        return self.categories

    @property
    def pattern_category(self) -> str:
        """Where extracted patterns go: ``patterns`` if the table has it, else ``procedures``, else the default."""
        for name in ("patterns", "procedures"):
            if name in self.table:
                return name
        return self.table.default

"""Memory categories: retention and importance per category, and which content types map to which.

A :class:`CategoryTable` answers three questions about a memory: which
category it belongs to (from an explicit ``category=``, else from its content
``type``), how long it is kept (``retention_days``; ``None`` means forever,
and pruning never touches it), and how much it matters (``importance`` in
[0, 1], the first factor of relevance).

Two tables ship: :data:`GENERIC` (the default) and :data:`TRADING` (the
categories of a trading agent: trades, market observations, patterns,
failures, opportunities, user preferences).

Examples
--------
>>> from memstrata.agent.categories import TRADING
>>> TRADING.categorize({"type": "swap"}), TRADING["trades"].retention_days, TRADING["trades"].importance
('trades', 30.0, 0.9)
>>> TRADING["user_preferences"].retention_days is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GENERIC", "PRESETS", "TRADING", "Category", "CategoryTable", "category_table"]


@dataclass(frozen=True)
class Category:
    """One category: ``retention_days`` (None: forever) and ``importance`` in [0, 1]."""

    name: str
    retention_days: float | None
    importance: float
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: expected a non-empty string, got {self.name!r}")
        if self.retention_days is not None and not (
            isinstance(self.retention_days, (int, float)) and self.retention_days > 0
        ):
            raise ValueError(f"retention_days: expected a positive number of days or None (forever), got {self.retention_days!r}")
        if not isinstance(self.importance, (int, float)) or not 0.0 <= self.importance <= 1.0:
            raise ValueError(f"importance: expected a number in [0, 1], got {self.importance!r}")
        object.__setattr__(self, "retention_days", None if self.retention_days is None else float(self.retention_days))
        object.__setattr__(self, "importance", float(self.importance))

    @property
    def forever(self) -> bool:
        return self.retention_days is None


@dataclass(frozen=True)
class CategoryTable:
    """Categories by name, a content-type → category mapping and the default category.

    ``type_map`` keys are matched as substrings of the lower-cased content
    type, in the order given (so ``"swap_v2"`` maps like ``"swap"``).
    """

    categories: Mapping[str, Category]
    type_map: Mapping[str, str] = field(default_factory=dict)
    default: str = ""

    def __post_init__(self) -> None:
        if not self.categories:
            raise ValueError("categories: expected at least one category")
        for target in list(self.type_map.values()) + [self.default]:
            if target not in self.categories:
                raise ValueError(
                    f"type_map/default: unknown category {target!r}; known: {', '.join(sorted(self.categories))}"
                )

    def __getitem__(self, name: str) -> Category:
        try:
            return self.categories[name]
        except KeyError:
            raise ValueError(
                f"category: unknown category {name!r}; known: {', '.join(sorted(self.categories))}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.categories

    def categorize(self, content: Any) -> str:
        """The category of ``content`` (a dict's ``type`` through ``type_map``; else the default)."""
        kind = content.get("type") if isinstance(content, Mapping) else None
        if isinstance(kind, str):
            lowered = kind.lower()
            if lowered in self.categories:
                return lowered
            for key, name in self.type_map.items():
                if key in lowered:
                    return name
        return self.default

    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": {
                c.name: {"retention_days": c.retention_days, "importance": c.importance, "description": c.description}
                for c in self.categories.values()
            },
            "type_map": dict(self.type_map),
            "default": self.default,
        }

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> CategoryTable:
        cats = {name: Category(name, **dict(v)) for name, v in dict(spec["categories"]).items()}
        return cls(cats, dict(spec.get("type_map", {})), str(spec.get("default", next(iter(cats)))))


def _table(rows: list[tuple[str, float | None, float, str]], type_map: dict[str, str], default: str) -> CategoryTable:
    return CategoryTable({n: Category(n, r, i, d) for n, r, i, d in rows}, type_map, default)


#: The default table, for any agent.
GENERIC = _table(
    [
        ("episodic", 30, 0.5, "What happened: events, turns, actions and their results"),
        ("facts", 365, 0.8, "Things known to be true about the world or the user"),
        ("procedures", 365, 0.9, "How to do things: steps, recipes, learned patterns"),
        ("preferences", None, 1.0, "User preferences and settings (kept forever)"),
        ("failures", 60, 0.8, "Failed actions and errors, to avoid repeating them"),
        ("observations", 7, 0.4, "Snapshots of a changing environment"),
    ],
    {
        "event": "episodic", "turn": "episodic", "action": "episodic", "fact": "facts",
        "procedure": "procedures", "pattern": "procedures", "preference": "preferences",
        "error": "failures", "failure": "failures", "observation": "observations",
    },
    "episodic",
)

#: The categories of a trading agent.
TRADING = _table(
    [
        ("trades", 30, 0.9, "Trade executions and results"),
        ("market_observations", 7, 0.6, "Market state snapshots"),
        ("patterns", 365, 1.0, "Learned patterns and strategies"),
        ("failures", 60, 0.8, "Failed actions and errors"),
        ("opportunities", 3, 0.5, "Identified opportunities"),
        ("user_preferences", None, 1.0, "User settings and preferences (kept forever)"),
    ],
    {
        "trade": "trades", "swap": "trades", "liquidity": "trades", "observation": "market_observations",
        "pattern": "patterns", "error": "failures", "opportunity": "opportunities", "preference": "user_preferences",
    },
    "market_observations",
)

#: Named tables for ``AgentConfig(categories="trading")``.
PRESETS: dict[str, CategoryTable] = {"generic": GENERIC, "trading": TRADING}


def category_table(spec: CategoryTable | Mapping[str, Any] | str | None) -> CategoryTable:
    """A table from a preset name, a dict (:meth:`CategoryTable.to_dict` shape) or a table."""
    if spec is None:
        return GENERIC
    if isinstance(spec, CategoryTable):
        return spec
    if isinstance(spec, str):
        try:
            return PRESETS[spec]
        except KeyError:
            raise ValueError(f"categories: unknown preset {spec!r}; known: {', '.join(PRESETS)}") from None
    if isinstance(spec, Mapping):
        return CategoryTable.from_dict(spec)
    raise TypeError(f"categories: expected a preset name, a dict or a CategoryTable, got {type(spec).__name__}")

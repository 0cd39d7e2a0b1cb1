"""Agent memory: remember, recall and forget — categories, relevance, hybrid search, pruning, patterns, validity.

>>> from memstrata.agent import AgentMemory, AgentConfig
>>> with AgentMemory(config=AgentConfig(categories="trading")) as memory:
...     rec = memory.add({"type": "trade", "action": "swap", "token": "ETH", "pool": "ETH/USDC", "profit": 4.0})
...     rec.category, [hit.id for hit in memory.search("swap ETH", mode="keyword")] == [rec.id]
('trades', True)
"""

from __future__ import annotations

from memstrata.agent.categories import GENERIC, TRADING, Category, CategoryTable
from memstrata.agent.config import AgentConfig, format_content
from memstrata.agent.embedders import Embedder, PrecomputedEmbedder, SentenceTransformerEmbedder
from memstrata.agent.mem0 import Memory
from memstrata.agent.memory import RESERVED_FIELDS, AgentMemory
from memstrata.agent.pruning import PruneItem, PrunePlan, StalePlanError
from memstrata.agent.records import MemoryRecord, SearchResult

__all__ = [
    "GENERIC", "RESERVED_FIELDS", "TRADING", "AgentConfig", "AgentMemory", "Category", "CategoryTable", "Embedder",
    "Memory", "MemoryRecord", "PrecomputedEmbedder", "PruneItem", "PrunePlan", "SearchResult",
    "SentenceTransformerEmbedder", "StalePlanError", "format_content",
]

"""Content-addressed deduplication: :class:`DedupStore`."""

from __future__ import annotations

from memstrata.dedup._store import DedupStore

__all__ = ["DedupStore"]

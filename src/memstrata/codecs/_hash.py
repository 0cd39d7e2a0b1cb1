"""The content digest used by frames and the dedup store (XXH3-128, 16 bytes)."""

from __future__ import annotations

from memstrata._native.hashing import digest

__all__ = ["digest"]

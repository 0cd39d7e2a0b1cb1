"""Choosing a codec by measurement: ``VectorMemory.fit_codec``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from memstrata.types import Metric, VectorCodecName
from memstrata.vectors._args import describe as _describe

if TYPE_CHECKING:
    from memstrata.vectors._memory import VectorMemory


@dataclass(frozen=True)
class CodecChoice:
    """The outcome of :meth:`VectorMemory.fit_codec`.

    ``codec``/``rescore`` is the smallest configuration (bytes held in RAM per
    vector) whose measured recall@k reached the target, or the most accurate
    one measured when none did (``met`` is then False). ``rescore`` is a fixed
    depth or ``"auto"`` (the memory calibrates its depth on the stored data,
    see ``VectorMemory(rescore="auto")``); ``depth`` is the rescore depth
    that ran (the calibrated one for ``"auto"``; None without rescoring).
    ``measured`` lists every configuration tried with its recall, depth and size.
    """

    codec: str
    rescore: int | str | None
    recall: float
    bytes_per_vector: float
    met: bool
    target_recall: float
    k: int
    measured: list[dict[str, Any]] = field(default_factory=list)
    depth: int | None = None

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`VectorMemory` (``VectorMemory(dim, **choice.kwargs)``)."""
        extra = {"target_recall": self.target_recall} if self.rescore == "auto" else {}
        return {"codec": self.codec, "rescore": self.rescore, **extra}


def fit_codec(
    cls: type[VectorMemory],
    sample: np.ndarray,
    target_recall: float = 0.99,
    k: int = 10,
    *,
    metric: Metric = "cosine",
    n_queries: int = 200,
    rescore_factors: tuple[int, ...] = (2, 4, 10, 20),
) -> CodecChoice:
    """Measure candidate codecs on ``sample`` and pick the smallest meeting ``target_recall``.

    The first ``n_queries`` rows of ``sample`` are searched against the
    whole sample (their own row excluded) with every configuration
    (binary/int4/int8, each without rescoring, with each of
    ``rescore_factors`` and, unless that is empty, with ``rescore="auto"``
    calibrated for ``target_recall``; and float32), and
    recall@k is measured against the exact neighbours (a result counts when
    its exact similarity reaches that of the true k-th neighbour, so ties
    are not penalised). Size is bytes per vector held in RAM.

    Returns
    -------
    CodecChoice
        The choice, the recall it measured and every measurement.
    """
    if not isinstance(sample, np.ndarray) or sample.ndim != 2 or sample.dtype.kind != "f":
        raise TypeError(f"sample: expected float array of shape (n, d), got {_describe(sample)}")
    if not 0.0 < target_recall <= 1.0:
        raise ValueError(f"target_recall: expected a value in (0, 1], got {target_recall!r}")
    n, d = sample.shape
    if n < k + 2:
        raise ValueError(f"sample: expected more than k + 1 = {k + 1} rows, got {n}")
    nq = min(n_queries, n)
    probe = cls(d, "float32", metric)
    x = probe._prepare("sample", sample)
    queries = x[:nq]
    exact = queries @ x.T if metric != "l2" else 2 * queries @ x.T - np.einsum("ij,ij->i", x, x)[None, :]
    exact[np.arange(nq), np.arange(nq)] = -np.inf
    kth = -np.sort(-exact, axis=1)[:, k - 1]

    def measure(codec: VectorCodecName, rescore: int | Literal["auto"] | None) -> tuple[float, int | None]:
        memory = cls(d, codec, metric, rescore, target_recall=target_recall)
        try:
            memory.add(x)
            _, ids = memory.search(queries, k + 1)
            depth = memory.stats()["rescore_depth"]
        finally:
            memory.close()
        hits = 0
        for a in range(nq):
            got = [i for i in ids[a].tolist() if i != a and i >= 0][:k]
            hits += int((exact[a, got] >= kth[a] - 1e-6).sum())
        return float(hits / (nq * k)), depth

    configs: list[tuple[VectorCodecName, int | Literal["auto"] | None]] = []
    codecs: tuple[VectorCodecName, ...] = ("binary", "int4", "int8")
    for codec in codecs:
        if not (codec == "binary" and metric == "l2"):
            configs.append((codec, None))
        configs.extend((codec, m) for m in rescore_factors)
        if rescore_factors:  # an empty tuple asks for no rescoring at all
            configs.append((codec, "auto"))
    configs.append(("float32", None))
    width = {"binary": (d + 7) // 8, "int4": (d + 1) // 2, "int8": d, "float32": 4 * d}
    measured = []
    for codec, rescore in configs:
        ram = width[codec] + 8 + (8 if rescore else 0) + (4 if metric == "l2" and codec != "binary" else 0)
        recall, depth = measure(codec, rescore)
        measured.append(
            {"codec": codec, "rescore": rescore, "depth": depth, "recall": recall, "bytes_per_vector": ram}
        )
    # smallest first; at equal size the shallower search, and "auto" before a fixed depth as deep (it keeps
    # its target as the data grows)
    measured.sort(key=lambda m: (m["bytes_per_vector"], m["depth"] or 0, m["rescore"] != "auto"))
    meeting = [m for m in measured if m["recall"] >= target_recall]
    best = meeting[0] if meeting else max(measured, key=lambda m: (m["recall"], -m["bytes_per_vector"]))
    return CodecChoice(
        codec=best["codec"],
        rescore=best["rescore"],
        recall=best["recall"],
        bytes_per_vector=best["bytes_per_vector"],
        met=bool(meeting),
        target_recall=float(target_recall),
        k=int(k),
        measured=measured,
        depth=best["depth"],
    )

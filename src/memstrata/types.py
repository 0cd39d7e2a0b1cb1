"""Names for the closed sets of strings memstrata's API takes, for type checkers and for users' annotations.

Each ``Literal`` lists exactly the values the matching argument accepts, so
``mypy --strict`` rejects ``tier="ram"`` or ``metric="dot"`` before the code runs;
at run time the same arguments are checked and a wrong one raises ``ValueError``.

>>> from memstrata.types import StorageTier
>>> StorageTier.WARM == "warm"
True
"""

from __future__ import annotations

import enum
from typing import Literal

__all__ = [
    "Durability",
    "EvictionPolicyName",
    "Metric",
    "StorageTier",
    "TierLike",
    "TierName",
    "TraceTypeName",
    "VectorCodecName",
]

TierName = Literal["hot", "warm", "cold"]
Durability = Literal["none", "normal", "full"]
Metric = Literal["cosine", "ip", "l2"]
VectorCodecName = Literal["int8", "int4", "binary", "float32"]
EvictionPolicyName = Literal["adaptive", "s3fifo-adaptive", "s3fifo", "wtinylfu", "lru", "lfu", "fifo"]
TraceTypeName = Literal[
    "symbolic_op", "perf_delta", "fitness_evo", "benchmark", "mutation", "collapse", "breakthrough", "meta_evo"
]


class StorageTier(str, enum.Enum):
    """A tier by name (the optimization layer's documented enum); a ``str``, so accepted wherever a tier name is."""

    HOT = "hot"
    WARM = "warm"
    COLD = "cold"


TierLike = TierName | StorageTier | int
"""What a ``tier`` argument takes: a name, a :class:`StorageTier`, or the tier's number (0, 1, 2)."""

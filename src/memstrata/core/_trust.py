"""The trust ledger: a per-actor score from write outcomes, decaying toward a prior.

Update rule (for each outcome of an actor's write, at time ``t``):

1. decay: ``score = prior + (score - prior) * 2 ** (-(t - t_last) / half_life_seconds)``;
2. update: ``score = (1 - rate) * score + rate * (1 - error_rate)`` where
   ``error_rate`` is 0 for a success and 1 for a failure (or the caller's
   measured error rate in [0, 1]).

So a new actor starts at ``prior`` (0.5), a run of successes moves it toward 1
by a fraction ``rate`` (0.1) of the distance each time, failures toward 0, and
an idle actor drifts back to ``prior`` with the given half-life (7 days).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["TrustLedger"]


class TrustLedger:
    """Per-actor trust scores in [0, 1] (see the module docstring for the rule).

    Examples
    --------
    >>> ledger = TrustLedger(clock=lambda: 0.0)
    >>> ledger.update("agent-1", success=True)
    0.55
    >>> ledger.update("agent-1", success=False)
    0.495
    >>> ledger.get("agent-1")["writes"], ledger.get("nobody")["score"]
    (2, 0.5)
    """

    def __init__(
        self,
        *,
        prior: float = 0.5,
        rate: float = 0.1,
        half_life_seconds: float = 7 * 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, v, lo, hi in (("prior", prior, 0.0, 1.0), ("rate", rate, 0.0, 1.0)):
            if not lo <= v <= hi:
                raise ValueError(f"{name}: expected a number in [{lo}, {hi}], got {v!r}")
        if not half_life_seconds > 0:
            raise ValueError(f"half_life_seconds: expected a positive number, got {half_life_seconds!r}")
        self.prior, self.rate, self.half_life_seconds, self.clock = prior, rate, half_life_seconds, clock
        self._lock = threading.Lock()
        # actor -> [score, t_last, writes, failures]
        self._actors: dict[str, list[float]] = {}

    def _decayed(self, rec: list[float], now: float) -> float:
        dt = max(0.0, now - rec[1])
        return float(self.prior + (rec[0] - self.prior) * 2.0 ** (-dt / self.half_life_seconds))

    def update(self, actor: str, *, success: bool = True, error_rate: float | None = None) -> float:
        """Record one outcome of ``actor``; returns the new score."""
        err = (0.0 if success else 1.0) if error_rate is None else float(error_rate)
        if not 0.0 <= err <= 1.0:
            raise ValueError(f"error_rate: expected a number in [0, 1], got {error_rate!r}")
        now = self.clock()
        with self._lock:
            rec = self._actors.get(actor)
            if rec is None:
                rec = self._actors[actor] = [self.prior, now, 0, 0]
            score = (1.0 - self.rate) * self._decayed(rec, now) + self.rate * (1.0 - err)
            rec[0], rec[1] = round(score, 12), now
            rec[2] += 1
            rec[3] += 0 if success else 1
            return rec[0]

    def get(self, actor: str) -> dict[str, Any]:
        """``{"score", "writes", "failures", "error_rate"}`` of ``actor`` now (decay applied)."""
        now = self.clock()
        with self._lock:
            rec = self._actors.get(actor)
            if rec is None:
                return {"score": self.prior, "writes": 0, "failures": 0, "error_rate": 0.0}
            return {
                "score": round(self._decayed(rec, now), 12),
                "writes": int(rec[2]),
                "failures": int(rec[3]),
                "error_rate": rec[3] / rec[2] if rec[2] else 0.0,
            }

    def scores(self) -> dict[str, float]:
        """Every actor's current score."""
        return {a: self.get(a)["score"] for a in list(self._actors)}

    def reset(self, actor: str | None = None) -> None:
        """Forget ``actor`` (or everyone)."""
        with self._lock:
            if actor is None:
                self._actors.clear()
            else:
                self._actors.pop(actor, None)

    def to_bytes(self) -> bytes:
        with self._lock:
            return json.dumps(self._actors, sort_keys=True).encode()

    def load_bytes(self, data: bytes) -> None:
        try:
            actors = json.loads(data)
            parsed = {str(a): [float(r[0]), float(r[1]), int(r[2]), int(r[3])] for a, r in actors.items()}
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            from memstrata.errors import CorruptDataError

            raise CorruptDataError(f"trust ledger state is damaged ({exc})") from exc
        with self._lock:
            self._actors = parsed

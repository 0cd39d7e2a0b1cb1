"""Adaptive tuning (opt-in): move hot capacity, compression level and idle thresholds toward targets, within bounds.

:func:`plan_tuning` looks at recorded metrics and proposes one bounded step
per knob (``learning_rate`` of the way toward what the figures ask for);
:class:`Tuner` samples a live store every ``sample_seconds`` and applies a plan
every ``adjust_seconds``, logging each change and the effect measured at the
next adjustment. No knob can lose data: they only decide where and how
values are kept, and every value stays within the configured bounds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

from memstrata.ops._state import SectionConfig

__all__ = ["TuneConfig", "Tuner", "plan_tuning"]


# alike in shape only to PruneConfig (ops/_prune.py): different fields and defaults; the shared
# from_dict is _state.SectionConfig's
@dataclass(frozen=True)
class TuneConfig(SectionConfig):
    """Targets, bounds and pace of the tuner."""

    section: ClassVar[str] = "tune"
    target_hit_rate: float = 0.80
    target_latency_ms: float = 5.0
    target_reduction_percent: float = 50.0
    learning_rate: float = 0.25
    hot_min_bytes: int = 4 * 2**20
    hot_max_bytes: int = 512 * 2**20
    zstd_min_level: int = 1
    zstd_max_level: int = 12
    idle_min_seconds: float = 60.0
    idle_max_seconds: float = 7 * 86400.0
    sample_seconds: float = 10.0
    adjust_seconds: float = 300.0


def _clamp(v: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, v))


def plan_tuning(store_config: Any, samples: list[dict[str, Any]], config: TuneConfig | None = None) -> dict[str, Any]:
    """Proposed changes ``{knob: {"from", "to", "reason"}}`` from ``samples`` (metrics dicts, oldest first)."""
    cfg = config or TuneConfig()
    changes: dict[str, Any] = {}
    if not samples:
        return {"changes": changes, "samples": 0, "reason": "no samples recorded yet"}
    last = samples[-1]
    lr = cfg.learning_rate
    hit = [s["hit_rate"] for s in samples if s.get("hit_rate") is not None]
    hot = int(store_config.hot_max_bytes)
    if hit:
        rate = sum(hit) / len(hit)
        if rate < cfg.target_hit_rate:
            want = hot * (1 + lr)
            changes["hot_max_bytes"] = (hot, want, f"hit rate {rate:.0%} < target {cfg.target_hit_rate:.0%}")
        elif rate > cfg.target_hit_rate + 0.1:
            want = hot * (1 - lr / 2)
            changes["hot_max_bytes"] = (hot, want, f"hit rate {rate:.0%} well above target: give RAM back")
    raw, stored = last["bytes"]["raw"], last["bytes"]["stored"]
    reduction = 100.0 * (1 - stored / raw) if raw else 0.0
    p99 = last["query_ms"]["p99"]
    level = int(store_config.zstd_level)
    if reduction < cfg.target_reduction_percent and (p99 is None or p99 < cfg.target_latency_ms):
        changes["zstd_level"] = (level, level + max(1.0, lr * 4), f"reduction {reduction:.0f}% < target "
                                 f"{cfg.target_reduction_percent:.0f}% with latency to spare")
    elif p99 is not None and p99 > cfg.target_latency_ms:
        changes["zstd_level"] = (level, level - max(1.0, lr * 4), f"p99 {p99:.2f} ms > target {cfg.target_latency_ms} ms")
        idle = store_config.hot_idle_seconds
        if idle is not None:
            changes["hot_idle_seconds"] = (idle, idle * (1 + lr), "slow reads: keep values hot longer")
    bounds = {"hot_max_bytes": (cfg.hot_min_bytes, cfg.hot_max_bytes),
              "zstd_level": (cfg.zstd_min_level, cfg.zstd_max_level),
              "hot_idle_seconds": (cfg.idle_min_seconds, cfg.idle_max_seconds)}
    out = {}
    for knob, (old, want, reason) in changes.items():
        new = _clamp(want, *bounds[knob])
        new = round(new) if knob != "hot_idle_seconds" else float(new)
        if new != old:
            out[knob] = {"from": old, "to": new, "reason": reason, "bounds": list(bounds[knob])}
    return {"changes": out, "samples": len(samples), "config": asdict(cfg)}


class Tuner:
    """The opt-in loop over a live :class:`MemoryStore`: sample, then adjust every ``adjust_seconds``.

    Applied changes reach the store through ``apply(knob, value)`` (the store
    owner decides how, e.g. by reopening with a new config); every change and
    its measured effect is kept in :attr:`log`.
    """

    def __init__(self, store: Any, apply: Any, config: TuneConfig | None = None) -> None:
        self.store = store
        self.apply = apply
        self.config = config or TuneConfig()
        self.samples: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.store_config = store.config
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> dict[str, Any]:
        from memstrata.ops._monitor import collect_metrics

        m = collect_metrics(self.store, sample=50, by_agent=False, record=False)
        self.samples.append(m)
        return m

    def adjust(self) -> dict[str, Any]:
        plan = plan_tuning(self.store_config, self.samples, self.config)
        if self.log and "effect" not in self.log[-1] and self.samples:
            last = self.samples[-1]
            self.log[-1]["effect"] = {"hit_rate": last["hit_rate"], "query_p99_ms": last["query_ms"]["p99"],
                                      "stored_bytes": last["bytes"]["stored"]}
        for knob, c in plan["changes"].items():
            self.apply(knob, c["to"])
            self.store_config = replace(self.store_config, **{knob: c["to"]})
            self.log.append({"time": time.time(), "knob": knob, **c})
        self.samples = self.samples[-1:]
        return plan

    def start(self) -> None:
        def loop() -> None:
            next_adjust = time.monotonic() + self.config.adjust_seconds
            while not self._stop.wait(self.config.sample_seconds):
                self.sample()
                if time.monotonic() >= next_adjust:
                    self.adjust()
                    next_adjust = time.monotonic() + self.config.adjust_seconds

        self._thread = threading.Thread(target=loop, name="memstrata-tuner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

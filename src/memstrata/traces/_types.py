"""Trace types, performance deltas and the lower-is-better metric registry."""

from __future__ import annotations

import math
import numbers
import re
import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

__all__ = [
    "DEFAULT_PRIORITIES",
    "DIRECTIONS",
    "LOWER_IS_BETTER_TOKENS",
    "CompressedTrace",
    "PerformanceDelta",
    "TraceType",
    "direction_rule",
    "is_lower_better",
    "register_metric",
]


class TraceType(str, Enum):
    """What a trace records; the value is what the ``trace_type`` column holds.

    >>> TraceType("perf_delta") is TraceType.PERFORMANCE_DELTA
    True
    >>> TraceType.BREAKTHROUGH.value
    'breakthrough'
    """

    SYMBOLIC_OPERATION = "symbolic_op"
    PERFORMANCE_DELTA = "perf_delta"
    FITNESS_EVOLUTION = "fitness_evo"
    BENCHMARK_RESULT = "benchmark"
    MUTATION_PATTERN = "mutation"
    COLLAPSE_EVENT = "collapse"
    BREAKTHROUGH = "breakthrough"
    META_EVOLUTION = "meta_evo"

    def __str__(self) -> str:
        return self.value


#: Retention priority a trace gets when the caller names none (nor a
#: ``metadata["priority"]`` word). Traces above ``high_priority`` (0.8) are
#: committed before the call returns and survive age-based retention; the types
#: in the config's ``keep_types`` (fitness evolution, benchmark results,
#: breakthroughs) survive it whatever their priority.
#:
#: ==================  =========  ===========================================
#: type                priority   age-based retention (default config)
#: ==================  =========  ===========================================
#: symbolic_op         0.3        removed after ``retention_days``
#: perf_delta          0.5        removed (``log_performance_delta``: 0.8)
#: fitness_evo         0.6        kept (``keep_types``)
#: benchmark           0.7        kept (``keep_types``)
#: mutation            0.4        removed after ``retention_days``
#: collapse            0.9        kept (above 0.8; committed on return)
#: breakthrough        1.0        kept (above 0.8; committed on return)
#: meta_evo            0.6        removed after ``retention_days``
#: ==================  =========  ===========================================
DEFAULT_PRIORITIES: dict[TraceType, float] = {
    TraceType.SYMBOLIC_OPERATION: 0.3,
    TraceType.PERFORMANCE_DELTA: 0.5,
    TraceType.FITNESS_EVOLUTION: 0.6,
    TraceType.BENCHMARK_RESULT: 0.7,
    TraceType.MUTATION_PATTERN: 0.4,
    TraceType.COLLAPSE_EVENT: 0.9,
    TraceType.BREAKTHROUGH: 1.0,
    TraceType.META_EVOLUTION: 0.6,
}

DIRECTIONS = ("improvement", "degradation", "neutral")

# ----------------------------------------------------------------- metrics --

#: A metric whose name contains one of these words (split on anything that is
#: not a letter or digit) is lower-is-better unless registered otherwise.
LOWER_IS_BETTER_TOKENS = frozenset(
    {"latency", "loss", "error", "errors", "cost", "ms", "seconds", "duration", "time", "mb", "kb", "gb", "bytes",
     "memory", "perplexity", "regret", "tokens", "token", "failures", "failure", "failed", "fails", "timeouts",
     "retries", "crashes", "violations", "steps", "calls", "usd"}
)
_WORK_UNITS = frozenset({"tokens", "token", "bytes", "mb", "kb", "gb", "steps", "calls", "requests", "samples", "ops"})
_TIME_UNITS = frozenset({"s", "sec", "second", "seconds", "ms", "min", "minute", "hour", "h", "day"})
_SPLIT = re.compile(r"[^0-9a-z]+")
_registry: dict[str, bool] = {}  # metric name -> lower is better
_registry_lock = threading.Lock()


def register_metric(metric_name: str, *, lower_is_better: bool = True) -> None:
    """Declare a metric's direction for every :class:`PerformanceDelta` from now on.

    Without registration a metric is lower-is-better when its name holds one of
    :data:`LOWER_IS_BETTER_TOKENS` (``latency_ms``, ``loss``, ``cost_usd``,
    ``error_rate`` ...) and higher-is-better otherwise. Registration overrides
    that guess; a :class:`~memstrata.traces.SymbolicTraceMemory` can also take
    ``lower_is_better`` / ``higher_is_better`` name lists in its config.

    >>> register_metric("regret_bound", lower_is_better=False)
    >>> is_lower_better("regret_bound"), is_lower_better("val_loss"), is_lower_better("accuracy")
    (False, True, False)
    """
    if not isinstance(metric_name, str) or not metric_name:
        raise TypeError(f"metric_name: expected a non-empty str, got {metric_name!r}")
    with _registry_lock:
        _registry[metric_name] = bool(lower_is_better)


def is_lower_better(metric_name: str) -> bool:
    """Whether smaller values of ``metric_name`` are better (see :func:`register_metric`)."""
    return direction_rule(metric_name)[0]


def direction_rule(metric_name: str) -> tuple[bool, str]:
    """``(lower_is_better, the rule that decided)`` for a metric name.

    The rule is ``"registered"`` (:func:`register_metric`), ``"name token 'x'"``
    (a word of :data:`LOWER_IS_BETTER_TOKENS` in the name) or ``"default: higher
    is better"``. A :class:`~memstrata.traces.SymbolicTraceMemory` puts its
    ``lower_is_better`` argument and config lists before these rules, and
    records the rule used in :attr:`PerformanceDelta.direction_rule`.

    >>> direction_rule("tokens_used"), direction_rule("accuracy")
    ((True, "name token 'tokens'"), (False, 'default: higher is better'))
    """
    found = _registry.get(metric_name)
    if found is not None:
        return found, "registered"
    words = _SPLIT.split(metric_name.lower())
    if "per" in words:  # a rate: the words before "per" name what is counted
        cut = words.index("per")
        counted, per = words[:cut], words[cut + 1:]
        if per and per[0] in _TIME_UNITS and not _WORK_UNITS.isdisjoint(counted):
            return False, f"throughput: {'_'.join(counted)} per {per[0]}"
        words = counted
    for word in words:
        if word in LOWER_IS_BETTER_TOKENS:
            return True, f"name token {word!r}"
    return False, "default: higher is better"


def _check_number(name: str, value: Any) -> float:
    t = type(value)
    if t is not float:
        if t is bool or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}: expected a real number, got {t.__name__}")
        value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def _direction(old: float, new: float, lower_is_better: bool) -> str:
    if new == old:
        return "neutral"
    return "improvement" if (new < old) == lower_is_better else "degradation"


@dataclass
class PerformanceDelta:
    """One change of one metric, with its direction.

    Attributes
    ----------
    metric_name : str
    old_value, new_value : float
        Finite numbers; NaN and ±inf raise ``ValueError``.
    delta_magnitude : float
        ``abs(new_value - old_value)``.
    delta_direction : {"improvement", "degradation", "neutral"}
        Higher is better unless the metric is lower-is-better
        (:func:`register_metric`); equal values are ``"neutral"``.
    confidence : float
        In ``[0, 1]``.
    context : dict
        JSON-safe details (commit, operator, ...).
    timestamp : float
        Seconds since the epoch, from the memory's clock.
    direction_rule : str
        Which rule chose the direction (see :func:`direction_rule`; also
        ``"argument lower_is_better"`` or ``"config lower_is_better"``).

    Examples
    --------
    >>> d = PerformanceDelta.compute("latency_ms", 120.0, 90.0)
    >>> d.delta_direction, d.delta_magnitude, d.improvement_ratio
    ('improvement', 30.0, 0.75)
    >>> PerformanceDelta.compute("accuracy", 0.0, 0.5).improvement_ratio
    inf
    """

    metric_name: str
    old_value: float
    new_value: float
    delta_magnitude: float
    delta_direction: str
    confidence: float = 1.0
    context: dict[str, Any] = field(default_factory=dict)
    timestamp: float = 0.0
    #: not a dataclass field (the documented fields stay exact); set by ``compute`` and by the memory
    direction_rule: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if not isinstance(self.metric_name, str) or not self.metric_name:
            raise TypeError(f"metric_name: expected a non-empty str, got {self.metric_name!r}")
        self.old_value = _check_number("old_value", self.old_value)
        self.new_value = _check_number("new_value", self.new_value)
        self.delta_magnitude = _check_number("delta_magnitude", self.delta_magnitude)
        if self.delta_direction not in DIRECTIONS:
            raise ValueError(f"delta_direction: expected one of {DIRECTIONS}, got {self.delta_direction!r}")
        self.confidence = _check_number("confidence", self.confidence)
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence: expected a number in [0, 1], got {self.confidence!r}")
        if not isinstance(self.context, dict):
            raise TypeError(f"context: expected a dict, got {type(self.context).__name__}")
        self.timestamp = _check_number("timestamp", self.timestamp)

    @classmethod
    def compute(
        cls,
        metric_name: str,
        old_value: float,
        new_value: float,
        *,
        confidence: float = 1.0,
        context: dict[str, Any] | None = None,
        timestamp: float = 0.0,
        lower_is_better: bool | None = None,
    ) -> PerformanceDelta:
        """Build a delta, deriving magnitude and direction from the two values.

        ``lower_is_better=None`` asks :func:`is_lower_better`.

        Raises
        ------
        ValueError
            A value is NaN or infinite, or ``confidence`` is outside ``[0, 1]``.
        """
        if not isinstance(metric_name, str) or not metric_name:
            raise TypeError(f"metric_name: expected a non-empty str, got {metric_name!r}")
        old = _check_number("old_value", old_value)
        new = _check_number("new_value", new_value)
        if lower_is_better is None:
            lower_is_better, rule = direction_rule(metric_name)
        else:
            rule = "argument lower_is_better"
        delta = cls(
            metric_name, old, new, abs(new - old), _direction(old, new, lower_is_better), confidence,
            {} if context is None else context, timestamp,
        )
        delta.direction_rule = rule  # type: ignore[misc]
        return delta

    @property
    def improvement_ratio(self) -> float:
        """``new_value / old_value``; with ``old_value == 0``: ``inf`` if ``new_value > 0``, else ``0.0``.

        A plain quotient, whatever the metric's direction: for a lower-is-better
        metric a ratio below 1 is the improvement, and with a negative baseline
        the sign flips; read it together with :attr:`delta_direction`.

        >>> PerformanceDelta.compute("accuracy", 0.0, 0.0).improvement_ratio
        0.0
        >>> PerformanceDelta.compute("reward", -2.0, -1.0).improvement_ratio
        0.5
        """
        old = self.old_value
        if old == 0:
            return math.inf if self.new_value > 0 else 0.0
        return self.new_value / old


@dataclass
class CompressedTrace:
    """A stored trace as kept in memory and in the ``traces`` table.

    Attributes
    ----------
    trace_id : str
    trace_type : TraceType
    compressed_data : bytes
        The self-verifying blob (see ``memstrata.traces`` for its layout); read
        it back with ``SymbolicTraceMemory.decompress_trace``.
    compression_ratio : float
        ``len(compressed_data) / original_size`` (smaller is better).
    original_size : int
        Bytes of the serialized data before compression (its JSON text, or its
        msgpack encoding for values JSON cannot carry exactly).
    metadata : dict
        JSON-safe, stored uncompressed and readable without decompressing.
    timestamp : float
        Seconds since the epoch.
    retention_priority : float
        In ``[0, 1]``; above 0.8 is high priority.
    """

    trace_id: str
    trace_type: TraceType
    compressed_data: bytes
    compression_ratio: float
    original_size: int
    metadata: dict[str, Any]
    timestamp: float
    retention_priority: float = 1.0

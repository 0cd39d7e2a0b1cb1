"""The typed ``log_*`` methods: performance deltas, fitness, benchmarks, breakthroughs and collapses."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from memstrata.traces._config import check_int
from memstrata.traces._faces import commit_faces
from memstrata.traces._state import TraceState
from memstrata.traces._types import DEFAULT_PRIORITIES, CompressedTrace, PerformanceDelta, TraceType

__all__ = ["Events"]


class Events(TraceState):
    """Mixin of :class:`SymbolicTraceMemory`: one method (and its async twin) per documented event.

    The ids the methods give (``"benchmark:<id>"``, ``"breakthrough:<id>"``,
    ``"collapse:<id>"``, ``"fitness_evo:<generation>"``) can also be looked up by
    the bare id the caller gave (``get_trace_sync("gen5")``).
    """

    if TYPE_CHECKING:  # provided by SymbolicTraceMemory and its other mixins
        def _store_one(self, *args: Any, **kwargs: Any) -> tuple[CompressedTrace, Callable[[], object] | None]: ...
        def _delta(self, *args: Any) -> tuple[PerformanceDelta, bool]: ...
        def _flush(self) -> int: ...

    def _log_performance_delta(
        self,
        metric_name: str,
        old_value: float,
        new_value: float,
        context: dict[str, Any] | None = None,
        confidence: float = 1.0,
        *,
        lower_is_better: bool | None = None,
    ) -> tuple[PerformanceDelta, Callable[[], object] | None]:
        """Record a metric change in ``performance_deltas``, and as a trace; returns the delta.

        The direction is "improvement" when the value rose, or fell for a
        lower-is-better metric: the ``lower_is_better`` argument, else the
        config's ``lower_is_better`` / ``higher_is_better`` lists, else
        :func:`~memstrata.traces.direction_rule` (registered metrics, then name
        tokens such as ``tokens``, ``bytes``, ``memory``, ``duration``,
        ``errors``, ``failures``); ``delta.direction_rule`` says which decided.
        As documented, the delta is also stored as the ``perf_delta`` trace
        ``"perf_delta_<metric>_<timestamp>"`` (metadata ``{"metric_name": ...,
        "priority": "high"}``; one per metric and timestamp). NaN or infinite
        values and a confidence outside ``[0, 1]`` raise ``ValueError``. Queued
        like a non-urgent trace.
        """
        delta, flush = self._delta(metric_name, old_value, new_value, context, confidence, lower_is_better)
        return delta, (self._flush if flush else None)

    log_performance_delta_sync, log_performance_delta = commit_faces("log_performance_delta", _log_performance_delta)

    @staticmethod
    def _fitness_args(generation: Any, fitness_data: Any) -> tuple[str, dict[str, Any]]:
        check_int("generation", generation, 0)
        if not isinstance(fitness_data, dict):
            raise TypeError(f"fitness_data: expected a dict, got {type(fitness_data).__name__}")
        return f"fitness_evo:{generation}", {"generation": generation, "fitness": fitness_data}

    def _log_fitness_evolution(
        self, generation: int, fitness_data: dict[str, Any]
    ) -> tuple[CompressedTrace, Callable[[], object] | None]:
        """Store a generation's fitness statistics as a ``fitness_evo`` trace.

        The trace id is ``"fitness_evo:<generation>"`` (logging a generation again
        replaces it); :meth:`fitness_evolution_sync` reads them back in order.
        """
        trace_id, data = self._fitness_args(generation, fitness_data)
        return self._store_one(trace_id, data, TraceType.FITNESS_EVOLUTION, {"generation": generation})

    log_fitness_evolution_sync, log_fitness_evolution = commit_faces("log_fitness_evolution", _log_fitness_evolution)

    @staticmethod
    def _id(name: str, value: Any, prefix: str) -> str:
        if type(value) is not str or not value:
            raise TypeError(f"{name}: expected a non-empty str, got {value!r}")
        return f"{prefix}:{value}"

    def _log_benchmark_result(
        self, benchmark_id: str, result_data: Any
    ) -> tuple[CompressedTrace, Callable[[], object] | None]:
        """Store a benchmark result as the ``benchmark`` trace ``"benchmark:<benchmark_id>"``."""
        return self._store_one(
            self._id("benchmark_id", benchmark_id, "benchmark"), result_data, TraceType.BENCHMARK_RESULT,
            {"benchmark_id": benchmark_id},
        )

    log_benchmark_result_sync, log_benchmark_result = commit_faces("log_benchmark_result", _log_benchmark_result)

    def _log_breakthrough(
        self, breakthrough_id: str, breakthrough_data: Any
    ) -> tuple[CompressedTrace, Callable[[], object] | None]:
        """Store a breakthrough (priority 1.0: committed before this returns, never expired by age).

        The trace id is ``"breakthrough:<breakthrough_id>"``.
        """
        return self._store_one(
            self._id("breakthrough_id", breakthrough_id, "breakthrough"), breakthrough_data,
            TraceType.BREAKTHROUGH, {"breakthrough_id": breakthrough_id}, priority=1.0,
        )

    log_breakthrough_sync, log_breakthrough = commit_faces("log_breakthrough", _log_breakthrough)

    def _log_collapse(self, collapse_id: str, collapse_data: Any) -> tuple[CompressedTrace, Callable[[], object] | None]:
        """Store a collapse (a fitness or capability collapse) as the ``collapse`` trace ``"collapse:<collapse_id>"``.

        Priority 0.9: committed before this returns and kept by retention, like
        :meth:`log_breakthrough_sync`.
        """
        return self._store_one(
            self._id("collapse_id", collapse_id, "collapse"), collapse_data, TraceType.COLLAPSE_EVENT,
            {"collapse_id": collapse_id}, priority=DEFAULT_PRIORITIES[TraceType.COLLAPSE_EVENT],
        )

    log_collapse_sync, log_collapse = commit_faces("log_collapse", _log_collapse)

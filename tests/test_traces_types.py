"""Trace types, performance deltas and metric directions."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memstrata.traces import (
    DEFAULT_PRIORITIES,
    CompressedTrace,
    PerformanceDelta,
    TraceType,
    is_lower_better,
    register_metric,
)

finite = st.floats(min_value=-1e100, max_value=1e100, allow_nan=False, allow_infinity=False)


def test_trace_type_values_are_exact() -> None:
    assert {t.name: t.value for t in TraceType} == {
        "SYMBOLIC_OPERATION": "symbolic_op",
        "PERFORMANCE_DELTA": "perf_delta",
        "FITNESS_EVOLUTION": "fitness_evo",
        "BENCHMARK_RESULT": "benchmark",
        "MUTATION_PATTERN": "mutation",
        "COLLAPSE_EVENT": "collapse",
        "BREAKTHROUGH": "breakthrough",
        "META_EVOLUTION": "meta_evo",
    }
    assert TraceType("collapse") is TraceType.COLLAPSE_EVENT
    assert str(TraceType.META_EVOLUTION) == "meta_evo"
    assert set(DEFAULT_PRIORITIES) == set(TraceType)


def test_dataclass_fields_are_exact() -> None:
    assert [f.name for f in dataclasses.fields(PerformanceDelta)] == [
        "metric_name", "old_value", "new_value", "delta_magnitude", "delta_direction", "confidence", "context",
        "timestamp",
    ]
    assert [f.name for f in dataclasses.fields(CompressedTrace)] == [
        "trace_id", "trace_type", "compressed_data", "compression_ratio", "original_size", "metadata", "timestamp",
        "retention_priority",
    ]


@pytest.mark.parametrize(
    ("old", "new", "ratio"),
    [
        (0.0, 0.5, math.inf),  # zero baseline, positive new value
        (0.0, 0.0, 0.0),  # zero to zero
        (0.0, -3.0, 0.0),  # zero baseline, negative new value
        (-2.0, -1.0, 0.5),  # negative baseline: plain quotient
        (-2.0, 4.0, -2.0),
        (4.0, 2.0, 0.5),
        (2.0, 3.0, 1.5),
    ],
)
def test_improvement_ratio_edge_cases(old: float, new: float, ratio: float) -> None:
    assert PerformanceDelta.compute("reward", old, new).improvement_ratio == ratio


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float64("nan")])
@pytest.mark.parametrize("which", ["old_value", "new_value", "confidence"])
def test_non_finite_values_raise(bad: float, which: str) -> None:
    kwargs = {"old_value": 1.0, "new_value": 2.0, "confidence": 1.0, which: bad}
    with pytest.raises(ValueError, match=f"{which}: expected a finite number"):
        PerformanceDelta.compute("accuracy", kwargs["old_value"], kwargs["new_value"], confidence=kwargs["confidence"])


def test_bad_arguments_raise_with_names() -> None:
    with pytest.raises(TypeError, match="old_value: expected a real number, got str"):
        PerformanceDelta.compute("accuracy", "1", 2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="new_value: expected a real number, got bool"):
        PerformanceDelta.compute("accuracy", 1.0, True)
    with pytest.raises(TypeError, match="metric_name: expected a non-empty str"):
        PerformanceDelta.compute("", 1.0, 2.0)
    with pytest.raises(ValueError, match=r"confidence: expected a number in \[0, 1\], got 1.5"):
        PerformanceDelta.compute("accuracy", 1.0, 2.0, confidence=1.5)
    with pytest.raises(ValueError, match="delta_direction: expected one of"):
        PerformanceDelta("accuracy", 1.0, 2.0, 1.0, "better")
    with pytest.raises(TypeError, match="context: expected a dict, got list"):
        PerformanceDelta("accuracy", 1.0, 2.0, 1.0, "improvement", 1.0, [])  # type: ignore[arg-type]


def test_numpy_and_int_values_become_floats() -> None:
    d = PerformanceDelta.compute("accuracy", np.float32(0.5), 1)  # type: ignore[arg-type]
    assert type(d.old_value) is float and type(d.new_value) is float
    assert d.old_value == 0.5 and d.new_value == 1.0 and d.delta_direction == "improvement"


@pytest.mark.parametrize(
    ("name", "lower"),
    [
        ("latency_ms", True), ("loss", True), ("val_loss", True), ("cost_usd", True), ("memory_mb", True),
        ("error_rate", True), ("accuracy", False), ("pass_rate", False), ("tokens_per_s", False),
        ("code_quality", False), ("lossless_fraction", False),
    ],
)
def test_default_direction_by_name(name: str, lower: bool) -> None:
    assert is_lower_better(name) is lower


def test_registry_overrides_the_name_rule() -> None:
    register_metric("error_budget_left", lower_is_better=False)
    register_metric("steps_to_solve")
    assert not is_lower_better("error_budget_left")
    assert is_lower_better("steps_to_solve")
    assert PerformanceDelta.compute("steps_to_solve", 10, 8).delta_direction == "improvement"
    with pytest.raises(TypeError, match="metric_name"):
        register_metric(3)  # type: ignore[arg-type]


def test_neutral_and_explicit_direction() -> None:
    assert PerformanceDelta.compute("accuracy", 0.7, 0.7).delta_direction == "neutral"
    assert PerformanceDelta.compute("accuracy", 0.7, 0.6, lower_is_better=True).delta_direction == "improvement"
    assert PerformanceDelta.compute("latency_ms", 10, 12).delta_direction == "degradation"


@given(old=finite, new=finite, lower=st.booleans())
def test_delta_properties(old: float, new: float, lower: bool) -> None:
    d = PerformanceDelta.compute("metric", old, new, lower_is_better=lower)
    assert d.delta_magnitude == abs(new - old)
    if new == old:
        assert d.delta_direction == "neutral"
    else:
        better = new < old if lower else new > old
        assert d.delta_direction == ("improvement" if better else "degradation")
    if old != 0:
        assert d.improvement_ratio == new / old
    else:
        assert d.improvement_ratio == (math.inf if new > 0 else 0.0)

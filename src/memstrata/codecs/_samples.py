"""Realistic agent trace records for tests and benchmarks.

:func:`trace_records` yields the kind of records a self-improving agent logs: one
per trace type of the traces layer (``symbolic_op``, ``perf_delta``,
``fitness_evo``, ``benchmark``, ``mutation``, ``collapse``, ``breakthrough``,
``meta_evo``), each with a trace id, a type, a wall-clock timestamp, the run and
agent it belongs to, a type-specific ``data`` body (metric deltas, fitness
statistics, benchmark results ...) and a nested ``context``.  Values are drawn the
way a real loop produces them: metrics drift slowly, ratios of small integers are
logged at full float precision, timestamps advance irregularly, ids are random
hex, and a run reuses a small vocabulary of metric, benchmark and operator names.

The generator is seeded and uses only the standard library, so the same seed gives
the same stream on every machine.

>>> recs = list(trace_records(3, seed=1))
>>> [sorted(r) for r in recs][0]
['agent_id', 'context', 'data', 'generation', 'run_id', 'timestamp', 'trace_id', 'trace_type']
>>> recs == list(trace_records(3, seed=1))
True
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

__all__ = ["TRACE_TYPES", "trace_records"]

TRACE_TYPES = (
    "symbolic_op",
    "perf_delta",
    "fitness_evo",
    "benchmark",
    "mutation",
    "collapse",
    "breakthrough",
    "meta_evo",
)
# How often each type appears in a stream: deltas and operations dominate, rare
# events (collapse, breakthrough) are rare.
_TYPE_WEIGHTS = (22, 30, 8, 10, 20, 2, 2, 6)

_METRICS = {
    # name: (start value, typical step, higher is better)
    "accuracy": (0.61, 0.004, True),
    "pass_rate": (0.42, 0.006, True),
    "latency_ms": (840.0, 12.0, False),
    "loss": (1.9, 0.02, False),
    "tokens_per_s": (52.0, 0.8, True),
    "memory_mb": (2310.0, 15.0, False),
    "cost_usd": (0.084, 0.001, False),
    "code_quality": (0.71, 0.003, True),
}
_BENCHMARKS = {
    "swe-bench-lite": ("django", "sympy", "astropy", "requests", "pytest", "sphinx"),
    "humaneval": ("strings", "math", "lists", "dicts"),
    "mbpp": ("basic", "intermediate"),
    "polyglot": ("python", "rust", "go", "javascript", "cpp", "java"),
}
_OPERATORS = ("prompt_edit", "tool_add", "tool_remove", "crossover", "point_mutation", "refactor", "revert")
_SYMBOLIC_OPS = ("rewrite", "simplify", "substitute", "unify", "abstract", "inline", "specialize")
_FILES = (
    "agent/coding_agent.py",
    "agent/tools/edit.py",
    "agent/tools/bash.py",
    "agent/prompts/system.md",
    "agent/llm.py",
    "agent/search.py",
    "agent/memory.py",
)
_MODELS = ("claude-3-5-sonnet", "gpt-4o-2024-08-06", "o3-mini", "llama-3.1-70b")
_CAUSES = ("selection_pressure_too_high", "elite_dominance", "mutation_rate_too_low", "fitness_plateau")
_SYMBOLS = ("x", "y", "z", "f", "g", "h", "acc", "state", "plan", "obs")


class _Run:
    """The evolving state of one agent run, so consecutive records are related."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.run_id = f"run-{rng.randrange(16**8):08x}"
        self.agents = [f"dgm-agent-{i:02d}" for i in range(rng.randint(2, 8))]
        self.clock = 1_763_700_000.0 + rng.uniform(0, 86_400)
        self.generation = rng.randint(0, 40)
        self.metrics = {name: spec[0] for name, spec in _METRICS.items()}
        self.best = {name: spec[0] for name, spec in _METRICS.items()}
        self.population = [self.new_id("cand") for _ in range(12)]
        self.mutation_rate = 0.15
        self.n_traces = 0

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{self.rng.randrange(16**12):012x}"

    def tick(self) -> float:
        self.clock += self.rng.expovariate(1 / 2.5)
        if self.rng.random() < 0.03:
            self.generation += 1
        return round(self.clock, 6)


def _context(run: _Run) -> dict[str, Any]:
    rng = run.rng
    ctx: dict[str, Any] = {
        "parent_id": rng.choice(run.population),
        "operator": rng.choice(_OPERATORS),
        "file": rng.choice(_FILES),
        "commit": f"{rng.randrange(16**10):010x}",
        "model": rng.choice(_MODELS),
        "environment": {"python": "3.11", "os": "linux", "seed": rng.randrange(10_000)},
    }
    if rng.random() < 0.5:
        ctx["tags"] = rng.sample(["exploration", "exploitation", "rollback", "archive", "validated", "flaky"], 2)
    return ctx


def _perf_delta(run: _Run) -> dict[str, Any]:
    rng = run.rng
    name = rng.choice(tuple(_METRICS))
    _, step, higher_better = _METRICS[name]
    old = run.metrics[name]
    new = max(old + rng.gauss(0.1 * step if higher_better else -0.1 * step, step), 0.0)
    ndigits = 4 if old < 10 else 2
    old, new = round(old, ndigits), round(new, ndigits)
    run.metrics[name] = new
    delta = new - old
    improving = (delta > 0) == higher_better
    return {
        "metric_name": name,
        "old_value": old,
        "new_value": new,
        "delta_magnitude": abs(delta),
        "delta_direction": "neutral" if delta == 0 else ("improvement" if improving else "degradation"),
        "improvement_ratio": new / old if old else 0.0,
        "confidence": round(rng.uniform(0.5, 1.0), 3),
        "samples": rng.choice((50, 100, 200, 300)),
    }


def _fitness_evo(run: _Run) -> dict[str, Any]:
    rng = run.rng
    scores = sorted((round(rng.betavariate(5, 4), 4) for _ in range(len(run.population))), reverse=True)
    mean = sum(scores) / len(scores)
    return {
        "generation": run.generation,
        "population_size": len(run.population),
        "best_fitness": scores[0],
        "mean_fitness": mean,
        "std_fitness": (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5,
        "elite_ids": run.population[:3],
        "objectives": {"accuracy": run.metrics["accuracy"], "latency_ms": run.metrics["latency_ms"]},
        "diversity": round(rng.uniform(0.2, 0.9), 4),
    }


def _benchmark(run: _Run) -> dict[str, Any]:
    rng = run.rng
    name = rng.choice(tuple(_BENCHMARKS))
    cats = _BENCHMARKS[name]
    per_category = {}
    total_passed = total = 0
    for cat in cats:
        n = rng.randint(5, 60)
        passed = rng.randint(0, n)
        per_category[cat] = {"passed": passed, "total": n}
        total += n
        total_passed += passed
    return {
        "benchmark_id": f"{name}-{run.generation:04d}",
        "suite": name,
        "candidate_id": rng.choice(run.population),
        "passed": total_passed,
        "total": total,
        "pass_rate": total_passed / total,
        "duration_s": round(rng.uniform(30, 3600), 1),
        "per_category": per_category,
    }


def _expr(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(_SYMBOLS)
    return f"({rng.choice(_SYMBOLS[3:6])} {_expr(rng, depth - 1)} {_expr(rng, depth - 1)})"


def _symbolic_op(run: _Run) -> dict[str, Any]:
    rng = run.rng
    depth = rng.randint(1, 3)
    return {
        "op": rng.choice(_SYMBOLIC_OPS),
        "input": _expr(rng, depth),
        "output": _expr(rng, depth),
        "depth": depth,
        "cost": rng.randint(1, 40),
        "success": rng.random() < 0.8,
        "duration_ms": round(rng.lognormvariate(1.0, 0.8), 3),
    }


def _mutation(run: _Run) -> dict[str, Any]:
    rng = run.rng
    child = run.new_id("cand")
    parent = rng.choice(run.population)
    before = run.metrics["pass_rate"]
    after = round(max(before + rng.gauss(0, 0.01), 0.0), 4)
    accepted = after > before
    if accepted:
        run.population[rng.randrange(len(run.population))] = child
    return {
        "mutation_id": run.new_id("mut"),
        "parent_id": parent,
        "child_id": child,
        "operator": rng.choice(_OPERATORS),
        "target": rng.choice(_FILES),
        "diff": {"added": rng.randint(0, 80), "removed": rng.randint(0, 40), "files": rng.randint(1, 4)},
        "fitness_before": before,
        "fitness_after": after,
        "accepted": accepted,
    }


def _collapse(run: _Run) -> dict[str, Any]:
    rng = run.rng
    before = round(rng.uniform(0.3, 0.6), 4)
    return {
        "generation": run.generation,
        "diversity_before": before,
        "diversity_after": round(before * rng.uniform(0.1, 0.4), 4),
        "cause": rng.choice(_CAUSES),
        "affected_ids": rng.sample(run.population, 4),
        "recovery_action": rng.choice(("reseed_population", "raise_mutation_rate", "restore_archive")),
    }


def _breakthrough(run: _Run) -> dict[str, Any]:
    rng = run.rng
    name = rng.choice(("accuracy", "pass_rate", "code_quality"))
    previous = run.best[name]
    new = round(previous * rng.uniform(1.03, 1.2), 4)
    run.best[name] = new
    return {
        "breakthrough_id": run.new_id("bt"),
        "metric": name,
        "previous_best": previous,
        "new_best": new,
        "improvement_ratio": new / previous,
        "candidate_id": rng.choice(run.population),
        "lineage": rng.sample(run.population, 3),
        "description": f"{rng.choice(_OPERATORS)} on {rng.choice(_FILES)} raised {name}",
    }


def _meta_evo(run: _Run) -> dict[str, Any]:
    rng = run.rng
    old_rate = run.mutation_rate
    run.mutation_rate = round(min(max(old_rate * rng.uniform(0.7, 1.4), 0.01), 0.9), 4)
    return {
        "parameter": "mutation_rate",
        "old_value": old_rate,
        "new_value": run.mutation_rate,
        "reason": rng.choice(("stagnation", "collapse_recovery", "scheduled_anneal", "breakthrough_followup")),
        "window_generations": rng.choice((5, 10, 20)),
        "selection": {"method": "tournament", "size": rng.choice((3, 4, 5)), "elitism": 2},
    }


_BODIES = {
    "symbolic_op": _symbolic_op,
    "perf_delta": _perf_delta,
    "fitness_evo": _fitness_evo,
    "benchmark": _benchmark,
    "mutation": _mutation,
    "collapse": _collapse,
    "breakthrough": _breakthrough,
    "meta_evo": _meta_evo,
}


def trace_records(n: int, seed: int = 0, trace_type: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield ``n`` realistic agent trace records (JSON-safe dicts).

    Parameters
    ----------
    n : int
        Number of records.
    seed : int
        Seed of the generator; the same seed gives the same records.
    trace_type : str, optional
        Only this type (one of :data:`TRACE_TYPES`); by default a weighted mix.

    Returns
    -------
    Iterator of dict
        Records with keys ``trace_id``, ``trace_type``, ``timestamp``, ``run_id``,
        ``agent_id``, ``generation``, ``data`` (type-specific) and ``context``.
    """
    if trace_type is not None and trace_type not in _BODIES:
        raise ValueError(f"trace_type: expected one of {TRACE_TYPES}, got {trace_type!r}")
    rng = random.Random(seed)
    run = _Run(rng)
    for _ in range(n):
        if rng.random() < 0.002:  # a new run starts now and then
            run = _Run(rng)
        kind = trace_type or rng.choices(TRACE_TYPES, _TYPE_WEIGHTS)[0]
        ts = run.tick()
        run.n_traces += 1
        yield {
            "trace_id": f"{kind}_{int(ts)}_{rng.randrange(16**6):06x}",
            "trace_type": kind,
            "timestamp": ts,
            "run_id": run.run_id,
            "agent_id": rng.choice(run.agents),
            "generation": run.generation,
            "data": _BODIES[kind](run),
            "context": _context(run),
        }

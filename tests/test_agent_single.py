"""A single add's own path (write._add_one) decides and writes what the batch path does with a batch of one row."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from memstrata.agent import AgentConfig, AgentMemory, write

DIM = 16
_BASES = np.random.default_rng(5).normal(size=(4, DIM)).astype(np.float32)


def _vector(base: int, noise: int) -> np.ndarray:
    """Row ``base`` (of 4), nudged by a little noise when ``noise`` > 0: a near duplicate of the plain row."""
    v = _BASES[base] + 0.01 * np.random.default_rng(noise).normal(size=DIM).astype(np.float32) * (noise > 0)
    return (v / np.linalg.norm(v)).astype(np.float32)


def _through_batch(memory: Any, content: Any, text: str, meta: dict[str, Any], x: Any, scope: Any, category: Any,
                   t_valid: Any, supersedes: Any, pinned: bool, sketches: Any, encoded: Any) -> Any:
    return write._add_rows(memory, [content], [text], [meta], x, scope, category, t_valid, supersedes, pinned,
                           sketches, encoded)[0]


_TEXTS = ["tea, no sugar", "Tea,  NO sugar", "deploy on fridays", "metric units", "metric  units please"]
_OPS = st.lists(
    st.tuples(
        st.sampled_from(range(len(_TEXTS))),  # text (two pairs are exact duplicates once normalized)
        st.integers(0, 3), st.integers(0, 2),  # vector: base row and noise (near duplicates of one another)
        st.sampled_from([None, "ana"]),  # user_id
        st.one_of(st.none(), st.integers(0, 2)),  # metadata {"n": value}
        st.one_of(st.none(), st.integers(0, 30)),  # supersedes: index into the records added so far
        st.booleans(),  # with a vector
        st.booleans(),  # pinned
    ),
    min_size=1, max_size=14,
)


def _run(path: Path, ops: list[tuple[Any, ...]], mode: str, batch: bool) -> tuple[list[dict[str, Any]], ...]:
    ticks = itertools.count(1_700_000_000, 7)
    out: list[dict[str, Any]] = []
    config = AgentConfig(near_duplicates=mode)
    with AgentMemory(path, config=config, clock=lambda: float(next(ticks))) as m:
        ids: list[int] = []
        for text, base, noise, user, meta, sup, with_vector, pinned in ops:
            supersedes = ids[sup % len(ids)] if sup is not None and ids else None
            kwargs: dict[str, Any] = {"user_id": user, "supersedes": supersedes, "pinned": pinned}
            if meta is not None:
                kwargs["metadata"] = {"n": meta}
            if with_vector or not ids:  # the first add makes the index
                kwargs["vector"] = _vector(base, noise)
            if batch:
                with patch.object(write, "_add_one", _through_batch):
                    rec = m.add(_TEXTS[text], **kwargs)
            else:
                rec = m.add(_TEXTS[text], **kwargs)
            ids.append(rec.id)
            out.append(rec.to_dict())
        held = [r.to_dict() for r in m._records.values()]
        counters = [dict(m.counters)]
    with AgentMemory(path, config=config, clock=lambda: float(next(ticks))) as m:  # what the store holds
        reopened = [r.to_dict() for r in m._records.values()]
    return out, held, counters, reopened


@settings(max_examples=40, deadline=None)
@given(ops=_OPS, mode=st.sampled_from(["link", "merge", "keep"]))
def test_a_single_add_does_what_a_batch_of_one_does(ops: list[tuple[Any, ...]], mode: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        single = _run(Path(d) / "single", ops, mode, batch=False)
        batch = _run(Path(d) / "batch", ops, mode, batch=True)
    assert single == batch


def test_the_record_handed_back_is_independent_of_the_memory() -> None:
    with AgentMemory() as m:
        rec = m.add("tea, no sugar", vector=_vector(0, 0))
        rec.links.append(99)
        rec.text = "changed"
        held = m.get(rec.id)
        assert held is not None and held.links == [] and held.text == "tea, no sugar"
        again = m.add("coffee", metadata={"k": 1}, vector=_vector(1, 0))
        again.metadata["k"] = 2
        assert m.get(again.id).metadata == {"k": 1}  # type: ignore[union-attr]

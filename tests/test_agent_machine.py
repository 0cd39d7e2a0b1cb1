"""A hypothesis state machine: AgentMemory against a plain dict model, across reopen."""

from __future__ import annotations

import shutil
import tempfile

import hypothesis.strategies as st
import numpy as np
from hypothesis import settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from memstrata.agent import AgentConfig, AgentMemory

WORDS = ["apple", "Apple", "banana", "cherry", "date"]
SCOPES = ["ana", "bob"]


class Clock:
    t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


def norm(text: str) -> str:
    return " ".join(text.lower().split())


class AgentMachine(RuleBasedStateMachine):
    ids = Bundle("ids")

    @initialize()
    def start(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="memstrata-agent-")
        self.clock = Clock()
        self.mem = AgentMemory(self.dir, clock=self.clock, config=AgentConfig(near_duplicates="keep"))
        # model: id -> dict(text, scope, expired, invalid, versions)
        self.model: dict[int, dict] = {}

    def teardown(self) -> None:
        self.mem.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def visible(self, i: int) -> bool:
        r = self.model[i]
        return not r["expired"] and r["invalid"] is None

    @rule(target=ids, word=st.sampled_from(WORDS), n=st.integers(0, 2), scope=st.sampled_from(SCOPES))
    def add(self, word: str, n: int, scope: str) -> int:
        text = f"{word} fact {n}"
        self.clock.t += 1
        rec = self.mem.add(text, user_id=scope)
        same = [i for i, r in self.model.items() if r["scope"] == scope and norm(r["text"]) == norm(text) and self.visible(i)]
        if same:
            assert rec.id in same and rec.duplicate_of == rec.id
        else:
            assert rec.id not in self.model
            self.model[rec.id] = {"text": text, "scope": scope, "expired": False, "invalid": None, "versions": 1}
        return rec.id

    @rule(i=ids, word=st.sampled_from(WORDS))
    def update(self, i: int, word: str) -> None:
        if i not in self.model:
            return
        self.clock.t += 1
        self.mem.update(i, f"{word} changed")
        self.model[i]["text"] = f"{word} changed"
        self.model[i]["versions"] += 1

    @rule(target=ids, i=ids, word=st.sampled_from(WORDS))
    def supersede(self, i: int, word: str) -> int:
        if i not in self.model:
            return i
        self.clock.t += 1
        new = self.mem.update(i, f"{word} instead", supersede=True)
        old = self.model[i]
        if new.id != i:
            old["invalid"] = self.clock.t
        if new.duplicate_of is None:
            self.model[new.id] = {"text": f"{word} instead", "scope": old["scope"], "expired": False, "invalid": None,
                                  "versions": 1}
        return new.id

    @rule(i=ids, on=st.booleans())
    def expire(self, i: int, on: bool) -> None:
        if i in self.model:
            (self.mem.expire if on else self.mem.unexpire)(i)
            self.model[i]["expired"] = on

    @rule(i=ids)
    def forget(self, i: int) -> None:
        assert self.mem.forget(i) == (i in self.model)
        self.model.pop(i, None)

    @precondition(lambda self: len(self.model) > 0)
    @rule()
    def reopen(self) -> None:
        self.mem.close()
        self.mem = AgentMemory(self.dir, clock=self.clock, config=AgentConfig(near_duplicates="keep"))

    @invariant()
    def agrees(self) -> None:
        mem, model = self.mem, self.model
        assert sorted(r.id for r in mem.get_all(limit=None, include_expired=True)) == sorted(
            i for i, r in model.items() if r["invalid"] is None)
        assert sorted(r.id for r in mem.get_all(limit=None)) == sorted(i for i in model if self.visible(i))
        for i, r in model.items():
            got = mem.get(i, include_expired=True)
            assert got is not None and got.text == r["text"] and got.user_id == r["scope"]
            assert len(mem.history(i)) == r["versions"]
        hits = {h.id for h in mem.search("fact changed instead", mode="keyword", limit=100)}
        assert hits == {i for i in model if self.visible(i)}


# each example opens a store directory and may reopen it: fewer, longer runs keep CI inside its budget
AgentMachine.TestCase.settings = settings(
    settings.default, max_examples=min(settings.default.max_examples, 40), stateful_step_count=30
)
TestAgentMachine = AgentMachine.TestCase


class VectorIndexMachine(RuleBasedStateMachine):
    """The agent's VectorIndex (buffer, quantized memory, sketches) against a dict of the vectors it holds.

    ``near`` may miss a pair the sketches put too far apart (a bounded,
    measured chance on real data), but never returns one below the threshold,
    never a removed id, and always finds an exact copy of a stored vector
    whose stored codes score at the threshold or above.
    """

    def __init__(self) -> None:
        super().__init__()
        from memstrata.agent.vectorindex import VectorIndex

        self.index = VectorIndex(16, buffer_rows=8)
        self.model: dict[int, np.ndarray] = {}
        self.next_id = 0

    def _unit(self, seed: int) -> np.ndarray:
        v = np.random.default_rng(seed).standard_normal(16).astype(np.float32)
        return v / np.linalg.norm(v)

    @rule(seeds=st.lists(st.integers(0, 50), min_size=1, max_size=12))
    def add(self, seeds: list[int]) -> None:
        ids = list(range(self.next_id, self.next_id + len(seeds)))
        self.next_id += len(seeds)
        x = np.stack([self._unit(s) for s in seeds])
        self.index.add_many(ids, x)
        self.model.update(zip(ids, x))

    @precondition(lambda self: self.model)
    @rule(pick=st.integers(0, 10**6))
    def remove(self, pick: int) -> None:
        id_ = sorted(self.model)[pick % len(self.model)]
        self.index.remove(id_)
        del self.model[id_]

    @rule()
    def flush(self) -> None:
        self.index.flush()

    @rule(seed=st.integers(0, 50), threshold=st.sampled_from([0.5, 0.9, 0.99]))
    def near(self, seed: int, threshold: float) -> None:
        q = self._unit(seed)
        ((ids, sims),) = self.index.near(q[None, :], threshold)
        stored = self.index.get(sorted(self.model)) if self.model else np.empty((0, 16), np.float32)
        exact = dict(zip(sorted(self.model), (stored @ q).tolist()))
        assert set(ids.tolist()) <= set(self.model)
        for id_, sim in zip(ids.tolist(), sims.tolist()):
            assert sim >= threshold and abs(sim - exact[id_]) < 1e-5
        # a copy has the query's sketch, so it is always a candidate; its score is that of its stored codes
        copies = {i for i, v in self.model.items() if np.array_equal(v, q) and exact[i] >= threshold}
        assert copies <= set(ids.tolist())

    @invariant()
    def sizes_agree(self) -> None:
        assert len(self.index) == len(self.model)


VectorIndexMachine.TestCase.settings = settings(
    settings.default, max_examples=min(settings.default.max_examples, 40), stateful_step_count=30, deadline=None
)
TestVectorIndexMachine = VectorIndexMachine.TestCase

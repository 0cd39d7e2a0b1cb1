"""A hypothesis state machine: AgentMemory against a plain dict model, across reopen."""

from __future__ import annotations

import shutil
import tempfile

import hypothesis.strategies as st
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

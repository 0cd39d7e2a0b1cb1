"""MemoryCore against a dict model: writes, patterns, deletes, reads with and without cache, reopen."""

from __future__ import annotations

import shutil
import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from memstrata.core import MemoryCore

KEYS = st.sampled_from([f"k{i}" for i in range(6)])
VALUES = st.one_of(st.text(max_size=30), st.integers(), st.dictionaries(st.text(max_size=4), st.integers(), max_size=3))


class CoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="memstrata-core-machine-")
        self.core = MemoryCore(self.dir, checkpoint_every=3)
        self.model: dict[str, object] = {}
        self.patterns: dict[str, float] = {}
        self.n_entries = 0

    @rule(key=KEYS, value=VALUES)
    def write(self, key, value):
        assert self.core.write_sync(key, value, actor="m").ok
        self.model[key] = value
        self.patterns.pop(key, None)
        self.n_entries += 1

    @rule(key=KEYS, value=VALUES, confidence=st.floats(0, 1))
    def write_pattern(self, key, value, confidence):
        self.core.write_sync(key, value, metadata={"is_pattern": True, "pattern_type": "t", "confidence": confidence})
        self.model[key] = value
        self.patterns[key] = confidence
        self.n_entries += 1

    @rule(key=KEYS)
    def delete(self, key):
        assert self.core.delete_sync(key).existed == (key in self.model)
        self.model.pop(key, None)
        self.patterns.pop(key, None)
        self.n_entries += 1

    @rule(key=KEYS, use_cache=st.booleans())
    def read(self, key, use_cache):
        assert self.core.read_sync(key, use_cache=use_cache) == self.model.get(key)

    @rule()
    def reopen(self):
        self.core.close()
        self.core = MemoryCore(self.dir, checkpoint_every=3)

    @invariant()
    def log_and_patterns_agree(self):
        assert len(self.core.audit) == self.n_entries
        assert {p["key"]: p["confidence"] for p in self.core.patterns()} == self.patterns

    def teardown(self):
        assert self.core.audit.verify() == self.n_entries
        self.core.close()
        shutil.rmtree(self.dir, ignore_errors=True)


CoreMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=15, deadline=None)
test_core_matches_a_dict_model = CoreMachine.TestCase

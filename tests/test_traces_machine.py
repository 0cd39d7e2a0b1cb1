"""SymbolicTraceMemory in lock-step with a dict model (hypothesis state machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _traces_helpers import DAY, Clock, open_memory
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from memstrata.traces import SymbolicTraceMemory

_IDS = st.sampled_from([f"t{i}" for i in range(12)])
_DATA = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    | st.tuples(inner, inner),
    max_leaves=8,
)


class TraceMemoryMachine(RuleBasedStateMachine):
    """SymbolicTraceMemory in lock-step with a dict, across flushes, reopenings and retention."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "m.db"
        self.clock = Clock()
        self.mem = self._open()
        self.model: dict[str, tuple[Any, float, float]] = {}  # id -> (data, priority, timestamp)

    def _open(self) -> SymbolicTraceMemory:
        return open_memory(self.path, self.clock, max_memory_traces=4, flush_every=5, retention_days=1,
                           train_after=8, type_train_after=8, dictionary_bytes=1024)

    @rule(trace_id=_IDS, data=_DATA, priority=st.sampled_from([0.1, 0.5, 0.8, 0.9, 1.0]))
    def store(self, trace_id: str, data: Any, priority: float) -> None:
        self.mem.store_compressed_trace_sync(trace_id, data, "mutation", priority=priority)
        self.model[trace_id] = (data, priority, self.clock.now)

    @rule(trace_id=_IDS)
    def get(self, trace_id: str) -> None:
        expected = self.model.get(trace_id)
        assert self.mem.get_trace_sync(trace_id) == (None if expected is None else expected[0])

    @rule(hours=st.integers(1, 30))
    def advance(self, hours: int) -> None:
        self.clock.advance(hours * 3600.0)

    @rule()
    def retention(self) -> None:
        cutoff = self.clock.now - DAY
        self.mem.apply_retention_sync()
        self.model = {k: v for k, v in self.model.items() if v[2] >= cutoff or v[1] > 0.8}
        assert len(self.mem) <= 4

    # alike in shape only to test_store_machine.py's reopen rule: each machine closes and
    # reopens its own object under test
    @rule()
    def reopen(self) -> None:
        self.mem.close()
        self.mem = self._open()

    @rule()
    def crash(self) -> None:
        """Lose the queue, as a crash would: urgent traces survive, the rest may not."""
        queued = {row[0] for row in self.mem._pending_traces}
        self.mem._closed = True
        self.mem._conn.close()
        self.mem = self._open()
        for trace_id in queued:
            if trace_id in self.model and self.model[trace_id][1] <= 0.8:
                # the queued version is lost; an older committed one may remain
                self.model[trace_id] = (self.mem.get_trace_sync(trace_id), *self.model[trace_id][1:])
                if self.model[trace_id][0] is None:
                    del self.model[trace_id]

    @invariant()
    def same_ids(self) -> None:
        if self.mem.closed:
            return
        listed = {t.trace_id for t in self.mem.traces_sync()}
        assert listed == set(self.model)

    def teardown(self) -> None:
        self.mem.close()
        self.dir.cleanup()


TestTraceMemoryMachine = TraceMemoryMachine.TestCase
TestTraceMemoryMachine.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)

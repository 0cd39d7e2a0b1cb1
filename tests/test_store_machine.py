"""MemoryStore in lock-step with a dict model: writes, deletes, moves, pins, clock, migrations, reopen."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from memstrata import MemoryStore
from memstrata.tiers._tiers import F_TOMBSTONE, OWNER, B, K, inline_frame

KEYS = st.sampled_from([f"k{i}" for i in range(6)] + [b"b0", b"b1"])
VALUES = st.one_of(
    st.integers(),
    st.text(max_size=30),
    st.binary(max_size=60),
    st.lists(st.integers(-5, 5), max_size=4),
    st.dictionaries(st.sampled_from("abc"), st.floats(allow_nan=False), max_size=3),
)
TIERS = st.sampled_from(["hot", "warm", "cold"])
HOT_MAX = 600


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="memstrata-machine-")
        self.now = [0.0]
        self.cfg = {
            "migration_interval_seconds": None,
            "durability": "none",
            "hot_max_bytes": HOT_MAX,
            "hot_idle_seconds": 10.0,
            "warm_idle_seconds": 100.0,
            "warm_max_bytes": 2000,
        }
        self.store = self._open()
        self.model: dict[Any, Any] = {}
        self.pinned: set[Any] = set()

    def _open(self) -> MemoryStore:
        return MemoryStore(self.dir, self.cfg, clock=lambda: self.now[0])

    @rule(key=KEYS, value=VALUES, tier=TIERS, pin=st.booleans())
    def store_value(self, key: Any, value: Any, tier: str, pin: bool) -> None:
        self.store.store(key, value, tier=tier, pin=pin)
        self.model[key] = value
        (self.pinned.add if pin else self.pinned.discard)(key)

    @rule(items=st.lists(st.tuples(KEYS, VALUES), max_size=6), tier=TIERS)
    def store_many(self, items: list[tuple[Any, Any]], tier: str) -> None:
        self.store.store_many(items, tier=tier, batch=4)
        for key, value in items:
            self.model[key] = value
            self.pinned.discard(key)

    @rule(key=KEYS)
    def delete(self, key: Any) -> None:
        if key in self.model:
            self.store.delete(key)
            del self.model[key]
            self.pinned.discard(key)
        else:
            assert key not in self.store

    @rule(keys=st.lists(KEYS, max_size=5), missing_ok=st.booleans())
    def delete_many(self, keys: list[Any], missing_ok: bool) -> None:
        seq = self.store.seq
        if not missing_ok and any(k not in self.model for k in keys):
            with pytest.raises(KeyError):
                self.store.delete_many(keys)
            assert self.store.seq == seq  # nothing was deleted
            return
        gone = {k for k in keys if k in self.model}
        assert self.store.delete_many(keys, missing_ok=missing_ok) == seq + len(gone)
        for k in gone:
            del self.model[k]
            self.pinned.discard(k)

    @rule(key=KEYS)
    def retrieve(self, key: Any) -> None:
        assert self.store.retrieve(key, "<absent>") == self.model.get(key, "<absent>")

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), tier=TIERS)
    def migrate(self, data: st.DataObject, tier: str) -> None:
        key = data.draw(st.sampled_from(sorted(self.model, key=repr)))
        self.store.migrate(key, tier)
        if tier != "hot":  # a hot copy may be refused when one value outweighs the hot tier
            assert self.store.tier_of(key) == tier

    @rule(seconds=st.sampled_from([1.0, 20.0, 200.0]))
    def advance_clock_and_migrate(self, seconds: float) -> None:
        before = {k: self.store.tier_of(k) for k in self.pinned}
        self.now[0] += seconds
        self.store.run_migrations()
        after = {k: self.store.tier_of(k) for k in self.pinned}
        assert before == after  # the rules never move pinned keys

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def toggle_pin(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model, key=repr)))
        if key in self.pinned:
            self.store.unpin(key)
            self.pinned.discard(key)
        else:
            self.store.pin(key)
            self.pinned.add(key)

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = self._open()

    @rule()
    def compact(self) -> None:
        self.store.compact()

    @invariant()
    def matches_model(self) -> None:
        assert len(self.store) == len(self.model)
        stats = self.store.get_statistics()["tiered_storage"]
        unpinned_hot = stats["hot"]["bytes"]
        assert stats["hot"]["pinned"] > 0 or unpinned_hot <= HOT_MAX

    @invariant()
    def blobs_counts_and_layout_agree(self) -> None:
        """Each blob's refcount is the live keys naming it; an owned blob's frame is in its one owner's entry."""
        tiers = self.store.tiers
        live: dict[bytes, list[bytes]] = {}
        for kb, (_seq, flags, d) in tiers.warm.entries():
            if not flags & F_TOMBSTONE:
                live.setdefault(d, []).append(kb)
        for d, info in tiers.warm.blobs():
            owners = live.get(d, [])
            assert info[0] == len(owners), d.hex()
            if info[OWNER]:
                assert info[2] == 1 and tiers.backend.get(B + d) is None  # warm, and no data record
                holds = inline_frame(tiers.backend.get(K + info[OWNER]), d) is not None
                assert holds == (owners == [info[OWNER]]) and len(owners) <= 1
            elif owners:
                assert tiers.backend.get(B + d) is not None
        before = tiers.statistics()
        tiers._recount()
        after = tiers.statistics()
        for name in ("keys", "tombstones", "unique_blobs", "garbage_blobs", "logical_bytes", "unique_bytes", "warm", "cold"):
            assert before[name] == after[name], name

    def teardown(self) -> None:
        try:
            assert sorted(self.store.keys(), key=repr) == sorted(self.model, key=repr)
            for k, v in self.model.items():
                assert self.store.retrieve(k) == v
            assert self.store.verify()["ok"]
        finally:
            self.store.close()
            shutil.rmtree(self.dir, ignore_errors=True)


StoreMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_store_machine = StoreMachine.TestCase

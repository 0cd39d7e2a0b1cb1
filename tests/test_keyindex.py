"""The compact key index (``memstrata._native.keyindex``) in lock-step with its plain-Python twin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from reference import KeyIndexModel

from memstrata._native.keyindex import (
    BUILD_LOAD,
    MAX_LOAD,
    SLOT_BYTES,
    KeyIndex,
    fingerprint,
    fingerprints,
    fingerprints_at,
)

# few distinct fingerprints: runs, shared fingerprints and wrap-around at the table's end are the common case
FPS = st.one_of(st.integers(1, 6), st.integers(0xFFFFFFF0, 0xFFFFFFFF), st.integers(1, 0xFFFFFFFF))


class KeyIndexMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.table = KeyIndex()
        self.model = KeyIndexModel()
        self.next_loc = 1

    def _pairs(self) -> list[tuple[int, int]]:
        return self.model.pairs()

    @rule(fp=FPS)
    def insert(self, fp: int) -> None:
        self.table.insert(fp, self.next_loc)
        self.model.insert(fp, self.next_loc)
        self.next_loc += 1

    @rule(fps=st.lists(FPS, min_size=20, max_size=200))
    def grow(self, fps: list[int]) -> None:
        for fp in fps:
            self.insert(fp)

    @precondition(lambda self: len(self.model))
    @rule(data=st.data())
    def overwrite(self, data: st.DataObject) -> None:
        fp, loc = data.draw(st.sampled_from(self._pairs()))
        assert self.table.replace(fp, loc, self.next_loc)
        self.model.replace(fp, loc, self.next_loc)
        self.next_loc += 1

    @precondition(lambda self: len(self.model))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        fp, loc = data.draw(st.sampled_from(self._pairs()))
        assert self.table.remove(fp, loc)
        self.model.remove(fp, loc)

    @precondition(lambda self: len(self.model) > 10)
    @rule(data=st.data())
    def delete_most(self, data: st.DataObject) -> None:  # shrinks the table
        for fp, loc in self._pairs()[: data.draw(st.integers(1, len(self.model)))]:
            assert self.table.remove(fp, loc)
            self.model.remove(fp, loc)

    @rule(fp=FPS)
    def missing(self, fp: int) -> None:
        assert self.table.remove(fp, 0) is False  # location 0 is never stored
        assert self.table.replace(fp, 0, 5) is False

    @rule()
    def dump_and_load(self) -> None:
        fps, locs = self.table.dump()
        self.table = KeyIndex.from_arrays(fps, locs)

    @rule(seed=st.integers(0, 2**32 - 1))
    def load_shuffled(self, seed: int) -> None:  # out-of-order input takes the general insert
        fps, locs = self.table.dump()
        order = np.random.default_rng(seed).permutation(len(fps))
        self.table = KeyIndex.from_arrays(fps[order], locs[order])

    @rule()
    def load_sorted(self) -> None:
        fps, locs = self.table.dump()
        order = np.argsort(fps, kind="stable")
        self.table = KeyIndex.from_arrays(fps[order], locs[order])

    @rule(fp=FPS)
    def find(self, fp: int) -> None:
        assert sorted(self.table.find(fp)) == self.model.find(fp)

    @invariant()
    def same_entries(self) -> None:
        assert len(self.table) == len(self.model)
        assert sorted(self.table) == self._pairs()
        for fp in list(self.model.by_fp)[:8]:
            assert sorted(self.table.find(fp)) == self.model.find(fp)

    @invariant()
    def bounded_load(self) -> None:
        t = self.table
        assert len(t) <= MAX_LOAD * t.capacity
        assert t.nbytes == t.capacity * SLOT_BYTES
        assert t.capacity <= max(64, 4 * len(t) + 8)  # shrinks after deletes, no preallocation


TestKeyIndexMachine = KeyIndexMachine.TestCase
TestKeyIndexMachine.settings = settings(stateful_step_count=25, deadline=None)


def test_fingerprint_is_stable_and_masked() -> None:
    # part of the checkpoint format: these values must never change
    assert fingerprint(b"") == fingerprint(b"")
    assert fingerprint(b"kabc") != fingerprint(b"kabd")
    assert [fingerprint(k, 0) for k in (b"a", b"b")] == [1, 1]
    assert all(1 <= fingerprint(bytes([i]), 0x3) <= 3 for i in range(256))
    keys = [b"k%d" % i for i in range(100)]
    assert fingerprints(keys).tolist() == [fingerprint(k) for k in keys]
    assert fingerprints(keys).dtype == np.uint32


@given(st.lists(st.binary(max_size=12), unique=True, max_size=300), st.sampled_from([0, 0x1, 0xF, 0xFFFFFFFF]))
def test_lookup_yields_every_location_of_the_key_fingerprint(keys: list[bytes], mask: int) -> None:
    table = KeyIndex(mask)
    for i, k in enumerate(keys):
        table.insert(table.fingerprint(k), i + 1)
    for i, k in enumerate(keys):
        locs = table.lookup(k)
        assert i + 1 in locs
        assert sorted(locs) == sorted(j + 1 for j, o in enumerate(keys) if table.fingerprint(o) == table.fingerprint(k))


def test_bad_input_is_refused() -> None:
    table = KeyIndex(0xF)
    with pytest.raises(ValueError, match="fp: expected a fingerprint"):
        table.insert(0, 1)
    with pytest.raises(ValueError, match="fp: expected a fingerprint"):
        table.insert(0x10, 1)  # outside the mask
    with pytest.raises(ValueError, match="mask"):
        KeyIndex(-1)
    with pytest.raises(TypeError, match="fps: expected a 1-d uint32 array"):
        KeyIndex.from_arrays(np.ones(3, dtype=np.int64), np.ones(3, dtype=np.int64))
    with pytest.raises(TypeError, match="locs: expected an int64 array"):
        KeyIndex.from_arrays(np.ones(3, dtype=np.uint32), np.ones(2, dtype=np.int64))
    with pytest.raises(ValueError, match="fps: a fingerprint is 0"):
        KeyIndex.from_arrays(np.zeros(3, dtype=np.uint32), np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match="outside the mask"):
        KeyIndex.from_arrays(np.full(3, 0x20, dtype=np.uint32), np.ones(3, dtype=np.int64), 0xF)
    with pytest.raises(TypeError):
        table.lookup("text")  # type: ignore[arg-type]


def test_load_of_a_million_entries_is_one_pass() -> None:
    rng = np.random.default_rng(7)
    fps = np.sort(rng.integers(1, 2**32, 1_000_000, dtype=np.uint32))
    locs = np.arange(1, 1_000_001, dtype=np.int64)
    table = KeyIndex.from_arrays(fps, locs)
    assert len(table) == 1_000_000 and table.nbytes == table.capacity * SLOT_BYTES
    assert len(table) / table.capacity == pytest.approx(BUILD_LOAD, abs=0.01) == pytest.approx(0.85, abs=0.01)
    for i in rng.integers(0, 1_000_000, 200).tolist():
        assert locs[i] in table.find(int(fps[i]))
    fps2, locs2 = table.dump()
    assert sorted(zip(fps2.tolist(), locs2.tolist())) == sorted(zip(fps.tolist(), locs.tolist()))


@given(st.binary(max_size=64), st.lists(st.tuples(st.integers(-3, 70), st.integers(-2, 70)), max_size=20))
def test_fingerprints_at_match_the_slices(data: bytes, slices: list[tuple[int, int]]) -> None:
    starts = np.array([a for a, _ in slices], dtype=np.int64)
    lengths = np.array([n for _, n in slices], dtype=np.int64)
    expected = [fingerprint(data[a : a + n], 0xF) if a >= 0 and n >= 0 and a + n <= len(data) else 0 for a, n in slices]
    assert fingerprints_at(data, starts, lengths, 0xF).tolist() == expected


def test_fingerprints_at_checks_its_lengths() -> None:
    with pytest.raises(ValueError, match="lengths: expected 2 entries"):
        fingerprints_at(b"abc", np.zeros(2, dtype=np.int64), np.zeros(1, dtype=np.int64))

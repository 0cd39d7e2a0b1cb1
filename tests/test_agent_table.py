"""RecordTable (agent/table.py) against a dict of MemoryRecords: every read equals what was put, through
overwrites, removals, digest collisions of the hash table's 64-bit key, text buffer repacks and rehashes."""

from __future__ import annotations

import math

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from memstrata.agent.records import MemoryRecord, content_digest
from memstrata.agent.table import RecordTable

TEXTS = ["tea, no sugar", "deploy on fridays is forbidden", "ünïcödé 🙂 text", "x" * 300, "the user prefers metric units"]
# digests: real ones, and ones sharing the high 64 bits (the hash table's key) with another but not the low 64
HIGH = "0123456789abcdef"
DIGESTS = [content_digest((None, None, None), t) for t in TEXTS] + [HIGH + "0" * 16, HIGH + "1" * 16, HIGH + "f" * 16]

times = st.floats(min_value=0, max_value=2e9, allow_nan=False)
records = st.builds(
    MemoryRecord,
    id=st.integers(0, 40),
    content=st.one_of(st.sampled_from(TEXTS), st.fixed_dictionaries({"type": st.just("trade"), "evidence": st.lists(st.integers(0, 40), max_size=3)})),
    text=st.sampled_from(TEXTS),
    category=st.sampled_from(["facts", "episodic", "patterns"]),
    type=st.sampled_from([None, "trade"]),
    user_id=st.sampled_from([None, "ana", "bo"]),
    agent_id=st.sampled_from([None, "a1"]),
    metadata=st.dictionaries(st.sampled_from(["k", "n"]), st.one_of(st.integers(), st.text(max_size=3)), max_size=2),
    created_at=times,
    updated_at=times,
    valid_at=times,
    invalid_at=st.one_of(st.none(), times),
    expired=st.booleans(),
    supersedes=st.one_of(st.none(), st.integers(0, 40)),
    superseded_by=st.one_of(st.none(), st.integers(0, 40)),
    links=st.lists(st.integers(0, 40), max_size=3, unique=True).map(sorted),
    access_count=st.integers(0, 1000),
    last_access=st.one_of(st.none(), times),
    version=st.integers(1, 4),
    tier=st.sampled_from(["hot", "warm", "cold"]),
    pinned=st.booleans(),
    hash=st.sampled_from(DIGESTS),
)


def _same(a: MemoryRecord, b: MemoryRecord) -> bool:
    da, db = a.to_dict(), b.to_dict()
    for name in ("created_at", "updated_at", "valid_at", "invalid_at", "last_access"):
        x, y = da.pop(name), db.pop(name)
        if not (x == y or (x is not None and y is not None and math.isnan(x) and math.isnan(y))):
            return False
    return da == db


class TableMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.table = RecordTable()
        self.model: dict[int, MemoryRecord] = {}

    @rule(rec=records)
    def put(self, rec: MemoryRecord) -> None:
        self.table.put(rec)
        self.model[rec.id] = rec.copy()
        rec.metadata = {"changed": "after put"}  # the table holds a copy of the fields
        rec.text = "changed after put"

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def pop(self, data: st.DataObject) -> None:
        id_ = data.draw(st.sampled_from(sorted(self.model)))
        assert _same(self.table.pop(id_), self.model.pop(id_))
        with pytest.raises(KeyError):
            self.table[id_]

    @precondition(lambda self: self.model)
    @rule(data=st.data(), links=st.lists(st.integers(0, 40), max_size=3, unique=True).map(sorted))
    def set_links(self, data: st.DataObject, links: list[int]) -> None:
        id_ = data.draw(st.sampled_from(sorted(self.model)))
        self.table.set_links(id_, links)
        self.model[id_].links = list(links)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), count=st.integers(0, 99), last=st.one_of(st.none(), times))
    def set_access(self, data: st.DataObject, count: int, last: float | None) -> None:
        id_ = data.draw(st.sampled_from(sorted(self.model)))
        self.table.set_access(id_, count, last)
        self.model[id_].access_count, self.model[id_].last_access = count, last
        assert self.table.access_of(id_) == (count, last)

    @invariant()
    def reads_equal_the_model(self) -> None:
        table, model = self.table, self.model
        assert len(table) == len(model) and list(table) == sorted(model)
        for id_, rec in model.items():
            assert id_ in table and _same(table[id_], rec)
            assert table.scope_of(id_) == (rec.user_id, rec.agent_id, rec.run_id) and table.created_at(id_) == rec.created_at
            assert table.is_restricted(id_) == (rec.expired or rec.invalid_at is not None or rec.valid_at > rec.created_at)
        assert 41 not in table and -1 not in table and "0" not in table and 1.5 not in table
        for digest in DIGESTS:
            assert table.with_digest(digest) == sorted(i for i, r in model.items() if r.hash == digest)
        assert table.accessed() == sorted(i for i, r in model.items() if r.access_count)
        assert table.linked() == {i: tuple(r.links) for i, r in model.items() if r.links}
        gone = {0, 1, 2}
        named = sorted(
            i for i, r in model.items()
            if (set(r.links) & gone) or r.supersedes in gone or r.superseded_by in gone
            or (isinstance(r.content, dict) and set(r.content["evidence"]) & gone)
        )
        assert table.naming(gone) == named


TestRecordTable = TableMachine.TestCase
TestRecordTable.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_many_records_survive_growth_rehash_and_repack() -> None:
    """Thousands of puts and removals: the hash table grows and drops its removed slots, the text buffer repacks."""
    table = RecordTable()
    model = {}
    for i in range(3000):
        text = f"memory number {i} " + "word " * (i % 50)
        rec = MemoryRecord(id=i, content=text, text=text, category="facts", hash=content_digest((None,) * 3, text))
        table.put(rec)
        model[i] = rec
    for i in range(0, 3000, 3):  # a third removed: their texts' bytes are zeroed, then repacked
        table.pop(i)
        del model[i]
    for i in range(1, 3000, 3):  # a new text for each of another third
        text = f"changed {i}"
        rec = MemoryRecord(id=i, content=text, text=text, category="facts", hash=content_digest((None,) * 3, text))
        table.put(rec)
        model[i] = rec
    assert len(table) == len(model)
    for i, rec in model.items():
        assert table[i].to_dict() == rec.to_dict()
        assert table.with_digest(rec.hash) == [i]
    assert not any(table.with_digest(content_digest((None,) * 3, f"memory number {i} ")) for i in range(0, 3000, 3))
    assert b"memory number 0 " not in bytes(table._text)  # a removed text leaves no bytes behind in RAM

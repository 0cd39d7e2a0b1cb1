"""The warm read's one native call (``read_tagged``) against its readable twin, intact and damaged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memstrata import MemoryStore
from memstrata._native.keyindex import KeyIndex
from memstrata._native.logreads import read_tagged
from memstrata._native.logrecords import encode_batch
from memstrata.tiers._log_reads import tagged_at

SEED = 0x4D535432
W = 0x57
records = st.lists(st.tuples(st.binary(min_size=1, max_size=12), st.binary(max_size=5000)), min_size=1, max_size=5,
                   unique_by=lambda r: r[0])


@settings(max_examples=150, deadline=None)
@given(records, st.integers(0, 40), st.integers(0, 300), st.integers(0, 255), st.data())
def test_read_tagged_is_its_twin(tmp_path_factory: pytest.TempPathFactory, batch: list[tuple[bytes, bytes]], pad: int,
                                 head: int, tag: int, data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("tagged") / "seg"
    raw, offsets = encode_batch([(0, k, v) for k, v in batch], 5, SEED)
    raw = bytearray(b"\0" * pad + raw)
    if data.draw(st.booleans()):  # damage one byte: the native call must then step aside or still be right
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    path.write_bytes(bytes(raw))
    table = KeyIndex()
    for (k, _v), off in zip(batch, offsets):
        table.insert(table.fingerprint(k), (7 << 32) | (pad + off))
    fd = os.open(path, os.O_RDONLY)
    try:
        for k, v in batch + [(b"absent", b"")]:
            got = read_tagged(table, {7: fd}, k, SEED, head, tag)
            assert got == tagged_at(table, {7: fd}, k, SEED, head, tag)
            if got is not None:  # whatever it returns is the stored value, split at its tag
                assert got[1] + (b"" if got[2] is None else bytes([tag]) + got[2]) == v
        assert read_tagged(table, {}, batch[0][0], SEED, head, tag) is None  # the segment is not open
    finally:
        os.close(fd)


def test_a_store_reads_its_warm_frames_through_the_native_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from memstrata.tiers import _log_reads

    store = MemoryStore(tmp_path / "s", {"hot_max_bytes": 0, "migration_interval_seconds": None})
    values = {f"k{i}": {"text": f"value {i}", "n": i} for i in range(50)}
    store.store_many(values, tier="warm")
    store.store("shared-a", "same content")  # a blob two keys share: its frame is in a data record
    store.store("shared-b", "same content")
    answers = []

    def spy(*args: object) -> tuple[int, bytes, bytes | None] | None:
        answers.append(read_tagged(*args))  # type: ignore[arg-type]
        return answers[-1]

    monkeypatch.setattr(_log_reads, "read_tagged", spy)
    assert {k: store.retrieve(k) for k in values} == values
    assert store.retrieve("shared-a") == store.retrieve("shared-b") == "same content"
    assert len(answers) >= len(values) and all(a is not None for a in answers)
    store.close()

"""OffHeapIndex (agent/offheap.py) and its RowFile (agent/rowfile.py): the rows read back are the rows written or
the read raises CorruptDataError naming the file; searches, gets and near-duplicate pairs agree with exact
computation on the same int8 rows, through adds and removals."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from memstrata.agent import AgentConfig
from memstrata.agent.offheap import OffHeapIndex
from memstrata.agent.rowfile import RowFile, encode_rows
from memstrata.errors import CorruptDataError


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def decoded(x: np.ndarray) -> np.ndarray:
    codes, scales = encode_rows(x)
    return codes.astype(np.float32) * scales[:, None]


@settings(deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 20), st.integers(1, 40)),
              elements=st.floats(-1, 1, width=32)).filter(lambda a: bool((np.abs(a).max(axis=1) > 1e-3).all())))
def test_rowfile_reads_back_what_was_written(raw: np.ndarray) -> None:
    x = (raw / np.linalg.norm(raw.astype(np.float64), axis=1, keepdims=True)).astype(np.float32)  # unit rows
    rows = RowFile(x.shape[1])
    try:
        codes, scales = encode_rows(x)
        ids = np.arange(100, 100 + x.shape[0], dtype=np.int64)
        slots = rows.append(ids, codes, scales)
        order = np.arange(x.shape[0])[::-1].copy()
        got_codes, got_scales = rows.read(slots[order], ids[order])
        assert np.array_equal(got_codes, codes[order]) and np.array_equal(got_scales, scales[order])
        every_codes, _ = rows.read(slots, ids)  # the whole file in one read
        assert np.array_equal(every_codes, codes)
        assert np.abs(np.abs(codes).max(axis=1) - 127).max() <= 1  # the peak of each row uses the full range
    finally:
        rows.close()


def test_rowfile_damage_raises_naming_the_file() -> None:
    rng = np.random.default_rng(1)
    rows = RowFile(24)
    codes, scales = encode_rows(unit(rng, 10, 24))
    ids = np.arange(10, dtype=np.int64)
    slots = rows.append(ids, codes, scales)
    path = rows.path
    with pytest.raises(CorruptDataError, match=str(path)):  # the right slot asked for another id
        rows.read(slots[:1], np.array([5], np.int64))
    fd = os.open(path, os.O_RDWR)
    try:
        at = 3 * rows.row_bytes + 20  # one code byte of slot 3
        byte = os.pread(fd, 1, at)
        os.pwrite(fd, bytes([byte[0] ^ 0x10]), at)
        rows.read(slots[:3], ids[:3])  # the other rows still read
        with pytest.raises(CorruptDataError, match=f"{path}.*slot 3"):
            rows.read(slots[2:5], ids[2:5])
        os.pwrite(fd, byte, at)
        # a row copied into another slot fails too (the slot is part of the check)
        os.pwrite(fd, os.pread(fd, rows.row_bytes, 0), 4 * rows.row_bytes)
        with pytest.raises(CorruptDataError, match=str(path)):
            rows.read(slots[4:5], np.array([0], np.int64))
        rows.clear(4)
        with pytest.raises(CorruptDataError, match=str(path)):
            rows.read(slots[4:5], ids[4:5])
        os.ftruncate(fd, 9 * rows.row_bytes + 7)
        with pytest.raises(CorruptDataError, match=str(path)):
            rows.read(slots[9:], ids[9:])
    finally:
        os.close(fd)
        rows.close()
    assert not path.exists()


def test_offheap_matches_exact_scoring_through_adds_and_removals() -> None:
    rng = np.random.default_rng(7)
    d = 48
    x = unit(rng, 900, d)
    # shortlist and rerank cover every row: the result must be the exact top-k on the int8 rows
    index = OffHeapIndex(d, shortlist=4096, rerank=4096)
    try:
        index.add_many(list(range(600)), x[:600])
        for id_ in range(600, 900):
            index.add_many([id_], x[id_ : id_ + 1])
        removed = set(range(0, 900, 7))
        for id_ in removed:
            index.remove(id_)
        index.remove(100_000)  # absent: nothing happens
        live = np.array([i for i in range(900) if i not in removed])
        assert len(index) == live.size and 7 not in index and 8 in index
        # rows in the file are their int8 codes; the last single adds still wait in the float buffer
        in_file = np.array([index._stored(i) for i in range(900)])
        assert not in_file.all() and in_file[live].sum() > 0
        ref = np.where(in_file[:, None], decoded(x), x)
        assert np.allclose(index.get(live[::-1].tolist()), ref[live[::-1]])
        with pytest.raises(KeyError, match="7"):
            index.get([7])
        for q in unit(rng, 20, d):
            ids, sims = index.search(q, 10)
            exact = ref[live] @ q
            top = live[np.lexsort((live, -exact))[:10]]
            assert np.allclose(np.sort(sims)[::-1], np.sort(exact)[::-1][:10], atol=1e-5)
            assert set(ids.tolist()) == set(top.tolist())
            allowed = np.sort(rng.choice(live, 300, replace=False))  # above the direct fraction: the filtered scan
            ids, _ = index.search(q, 10, allowed)
            assert ids.size == 10 and np.isin(ids, allowed).all()
            few = np.sort(rng.choice(live, 20, replace=False))  # the direct path
            ids, sims = index.search(q, 5, few)
            assert set(ids.tolist()) == set(few[np.argsort(-(ref[few] @ q))[:5]].tolist())
        near = index.near(x[live[:5]], 0.99)
        for id_, (ids, sims) in zip(live[:5], near):
            assert id_ in ids.tolist() and (sims >= 0.99).all()
        # near duplicates: the pairs of the exact scan over the int8 rows
        twins = x[live[:3]] + 0.001 * rng.standard_normal((3, d)).astype(np.float32)
        index.add_many([2000, 2001, 2002], twins / np.linalg.norm(twins, axis=1, keepdims=True))
        pairs = {tuple(sorted(p)) for p in index.near_duplicates(0.98).tolist()}
        assert pairs == {(int(a), b) for a, b in zip(live[:3], (2000, 2001, 2002))}
    finally:
        index.close()


def test_offheap_search_raises_on_a_damaged_row() -> None:
    rng = np.random.default_rng(3)
    index = OffHeapIndex(32, shortlist=4096, rerank=4096)
    try:
        index.add_many(list(range(100)), unit(rng, 100, 32))  # a batch past the buffer: straight to the file
        fd = os.open(index._rows.path, os.O_RDWR)
        try:
            at = 10 * index._rows.row_bytes + 30
            os.pwrite(fd, bytes([os.pread(fd, 1, at)[0] ^ 0x01]), at)
        finally:
            os.close(fd)
        with pytest.raises(CorruptDataError, match=str(index._rows.path)):
            index.search(unit(rng, 1, 32)[0], 5)
    finally:
        index.close()


def test_config_checks_vector_rows() -> None:
    with pytest.raises(ValueError, match="vector_rows"):
        AgentConfig(vector_rows="disk")
    with pytest.raises(ValueError, match="vector_rows"):
        AgentConfig(vector_rows="file", vector_shortlist=None)
    assert AgentConfig(vector_rows="ram", vector_shortlist=None).vector_rows == "ram"
    # the default: rows in the file when the codec and shortlist allow it, else in RAM
    assert AgentConfig().vector_rows == "file"
    assert AgentConfig(vector_shortlist=None).vector_rows == "ram"
    assert AgentConfig(vector_codec="float32").vector_rows == "ram"


def test_the_row_file_lives_in_the_memory_directory_and_a_killed_process_leaves_none_behind(tmp_path) -> None:
    from memstrata.agent import AgentMemory
    from memstrata.agent.rowfile import PREFIX

    x = unit(np.random.default_rng(3), 8, 16)

    def row_files() -> list[str]:
        return sorted(p.name for p in tmp_path.glob(PREFIX + "*"))

    (tmp_path / f"{PREFIX}left-by-a-killed-process.i8").write_bytes(b"\0" * 64)
    with AgentMemory(tmp_path, config=AgentConfig(vector_shortlist=4)) as mem:
        assert row_files() == []  # the stale file went at open
        ids = [mem.add(f"fact {i}", vector=x[i]).id for i in range(8)]
        files = row_files()
        assert len(files) == 1  # made in the memory's directory, not in the system's temporary directory
        assert mem.search(x[5], limit=1, mode="vector")[0].id == ids[5]
    assert row_files() == []  # removed on close
    with AgentMemory(tmp_path, config=AgentConfig(vector_shortlist=4)) as mem:
        assert mem.search(x[2], limit=1, mode="vector")[0].id == ids[2]  # rebuilt from the store on open
        assert len(row_files()) == 1

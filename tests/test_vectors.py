"""VectorMemory: search against brute force, bookkeeping, persistence, near-duplicates, codec choice."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import memstrata
from memstrata import CorruptDataError, VectorMemory
from memstrata.kernels import quantize_int8

F32 = np.float32
CODECS = ["int8", "int4", "binary", "float32"]


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(F32)


def _brute(db, q, k, metric):
    """Exact float64 scores (nq, n) and the best-first top-k rows; ties to the lower row."""
    db64, q64 = db.astype(np.float64), q.astype(np.float64)
    if metric == "cosine":
        db64 = db64 / np.linalg.norm(db64, axis=1, keepdims=True)
        q64 = q64 / np.linalg.norm(q64, axis=1, keepdims=True)
    if metric == "l2":
        s = ((q64[:, None, :] - db64[None, :, :]) ** 2).sum(axis=2)
        key = s
    else:
        s = q64 @ db64.T
        key = -s
    order = np.lexsort((np.broadcast_to(np.arange(db.shape[0]), s.shape), key), axis=1)[:, :k]
    return s, order


@st.composite
def memories(draw):
    n = draw(st.integers(1, 30))
    d = draw(st.integers(1, 12))
    x = draw(hnp.arrays(F32, (n, d), elements=st.floats(-4, 4, width=32)))
    x[np.abs(x).sum(axis=1) == 0, 0] = 1.0  # cosine needs non-zero rows
    q = draw(hnp.arrays(F32, (draw(st.integers(1, 3)), d), elements=st.floats(-4, 4, width=32)))
    q[np.abs(q).sum(axis=1) == 0, 0] = 1.0
    return x, q, draw(st.integers(1, 35)), draw(st.sampled_from(["cosine", "ip", "l2"]))


@given(memories())
def test_float32_search_equals_brute_force(case):
    x, q, k, metric = case
    memory = VectorMemory(x.shape[1], codec="float32", metric=metric)
    memory.add(x)
    scores, ids = memory.search(q, k)
    exact, want_i = _brute(x, q, k, metric)
    m = min(k, x.shape[0])
    want_s = np.take_along_axis(exact, want_i, axis=1)
    np.testing.assert_allclose(scores[:, :m], want_s, rtol=1e-4, atol=1e-4)
    # rows may differ from the reference only where exact scores tie to float32 precision
    np.testing.assert_allclose(np.take_along_axis(exact, ids[:, :m], axis=1), want_s, rtol=1e-4, atol=1e-4)
    assert (ids[:, m:] == -1).all()
    pad = np.inf if metric == "l2" else -np.inf
    assert (scores[:, m:] == pad).all()


@given(memories(), st.sampled_from([None, 3]))
def test_int8_search_ranks_like_the_kernel(case, rescore):
    x, q, k, _ = case
    memory = VectorMemory(x.shape[1], codec="int8", metric="ip", rescore=rescore)
    try:
        memory.add(x)
        scores, ids = memory.search(q, k)
        m = min(k, x.shape[0])
        if rescore is None:
            from memstrata.vectors._state import fitting_rows

            quantized = quantize_int8(fitting_rows(x))  # fitted as the memory fits its first batch
            quantized = quantized._replace(codes=quantized.codes[: x.shape[0]])
            from memstrata.kernels import int8_topk

            want_s, want_i = int8_topk(q, quantized.codes, quantized.scales, quantized.offsets, k)
            np.testing.assert_array_equal(ids, want_i)
            np.testing.assert_array_equal(scores, want_s)
        else:
            # rescored scores are exact dot products of the returned ids
            exact = np.einsum("qd,qkd->qk", q.astype(np.float64), x[ids[:, :m]].astype(np.float64))
            np.testing.assert_allclose(scores[:, :m], exact, rtol=1e-5, atol=1e-5)
    finally:
        memory.close()


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_codecs_find_themselves(codec, metric):
    rng = np.random.default_rng(0)
    x = _unit(rng.standard_normal((300, 48)))
    rescore = 10 if codec == "binary" and metric == "l2" else None
    memory = VectorMemory(48, codec=codec, metric=metric, rescore=rescore)
    ids = memory.add(x, ids=np.arange(1000, 1300))
    assert (ids == np.arange(1000, 1300)).all()
    scores, found = memory.search(x[:20], 1)
    assert (found[:, 0] == ids[:20]).all()
    if metric == "l2":
        assert (scores[:, 0] < 0.1).all()
    memory.close()


def test_ids_delete_get_len_and_metadata():
    rng = np.random.default_rng(1)
    x = _unit(rng.standard_normal((40, 16)))
    memory = VectorMemory(16, codec="float32")
    meta = [{"kind": "a" if i % 2 else "b", "i": i} for i in range(40)]
    ids = memory.add(x, metadata=meta)
    assert ids.dtype == np.int64 and ids.tolist() == list(range(40))
    assert len(memory) == 40 and memory.seq == 1
    np.testing.assert_allclose(memory.get([3, 5]), x[[3, 5]], atol=1e-6)
    assert memory.metadata(3) == {"kind": "a", "i": 3}
    with pytest.raises(KeyError, match=r"ids: not in the memory: \[999\]"):
        memory.delete([3, 5, 999])
    assert memory.delete([3, 5, 999], missing_ok=True) == 2 and len(memory) == 38 and memory.seq == 2
    with pytest.raises(KeyError, match=r"ids: not in the memory: \[3\]"):
        memory.get([3])
    _, found = memory.search(x[3], 40)
    assert 3 not in found and 5 not in found and (found[0, 38:] == -1).all()
    _, found = memory.search(x[:4], 5, filter={"kind": "a"})
    assert all(i % 2 for i in found[found >= 0].tolist())
    _, found = memory.search(x[:4], 5, filter=lambda m: m is not None and m["i"] < 4)
    assert set(found[found >= 0].tolist()) <= {0, 1, 2}
    new = memory.add(x[:2])
    assert new.tolist() == [40, 41]
    with pytest.raises(ValueError, match="ids: expected new ids, got some already in the memory"):
        memory.add(x[:1], ids=[0])
    memory.delete(np.arange(0, 30), missing_ok=True)  # past a quarter deleted: compacted
    assert len(memory) == 12 and memory._n_deleted == 0
    np.testing.assert_allclose(memory.get([40]), x[[0]], atol=1e-6)


def test_empty_memory_and_k_larger_than_n():
    memory = VectorMemory(4)
    scores, ids = memory.search(np.ones(4, F32), 3)
    assert ids.tolist() == [[-1, -1, -1]] and np.isneginf(scores).all()
    memory.add(np.ones((2, 4), F32))
    scores, ids = memory.search(np.ones((1, 4), F32), 3)
    assert ids[0].tolist() == [0, 1, -1]


def test_nbytes_int8_is_close_to_n_times_d():
    rng = np.random.default_rng(2)
    memory = VectorMemory(384, codec="int8")
    for _ in range(4):
        memory.add(_unit(rng.standard_normal((2500, 384))))
    memory.search(np.ones(384, F32), 1)
    n = len(memory)
    assert memory.nbytes <= 1.05 * n * 384 + 8 * n
    assert memory.nbytes >= n * 384 + 8 * n


class MemoryMachine(RuleBasedStateMachine):
    """VectorMemory in lock-step with a dict of id -> vector."""

    def __init__(self):
        super().__init__()
        self.memory = VectorMemory(3, codec="float32", metric="ip")
        self.model: dict[int, np.ndarray] = {}
        self.rng = np.random.default_rng(0)

    @rule(n=st.integers(0, 5))
    def add(self, n):
        x = self.rng.standard_normal((n, 3)).astype(F32)
        for i, v in zip(self.memory.add(x).tolist(), x):
            self.model[i] = v

    @rule(data=st.data())
    def delete(self, data):
        pool = sorted(self.model) + [10_000]
        chosen = data.draw(st.lists(st.sampled_from(pool), max_size=4, unique=True))
        assert self.memory.delete(chosen, missing_ok=True) == sum(c in self.model for c in chosen)
        for c in chosen:
            self.model.pop(c, None)

    @invariant()
    def agrees(self):
        assert len(self.memory) == len(self.model)
        if self.model:
            ids = sorted(self.model)
            np.testing.assert_array_equal(self.memory.get(ids), np.stack([self.model[i] for i in ids]))
            _, found = self.memory.search(np.ones(3, F32), len(ids) + 1)
            assert set(found[0, : len(ids)].tolist()) == set(ids) and found[0, -1] == -1


TestMemoryMachine = MemoryMachine.TestCase
TestMemoryMachine.settings = settings(max_examples=40, stateful_step_count=12, deadline=None)


@pytest.mark.parametrize("codec,rescore", [("int8", None), ("int4", None), ("binary", 4), ("float32", None), ("int8", 2)])
def test_save_load_round_trip(tmp_path, codec, rescore):
    rng = np.random.default_rng(3)
    x = _unit(rng.standard_normal((120, 20)))
    memory = VectorMemory(20, codec=codec, metric="l2" if codec == "int8" else "cosine", rescore=rescore)
    memory.add(x, metadata=[{"i": i} for i in range(120)])
    memory.delete([0, 1])
    path = tmp_path / "memory.msv"
    memory.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["memory.msv"]  # no temporary file left behind
    loaded = VectorMemory.load(path)
    assert len(loaded) == 118 and loaded.seq == memory.seq and loaded.metadata(5) == {"i": 5}
    s1, i1 = memory.search(x[:10], 5)
    s2, i2 = loaded.search(x[:10], 5)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(memory.get([7, 9]), loaded.get([7, 9]))
    assert loaded.add(x[:1]).tolist() == [120]
    memory.close()
    loaded.close()


def test_corrupt_files_raise_corrupt_data_error(tmp_path):
    memory = VectorMemory(8, codec="int8")
    memory.add(_unit(np.random.default_rng(4).standard_normal((30, 8))))
    path = tmp_path / "m.msv"
    memory.save(path)
    good = path.read_bytes()
    cases = {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "magic": b"X" + good[1:],
        "version": good[:8] + struct.pack("<I", 99) + good[12:],
        "header byte": good[:30] + bytes([good[30] ^ 1]) + good[31:],
    }
    for data in cases.values():
        path.write_bytes(data)
        with pytest.raises(CorruptDataError):
            VectorMemory.load(path)
    # every single flipped byte is detected (checksums, zero padding, exact length)
    for pos in range(len(good)):
        path.write_bytes(good[:pos] + bytes([good[pos] ^ 0x01]) + good[pos + 1 :])
        with pytest.raises(CorruptDataError):
            VectorMemory.load(path)
    path.write_bytes(good + b"\0")
    with pytest.raises(CorruptDataError, match="expected"):
        VectorMemory.load(path)
    # a consistent file whose header lies about a section's size
    header_len = struct.unpack_from("<I", good, 12)[0]
    header = json.loads(good[20 : 20 + header_len])
    header["sections"][1]["shape"] = [31, 8]
    raw = json.dumps(header, separators=(",", ":")).encode()
    import zlib

    forged = struct.pack("<8sIII", b"MSVECMEM", 1, len(raw), zlib.crc32(raw)) + raw
    forged += b"\0" * (-len(forged) % 64) + good[-(-(20 + header_len) // 64) * 64 :]
    path.write_bytes(forged)
    with pytest.raises(CorruptDataError, match="does not fit"):
        VectorMemory.load(path)


def test_near_duplicates_match_brute_force():
    rng = np.random.default_rng(5)
    base = _unit(rng.standard_normal((60, 32)))
    x = np.concatenate([base, _unit(base[:10] + 0.02 * rng.standard_normal((10, 32)))])
    memory = VectorMemory(32, codec="float32")
    memory.add(x, ids=np.arange(100, 170))
    pairs, sims = memory.near_duplicates(0.95, return_similarity=True)
    s = x @ x.T
    a, b = np.nonzero(np.triu(s >= 0.95, k=1))
    assert pairs.tolist() == [[100 + i, 100 + j] for i, j in zip(a.tolist(), b.tolist())]
    np.testing.assert_allclose(sims, s[a, b], atol=1e-5)
    assert len(pairs) >= 10


def test_bad_arguments():
    with pytest.raises(ValueError, match="codec: expected one of int8, int4, binary, float32, got 'pq'"):
        VectorMemory(4, codec="pq")
    with pytest.raises(ValueError, match="metric: expected one of cosine, ip, l2, got 'dot'"):
        VectorMemory(4, metric="dot")
    with pytest.raises(ValueError, match="rescore: binary codes cannot rank by L2 alone"):
        VectorMemory(4, codec="binary", metric="l2")
    with pytest.raises(ValueError, match="shortlist: only used with codec='int8'"):
        VectorMemory(4, codec="int4", shortlist=10)
    memory = VectorMemory(4)
    with pytest.raises(ValueError, match=r"vectors: expected float array of shape \(n, 4\), got float32 with shape \(2, 3\)"):
        memory.add(np.ones((2, 3), F32))
    with pytest.raises(TypeError, match="vectors: expected float32 or float64 array"):
        memory.add(np.ones((2, 4), np.int32))
    with pytest.raises(ValueError, match="vectors: expected finite values"):
        memory.add(np.array([[1, 2, np.nan, 0]], F32))
    with pytest.raises(ValueError, match="cosine needs non-zero vectors"):
        memory.add(np.zeros((1, 4), F32))
    with pytest.raises(ValueError, match="ids: expected unique ids"):
        memory.add(np.ones((2, 4), F32), ids=[1, 1])
    with pytest.raises(TypeError, match="filter: expected a dict filter .* or a callable"):
        memory.search(np.ones(4, F32), 1, filter=3)
    with pytest.raises(ValueError, match="threshold: expected a cosine similarity in"):
        memory.near_duplicates(2.0)


def test_fit_codec_reports_measured_recall():
    rng = np.random.default_rng(6)
    centers = _unit(rng.standard_normal((20, 32)))
    sample = _unit(centers[rng.integers(0, 20, 600)] + 0.3 * rng.standard_normal((600, 32)))
    choice = VectorMemory.fit_codec(sample, target_recall=0.95, k=5, n_queries=50)
    assert choice.met and choice.recall >= 0.95
    smaller = [m for m in choice.measured if m["bytes_per_vector"] < choice.bytes_per_vector]
    assert all(m["recall"] < 0.95 for m in smaller)
    float_row = next(m for m in choice.measured if m["codec"] == "float32")
    assert float_row["recall"] == 1.0
    impossible = VectorMemory.fit_codec(sample[:100], target_recall=1.0, k=5, n_queries=20, rescore_factors=())
    assert impossible.codec in ("float32", "int8", "int4") and impossible.recall <= 1.0


def test_fit_codec_reports_the_depth_rescore_auto_calibrated():
    from memstrata.vectors._recall import DEPTHS

    rng = np.random.default_rng(7)
    centers = _unit(rng.standard_normal((30, 48)))
    sample = _unit(centers[rng.integers(0, 30, 900)] + 0.35 * rng.standard_normal((900, 48)))
    choice = VectorMemory.fit_codec(sample, target_recall=0.97, k=5, n_queries=60, rescore_factors=(2,))
    autos = [m for m in choice.measured if m["rescore"] == "auto"]
    assert {m["codec"] for m in autos} == {"binary", "int4", "int8"}
    assert all(m["depth"] in DEPTHS for m in autos)  # each memory calibrated on the 900 stored rows
    assert all(m["depth"] is None for m in choice.measured if m["rescore"] is None)
    assert all(m["depth"] == 2 for m in choice.measured if m["rescore"] == 2)
    best = next(m for m in choice.measured if (m["codec"], m["rescore"]) == (choice.codec, choice.rescore))
    assert choice.depth == best["depth"]
    if choice.rescore == "auto":
        assert choice.kwargs == {"codec": choice.codec, "rescore": "auto", "target_recall": 0.97}
    memory = VectorMemory(48, **choice.kwargs)  # the choice builds a memory as it was measured
    memory.add(sample)
    assert memory.stats()["rescore_depth"] == choice.depth or choice.rescore != "auto"
    memory.close()


def test_real_embeddings_recall(shared_data):
    path = shared_data / "dev" / "embeddings.npy"
    if not path.exists():
        pytest.skip(f"{path} not found")
    x = np.load(path)[:3000]
    memory = VectorMemory(384, codec="int8")
    memory.add(x)
    exact = x[:200] @ x.T
    _, ids = memory.search(x[:200], 10)
    kth = -np.sort(-exact, axis=1)[:, 9]
    hits = np.take_along_axis(exact, ids, axis=1) >= kth[:, None] - 1e-6
    assert hits.mean() >= 0.99
    assert memory.nbytes <= 1.05 * 3000 * 384 + 8 * 3000


def test_lazy_public_name():
    assert memstrata.VectorMemory is VectorMemory
    assert memstrata.quantize_int8 is quantize_int8


def test_int8_shortlist_reranks_hamming_candidates_exactly():
    rng = np.random.default_rng(7)
    x = _unit(rng.standard_normal((400, 64)))
    q = _unit(rng.standard_normal((9, 64)))
    plain = VectorMemory(64, codec="int8", metric="ip")
    short = VectorMemory(64, codec="int8", metric="ip", shortlist=60)
    plain.add(x)
    short.add(x)
    assert short.nbytes - plain.nbytes == 400 * 8 + 64 * 4  # the sign bits and their centre
    s_plain, i_plain = plain.search(q, 5)
    s_short, i_short = short.search(q, 5)
    # every returned row is scored exactly as the int8 scan scores it
    full_s, full_i = plain.search(q, 400)
    for a in range(9):
        lookup = dict(zip(full_i[a].tolist(), full_s[a].tolist()))
        np.testing.assert_allclose(s_short[a], [lookup[i] for i in i_short[a].tolist()], rtol=0, atol=0)
    # and the shortlist finds most of the exact int8 top-5 on random data
    overlap = np.mean([len(set(i_plain[a]) & set(i_short[a])) / 5 for a in range(9)])
    assert overlap >= 0.6
    wide = VectorMemory(64, codec="int8", metric="ip", shortlist=1000)  # shortlist >= n: a plain scan
    wide.add(x)
    np.testing.assert_array_equal(wide.search(q, 5)[1], i_plain)


@pytest.mark.parametrize("codec", ["int8", "int4"])
def test_one_vector_at_a_time_keeps_every_vector_apart(codec: str) -> None:
    """The ranges are fitted on the first batch: a batch of one must not make every later vector decode alike."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    memory = VectorMemory(64, codec=codec)
    for i in range(x.shape[0]):
        memory.add(x[i : i + 1], ids=[i])
    decoded = memory.get(np.arange(300))
    decoded /= np.linalg.norm(decoded, axis=1, keepdims=True)
    assert np.einsum("ij,ij->i", decoded, x).min() > (0.99 if codec == "int8" else 0.95)
    _, found = memory.search(x, k=1)
    assert (found[:, 0] == np.arange(300)).all()


def test_one_vector_at_a_time_keeps_the_shortlist_useful(shared_data) -> None:
    """Sign bits around the first row alone rank every later vector by its distance to that row.

    On the dev set's real embeddings, a memory filled one vector at a time
    keeps the shortlist's recall within 0.02 of one filled in a single batch.
    """
    path = shared_data / "dev" / "embeddings.npy"
    if not path.exists():
        pytest.skip(f"no dev embeddings at {path}")
    x = np.load(path)[:3000]
    truth = np.argsort(-(x[:100] @ x.T), axis=1)[:, :10]

    def recall(memory: VectorMemory) -> float:
        _, found = memory.search(x[:100], k=10)
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found.tolist(), truth.tolist())]))

    batch = VectorMemory(384, codec="int8", shortlist=64)
    batch.add(x)
    single = VectorMemory(384, codec="int8", shortlist=64)
    for i in range(x.shape[0]):
        single.add(x[i : i + 1], ids=[i])
    assert recall(single) >= recall(batch) - 0.02

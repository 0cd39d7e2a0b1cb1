"""Duplicates and forgetting on the real texts of ../shared/data/dev (skips when the data is absent)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from memstrata.agent import AgentConfig, AgentMemory


@pytest.fixture(scope="module")
def dev(shared_data: Path) -> tuple[list[str], np.ndarray]:
    root = shared_data / "dev"
    if not (root / "texts.jsonl").exists():
        pytest.skip(f"no dev texts at {root}")
    texts = [json.loads(line)["text"] for line in (root / "texts.jsonl").read_text(encoding="utf-8").splitlines()]
    return texts, np.load(root / "embeddings.npy")


def test_every_exact_duplicate_merges(dev: tuple[list[str], np.ndarray]) -> None:
    texts, vecs = dev
    with AgentMemory(config=AgentConfig(near_duplicates="keep")) as m:
        recs = m.add_many(texts, vectors=vecs)
        first: dict[str, int] = {}
        for text, rec in zip(texts, recs):
            key = " ".join(text.lower().split())
            if key in first:
                assert rec.duplicate_of == first[key] and rec.id == first[key]
            else:
                first[key] = rec.id
                assert rec.duplicate_of is None
        n_identical = len(texts) - len(set(texts))
        merged = m.get_metrics()["exact_duplicates_merged"]
        print(f"\nexact duplicates: {n_identical} rows repeat an earlier text; merged {merged} (normalized text)")
        assert merged >= n_identical == 921 and len(m) == len(first)


def test_near_duplicate_linking_precision_recall(dev: tuple[list[str], np.ndarray]) -> None:
    """Texts made unique (row number prefixed) so only the vector path can find repeats; truth = identical texts."""
    texts, vecs = dev
    n = 5000
    with AgentMemory(config=AgentConfig(near_duplicates="link", near_duplicate_threshold=0.95)) as m:
        for i in range(n):  # one at a time, as an agent writes
            m.add(f"[{i}] {texts[i]}", vector=vecs[i])
        links = {(min(a, r.id), max(a, r.id)) for r in m.get_all(limit=None) for a in r.links}
    has_earlier_copy = [i for i in range(n) if texts[i] in set(texts[:i])]
    same_text = sum(1 for a, b in links if texts[a] == texts[b])
    precision = same_text / len(links)
    row_recall = sum(1 for i in has_earlier_copy if any(texts[a] == texts[i] for a, b in links if b == i)) / len(has_earlier_copy)
    print(f"\nnear-duplicate links on dev[0:{n}] at cosine >= 0.95: {len(links)} links, {same_text} between identical "
          f"texts; precision vs identical-text pairs {precision:.3f}, recall of rows with an earlier identical copy "
          f"{row_recall:.3f}")
    # a row links to its nearest stored memory by the int8 scores; a different text scored a hair above the
    # identical copy takes the link in a few cases (0.993 on this set)
    assert row_recall >= 0.98
    assert precision > 0.5


def test_forget_is_complete_across_reads_reopen_and_files(tmp_path: Path, dev: tuple[list[str], np.ndarray]) -> None:
    texts, vecs = dev
    secret = "The launch code of project Zanzibar is 7781-ALPHA-QUOKKA, never share it."
    path = tmp_path / "agent"
    with AgentMemory(path, config=AgentConfig(categories="trading", pattern_fields=("action",), min_occurrences=2,
                                              pattern_threshold=0.0)) as m:
        m.add_many(texts[:500], vectors=vecs[:500])
        s = m.add({"type": "trade", "action": "swap", "text": secret, "success": True, "profit": 3.0},
                  vector=vecs[600], metadata={"note": "secret"})
        m.update(s.id, {"type": "trade", "action": "swap", "text": secret + " (rotated)", "success": True, "profit": 3.0})
        m.add({"type": "trade", "action": "swap", "text": "a plain swap", "success": True}, vector=vecs[601])
        pats = m.extract_patterns()
        assert pats and s.id in pats[0].content["evidence"]
        m.flush()
        m.compact()
    assert b"7781-ALPHA-QUOKKA" in _every_byte(path)  # the scan sees the secret while it is stored
    with AgentMemory(path, config=AgentConfig(categories="trading")) as m:
        assert m.get(s.id) is not None
        assert m.forget(s.id)
        assert m.get(s.id) is None and m.get(s.id, include_expired=True) is None and m.history(s.id) == []
        for mode, q in (("vector", vecs[600]), ("keyword", "Zanzibar launch code"), ("hybrid", vecs[600])):
            assert s.id not in [h.id for h in m.search(q, mode=mode, limit=50)], mode
        assert m.search("Zanzibar QUOKKA", mode="keyword") == []
        assert all(s.id not in r.content.get("evidence", []) for r in m.get_all(limit=None) if isinstance(r.content, dict))
        assert s.id not in [r.id for r in m.get_all(limit=None, include_expired=True)]
    with AgentMemory(path) as m:
        assert m.get(s.id) is None and m.history(s.id) == [] and m.search("Zanzibar", mode="keyword") == []
        m.compact()
        assert m.verify()["ok"]
    after = _every_byte(path)
    for needle in (b"Zanzibar", b"QUOKKA", b"7781-ALPHA"):
        assert needle not in after, needle
    for db in path.rglob("*.sqlite"):
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0  # no free page keeps old frames
    assert all(p.stat().st_size == 0 for p in path.rglob("*-wal"))


def _every_byte(path: Path) -> bytes:
    """Every file's raw bytes, plus the decoded content of every frame stored in its SQLite files
    (frames are compressed, so a raw grep alone would not see a stored text)."""
    from memstrata.codecs import decode

    parts = [p.read_bytes() for p in path.rglob("*") if p.is_file()]
    for db in path.rglob("*.sqlite"):
        with sqlite3.connect(db) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in conn.execute(f'SELECT * FROM "{table}"'):
                    for value in row:
                        if isinstance(value, bytes) and value[:2] == b"\x89M":
                            try:
                                parts.append(bytes(decode(value)))
                            except Exception:
                                pass
    return b"".join(parts)


def test_sketch_lookup_finds_the_pairs_an_exact_scan_finds(dev: tuple[list[str], np.ndarray]) -> None:
    """VectorIndex.near (sketch screen + exact scores) against a brute-force scan of the same stored vectors."""
    from memstrata.agent.vectorindex import VectorIndex, unit_rows

    _, vecs = dev
    index = VectorIndex(vecs.shape[1])
    stored = unit_rows(vecs[:9000], "x", None)
    index.add_many(list(range(9000)), stored)
    queries = unit_rows(vecs[9000:], "q", None)
    exact = queries @ index.get(list(range(9000))).T
    for threshold in (0.95, 0.9, 0.8):
        found = index.near(queries, threshold)
        want = {(q, int(i)) for q in range(queries.shape[0]) for i in np.flatnonzero(exact[q] >= threshold)}
        got = {(q, int(i)) for q, (ids, _) in enumerate(found) for i in ids.tolist()}
        for q, (ids, sims) in enumerate(found):  # exact scores, best first
            np.testing.assert_allclose(sims, exact[q, ids], atol=1e-5)
            assert list(sims) == sorted(sims, reverse=True)
        recall = len(got & want) / len(want)
        print(f"\nnear() at cosine >= {threshold}: {len(want)} pairs, recall {recall:.4f}")
        assert got <= want and recall >= 0.99

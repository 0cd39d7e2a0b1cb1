"""Damaged stores: every read is right or raises, every loss is named by verify(), no foreign exception.

A seeded sample (320 injections per artefact kind: segment files, the index
checkpoint, cold packs, the tail marker; every kind of damage in turn), on
closed stores and on stores a killed writer left unclosed. The long run is
``benchmarks/fault_campaign.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from faults.store_campaign import ARTEFACTS, campaign

N_INJECTIONS = 320


@pytest.mark.parametrize("unclosed", [False, True], ids=["closed", "unclosed"])
@pytest.mark.parametrize("artefact", sorted(ARTEFACTS))
def test_damaged_store_never_returns_a_wrong_value(tmp_path: Path, artefact: str, unclosed: bool) -> None:
    outcomes, defects = campaign(tmp_path, artefact, N_INJECTIONS, seed=20261129, unclosed=unclosed)
    assert sum(outcomes.values()) == N_INJECTIONS
    assert not defects, f"{len(defects)} defects: {defects[:5]} ({dict(outcomes)})"
    if artefact == "tail marker":  # advisory: damage to it alone leaves every value readable
        assert outcomes["read right"] == N_INJECTIONS, outcomes
    else:
        assert outcomes["detected"] > N_INJECTIONS // 3, outcomes

"""Damaged backup repositories: every backup restores right, or verify/restore says it is damaged or gone.

A seeded sample (300 injections per artefact kind: chunks, manifests, the
catalog, the repository marker; every kind of damage in turn) plus the cases
behind the catalog, each by name. The long run is ``benchmarks/fault_campaign.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from faults.backup_campaign import ARTEFACTS, build, campaign

from memstrata import CorruptDataError
from memstrata.ops import Repository, create_backup, verify_backups

N_INJECTIONS = 300


@pytest.mark.parametrize("artefact", sorted(ARTEFACTS))
def test_damaged_backup_repository_never_restores_a_wrong_value(tmp_path: Path, artefact: str) -> None:
    outcomes, defects = campaign(tmp_path, artefact, N_INJECTIONS, seed=20261129)
    assert sum(outcomes.values()) == N_INJECTIONS
    assert not defects, f"{len(defects)} defects: {defects[:5]} ({dict(outcomes)})"
    assert outcomes["detected"] > N_INJECTIONS // 2, outcomes


def test_deleted_backup_is_named_by_verify(tmp_path: Path) -> None:
    repo, _stale, snapshots = build(tmp_path)
    gone = snapshots[0][0]
    (repo / "snapshots" / f"{gone}.json").unlink()
    report = verify_backups(repo)
    assert not report["ok"]
    assert any(gone in e and "manifest is missing" in e for e in report["errors"]), report["errors"]


def test_deleted_catalog_is_named_by_verify(tmp_path: Path) -> None:
    repo, _stale, _snapshots = build(tmp_path)
    (repo / "catalog.json").unlink()
    report = verify_backups(repo)
    assert not report["ok"] and any("catalog" in e and "missing" in e for e in report["errors"])


def test_backup_interrupted_before_its_catalog_entry_is_a_warning(tmp_path: Path) -> None:
    repo, stale, snapshots = build(tmp_path)
    (repo / "catalog.json").write_bytes((stale / "catalog.json").read_bytes())  # the catalog before the 2nd backup
    report = verify_backups(repo)
    assert report["ok"], report["errors"]
    assert any(snapshots[1][0] in w for w in report["warnings"])
    assert create_backup(tmp_path / "store", repo)["id"]  # the next backup lists every manifest present again
    assert verify_backups(repo)["warnings"] == []


def test_damaged_repository_marker_raises_corrupt_data_error(tmp_path: Path) -> None:
    repo, _stale, _snapshots = build(tmp_path)
    marker = repo / "memstrata-backup.json"
    marker.write_text(marker.read_text().replace("chunk_bytes", "chunk_bytez"))
    with pytest.raises(CorruptDataError, match="memstrata-backup.json is damaged"):
        Repository(repo)


def test_repository_from_before_the_catalog_still_verifies(tmp_path: Path) -> None:
    repo, _stale, snapshots = build(tmp_path)
    (repo / "catalog.json").unlink()
    for sid, _expected, _deleted in snapshots:  # manifests as they were written before the catalog existed
        path = repo / "snapshots" / f"{sid}.json"
        body = json.loads(path.read_text())
        del body["catalogued"], body["manifest_sha256"]
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        path.write_text(json.dumps(body | {"manifest_sha256": hashlib.sha256(canonical).hexdigest()}, sort_keys=True))
    report = verify_backups(repo)
    assert report["ok"], report["errors"]
    newest = create_backup(tmp_path / "store", repo)["id"]  # the first new backup writes the catalog
    listed = json.loads((repo / "catalog.json").read_text())["snapshots"]
    assert sorted(listed) == sorted([sid for sid, _e, _d in snapshots] + [newest])
    assert verify_backups(repo)["ok"]

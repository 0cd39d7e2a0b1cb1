"""Golden stores of format 2 (``tests/golden/make_v2_stores.py``, written by the first format-2 engine): read forever."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memstrata import MemoryStore

GOLDEN = Path(__file__).parent / "golden" / "stores-v2"
V2_STORES = ["arrays", "compacted", "dictionary", "mixed"]
NO_THREAD = {"migration_interval_seconds": None}


def _expected(name: str) -> dict[str | bytes, Any]:
    raw = json.loads((GOLDEN / f"{name}.expected.json").read_text())
    return {(k[2:].encode() if k.startswith("b:") else k): v for k, v in raw.items()}


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, dict) and set(want) == {"dtype", "shape", "data"}:
        expected = np.asarray(want["data"], dtype=np.dtype(want["dtype"])).reshape(want["shape"])
        return isinstance(got, np.ndarray) and got.dtype == expected.dtype and np.array_equal(got, expected)
    if isinstance(want, dict) and set(want) == {"bytes"}:
        return bytes(got) == bytes.fromhex(want["bytes"])
    return bool(got == want)


def _files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _check_all(store: MemoryStore, expected: dict[str | bytes, Any]) -> None:
    assert len(store) == len(expected)
    for k, v in expected.items():
        assert _same(store.retrieve(k), v), k
    report = store.verify()
    assert report["ok"], report["errors"]


@pytest.mark.parametrize("name", V2_STORES)
def test_v2_store_opens_read_only_and_reads_every_key_without_changing_a_byte(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    shutil.copytree(GOLDEN / name, path)
    before = _files(path)
    with MemoryStore(path, NO_THREAD, read_only=True) as store:
        assert store.format_version == 2
        _check_all(store, _expected(name))
    assert _files(path) == before


@pytest.mark.parametrize("name", V2_STORES)
def test_v2_store_opens_for_writing_and_keeps_everything(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    shutil.copytree(GOLDEN / name, path)
    expected = _expected(name)
    with MemoryStore(path, NO_THREAD) as store:
        assert not store.read_only and store.format_version == 2
        _check_all(store, expected)
        store.store("added", {"n": 1}, tier="warm")
        expected["added"] = {"n": 1}
    with MemoryStore(path, NO_THREAD) as store:
        _check_all(store, expected)
        store.compact()
        _check_all(store, expected)


@pytest.mark.parametrize("name", V2_STORES)
def test_upgrade_of_a_v2_store_is_a_no_op(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    shutil.copytree(GOLDEN / name, path)
    report = MemoryStore.upgrade(path)
    assert report["from_version"] == 2 and report["removed"] == []
    with MemoryStore(path, NO_THREAD, read_only=True) as store:
        _check_all(store, _expected(name))

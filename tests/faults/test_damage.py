"""The damage library changes what it says it changes, and nothing else."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from faults.damage import DAMAGES, PAGE, damage_tree, files_of


def _file(tmp_path: Path, n: int = 3 * PAGE + 100) -> tuple[Path, bytes]:
    data = random.Random(1).randbytes(n)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    return path, data


def test_bit_flip_changes_exactly_one_bit(tmp_path: Path) -> None:
    path, data = _file(tmp_path)
    DAMAGES["bit_flip"](path, random.Random(0))
    new = path.read_bytes()
    assert len(new) == len(data)
    assert sum(bin(a ^ b).count("1") for a, b in zip(data, new)) == 1


@pytest.mark.parametrize("kind", ["zero_page", "swap_pages", "duplicate_page"])
def test_page_damage_keeps_size_and_changes_bytes(tmp_path: Path, kind: str) -> None:
    path, data = _file(tmp_path)
    DAMAGES[kind](path, random.Random(2))
    new = path.read_bytes()
    assert len(new) == len(data) and new != data


def test_swap_pages_exchanges_two_full_pages(tmp_path: Path) -> None:
    path, data = _file(tmp_path, 4 * PAGE)
    what = DAMAGES["swap_pages"](path, random.Random(3))
    a, b = (int(x) for x in what.rsplit("=", 1)[1].split(","))
    new = path.read_bytes()
    assert new[a * PAGE : (a + 1) * PAGE] == data[b * PAGE : (b + 1) * PAGE]
    assert new[b * PAGE : (b + 1) * PAGE] == data[a * PAGE : (a + 1) * PAGE]


@pytest.mark.parametrize("kind", ["truncate", "torn_tail"])
def test_cuts_leave_a_prefix_or_zeroed_tail(tmp_path: Path, kind: str) -> None:
    path, data = _file(tmp_path)
    DAMAGES[kind](path, random.Random(4))
    new = path.read_bytes()
    assert new != data
    assert data.startswith(new) or (len(new) == len(data) and new.rstrip(b"\0") == data[: len(new.rstrip(b"\0"))])


def test_delete_and_stale(tmp_path: Path) -> None:
    path, _ = _file(tmp_path)
    old = tmp_path / "old.bin"
    old.write_bytes(b"older")
    DAMAGES["stale_copy"](path, random.Random(5), stale=old)
    assert path.read_bytes() == b"older"
    DAMAGES["delete"](path, random.Random(5))
    assert not path.exists()


def test_damage_tree_is_reproducible(tmp_path: Path) -> None:
    for copy in ("a", "b"):
        root = tmp_path / copy
        (root / "sub").mkdir(parents=True)
        for i in range(3):
            (root / "sub" / f"{i}.bin").write_bytes(random.Random(i).randbytes(PAGE * 2))
    done = [damage_tree(tmp_path / c, random.Random(7)) for c in ("a", "b")]
    assert done[0] == done[1]
    assert [p.read_bytes() for p in files_of(tmp_path / "a")] == [p.read_bytes() for p in files_of(tmp_path / "b")]

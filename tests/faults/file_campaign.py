"""Fault campaigns over Bloom filter files and VectorMemory files: build, damage, classify.

Shared by ``test_file_faults.py`` (a seeded sample in CI) and
``benchmarks/fault_campaign.py`` (the long run, issue 18's table). Each
injection copies a saved artefact, damages one of its files with every kind of
damage in turn (``faults.damage``), loads it and reads everything back.

Outcomes, as for the store (``faults.store_campaign``):

- ``read right``: everything reads back as saved (the damage had no effect);
- ``detected``: the load raised ``CorruptDataError`` (or ``FileNotFoundError``
  naming the deleted file);
- ``wrong value`` (a defect): the load succeeded and some answer differs;
- ``silent loss`` (a defect): the load succeeded without some saved rows;
- ``foreign exception`` (a defect): anything else.

Artefacts: ``bloom`` (a ``BloomFilter.save`` file), ``vector-snapshot`` (a
``VectorMemory.save`` file), ``vector-directory`` (a closed
``VectorMemory.open`` directory: ``CURRENT``, the state file, the log and the
tail marker) and ``vector-directory-unclosed`` (the same as a killed writer
leaves it, with acknowledged records after the last checkpoint). A
``stale_copy`` of a single-file artefact is a valid artefact of its own (only a
container that records which file it expects can tell), so those two take
every other damage; the directory takes all of them.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from faults.damage import DAMAGES, damage_tree

from memstrata import BloomFilter, CorruptDataError, VectorMemory

KEYS = [f"key-{i}".encode() for i in range(3000)]
PROBES = KEYS[:1500] + [f"absent-{i}".encode() for i in range(1500)]
DIM = 24


def _vectors() -> np.ndarray:
    return np.random.default_rng(7).standard_normal((260, DIM)).astype(np.float32)


class Artefact:
    """How to build one artefact kind (with an older copy for stale damage) and read one back."""

    kinds: list[str]

    def build(self, root: Path) -> tuple[Path, Path]:
        raise NotImplementedError

    def read(self, path: Path) -> Any:
        """Everything the artefact answers, in a form compared with ``==``."""
        raise NotImplementedError

    def lost(self, got: Any, want: Any) -> bool:
        """Whether ``got`` is ``want`` less some saved content (rather than other content)."""
        return False


class BloomFile(Artefact):
    kinds = sorted(k for k in DAMAGES if k != "stale_copy")

    def build(self, root: Path) -> tuple[Path, Path]:
        bloom = BloomFilter(capacity=2000, fp_rate=0.01)
        bloom.add_many(KEYS[:1000])
        stale = root / "stale.bloom"
        bloom.save(stale)
        bloom.add_many(KEYS[1000:1500])
        path = root / "f.bloom"
        bloom.save(path)
        return path, stale

    def read(self, path: Path) -> Any:
        return BloomFilter.load(path).contains_many(PROBES).tolist()


def _vector_answers(memory: VectorMemory) -> dict[str, Any]:
    ids = memory.ids()
    return {
        "ids": ids.tolist(),
        "codes": memory.get(ids).tobytes(),
        "metadata": [memory.metadata(int(i)) for i in ids],
        "search": [a.tolist() for a in memory.search(_vectors()[:5], k=7)],
    }


class VectorArtefact(Artefact):
    """A VectorMemory read back whole: ids, codes, metadata and a few searches."""

    def open(self, path: Path) -> VectorMemory:
        raise NotImplementedError

    def read(self, path: Path) -> Any:
        memory = self.open(path)
        try:
            return _vector_answers(memory)
        finally:
            memory.close()

    def lost(self, got: Any, want: Any) -> bool:
        return set(got["ids"]) < set(want["ids"])


class VectorSnapshot(VectorArtefact):
    kinds = sorted(k for k in DAMAGES if k != "stale_copy")

    def build(self, root: Path) -> tuple[Path, Path]:
        x = _vectors()
        memory = VectorMemory(DIM, codec="int8")
        memory.add(x[:200], ids=np.arange(200), metadata=[{"i": i, "even": i % 2 == 0} for i in range(200)])
        stale = root / "stale.msvm"
        memory.save(stale)
        memory.delete([3, 4])
        path = root / "v.msvm"
        memory.save(path)
        return path, stale

    def open(self, path: Path) -> VectorMemory:
        return VectorMemory.load(path)


class VectorDirectory(VectorArtefact):
    """A closed durable directory (``unclosed``: as a writer killed after its last acknowledged add leaves it)."""

    kinds = sorted(DAMAGES)
    unclosed = False

    def build(self, root: Path) -> tuple[Path, Path]:
        x = _vectors()
        path = root / "v"
        memory = VectorMemory.open(path, dim=DIM, codec="int8")
        memory.add(x[:150], ids=np.arange(150), metadata=[{"i": i} for i in range(150)])
        if self.unclosed:
            memory.checkpoint()
        else:
            memory.close()
        stale = root / "stale"
        shutil.copytree(path, stale)
        if not self.unclosed:
            memory = VectorMemory.open(path)
        memory.add(x[150:260], ids=np.arange(150, 260), metadata=[{"i": i} for i in range(150, 260)])
        memory.delete([7, 8, 151])
        if self.unclosed:  # copied while open: every acknowledged record is in the files by then
            killed = root / "killed"
            shutil.copytree(path, killed)
            (killed / "LOCK").unlink(missing_ok=True)
            path = killed
        memory.close()
        return path, stale

    def open(self, path: Path) -> VectorMemory:
        return VectorMemory.open(path)


class UnclosedVectorDirectory(VectorDirectory):
    unclosed = True


ARTEFACTS: dict[str, Callable[[], Artefact]] = {
    "bloom": BloomFile,
    "vector-snapshot": VectorSnapshot,
    "vector-directory": VectorDirectory,
    "vector-directory-unclosed": UnclosedVectorDirectory,
}


def classify(artefact: Artefact, path: Path, want: Any) -> tuple[str, str]:
    """Load the damaged artefact and compare everything it answers; returns ``(outcome, detail)``."""
    try:
        got = artefact.read(path)
    except CorruptDataError as exc:
        return "detected", f"{type(exc).__name__}: {exc}"
    except FileNotFoundError as exc:
        if str(path) in str(exc) or (path.is_dir() and str(path) in str(exc.filename or "")):
            return "detected", "missing file named"
        return "foreign exception", repr(exc)
    except Exception as exc:  # the campaign counts every foreign type
        return "foreign exception", f"{type(exc).__name__}: {exc}"
    if got == want:
        return "read right", ""
    if artefact.lost(got, want):
        return "silent loss", f"{len(want['ids']) - len(got['ids'])} rows missing"
    return "wrong value", "answers differ from the saved artefact"


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    target = dst / src.name
    (shutil.copytree if src.is_dir() else shutil.copyfile)(src, target)
    return target


def campaign(work: Path, name: str, n: int, seed: int) -> tuple[Counter[str], list[str]]:
    """``n`` injections into artefacts of kind ``name``; returns outcomes and the defects' descriptions."""
    artefact = ARTEFACTS[name]()
    base_root = work / "base"
    base_root.mkdir(parents=True)
    base, stale = artefact.build(base_root)
    want = artefact.read(_copy(base, work / "answers"))  # a copy: reading may change it (a close writes CURRENT)
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    defects: list[str] = []
    for i in range(n):
        case = work / f"case-{i}"
        case.mkdir()
        if base.is_dir():
            target = case / base.name
            shutil.copytree(base, target)
            what = damage_tree(target, rng, kind=artefact.kinds[i % len(artefact.kinds)], stale_root=stale)
        else:
            target = case / base.name
            shutil.copyfile(base, target)
            what = DAMAGES[artefact.kinds[i % len(artefact.kinds)]](target, rng, stale=stale)
        outcome, detail = classify(artefact, target, want)
        outcomes[outcome] += 1
        if outcome in ("wrong value", "silent loss", "foreign exception"):
            defects.append(f"{what}: {outcome}: {detail}")
        shutil.rmtree(case)
    return outcomes, defects

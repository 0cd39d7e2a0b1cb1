"""A fault campaign over ``MemoryStore`` directories: build, damage, classify.

Shared by ``test_store_faults.py`` (a seeded sample in CI) and
``benchmarks/fault_campaign.py`` (the long run). Each injection copies a store,
closed or left as a killed writer leaves it (``unclosed``: acknowledged
batches after the last checkpoint, no close), damages one of its files, opens
it and reads every key. Outcomes:

- ``read right``: every key reads back its value (the damage had no effect);
- ``detected``: open, a read or ``verify()`` raised or reported it;
- ``wrong value`` (a defect): a read returned another value, or a deleted key a value;
- ``silent loss`` (a defect): a key vanished and ``verify()`` said ok;
- ``foreign exception`` (a defect): anything but a ``MemstrataError`` (and a
  ``FileNotFoundError`` naming a deleted file).
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faults.damage import inject_each

from memstrata import MemoryStore, MemstrataError

CFG = {"migration_interval_seconds": None, "hot_max_bytes": 2048, "pack_max_bytes": 4096, "train_after": 60}

ARTEFACTS: dict[str, Callable[[Path], bool]] = {
    "segment": lambda p: p.name.startswith("seg-"),
    "checkpoint": lambda p: p.name == "CHECKPOINT",
    "pack": lambda p: p.suffix == ".msp",
    "tail marker": lambda p: p.name == ".tail",
}


def _value(i: int) -> Any:
    return {"id": i, "text": f"observation {i}: the user asked about item {i * 7 % 13}", "score": i / 10}


def build(root: Path, *, unclosed: bool = False) -> tuple[Path, Path, dict[str, Any], set[str]]:
    """A store with warm, cold, deleted and compacted content, and an older copy of it (for stale damage).

    ``unclosed``: the files as a writer killed after its last acknowledged
    write leaves them (copied while it is open: every write is in the files by
    then); the older copy is taken the same way, after the last checkpoint.
    """
    path = root / "store"
    stale = root / "stale"
    expected: dict[str, Any] = {}
    deleted: set[str] = set()

    def write(store: MemoryStore, keys: range, tiers: tuple[str, ...]) -> None:
        for i in keys:
            expected[f"k{i}"] = _value(i)
            store.store(f"k{i}", expected[f"k{i}"], tier=tiers[i % len(tiers)])

    def forget(store: MemoryStore, keys: range) -> None:
        for i in keys:
            store.delete(f"k{i}")
            deleted.add(f"k{i}")
            expected.pop(f"k{i}")

    store = MemoryStore(path, CFG)
    write(store, range(90), ("hot", "warm", "cold"))
    forget(store, range(0, 90, 11))
    store.compact()
    if not unclosed:
        store.close()
    shutil.copytree(path, stale)
    if not unclosed:
        store = MemoryStore(path, CFG)
    write(store, range(90, 130), ("warm", "cold"))
    store.store("k1", {"rewritten": True})
    expected["k1"] = {"rewritten": True}
    forget(store, range(2, 3))
    if unclosed:
        killed = root / "killed"
        shutil.copytree(path, killed)
        store.close()
        return killed, stale, expected, deleted
    store.close()
    return path, stale, expected, deleted


def classify(path: Path, expected: dict[str, Any], deleted: set[str]) -> tuple[str, str]:
    """Open the damaged store, read everything; returns ``(outcome, detail)``."""
    try:
        store = MemoryStore(path, CFG)
    except MemstrataError as exc:
        return "detected", f"open: {type(exc).__name__}"
    except FileNotFoundError as exc:
        return ("detected", "open: missing file named") if str(path) in str(exc) else ("foreign exception", repr(exc))
    except Exception as exc:  # the campaign counts every foreign type
        return "foreign exception", f"open: {type(exc).__name__}: {exc}"
    try:
        detected = lost = 0
        for k, v in expected.items():
            try:
                got = store.retrieve(k)
            except KeyError:
                lost += 1
                continue
            except MemstrataError:
                detected += 1
                continue
            if got != v:
                return "wrong value", f"{k!r} read {got!r}"
        for k in deleted:
            try:
                got = store.retrieve(k, None)
            except MemstrataError:
                detected += 1
                continue
            if got is not None:
                return "wrong value", f"deleted {k!r} read {got!r}"
        try:
            keys = set(store.keys())
        except MemstrataError:
            detected += 1
            keys = set(expected)
        if keys - set(expected):
            return "wrong value", f"phantom keys {sorted(map(str, keys - set(expected)))[:3]}"
        report = store.verify()
        if lost and report["ok"]:
            return "silent loss", f"{lost} keys missing, verify() ok"
        if detected or lost or not report["ok"]:
            return "detected", f"reads {detected}, lost {lost}, verify ok={report['ok']}"
        return "read right", ""
    except MemstrataError as exc:
        return "detected", f"{type(exc).__name__}"
    except Exception as exc:
        return "foreign exception", f"{type(exc).__name__}: {exc}"
    finally:
        try:
            store.close()
        except MemstrataError:
            pass


def campaign(work: Path, artefact: str, n: int, seed: int, *, unclosed: bool = False) -> tuple[Counter[str], list[str]]:
    """``n`` injections into files of ``artefact`` kind, every damage kind in turn; returns outcomes and defects."""
    base, stale, expected, deleted = build(work / "base", unclosed=unclosed)
    return inject_each(work, base, stale, n, seed, ARTEFACTS[artefact], lambda t: classify(t, expected, deleted))

"""Damage to persisted files, as disks, kernels and people inflict it.

Each damage is a function ``damage(path, rng, *, stale=None) -> str`` that changes the
file at ``path`` in place (or removes it) and returns a short description of what it
did, so a failing case can be replayed from its seed. ``rng`` is a
``random.Random``; ``stale`` is an older copy of the same file, used by
``stale_copy`` only.

The kinds (``DAMAGES`` maps each name to its function):

- ``bit_flip``: one bit anywhere in the file;
- ``zero_page`` / ``swap_pages`` / ``duplicate_page``: 4 KiB pages zeroed, exchanged,
  or one written over another (a misdirected write);
- ``truncate``: the file cut at a random offset (or to zero bytes);
- ``torn_tail``: the last write torn: the final 1..511 bytes cut or zeroed;
- ``delete``: the file removed;
- ``stale_copy``: the file replaced by an older copy of itself.

``damage_tree`` picks a file of a directory and a kind, so a campaign covers every
file of an artefact with every kind of damage.
"""

from __future__ import annotations

import os
import random
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

PAGE = 4096

Damage = Callable[..., str]


def _size(path: Path) -> int:
    return path.stat().st_size


def _rewrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def bit_flip(path: Path, rng: random.Random, *, stale: Path | None = None) -> str:
    """Flip one random bit."""
    size = _size(path)
    if size == 0:
        return truncate(path, rng)
    offset, bit = rng.randrange(size), rng.randrange(8)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))
    return f"bit_flip {path.name} offset={offset} bit={bit}"


def _pages(path: Path) -> int:
    return max(1, -(-_size(path) // PAGE))


def zero_page(path: Path, rng: random.Random, *, stale: Path | None = None) -> str:
    """Zero one 4 KiB page (the part of it inside the file)."""
    page = rng.randrange(_pages(path))
    length = max(0, min(PAGE, _size(path) - page * PAGE))
    _rewrite(path, page * PAGE, bytes(length))
    return f"zero_page {path.name} page={page}"


def _read_page(path: Path, page: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(page * PAGE)
        return f.read(PAGE)


def swap_pages(path: Path, rng: random.Random, *, stale: Path | None = None) -> str:
    """Exchange two distinct 4 KiB pages (falls back to a bit flip in a one-page file)."""
    return _copy_page(path, rng, both_ways=True)


def duplicate_page(path: Path, rng: random.Random, *, stale: Path | None = None) -> str:
    """Write one page's bytes over another page (a misdirected write)."""
    return _copy_page(path, rng, both_ways=False)


def _copy_page(path: Path, rng: random.Random, *, both_ways: bool) -> str:
    """Copy a random page over another (``both_ways``: and that one over it); a bit flip in a one-page file."""
    n = _pages(path)
    if n < 2:
        return bit_flip(path, rng)
    src, dst = rng.sample(range(n), 2)
    data, old = _read_page(path, src), _read_page(path, dst)
    # Pages keep the file's size: a short last page is padded or cut to fit its slot.
    _rewrite(path, dst * PAGE, data[: len(old)].ljust(len(old), b"\0"))
    if both_ways:
        _rewrite(path, src * PAGE, old[: len(data)].ljust(len(data), b"\0"))
        return f"swap_pages {path.name} pages={src},{dst}"
    return f"duplicate_page {path.name} {src}->{dst}"


def truncate(path: Path, rng: random.Random, *, stale: Path | None = None) -> str:
    """Cut the file at a random offset (possibly to zero bytes)."""
    size = _size(path)
    new_size = rng.randrange(size) if size else 0
    os.truncate(path, new_size)
    return f"truncate {path.name} {size}->{new_size}"


def torn_tail(path: Path, rng: random.Random, *, stale: Path | None = None) -> str:
    """Tear the final write: cut or zero its last 1..511 bytes."""
    size = _size(path)
    if size == 0:
        return f"torn_tail {path.name} (empty)"
    n = rng.randint(1, min(511, size))
    if rng.random() < 0.5:
        os.truncate(path, size - n)
        return f"torn_tail {path.name} cut {n}"
    _rewrite(path, size - n, bytes(n))
    return f"torn_tail {path.name} zeroed {n}"


def delete(path: Path, rng: random.Random, *, stale: Path | None = None) -> str:
    """Remove the file."""
    path.unlink()
    return f"delete {path.name}"


def stale_copy(path: Path, rng: random.Random, *, stale: Path | None = None) -> str:
    """Replace the file by an older copy of itself (a restored or rolled-back file)."""
    if stale is None or not stale.exists():
        return bit_flip(path, rng)
    shutil.copyfile(stale, path)
    return f"stale_copy {path.name}"


DAMAGES: dict[str, Damage] = {
    "bit_flip": bit_flip,
    "zero_page": zero_page,
    "swap_pages": swap_pages,
    "duplicate_page": duplicate_page,
    "truncate": truncate,
    "torn_tail": torn_tail,
    "delete": delete,
    "stale_copy": stale_copy,
}


def files_of(root: Path) -> list[Path]:
    """Every regular file below ``root``, in a stable order."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def damage_tree(
    root: Path,
    rng: random.Random,
    *,
    kind: str | None = None,
    stale_root: Path | None = None,
    only: Callable[[Path], bool] | None = None,
) -> str:
    """Apply one damage (``kind``, or a random one) to one random file below ``root``.

    ``stale_root`` is an older copy of the same tree, for ``stale_copy``; ``only``
    restricts the choice of file. Returns the description of what was done.
    """
    candidates = [p for p in files_of(root) if only is None or only(p)]
    if not candidates:
        raise ValueError(f"damage_tree: no file to damage below {root}")
    target = rng.choice(candidates)
    name = kind if kind is not None else rng.choice(sorted(DAMAGES))
    stale = stale_root / target.relative_to(root) if stale_root is not None else None
    return DAMAGES[name](target, rng, stale=stale)


DEFECTS = ("wrong value", "silent loss", "foreign exception")


def inject_each(
    work: Path,
    base: Path,
    stale: Path | None,
    n: int,
    seed: int,
    only: Callable[[Path], bool],
    classify: Callable[[Path], tuple[str, str]],
) -> tuple[Counter[str], list[str]]:
    """``n`` damaged copies of the tree ``base`` (every kind of damage in turn, to files ``only`` keeps), each
    classified by ``classify(copy) -> (outcome, detail)``; returns the outcome counts and the defects described."""
    rng = random.Random(seed)
    kinds = sorted(DAMAGES)
    outcomes: Counter[str] = Counter()
    defects: list[str] = []
    for i in range(n):
        target = work / f"case-{i}"
        shutil.copytree(base, target)
        (target / "LOCK").unlink(missing_ok=True)  # a copy of a writer's lock file holds no lock
        what = damage_tree(target, rng, kind=kinds[i % len(kinds)], stale_root=stale, only=only)
        outcome, detail = classify(target)
        outcomes[outcome] += 1
        if outcome in DEFECTS:
            defects.append(f"{what}: {outcome}: {detail}")
        shutil.rmtree(target)
    return outcomes, defects

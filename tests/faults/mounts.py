"""Small tmpfs mounts for tests of read-only media and full disks (root with CAP_SYS_ADMIN, as in CI)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextmanager
def tmpfs(root: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (mount's syntax, e.g. ``"4m"``) at ``root``; skips the test where mounting is not allowed."""
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)):
        pytest.skip("mounting a small file system needs root with CAP_SYS_ADMIN (CI has it)")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def remount_read_only(root: Path) -> None:
    assert _mount("-o", "remount,ro", str(root)), f"remounting {root} read-only failed"
    with pytest.raises(OSError):
        (root / "probe").write_bytes(b"x")

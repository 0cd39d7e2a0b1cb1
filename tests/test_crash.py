"""Crash safety: a writer killed with SIGKILL at random moments loses no acknowledged write."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from memstrata import MemoryStore

WRITER = Path(__file__).with_name("_crash_writer.py")
N_RUNS = int(os.environ.get("MEMSTRATA_CRASH_RUNS", "50"))


def _value(i: int) -> dict[str, object]:
    j = i // 2  # two keys in a row hold the same content: the second shares the first's blob
    return {"i": j, "text": f"memory number {j} " * (1 + j % 7), "tags": ["crash", str(j % 3)]}


def run_and_kill(path: Path, start: int, delay: float, *, after_first_write: bool = False) -> tuple[set[int], set[int]]:
    """Start the writer, SIGKILL it after ``delay`` seconds; returns (acknowledged writes, deletes).

    ``after_first_write``: count the delay from the writer's first acknowledged
    write instead of from its start (how long starting takes varies tenfold
    with the machine's load; a kill during the start has runs of its own).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # unbuffered: a buffered readline would take more than the first line, and communicate() reads the
    # pipe's descriptor, never that buffer, so the acknowledgements after the first would be lost
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(start)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, bufsize=0,
    )
    first = b""
    try:
        if after_first_write:
            assert proc.stdout is not None
            first = proc.stdout.readline()  # blocks until the first acknowledgement (or the writer's exit)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    written, deleted = set(), set()
    for line in (first + out).decode().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():  # the last line may be torn by the kill
            (written if parts[0] == "w" else deleted).add(int(parts[1]))
    return written, deleted


def check_store(path: Path, written: set[int], deleted: set[int], uncertain: set[int]) -> None:
    with MemoryStore(path, {"migration_interval_seconds": None}) as store:
        report = store.verify()
        assert report["ok"], report
        for i in written - deleted - uncertain:
            assert store.retrieve(f"k{i}") == _value(i), i
        for i in deleted:
            assert f"k{i}" not in store, i


def crash_round(path: Path, start: int, fraction: float, written: set[int], deleted: set[int], uncertain: set[int],
                *, after_first_write: bool = False) -> int:
    """One writer run killed ``fraction`` of the way in; adds what it acknowledged, checks the store, returns the next start."""
    w, d = run_and_kill(path, start, fraction, after_first_write=after_first_write)
    written |= w
    deleted |= d
    if w and (max(w) + 1) % 5 == 4:
        # the kill may have landed after deleting k{max - 1} and before acknowledging it
        uncertain.add(max(w) - 1)
    check_store(path, written, deleted, uncertain)
    return max(written | deleted | {start}) + 10


def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    rng = random.Random(5)
    path = tmp_path / "store"
    written: set[int] = set()
    deleted: set[int] = set()
    uncertain: set[int] = set()
    start = 0
    for run in range(N_RUNS):
        # four runs in five are killed while writing; the fifth at a random moment of its start or its writing
        start = crash_round(path, start, rng.uniform(0.25, 0.9), written, deleted, uncertain,
                            after_first_write=run % 5 != 4)
    assert len(written) > N_RUNS  # the writer made progress in (almost) every run

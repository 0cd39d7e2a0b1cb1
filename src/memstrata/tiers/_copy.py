"""A consistent copy of a segment log while its writer keeps appending and compacting.

The log is append-only: sealed segments never change, the tail only grows, and a
compaction writes new segments and a new checkpoint before it deletes the old
segments. So the checkpoint (replaced atomically) plus the sealed segments it
lists plus the chain that follows its tail, cut after the last complete batch,
is the log as it stood after one committed batch. A segment deleted under the
copy (a compaction finished meanwhile) makes the copy start again.

An older checkpoint of the same log (an earlier copy's) opens the copy just as
well while no compaction has happened since: every segment it lists is still
there, sealed ones unchanged, and the log replays forward from its tail. A
copy may keep that older checkpoint instead of the current one, so a series
of copies shares one checkpoint file and differs only by appended bytes.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from memstrata.errors import CorruptDataError, MemstrataError
from memstrata.tiers._checkpoint import CHECKPOINT_NAME, Checkpoint, parse_checkpoint
from memstrata.tiers._copy_check import CopyView
from memstrata.tiers._segments import F_END, F_SEAL, HEAD_VALUE, HEADER, SEAL_VALUE, scan_records, segment_name

__all__ = ["copy_log"]

ATTEMPTS = 8
# an older checkpoint is kept only while opening from it replays at most this many more bytes of log
BASE_MAX_REPLAY = 64 << 20


class _Moved(Exception):
    """A file of the log went away under the copy (a compaction): start again."""


def _link_or_copy(src: Path, dst: Path, size: int) -> bool:
    """Hard-link ``src`` (a sealed, immutable segment) to ``dst``, else copy it; True when linked."""
    try:
        os.link(src, dst)
        linked = True
    except FileNotFoundError as exc:
        raise _Moved(str(src)) from exc
    except OSError:
        try:
            shutil.copyfile(src, dst)
        except FileNotFoundError as exc:
            raise _Moved(str(src)) from exc
        linked = False
    if dst.stat().st_size != size:
        raise CorruptDataError(f"segment file {src} is {dst.stat().st_size} bytes, its checkpoint recorded {size}")
    return linked


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise _Moved(str(path)) from exc


def _copy_prefix(fd_in: int, fd_out: int, count: int) -> None:
    """The first ``count`` bytes of ``fd_in`` to ``fd_out`` (in the kernel where it can)."""
    done = 0
    try:
        while done < count:
            n = os.copy_file_range(fd_in, fd_out, count - done, done, done)
            if n == 0:
                raise CorruptDataError("a segment file shrank while it was copied")
            done += n
    except (AttributeError, OSError):  # no copy_file_range here (or across these file systems)
        while done < count:
            data = os.pread(fd_in, min(count - done, 8 << 20), done)
            if not data:
                raise CorruptDataError("a segment file shrank while it was copied") from None
            done += os.pwrite(fd_out, data, done)


def _copy_chain(src: Path, dst: Path, seg: int, start: int, seed: int, sources: dict[str, int]) -> tuple[int, int]:
    """Copy the tail segment ``seg`` and the segments its seals lead to, up to the last complete batch.

    Only the bytes after ``start`` (the checkpoint's tail offset) are read and
    scanned; the ones before it are committed already and copied as they are.
    Returns ``(segments written, bytes written)``; ``sources`` gets each copied segment's inode.
    """
    written = nbytes = 0
    while True:
        path = src / segment_name(seg)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise _Moved(str(path)) from exc
        try:
            st = os.fstat(fd)
            sources[segment_name(seg)] = st.st_ino
            if st.st_size < start:
                raise CorruptDataError(f"segment file {path} is shorter than its checkpoint records")
            data = os.pread(fd, st.st_size - start, start)
            end, nxt = 0, None
            for item in scan_records(data, 0, seed):
                if isinstance(item, int):
                    break  # a batch being written (or a torn one): not committed, not copied
                if item.flags & F_SEAL:
                    end = item.offset + item.length
                    nxt = SEAL_VALUE.unpack(item.value)[0]
                    break
                if item.flags & F_END:
                    end = item.offset + item.length
            out = os.open(dst / segment_name(seg), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                _copy_prefix(fd, out, start)
                os.pwrite(out, data[:end], start)
                if os.fstat(out).st_size != start + end:
                    raise CorruptDataError(f"segment file {path}: its copy is short")
            finally:
                os.close(out)
        finally:
            os.close(fd)
        written += 1
        nbytes += start + end
        if nxt is None:
            return written, nbytes
        seg, start = nxt, HEADER.size + HEAD_VALUE.size + 4


def _base_usable(ck: Checkpoint, base: bytes, path: Path, base_sources: Mapping[str, int] | None,
                 sources: dict[str, int]) -> bool:
    """True when the earlier checkpoint ``base`` opens the copy whose current checkpoint is ``ck``.

    Every segment ``base`` lists must be in the current list (none compacted
    away), sealed ones at the same size, its tail at least as long, copied from
    the inode ``base_sources`` names (when given), and the log from its tail
    to the current one at most ``BASE_MAX_REPLAY`` bytes.
    """
    try:
        old = parse_checkpoint(base, path, with_index=False)  # its digest checked: a damaged base is not used
    except CorruptDataError:
        return False
    now = dict(ck.segments)
    if old.seq > ck.seq or old.tail_segment not in now:
        return False
    for seg, size in old.segments:
        if seg not in now or (now[seg] != size if seg != old.tail_segment else now[seg] < size):
            return False
        if base_sources is not None and base_sources.get(segment_name(seg)) != sources.get(segment_name(seg)):
            return False
    after = [s for s, _ in ck.segments if s > old.tail_segment]
    replay = now[old.tail_segment] - old.tail_offset + sum(now[s] for s in after)
    return replay <= BASE_MAX_REPLAY


def _copy_once(src: Path, dst: Path, seed: int, base: bytes | None, base_sources: Mapping[str, int] | None
               ) -> dict[str, Any]:
    dst.mkdir(parents=True)
    current = _read(src / CHECKPOINT_NAME)
    ck = parse_checkpoint(current, dst / CHECKPOINT_NAME, with_index=False)
    linked = copied = 0
    sources: dict[str, int] = {}
    for seg, size in ck.segments:
        if seg == ck.tail_segment:
            break
        if _link_or_copy(src / segment_name(seg), dst / segment_name(seg), size):
            linked += 1
        else:
            copied += 1
        sources[segment_name(seg)] = (src / segment_name(seg)).stat().st_ino
    n, nbytes = _copy_chain(src, dst, ck.tail_segment, ck.tail_offset, seed, sources)
    kept = base is not None and (base == current or _base_usable(ck, base, dst / CHECKPOINT_NAME, base_sources, sources))
    (dst / CHECKPOINT_NAME).write_bytes(base if kept and base is not None else current)
    return {"segments": linked + copied + n, "linked": linked, "copied": copied + n, "tail_bytes": nbytes,
            "sources": sources, "checkpoint": "base" if kept else "current", "current": current}


def copy_log(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    full_check: bool = False,
    inspect: Callable[[Any], Any] | None = None,
    base_checkpoint: bytes | None = None,
    base_sources: Mapping[str, int] | None = None,
    light: bool = False,
) -> dict[str, Any]:
    """Copy the log directory ``src`` to ``dst`` (which must not exist) as of one committed batch.

    Sealed segments are hard-linked where the file system allows (they are never
    written again), the tail chain is copied up to its last complete batch, and
    the copy is opened before it is returned: the checkpoint's digest, every
    segment's size and header and every record after the checkpoint are checked.
    ``full_check`` also replays every segment (``integrity_check``: reads every
    byte). Safe while another process writes and compacts ``src``. Returns
    ``{"seq", "keys", "segments", "linked", "copied", "tail_bytes", "sources", "checkpoint"}``;
    ``sources`` maps each segment file's name to the inode of the file it was
    copied from: a segment only grows while its inode lives, so the bytes a
    copy of the same inode held are a prefix of this copy's. ``inspect(backend)``
    runs on the opened copy (a read-only :class:`LogBackend`); its result is
    ``report["inspect"]``.

    ``base_checkpoint`` is the ``CHECKPOINT`` file of an earlier copy of this
    log (``base_sources``: that copy's ``sources``, so a segment file replaced
    by another with the same name is noticed). The copy keeps it instead of the
    current checkpoint when it is still valid (see the module docstring; the
    log then replays at most ``BASE_MAX_REPLAY`` more bytes at open), so the
    copy's ``CHECKPOINT`` is byte-identical to the earlier one and only the
    segments' appended bytes differ; ``report["checkpoint"]`` says which was
    kept (``"base"`` or ``"current"``). The copy is opened and checked either way.

    ``light`` checks the copy without loading its index into RAM (which costs
    about a second per million keys): the same checks as an open, made by
    :class:`~memstrata.tiers._copy_check.CopyView` as of the current
    checkpoint (a kept earlier one is checked for its digest, segment list,
    sizes and inodes); ``inspect`` then gets that view, whose ``get(key)``
    reads one key, proven by its record, and ``report["keys"]`` is None.
    ``full_check`` always opens the copy.
    """
    from memstrata.tiers._log import SEED, LogBackend

    s, d = Path(src), Path(dst)
    if not (s / CHECKPOINT_NAME).exists():
        raise FileNotFoundError(errno.ENOENT, "no segment log here (no CHECKPOINT)", str(s))
    if d.exists():
        raise FileExistsError(errno.EEXIST, "copy_log: the destination exists", str(d))
    last = ""
    base = base_checkpoint
    for _attempt in range(ATTEMPTS):
        report: dict[str, Any] = {}
        try:
            report = _copy_once(s, d, SEED, base, base_sources)
            current = report.pop("current")
            problems = []
            if light and not full_check:
                view = CopyView(d, current, SEED)
                report |= {"seq": view.seq, "keys": None, "inspect": inspect(view) if inspect else None}
            else:
                check = LogBackend(d, read_only=True)
                try:
                    problems = check.integrity_check() if full_check else []
                    report |= {"seq": check.seq, "keys": len(check), "inspect": inspect(check) if inspect else None}
                finally:
                    check.close()
        except (_Moved, CorruptDataError) as exc:
            # a compaction replaced files under the copy; damage that stays shows again on the next try
            shutil.rmtree(d, ignore_errors=True)
            last = f"{type(exc).__name__}: {exc}" if isinstance(exc, CorruptDataError) else f"{exc} vanished (compaction)"
            if report.get("checkpoint") == "base":
                base = None  # the earlier checkpoint did not open this copy: the next try takes the current one
            continue
        if problems:
            shutil.rmtree(d, ignore_errors=True)
            last = "; ".join(problems)
            if report.get("checkpoint") == "base":
                base = None
            continue
        return report
    raise MemstrataError(f"copy_log: no consistent copy of {s} after {ATTEMPTS} attempts ({last})")

"""Moving a MemoryCore directory's SQLite audit log to the binary log: copy, verify, swap.

A directory made before the binary log has ``audit.sqlite`` and keeps using
it (MemoryCore opens whichever it finds). :func:`upgrade_audit_log` rewrites
it as ``audit.log`` with the same entries, times and hashes (so the same
Merkle roots: checkpoints taken before stay valid), the intent payloads and
the state (replay positions, trust ledger). The SQLite file stays the log
until the very last step, one rename (``audit.sqlite`` →
``audit.sqlite.upgraded``): a crash before it leaves the directory as it was
(the next run starts the copy over), a crash after it leaves the new log in
place, verified and synced.
"""

from __future__ import annotations

import os
from pathlib import Path

from memstrata.core._audit import AuditChainError, AuditLog, Batch
from memstrata.core._filelog import FileLogStore
from memstrata.core._logstore import SQLiteLogStore

__all__ = ["upgrade_audit_log"]

_CHUNK = 20_000


def upgrade_audit_log(directory: str | os.PathLike[str]) -> int:
    """Move ``directory``'s SQLite audit log to the binary log; returns the number of entries.

    No MemoryCore may have the directory open meanwhile. The SQLite chain is
    verified first and the copy is verified against it entry by entry.

    Raises
    ------
    FileNotFoundError
        ``directory`` has no ``audit.sqlite``.
    AuditChainError
        The SQLite chain does not verify (nothing is changed), or the copy does not match it.
    """
    from memstrata._native import auditchain

    d = Path(directory)
    old = d / "audit.sqlite"
    if not old.is_file():
        raise FileNotFoundError(f"directory: {d} has no audit.sqlite to upgrade")
    new = d / "audit.log"
    for suffix in ("", ".intents", ".state", ".state.tmp"):  # what an interrupted run left
        new.with_name(new.name + suffix).unlink(missing_ok=True)
    sqlite = SQLiteLogStore(old)
    with AuditLog(sqlite) as src:
        n = src.verify()
        dst = FileLogStore(new, "full")
        try:
            size = 0
            while size < n:
                rows = list(src.store.rows(size, min(n, size + _CHUNK)))

                def build(at: int, prev: bytes, rows: list = rows) -> Batch:  # type: ignore[type-arg]
                    items = [r[2:7] for r in rows]
                    records, made, starts, hashes = auditchain.encode_records(items, at, prev, [r[1] for r in rows])
                    for r, m in zip(rows, made):
                        if tuple(r) != m:
                            raise AuditChainError(r[0], "the copy does not match the SQLite entry; nothing was changed")
                    return Batch(made, [], records, starts, hashes)

                dst.append(build)
                size += len(rows)
            payloads = [
                (int(seq), bytes(v)) for seq, v in sqlite.execute("SELECT seq, value FROM payloads ORDER BY seq")
            ]
            if payloads:
                dst._write_intents(payloads)
            dst.set_state(sqlite.states(""))
        finally:
            dst.close()
        head = src.head()
    with AuditLog(new) as check:
        if check.verify() != n or check.head() != head:
            raise AuditChainError(n, "the copied log does not verify to the SQLite log's head; nothing was changed")
    os.replace(old, old.with_name("audit.sqlite.upgraded"))  # the one step that switches the directory over
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return n

"""memstrata.core: many agents' memory behind one crash-consistent write fan-out.

:class:`MemoryCore` writes to a durable store and an audit log (both must
succeed) and, best-effort, to a cache, a vector index, a trust ledger and an
event bus; after a crash it replays the audit log (also its intent log) so every
layer agrees again. :class:`AuditLog` is a SHA-256 hash chain with RFC 6962 /
RFC 9162 Merkle checkpoints, inclusion and consistency proofs, checked by the
standalone :func:`verify_inclusion` and :func:`verify_consistency`. Embedded by
default (RAM cache, :class:`memstrata.MemoryStore`, SQLite log); Redis and
PostgreSQL when one machine is not enough.
"""

from __future__ import annotations

from memstrata.core._audit import AuditChainError, AuditEntry, AuditLog, encode_entry
from memstrata.core._config import CoreConfig
from memstrata.core._core import MemoryCore
from memstrata.core._events import Event, EventBus
from memstrata.core._filelog import FileLogStore
from memstrata.core._layers import TextEmbedder
from memstrata.core._logstore import SQLiteLogStore
from memstrata.core._merkle import (
    Checkpoint,
    ConsistencyProof,
    InclusionProof,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from memstrata.core._pglog import PostgresLogStore
from memstrata.core._results import WriteFailedError, WriteResult
from memstrata.core._trust import TrustLedger
from memstrata.core._upgrade import upgrade_audit_log

__all__ = [
    "AuditChainError",
    "AuditEntry",
    "AuditLog",
    "Checkpoint",
    "ConsistencyProof",
    "CoreConfig",
    "Event",
    "EventBus",
    "FileLogStore",
    "InclusionProof",
    "MemoryCore",
    "PostgresLogStore",
    "SQLiteLogStore",
    "TextEmbedder",
    "TrustLedger",
    "WriteFailedError",
    "WriteResult",
    "encode_entry",
    "leaf_hash",
    "node_hash",
    "upgrade_audit_log",
    "verify_consistency",
    "verify_inclusion",
]

"""The outcome of a :class:`MemoryCore` write or delete, per layer."""

from __future__ import annotations

from dataclasses import dataclass, field

from memstrata.errors import MemstrataError

__all__ = ["WriteFailedError", "WriteResult", "failed"]


class WriteFailedError(MemstrataError):
    """A critical layer (audit log or durable store) failed; nothing of the write is visible. ``result`` has the details."""

    def __init__(self, message: str, result: WriteResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class WriteResult:
    """Outcome of a write or delete: its log sequence and each layer's ``"ok"``, ``"skipped"`` or ``"failed: ..."``."""

    key: str
    seq: int
    ok: bool
    layers: dict[str, str] = field(default_factory=dict)
    digest: bytes = b""
    existed: bool | None = None

    def __bool__(self) -> bool:
        return self.ok


def failed(exc: BaseException) -> str:
    """A layer's outcome when it raised ``exc``."""
    return f"failed: {type(exc).__name__}: {exc}"

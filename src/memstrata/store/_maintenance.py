"""Moving keys and keeping the store in shape, as methods of :class:`~memstrata.MemoryStore`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memstrata.types import TierLike

if TYPE_CHECKING:
    from memstrata.tiers import TieredStorage

__all__ = ["StoreMaintenanceMethods"]


class StoreMaintenanceMethods:
    """Mixed into :class:`~memstrata.MemoryStore`: migrate, pin, run_migrations, compact, verify."""

    if TYPE_CHECKING:
        tiers: TieredStorage

        def _check_open(self) -> None: ...

        def _check_writable(self) -> None: ...

    def migrate(self, key: str | bytes, tier: TierLike) -> None:
        """Move ``key`` to ``tier`` now."""
        self._check_writable()
        self.tiers.migrate(key, tier)

    def pin(self, key: str | bytes) -> None:
        """Keep ``key`` where it is (the rules never move it; hot never evicts it)."""
        self._check_writable()
        self.tiers.set_pinned(key, True)

    def unpin(self, key: str | bytes) -> None:
        self._check_writable()
        self.tiers.set_pinned(key, False)

    def run_migrations(self) -> dict[str, int]:
        """Apply the idle and capacity rules now (the background thread does this periodically)."""
        self._check_open()
        return self.tiers.run_migrations()

    def compact(self) -> dict[str, int]:
        """Drop tombstones and unreferenced blobs, rewrite packs with dead space, rewrite the log's live records.

        A warm value that one key alone holds moves into that key's entry record
        (``blobs_inlined`` in the report): one record read per warm retrieve.

        After ``delete`` + ``compact()`` no byte of a deleted value remains in
        the store's files (a zstd dictionary trained on it before the delete
        may keep fragments of it: dictionaries stay for the frames that name them).
        """
        self._check_writable()
        return self.tiers.compact()

    def verify(self) -> dict[str, Any]:
        """Read and check every frame on every tier.

        Returns
        -------
        dict
            ``ok``, ``keys``, ``blobs``, ``frames_checked`` (per tier),
            ``bad_keys``, ``bad_blobs``, ``bad_files`` and ``errors``.
        """
        self._check_open()
        return self.tiers.verify()

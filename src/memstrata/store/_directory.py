"""Offline operations on a store directory, as static methods of :class:`~memstrata.MemoryStore`: upgrade and repair."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["StoreDirectoryMethods"]


class StoreDirectoryMethods:
    """Mixed into :class:`~memstrata.MemoryStore`: :meth:`upgrade` and :meth:`repair` (the work is in ``_layout``)."""

    @staticmethod
    def upgrade(path: str | os.PathLike[str], durability: str = "normal") -> dict[str, Any]:
        """Convert the format-1 store at ``path`` to the current format, in place; returns a report.

        The format-1 files stay untouched until the converted store is complete,
        fsynced and verified record by record; then the new log is renamed into
        place (the commit point) and the old files are removed. A crash at any
        step leaves either the format-1 or the format-2 store intact (opening or
        upgrading again finishes the job). The store must not be open for writing.

        Returns
        -------
        dict
            ``path``, ``from_version`` (1, or 2 when already converted),
            ``to_version``, ``records`` (index and frame records copied) and
            ``removed`` (the format-1 files deleted).
        """
        from memstrata.store._layout import upgrade

        return upgrade(path, durability)

    @staticmethod
    def repair(path: str | os.PathLike[str], durability: str = "normal") -> dict[str, Any]:
        """Rebuild the index of the store at ``path`` from its self-describing records; returns a report.

        Every record whose checksum holds is kept (the last committed value of
        each key wins); damaged records are skipped and named. The rebuilt log
        is written beside the old one and swapped in only when complete.

        Returns
        -------
        dict
            ``path``, ``keys_recovered`` (index records rebuilt), ``keys`` (live
            keys after repair), ``damaged_records`` (file and offset of each
            record that failed its checksum), ``unrecoverable_keys`` (keys whose
            value did not survive), ``verify_ok``, ``errors``,
            ``highest_seq_seen``, ``batches_missing`` (batches the log's tail
            marker proves were committed after the last one found: their
            writes are lost) and ``segments_rewritten``.
        """
        from memstrata.store._layout import repair

        return repair(path, durability)

"""Metadata held column by column, for the masks of :mod:`memstrata.vectors.filters`.

Each key seen in any row is a column: the kind of each row's value (one
byte), its number (float64, or int8 while the column has held only bools)
and its string code (int32), the arrays a compiled filter compares with one
numpy operation per condition. Rows are appended (in batches, or one at a
time for a single write), overwritten, and dropped in bulk.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from memstrata._growth import grown_capacity

__all__ = ["ABSENT", "BOOL", "NULL", "NUMBER", "OTHER", "STRING", "MetadataColumns", "scalar_kind"]

#: Kinds of stored values. ABSENT: the row has no such key.
ABSENT, NULL, BOOL, NUMBER, STRING, OTHER = 0, 1, 2, 3, 4, 5
_MAX_EXACT = 2**53


def scalar_kind(value: Any) -> int:
    """The kind of a metadata value (``NULL BOOL NUMBER STRING``, or ``OTHER`` when not filterable)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return NUMBER if -_MAX_EXACT <= value <= _MAX_EXACT else OTHER
    if isinstance(value, float):
        return NUMBER if math.isfinite(value) else OTHER
    if isinstance(value, str):
        return STRING
    return OTHER


class _Column:
    """One metadata key over every row: the kind of each value, and its number or string code.

    ``numbers`` exists once some row held a number or bool, ``codes`` once some
    row held a string (None before): most keys hold one kind, and the unused
    array would cost 8 or 4 bytes a row. A column that has held only bools
    keeps them as int8 (0/1), and becomes float64 with its first number.
    """

    __slots__ = ("codes", "kinds", "numbers", "size", "strings")

    def __init__(self, capacity: int) -> None:
        self.kinds = np.zeros(capacity, np.int8)
        self.numbers: np.ndarray | None = None  # numbers, and bools as 0/1 (int8 while only bools came)
        self.codes: np.ndarray | None = None  # string -> code in ``strings``
        self.strings: dict[str, int] = {}
        self.size = 0

    def grow(self, capacity: int) -> None:
        for name, fill in (("kinds", 0), ("numbers", 0), ("codes", -1)):
            old = getattr(self, name)
            if old is None:
                continue
            new = np.full(capacity, fill, old.dtype)
            new[: old.shape[0]] = old
            setattr(self, name, new)

    def numbers_of(self, n: int) -> np.ndarray:
        """The number of each of the first ``n`` rows (0 where none)."""
        return np.zeros(n) if self.numbers is None else self.numbers[:n]

    def codes_of(self, n: int) -> np.ndarray:
        """The string code of each of the first ``n`` rows (-1 where none)."""
        return np.full(n, -1, np.int32) if self.codes is None else self.codes[:n]

    def set(self, row: int, value: Any) -> None:
        kind = scalar_kind(value)
        self.kinds[row] = kind
        if kind in (BOOL, NUMBER):
            if self.numbers is None:
                self.numbers = np.zeros(self.kinds.shape[0], np.int8 if kind == BOOL else np.float64)
            elif kind == NUMBER and self.numbers.dtype != np.float64:
                self.numbers = self.numbers.astype(np.float64)
            self.numbers[row] = value if kind == BOOL else float(value)
        elif self.numbers is not None:
            self.numbers[row] = 0.0
        if kind == STRING:
            if self.codes is None:
                self.codes = np.full(self.kinds.shape[0], -1, np.int32)
            self.codes[row] = self.strings.setdefault(value, len(self.strings))
        elif self.codes is not None:
            self.codes[row] = -1

    def set_new(self, row: int, value: Any) -> None:
        """:meth:`set` on a row never written since it was reserved (it holds the fill values: only ``value``'s own
        array changes)."""
        kind = STRING if type(value) is str else scalar_kind(value)
        self.kinds[row] = kind
        if kind == STRING:
            if self.codes is None:
                self.codes = np.full(self.kinds.shape[0], -1, np.int32)
            self.codes[row] = self.strings.setdefault(value, len(self.strings))
        elif kind == BOOL or kind == NUMBER:
            numbers = self.numbers
            if numbers is None:
                numbers = self.numbers = np.zeros(self.kinds.shape[0], np.int8 if kind == BOOL else np.float64)
            elif kind == NUMBER and numbers.itemsize == 1:  # int8 bools so far (an itemsize is cheaper than a dtype test)
                numbers = self.numbers = numbers.astype(np.float64)
            numbers[row] = value if kind == BOOL else float(value)

    def clear(self, row: int) -> None:
        self.kinds[row] = ABSENT
        if self.numbers is not None:
            self.numbers[row] = 0.0
        if self.codes is not None:
            self.codes[row] = -1

    def keep(self, n: int, rows: np.ndarray) -> None:
        """Keep the first ``n`` rows where ``rows`` is true."""
        self.kinds = self.kinds[:n][rows].copy()
        if self.numbers is not None:
            self.numbers = self.numbers[:n][rows].copy()
        if self.codes is not None:
            self.codes = self.codes[:n][rows].copy()

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.kinds, self.numbers, self.codes) if a is not None)


class MetadataColumns:
    """Metadata of rows ``0 .. n-1`` held column by column, for :meth:`Filter.mask`.

    Each key seen in any row gets a column: the kind of each row's value (one
    byte), the value as float64 when it is a number or bool, and an int32 code
    when it is a string. Rows are appended, overwritten and dropped in bulk
    (``keep``); row ``i`` also carries an integer id (the ``$id`` pseudo-field).
    """

    def __init__(self) -> None:
        self._columns: dict[str, _Column] = {}
        self._ids = np.empty(0, np.int64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def keys(self) -> list[str]:
        """Every key some row has (or had since the last ``keep``), sorted."""
        return sorted(k for k, c in self._columns.items() if (c.kinds[: self._n] != ABSENT).any())

    @property
    def ids(self) -> np.ndarray:
        """The id of each row (int64, a view)."""
        return self._ids[: self._n]

    def _reserve(self, n: int) -> None:
        if n <= self._ids.shape[0]:
            return
        capacity = grown_capacity(n, self._ids.shape[0])
        ids = np.zeros(capacity, np.int64)
        ids[: self._n] = self._ids[: self._n]
        self._ids = ids
        for column in self._columns.values():
            column.grow(capacity)

    def _column(self, key: str) -> _Column:
        column = self._columns.get(key)
        if column is None:
            column = self._columns[key] = _Column(self._ids.shape[0])
        return column

    def append(self, metadata: Sequence[Mapping[str, Any] | None], ids: Iterable[int]) -> None:
        """Add one row per entry of ``metadata`` (``None``: a row without metadata)."""
        ids_arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, np.int64)
        if ids_arr.shape != (len(metadata),):
            raise ValueError(f"ids: expected {len(metadata)} ids (one per row), got {ids_arr.shape[0]}")
        start = self._n
        self._reserve(start + len(metadata))
        self._ids[start : start + len(metadata)] = ids_arr
        self._n += len(metadata)
        for row, meta in enumerate(metadata, start):
            if meta:
                for key, value in meta.items():
                    self._column(key).set(row, value)

    def append_one(self, metadata: Mapping[str, Any] | None, id_: int) -> None:
        """:meth:`append` of one row (an agent's single write): the same columns, without the batch's lists and arrays."""
        row = self._n
        if row == self._ids.shape[0]:
            self._reserve(row + 1)
        self._ids[row] = id_
        self._n = row + 1
        if metadata:
            columns = self._columns
            for key, value in metadata.items():
                column = columns.get(key)
                if column is None:
                    column = self._column(key)
                column.set_new(row, value)

    def set(self, row: int, metadata: Mapping[str, Any] | None) -> None:
        """Replace the metadata of ``row``."""
        for column in self._columns.values():
            column.clear(row)
        for key, value in (metadata or {}).items():
            self._column(key).set(row, value)

    def keep(self, rows: np.ndarray) -> None:
        """Keep only the rows where the boolean mask ``rows`` is true (in order); columns left empty go."""
        n = int(np.count_nonzero(rows))
        self._ids = self._ids[: self._n][rows].copy()
        for key in list(self._columns):
            column = self._columns[key]
            if not (column.kinds[: self._n][rows] != ABSENT).any():
                del self._columns[key]
                continue
            column.keep(self._n, rows)
        self._n = n

    @property
    def nbytes(self) -> int:
        """Bytes of the column arrays (not the string dictionaries)."""
        total = self._ids.nbytes
        for column in self._columns.values():
            total += column.nbytes
        return int(total)

    def _get(self, key: str) -> _Column | None:
        return self._columns.get(key)

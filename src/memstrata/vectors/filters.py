"""A metadata filter language, compiled to boolean masks over columnar metadata.

A filter is a dict, as in MongoDB and Chroma::

    {"category": "email"}                                  # equality
    {"importance": {"$gt": 0.5}, "category": {"$in": ["asyncio", "email"]}}
    {"$or": [{"user": "ana"}, {"$not": {"archived": True}}]}
    {"$id": {"$in": [3, 5, 8]}}                            # stored ids

Operators on a field: ``$eq $ne $gt $gte $lt $lte $in $nin $exists``; several
in one dict must all hold. Logical: ``$and`` / ``$or`` (non-empty lists of
filters) and ``$not`` (one filter). Top-level keys are ANDed; ``{}`` matches
every row. ``$id`` is the stored id of a row (an integer).

Values that can be compared are scalars: ``str``, ``int`` / ``float`` (one
kind, "number"; integers beyond 2**53 are not filterable), ``bool`` (not a
number: ``True`` never equals ``1``) and ``None``. A comparison holds only
between values of the same kind: ``{"$gt": 3}`` never matches a string, and
lists or dicts stored as metadata values only answer ``$exists`` (and the
negations ``$ne`` / ``$nin``, which hold for every row whose value is not
equal / not listed, including rows without the field).

Malformed filters (an unknown operator, a list where a scalar belongs, an
empty ``$or``, a non-scalar operand) raise ``ValueError`` naming the part
that is wrong, when compiled. A field that no stored row has raises
``ValueError`` under ``strict=True`` (the default: a misspelled key is then
an error, not an empty result); with ``strict=False`` it is treated as
absent from every row.

Compilation produces a :class:`Filter`: ``Filter.mask(columns)`` evaluates
it with numpy over a :class:`MetadataColumns` (one vector operation per
condition, no Python call per row); ``Filter.matches(metadata, id)``
evaluates it on one row, with the same semantics.

Examples
--------
>>> from memstrata.vectors.filters import MetadataColumns, compile_filter
>>> columns = MetadataColumns()
>>> columns.append([{"kind": "note", "score": 0.9}, {"kind": "task", "score": 0.2}, None], ids=[10, 11, 12])
>>> compile_filter({"score": {"$gt": 0.5}}).mask(columns).tolist()
[True, False, False]
>>> compile_filter({"$or": [{"kind": "task"}, {"$id": 12}]}).mask(columns).tolist()
[False, True, True]
>>> compile_filter({"kidn": "note"}).mask(columns)
Traceback (most recent call last):
...
ValueError: filter: no stored metadata has the key 'kidn' (known keys: kind, score); pass strict=False to match nothing instead
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memstrata._growth import grown_capacity

__all__ = ["ID_KEY", "Filter", "MetadataColumns", "compile_filter", "scalar_kind"]

#: The pseudo-field that names a row's id in a filter.
ID_KEY = "$id"

#: Kinds of stored values. ABSENT: the row has no such key.
ABSENT, NULL, BOOL, NUMBER, STRING, OTHER = 0, 1, 2, 3, 4, 5
_MAX_EXACT = 2**53
_FIELD_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
_LOGICAL_OPS = ("$and", "$or", "$not")


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
            if self.numbers is None:
                self.numbers = np.zeros(self.kinds.shape[0], np.int8 if kind == BOOL else np.float64)
            elif kind == NUMBER and self.numbers.dtype != np.float64:
                self.numbers = self.numbers.astype(np.float64)
            self.numbers[row] = value if kind == BOOL else float(value)

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


# ------------------------------------------------------------ compilation


def _where(path: str) -> str:
    return f"filter{path}"


def _check_scalar(path: str, op: str, value: Any) -> Any:
    kind = scalar_kind(value)
    if kind == OTHER:
        if isinstance(value, (list, tuple, set)) and op == "$eq":
            raise ValueError(
                f"{_where(path)}: expected a scalar (str, number, bool or None) or an operator dict, "
                f"got {type(value).__name__}; for any of several values use {{'$in': [...]}}"
            )
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f"{_where(path)}: {op} operand {value!r} is beyond 2**53, which filters cannot compare")
        raise ValueError(
            f"{_where(path)}: {op} expected a scalar (str, number, bool or None), got {type(value).__name__} {value!r}"
        )
    return value


@dataclass(frozen=True)
class _Cond:
    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class _Node:
    op: str  # "$and" | "$or" | "$not"
    children: tuple[Any, ...]


def _compile(spec: Any, path: str) -> Any:
    if not isinstance(spec, Mapping):
        raise ValueError(f"{_where(path)}: expected a dict, got {type(spec).__name__} {spec!r}")
    parts: list[Any] = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise ValueError(f"{_where(path)}: expected string keys, got {key!r}")
        sub = f"{path}[{key!r}]"
        if key in ("$and", "$or"):
            if not isinstance(value, (list, tuple)) or not value:
                raise ValueError(f"{_where(sub)}: expected a non-empty list of filters, got {value!r}")
            parts.append(_Node(key, tuple(_compile(v, f"{sub}[{i}]") for i, v in enumerate(value))))
        elif key == "$not":
            parts.append(_Node("$not", (_compile(value, sub),)))
        elif key.startswith("$") and key != ID_KEY:
            raise ValueError(
                f"{_where(sub)}: unknown operator {key!r}; logical operators are {', '.join(_LOGICAL_OPS)} "
                f"and {ID_KEY!r} names the id"
            )
        elif isinstance(value, Mapping):
            if not value:
                raise ValueError(f"{_where(sub)}: expected at least one operator, got an empty dict")
            for op, operand in value.items():
                parts.append(_field_cond(key, op, operand, f"{sub}[{op!r}]"))
        else:
            parts.append(_field_cond(key, "$eq", value, sub))
    return parts[0] if len(parts) == 1 else _Node("$and", tuple(parts))


def _field_cond(key: str, op: Any, operand: Any, path: str) -> _Cond:
    if op not in _FIELD_OPS:
        raise ValueError(f"{_where(path)}: unknown operator {op!r}; field operators are {', '.join(_FIELD_OPS)}")
    if op in ("$in", "$nin"):
        if not isinstance(operand, (list, tuple)):
            raise ValueError(f"{_where(path)}: {op} expected a list of scalars, got {type(operand).__name__}")
        operands = tuple(_check_scalar(path, op, v) for v in operand)
        if key == ID_KEY and any(scalar_kind(v) != NUMBER for v in operands):
            raise ValueError(f"{_where(path)}: {ID_KEY} is an integer id, got {operand!r}")
        return _Cond(key, op, operands)
    if op == "$exists":
        if not isinstance(operand, bool):
            raise ValueError(f"{_where(path)}: $exists expected True or False, got {operand!r}")
        return _Cond(key, op, operand)
    _check_scalar(path, op, operand)
    if op in ("$gt", "$gte", "$lt", "$lte") and scalar_kind(operand) not in (NUMBER, STRING):
        raise ValueError(f"{_where(path)}: {op} expected a number or a string, got {operand!r}")
    if key == ID_KEY and op != "$exists" and scalar_kind(operand) != NUMBER:
        raise ValueError(f"{_where(path)}: {ID_KEY} is an integer id, got {operand!r}")
    return _Cond(key, op, operand)


def compile_filter(spec: Mapping[str, Any]) -> Filter:
    """Check and compile a filter dict (see the module docstring for the language).

    Raises
    ------
    ValueError
        The filter is malformed; the message names the part (``filter['a']['$gt']``).
    """
    if isinstance(spec, Filter):
        return spec
    if not isinstance(spec, Mapping):
        raise ValueError(f"filter: expected a dict, got {type(spec).__name__} {spec!r}")
    return Filter(_compile(spec, "") if spec else _Node("$and", ()), dict(spec))


def _cond_keys(node: Any) -> set[str]:
    if isinstance(node, _Cond):
        return {node.key}
    return set().union(*(_cond_keys(c) for c in node.children)) if node.children else set()


class Filter:
    """A compiled filter: :meth:`mask` over columns, :meth:`matches` on one row."""

    __slots__ = ("_root", "keys", "spec")

    def __init__(self, root: Any, spec: dict[str, Any]) -> None:
        self._root = root
        self.spec = spec
        #: the metadata keys the filter reads (``$id`` excluded)
        self.keys = frozenset(_cond_keys(root) - {ID_KEY})

    def __repr__(self) -> str:
        return f"Filter({self.spec!r})"

    # -------------------------------------------------------- vectorized

    def mask(self, columns: MetadataColumns, *, strict: bool = True) -> np.ndarray:
        """Boolean mask over the rows of ``columns``: True where the filter holds.

        Raises
        ------
        ValueError
            ``strict`` and the filter reads a key no row has.
        """
        if strict:
            known = set(columns.keys)
            unknown = sorted(self.keys - known)
            if unknown:
                raise ValueError(
                    f"filter: no stored metadata has the key {unknown[0]!r} (known keys: "
                    f"{', '.join(sorted(known)) or 'none'}); pass strict=False to match nothing instead"
                )
        return self._eval(self._root, columns, len(columns))

    def _eval(self, node: Any, columns: MetadataColumns, n: int) -> np.ndarray:
        if isinstance(node, _Cond):
            return _cond_mask(node, columns, n)
        if node.op == "$not":
            return ~self._eval(node.children[0], columns, n)
        if not node.children:
            return np.ones(n, bool)
        out = self._eval(node.children[0], columns, n)
        for child in node.children[1:]:
            if node.op == "$and":
                out &= self._eval(child, columns, n)
            else:
                out |= self._eval(child, columns, n)
        return out

    # ------------------------------------------------------------ one row

    def matches(self, metadata: Mapping[str, Any] | None, id: int | None = None) -> bool:
        """Whether the filter holds for one row (``metadata`` may be None; ``id`` for ``$id``)."""
        return _row_eval(self._root, metadata or {}, id)


def _cond_mask(cond: _Cond, columns: MetadataColumns, n: int) -> np.ndarray:
    op, value = cond.op, cond.value
    if cond.key == ID_KEY:
        kinds = np.full(n, NUMBER, np.int8)
        numbers = columns.ids.astype(np.float64)
        codes = None
        strings: dict[str, int] = {}
    else:
        column = columns._get(cond.key)
        if column is None:
            kinds = np.zeros(n, np.int8)
            numbers, codes, strings = np.zeros(n), np.full(n, -1, np.int32), {}
        else:
            kinds, numbers, codes, strings = column.kinds[:n], column.numbers_of(n), column.codes_of(n), column.strings
    if op == "$exists":
        present: np.ndarray = kinds != ABSENT
        return present if value else ~present
    if op in ("$eq", "$ne"):
        eq = _equal(kinds, numbers, codes, strings, value)
        return eq if op == "$eq" else ~eq
    if op in ("$in", "$nin"):
        hit = np.zeros(n, bool)
        for v in value:
            hit |= _equal(kinds, numbers, codes, strings, v)
        return hit if op == "$in" else ~hit
    # ordering: numbers with numbers, strings with strings
    same: np.ndarray  # (ndarray comparisons are typed Any by numpy)
    if scalar_kind(value) == NUMBER:
        x, y = numbers, float(value)
        same = kinds == NUMBER
    else:
        assert codes is not None
        # order the few distinct strings in Python once, then compare their ranks per row
        table = np.array(sorted(strings, key=strings.__getitem__) or [""], dtype=object)
        rank = np.array([_cmp(s, value) for s in table], np.int8)
        same = kinds == STRING
        x, y = np.where(same, rank[np.maximum(codes, 0)], 0), 0
    order: np.ndarray
    if op == "$gt":
        order = x > y
    elif op == "$gte":
        order = x >= y
    elif op == "$lt":
        order = x < y
    else:
        order = x <= y
    return same & order


def _cmp(a: str, b: str) -> int:
    return (a > b) - (a < b)


def _equal(kinds: np.ndarray, numbers: np.ndarray, codes: np.ndarray | None, strings: dict[str, int], value: Any) -> np.ndarray:
    kind = scalar_kind(value)
    equal: np.ndarray  # (ndarray comparisons are typed Any by numpy)
    if kind == NULL:
        equal = kinds == NULL
    elif kind in (BOOL, NUMBER):
        equal = (kinds == kind) & (numbers == float(value))
    elif (code := strings.get(value)) is None or codes is None:
        equal = np.zeros(kinds.shape[0], bool)
    else:
        equal = (kinds == STRING) & (codes == code)
    return equal


# --------------------------------------------------------------- one row


def _row_equal(present: bool, stored: Any, value: Any) -> bool:
    if not present:
        return False
    kind = scalar_kind(stored)
    if kind == OTHER or kind != scalar_kind(value):
        return False
    return bool(stored == value)


def _row_eval(node: Any, meta: Mapping[str, Any], id_: int | None) -> bool:
    if isinstance(node, _Node):
        if node.op == "$not":
            return not _row_eval(node.children[0], meta, id_)
        results = (_row_eval(c, meta, id_) for c in node.children)
        return all(results) if node.op == "$and" else any(results)
    if node.key == ID_KEY:
        present, stored = id_ is not None, id_
    else:
        present, stored = node.key in meta, meta.get(node.key)
    op, value = node.op, node.value
    if op == "$exists":
        return bool(present == value)
    if op == "$eq":
        return _row_equal(present, stored, value)
    if op == "$ne":
        return not _row_equal(present, stored, value)
    if op == "$in":
        return any(_row_equal(present, stored, v) for v in value)
    if op == "$nin":
        return not any(_row_equal(present, stored, v) for v in value)
    if not present or scalar_kind(stored) != scalar_kind(value):
        return False
    if op == "$gt":
        return bool(stored > value)
    if op == "$gte":
        return bool(stored >= value)
    if op == "$lt":
        return bool(stored < value)
    return bool(stored <= value)

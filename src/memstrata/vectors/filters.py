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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from memstrata.vectors.columns import ABSENT, BOOL, NULL, NUMBER, OTHER, STRING, MetadataColumns, scalar_kind

__all__ = ["ID_KEY", "Filter", "MetadataColumns", "compile_filter", "scalar_kind"]

#: The pseudo-field that names a row's id in a filter.
ID_KEY = "$id"

_FIELD_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
_LOGICAL_OPS = ("$and", "$or", "$not")


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

"""The metadata filter language: masks over columns against a plain-Python evaluator, and every malformed filter."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memstrata.vectors.filters import ID_KEY, Filter, MetadataColumns, compile_filter

KEYS = ("a", "b", "c")
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5, 2.0, 1e300]),
    st.sampled_from(["x", "y", "z", "", "Zebra"]),
)
VALUES = st.one_of(SCALARS, st.lists(st.integers(0, 2), max_size=2), st.just(2**60), st.just(float("nan")))
ROWS = st.lists(st.one_of(st.none(), st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3)), max_size=12)

COMPARABLE = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2.0]), st.sampled_from(["x", "y", "", "Zebra"]))


def _field_filters() -> st.SearchStrategy[dict[str, Any]]:
    op = st.one_of(
        st.tuples(st.sampled_from(["$eq", "$ne"]), SCALARS),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), COMPARABLE),
        st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(SCALARS, max_size=3)),
        st.tuples(st.just("$exists"), st.booleans()),
    )
    key = st.sampled_from(KEYS)
    id_op = st.one_of(
        st.tuples(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]), st.integers(98, 113)),
        st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(st.integers(98, 113), max_size=3)),
    )
    return st.one_of(
        st.builds(lambda ops: {ID_KEY: dict(ops)}, st.lists(id_op, min_size=1, max_size=2)),
        st.builds(lambda k, v: {k: v}, st.sampled_from(KEYS), SCALARS),
        st.builds(lambda k, ops: {k: dict(ops)}, key, st.lists(op, min_size=1, max_size=2)),
    )


FILTERS = st.recursive(
    _field_filters(),
    lambda inner: st.one_of(
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda fs: {"$or": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda f: {"$not": f}, inner),
        st.builds(lambda f, g: {**f, **g}, inner, inner),
    ),
    max_leaves=6,
)


# ---------------------------------------------------------------- a plain evaluator, written from the spec


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "number" if abs(v) <= 2**53 else "other"
    if isinstance(v, float):
        return "number" if v == v and abs(v) != float("inf") else "other"
    if isinstance(v, str):
        return "string"
    return "other"


def _eq(present: bool, stored: Any, value: Any) -> bool:
    return present and _kind(stored) != "other" and _kind(stored) == _kind(value) and stored == value


def evaluate(spec: dict[str, Any], meta: dict[str, Any], id_: int) -> bool:
    for key, value in spec.items():
        if key == "$and":
            ok = all(evaluate(f, meta, id_) for f in value)
        elif key == "$or":
            ok = any(evaluate(f, meta, id_) for f in value)
        elif key == "$not":
            ok = not evaluate(value, meta, id_)
        else:
            present, stored = (True, id_) if key == ID_KEY else (key in meta, meta.get(key))
            ops = value if isinstance(value, dict) else {"$eq": value}
            ok = True
            for op, x in ops.items():
                if op == "$eq":
                    ok &= _eq(present, stored, x)
                elif op == "$ne":
                    ok &= not _eq(present, stored, x)
                elif op == "$in":
                    ok &= any(_eq(present, stored, v) for v in x)
                elif op == "$nin":
                    ok &= not any(_eq(present, stored, v) for v in x)
                elif op == "$exists":
                    ok &= present == x
                else:
                    same = present and _kind(stored) == _kind(x)
                    cmp = {"$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b, "$lt": lambda a, b: a < b}.get(
                        op, lambda a, b: a <= b
                    )
                    ok &= bool(same and cmp(stored, x))
        if not ok:
            return False
    return True


def _columns(rows: list[dict[str, Any] | None]) -> MetadataColumns:
    columns = MetadataColumns()
    columns.append(rows, ids=range(100, 100 + len(rows)))
    return columns


@settings(deadline=None)
@given(rows=ROWS, spec=FILTERS)
def test_mask_and_matches_agree_with_plain_evaluator(rows: list[dict[str, Any] | None], spec: dict[str, Any]) -> None:
    compiled = compile_filter(spec)
    columns = _columns(rows)
    expected = [evaluate(spec, r or {}, 100 + i) for i, r in enumerate(rows)]
    assert compiled.mask(columns, strict=False).tolist() == expected
    assert [compiled.matches(r, 100 + i) for i, r in enumerate(rows)] == expected


@settings(deadline=None)
@given(rows=ROWS, updates=st.lists(st.tuples(st.integers(0, 11), ROWS.map(lambda r: r[0] if r else None))), keep=st.data())
def test_columns_stay_in_step_through_set_and_keep(rows: list[Any], updates: list[Any], keep: st.DataObject) -> None:
    columns = _columns(rows)
    model = list(rows)
    for row, meta in updates:
        if row < len(model):
            columns.set(row, meta)
            model[row] = meta
    mask = np.array(keep.draw(st.lists(st.booleans(), min_size=len(model), max_size=len(model))), bool)
    columns.keep(mask)
    ids = [100 + i for i in range(len(model)) if mask[i]]
    model = [m for m, k in zip(model, mask) if k]
    assert columns.ids.tolist() == ids
    for spec in ({"a": {"$exists": True}}, {"b": {"$gte": 0}}, {"c": {"$in": ["x", None, True]}}, {"$id": {"$gt": 104}}):
        expected = [evaluate(spec, m or {}, i) for m, i in zip(model, ids)]
        assert compile_filter(spec).mask(columns, strict=False).tolist() == expected
    assert columns.keys == sorted({k for m in model if m for k in m})


@settings(deadline=None)
@given(rows=ROWS, first=st.integers(0, 12), keep=st.data())
def test_append_one_row_by_row_makes_the_columns_append_makes(rows: list[Any], first: int, keep: st.DataObject) -> None:
    """Rows appended one at a time (after ``first`` of them in one batch, and after a ``keep``) hold the same
    kinds, numbers, strings and masks as the batch append of the same rows."""
    first = min(first, len(rows))
    batch, single = MetadataColumns(), MetadataColumns()
    single.append(rows[:first], [100 + i for i in range(first)])
    mask = np.array(keep.draw(st.lists(st.booleans(), min_size=first, max_size=first)), bool)
    single.keep(mask)
    kept = [i for i in range(first) if mask[i]]
    batch.append([rows[i] for i in kept], [100 + i for i in kept])
    for i in range(first, len(rows)):
        single.append_one(rows[i], 100 + i)
    batch.append(rows[first:], [100 + i for i in range(first, len(rows))])
    n = len(batch)
    assert len(single) == n and single.ids.tolist() == batch.ids.tolist()
    assert single.keys == batch.keys
    for key in batch.keys:
        a, b = single._get(key), batch._get(key)
        assert a is not None and b is not None
        assert a.kinds[:n].tolist() == b.kinds[:n].tolist()
        assert a.numbers_of(n).tolist() == b.numbers_of(n).tolist()
        names_a, names_b = {c: t for t, c in a.strings.items()}, {c: t for t, c in b.strings.items()}
        assert [names_a.get(c) for c in a.codes_of(n).tolist()] == [names_b.get(c) for c in b.codes_of(n).tolist()]
    for spec in ({"a": {"$exists": True}}, {"b": {"$gte": 0}}, {"c": {"$in": ["x", None, True]}}, {"a": False},
                 {"$id": {"$gt": 104}}):
        assert compile_filter(spec).mask(single, strict=False).tolist() == compile_filter(spec).mask(batch, strict=False).tolist()


def test_strict_names_the_unknown_key_and_lenient_matches_as_absent() -> None:
    columns = _columns([{"category": "email"}, {"category": "asyncio"}])
    with pytest.raises(ValueError, match=r"no stored metadata has the key 'categroy' \(known keys: category\)"):
        compile_filter({"categroy": "email"}).mask(columns)
    assert compile_filter({"categroy": "email"}).mask(columns, strict=False).tolist() == [False, False]
    assert compile_filter({"category": {"$in": ["asyncio", "email"]}}).mask(columns).tolist() == [True, True]


def test_empty_filter_matches_every_row() -> None:
    assert compile_filter({}).mask(_columns([None, {"a": 1}])).tolist() == [True, True]
    assert isinstance(compile_filter({}), Filter)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"a": {"$regex": "x"}}, r"filter\['a'\]\['\$regex'\]: unknown operator '\$regex'"),
        ({"$nor": [{"a": 1}]}, r"filter\['\$nor'\]: unknown operator '\$nor'"),
        ({"category": ["asyncio", "email"]}, r"filter\['category'\]: expected a scalar .* got list; .*\$in"),
        ({"a": {"$in": "xy"}}, r"\$in expected a list of scalars, got str"),
        ({"a": {"$nin": [[1]]}}, r"\$nin expected a scalar"),
        ({"a": {"$gt": None}}, r"\$gt expected a number or a string, got None"),
        ({"a": {"$lte": True}}, r"\$lte expected a number or a string, got True"),
        ({"a": {"$gt": [1]}}, r"\$gt expected a scalar"),
        ({"a": {"$eq": {"b": 1}}}, r"\$eq expected a scalar"),
        ({"a": {"$exists": 1}}, r"\$exists expected True or False, got 1"),
        ({"a": {}}, r"filter\['a'\]: expected at least one operator"),
        ({"$and": []}, r"filter\['\$and'\]: expected a non-empty list"),
        ({"$or": {"a": 1}}, r"filter\['\$or'\]: expected a non-empty list"),
        ({"$or": [{"a": 1}, 3]}, r"filter\['\$or'\]\[1\]: expected a dict, got int"),
        ({"$not": [{"a": 1}]}, r"filter\['\$not'\]: expected a dict, got list"),
        ({"a": {"$eq": 2**60}}, r"beyond 2\*\*53"),
        ({"a": float("nan")}, r"expected a scalar"),
        ({"$id": "7"}, r"\$id is an integer id"),
        ({"$id": {"$in": [1, "7"]}}, r"\$id is an integer id"),
        ({1: "x"}, r"expected string keys, got 1"),
    ],
)
def test_malformed_filters_raise_naming_the_part(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_filter(spec)


def test_filter_that_is_not_a_dict() -> None:
    with pytest.raises(ValueError, match=r"filter: expected a dict, got list"):
        compile_filter([("a", 1)])  # type: ignore[arg-type]


def test_columns_reject_ids_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match=r"ids: expected 2 ids \(one per row\), got 1"):
        MetadataColumns().append([None, None], ids=[1])


def test_a_bool_column_is_one_byte_a_row_until_a_number_comes() -> None:
    rows: list[dict[str, Any] | None] = [{"flag": i % 3 == 0} for i in range(40)]
    columns = _columns(rows)
    bools = columns.nbytes  # per row of capacity: id 8 bytes, kind 1, bool 1
    assert bools % 10 == 0
    spec = {"$or": [{"flag": True}, {"flag": {"$gte": 0.5}}, {"flag": 1}]}
    assert compile_filter(spec).mask(columns).tolist() == [evaluate(spec, r or {}, 100 + i) for i, r in enumerate(rows)]
    columns.set(7, {"flag": 0.75})  # the column's first number: bools and numbers side by side
    rows[7] = {"flag": 0.75}
    for spec in ({"flag": True}, {"flag": {"$gte": 0.5}}, {"flag": {"$in": [False, 0.75]}}, {"flag": {"$lt": 1}}):
        assert compile_filter(spec).mask(columns).tolist() == [evaluate(spec, r or {}, 100 + i) for i, r in enumerate(rows)]
    assert columns.nbytes - bools == 7 * (bools // 10)  # float64 now: 8 bytes a row instead of 1

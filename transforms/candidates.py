"""Candidate rows of every detection, found in one pass over a batch.

Detection runs on every raw event, so this is the per-row cost of the pipeline's middle.
All enabled detections' ``kinds`` and ``where:`` blocks are evaluated together: a condition
that several detections share (``kind: ot``, ``dst_asset`` of a crane PLC, the engineering
hosts) is computed once per batch, and a detection stops at its first condition that no
row meets. What the batch alone decides needs no compute at all: a batch is a block of one
file, so it mostly holds one event kind and a detection of another kind costs nothing; a
condition on a column the batch leaves empty (or fills everywhere) is a constant.

Only the rows some detection keeps become Python dicts, taken from the batch once for all
detections; the timestamp column, the costliest to convert, goes through integer
arithmetic instead of pyarrow's per-value time-zone look-up.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Union

import pyarrow as pa
import pyarrow.compute as pc

#: A mask while it is evaluated: ``True`` (every row), ``False`` (no row) or a boolean array
#: without nulls (a null condition result counts as false, as in ``detections.api.where_mask``).
Mask = Union[bool, pa.Array, pa.ChunkedArray]

_STATIC_KIND = "kind"  # the column whose values the batch's kind set (below) answers

#: Per condition object of a detection's ``where:`` (alive as long as its Detector): its memo
#: key and its ``in`` lists as Arrow arrays. Every batch asks for them again, and a large
#: condition (a threat-intel address list) costs a repr and an array build each time.
_PREPARED: dict[tuple[int, str], tuple[Any, Any]] = {}


def _prepared(obj: Any, what: str, make: Any) -> Any:
    entry = _PREPARED.get((id(obj), what))
    if entry is None or entry[0] is not obj:
        if len(_PREPARED) > 10_000:  # a long-lived process (tests) builds many detectors
            _PREPARED.clear()
        entry = _PREPARED[(id(obj), what)] = (obj, make())  # holds obj: its id stays unique
    return entry[1]


class BatchMasks:
    """Condition masks of one batch, each computed at most once (shared by the detections)."""

    def __init__(self, table: pa.Table):
        self.table = table
        self.n = table.num_rows
        self._memo: dict[str, Mask] = {}
        self.cache: dict[str, Any] = {}  # for detections that compile their own masks (Sigma)
        kinds = pc.unique(table.column(_STATIC_KIND)).to_pylist() if self.n else []
        self.kinds: frozenset[Any] = frozenset(kinds)

    def detection(self, kinds: tuple[str, ...], where: dict[str, Any]) -> Mask:
        """The rows of one detection: one of its event kinds, and its ``where:`` block."""
        return self.block(where, self._term(_STATIC_KIND, {"in": list(kinds)}))

    def with_own(self, kinds: tuple[str, ...], own: Any) -> Mask:
        """The rows of a detection with its own mask function (``own(table, cache)``): one
        of its kinds, and what the function keeps (nulls count as false)."""
        mask = self.detection(kinds, {})
        return mask if mask is False else _and(mask, _clean(own(self.table, self.cache)))

    def block(self, where: dict[str, Any], mask: Mask = True) -> Mask:
        """All conditions of a block must hold (and ``mask``); stops at the first that
        leaves no row."""
        for fname, cond in where.items():
            if mask is False:
                break
            mask = _and(mask, self._term(fname, cond))
        return mask

    def _term(self, fname: str, cond: Any) -> Mask:
        key = _prepared(cond, fname, lambda: f"{fname}={cond!r}") if isinstance(cond, (dict, list)) \
            else f"{fname}={cond!r}"
        if key not in self._memo:
            if fname == "any":  # a list of blocks, at least one must hold
                m: Mask = False
                for block in cond:
                    m = _or(m, self.block(block))
                    if m is True:
                        break
            elif fname == "not":
                m = _not(self.block(cond))
            else:
                m = self._condition(fname, cond)
            self._memo[key] = m
        return self._memo[key]

    def _condition(self, fname: str, cond: Any) -> Mask:
        if not isinstance(cond, dict):
            cond = {"equals": cond}
        out: Mask = True
        for op, arg in cond.items():
            out = _and(out, self._op(fname, op, arg))
            if out is False:
                break
        return out

    def _op(self, fname: str, op: str, arg: Any) -> Mask:
        """One operator of ``detections.api._condition``, with the answers the batch gives
        for free: the batch's kinds for ``kind``, an empty or a full column, an empty list."""
        col = self.table.column(fname)
        nulls = col.null_count
        if op == "exists":
            if nulls == 0 or nulls == self.n:
                return (nulls == 0) == bool(arg)
            return _clean(pc.is_valid(col) if arg else pc.is_null(col))
        if nulls == self.n and not (op == "in" and None in arg):
            return False  # a comparison with null is null: false
        if op in ("equals", "in") and fname == _STATIC_KIND and None not in self.kinds:
            wanted = {arg} if op == "equals" else set(arg)
            if self.kinds <= wanted:
                return True
            if not self.kinds & wanted:
                return False
        if op == "equals":
            return _clean(pc.equal(col, pa.scalar(arg, type=col.type)))
        if op == "in":
            if not arg:
                return False
            values = _prepared(arg, str(col.type), lambda: pa.array(arg, type=col.type)) \
                if isinstance(arg, list) else pa.array(arg, type=col.type)
            return _clean(pc.is_in(col, value_set=values))
        if op == "prefix":
            prefixes = arg if isinstance(arg, list) else [arg]
            m: Mask = False
            for p in prefixes:
                m = _or(m, _clean(pc.starts_with(col, p)))
            return m
        if op == "gte":
            return _clean(pc.greater_equal(col, pa.scalar(arg).cast(col.type)))
        if op == "lte":
            return _clean(pc.less_equal(col, pa.scalar(arg).cast(col.type)))
        raise ValueError(f"unknown condition {op!r}")  # validated at load time


def _clean(m: Any) -> Mask:
    """A compute result as a mask: nulls count as false."""
    return pc.fill_null(m, False) if m.null_count else m


def _and(a: Mask, b: Mask) -> Mask:
    if a is False or b is False:
        return False
    if a is True:
        return b
    if b is True:
        return a
    m = pc.and_(a, b)
    return m if pc.any(m).as_py() else False


def _or(a: Mask, b: Mask) -> Mask:
    if a is True or b is True:
        return True
    if a is False:
        return b
    if b is False:
        return a
    return pc.or_(a, b)


def _not(m: Mask) -> Mask:
    if isinstance(m, bool):
        return not m
    inv = pc.invert(m)
    return inv if pc.any(inv).as_py() else False


def row_indices(n: int, mask: Mask) -> pa.Array:
    """Row numbers a mask keeps, ascending (the order ``Table.filter`` keeps them in)."""
    if mask is False:
        return pa.array([], pa.uint64())
    if mask is True:
        import numpy as np

        return pa.array(np.arange(n, dtype=np.uint64))
    return _flat(pc.indices_nonzero(mask))


def first_per_distinct_indices(table: pa.Table, fields: tuple[str, ...], idx: pa.Array) -> pa.Array:
    """Of the rows ``idx``, the earliest (in event time) of each distinct ``fields`` tuple,
    touching only the key columns: a first-seen detection needs one row per batch, however
    many repeats the batch holds. In the order ``detect.first_per_distinct`` takes them."""
    keys = table.select(["time", *fields]).take(idx)
    order = pc.sort_indices(keys, sort_keys=[("time", "ascending")])
    keys, idx = keys.take(order), pc.take(idx, order)
    key = pc.binary_join_element_wise(
        *[pc.fill_null(pc.cast(keys.column(f), pa.string()), "") for f in fields], "\x1f"
    )
    firsts = pc.index_in(pc.unique(key), value_set=key)
    return _flat(pc.take(idx, firsts))


def _flat(a: Any) -> pa.Array:
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def take_rows(table: pa.Table, wanted: list[pa.Array]) -> list[list[dict[str, Any]]]:
    """The rows of each index array as event dicts (``Table.to_pylist`` values, ``attrs`` as
    a dict). Rows several lists share are converted once; each list still gets dicts of its
    own (a detection may not see another's changes)."""
    if not wanted:
        return []
    union = pc.unique(pa.concat_arrays([a.cast(pa.uint64()) for a in wanted]))
    union = pc.take(union, pc.sort_indices(union))
    rows = to_pylist(table.take(union), attrs_as_dict=True)
    pos = {i: p for p, i in enumerate(union.to_pylist())}
    used = [False] * len(rows)
    out = []
    for a in wanted:
        events = []
        for i in a.to_pylist():
            p = pos[i]
            if used[p]:
                events.append(_copy(rows[p]))
            else:
                used[p] = True
                events.append(rows[p])
        out.append(events)
    return out


def _copy(event: dict[str, Any]) -> dict[str, Any]:
    out = dict(event)
    if isinstance(out.get("attrs"), dict):
        out["attrs"] = dict(out["attrs"])
    return out


def to_pylist(table: pa.Table, attrs_as_dict: bool = False) -> list[dict[str, Any]]:
    """``table.to_pylist()``, equal value for value, with UTC timestamps built from their
    integers (pyarrow looks the time zone up once per value, tens of µs each); with
    ``attrs_as_dict`` the ``attrs`` map as a dict (as a detection sees it)."""
    names = table.column_names
    cols = [_column(table.column(name)) for name in names]
    if attrs_as_dict and "attrs" in names:
        i = names.index("attrs")
        cols[i] = [None if v is None else dict(v) for v in cols[i]]
    return [dict(zip(names, values)) for values in zip(*cols)]


def _column(col: pa.ChunkedArray) -> list[Any]:
    n = len(col)
    if col.null_count == n:
        return [None] * n
    t = col.type
    if pa.types.is_timestamp(t) and t.unit == "us" and t.tz == "UTC":
        epoch, step = _epoch(t), dt.timedelta
        return [None if v is None else epoch + step(microseconds=v) for v in col.cast(pa.int64()).to_pylist()]
    return col.to_pylist()


_EPOCHS: dict[pa.DataType, dt.datetime] = {}


def _epoch(t: pa.DataType) -> dt.datetime:
    """1970-01-01 with the tzinfo object pyarrow itself gives values of this type."""
    if t not in _EPOCHS:
        _EPOCHS[t] = pa.scalar(0, type=t).as_py()
    return _EPOCHS[t]

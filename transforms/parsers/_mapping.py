"""Shared by the mapped formats (``csv_mapped``, ``jsonl_mapped``, ``parquet``): a source's
``mapping:`` block applied to a table of its columns, vectorized.

The block (pipelines/config.py ``SourceMapping``, docs/formats/mapped.md) names, for each
source field, the event field it fills; ``constants`` fill event fields with fixed values;
``time_format`` (strptime) and ``timezone`` say how to read the time.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import EVENT_SCHEMA, DeadLetter
from transforms.parsers import _common as c
from transforms.parsers._common import Reject

INT_FIELDS = {"src_port": ("port", 65535), "dst_port": ("port", 65535), "bytes_out": ("count", None),
              "bytes_in": ("count", None), "packets_out": ("count", None), "packets_in": ("count", None)}


@dataclass(frozen=True)
class Mapping:
    kind: str
    fields: tuple[tuple[str, str], ...]  # (source field, event field)
    constants: tuple[tuple[str, str], ...]
    time_format: str | None
    timezone: str | None
    delimiter: str
    columns: tuple[str, ...] | None

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(s for s, _ in self.fields)


@functools.lru_cache(maxsize=64)
def load(mapping_json: str | None) -> Mapping:
    if not mapping_json:
        raise Reject("no mapping block configured for this source")
    m = json.loads(mapping_json)
    return Mapping(m["kind"], tuple(m["fields"].items()), tuple((m.get("constants") or {}).items()),
                   m.get("time_format"), m.get("timezone"), m.get("delimiter") or ",",
                   tuple(m["columns"]) if m.get("columns") else None)


def _epoch_numbers(col: pa.Array) -> pa.Array:
    """Numeric epochs to µs, the unit told by magnitude (s < 1e11 ≤ ms < 1e14 ≤ µs < 1e17 ≤ ns)."""
    f = pc.cast(col, pa.float64(), safe=False)
    a = pc.abs(f)
    us = pc.if_else(pc.less(a, 1e11), pc.multiply(f, 1e6),
                    pc.if_else(pc.less(a, 1e14), pc.multiply(f, 1e3),
                               pc.if_else(pc.less(a, 1e17), f, pc.divide(f, 1e3))))
    sane = pc.and_(pc.greater_equal(us, 0.0), pc.less(us, float(c.MAX_US)))
    return pc.cast(pc.round(pc.if_else(sane, us, None)), pa.int64()).cast(c.TIME_TYPE)


def _time(col: pa.Array, name: str, m: Mapping, tz: str, chk: c.Checks) -> pa.Array:
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        us = _epoch_numbers(col)
        missing = c._np_mask(pc.is_null(us))
        chk.add(missing, lambda i: c.NO_TIME if col[i].as_py() is None
                else f"no usable timestamp: invalid {name} {col[i].as_py()!r}")
        return us
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            col = pc.assume_timezone(col, timezone=tz) if tz != "UTC" else col
        return c.to_time(col, name, chk)
    text = c.to_text(col, chk.n, None)
    if m.time_format:
        parsed = pc.strptime(text, format=m.time_format, unit="us", error_is_null=True)
        if parsed.type.tz is None:
            try:
                parsed = pc.assume_timezone(parsed, timezone=tz)
            except (pa.ArrowInvalid, ValueError):  # a nonexistent/ambiguous local time: row by row
                zone = c.tzinfo(tz)
                vals = [None if v is None else c.local_to_us(v, zone) for v in parsed.to_pylist()]
                parsed = pa.array(vals, pa.int64()).cast(c.TIME_TYPE)
        us = parsed.cast(c.TIME_TYPE)
        missing = c._np_mask(pc.is_null(us))
        chk.add(missing, lambda i: c.NO_TIME if text[i].as_py() in (None, "", "-")
                else f"no usable timestamp: {text[i].as_py()!r} does not match time_format {m.time_format!r}")
        return us
    return c.to_time_text(text, name, chk, tz)


def map_table(t: pa.Table, get, m: Mapping, ctx, fmt: str, raw: pa.Array, refs: pa.Array,
              line_numbers: np.ndarray, path: str) -> tuple[pa.Table, list[DeadLetter]]:
    """Event table from the source columns (``get(source_field)`` → array or None)."""
    n = len(raw)
    chk = c.Checks(n)
    tz = m.timezone or ctx.timezone
    columns: dict[str, pa.Array] = {}
    attrs: dict[str, pa.Array | None] = {}
    for source_field, target in m.fields:
        col = get(source_field)
        if target.startswith("attrs."):
            text = None if col is None else c.to_text(col, n, None)
            attrs[target[len("attrs."):]] = None if text is None else pc.if_else(pc.equal(text, ""), None, text)
            continue
        if col is None:
            col = pa.nulls(n, pa.string())
        try:
            columns[target] = _field(col, source_field, target, m, tz, chk)
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as e:
            # A column of a type this target cannot take (a struct where a port is
            # expected): each row holding a value is a dead letter naming the column.
            reason = f"unusable {source_field} ({col.type}) for {target}: {type(e).__name__}: {str(e)[:120]}"
            chk.add(c._np_mask(pc.is_valid(col)), lambda i, reason=reason: reason)
            if target == "time":
                chk.add(np.ones(n, dtype=bool), lambda i, reason=reason: reason)
            columns[target] = pa.nulls(n, EVENT_SCHEMA.field(target).type)
    for target, value in m.constants:
        columns[target] = c.const(value, n)
    columns.update({"source": c.const(ctx.source, n), "format": c.const(fmt, n), "kind": c.const(m.kind, n),
                    "raw": raw, "raw_ref": refs, "attrs": c.build_attrs(n, attrs)})
    return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, path, line_numbers)


def _field(col: pa.Array, source_field: str, target: str, m: Mapping, tz: str, chk: c.Checks) -> pa.Array:
    """One source column converted for its target event column (bad rows into ``chk``)."""
    if target == "time":
        return _time(col, source_field, m, tz, chk)
    if target in INT_FIELDS:
        what, hi = INT_FIELDS[target]
        to = pa.int32() if what == "port" else pa.int64()
        return c.to_int(_blank_to_null(col), source_field, chk, what, hi, to)
    if target == "duration":
        return c.to_float(_blank_to_null(col), source_field, chk)
    text = c.to_text(col, chk.n, None)
    return pc.if_else(pc.equal(text, ""), None, text)


def _blank_to_null(col: pa.Array) -> pa.Array:
    if pa.types.is_string(col.type):
        return pc.if_else(pc.equal(pc.utf8_trim_whitespace(col), ""), None, col)
    return col

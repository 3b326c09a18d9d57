"""Helpers shared by the parser modules: line bookkeeping, vectorized column checks, attrs.

Bulk formats are parsed a block at a time with Arrow, so the checks here work on whole
columns: an optimistic cast first (one C++ pass when the data is clean, the usual case),
and only when it fails a regex pass to find the bad rows, which become dead letters with
a reason naming the value and the field. Per-row Python runs only for those few rows.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import DeadLetter, conform
from transforms.read import Block

TIME_TYPE = pa.timestamp("us", tz="UTC")
ATTRS_TYPE = pa.map_(pa.string(), pa.string())
NO_TIME = "no usable timestamp (masked or missing ts)"
_MASKED = re.compile(r"^X+(\.X+)?$")
_EPOCH = re.compile(r"^\d{1,12}(\.\d{1,9})?$")


def decode(line: bytes) -> str:
    return line.decode("utf-8", "backslashreplace")


def dead(ctx_source: str, path: str, line_no: int, reason: str, raw: str | bytes) -> DeadLetter:
    text = decode(raw) if isinstance(raw, bytes) else raw
    return DeadLetter(ctx_source, f"{path}:{line_no}", reason, text)


def iter_records(block: Block, source: str, dead_letters: list[DeadLetter]) -> Iterator[tuple[int, str]]:
    """Yield ``(line_no, text)`` for each record line of a line-oriented (non-Zeek) format.

    Blank lines and ``###`` banners are not records; a line that is not UTF-8 is a record
    that is dead-lettered here, so callers only see text.
    """
    for i, line in enumerate(block.lines):
        if not line.strip() or line.startswith(b"###"):
            continue
        line_no = block.first_line + i
        try:
            yield line_no, line.decode("utf-8")
        except UnicodeDecodeError:
            dead_letters.append(dead(source, block.path, line_no, "not valid UTF-8", line))


def count_records(block: Block) -> int:
    return sum(1 for l in block.lines if l.strip() and not l.startswith(b"###"))


class Reject(ValueError):
    """A record that does not follow its format; the message is the dead-letter reason."""


def parse_lines(block: Block, source: str, to_row: Callable[[str, str], dict]) -> tuple[pa.Table, list[DeadLetter], int]:
    """Parse a line-oriented format one record at a time (small volumes: CMS, VPN).

    ``to_row(text, "path:line")`` returns an event row or raises ``Reject`` with the
    reason; either way the record is accounted for.
    """
    dead_letters: list[DeadLetter] = []
    rows: list[dict] = []
    for line_no, line in iter_records(block, source, dead_letters):
        ref = f"{block.path}:{line_no}"
        try:
            rows.append(to_row(line, ref))
        except Reject as e:
            dead_letters.append(DeadLetter(source, ref, str(e), line))
    dead_letters.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
    return rows_to_table(rows), dead_letters, count_records(block)


# --- time -------------------------------------------------------------------------------


MAX_US = 253_402_300_800_000_000  # 10000-01-01: beyond it a timestamp is garbage


def epoch_to_us(value: str | int | Decimal) -> int | None:
    """Exact epoch seconds (text or number, e.g. ``1379288667.706265``) to microseconds."""
    try:
        us = int((Decimal(value) * 1_000_000).to_integral_value(rounding="ROUND_FLOOR"))
    except (InvalidOperation, ValueError):
        return None
    return us if 0 <= us < MAX_US else None


def dt_to_us(t: dt.datetime) -> int:
    """Aware datetime to epoch microseconds (exact, no float)."""
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def iso_to_us(text: str, default_tz: dt.tzinfo | None = None) -> int | None:
    """RFC 3339 / ISO 8601 text to epoch microseconds; None when unparseable, or naive
    without ``default_tz``."""
    try:
        t = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if t.tzinfo is None:
        if default_tz is None:
            return None
        t = t.replace(tzinfo=default_tz)
    return dt_to_us(t)


# --- vectorized column checks -------------------------------------------------------------


@dataclass
class Checks:
    """Per-row failures of one batch; the first failing check of a row gives its reason."""

    n: int
    reasons: dict[int, str] = field(default_factory=dict)

    def add(self, bad: np.ndarray | None, reason: Callable[[int], str]) -> None:
        if bad is None or not bad.any():
            return
        for i in np.flatnonzero(bad):
            self.reasons.setdefault(int(i), reason(int(i)))

    def keep_mask(self) -> pa.Array | None:
        if not self.reasons:
            return None
        keep = np.ones(self.n, dtype=bool)
        keep[list(self.reasons)] = False
        return pa.array(keep)


def _np_mask(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _val(col: pa.Array, i: int) -> str:
    v = col[i].as_py()
    return v if isinstance(v, str) else repr(v)


def _cast_checked(col: pa.Array, to: pa.DataType, pattern: str) -> tuple[pa.Array, np.ndarray | None]:
    """Cast a string column; values not matching ``pattern`` become null and are flagged."""
    try:
        return pc.cast(col, to), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ok = pc.match_substring_regex(col, pattern)
        bad = _np_mask(pc.and_(pc.is_valid(col), pc.invert(ok)))
        return pc.cast(pc.if_else(ok, col, pa.scalar(None, col.type)), to), bad


def to_int(col: pa.Array | None, name: str, checks: Checks, what: str = "count",
           hi: int | None = None, to: pa.DataType = pa.int64()) -> pa.Array:
    """Integers (Zeek ``count``/``port``) from text or JSON numbers; bad ones flagged."""
    if col is None or pa.types.is_null(col.type):
        return pa.nulls(checks.n, to)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        vals, bad = _cast_checked(col, pa.int64(), r"^-?\d{1,18}$")
    elif pa.types.is_integer(col.type):
        vals, bad = col.cast(pa.int64()), None
    else:  # JSON floats or other: accept integral numbers only
        f = pc.cast(col, pa.float64(), safe=False)
        ok = pc.and_(pc.equal(pc.floor(f), f), pc.less(pc.abs(f), 2.0**62))
        bad = _np_mask(pc.and_(pc.is_valid(col), pc.invert(ok)))
        vals = pc.cast(pc.if_else(ok, f, None), pa.int64())
    out = pc.or_(pc.less(vals, 0), pc.greater(vals, hi)) if hi is not None else pc.less(vals, 0)
    rng = _np_mask(out)
    bad = rng if bad is None else (bad | rng)
    checks.add(bad, lambda i: f"invalid {what} {_val(col, i)!r} in {name}")
    return pc.if_else(pa.array(~bad), vals, None).cast(to) if bad.any() else vals.cast(to)


def to_float(col: pa.Array | None, name: str, checks: Checks) -> pa.Array:
    if col is None or pa.types.is_null(col.type):
        return pa.nulls(checks.n, pa.float64())
    if pa.types.is_string(col.type):
        vals, bad = _cast_checked(col, pa.float64(), r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
    else:
        vals, bad = pc.cast(col, pa.float64(), safe=False), None
    nonfinite = _np_mask(pc.invert(pc.is_finite(vals)))
    bad = nonfinite if bad is None else (bad | nonfinite)
    checks.add(bad, lambda i: f"invalid number {_val(col, i)!r} in {name}")
    return pc.if_else(pa.array(~bad), vals, None) if bad.any() else vals


def to_text(col: pa.Array | None, n: int, empty_field: str | None = "(empty)") -> pa.Array:
    """String column; Zeek's ``(empty)`` marker becomes the empty string."""
    if col is None or pa.types.is_null(col.type):
        return pa.nulls(n, pa.string())
    if pa.types.is_boolean(col.type):  # JSON true/false as Zeek TSV writes them
        return pc.if_else(col, "T", "F")
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):  # Zeek vector/set
        return pc.binary_join(pc.cast(col, pa.list_(pa.string())), ",")
    if not pa.types.is_string(col.type):
        return pc.cast(col, pa.string())
    if empty_field:
        return pc.if_else(pc.equal(col, empty_field), "", col)
    return col


def to_time(col: pa.Array | None, name: str, checks: Checks, required: bool = True) -> pa.Array:
    """Epoch seconds (text or number) or ISO 8601 text to UTC microseconds.

    Doubles are exact to the microsecond for epochs before 2106 (error < 0.5 µs), so the
    fast path casts; ISO 8601 text goes through the per-row parser. Values that are not a
    time from 1970 to 9999 become null (a dead letter when ``required``).
    """
    n = checks.n
    if col is None or pa.types.is_null(col.type):
        if required:
            checks.add(np.ones(n, dtype=bool), lambda i: NO_TIME)
        return pa.nulls(n, TIME_TYPE)
    if pa.types.is_timestamp(col.type):
        us = pc.cast(col, pa.timestamp("us")).cast(pa.int64())
    else:
        other = None
        if not pa.types.is_string(col.type):
            f = pc.cast(col, pa.float64(), safe=False)
        else:
            try:  # clean Zeek data: one cast, no regex
                f = pc.cast(col, pa.float64())
            except pa.ArrowInvalid:
                ok = pc.match_substring_regex(col, _EPOCH.pattern)
                f = pc.cast(pc.if_else(ok, col, None), pa.float64())
                other = _np_mask(pc.and_(pc.is_valid(col), pc.invert(ok)))
        # NaN, inf, negative or absurd values would not even cast to int64: null them.
        sane = pc.and_(pc.greater_equal(f, 0.0), pc.less(f, MAX_US / 1e6))
        us = pc.cast(pc.round(pc.multiply(pc.if_else(sane, f, None), 1e6)), pa.int64())
        if other is not None and other.any():  # ISO 8601 text, row by row
            repl = [iso_to_us(col[int(i)].as_py()) for i in np.flatnonzero(other)]
            us = pc.replace_with_mask(us, pa.array(other), pa.array(repl, pa.int64()))
    missing = _np_mask(pc.is_null(us))
    if required:
        checks.add(missing, lambda i: _time_reason(col[i].as_py()))
    return us.cast(TIME_TYPE)


def _time_reason(v: object) -> str:
    if v is None or v == "-" or (isinstance(v, str) and _MASKED.match(v)):
        return NO_TIME
    return f"no usable timestamp: invalid ts {v!r}"


# --- event columns ------------------------------------------------------------------------


def build_attrs(n: int, items: dict[str, pa.Array | None]) -> pa.Array:
    """A ``map<string,string>`` column from equal-length columns, dropping null values.

    Vectorized: interleave the columns row-major, drop nulls, derive the offsets.
    """
    cols = [(k, v if pa.types.is_string(v.type) else pc.cast(v, pa.string()))
            for k, v in items.items() if v is not None and v.null_count < len(v)]
    if not cols or n == 0:
        return pa.nulls(n, ATTRS_TYPE)
    k = len(cols)
    if k == 1:
        values = cols[0][1]
        names = pa.repeat(pa.scalar(cols[0][0]), n)
    else:
        order = pa.array((np.arange(k)[None, :] * n + np.arange(n)[:, None]).ravel())
        values = pa.concat_arrays([c for _, c in cols]).take(order)
        names = pa.array([name for name, _ in cols]).take(pa.array(np.tile(np.arange(k), n)))
    valid = values.is_valid()
    offsets = np.zeros(n + 1, dtype=np.int32)
    if values.null_count:
        per_row = _np_mask(valid).reshape(n, k).sum(axis=1)
        np.cumsum(per_row, out=offsets[1:])
        names, values = names.filter(valid), values.filter(valid)
    else:
        offsets[1:] = np.arange(1, n + 1) * k
    return pa.MapArray.from_arrays(pa.array(offsets), names, values)


def raw_refs(path: str, line_numbers: np.ndarray) -> pa.Array:
    nums = pc.cast(pa.array(line_numbers, pa.int64()), pa.string())
    return pc.binary_join_element_wise(f"{path}:", nums, "")


def const(value: str | None, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), n)


def finish(columns: dict[str, pa.Array], checks: Checks, lines_text: Callable[[int], str],
           source: str, path: str, line_numbers: np.ndarray) -> tuple[pa.Table, list[DeadLetter]]:
    """Build the event table and move the rows that failed a check to dead letters."""
    table = conform(columns, checks.n)
    keep = checks.keep_mask()
    if keep is None:
        return table, []
    dl = [dead(source, path, int(line_numbers[i]), reason, lines_text(i))
          for i, reason in sorted(checks.reasons.items())]
    return table.filter(keep), dl


# --- line-at-a-time formats (small volumes: CMS, VPN) --------------------------------------


def rows_to_table(rows: list[dict]) -> pa.Table:
    """Event table from per-row dicts (``time`` as epoch µs, ``attrs`` as a dict)."""
    n = len(rows)
    names = {k for r in rows for k in r}
    columns: dict[str, object] = {}
    for name in names:
        values = [r.get(name) for r in rows]
        if name == "time":
            columns[name] = pa.array(values, pa.int64()).cast(TIME_TYPE)
        elif name == "attrs":
            columns[name] = pa.array([list(v.items()) if v else None for v in values], ATTRS_TYPE)
        else:
            columns[name] = values
    return conform(columns, n)


def valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True

"""Helpers shared by the parser modules: line bookkeeping, vectorized column checks, attrs.

Bulk formats are parsed a block at a time with Arrow, so the checks here work on whole
columns: an optimistic cast first (one C++ pass when the data is clean, the usual case),
and only when it fails a regex pass to find the bad rows, which become dead letters with
a reason naming the value and the field. Per-row Python runs only for those few rows.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
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
_CSV_COLUMN = re.compile(r"In CSV column #(\d+): CSV conversion error")


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


# --- Zeek logs: TSV with # directives, or JSON lines ---------------------------------------


@dataclass
class ZeekState:
    """Per-file Zeek header state; a concatenated file may change it mid-way."""

    path: str
    default_fields: tuple[str, ...]  # for headerless (zeek-cut) TSV
    mode: str | None = None  # "tsv" | "json", fixed by the file's first record
    separator: str = "\t"
    empty_field: str = "(empty)"
    unset_field: str = "-"
    fields: tuple[str, ...] | None = None
    log_path: str | None = None  # from #path
    text_columns: set[str] = field(default_factory=set)  # failed typed conversion once


@dataclass
class ZeekBatch:
    """Rows of one header section of a block, as columns (text for TSV, typed for JSON)."""

    cols: dict[str, pa.Array]
    rows: np.ndarray  # block-relative line index of each row
    fields: tuple[str, ...]
    log_path: str | None
    empty_field: str | None


def _directive(state: ZeekState, text: str) -> None:
    if text.startswith("#separator "):
        value = text[len("#separator "):]
        try:  # written escaped: "\x09"
            state.separator = value.encode().decode("unicode_escape")
        except UnicodeDecodeError:  # unusable: its section's records say so
            state.separator = value
        return
    sep = state.separator or "\t"
    key, _, value = text.partition(sep)
    if key == "#fields":
        state.fields = tuple(value.split(sep))
    elif key == "#path":
        state.log_path = value
    elif key == "#empty_field":
        state.empty_field = value
    elif key == "#unset_field":
        state.unset_field = value


@dataclass
class _Reading:
    """One block being read: its lines as Arrow text plus what the readers report back."""

    block: Block
    source: str
    wanted: dict[str, pa.DataType]
    lines: pa.Array
    joined: bytes
    dl: list[DeadLetter] = field(default_factory=list)
    blank: int = 0  # whitespace-only lines found by a reader: not records

    def dead(self, i: int, reason: str) -> None:
        self.dl.append(dead(self.source, self.block.path, self.block.first_line + i, reason,
                            self.lines[i].as_py()))

    def data(self, idx: np.ndarray) -> bytes:
        """The selected lines joined by newlines (the whole block when all are selected)."""
        if len(idx) == len(self.lines):
            return self.joined
        sel = self.lines.take(pa.array(idx))
        one = pa.ListArray.from_arrays(pa.array([0, len(sel)], pa.int32()), sel)
        return pc.binary_join(one, "\n")[0].as_py().encode("utf-8")


def read_zeek_block(block: Block, state: ZeekState, source: str, wanted: dict[str, pa.DataType]
                    ) -> tuple[list[ZeekBatch], list[DeadLetter], int, pa.Array]:
    """Split a Zeek block into header sections and read each with Arrow.

    ``wanted`` maps the fields to read to the type TSV columns are first tried as (string
    for text); if a section does not convert, it is read again all as text and the
    parser's column checks find the bad rows.

    Returns the batches, the dead letters found while reading (bad UTF-8, wrong field
    count, bad JSON), the number of records, and the block's lines as a string array
    (for ``raw``). ``#`` lines and blank lines are not records.
    """
    n = len(block.lines)
    joined = b"\n".join(block.lines)
    bad = np.zeros(n, dtype=bool)
    fixed = block.lines
    if not joined.isascii():
        try:
            joined.decode("utf-8")
        except UnicodeDecodeError:
            fixed = list(block.lines)
            for i, line in enumerate(block.lines):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    bad[i], fixed[i] = True, decode(line).encode()
            joined = b"\n".join(fixed)
    lines = pa.array(fixed if bad.any() else block.lines, pa.binary()).view(pa.string())
    r = _Reading(block, source, wanted, lines, joined)
    hashes = _np_mask(pc.starts_with(lines, "#"))
    skip = hashes | _np_mask(pc.equal(pc.binary_length(lines), 0))
    for i in np.flatnonzero(bad & ~skip):
        r.dl.append(dead(source, block.path, block.first_line + int(i), "not valid UTF-8", block.lines[i]))
    if b"\r" in joined:  # Zeek escapes CR; a raw one would end an Arrow row early
        stray = _np_mask(pc.match_substring(lines, "\r")) & ~skip & ~bad
        for i in np.flatnonzero(stray):
            r.dead(int(i), "carriage return inside the record")
        bad |= stray
    exclude = skip | bad
    batches: list[ZeekBatch] = []
    start = 0
    for cut in [int(i) for i in np.flatnonzero(hashes)] + [n]:
        idx = np.arange(start, cut)[~exclude[start:cut]]
        if len(idx):
            if state.mode is None:
                state.mode = "json" if lines[int(idx[0])].as_py().lstrip().startswith("{") else "tsv"
            batch = (_read_json if state.mode == "json" else _read_tsv)(r, state, idx)
            if batch is not None:
                batches.append(batch)
        if cut < n:
            _directive(state, lines[cut].as_py())
        start = cut + 1
    return batches, r.dl, int(n - skip.sum()) - r.blank, lines


def _read_tsv(r: _Reading, state: ZeekState, idx: np.ndarray) -> ZeekBatch | None:
    """``pyarrow.csv`` on the section; rows with the wrong field count reach the handler."""
    import pyarrow.csv as pcsv

    fields = state.fields or state.default_fields
    sep = state.separator
    if len(sep) != 1:
        for i in idx:
            r.dead(int(i), f"unsupported Zeek separator {sep!r}")
        return None
    what = "tab" if sep == "\t" else repr(sep)
    rejected: list[tuple[int, int, str]] = []

    def handler(row: pcsv.InvalidRow) -> str:
        rejected.append((row.number, row.actual_columns, row.text))
        return "skip"

    data = r.data(idx)
    include = [f for f in r.wanted if f in fields] or [fields[0]]
    table, error = None, None
    while table is None:
        types = {f: pa.string() if f in state.text_columns else r.wanted.get(f, pa.string()) for f in include}
        rejected.clear()
        try:
            table = pcsv.read_csv(
                pa.BufferReader(data),
                read_options=pcsv.ReadOptions(column_names=list(fields), use_threads=False,
                                              block_size=len(data) + 1),
                parse_options=pcsv.ParseOptions(delimiter=sep, quote_char=False, escape_char=False,
                                                ignore_empty_lines=False, invalid_row_handler=handler),
                convert_options=pcsv.ConvertOptions(
                    column_types=types, include_columns=include, null_values=[state.unset_field],
                    strings_can_be_null=True, check_utf8=False),
            )
        except (pa.ArrowInvalid, ValueError) as e:
            # A value did not convert: read that column as text from now on (for the rest
            # of the file too) and let the parser's checks find the bad rows.
            error = e
            m = _CSV_COLUMN.match(str(e))
            col = fields[int(m.group(1))] if m and int(m.group(1)) < len(fields) else None
            if col in include and types[col] != pa.string():
                state.text_columns.add(col)
            elif all(t == pa.string() for t in types.values()):
                break
            else:
                state.text_columns.update(include)
    drop = [number - 1 for number, _, _ in rejected]
    if table is None or table.num_rows != len(idx) - len(drop):  # not expected: stay accounted
        for i in idx:
            r.dead(int(i), f"unreadable Zeek TSV section: {error if table is None else 'row count'}")
        return None
    for (number, actual, text) in rejected:
        if text.strip():
            r.dead(int(idx[number - 1]), f"expected {len(fields)} {what}-separated fields, got {actual}")
        else:
            r.blank += 1
    cols = {f: table.column(f).combine_chunks() for f in include if f in r.wanted}
    return ZeekBatch(cols, np.delete(idx, drop), tuple(fields), state.log_path, state.empty_field)


def _json_text(v: object) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "T" if v else "F"
    if isinstance(v, list):
        return ",".join(str(_json_text(x)) for x in v)
    return json.dumps(v, separators=(",", ":"))


def _read_json(r: _Reading, state: ZeekState, idx: np.ndarray) -> ZeekBatch | None:
    """Whole section through ``pyarrow.json``; per-line ``json.loads`` only when that fails."""
    import pyarrow.json as pj

    blank = _np_mask(pc.match_substring_regex(r.lines.take(pa.array(idx)), r"^\s*$"))
    r.blank += int(blank.sum())
    idx = idx[~blank]
    if not len(idx):
        return None
    data = r.data(idx)
    try:
        table = pj.read_json(pa.BufferReader(data),
                             read_options=pj.ReadOptions(use_threads=False, block_size=len(data) + 1))
        if table.num_rows != len(idx):
            raise pa.ArrowInvalid("row count mismatch")
        cols = {f: table.column(f).combine_chunks() for f in r.wanted if f in table.column_names}
        return ZeekBatch(cols, idx, tuple(table.column_names), state.log_path, None)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    good: list[int] = []
    objs: list[dict] = []
    for i in idx:
        text = r.lines[int(i)].as_py()
        try:
            obj = json.loads(text, parse_float=str, parse_int=str)
        except json.JSONDecodeError as e:
            r.dead(int(i), f"invalid JSON: {e.msg} at column {e.colno}")
            continue
        if isinstance(obj, dict):
            good.append(int(i))
            objs.append(obj)
        else:
            r.dead(int(i), f"not a JSON object ({type(obj).__name__})")
    if not good:
        return None
    keys = tuple(dict.fromkeys(k for o in objs for k in o))
    cols = {f: pa.array([_json_text(o.get(f)) for o in objs], pa.string()) for f in r.wanted if f in keys}
    return ZeekBatch(cols, np.array(good, dtype=np.int64), keys, state.log_path, None)


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

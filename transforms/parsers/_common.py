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

from transforms.model import EVENT_SCHEMA, DeadLetter, conform
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


def without_cr(block: Block, source: str, idx: np.ndarray, dead_letters: list[DeadLetter]) -> np.ndarray:
    """The selected lines minus those holding a carriage return before their end, which
    would end a row early for Arrow's CSV reader (dead-lettered here instead)."""
    bad = [int(i) for i in idx if b"\r" in block.lines[int(i)].rstrip(b"\r")]
    if not bad:
        return idx
    for i in bad:
        dead_letters.append(dead(source, block.path, block.first_line + i, "carriage return inside the record",
                                 block.lines[i]))
    return np.setdiff1d(idx, np.array(bad, dtype=idx.dtype))


def count_records(block: Block) -> int:
    return sum(1 for l in block.lines if l.strip() and not l.startswith(b"###"))


# Shared with every parser module through this one (``c.Reject``, ``c.json_object``).
from transforms.parsers._json import MAX_JSON_DEPTH, Reject, json_object, json_value  # noqa: E402,F401


def is_blank(lines: pa.Array) -> np.ndarray:
    """Lines that are empty or only ASCII whitespace (the read layer's blank lines)."""
    return _np_mask(pc.or_(pc.equal(pc.binary_length(lines), 0), pc.ascii_is_space(lines)))


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
    table = rows_to_table(rows, dead_letters)
    dead_letters.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
    return table, dead_letters, count_records(block)


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
        try:
            vals, bad = col.cast(pa.int64()), None
        except pa.ArrowInvalid:  # uint64 past int64
            over = pc.greater(col, pa.scalar(2**63 - 1, col.type))
            vals, bad = pc.if_else(over, None, col).cast(pa.int64()), _np_mask(over)
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
    if (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)) and not pa.types.is_nested(col.type.value_type):
        try:  # Zeek vector/set
            return pc.binary_join(pc.cast(col, pa.list_(pa.string())), ",")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    if pa.types.is_nested(col.type) or pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        return _as_text(col)
    if not pa.types.is_string(col.type):
        try:
            return pc.cast(col, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _as_text(col)
    if empty_field:
        return pc.if_else(pc.equal(col, empty_field), "", col)
    return col


def _as_text(col: pa.Array) -> pa.Array:
    """Any column as text, value by value (the rare nested or binary column): bytes
    decoded with escapes, structures as compact JSON."""
    def one(v: object) -> str | None:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, bytes):
            return decode(v)
        try:
            return json.dumps(v, separators=(",", ":"), default=str)
        except (RecursionError, ValueError):
            return "(value nested too deeply or too large to show)"
    return pa.array([one(v) for v in col.to_pylist()], pa.string())


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

    Vectorized: the kept (non-null) cells are found in a row-major validity matrix and
    taken from the columns once, with their names; offsets are the per-row counts.
    """
    cols = [(k, v if pa.types.is_string(v.type) else pc.cast(v, pa.string()))
            for k, v in items.items() if v is not None and v.null_count < len(v)]
    if not cols or n == 0:
        return pa.nulls(n, ATTRS_TYPE)
    k = len(cols)
    offsets = np.zeros(n + 1, dtype=np.int32)
    if k == 1:
        values = cols[0][1]
        names = pa.repeat(pa.scalar(cols[0][0]), n)
        if values.null_count:
            valid = values.is_valid()
            np.cumsum(_np_mask(valid), out=offsets[1:])
            names, values = names.filter(valid), values.filter(valid)
        else:
            offsets[1:] = np.arange(1, n + 1)
        return pa.MapArray.from_arrays(pa.array(offsets), names, values)
    valid = np.empty((n, k), dtype=bool)
    for j, (_, v) in enumerate(cols):
        valid[:, j] = True if v.null_count == 0 else _np_mask(v.is_valid())
    row, which = np.divmod(np.flatnonzero(valid.ravel()), k)
    values = pa.concat_arrays([v for _, v in cols]).take(pa.array(which * n + row))
    names = pa.array([name for name, _ in cols], pa.string()).take(pa.array(which))
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    return pa.MapArray.from_arrays(pa.array(offsets), names, values)


def raw_refs(path: str, line_numbers: np.ndarray) -> pa.Array:
    nums = pc.cast(pa.array(line_numbers, pa.int64()), pa.string())
    return pc.binary_join_element_wise(f"{path}:", nums, "")


def join_text(*parts: pa.Array | str) -> pa.Array:
    """Concatenate text columns and literals row-wise; null when any column part is null."""
    return pc.binary_join_element_wise(*parts, "")


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


def rows_to_table(rows: list[dict], dead_letters: list[DeadLetter] | None = None) -> pa.Table:
    """Event table from per-row dicts (``time`` as epoch µs, ``attrs`` as a dict); keys a
    row lacks are null (an empty ``attrs`` too). Arrow converts the whole list in C++
    against the event schema.

    A value the schema cannot hold (an integer past int64, say) fails the whole list; with
    ``dead_letters`` given, the rows are then converted one by one and each that still
    fails becomes a dead letter (by its ``raw_ref`` and ``raw``) instead."""
    for r in rows:
        if "attrs" in r and not r["attrs"]:
            r["attrs"] = None
    try:
        return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        if dead_letters is None:
            raise
    good = []
    for r in rows:
        try:
            pa.Table.from_pylist([r], schema=EVENT_SCHEMA)
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as e:
            ref = str(r.get("raw_ref") or "")
            path, _, line = ref.rpartition(":")
            dead_letters.append(DeadLetter(str(r.get("source")), ref, f"value out of range for the event model: {e}",
                                           str(r.get("raw") or "")))
            continue
        good.append(r)
    return pa.Table.from_pylist(good, schema=EVENT_SCHEMA)


def valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


# --- per-source time zones and text timestamps (line-at-a-time formats) -------------------

_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d\d):?(\d\d)$")
_CTIME = re.compile(r"^(?:[A-Z][a-z]{2} )?([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d(?:\.\d{1,6})?) (\d{4})$")
_SYSLOG = re.compile(r"^([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d(?:\.\d{1,6})?)$")
_MONTHS = {m: i + 1 for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))}


def tzinfo(name: str) -> dt.tzinfo:
    """An IANA zone name, ``UTC`` or a fixed offset (``+0100``, ``-05:00``); ``ValueError``
    when unknown. Cached."""
    name = name.strip()
    tz = _TZ_CACHE.get(name)
    if tz is None:
        tz = _TZ_CACHE[name] = _tzinfo(name)
    return tz


_TZ_CACHE: dict[str, dt.tzinfo] = {}


def _tzinfo(name: str) -> dt.tzinfo:
    import zoneinfo

    if name in ("UTC", "Z", "GMT"):
        return dt.timezone.utc
    m = _OFFSET.match(name)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        return dt.timezone(sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


#: Integer epoch digit counts → divisor to microseconds (negative: multiplier).
_EPOCH_SCALE = {9: -1_000_000, 10: -1_000_000, 12: -1000, 13: -1000, 15: 1, 16: 1, 18: 1000, 19: 1000}


def epoch_digits_to_us(text: str) -> int | None:
    """Epoch text: an integer in seconds, ms, µs or ns told apart by digit count
    (9-10 / 12-13 / 15-16 / 18-19 digits, i.e. 2001 to 2286), or decimal seconds."""
    text = text.strip()
    if text.isdecimal():
        scale = _EPOCH_SCALE.get(len(text))
        if scale is None:
            return None
        return int(text) * -scale if scale < 0 else int(text) // scale
    return epoch_to_us(text) if _EPOCH.match(text) else None


def local_to_us(t: dt.datetime, tz: dt.tzinfo) -> int:
    """A naive wall-clock time in ``tz`` (a per-source setting) to epoch µs."""
    return dt_to_us(t.replace(tzinfo=tz) if t.tzinfo is None else t)


def ctime_to_us(text: str, tz: dt.tzinfo) -> int | None:
    """C ``ctime()`` text (``Thu Jun 18 04:23:03 2015``, day space-padded) in ``tz``."""
    m = _CTIME.match(text.strip())
    if not m or m.group(1) not in _MONTHS:
        return None
    try:
        t = dt.datetime.strptime(f"{m.group(4)}-{_MONTHS[m.group(1)]}-{m.group(2)} {m.group(3)}",
                                 "%Y-%m-%d %H:%M:%S" + (".%f" if "." in m.group(3) else ""))
    except ValueError:
        return None
    return local_to_us(t, tz)


def syslog_to_us(text: str, tz: dt.tzinfo, year: int) -> int | None:
    """RFC 3164 syslog time (``Nov 20 08:15:02``, no year) in ``tz`` and the given year."""
    m = _SYSLOG.match(text.strip())
    if not m or m.group(1) not in _MONTHS:
        return None
    try:
        t = dt.datetime.strptime(f"{year}-{_MONTHS[m.group(1)]}-{m.group(2)} {m.group(3)}",
                                 "%Y-%m-%d %H:%M:%S" + (".%f" if "." in m.group(3) else ""))
    except ValueError:
        return None
    return local_to_us(t, tz)


def text_time_to_us(text: str, tz: dt.tzinfo) -> int | None:
    """Any of: epoch s/ms/µs/ns, RFC 3339 / ISO 8601 (naive ones in ``tz``, ``T`` or space
    between date and time, ``YYYY/MM/DD`` dates), or ctime text. None when unparseable."""
    text = text.strip()
    if not text:
        return None
    if text[0].isdecimal() and (text.isdecimal() or _EPOCH.match(text)):
        return epoch_digits_to_us(text)
    if len(text) >= 10 and text[4] == "/" and text[7] == "/":
        text = text[:4] + "-" + text[5:7] + "-" + text[8:]
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    us = iso_to_us(text, tz)
    if us is None:
        us = ctime_to_us(text, tz)
    return us


# --- addresses ----------------------------------------------------------------------------

_PROTO_PREFIX = re.compile(r"^(?:udp|tcp)[46]?(?:-server|-client)?:", re.I)


def split_host_port(text: str) -> tuple[str, int | None] | None:
    """``1.2.3.4:51234``, ``1.2.3.4``, ``[2001:db8::1]:443``, ``2001:db8::1``, OpenVPN's
    ``[AF_INET]1.2.3.4:51234`` / ``[AF_INET6]2001:db8::1:1194`` / ``udp4:1.2.3.4:1194`` →
    (address, port or None); None when it is not an address."""
    text = _PROTO_PREFIX.sub("", text.strip(), count=1)
    family = None
    if text.startswith("[AF_INET6]"):
        family, text = 6, text[len("[AF_INET6]"):]
    elif text.startswith("[AF_INET]"):
        family, text = 4, text[len("[AF_INET]"):]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            return None
    elif valid_ip(text) and not (family == 6 and text.count(":") >= 2 and _v6_with_port(text)):
        return text, None
    else:
        host, _, port = text.rpartition(":")
    if not host or not valid_ip(host):
        return None
    if port is None:
        return host, None
    if not port.isdecimal() or len(port) > 5 or int(port) > 65535:
        return None
    return host, int(port)


def _v6_with_port(text: str) -> bool:
    """OpenVPN writes ``[AF_INET6]addr:port`` without brackets: with 8 groups, or a ``::``
    and a trailing group, the last group is the port when the rest is still an address."""
    host, _, port = text.rpartition(":")
    return port.isdecimal() and len(port) <= 5 and "::" in text and valid_ip(host) and not host.endswith(":")


def file_mtime(path: str) -> dt.datetime | None:
    """The file's modification time (UTC), the reference for syslog times without a year."""
    import os

    try:
        return dt.datetime.fromtimestamp(os.stat(path).st_mtime, dt.timezone.utc)
    except OSError:
        return None


def syslog_year_to_us(text: str, tz: dt.tzinfo, reference: dt.datetime | None) -> int | None:
    """RFC 3164 time without a year: the year that puts it at most a day after
    ``reference`` (the file's mtime: a log is written before it is last modified), so a
    December line in a file closed in January falls in the previous year."""
    if reference is None:
        return None
    year = reference.year
    us = syslog_to_us(text, tz, year)
    if us is not None and us > dt_to_us(reference) + 86_400_000_000:
        us = syslog_to_us(text, tz, year - 1)
    return us


def to_time_text(col: pa.Array | None, name: str, checks: Checks, tz: str = "UTC",
                 required: bool = True) -> pa.Array:
    """Time column of RFC 3339 / ISO 8601 text (Suricata's ``+0100`` offsets too; naive
    values in the source's ``tz``) or epoch numbers, to UTC microseconds.

    One Arrow cast when every value has an offset (the usual case), one cast plus
    ``assume_timezone`` when none has; mixed or odd values go row by row."""
    n = checks.n
    if col is None or pa.types.is_null(col.type) or not pa.types.is_string(col.type):
        return to_time(col, name, checks, required)
    us = None
    try:
        us = pc.cast(col, TIME_TYPE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        try:
            us = pc.assume_timezone(pc.cast(col, pa.timestamp("us")), timezone=tz).cast(TIME_TYPE)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            pass
    if us is None:
        try:
            zone = tzinfo(tz)
        except ValueError:
            checks.add(np.ones(n, dtype=bool), lambda i: f"no usable timestamp: unknown time zone {tz!r}")
            return pa.nulls(n, TIME_TYPE)
        vals = [None if v is None else text_time_to_us(v, zone) for v in col.to_pylist()]
        us = pa.array(vals, pa.int64()).cast(TIME_TYPE)
    if required:
        missing = _np_mask(pc.is_null(us))
        checks.add(missing, lambda i: NO_TIME if col[i].as_py() in (None, "", "-")
                   else f"no usable timestamp: invalid {name} {col[i].as_py()!r}")
    return us


#: IANA protocol numbers → the names Zeek and the event model use.
IP_PROTOCOLS = {"1": "icmp", "2": "igmp", "6": "tcp", "17": "udp", "41": "ipv6", "47": "gre", "50": "esp",
                "51": "ah", "58": "icmp6", "89": "ospf", "132": "sctp"}


def proto_names(col: pa.Array) -> pa.Array:
    """Protocol column as lower-case names: numbers through ``IP_PROTOCOLS`` (unknown
    numbers stay numbers), names (``TCP``, ``ICMP6``) lower-cased and trimmed."""
    text = pc.utf8_lower(pc.utf8_trim_whitespace(col if pa.types.is_string(col.type) else pc.cast(col, pa.string())))
    keys = pa.array(list(IP_PROTOCOLS), pa.string())
    named = pa.array(list(IP_PROTOCOLS.values()), pa.string()).take(pc.index_in(text, value_set=keys))
    return pc.coalesce(named, text)

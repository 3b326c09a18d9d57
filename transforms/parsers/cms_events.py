"""Crane management system (CMS) event log, JSON lines → ``ot`` events.

The schema is cranewatch's own (docs/formats/cms-events.md); this module implements it
exactly. Values are kept as the exact text the CMS wrote (``1.50`` stays ``1.50``, unknown
keys keep their JSON), and ``old_value`` may be a string on one line and a number on the
next. So a block is read with ``pyarrow.json`` with every known key as text (the usual
case: all values are strings) and mapped with Arrow compute; the rows Arrow cannot read
that way (a number, an object, a second unknown key whose order matters, anything odd)
go through ``to_event`` line by line, the reference for every value and reason.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import DeadLetter, empty_events
from transforms.parsers import _common as c
from transforms.parsers._buffers import take_rows
from transforms.parsers._common import Reject
from transforms.parsers._json_rows import read_rows, suspect_rows
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block

EVENT_TYPES = frozenset({
    "login", "logout", "mode_change", "program_download", "program_upload",
    "firmware_update", "parameter_change", "alarm", "estop", "remote_command",
})
KNOWN_KEYS = frozenset({
    "time", "crane_id", "controller", "event_type", "user", "source_ip", "parameter",
    "old_value", "new_value", "result", "message",
})


def text(value: Any) -> str | None:
    """A JSON value as text: strings as-is, numbers exactly as written, others as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def parse_time(value: Any) -> int:
    """``time``: RFC 3339 text with an offset, or epoch seconds as a JSON number."""
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        us = c.epoch_to_us(value)
        if us is None:
            raise Reject(f"no usable timestamp: epoch time {value} out of range")
        return us
    if not isinstance(value, str):
        raise Reject(f"no usable timestamp: time must be RFC 3339 text or epoch seconds, got {text(value)}")
    try:
        t = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise Reject(f"no usable timestamp: unparseable time {value!r}") from None
    if t.tzinfo is None:
        raise Reject(f"no usable timestamp: time {value!r} has no UTC offset")
    return c.dt_to_us(t)


def _required(obj: dict, key: str) -> str:
    value = obj.get(key)
    if value is None or value == "":
        raise Reject(f"missing required key '{key}'")
    if not isinstance(value, str):
        raise Reject(f"invalid {key} {text(value)}: expected a string")
    return value


def to_event(obj: Any, source: str, ref: str, raw: str) -> dict:
    """One decoded CMS record → event row (``time`` in µs); raises ``Reject``."""
    if not isinstance(obj, dict):
        raise Reject(f"not a JSON object ({type(obj).__name__})")
    for key in ("time", "crane_id", "event_type"):
        if key not in obj or obj[key] is None:
            raise Reject(f"missing required key '{key}'")
    crane_id = _required(obj, "crane_id")
    event_type = obj["event_type"]
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise Reject(f"unknown event_type {text(event_type)!r}")
    time_us = parse_time(obj["time"])
    source_ip = text(obj.get("source_ip"))
    if source_ip is not None and not c.valid_ip(source_ip):
        raise Reject(f"invalid source_ip {source_ip!r}: expected an IP address")
    controller = text(obj.get("controller")) or None
    attrs = {"crane_id": crane_id, "controller": controller, "message": text(obj.get("message"))}
    attrs.update({k: text(v) for k, v in obj.items() if k not in KNOWN_KEYS})
    return {
        "time": time_us,
        "source": source,
        "format": "cms_events",
        "kind": "ot",
        "src_ip": source_ip,
        "asset_id": controller or crane_id,
        "action": f"cms.{event_type}",
        "user": text(obj.get("user")),
        "target": text(obj.get("parameter")) or controller,
        "value_old": text(obj.get("old_value")),
        "value_new": text(obj.get("new_value")),
        "result": text(obj.get("result")) or "success",
        "raw_ref": ref,
        "raw": raw,
        "attrs": {k: v for k, v in attrs.items() if v is not None},
    }


# One decoder for all lines (json.loads with options builds a new one per call); numbers
# stay Decimal so a value is kept as the exact text the CMS wrote.
_DECODER = json.JSONDecoder(parse_float=Decimal)


#: Every known key as text: a line where one is not a string is read by ``to_event``.
TEXT_SCHEMA = pa.schema([(k, pa.string()) for k in sorted(KNOWN_KEYS)])
#: RFC 3339 times that Arrow's cast and ``datetime.fromisoformat`` read alike.
_RFC3339 = (r"^\d{4}-\d\d-\d\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
            r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$")
_EVENT_TYPES = pa.array(sorted(EVENT_TYPES), pa.string())


def _blank(col: pa.Array) -> pa.Array:
    """``text(v) or None`` for a text column: the empty string becomes null."""
    return pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)


def _times(col: pa.Array, chk: c.Checks) -> pa.Array:
    """``parse_time`` on a text column: one Arrow cast for plain RFC 3339 values, the
    others (and all, if the cast fails) through ``parse_time`` itself."""
    n = len(col)
    plain = c._np_mask(pc.match_substring_regex(col, _RFC3339))
    us = pa.nulls(n, pa.int64())
    if plain.any():
        try:
            us = pc.cast(pc.if_else(pa.array(plain), col, None), c.TIME_TYPE).cast(pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            plain[:] = False
    other = np.flatnonzero(~plain & c._np_mask(col.is_valid()))
    if len(other):
        vals: list[int | None] = []
        for i in other:
            try:
                vals.append(parse_time(col[int(i)].as_py()))
            except Reject as e:
                vals.append(None)
                chk.reasons.setdefault(int(i), str(e))
        mask = np.zeros(n, dtype=bool)
        mask[other] = True
        us = pc.replace_with_mask(us, pa.array(mask), pa.array(vals, pa.int64()))
    return us.cast(c.TIME_TYPE)


def _part_events(t: pa.Table, rows: np.ndarray, lines: pa.Array, block: Block, ctx: ParseContext
                 ) -> tuple[pa.Table, list[DeadLetter], np.ndarray, np.ndarray]:
    """One part read by Arrow → (events, dead letters, rows of the events, rows left to
    ``to_event``): a row holding an unknown key that is not text, or two unknown keys
    (their order in ``attrs`` is the line's), is left."""
    n = t.num_rows
    col = lambda k: t.column(k).combine_chunks()  # noqa: E731
    extras: dict[str, pa.Array] = {}
    left = np.zeros(n, dtype=bool)
    per_row = np.zeros(n, dtype=np.int64)
    for name in t.column_names:
        if name in KNOWN_KEYS:
            continue
        values = col(name)
        if pa.types.is_null(values.type):
            continue  # present only as null: dropped from attrs, as text(None) is
        valid = c._np_mask(values.is_valid())
        if not pa.types.is_string(values.type):
            left |= valid
        else:
            extras[name] = values
            per_row += valid
    left |= per_row > 1
    if left.any():
        keep = pa.array(~left)
        t, extras = t.filter(keep), {k: v.filter(keep) for k, v in extras.items()}
        rows_left, rows = rows[left], rows[~left]
        n = t.num_rows
    else:
        rows_left = rows[:0]
    chk = c.Checks(n)
    for key in ("time", "crane_id", "event_type"):
        chk.add(c._np_mask(col(key).is_null()), lambda i, key=key: f"missing required key '{key}'")
    crane = col("crane_id")
    chk.add(c._np_mask(pc.equal(crane, "")), lambda i: "missing required key 'crane_id'")
    event_type = col("event_type")
    chk.add(c._np_mask(pc.invert(pc.is_in(event_type, value_set=_EVENT_TYPES))),
            lambda i: f"unknown event_type {event_type[i].as_py()!r}")
    time = _times(col("time"), chk) if n else pa.nulls(0, c.TIME_TYPE)
    source_ip = col("source_ip")
    bad_ips = [v for v in pc.unique(source_ip).to_pylist() if v is not None and not c.valid_ip(v)]
    if bad_ips:
        chk.add(c._np_mask(pc.is_in(source_ip, value_set=pa.array(bad_ips, pa.string()))),
                lambda i: f"invalid source_ip {source_ip[i].as_py()!r}: expected an IP address")
    controller = _blank(col("controller"))
    line_numbers = np.asarray(rows + block.first_line)
    raw = take_rows(lines, rows)
    columns = {
        "time": time,
        "source": c.const(ctx.source, n),
        "format": c.const("cms_events", n),
        "kind": c.const("ot", n),
        "src_ip": source_ip,
        "asset_id": pc.coalesce(controller, crane),
        "action": c.join_text("cms.", event_type),
        "user": col("user"),
        "target": pc.coalesce(_blank(col("parameter")), controller),
        "value_old": col("old_value"),
        "value_new": col("new_value"),
        "result": pc.coalesce(_blank(col("result")), pa.scalar("success")),
        "raw_ref": c.raw_refs(block.path, line_numbers),
        "raw": raw,
        "attrs": c.build_attrs(n, {"crane_id": crane, "controller": controller, "message": col("message"),
                                   **extras}),
    }
    table, dl = c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)
    kept = np.delete(rows, sorted(chk.reasons)) if chk.reasons else rows
    return table, dl, kept, rows_left


def _slow_rows(block: Block, lines: pa.Array, idx: np.ndarray, ctx: ParseContext
               ) -> tuple[pa.Table, list[DeadLetter], np.ndarray]:
    """``to_event`` line by line (the reference), with the rows of the events."""
    rows, kept, dl = [], [], []
    for i in idx:
        text_ = lines[int(i)].as_py()
        ref = f"{block.path}:{block.first_line + int(i)}"
        try:
            rows.append(to_event(c.json_value(text_, _DECODER.decode), ctx.source, ref, text_))
            kept.append(int(i))
        except Reject as e:
            dl.append(DeadLetter(ctx.source, ref, str(e), text_))
    before = len(dl)
    table = c.rows_to_table(rows, dl)
    if len(dl) > before:  # rows the event model could not hold: find them by raw_ref
        gone = {d.location for d in dl[before:]}
        kept = [k for k, r in zip(kept, rows) if r["raw_ref"] not in gone]
    return table, dl, np.array(kept, dtype=np.int64)


def parse_block_arrow(block: Block, ctx: ParseContext) -> ParseResult:
    """A block through ``pyarrow.json`` and Arrow compute; the rows Arrow cannot read as
    the format's text go through ``to_event`` (same events, same dead letters)."""
    lines = block.binary.view(pa.string())
    if not block.buffer.isascii():
        try:
            lines.validate(full=True)
        except pa.ArrowInvalid:  # bad UTF-8: the per-line path says which lines
            return ParseResult(*c.parse_lines(block, ctx.source, _to_row(ctx)))
    skip = c.is_blank(lines) | c._np_mask(pc.starts_with(lines, "###"))
    idx = np.flatnonzero(~skip)
    records = int(len(idx))
    suspect = suspect_rows(lines)[idx] if len(idx) else np.zeros(0, dtype=bool)
    parts, rest = read_rows(block, lines, idx[~suspect], TEXT_SCHEMA, "infer") if len(idx) else ([], idx)
    tables, dead_letters, order = [], [], []
    left = [rest, idx[suspect]]
    for rows, t in parts:
        table, dl, kept, rows_left = _part_events(t, rows, lines, block, ctx)
        tables.append(table)
        dead_letters += dl
        order.append(kept)
        left.append(rows_left)
    slow = np.sort(np.concatenate(left)).astype(np.int64)
    if len(slow):
        table, dl, kept = _slow_rows(block, lines, slow, ctx)
        tables.append(table)
        dead_letters += dl
        order.append(kept)
    events = pa.concat_tables(tables) if tables else empty_events()
    if len(tables) > 1:  # back in line order
        events = events.take(pa.array(np.argsort(np.concatenate(order), kind="stable")))
    dead_letters.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
    return ParseResult(events, dead_letters, records)


def _to_row(ctx: ParseContext):  # type: ignore[no-untyped-def]
    def to_row(line: str, ref: str) -> dict:
        return to_event(c.json_value(line, _DECODER.decode), ctx.source, ref, line)
    return to_row


class CmsEventsParser:
    name = "cms_events"
    kind = "ot"
    description = "Crane management system events, cranewatch JSON-lines schema (docs/formats/cms-events.md)"

    def new_file_state(self, path: str) -> None:
        return None

    def parse_block(self, block: Block, state: None, ctx: ParseContext) -> ParseResult:
        return parse_block_arrow(block, ctx)

    def parse_block_lines(self, block: Block, state: None, ctx: ParseContext) -> ParseResult:
        """The per-line reference path (``to_event`` on every line): tests compare."""
        return ParseResult(*c.parse_lines(block, ctx.source, _to_row(ctx)))


PARSER = CmsEventsParser()

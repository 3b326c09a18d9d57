"""Reading JSON-lines formats a block at a time into typed Arrow columns.

Shared by the JSON-lines parsers (Suricata EVE, Windows Security, remote-access JSON lines,
mapped JSON lines). The whole block goes through ``pyarrow.json`` with an explicit schema
of just the fields the format uses (others are ignored, at any depth), so clean data costs
one C++ pass. The lines Arrow rejects (not JSON, a field of another type; ``_json_rows``
finds them) are read line by line with ``json.loads`` and each wanted field is checked
against its type: the bad lines become dead letters naming the reason, the rest still
parse.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import DeadLetter
from transforms.parsers._buffers import block_text, has_cr, take_rows
from transforms.parsers._common import Reject, _np_mask, dead, decode, is_blank, json_object
from transforms.parsers._json_rows import read_rows, suspect_rows
from transforms.read import Block


@dataclass
class JsonBlock:
    """The readable records of one block: a table of the schema's fields, the block-relative
    index of each row, and the block's lines as text (for ``raw``)."""

    table: pa.Table
    rows: np.ndarray
    lines: pa.Array
    dead_letters: list[DeadLetter] = field(default_factory=list)
    records: int = 0

    def raw(self) -> pa.Array:
        return take_rows(self.lines, self.rows)

    def line_numbers(self, block: Block) -> np.ndarray:
        return np.asarray(self.rows + block.first_line)


def read_jsonl_block(block: Block, source: str, schema: pa.Schema, infer: bool = False) -> JsonBlock:
    """``infer``: let ``pyarrow.json`` infer the types (any JSON types in the wanted fields;
    the caller finds its fields with ``column``) for the whole block, or read it line by
    line when that fails; the line-by-line fallback still reads ``schema``. Otherwise rows
    are read with ``schema`` and only the rows Arrow rejects go line by line
    (``_json_rows``)."""
    n = block.count
    lines = block.binary.view(pa.string())
    bad = np.zeros(n, dtype=bool)
    if not block.buffer.isascii():
        try:
            lines.validate(full=True)  # UTF-8 checked in C++
        except pa.ArrowInvalid:
            texts: list[str] = []
            for i, line in enumerate(block.lines):
                try:
                    texts.append(line.decode("utf-8"))
                except UnicodeDecodeError:
                    bad[i] = True
                    texts.append(decode(line))
            lines = pa.array(texts, pa.string())
    skip = is_blank(lines) | _np_mask(pc.starts_with(lines, "###"))
    dl = [dead(source, block.path, block.first_line + int(i), "not valid UTF-8", block.line(int(i)))
          for i in np.flatnonzero(bad & ~skip)]
    idx = np.flatnonzero(~skip & ~bad)
    records = int((~skip).sum())
    if not len(idx):
        return JsonBlock(schema.empty_table(), idx, lines, dl, records)
    if infer:
        table = _fast(block_text(block, lines, idx, as_read=False), idx)
        if table is None:
            table, idx, more = _slow(block, source, lines, idx, schema)
            dl += more
            dl.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
        return JsonBlock(table, idx, lines, dl, records)
    suspect = suspect_rows(lines)[idx]
    parts, rest = read_rows(block, lines, idx[~suspect], schema)
    rest = np.union1d(rest, idx[suspect]).astype(np.int64)
    parts = [(rows, t.select(schema.names).cast(schema)) for rows, t in parts]
    if len(rest):
        table, good, more = _slow(block, source, lines, rest, schema)
        parts.append((good, table))
        dl += more
        dl.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
    rows = np.concatenate([r for r, _ in parts]) if parts else np.zeros(0, np.int64)
    table = pa.concat_tables([t for _, t in parts]) if parts else schema.empty_table()
    if len(parts) > 1:  # back in line order
        order = np.argsort(rows, kind="stable")
        rows, table = rows[order], table.take(pa.array(order))
    return JsonBlock(table, rows.astype(np.int64), lines, dl, records)


def _fast(data: pa.Buffer, idx: np.ndarray) -> pa.Table | None:
    """The selected lines (``data``) in one ``pyarrow.json`` pass, types inferred."""
    import pyarrow.json as pj

    if has_cr(data):
        return None  # a raw CR would split a row for Arrow: let the slow path judge it
    try:
        table = pj.read_json(pa.BufferReader(data),
                             read_options=pj.ReadOptions(use_threads=False, block_size=data.size + 1))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return table if table.num_rows == len(idx) else None


def _slow(block: Block, source: str, lines: pa.Array, idx: np.ndarray, schema: pa.Schema
          ) -> tuple[pa.Table, np.ndarray, list[DeadLetter]]:
    good: list[int] = []
    rows: list[dict] = []
    dl: list[DeadLetter] = []
    for i in idx:
        text = lines[int(i)].as_py()
        try:
            rows.append(coerce(json_object(text), schema, ""))
            good.append(int(i))
        except Reject as e:
            dl.append(dead(source, block.path, block.first_line + int(i), str(e), text))
    table = pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()
    return table, np.array(good, dtype=np.int64), dl


def coerce(obj: dict, fields: pa.Schema | pa.StructType, prefix: str) -> dict:
    """The schema's fields of one JSON object, each checked against its Arrow type
    (missing or null → None); ``Reject`` names the first field that does not fit."""
    out: dict = {}
    for f in fields:
        v = obj.get(f.name)
        name = prefix + f.name
        if v is None:
            out[f.name] = None
        elif pa.types.is_struct(f.type):
            if not isinstance(v, dict):
                raise Reject(f"invalid {name}: expected an object, got {type(v).__name__}")
            out[f.name] = coerce(v, f.type, name + ".")
        elif pa.types.is_string(f.type):
            if isinstance(v, str):
                out[f.name] = v
            elif isinstance(v, (bool, int, float)):  # a number or flag where text is expected
                out[f.name] = json.dumps(v)
            else:
                out[f.name] = json.dumps(v, separators=(",", ":"), sort_keys=True)
        elif pa.types.is_integer(f.type):
            if isinstance(v, bool) or not isinstance(v, int) or not -2**63 <= v < 2**63:
                raise Reject(f"invalid {name} {v!r}: expected an integer")
            out[f.name] = v
        elif pa.types.is_floating(f.type):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise Reject(f"invalid {name} {v!r}: expected a number")
            out[f.name] = float(v)
        elif pa.types.is_boolean(f.type):
            if not isinstance(v, bool):
                raise Reject(f"invalid {name} {v!r}: expected true or false")
            out[f.name] = v
        else:
            out[f.name] = v
    return out


def column(table: pa.Table, path: str) -> pa.Array | None:
    """A (possibly nested, ``a.b``) column as one array; None when the schema lacks it."""
    head, _, rest = path.partition(".")
    if head not in table.column_names:
        return None
    col = table.column(head).combine_chunks()
    while rest:
        head, _, rest = rest.partition(".")
        if not pa.types.is_struct(col.type) or col.type.get_field_index(head) < 0:
            return None
        col = pc.struct_field(col, head)
    return col

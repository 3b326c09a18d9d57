"""Parquet files (archives already converted to columnar form) → events, by the source's
``mapping:`` block (``a.b`` reaches into struct columns).

Parquet is binary, not lines: the file is read with ``pyarrow.parquet`` one row group at a
time when its first block arrives (later blocks of the line reader carry nothing for it),
only the mapped columns. A record is a row; its ``raw_ref`` is ``path:<row number>``
(1-based) and its ``raw`` the mapped source fields as ``name=value`` text, which is what a
finding's evidence hashes. See docs/formats/mapped.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import DeadLetter, empty_events
from transforms.parsers import _common as c
from transforms.parsers import _mapping
from transforms.parsers._common import Reject
from transforms.parsers._jsonl import column
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block


@dataclass
class ParquetState:
    path: str
    done: bool = False


def _raw(table: pa.Table, fields: tuple[str, ...]) -> pa.Array:
    parts: list = []
    for f in dict.fromkeys(fields):
        col = column(table, f)
        text = c.const("", table.num_rows) if col is None else pc.fill_null(c.to_text(col, table.num_rows, None), "")
        parts += [f"{f}=", text] if not parts else [f" {f}=", text]
    return pc.binary_join_element_wise(*parts, "")


class ParquetParser:
    name = "parquet"
    kind = "mapped"  # each source's mapping.kind decides its events
    description = "Parquet files (pyarrow), mapped to events by the source's mapping: block"

    def new_file_state(self, path: str) -> ParquetState:
        return ParquetState(path)

    def parse_block(self, block: Block, state: ParquetState, ctx: ParseContext) -> ParseResult:
        if state.done:
            return ParseResult(empty_events(), [], 0)
        state.done = True
        import pyarrow.parquet as pq

        try:
            m = _mapping.load(ctx.mapping)
        except Reject as e:
            return ParseResult(empty_events(), [DeadLetter(ctx.source, f"{state.path}:1", str(e), "")], 1)
        pf = pq.ParquetFile(state.path)  # unreadable: ArrowInvalid (a ValueError) → the caller's dead letter
        top = {f.split(".", 1)[0] for f in m.sources}
        names = [n for n in pf.schema_arrow.names if n in top]
        tables, dl, offset = [], [], 0
        for g in range(pf.num_row_groups):
            t = pf.read_row_group(g, columns=names)
            n = t.num_rows
            line_numbers = np.arange(offset + 1, offset + n + 1, dtype=np.int64)
            offset += n
            if n == 0:
                continue
            raw = _raw(t, m.sources)
            events, more = _mapping.map_table(t, lambda s, t=t: column(t, s), m, ctx, self.name, raw,
                                              c.raw_refs(state.path, line_numbers), line_numbers, state.path)
            tables.append(events)
            dl += more
        events = pa.concat_tables(tables) if tables else empty_events()
        return ParseResult(events, dl, offset)


PARSER = ParquetParser()

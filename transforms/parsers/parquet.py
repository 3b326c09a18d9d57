"""Parquet files (archives already converted to columnar form) → events, by the source's
``mapping:`` block (``a.b`` reaches into struct columns).

Parquet is binary, not lines: the parser reads the file itself (``read_file``) with
``pyarrow.parquet``, one row group at a time and only the mapped columns, so memory stays
bounded by a row group whatever the file's size. A record is a row; its ``raw_ref`` is ``path:<row number>``
(1-based) and its ``raw`` the mapped source fields as ``name=value`` text, which is what a
finding's evidence hashes. See docs/formats/mapped.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

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


def _raw(table: pa.Table, fields: tuple[str, ...]) -> pa.Array:
    parts: list = []
    for f in dict.fromkeys(fields):
        col = column(table, f)
        text = c.const("", table.num_rows) if col is None else pc.fill_null(c.to_text(col, table.num_rows, None), "")
        parts += [f"{f}=", text] if not parts else [f" {f}=", text]
    return pc.binary_join_element_wise(*parts, "")


def _bad_column(pf, g: int, names: list[str]) -> str | None:  # type: ignore[no-untyped-def]
    """Which column of a row group cannot be read, for the dead letters' reason."""
    for name in names:
        try:
            pf.read_row_group(g, columns=[name])
        except Exception:  # noqa: BLE001
            return f"column {name}: "
    return None


class ParquetParser:
    name = "parquet"
    kind = "mapped"  # each source's mapping.kind decides its events
    description = "Parquet files (pyarrow), mapped to events by the source's mapping: block"

    def new_file_state(self, path: str) -> ParquetState:
        return ParquetState(path)

    def read_file(self, state: ParquetState, ctx: ParseContext) -> Iterator[ParseResult]:
        """One result per row group (the whole file is one unreadable-file dead letter when
        pyarrow cannot open it: ArrowInvalid is a ValueError, handled by the caller)."""
        import pyarrow.parquet as pq

        try:
            m = _mapping.load(ctx.mapping)
        except Reject as e:
            yield ParseResult(empty_events(), [DeadLetter(ctx.source, f"{state.path}:1", str(e), "")], 1)
            return
        pf = pq.ParquetFile(state.path)
        top = {f.split(".", 1)[0] for f in m.sources}
        names = [n for n in pf.schema_arrow.names if n in top]
        offset = 0
        for g in range(pf.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            line_numbers = np.arange(offset + 1, offset + n + 1, dtype=np.int64)
            offset += n
            if n == 0:
                continue
            try:
                t = pf.read_row_group(g, columns=names)
                if t.num_rows != n:
                    raise ValueError(f"{t.num_rows} rows read, {n} in the file's metadata")
                events, dead_letters = _mapping.map_table(
                    t, lambda s, t=t: column(t, s), m, ctx, self.name, _raw(t, m.sources),
                    c.raw_refs(state.path, line_numbers), line_numbers, state.path,
                )
            except Exception as e:  # noqa: BLE001 - a corrupt row group: each of its rows says so
                reason = f"unreadable row group {g}: {_bad_column(pf, g, names) or ''}{type(e).__name__}: {str(e)[:200]}"
                events = empty_events()
                dead_letters = [DeadLetter(ctx.source, f"{state.path}:{i}", reason, "") for i in line_numbers]
            yield ParseResult(events, dead_letters, n)

    def parse_block(self, block: Block, state: ParquetState, ctx: ParseContext) -> ParseResult:
        raise TypeError("parquet is read whole by read_file, not in line blocks")


PARSER = ParquetParser()

"""Any CSV (or other delimited) log → events, by the source's ``mapping:`` block.

For a system without a parser of its own: name which column fills which event field in the
config and the file needs no code (docs/formats/mapped.md). The first line is the header
unless ``mapping.columns`` names the columns; standard CSV double-quote quoting is read;
one record per line. Blocks go through ``pyarrow.csv``; the mapping is vectorized.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from transforms.model import DeadLetter, empty_events
from transforms.parsers import _common as c
from transforms.parsers import _mapping
from transforms.parsers._common import Reject
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block


@dataclass
class CsvMappedState:
    header: tuple[str, ...] | None = None


class CsvMappedParser:
    name = "csv_mapped"
    kind = "mapped"  # each source's mapping.kind decides its events
    description = "Any CSV/delimited log, mapped to events by the source's mapping: block (no code)"

    def new_file_state(self, path: str) -> CsvMappedState:
        return CsvMappedState()

    def parse_block(self, block: Block, state: CsvMappedState, ctx: ParseContext) -> ParseResult:
        dl: list[DeadLetter] = []
        idx: list[int] = []
        records = structure = 0
        try:
            m = _mapping.load(ctx.mapping)
        except Reject as e:  # validated away by the config; kept for direct use
            for i, line in enumerate(block.lines):
                if line.strip() and not line.startswith(b"###"):
                    records += 1
                    dl.append(c.dead(ctx.source, block.path, block.first_line + i, str(e), line))
            return ParseResult(empty_events(), dl, records)
        if state.header is None and m.columns:
            state.header = m.columns
        for i, line in enumerate(block.lines):
            if not line.strip() or line.startswith(b"###"):
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                records += 1
                dl.append(c.dead(ctx.source, block.path, block.first_line + i, "not valid UTF-8", line))
                continue
            if state.header is None:
                state.header = tuple(h.strip().strip('"') for h in text.lstrip("\ufeff").split(m.delimiter))
                structure += 1
                continue
            records += 1
            idx.append(i)
        if not idx:
            return ParseResult(empty_events(), dl, records, structure)
        events, more = self._read(block, np.array(idx, dtype=np.int64), state.header, m, ctx)
        dl += more
        dl.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
        return ParseResult(events, dl, records, structure)

    def _read(self, block: Block, idx: np.ndarray, header: tuple[str, ...], m: _mapping.Mapping,
              ctx: ParseContext) -> tuple[pa.Table, list[DeadLetter]]:
        import pyarrow.csv as pcsv

        dl: list[DeadLetter] = []
        idx = c.without_cr(block, ctx.source, idx, dl)
        data = b"\n".join(block.lines[int(i)].rstrip(b"\r") for i in idx)
        if b'"' in data:  # an odd number of quotes leaves a field open: Arrow would run on
            open_ = [int(i) for i in idx if block.lines[int(i)].count(b'"') % 2]
            if open_:
                dl += [c.dead(ctx.source, block.path, block.first_line + i, "unterminated quoted field",
                              block.lines[i]) for i in open_]
                idx = np.setdiff1d(idx, np.array(open_, dtype=idx.dtype))
                data = b"\n".join(block.lines[int(i)].rstrip(b"\r") for i in idx)
        if not len(idx):
            return empty_events(), dl
        rejected: list[tuple[int, int]] = []

        def handler(row: pcsv.InvalidRow) -> str:
            rejected.append((row.number, row.actual_columns))
            return "skip"

        include = [s for s in dict.fromkeys(m.sources) if s in header] or [header[0]]
        try:
            table = pcsv.read_csv(
                pa.BufferReader(data),
                read_options=pcsv.ReadOptions(column_names=list(header), use_threads=False, block_size=len(data) + 1),
                parse_options=pcsv.ParseOptions(delimiter=m.delimiter, quote_char='"', double_quote=True,
                                                newlines_in_values=False, ignore_empty_lines=False,
                                                invalid_row_handler=handler),
                convert_options=pcsv.ConvertOptions(column_types={h: pa.string() for h in include},
                                                    include_columns=include, strings_can_be_null=False))
        except (pa.ArrowInvalid, ValueError) as e:
            return empty_events(), dl + [c.dead(ctx.source, block.path, block.first_line + int(i),
                                                f"unreadable CSV: {e}", block.lines[int(i)]) for i in idx]
        if any(not 0 < number <= len(idx) for number, _ in rejected):  # not expected: line by line
            return self._one_by_one(block, idx, header, m, ctx, dl)
        drop = sorted(number - 1 for number, _ in rejected)
        for number, actual in rejected:
            i = int(idx[number - 1])
            dl.append(c.dead(ctx.source, block.path, block.first_line + i,
                             f"expected {len(header)} {m.delimiter!r}-separated fields, got {actual}", block.lines[i]))
        rows = np.delete(idx, drop)
        if table.num_rows != len(rows):  # a quote left open ran over lines: read each alone
            return self._one_by_one(block, idx, header, m, ctx, dl[:len(dl) - len(rejected)])
        if not len(rows):
            return empty_events(), dl
        raw = pa.array([block.lines[int(i)].rstrip(b"\r").decode("utf-8") for i in rows], pa.string())
        line_numbers = np.asarray(rows + block.first_line)
        get = lambda s: table.column(s).combine_chunks() if s in table.column_names else None  # noqa: E731
        events, more = _mapping.map_table(table, get, m, ctx, self.name, raw, c.raw_refs(block.path, line_numbers),
                                          line_numbers, block.path)
        return events, dl + more

    def _one_by_one(self, block: Block, idx: np.ndarray, header: tuple[str, ...], m: _mapping.Mapping,
                    ctx: ParseContext, dl: list[DeadLetter]) -> tuple[pa.Table, list[DeadLetter]]:
        if len(idx) == 1:
            return empty_events(), dl + [c.dead(ctx.source, block.path, block.first_line + int(idx[0]),
                                                "unreadable CSV record (a quote left open?)", block.lines[int(idx[0])])]
        tables = []
        for i in idx:
            table, more = self._read(block, idx[idx == i], header, m, ctx)
            tables.append(table)
            dl += more
        return pa.concat_tables(tables), dl


PARSER = CsvMappedParser()

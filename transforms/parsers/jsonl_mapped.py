"""Any JSON-lines log → events, by the source's ``mapping:`` block (``a.b`` reaches into
nested objects). Blocks go through ``pyarrow.json`` (types inferred); when that fails the
block is read line by line and each mapped field taken as text. See docs/formats/mapped.md.
"""
from __future__ import annotations

import pyarrow as pa

from transforms.model import DeadLetter, empty_events
from transforms.parsers import _common as c
from transforms.parsers import _mapping
from transforms.parsers._common import Reject
from transforms.parsers._jsonl import column, read_jsonl_block
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block


def _schema(fields: tuple[str, ...]) -> pa.Schema:
    """All mapped fields as text, nested ``a.b`` as structs (for the line-by-line reading)."""
    tree: dict = {}
    for f in fields:
        node = tree
        parts = f.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            node.setdefault(parts[-1], None)

    def build(node: dict) -> list[pa.Field]:
        return [pa.field(k, pa.struct(build(v)) if isinstance(v, dict) else pa.string()) for k, v in node.items()]

    return pa.schema(build(tree))


class JsonlMappedParser:
    name = "jsonl_mapped"
    kind = "mapped"  # each source's mapping.kind decides its events
    description = "Any JSON-lines log, mapped to events by the source's mapping: block (no code)"

    def new_file_state(self, path: str) -> None:
        return None

    def parse_block(self, block: Block, state: None, ctx: ParseContext) -> ParseResult:
        try:
            m = _mapping.load(ctx.mapping)
        except Reject as e:
            dl = [c.dead(ctx.source, block.path, block.first_line + i, str(e), line)
                  for i, line in enumerate(block.lines) if line.strip() and not line.startswith(b"###")]
            return ParseResult(empty_events(), dl, len(dl))
        jb = read_jsonl_block(block, ctx.source, _schema(m.sources), infer=True)
        dl: list[DeadLetter] = list(jb.dead_letters)
        if jb.table.num_rows == 0:
            return ParseResult(empty_events(), dl, jb.records)
        line_numbers = jb.line_numbers(block)
        raw = jb.raw()
        events, more = _mapping.map_table(jb.table, lambda s: column(jb.table, s), m, ctx, self.name, raw,
                                          c.raw_refs(block.path, line_numbers), line_numbers, block.path)
        dl += more
        dl.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
        return ParseResult(events, dl, jb.records)


PARSER = JsonlMappedParser()

"""Shared by the parser conformance tests: parse a whole file and check the accounting."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from transforms.model import EVENT_SCHEMA
from transforms.parsers import PARSERS, ParseContext, parse_file
from transforms.read import iter_blocks


def parse_all(parser: str, source: str, path: Path | str, block_bytes: int = 1 << 20,
              **kw) -> tuple[pa.Table, list, int]:
    """All events, dead letters and records of a file; every block must keep
    ``records == events + dead letters + skipped`` and the event schema."""
    tables, dead, records = [], [], 0
    for r in parse_file(parser, source, str(path), block_bytes=block_bytes, **kw):
        assert r.records == r.events.num_rows + len(r.dead_letters) + r.skipped
        assert r.events.schema == EVENT_SCHEMA
        tables.append(r.events)
        dead += r.dead_letters
        records += r.records
    events = pa.concat_tables(tables) if tables else EVENT_SCHEMA.empty_table()
    return events, dead, records


def parse_untimed(parser: str, source: str, path: Path | str) -> pa.Table:
    """All events of a masked btest baseline (``XXXXXXXXXX.XXXXXX`` times) with the time rule
    off (a test-only hook): every record must parse."""
    p = PARSERS[parser]
    state = p.new_file_state(str(path))
    out = []
    for block in iter_blocks(source, str(path)):
        r = p.parse_block(block, state, ParseContext(source), require_time=False)
        assert r.records == r.events.num_rows and not r.dead_letters
        out.append(r.events)
    return pa.concat_tables(out)

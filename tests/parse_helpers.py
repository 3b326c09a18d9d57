"""Shared by the parser conformance tests: parse a whole file and check the accounting."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from transforms.model import EVENT_SCHEMA
from transforms.parsers import parse_file


def parse_all(parser: str, source: str, path: Path | str, block_bytes: int = 1 << 20,
              **kw) -> tuple[pa.Table, list, int]:
    """All events, dead letters and records of a file; every block must keep
    ``records == events + dead letters`` and the event schema."""
    tables, dead, records = [], [], 0
    for r in parse_file(parser, source, str(path), block_bytes=block_bytes, **kw):
        assert r.records == r.events.num_rows + len(r.dead_letters)
        assert r.events.schema == EVENT_SCHEMA
        tables.append(r.events)
        dead += r.dead_letters
        records += r.records
    events = pa.concat_tables(tables) if tables else EVENT_SCHEMA.empty_table()
    return events, dead, records

"""The parser contract shared by every format module.

A parser module turns ``Block``s of one file into events (an ``EVENT_SCHEMA`` Arrow table)
and dead letters. It keeps per-file state (a Zeek header, for one) in an object it creates
itself, so one parser instance can read many files. The invariant every parser keeps and
every conformance test checks: ``records == events.num_rows + len(dead_letters) + skipped``
for each block, where ``records`` counts data lines (not headers, comments or blank lines)
and ``skipped`` the lines of recognised sibling logs the format does not read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from transforms.model import DeadLetter
from transforms.read import Block


@dataclass
class ParseResult:
    events: pa.Table
    dead_letters: list[DeadLetter] = field(default_factory=list)
    records: int = 0
    #: Non-blank, non-comment lines of the block that are not records: headers, section
    #: titles, lines of a multi-line record but the one it is counted at (negative when a
    #: record whose lines an earlier block read ends here). The read layer counts records
    #: as the block's other lines, independently of what the parser made of them.
    structure: int = 0
    #: Records of a sibling log that the format recognises but does not read (e.g. ICSNPP
    #: ``cip_io.log`` swept in by a ``cip*.log`` glob): announced once per file, counted
    #: here so that ``records == events + dead letters + skipped`` still accounts for them.
    skipped: int = 0


@dataclass(frozen=True)
class ParseContext:
    source: str
    timezone: str = "UTC"  # for formats whose timestamps carry no offset
    mapping: str | None = None  # csv_mapped/jsonl_mapped/parquet: the source's mapping block as JSON


class Parser(Protocol):
    name: str  # registry key used in config ``format:``
    # Optional ``comment_prefix: bytes`` (default ``b"###"``): lines starting with it are
    # comments, not records (Zeek: ``b"#"``).
    kind: str  # flow | ot | remote_access | auth; "mapped" when the source's mapping: block sets it
    description: str

    def new_file_state(self, path: str) -> Any: ...

    def parse_block(self, block: Block, state: Any, ctx: ParseContext) -> ParseResult: ...

    # Optional, for binary formats (Parquet): ``read_file(state, ctx) -> Iterator[ParseResult]``
    # reads the file itself instead of being handed line blocks.
    # Optional, for formats whose records may span blocks (nfdump's pretty-printed JSON):
    # ``finish_file(state, ctx) -> ParseResult`` is called after the last block and
    # accounts for whatever the state still holds (a record cut off at the end of file).

"""Kafka messages → event tables and dead letters, with the file parsers' block code.

A message holds one log record (the usual case: one line or one JSON object) or several
newline-separated records. A poll's messages of one partition are parsed as blocks, like the
blocks of a file: single-record messages together as one block (one parser call for
thousands of records), a message holding several records as a small file of its own (its
own parser state, so a Zeek message may carry its ``#fields`` header). Each record points
back at ``<topic>/<partition>/<offset>:<line>`` (line 1 for a single-record message), the
form of a file's ``path:line``; dead letters point there too.

Messages that are not text go to dead letters before parsing: larger than
``max_message_bytes``, not UTF-8, or without a value. Rows a format leaves without a time
take the message's Kafka timestamp.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import DeadLetter
from transforms.parsers import PARSERS, parse_block_safely
from transforms.parsers.base import ParseContext
from transforms.read import STOP_RAW_BYTES, Block


@dataclass(frozen=True)
class Message:
    """What the source keeps of one consumed Kafka message."""

    offset: int
    value: Optional[bytes]
    timestamp_ms: Optional[int]  # Kafka's timestamp (producer's create time or broker's append time)


@dataclass
class Parsed:
    """One poll's messages of one partition, parsed."""

    tables: list[pa.Table] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    read: int = 0  # records: parsed + dead-lettered + skipped
    parsed: int = 0
    dead_lettered: int = 0
    skipped: int = 0


def message_ref(topic: str, partition: int, offset: int, line: int = 1) -> str:
    return f"{topic}/{partition}/{offset}:{line}"


def _lines(value: bytes) -> list[bytes]:
    lines = value.split(b"\n")
    if len(lines) > 1 and lines[-1] == b"":
        lines.pop()  # one trailing newline is a line ending, not an empty record
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]


def _bad(source: str, ref: str, reason: str, value: Optional[bytes]) -> DeadLetter:
    raw = (value or b"")[:STOP_RAW_BYTES].decode("utf-8", "backslashreplace")
    return DeadLetter(source, ref, reason, raw)


class MessageParser:
    """The source's ``format`` parser applied to a partition's messages."""

    def __init__(self, source: str, fmt: str, topic: str, partition: int, timezone: str = "UTC",
                 mapping: Optional[str] = None, max_message_bytes: int = 1 << 20):
        self.parser = PARSERS[fmt]
        self.ctx = ParseContext(source, timezone, mapping)
        self.source, self.topic, self.partition = source, topic, partition
        self.prefix = getattr(self.parser, "comment_prefix", b"###")
        self.max_bytes = max_message_bytes
        self.where = f"{topic}/{partition}"

    def parse(self, messages: Sequence[Message]) -> Parsed:
        out = Parsed()
        singles: list[tuple[Message, bytes]] = []
        for m in messages:
            ref = message_ref(self.topic, self.partition, m.offset)
            if m.value is None or not m.value.strip():
                self._dead(out, _bad(self.source, ref, "empty Kafka message (no record)", m.value))
                continue
            if len(m.value) > self.max_bytes:
                self._dead(out, _bad(self.source, ref, f"Kafka message larger than max_message_bytes "
                                                       f"({self.max_bytes} bytes): {len(m.value)} bytes", m.value))
                continue
            try:
                m.value.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._dead(out, _bad(self.source, ref, f"Kafka message is not UTF-8 text: {exc}", m.value))
                continue
            lines = _lines(m.value)
            if len(lines) == 1 and not lines[0].startswith(self.prefix[:1]):
                singles.append((m, lines[0]))
            else:
                self._flush(out, singles)
                singles = []
                self._one(out, m, lines)
        self._flush(out, singles)
        return out

    def _dead(self, out: Parsed, dl: DeadLetter) -> None:
        out.dead.append(dl)
        out.read += 1
        out.dead_lettered += 1

    def _account(self, out: Parsed, result: Any) -> None:
        out.read += result.records
        out.parsed += result.events.num_rows
        out.dead_lettered += len(result.dead_letters)
        out.skipped += result.skipped

    def _flush(self, out: Parsed, singles: list[tuple[Message, bytes]]) -> None:
        """Single-record messages in a row: one block, refs rewritten to their offsets."""
        if not singles:
            return
        block = Block(self.source, self.where, 1, [line for _, line in singles])
        result, _ = parse_block_safely(self.parser, block, self.parser.new_file_state(self.where), self.ctx, self.prefix)
        self._account(out, result)
        offsets = [m.offset for m, _ in singles]
        stamps = [m.timestamp_ms for m, _ in singles]
        if result.events.num_rows:
            out.tables.append(self._retarget(result.events, offsets, stamps))
        for dl in result.dead_letters:
            out.dead.append(dataclasses.replace(dl, location=self._ref_of(dl.location, offsets)))

    def _ref_of(self, location: str, offsets: list[int]) -> str:
        head, _, line = location.rpartition(":")
        if head == self.where and line.isdigit() and 0 < int(line) <= len(offsets):
            return message_ref(self.topic, self.partition, offsets[int(line) - 1])
        return location

    def _retarget(self, table: pa.Table, offsets: list[int], stamps: list[Optional[int]]) -> pa.Table:
        """``<topic>/<partition>:<i>`` (block line i) → ``<topic>/<partition>/<offset>:1``;
        a row without a time takes its message's Kafka timestamp."""
        refs = table.column("raw_ref")
        index = pc.subtract(pc.cast(pc.utf8_slice_codeunits(refs, len(self.where) + 1), pa.int64()), 1)
        offs = pc.take(pa.array(offsets, pa.int64()), index)
        new_refs = pc.binary_join_element_wise(pa.scalar(f"{self.where}/"), pc.cast(offs, pa.string()), pa.scalar(":1"), "")
        table = table.set_column(table.schema.get_field_index("raw_ref"), "raw_ref", new_refs)
        return self._fill_time(table, index, stamps)

    def _one(self, out: Parsed, m: Message, lines: list[bytes]) -> None:
        """A message of several records (or a header): a small file of its own."""
        path = f"{self.where}/{m.offset}"
        state = self.parser.new_file_state(path)
        result, state = parse_block_safely(self.parser, Block(self.source, path, 1, lines), state, self.ctx, self.prefix)
        results = [result]
        finish = getattr(self.parser, "finish_file", None)
        if finish is not None:
            try:
                end = finish(state, self.ctx)
                end.records = len(end.dead_letters) + end.events.num_rows
            except Exception as exc:  # noqa: BLE001 - a parser failure is a dead letter, never a crash
                from transforms.model import empty_events
                from transforms.parsers.base import ParseResult

                end = ParseResult(empty_events(), [_bad(self.source, f"{path}:{len(lines)}",
                                                        f"parser error at end of message: {type(exc).__name__}", b"")], 1)
            results.append(end)
        for r in results:
            self._account(out, r)
            if r.events.num_rows:
                out.tables.append(self._fill_time(r.events, pa.array([0] * r.events.num_rows, pa.int64()),
                                                  [m.timestamp_ms]))
            out.dead.extend(r.dead_letters)

    @staticmethod
    def _fill_time(table: pa.Table, index: Any, stamps: list[Optional[int]]) -> pa.Table:
        times = table.column("time")
        if times.null_count == 0:
            return table
        kafka = pc.take(pa.array([s * 1000 if s is not None and s >= 0 else None for s in stamps], pa.int64()), index)
        filled = pc.coalesce(times, pc.cast(kafka, pa.timestamp("us", tz="UTC")))
        return table.set_column(table.schema.get_field_index("time"), "time", filled)
